# SPDX-License-Identifier: Apache-2.0
"""docs/RESULTS.md, "The bar of the networks on the measured room (issue #22)": its criteria checked against the
result files (test split, a new seed, the shifted rooms, the independent re-recording, the benchmarks), and each
miss with the measured figure that explains it. A criterion whose result file is absent is listed as not
measured, never as met."""
from __future__ import annotations

from audio_vision.paths import busy_at_start
from audio_vision.simulation.config import SOURCE_CLASSES
from audio_vision.core.classes import ROOM_CLASSES

from .common import Criterion, criteria_table, published, stage_optim
from .inputs import ATNET_SEEDS, ATNET_STUDY, Inputs, atnet_study_modality


def _method(res: dict, modality: str, metric: str) -> float:
    return published(res)[modality][metric]


def _within(name: str, ref: dict, other: dict | None, tolerance: float, what: str,
            metrics=(('depth', 'abs_rel', 'AbsRel'), ('depth', 'delta1', 'δ1'), ('segmentation', 'miou', 'mIoU')),
            shipped: dict | None = None, with_encoder: dict | None = None) -> list[Criterion]:
    """The method's metrics on ``other`` within ``tolerance`` (a share) of ``ref``'s, one criterion each. ``shipped``:
    the model ids the bar is about; results of other models are shown, named, and never count as met, except those of
    ``with_encoder``: the shipped models' files with their VQ-VAE encoders (inputs.with_upper_bound), whose method is
    the same."""
    out = []
    ids = [d.get('model_ids') or {} for d in (other, ref) if d is not None and shipped is not None
           and (d.get('model_ids') or {}) != shipped]
    foreign_ids = [i for i in ids if i != with_encoder]
    foreign = bool(foreign_ids)
    name_ids = lambda i: '+'.join(f'{m}:{v}' for m, v in i.items())  # noqa: E731
    note = (f'; models {name_ids(foreign_ids[0])}, not the shipped ones' if foreign else
            f'; models {name_ids(ids[0])}, the shipped ones with their VQ-VAE encoders, same test scores' if ids
            else '')
    for modality, metric, label in metrics:
        crit = f'{name}: method {label} within {tolerance * 100:g} % of {what}'
        if other is None:
            out.append((crit, False, 'not measured'))
            continue
        a, b = _method(ref, modality, metric), _method(other, modality, metric)
        out.append((crit, abs(b - a) <= tolerance * abs(a) and not foreign,
                    f'{b:.3f} vs {a:.3f} ({(b / a - 1) * 100:+.1f} %{note})'))
    return out


def rows(inp: Inputs) -> list[Criterion]:
    bar, res = inp.facts['room_bar'], inp.results
    out: list[Criterion] = []
    for label, data in (('test', res), ('new seed', inp.fresh)):
        if data is None:
            out.append((f'{label}: the method measured', False, 'not measured'))
            continue
        out += [(f'{label}: {name}', ok, value) for name, ok, value in split_bars(bar, data)]
    join = res['rows'].get('layout_method')
    if join:
        m = published(res)['depth']
        ahead = m['abs_rel'] <= join['depth']['abs_rel'] and m['delta1'] >= join['depth']['delta1']
        out.append(('test: depth ahead of the layout baseline (the measured room where it is, the method elsewhere) '
                    'on AbsRel and δ1', ahead,
                    f"AbsRel {m['abs_rel']:.3f} vs {join['depth']['abs_rel']:.3f}, "
                    f"δ1 {m['delta1']:.3f} vs {join['depth']['delta1']:.3f}"))
    e2e = res['rows'].get('end_to_end')
    if e2e:
        tol = bar['end_to_end_tolerance']
        for modality, metric, label, higher in (('depth', 'abs_rel', 'AbsRel', False),
                                                ('segmentation', 'miou', 'mIoU', True)):
            a, b = _method(res, modality, metric), e2e[modality][metric]
            ok = a >= (1 - tol) * b if higher else a <= (1 + tol) * b
            out.append((f'test: method within {tol * 100:g} % of end-to-end on {label}, or ahead', ok,
                        f'{a:.3f} vs {b:.3f} ({(a / b - 1) * 100:+.1f} %)'))
    ids = {'shipped': res.get('model_ids'), 'with_encoder': res.get('with_encoder_model_ids')}
    out += _within('new seed', res, inp.fresh, bar['fresh_tolerance'], 'the test split', **ids)
    out += _within('shifted rooms', res, inp.shifted, bar['shifted_tolerance'], 'the test split',
                   metrics=(('depth', 'abs_rel', 'AbsRel'), ('depth', 'delta1', 'δ1')), **ids)
    ref = inp.independent_reference
    out += _within('independent re-recording', ref or res, inp.independent if ref else None,
                   bar['independent_tolerance'], 'the same windows as this pipeline records them', **ids)
    out += speed_rows(inp)
    out.append(size_row(inp))
    return out


def split_bars(bar: dict, data: dict, row: str | None = None) -> list[Criterion]:
    """The figures issue #22's bar asks of the method on one dataset's windows (depth AbsRel and δ1, mIoU, person IoU
    speaking and silent), each against its threshold in ``bar`` (facts.yaml room_bar); ``row``: the result file's row
    read (None: the published one, :func:`common.published`)."""
    row = row or data.get('published_row', 'method')
    m = data['rows'][row]
    persons = data.get('person_iou', {}).get(row, {})
    out = [(f"depth AbsRel <= {bar['depth_abs_rel']:.2f}", m['depth']['abs_rel'] <= bar['depth_abs_rel'],
            f"{m['depth']['abs_rel']:.3f}"),
           (f"depth δ1 >= {bar['depth_delta1']:.2f}", m['depth']['delta1'] >= bar['depth_delta1'],
            f"{m['depth']['delta1']:.3f}"),
           (f"mIoU >= {bar['miou']:.2f}", m['segmentation']['miou'] >= bar['miou'], f"{m['segmentation']['miou']:.3f}")]
    for kind in ('speaking', 'silent'):
        iou, need = persons.get(kind), bar[f'person_iou_{kind}']
        out.append((f'person IoU >= {need:.2f} ({kind} persons)', iou is not None and iou >= need,
                    '–' if iou is None else f'{iou:.3f}'))
    return out


#: The oracle rooms (facts.yaml room_bar.<key>): the heading of each, what its layout prior is, the column's name, and
#: how a bar is read (fixed in facts.yaml before the results): met there and missed on the measured room / missed there
ORACLE_ROOMS = {
    'exact_room_study': (
        'What the bars need from the front-end', "simulator's exact room (every wall, floor and ceiling, as if all "
        "were measured; the residual reflectors still the front-end's own; scripts/room_prior_features.py --room "
        'exact', 'the exact room (oracle)', 'blocked by the planes the front-end does not measure',
        'blocked by what the room does not give, whatever the front-end measures'),
    'audible_room_study': (
        'What no front-end hears', "simulator's exact room less the ceilings that reflect almost nothing where the "
        'array tells up from sideways (scripts/room_prior_features.py --room audible; those ceilings rendered as the '
        'front-end renders one it did not measure', 'the exact room less the silent ceilings', "the front-end's to win",
        'blocked by the sensor (ceilings silent where the array resolves elevation, and the bodies), whatever the '
        "front-end's software"),
}


def unmeasured_room_note(shifted: dict | None, test: dict | None) -> str:
    """Where the method's depth error sits in the shifted rooms against the test split: over the pixels where the
    front-end measured the room and the rest (scripts/depth_error_probe.py's ``by_prior``, the published row); ''
    without both probes."""
    parts = []
    for probe in (shifted, test):
        row = (probe or {}).get('published_row', 'method')
        split = ((probe or {}).get('by_prior') or {}).get(row)
        if not split:
            return ''
        parts.append(split)
    (s_in, s_out), (t_in, t_out) = ((p['measured'], p['not_measured']) for p in parts)
    return (f" Where the front-end measured no room, {s_out['pixel_share'] * 100:.0f} % of the pixels there against "
            f"{t_out['pixel_share'] * 100:.0f} % in the test split, the method's AbsRel is {s_out['abs_rel']:.3f} "
            f"({t_out['abs_rel']:.3f}) and carries {s_out['error_share'] * 100:.0f} % of its error "
            f"({t_out['error_share'] * 100:.0f} %); where it measured the room, {s_in['abs_rel']:.3f} "
            f"({t_in['abs_rel']:.3f}; docs/depth_error_probe_shifted.json, docs/depth_error_probe.json): the "
            "pixels of the room the front-end did not measure are the larger part of the miss.")


def before_fusion(inp: Inputs) -> tuple[dict, dict | None, dict | None]:
    """(test results, new seed results, depth probe) of the models shipped before the layout fused over the drive
    (facts.yaml room_bar.fused_layout_shipping's before files), which the studies made before it compared with; the
    shipped models' own where those files are absent."""
    files = inp.fused_layout
    if files.get('test_before'):
        return files['test_before'], files.get('fresh_before'), files.get('probe_before')
    return inp.results, inp.fresh, inp.depth_probe


