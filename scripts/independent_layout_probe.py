#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
r"""Where the layout prior's loss on the independent re-recording comes from: the same test windows measured by the
sonar front-end from both recordings, window by window, against the simulator's exact room (no networks).

docs/independent_swap.json finds the layout prior the group of channels that costs the networks most on the
independent recording (`scripts/rerecord_independent.py`: the same scenes and ground truth, another room-acoustics
engine). This probe says which windows and which planes that is:
- the prior's error (the sum over its pixels of |prior - truth| / truth) per window in each recording, and how much
  of the independent recording's excess the worst tenth of the windows carries;
- that excess split by what the pixel truly shows (wall, floor, ceiling, a body);
- every true wall, as each recording's front-end measures it: within ``OFF_M`` along its normal, off (a wall
  estimate on its side but farther off: another echo taken for it), or not measured; split at ``NEAR_M``;
- the walls each recording measures on no true wall's plane, those measured beyond ``render_layout``'s
  ``wall_reach_m`` (not drawn since revision 6) and how many of those lie on a true wall, and the ceilings not
  measured;
- with ``--check-splits``: the walls the front-end measures beyond ``wall_reach_m`` in those splits of the
  reference dataset, and the farthest (where there are none, the networks trained on it never read one, and
  leaving them out of the render changes none of their training inputs).
Writes docs/independent_layout_probe.json and the generated block of docs/SONAR.md.

    python scripts/independent_layout_probe.py --data data/independent --reference data/default \
        --check-splits train val --json docs/independent_layout_probe.json --markdown docs/SONAR.md
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from audio_vision.dataset import DatasetReader
from audio_vision.paths import cpu_model, publish_result, source_commit
from audio_vision.sonar import CEILING, WALL, LayoutEstimator, layout_errors, render_layout, true_layout
from audio_vision.sonar.render import WALL_REACH_M
from audio_vision.sonar.truth import MATCH_DEG, angle_deg, distance_along
from audio_vision.training.layout_eval import sonar_config_for

ROOT = Path(__file__).resolve().parents[1]
OFF_M = 0.30                    # a true wall measured within this along its normal (issue #21's p90 bar)
NEAR_M = 2.0                    # walls split by their true distance
WORST_SHARE = 0.1               # the worst tenth of the windows
MARK_BEGIN = '<!-- INDEPENDENT LAYOUT BEGIN (scripts/independent_layout_probe.py) -->'
MARK_END = '<!-- INDEPENDENT LAYOUT END -->'


def wall_outcome(error: dict) -> str:
    """A true wall as the layout measures it (its entry of ``layout_errors``): 'measured' (within OFF_M along its
    normal), 'off', 'not measured'."""
    if error['distance'] is None:
        return 'not measured'
    return 'measured' if error['distance'] <= OFF_M else 'off'


def on_a_wall(w, truth) -> bool:
    """Whether a measured wall lies on a true wall's plane (within MATCH_DEG and OFF_M of one)."""
    return any(angle_deg(w.n, t.n) <= MATCH_DEG and abs(distance_along(w, t.n) - t.offset) <= OFF_M
               for t in truth.get(WALL))


def walls_beyond_reach(data: Path, split: str) -> dict:
    """Every window of a split: how many walls the front-end measures beyond ``wall_reach_m``, in how many windows,
    and the farthest wall it measures."""
    reader = DatasetReader(data, split)
    estimator = LayoutEstimator(sonar_config_for(reader), reader.mic_positions)
    walls = windows = 0
    farthest = 0.0
    for i in tqdm(range(len(reader)), desc=f'walls beyond the reach ({split})', unit='window'):
        offsets = [w.offset for w in estimator.estimate(reader[i]['audio']).get(WALL)]
        far = sum(o > WALL_REACH_M for o in offsets)
        walls, windows, farthest = walls + far, windows + bool(far), max([farthest] + offsets)
    return {'split': split, 'windows': len(reader), 'walls': walls, 'windows_with_one': windows,
            'farthest_m': farthest}


