# SPDX-License-Identifier: Apache-2.0
"""Inter-microphone phase differences: the cues of direction of arrival.

For every microphone but the reference (mic 0), the cosine and sine of the band-wise phase of its cross-spectrum
with the reference: 2 (C - 1) channels on the spectrogram's (bins, frames) grid (``FeatureConfig.spatial: ipd``).
"""
from __future__ import annotations

import torch

from audio_vision.core.features.spectrogram import BandModule, modulus


class PhaseDifferences(BandModule):
    """(B, C, N) audio and its STFT -> (B, 2 (C - 1), bins, frames): the cosines, then the sines."""

    def forward(self, audio: torch.Tensor, spec: torch.Tensor) -> torch.Tensor:
        cfg = self.config
        if audio.shape[1] < 2:
            return audio.new_zeros(audio.shape[0], 0, cfg.num_bins, cfg.num_frames)
        cross = spec[:, 1:] * spec[:, :1].conj()                  # (B, C-1, K, T) cross-spectra vs mic 0
        if self.filterbank is not None:
            fb = self.filterbank.to(cross.real.dtype)
            cross = torch.complex(torch.einsum('mk,bckt->bcmt', fb, cross.real),
                                  torch.einsum('mk,bckt->bcmt', fb, cross.imag))
        unit = cross / (modulus(cross) + cfg.eps)                   # band-wise phase as a unit phasor
        return torch.cat([unit.real, unit.imag], dim=1)

    channels = forward
