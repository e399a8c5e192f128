# SPDX-License-Identifier: Apache-2.0
"""The layout prior: the room the sonar front-end measures from the chirp's echoes, rendered into the camera at
image resolution, as network input (``FeatureConfig.layout_prior``).

Per window, :class:`audio_vision.sonar.LayoutEstimator` fits floor, ceiling and walls (no learning) and
:func:`audio_vision.sonar.render_layout` casts every pixel's ray against them. The images, in channel order
(:data:`~.config.LAYOUT_PRIOR_MAPS`, then :data:`~.config.REFLECTOR_MAPS`):

- ``log_depth``: log of the prior's z-depth (m), 0 where no plane is seen (an unmeasured side of the box);
- ``seen``: 1 where the prior has a plane, else 0;
- ``wall`` / ``floor`` / ``ceiling``: the class prior, one-hot;
- ``confidence``: the confidence of the plane the pixel sees;
- (``layout+reflectors``) ``reflector_log_depth`` / ``reflector_strength``: the echoes no plane explains (bodies,
  edges) splatted at their sub-pixel position (:func:`audio_vision.sonar.render_reflectors`): log z-depth and
  log(1 + CFAR contrast), 0 elsewhere.

The front-end is numpy (and numba) per window, not a torch graph: :attr:`LayoutPriorMaps.traceable` is False, so
the inference backends run it eagerly and trace only what follows it.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from audio_vision.core.camera import PinholeCamera
from audio_vision.core.classes import DEFAULT_CLASS_TABLE
from audio_vision.core.features.config import FeatureConfig
from audio_vision.core.features.packing import pack_maps


#: The sonar front-end's revision, bumped when what it measures changes (not when it only gets faster with the
#: same output), so that feature caches made by an older front-end are recomputed (training/data.py keys them
#: with it). 2: the walls' evidence refined coarse to fine (docs/SONAR.md, "Speed"). 3: a quarter-
#: period gate, walls to 8 m and fewer refined wall candidates (chosen on validation windows, same docs). 4: where no
#: wall was measured the open boundary is a cylinder at the reach (the box has no orientation), and reflectors are
#: placed coarse to fine (docs/SONAR.md). 5: the chosen ceiling confirmed from the vertical (ceiling_confirm_share 0.7)
#: and, where no ceiling was measured, the walls drawn only up to 1 m above the array (docs/SONAR.md, "Ceiling
#: confirmation"). 6: a wall measured beyond 5 m not drawn, its side open at the reach (docs/SONAR.md, "Walls
#: beyond the reach"; no window of data/default's train and val splits has one: the features the shipped models
#: were trained on are revision 6's too). 7, 8 and 9 (lower far wall thresholds; 9 with the residue and pair-multiple
#: tests) were tried and not shipped (docs/SONAR.md, "Revision 9").
FRONT_END_REVISION = 6


def sonar_config_of(config: FeatureConfig):
    """The sonar front-end for the chirp, speaker and sample rate the features were made for."""
    from audio_vision.sonar import SonarConfig
    reflectors = {} if config.layout_prior == 'layout+reflectors' else {'max_reflectors': 0}   # skip their scan
    return SonarConfig(sample_rate=config.sample_rate, chirp_kind=config.chirp_kind,
                       chirp_f_start=config.chirp_f_start, chirp_f_end=config.chirp_f_end,
                       chirp_duration_s=config.chirp_duration_s, chirp_period_s=config.chirp_period_s,
                       speaker_position=tuple(config.speaker_position), speed_of_sound=config.speed_of_sound,
                       **reflectors)


def _log_depth(depth: np.ndarray) -> np.ndarray:
    """The log of a z-depth image (m), 0 where it is NaN (nothing there)."""
    seen = np.isfinite(depth)
    return np.where(seen, np.log(np.where(seen, np.maximum(depth, 1e-3), 1.0)), 0.0)


def prior_images(layout, camera: PinholeCamera, reflectors: bool, **render_options) -> np.ndarray:
    """(maps, H, W) float32 network input of one measured :class:`~audio_vision.sonar.RoomLayout`;
    ``render_options``: keyword arguments of :func:`audio_vision.sonar.render_layout` (its defaults: the shipped
    front-end's render)."""
    from audio_vision.sonar import render_layout, render_reflectors
    table = DEFAULT_CLASS_TABLE
    prior = render_layout(layout, camera, table, **render_options)
    maps = [_log_depth(prior.depth), np.isfinite(prior.depth)]
    maps += [prior.classes == table.id_of(name) for name in ('wall', 'floor', 'ceiling')] + [prior.confidence]
    if reflectors:
        r = render_reflectors(layout, camera)
        maps += [_log_depth(r.depth), np.log1p(r.strength)]
    return np.stack(maps).astype(np.float32)


class LayoutPriorMaps(nn.Module):
    """(B, C, N) audio -> (B, num_prior_maps, S, S) layout prior (module docstring); :meth:`channels` packs them for
    the feature stack. ``mic_positions``: (C, 3) metres in the array frame."""

    uses_stft = False
    traceable = False            # numpy per window: the backends run it eagerly

    def __init__(self, config: FeatureConfig, mic_positions: np.ndarray, calibration=None):
        super().__init__()
        from audio_vision.sonar import LayoutEstimator
        if config.layout_prior == 'none':
            raise ValueError("LayoutPriorMaps needs FeatureConfig.layout_prior 'layout' or 'layout+reflectors'")
        self.config = config
        sonar = sonar_config_of(config)
        if calibration is not None:
            calibration.check(sonar)          # refuses a response measured for another chirp
        self.estimator = LayoutEstimator(sonar, mic_positions, calibration)
        self.camera = PinholeCamera(config.prior_size, config.prior_size, config.map_hfov_deg)
        self.reflectors = config.layout_prior == 'layout+reflectors'
        self.drive = None                     # layout_fusion: the drive so far (audio_vision.sonar.fusion)
        if config.layout_fusion:
            from audio_vision.sonar.fusion import DriveFusion
            self.drive = DriveFusion(config.layout_fusion_keyframe_m, config.layout_fusion_keyframes)
        self._odometry = None                 # the next batch's (poses, drive ids), set_odometry

    def set_odometry(self, poses, drives=None) -> None:
        """With ``layout_fusion``: the poses (4 x 4 array frame -> odometry frame, or None where there is no
        odometry) of the next batch's windows, and which drive each belongs to (any hashable; the drive restarts
        where it changes, e.g. a new room or an odometry reset). Read by the next forward call only; a batch
        without them is fused as windows without odometry (each its room alone)."""
        poses = list(poses)
        drives = [self.drive.drive if self.drive else None] * len(poses) if drives is None else list(drives)
        if len(drives) != len(poses):
            raise ValueError(f'{len(poses)} poses but {len(drives)} drive ids')
        self._odometry = (poses, drives)

    def _layouts(self, windows: np.ndarray) -> list:
        """Each window's room: its own measurement, or (``layout_fusion``) fused over the drive so far."""
        layouts = [self.estimator.estimate(w) for w in windows]
        if self.drive is None:
            return layouts
        poses, drives = self._odometry or ([None] * len(windows), [None] * len(windows))
        self._odometry = None
        if len(poses) != len(windows):
            raise ValueError(f'set_odometry gave {len(poses)} poses for a batch of {len(windows)} windows')
        return [self.drive.fuse(layout, pose, drive) for layout, pose, drive in zip(layouts, poses, drives)]

    def share_estimates(self):
        """The front-end's measurements, shared from now on with whoever else measures the same windows in this
        process (:class:`audio_vision.sonar.shared.SharedEstimates`; the same object on every call)."""
        from audio_vision.sonar.shared import SharedEstimates
        if not isinstance(self.estimator, SharedEstimates):
            self.estimator = SharedEstimates(self.estimator)
        return self.estimator

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        windows = audio.detach().cpu().double().numpy()
        maps = [prior_images(layout, self.camera, self.reflectors) for layout in self._layouts(windows)]
        return torch.from_numpy(np.stack(maps)).to(audio.device)

    def channels(self, audio: torch.Tensor, spec: torch.Tensor | None = None) -> torch.Tensor:
        """The prior packed row-major into (B, prior_planes, bins, frames), zero-padded."""
        cfg = self.config
        return pack_maps(self(audio), cfg.prior_planes, cfg.num_bins, cfg.num_frames)
