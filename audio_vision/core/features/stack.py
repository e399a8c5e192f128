# SPDX-License-Identifier: Apache-2.0
"""Audio features: the network's view of one analysis window of multichannel audio.

Per-channel log spectrograms stacked as input channels, optionally followed by
- spatial cues: for every microphone but the reference, the cosine and sine of the band-wise
  phase of its cross-spectrum with the reference microphone (inter-channel phase
  differences, which carry direction of arrival);
- echo channels (active echolocation): the window is folded by the chirp period (the chirp
  repeats, so the sum of the periods holds every echo of one chirp), beamformed
  (delay-and-sum with the array geometry) towards a set of look directions, matched-filtered
  with the known chirp in frequency bands, circularly aligned so the direct path is at
  delay 0, and its log envelope (relative to the direct path) kept for `echo_max_s`: one
  band x delay echogram per look direction, resized to the spectrogram's (bins, frames) so
  it stacks as channels. The distance to the wall, floor or ceiling a beam points at is the
  delay of that beam's first ridge.
- direction maps (`direction_maps`): features laid out on a grid of look directions registered
  to the camera's pixels (one cell per `map_size`-th of the image, plus `map_margin` cells of
  margin on each side), so a source or a reflector appears in the input where it appears in
  the image:
  * steered response power (SRP-PHAT) per frequency band: the frame-averaged, PHAT-weighted
    cross-spectrum of every microphone pair steered to each direction (1 = every pair in
    phase for a plane wave from that direction);
  * chirp echo energy per direction and range bin: the matched-filtered chirp (Hann-tapered
    band, low range sidelobes) of the folded window, delay-and-sum beamformed to each
    direction, its log energy per range bin relative to the direct path.
  The maps are small (a few thousand values), so they are packed row-major into the trailing
  `map_planes` channels of the (bins, frames) feature stack: one tensor still flows through
  the pipeline, backends and caches; the networks unpack them with `unpack_direction_maps`.
Everything is batched torch ops: no Python loops over channels or frames.
"""
from __future__ import annotations

from dataclasses import dataclass

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from audio_vision.core.features.chirp import chirp_pulse

_WINDOWS = {
    'hann': torch.hann_window,
    'hamming': torch.hamming_window,
    'blackman': torch.blackman_window,
}