def oracle_room(inp: Inputs, key: str) -> str:
    """The method retrained on an oracle room as its layout prior (facts.yaml room_bar.<key>, :data:`ORACLE_ROOMS`)
    beside the shipped method on the measured room, each of the bar's figures on the test split and the new seed's
    windows, and what blocks each bar read as the study's entry says (fixed before its results); '' without its
    test-split file."""
    study, files = inp.facts['room_bar'].get(key), inp.room_priors.get(key) or {}
    if not study or not files.get('test'):
        return ''
    heading, what, column, here, everywhere = ORACLE_ROOMS[key]
    bar = inp.facts['room_bar']
    test_then, fresh_then, _ = before_fusion(inp)      # the measured window's room, as the study compared
    splits = (('test', test_then, files['test']), ('new seed', fresh_then, files.get('fresh')))
    # the decoded method on both sides: the oracle's files score the networks alone
    pairs = [(label, split_bars(bar, shipped, 'method'), split_bars(bar, oracle, 'method') if oracle else None)
             for label, shipped, oracle in splits if shipped is not None]
    mark = lambda ok, value: value if ok else f'**{value}**'  # noqa: E731
    table = [f"| one retrain (seed {study['seed']}) | the measured window's room (shipped then) | {column} |",
             '| --- | --- | --- |']
    front_end, room = [], []
    for label, measured, oracle_bars in pairs:
        for i, (name, ok, value) in enumerate(measured):
            oracle = oracle_bars[i] if oracle_bars else (name, False, 'not measured')
            table.append(f'| {label}: {name} | {mark(ok, value)} | {mark(oracle[1], oracle[2])} |')
            if oracle_bars and oracle[1] and not ok:
                front_end.append(f'{label}: {name}')
            elif oracle_bars and not oracle[1]:
                room.append(f'{label}: {name}')
    text = (f'\n**{heading}.** The method retrained on features whose layout prior is the {what}, docs/'
            f"{study['file']}, docs/{study['fresh_file']}) and scored on the same windows with that prior (misses in "
            'bold):\n\n' + '\n'.join(table) + '\n\n')
    if front_end:
        text += f'Met there and missed on the measured room, so {here}: ' + '; '.join(front_end) + '. '
    if room:
        text += f'Missed there too, so {everywhere}: ' + '; '.join(room) + '. '
    exact = (inp.room_priors.get('exact_room_study') or {}).get('test')
    if key != 'exact_room_study' and exact:
        a, b = exact['rows']['method']['depth']['abs_rel'], files['test']['rows']['method']['depth']['abs_rel']
        if b < a:
            text += ("Its prior holds less than the exact room's, yet its method's test depth AbsRel is lower "
                     f'({b:.3f} against {a:.3f}): the exact-room depth network drew no body (its bodies\' AbsRel '
                     'above), a training that settled on the room alone, not a limit of the room. ')
    probe = (files.get('probe') or {}).get('rows', {}).get('method')
    if probe:
        share, err = probe['class_pixel_share'], probe['by_class']
        bodies = sum(share[c] * err[c] for c in SOURCE_CLASSES if c in err) / probe['abs_rel']
        text += (f"There the bodies carry {bodies * 100:.0f} % of the method's test AbsRel (their AbsRel "
                 + ', '.join(f'{c} {err[c]:.2f}' for c in SOURCE_CLASSES if c in err)
                 + "; the room's " + ', '.join(f'{c} {err[c]:.3f}' for c in ROOM_CLASSES if c in err)
                 + f"; docs/{study['depth_probe']}). ")
    return text.rstrip() + f"\n\nHow it was made: `{study['command']}`.\n"


def bodies_on_floor(inp: Inputs) -> str:
    """The method's depth with its bodies stood on the measured floor (facts.yaml room_bar.bodies_on_floor_study),
    judged by its rule on the validation split, with the test split and the new seed beside it; '' without its
    validation file."""
    study, val = inp.facts['room_bar'].get('bodies_on_floor_study'), inp.bodies_on_floor_val
    spreads = seed_spreads(inp)
    row = (study or {}).get('row')
    if not study or not val or row not in val['rows'] or not spreads:
        return ''
    table = ['| split | AbsRel, as decoded | AbsRel, bodies on the floor | δ1, as decoded | δ1, bodies on the floor |',
             '| --- | --- | --- | --- | --- |']
    for label, res in (('validation', val), ('test', inp.results), ('new seed', inp.fresh),
                       ('shifted rooms', inp.shifted), ('independent re-recording (test windows)', inp.independent),
                       ('the same windows as this pipeline records them', inp.independent_reference)):
        if res and row in res['rows']:
            a, b = res['rows']['method']['depth'], res['rows'][row]['depth']
            table.append(f"| {label} | {a['abs_rel']:.4f} | {b['abs_rel']:.4f} | {a['delta1']:.4f} | "
                         f"{b['delta1']:.4f} |")
    a, b = val['rows']['method']['depth'], val['rows'][row]['depth']
    met = (a['abs_rel'] - b['abs_rel'] > spreads[('method', 'abs_rel')]
           and a['delta1'] - b['delta1'] <= spreads[('method', 'delta1')])
    change = (f"AbsRel {a['abs_rel'] - b['abs_rel']:+.4f} lower, δ1 {b['delta1'] - a['delta1']:+.4f}; the seed "
              f"spreads {spreads[('method', 'abs_rel')]:.4f}, {spreads[('method', 'delta1')]:.4f}")
    verdict = (f'met on the validation split ({change}): the pipeline publishes it (AudioToVision and the node\'s '
               f'`bodies_on_floor`, on by default) and the bars read its row' if met else
               f'not met on the validation split ({change})')
    return ('\n**Bodies stood on the measured floor.** The method\'s depth with the bodies its segmentation draws '
            'brought, column by column, no farther than the floor where their lowest pixel meets it '
            f"(audio_vision/core/inference/floor_contact.py; nothing retrained; evaluate's `{row}` row, `method` "
            'staying the decoder\'s output so that every earlier study compares like with like):\n\n'
            + '\n'.join(table) + f"\n\nThe rule fixed before its validation result (facts.yaml): {verdict}.\n\n"
            f"How it was made: `{study['command']}`.\n")


def fused_layout(inp: Inputs) -> str:
    """The default model reproduced on the layout fused over each drive (facts.yaml room_bar.fused_layout_shipping)
    against the models shipped before it, judged by its rule on the validation split (the published row), with the
    test split and the new seed beside it; '' without its validation files."""
    study, files = inp.facts['room_bar'].get('fused_layout_shipping'), inp.fused_layout
    spreads = seed_spreads(inp)
    if not study or not files.get('val') or not files.get('before_val') or not spreads:
        return ''
    names = (('abs_rel', 'AbsRel', False), ('delta1', 'δ1', True), ('miou', 'mIoU', True),
             ('speaking', 'person IoU, speaking', True), ('silent', 'person IoU, silent', True))

    def value(res: dict, name: str) -> float:
        if name in ('speaking', 'silent'):
            return res['person_iou']['method'][name]
        return published(res)['depth' if name in ('abs_rel', 'delta1') else 'segmentation'][name]

    table = ['| split | figure | each window alone (before) | fused over the drive | change | seed spread |',
             '| --- | --- | --- | --- | --- | --- |']
    for label, before, after in (('validation', files['before_val'], files['val']),
                                 ('test', files.get('test_before'), inp.results),
                                 ('new seed', files.get('fresh_before'), inp.fresh)):
        if before and after:
            for name, text, _ in names:
                a, b = value(before, name), value(after, name)
                table.append(f"| {label} | {text} | {a:.4f} | {b:.4f} | {b - a:+.4f} | "
                             f"{spreads[('method', name)]:.4f} |")
    before, after = files['before_val'], files['val']
    gain = {name: (value(after, name) - value(before, name)) * (1 if higher else -1) for name, _, higher in names}
    met = gain['abs_rel'] > spreads[('method', 'abs_rel')] and all(
        gain[n] >= -spreads[('method', n)] for n in ('abs_rel', 'delta1', 'miou'))
    verdict = ('met: the models fused over the drive are the shipped ones (config/train.yaml `layout_fusion: true`)'
               if met else 'not met: the shipped models keep each window\'s own layout')
    return ('\n**The layout fused over a drive.** The default model reproduced in full (every network, the '
            f"end-to-end baseline too, seed {study['seed']}) on features whose layout prior is the room the front-end "
            "measured over the drive so far (`FeatureConfig.layout_fusion`, audio_vision/sonar/fusion.py "
            "`DriveFusion`: each room's windows in order with the simulator's poses as odometry; the node reads its "
            "odometry, docs/ROS.md), "
            'against the models shipped before it, on the published row (the bodies stood on the floor):\n\n'
            + '\n'.join(table) + f"\n\nThe rule fixed before its results (facts.yaml): {verdict}.\n\n"
            f"How it was made: `{study['command']}`.\n" + odometry_noise_table(files))


def odometry_noise_table(files: dict) -> str:
    """The shipped models on the test windows fused with drifting odometry, and with none (scripts/
    odometry_noise_probe.py), beside the models shipped before the fusion (each window's own room); '' without the
    file."""
    noise, before = files.get('odometry_noise'), files.get('test_before')
    if not noise or not before:
        return ''
    row = noise['published_row']
    unfused = published(before)['depth']['abs_rel']
    lines = ['| odometry: position drift (share of each step), yaw drift (deg per m) | AbsRel | δ1 | mIoU |',
             '| --- | --- | --- | --- |']
    for level in noise['levels'].values():
        r = level[row]
        drift = ('none (`pose_source: none`)' if level['position_drift_share'] is None else
                 f"{level['position_drift_share'] * 100:g} %, {level['yaw_drift_deg_per_m']:g}")
        lines.append(f"| {drift} | {r['abs_rel']:.4f} | {r['delta1']:.4f} | {r['miou']:.4f} |")
    text = ('\nThe models were trained on drives placed with exact poses. Fused with drifting odometry instead (a '
            "random walk from each room's first window, growing with each step's length), and with none; "
            f"`{noise['command']}`, {noise['machine']}, {noise['date']}; test split, published row:\n\n"
            + '\n'.join(lines) + '\n')
    alone = noise['levels'].get('none', {}).get(row)
    if alone:
        no_better = [f"{v['position_drift_share'] * 100:g} %, {v['yaw_drift_deg_per_m']:g}"
                     for v in noise['levels'].values()
                     if v['position_drift_share'] is not None and v[row]['abs_rel'] >= alone['abs_rel']]
        worse = alone['abs_rel'] > unfused
        text += (f"\nWithout odometry the shipped models' AbsRel is {alone['abs_rel']:.4f}, "
                 + ('worse' if worse else 'no worse')
                 + f" than the models before the fusion ({unfused:.4f}, trained on each window's own room)"
                 + (': a robot without odometry pays for the fusion it cannot use. ' if worse else '. ')
                 + (f"Drift of {'; '.join(no_better)} gives no better than no odometry." if no_better else
                    'Every drift measured gives better than no odometry.') + '\n')
    return text


