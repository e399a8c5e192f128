# SPDX-License-Identifier: Apache-2.0
"""docs/RESULTS.md: the test split's table, the quality bar and its misses, two-stage vs end-to-end, then the
studies (studies.py) and probes (probes.py), training, reproduction time and the deviations from the patent."""
from __future__ import annotations

import math

from audio_vision.training.evaluate import markdown_table
from audio_vision.training.loop import best_epoch
from audio_vision.training.trainer import MONITOR

from . import probes, room_bar, studies
from .common import Criterion, bar_rows, comparisons, criteria_table, end_to_end_prefix, person_criterion, \
    prior_on, reproduce_commands, stage_optim
from .inputs import Inputs


def person_sentence(res: dict) -> str:
    """The method's person IoU on speaking vs silent persons ('' without both)."""
    method = res.get('person_iou', {}).get('method') or {}
    sp, si = method.get('speaking'), method.get('silent')
    if sp is None or si is None:
        return ''
    return (f"The method's person IoU is {sp:.3f} on windows whose persons speak and {si:.3f} on "
            f"windows whose persons are silent ({res['person_windows']['speaking']} and "
            f"{res['person_windows']['silent']} windows): "
            + ('silent persons, sensed only by their echo, are found less often.' if si < sp
               else 'silent persons, sensed only by their echo, are found as often or more.'))


def upper_bound_source(res: dict) -> str:
    """Where the upper bound's row comes from when the shipped files could not give it (inputs.with_upper_bound)."""
    name = res.get('vqvae_upper_bound_from')
    return (f"; from docs/{name}: the same models with their VQ-VAE encoders, which the shipped files leave out as "
            "inference does not run them" if name else '')


def depth_miss(inp: Inputs, missed: dict) -> tuple[str, list[str], list] | None:
    """The depth criteria missed: the decoder's and the end-to-end baseline's figures, the depth probe."""
    depth_misses = [f'{name}: {value}' for name, value in missed.items() if name.startswith('depth')]
    if not depth_misses:
        return None
    rows = inp.results['rows']
    e2e, upper = rows.get('end_to_end'), rows.get('vqvae_upper_bound')
    cause = []
    if upper:
        cause.append(f"Not the decoder: the VQ-VAE reconstructs the true depth at AbsRel "
                     f"{upper['depth']['abs_rel']:.3f}, δ1 {upper['depth']['delta1']:.3f}.")
    if e2e:
        cause.append(f"Not the two-stage design alone: the end-to-end baseline misses too (AbsRel "
                     f"{e2e['depth']['abs_rel']:.3f}, δ1 {e2e['depth']['delta1']:.3f}).")
    if inp.depth_probe:
        p = inp.depth_probe['rows']
        share = (p['method']['abs_rel'] - p['method']['abs_rel_median_scaled']) / p['method']['abs_rel']
        cause.append(f"{share * 100:.0f} % of the error is each scene's overall distance, the rest its shape; "
                     f"with the right scale the audio improves on the mean image's shape by "
                     f"{p['mean']['abs_rel_median_scaled'] - p['method']['abs_rel_median_scaled']:.3f} AbsRel "
                     f"only (\"Where the depth error lies\").")
    tried = [studies.ablation_effect(inp, 'features', 'depth', 'abs_rel', 'AbsRel'),
             studies.ablation_effect(inp, 'objective', 'depth', 'abs_rel', 'AbsRel'),
             studies.ablation_effect(inp, 'width', 'depth', 'abs_rel', 'AbsRel'),
             studies.ablation_effect(inp, 'data', 'depth', 'abs_rel', 'AbsRel'),
             studies.ablation_effect(inp, 'prior', 'depth', 'abs_rel', 'AbsRel'),
             studies.budget_effect(inp, 'depth', 'abs_rel', 'AbsRel', ('method', 'end_to_end'))]
    return '; '.join(depth_misses), cause, tried


