# SPDX-License-Identifier: Apache-2.0
"""Direction maps: features laid out on a grid of look directions registered to the camera's pixels.

One cell per ``map_size``-th of the image, plus ``map_margin`` cells of margin on each side, so a source or a
reflector appears in the input where it appears in the image (``FeatureConfig.direction_maps``):

* steered response power (SRP-PHAT) per frequency band: the frame-averaged, PHAT-weighted cross-spectrum of every
  microphone pair steered to each direction (1 = every pair in phase for a plane wave from that direction);
* (``echo``) chirp echo energy per direction and range bin: the matched-filtered chirp (Hann-tapered band, low
  range sidelobes) of the folded window, delay-and-sum beamformed to each direction, its log energy per range bin
  relative to the direct path.

The maps are small (a few thousand values), so the feature stack carries them packed row-major into its trailing
``map_planes`` channels of (bins, frames) (:mod:`.packing`): one tensor still flows through the pipeline, backends
and caches; the networks unpack them with :func:`~.packing.unpack_maps`.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from audio_vision.core.features.chirp import chirp_pulse
from audio_vision.core.features.config import FeatureConfig
from audio_vision.core.features.echogram import echo_samples
from audio_vision.core.features.packing import pack_maps
from audio_vision.core.features.spectrogram import STFT, modulus, power


def direction_grid(cfg: FeatureConfig) -> np.ndarray:
    """(G, G, 3) unit look directions in the array frame (x forward, y left, z up), one per grid
    cell: cell (i, j) looks through the centre of the image block (row i, column j) of a camera
    with `map_hfov_deg` whose image is `map_size` cells across; margin cells continue the grid."""
    return _grid_directions(cfg.map_size, cfg.map_margin, cfg.map_hfov_deg)


def _grid_directions(size: int, margin: int, hfov_deg: float) -> np.ndarray:
    half = math.tan(math.radians(hfov_deg) / 2.0)
    centres = ((np.arange(size + 2 * margin) - margin + 0.5) / size * 2.0 - 1.0) * half   # optical x / y
    yo, xo = np.meshgrid(centres, centres, indexing='ij')
    rays = np.stack([np.ones_like(xo), -xo, -yo], axis=-1)                     # optical -> array frame
    return rays / np.linalg.norm(rays, axis=-1, keepdims=True)


class DirectionMaps(nn.Module):
    """(B, C, N) audio (and its STFT, if at hand) -> (B, num_direction_maps, G, G): SRP-PHAT per band, then (if
    echo) the chirp's log echo energy per range bin; :meth:`channels` packs them for the feature stack.
    ``mic_positions``: (C, 3) metres in the array frame."""

    uses_stft = True

    def __init__(self, config: FeatureConfig, mic_positions: np.ndarray):
        super().__init__()
        self.config = cfg = config
        mics = np.asarray(mic_positions, dtype=np.float64).reshape(-1, 3)
        self.stft = STFT(config)
        c = cfg.speed_of_sound
        look = direction_grid(cfg).reshape(-1, 3)                                          # (D, 3)
        # SRP-PHAT: every microphone pair, STFT bins inside the bands, one phase per direction.
        i, j = np.triu_indices(len(mics), k=1)
        freqs = np.fft.rfftfreq(cfg.n_fft, 1.0 / cfg.sample_rate)
        edges = np.asarray(cfg.srp_band_edges_hz)
        keep = np.flatnonzero((freqs >= edges[0]) & (freqs < edges[-1]))
        tau = (mics[i] - mics[j]) @ look.T / c                                             # (P, D) s
        phase = 2.0 * np.pi * freqs[keep][None, :, None] * tau[:, None, :]                # (P, K, D)
        # Re(R e^{-j phase}) = Re R cos + Im R sin: one real (K, 2P, D) matrix per bin.
        srp_steer = np.concatenate([np.cos(phase), np.sin(phase)], axis=0).transpose(1, 0, 2)
        self.register_buffer('srp_steer', torch.from_numpy(np.ascontiguousarray(srp_steer, dtype=np.float32)),
                             persistent=False)
        band = np.searchsorted(edges, freqs[keep], side='right') - 1                        # (K,)
        pool = (band[None] == np.arange(len(edges) - 1)[:, None]).astype(np.float64)       # (bands, K)
        pool /= np.maximum(pool.sum(axis=1, keepdims=True), 1.0) * len(i)
        self.register_buffer('srp_pool', torch.from_numpy(pool.astype(np.float32)), persistent=False)
        self.register_buffer('pair_i', torch.from_numpy(i), persistent=False)
        self.register_buffer('pair_j', torch.from_numpy(j), persistent=False)
        self.register_buffer('srp_bins', torch.from_numpy(keep), persistent=False)
        if not cfg.echo:
            return
        # Chirp echo maps. Matched filter with a Hann taper across the chirp band: range
        # sidelobes of the direct path fall below body echoes (~40 dB weaker) a few bins away.
        self.echo_period, self.echo_keep = echo_samples(cfg)
        period, fs = self.echo_period, cfg.sample_rate
        pulse = chirp_pulse(fs, cfg.chirp_f_start, cfg.chirp_f_end, cfg.chirp_duration_s, cfg.chirp_kind)
        f_full = np.fft.fftfreq(period, 1.0 / fs)
        in_band = (f_full >= cfg.chirp_f_start) & (f_full < cfg.chirp_f_end)
        taper = np.where(in_band, np.sin(np.pi * (f_full - cfg.chirp_f_start)
                                         / (cfg.chirp_f_end - cfg.chirp_f_start)) ** 2, 0.0)
        mf = 2.0 * np.conj(np.fft.fft(pulse, period)) * taper / len(pulse)
        self.register_buffer('map_filter', torch.from_numpy(mf.astype(np.complex64)), persistent=False)
        # Beamforming on a 64 ms crop that starts `map_pre` samples before the direct path: its
        # FFT resolves fs / keep Hz, enough for delays up to echo_max_s.
        keep_n, self.map_pre = self.echo_keep, 32
        f_crop = np.fft.fftfreq(keep_n, 1.0 / fs)
        crop_bins = np.flatnonzero((f_crop >= cfg.chirp_f_start) & (f_crop < cfg.chirp_f_end))
        # The delay-and-sum beam of a 0.2 m array is several cells wide: steer to the centres of
        # 2 x 2 cell blocks and interpolate back (a quarter of the work, the same information).
        coarse = _grid_directions(cfg.map_size // 2, cfg.map_margin // 2, cfg.map_hfov_deg)
        lead = coarse.reshape(-1, 3) @ mics.T / c                                          # (D/4, C) s
        steer = np.exp(-2j * np.pi * f_crop[crop_bins][:, None, None] * lead[None]) / len(mics)   # (K, D, C)
        # Complex product as one real matmul per bin: [Re; Im] = [[Sr, -Si], [Si, Sr]] [Re; Im].
        real = np.block([[steer.real, -steer.imag], [steer.imag, steer.real]])               # (K, 2D, 2C)
        self.register_buffer('map_steer', torch.from_numpy(np.ascontiguousarray(real, dtype=np.float32)),
                             persistent=False)
        self.register_buffer('map_crop_bins', torch.from_numpy(crop_bins), persistent=False)
        # The envelope needs only the band's width: inverse FFT of the band bins moved to baseband.
        self.map_env_n = 1 << int(math.ceil(math.log2(len(crop_bins))))
        env_rate = fs * self.map_env_n / keep_n                                            # envelope samples/s
        t = (np.arange(self.map_env_n) - self.map_pre * self.map_env_n / keep_n) / env_rate  # s after direct
        r = c * t / 2.0                                                                     # monostatic range
        r_edges = np.linspace(cfg.echo_range_min_m, cfg.echo_range_max_m, cfg.echo_range_bins + 1)
        member = (r[:, None] >= r_edges[None, :-1]) & (r[:, None] < r_edges[None, 1:])      # (T_env, R)
        member = member / np.maximum(member.sum(axis=0, keepdims=True), 1)
        self.register_buffer('range_pool', torch.from_numpy(member.astype(np.float32)), persistent=False)

    def forward(self, audio: torch.Tensor, spec: torch.Tensor | None = None) -> torch.Tensor:
        """(B, C, N) -> (B, num_direction_maps, G, G): SRP-PHAT per band, then (if echo) the chirp's
        log echo energy per range bin relative to the direct path. `spec`: the STFT, if at hand."""
        cfg = self.config
        g = cfg.map_grid
        b = audio.shape[0]
        spec = self.stft(audio.float()) if spec is None else spec                       # (B, C, K, T)
        # Every (1 / (1 - overlap))-th frame: frames that do not overlap carry the same cues at a
        # fraction of the cost.
        stride = max(1, round(1.0 / (1.0 - cfg.overlap)))
        sub = spec[:, :, self.srp_bins[0]:self.srp_bins[-1] + 1, ::stride]                  # (B, C, K', T')
        # The PHAT-weighted cross-spectra X_i X_j* / (|X_i X_j*| + eps) in real arithmetic, |X_i X_j*| as |X_i| |X_j|
        # (the same to float rounding): torch's complex modulus is several times slower than these real products.
        mag = modulus(sub)                                                                 # (B, C, K', T')
        components = torch.view_as_real(sub)
        re, im = components[..., 0], components[..., 1]
        i, j = self.pair_i, self.pair_j
        re_i, im_i, re_j, im_j = re[:, i], im[:, i], re[:, j], im[:, j]                   # (B, P, K', T')
        phat = 1.0 / (mag[:, i] * mag[:, j] + cfg.eps)
        cross_re = ((re_i * re_j + im_i * im_j) * phat).mean(dim=-1)                      # frame mean, (B, P, K')
        cross_im = ((im_i * re_j - re_i * im_j) * phat).mean(dim=-1)
        # contiguous per bin: bmm on a permuted view copies it batch by batch
        parts = torch.cat([cross_re, cross_im], dim=1).permute(2, 0, 1).contiguous()      # (K', B, 2P)
        steered = torch.bmm(parts, self.srp_steer)                                         # (K', B, D)
        maps = [torch.einsum('nk,kbd->bnd', self.srp_pool, steered)]                       # (B, bands, D)
        if cfg.echo:
            maps.append(self._echo_maps(audio.float()))
        return torch.cat(maps, dim=1).reshape(b, -1, g, g)

    def _echo_maps(self, audio: torch.Tensor) -> torch.Tensor:
        cfg, period = self.config, self.echo_period
        b, c, n = audio.shape
        folded = audio[..., :(n // period) * period].reshape(b, c, -1, period).sum(dim=2)  # (B, C, P)
        analytic = torch.fft.ifft(torch.fft.fft(folded) * self.map_filter)               # (B, C, P)
        shift = modulus(analytic).sum(dim=1).argmax(dim=-1) - self.map_pre                # direct path
        idx = (torch.arange(self.echo_keep, device=audio.device)[None] + shift[:, None]) % period
        crop = torch.gather(analytic, 2, idx[:, None, :].expand(b, c, -1))               # (B, C, L)
        bins = torch.fft.fft(crop)[:, :, self.map_crop_bins]                              # (B, C, K)
        stacked = torch.cat([bins.real, bins.imag], dim=1).permute(2, 1, 0).contiguous()  # (K, 2C, B)
        beams = torch.bmm(self.map_steer, stacked)                                         # (K, 2D, B)
        d = beams.shape[1] // 2
        beams = torch.complex(beams[:, :d], beams[:, d:]).permute(2, 1, 0)                # (B, D, K)
        env = power(torch.fft.ifft(beams, n=self.map_env_n))                               # (B, D, T_env)
        energy = torch.einsum('bdt,tr->brd', env, self.range_pool)                        # (B, R, D/4)
        ref = env.amax(dim=(1, 2))[:, None, None]                                         # direct path
        log_e = torch.log(energy + cfg.eps * ref) - torch.log(ref + cfg.eps)
        g = cfg.map_grid // 2
        log_e = F.interpolate(log_e.reshape(b, -1, g, g), size=(cfg.map_grid, cfg.map_grid), mode='bilinear',
                              align_corners=False)
        return ((log_e.clamp(min=-25.0) + 12.5) / 6.25).flatten(2)                          # (B, R, D)

    def channels(self, audio: torch.Tensor, spec: torch.Tensor | None = None) -> torch.Tensor:
        """The direction maps packed row-major into (B, map_planes, bins, frames), zero-padded: how they travel in
        the feature stack (:func:`~.packing.unpack_maps` undoes it)."""
        cfg = self.config
        return pack_maps(self(audio, spec), cfg.map_planes, cfg.num_bins, cfg.num_frames)
