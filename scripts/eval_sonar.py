#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The sonar front-end measured against the simulator's exact rooms: layout errors and the layout baseline's
depth and segmentation, beside the exact shell (the true room rendered without its bodies: what a perfect
room estimator blind to bodies would give), on the test split of each dataset given.

    python scripts/eval_sonar.py --data default=data/default fresh=data/fresh shifted=data/shifted \
        speaker=data/speaker speaker_calibrated=data/speaker \
        --calibration speaker_calibrated=data/speaker_calibration.npz --json docs/sonar.json --markdown docs/SONAR.md

``--calibration NAME=FILE``: dataset NAME measured with that speaker calibration (``python -m audio_vision
calibrate``). ``--sonar NAME:KEY=VALUE``: dataset NAME measured with that SonarConfig field replaced, ``--render
NAME:KEY=VALUE`` rendered with that ``render_layout`` option (knobs; the same directory may be given twice under two
names, with and without them, and the two are compared). Each dataset is
also measured fused over each room's poses (``LayoutFusion``, the simulator's exact poses as odometry, causal).
``--markdown`` rewrites the generated block of docs/SONAR.md (between its ``--block`` markers, RESULTS by default)
from the JSON; ``--render-only`` does only that, from the JSON already there.
"""
from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path

import yaml

from audio_vision.core.eval.metrics import MetricAccumulator
from audio_vision.dataset import DatasetReader
from audio_vision.paths import cpu_model, publish_result, source_commit
from audio_vision.sonar import SonarConfig, render_layout, true_layout
from audio_vision.sonar.calibration import SpeakerCalibration
from audio_vision.training.layout_eval import predict_layout

#: issue #21's bar, checked on BAR_DATASETS (the test split and a fresh seed); the shifted dataset must not be
#: worse than the default one by more than SHIFT_TOLERANCE (one-sided: a shifted room that scores better passes)
BAR = {'floor_m': (0.01, 0.05), 'ceiling_m': (0.01, 0.05), 'wall_distance_m': (0.05, 0.30),
       'wall_angle_deg': (2.0, 6.0)}
DEPTH_BAR = {'abs_rel': 0.15, 'delta1': 0.85}
SHIFT_TOLERANCE = 0.15
BAR_DATASETS = ('default', 'fresh')
MARK_BEGIN, MARK_END = '<!-- {} BEGIN (scripts/eval_sonar.py) -->', '<!-- {} END -->'


def measure(path: Path, split: str, limit: int | None, calibration: Path | None = None,
            overrides: dict | None = None, render_options: dict | None = None) -> dict:
    reader = DatasetReader(path, split)
    n = len(reader) if limit is None else min(limit, len(reader))
    pred = predict_layout(path, split, limit=n, fuse=True, sonar_overrides=overrides, render_options=render_options,
                          calibration=SpeakerCalibration.load(calibration) if calibration else None)
    table, camera = reader.class_table, reader.layout.camera
    rows = {name: MetricAccumulator(len(table), table.names) for name in ('layout', 'layout_fused', 'exact_shell')}
    for i in range(n):
        item = reader[i]
        gt = {'depth': item['depth'][None], 'segmentation': item['segmentation'][None]}
        rows['layout'].add({'depth': pred.depth[i:i + 1], 'segmentation': pred.segmentation[i:i + 1]}, gt)
        rows['layout_fused'].add({'depth': pred.fused.depth[i:i + 1],
                                  'segmentation': pred.fused.segmentation[i:i + 1]}, gt)
        prior = render_layout(true_layout(item['camera_pose'], item['room_size']), camera, table,
                              wall_reach_m=None)             # the exact shell: every true wall
        rows['exact_shell'].add({'depth': prior.depth[None], 'segmentation': prior.classes[None]}, gt)
    card = reader.card
    return {'path': str(path), 'split': split, 'n': n, 'content_hash': card.get('content_hash'),
            'seed': card.get('generator', {}).get('seed'), 'calibration': str(calibration) if calibration else None,
            'sonar_overrides': overrides or {}, 'render_options': render_options or {},
            'layout_errors': pred.errors, 'layout_errors_fused': pred.fused.errors,
            'ms_per_window': 1000.0 * pred.seconds_per_window,
            'rows': {name: acc.result() for name, acc in rows.items()}}


def verdicts(result: dict) -> list[tuple[str, str, bool]]:
    """(dataset, criterion, met) for issue #21's bar: on BAR_DATASETS, and on a knob's variant of one (the same
    windows measured with another setting: what the bar would say were that setting shipped)."""
    out = []
    sets = result['datasets']
    for name, d in sets.items():
        if name not in BAR_DATASETS and base_of(sets, name) not in BAR_DATASETS:
            continue
        for key, (med, p90) in BAR.items():
            e = d['layout_errors'][key]
            ok = e['median'] is not None and e['median'] <= med and e['p90'] <= p90
            out.append((name, f'{key}: median <= {med:g}, p90 <= {p90:g}', ok))
        depth = d['rows']['layout']['depth']
        on = f"on its {depth['valid_fraction']:.0%} of pixels with a prior, {d['n']} windows"
        out.append((name, f"layout AbsRel <= {DEPTH_BAR['abs_rel']:g} ({depth['abs_rel']:.4f}, {on})",
                    depth['abs_rel'] <= DEPTH_BAR['abs_rel']))
        out.append((name, f"layout δ1 >= {DEPTH_BAR['delta1']:g} ({depth['delta1']:.4f}, {on})",
                    depth['delta1'] >= DEPTH_BAR['delta1']))
    if 'shifted' in sets and 'default' in sets:
        a, b = sets['default']['rows']['layout']['depth'], sets['shifted']['rows']['layout']['depth']
        for key, worse in (('abs_rel', 1.0), ('delta1', -1.0)):
            rel = worse * (b[key] - a[key]) / a[key]          # > 0: worse than default
            out.append(('shifted', f'layout {key} no more than {SHIFT_TOLERANCE:.0%} worse than default '
                                   f'({abs(rel):.1%} {"better" if rel <= 0 else "worse"})', rel <= SHIFT_TOLERANCE))
    return out


#: the knobs --sonar and --render may set: SonarConfig's fields, render_layout's options
KNOBS = {'sonar': frozenset(f.name for f in dataclasses.fields(SonarConfig)),
         'render': frozenset(list(inspect.signature(render_layout).parameters)[3:])}


def knobs_of(dataset: dict) -> dict:
    """A measured dataset's knobs: its SonarConfig fields replaced and its render options."""
    return {**dataset.get('sonar_overrides', {}), **dataset.get('render_options', {})}


