# SPDX-License-Identifier: Apache-2.0
"""The results page's studies of what was tried: scripts/ablation.py's ablations, the learning curve, the
ResNet width, and the training budget raised from the models shipped before (facts.yaml budget_study)."""
from __future__ import annotations

import re

from .common import signed
from .inputs import ABLATION_STUDIES, Inputs

#: per modality, the metrics the budget study compares: (key, label, higher is better); the first is the verdict's
BUDGET_METRICS = {'depth': (('abs_rel', 'AbsRel', False), ('delta1', 'δ1', True)),
                  'segmentation': (('miou', 'mIoU', True),)}


def ablation_person_iou(row: dict) -> float:
    """An ablation row's person IoU (0 where no person was predicted or present)."""
    return row['segmentation']['per_class_iou'].get('person') or 0.0


def person_kind_iou(row: dict, kind: str) -> float:
    """A row's person IoU of ``kind`` (speaking / silent) persons (0 where none was predicted or present)."""
    return (row.get('person_iou') or {}).get(kind) or 0.0


def by_network(rows: dict) -> dict[str, dict]:
    """An ablation's rows grouped by network ('AT-net (the method): + layout prior' -> its network's rows, by variant),
    in their order; rows without a network prefix form one group under ''."""
    groups: dict[str, dict] = {}
    for name, r in rows.items():
        network, _, variant = name.rpartition(': ') if ': ' in name else ('', '', name)
        groups.setdefault(network, {})[variant] = r
    return groups


def ablation_epochs(ablation: dict) -> list[int]:
    """The epochs an ablation trained, from its command (older files state it in their description)."""
    return [int(e) for e in re.findall(r'--epochs (\d+)', ablation.get('command') or ablation.get('description', ''))]


def ablation_section(inp: Inputs, study: str) -> str:
    """docs/ablation_<study>.json (scripts/ablation.py) as a Markdown section; '' when absent."""
    ablation = inp.ablations.get(study)
    if not ablation:
        return ''
    rows = ablation['rows']
    train_s = ablation.get('train_seconds') or {}
    timed = all(train_s.get(name) for name in rows)

    def clock(name: str) -> str:
        return ' / '.join(f"{train_s[name][m] / 60:.1f}" for m in ('depth', 'segmentation') if m in train_s[name])

    # person IoU of speaking and of silent persons, where every row has them (older files do not)
    split = all(r.get('person_iou') for r in rows.values())

    def persons(r: dict) -> str:
        return f" {person_kind_iou(r, 'speaking'):.3f} | {person_kind_iou(r, 'silent'):.3f} |" if split else ''

    lines = [f"| {name} | {r['depth']['abs_rel']:.3f} | {r['depth']['delta1']:.3f} | {r['segmentation']['miou']:.3f} | "
             f"{ablation_person_iou(r):.3f} |" + persons(r) + (f' {clock(name)} |' if timed else '')
             for name, r in rows.items()]
    best_depth = min(rows, key=lambda n: rows[n]['depth']['abs_rel'])
    best_seg = max(rows, key=lambda n: rows[n]['segmentation']['miou'])
    network = 'the network\'s' if any(':' in name for name in rows) else 'AT-net'
    clock_head = (f" {network} training wall clock, depth / segmentation (min, {inp.facts['ablation_threads']} thread "
                  'each, shared machine) |')
    elsewhere = ''.join(
        f"\nThe same models on `{other['path']}` ({other['split']} split"
        + (f", its first {other['limit']} windows" if other.get('limit') else '') + "):\n\n"
        "| row | depth AbsRel | δ1 | mIoU | person IoU, speaking | person IoU, silent |\n"
        "| --- | --- | --- | --- | --- | --- |\n"
        + '\n'.join(f"| {name} | {r['depth']['abs_rel']:.3f} | {r['depth']['delta1']:.3f} | "
                    f"{r['segmentation']['miou']:.3f} | {person_kind_iou(r, 'speaking'):.3f} | "
                    f"{person_kind_iou(r, 'silent'):.3f} |" for name, r in other['rows'].items())
        + '\n' for other in (ablation.get('elsewhere') or {}).values())
    return (f"\n## {ABLATION_STUDIES[study]}\n\n{ablation.get('description', '')}\n\n"
            f"| {ablation.get('variable', 'input')} | depth AbsRel | δ1 | mIoU | person IoU |"
            + (' person IoU, speaking | person IoU, silent |' if split else '')
            + (clock_head if timed else '') + "\n"
            "| --- | --- | --- | --- | --- |" + (' --- | --- |' if split else '') + (' --- |' if timed else '') + "\n"
            + '\n'.join(lines) +
            f"\n\nLowest depth AbsRel: {best_depth}; highest mIoU: {best_seg}.\n" + steps_per_network(rows) + elsewhere
            + recording_gap(ablation))


