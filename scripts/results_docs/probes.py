# SPDX-License-Identifier: Apache-2.0
"""The results page's sections from the evaluations and probes beside the test split: a dataset of a new seed,
where the depth error lies, what the direction maps carry, why a latent target can lose, per-pixel confidence,
occupancy mapping (and whether the mapper is the limit), and the reproduction's own models. Each is '' when
its result file is absent."""
from __future__ import annotations

from audio_vision.training.evaluate import markdown_table

from .common import Criterion, criteria_table, signed
from . import room_bar
from .inputs import Inputs


def fresh_rows(inp: Inputs) -> list[Criterion]:
    """`evaluate` on a dataset of a new seed must stay within a share (facts.yaml) of the test split's figures."""
    res, fresh, tolerance = inp.results, inp.fresh, inp.facts['fresh_seed_tolerance']
    out = []
    for modality, metric in (('depth', 'abs_rel'), ('depth', 'delta1'), ('segmentation', 'miou')):
        a, b = res['rows']['method'][modality][metric], fresh['rows']['method'][modality][metric]
        out.append((f'method {modality} {metric}', abs(b - a) <= tolerance * abs(a),
                    f'test {a:.3f}, fresh {b:.3f} ({(b / a - 1) * 100:+.1f} %)'))
    return out


def fresh_section(inp: Inputs) -> str:
    fresh = inp.fresh
    if not fresh:
        return ''
    return (f"\n## A dataset of a new seed\n\n`{fresh['dataset']['path']}` "
            f"(seed {fresh['dataset'].get('seed')}, "
            f"{fresh['n_samples']} windows of its {fresh['split']} split, "
            f"rooms and poses never generated before):\n\n"
            + criteria_table(fresh_rows(inp)) + '\n\n' + markdown_table(fresh))


def depth_error_tables(rows: dict, names: list[str]) -> str:
    """Each row's AbsRel per ground-truth class, then per range, each with its share of the pixels."""
    classes = list(rows[names[0]]['by_class'])
    ranges = list(rows[names[0]]['by_range'])

    def cell(v):
        return '–' if v is None else f'{v:.3f}'

    head = '| row | AbsRel | AbsRel, each image scaled by its median ratio | ' + ' | '.join(classes) + ' |'
    lines = [head, '|' + ' --- |' * (3 + len(classes))]
    lines += [f"| {n} | {rows[n]['abs_rel']:.3f} | {rows[n]['abs_rel_median_scaled']:.3f} | "
              + ' | '.join(cell(rows[n]['by_class'][c]) for c in classes) + ' |' for n in names]
    share = rows[names[0]]['class_pixel_share']
    lines += ['| share of pixels | | | ' + ' | '.join(f'{share[c] * 100:.0f} %' for c in classes) + ' |']
    rlines = ['| row | ' + ' | '.join(ranges) + ' |', '|' + ' --- |' * (1 + len(ranges))]
    rlines += [f'| {n} | ' + ' | '.join(cell(rows[n]['by_range'][r]['abs_rel']) for r in ranges) + ' |' for n in names]
    rlines += ['| share of pixels | ' + ' | '.join(f"{rows[names[0]]['by_range'][r]['pixel_share'] * 100:.0f} %"
                                                   for r in ranges) + ' |']
    return '\n'.join(lines) + '\n\n' + '\n'.join(rlines)


def depth_error_text(rows: dict, names: list[str]) -> str:
    """How much of the method's depth error is the overall distance, and on which class most of it sits."""
    m = rows['method']
    classes, share = list(rows[names[0]]['by_class']), rows[names[0]]['class_pixel_share']
    removed = m['abs_rel'] - m['abs_rel_median_scaled']
    text = (f"Scaling each predicted image by its own median ratio to the truth (the overall distance made right) "
            f"takes the method's AbsRel from {m['abs_rel']:.3f} to {m['abs_rel_median_scaled']:.3f}: "
            f"{removed / m['abs_rel'] * 100:.0f} % of the error is the scene's overall distance, the rest its shape.")
    if 'mean' in rows:
        text += (f" The training set's mean image, scaled the same way, scores "
                 f"{rows['mean']['abs_rel_median_scaled']:.3f}: with the right scale, what the audio adds to the "
                 f"shape is worth "
                 f"{rows['mean']['abs_rel_median_scaled'] - m['abs_rel_median_scaled']:.3f} AbsRel.")
    worst = max((c for c in classes if m['by_class'][c] is not None),
                key=lambda c: m['by_class'][c] * share[c])
    text += (f" The largest share of the error sits on {worst} pixels ({share[worst] * 100:.0f} % of the pixels, "
             f"AbsRel {m['by_class'][worst]:.3f}).")
    return text


