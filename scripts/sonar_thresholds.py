#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Where the sonar front-end's detection thresholds and render boundary come from, on a validation split
(never the test split the results are quoted on): docs/SONAR.md, "Measured, or said not to be".

    python scripts/sonar_thresholds.py --data data/fresh --limit 150 --json docs/sonar_thresholds.json \
        --markdown docs/SONAR.md

- walls: every wall candidate kept (``wall_cfar`` 0), by its CFAR contrast: the share kept at each threshold
  and how many of those are more than 30 cm off along the true normal;
- floor / ceiling: the same for ``vertical_contrast``;
- walls by true distance: the share measured within 30 cm with the shipped thresholds, and the detection
  statistic at the true wall's cell (the CFAR ratio of the far-field beam, floor explained: what ``wall_cfar``
  thresholds), so a wall not measured is told apart as not heard (its echo under the clutter) or not found;
- the render's open boundary (``open_reach_m``): layout depth and the share of pixels with a prior; where no wall was
  measured, the boundary as a cylinder (shipped) or as the square at yaw 0 revision 3 drew; and the layout's own
  error (pixels more than 10 % off the exact shell's depth: not the bodies', which the shell has too) split into
  pixels the layout draws farther than the shell (a nearer surface not measured: mostly an open side where a wall
  stands) and nearer (a wrong plane in front);
- the explained echoes' amplitude, shared by all mics or one per mic: ceiling and wall errors;
- ``earliest_fraction`` (the earliest floor / ceiling candidate with this share of the best evidence);
- ``wall_corner_min``: the measured walls by their floor-corner / first-order evidence (``Plane.corner``: a body's
  flat face does not reach the floor), the share kept at each threshold, how many of those are off, and the
  layout depth with the walls under it left out;
- the ceiling: confirmed from the vertical or not (``ceiling_confirm_share``), and where none was measured the
  walls drawn to any height or up to ``render_layout``'s ``open_ceiling_above_m``: ceilings not measured, measured
  ones off, layout depth.
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import time
from pathlib import Path

import numpy as np
import yaml
from tqdm import tqdm

from audio_vision.core.eval.metrics import MetricAccumulator
from audio_vision.dataset import DatasetReader
from audio_vision.paths import publish_result, source_commit
from audio_vision.sonar import (CEILING, FLOOR, WALL, LayoutEstimator, SonarConfig, layout_errors, render_layout,
                                summarize_errors, true_layout)
from audio_vision.sonar.render import OPEN_CEILING_ABOVE_M, OPEN_REACH_M
from audio_vision.sonar.truth import MATCH_DEG, angle_deg, distance_along
from audio_vision.training.layout_eval import sonar_config_for

WALL_THRESHOLDS = (3.0, 4.0, 5.0, 6.0, 8.0)
VERTICAL_THRESHOLDS = (1.5, 2.0, 2.5, 3.0)
DISTANCE_BINS = ((0.0, 2.0), (2.0, 4.0), (4.0, 6.0), (6.0, math.inf))
SHIPPED_REACH = OPEN_REACH_M                         # render_layout's default open boundary (m), the shipped one
REACHES = (math.inf, 6.0, SHIPPED_REACH)
#: a pixel is the layout's own error where its depth is more than this share off the exact shell's
OWN_ERROR = 0.10
EARLIEST_FRACTIONS = (0.5, 0.6, 0.7)
CORNER_THRESHOLDS = (0.05, 0.1, 0.15, 0.2, 0.3)
DEPTH_KEYS = ('abs_rel', 'delta1', 'valid_fraction')
OFF_M = {WALL: 0.30, FLOOR: 0.05, CEILING: 0.05}     # "off": beyond issue #21's p90 bar for the plane
#: (ceiling_confirm_share, open_ceiling_above_m) pairs measured; the last is the shipped front-end and render
#: (revision 5), the first revision 4's
CEILING_CHOICES = ((0.0, None), (0.0, 1.0), (0.7, None), (0.7, 1.0))
MARK_BEGIN, MARK_END = '<!-- THRESHOLDS BEGIN (scripts/sonar_thresholds.py) -->', '<!-- THRESHOLDS END -->'


def plane_error(plane, truth) -> float:
    """An estimated plane's error along the true plane nearest in normal (inf if none within MATCH_DEG)."""
    cands = [t for t in truth.get(plane.label) if angle_deg(plane.n, t.n) <= MATCH_DEG]
    if not cands:
        return math.inf
    t = min(cands, key=lambda q: angle_deg(plane.n, q.n))
    return abs(distance_along(plane, t.n) - t.offset)


