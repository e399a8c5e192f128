# SPDX-License-Identifier: Apache-2.0
"""Running the method: the pipeline, its inference engines, per-pixel confidence, the latest-window queue."""