def prior_table(by_prior: dict, names: list[str]) -> str:
    """Each row's AbsRel where the sonar front-end measured the room (its depth prior is finite) and elsewhere, with
    each part's share of the row's AbsRel, the layout prior's own AbsRel on its pixels below them; '' without it."""
    names = [n for n in names if n in by_prior]
    layout = (by_prior.get('layout') or {}).get('measured')
    if not names or not layout:
        return ''

    def cell(part: dict) -> str:
        return '–' if part['abs_rel'] is None else f"{part['abs_rel']:.3f} ({part['error_share'] * 100:.0f} %)"
    here = by_prior[names[0]]['measured']['pixel_share']
    return ('\n\nSplit at the sonar layout prior (pooled AbsRel, in brackets its share of the row\'s summed error):\n\n'
            f'| row | where the front-end measured the room ({here * 100:.0f} % of the pixels) | elsewhere '
            f'({(1 - here) * 100:.0f} %) |\n| --- | --- | --- |\n'
            + '\n'.join(f"| {n} | {cell(by_prior[n]['measured'])} | {cell(by_prior[n]['not_measured'])} |"
                        for n in names)
            + f"\n| the layout prior itself | {layout['abs_rel']:.3f} | (none drawn) |")


def depth_error_section(inp: Inputs) -> str:
    """docs/depth_error_probe.json (scripts/depth_error_probe.py) as a Markdown section."""
    probe = inp.depth_probe
    if not probe:
        return ''
    rows = probe['rows']
    names = [n for n in ('method', 'end_to_end', 'mean') if n in rows]
    return (f"\n## Where the depth error lies\n\n`{probe['command']}` (docs/depth_error_probe.json, {probe['date']}, "
            f"{probe['windows']} {probe['split']} windows), AbsRel pooled over the pixels of each ground-truth class "
            f"and range:\n\n" + depth_error_tables(rows, names) + prior_table(probe.get('by_prior') or {}, names)
            + '\n\n' + depth_error_text(rows, names) + '\n')


def direction_maps_section(inp: Inputs) -> str:
    """docs/direction_maps_diagnostic.json: how often the maps' strongest cell lies on a body."""
    diag = inp.direction_maps
    if not diag:
        return ''

    def rate(key: str) -> str:
        v = diag['tally'][key]
        return (f"{v['hit_rate'] * 100:.0f} % of {v['windows']} windows (chance {v['chance'] * 100:.0f} %)"
                if v['windows'] else 'no windows')

    facts, loss = inp.facts, inp.facts['echo_loss_db_per_doubling']
    return (f"\n## Why the bodies are hard: what the direction maps carry\n\n"
            f"`{diag['command']}` (docs/direction_maps_diagnostic.json), "
            f"on {diag['windows_scored']} test windows: the strongest SRP-PHAT cell (bands above "
            f"{facts['diagnostic_srp_min_hz'] / 1000:g} kHz) lies on a body when sources sound in view in "
            f"{rate('srp_sources')}; for windows whose bodies are all silent, the strongest echo cell lies on a "
            f"body in {rate('echo_silent')}, and the strongest cell within the body's own range bin in "
            f"{rate('echo_silent_own_range')}. A delay-and-sum beam of this {inp.array_diameter_m:g} m, "
            f"{inp.mics}-microphone array is wider than a body and its sidelobes let the room's specular echoes (a "
            f"wall's echo falls {loss['wall']} dB per doubling of range, a body's {loss['body']} dB: "
            "docs/SIMULATOR.md) into every direction, so the maps place sounding sources only roughly and silent "
            "bodies hardly at all; the networks cannot recover what the input does not carry. Higher-resolution "
            "beamforming (e.g. MVDR or deconvolution of the beam pattern) and gating the chirp out of the SRP are the "
            "next steps.\n")


