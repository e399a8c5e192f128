# SPDX-License-Identifier: Apache-2.0
"""The sonar front-end on a dataset split: its rendered priors as the "layout (model-based)" baseline row
(depth prior; segmentation from the class prior, no learning) and its layout errors against the simulator's
exact room (floor, ceiling, each wall's distance along its true normal, wall orientation)."""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from audio_vision.dataset import DatasetReader
from audio_vision.sonar import (LayoutEstimator, SonarConfig, layout_errors, render_layout, summarize_errors,
                                true_layout)
from audio_vision.sonar.fusion import DriveFusion
from audio_vision.training.data import drive_pose


@dataclass
class LayoutPredictions:
    depth: np.ndarray             # (N, H, W) float32, NaN where no plane was measured
    segmentation: np.ndarray      # (N, H, W) uint8 (wall where no plane was measured)
    errors: dict                  # summarize_errors(...) + failed-window share
    seconds_per_window: float
    reflectors_per_window: float = 0.0     # residual reflectors the front-end found, mean per window
    fused: 'LayoutPredictions | None' = None   # the same windows fused over each room's poses (``fuse``)
    layouts: list = field(default_factory=list)   # per window the front-end's RoomLayout (its floor: evaluate)


def sonar_config_for(reader: DatasetReader) -> SonarConfig:
    """The front-end for the chirp, speaker and sample rate the dataset was recorded with."""
    sim = reader.card.get('generator', {}).get('config') or {}
    if 'chirp' not in sim:
        raise ValueError(f'{reader.path}: the card records no emitter (chirp); the layout needs a simulated dataset')
    return SonarConfig.from_emitter(sim['chirp'], reader.sample_rate)


def predict_layout(data_dir: str | Path, split: str = 'test', limit: int | None = None,
                   progress: bool = True, calibration=None, fuse: bool = False, keyframe_m: float = 0.0,
                   max_keyframes: int = 32, sonar_overrides: dict | None = None,
                   render_options: dict | None = None) -> LayoutPredictions:
    """``calibration``: the speaker's measured response (:class:`~audio_vision.sonar.calibration.SpeakerCalibration`)
    or None (an ideal speaker). ``fuse``: also each window fused with the earlier windows of its room (a drive
    through the room's poses, in the dataset's order, with the simulator's exact poses as odometry; causal:
    :class:`~audio_vision.sonar.fusion.DriveFusion` with ``keyframe_m`` and ``max_keyframes``, 0 and 32: every
    window a keyframe; a model's ``FeatureConfig.layout_fusion_*``: the room its features hold).
    ``sonar_overrides``: SonarConfig fields replaced (the front-end's knobs, scripts/sonar_speed_sweep.py);
    ``render_options``: keyword arguments of :func:`~audio_vision.sonar.render_layout` (its knobs)."""
    reader = DatasetReader(data_dir, split)
    n = len(reader) if limit is None else min(limit, len(reader))
    camera = reader.layout.camera
    table = reader.class_table
    estimator = LayoutEstimator(dataclasses.replace(sonar_config_for(reader), **(sonar_overrides or {})),
                                reader.mic_positions, calibration)
    wall = table.id_of('wall')
    drive = DriveFusion(keyframe_m, max_keyframes)
    rows = {'single': ([], [], [], [0]), 'fused': ([], [], [], [0])}    # depth, seg, errors, failed windows

    def put(key, layout, truth):
        depth, seg, errors, failed = rows[key]
        prior = render_layout(layout, camera, table, **(render_options or {}))
        depth.append(prior.depth)
        seg.append(np.where(prior.classes == 255, wall, prior.classes).astype(np.uint8))
        errors.append(layout_errors(layout, truth))
        failed[0] += bool(layout.failed)

    seconds, reflectors, layouts = 0.0, 0, []
    for i in tqdm(range(n), desc=f'layout {split}', unit='window', disable=not progress, leave=False):
        item = reader[i]
        t0 = time.perf_counter()
        estimate = estimator.estimate(item['audio'])
        seconds += time.perf_counter() - t0
        reflectors += len(estimate.reflectors)
        layouts.append(estimate)
        truth = true_layout(item['camera_pose'], item['room_size'])
        put('single', estimate, truth)
        if fuse:
            # each room's windows in order are a drive, the simulator's exact poses its odometry
            put('fused', drive.fuse(estimate, drive_pose(item), int(item['room_id'])), truth)

    def result(key):
        depth, seg, errors, failed = rows[key]
        summary = summarize_errors(errors)
        summary['failed_windows'] = failed[0] / max(n, 1)
        return LayoutPredictions(np.stack(depth), np.stack(seg), summary, seconds / max(n, 1), reflectors / max(n, 1))

    out = result('single')
    out.layouts = layouts
    out.fused = result('fused') if fuse else None
    return out
