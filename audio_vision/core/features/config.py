# SPDX-License-Identifier: Apache-2.0
"""What the features are: :class:`FeatureConfig`, stored with every checkpoint (its fields are a file format).

Which modules it switches on (:class:`audio_vision.core.features.stack.FeatureStack`): the log spectrogram always,
the phase differences (``spatial: ipd``), the echo beams (``echo``), the direction maps (``direction_maps``), the
layout prior (``layout_prior``); and how many channels of which shape they make (:meth:`FeatureConfig.output_shape`).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from audio_vision.core.features.packing import planes_for

#: STFT window functions by name (``FeatureConfig.stft_window``)
STFT_WINDOWS = {
    'hann': torch.hann_window,
    'hamming': torch.hamming_window,
    'blackman': torch.blackman_window,
}


#: ``FeatureConfig.layout_prior`` choices
LAYOUT_PRIORS = ('none', 'layout', 'layout+reflectors')
#: the layout prior's images, in channel order (:mod:`.layout_prior`)
LAYOUT_PRIOR_MAPS = ('log_depth', 'seen', 'wall', 'floor', 'ceiling', 'confidence')
#: ... then, with ``layout+reflectors``, the residual reflectors'
REFLECTOR_MAPS = ('reflector_log_depth', 'reflector_strength')


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
    spatial: str = 'ipd'           # ipd: add the phase differences (cos/sin per mic pair); none
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
    # Layout prior (:mod:`.layout_prior`): the room the sonar front-end (audio_vision.sonar) measures from the
    # chirp's echoes, rendered into the camera at image resolution: 'none', 'layout' (depth, class and confidence
    # priors) or 'layout+reflectors' (and the residual reflectors: the echoes no plane explains).
    layout_prior: str = 'none'
    prior_size: int = 64           # rendered image side in pixels (= the camera's; hfov: map_hfov_deg)
    # The prior of a window is the room fused over the drive so far (audio_vision.sonar.fusion.DriveFusion: the
    # windows' layouts placed with odometry, a keyframe every layout_fusion_keyframe_m, at most
    # layout_fusion_keyframes); False: each window's own layout. Training data fuse each room's windows in order
    # with the simulator's poses; the perception node with its odometry.
    layout_fusion: bool = False
    layout_fusion_keyframe_m: float = 0.3
    layout_fusion_keyframes: int = 16
    speaker_position: tuple[float, float, float] = (0.0, 0.0, 0.0)   # the chirp's speaker, array frame, m
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
        if self.stft_window not in STFT_WINDOWS:
            raise ValueError(f'stft_window must be one of {sorted(STFT_WINDOWS)}, got {self.stft_window!r}')
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

        if self.layout_prior not in LAYOUT_PRIORS:
            raise ValueError(f'layout_prior must be one of {LAYOUT_PRIORS}, got {self.layout_prior!r}')
        if self.layout_prior != 'none':
            if self.prior_size < 8:
                raise ValueError(f'prior_size must be >= 8 pixels, got {self.prior_size}')
            if not 10.0 <= self.map_hfov_deg <= 170.0:
                raise ValueError(f'map_hfov_deg must be in [10, 170], got {self.map_hfov_deg}')
            if len(self.speaker_position) != 3:
                raise ValueError(f'speaker_position must be [x, y, z], got {self.speaker_position}')
        if self.layout_fusion:
            if self.layout_prior == 'none':
                raise ValueError("layout_fusion fuses the layout prior: it needs layout_prior 'layout' or "
                                 "'layout+reflectors'")
            if self.layout_fusion_keyframe_m < 0 or self.layout_fusion_keyframes < 1:
                raise ValueError(f'layout_fusion_keyframe_m must be >= 0 and layout_fusion_keyframes >= 1, got '
                                 f'{self.layout_fusion_keyframe_m}, {self.layout_fusion_keyframes}')

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
        """Channels before the packed direction maps, which the networks' spectrogram encoder reads: log-magnitudes,
        phase differences (``spatial``), echo beams (``echo``)."""
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
    def num_srp_maps(self) -> int:
        """The leading direction maps that are SRP-PHAT band maps (the chirp's echo maps follow them)."""
        return len(self.srp_band_edges_hz) - 1 if self.direction_maps else 0

    @property
    def map_planes(self) -> int:
        """(bins, frames) channels that hold the packed direction maps (before the prior's)."""
        return planes_for(self.num_direction_maps, self.map_grid, self.num_bins, self.num_frames)

    @property
    def num_prior_maps(self) -> int:
        """Layout-prior images (:data:`LAYOUT_PRIOR_MAPS`, :data:`REFLECTOR_MAPS`)."""
        return {'none': 0, 'layout': len(LAYOUT_PRIOR_MAPS),
                'layout+reflectors': len(LAYOUT_PRIOR_MAPS) + len(REFLECTOR_MAPS)}[self.layout_prior]

    @property
    def prior_planes(self) -> int:
        """Trailing (bins, frames) channels that hold the packed layout prior."""
        return planes_for(self.num_prior_maps, self.prior_size, self.num_bins, self.num_frames)

    def map_layout(self) -> dict[str, int]:
        """What a network needs to unpack the direction maps (ATNetConfig / EndToEndConfig fields)."""
        return {'map_channels': self.num_direction_maps, 'map_grid': self.map_grid if self.direction_maps else 0,
                'map_margin': self.map_margin if self.direction_maps else 0, 'map_planes': self.map_planes,
                'map_srp': self.num_srp_maps}

    def prior_layout(self) -> dict[str, int]:
        """What a network needs to unpack the layout prior (ATNetConfig / EndToEndConfig fields)."""
        on = self.layout_prior != 'none'
        return {'prior_channels': self.num_prior_maps, 'prior_size': self.prior_size if on else 0,
                'prior_planes': self.prior_planes}

    def num_feature_channels(self, num_mics: int) -> int:
        return self.num_spectral_channels(num_mics) + self.map_planes + self.prior_planes

    def output_shape(self, num_mics: int) -> tuple[int, int, int]:
        """(feature channels, bins, frames) of one window."""
        return (self.num_feature_channels(num_mics), self.num_bins, self.num_frames)