def base_of(sets: dict, name: str) -> str | None:
    """The dataset that measured ``name``'s windows without its knobs (the same path, calibration and windows), where
    ``name`` sets knobs and one was measured; else None."""
    d = sets[name]
    if not knobs_of(d):
        return None
    return next((b for b, e in sets.items() if e['path'] == d['path'] and not knobs_of(e)
                 and e.get('calibration') == d.get('calibration') and e['n'] == d['n']), None)


def findings(result: dict) -> list[str]:
    """The sentences that compare rows, generated from the result: fused vs single windows, calibrated vs not."""
    sets, out = result['datasets'], []
    for name, d in sets.items():
        one, fused = d['rows']['layout']['depth'], d['rows']['layout_fused']['depth']
        walls, walls_fused = d['layout_errors']['wall_distance_m'], d['layout_errors_fused']['wall_distance_m']
        out.append(f"- {name}: fused over each room's poses, walls not measured {walls['failed']:.0%} -> "
                   f"{walls_fused['failed']:.0%}, pixels with a prior {one['valid_fraction']:.0%} -> "
                   f"{fused['valid_fraction']:.0%}, layout AbsRel {one['abs_rel']:.3f} -> {fused['abs_rel']:.3f}, "
                   f"δ1 {one['delta1']:.3f} -> {fused['delta1']:.3f}.")
    if 'speaker' in sets and 'speaker_calibrated' in sets:
        a, b = sets['speaker'], sets['speaker_calibrated']
        fa, fb = a['layout_errors']['floor_m'], b['layout_errors']['floor_m']
        da, db = a['rows']['layout']['depth'], b['rows']['layout']['depth']
        out.append(f"- non-ideal speaker (`{a['path']}`): floor median error {fa['median']:.3f} m uncalibrated, "
                   f"{fb['median']:.3f} m calibrated (`{b['calibration']}`); layout AbsRel {da['abs_rel']:.3f} -> "
                   f"{db['abs_rel']:.3f}, δ1 {da['delta1']:.3f} -> {db['delta1']:.3f}.")
        if 'fresh' in sets and sets['fresh']['seed'] == a['seed']:
            f = sets['fresh']['rows']['layout']['depth']
            out.append(f"- the same scenes with the ideal speaker (fresh, seed {a['seed']}): layout AbsRel "
                       f"{f['abs_rel']:.3f}, δ1 {f['delta1']:.3f}.")
    for name, d in sets.items():                # knobs against the same windows without them
        base = base_of(sets, name)
        if base is None:
            continue
        knob = ', '.join(f'{k} {v}' for k, v in knobs_of(d).items())
        ea, eb = sets[base]['layout_errors']['ceiling_m'], d['layout_errors']['ceiling_m']
        da, db = sets[base]['rows']['layout']['depth'], d['rows']['layout']['depth']
        verdict = ('better' if db['abs_rel'] < da['abs_rel'] else
                   'no better' if db['abs_rel'] == da['abs_rel'] else 'worse')
        out.append(f"- {name} ({knob}) against {base}, the same {d['n']} windows: ceiling p90 error "
                   f"{ea['p90']:.3f} -> {eb['p90']:.3f} m, not measured {ea['failed']:.1%} -> {eb['failed']:.1%}; "
                   f"layout AbsRel {da['abs_rel']:.4f} -> {db['abs_rel']:.4f} ({verdict}), δ1 {da['delta1']:.3f} -> "
                   f"{db['delta1']:.3f}, pixels with a prior {da['valid_fraction']:.1%} -> {db['valid_fraction']:.1%}.")
    return out