def fused_room(inp: Inputs) -> str:
    """The method retrained on the front-end's layouts fused over each room's windows (facts.yaml
    room_bar.fused_room_study) against the shipped method, judged by the study's rule against the seed study's
    spreads; '' without its test-split file."""
    study, files = inp.facts['room_bar'].get('fused_room_study'), inp.room_priors.get('fused_room_study') or {}
    spreads = seed_spreads(inp)
    test_then, fresh_then, _ = before_fusion(inp)
    if not study or not files.get('test') or not spreads:
        return ''
    names = (('abs_rel', 'AbsRel', False), ('delta1', 'δ1', True), ('miou', 'mIoU', True),
             ('speaking', 'person IoU, speaking', True), ('silent', 'person IoU, silent', True))
    table = ['| figure | the measured window (shipped then) | fused over the room\'s windows | change | seed spread |',
             '| --- | --- | --- | --- | --- |']
    gain = {}
    for name, label, higher in names:
        a, b = figure(test_then, 'method', name), figure(files['test'], 'method', name)
        gain[name] = (b - a) if higher else (a - b)               # > 0: better
        table.append(f"| {label} | {a:.4f} | {b:.4f} | {b - a:+.4f} | {spreads[('method', name)]:.4f} |")
    spread = {name: spreads[('method', name)] for name in ('abs_rel', 'delta1', 'miou')}
    better = gain['abs_rel'] > spread['abs_rel'] or gain['miou'] > spread['miou']
    no_worse = all(gain[n] >= -spread[n] for n in spread)
    verdict = ('met: an odometry input that fuses the layout in the node is worth building' if better and no_worse
               else 'not met: fusing the layout over a drive is not worth an odometry input to the node at this gain')
    if inp.fused_layout.get('val'):
        verdict += ' (built since: "The layout fused over a drive" below)'

    fresh = files.get('fresh')
    fresh_text = ''
    if fresh and fresh_then:
        fresh_text = (' On the new seed\'s windows fused the same way: AbsRel '
                      f"{figure(fresh_then, 'method', 'abs_rel'):.4f} -> {figure(fresh, 'method', 'abs_rel'):.4f}, "
                      f"mIoU {figure(fresh_then, 'method', 'miou'):.4f} -> {figure(fresh, 'method', 'miou'):.4f} "
                      f"(docs/{study['fresh_file']}).")
    return ('\n**What a drive would give the networks.** The method retrained on the front-end\'s layouts fused over '
            "the windows of each room so far (its poses in order, the simulator's poses as odometry; "
            f"scripts/room_prior_features.py --room fused, docs/{study['file']}; one retrain, seed {study['seed']}) "
            'against the shipped method on the same test windows:\n\n' + '\n'.join(table)
            + f"\n\nThe rule fixed before its results (facts.yaml): {verdict}.{fresh_text}\n\nHow it was made: "
            f"`{study['command']}`.\n")


def ceiling_note(probe: dict | None) -> str:
    """Which ceilings the front-end does not measure (scripts/ceiling_material_probe.py): '' without its file."""
    if not probe:
        return ''
    a, low = probe['absorbing'], probe['elevation_band_hz'][0]
    return (f"; the front-end measures no ceiling in {probe['not_measured'] * 100:.0f} % of the {probe['split']} "
            f"windows, {a['share_of_misses'] * 100:.0f} % of those under the ceilings that absorb at least "
            f"{a['min_absorption']:g} of the chirp's energy from {low:g} Hz up, where the array tells up from "
            f"sideways ({', '.join(a['materials'])}: not measured in {a['not_measured_absorbing'] * 100:.0f} % of "
            f"their windows, the other ceilings in {a['not_measured_other'] * 100:.0f} %; "
            "docs/ceiling_material.json)")


def layout_snap_note(snap: dict | None) -> str:
    """What snapping the method's depth to the measured layout where they agree buys (scripts/tune_layout_snap.py);
    '' without its file."""
    if not snap:
        return ''
    val, base = snap['val'], snap['val']['method']
    tight = min(val['snap'], key=float)
    best_tau, best = min(val['snap'].items(), key=lambda item: item[1]['abs_rel'])
    text = (f" Where the room is measured the method already draws it: on the validation split its depth agrees with "
            f"the layout's within {float(tight) * 100:g} % on {val['snap'][tight]['snapped_pixel_share'] * 100:.0f} % "
            f"of the pixels, and taking the layout's depth where they agree (scripts/tune_layout_snap.py, "
            f"docs/layout_snap.json) moves AbsRel from {base['abs_rel']:.4f} to {best['abs_rel']:.4f} at best "
            f"(tolerance {float(best_tau) * 100:g} %, δ1 {best['delta1']:.4f} against {base['delta1']:.4f})")
    if snap['chosen_tau'] is None:
        return text + ': no tolerance kept the method\'s δ1, so none was scored on the test split.'
    test = snap['test']['snap'][str(snap['chosen_tau'])]
    return (text + f"; at the tolerance chosen there ({snap['chosen_tau'] * 100:g} %) the test split's AbsRel moves "
            f"from {snap['test']['method']['abs_rel']:.4f} to {test['abs_rel']:.4f}.")


def size_row(inp: Inputs) -> Criterion:
    """models/ within facts.yaml room_bar.models_mb megabytes (10^6 bytes; the mebibytes beside it)."""
    total, limit = sum(inp.sizes.values()), inp.facts['room_bar']['models_mb']
    return (f'models/ <= {limit:g} MB', total <= limit,
            f'{total:.2f} MB ({total * 1e6 / 1048576:.1f} MiB)')


def speed_rows(inp: Inputs) -> list[Criterion]:
    bar, b = inp.facts['room_bar'], inp.benchmarks
    row = (b or {}).get('perception', {}).get((b or {}).get('default_backend'), {}).get('both')
    ids = inp.results.get('model_ids') or {}
    shipped = b is not None and b.get('model', {}).get('model_id') == '+'.join(f'{m}:{i}' for m, i in ids.items())
    value = 'not measured' if not row else (
        f"{row['p50_ms']:.1f} ms ({b['default_backend']}, {b['model']['model_id']}"
        + ('' if shipped else '; not the models scored above') + beside_other_jobs(b) + ')')
    out = [(f"both modalities p50 <= {bar['inference_ms']:g} ms", bool(row) and shipped
            and row['p50_ms'] <= bar['inference_ms'], value)]
    sim = (inp.latency or {}).get('results', {}).get('source=sim')
    out.append((f"graph window end -> image received p50 <= {bar['graph_ms']:g} ms", bool(sim)
                and sim['total_ms']['p50'] <= bar['graph_ms'],
                'not measured' if not sim else f"{sim['total_ms']['p50']:.1f} ms (inference in the node p50 "
                                               f"{sim['stages_ms']['inference']['p50']:.1f} ms"
                                               f"{beside_other_jobs(inp.latency)})"))
    return out


def beside_other_jobs(result: dict) -> str:
    """'; measured beside other jobs (load average ..)' where a benchmark's machine record says at least one core was
    busy before it began (:func:`audio_vision.paths.busy_at_start`, which benchmarks/bench_report.py flags the same
    runs with), else ''."""
    machine = result.get('machine', {})
    if not busy_at_start(machine):
        return ''
    return f"; measured beside other jobs, load average {machine['load_average_at_start'][0]:.2f} at its start"


def prior_split(by_prior: dict, row: str = 'method') -> str:
    """Where the method's depth error sits against the layout prior (docs/depth_error_probe.json, ``by_prior``): the
    pixels where the front-end measured the room and the rest, each with its share of the AbsRel, for the probe's
    ``row``; '' without it."""
    m, layout = by_prior.get(row), (by_prior.get('layout') or {}).get('measured')
    if not m or not layout or m['measured']['abs_rel'] is None or m['not_measured']['abs_rel'] is None:
        return ''
    here, there = m['measured'], m['not_measured']
    return (f"; the pixels where it measured the room ({here['pixel_share'] * 100:.0f} % of them) carry "
            f"{here['error_share'] * 100:.0f} % of the method's AbsRel (its AbsRel {here['abs_rel']:.3f} there, the "
            f"layout prior's own {layout['abs_rel']:.3f}), the others {there['error_share'] * 100:.0f} % (AbsRel "
            f"{there['abs_rel']:.3f}; pooled over pixels, docs/depth_error_probe.json)")


