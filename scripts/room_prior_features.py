#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A dataset whose layout prior is another room than one window's measurement: the exact room, or the measured one
fused over a drive. What the networks would score were every plane measured, or were the planes of earlier windows
kept.

Issue #22's depth bars sit near what the exact room alone scores (docs/SONAR.md, the ``exact_shell`` rows), and the
front-end measures no wall in about half of the walls' quadrants (mostly walls beyond 2.5 m, docs/SONAR.md "Walls by
range"). Whether a front-end that heard every wall would carry the method to the bars, or whether the bodies and the
networks would still miss them, is measured by training the method on features whose layout prior is rendered from
the simulator's true room (every wall, floor and ceiling, confidence 1) and scoring it on the test split's windows
with the same exact prior (``--room exact``). The residual reflectors stay the front-end's own (the bodies are still
only echoes). ``--room audible``: the exact room less the ceilings that reflect almost nothing in the band where the
array resolves elevation (what an ideal front-end could hear at best). ``--room fused``: the front-end's layouts
fused over the windows of each room so far (the dataset's poses of a room in its order, a drive with the simulator's
exact poses as odometry, causal:
:class:`audio_vision.sonar.fusion.DriveFusion`, as ``scripts/eval_sonar.py``'s ``layout_fused`` row), what a node
with odometry could give the networks (the study that led to ``FeatureConfig.layout_fusion``).

This script writes that dataset: ``--out`` holds links to ``--data``'s files and its own ``features_cache/``, each
split's cached features (computed first where missing) with the layout-prior maps replaced, under the same cache key,
so ``train`` and ``evaluate`` read it unchanged (``--data OUT``). Nothing here is shipped: it is a study's oracle.

    .venv/bin/python scripts/room_prior_features.py --room exact --data data/default --out data/exact_room
    .venv/bin/python scripts/room_prior_features.py --room fused --data data/default --out data/fused_room
"""
from __future__ import annotations

import argparse
import dataclasses
import os
from pathlib import Path

import numpy as np
import torch
from numpy.lib.format import open_memmap
from tqdm import tqdm

from audio_vision.core.camera import PinholeCamera
from audio_vision.core.features.config import LAYOUT_PRIOR_MAPS, FeatureConfig
from audio_vision.core.features.layout_prior import LayoutPriorMaps, prior_images
from audio_vision.core.features.packing import pack_maps, unpack_maps
from audio_vision.dataset import DatasetReader
from audio_vision.dataset.files import link_dataset
from audio_vision.simulation.acoustics import band_absorption
from audio_vision.sonar import CEILING, true_layout
from audio_vision.sonar.fusion import DriveFusion
from audio_vision.training.config import TrainConfig
from audio_vision.training.data import drive_pose, feature_cache_path, load_split

#: ``--room audible``: a ceiling that absorbs at least this share of the energy of the chirp's octave bands from
#: ELEVATION_HZ up (where the array's 0.1 m between rings tells up from sideways) is left out, as one the front-end
#: cannot hear (scripts/ceiling_material_probe.py measures which ceilings it misses, by material)
ELEVATION_HZ = 2000.0
SILENT_CEILING_ABSORPTION = 0.9


def exact_prior_maps(camera_pose: np.ndarray, room_size, camera: PinholeCamera, ceiling: bool = True) -> np.ndarray:
    """(len(LAYOUT_PRIOR_MAPS), S, S) float32: the layout prior's maps of the true room (every plane, confidence
    1), in :func:`audio_vision.core.features.layout_prior.prior_images`'s order. Without ``ceiling`` the room is
    rendered as the front-end's is where it measured no ceiling (the walls drawn up to ``render_layout``'s
    ``open_ceiling_above_m``)."""
    room = true_layout(camera_pose, room_size)             # every plane at confidence 1
    if not ceiling:
        room = dataclasses.replace(room, planes=tuple(p for p in room.planes if p.label != CEILING))
    return prior_images(room, camera, reflectors=False, wall_reach_m=None)


class FusedRoomMaps:
    """The front-end's layout of each window fused with the earlier windows of its room (call in the dataset's
    order): (len(LAYOUT_PRIOR_MAPS), S, S) float32 maps of the fused room, as the feature stack renders one window's.
    ``estimator``: the features' own front-end (:class:`~audio_vision.sonar.LayoutEstimator`)."""

    def __init__(self, estimator, camera: PinholeCamera):
        # every window a keyframe (the study predates the keyframes of FeatureConfig.layout_fusion, which the
        # shipped features use: the same fusion but where a room's pose lies within 0.3 m of an earlier one, 2 of the
        # test split's first 400 windows)
        self.estimator, self.camera, self.drive = estimator, camera, DriveFusion(keyframe_m=0.0)

    def __call__(self, item: dict) -> np.ndarray:
        fused = self.drive.fuse(self.estimator.estimate(item['audio'].astype(np.float64)), drive_pose(item),
                                int(item['room_id']))
        return prior_images(fused, self.camera, reflectors=False)


