# SPDX-License-Identifier: Apache-2.0
"""What more than one document states: the quality bar's verdicts, the two-stage vs end-to-end comparison,
the reproduction commands, and the formats they share."""
from __future__ import annotations

from .inputs import Inputs

Criterion = tuple[str, bool, str]       # (what is required, met, the measured value)


def signed(delta: float) -> str:
    """A difference with its sign, to 3 decimals; a difference that rounds to zero is +0.000, never -0.000."""
    shown = round(delta, 3) + 0.0             # -0.0 + 0.0 is +0.0
    return f'{shown:+.3f}'


def stage_optim(train: dict, stage: str, modality: str) -> dict:
    """A training stage's optimizer settings ('vqvae', 'atnet', 'end_to_end') for `modality` in a run's config:
    the stage's own with the modality's ``optim_overrides`` over them (TrainConfig.optim, on the config as a dict)."""
    return {**train.get(f'{stage}_optim', {}),
            **(train.get('optim_overrides') or {}).get(modality, {}).get(f'{stage}_optim', {})}


def person_criterion(bar: dict, kind: str) -> str:
    """The bar's person IoU criterion for speaking or silent persons (also how its miss is looked up)."""
    return f"person IoU >= {bar['person_iou']:.2f} ({kind} persons)"


def published(res: dict) -> dict:
    """The method's row as the pipeline publishes it (evaluate's ``published_row``: the depth's bodies stood on the
    measured floor where both modalities and the layout were scored), else ``method``: the row the bars read."""
    return res['rows'][res.get('published_row', 'method')]


def end_to_end_prefix(bar: dict) -> str:
    """How the bar's criteria of the method against the end-to-end baseline begin (the misses look them up)."""
    return f"method within {bar['end_to_end_tolerance'] * 100:g} % of end-to-end on "


def bar_rows(inp: Inputs) -> list[Criterion]:
    """Issue #10's quality bar (facts.yaml quality_bar) checked against docs/results.json."""
    res, bar = inp.results, inp.facts['quality_bar']
    rows = res['rows']
    m, mean, e2e = published(res), rows['mean'], rows.get('end_to_end')
    persons = res.get('person_iou', {}).get('method', {})
    share, margin = bar['depth_abs_rel_vs_mean'], bar['segmentation_miou_over_mean']
    checks = [
        (f'depth AbsRel <= {share:g} x mean baseline', m['depth']['abs_rel'] <= share * mean['depth']['abs_rel'],
         f"{m['depth']['abs_rel']:.3f} vs {share:g} x {mean['depth']['abs_rel']:.3f} = "
         f"{share * mean['depth']['abs_rel']:.3f}"),
        (f"depth δ1 >= {bar['depth_delta1']:.2f}", m['depth']['delta1'] >= bar['depth_delta1'],
         f"{m['depth']['delta1']:.3f}"),
        (f"segmentation mIoU >= {bar['segmentation_miou']:.2f}", m['segmentation']['miou'] >= bar['segmentation_miou'],
         f"{m['segmentation']['miou']:.3f}"),
        (f'segmentation mIoU >= mean baseline + {margin:.2f}',
         m['segmentation']['miou'] >= mean['segmentation']['miou'] + margin,
         f"{m['segmentation']['miou']:.3f} vs {mean['segmentation']['miou']:.3f} + {margin:.2f}"),
    ]
    for kind in ('speaking', 'silent'):
        iou = persons.get(kind)
        checks.append((person_criterion(bar, kind), iou is not None and iou >= bar['person_iou'],
                       '–' if iou is None else f'{iou:.3f}'))
    if e2e:
        tolerance = bar['end_to_end_tolerance']
        a, b = m['depth']['abs_rel'], e2e['depth']['abs_rel']
        checks.append((end_to_end_prefix(bar) + 'depth AbsRel, or ahead', a <= (1 + tolerance) * b,
                       f'{a:.3f} vs {b:.3f} ({(a / b - 1) * 100:+.1f} %)'))
        a, b = m['segmentation']['miou'], e2e['segmentation']['miou']
        checks.append((end_to_end_prefix(bar) + 'mIoU, or ahead', a >= (1 - tolerance) * b,
                       f'{a:.3f} vs {b:.3f} ({(a / b - 1) * 100:+.1f} %)'))
    return checks


def criteria_table(rows: list[Criterion]) -> str:
    lines = ['| criterion | status | value |', '| --- | --- | --- |']
    lines += [f"| {name} | {'met' if ok else '**not met**'} | {value} |" for name, ok, value in rows]
    return '\n'.join(lines)


def compare(res: dict, modality: str, metric: str, higher_is_better: bool) -> str:
    """'the method (0.30) beats the end-to-end baseline (0.32)' computed from the rows."""
    m, e = published(res)[modality][metric], res['rows']['end_to_end'][modality][metric]
    if abs(m - e) < 5e-4:                     # equal at the 3 decimals shown
        return f'the method and the end-to-end baseline tie ({m:.3f})'
    method_better = (m > e) == higher_is_better
    first, second = (('the method', m), ('the end-to-end baseline', e)) if method_better else \
        (('the end-to-end baseline', e), ('the method', m))
    return f'{first[0]} ({first[1]:.3f}) is better than {second[0]} ({second[1]:.3f})'


def comparisons(res: dict) -> str:
    """The method against the end-to-end baseline on each headline metric; '' without that baseline."""
    if not res['rows'].get('end_to_end'):
        return ''
    return (f"On depth AbsRel {compare(res, 'depth', 'abs_rel', False)}; on δ1 "
            f"{compare(res, 'depth', 'delta1', True)}; on segmentation mIoU "
            f"{compare(res, 'segmentation', 'miou', True)}.")


def reproduce_commands(facts: dict) -> str:
    return (f"bash scripts/reproduce_default_model.sh   # dataset -> features -> train ({facts['train_processes']} "
            'processes) -> mean -> export -> evaluate\n.venv/bin/python scripts/write_results_docs.py')


def prior_on(features: dict) -> bool:
    """Whether a training config's ``features`` hold the sonar layout prior."""
    return features.get('layout_prior', 'none') != 'none'
