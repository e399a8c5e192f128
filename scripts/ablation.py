#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Ablation studies of the method's AT-net: one thing changed at a time, everything else equal.

Each variant reuses the default run's finished VQ-VAEs (the images, hence the manifold, do not depend
on the audio features or on how the AT-net is trained), trains the AT-net of both modalities as two
parallel single-threaded processes on an equal budget and is scored on the test split; the rows go to
docs/ablation_<study>.json, which scripts/write_results_docs.py renders into docs/RESULTS.md.

studies
  features   spectrogram only (the patent's input) / + phase differences / + echo beams / + direction maps
  objective  what the AT-net is trained against: the patent's latent MSE / + codeword cross-entropy /
             + image loss through the frozen decoder (audio_vision/training/objectives.py)
  width      ResNet-18 base width 32 vs 64 (the original)
  data       learning curve: 25 / 50 / 100 % of the training windows (validation stays whole)

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

ROOT = Path(__file__).resolve().parents[1]
MODALITIES = ('depth', 'segmentation')


def both(objective: dict) -> dict:
    """A config patch giving both modalities' AT-nets the same objective."""
    return {'atnet_objective': {m: objective for m in MODALITIES}}


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
}


def merged(base: dict, patch: dict) -> dict:
    """``base`` with ``patch`` applied one level deep (a patched section keeps its other keys)."""
    out = dict(base)
    for key, value in patch.items():
        out[key] = {**base.get(key, {}), **value} if isinstance(value, dict) else value
    return out


def train_windows(data: Path) -> int:
    card = json.loads((data / 'card.json').read_text())
    return int(card['splits']['train']['count'])


def train_variant(run: Path, cfg: dict, data: Path, runs: Path, train_limit: int | None) -> None:
    """Both modalities' AT-nets, as two parallel 1-thread processes, unless already trained."""
    procs = []
    for m in MODALITIES:
        mrun = Path(f'{run}-{m}')
        mrun.mkdir(parents=True, exist_ok=True)
        (mrun / 'train.yaml').write_text(yaml.safe_dump(cfg))
        vq = mrun / f'vqvae_{m}'
        if not vq.exists():
            shutil.copytree(Path(f'{runs}-{m}') / f'vqvae_{m}', vq)
        if (mrun / 'models' / f'{m}.pt').is_file():
            continue
        cmd = [sys.executable, '-m', 'audio_vision', 'train', '--data', str(data), '--run-dir', str(mrun),
               '--config', str(mrun / 'train.yaml'), '--modalities', m, '--stages', 'atnet', '--threads', '1',
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
        link = models / f'{m}.pt'
        if not link.exists():
            os.symlink(Path(f'{run}-{m}').resolve() / 'models' / f'{m}.pt', link)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('study', choices=sorted(STUDIES))
    ap.add_argument('--data', type=Path, default=ROOT / 'data' / 'default')
    ap.add_argument('--runs', type=Path, default=ROOT / 'runs' / 'default', help='prefix of the default runs')
    ap.add_argument('--config', type=Path, default=ROOT / 'config' / 'train.yaml')
    ap.add_argument('--limit', type=int,
                    help='training windows per variant (default: all; the data study takes its shares of this)')
    ap.add_argument('--epochs', type=int, default=6, help='AT-net epochs per variant (steps per epoch as config)')
    ap.add_argument('--eval-limit', type=int, default=800)
    ap.add_argument('--out', type=Path, help='default: docs/ablation_<study>.json')
    args = ap.parse_args()
    variable, variants = STUDIES[args.study]
    base = yaml.safe_load(args.config.read_text())
    # Every variant's AT-nets get the study's epochs, also where the config gives a modality more.
    for stages in (base.get('optim_overrides') or {}).values():
        stages.get('atnet_optim', {}).pop('epochs', None)
    total = args.limit or train_windows(args.data)
    rows, seconds, windows, objectives, train_seconds = {}, {}, {}, {}, {}
    for i, (name, (patch, share)) in enumerate(variants.items()):
        run = Path(f'{args.runs}-{args.study}{i}')
        cfg = merged(base, {**patch, 'atnet_optim': {'epochs': args.epochs}})
        limit = round(total * share)
        t0 = time.time()
        train_variant(run, cfg, args.data, args.runs, None if limit >= train_windows(args.data) else limit)
        out = run / 'eval.json'
        subprocess.run([sys.executable, '-m', 'audio_vision', 'evaluate', '--data', str(args.data), '--models',
                        str(run / 'models'), '--json', str(out), '--limit', str(args.eval_limit), '--no-progress'],
                       check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
        seconds[name], windows[name] = round(time.time() - t0, 1), limit
        objectives[name] = cfg.get('atnet_objective')
        # What training each modality's AT-net took, from its run (right also for a run only re-scored).
        train_seconds[name] = {m: round(json.loads((Path(f'{run}-{m}') / 'timings.json').read_text())[f'atnet_{m}'], 1)
                               for m in MODALITIES if (Path(f'{run}-{m}') / 'timings.json').is_file()}
        result = json.loads(out.read_text())
        rows[name] = {**result['rows']['method'], 'person_iou': result.get('person_iou', {}).get('method')}
        print(f'[ablation {args.study}] {name}: depth AbsRel {rows[name]["depth"]["abs_rel"]:.3f}, '
              f'mIoU {rows[name]["segmentation"]["miou"]:.3f} ({seconds[name]} s)', flush=True)
    command = (f'python scripts/ablation.py {args.study} --epochs {args.epochs} --eval-limit {args.eval_limit}'
               + (f' --limit {args.limit}' if args.limit else ''))
    out = args.out or ROOT / 'docs' / f'ablation_{args.study}.json'
    out.write_text(json.dumps({
        'study': args.study, 'variable': variable, 'command': command,
        'description': (f'AT-net only, the default run\'s VQ-VAEs, {total} training windows'
                        + (' (the shares below)' if args.study == 'data' else '')
                        + f', {args.epochs} epochs of at most {base["atnet_optim"].get("max_steps_per_epoch")} '
                        f'steps with early stopping as configured, scored on {args.eval_limit} test windows '
                        f'(`{command}`).'),
        'rows': rows, 'training_windows': windows, 'atnet_objective': objectives, 'seconds': seconds,
        'train_seconds': train_seconds}, indent=1))
    return 0


if __name__ == '__main__':
    sys.exit(main())