def with_room_prior(features: np.ndarray, room_maps: np.ndarray, config: FeatureConfig) -> np.ndarray:
    """(B, F_ch, bins, frames) cached features with their layout-prior maps replaced by ``room_maps`` (B,
    len(LAYOUT_PRIOR_MAPS), S, S); the reflector maps, if any, kept."""
    head, maps = unpack_maps(torch.from_numpy(np.asarray(features, dtype=np.float32)), config.num_prior_maps,
                             config.prior_size, config.prior_planes)
    maps = maps.clone()
    maps[:, :len(LAYOUT_PRIOR_MAPS)] = torch.from_numpy(room_maps)
    packed = pack_maps(maps, config.prior_planes, config.num_bins, config.num_frames)
    return torch.cat([head, packed], dim=1).half().numpy()


def write_split(src: Path, out: Path, split: str, config: FeatureConfig, room: str, batch: int,
                progress: bool) -> Path:
    reader = DatasetReader(src, split)
    mics = np.asarray(reader.mic_positions, dtype=np.float64)
    source = feature_cache_path(src, split, config, mics, reader.card.get('content_hash'))
    if not source.is_file():
        load_split(src, split, config, progress=progress)        # computes and caches the measured features
    cached = np.load(source, mmap_mode='r')
    target = feature_cache_path(out, split, config, mics, reader.card.get('content_hash'))
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(f'.{os.getpid()}.tmp.npy')
    dest = open_memmap(tmp, mode='w+', dtype=cached.dtype, shape=cached.shape)
    camera = PinholeCamera(config.prior_size, config.prior_size, config.map_hfov_deg)
    if room == 'fused':
        fused = FusedRoomMaps(LayoutPriorMaps(config, mics).estimator, camera)
        maps_of = lambda i: fused(reader[i])  # noqa: E731
    else:
        def maps_of(i):
            item, ceiling = reader[i], True
            if room == 'audible':
                material = reader.metadata(i)['scene']['room']['materials']['ceiling']
                ceiling = band_absorption(material, max(ELEVATION_HZ, config.chirp_f_start),
                                          config.chirp_f_end) < SILENT_CEILING_ABSORPTION
            return exact_prior_maps(item['camera_pose'], item['room_size'], camera, ceiling)
    for start in tqdm(range(0, len(reader), batch), desc=f'{room} room {split}', unit='batch', disable=not progress):
        stop = min(len(reader), start + batch)
        maps = np.stack([maps_of(i) for i in range(start, stop)])
        dest[start:stop] = with_room_prior(cached[start:stop], maps, config)
    dest.flush()
    del dest
    tmp.replace(target)
    return target


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--room', choices=['exact', 'audible', 'fused'], required=True,
                        help="the simulator's exact room; the same less the ceilings that absorb the elevation band; "
                             "or the front-end's layouts fused over each room's windows")
    parser.add_argument('--data', type=Path, default=Path('data/default'))
    parser.add_argument('--out', type=Path, required=True)
    parser.add_argument('--config', type=Path, default=Path('config/train.yaml'),
                        help="training config whose features are rewritten (its layout_prior must not be 'none')")
    parser.add_argument('--splits', nargs='+', default=['train', 'val', 'test'])
    parser.add_argument('--batch', type=int, default=256)
    parser.add_argument('--no-progress', action='store_true')
    args = parser.parse_args(argv)
    config = TrainConfig.from_yaml(args.config).features
    if config.layout_prior == 'none':
        parser.error(f'{args.config} has no layout prior to replace (features.layout_prior: none)')
    if args.out.resolve() == args.data.resolve():
        parser.error('--out must not be --data: the measured features would be overwritten')
    link_dataset(args.data, args.out)
    for split in args.splits:
        print(write_split(args.data, args.out, split, config, args.room, args.batch, not args.no_progress))


if __name__ == '__main__':
    main()