def person_miss(inp: Inputs, missed: dict, kind: str) -> tuple[str, list[str], list] | None:
    """The person criterion for `kind` persons missed: what the direction maps place, the decoder's figure."""
    name = person_criterion(inp.facts['quality_bar'], kind)
    if name not in missed:
        return None
    persons, diag = inp.results.get('person_iou', {}), inp.direction_maps
    cause = []
    if diag:
        v = diag['tally']['srp_sources' if kind == 'speaking' else 'echo_silent']
        what = ('the strongest SRP-PHAT cell lies on a body' if kind == 'speaking' else
                'the strongest echo cell lies on a silent body')
        cause.append(f"The input places them poorly: {what} in {v['hit_rate'] * 100:.0f} % of {v['windows']} "
                     f"windows (chance {v['chance'] * 100:.0f} %); this array's beam is wider than a body "
                     f"(\"Why the bodies are hard\").")
    if persons.get('vqvae_upper_bound', {}).get(kind) is not None:
        cause.append(f"Not the decoder: the VQ-VAE reconstructs them at person IoU "
                     f"{persons['vqvae_upper_bound'][kind]:.3f}.")
    tried = [studies.ablation_effect(inp, 'objective', 'segmentation', 'person', 'person IoU, all persons'),
             studies.ablation_effect(inp, 'data', 'segmentation', 'person', 'person IoU, all persons'),
             studies.ablation_effect(inp, 'prior', 'segmentation', 'person', 'person IoU, all persons'),
             studies.budget_effect(inp, 'segmentation', kind, 'person IoU', ('method', 'end_to_end'))]
    return f'{name}: {missed[name]}', cause, tried


def end_to_end_miss(inp: Inputs, missed: dict) -> tuple[str, list[str], list] | None:
    """The method behind the end-to-end baseline: what decoding a mean latent costs (latent_mean_probe)."""
    prefix = end_to_end_prefix(inp.facts['quality_bar'])
    gaps = [f'{name}: {value}' for name, value in missed.items() if name.startswith(prefix)]
    if not gaps or not inp.results['rows'].get('end_to_end'):
        return None
    cause = []
    # The probe skips a modality whose latents are of each window's departure from its prior (no image-free mean).
    pr = (inp.latent_probe or {}).get('rows', {})
    probed = [f"{label} {pr['decoded mean latent'][m][metric]:.3f} vs {pr['mean image'][m][metric]:.3f}"
              for m, metric, label in (('depth', 'abs_rel', 'depth AbsRel'), ('segmentation', 'miou', 'mIoU'))
              if m in pr.get('decoded mean latent', {}) and m in pr.get('mean image', {})]
    if probed:
        cause.append("An L2 target is learned as its conditional mean, and the VQ-VAE decoder turns the mean "
                     f"latent into a worse image than the mean image: {', '.join(probed)} "
                     "(docs/latent_mean_probe.json).")
    cause += room_bar.end_to_end_spreads(inp, gaps).values()
    tried = [studies.ablation_effect(inp, 'objective', 'depth', 'abs_rel', 'depth AbsRel'),
             studies.ablation_effect(inp, 'objective', 'segmentation', 'miou', 'mIoU'),
             studies.budget_effect(inp, 'depth', 'abs_rel', 'AbsRel', ('method', 'end_to_end')),
             studies.budget_effect(inp, 'segmentation', 'miou', 'mIoU', ('method', 'end_to_end'))]
    return '; '.join(gaps), cause, tried


def prior_clause(inp: Inputs) -> str:
    """', and the layout prior ...' when the training config has one ('' otherwise)."""
    features = inp.train.get('features', {})
    if not prior_on(features):
        return ''
    return f", and the sonar layout prior ({features['layout_prior']}) at image resolution"


