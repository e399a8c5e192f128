#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""What the sonar front-end's knobs buy in speed and cost in accuracy: each variant (SonarConfig fields replaced)
timed on one core and measured against the simulator's exact rooms on a validation split (never the test split:
this is where a faster front-end's settings are chosen).

    python scripts/sonar_speed_sweep.py --data data/default --json docs/sonar_speed_sweep.json --markdown docs/SONAR.md

Per variant: CPU ms per window (the variants timed in turn on the same first ``--timed`` windows, ``--passes``
times over: the least disturbed pass's mean, interleaved so that a drift of the shared machine's speed falls on
all of them alike), the layout errors (median / p90 / not
measured), the layout baseline's depth AbsRel and δ1 on the pixels it covers and that share, and the residual
reflectors found per window. ``--markdown`` rewrites the generated block of docs/SONAR.md (between its SWEEP
markers).
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import sys
import time
from pathlib import Path

from audio_vision.core.eval.metrics import MetricAccumulator
from audio_vision.dataset import DatasetReader
from audio_vision.paths import cpu_model, publish_result, source_commit
from audio_vision.sonar import LayoutEstimator
from audio_vision.training.layout_eval import predict_layout, sonar_config_for

#: name -> SonarConfig fields replaced; 'shipped' is the front-end as it runs (revision 3: its quarter-period gate,
#: walls to 8 m and 3 / 2 refined candidates were chosen from this table's revision-2 rows)
REVISION_2 = {'gate_fraction': 0.5, 'wall_range_m': (0.3, 16.0), 'wall_candidates': 6, 'sector_candidates': 4,
              'reflector_coarse_to_fine': False}
VARIANTS = {
    'shipped': {},
    'revision 2 (half-period gate, walls to 16 m, candidates 6 / 4)': REVISION_2,
    'azimuth_step_deg 4': {'azimuth_step_deg': 4.0},
    'reflector_directions 80': {'reflector_directions': 80},
    'upsample 2': {'upsample': 2},
    'explain_bands 2': {'explain_bands': 2},
    'max_reflectors 0': {'max_reflectors': 0},
    'scan_band_hz 2500-5500': {'scan_band_hz': (2500.0, 5500.0)},
    'scan_band_hz 500-7500 (the whole band at half the rate)': {'scan_band_hz': (500.0, 7500.0)},
    'scan_band_hz 500-7500, wall_residual_fraction 0.2': {'scan_band_hz': (500.0, 7500.0),
                                                          'wall_residual_fraction': 0.2},
    'wall_residual_fraction 0.2': {'wall_residual_fraction': 0.2},
    'azimuth 4, reflector dirs 80': {'azimuth_step_deg': 4.0, 'reflector_directions': 80},
    'nearer_wall_fraction 0.8': {'nearer_wall_fraction': 0.8},
    'sector_rescan false': {'sector_rescan': False},
    'reflector_coarse_to_fine false': {'reflector_coarse_to_fine': False},
    'ceiling_confirm_share 0 (revision 4)': {'ceiling_confirm_share': 0.0},
    'azimuth 4, reflector dirs 80, upsample 2, explain_bands 2': {
        'azimuth_step_deg': 4.0, 'reflector_directions': 80, 'upsample': 2, 'explain_bands': 2},
}
ERRORS = (('floor_m', 'floor (m)', 3), ('ceiling_m', 'ceiling (m)', 3), ('wall_distance_m', 'wall distance (m)', 3),
          ('wall_angle_deg', 'wall angle (deg)', 2))
MARK_BEGIN, MARK_END = '<!-- SWEEP BEGIN (scripts/sonar_speed_sweep.py) -->', '<!-- SWEEP END -->'


def cpu_ms(estimators: dict[str, LayoutEstimator], windows: list, passes: int) -> dict[str, float]:
    """CPU ms per window of each estimator: per pass every estimator in turn on the same windows (interleaved, so a
    drift of the shared machine's speed falls on all of them alike), the least disturbed pass's mean per estimator."""
    for estimator in estimators.values():
        estimator.estimate(windows[0])                 # warm-up: caches, compilation
    per_pass = {name: [] for name in estimators}
    for _ in range(passes):
        for name, estimator in estimators.items():
            t0 = time.process_time()
            for w in windows:
                estimator.estimate(w)
            per_pass[name].append(1000.0 * (time.process_time() - t0) / len(windows))
    return {name: min(v) for name, v in per_pass.items()}


