# SPDX-License-Identifier: Apache-2.0
"""Executor probe: how much of a fast audio stream one in-process graph delivers, per rclpy executor.

    .venv/bin/python benchmarks/executor_probe.py            # JSON on stdout, ~25 s

simulator_node streams 8 x 4096-sample frames at 15x real time (~59 frames/s) to a counting
subscriber in the same executor, for 10 s wall time each. Reported per executor: chunks the simulator
published, chunks it skipped because its timer ran late, frames received, and the process CPU time.
This is why :class:`audio_vision.ros.graph.Graph` and ``run_node`` spin single-threaded.
"""
from __future__ import annotations

import json
import os
import platform
import sys
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')

from rclpy.executors import MultiThreadedExecutor, SingleThreadedExecutor  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402

from audio_vision.ros.graph import Graph, TopicRecorder  # noqa: E402
from audio_vision.ros.simulator_node import SimulatorNode  # noqa: E402

EXECUTORS = {'SingleThreadedExecutor': SingleThreadedExecutor, 'MultiThreadedExecutor': MultiThreadedExecutor}


def probe(executor_cls, seconds: float = 10.0, domain_id: int = 91) -> dict:
    with Graph(domain_id=domain_id, executor_cls=executor_cls) as graph:
        sim = graph.add(SimulatorNode, {'rate': 15.0, 'scene_period_s': 0.0, 'segment_s': 5.0, 'seed': 11,
                                        'chunk_samples': 4096})
        rec = graph.add(TopicRecorder, topics={'audio/frames': Image}, keep=lambda topic: False)
        assert graph.wait_for_discovery(15.0), 'no discovery'
        graph.start()
        cpu0 = time.process_time()
        time.sleep(seconds)
        cpu = time.process_time() - cpu0
        published = sim.pacer.done - sim.pacer.skipped
        return {'published': published, 'skipped_late': sim.pacer.skipped,
                'received': rec.count('audio/frames'), 'cpu_s': round(cpu, 2), 'wall_s': seconds}


def main() -> None:
    results = {name: probe(cls) for name, cls in EXECUTORS.items()}
    print(json.dumps({'date': date.today().isoformat(), 'machine': f'{platform.machine()}, {os.cpu_count()} cores',
                      'results': results}, indent=2))


if __name__ == '__main__':
    main()