def recording_gap(ablation: dict) -> str:
    """Where an ablation scored its models on the independent re-recording and on the same windows as this pipeline
    records them (--also independent=... reference=...), each row's change from the one to the other; '' otherwise."""
    other = ablation.get('elsewhere') or {}
    if not {'independent', 'reference'} <= set(other):
        return ''
    ind, ref = other['independent']['rows'], other['reference']['rows']

    def change(name: str, modality: str, metric: str) -> str:
        a, b = ind[name][modality][metric], ref[name][modality][metric]
        return f'{a:.3f} vs {b:.3f} ({(a - b) / b * 100:+.1f} %)'
    return ('\nRe-recorded by the independent engine against the same windows as this pipeline records them:\n\n'
            + ''.join(f"- {name}: depth AbsRel {change(name, 'depth', 'abs_rel')}, "
                      f"δ1 {change(name, 'depth', 'delta1')}, "
                      f"mIoU {change(name, 'segmentation', 'miou')}.\n" for name in ind if name in ref))


def steps_per_network(rows: dict) -> str:
    """Where an ablation's rows are several networks' (prefixed), each network's variants in order: what each step
    changed in depth AbsRel, mIoU and person IoU; '' otherwise."""
    groups = by_network(rows)
    if len(groups) < 2:
        return ''

    def chain(variants: dict, value) -> str:
        return ' → '.join(f'{value(r):.3f}' for r in variants.values())
    return '\n' + ''.join(
        f"- {network}, {' → '.join(variants)}: depth AbsRel {chain(variants, lambda r: r['depth']['abs_rel'])}, mIoU "
        f"{chain(variants, lambda r: r['segmentation']['miou'])}, person IoU {chain(variants, ablation_person_iou)}.\n"
        for network, variants in groups.items())


def ablation_sections(inp: Inputs) -> str:
    return ''.join(ablation_section(inp, study) for study in ABLATION_STUDIES)


