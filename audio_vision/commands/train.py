# SPDX-License-Identifier: Apache-2.0
"""Train the two-stage method (VQ-VAE, then AT-net) and its baselines on a dataset directory.

Stages: vqvae (per modality, on the train split's images), atnet (L2 to the frozen VQ-VAE
encoder's continuous latent of the paired image), end_to_end (same audio encoder, direct
image decoder, pixel loss), mean (training-set mean image). Re-running the same command
resumes from the last finished epoch of each stage. Data-parallel on several processes:

    torchrun --standalone --nproc_per_node 2 -m audio_vision train --data DIR --run-dir DIR

Example:
    python -m audio_vision train --data data/default --run-dir runs/default --export models
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

HELP = 'train the VQ-VAEs, AT-nets and baselines (resumable; torchrun for data-parallel)'


def add_arguments(parser):
    parser.add_argument('--data', required=True, type=Path, help='dataset directory (from `dataset`)')
    parser.add_argument('--run-dir', required=True, type=Path, help='where state, logs, curves and models go')
    parser.add_argument('--config', type=Path, help='training YAML (default: config/train.yaml if present)')
    parser.add_argument('--modalities', nargs='+', choices=['depth', 'segmentation'])
    parser.add_argument('--stages', nargs='+', choices=['vqvae', 'atnet', 'end_to_end', 'mean'])
    parser.add_argument('--latent-size', type=int, choices=[8, 16, 32], help='manifold size h = w')
    parser.add_argument('--seed', type=int)
    parser.add_argument('--depth-target', choices=['absolute', 'layout_ratio'],
                        help='the depth networks\' images: absolute log-depth, or the departure from the layout '
                             'prior\'s depth (needs features.layout_prior; default: the config\'s)')
    parser.add_argument('--epochs-scale', type=float, default=1.0,
                        help='multiply every stage\'s epochs (e.g. 0.1 for a quick try)')
    parser.add_argument('--max-steps', type=int, help='cap optimizer steps per epoch (smoke tests)')
    parser.add_argument('--limit', type=int, help='use at most this many samples per split')
    parser.add_argument('--train-limit', type=int,
                        help='use at most this many training samples (learning curves; validation stays whole)')
    parser.add_argument('--export', type=Path, help='also write fp16 copies of the trained models here')
    parser.add_argument('--threads', type=int, help='torch threads (e.g. 1 per process when training the '
                        'modalities as parallel processes)')
    parser.add_argument('--cache-features', action='store_true',
                        help='only compute the feature caches of the train, val and test splits, then exit '
                             '(before starting several training processes on the same dataset)')
    parser.add_argument('--no-progress', action='store_true')


def load_config(args):
    from audio_vision.paths import config_dir
    from audio_vision.training.config import OPTIM_NAMES, TrainConfig
    path = args.config or (config_dir() / 'train.yaml')
    if args.config and not path.is_file():
        from audio_vision.cli import UserError
        raise UserError(f'config file {path} not found')
    cfg = TrainConfig.from_yaml(path) if path.is_file() else TrainConfig()
    changes = {k: v for k, v in (('modalities', tuple(args.modalities) if args.modalities else None),
                                 ('stages', tuple(args.stages) if args.stages else None),
                                 ('latent_size', args.latent_size), ('seed', args.seed),
                                 ('depth_target', args.depth_target), ('threads', args.threads)) if v is not None}
    cfg = dataclasses.replace(cfg, **changes)

    def scaled(epochs: int) -> int:
        return max(1, round(epochs * args.epochs_scale))

    for name in OPTIM_NAMES:
        optim = getattr(cfg, name)
        optim = dataclasses.replace(optim, epochs=scaled(optim.epochs),
                                    max_steps_per_epoch=args.max_steps or optim.max_steps_per_epoch)
        cfg = dataclasses.replace(cfg, **{name: optim})
    overrides = {m: {name: {**patch, **({'epochs': scaled(patch['epochs'])} if 'epochs' in patch else {}),
                            **({'max_steps_per_epoch': args.max_steps} if args.max_steps else {})}
                     for name, patch in stages.items()} for m, stages in cfg.optim_overrides.items()}
    return dataclasses.replace(cfg, optim_overrides=overrides)


def export_models(src: Path, dst: Path) -> list[Path]:
    """fp16 copies of a run's models (method checkpoints and baselines) for shipping; the method's files without the
    VQ-VAE's encoder, which inference does not run (the run's own files keep it)."""
    from audio_vision.core.model.baselines import load_end_to_end, load_mean, save_end_to_end, save_mean
    from audio_vision.core.model.checkpoint import load_checkpoint, save_checkpoint
    written = []
    for path in sorted(src.glob('*.pt')):
        out = dst / path.name
        if path.name.startswith('end_to_end_'):
            model, spec = load_end_to_end(path)
            save_end_to_end(out, model, spec, half=True)
        elif path.name == 'mean.pt':
            save_mean(out, load_mean(path))
        else:
            save_checkpoint(out, load_checkpoint(path), half=True, vqvae_encoder=False)
        written.append(out)
    return written


def run(args):
    from audio_vision.cli import UserError
    try:                          # the config first: its mistakes are the user's to fix whatever the data
        cfg = load_config(args)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    if not (args.data / 'card.json').is_file():
        raise UserError(f'{args.data} is not a dataset directory (no card.json); make one with '
                        f'`python -m audio_vision dataset --out {args.data} --n N`')
    if args.cache_features:
        from audio_vision.training.data import load_split
        for split in ('train', 'val', 'test'):
            data = load_split(args.data, split, cfg.features, progress=not args.no_progress)
            print(f'{split}: {len(data)} windows, features {tuple(data.features.shape[1:])} float16 '
                  f'({data.features[0].numel() * 2} bytes per window)')
        return 0
    from audio_vision.training.trainer import Trainer
    trainer = Trainer(args.data, args.run_dir, cfg, progress=not args.no_progress, limit=args.limit,
                      train_limit=args.train_limit)
    try:
        result = trainer.run()
    except FileNotFoundError as exc:
        raise UserError(str(exc)) from None
    if trainer.info.is_main:
        print(json.dumps({'timings_s': {k: round(v, 1) for k, v in result['timings'].items()},
                          'models': result['models']}, indent=2))
        if args.export:
            for path in export_models(Path(result['models']), args.export):
                print(f'exported {path} ({path.stat().st_size / 1e6:.1f} MB)')
    return 0