@dataclass(frozen=True)
class FeatureConfig:
    sample_rate: int = 16000
    window_s: float = 1.0          # analysis window fed to the network
    hop_s: float = 0.25            # hop between analysis windows in a stream (perception node)
    n_fft: int = 512
    stft_window: str = 'hann'      # hann | hamming | blackman
    overlap: float = 0.75          # STFT frame overlap: hop_length = n_fft * (1 - overlap)
    scale: str = 'mel'             # mel | linear
    n_mels: int = 64
    f_min: float = 50.0
    f_max: float | None = None     # None = Nyquist
    log: bool = True
    normalize: str = 'window'      # window: standardise each window's log-magnitudes; none
    spatial: str = 'ipd'           # ipd: add cos/sin inter-channel phase channels; none
    echo: bool = True              # add one matched-filter echogram channel per microphone
    chirp_kind: str = 'linear'     # the emitted chirp (must match the simulator / capture node)
    chirp_f_start: float = 500.0
    chirp_f_end: float = 7500.0
    chirp_duration_s: float = 0.01
    chirp_period_s: float = 0.25
    echo_max_s: float = 0.064      # longest echo delay kept (0.064 s = 11 m one way)
    echo_bands: int = 8            # matched-filter bands; few and wide keep ~1 ms delay resolution
    # Look directions of the echo beams in the array frame (x forward = camera axis, z up),
    # paired azimuth/elevation in degrees: a horizontal fan, behind, straight up and down.
    echo_azimuths_deg: tuple[float, ...] = (0.0, 30.0, -30.0, 60.0, -60.0, 90.0, -90.0, 180.0, 0.0, 0.0)
    echo_elevations_deg: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 90.0, -90.0)
    # Direction maps on a grid registered to the camera (see the module docstring).
    direction_maps: bool = False
    map_size: int = 16             # grid cells across the image (= the VQ-VAE manifold size)
    map_margin: int = 2            # extra cells beyond the field of view on each side
    map_hfov_deg: float = 90.0     # the camera's horizontal field of view (square pixels)
    srp_band_edges_hz: tuple[float, ...] = (300.0, 1000.0, 2000.0, 4000.0, 7900.0)
    echo_range_min_m: float = 0.3  # echo range bins: echo_range_bins equal bins from min to max
    echo_range_max_m: float = 8.3
    echo_range_bins: int = 16
    speed_of_sound: float = 343.0
    eps: float = 1e-8

    def __post_init__(self):
        if self.sample_rate <= 0:
            raise ValueError(f'sample_rate must be > 0, got {self.sample_rate}')
        if self.window_s <= 0 or self.hop_s <= 0:
            raise ValueError(f'window_s and hop_s must be > 0, got {self.window_s}, {self.hop_s}')
        if self.n_fft < 16 or self.n_fft & (self.n_fft - 1):
            raise ValueError(f'n_fft must be a power of two >= 16, got {self.n_fft}')
        if not 0.0 <= self.overlap < 1.0:
            raise ValueError(f'overlap must be in [0, 1), got {self.overlap}')
        if self.stft_window not in _WINDOWS:
            raise ValueError(f'stft_window must be one of {sorted(_WINDOWS)}, got {self.stft_window!r}')
        if self.scale not in ('mel', 'linear'):
            raise ValueError(f"scale must be 'mel' or 'linear', got {self.scale!r}")
        if self.normalize not in ('window', 'none'):
            raise ValueError(f"normalize must be 'window' or 'none', got {self.normalize!r}")
        if self.spatial not in ('ipd', 'none'):
            raise ValueError(f"spatial must be 'ipd' or 'none', got {self.spatial!r}")
        if self.window_samples < self.n_fft:
            raise ValueError(f'window ({self.window_samples} samples) shorter than n_fft ({self.n_fft})')
        if self.echo:
            if self.chirp_kind not in ('linear', 'exponential'):
                raise ValueError(f"chirp_kind must be 'linear' or 'exponential', got {self.chirp_kind!r}")
            if not 0 < self.chirp_f_start < self.chirp_f_end <= self.sample_rate / 2:
                raise ValueError(f'chirp band must satisfy 0 < f_start < f_end <= Nyquist, got '
                                 f'{self.chirp_f_start}..{self.chirp_f_end} Hz')
            if not 0 < self.echo_max_s <= self.chirp_period_s <= self.window_s:
                raise ValueError(f'need 0 < echo_max_s <= chirp_period_s <= window_s, got {self.echo_max_s}, '
                                 f'{self.chirp_period_s}, {self.window_s}')
            if len(self.echo_azimuths_deg) != len(self.echo_elevations_deg) or not self.echo_azimuths_deg:
                raise ValueError('echo_azimuths_deg and echo_elevations_deg must be non-empty and of equal length')
            if self.echo_bands < 1:
                raise ValueError(f'echo_bands must be >= 1, got {self.echo_bands}')
            if self.chirp_duration_s >= self.chirp_period_s:
                raise ValueError('chirp_duration_s must be shorter than chirp_period_s')
        if self.direction_maps:
            if self.map_size < 2 or self.map_size % 2 or self.map_margin < 0 or self.map_margin % 2:
                raise ValueError(f'map_size must be even and >= 2, map_margin even and >= 0 (echo maps are '
                                 f'steered on 2 x 2 cell blocks), got {self.map_size}, {self.map_margin}')
            if not 10.0 <= self.map_hfov_deg <= 170.0:
                raise ValueError(f'map_hfov_deg must be in [10, 170], got {self.map_hfov_deg}')
            edges = self.srp_band_edges_hz
            if len(edges) < 2 or any(b <= a for a, b in zip(edges, edges[1:])) or not \
                    0 < edges[0] and edges[-1] <= self.sample_rate / 2:
                raise ValueError(f'srp_band_edges_hz must increase within (0, Nyquist], got {edges}')
            if self.echo and not (0 < self.echo_range_min_m < self.echo_range_max_m
                                  and 2 * self.echo_range_max_m / self.speed_of_sound <= self.echo_max_s
                                  and self.echo_range_bins >= 1):
                raise ValueError(f'echo ranges need 0 < echo_range_min_m < echo_range_max_m, a round trip '
                                 f'within echo_max_s ({self.echo_max_s} s) and echo_range_bins >= 1')

    @property
    def window_samples(self) -> int:
        return int(round(self.window_s * self.sample_rate))

    @property
    def hop_samples(self) -> int:
        return int(round(self.hop_s * self.sample_rate))

    @property
    def hop_length(self) -> int:
        return max(1, int(round(self.n_fft * (1.0 - self.overlap))))

    @property
    def num_bins(self) -> int:
        return self.n_mels if self.scale == 'mel' else self.n_fft // 2 + 1

    @property
    def num_frames(self) -> int:
        return 1 + self.window_samples // self.hop_length  # centred STFT

    def num_spectral_channels(self, num_mics: int) -> int:
        """Channels read by the spectrogram encoder: log-magnitudes, phase differences, echo beams."""
        return (num_mics + (2 * (num_mics - 1) if self.spatial == 'ipd' else 0)
                + (len(self.echo_azimuths_deg) if self.echo else 0))

    @property
    def map_grid(self) -> int:
        """Direction-grid side in cells, margins included."""
        return self.map_size + 2 * self.map_margin

    @property
    def num_direction_maps(self) -> int:
        if not self.direction_maps:
            return 0
        return len(self.srp_band_edges_hz) - 1 + (self.echo_range_bins if self.echo else 0)

    @property
    def map_planes(self) -> int:
        """Trailing (bins, frames) channels that hold the packed direction maps."""
        values = self.num_direction_maps * self.map_grid ** 2
        return math.ceil(values / (self.num_bins * self.num_frames)) if values else 0

    def map_layout(self) -> dict[str, int]:
        """What a network needs to unpack the direction maps (ATNetConfig / EndToEndConfig fields)."""
        return {'map_channels': self.num_direction_maps, 'map_grid': self.map_grid if self.direction_maps else 0,
                'map_margin': self.map_margin if self.direction_maps else 0, 'map_planes': self.map_planes}

    def num_feature_channels(self, num_mics: int) -> int:
        return self.num_spectral_channels(num_mics) + self.map_planes

    def output_shape(self, num_mics: int) -> tuple[int, int, int]:
        """(feature channels, bins, frames) of one window."""
        return (self.num_feature_channels(num_mics), self.num_bins, self.num_frames)


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


