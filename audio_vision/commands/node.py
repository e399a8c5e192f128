# SPDX-License-Identifier: Apache-2.0
"""Run one ROS 2 node of the package: `audio_vision node perception [--ros-args ...]`.

Equivalent to `ros2 run audio_vision <name>_node` on a ROS 2 install; arguments after
the node name are passed to rclpy unchanged (e.g. `--ros-args --params-file config/x.yaml`).
"""
import argparse
import importlib

HELP = 'run one ROS 2 node (perception, simulator, audio_capture, occupancy)'
NODES = {
    'perception': 'audio_vision.ros.perception_node',
    'simulator': 'audio_vision.ros.simulator_node',
    'audio_capture': 'audio_vision.ros.audio_capture_node',
    'occupancy': 'audio_vision.ros.occupancy_node',
}


def add_arguments(parser):
    parser.add_argument('name', choices=sorted(NODES), help='which node to run')
    parser.add_argument('ros_args', nargs=argparse.REMAINDER,
                        help='arguments passed to rclpy, e.g. --ros-args -p device:=cpu')


def run(args):
    module = importlib.import_module(NODES[args.name])
    return module.main(args=['audio_vision_' + args.name, *args.ros_args])