def measure(path: Path, split: str, overrides: dict, limit: int | None) -> dict:
    """One variant's accuracy on the split: layout errors, the layout baseline's depth, reflectors per window."""
    reader = DatasetReader(path, split)
    n = len(reader) if limit is None else min(limit, len(reader))
    pred = predict_layout(path, split, limit=n, progress=False, sonar_overrides=overrides)
    table = reader.class_table
    acc = MetricAccumulator(len(table), table.names)
    for i in range(n):
        item = reader[i]
        acc.add({'depth': pred.depth[i:i + 1], 'segmentation': pred.segmentation[i:i + 1]},
                {'depth': item['depth'][None], 'segmentation': item['segmentation'][None]})
    depth = acc.result()['depth']
    return {'overrides': overrides, 'layout_errors': pred.errors, 'abs_rel': depth['abs_rel'],
            'delta1': depth['delta1'], 'prior_fraction': depth['valid_fraction'],
            'reflectors_per_window': pred.reflectors_per_window}


def markdown(result: dict) -> str:
    run = result['run']
    lines = [f"Measured {run['date']} on {run['machine']} at commit {run['commit']}: `{run['command']}` "
             f"({result['split']} split of `{result['data']}`, {result['n']} windows; CPU ms: the least disturbed of "
             f"{result['passes']} passes over {result['timed']} windows).", '',
             '| variant | CPU ms / window | '
             + ' | '.join(f'{label} median / p90 / not measured' for _, label, _ in ERRORS)
             + ' | layout AbsRel | δ1 | pixels with a prior | reflectors / window |',
             '|---|---|' + '---|' * len(ERRORS) + '---|---|---|---|']

    def err(stats, digits):
        if stats['median'] is None:
            return f"– / – / {stats['failed']:.0%}"
        return f"{stats['median']:.{digits}f} / {stats['p90']:.{digits}f} / {stats['failed']:.1%}"
    for name, v in result['variants'].items():
        lines.append(f"| {name} | {v['cpu_ms_per_window']:.1f} | "
                     + ' | '.join(err(v['layout_errors'][key], d) for key, _, d in ERRORS)
                     + f" | {v['abs_rel']:.3f} | {v['delta1']:.3f} | {v['prior_fraction']:.1%} "
                       f"| {v['reflectors_per_window']:.2f} |")
    base = result['variants']['shipped']
    lines.append('')
    for name, v in result['variants'].items():
        if name == 'shipped':
            continue
        lines.append(f"- {name}: {v['cpu_ms_per_window'] / base['cpu_ms_per_window']:.0%} of the shipped "
                     f"front-end's time; layout AbsRel {base['abs_rel']:.3f} -> {v['abs_rel']:.3f}, walls not measured "
                     f"{base['layout_errors']['wall_distance_m']['failed']:.1%} -> "
                     f"{v['layout_errors']['wall_distance_m']['failed']:.1%}.")
    return '\n'.join(lines) + '\n'


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--data', type=Path, required=True)
    ap.add_argument('--split', default='val')
    ap.add_argument('--limit', type=int, help='windows measured (default: the whole split)')
    ap.add_argument('--timed', type=int, default=60, help='windows timed per pass')
    ap.add_argument('--passes', type=int, default=5)
    ap.add_argument('--variants', nargs='*', choices=sorted(VARIANTS), help="default: all ('shipped' always)")
    ap.add_argument('--json', type=Path, required=True)
    ap.add_argument('--markdown', type=Path, help='rewrite the generated block of this Markdown file')
    args = ap.parse_args(argv)
    if args.split == 'test':
        ap.error('the sweep chooses settings: run it on a validation split, not the test split')
    n = len(DatasetReader(args.data, args.split))
    given = argv if argv is not None else sys.argv[1:]
    result = {'run': {'command': 'python scripts/sonar_speed_sweep.py ' + ' '.join(given),
                      'date': time.strftime('%Y-%m-%d'), 'commit': source_commit(),
                      'machine': f'{cpu_model()}, {os.cpu_count()} cores, Python {platform.python_version()}'},
              'data': str(args.data), 'split': args.split, 'n': n if args.limit is None else min(args.limit, n),
              'timed': args.timed, 'passes': args.passes, 'variants': {}}
    names = ['shipped'] + [v for v in (args.variants or VARIANTS) if v != 'shipped']   # the reference first
    reader = DatasetReader(args.data, args.split)
    base = sonar_config_for(reader)
    estimators = {name: LayoutEstimator(dataclasses.replace(base, **VARIANTS[name]), reader.mic_positions)
                  for name in names}
    ms = cpu_ms(estimators, [reader[i]['audio'] for i in range(min(args.timed, len(reader)))], args.passes)
    for name in names:
        result['variants'][name] = {**measure(args.data, args.split, VARIANTS[name], args.limit),
                                    'cpu_ms_per_window': ms[name]}
        print(f"{name}: {ms[name]:.1f} ms, layout AbsRel {result['variants'][name]['abs_rel']:.3f}", flush=True)
    publish_result(result, args.json, markdown(result), args.markdown, MARK_BEGIN, MARK_END)
    return 0


if __name__ == '__main__':
    sys.exit(main())
