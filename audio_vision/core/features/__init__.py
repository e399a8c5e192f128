# SPDX-License-Identifier: Apache-2.0
"""Audio features: the networks' view of one analysis window (and the chirp they matched-filter)."""