def causes(inp: Inputs, missed: dict) -> list[str]:
    """One line per group of misses: the measured figure that explains it, from the result files."""
    out = []
    published_row = (inp.depth_probe or {}).get('published_row', 'method')     # the row the bars read
    probe = (inp.depth_probe or {}).get('rows', {}).get(published_row)
    if any('depth' in k for k in missed) and probe:
        share, err = probe['class_pixel_share'], probe['by_class']
        bodies = sum(share[c] * err[c] for c in SOURCE_CLASSES if c in err) / probe['abs_rel']
        walls = share['wall'] * err['wall'] / probe['abs_rel']
        body_pixels = sum(share[c] for c in SOURCE_CLASSES if c in share)
        text = (f"**Depth**: the bodies are {body_pixels * 100:.0f} % of the pixels and carry "
                f"{bodies * 100:.0f} % of the method's AbsRel (their AbsRel "
                + ', '.join(f'{c} {err[c]:.2f}' for c in SOURCE_CLASSES if c in err)
                + f"), the walls {walls * 100:.0f} % (AbsRel {err['wall']:.3f}; docs/depth_error_probe.json)")
        shell = (inp.sonar or {}).get('datasets', {}).get('default', {}).get('rows', {}).get('exact_shell')
        if shell:
            text += (f"; the exact room without its bodies scores AbsRel {shell['depth']['abs_rel']:.3f}, "
                     f"δ1 {shell['depth']['delta1']:.3f} (docs/sonar.json): the room alone is at the bar, the rest "
                     "is the bodies")
        walls_failed = (inp.results.get('layout_errors') or {}).get('wall_distance_m', {}).get('failed')
        if walls_failed is not None:
            text += f", and the front-end measures no wall in {walls_failed * 100:.0f} % of the walls' quadrants"
        text += prior_split((inp.depth_probe or {}).get('by_prior') or {}, published_row)
        out.append(text + '.' + layout_snap_note(inp.layout_snap))
    iou = inp.results['rows']['method']['segmentation'].get('per_class_iou')
    if any('mIoU >=' in k for k in missed) and iou:
        room = [iou[c] for c in ROOM_CLASSES if c in iou]
        bodies = [iou[c] for c in SOURCE_CLASSES if c in iou]
        if room and bodies:
            out.append(f"**mIoU**: the room's classes average IoU {sum(room) / len(room):.3f}, the bodies' "
                       f"{sum(bodies) / len(bodies):.3f} ("
                       + ', '.join(f'{c} {iou[c]:.3f}' for c in SOURCE_CLASSES if c in iou) + ')'
                       + ceiling_note(inp.ceiling_material) + '.')
    r = (inp.reflectors or {}).get('result')
    if any('person IoU' in k for k in missed) and r:
        person = r['per_class']['person']
        out.append(f"**Persons**: the front-end's residual reflectors find {person['found'] * 100:.0f} % of the "
                   f"persons (range median {person['range_err_m']['median'] * 100:.1f} cm, image position median "
                   f"{person['pixel_err']['median']:.1f} px of {r['grid']}x{r['grid']}), and "
                   f"{r['reflectors']['on_no_body_share'] * 100:.0f} % of the reflectors lie on no body; the "
                   f"strongest lies on a silent body in {r['strongest_on_silent_body']['hit_rate'] * 100:.0f} % of "
                   f"{r['strongest_on_silent_body']['windows']} windows (chance "
                   f"{r['strongest_on_silent_body']['chance'] * 100:.0f} %; docs/reflectors.json).")
    datasets = (inp.sonar or {}).get('datasets', {})
    if any(k.startswith('shifted') for k in missed) and {'default', 'shifted'} <= set(datasets):
        a, b = (datasets[d]['rows']['exact_shell']['depth'] for d in ('default', 'shifted'))
        out.append(f"**Shifted rooms**: there the bodies are a larger share of the depth error: the exact room "
                   f"without its bodies scores AbsRel {b['abs_rel']:.3f} against {a['abs_rel']:.3f} in the default "
                   f"rooms (docs/sonar.json), so a model that adds the bodies as well as in-distribution still "
                   f"starts from a worse room." + unmeasured_room_note(inp.shifted_probe, inp.depth_probe))
    if any(k.startswith('models/') for k in missed):
        baselines = sum(mb for name, mb in inp.sizes.items() if name.startswith('end_to_end'))
        out.append(f"**models/**: the end-to-end baselines, shipped to score the method against them, are "
                   f"{baselines:.2f} MB of it, the method's checkpoints and the mean images "
                   f"{sum(inp.sizes.values()) - baselines:.2f} MB (weights stored as float16; the model card).")
    swap = inp.independent_swap
    if any(k.startswith('independent') for k in missed) and swap:
        out.append(independent_cause(inp, swap))
    out += [f"**Method against end-to-end ({label})**: {text}"
            for label, text in end_to_end_spreads(inp, missed).items()]
    bench_sonar = inp.bench_sonar
    if any('p50 <=' in k for k in missed) and bench_sonar:
        f = bench_sonar['sonar_front_end']
        out.append(f"**Speed**: the sonar front-end alone takes {f['p50_ms']:.1f} ms p50 on one core "
                   f"(docs/bench_sonar.json, {bench_sonar['date']}); it runs on one worker of the parallel backend "
                   f"beside the other features, and the networks wait for it." + machine_speed(inp))
    return out


def machine_speed(inp: Inputs) -> str:
    """The speed figures against the models shipped before in the same run (bench_perception's compared row) and
    against the previous measurement on its own machine (docs/benchmarks_previous.json,
    docs/latency_breakdown_previous.json): whether the models or the machine moved them; '' without the files."""
    now, before = inp.benchmarks, inp.benchmarks_previous
    if not now or not before:
        return ''
    backend = now['default_backend']
    both = now['perception'][backend]['both']['p50_ms']
    compared = (now.get('perception_compared') or {}).get(backend)
    text = (f" The default backend ({backend}) took {both:.1f} ms p50 on {now['machine'].get('cpu')} "
            f"({now['date'][:10]}, docs/benchmarks.json)")
    if compared:
        text += (f", and in the same run the models shipped before (the same networks' shapes, on the same code) "
                 f"{compared['both']['p50_ms']:.1f} ms")
    prev = before.get('perception', {}).get(before.get('default_backend'), {}).get('both')
    if prev:
        text += (f"; the previous measurement, on {before['machine'].get('cpu')} ({before['date'][:10]}, git "
                 f"{before['machine'].get('git_commit')}, docs/benchmarks_previous.json): {prev['p50_ms']:.1f} ms")
    sim_now, sim_prev = ((lat or {}).get('results', {}).get('source=sim')
                         for lat in (inp.latency, inp.latency_previous))
    if sim_now and sim_prev:
        text += (f". The graph's window end → image p50: {sim_now['total_ms']['p50']:.1f} ms now, "
                 f"{sim_prev['total_ms']['p50']:.1f} ms in the previous measurement (git "
                 f"{inp.latency_previous['machine'].get('git_commit')}, docs/latency_breakdown_previous.json)")
    return text + '.'


def end_to_end_spreads(inp: Inputs, missed) -> dict[str, str]:
    """{metric label: the retrains' spread (:func:`retrain_spread` of every study)} for each metric whose 'method
    within .. of end-to-end on ..' criterion is among ``missed`` (criterion names, or 'name: value' lines of either
    bar); a metric without a spread to show is left out."""
    out = {}
    for modality, metric, label in (('depth', 'abs_rel', 'AbsRel'), ('segmentation', 'miou', 'mIoU')):
        if any(label in name.partition('of end-to-end on ')[2].split(',')[0] for name in missed):
            text = ' '.join(filter(None, [retrain_spread(inp, study, modality, metric, label)
                                          for study in inp.retrain_studies]
                                   + [budget_gap(inp, modality, metric, label)]
                                   + [vqvae_gap(inp)] * (modality == 'segmentation')))
            if text:
                out[label] = text
    return out


def method_gap(res: dict, modality: str, metric: str) -> float:
    """The method against the end-to-end baseline on ``metric`` in one result file, in percent of the baseline's."""
    rows = res['rows']
    return (rows['method'][modality][metric] - rows['end_to_end'][modality][metric]) \
        / rows['end_to_end'][modality][metric] * 100


def budget_gap(inp: Inputs, modality: str, metric: str, label: str) -> str:
    """The method against the end-to-end baseline on ``metric`` at both budgets of the modality's longer-budget study
    (facts.yaml room_bar.<modality>_budget_study); '' without its files."""
    given, files = inp.facts['room_bar'].get(f'{modality}_budget_study'), inp.budget_studies.get(modality) or {}
    runs = [files.get('before'), files.get('after')]
    if not given or not all(r and r['rows'].get('end_to_end') for r in runs):
        return ''
    return (f"Both networks trained {before_epochs(inp, given)} and {given['epochs']} epochs (the {modality} budget "
            f"study below): the method against the baseline on {label} {method_gap(runs[0], modality, metric):+.1f} % "
            f"and {method_gap(runs[1], modality, metric):+.1f} %.")


def vqvae_gap(inp: Inputs) -> str:
    """Once the shipped segmentation VQ-VAE is trained at the VQ-VAE budget study's epochs: the method against the
    end-to-end baseline on mIoU with it against the same AT-net budget on the VQ-VAE shipped before (the segmentation
    budget study), the baseline the same network in both; '' otherwise or without the files."""
    given = inp.facts['room_bar'].get('vqvae_budget_study')
    study = (inp.budget_studies.get('segmentation') or {}).get('after')
    if not given or not study or not shipped_vqvae_at(inp, given['epochs']):
        return ''
    then = before_fusion(inp)[0]          # the models shipped when the study ran
    pairs = [(figure(res, 'method', 'miou'), figure(res, 'end_to_end', 'miou')) for res in (study, then)]
    gaps = [method_gap(res, 'segmentation', 'miou') for res in (study, then)]
    same = round(pairs[0][1], 3) == round(pairs[1][1], 3)
    return (f"The same AT-net budget on the VQ-VAE shipped before scored the method's mIoU {pairs[0][0]:.3f} "
            f"({gaps[0]:+.1f} % against its baseline's {pairs[0][1]:.3f}), on the shipped models' own VQ-VAE "
            f"({given['epochs']} epochs) {pairs[1][0]:.3f} ({gaps[1]:+.1f} % against {pairs[1][1]:.3f}; the "
            "segmentation VQ-VAE budget study below)"
            + (": the baseline, which has no VQ-VAE, scored the same, so the gap moved with the VQ-VAE (and the "
               "AT-net trained on its codes)."
               if same else "."))


def shipped_vqvae_at(inp: Inputs, epochs: int) -> bool:
    """Whether the shipped segmentation VQ-VAE was trained `epochs` epochs (its stage's optimizer, modality overrides
    included, in the training run's config)."""
    return stage_optim(inp.train, 'vqvae', 'segmentation').get('epochs') == epochs


def before_epochs(inp: Inputs, given: dict) -> int | None:
    """The epochs a longer-budget study (facts.yaml room_bar.<modality>_budget_study) is compared against: its
    ``before_epochs``, else the configuration's AT-net epochs."""
    return given.get('before_epochs', inp.train.get('atnet_optim', {}).get('epochs'))


def retrain_spread(inp: Inputs, name: str, modality: str, metric: str, label: str) -> str:
    """How far apart the method and the end-to-end baseline were on ``metric`` in each setting of a retrain study
    (facts.yaml room_bar.retrain_studies[name]: the same data, seeds and budget, one change apart): how much of
    the shipped gap the retrains' own spread holds. '' without two settings' test results, or for a study a later
    one holds (its ``superseded_by``). A setting that re-scores another's models (``retrained: false``) is left out:
    its spread is not a retrain's. Where the shipped models are not the study's shipped setting's (a later change
    retrained them), the text says so."""
    given = inp.facts['room_bar']['retrain_studies'].get(name, {})
    if given.get('superseded_by'):
        return ''
    retrained = {n for n, spec in given.get('settings', {}).items() if spec.get('retrained', True)}
    runs = {n: files['test'] for n, files in inp.retrain_studies.get(name, {}).items()
            if n in retrained and files.get('test') and files['test']['rows'].get('end_to_end')}
    if len(runs) < 2:
        return ''
    method = {n: r['rows']['method'][modality][metric] for n, r in runs.items()}
    e2e = {n: r['rows']['end_to_end'][modality][metric] for n, r in runs.items()}
    gaps = ', '.join(f"{n}{' (shipped)' if n == str(given.get('shipped')) else ''} "
                     f"{method_gap(r, modality, metric):+.1f} %" for n, r in runs.items())
    earlier = given.get('settings', {}).get(str(given.get('shipped')), {}).get('test') != 'results.json'
    return (f"Retrained one change apart ({name}: {', '.join(runs)}; the table below"
            f"{', the configuration shipped before' if earlier else ''}), the method's {label} "
            f"spans {min(method.values()):.3f}-{max(method.values()):.3f} and the end-to-end baseline's "
            f"{min(e2e.values()):.3f}-{max(e2e.values()):.3f}; the method against the baseline: {gaps}.")


