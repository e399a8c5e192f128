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
Everything is batched torch ops: no Python loops over channels or frames.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from audio_vision.core.chirp import chirp_pulse

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

    def num_feature_channels(self, num_mics: int) -> int:
        return (num_mics + (2 * (num_mics - 1) if self.spatial == 'ipd' else 0)
                + (len(self.echo_azimuths_deg) if self.echo else 0))

    def output_shape(self, num_mics: int) -> tuple[int, int, int]:
        """(feature channels, bins, frames) of one window."""
        return (self.num_feature_channels(num_mics), self.num_bins, self.num_frames)


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
        if config.echo:
            if mic_positions is None:
                raise ValueError('echo features need the array geometry (mic_positions)')
            self._init_echo(config, np.asarray(mic_positions, dtype=np.float64).reshape(-1, 3))

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
        channels = [self.spectral(audio)]
        if self.config.echo:
            channels.append(self.echogram(audio.float()))
        return torch.cat(channels, dim=1)

    def spectral(self, audio: torch.Tensor) -> torch.Tensor:
        """The passive part: (B, C, N) -> (B, C + 2(C-1), bins, frames) log-magnitudes and phase differences."""
        cfg = self.config
        spec = self.stft(audio.float())                           # (B, C, K, T) complex
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
        """cos and sin of the band-wise cross-spectrum phase of each mic vs mic 0."""
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