def measure(data: Path, reference: Path, split: str, limit: int | None) -> dict:
    readers = {'independent': DatasetReader(data, split), 'reference': DatasetReader(reference, split)}
    n = len(readers['independent']) if limit is None else min(limit, len(readers['independent']))
    table = readers['reference'].class_table
    names = list(table.names)
    estimators = {k: LayoutEstimator(sonar_config_for(r), r.mic_positions) for k, r in readers.items()}
    error = {k: np.zeros(n) for k in readers}                  # per window: sum of relative errors on the prior
    pixels = {k: np.zeros(n, dtype=np.int64) for k in readers}
    by_class = {k: np.zeros((n, len(names))) for k in readers}  # per window and true class
    walls = {k: {'near': {}, 'far': {}} for k in readers}
    stray = {k: 0 for k in readers}
    beyond = {k: {'walls': 0, 'on_a_true_wall': 0} for k in readers}     # measured beyond WALL_REACH_M
    ceilings_missing = {k: 0 for k in readers}
    for i in tqdm(range(n), desc='independent layout', unit='window'):
        for k, reader in readers.items():
            item = reader[i]
            layout = estimators[k].estimate(item['audio'])
            truth = true_layout(item['camera_pose'], item['room_size'])
            prior = render_layout(layout, reader.layout.camera, reader.class_table).depth
            gt, seg = item['depth'], item['segmentation']
            mask = np.isfinite(prior) & (gt > 0)
            rel = np.abs(prior[mask] - gt[mask]) / gt[mask]
            error[k][i], pixels[k][i] = rel.sum(), mask.sum()
            by_class[k][i] = np.bincount(seg[mask].astype(np.int64), weights=rel, minlength=len(names))[:len(names)]
            errors = layout_errors(layout, truth)
            for wall in errors['walls']:
                group = walls[k]['near' if wall['offset'] <= NEAR_M else 'far']
                outcome = wall_outcome(wall)
                group[outcome] = group.get(outcome, 0) + 1
            stray[k] += sum(not on_a_wall(w, truth) for w in layout.get(WALL))
            far = [w for w in layout.get(WALL) if w.offset > WALL_REACH_M]
            beyond[k]['walls'] += len(far)
            beyond[k]['on_a_true_wall'] += sum(on_a_wall(w, truth) for w in far)
            ceilings_missing[k] += errors[CEILING] is None
    excess = error['independent'] - error['reference']
    worst = np.argsort(excess)[::-1][:max(1, int(round(WORST_SHARE * n)))]
    total = float(excess.sum())
    split_excess = (by_class['independent'] - by_class['reference']).sum(axis=0)
    return {
        'windows': n, 'split': split,
        'abs_rel': {k: float(error[k].sum() / max(pixels[k].sum(), 1)) for k in readers},
        'pixels_with_a_prior': {k: float(pixels[k].sum() / (n * r.layout.camera.width * r.layout.camera.height))
                                for k, r in readers.items()},
        'excess': total,
        'worst': {'windows': [int(i) for i in worst], 'share_of_excess': float(excess[worst].sum() / total)
                  if total else None},
        'excess_by_true_class': {c: float(v / total) if total else None for c, v in zip(names, split_excess)},
        'walls': {k: {g: {'walls': sum(v.values()), **{o: v.get(o, 0) for o in ('measured', 'off', 'not measured')}}
                      for g, v in walls[k].items()} for k in readers},
        'walls_on_no_true_wall': stray, 'walls_beyond_reach': beyond, 'ceilings_not_measured': ceilings_missing,
        'constants': {'off_m': OFF_M, 'near_m': NEAR_M, 'worst_share': WORST_SHARE, 'wall_reach_m': WALL_REACH_M}}