def markdown(result: dict) -> str:
    run = result['run']
    names = list(result['datasets'])
    split = ' / '.join(dict.fromkeys(d['split'] for d in result['datasets'].values()))     # the split measured
    lines = [f"Measured {run['date']} on {run['machine']} at commit {run['commit']}: `{run['command']}`.", '',
             f'| layout error ({split} split) | '
             + ' | '.join(f'{n} median / p90 / not measured' for n in names) + ' |',
             '|---|' + '---|' * len(names)]
    labels = {'floor_m': 'floor distance (m)', 'ceiling_m': 'ceiling distance (m)',
              'wall_distance_m': 'wall distance along its true normal (m)', 'wall_angle_deg': 'wall orientation (deg)'}
    for key, label in labels.items():
        cells = []
        for n in names:
            e = result['datasets'][n]['layout_errors'][key]
            cells.append('–' if e['median'] is None else f"{e['median']:.3f} / {e['p90']:.3f} / {e['failed']:.1%}")
        lines.append(f'| {label} | ' + ' | '.join(cells) + ' |')
    lines += ['', f'| dataset ({split} split) | windows | row | depth AbsRel | δ1 | RMSE (m) | pixels with a prior '
              '| mIoU | ms / window |', '|---|---|---|---|---|---|---|---|---|']
    for n in names:
        d = result['datasets'][n]
        for row in ('layout', 'layout_fused', 'exact_shell'):
            r = d['rows'][row]
            ms = f"{d['ms_per_window']:.0f}" if row == 'layout' else '–'
            cal = f", calibrated: `{d['calibration']}`" if d.get('calibration') else ''
            cal += ''.join(f', {k} {v}' for k, v in knobs_of(d).items())
            lines.append(f"| {n} (`{d['path']}`, seed {d['seed']}{cal}) | {d['n']} | {row} | "
                         f"{r['depth']['abs_rel']:.3f} | "
                         f"{r['depth']['delta1']:.3f} | {r['depth']['rmse']:.3f} | "
                         f"{r['depth']['valid_fraction']:.1%} | "
                         f"{r['segmentation']['miou']:.3f} | "
                         f'{ms} |')
    lines += ['', f'| fused over each room\'s poses ({split} split) | '
              + ' | '.join(f'{n} median / p90 / not measured' for n in names) + ' |', '|---|' + '---|' * len(names)]
    for key in ('ceiling_m', 'wall_distance_m', 'wall_angle_deg'):
        cells = []
        for n in names:
            e = result['datasets'][n]['layout_errors_fused'][key]
            cells.append('–' if e['median'] is None else f"{e['median']:.3f} / {e['p90']:.3f} / {e['failed']:.1%}")
        lines.append(f'| {labels[key]} | ' + ' | '.join(cells) + ' |')
    lines += [''] + findings(result)
    judged = verdicts(result)
    met, missed = [v for v in judged if v[2]], [v for v in judged if not v[2]]
    if met or missed:                    # only where a dataset the bar names was measured
        where = '' if split == 'test' else f' on the {split} split (the bar is the test split\'s)'
        lines += ['', f'Issue #21\'s bar{where}: {len(met)} of {len(met) + len(missed)} criteria met.']
    if missed:
        lines.append('Not met: ' + '; '.join(f'{d}: {c}' for d, c, _ in missed) + '.')
    return '\n'.join(lines) + '\n'


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--data', nargs='+', metavar='NAME=DIR')
    ap.add_argument('--render-only', action='store_true',
                    help='measure nothing: rewrite --markdown from the result already in --json')
    ap.add_argument('--split', default='test')
    ap.add_argument('--limit', type=int)
    ap.add_argument('--calibration', nargs='*', default=[], metavar='NAME=FILE',
                    help='measure dataset NAME with this speaker calibration (python -m audio_vision calibrate)')
    ap.add_argument('--sonar', nargs='*', default=[], metavar='NAME:KEY=VALUE',
                    help='measure dataset NAME with this SonarConfig field replaced (VALUE read as YAML)')
    ap.add_argument('--render', nargs='*', default=[], metavar='NAME:KEY=VALUE',
                    help='render dataset NAME with this render_layout option (VALUE read as YAML)')
    ap.add_argument('--json', type=Path, required=True)
    ap.add_argument('--markdown', type=Path, help='rewrite the generated block of this Markdown file')
    ap.add_argument('--block', default='RESULTS', help='which generated block of --markdown (its marker name)')
    args = ap.parse_args(argv)
    marks = (MARK_BEGIN.format(args.block), MARK_END.format(args.block))
    if args.render_only:
        result = json.loads(args.json.read_text())
        result['bar'] = [{'dataset': d, 'criterion': c, 'met': ok} for d, c, ok in verdicts(result)]
        publish_result(result, args.json, markdown(result), args.markdown, *marks)
        return 0
    if not args.data:
        ap.error('--data is required (or --render-only)')
    given = argv if argv is not None else sys.argv[1:]
    result = {'run': {'command': 'python scripts/eval_sonar.py ' + shlex.join(given),
                      'date': time.strftime('%Y-%m-%d'), 'commit': source_commit(),
                      'machine': f'{cpu_model()}, {os.cpu_count()} cores, Python {platform.python_version()}'},
              'datasets': {}}
    calibrations = dict(spec.partition('=')[::2] for spec in args.calibration)
    knobs: dict[str, dict[str, dict]] = {'sonar': {}, 'render': {}}
    for option in knobs:
        for spec in getattr(args, option):
            name, _, setting = spec.partition(':')
            key, _, value = setting.partition('=')
            if not (name and key and value):
                ap.error(f'--{option} takes NAME:KEY=VALUE, got {spec!r}')
            if key not in KNOBS[option]:
                ap.error(f'--{option} {spec!r}: {key} is not one of {sorted(KNOBS[option])}')
            knobs[option].setdefault(name, {})[key] = yaml.safe_load(value)
    for spec in args.data:
        name, _, path = spec.partition('=')
        cal = calibrations.pop(name, None)
        result['datasets'][name] = measure(Path(path), args.split, args.limit, Path(cal) if cal else None,
                                           knobs['sonar'].pop(name, None), knobs['render'].pop(name, None))
        print(f'{name}: {json.dumps(result["datasets"][name]["layout_errors"])}', flush=True)
    left = sorted(calibrations) + sorted(knobs['sonar']) + sorted(knobs['render'])
    if left:
        ap.error(f'--calibration / --sonar / --render name no --data dataset: {left}')
    result['bar'] = [{'dataset': d, 'criterion': c, 'met': ok} for d, c, ok in verdicts(result)]
    publish_result(result, args.json, markdown(result), args.markdown, *marks)
    return 0


if __name__ == '__main__':
    sys.exit(main())