def independent_cause(inp: Inputs, swap: dict) -> str:
    """The independent re-recording's loss by group of input channels (scripts/independent_swap_probe.py): the groups
    whose swap alone costs the method at least a quarter of its whole loss in AbsRel or mIoU, what each costs, and
    what differs in them between the recordings."""
    runs = {r['name']: r['rows']['method'] for r in swap['runs']}
    ref, ind = runs['reference'], runs['independent']
    alone = {r['independent_groups'][0]: r['rows']['method'] for r in swap['runs']
             if len(r['independent_groups']) == 1}
    parts = []
    for metric, label, sign in (('abs_rel', 'AbsRel', 1.0), ('miou', 'mIoU', -1.0)):
        loss = sign * (ind[metric] - ref[metric])
        heavy = sorted((g for g in alone if loss > 0 and sign * (alone[g][metric] - ref[metric]) >= 0.25 * loss),
                       key=lambda g: -sign * alone[g][metric])
        if heavy:
            parts.append(f"its {label} goes from {ref[metric]:.3f} to {ind[metric]:.3f} with every group swapped, "
                         "and to "
                         + ', '.join(f'{alone[g][metric]:.3f} with the {g} alone' for g in heavy))
    text = (f"**Independent re-recording**: the method fed the same {swap['windows']} windows' features with one group "
            f"of channels at a time from the independent recording (docs/independent_swap.json): " + '; '.join(parts))
    text += srp_bands_alone(swap, ref)
    bands = swap.get('srp_band_mean') or {}
    if bands:
        band = max(bands, key=lambda b: abs(bands[b]['independent'] - bands[b]['reference']))
        text += (f". The SRP-PHAT map of the {band} band averages {bands[band]['independent']:.3f} there against "
                 f"{bands[band]['reference']:.3f} in this pipeline's recording")
    a, b = ((r or {}).get('layout_errors') or {} for r in (inp.independent, inp.independent_reference))
    if a.get('ceiling_m') and b.get('ceiling_m') and a.get('wall_distance_m') and b.get('wall_distance_m'):
        text += (f"; the front-end's ceiling is off by {a['ceiling_m']['p90']:.2f} m at p90 there against "
                 f"{b['ceiling_m']['p90']:.3f} m, and it measures "
                 f"{(1 - a['wall_distance_m']['failed']) * 100:.0f} % of the walls against "
                 f"{(1 - b['wall_distance_m']['failed']) * 100:.0f} % (results_independent*.json)")
    engine = swap.get('engine') or {}
    if engine:
        text += f". The independent engine: {engine.get('reflection')}; air absorption: {engine.get('air_absorption')}"
    return text + '.' + held_out_windows(inp)


def srp_bands_alone(swap: dict, reference: dict) -> str:
    """The SRP-PHAT maps' share of the independent re-recording's mIoU loss band by band (the probe's
    ``srp_band_runs``: one band's map from the independent recording, the rest this pipeline's), largest cost first;
    '' without those runs."""
    alone = {r['band']: r['rows']['method']['miou'] for r in swap.get('srp_band_runs', [])
             if r['name'].endswith('from the independent recording')}
    if not alone:
        return ''
    order = sorted(alone, key=lambda b: alone[b])
    whole = next((r['rows']['method']['miou'] for r in swap['runs']
                  if r['independent_groups'] == ['SRP-PHAT maps']), None)
    text = (f"; band by band, one SRP-PHAT map from the independent recording takes the method's mIoU from "
            f"{reference['miou']:.3f} to "
            + ', '.join(f"{alone[b]:.3f} ({b.removeprefix('SRP-PHAT ')})" for b in order))
    if whole is not None and whole < reference['miou']:
        share = (reference['miou'] - alone[order[0]]) / (reference['miou'] - whole)
        text += (f" (the {order[0].removeprefix('SRP-PHAT ')} band alone {share * 100:.0f} % of what all of them cost, "
                 f"{'most' if share > 0.5 else 'not most'} of it)")
    return text


def held_out_windows(inp: Inputs) -> str:
    """The method's change on validation windows re-recorded the same way (results_independent_val*.json) beside the
    test windows' (results_independent*.json): whether the test figure owes much to which windows were re-recorded
    (their AbsRel changes more than facts.yaml's held_out_spread_points apart); '' without those files."""
    a, b = inp.independent_val, inp.independent_val_reference
    if not a or not b:
        return ''
    metrics = (('AbsRel', 'depth', 'abs_rel'), ('δ1', 'depth', 'delta1'), ('mIoU', 'segmentation', 'miou'))

    def change(ind: dict, ref: dict) -> dict:
        return {label: (_method(ind, group, metric) / _method(ref, group, metric) - 1) * 100
                for label, group, metric in metrics}
    val = change(a, b)
    text = (f" On {a['n_samples']} validation windows re-recorded the same way (docs/results_independent_val.json, "
            "against docs/results_independent_val_reference.json: windows nothing was chosen on) the method's change "
            "is " + ', '.join(f'{v:+.1f} % in {k}' for k, v in val.items()))
    if not inp.independent or not inp.independent_reference:
        return text + '.'
    test = change(inp.independent, inp.independent_reference)
    spread = inp.facts['room_bar']['held_out_spread_points']
    apart = abs(val['AbsRel'] - test['AbsRel']) > spread
    return (text + f", against {test['AbsRel']:+.1f} % in AbsRel on the {inp.independent['n_samples']} test windows"
            + (": the test figure depends on which windows were re-recorded (docs/SONAR.md, \"Walls beyond the "
               "reach\", finds the windows that carry the layout prior's excess)." if apart else
               f" (within {spread:g} points of each other)."))


def budget_table(inp: Inputs) -> str:
    """The prior's networks at the lower epoch budget (facts.yaml room_bar.budget_before) against the same
    configuration at the raised budget (its ``against`` file, docs/results.json by default), both rows, on the bar's
    metrics; '' without either file."""
    before, after, spec = inp.prior_budget_before, inp.prior_budget_after, inp.facts['room_bar']['budget_before']
    if not before or not after:
        return ''
    against = spec.get('against', 'results.json')
    epochs = inp.train.get('atnet_optim', {}).get('epochs')
    metrics = (('depth', 'abs_rel', 'AbsRel'), ('depth', 'delta1', 'δ1'), ('segmentation', 'miou', 'mIoU'))
    lines = [f"| row | metric | {spec['epochs']} epochs | {epochs} epochs |", '| --- | --- | --- | --- |']
    for row in ('method', 'end_to_end'):
        for modality, metric, label in metrics:
            lines.append(f"| {row} | {label} | {before['rows'][row][modality][metric]:.3f} | "
                         f"{after['rows'][row][modality][metric]:.3f} |")
        for kind in ('speaking', 'silent'):
            a, b = before['person_iou'][row].get(kind), after['person_iou'][row].get(kind)
            if a is not None and b is not None:
                lines.append(f'| {row} | person IoU, {kind} | {a:.3f} | {b:.3f} |')
    return (f"\nTried: the epoch budget of both networks with the prior, {spec['epochs']} → {epochs} (the models "
            f"shipped at commit {spec['commit']}, docs/{spec['file']}, against docs/{against}; same data, same "
            f"command):\n\n" + '\n'.join(lines) + '\n')