def latent_probe_section(inp: Inputs) -> str:
    """docs/latent_mean_probe.json: the decoded mean latent against the mean image (needs the end-to-end row)."""
    probe = inp.latent_probe
    if not probe or not inp.results['rows'].get('end_to_end'):
        return ''
    pr = probe['rows']
    latent, mean = pr['decoded mean latent'], pr['mean image']
    c, d = latent['segmentation']['miou'], mean['segmentation']['miou']
    if 'depth' in latent:
        a, b = latent['depth']['abs_rel'], mean['depth']['abs_rel']
        scores, answer, worse = f'depth AbsRel {a:.3f} and mIoU {c:.3f}', f'{b:.3f} and {d:.3f}', a > b
    else:                   # a depth model relative to the room has no image-free mean: segmentation alone
        reason = probe.get('skipped', {}).get('depth', 'not measured')
        scores, answer, worse = f'mIoU {c:.3f} (depth not probed: {reason})', f'{d:.3f}', c < d
    return (f"\nWhy a latent target can lose to a pixel target: an L2-trained network predicts the "
            f"conditional mean of its target. `{probe['command']}` (docs/latent_mean_probe.json) "
            f"measures the unconditional "
            f"case on {probe['test_windows']} test windows: the VQ-VAE decoder applied to the training set's "
            f"mean latent scores {scores}, the mean image (the pixel loss' answer) {answer}: "
            + ('decoding an averaged latent is worse than averaging images, so where the audio leaves the '
               'scene uncertain the two-stage method pays for its latent target.' if worse else
               'decoding an averaged latent is not worse than averaging images here, so the latent target '
               'alone does not explain the gap.') + '\n')


def confidence_section(inp: Inputs) -> str:
    """docs/confidence.json (scripts/eval_confidence.py): each confidence kind's sparsification."""
    conf = inp.confidence
    if not conf:
        return ''
    dk = conf['modalities']['depth']
    lines = ['| confidence kind | depth AbsRel, all | AbsRel, most-confident half | half / all | AUSE (AbsRel) |',
             '| --- | --- | --- | --- | --- |']
    for kind, v in dk.items():
        ause = v['ause'].get('abs_rel') if isinstance(v['ause'], dict) else v['ause']
        lines.append(f"| `{kind}`{' (default)' if kind == conf['default_kind'] else ''} | {v['abs_rel_all']:.3f} | "
                     f"{v['abs_rel_half']:.3f} | {v['half_ratio']:.3f} | {ause:.3f} |")
    seg = conf['modalities'].get('segmentation', {}).get(conf['default_kind'])
    default = dk[conf['default_kind']]
    return (f"\n## Per-pixel confidence\n\n`python {conf['command']}` "
            f"(docs/confidence.json, {conf['date'][:10]}, "
            f"{conf['samples']} windows of `{conf['data']}` split {conf['split']}); what the kinds are: "
            f"docs/MAPPING.md.\n\n" + '\n'.join(lines) + '\n\n'
            + f"Target (AbsRel of the most-confident half <= {conf['target_half_ratio']} x all pixels) with the "
              f"default kind: {'met' if default['half_ratio'] <= conf['target_half_ratio'] else '**not met**'} "
              f"({default['half_ratio']:.3f})."
            + (f" Segmentation: pixel error {seg['error_all']:.3f} over all pixels, "
               f"{seg['error_half']:.3f} over "
               f"the most-confident half, AUSE {seg['ause']:.3f}." if seg else '')
            + '\n\n![sparsification curves](confidence_sparsification.png)\n')


#: how the mapping section names docs/mapping.json's variants (others by their key)
MAPPING_VARIANTS = {'method': 'method depth + confidence', 'method_no_confidence': 'method depth, no confidence',
                    'method_segmentation': 'method depth + confidence + predicted segmentation (use_segmentation)',
                    'ground_truth': 'ground-truth depth (the mapper\'s ceiling)',
                    'layout': 'sonar layout depth, each window (no learning)',
                    'layout_fused': 'sonar layout depth, fused over the drive (no learning)',
                    'layout_planes': 'sonar wall planes fused over the drive, one line per wall (plane mapper)'}


def mapping_per_room(mapping: dict) -> str:
    """Occupied F1 / free-space IoU of every variant per room; '' for a single room."""
    if len(mapping['rooms']) <= 1:
        return ''
    cols = list(mapping['mean'])
    return ('\n\nPer room (occupied F1 / free-space IoU):\n\n| room seed | size (m) | '
            + ' | '.join(MAPPING_VARIANTS.get(k, k).split(' (')[0] for k in cols) + ' |\n| --- | --- |'
            + ' --- |' * len(cols) + '\n'
            + '\n'.join(f"| {r['seed']} | {r['room_size_m'][0]:.1f} x {r['room_size_m'][1]:.1f} | "
                        + ' | '.join(f"{r['scores'][k]['occupied_f1']:.3f} / "
                                     f"{r['scores'][k]['free_iou']:.3f}" for k in cols) + ' |'
                        for r in mapping['rooms']))


