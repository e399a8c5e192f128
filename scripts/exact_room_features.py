#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A dataset whose layout prior is the exact room: what the networks would score were every plane measured.

Issue #22's depth bars sit near what the exact room alone scores (docs/SONAR.md, the ``exact_shell`` rows), and the
front-end measures no wall in about half of the walls' quadrants (mostly walls beyond 2.5 m, docs/SONAR.md "Walls by
range"). Whether a front-end that heard every wall would carry the method to the bars, or whether the bodies and the
networks would still miss them, is measured by training the method on features whose layout prior is rendered from
the simulator's true room (every wall, floor and ceiling, confidence 1) and scoring it on the test split's windows
with the same exact prior. The residual reflectors stay the front-end's own (the bodies are still only echoes).

This script writes that dataset: ``--out`` holds links to ``--data``'s files and its own ``features_cache/``, each
split's cached features (computed first where missing) with the layout-prior maps replaced, under the same cache key,
so ``train`` and ``evaluate`` read it unchanged (``--data OUT``). Nothing here is shipped: it is a study's oracle.

    .venv/bin/python scripts/exact_room_features.py --data data/default --out data/exact_room
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import torch
from numpy.lib.format import open_memmap
from tqdm import tqdm

from audio_vision.core.camera import PinholeCamera
from audio_vision.core.classes import DEFAULT_CLASS_TABLE
from audio_vision.core.features.config import LAYOUT_PRIOR_MAPS, FeatureConfig
from audio_vision.core.features.layout_prior import _log_depth
from audio_vision.core.features.packing import pack_maps, unpack_maps
from audio_vision.dataset import DatasetReader
from audio_vision.sonar import render_layout, true_layout
from audio_vision.training.config import TrainConfig
from audio_vision.training.data import feature_cache_path, load_split


def exact_prior_maps(camera_pose: np.ndarray, room_size, camera: PinholeCamera) -> np.ndarray:
    """(len(LAYOUT_PRIOR_MAPS), S, S) float32: the layout prior's maps of the true room (every plane, confidence
    1), in :func:`audio_vision.core.features.layout_prior.prior_images`'s order."""
    table = DEFAULT_CLASS_TABLE
    prior = render_layout(true_layout(camera_pose, room_size), camera, table, wall_reach_m=None)
    seen = np.isfinite(prior.depth)
    maps = [_log_depth(prior.depth), seen]
    maps += [prior.classes == table.id_of(name) for name in ('wall', 'floor', 'ceiling')] + [seen]
    return np.stack(maps).astype(np.float32)


def with_exact_prior(features: np.ndarray, items: list[dict], config: FeatureConfig,
                     camera: PinholeCamera) -> np.ndarray:
    """(B, F_ch, bins, frames) cached features with their layout-prior maps replaced by the exact room's (the
    reflector maps, if any, kept)."""
    head, maps = unpack_maps(torch.from_numpy(np.asarray(features, dtype=np.float32)), config.num_prior_maps,
                             config.prior_size, config.prior_planes)
    maps = maps.clone()
    exact = np.stack([exact_prior_maps(it['camera_pose'], it['room_size'], camera) for it in items])
    maps[:, :len(LAYOUT_PRIOR_MAPS)] = torch.from_numpy(exact)
    packed = pack_maps(maps, config.prior_planes, config.num_bins, config.num_frames)
    return torch.cat([head, packed], dim=1).half().numpy()


def link_dataset(src: Path, out: Path) -> None:
    """``out`` with a link to every entry of ``src`` but its feature cache."""
    out.mkdir(parents=True, exist_ok=True)
    for entry in src.iterdir():
        target = out / entry.name
        if entry.name == 'features_cache' or target.exists() or target.is_symlink():
            continue
        target.symlink_to(entry.resolve())


def write_split(src: Path, out: Path, split: str, config: FeatureConfig, batch: int, progress: bool) -> Path:
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
    for start in tqdm(range(0, len(reader), batch), desc=f'exact room {split}', unit='batch', disable=not progress):
        stop = min(len(reader), start + batch)
        items = [reader[i] for i in range(start, stop)]
        dest[start:stop] = with_exact_prior(cached[start:stop], items, config, camera)
    dest.flush()
    del dest
    tmp.replace(target)
    return target


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--data', type=Path, default=Path('data/default'))
    parser.add_argument('--out', type=Path, default=Path('data/exact_room'))
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
        print(write_split(args.data, args.out, split, config, args.batch, not args.no_progress))


if __name__ == '__main__':
    main()
