#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Ablation studies of the method's AT-net: one thing changed at a time, everything else equal.

Each variant reuses the default run's finished VQ-VAEs (the images, hence the manifold, do not depend
on the audio features or on how the AT-net is trained; ``--vqvae-from DIR`` takes them from a directory of
the training runs' own depth.pt and segmentation.pt (``runs/<run>-<modality>/models``) where the default runs
are not on this machine: the shipped files hold no VQ-VAE encoder, which the AT-net's targets need), trains
the AT-net of both modalities (``--networks atnet end_to_end``: and the end-to-end baselines) as parallel
single-threaded processes on an equal budget
and is scored on the test split; the rows go to docs/ablation_<study>.json, which
scripts/write_results_docs.py renders into docs/RESULTS.md.

studies
  features   spectrogram only (the patent's input) / + phase differences / + echo beams / + direction maps
  objective  what the AT-net is trained against: the patent's latent MSE / + codeword cross-entropy /
             + image loss through the frozen decoder (audio_vision/training/objectives.py)
  width      ResNet-18 base width 32 vs 64 (the original)
  data       learning curve: 25 / 50 / 100 % of the training windows (validation stays whole)
  prior      without / with the sonar layout prior / + its residual reflectors (FeatureConfig.layout_prior),
             for the method and the end-to-end baseline (issue #22):
               scripts/ablation.py prior --networks atnet end_to_end --vqvae-from runs/vq-models --epochs 4
  srp        the SRP-PHAT maps as computed / centred / standardised per window in the direction-map branch, or not
             read at all (InputBranches.srp_norm 'drop': what they add, issue #22's last ablation step), scored also
             on the independent re-recording and on the same windows as this pipeline records them
             (scripts/independent_swap_probe.py found their level engine-dependent):
               scripts/ablation.py srp --epochs 4 --also independent=data/independent:test \
                   reference=data/default:test:100

    .venv/bin/python scripts/ablation.py objective --epochs 5 --eval-limit 800
A variant whose run already holds its trained models is only re-scored (resumable).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

from audio_vision.paths import source_commit

ROOT = Path(__file__).resolve().parents[1]
MODALITIES = ('depth', 'segmentation')


def both(objective: dict) -> dict:
    """A config patch giving both modalities' AT-nets the same objective."""
    return {'atnet_objective': {m: objective for m in MODALITIES}}


def srp_norm(norm: str) -> dict:
    """A config patch giving both networks' direction-map branches the same SRP-map normalisation."""
    return {net: {'srp_norm': norm} for net in ('atnet', 'end_to_end')}


# study -> (what the first column names, {variant: (config patch, share of the training windows)})
STUDIES = {
    'features': ('input', {
        'spectrogram only': ({'features': {'spatial': 'none', 'echo': False, 'direction_maps': False}}, 1.0),
        '+ phase differences': ({'features': {'spatial': 'ipd', 'echo': False, 'direction_maps': False}}, 1.0),
        '+ echo beams': ({'features': {'spatial': 'ipd', 'echo': True, 'direction_maps': False}}, 1.0),
        '+ direction maps (default)': ({'features': {'spatial': 'ipd', 'echo': True, 'direction_maps': True}}, 1.0),
    }),
    'objective': ('AT-net objective (both modalities)', {
        'latent MSE (the patent)': (both({'latent_weight': 1.0}), 1.0),
        '+ codeword cross-entropy': (both({'latent_weight': 1.0, 'code_weight': 1.0}), 1.0),
        '+ codeword CE + image loss': (both({'latent_weight': 1.0, 'code_weight': 1.0, 'image_weight': 1.0}), 1.0),
        '+ image loss': (both({'latent_weight': 1.0, 'image_weight': 1.0}), 1.0),
    }),
    'width': ('ResNet-18 base width', {
        '32': ({'atnet': {'encoder_width': 32}}, 1.0),
        '64 (the original)': ({'atnet': {'encoder_width': 64}}, 1.0),
    }),
    'data': ('training windows', {
        '25 %': ({}, 0.25),
        '50 %': ({}, 0.5),
        '100 %': ({}, 1.0),
    }),
    'prior': ('input', {
        'without the layout prior': ({}, 1.0),
        '+ layout prior': ({'features': {'layout_prior': 'layout'}}, 1.0),
        '+ layout prior + residual reflectors': ({'features': {'layout_prior': 'layout+reflectors'}}, 1.0),
    }),
    'srp': ('SRP-PHAT maps (direction-map branch)', {
        'as computed': (srp_norm('none'), 1.0),
        'centred per window': (srp_norm('center'), 1.0),
        'standardised per window': (srp_norm('standardize'), 1.0),
        'not read': (srp_norm('drop'), 1.0),
    }),
}
#: --networks: the trainer's stage and its models' file names (modality appended)
NETWORKS = {'atnet': ('AT-net (the method)', ''), 'end_to_end': ('end-to-end', 'end_to_end_')}


def merged(base: dict, patch: dict) -> dict:
    """``base`` with ``patch`` applied one level deep (a patched section keeps its other keys)."""
    out = dict(base)
    for key, value in patch.items():
        out[key] = {**base.get(key, {}), **value} if isinstance(value, dict) else value
    return out


def train_windows(data: Path) -> int:
    card = json.loads((data / 'card.json').read_text())
    return int(card['splits']['train']['count'])


def vqvae_from_models(models: Path, modality: str, stage_dir: Path, epochs: int) -> None:
    """A finished VQ-VAE stage (what `train --stages atnet` loads) holding the VQ-VAE of the models in ``models``."""
    import torch
    from audio_vision.core.model.checkpoint import load_checkpoint
    model = load_checkpoint(models / f'{modality}.pt')
    if not model.has_vqvae_encoder:
        raise SystemExit(f'{models / f"{modality}.pt"} holds no VQ-VAE encoder (a shipped inference file); the AT-net '
                         'stage needs it for its targets: pass --vqvae-from a directory of the training runs\' own '
                         'files (runs/<run>-<modality>/models/<modality>.pt)')
    stage_dir.mkdir(parents=True, exist_ok=True)
    torch.save({'epoch': epochs, 'history': [{'epoch': epochs}],
                'model': {k: v.float() if v.is_floating_point() else v for k, v in model.vqvae.state_dict().items()}},
               stage_dir / 'state.pt')


def train_variant(run: Path, cfg: dict, data: Path, runs: Path, train_limit: int | None,
                  networks: tuple[str, ...] = ('atnet',), vqvae_from: Path | None = None) -> None:
    """Both modalities' networks, as parallel 1-thread processes (one per modality), unless already trained."""
    procs = []
    for m in MODALITIES:
        mrun = Path(f'{run}-{m}')
        mrun.mkdir(parents=True, exist_ok=True)
        (mrun / 'train.yaml').write_text(yaml.safe_dump(cfg))
        vq = mrun / f'vqvae_{m}'
        if not vq.exists():          # the VQ-VAE asked for (--vqvae-from), else the default run's
            if vqvae_from is not None:
                vqvae_from_models(vqvae_from, m, vq, cfg['vqvae_optim']['epochs'])
            else:
                shutil.copytree(Path(f'{runs}-{m}') / f'vqvae_{m}', vq)
        if all((mrun / 'models' / f'{NETWORKS[n][1]}{m}.pt').is_file() for n in networks):
            continue
        cmd = [sys.executable, '-m', 'audio_vision', 'train', '--data', str(data), '--run-dir', str(mrun),
               '--config', str(mrun / 'train.yaml'), '--modalities', m, '--stages', *networks, '--threads', '1',
               '--no-progress']
        if train_limit is not None:
            cmd += ['--train-limit', str(train_limit)]
        with open(mrun / 'train.log', 'w') as log:     # the child keeps its own descriptor
            procs.append((subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT), mrun))
    for proc, mrun in procs:
        if proc.wait() != 0:
            raise SystemExit(f'training failed, see {mrun / "train.log"}')
    models = run / 'models'
    models.mkdir(parents=True, exist_ok=True)
    for m in MODALITIES:
        for n in networks:
            link = models / f'{NETWORKS[n][1]}{m}.pt'
            if not link.exists():
                os.symlink(Path(f'{run}-{m}').resolve() / 'models' / link.name, link)


def evaluate(models: Path, data: Path, split: str, limit: int, out: Path) -> None:
    subprocess.run([sys.executable, '-m', 'audio_vision', 'evaluate', '--data', str(data), '--split', split,
                    '--models', str(models), '--json', str(out), '--limit', str(limit), '--no-progress'],
                   check=True, cwd=ROOT, stdout=subprocess.DEVNULL)


def result_row(result: dict, key: str) -> dict:
    """One row of an `evaluate` JSON (its metrics per modality) with that row's person IoU (speaking / silent)."""
    return {**result['rows'][key], 'person_iou': result.get('person_iou', {}).get(key)}


def dataset_arg(text: str) -> tuple[str, tuple[Path, str, int | None]]:
    """NAME=PATH[:SPLIT[:LIMIT]] (split: test by default; limit: --eval-limit by default)."""
    name, sep, where = text.partition('=')
    if not sep or not name or not where:
        raise argparse.ArgumentTypeError(f'expected NAME=PATH[:SPLIT[:LIMIT]], got {text!r}')
    path, _, rest = where.partition(':')
    split, _, limit = rest.partition(':')
    if limit and not limit.isdigit():
        raise argparse.ArgumentTypeError(f'the limit of {text!r} must be a number of windows, got {limit!r}')
    return name, (Path(path), split or 'test', int(limit) if limit else None)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('study', choices=sorted(STUDIES))
    ap.add_argument('--data', type=Path, default=ROOT / 'data' / 'default')
    ap.add_argument('--runs', type=Path, default=ROOT / 'runs' / 'default', help='prefix of the default runs')
    ap.add_argument('--config', type=Path, default=ROOT / 'config' / 'train.yaml')
    ap.add_argument('--limit', type=int,
                    help='training windows per variant (default: all; the data study takes its shares of this)')
    ap.add_argument('--epochs', type=int, default=6, help='epochs per network and variant (steps per epoch as config)')
    ap.add_argument('--networks', nargs='+', choices=sorted(NETWORKS), default=['atnet'],
                    help='the networks each variant trains (end_to_end: the baseline, with the same input)')
    ap.add_argument('--variants', nargs='+', type=int,
                    help="the study's variants to run, by position (default: all); the file records which")
    ap.add_argument('--vqvae-from', type=Path,
                    help="a directory of the training runs' own depth.pt and segmentation.pt (runs/<run>-<modality>/"
                         "models: with the VQ-VAE encoders) whose VQ-VAEs stand in for the default runs' (when those "
                         "are absent)")
    ap.add_argument('--eval-limit', type=int, default=800)
    ap.add_argument('--also', nargs='+', type=dataset_arg, default=[], metavar='NAME=PATH[:SPLIT[:LIMIT]]',
                    help='also score every variant on these datasets (e.g. a fresh seed, the shifted rooms)')
    ap.add_argument('--out', type=Path, help='default: docs/ablation_<study>.json')
    ap.add_argument('--merge-into', type=Path, metavar='JSON',
                    help="add this run's rows to an earlier result of the same study (its other rows kept, the rows "
                         "in the study's order; the added rows' command and commit recorded beside the original's) "
                         "and write the merged result to --out (default: the same file)")
    args = ap.parse_args()
    variable, variants = STUDIES[args.study]
    base = yaml.safe_load(args.config.read_text())
    # Every variant's AT-nets get the study's epochs, also where the config gives a modality more.
    networks = tuple(n for n in NETWORKS if n in args.networks)       # the trainer's order
    optims = [f'{n}_optim' for n in networks]
    for stages in (base.get('optim_overrides') or {}).values():
        for optim in optims:
            stages.get(optim, {}).pop('epochs', None)
    total = args.limit or train_windows(args.data)
    rows, seconds, windows, objectives, train_seconds = {}, {}, {}, {}, {}
    also, elsewhere = dict(args.also), {}
    for i, (name, (patch, share)) in enumerate(variants.items()):
        if args.variants is not None and i not in args.variants:
            continue
        run = Path(f'{args.runs}-{args.study}{i}')
        cfg = merged(base, {**patch, **{optim: {'epochs': args.epochs} for optim in optims}})
        limit = round(total * share)
        t0 = time.time()
        train_variant(run, cfg, args.data, args.runs, None if limit >= train_windows(args.data) else limit,
                      networks, args.vqvae_from)
        out = run / 'eval.json'
        evaluate(run / 'models', args.data, 'test', args.eval_limit, out)
        result = json.loads(out.read_text())
        variant_seconds = round(time.time() - t0, 1)           # training + the test split's evaluation
        others = {}                                            # the same models on other datasets
        for label, (path, split, also_limit) in also.items():
            scored = run / f'eval_{label}.json'
            if not scored.is_file():
                evaluate(run / 'models', path, split, also_limit or args.eval_limit, scored)
            others[label] = json.loads(scored.read_text())
        for network in networks:        # one row per network and variant ("network: variant" with several)
            row_name = name if len(networks) == 1 else f'{NETWORKS[network][0]}: {name}'
            key = 'method' if network == 'atnet' else network
            for label, other in others.items():
                elsewhere.setdefault(label, {})[row_name] = result_row(other, key)
            seconds[row_name], windows[row_name] = variant_seconds, limit
            objectives[row_name] = cfg.get('atnet_objective')
            # What training each modality's network took, from its run (right also for a run only re-scored).
            train_seconds[row_name] = {
                m: round(json.loads((Path(f'{run}-{m}') / 'timings.json').read_text())[f'{network}_{m}'], 1)
                for m in MODALITIES if (Path(f'{run}-{m}') / 'timings.json').is_file()}
            rows[row_name] = result_row(result, key)
            print(f'[ablation {args.study}] {row_name}: depth AbsRel {rows[row_name]["depth"]["abs_rel"]:.3f}, '
                  f'mIoU {rows[row_name]["segmentation"]["miou"]:.3f} ({seconds[row_name]} s)', flush=True)
    default_config = (ROOT / 'config' / 'train.yaml').resolve()
    command = (f'python scripts/ablation.py {args.study} --epochs {args.epochs} --eval-limit {args.eval_limit}'
               + (f' --config {args.config}' if args.config.resolve() != default_config else '')
               + (f' --limit {args.limit}' if args.limit else '')
               + (f" --networks {' '.join(networks)}" if networks != ('atnet',) else '')
               + (f" --variants {' '.join(map(str, args.variants))}" if args.variants is not None else '')
               + (f' --vqvae-from {args.vqvae_from}' if args.vqvae_from else '')
               + (' --also ' + ' '.join(f'{k}={p}:{sp}' + (f':{n}' if n else '') for k, (p, sp, n) in also.items())
                  if also else ''))
    out = args.out or args.merge_into or ROOT / 'docs' / f'ablation_{args.study}.json'
    result = {
        'study': args.study, 'variable': variable, 'command': command,
        'description': (('AT-net only' if networks == ('atnet',) else 'AT-net and end-to-end baseline')
                        + (f", the VQ-VAEs of `{args.vqvae_from}` at commit {source_commit()}" if args.vqvae_from
                           else ", the default run's VQ-VAEs")
                        + f', {total} training windows'
                        + (' (the shares below)' if args.study == 'data' else '')
                        + f', {args.epochs} epochs of at most {base["atnet_optim"].get("max_steps_per_epoch")} '
                        f'steps with early stopping as configured, scored on {args.eval_limit} test windows '
                        f'(`{command}`).'),
        'rows': rows, 'training_windows': windows, 'atnet_objective': objectives, 'seconds': seconds,
        'train_seconds': train_seconds,
        'elsewhere': {label: {'path': str(also[label][0]), 'split': also[label][1], 'limit': also[label][2], 'rows': r}
                      for label, r in elsewhere.items()}}
    if args.merge_into:
        result = merge_results(json.loads(args.merge_into.read_text()), result,
                               row_order(variants, networks if len(networks) > 1 else None))
    out.write_text(json.dumps(result, indent=1))
    return 0


def row_order(variants: dict, networks: tuple[str, ...] | None) -> list[str]:
    """The study's row names in its order: variant by variant, each network's row in turn."""
    if networks is None:
        return list(variants)
    return [f'{NETWORKS[n][0]}: {name}' for name in variants for n in networks]


def merge_results(earlier: dict, added: dict, order: list[str]) -> dict:
    """``earlier`` (a result of the same study) with ``added``'s rows put in (replacing rows of the same name), every
    per-row table in the study's ``order``; the earlier command stays the result's, the added run's command, commit
    and date are listed under ``added_runs`` and named in the description."""
    if earlier.get('study') != added['study']:
        raise SystemExit(f"--merge-into holds study {earlier.get('study')!r}, not {added['study']!r}")

    def ordered(a: dict, b: dict) -> dict:
        both = {**a, **b}
        return {k: both[k] for k in sorted(both, key=lambda k: order.index(k) if k in order else len(order))}
    merged = dict(earlier)
    for key in ('rows', 'training_windows', 'atnet_objective', 'seconds', 'train_seconds'):
        merged[key] = ordered(earlier.get(key, {}), added.get(key, {}))
    merged['elsewhere'] = {}
    for label, entry in added.get('elsewhere', {}).items():
        before = earlier.get('elsewhere', {}).get(label, {}).get('rows', {})
        merged['elsewhere'][label] = {**entry, 'rows': ordered(before, entry['rows'])}
    for label, entry in earlier.get('elsewhere', {}).items():
        merged['elsewhere'].setdefault(label, entry)
    run = {'rows': list(added['rows']), 'command': added['command'], 'commit': source_commit(),
           'date': time.strftime('%Y-%m-%d')}
    merged['added_runs'] = earlier.get('added_runs', []) + [run]
    merged['description'] = (earlier['description'] + f" Added later by `{run['command']}` at commit {run['commit']} "
                             f"({run['date']}): {', '.join(run['rows'])}.")
    return merged


if __name__ == '__main__':
    sys.exit(main())
