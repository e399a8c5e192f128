#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""How much the direction maps alone say about where the bodies are: evidence for the results page.

For test windows with sound sources in view, the cell of the strongest steered response (SRP-PHAT,
bands above 1 kHz) is checked against the ground-truth segmentation downsampled to the map grid (a
person, appliance or alarm in that cell); for windows whose bodies in view are all silent, the same
for the strongest chirp echo (all range bins), and for the strongest echo within the body's own range
bin. Chance = the share of body cells. Writes docs/direction_maps_diagnostic.json.

    .venv/bin/python scripts/diagnose_direction_maps.py --data data/default --limit 800
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

from audio_vision.dataset import DatasetReader
from audio_vision.simulation.config import SOURCE_CLASSES
from audio_vision.training.config import TrainConfig
from audio_vision.training.data import load_split

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--data', type=Path, default=ROOT / 'data' / 'default')
    ap.add_argument('--config', type=Path, default=ROOT / 'config' / 'train.yaml')
    ap.add_argument('--limit', type=int, default=800)
    ap.add_argument('--out', type=Path, default=ROOT / 'docs' / 'direction_maps_diagnostic.json')
    args = ap.parse_args()
    fc = TrainConfig.from_yaml(args.config).features
    if not fc.direction_maps:
        print('the config has no direction maps', file=sys.stderr)
        return 2
    data = load_split(args.data, 'test', fc, limit=args.limit, progress=False)
    reader = DatasetReader(args.data, 'test')
    from audio_vision.core.features.packing import unpack_maps
    _, maps = unpack_maps(data.features.float(), fc.num_direction_maps, fc.map_grid, fc.map_planes)
    maps = maps.numpy()
    g, m = fc.map_size, fc.map_margin
    n_srp = len(fc.srp_band_edges_hz) - 1
    high = [b for b in range(n_srp) if fc.srp_band_edges_hz[b] >= 1000.0] or list(range(n_srp))
    ids = [reader.class_table.id_of(c) for c in SOURCE_CLASSES]
    edges = np.linspace(fc.echo_range_min_m, fc.echo_range_max_m, fc.echo_range_bins + 1)
    block = data.segmentation.shape[-1] // g
    tally = {k: {'hits': 0, 'windows': 0, 'chance': 0.0}
             for k in ('srp_sources', 'echo_silent', 'echo_silent_own_range')}

    def add(key, hit, chance):
        tally[key]['hits'] += int(hit)
        tally[key]['windows'] += 1
        tally[key]['chance'] += float(chance)

    for i in range(len(data)):
        seg = data.segmentation[i]
        body = np.isin(seg, ids).reshape(g, block, g, block).any(axis=(1, 3))
        if not body.any():
            continue
        scene = reader.metadata(i).get('scene') or {}
        in_view = [s for s in scene.get('sources', []) if s.get('in_fov')]
        inner = maps[i, :, m:m + g, m:m + g]
        if any(not s.get('silent') for s in in_view):
            k = np.unravel_index(inner[high].mean(axis=0).argmax(), (g, g))
            add('srp_sources', body[k], body.mean())
        elif in_view and fc.echo:
            echo = inner[n_srp:]
            k = np.unravel_index(echo.max(axis=0).argmax(), (g, g))
            add('echo_silent', body[k], body.mean())
            robot = np.asarray(scene['robot_position'][:2])
            for s in in_view:
                r = math.dist(robot, s['body']['center'])
                b = int(np.searchsorted(edges, r) - 1)
                if 0 <= b < fc.echo_range_bins:
                    k = np.unravel_index(echo[b].argmax(), (g, g))
                    add('echo_silent_own_range', body[k], body.mean())
    for v in tally.values():
        v['hit_rate'] = v['hits'] / v['windows'] if v['windows'] else None
        v['chance'] = v['chance'] / v['windows'] if v['windows'] else None
    result = {'windows_scored': len(data), 'data': str(args.data), 'tally': tally,
              'command': f'python scripts/diagnose_direction_maps.py --data {args.data} --limit {args.limit}'}
    args.out.write_text(json.dumps(result, indent=1))
    print(json.dumps(tally, indent=1))
    return 0


if __name__ == '__main__':
    sys.exit(main())