def unpack_direction_maps(features: torch.Tensor, num_maps: int, grid: int,
                          planes: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(B, F_ch, bins, frames) -> spectral channels (B, F_ch - planes, bins, frames) and the
    direction maps (B, num_maps, grid, grid) packed in the trailing `planes` channels."""
    if not planes:
        return features, None
    b = features.shape[0]
    packed = features[:, -planes:].reshape(b, -1)[:, :num_maps * grid * grid]
    return features[:, :-planes], packed.reshape(b, num_maps, grid, grid)


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


class SpectrogramFeatures(nn.Module):
    """(B, C, N) audio -> (B, F_ch, bins, frames) network input; see the module docstring.

    `mic_positions` ((C, 3) metres, array frame) is needed for the echo beams.
    """

    def __init__(self, config: FeatureConfig, mic_positions: np.ndarray | None = None):
        super().__init__()
        self.config = config
        self.register_buffer('window', _WINDOWS[config.stft_window](config.n_fft), persistent=False)
        if config.scale == 'mel':
            fb = mel_filterbank(config.n_fft, config.sample_rate, config.n_mels, config.f_min, config.f_max)
            self.register_buffer('filterbank', torch.from_numpy(fb), persistent=False)
        else:
            self.filterbank = None
        if config.echo or config.direction_maps:
            if mic_positions is None:
                raise ValueError('echo and direction-map features need the array geometry (mic_positions)')
            mics = np.asarray(mic_positions, dtype=np.float64).reshape(-1, 3)
            if config.echo:
                self._init_echo(config, mics)
            if config.direction_maps:
                self._init_maps(config, mics)

    def _init_echo(self, cfg: FeatureConfig, mic_positions: np.ndarray) -> None:
        period = int(round(cfg.chirp_period_s * cfg.sample_rate))
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
        self.echo_period = period
        self.echo_keep = int(round(cfg.echo_max_s * cfg.sample_rate))

    def _init_maps(self, cfg: FeatureConfig, mics: np.ndarray) -> None:
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

    def direction_maps(self, audio: torch.Tensor, spec: torch.Tensor | None = None) -> torch.Tensor:
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
        cross = sub[:, self.pair_i] * sub[:, self.pair_j].conj()                          # (B, P, K', T')
        cross = (cross * (1.0 / (cross.abs() + cfg.eps))).mean(dim=-1)                    # PHAT, frame mean
        parts = torch.cat([cross.real, cross.imag], dim=1).permute(2, 0, 1)               # (K', B, 2P)
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
        shift = analytic.abs().sum(dim=1).argmax(dim=-1) - self.map_pre                   # direct path
        idx = (torch.arange(self.echo_keep, device=audio.device)[None] + shift[:, None]) % period
        crop = torch.gather(analytic, 2, idx[:, None, :].expand(b, c, -1))               # (B, C, L)
        bins = torch.fft.fft(crop)[:, :, self.map_crop_bins]                              # (B, C, K)
        stacked = torch.cat([bins.real, bins.imag], dim=1).permute(2, 1, 0)               # (K, 2C, B)
        beams = torch.bmm(self.map_steer, stacked)                                         # (K, 2D, B)
        d = beams.shape[1] // 2
        beams = torch.complex(beams[:, :d], beams[:, d:]).permute(2, 1, 0)                # (B, D, K)
        env = torch.fft.ifft(beams, n=self.map_env_n).abs().square()                      # (B, D, T_env)
        energy = torch.einsum('bdt,tr->brd', env, self.range_pool)                        # (B, R, D/4)
        ref = env.amax(dim=(1, 2))[:, None, None]                                         # direct path
        log_e = torch.log(energy + cfg.eps * ref) - torch.log(ref + cfg.eps)
        g = cfg.map_grid // 2
        log_e = F.interpolate(log_e.reshape(b, -1, g, g), size=(cfg.map_grid, cfg.map_grid), mode='bilinear',
                              align_corners=False)
        return ((log_e.clamp(min=-25.0) + 12.5) / 6.25).flatten(2)                          # (B, R, D)

    def packed_direction_maps(self, audio: torch.Tensor, spec: torch.Tensor | None = None) -> torch.Tensor:
        """The direction maps packed row-major into (B, map_planes, bins, frames), zero-padded."""
        cfg = self.config
        flat = self.direction_maps(audio, spec).flatten(1)
        size = cfg.map_planes * cfg.num_bins * cfg.num_frames
        flat = F.pad(flat, (0, size - flat.shape[1]))
        return flat.reshape(-1, cfg.map_planes, cfg.num_bins, cfg.num_frames)

    def spatial(self, audio: torch.Tensor, spec: torch.Tensor | None = None) -> torch.Tensor:
        """The channels after the spectral ones: echo beams and packed direction maps (may be empty)."""
        parts = []
        if self.config.echo:
            parts.append(self.echogram(audio.float()))
        if self.config.direction_maps:
            parts.append(self.packed_direction_maps(audio, spec))
        if not parts:
            return audio.new_zeros(audio.shape[0], 0, self.config.num_bins, self.config.num_frames)
        return torch.cat(parts, dim=1)

    def echogram(self, audio: torch.Tensor) -> torch.Tensor:
        """(B, C, N) -> (B, U, bins, frames) log echo envelope of each look direction relative
        to the direct path (band index along bins, delay 0..echo_max_s along frames)."""
        cfg, period = self.config, self.echo_period
        b, _, n = audio.shape
        folded = audio[..., :(n // period) * period].reshape(b, audio.shape[1], -1, period).sum(dim=2)  # (B, C, P)
        spec = torch.fft.fft(folded)                                                          # (B, C, P)
        beams = torch.einsum('ucp,bcp->bup', self.echo_steer, spec)                          # (B, U, P)
        env = torch.fft.ifft(beams[:, :, None] * self.echo_filter).abs()                     # (B, U, bands, P)
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

    def stft(self, audio: torch.Tensor) -> torch.Tensor:
        """(B, C, N) -> complex (B, C, n_fft//2+1, frames); channels are folded into the batch."""
        b, c, n = audio.shape
        spec = torch.stft(audio.reshape(b * c, n), n_fft=self.config.n_fft, hop_length=self.config.hop_length,
                          window=self.window, center=True, pad_mode='reflect', return_complex=True)
        return spec.reshape(b, c, *spec.shape[-2:])

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        spec = self.stft(audio.float())           # shared by the spectral channels and the SRP maps
        return torch.cat([self.spectral(audio, spec), self.spatial(audio, spec)], dim=1)

    def spectral(self, audio: torch.Tensor, spec: torch.Tensor | None = None) -> torch.Tensor:
        """The passive part: (B, C, N) -> (B, C + 2(C-1), bins, frames) log-magnitudes and phase differences."""
        cfg = self.config
        spec = self.stft(audio.float()) if spec is None else spec  # (B, C, K, T) complex
        power = spec.real.square() + spec.imag.square()           # (B, C, K, T)
        if self.filterbank is not None:
            power = torch.einsum('mk,bckt->bcmt', self.filterbank, power)
        magnitude = torch.log(power + cfg.eps) if cfg.log else power
        if cfg.normalize == 'window':
            mean = magnitude.mean(dim=(1, 2, 3), keepdim=True)
            std = magnitude.std(dim=(1, 2, 3), keepdim=True)
            magnitude = (magnitude - mean) / (std + 1e-5)
        channels = [magnitude]
        if cfg.spatial == 'ipd' and audio.shape[1] > 1:
            channels += self.phase_differences(spec)
        return torch.cat(channels, dim=1)

    def phase_differences(self, spec: torch.Tensor) -> list[torch.Tensor]:
        """The cos and sin of the band-wise cross-spectrum phase of each mic vs mic 0."""
        cfg = self.config
        cross = spec[:, 1:] * spec[:, :1].conj()                  # (B, C-1, K, T) cross-spectra vs mic 0
        if self.filterbank is not None:
            fb = self.filterbank.to(cross.real.dtype)
            cross = torch.complex(torch.einsum('mk,bckt->bcmt', fb, cross.real),
                                  torch.einsum('mk,bckt->bcmt', fb, cross.imag))
        unit = cross / (cross.abs() + cfg.eps)                    # band-wise phase as a unit phasor
        return [unit.real, unit.imag]


def compute_features(audio: np.ndarray | torch.Tensor, config: FeatureConfig,
                     mic_positions: np.ndarray | None = None) -> torch.Tensor:
    """Convenience wrapper: (C, N) -> (F_ch, bins, frames) or (B, C, N) -> (B, F_ch, bins, frames)."""
    x = torch.as_tensor(np.asarray(audio, dtype=np.float32) if not torch.is_tensor(audio) else audio)
    single = x.dim() == 2
    if single:
        x = x.unsqueeze(0)
    if x.dim() != 3:
        raise ValueError(f'audio must be (C, N) or (B, C, N), got shape {tuple(x.shape)}')
    with torch.inference_mode():
        out = SpectrogramFeatures(config, mic_positions)(x)
    return out[0] if single else out