def cell_contrast(ratio: np.ndarray, ranges: np.ndarray, azimuths: np.ndarray, wall) -> float:
    """The detection statistic (``LayoutEstimator.wall_contrast``) at a true wall's cell: its best within one
    azimuth step and +-1.5 cm of range of the wall's normal and distance (nan where the range is out of the scan)."""
    az = math.degrees(math.atan2(wall.n[1], wall.n[0])) % 360.0
    step = azimuths[1] - azimuths[0]
    rows = [int(round(az / step + d)) % len(azimuths) for d in (-1, 0, 1)]
    cols = np.flatnonzero(np.abs(ranges - wall.offset) <= 0.015)
    return float(ratio[np.ix_(rows, cols)].max()) if len(cols) else math.nan


def _share(flags: list[bool]) -> float | None:
    return float(np.mean(flags)) if flags else None


def threshold_table(rows: list[tuple[float, float]], thresholds, off: float) -> list[dict]:
    a = np.asarray(rows, dtype=np.float64).reshape(-1, 2)
    out = []
    for th in (0.0,) + tuple(thresholds):
        kept = a[a[:, 0] >= th]
        out.append({'threshold': th, 'kept': float(len(kept) / max(len(a), 1)),
                    'off_among_kept': float(np.mean(kept[:, 1] > off)) if len(kept) else None,
                    'p90_m': float(np.percentile(kept[:, 1], 90)) if len(kept) else None})
    return out


