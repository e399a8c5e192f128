#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Where the sonar front-end's residual reflectors (echoes no plane explains) lie against the simulator's bodies:
the measured starting point for the bodies of issue #22 (docs/SONAR.md, "Residual reflectors and bodies").

    python scripts/eval_reflectors.py --data data/default --json docs/reflectors.json --markdown docs/SONAR.md

On the test split:
- the strongest reflector, in windows whose bodies in view are all silent (a silent body is only an echo):
  does its map cell (the features' direction-map grid over the image) hold a body pixel? Chance is the share
  of body cells: the same test docs/direction_maps_diagnostic.json applies to the strongest echo cell;
- per class, of every body in the room: the share with a reflector on it (within ``ON_BODY_M`` of its
  surface, horizontally, and within its height), the range error of that reflector against the body's nearest
  surface point, and for bodies in view the image distance (pixels) between the reflector and the body's
  centre projected;
- the share of reflectors that lie on no body (edges, corners, what the box misses).
"""
from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from audio_vision.core.frames import R_BODY_FROM_OPTICAL, body_pose
from audio_vision.dataset import DatasetReader
from audio_vision.simulation.config import SOURCE_CLASSES
from audio_vision.paths import cpu_model, publish_result, source_commit
from audio_vision.sonar import LayoutEstimator
from audio_vision.training.config import TrainConfig
from audio_vision.training.layout_eval import sonar_config_for

ROOT = Path(__file__).resolve().parents[1]
ON_BODY_M = 0.3                  # a reflector this close to a body's surface lies on it
MARK_BEGIN, MARK_END = '<!-- REFLECTORS BEGIN (scripts/eval_reflectors.py) -->', '<!-- REFLECTORS END -->'


def body_radius(body: dict) -> float:
    """The footprint's equivalent radius: a cylinder's own, a box's mean half side."""
    size = body['size']
    return float(size[0]) if body['shape'] == 'cylinder' else 0.25 * (float(size[0]) + float(size[1]))


def surface_gap(point: np.ndarray, body: dict) -> float:
    """Distance (m) from a room-frame point to the body (a vertical prism of the equivalent radius)."""
    height = float(body['size'][-1])
    horizontal = max(0.0, math.dist(point[:2], body['center']) - body_radius(body))
    vertical = max(0.0, point[2] - height, -point[2])
    return math.hypot(horizontal, vertical)


def nearest_surface_range(array: np.ndarray, body: dict) -> float:
    """Range from the array to the body's nearest surface point (the specular point of a convex body)."""
    height = float(body['size'][-1])
    horizontal = max(0.0, math.dist(array[:2], body['center']) - body_radius(body))
    vertical = max(0.0, array[2] - height)
    return math.hypot(horizontal, vertical)


def project(point_array: np.ndarray, K: np.ndarray) -> tuple[float, float] | None:
    """Array-frame point -> (u, v) pixel, None behind the camera."""
    x = R_BODY_FROM_OPTICAL.T @ point_array
    if x[2] <= 1e-6:
        return None
    return float(K[0, 0] * x[0] / x[2] + K[0, 2]), float(K[1, 1] * x[1] / x[2] + K[1, 2])


def measure(data: Path, split: str, limit: int | None, grid: int) -> dict:
    reader = DatasetReader(data, split)
    n = len(reader) if limit is None else min(limit, len(reader))
    estimator = LayoutEstimator(sonar_config_for(reader), reader.mic_positions)
    ids = [reader.class_table.id_of(c) for c in SOURCE_CLASSES]
    silent = {'hits': 0, 'windows': 0, 'chance': 0.0, 'out_of_view': 0}
    per_class = {c: {'bodies': 0, 'found': 0, 'range_err': [], 'pixel_err': []} for c in SOURCE_CLASSES}
    reflectors = {'total': 0, 'on_no_body': 0}
    for i in tqdm(range(n), desc='reflectors', unit='window', leave=False):
        item, scene = reader[i], (reader.metadata(i).get('scene') or {})
        layout = estimator.estimate(item['audio'])
        T = body_pose(item['camera_pose'])
        to_room = [T[:3, :3] @ np.asarray(r.position) + T[:3, 3] for r in layout.reflectors]
        sources = scene.get('sources', [])
        reflectors['total'] += len(to_room)
        reflectors['on_no_body'] += sum(all(surface_gap(p, s['body']) > ON_BODY_M for s in sources) for p in to_room)
        seg = item['segmentation']
        block = seg.shape[-1] // grid
        body_cells = np.isin(seg, ids).reshape(grid, block, grid, block).any(axis=(1, 3))
        in_view = [s for s in sources if s.get('in_fov')]
        if in_view and body_cells.any() and all(s.get('silent') for s in in_view) and layout.reflectors:
            silent['windows'] += 1
            silent['chance'] += float(body_cells.mean())
            uv = project(np.asarray(layout.reflectors[0].position), item['K'])
            if uv is None or not (0 <= uv[0] < seg.shape[1] and 0 <= uv[1] < seg.shape[0]):
                silent['out_of_view'] += 1
            else:
                silent['hits'] += int(body_cells[int(uv[1]) // block, int(uv[0]) // block])
        array = T[:3, 3]
        for s in sources:
            tally = per_class.get(s['class_name'])
            if tally is None:
                continue
            tally['bodies'] += 1
            gaps = [surface_gap(p, s['body']) for p in to_room]
            if not gaps or min(gaps) > ON_BODY_M:
                continue
            k = int(np.argmin(gaps))
            tally['found'] += 1
            tally['range_err'].append(abs(layout.reflectors[k].range_m - nearest_surface_range(array, s['body'])))
            if s.get('in_fov'):
                centre = np.array([*s['body']['center'], 0.5 * float(s['body']['size'][-1])])
                a = project(T[:3, :3].T @ (centre - T[:3, 3]), item['K'])
                b = project(np.asarray(layout.reflectors[k].position), item['K'])
                if a is not None and b is not None:
                    tally['pixel_err'].append(math.dist(a, b))
    classes = {}
    for c, t in per_class.items():
        def stats(v):
            return {'median': float(np.median(v)), 'p90': float(np.percentile(v, 90)), 'n': len(v)} if v else None
        classes[c] = {'bodies': t['bodies'], 'found': t['found'] / t['bodies'] if t['bodies'] else None,
                      'range_err_m': stats(t['range_err']), 'pixel_err': stats(t['pixel_err'])}
    w = silent['windows']
    return {'path': str(data), 'split': split, 'n': n, 'grid': grid,
            'strongest_on_silent_body': {'windows': w, 'hit_rate': silent['hits'] / w if w else None,
                                         'chance': silent['chance'] / w if w else None,
                                         'out_of_view': silent['out_of_view'] / w if w else None},
            'per_class': classes,
            'reflectors': {**reflectors, 'on_no_body_share': reflectors['on_no_body'] / max(reflectors['total'], 1),
                           'per_window': reflectors['total'] / max(n, 1)}}


def markdown(result: dict) -> str:
    run, d = result['run'], result['result']
    s = d['strongest_on_silent_body']
    lines = [f"Measured {run['date']} on {run['machine']} at commit {run['commit']}: `{run['command']}`.", '',
             f"- Strongest reflector in windows whose bodies in view are all silent ({s['windows']} windows): in a "
             f"body's map cell ({d['grid']}×{d['grid']} over the image) in {s['hit_rate']:.0%} of them (chance "
             f"{s['chance']:.0%}; out of view in {s['out_of_view']:.0%}).",
             f"- Reflectors: {d['reflectors']['per_window']:.1f} per window, {d['reflectors']['on_no_body_share']:.0%} "
             f"of them on no body (within {ON_BODY_M:g} m).", '',
             '| class | bodies in the room | with a reflector on it | range error median / p90 (m) '
             '| image error to its centre median / p90 (px, in view) |', '|---|---|---|---|---|']
    for c, t in d['per_class'].items():
        r, p = t['range_err_m'], t['pixel_err']
        lines.append(f"| {c} | {t['bodies']} | {t['found']:.0%} | "
                     + (f"{r['median']:.3f} / {r['p90']:.3f}" if r else '–') + ' | '
                     + (f"{p['median']:.1f} / {p['p90']:.1f} ({p['n']})" if p else '–') + ' |')
    return '\n'.join(lines) + '\n'


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--data', type=Path, default=ROOT / 'data' / 'default')
    ap.add_argument('--split', default='test')
    ap.add_argument('--limit', type=int)
    ap.add_argument('--config', type=Path, default=ROOT / 'config' / 'train.yaml',
                    help="training config whose direction-map grid the cells are (default config/train.yaml)")
    ap.add_argument('--json', type=Path, required=True)
    ap.add_argument('--markdown', type=Path, help='rewrite the generated block of this Markdown file')
    args = ap.parse_args(argv)
    grid = TrainConfig.from_yaml(args.config).features.map_size
    command = 'python scripts/eval_reflectors.py ' + ' '.join(argv if argv is not None else sys.argv[1:])
    result = {'run': {'command': command,
                      'date': time.strftime('%Y-%m-%d'), 'commit': source_commit(),
                      'machine': f'{cpu_model()}, {os.cpu_count()} cores, Python {platform.python_version()}'},
              'result': measure(args.data, args.split, args.limit, grid)}
    publish_result(result, args.json, markdown(result), args.markdown, MARK_BEGIN, MARK_END)
    return 0


if __name__ == '__main__':
    sys.exit(main())
