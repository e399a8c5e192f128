# SPDX-License-Identifier: Apache-2.0
"""The network's view of one analysis window of multichannel audio: :class:`FeatureStack`.

A stack of feature modules, each a room of its own, whose channels are concatenated in this order on the
spectrogram's (bins, frames) grid (:class:`audio_vision.core.features.config.FeatureConfig` switches them):

1. the log (mel) spectrogram of every microphone (:mod:`.spectrogram`, always);
2. the inter-microphone phase differences (:mod:`.phase`, ``spatial: ipd``);
3. the echo beams, one echogram per look direction (:mod:`.echogram`, ``echo``);
4. the direction maps registered to the camera, packed into the next ``map_planes`` channels
   (:mod:`.direction_maps`, ``direction_maps``; :mod:`.packing`);
5. the layout prior, the room the sonar front-end measures rendered at image resolution, packed into the trailing
   ``prior_planes`` channels (:mod:`.layout_prior`, ``layout_prior``).

The STFT is computed once and shared by the modules that read it. :meth:`FeatureStack.group` makes a module of
some of the stack's modules (their channels, in the stack's order): the ``-parallel`` inference backends run two
such groups on two workers. Everything is batched torch ops: no Python loops over channels or frames.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from audio_vision.core.features.config import FeatureConfig
from audio_vision.core.features.direction_maps import DirectionMaps
from audio_vision.core.features.echogram import EchoBeams
from audio_vision.core.features.layout_prior import LayoutPriorMaps
from audio_vision.core.features.phase import PhaseDifferences
from audio_vision.core.features.spectrogram import STFT, LogSpectrogram


def _channels(stft: nn.Module, parts, audio: torch.Tensor) -> torch.Tensor:
    """The channels of ``parts`` for (B, C, N) audio, concatenated; the STFT computed once if any part reads it."""
    audio = audio.float()
    spec = stft(audio) if any(p.uses_stft for p in parts) else None
    return torch.cat([p.channels(audio, spec) for p in parts], dim=1)


def traceable(parts) -> bool:
    """Whether a torch trace reproduces these modules (the layout prior is numpy per window: not)."""
    return all(getattr(p, 'traceable', True) for p in parts)


class FeatureGroup(nn.Module):
    """Some modules of a :class:`FeatureStack` as one module: (B, C, N) audio -> their channels, concatenated."""

    def __init__(self, stft: nn.Module, parts):
        super().__init__()
        self.stft = stft
        self.parts = nn.ModuleList(parts)
        self.traceable = traceable(parts)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        return _channels(self.stft, list(self.parts), audio)


class FeatureStack(nn.Module):
    """(B, C, N) audio -> (B, F_ch, bins, frames) network input; see the module docstring.

    ``mic_positions`` ((C, 3) metres, array frame) is needed for the echo beams, the direction maps and the layout
    prior; ``calibration`` (:class:`audio_vision.sonar.calibration.SpeakerCalibration`, or None for an ideal speaker)
    is the speaker's measured response the layout prior's matched filter uses.
    """

    def __init__(self, config: FeatureConfig, mic_positions: np.ndarray | None = None, calibration=None):
        super().__init__()
        self.config = config
        if (config.echo or config.direction_maps or config.layout_prior != 'none') and mic_positions is None:
            raise ValueError('echo, direction-map and layout-prior features need the array geometry (mic_positions)')
        self.stft = STFT(config)
        self.spectrogram = LogSpectrogram(config)
        self.phase_differences = PhaseDifferences(config) if config.spatial == 'ipd' else None
        self.echo_beams = EchoBeams(config, mic_positions) if config.echo else None
        self.direction_maps = DirectionMaps(config, mic_positions) if config.direction_maps else None
        self.layout_prior = (LayoutPriorMaps(config, mic_positions, calibration)
                             if config.layout_prior != 'none' else None)

    @property
    def parts(self) -> list[nn.Module]:
        """The feature modules switched on, in channel order."""
        return [m for m in (self.spectrogram, self.phase_differences, self.echo_beams, self.direction_maps,
                            self.layout_prior) if m is not None]

    @property
    def traceable(self) -> bool:
        return traceable(self.parts)

    def group(self, parts) -> FeatureGroup:
        """A module computing the channels of ``parts`` (some of :attr:`parts`, in their order)."""
        return FeatureGroup(self.stft, parts)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        return _channels(self.stft, self.parts, audio)


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
        out = FeatureStack(config, mic_positions)(x)
    return out[0] if single else out
