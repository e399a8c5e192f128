#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Feature ablation: the AT-net trained on four inputs, everything else equal.

spectrogram only (the patent's input) / + phase differences / + today's echo beams / + direction
maps (the default). Each variant reuses the default run's finished VQ-VAEs (the images, hence the
manifold, do not depend on the audio features), trains the AT-net on a reduced, equal budget and is
scored on the test split; rows go to docs/ablation_features.json for scripts/write_results_docs.py.

    .venv/bin/python scripts/ablation_features.py --data data/default --runs runs/default \
        --limit 4000 --epochs 6 --eval-limit 800
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = {
    'spectrogram only': {'spatial': 'none', 'echo': False, 'direction_maps': False},
    '+ phase differences': {'spatial': 'ipd', 'echo': False, 'direction_maps': False},
    '+ echo beams': {'spatial': 'ipd', 'echo': True, 'direction_maps': False},
    '+ direction maps (default)': {'spatial': 'ipd', 'echo': True, 'direction_maps': True},
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--data', type=Path, default=ROOT / 'data' / 'default')
    ap.add_argument('--runs', type=Path, default=ROOT / 'runs' / 'default', help='prefix of the default runs')
    ap.add_argument('--config', type=Path, default=ROOT / 'config' / 'train.yaml')
    ap.add_argument('--limit', type=int, default=4000, help='training windows per variant')
    ap.add_argument('--epochs', type=int, default=6, help='AT-net epochs per variant (steps per epoch as config)')
    ap.add_argument('--eval-limit', type=int, default=800)
    ap.add_argument('--out', type=Path, default=ROOT / 'docs' / 'ablation_features.json')
    args = ap.parse_args()
    base = yaml.safe_load(args.config.read_text())
    rows, seconds = {}, {}
    for i, (name, change) in enumerate(VARIANTS.items()):
        run = Path(f'{args.runs}-ablation{i}')
        cfg = dict(base, features={**base['features'], **change},
                   atnet_optim={**base['atnet_optim'], 'epochs': args.epochs})
        run.mkdir(parents=True, exist_ok=True)
        (run / 'train.yaml').write_text(yaml.safe_dump(cfg))
        for m in ('depth', 'segmentation'):
            src, dst = Path(f'{args.runs}-{m}') / f'vqvae_{m}', run / f'vqvae_{m}'
            if not dst.exists():
                shutil.copytree(src, dst)
        t0 = time.time()
        subprocess.run([sys.executable, '-m', 'audio_vision', 'train', '--data', str(args.data), '--run-dir', str(run),
                        '--config', str(run / 'train.yaml'), '--stages', 'atnet', '--limit', str(args.limit),
                        '--no-progress'], check=True, cwd=ROOT)
        out = run / 'eval.json'
        subprocess.run([sys.executable, '-m', 'audio_vision', 'evaluate', '--data', str(args.data), '--models',
                        str(run / 'models'), '--json', str(out), '--limit', str(args.eval_limit), '--no-progress'],
                       check=True, cwd=ROOT)
        seconds[name] = round(time.time() - t0, 1)
        rows[name] = json.loads(out.read_text())['rows']['method']
    args.out.write_text(json.dumps({
        'description': (f'AT-net only, the default run\'s VQ-VAEs, {args.limit} training windows, {args.epochs} epochs '
                        f'of at most {base["atnet_optim"].get("max_steps_per_epoch")} steps, scored on '
                        f'{args.eval_limit} test windows (`python scripts/ablation_features.py --limit {args.limit} '
                        f'--epochs {args.epochs} --eval-limit {args.eval_limit}`).'),
        'rows': rows, 'seconds': seconds}, indent=1))
    return 0


if __name__ == '__main__':
    sys.exit(main())