def mapping_segmentation_note(mapping: dict) -> str:
    """What gating the end points by the predicted segmentation does to the mean scores ('' when not run)."""
    seg = mapping['mean'].get('method_segmentation')
    if not seg:
        return ''
    base = mapping['mean']['method']

    def change(key: str, label: str) -> str:
        a, b = f"{base[key]:.3f}", f"{seg[key]:.3f}"
        if a == b:                                    # equal at the precision the page prints
            return f'leaves the {label} at {a}'
        return f"{'raises' if seg[key] > base[key] else 'lowers'} the {label} from {a} to {b}"

    return (f" Gating the end points by the predicted segmentation (floor and ceiling pixels only clear) "
            f"{change('occupied_f1', 'mean occupied F1')} and {change('free_iou', 'free-space IoU')} (room seeds "
            f"{', '.join(str(r['seed']) for r in mapping['rooms'])}; pixel stride {mapping.get('pixel_stride', 1)}).")


def mapping_section(inp: Inputs) -> str:
    """docs/mapping.json (scripts/eval_mapping.py) and, after it, whether the mapper is the limit."""
    mapping = inp.mapping
    if not mapping:
        return ''
    lines = [f"| map from | occupied F1 ({mapping['tolerance_m']:g} m) | precision | recall | free-space IoU |",
             '| --- | --- | --- | --- | --- |']
    lines += [f"| {MAPPING_VARIANTS.get(k, k)} | {v['occupied_f1']:.3f} | {v['occupied_precision']:.3f} | "
              f"{v['occupied_recall']:.3f} | {v['free_iou']:.3f} |" for k, v in mapping['mean'].items()]
    f1 = mapping['mean']['method']['occupied_f1']
    return (f"\n## Occupancy mapping from sound\n\n`python {mapping['command']}` (docs/mapping.json, "
            f"{mapping['date'][:10]}, {mapping['seconds']:.0f} s): a {mapping['duration_s']:g} s drive in "
            f"{len(mapping['rooms'])} simulated room(s), fused at {mapping['resolution_m']} m resolution, scored "
            f"against the floor plan (docs/MAPPING.md); mean over the rooms:\n\n" + '\n'.join(lines)
            + mapping_per_room(mapping)
            + '\n\n' + f"Target occupied F1 >= {mapping['target_occupied_f1']} with the method: "
            f"{'met' if f1 >= mapping['target_occupied_f1'] else '**not met**'} ({f1:.3f})."
            + mapping_segmentation_note(mapping) + plane_map_target(mapping)
            + "\n\n![map](mapping.png)\n" + mapping_tuning_section(inp))


def plane_map_target(mapping: dict) -> str:
    """Issue #22's bar for the plane mapper, from the JSON ('' when it was not run)."""
    target, planes = mapping.get('target_layout_planes'), mapping['mean'].get('layout_planes')
    if not target or not planes:
        return ''
    met = all(planes[k] >= v for k, v in target.items())
    return (f" Target with the plane mapper (issue #22): occupied F1 >= {target['occupied_f1']:g} and free-space "
            f"IoU >= {target['free_iou']:g}, mean of the rooms: {'met' if met else '**not met**'} "
            f"({planes['occupied_f1']:.3f} / {planes['free_iou']:.3f}); per room above.")


def mapping_tuning_section(inp: Inputs) -> str:
    """Is the mapper the limit? docs/mapping_tuning.json (scripts/tune_mapping.py) as a paragraph; '' when absent."""
    tuning = inp.mapping_tuning
    if not tuning:
        return ''
    val, test = tuning['validation'], tuning['test']
    changed = ', '.join(f'`{k}` {v}' for k, v in tuning['chosen'].items()
                        if k in tuning['default'] and v != tuning['default'][k]) or 'the default'
    loose = max(val['tried'], key=lambda r: r['mean']['occupied_f1'])['mean']
    search = ', '.join(f'`{k}` {list(c)}' for k, c in tuning['search'].items())
    d, c = test['default']['mean'], test['chosen']['mean']
    target = inp.mapping['target_occupied_f1']
    verdict = ('No setting of the mapper reaches the target: the cells it marks occupied in the wrong place come '
               'from depth that is consistently wrong, not from noise a sensor model can average away.'
               if loose['occupied_f1'] < target else
               'A setting of the mapper reaches the target on the validation rooms.')
    return (f"\nIs the mapper the limit? `python {tuning['command']}` (docs/mapping_tuning.json, "
            f"{tuning['date'][:10]}) searches its sensor model ({search}) one setting at a time on "
            f"{len(tuning['val_seeds'])} validation rooms (seeds {', '.join(str(x) for x in tuning['val_seeds'])}), "
            f"keeping the free-space IoU within {tuning['max_free_iou_drop']:g} of the default's; "
            f"{len(val['tried'])} settings tried. Validation occupied F1: default "
            f"{val['default']['occupied_f1']:.3f}, chosen {val['chosen']['occupied_f1']:.3f} ({changed}); the best "
            f"F1 of any setting tried, free IoU ignored, is {loose['occupied_f1']:.3f} (precision "
            f"{loose['occupied_precision']:.3f}, free IoU {loose['free_iou']:.3f}). On the test rooms above "
            f"(occupied F1 / free IoU): default {d['occupied_f1']:.3f} / {d['free_iou']:.3f}, chosen "
            f"{c['occupied_f1']:.3f} / {c['free_iou']:.3f}. {verdict}\n")