def markdown(result: dict) -> str:
    r, run = result['result'], result['run']
    c = r['constants']
    lines = [f"Measured {run['date']} on {run['machine']} at commit {run['commit']}: `{run['command']}` "
             f"({r['windows']} windows of the {r['split']} split, each measured from both recordings).", '',
             f"- The layout prior's AbsRel pooled over its pixels (as rendered since revision 6): "
             f"{r['abs_rel']['independent']:.3f} from the independent "
             f"recording, {r['abs_rel']['reference']:.3f} from this pipeline's (pixels with a prior "
             f"{r['pixels_with_a_prior']['independent']:.1%} / {r['pixels_with_a_prior']['reference']:.1%}).",
             f"- The worst {c['worst_share']:.0%} of the windows ({len(r['worst']['windows'])}) carry "
             f"{r['worst']['share_of_excess']:.0%} of the independent recording's excess error (windows "
             + ', '.join(str(i) for i in r['worst']['windows']) + ').',
             "- The excess by what the pixel truly shows: " + ', '.join(
                 f"{k} {v:.0%}" for k, v in r['excess_by_true_class'].items() if v is not None) + '.',
             f"- Walls on no true wall's plane (within {c['off_m']:g} m): {r['walls_on_no_true_wall']['independent']} "
             f"from the independent recording, {r['walls_on_no_true_wall']['reference']} from this pipeline's; "
             f"ceilings not measured {r['ceilings_not_measured']['independent']} / "
             f"{r['ceilings_not_measured']['reference']}.",
             f"- Walls measured beyond the render's wall reach ({c['wall_reach_m']:g} m, not drawn since revision 6): "
             f"{r['walls_beyond_reach']['independent']['walls']} from the independent recording "
             f"({r['walls_beyond_reach']['independent']['on_a_true_wall']} of them on a true wall), "
             f"{r['walls_beyond_reach']['reference']['walls']} from this pipeline's "
             f"({r['walls_beyond_reach']['reference']['on_a_true_wall']} on a true wall).", '',
             f"| true walls | recording | walls | measured (within {c['off_m']:g} m) | off | not measured |",
             '|---|---|---|---|---|---|']
    for group, label in (('near', f"nearer than {c['near_m']:g} m"), ('far', f"{c['near_m']:g} m or farther")):
        for k in ('independent', 'reference'):
            w = r['walls'][k][group]
            lines.append(f"| {label} | {k} | {w['walls']} | {w['measured']} | {w['off']} | {w['not measured']} |")
    checked = r.get('reference_splits') or []
    if checked:
        lines += ['', f"Walls measured beyond the wall reach ({c['wall_reach_m']:g} m) in the reference dataset's own "
                  "splits: " + '; '.join(f"{s['split']} {s['walls']} walls in {s['windows_with_one']} of "
                                         f"{s['windows']} windows (the farthest wall measured {s['farthest_m']:.2f} m)"
                                         for s in checked) + '.']
    return '\n'.join(lines) + '\n'


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--data', type=Path, default=ROOT / 'data' / 'independent', help='the independent re-recording')
    ap.add_argument('--reference', type=Path, default=ROOT / 'data' / 'default',
                    help="this pipeline's recording of the same windows (the dataset it was re-recorded from)")
    ap.add_argument('--split', default='test')
    ap.add_argument('--limit', type=int)
    ap.add_argument('--check-splits', nargs='*', default=[], metavar='SPLIT',
                    help="also count the walls measured beyond the reach in these splits of --reference")
    ap.add_argument('--json', type=Path, required=True)
    ap.add_argument('--markdown', type=Path, help='rewrite the generated block of this Markdown file')
    args = ap.parse_args(argv)

    def count(data: Path, split: str) -> int:
        """The dataset's windows in ``split`` (0 where it has none); a directory that is no dataset stops here."""
        card = data / 'card.json'
        if not card.is_file():
            ap.error(f'{data} is not a dataset (no card.json): give --data / --reference a dataset directory')
        return json.loads(card.read_text()).get('splits', {}).get(split, {}).get('count', 0)

    windows = count(args.data, args.split)
    if windows < 1:
        ap.error(f'{args.data} has no {args.split} windows (scripts/rerecord_independent.py makes them)')
    if count(args.reference, args.split) < windows:
        ap.error(f'{args.reference} has fewer {args.split} windows than {args.data}: it is not the dataset '
                 f'{args.data} was re-recorded from')
    for split in args.check_splits:
        if count(args.reference, split) < 1:
            ap.error(f'--check-splits {split}: {args.reference} has no {split} windows')
    command = 'python scripts/independent_layout_probe.py ' + ' '.join(argv if argv is not None else sys.argv[1:])
    result = {'run': {'command': command, 'date': time.strftime('%Y-%m-%d'), 'commit': source_commit(),
                      'machine': f'{cpu_model()}, {os.cpu_count()} cores, Python {platform.python_version()}'},
              'result': measure(args.data, args.reference, args.split, args.limit)}
    result['result']['reference_splits'] = [walls_beyond_reach(args.reference, split) for split in args.check_splits]
    publish_result(result, args.json, markdown(result), args.markdown, MARK_BEGIN, MARK_END)
    return 0


if __name__ == '__main__':
    sys.exit(main())