def retrain_study_table(inp: Inputs, name: str) -> str:
    """Both networks with each setting of facts.yaml room_bar.retrain_studies[name] (one retrain apart), on the test
    split and as the independent re-recording's change from the same windows as this pipeline records them; ''
    unless every file of two settings is here."""
    study = {n: {k: v for k, v in files.items() if v} for n, files in inp.retrain_studies.get(name, {}).items()
             if all(files.get(k) for k in ('test', 'independent', 'reference'))}
    if len(study) < 2:
        return ''
    given = inp.facts['room_bar']['retrain_studies'][name]
    spec, shipped = given['settings'], str(given['shipped'])
    settings = list(study)
    with_shifted = all('shifted' in study[n] for n in settings)

    def change(files: dict, key: str, against: str, row: str, modality: str, metric: str) -> float:
        """% change of ``files[key]``'s metric from ``files[against]``'s."""
        a, b = (files[k]['rows'][row][modality][metric] for k in (key, against))
        return (a - b) / b * 100

    def gap(files: dict, row: str, modality: str, metric: str) -> float:
        return change(files, 'independent', 'reference', row, modality, metric)

    def shifted(files: dict, row: str, metric: str) -> float:
        return change(files, 'shifted', 'test', row, 'depth', metric)

    def head(n: str) -> str:
        return f"{n}{' (shipped)' if n == shipped else ''}"
    lines = [f"| row | metric | {' | '.join(head(n) for n in settings)} |", '| --- | --- |' + ' --- |' * len(settings)]
    for row in ('method', 'end_to_end'):
        for modality, metric, label in (('depth', 'abs_rel', 'test AbsRel'), ('depth', 'delta1', 'test δ1'),
                                        ('segmentation', 'miou', 'test mIoU')):
            values = (study[n]['test']['rows'][row][modality][metric] for n in settings)
            lines.append(f"| {row} | {label} | " + ' | '.join(f'{v:.3f}' for v in values) + ' |')
        for kind in ('speaking', 'silent'):
            lines.append(f"| {row} | test person IoU, {kind} | "
                         + ' | '.join(f"{study[n]['test']['person_iou'][row][kind]:.3f}" for n in settings) + ' |')
        for modality, metric, label in (('depth', 'abs_rel', 'AbsRel'), ('segmentation', 'miou', 'mIoU')):
            lines.append(f"| {row} | independent re-recording: {label} change | "
                         + ' | '.join(f"{gap(study[n], row, modality, metric):+.1f} %" for n in settings) + ' |')
        for metric, label in (('abs_rel', 'AbsRel'), ('delta1', 'δ1')) if with_shifted else ():
            lines.append(f"| {row} | shifted rooms: {label} change from the test split | "
                         + ' | '.join(f"{shifted(study[n], row, metric):+.1f} %" for n in settings) + ' |')
    a, b = settings[-2], settings[-1]              # the latest change: its last two settings

    def move(files_key: str, modality: str, metric: str) -> str:
        x, y = (study[n][files_key]['rows']['method'][modality][metric] for n in (a, b))
        return f'{x:.3f} → {y:.3f}'
    text = (f"With {name} {a} → {b}, the method's independent re-recording changes by "
            f"{gap(study[a], 'method', 'depth', 'abs_rel'):+.1f} % → "
            f"{gap(study[b], 'method', 'depth', 'abs_rel'):+.1f} % "
            f"in AbsRel and {gap(study[a], 'method', 'segmentation', 'miou'):+.1f} % → "
            f"{gap(study[b], 'method', 'segmentation', 'miou'):+.1f} % in mIoU (bar: within "
            f"{inp.facts['room_bar']['independent_tolerance'] * 100:.0f} %); on the test split its AbsRel "
            f"{move('test', 'depth', 'abs_rel')}, mIoU {move('test', 'segmentation', 'miou')}")
    if with_shifted:
        text += (f"; in the shifted rooms its AbsRel {move('shifted', 'depth', 'abs_rel')} "
                 f"({shifted(study[a], 'method', 'abs_rel'):+.1f} % → {shifted(study[b], 'method', 'abs_rel'):+.1f} % "
                 f"from the test split; bar: within {inp.facts['room_bar']['shifted_tolerance'] * 100:.0f} %)")
    text += '.'
    return (f"\nTried: {given['tried']}, one retrain apart: "
            + '; '.join(f"{n}: {spec[n]['what']} (" + ', '.join(f'docs/{spec[n][k]}' for k in study[n]) + ')'
                        for n in settings) + '.\n\n' + '\n'.join(lines) + '\n\n'
            + text + '\n')


#: the depth networks' images (config depth_target), as the tables name them
DEPTH_TARGETS = {'absolute': 'absolute', 'layout_ratio': 'relative to the room'}


def depth_target_table(inp: Inputs) -> str:
    """The shipped depth method (docs/results.json, its config's depth_target) against the same method with the other
    depth target (facts.yaml room_bar.depth_target_study: its target, result file and probe), and the layout alone,
    on the test split; '' without the study's file."""
    study, spec = inp.depth_target_study, inp.facts['room_bar']['depth_target_study']
    shipped_target = inp.train.get('depth_target', 'absolute')
    if not study or spec['target'] == shipped_target:
        return ''
    test_then, _, probe_then = before_fusion(inp)      # the study compared the models shipped then
    by_target = {shipped_target: (test_then['rows'], probe_then), spec['target']: (study['rows'],
                                                                                   inp.depth_target_probe)}
    (absolute, abs_probe), (ratio, ratio_probe) = by_target['absolute'], by_target['layout_ratio']
    mark = {t: ' (shipped)' if t == shipped_target else '' for t in DEPTH_TARGETS}
    kinds = (('method', 'method'), ('method_no_quant', 'method, not snapped to codewords'),
             ('vqvae_upper_bound', 'VQ-VAE upper bound'), ('end_to_end', 'end-to-end (the head adds the room back)'))
    lines = [f"| row | AbsRel, absolute{mark['absolute']} | AbsRel, relative to the room{mark['layout_ratio']} | "
             f"δ1, absolute{mark['absolute']} | δ1, relative to the room{mark['layout_ratio']} |",
             '| --- | --- | --- | --- | --- |']
    for key, label in kinds:
        if key in absolute and key in ratio:
            a, b = absolute[key]['depth'], ratio[key]['depth']
            lines.append(f"| {label} | {a['abs_rel']:.3f} | {b['abs_rel']:.3f} | {a['delta1']:.3f} | "
                         f"{b['delta1']:.3f} |")
    layout = test_then['rows'].get('layout', {}).get('depth')
    a, b = absolute['method']['depth'], ratio['method']['depth']
    verdict = 'lower' if b['abs_rel'] < a['abs_rel'] else 'not lower'
    text = (f"The method's depth AbsRel relative to the room is {b['abs_rel']:.3f} against {a['abs_rel']:.3f} "
            f"absolute ({verdict}; δ1 {b['delta1']:.3f} vs {a['delta1']:.3f})")
    if 'end_to_end' in ratio and 'end_to_end' in absolute:
        e_a, e_b = absolute['end_to_end']['depth'], ratio['end_to_end']['depth']
        text += (f"; the end-to-end baseline's {e_b['abs_rel']:.3f} against {e_a['abs_rel']:.3f} "
                 f"({'lower' if e_b['abs_rel'] < e_a['abs_rel'] else 'not lower'}; δ1 {e_b['delta1']:.3f} vs "
                 f"{e_a['delta1']:.3f})")
    if layout:
        ahead = b['abs_rel'] < layout['abs_rel'] and b['delta1'] > layout['delta1']
        text += (f"; the layout alone scores {layout['abs_rel']:.3f} / {layout['delta1']:.3f}, which the relative "
                 f"method {'is' if ahead else 'is not'} ahead of on both")
    probes = [(pr or {}).get('rows', {}).get('method') for pr in (abs_probe, ratio_probe)]
    if all(probes):
        by = [pr['by_class'] for pr in probes]
        classes = [c for c in ROOM_CLASSES + SOURCE_CLASSES if c in by[0] and c in by[1]]
        files = {shipped_target: 'depth_error_probe.json', spec['target']: spec['probe']}
        text += (f". Per class (AbsRel, absolute → relative; docs/{files['absolute']}, docs/{files['layout_ratio']}): "
                 + ', '.join(f'{c} {by[0][c]:.3f} → {by[1][c]:.3f}' for c in classes))
    return (f"\nCompared: the depth images absolute (log-depth) and as the departure from the measured room "
            f"(`depth_target: layout_ratio`: the VQ-VAE's manifold is of the log ratio of the depth to the layout "
            f"prior's, the prior added back to read metres), the method at the same budget on the same data and test "
            f"windows: the shipped models ({DEPTH_TARGETS[shipped_target]}, docs/results.json) and {spec['what']} "
            f"({DEPTH_TARGETS[spec['target']]}, docs/{spec['file']}: `{spec['command']}`):\n\n"
            + '\n'.join(lines) + f'\n\n{text}.\n')


def section(inp: Inputs) -> str:
    if 'room_bar' not in inp.facts:
        return ''
    bar = rows(inp)
    missed = {name: value for name, ok, value in bar if not ok}
    lines = causes(inp, missed)
    text = ('Every criterion is met.' if not missed else
            'Not every criterion is met; the misses are marked above. What the result files say about them:\n\n'
            + '\n'.join(f'- {line}' for line in lines))
    return ('\n## The bar of the networks on the measured room (issue #22)\n\nGenerated from docs/results.json '
            '(test split), docs/results_fresh.json (a new seed), docs/results_shifted.json (bigger, more '
            'reverberant rooms, noisier mics, a lower array: config/simulation_shifted.yaml), '
            'docs/results_independent.json and docs/results_independent_reference.json (the same test windows '
            're-recorded by an independent room-acoustics implementation, scripts/rerecord_independent.py, and as '
            'this pipeline records them), docs/benchmarks.json and docs/latency_breakdown.json.\n\n'
            + criteria_table(bar) + '\n\n' + text + '\n' + ''.join(oracle_room(inp, key) for key in ORACLE_ROOMS)
            + fused_room(inp) + bodies_on_floor(inp) + fused_layout(inp) + budget_table(inp) + depth_target_table(inp)
            + ''.join(retrain_study_table(inp, name) for name in inp.facts['room_bar'].get('retrain_studies', {}))
            + seed_study_table(inp) + longer_budget_table(inp, 'segmentation')
            + longer_budget_table(inp, 'depth') + vqvae_budget_table(inp)
            + ''.join(atnet_seeds_table(inp, key) if ATNET_SEEDS.fullmatch(key) else atnet_study_table(inp, key)
                      for key in inp.facts['room_bar'] if ATNET_STUDY.fullmatch(key) or ATNET_SEEDS.fullmatch(key)))


def complete_seed_study(inp: Inputs) -> dict:
    """The seed study's result files ({revision: {seed: json}}) when every one is here, else {}."""
    study = inp.seed_study
    return study if study and all(all(seeds.values()) for seeds in study.values()) else {}


def spread(values: list[float]) -> float:
    """How far apart a figure's values over the seeds are."""
    return max(values) - min(values)


def seed_spreads(inp: Inputs) -> dict[tuple[str, str], float]:
    """{('method', figure): the largest spread over the seeds of any revision of the seed study}, figure a name of
    :func:`figure`; only the method's (the study retrained no other row); {} without the study's files."""
    study = complete_seed_study(inp)
    return {('method', name): max(spread([figure(r, 'method', name) for r in seeds.values()])
                                  for seeds in study.values())
            for name in ('abs_rel', 'delta1', 'miou', 'speaking', 'silent')} if study else {}


def figure(res: dict, row: str, name: str) -> float:
    """A result file's ``row`` figure: depth AbsRel or δ1 (``name`` 'abs_rel', 'delta1'), mIoU ('miou') or person IoU
    ('speaking', 'silent')."""
    if name in ('speaking', 'silent'):
        return res['person_iou'][row][name]
    return res['rows'][row]['depth' if name in ('abs_rel', 'delta1') else 'segmentation'][name]


#: a budget study's figures per modality, (name, label); the first is the one the longer budget must gain
BUDGET_FIGURES = {'segmentation': (('miou', 'mIoU'), ('speaking', 'person IoU, speaking'),
                                   ('silent', 'person IoU, silent')),
                  'depth': (('abs_rel', 'AbsRel'), ('delta1', 'δ1'))}