def misses_section(inp: Inputs, bar: list[Criterion]) -> str:
    """Each missed criterion of the bar with its measured cause and what was tried, from the result files the
    sections below are written from; '' when every criterion is met."""
    missed = {name: value for name, ok, value in bar if not ok}
    if not missed:
        return ''
    out = [depth_miss(inp, missed), person_miss(inp, missed, 'speaking'), person_miss(inp, missed, 'silent'),
           end_to_end_miss(inp, missed)]
    blocks = []
    for heading, cause, tried in filter(None, out):
        blocks.append(f'**{heading}**\n- Measured cause: ' + ' '.join(cause or ['–']) + '\n- Tried (measured):\n'
                      + '\n'.join(f'  - {t}' for t in tried if t))
    epochs = studies.ablation_epoch_range(inp)
    short = (f" The ablations train {'-'.join(str(e) for e in dict.fromkeys([epochs[0], epochs[-1]]))} epochs, so "
             f"their absolute figures sit above the shipped models'; what they show is the order of their rows."
             if epochs else '')
    return ('\n### Each miss: its measured cause and what was tried\n\nGenerated from docs/results.json and the '
            'files of the sections below, which hold the commands.' + short + '\n\n'
            + '\n\n'.join(blocks) + '\n')


def stage_row(name: str, info: dict, train: dict) -> str | None:
    """One training stage: epochs run of its budget, the epoch kept and its validation metrics, wall clock."""
    hist = info.get('history')
    if not hist:
        return None
    stage, modality = name.rsplit('_', 1)
    optim = stage_optim(train, stage, modality)
    patience = optim.get('patience')
    best = best_epoch(hist, MONITOR[modality]) if patience is not None else None
    best = best or hist[-1]['epoch']          # without early stopping the last epoch is kept
    kept = next((r for r in hist if r['epoch'] == best), hist[-1])
    metrics = ', '.join(f'{k[4:]} {v:.3f}' for k, v in kept.items()
                        if k.startswith('val_') and isinstance(v, float))
    if 'codebook_used' in kept:
        metrics += f", codebook used {kept['codebook_used']:.2f}, perplexity {kept['perplexity']:.1f}"
    secs = info.get('seconds')
    # a stage that took seconds was resumed from a finished run, not trained
    clock = '–' if secs is None else ('resumed (see the notes below)' if secs < 10 else f'{secs / 60:.1f} min')
    return (f"| {name} | {len(hist)} of {optim.get('epochs', '?')} | {best} | "
            f"{optim.get('max_steps_per_epoch', '?')} | {metrics} | {clock} |")


def training_run_note(inp: Inputs) -> str:
    """Which run the stage table summarises, and whether it is the one that made the shipped models (the run of
    docs/reproduce_timings.json); '' when the summary does not say."""
    run, shipped = inp.summary.get('run'), inp.timings.get('run') or {}
    if not run:
        return ''
    text = (f" The table is of the run started {run['started_utc']} ({run.get('cpu_model')}, commit "
            f"{run.get('commit')}, `{run.get('command')}`)")
    if shipped and shipped.get('started_utc') != run['started_utc']:
        text += (f"; the shipped models were trained by the same command in the run started {shipped['started_utc']} "
                 f"({shipped.get('cpu_model')}, commit {shipped.get('commit')}, docs/reproduce_timings.json), whose "
                 "logs were not kept: \"Reproduction time\" compares this run's models with the shipped ones")
    return text + '.' + shipped_atnet_note(inp)


def shipped_atnet_note(inp: Inputs) -> str:
    """Which AT-net stages of the table come from a study's shipped variant (room_bar.shipped_atnet) rather than from
    the run itself; '' where none does."""
    return ''.join(
        f" Its atnet_{m} stage is the {m} AT-net study's variant {variant} ({change}), trained by the stage command on "
        f"this run's VQ-VAE stage alone and shipped under the study's rule (facts.yaml {key}; \"The bar of "
        f"the networks on the measured room\"): a stage trained alone does not repeat the script's run of it bit for "
        f"bit (the study's control, the shipped setting trained the same way, differs from its first epoch on, as "
        f"another seed would), so the script with config/train.yaml trains an AT-net of this setting, not this file."
        for m, (key, variant, change) in room_bar.shipped_atnet(inp).items())


