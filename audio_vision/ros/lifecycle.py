# SPDX-License-Identifier: Apache-2.0
"""The package's node lifecycle: start-up errors, the base Node class that destroys a half-built node, and the
``main()`` runner (signals, help, one-line errors)."""
from __future__ import annotations

import re
import signal
import sys
import threading
from typing import Callable

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node


class StartupError(Exception):
    """A node cannot start (bad parameter, missing model, unusable device): one line, exit code 1."""


class ShellNode(Node):
    """Base of the package's nodes: ``__init__`` runs ``self._setup()`` and destroys the half-built node
    if it fails (e.g. with a :class:`StartupError`), so a refused start leaks no publishers or timers."""

    def __init__(self, node_name: str, **kwargs):
        super().__init__(node_name, **kwargs)
        try:
            self._setup()
        except BaseException:
            self.destroy_node()
            raise

    def _setup(self) -> None:
        raise NotImplementedError


def run_node(make_node: Callable, args=None, name: str = 'node') -> int:
    """The body of every node's ``main()``: init, build, spin (single-threaded, as ros2/demos), clean up.

    Every callback here is short (inference runs on the perception node's own worker thread), so one
    executor thread suffices; rclpy's MultiThreadedExecutor busy-waits a whole core and lost frames
    (see :mod:`audio_vision.ros.graph`).

    Shutdown: the first SIGINT or SIGTERM (Ctrl-C, ``ros2 launch``, systemd, docker stop) ends the spin
    (or the start-up) and the node is cleaned up; further SIGINT/SIGTERM during the clean-up (``ros2
    launch`` forwards a second SIGINT after the terminal's; an impatient second Ctrl-C) are ignored.
    Either way the exit status is 0 and nothing is printed but the node's own log.

    A :class:`StartupError` while building, or ROS arguments rcl refuses (a missing or malformed
    ``--params-file``, a ``-p`` without ``:=``), print ONE line (``<name>: error: ...``) and return 1;
    rcl itself may log its own ``[rcl]`` line before.
    """
    argv = list(sys.argv if args is None else args)
    node_args = argv[1:argv.index('--ros-args')] if '--ros-args' in argv else argv[1:]
    if '-h' in node_args or '--help' in node_args:
        print(node_help(make_node, name))
        return 0
    guard = _ShutdownSignals()   # before rclpy.init: rclpy's own handlers chain to these
    try:
        rclpy.init(args=args)
    except Exception as exc:  # noqa: BLE001 - rclpy raises its RCLError (a private type) for bad arguments
        guard.restore()
        print(f'{name}: error: invalid ROS arguments: {rcl_error_text(exc)}', file=sys.stderr)
        return 1
    node = None
    code = 0
    try:
        node = make_node()
        rclpy.spin(node)
    except StartupError as exc:
        print(f'{name}: error: {exc}', file=sys.stderr)
        code = 1
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        guard.closing = True
        try:
            if node is not None:
                node.destroy_node()
            rclpy.try_shutdown()
        except KeyboardInterrupt:   # a signal that slipped in before ``closing`` was seen
            pass
        if guard.signalled:
            guard.ignore()    # the process is ending: later signals must not kill its interpreter shutdown
        else:
            guard.restore()   # in-process callers (tests) get their handlers back
    return code


def node_help(make_node: Callable, name: str) -> str:
    """``<node> --help``: what the node does (its module's first docstring paragraph) and its parameters
    with defaults, ranges and whether they can change at run time."""
    module = sys.modules.get(getattr(make_node, '__module__', ''), None)
    doc = (getattr(module, '__doc__', None) or '').strip().split('\n\n')[0]
    lines = [f'usage: {name} [--ros-args [-p NAME:=VALUE ...] [--params-file FILE] [-r FROM:=TO ...]]', '',
             doc, '', 'parameters (default; * = can be changed at run time with ros2 param set):']
    for p in getattr(module, 'PARAMS', []):
        extra = f' [{p.range[0]}, {p.range[1]}]' if p.range else (f' {list(p.choices)}' if p.choices else '')
        lines.append(f"  {'*' if not p.read_only else ' '} {p.name} = {p.default!r}{extra}: {p.description}")
    return '\n'.join(lines)


class _ShutdownSignals:
    """SIGINT/SIGTERM handlers for :func:`run_node`: the first one raises KeyboardInterrupt (it ends the
    spin, or a start-up still loading the model); once ``closing`` is set, signals are ignored."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.closing = False
        self.signalled = False
        self._previous = {}
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum, frame):
        first = not self.signalled
        self.signalled = True
        if first and not self.closing:
            raise KeyboardInterrupt

    def ignore(self) -> None:
        """SIG_IGN (which, unlike a Python handler, Python's own finalisation keeps)."""
        for sig in self._previous:
            signal.signal(sig, signal.SIG_IGN)

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}


def rcl_error_text(exc: Exception) -> str:
    """The rcl error message on one line, without its C source locations (``, at /path/file.c:123``)."""
    text = ' '.join(str(exc).split())
    text = re.sub(r',? at \S+\.c:\d+', '', text).removeprefix('failed to initialize rcl: ')
    return text.strip()
