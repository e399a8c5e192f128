# SPDX-License-Identifier: Apache-2.0
"""Generate a simulated dataset (deterministic per seed and index, sharded, parallel).

examples:
  python -m audio_vision dataset --out data/sim --n 2000 --seed 0 --workers 2
  python -m audio_vision dataset --out data/sim --n 2000 --seed 0 --shard 1/4   # one machine of four
  python -m audio_vision dataset card data/sim        # re-list shards copied together, rewrite card.json
  python -m audio_vision dataset from-bag BAG ...     # dataset from a recorded rosbag

Shard i/n holds the sample indices congruent to i mod n; every sample is a pure function of
(seed, index), so the union of all shards equals a single-machine run, byte for byte.
Layout and schema: docs/SIMULATOR.md.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

from audio_vision.commands import dataset_from_bag

HELP = 'generate a simulated dataset (sharded, parallel), or build one from a bag'


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--out', type=Path, help='output directory')
    parser.add_argument('--n', type=int, help='total number of samples (over all shards)')
    parser.add_argument('--seed', type=int, default=0, help='dataset seed (default 0)')
    parser.add_argument('--shard', default='0/1', metavar='I/N',
                        help='generate only indices i mod n == I (default 0/1: everything)')
    parser.add_argument('--workers', type=int, default=max(1, min(os.cpu_count() or 1, 8)),
                        help='parallel worker processes (default: CPU count, at most 8)')
    parser.add_argument('--config', type=Path, help='simulation YAML (default: config/simulation.yaml)')
    parser.add_argument('--no-progress', action='store_true', help='no progress bar')
    actions = parser.add_subparsers(dest='dataset_action', metavar='[action]')
    card = actions.add_parser('card', help='re-list the shards in DIR and rewrite its card.json')
    card.add_argument('dir', type=Path)
    from_bag = actions.add_parser('from-bag', help='build a dataset from a recorded bag')
    dataset_from_bag.add_arguments(from_bag)


def parse_shard(text: str) -> tuple[int, int]:
    from audio_vision.cli import UserError
    try:
        i, n = (int(v) for v in text.split('/'))
    except ValueError:
        raise UserError(f'--shard must look like I/N (e.g. 0/4), got {text!r}') from None
    if n < 1 or not 0 <= i < n:
        raise UserError(f'--shard {text}: need 0 <= I < N')
    return i, n


def run(args) -> int:
    from audio_vision.cli import UserError
    action = getattr(args, 'dataset_action', None)
    if action == 'from-bag':
        return dataset_from_bag.run(args)
    if action == 'card':
        from audio_vision.dataset import rebuild_card
        try:
            card = rebuild_card(args.dir)
        except (ValueError, FileNotFoundError) as exc:
            raise UserError(str(exc)) from None
        _print_summary(args.dir, card)
        return 0

    if args.out is None or args.n is None:
        raise UserError('--out and --n are required')
    if args.n < 1:
        raise UserError(f'--n must be >= 1, got {args.n}')
    if args.workers < 1:
        raise UserError(f'--workers must be >= 1, got {args.workers}')
    shard, num_shards = parse_shard(args.shard)
    from audio_vision.simulation.config import SimConfig
    config_path = args.config
    if config_path is None:
        from audio_vision.paths import config_dir
        default = config_dir() / 'simulation.yaml'
        config_path = default if default.exists() else None
    try:
        cfg = SimConfig.from_yaml(config_path) if config_path is not None else SimConfig()
    except FileNotFoundError:
        raise UserError(f'config file not found: {config_path}') from None
    except ValueError as exc:
        raise UserError(f'{config_path}: {exc}') from None

    from audio_vision.simulation.dataset import generate_dataset
    try:
        card = generate_dataset(args.out, args.n, args.seed, cfg, shard=shard, num_shards=num_shards,
                                workers=args.workers, progress=not args.no_progress)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    _print_summary(args.out, card)
    return 0


def _print_summary(out, card: dict) -> None:
    counts = ', '.join(f"{k} {v['count']} ({v['rooms']} rooms)" for k, v in card['splits'].items())
    state = 'complete' if card['complete'] else 'partial (more shards to come)'
    print(f'{out}: {card["count"]} samples, {counts}; {state}; content hash {card["content_hash"][:16]}')