#: the figures (names of :func:`figure`) of which a smaller value is the better one
SMALLER_IS_BETTER = frozenset({'abs_rel'})


def improvement(name: str, delta: float) -> float:
    """A change of figure ``name`` signed so that positive is better."""
    return -delta if name in SMALLER_IS_BETTER else delta


def longer_budget_table(inp: Inputs, modality: str) -> str:
    """A modality's networks at facts.yaml room_bar.<modality>_budget_study's epochs against the same networks at the
    configured budget (its ``before`` file: docs/results.json while those are shipped), both rows, and its rule
    applied with the seed study's spreads: the method's first figure of BUDGET_FIGURES gains more than its spread,
    none of its other figures nor the end-to-end baseline's first one loses more than its spread (a row the seed study
    did not retrain has none: no loss allowed); '' without its files or the seed study's."""
    key = f'{modality}_budget_study'
    given, files, spreads = inp.facts['room_bar'].get(key), inp.budget_studies.get(modality), seed_spreads(inp)
    if not given or not files or not files['before'] or not files['after'] or not spreads:
        return ''
    before, longer = files['before'], files['after']
    epochs = before_epochs(inp, given)
    names = BUDGET_FIGURES[modality]
    before_shown = f"{epochs} epochs" + (' (shipped)' if given.get('before', 'results.json') == 'results.json' else '')
    longer_shown = f"{given['epochs']} epochs" + (f" ({given['shipped']})" if given.get('shipped') else '')
    lines = [f"| row | metric | {before_shown} | {longer_shown} | change | seed spread |",
             '| --- | --- | --- | --- | --- | --- |']
    for row in ('method', 'end_to_end'):
        for name, label in names:
            a, b = figure(before, row, name), figure(longer, row, name)
            # four decimals where the rule compares a change with a spread (three can show them equal)
            shown = (f'{spreads[(row, name)]:.4f}' if (row, name) in spreads
                     else 'none (not retrained with another seed)')
            lines.append(f"| {row} | {label} | {a:.3f} | {b:.3f} | {b - a:+.4f} | {shown} |")

    def gain(row: str, name: str) -> float:        # the change in the better direction
        return improvement(name, figure(longer, row, name) - figure(before, row, name))
    (first, first_label), others = names[0], names[1:]
    checks = [(f"the method's {first_label} gains more than its seed spread",
               gain('method', first) > spreads[('method', first)])]
    checks += [(f"the method's {label} loses no more than its seed spread",
                -gain('method', name) <= spreads[('method', name)]) for name, label in others]
    checks.append((f"the end-to-end baseline's {first_label} loses no more than its seed spread",
                   -gain('end_to_end', first) <= spreads.get(('end_to_end', first), 0.0)))
    verdict = '; '.join(f"{text}: {'yes' if ok else 'no'}" for text, ok in checks)
    met = all(ok for _, ok in checks)
    if modality == 'segmentation':
        classes = before['rows']['method']['segmentation'].get('per_class_iou', {})
        detail = ('Per class (method IoU, ' + f"{epochs} → {given['epochs']} epochs): " + ', '.join(
            f"{c} {classes[c]:.3f} → {longer['rows']['method']['segmentation']['per_class_iou'][c]:.3f}"
            for c in classes) + '. ')
    else:
        detail = ''
    against = given.get('before', 'results.json')
    return (f"\nTried: the {modality} networks trained {given['epochs']} epochs instead of {epochs} (AT-net and "
            f"end-to-end baseline on the shipped {modality} VQ-VAE, everything else as configured; "
            f"`{given['command']}`; docs/{given['file']}, against docs/{against}; the seed spread is the seed "
            f"study's above):\n\n" + '\n'.join(lines) + '\n\n' + detail +
            f"The rule fixed before its test result (scripts/results_docs/facts.yaml, {key}): {verdict}: "
            f"{'met' if met else 'not met'}.\n")


def seed_study_table(inp: Inputs) -> str:
    """The method retrained with another seed at two front-end revisions (facts.yaml room_bar.seed_study): its test
    figures per revision and seed, how far the seed moved each revision, and the rule of docs/SONAR.md ("Revision 9
    over two seeds") on the seeds' means; '' unless every file is here."""
    given, study = inp.facts['room_bar'].get('seed_study'), complete_seed_study(inp)
    if not given or not study:
        return ''
    metrics = (('abs_rel', 'AbsRel'), ('delta1', 'δ1'), ('miou', 'mIoU'))
    lines = ['| front-end revision | seed | method AbsRel | δ1 | mIoU | person IoU, speaking | person IoU, silent |',
             '| --- | --- | --- | --- | --- | --- | --- |']
    for revision, seeds in study.items():
        for seed, res in seeds.items():
            lines.append(f"| {revision} | {seed} | " + ' | '.join(
                f"{figure(res, 'method', name):.3f}" for name in ('abs_rel', 'delta1', 'miou', 'speaking', 'silent'))
                + ' |')

    def values(revision: str, name: str) -> list[float]:
        return [figure(res, 'method', name) for res in study[revision].values()]

    def mean(revision: str, name: str) -> float:
        v = values(revision, name)
        return sum(v) / len(v)
    old, new, margin = str(given['incumbent']), str(given['candidate']), given['miou_margin']
    moved_by_seed = '; '.join(f"{label} by " + ' and '.join(
        f"{spread(values(r, name)):.4f} (revision {r})" for r in study) for name, label in metrics)
    first = {r: next(iter(study[r].values())) for r in (old, new)}
    moved = ', '.join(f"{label} {figure(first[new], 'method', name) - figure(first[old], 'method', name):+.4f}"
                      for name, label in metrics)
    a_old, a_new = mean(old, 'abs_rel'), mean(new, 'abs_rel')
    i_old, i_new = mean(old, 'miou'), mean(new, 'miou')
    met = a_new < a_old and i_new >= i_old - margin
    seeds = list(study[old])
    return (f"\nThe method retrained with another seed ({', '.join(seeds)}) at "
            f"front-end revisions {old} and {new} (each modality's VQ-VAE and AT-net on the same feature cache; "
            f"`{given['command']}`; "
            + ', '.join(f'docs/{name}' for r in given['revisions'].values() for name in r.values())
            + f"; in the files of seed {', '.join(seeds[1:])} the end-to-end and mean rows are seed {seeds[0]}'s "
            "models'):\n\n" + '\n'.join(lines) + '\n\n'
            f"The seed moves the method's test {moved_by_seed}; one retrain apart at seed "
            f"{seeds[0]}, revision {old} → {new} moved it by {moved}. Over the seeds revision {new}'s "
            f"mean AbsRel is {a_new:.4f} against {a_old:.4f} and its mean mIoU {i_new:.4f} against {i_old:.4f} (the "
            f"rule of {given['rule']}: AbsRel below, mIoU at least "
            f"{i_old - margin:.4f}): {'met' if met else 'not met'} on the seeds' means.\n")


def vqvae_budget_table(inp: Inputs) -> str:
    """The segmentation VQ-VAE at facts.yaml room_bar.vqvae_budget_study's epochs, each seed followed by its AT-net at
    the segmentation budget study's epochs: the method's figures per seed beside that study's (on the shipped VQ-VAE)
    and the reproduction's (its own VQ-VAE at the configured epochs), and the study's rule: the lower seed's method
    mIoU at least the segmentation budget study's less the seed study's spread of it; '' unless every file is here."""
    given, runs, spreads = inp.facts['room_bar'].get('vqvae_budget_study'), inp.vqvae_budget, seed_spreads(inp)
    study = (inp.budget_studies.get('segmentation') or {}).get('after')
    if not given or not runs or not all(runs.values()) or not study or not spreads:
        return ''
    vq_epochs = inp.train.get('vqvae_optim', {}).get('epochs')
    at_epochs = inp.facts['room_bar']['segmentation_budget_study']['epochs']
    # once the shipped segmentation VQ-VAE is trained at the study's epochs, the study's row is of the one before
    shipped_now = shipped_vqvae_at(inp, given['epochs'])
    names = BUDGET_FIGURES['segmentation']
    rows = [(f"{'the VQ-VAE shipped before' if shipped_now else 'shipped VQ-VAE'} ({vq_epochs} epochs), segmentation "
             "budget study", study)]
    if inp.reproduction:
        rows.append((f"its own VQ-VAE ({vq_epochs} epochs), the reproduction (\"Reproduction time\")",
                     inp.reproduction))
    rows += [(f"its own VQ-VAE ({given['epochs']} epochs, seed {seed})", res) for seed, res in runs.items()]
    if shipped_now:
        then = f"docs/{inp.facts['room_bar']['fused_layout_shipping']['test_before_file']}" \
            if inp.fused_layout.get('test_before') else 'docs/results.json'
        rows.append((f"its own VQ-VAE ({given['epochs']} epochs), the shipped models ({then})", before_fusion(inp)[0]))
    lines = ['| VQ-VAE | ' + ' | '.join(f'method {label}' for _, label in names) + ' |',
             '| --- |' + ' ---: |' * len(names)]
    lines += [f"| {what} | " + ' | '.join(f'{figure(res, "method", n):.3f}' for n, _ in names) + ' |'
              for what, res in rows]
    low = min(figure(res, 'method', 'miou') for res in runs.values())
    floor = figure(study, 'method', 'miou') - spreads[('method', 'miou')]
    return (f"\nTried: the segmentation VQ-VAE trained {given['epochs']} epochs instead of {vq_epochs}, each seed "
            f"followed by its AT-net at {at_epochs} epochs (`{given['command']}`; "
            + ', '.join(f'docs/{f}' for f in given['files'].values()) + "):\n\n" + '\n'.join(lines) + '\n\n'
            f"The rule fixed before its results (scripts/results_docs/facts.yaml, vqvae_budget_study): the lower "
            f"seed's method mIoU {low:.4f} against the segmentation budget study's less the seed spread, {floor:.4f}: "
            + ('met.' if low >= floor else 'not met.') + '\n')


