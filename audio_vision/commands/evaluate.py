# SPDX-License-Identifier: Apache-2.0
"""Score models on a dataset split against the baselines: JSON, Markdown and a PNG mosaic.

Defaults to the shipped models, so any freshly generated dataset can be scored:
    python -m audio_vision dataset --out /tmp/test --n 200 --seed 7
    python -m audio_vision evaluate --data /tmp/test --json /tmp/test/results.json

Rows: vqvae_upper_bound, method, method_no_quant, end_to_end, mean (when their files are in
--models), plus method_latent<N> for each --ablation model directory.
"""
from __future__ import annotations

import json
from pathlib import Path

HELP = 'evaluate models vs baselines on a dataset split (JSON + Markdown + mosaic PNG)'


def add_arguments(parser):
    from audio_vision.paths import default_model_dir
    parser.add_argument('--data', required=True, type=Path, help='dataset directory')
    parser.add_argument('--json', required=True, type=Path, help='write the results JSON here')
    parser.add_argument('--models', type=Path, default=default_model_dir(),
                        help='model directory (default: the shipped models)')
    parser.add_argument('--split', default='test', help='dataset split (default: test)')
    parser.add_argument('--ablation', nargs='*', default=[], type=Path,
                        help='extra model directories scored as method_latent<N> rows')
    parser.add_argument('--markdown', type=Path, help='also write the Markdown table here')
    parser.add_argument('--mosaic', type=Path, help='also write a GT-vs-rows PNG mosaic here')
    parser.add_argument('--limit', type=int, help='score at most this many samples')
    parser.add_argument('--no-layout', action='store_true',
                        help='skip the sonar front-end\'s layout row and layout errors (simulated datasets only)')
    parser.add_argument('--no-progress', action='store_true')


def run(args):
    from audio_vision.cli import UserError
    from audio_vision.core.model.checkpoint import CheckpointError
    if not (args.data / 'card.json').is_file():
        raise UserError(f'{args.data} is not a dataset directory (no card.json)')
    from audio_vision.training.evaluate import evaluate, markdown_table
    try:
        result = evaluate(args.data, args.models, args.split, tuple(args.ablation), args.limit,
                          args.mosaic, progress=not args.no_progress, layout=not args.no_layout)
    except (CheckpointError, ValueError, KeyError, FileNotFoundError) as exc:
        raise UserError(str(exc)) from None
    from audio_vision.paths import measured_here
    result['measured'] = measured_here()
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2))
    table = markdown_table(result)
    if args.markdown:
        args.markdown.write_text(table)
    print(table)
    return 0
