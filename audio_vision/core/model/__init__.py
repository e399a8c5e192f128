# SPDX-License-Identifier: Apache-2.0
"""The networks of the method and their baselines, the per-modality image encoding, checkpoints."""