def measure(data: Path, split: str, limit: int, overrides: dict | None = None) -> dict:
    """``overrides``: SonarConfig fields replaced (a front-end other than the shipped one, e.g. a faster revision
    scripts/sonar_speed_sweep.py measured), everything else read as for the shipped one."""
    reader = DatasetReader(data, split)
    n = min(limit, len(reader))
    base = dataclasses.replace(sonar_config_for(reader), **(overrides or {}))
    permissive = LayoutEstimator(dataclasses.replace(base, wall_cfar=0.0, vertical_contrast=0.0, max_reflectors=0),
                                 reader.mic_positions)
    shipped = LayoutEstimator(dataclasses.replace(base, max_reflectors=0), reader.mic_positions)
    any_corner = LayoutEstimator(dataclasses.replace(base, max_reflectors=0, wall_corner_min=0.0), reader.mic_positions)
    per_mic = LayoutEstimator(dataclasses.replace(base, max_reflectors=0, explain_per_mic=True), reader.mic_positions)
    # the shipped fraction's ceilings are the shipped estimator's
    fractions = {q: LayoutEstimator(dataclasses.replace(base, max_reflectors=0, earliest_fraction=q),
                                    reader.mic_positions) for q in EARLIEST_FRACTIONS if q != base.earliest_fraction}
    ceilings = {q: [] for q in EARLIEST_FRACTIONS}
    confirming = {share: LayoutEstimator(dataclasses.replace(base, max_reflectors=0, ceiling_confirm_share=share),
                                         reader.mic_positions)
                  for share in {share for share, _ in CEILING_CHOICES} if share != base.ceiling_confirm_share}
    table, camera = reader.class_table, reader.layout.camera
    ceiling_choices = {c: ([], MetricAccumulator(len(table), table.names)) for c in CEILING_CHOICES}  # errors, depth
    rows = {WALL: [], FLOOR: [], CEILING: []}
    by_distance = [[0, 0] for _ in DISTANCE_BINS]            # (walls, measured within 30 cm)
    true_cell = [[] for _ in DISTANCE_BINS]                  # CFAR ratio at each true wall's cell
    renders = {r: MetricAccumulator(len(table), table.names) for r in REACHES}
    square = MetricAccumulator(len(table), table.names)     # revision 3's open sides where no wall was measured
    own = np.zeros(3)                                        # per-window AbsRel summed: all, farther, nearer
    corners = {t: MetricAccumulator(len(table), table.names) for t in (0.0,) + CORNER_THRESHOLDS}
    corner_rows = []                                          # (corner ratio, error) of each measured wall
    errors = {'shared': [], 'per_mic': []}
    for i in tqdm(range(n), desc=f'thresholds {split}', unit='window'):
        item = reader[i]
        truth = true_layout(item['camera_pose'], item['room_size'])
        for p in permissive.estimate(item['audio']).planes:
            rows[p.label].append((p.contrast, plane_error(p, truth)))
        layout = shipped.estimate(item['audio'])
        errors['shared'].append(layout_errors(layout, truth))
        ratio, ranges = shipped.wall_contrast(item['audio'])
        errors['per_mic'].append(layout_errors(per_mic.estimate(item['audio']), truth))
        for q in EARLIEST_FRACTIONS:
            other = fractions.get(q)
            e = layout_errors(other.estimate(item['audio']), truth) if other else errors['shared'][-1]
            ceilings[q].append(e[CEILING])
        for w in errors['shared'][-1]['walls']:
            b = next(k for k, (lo, hi) in enumerate(DISTANCE_BINS) if lo <= w['offset'] < hi)
            by_distance[b][0] += 1
            by_distance[b][1] += w['distance'] is not None and w['distance'] <= OFF_M[WALL]
        for w in truth.get(WALL):
            b = next(k for k, (lo, hi) in enumerate(DISTANCE_BINS) if lo <= w.offset < hi)
            contrast = cell_contrast(ratio, ranges, shipped.azimuths, w)
            if math.isfinite(contrast):
                true_cell[b].append(contrast)
        gt = {'depth': item['depth'][None], 'segmentation': item['segmentation'][None]}
        priors = {reach: render_layout(layout, camera, table, open_reach_m=reach) for reach in REACHES}
        for reach, acc in renders.items():
            prior = priors[reach]
            seg = np.where(prior.classes == 255, table.id_of('wall'), prior.classes).astype(np.uint8)
            acc.add({'depth': prior.depth[None], 'segmentation': seg[None]}, gt)
        revision_3 = render_layout(layout, camera, table, open_reach_m=SHIPPED_REACH, orientless_open=False)
        square.add({'depth': revision_3.depth[None]}, {'depth': item['depth'][None]})
        own += own_error(priors[SHIPPED_REACH].depth, render_layout(truth, camera, table, wall_reach_m=None).depth,
                         item['depth'])
        by_share = {share: est.estimate(item['audio']) for share, est in confirming.items()}
        for (share, above), (errs, acc) in ceiling_choices.items():
            chosen = by_share.get(share, layout)
            errs.append(layout_errors(chosen, truth)[CEILING])
            prior = render_layout(chosen, camera, table, open_ceiling_above_m=above)
            acc.add({'depth': prior.depth[None]}, {'depth': item['depth'][None]})
        unfiltered = any_corner.estimate(item['audio']) if base.wall_corner_min else layout
        corner_rows += [(p.corner, plane_error(p, truth)) for p in unfiltered.get(WALL) if math.isfinite(p.corner)]
        for th, acc in corners.items():        # the walls under the threshold left out (yaw kept: a close stand-in)
            kept = dataclasses.replace(unfiltered, planes=tuple(p for p in unfiltered.planes
                                                                if not (p.label == WALL and p.corner < th)))
            prior = render_layout(kept, camera, table)
            acc.add({'depth': prior.depth[None]}, {'depth': item['depth'][None]})
    return {
        'wall_cfar': threshold_table(rows[WALL], WALL_THRESHOLDS, OFF_M[WALL]),
        'ceiling_vertical_contrast': threshold_table(rows[CEILING], VERTICAL_THRESHOLDS, OFF_M[CEILING]),
        'floor_vertical_contrast': threshold_table(rows[FLOOR], VERTICAL_THRESHOLDS, OFF_M[FLOOR]),
        'walls_by_distance': [{'from_m': lo, 'to_m': None if math.isinf(hi) else hi, 'walls': c,
                               'measured_within_30cm': (m / c if c else None),
                               'true_cell_contrast_median': float(np.median(t)) if t else None,
                               'true_cell_over_wall_cfar': _share([v >= base.wall_cfar for v in t])}
                              for (lo, hi), (c, m), t in zip(DISTANCE_BINS, by_distance, true_cell)],
        'open_reach': [{'open_reach_m': None if math.isinf(r) else r,
                        **{k: acc.result()['depth'][k] for k in DEPTH_KEYS}} for r, acc in renders.items()],
        'no_wall_square': {k: square.result()['depth'][k] for k in DEPTH_KEYS},
        'own_error': {'threshold': OWN_ERROR, 'abs_rel': own[0] / n, 'farther': own[1] / n, 'nearer': own[2] / n},
        'explain_amplitude': {k: summarize_errors(v) for k, v in errors.items()},
        'earliest_fraction': [{'earliest_fraction': q, 'ceilings': len(v),
                               'not_measured': sum(e is None for e in v) / max(len(v), 1),
                               'off_among_measured': _share([e > OFF_M[CEILING] for e in v if e is not None])}
                              for q, v in ceilings.items()],
        'wall_corner_min': [{**row, **{k: acc.result()['depth'][k] for k in DEPTH_KEYS}} for row, acc in
                            zip(threshold_table(corner_rows, CORNER_THRESHOLDS, OFF_M[WALL]), corners.values())],
        'ceiling_choices': [{'ceiling_confirm_share': share, 'open_ceiling_above_m': above,
                             'not_measured': sum(e is None for e in errs) / max(len(errs), 1),
                             'off_among_measured': _share([e > OFF_M[CEILING] for e in errs if e is not None]),
                             **{k: acc.result()['depth'][k] for k in DEPTH_KEYS}}
                            for (share, above), (errs, acc) in ceiling_choices.items()],
        'shipped': {'wall_cfar': base.wall_cfar, 'vertical_contrast': base.vertical_contrast,
                    'wall_corner_min': base.wall_corner_min, 'ceiling_confirm_share': base.ceiling_confirm_share,
                    'open_ceiling_above_m': OPEN_CEILING_ABOVE_M},
        'n': n, 'split': split, 'path': str(data)}