def reproduction_baseline(inp: Inputs) -> tuple[dict, str, bool]:
    """What the reproduction is compared with, its name, and whether other models have replaced it since: the models
    shipped when it ran (facts.yaml reproduction_run's ``against``) or the shipped models (docs/results.json)."""
    against = (inp.facts.get('reproduction_run') or {}).get('against')
    if against and inp.reproduction_against:
        return inp.reproduction_against, f'the models shipped when it ran (docs/{against})', True
    return inp.results, 'the shipped models (docs/results.json)', False


def reproduction_rows(res: dict, rep: dict, shipped: str = 'shipped (docs/results.json)') -> tuple[list[str], float]:
    """The headline metrics, `shipped` (the column's name) vs reproduced, and the largest difference among them."""
    lines = [f'| row | metric | {shipped} | reproduced | difference |',
             '| --- | --- | --- | --- | --- |']
    metrics = (('depth', 'abs_rel', 'depth AbsRel'), ('depth', 'delta1', 'δ1'), ('segmentation', 'miou', 'mIoU'))
    worst = 0.0
    for row in ('method', 'end_to_end', 'mean'):
        if row not in rep['rows'] or row not in res['rows']:
            continue
        for modality, key, label in metrics:
            a, b = res['rows'][row][modality][key], rep['rows'][row][modality][key]
            worst = max(worst, abs(b - a))
            lines.append(f'| {row} | {label} | {a:.3f} | {b:.3f} | {signed(b - a)} |')
    for kind in ('speaking', 'silent'):
        a = res.get('person_iou', {}).get('method', {}).get(kind)
        b = rep.get('person_iou', {}).get('method', {}).get(kind)
        if a is not None and b is not None:
            lines.append(f'| method | person IoU ({kind}) | {a:.3f} | {b:.3f} | {signed(b - a)} |')
    return lines, worst


def weights_compared(weights: dict, shipped: str = 'shipped') -> str:
    """docs/models_compared.json (scripts/compare_models.py): which files are bit-identical to the `shipped` ones,
    how far the others."""
    same = [n for n, r in weights['files'].items() if r['identical']]
    other = {n: r['max_abs_diff'] for n, r in weights['files'].items() if not r['identical']}
    return (f" Weight by weight (`{weights['command']}`, docs/models_compared.json): "
            + (f"{', '.join(f'`{n}`' for n in same)} {'is' if len(same) == 1 else 'are'} bit-identical to the "
               f"{shipped} {'file' if len(same) == 1 else 'files'}" if same else 'no file is bit-identical')
            + ('' if not other else '; ' + ', '.join(
                f'`{n}` differs (largest difference of any tensor, BatchNorm statistics included: {d:.2g})'
                for n, d in other.items()))
            + '.')


