# SPDX-License-Identifier: Apache-2.0
"""The nodes composed in one process: one context, one executor thread, real DDS topics.

This is how the package runs without ``launch`` (a Python-package-index install): the demo, the graph
tests and notebooks build the same nodes with the same ``config/*.yaml`` parameter files a launch file
would pass, and talk to them over real topics. Node-name keys in those files are ``/**/<node_name>``
so they match in any namespace.
"""
from __future__ import annotations

import collections
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

import rclpy
from rclpy.executors import Executor, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy

from audio_vision.paths import config_dir

#: parameter file of each node, relative to config/
PARAMS_FILES = {
    'perception_node': 'perception.yaml',
    'simulator_node': 'simulator.yaml',
    'audio_capture_node': 'audio_capture.yaml',
}


def params_file_for(node_name: str) -> Path | None:
    path = config_dir() / PARAMS_FILES.get(node_name, f'{node_name}.yaml')
    return path if path.is_file() else None


class Graph:
    """Nodes sharing one executor spun on a background thread. Use as a context manager.

    ``domain_id`` isolates the graph (tests use one per module); None = ROS_DOMAIN_ID / 0.
    ``executor_cls`` is for comparing executors (benchmarks/executor_probe.py); keep the default.

    One executor thread: the nodes' callbacks are short (inference runs on the perception node's worker
    thread). rclpy's MultiThreadedExecutor burns CPU while idle and starves its own timers (chunks
    skipped, frames lost); the single-threaded one delivers everything: benchmarks/executor_probe.py
    measures both, docs/BENCHMARKS.md quotes its output.
    """

    def __init__(self, domain_id: int | None = None, executor_cls: type[Executor] = SingleThreadedExecutor):
        self.context = rclpy.Context()
        kwargs = {} if domain_id is None else {'domain_id': int(domain_id)}
        rclpy.init(context=self.context, **kwargs)
        self.executor = executor_cls(context=self.context)
        self.nodes: list[Node] = []
        self._thread: threading.Thread | None = None

    def add(self, node_cls: Callable[..., Node], params: dict[str, Any] | None = None,
            params_file: str | Path | None | bool = True, namespace: str = '', **kwargs) -> Node:
        """Build a node in this graph. ``params_file=True`` loads the node's config/*.yaml (when the class
        has ``NODE_NAME``), a path loads that file, None/False none; ``params`` override the file."""
        if params_file is True:
            name = getattr(sys.modules.get(node_cls.__module__), 'NODE_NAME', None)
            params_file = params_file_for(name) if name else None
        cli_args = ['--ros-args', '--params-file', str(params_file)] if params_file else None
        node = node_cls(context=self.context, cli_args=cli_args, namespace=namespace,
                        parameter_overrides=[Parameter(k, value=v) for k, v in (params or {}).items()],
                        **kwargs)
        self.nodes.append(node)
        self.executor.add_node(node)
        return node

    def start(self, discovery_timeout: float = 10.0) -> 'Graph':
        """Wait for discovery (see :meth:`wait_for_discovery`), then spin on a background thread."""
        if self._thread is None:
            self.wait_for_discovery(discovery_timeout)
            self._thread = threading.Thread(target=self._spin, name='graph_executor', daemon=True)
            self._thread.start()
        return self

    def wait_for_discovery(self, timeout: float) -> bool:
        """Wait until every publisher of the graph has matched every subscription of the graph on its
        topic. Sources publish from their first timer tick and volatile topics are not replayed to late
        subscribers, so starting before DDS discovery completes would lose the first frames. False when
        ``timeout`` ran out (e.g. QoS-incompatible endpoints never match)."""
        subscriptions = collections.Counter(s.topic_name for node in self.nodes for s in node.subscriptions)
        publishers = [(p, subscriptions[p.topic_name]) for node in self.nodes for p in node.publishers
                      if subscriptions[p.topic_name]]
        return self.wait_for(lambda: all(p.get_subscription_count() >= n for p, n in publishers), timeout)

    def _spin(self):
        try:
            self.executor.spin()
        except Exception:  # noqa: BLE001 - shutdown races end the spin
            if self.context.ok():
                raise

    def wait_for(self, condition: Callable[[], bool], timeout: float, poll: float = 0.02) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return True
            time.sleep(poll)
        return bool(condition())

    def shutdown(self) -> None:
        """Stop the executor and its spin thread first, then destroy the nodes, then the context."""
        self.executor.shutdown(timeout_sec=5.0)
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None
        for node in reversed(self.nodes):
            node.destroy_node()
        self.nodes.clear()
        rclpy.try_shutdown(context=self.context)

    def __enter__(self) -> 'Graph':
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()


class TopicRecorder(Node):
    """Subscribes to ``topics`` ({name: msg type}) and keeps every message together with its receive
    time (ROS clock, ns); ``keep(topic)`` False only counts. QoS: reliable, volatile, keep last ``depth``
    unless ``qos`` is given. For tests, the demo and quick experiments."""

    def __init__(self, topics: dict[str, type], name: str = 'topic_recorder', depth: int = 50,
                 keep: Callable[[str], bool] = lambda topic: True, qos: QoSProfile | None = None, **kwargs):
        super().__init__(name, **kwargs)
        self._lock = threading.Lock()
        self.messages: dict[str, list] = {t: [] for t in topics}
        self.counts: dict[str, int] = {t: 0 for t in topics}
        self._keep = keep
        qos = qos or QoSProfile(depth=depth, reliability=ReliabilityPolicy.RELIABLE)
        self.subs = [self.create_subscription(msg_type, topic, self._callback(topic), qos)
                     for topic, msg_type in topics.items()]

    def _callback(self, topic: str):
        def on_message(msg):
            now = self.get_clock().now().nanoseconds
            with self._lock:
                self.counts[topic] += 1
                if self._keep(topic):
                    self.messages[topic].append((now, msg))
        return on_message

    def get(self, topic: str) -> list:
        """[(receive_ns, msg), ...] so far."""
        with self._lock:
            return list(self.messages[topic])

    def count(self, topic: str) -> int:
        with self._lock:
            return self.counts[topic]
