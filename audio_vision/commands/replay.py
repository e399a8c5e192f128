# SPDX-License-Identifier: Apache-2.0
"""Replay a rosbag2 bag into the live ROS 2 graph with its recorded timing and QoS (like `ros2 bag play`).

Works without rosbag2 (reads with `rosbags`, publishes real rclpy messages). Headers keep their
recorded stamps. Topics whose message package is not installed here (e.g. tf2_msgs/TFMessage on a
pip install) are skipped with a warning. Details: docs/RECORDING.md.

examples:
  python -m audio_vision replay bags/sim                       # everything, real time
  python -m audio_vision replay bags/sim --rate 2 --loop --topics /audio/frames
  python -m audio_vision replay robot.mcap --remap /mic_array/frames:=/audio/frames
  python -m audio_vision replay bags/sim --wait-for /audio/frames    # start once the node listens
  python -m audio_vision replay bags/sim --clock      # + /clock, for nodes with use_sim_time:=true
(run the perception node next to it: `python -m audio_vision node perception`)
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

HELP = 'replay a rosbag2 bag into the live graph (original timing and QoS, like ros2 bag play)'


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('bag', type=Path, help='bag directory or .mcap / .db3 file')
    parser.add_argument('--rate', type=float, default=1.0, help='playback speed (default 1.0)')
    parser.add_argument('--loop', action='store_true', help='play again and again until Ctrl-C')
    parser.add_argument('--topics', nargs='+', metavar='TOPIC', help='play only these topics')
    parser.add_argument('--remap', nargs='+', default=[], metavar='FROM:=TO', help='rename topics')
    parser.add_argument('--delay', type=float, default=0.5,
                        help='seconds to wait before the first message, for discovery (default 0.5)')
    parser.add_argument('--wait-for', metavar='TOPIC',
                        help='start only once TOPIC has a subscriber (e.g. /audio/frames), at most 30 s')
    parser.add_argument('--clock', action='store_true',
                        help='publish /clock with the bag time (like ros2 bag play --clock), for use_sim_time')
    parser.add_argument('--domain-id', type=int, help='ROS domain id (default: ROS_DOMAIN_ID)')
    parser.add_argument('--info', action='store_true', help='print what the bag holds and exit')


def run(args) -> int:
    from audio_vision.cli import UserError
    if not 0.01 <= args.rate <= 100.0:
        raise UserError(f'--rate must be in [0.01, 100], got {args.rate}')
    if not 0.0 <= args.delay <= 60.0:
        raise UserError(f'--delay must be in [0, 60], got {args.delay}')
    for item in args.remap:
        if ':=' not in item:
            raise UserError(f"--remap {item!r}: expected FROM:=TO")

    from audio_vision.bag import BagError
    from audio_vision.bag.reader import BagReader
    try:
        with BagReader(args.bag) as reader:   # validate before starting ROS: clear one-line errors
            if args.info:
                print(reader.summary())
                return 0
    except BagError as exc:
        raise UserError(str(exc)) from None

    import rclpy
    from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
    from rclpy.parameter import Parameter

    from audio_vision.ros.bag_player import BagPlayer
    from audio_vision.ros.lifecycle import StartupError

    context = rclpy.Context()
    rclpy.init(context=context, **({} if args.domain_id is None else {'domain_id': args.domain_id}))
    params = {'bag': str(args.bag), 'rate': float(args.rate), 'loop': bool(args.loop),
              'topics': ','.join(args.topics or []), 'remap': ','.join(args.remap),
              'delay_s': float(args.delay), 'wait_for_topic': args.wait_for or '', 'clock': bool(args.clock)}
    player = None
    try:
        try:
            player = BagPlayer(context=context,
                               parameter_overrides=[Parameter(k, value=v) for k, v in params.items()])
        except StartupError as exc:
            raise UserError(str(exc)) from None
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(player)
        while context.ok() and not player.finished.is_set():
            executor.spin_once(timeout_sec=0.1)
        if player.error:
            raise UserError(player.error)
        # let reliable subscribers take the last messages before the publishers go away
        end = time.monotonic() + 0.5
        while context.ok() and time.monotonic() < end:
            executor.spin_once(timeout_sec=0.05)
        counts = ', '.join(f'{t} {n}' for t, n in player.published.items())
        print(f'replayed {args.bag}: {counts}' + (f'; skipped {", ".join(player.skipped)} (unknown types)'
                                                  if player.skipped else ''))
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if player is not None:
            player.destroy_node()
        rclpy.try_shutdown(context=context)
    return 0
