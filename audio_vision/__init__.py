# SPDX-License-Identifier: Apache-2.0
"""audio_vision: see with sound. Depth and semantic segmentation from a microphone array."""
__version__ = '0.1.0'