def learning_curve_note(inp: Inputs) -> str:
    """What the learning curve (docs/ablation_data.json) says about the dataset's size; '' when absent."""
    study = inp.ablations.get('data')
    if not study or len(study['rows']) < 3:
        return ''
    names = list(study['rows'])
    rows, windows = [study['rows'][n] for n in names[-3:]], [study['training_windows'][n] for n in names[-3:]]
    depth = [r['depth']['abs_rel'] for r in rows]
    miou = [r['segmentation']['miou'] for r in rows]
    optim = inp.train.get('atnet_optim', {})
    epochs = ablation_epochs(study)
    same_steps = ''
    if optim.get('batch_size') and optim.get('max_steps_per_epoch'):
        steps = [min(optim['max_steps_per_epoch'], -(-w // optim['batch_size'])) for w in windows[1:]]
        if steps[0] == steps[1]:
            same_steps = (f" Both of the larger shares train the same {steps[0]} steps per epoch"
                          + (f" for {epochs[0]} epochs" if epochs else '')
                          + f", so the curve measures more data at a fixed budget; whether the {optim.get('epochs')}-"
                            "epoch budget of the shipped models would use more data is not measured.")
    # flat: the last step changes depth by less than half of what the step before did
    flat = abs(depth[2] - depth[1]) < 0.5 * abs(depth[1] - depth[0])
    return (f"\nFrom {windows[1]} to {windows[2]} training windows depth AbsRel changes by {depth[2] - depth[1]:+.3f} "
            f"and mIoU by {miou[2] - miou[1]:+.3f}, against {depth[1] - depth[0]:+.3f} and {miou[1] - miou[0]:+.3f} "
            f"from {windows[0]} to {windows[1]}: "
            + (f"the curve flattens before the default dataset's size, the measured reason it stays at "
               f"{sum(inp.counts.values()):,} windows rather than the {inp.facts['proposed_dataset_windows']:,} "
               "issue #10 proposed." if flat
               else "the curve still falls at the default dataset's size.")
            + same_steps + '\n')


def width_deviation(inp: Inputs) -> str:
    """The deviation line for the ResNet width, from docs/ablation_width.json when it was measured."""
    width, original = inp.train.get('atnet', {}).get('encoder_width'), inp.facts['resnet_original_width']
    study = inp.ablations.get('width')
    line = f'ResNet-18 base width {width} instead of {original}: CPU speed'
    original_row = f'{original} (the original)'           # scripts/ablation.py's name of the published width's row
    if not study or str(width) not in study['rows'] or original_row not in study['rows']:
        return line + f'; not re-measured against width {original} on this dataset.'
    ours, orig = study['rows'][str(width)], study['rows'][original_row]
    cost = (' (training time per variant is in that section, measured on a machine whose load differed between '
            'the two variants)')
    return (line + f'. Measured (docs/ablation_width.json, {study["command"]}): width {original} scores depth AbsRel '
            f"{orig['depth']['abs_rel']:.3f} vs {ours['depth']['abs_rel']:.3f} and mIoU "
            f"{orig['segmentation']['miou']:.3f} vs {ours['segmentation']['miou']:.3f}, see \"ResNet width\"{cost}.")


def budget_note(train: dict) -> str:
    """A sentence on weight averaging and per-modality budgets in the training config ('' when none)."""
    stages = (('atnet_optim', 'AT-nets'), ('end_to_end_optim', 'end-to-end baselines'))
    averaged = {label: train[name]['ema_decay'] for name, label in stages if train.get(name, {}).get('ema_decay')}
    note = ''
    if averaged:
        note = (f" The {' and '.join(averaged)} are validated and kept as an exponential moving average of their "
                f"weights (decay {' / '.join(f'{d:g}' for d in dict.fromkeys(averaged.values()))}).")
    parts = []
    for modality, stages in (train.get('optim_overrides') or {}).items():
        for name, patch in stages.items():
            base = train.get(name, {})
            what = []
            if 'epochs' in patch:
                what.append(f"{patch['epochs']} epochs instead of {base.get('epochs')}")
            if patch.get('ema_decay'):
                what.append(f"averaged with decay {patch['ema_decay']:g}")
            if what:
                parts.append(f"{name.replace('_optim', '').replace('_', '-')} {modality}: " + ', '.join(what))
    if parts:
        note += ' Per modality (`optim_overrides` in config/train.yaml): ' + '; '.join(parts) + '.'
    return note


def budget_epochs(inp: Inputs) -> tuple[int, int]:
    """The epochs of the models shipped before (facts.yaml) and at the raised budget (facts.yaml's ``after``, else
    the training config's AT-nets)."""
    after = inp.facts['budget_study'].get('after', {}).get('epochs')
    return inp.facts['budget_study']['epochs'], after or inp.train.get('atnet_optim', {}).get('epochs')


def budget_rows(inp: Inputs, modality: str, before: dict, gains: dict) -> list[str]:
    """One modality's rows of the budget table; records its headline metric's gain per row in `gains`."""
    res, lines = inp.budget_after, []
    metrics = BUDGET_METRICS[modality]
    for row in ('method', 'end_to_end'):
        for key, label, higher_is_better in metrics:
            a, b = before['rows'][row][modality][key], res['rows'][row][modality][key]
            lines.append(f'| {modality} | {row} | {label} | {a:.3f} | {b:.3f} | {signed(b - a)} |')
            if key == metrics[0][0]:            # the verdict speaks of the modality's headline metric
                gains.setdefault(modality, {})[row] = (b - a) if higher_is_better else (a - b)
    if modality == 'segmentation':
        persons_before = before.get('person_iou', {}).get('method', {})
        persons_now = res.get('person_iou', {}).get('method', {})
        for kind in ('speaking', 'silent'):
            a, b = persons_before.get(kind), persons_now.get(kind)
            if a is not None and b is not None:
                lines.append(f'| segmentation | method | person IoU ({kind}) | {a:.3f} | {b:.3f} | '
                             f'{signed(b - a)} |')
    return lines


def budget_verdict(modality: str, g: dict) -> str:
    """Whether the longer budget helped the method and the end-to-end baseline on the modality's headline metric."""
    def effect(gain: float, who: str) -> str:
        return f"{'helps' if gain > 0 else 'does not help'} {who} ({abs(gain):.3f} {'better' if gain > 0 else 'worse'})"

    return (f"on {modality} ({'AbsRel' if modality == 'depth' else 'mIoU'}) the longer budget "
            f"{effect(g['method'], 'the method')} and {effect(g['end_to_end'], 'the end-to-end baseline')}")


def budget_section(inp: Inputs) -> str:
    """Both modalities at the budget before vs now + weight averaging: the test-split results of the models
    shipped before (facts.yaml budget_study) against docs/results.json; '' when neither is there."""
    before_epochs, epochs = budget_epochs(inp)
    lines = [f'| modality | row | metric | {before_epochs} epochs | {epochs} epochs + weight average | change |',
             '| --- | --- | --- | --- | --- | --- |']
    sources, gains = [], {}
    for modality, before in inp.budget_before.items():
        shipped = inp.facts['budget_study']['before'][modality]
        sources.append(f"docs/{shipped['file']} (commit {shipped['commit']})")
        lines += budget_rows(inp, modality, before, gains)
    if not sources:
        return ''
    verdicts = [budget_verdict(modality, g) for modality, g in gains.items() if 'method' in g and 'end_to_end' in g]
    optim = inp.train.get('atnet_optim', {})
    after = inp.facts['budget_study'].get('after')
    after_source = (f"docs/{after['file']} (commit {after['commit']}), the results of the models shipped at that "
                    "budget without the layout prior" if after else 'docs/results.json')
    return (f"\n## Training budget: {before_epochs} vs {epochs} epochs\n\nAt {before_epochs} epochs of the one-cycle "
            "schedule both depth networks' validation AbsRel was still falling when the learning rate ran out, so "
            f"the AT-nets and end-to-end baselines were trained {epochs} epochs of at most "
            f"{optim.get('max_steps_per_epoch')} steps, validated and kept as an exponential moving "
            "average of their weights (config/train.yaml); depth went first (with the AT-net objective latent "
            "MSE + image loss, the objective ablation's best depth), segmentation after. Test split, same "
            f"command; before: {', '.join(sources)}, the results of the models shipped before; after: "
            f"{after_source}:\n\n" + '\n'.join(lines) + '\n\n'
            + ('; '.join(verdicts)[:1].upper() + '; '.join(verdicts)[1:] + '.\n' if verdicts else ''))


def ablation_effect(inp: Inputs, study: str, modality: str, metric: str, label: str) -> str | None:
    """'<study> (<label>: <row> 0.540 → <row> 0.391)' across docs/ablation_<study>.json's rows, in their order."""
    ablation = inp.ablations.get(study)
    if not ablation:
        return None

    def value(r: dict) -> float:
        return ablation_person_iou(r) if metric == 'person' else r[modality][metric]

    def chain(rows: dict) -> str:
        return ' → '.join(f'{name} {value(r):.3f}' for name, r in rows.items())
    steps = '; '.join((f'{network}: ' if network else '') + chain(rows)
                      for network, rows in by_network(ablation['rows']).items())
    return f'{ABLATION_STUDIES[study]} ({label}: {steps})'


def budget_effect(inp: Inputs, modality: str, key: str, label: str, rows=('method',)) -> str | None:
    """'28 instead of 14 epochs + weight averaging (<label> method 0.319 → 0.295, ...)' from the results of the
    models shipped before (facts.yaml budget_study) and docs/results.json."""
    before = inp.budget_before.get(modality)
    if not before:
        return None

    def value(r: dict, row: str) -> float | None:
        return r.get('person_iou', {}).get(row, {}).get(key) if key in ('speaking', 'silent') else \
            r['rows'][row][modality][key]

    after = inp.budget_after
    changes = [f'{row.replace("_", "-")} {value(before, row):.3f} → {value(after, row):.3f}' for row in rows
               if value(before, row) is not None and value(after, row) is not None]
    before_epochs, epochs = budget_epochs(inp)
    return (f"Training budget: {epochs} instead of {before_epochs} epochs + weight averaging "
            f"({label} {', '.join(changes)})") if changes else None


def ablation_epoch_range(inp: Inputs) -> list[int]:
    """Every epoch count the ablations trained, sorted."""
    return sorted({e for ablation in inp.ablations.values() for e in ablation_epochs(ablation)})
