#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
r"""Which walls the sonar front-end misses, by range, and what a wall threshold by range would buy, on validation
windows (thresholds are chosen there, never on the test split).

For each dataset (``--data NAME=PATH``, ``--calibration NAME=FILE`` as in scripts/eval_sonar.py):

1. **Candidates by range.** Every true wall, by its distance: whether the candidate the wall search chose in its
   quadrant (before the threshold) lies on it (within 10 deg and 10 cm), and how far above the clutter that candidate
   stands (the statistic ``wall_cfar`` thresholds); and the chosen candidates that lie on no wall, by their range and
   contrast. What a threshold at each range admits, right and wrong.
2. **What the extra walls are worth.** The shipped front-end and the variant (``--sonar KEY=VALUE``): pixels with a
   prior, the layout's AbsRel on them, and the full image of the shipped networks joined with each layout
   (:func:`~audio_vision.training.evaluate.join_layout`: the layout's room where it has one and the networks see room
   there, the networks elsewhere; the ``layout_method`` row of ``evaluate``). The layout's own AbsRel is over its own
   pixels, so a variant that covers more (farther, harder walls) can score worse there and still leave the full image
   better: the join says what its pixels are worth before any retrain.

    python scripts/wall_threshold_probe.py --data default=data/default fresh=data/fresh shifted=data/shifted \\
        speaker_calibrated=data/speaker --calibration speaker_calibrated=data/speaker_calibration.npz \\
        --sonar wall_cfar_far=4.5 --json docs/wall_threshold_probe.json --markdown docs/SONAR.md
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import shlex
import sys
from pathlib import Path

import numpy as np
import torch
import yaml
from tqdm import tqdm

from audio_vision.core.eval.metrics import MetricAccumulator
from audio_vision.core.model.checkpoint import load_checkpoint
from audio_vision.dataset import DatasetReader
from audio_vision.paths import measured_here, publish_result, source_commit
from audio_vision.sonar import WALL, LayoutEstimator, SonarConfig, true_layout
from audio_vision.sonar.calibration import SpeakerCalibration
from audio_vision.training.data import load_split
from audio_vision.training.evaluate import join_layout
from audio_vision.training.layout_eval import predict_layout, sonar_config_for
from audio_vision.training.trainer import batched

RANGE_EDGES_M = (0.0, 1.5, 2.5, 4.0, math.inf)
CONTRASTS = (4.0, 4.5, 5.0, 5.5, 6.0)
ON_WALL_DEG, ON_WALL_M = 10.0, 0.1
BEGIN = '<!-- WALL THRESHOLD PROBE BEGIN (scripts/wall_threshold_probe.py) -->'
END = '<!-- WALL THRESHOLD PROBE END -->'


def azimuth_of(normal) -> float:
    return math.degrees(math.atan2(normal[1], normal[0]))


def turn(a: float, b: float) -> float:
    """|a - b| in degrees, on the circle."""
    return abs((a - b + 180.0) % 360.0 - 180.0)


def chosen_candidates(estimator: LayoutEstimator, audio: np.ndarray) -> list[tuple]:
    """The wall search's choice per quadrant before the threshold: [(contrast, azimuth, offset, quadrant)] (what
    ``_not_multiples`` is handed: the last step before ``wall_cfar``)."""
    seen: list = []
    original = estimator._not_multiples

    def spy(found, options):
        seen[:] = list(found)
        return original(found, options)
    estimator._not_multiples = spy
    try:
        estimator.estimate(audio)
    finally:
        del estimator._not_multiples
    return seen


def range_bin(offset: float) -> str:
    for lo, hi in zip(RANGE_EDGES_M[:-1], RANGE_EDGES_M[1:]):
        if lo <= offset < hi:
            return f'{lo:g}-{hi:g} m'
    raise ValueError(offset)


def candidates_by_range(path: Path, split: str, limit: int, calibration) -> dict:
    """Part 1: per range bin, the true walls, those whose quadrant's candidate lies on them and the contrasts of those
    candidates, and the contrasts of the candidates that lie on no wall."""
    reader = DatasetReader(path, split)
    estimator = LayoutEstimator(sonar_config_for(reader), reader.mic_positions, calibration)
    bins = {range_bin(lo): {'true_walls': 0, 'on_wall': [], 'on_no_wall': []} for lo in RANGE_EDGES_M[:-1]}
    for i in tqdm(range(min(limit, len(reader))), desc=f'candidates {path.name}', leave=False):
        item = reader[i]
        truth = true_layout(item['camera_pose'], item['room_size']).get(WALL)
        found = chosen_candidates(estimator, item['audio'])
        for wall in truth:
            b = bins[range_bin(wall.offset)]
            b['true_walls'] += 1
            on = [e for e, a, r, _ in found if turn(a, azimuth_of(wall.n)) < ON_WALL_DEG
                  and abs(r - wall.offset) < ON_WALL_M]
            if on:
                b['on_wall'].append(float(max(on)))
        for e, a, r, _ in found:
            if not any(turn(a, azimuth_of(w.n)) < ON_WALL_DEG and abs(r - w.offset) < ON_WALL_M for w in truth):
                bins[range_bin(r)]['on_no_wall'].append(float(e))
    return bins


def joined_rows(path: Path, split: str, limit: int, calibration, variant: dict, nets: dict) -> dict:
    """Part 2: for the shipped front-end and the variant, pixels with a prior, the layout's own scores and the shipped
    networks (``nets``: modality -> model) full image joined with it; the networks alone beside them."""
    spec = nets['depth'].spec
    table = spec.class_table
    data = load_split(path, split, spec.features, limit=limit, progress=False, mic_positions=spec.array.mic_positions)
    gt = {'depth': data.depth, 'segmentation': data.segmentation}
    with torch.inference_mode():
        def predict(net):
            return batched(lambda s: net.encoding.decode(net(data.features[s].float(), quantize=True)).numpy(),
                           len(data))
        preds = {m: predict(net) for m, net in nets.items()}

    def scores(images: dict) -> dict:
        acc = MetricAccumulator(len(table), table.names)
        acc.add(images, gt)
        r = acc.result()
        return {'abs_rel': r['depth']['abs_rel'], 'delta1': r['depth']['delta1'], 'miou': r['segmentation']['miou']}
    rows = {'networks': scores(preds)}
    for name, overrides in (('shipped', None), ('variant', variant)):
        layout = predict_layout(path, split, limit=len(data), progress=False, calibration=calibration,
                                sonar_overrides=overrides)
        own = scores({'depth': layout.depth, 'segmentation': layout.segmentation})
        rows[name] = {'prior_pixels': float(np.isfinite(layout.depth).mean()), 'layout_abs_rel': own['abs_rel'],
                      'joined': scores({m: join_layout(layout, m, preds, table) for m in nets}),
                      'walls_not_measured': layout.errors['wall_distance_m']['failed']}
    return rows


def markdown(result: dict) -> str:
    sets = result['datasets']
    variant = ', '.join(f'{k} {v}' for k, v in result['variant'].items())
    head = (f"Measured {result['measured']['date']} on {result['measured']['machine']} at commit {result['commit']}: "
            f"`{result['command']}` ({result['split']} split, the first {result['limit']} windows of each).\n\n")
    lines = ['| dataset | true walls at | true walls | chosen candidate on the wall | '
             + ' | '.join(f'on the wall / on no wall, contrast >= {c:g}' for c in CONTRASTS) + ' |',
             '|---|---|---|---|' + '---|' * len(CONTRASTS)]
    for name, s in sets.items():
        for b, v in s['candidates'].items():
            lines.append(f"| {name} | {b} | {v['true_walls']} | {len(v['on_wall'])} | " + ' | '.join(
                f"{sum(e >= c for e in v['on_wall'])} / {sum(e >= c for e in v['on_no_wall'])}" for c in CONTRASTS)
                + ' |')
    shipped_threshold, lower = CONTRASTS[-1], result['variant'].get('wall_cfar_far')
    if lower in CONTRASTS:
        lines += ['']
        for b in next(iter(sets.values()))['candidates']:
            gained = [sum(lower <= e < shipped_threshold for e in s['candidates'][b][k]) for s in sets.values()
                      for k in ('on_wall', 'on_no_wall')]
            right, wrong = sum(gained[0::2]), sum(gained[1::2])
            lines.append(f"- at {b}: a threshold of {lower:g} instead of {shipped_threshold:g} admits {right} "
                         f"candidates on a wall and {wrong} on no wall (all datasets).")
    joined = ['', f'The shipped front-end and the variant ({variant}); "joined": the shipped networks\' images with '
              'the layout\'s room pasted where it has one and the networks see room there (`evaluate`\'s '
              '`layout_method` row), no retrain:', '',
              '| dataset | front-end | walls not measured | pixels with a prior | layout AbsRel (its pixels) | '
              'joined AbsRel | joined δ1 | joined mIoU |', '|---|---|---|---|---|---|---|---|']
    joins = {n: s for n, s in sets.items() if s['joined']}
    for name, s in joins.items():
        j = s['joined']
        joined.append(f"| {name} | the networks alone | – | – | – | {j['networks']['abs_rel']:.4f} | "
                      f"{j['networks']['delta1']:.3f} | {j['networks']['miou']:.3f} |")
        for key, label in (('shipped', 'shipped'), ('variant', variant)):
            r = j[key]
            joined.append(f"| {name} | {label} | {r['walls_not_measured'] * 100:.1f}% | "
                          f"{r['prior_pixels'] * 100:.1f}% | {r['layout_abs_rel']:.4f} | "
                          f"{r['joined']['abs_rel']:.4f} | {r['joined']['delta1']:.3f} | {r['joined']['miou']:.3f} |")
    better = [n for n, s in joins.items() if s['joined']['variant']['joined']['abs_rel']
              < s['joined']['shipped']['joined']['abs_rel']]
    own_worse = [n for n, s in joins.items() if s['joined']['variant']['layout_abs_rel']
                 > s['joined']['shipped']['layout_abs_rel']]
    unjoined = [n for n in sets if n not in joins]
    summary = (f"\nJoined with the shipped networks, the variant's layout lowers the full image's AbsRel on "
               f"{len(better)} of {len(joins)} datasets ({', '.join(better) or 'none'}); its own AbsRel over its "
               f"pixels is higher on {len(own_worse)} of {len(joins)} ({', '.join(own_worse) or 'none'})."
               + (f" Not joined: {', '.join(unjoined)} (a speaker calibration: the networks' features are made "
                  "without one)." if unjoined else '') + "\n")
    return head + '\n'.join(lines) + '\n' + '\n'.join(joined) + '\n' + summary


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--data', nargs='+', required=True, metavar='NAME=PATH')
    ap.add_argument('--calibration', nargs='*', default=[], metavar='NAME=FILE')
    ap.add_argument('--sonar', nargs='+', required=True, metavar='KEY=VALUE', help='the variant: SonarConfig fields')
    ap.add_argument('--split', default='val')
    ap.add_argument('--limit', type=int, default=400)
    ap.add_argument('--models', type=Path, default=Path('models'))
    ap.add_argument('--json', type=Path, default=Path('docs/wall_threshold_probe.json'))
    ap.add_argument('--markdown', type=Path)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)

    def pairs(option: str, form: str, items: list[str]) -> dict[str, str]:
        """``items`` of the form ``KEY=VALUE`` as a dict; anything else stops with what the option takes."""
        out = {}
        for item in items:
            key, _, value = item.partition('=')
            if not (key and value):
                ap.error(f'--{option} takes {form}, got {item!r}')
            out[key] = value
        return out

    data, calibrations = pairs('data', 'NAME=PATH', args.data), pairs('calibration', 'NAME=FILE', args.calibration)
    variant = {k: yaml.safe_load(v) for k, v in pairs('sonar', 'KEY=VALUE', args.sonar).items()}
    fields = {f.name for f in dataclasses.fields(SonarConfig)}
    if set(variant) - fields:
        ap.error(f'--sonar: {sorted(set(variant) - fields)} are not SonarConfig fields')
    if set(calibrations) - set(data):
        ap.error(f'--calibration names no --data dataset: {sorted(set(calibrations) - set(data))}')
    nets = {m: load_checkpoint(args.models / f'{m}.pt', expect={'modality': m}) for m in ('depth', 'segmentation')}
    sets = {}
    for name, path in data.items():
        calibration = SpeakerCalibration.load(calibrations[name]) if name in calibrations else None
        # The networks' features are made without a speaker calibration (training.data.load_split): a calibrated
        # dataset's join would pair a calibrated layout with uncalibrated inputs, so it is not made.
        sets[name] = {'path': path,
                      'candidates': candidates_by_range(Path(path), args.split, args.limit, calibration),
                      'joined': (None if calibration is not None else
                                 joined_rows(Path(path), args.split, args.limit, None, variant, nets))}
        print(f'[wall threshold probe] {name}: done', flush=True)
    result = {'command': 'python scripts/wall_threshold_probe.py ' + shlex.join(sys.argv[1:]),
              'measured': measured_here(), 'commit': source_commit(), 'split': args.split, 'limit': args.limit,
              'variant': variant, 'range_edges_m': [e if math.isfinite(e) else None for e in RANGE_EDGES_M],
              'datasets': sets}
    publish_result(result, args.json, markdown(result), args.markdown, BEGIN, END)
    return 0


if __name__ == '__main__':
    sys.exit(main())