def training_section(inp: Inputs) -> str:
    rows = [stage_row(name, info, inp.train) for name, info in inp.summary['stages'].items()]
    table = '\n'.join(['| stage | epochs run | kept epoch | steps per epoch | kept validation metrics | wall clock |',
                       '| --- | --- | --- | --- | --- | --- |'] + [r for r in rows if r])
    return f"""## Training

{table}

Early stopping watches the validation image metric (depth AbsRel, segmentation mIoU) with patience
{inp.train.get('atnet_optim', {}).get('patience')} epochs and keeps the best epoch's weights (docs/training_summary.json).{training_run_note(inp)}{studies.budget_note(inp.train)}
"""  # noqa: E501 (the template's lines are the document's lines)


def time_table(inp: Inputs) -> str:
    """The reproduction's stage times and its total against issue #10's budget (facts.yaml)."""
    timings, budget = inp.timings, inp.facts['reproduction_budget_min']
    time_lines = '\n'.join(f'| {k} | {v / 60:.1f} min |' for k, v in timings.items()
                           if isinstance(v, (int, float)) and k != 'total')
    nested = timings.get('stages_within_train_parallel', {})
    if nested:
        time_lines += '\n' + '\n'.join(f'| within train_parallel: {k} | {v / 60:.1f} min |' for k, v in nested.items())
    if 'total' in timings:
        minutes = timings['total'] / 60
        time_lines += (f"\n| **total** | **{minutes:.1f} min** |\n\nTotal {minutes:.1f} min: "
                       + (f"within the {budget}-minute budget of issue #10."
                          if minutes <= budget else
                          f"**over** the {budget}-minute budget of issue #10.")
                       + ('' if 'dataset' in timings else ' The dataset existed before the run: its generation is '
                          'not in this total.'))
        time_lines += features_note(inp, minutes, budget)
    return time_lines


def features_note(inp: Inputs, minutes: float, budget: int) -> str:
    """When the run found its feature cache (scripts/reproduce_default_model.sh records it; a run before that
    record is recognised by a features stage of under a minute): the total with the features stage of the last run
    that computed them (docs/reproduce_timings_full_run.json)."""
    timings, full = inp.timings, inp.full_run_timings
    run = timings.get('run') or {}
    if not run.get('features_cache_existed', timings.get('features', math.inf) < 60):
        return ''
    text = (' The feature cache existed before the run (the same dataset content): the features were read, not '
            'computed, so this total holds no feature computation.')
    if full.get('features'):
        other = full.get('run') or {}
        with_features = minutes + full['features'] / 60
        text += (f" With the features stage of the last run that computed them ({full['features'] / 60:.1f} min, "
                 f"{other.get('cpu_model')}, started {other.get('started_utc')}, docs/reproduce_timings_full_run.json)"
                 f" the reproduction takes {with_features:.1f} min: "
                 + (f'within the {budget}-minute budget.' if with_features <= budget else
                    f'**over** the {budget}-minute budget.'))
    return text


def reproduction_section(inp: Inputs) -> str:
    run = inp.timings.get('run') or {}
    run_line = (f" (`{run['command']}`, started {run['started_utc']} at commit {run['commit']} on {run['cpu_model']}, "
                f"{run['cpus']} cores, Python {run['python']})" if run else '')
    return f"""## Reproduction time

From `docs/reproduce_timings.json`, written by `scripts/reproduce_default_model.sh` itself{run_line}:

| step | wall clock |
| --- | --- |
{time_table(inp)}
{probes.reproduction_comparison(inp)}
{inp.notes}
"""


