# SPDX-License-Identifier: Apache-2.0
"""Echo beams (active echolocation): one band x delay echogram per look direction.

The window is folded by the chirp period (the chirp repeats, so the sum of the periods holds every echo of one
chirp), beamformed (delay-and-sum with the array geometry) towards a set of look directions
(``echo_azimuths_deg`` / ``echo_elevations_deg``), matched-filtered with the known chirp in frequency bands,
circularly aligned so the direct path is at delay 0, and its log envelope (relative to the direct path) kept for
``echo_max_s``: one band x delay echogram per look direction, resized to the spectrogram's (bins, frames) so it
stacks as channels. The distance to the wall, floor or ceiling a beam points at is the delay of that beam's first
ridge.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from audio_vision.core.features.chirp import chirp_pulse
from audio_vision.core.features.config import FeatureConfig
from audio_vision.core.features.spectrogram import modulus


def echo_samples(cfg: FeatureConfig) -> tuple[int, int]:
    """(chirp period, echo samples kept after the direct path) in samples."""
    return int(round(cfg.chirp_period_s * cfg.sample_rate)), int(round(cfg.echo_max_s * cfg.sample_rate))


class EchoBeams(nn.Module):
    """(B, C, N) audio -> (B, U, bins, frames) log echo envelope of each of the U look directions relative to the
    direct path (band index along bins, delay 0 ... echo_max_s along frames). ``mic_positions``: (C, 3) metres in
    the array frame."""

    uses_stft = False

    def __init__(self, config: FeatureConfig, mic_positions: np.ndarray):
        super().__init__()
        self.config = cfg = config
        mic_positions = np.asarray(mic_positions, dtype=np.float64).reshape(-1, 3)
        self.echo_period, self.echo_keep = echo_samples(cfg)
        period = self.echo_period
        pulse = chirp_pulse(cfg.sample_rate, cfg.chirp_f_start, cfg.chirp_f_end, cfg.chirp_duration_s, cfg.chirp_kind)
        spectrum = np.fft.fft(pulse, period)
        freqs = np.fft.fftfreq(period, 1.0 / cfg.sample_rate)
        # Analytic matched filter split into bands: positive frequencies only (so the output's
        # magnitude is the envelope), `echo_bands` linear bands across the chirp's band.
        edges = np.linspace(cfg.chirp_f_start, cfg.chirp_f_end, cfg.echo_bands + 1)
        bands = (freqs[None] >= edges[:-1, None]) & (freqs[None] < edges[1:, None])     # (bins, period)
        filt = 2.0 * np.conj(spectrum)[None] * bands / len(pulse)
        self.register_buffer('echo_filter', torch.from_numpy(filt.astype(np.complex64)), persistent=False)
        # Delay-and-sum steering: a plane wave from unit direction u reaches mic c earlier by
        # (p_c . u) / c, so mic c is delayed by that much: phase exp(-j 2 pi f (p_c . u) / c).
        az, el = np.radians(cfg.echo_azimuths_deg), np.radians(cfg.echo_elevations_deg)
        look = np.stack([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)], axis=1)   # (U, 3)
        lead = look @ mic_positions.T / cfg.speed_of_sound                                         # (U, C) s
        steer = np.exp(-2j * np.pi * freqs[None, None] * lead[..., None]) / mic_positions.shape[0]
        self.register_buffer('echo_steer', torch.from_numpy(steer.astype(np.complex64)), persistent=False)

    def forward(self, audio: torch.Tensor, spec: torch.Tensor | None = None) -> torch.Tensor:
        audio = audio.float()
        cfg, period = self.config, self.echo_period
        b, _, n = audio.shape
        folded = audio[..., :(n // period) * period].reshape(b, audio.shape[1], -1, period).sum(dim=2)  # (B, C, P)
        spec = torch.fft.fft(folded)                                                          # (B, C, P)
        # a broadcast product summed over mics: einsum makes it a bmm of P tiny matrices, twice as slow
        beams = (self.echo_steer[None] * spec[:, None]).sum(dim=2)                           # (B, U, P)
        env = modulus(torch.fft.ifft(beams[:, :, None] * self.echo_filter))                  # (B, U, bands, P)
        # Circular shift so the strongest arrival (the direct path, speaker -> array) is delay 0.
        shift = env.sum(dim=(1, 2)).argmax(dim=-1)                                            # (B,)
        idx = (torch.arange(self.echo_keep, device=audio.device)[None] + shift[:, None]) % period
        u, n_bands = env.shape[1], env.shape[2]
        env = torch.gather(env, 3, idx[:, None, None, :].expand(b, u, n_bands, -1))          # (B, U, bands, L)
        env = F.adaptive_avg_pool1d(env.reshape(b, -1, self.echo_keep), cfg.num_frames).reshape(
            b, u, n_bands, cfg.num_frames)
        env = F.interpolate(env, size=(cfg.num_bins, cfg.num_frames), mode='nearest')        # (B, U, bins, frames)
        log_env = torch.log(env + cfg.eps)
        log_env = log_env - log_env.amax(dim=(1, 2, 3), keepdim=True)                         # 0 = direct path
        return (log_env.clamp(min=-12.0) + 6.0) / 3.0

    channels = forward