def atnet_study_table(inp: Inputs, key: str) -> str:
    """A modality's AT-net one change apart (facts.yaml room_bar ``key``, :data:`ATNET_STUDY`): the method's figures
    (BUDGET_FIGURES) per variant beside the shipped setting's own run (its ``before``), the variants stopped before
    their test, and the study's rule: a variant replaces the shipped AT-net if the first figure improves by more than
    the seed study's spread of it and none of the others worsens by more than the seed study's spread of it; '' unless
    every file is here."""
    given, runs, spreads = inp.facts['room_bar'].get(key), inp.atnet_studies.get(key), seed_spreads(inp)
    if not given or not runs or not all(runs.values()) or not spreads:
        return ''
    modality = atnet_study_modality(key)
    names = BUDGET_FIGURES[modality]
    before = runs['before']

    def change(variant):
        return variant_change(given, variant)
    shipped = given.get('shipped')               # the variant shipped under the rule (or a later one), if one was
    later = [k for k in shipped_after(inp, key) if k != given.get('shipped_by')]
    label = (' (shipped' + (f" under the rule of {given['shipped_by']}, below" if 'shipped_by' in given else '')
             + (f', replaced later: {later[0]}' if later else '') + ')')
    rows = [('the setting shipped before' if shipped else 'the shipped setting', before)] + [
        (f'{v}: {change(v)}' + (label if v == shipped else ''), runs[v]) for v in given['files']]
    if runs.get('control'):                      # the shipped setting trained as the variants were: no rule
        rows.insert(1, (f"{rows[0][0]}, trained as the variants were ({given['control']['how']})", runs['control']))
    lines = [f'| {modality} AT-net | ' + ' | '.join(f'method {label}' for _, label in names) + ' |',
             '| --- |' + ' ---: |' * len(names)]
    lines += [f"| {what} | " + ' | '.join(f'{figure(res, "method", n):.4f}' for n, _ in names) + ' |'
              for what, res in rows]
    verdicts, first = [], names[0][0]
    for variant in given['files']:
        delta = {n: figure(runs[variant], 'method', n) - figure(before, 'method', n) for n, _ in names}
        checks = [improvement(first, delta[first]) > spreads[('method', first)]] + [
            improvement(n, delta[n]) >= -spreads[('method', n)] for n, _ in names[1:]]
        against_control = '' if not runs.get('control') else (
            ' (against the shipped setting trained as it was: ' + ', '.join(
                f"{label} {figure(runs[variant], 'method', n) - figure(runs['control'], 'method', n):+.4f}"
                for n, label in names) + ')')
        verdicts.append(f"{variant}: " + ', '.join(f"{label} {delta[n]:+.4f} (spread {spreads[('method', n)]:.4f})"
                                                   for n, label in names)
                        + (': met' if all(checks) else ': not met') + against_control)
    stopped = ''.join(f" {v} ({change(v)}) was stopped after epoch {s['epoch']} and not scored on the test split: its "
                      f"validation mIoU {s['val_miou']:.4f} against the shipped run's {s['shipped_val_miou']:.4f} at "
                      f"the same epoch (facts.yaml says why)." for v, s in given.get('stopped', {}).items())
    return (f"\nTried: the {modality} AT-net one change apart (`{given['command']}`; "
            + ', '.join(f'docs/{f}' for f in given['files'].values()) + f"; the shipped setting's own run "
            f"docs/{given['before']}):\n\n" + '\n'.join(lines) + '\n\n'
            f"The rule fixed before their results (scripts/results_docs/facts.yaml, {key}): "
            + '; '.join(verdicts) + '.' + stopped + '\n')


def atnet_seeds_table(inp: Inputs, key: str) -> str:
    """A variant against the shipped setting at several seeds, each pair trained alike (facts.yaml room_bar ``key``,
    :data:`~.inputs.ATNET_SEEDS`): the method's figures (BUDGET_FIGURES) per seed and side, and the rule paired by
    seed: the variant wins if its first figure is better than its control's at every seed, the mean of those gains
    exceeds half the seed study's spread of it, and no other figure's mean gain is negative; '' unless every file is
    here."""
    given, runs, spreads = inp.facts['room_bar'].get(key), inp.atnet_seeds.get(key), seed_spreads(inp)
    if not given or not runs or not all(all(pair.values()) for pair in runs.values()) or not spreads:
        return ''
    modality = atnet_study_modality(key)
    names, variant, control = BUDGET_FIGURES[modality], given['variant'], given.get('control')
    # the settings' changes: the modality's AT-net study's variants, and any of this study's own
    changes = seeds_changes(inp, key)
    shipped_setting = (('the setting shipped before' if given.get('shipped') is not None else 'the shipped setting')
                       + (f' ({control}: {variant_change(changes, control)})' if control else ''))
    lines = [f'| seed | {modality} AT-net | ' + ' | '.join(f'method {label}' for _, label in names) + ' |',
             '| ---: | --- |' + ' ---: |' * len(names)]
    for seed, pair in runs.items():
        lines += [f"| {seed} | {what} | " + ' | '.join(f'{figure(pair[side], "method", n):.4f}' for n, _ in names)
                  + ' |' for side, what in (('variant', f'{variant}: {variant_change(changes, variant)}'),
                                            ('control', shipped_setting))]
    gains = {n: [improvement(n, figure(pair['variant'], 'method', n) - figure(pair['control'], 'method', n))
                 for pair in runs.values()] for n, _ in names}
    mean = {n: sum(g) / len(g) for n, g in gains.items()}
    first, half = names[0][0], spreads[('method', names[0][0])] / 2
    checks = ([all(g > 0 for g in gains[first]), mean[first] > half]
              + [mean[n] >= 0 for n, _ in names[1:]])
    later = shipped_after(inp, key)
    shipped = '' if given.get('shipped') is None else (
        f" It was shipped (its seed-{given['shipped']} run)" + (f', replaced later: {later[0]}.' if later else '.'))
    return (f"\n{variant} against {shipped_setting} at seeds " + ', '.join(runs) + ", each pair trained alike, as the "
            f"study's variants were (`{given['command']}`; "
            + ', '.join(f'docs/{f}' for pair in given['files'].values() for f in pair.values()) + '):\n\n'
            + '\n'.join(lines) + '\n\n'
            f"The rule fixed before the results of the runs it started (scripts/results_docs/facts.yaml, {key}): "
            f"{variant} against {shipped_setting}, gains (positive is better) by seed "
            + '; '.join(f"{label} " + ', '.join(f'{g:+.4f}' for g in gains[n]) + f' (mean {mean[n]:+.4f})'
                        for n, label in names)
            + f"; the {names[0][1]} gain positive at every seed and its mean above half the seed study's spread "
            f"({half:.4f}), no other mean negative: " + ('met.' if all(checks) else 'not met.') + shipped + '\n')


def seeds_changes(inp: Inputs, key: str) -> dict:
    """{'variants': {name: settings}} a seeds study (facts.yaml room_bar ``key``) names: its modality's AT-net study's
    variants and its own."""
    study = inp.facts['room_bar'].get(f'{atnet_study_modality(key)}_atnet_study', {})
    return {'variants': {**study.get('variants', {}), **inp.facts['room_bar'][key].get('variants', {})}}


def shipping_studies(inp: Inputs) -> list[str]:
    """facts.yaml room_bar's AT-net study and seeds keys that shipped a variant (``shipped``), in facts.yaml's order."""
    return [k for k, given in inp.facts['room_bar'].items()
            if (ATNET_STUDY.fullmatch(k) or ATNET_SEEDS.fullmatch(k)) and given.get('shipped') is not None]


def reproduction_shipped(inp: Inputs) -> bool:
    """Whether the last reproduction's models (facts.yaml reproduction_run) replaced the shipped ones: every study's
    AT-net then comes from that run, trained by the script at the studies' settings."""
    return bool((inp.facts.get('reproduction_run') or {}).get('shipped'))


def since_reproduction(inp: Inputs, key: str) -> bool:
    """Whether the study ``key`` shipped its variant after the last reproduction's models were shipped (facts.yaml
    ``shipped_since_reproduction``): its AT-net then replaces that run's."""
    return bool(inp.facts['room_bar'][key].get('shipped_since_reproduction'))


def shipping_order(inp: Inputs) -> list[str]:
    """The studies that shipped a variant (:func:`shipping_studies`) and ``reproduction_run`` where its models were
    shipped, in the order they were shipped: the reproduction after every study but those shipped since it."""
    studies = shipping_studies(inp)
    return ([k for k in studies if not since_reproduction(inp, k)]
            + (['reproduction_run'] if reproduction_shipped(inp) else [])
            + [k for k in studies if since_reproduction(inp, k)])


def shipped_after(inp: Inputs, key: str) -> list[str]:
    """What replaced ``key``'s shipped AT-net, in order: the studies of its modality shipped after it, and
    ``reproduction_run`` where that run's models were shipped after it (:func:`shipping_order`); [] for a study that
    shipped nothing (nothing of it to replace)."""
    order = shipping_order(inp)
    later = order[order.index(key) + 1:] if key in order else []
    return [k for k in later if k == 'reproduction_run' or atnet_study_modality(k) == atnet_study_modality(key)]


def shipped_atnet(inp: Inputs) -> dict[str, tuple[str, str, str]]:
    """{modality: (facts key whose rule shipped it, variant, its settings)} of the AT-net each modality ships, from
    the last study of the modality that shipped one; modalities no study changed are left out, and every one where
    the reproduction's models were shipped since (:func:`reproduction_shipped`: its AT-nets are the run's own) unless a
    study shipped after it (:func:`since_reproduction`)."""
    out, reproduced = {}, reproduction_shipped(inp)
    for key in shipping_studies(inp):
        if reproduced and not since_reproduction(inp, key):
            continue
        given = inp.facts['room_bar'][key]
        if ATNET_SEEDS.fullmatch(key):
            out[atnet_study_modality(key)] = (key, given['variant'],
                                              variant_change(seeds_changes(inp, key), given['variant']))
        else:
            out[atnet_study_modality(key)] = (given.get('shipped_by', key), given['shipped'],
                                              variant_change(given, given['shipped']))
    return out


def variant_change(study: dict, variant: str) -> str:
    """'setting value, ...' of an AT-net study's variant (facts.yaml room_bar.<modality>_atnet_study ``variants``)."""
    return ', '.join(f'{k} {v:g}' for k, v in study['variants'][variant].items())
