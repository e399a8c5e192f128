#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""How much the room fused over the drive (``FeatureConfig.layout_fusion``) relies on exact odometry: the shipped
models scored on the test split's windows fused with drifting odometry instead of the simulator's exact poses.

The models were trained on drives placed with the simulator's exact poses; a robot's odometry drifts. Each room's
windows are a drive (the dataset's order); from its first window on, the odometry's position error is a random walk
that grows by ``frac`` of each step's length (per axis, normal) and its yaw error by ``deg_per_m`` degrees per metre
of the step (normal): ``--levels frac:deg_per_m ...``. Level ``0:0`` is the exact odometry (the shipped figures),
``none`` no odometry at all (each window its room alone, as the node with ``pose_source: none``).
For each level the features are computed with those poses into a dataset of links to ``--data``'s files
(:func:`audio_vision.dataset.files.link_dataset`, its own feature cache under the same key), and evaluated; the
method's rows (as decoded, and with the bodies stood on the floor: the published one) go to ``--json``.

    .venv/bin/python scripts/odometry_noise_probe.py --json docs/odometry_noise.json

Nothing here is shipped: a measurement of the shipped models.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from audio_vision.core.frames import planar_pose  # noqa: E402
from audio_vision.core.model.checkpoint import load_checkpoint  # noqa: E402
from audio_vision.dataset import DatasetReader  # noqa: E402
from audio_vision.dataset.files import link_dataset  # noqa: E402
from audio_vision.training.data import drive_pose, feature_cache_path, load_split  # noqa: E402
from audio_vision.training.evaluate import evaluate  # noqa: E402


def drifting(poses: list[np.ndarray], frac: float, deg_per_m: float, rng: np.random.Generator) -> list[np.ndarray]:
    """One drive's odometry: the true array poses (4 x 4, in order) with a position error that random-walks by
    ``frac`` of each step's length per axis and a yaw error by ``deg_per_m`` per metre, both from 0 at the first."""
    out, error, yaw_error = [poses[0]], np.zeros(2), 0.0
    for before, pose in zip(poses, poses[1:]):
        step = float(np.linalg.norm(pose[:2, 3] - before[:2, 3]))
        error = error + rng.normal(0.0, frac * step, 2)
        yaw_error += rng.normal(0.0, math.radians(deg_per_m) * step)
        yaw = math.atan2(pose[1, 0], pose[0, 0]) + yaw_error
        noisy = planar_pose(pose[0, 3] + error[0], pose[1, 3] + error[1], pose[2, 3], yaw)
        noisy[:3, :3] = planar_pose(0, 0, 0, yaw_error)[:3, :3] @ pose[:3, :3]      # a level array stays level
        out.append(noisy)
    return out


def noisy_odometry(reader: DatasetReader, frac: float, deg_per_m: float, seed: int) -> list[np.ndarray]:
    """Every window's odometry, each room's windows a drive (the dataset's order)."""
    rng = np.random.default_rng(seed)
    items = [reader[i] for i in range(len(reader))]
    out, start = [], 0
    for i in range(1, len(items) + 1):
        if i == len(items) or int(items[i]['room_id']) != int(items[start]['room_id']):
            out += drifting([drive_pose(it) for it in items[start:i]], frac, deg_per_m, rng)
            start = i
    return out


def write_features(src: Path, out: Path, split: str, models: Path, frac: float | None, deg_per_m: float | None,
                   seed: int) -> None:
    """``out``: links to ``src`` and the split's features made with the drifting odometry (``frac`` None: none),
    cached where ``evaluate`` reads them."""
    link_dataset(src, out)
    config = load_checkpoint(models / 'depth.pt').spec.features
    reader = DatasetReader(src, split)
    if feature_cache_path(out, split, config, reader.mic_positions, reader.card.get('content_hash')).is_file():
        return
    poses = [None] * len(reader) if frac is None else noisy_odometry(reader, frac, deg_per_m, seed)
    load_split(out, split, config, odometry=poses)       # computes and caches them


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--data', type=Path, default=Path('data/default'))
    parser.add_argument('--split', default='test')
    parser.add_argument('--models', type=Path, default=Path('models'))
    parser.add_argument('--levels', nargs='+', default=['0:0', '0.02:1', '0.05:2', '0.1:5', 'none'],
                        help="frac:deg_per_m per level (position drift as a share of each step, yaw drift per m); "
                             "'none': no odometry (each window its room alone, the node's pose_source none)")
    parser.add_argument('--out-dir', type=Path, default=Path('data/odometry_noise'))
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--json', type=Path, default=Path('docs/odometry_noise.json'))
    args = parser.parse_args(argv)
    if not load_checkpoint(args.models / 'depth.pt').spec.features.layout_fusion:
        parser.error(f'{args.models} holds models that do not fuse the layout over the drive: nothing to probe')
    t0 = time.time()
    rows = {}
    for level in args.levels:
        frac, deg_per_m = (None, None) if level == 'none' else (float(v) for v in level.split(':'))
        out = args.out_dir / (f'{args.split}_no_odometry' if frac is None else f'{args.split}_{frac:g}_{deg_per_m:g}')
        write_features(args.data, out, args.split, args.models, frac, deg_per_m, args.seed)
        res = evaluate(out, args.models, args.split, progress=False)
        rows[level] = {'position_drift_share': frac, 'yaw_drift_deg_per_m': deg_per_m,
                       **{row: {'abs_rel': res['rows'][row]['depth']['abs_rel'],
                                'delta1': res['rows'][row]['depth']['delta1'],
                                'miou': res['rows'][row]['segmentation']['miou']}
                          for row in ('method', res.get('published_row', 'method'))}}
        published_row = res.get('published_row', 'method')
        published = rows[level][published_row]
        print(f"{level:>10}: published AbsRel {published['abs_rel']:.4f} δ1 {published['delta1']:.4f} "
              f"mIoU {published['miou']:.4f}")
    given = sys.argv[1:] if argv is None else list(argv)
    cpu = next((line.split(':', 1)[1].strip() for line in open('/proc/cpuinfo') if line.startswith('model name')), '')
    result = {'command': ' '.join(['python scripts/odometry_noise_probe.py', *given]),
              'date': time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()), 'machine': f'{cpu}, {os.cpu_count()} CPUs',
              'data': str(args.data), 'split': args.split, 'seed': args.seed, 'published_row': published_row,
              'seconds': round(time.time() - t0, 1), 'levels': rows}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + '\n')
    print(f'wrote {args.json}')


if __name__ == '__main__':
    main()