def objective_text(train: dict) -> str:
    """The AT-net's objective per modality, as its weighted terms."""
    objectives = train.get('atnet_objective') or {}
    return '; '.join(
        f"{m}: " + ' + '.join(f"{k.replace('_weight', '')} x {w:g}" for k, w in objectives.get(m, {}).items() if w)
        for m in ('depth', 'segmentation') if m in objectives) or 'latent MSE (the patent)'


def deviations_section(inp: Inputs) -> str:
    t, facts = inp.train, inp.facts
    camera = inp.simulation['camera']
    features = t.get('features', {})
    patent = ', '.join(f'{k}: {v!r}' for k, v in facts['patent_objective'].items())
    return f"""## Deviations from the patent's configuration

- Images {camera['width']}x{camera['height']} and manifold {t.get('latent_size')}x{t.get('latent_size')}: CPU-only training and a {facts['inference_budget_ms']} ms inference budget on {facts['budget_cores']} cores.
- {studies.width_deviation(inp)}
- STFT overlap {features.get('overlap')} ({features.get('n_fft')}-point): the ResNet's stem strides by {facts['resnet_stem_stride']} at once.
- Extra input channels beyond the log-mel spectrograms (phase differences, echo beams, direction maps);
  the spectrogram-only input stays selectable (`features: {{spatial: none, echo: false, direction_maps: false}}`).
- The AT-net's objective per modality: {objective_text(t)}; the patent's latent MSE alone stays selectable
  (`atnet_objective: {{segmentation: {{{patent}}}}}`), see "AT-net objective ablation".
"""  # noqa: E501 (the template's lines are the document's lines)


def render(inp: Inputs) -> str:
    """docs/RESULTS.md."""
    res, bar = inp.results, bar_rows(inp)
    bar_met = all(ok for _, ok, _ in bar)
    return f"""# Results

Test split of the default simulated dataset (rooms never seen in training): {res['n_samples']} windows,
dataset seed {res['dataset'].get('seed')}, content hash `{res['dataset']['content_hash']}`, counts {inp.counts}.
Measured {inp.today} on {inp.machine}. Every number and comparison on this page is generated by
`scripts/write_results_docs.py` from the JSON files named in each section.

```bash
{reproduce_commands(inp.facts)}
```

{markdown_table(res)}
Rows: `vqvae_upper_bound` = the VQ-VAE reconstructing the true image (no audio; the ceiling of the
method{upper_bound_source(res)}); `method` = AT-net + nearest-codeword quantization + VQ-VAE decoder;
`method_on_floor` = the same with its depth's bodies stood on the measured floor, as the node publishes it (the bars
read it; "Bodies stood on the measured floor" below); `method_no_quant` = the AT-net output decoded without
snapping to codewords; `end_to_end` = same audio encoder and direction-map branch, direct image decoder, pixel loss;
`mean` = training-set mean image.
Person IoU is split by whether the persons in view speak or are silent (a silent person can be sensed only by its echo).

## The bar (issue #10)

{criteria_table(bar)}

{'Every criterion is met.' if bar_met else 'Not every criterion is met; the misses are marked above.'}
{misses_section(inp, bar)}{room_bar.section(inp)}
## Two-stage vs end-to-end

Both networks read the same features (log-mel, phase differences, echo beams and the direction maps
registered to the camera{prior_clause(inp)}) and trained for the same budget with the same early stopping.
{comparisons(res)}
{person_sentence(res)}
{probes.latent_probe_section(inp)}
{studies.budget_section(inp)}
{probes.depth_error_section(inp)}
{probes.fresh_section(inp)}
{studies.ablation_sections(inp) + studies.learning_curve_note(inp)}
{probes.direction_maps_section(inp)}
{probes.confidence_section(inp)}
{probes.mapping_section(inp)}
{training_section(inp)}
![GT vs every row on fixed test scenes](figures/results_mosaic.png)

Training curves: ![depth](figures/training_curves_depth.png) ![segmentation](figures/training_curves_segmentation.png)

{reproduction_section(inp)}
{deviations_section(inp)}"""