def reproduction_comparison(inp: Inputs) -> str:
    """The reproduction's own models against the shipped ones: docs/results_reproduction.json (its evaluation
    on the same test split) and docs/models_compared.json (scripts/compare_models.py); '' when absent."""
    if not inp.reproduction:
        return ''
    baseline, baseline_name, then = reproduction_baseline(inp)
    lines, worst = reproduction_rows(baseline, inp.reproduction,
                                     'shipped then' if then else 'shipped (docs/results.json)')
    run = (inp.reproduction_timings or {}).get('run')
    given = inp.facts.get('reproduction_run') or {}
    if run and run.get('started_utc') == (inp.timings.get('run') or {}).get('started_utc'):
        who = (f"The run above{': ' + given['what'] if given.get('what') else ''}; its models")
    elif run:
        who = (f"A second run (`{run['command']}` at commit {run['commit']}, started {run['started_utc']} on "
               f"{run['cpu_model']}, {run['cpus']} cores{': ' + given['what'] if given.get('what') else ''}; "
               f"{inp.reproduction_timings['total'] / 60:.1f} min in all"
               + (', its features read from the cache' if run.get('features_cache_existed') else '')
               + ", docs/reproduce_timings_reproduction.json): its models")
    else:
        who = "The run's own models"
    text = (f"\n{who}, scored by its evaluation step on the same test split "
            f"(docs/results_reproduction.json), against {baseline_name}:\n\n" + '\n'.join(lines)
            + f"\n\nThe largest difference of a headline metric is {worst:.3f}.")
    if inp.models_compared:
        text += weights_compared(inp.models_compared, 'then shipped' if then else 'shipped')
    rule = replaces_shipped(inp, 'reproduction_run') if given.get('rule') == 'replaces_shipped' else ''
    return text + (study_retrained(inp) or rule) + '\n'


def study_retrained(inp: Inputs) -> str:
    """Where the compared run retrains a budget study's configuration from scratch (facts.yaml reproduction_run's
    ``study``): its segmentation figures against the study's, whose networks were trained on the shipped VQ-VAE; ''
    otherwise or without the files."""
    given = inp.facts.get('reproduction_run') or {}
    study = (inp.budget_studies.get('segmentation') or {}).get('after') \
        if given.get('study') == 'segmentation_budget_study' else None
    rep = inp.reproduction
    if not study or not rep:
        return ''
    names = (('method', 'miou', 'the method\'s mIoU'), ('method', 'speaking', 'its person IoU (speaking)'),
             ('method', 'silent', 'its person IoU (silent)'), ('end_to_end', 'miou', 'the end-to-end baseline\'s mIoU'))
    pairs = [(label, room_bar.figure(study, row, name), room_bar.figure(rep, row, name)) for row, name, label in names]
    e2e_same = round(pairs[-1][1], 3) == round(pairs[-1][2], 3)
    study_file = inp.facts['room_bar']['segmentation_budget_study']['file']
    return (" Its segmentation networks are those of the segmentation budget study (the same epochs), trained from "
            f"scratch with their own VQ-VAE, where the study's (docs/{study_file}) "
            "were trained on the shipped one: " + ', '.join(f'{label} {b:.3f} against the study\'s {a:.3f}'
                                                            for label, a, b in pairs)
            + ('. The end-to-end baseline, which has no VQ-VAE, reproduced the study\'s; the method, which decodes '
               'through its VQ-VAE, did not: the VQ-VAE a run learns moves the method\'s mIoU by '
               f'{abs(pairs[0][2] - pairs[0][1]):.3f}.' if e2e_same else '.') + replaces_shipped(inp))


def replaces_shipped(inp: Inputs, where: str = 'segmentation_budget_study') -> str:
    """The rule under which the compared run's models replace the shipped ones (facts.yaml ``where``: the amended
    segmentation_budget_study, or reproduction_run's ``rule``): its method's test mIoU at least the shipped models' and
    its depth AbsRel at most theirs plus the seed study's spread of it; '' without the seed study."""
    spreads, (res, _, then), rep = room_bar.seed_spreads(inp), reproduction_baseline(inp), inp.reproduction
    if not spreads:
        return ''
    miou = (room_bar.figure(rep, 'method', 'miou'), room_bar.figure(res, 'method', 'miou'))
    depth = (room_bar.figure(rep, 'method', 'abs_rel'), room_bar.figure(res, 'method', 'abs_rel'),
             spreads[('method', 'abs_rel')])
    checks = [miou[0] >= miou[1], depth[0] <= depth[1] + depth[2]]
    return (f" The rule for its models to replace the shipped ones (facts.yaml {where}): the "
            f"method's test mIoU at least theirs ({miou[0]:.4f} against {miou[1]:.4f}: {'yes' if checks[0] else 'no'}) "
            f"and its depth AbsRel at most theirs plus the seed spread ({depth[0]:.4f} against {depth[1]:.4f} + "
            f"{depth[2]:.4f}: {'yes' if checks[1] else 'no'}): "
            + ('met.' if all(checks) else
               'not met: the models shipped then stayed.' if then else 'not met, the shipped models stay.'))
