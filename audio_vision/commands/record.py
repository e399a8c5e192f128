# SPDX-License-Identifier: Apache-2.0
"""Record a simulated session to a rosbag2 bag (MCAP by default), faster than real time, no ROS graph.

The bag holds what a live simulator_node + `ros2 bag record` would, with the QoS the live nodes offer:
/audio/frames (reliable, chunks stamped at their first sample), the ground truth on
/ground_truth/{depth,segmentation}/{image,camera_info} and /ground_truth/segmentation/color and
/tf_static (reliable, transient local: latched). Scene k uses seed SEED + k; scenes are
separated by a short gap in the audio stamps (a teleport: the perception node restarts its stream).
Play it with `python -m audio_vision replay BAG` or `ros2 bag play BAG`. Details: docs/RECORDING.md.

examples:
  python -m audio_vision record --out bags/sim --duration 20 --scene-duration 5 --seed 7
  python -m audio_vision record --out bags/sim.db3 --storage sqlite3 --duration 4
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = 'record a simulated session (audio frames + ground truth + TF) to a rosbag2 bag'


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--out', required=True, type=Path, help='bag directory to create (must not exist)')
    parser.add_argument('--duration', type=float, default=10.0, help='seconds of audio (default 10)')
    parser.add_argument('--seed', type=int, default=0, help='seed of the first scene (default 0)')
    parser.add_argument('--scene-duration', type=float, default=5.0,
                        help='seconds per scene; a new random scene after each (default 5; '
                             '0 = one scene for the whole duration)')
    parser.add_argument('--storage', choices=['mcap', 'sqlite3'], default='mcap', help='bag storage (default mcap)')
    parser.add_argument('--chunk', type=float, default=0.05, help='audio frame length in seconds (default 0.05)')
    parser.add_argument('--gt-period', type=float, default=0.25,
                        help='seconds between ground-truth images (default 0.25)')
    parser.add_argument('--scene-gap', type=float, default=0.1,
                        help='gap in the audio stamps between scenes, seconds (default 0.1)')
    parser.add_argument('--start-time', type=float,
                        help='stamp of the first sample, seconds since the epoch (default: now)')
    parser.add_argument('--config', type=Path, help='simulation YAML (default: config/simulation.yaml)')
    parser.add_argument('--quiet', action='store_true', help='no progress output')


def load_sim_config(path: Path | None):
    """The SimConfig from ``path`` or the package's config/simulation.yaml; UserError when unusable."""
    from audio_vision.cli import UserError
    from audio_vision.simulation.config import SimConfig
    if path is None:
        from audio_vision.paths import config_dir
        default = config_dir() / 'simulation.yaml'
        path = default if default.exists() else None
    if path is None:
        return SimConfig()
    try:
        return SimConfig.from_yaml(path)
    except FileNotFoundError:
        raise UserError(f'config file not found: {path}') from None
    except (ValueError, TypeError) as exc:
        raise UserError(f'{path}: {exc}') from None


def run(args) -> int:
    from audio_vision.cli import UserError
    for name in ('duration', 'chunk', 'gt_period'):
        if not getattr(args, name) > 0:
            raise UserError(f'--{name.replace("_", "-")} must be > 0, got {getattr(args, name)}')
    if args.scene_duration < 0 or args.scene_gap < 0:
        raise UserError('--scene-duration and --scene-gap must be >= 0')
    if args.out.exists():
        raise UserError(f'{args.out} exists already; choose a new output path')
    cfg = load_sim_config(args.config)

    from audio_vision.bag import BagError
    from audio_vision.bag.record import record_simulation
    from audio_vision.simulation.simulator import Simulator
    sim = Simulator(cfg)

    def progress(done, total):
        if not args.quiet:
            print(f'\rrecording: scene {done}/{total}', end='' if done < total else '\n', file=sys.stderr,
                  flush=True)
    start_ns = None if args.start_time is None else int(round(args.start_time * 1e9))
    try:
        summary = record_simulation(sim, args.out, args.duration, args.seed, args.scene_duration or None,
                                    start_ns=start_ns, chunk_s=args.chunk, gt_period_s=args.gt_period,
                                    gap_s=args.scene_gap, storage=args.storage, progress=progress)
    except (BagError, ValueError) as exc:
        raise UserError(str(exc)) from None
    print(summary.describe())
    return 0
