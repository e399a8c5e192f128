# SPDX-License-Identifier: Apache-2.0
"""The log spectrogram of every microphone (log-mel by default), and the STFT the features share."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from audio_vision.core.features.config import STFT_WINDOWS, FeatureConfig


def mel_filterbank(n_fft: int, sample_rate: int, n_mels: int, f_min: float, f_max: float | None) -> np.ndarray:
    """(n_mels, n_fft//2+1) triangular filters on the HTK mel scale, each normalised to unit area."""
    f_max = sample_rate / 2 if f_max is None else f_max
    hz_to_mel = lambda f: 2595.0 * np.log10(1.0 + np.asarray(f) / 700.0)  # noqa: E731
    mel_to_hz = lambda m: 700.0 * (10.0 ** (np.asarray(m) / 2595.0) - 1.0)  # noqa: E731
    edges = mel_to_hz(np.linspace(hz_to_mel(f_min), hz_to_mel(f_max), n_mels + 2))
    freqs = np.linspace(0.0, sample_rate / 2, n_fft // 2 + 1)
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (freqs[None] - lower) / (centre - lower)
    falling = (upper - freqs[None]) / (upper - centre)
    fb = np.maximum(0.0, np.minimum(rising, falling))
    # Low bands narrower than one FFT bin would be empty: give them their nearest bin.
    empty = fb.sum(axis=1) == 0
    fb[empty, np.abs(freqs[None] - centre[empty]).argmin(axis=1)] = 1.0
    return (fb / fb.sum(axis=1, keepdims=True)).astype(np.float32)


class STFT(nn.Module):
    """(B, C, N) audio -> complex (B, C, n_fft//2+1, frames), centred; channels are folded into the batch."""

    uses_stft = False

    def __init__(self, config: FeatureConfig):
        super().__init__()
        self.config = config
        self.register_buffer('window', STFT_WINDOWS[config.stft_window](config.n_fft), persistent=False)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        b, c, n = audio.shape
        spec = torch.stft(audio.reshape(b * c, n), n_fft=self.config.n_fft, hop_length=self.config.hop_length,
                          window=self.window, center=True, pad_mode='reflect', return_complex=True)
        return spec.reshape(b, c, *spec.shape[-2:])


def power(x: torch.Tensor) -> torch.Tensor:
    """The squared modulus of a complex tensor, in real arithmetic."""
    parts = torch.view_as_real(x)
    return parts[..., 0].square() + parts[..., 1].square()


def modulus(x: torch.Tensor) -> torch.Tensor:
    """The modulus of a complex tensor, equal to its ``abs`` to float rounding: torch's complex abs, a hypot
    per element, is several times slower on the CPU than these real products."""
    return power(x).sqrt()


class BandModule(nn.Module):
    """A feature module on the spectrogram's frequency bands: reads the STFT, holds the mel filterbank (None on a
    linear frequency scale)."""

    uses_stft = True

    def __init__(self, config: FeatureConfig):
        super().__init__()
        self.config = config
        if config.scale != 'mel':
            self.filterbank = None
            return
        fb = mel_filterbank(config.n_fft, config.sample_rate, config.n_mels, config.f_min, config.f_max)
        self.register_buffer('filterbank', torch.from_numpy(fb), persistent=False)


class LogSpectrogram(BandModule):
    """(B, C, N) audio and its STFT -> (B, C, bins, frames): per microphone, the (mel) band power, its log, and
    (``normalize: window``) standardised over the window."""

    def forward(self, audio: torch.Tensor, spec: torch.Tensor) -> torch.Tensor:
        cfg = self.config
        band_power = power(spec)                                  # (B, C, K, T)
        if self.filterbank is not None:
            band_power = torch.einsum('mk,bckt->bcmt', self.filterbank, band_power)
        magnitude = torch.log(band_power + cfg.eps) if cfg.log else band_power
        if cfg.normalize == 'window':
            mean = magnitude.mean(dim=(1, 2, 3), keepdim=True)
            std = magnitude.std(dim=(1, 2, 3), keepdim=True)
            magnitude = (magnitude - mean) / (std + 1e-5)
        return magnitude

    channels = forward