def own_error(layout: np.ndarray, shell: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """One window's AbsRel (the mean over the pixels with a prior, as MetricAccumulator has it) carried by the
    pixels where the layout's depth is more than OWN_ERROR off the exact shell's: (all of them, those drawn farther
    than the shell, those nearer)."""
    valid = np.isfinite(layout) & np.isfinite(gt) & (gt > 0)
    if not valid.any():
        return np.zeros(3)
    rel = np.where(valid, np.abs(layout - gt) / np.where(valid, gt, 1.0), 0.0)
    off = valid & np.isfinite(shell) & (np.abs(layout - shell) > OWN_ERROR * shell)
    farther = off & (layout > shell)
    return np.array([rel[off].sum(), rel[farther].sum(), rel[off & ~farther].sum()]) / valid.sum()


def markdown(res: dict, run: dict) -> str:
    pct = lambda v: '–' if v is None else f'{v:.0%}'  # noqa: E731
    lines = [f"Measured {run['date']} at commit {run['commit']} on {res['n']} windows of `{res['path']}` "
             f"({res['split']} split): `{run['command']}`.", '',
             '| plane | threshold | kept | off among kept | p90 error among kept (m) |', '|---|---|---|---|---|']
    for key, label, off in (('wall_cfar', 'wall (`wall_cfar`)', OFF_M[WALL]),
                            ('ceiling_vertical_contrast', 'ceiling (`vertical_contrast`)', OFF_M[CEILING]),
                            ('floor_vertical_contrast', 'floor (`vertical_contrast`)', OFF_M[FLOOR])):
        for r in res[key]:
            p90 = '–' if r['p90_m'] is None else f"{r['p90_m']:.3f}"
            lines.append(f"| {label} | {r['threshold']:g} | {pct(r['kept'])} | {pct(r['off_among_kept'])} "
                         f"(> {off:g} m) | {p90} |")
    cfar = res['shipped']['wall_cfar']
    lines += ['', '| true wall distance | walls | measured within 30 cm (shipped thresholds) '
              f"| CFAR ratio at the true wall's cell, median | share of them >= `wall_cfar` ({cfar:g}) |",
              '|---|---|---|---|---|']
    for r in res['walls_by_distance']:
        hi = '∞' if r['to_m'] is None else f"{r['to_m']:g}"
        med = '–' if r['true_cell_contrast_median'] is None else f"{r['true_cell_contrast_median']:.1f}"
        lines.append(f"| {r['from_m']:g}–{hi} m | {r['walls']} | {pct(r['measured_within_30cm'])} | {med} "
                     f"| {pct(r['true_cell_over_wall_cfar'])} |")
    lines += ['', '| `open_reach_m` | layout depth AbsRel | δ1 | pixels with a prior |', '|---|---|---|---|']
    for r in res['open_reach']:
        reach = 'none (floor to the horizon)' if r['open_reach_m'] is None else f"{r['open_reach_m']:g} m"
        lines.append(f"| {reach} | {r['abs_rel']:.3f} | {r['delta1']:.3f} | {r['valid_fraction']:.1%} |")
    if res.get('no_wall_square'):
        r = res['no_wall_square']
        lines.append(f"| 4 m, where no wall was measured the square at yaw 0 (revision 3) | {r['abs_rel']:.3f} "
                     f"| {r['delta1']:.3f} | {r['valid_fraction']:.1%} |")
    if res.get('own_error'):
        e = res['own_error']
        lines += ['', f"The layout's own error (4 m, shipped): pixels more than {e['threshold']:.0%} off the exact "
                  f"shell's depth carry {e['abs_rel']:.3f} of its AbsRel; {e['farther']:.3f} where it draws farther "
                  f"than the shell (a nearer surface not measured: mostly an open side where a wall stands), "
                  f"{e['nearer']:.3f} where nearer (a wrong plane in front)."]
    lines += ['', '| explained echo amplitude | ceiling median / p90 (m) | wall median / p90 (m) '
              '| walls not measured |', '|---|---|---|---|']
    for k, label in (('shared', 'one for all mics (shipped)'), ('per_mic', 'one per mic')):
        e = res['explain_amplitude'][k]
        c, w = e['ceiling_m'], e['wall_distance_m']
        fmt = lambda d: '–' if d['median'] is None else f"{d['median']:.4f} / {d['p90']:.3f}"  # noqa: E731
        lines.append(f"| {label} | {fmt(c)} | {fmt(w)} | {pct(w['failed'])} |")
    lines += ['', '| `earliest_fraction` | ceilings not measured | measured ceilings > 5 cm off |', '|---|---|---|']
    for r in res['earliest_fraction']:
        lines.append(f"| {r['earliest_fraction']:g} | {pct(r['not_measured'])} | {pct(r['off_among_measured'])} |")
    if res.get('wall_corner_min'):
        lines += ['', f"| `wall_corner_min` (shipped {res['shipped']['wall_corner_min']:g}) | measured walls kept "
                  f"| off among kept (> {OFF_M[WALL]:g} m) | layout depth AbsRel | δ1 | pixels with a prior |",
                  '|---|---|---|---|---|---|']
        for r in res['wall_corner_min']:
            lines.append(f"| {r['threshold']:g} | {pct(r['kept'])} | {pct(r['off_among_kept'])} | {r['abs_rel']:.3f} "
                         f"| {r['delta1']:.3f} | {r['valid_fraction']:.1%} |")
    if res.get('ceiling_choices'):
        lines += ['', '| `ceiling_confirm_share` | no ceiling measured: walls drawn up to | ceilings not measured '
                  f"| measured ceilings > {OFF_M[CEILING]:g} m off | layout depth AbsRel | δ1 | pixels with a prior |",
                  '|---|---|---|---|---|---|---|']
        for r in res['ceiling_choices']:
            above = 'any height' if r['open_ceiling_above_m'] is None else \
                f"{r['open_ceiling_above_m']:g} m above the array"
            shipped = all(r[k] == res['shipped'].get(k) for k in ('ceiling_confirm_share', 'open_ceiling_above_m'))
            above += ' (shipped)' if shipped else ''
            lines.append(f"| {r['ceiling_confirm_share']:g} | {above} | {pct(r['not_measured'])} "
                         f"| {pct(r['off_among_measured'])} | {r['abs_rel']:.3f} | {r['delta1']:.3f} "
                         f"| {r['valid_fraction']:.1%} |")
    return '\n'.join(lines) + '\n'


def sonar_override(text: str) -> tuple[str, object]:
    """FIELD=VALUE -> (field, value): a SonarConfig field, its value parsed as YAML (lists become tuples)."""
    field, sep, value = text.partition('=')
    names = {f.name for f in dataclasses.fields(SonarConfig)}
    if not sep or field not in names:
        raise argparse.ArgumentTypeError(f'expected FIELD=VALUE with a SonarConfig field, got {text!r}')
    parsed = yaml.safe_load(value)
    return field, tuple(parsed) if isinstance(parsed, list) else parsed


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--data', type=Path, required=True)
    ap.add_argument('--split', default='val')
    ap.add_argument('--limit', type=int, default=150)
    ap.add_argument('--json', type=Path, required=True)
    ap.add_argument('--markdown', type=Path, help='rewrite the generated block of this Markdown file')
    ap.add_argument('--set', nargs='+', default=[], metavar='FIELD=VALUE', type=sonar_override,
                    help='SonarConfig fields replaced (YAML values: --set gate_fraction=0.25 "wall_range_m=[0.3, 8]")')
    args = ap.parse_args(argv)
    if args.split == 'test':
        ap.error('thresholds are read off a validation split, never the test split the results are quoted on')
    run = {'command': 'python scripts/sonar_thresholds.py ' + ' '.join(argv if argv is not None else sys.argv[1:]),
           'date': time.strftime('%Y-%m-%d'), 'commit': source_commit()}
    res = measure(args.data, args.split, args.limit, dict(args.set))
    if args.set:
        res['sonar_overrides'] = dict(args.set)
    publish_result({'run': run, **res}, args.json, markdown(res, run), args.markdown, MARK_BEGIN, MARK_END)
    return 0


if __name__ == '__main__':
    sys.exit(main())
