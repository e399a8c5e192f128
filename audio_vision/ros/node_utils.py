# SPDX-License-Identifier: Apache-2.0
"""Small pieces shared by the nodes: parameter declaration with descriptors, start-up errors, the
``main()`` runner, runtime statistics, diagnostics messages and real-time pacing."""
from __future__ import annotations

import collections
import re
import signal
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException
from std_msgs.msg import Header
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


# ---------------------------------------------------------------- parameters

READ_ONLY_WHY = 'used to build the node at start-up (publishers, model, buffers); restart the node to change it'


@dataclass(frozen=True)
class Param:
    """A parameter declaration: default value (its type is the parameter's type) and descriptor fields."""

    name: str
    default: Any
    description: str
    range: tuple | None = None        # inclusive (from, to) for int/float parameters
    choices: tuple | None = None      # allowed values of a string parameter
    read_only: bool = True
    why: str = ''                     # why a read-only parameter cannot change at run time ('' = generic)

    def descriptor(self) -> ParameterDescriptor:
        d = ParameterDescriptor(name=self.name, description=self.description, read_only=self.read_only)
        constraints = ['one of: ' + ', '.join(repr(c) for c in self.choices)] if self.choices else []
        constraints.append(f'read-only: {self.why or READ_ONLY_WHY}' if self.read_only
                           else 'can be changed at run time (ros2 param set)')
        d.additional_constraints = '; '.join(constraints)
        if self.range is not None:
            lo, hi = self.range
            if isinstance(self.default, float):
                d.floating_point_range = [FloatingPointRange(from_value=float(lo), to_value=float(hi), step=0.0)]
            else:
                d.integer_range = [IntegerRange(from_value=int(lo), to_value=int(hi), step=0)]
        return d


def declare_parameters(node, params: list[Param]) -> dict[str, Any]:
    """Declare ``params`` on ``node`` (overrides come from YAML / the command line) and return their
    values; any invalid value raises :class:`StartupError` with one readable line."""
    values = {}
    for p in params:
        try:
            values[p.name] = node.declare_parameter(p.name, p.default, p.descriptor()).value
        except InvalidParameterTypeException as exc:
            got = re.search(r"to '(.*)' of type '(\w+)'", str(exc))
            hint = ' (write e.g. 1.0, not 1)' if isinstance(p.default, float) else ''
            raise StartupError(f"parameter '{p.name}' must be a {type(p.default).__name__}"
                               + (f", got {got.group(2).lower()} {got.group(1)!r}" if got else '') + hint) from None
        except InvalidParameterValueException as exc:
            got = re.search(r'value: (.*?)(?::|$)', str(exc))
            raise StartupError(f"parameter '{p.name}' = {got.group(1) if got else '?'} is out of range "
                               f'[{p.range[0]}, {p.range[1]}]') from None
        check_value(p, values[p.name])
    return values


def check_value(p: Param, value) -> Any:
    """The checks of a parameter value beyond rclpy's own (type and range, enforced by the descriptor):
    the same at start-up and at run time. Raises :class:`StartupError` with one readable line."""
    if p.choices and value not in p.choices:
        raise StartupError(f"parameter '{p.name}' = {value!r} is not one of {list(p.choices)}")
    return value


def live_parameters(node, params: list[Param], apply: Callable[[dict[str, Any]], None]) -> None:
    """Accept run-time changes of the parameters of ``params`` that are not read-only: each new value is
    validated as at start-up (type and range by rclpy from the descriptor, the rest by :func:`check_value`);
    if all are valid, ``apply({name: value})`` makes them effective, else the whole set is refused with the
    reason. Read-only parameters are refused by rclpy itself (their descriptor says why)."""
    from rcl_interfaces.msg import SetParametersResult
    by_name = {p.name: p for p in params}

    def on_set(changes) -> SetParametersResult:
        values = {}
        for parameter in changes:
            p = by_name.get(parameter.name)
            if p is None:          # rclpy's own (use_sim_time, ...)
                continue
            if p.read_only:        # normally refused by rclpy before this callback
                return SetParametersResult(successful=False,
                                           reason=f"parameter '{p.name}' is read-only: {p.why or READ_ONLY_WHY}")
            try:
                values[p.name] = check_value(p, parameter.value)
            except StartupError as exc:
                return SetParametersResult(successful=False, reason=str(exc))
        if values:
            apply(values)
            node.get_logger().info('parameters changed: ' + ', '.join(f'{k}={v!r}' for k, v in values.items()))
        return SetParametersResult(successful=True)
    node.add_on_set_parameters_callback(on_set)


# ---------------------------------------------------------------- main()

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


# ---------------------------------------------------------------- statistics

class RateMeter:
    """Counts events (thread-safe); ``rate()`` = events per second since the previous ``rate()`` call."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._lock = threading.Lock()
        self.total = 0
        self._mark_count = 0
        self._mark_t = clock()

    def tick(self, n: int = 1) -> None:
        with self._lock:
            self.total += n

    def rate(self) -> float:
        with self._lock:
            now = self._clock()
            dt = now - self._mark_t
            r = (self.total - self._mark_count) / dt if dt > 0 else 0.0
            self._mark_count, self._mark_t = self.total, now
            return r


class LatencyStats:
    """The last ``maxlen`` latencies in seconds (thread-safe); percentiles in milliseconds."""

    def __init__(self, maxlen: int = 200):
        self._values = collections.deque(maxlen=maxlen)
        self._lock = threading.Lock()

    def add(self, seconds: float) -> None:
        with self._lock:
            self._values.append(float(seconds))

    def __len__(self) -> int:
        return len(self._values)

    def percentiles_ms(self, qs=(50, 95)) -> tuple[float, ...]:
        with self._lock:
            values = list(self._values)
        if not values:
            return tuple(float('nan') for _ in qs)
        return tuple(float(v) * 1e3 for v in np.percentile(values, qs))


class Counters:
    """Thread-safe named counters (e.g. invalid frames by reason)."""

    def __init__(self, names=()):
        self._lock = threading.Lock()
        self._counts = {n: 0 for n in names}

    def add(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._counts[name] = self._counts.get(name, 0) + n

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)


def diagnostic_status(name: str, hardware_id: str, level: bytes, message: str,
                      values: dict[str, Any]) -> DiagnosticStatus:
    """One DiagnosticStatus; ``level`` is a DiagnosticStatus constant (OK, WARN, ...)."""
    def fmt(v):
        return f'{v:.3f}' if isinstance(v, float) else str(v)
    return DiagnosticStatus(level=level, name=name, message=message, hardware_id=hardware_id,
                            values=[KeyValue(key=k, value=fmt(v)) for k, v in values.items()])


def diagnostic_array(stamp, name: str, hardware_id: str, level: bytes, message: str,
                     values: dict[str, Any], more: list[DiagnosticStatus] = ()) -> DiagnosticArray:
    """A /diagnostics message: one status built from the arguments, then ``more``."""
    return DiagnosticArray(header=Header(stamp=stamp),
                           status=[diagnostic_status(name, hardware_id, level, message, values), *more])


class TopicStatus:
    """A published topic's frequency and time-stamp health, in the shape of diagnostic_updater's
    ``TopicDiagnostic`` (its ``FrequencyStatus`` + ``TimeStampStatus`` merged into one status named
    ``<node>: <topic> topic status``), so tools and aggregators that read those keys read these.

    ``tick(now_ns, stamp_ns)`` per message; ``status(now_ns)`` once per diagnostics period. Frequency is
    events / duration over the last ``window_size`` periods; ``Desired frequency met`` within
    ``tolerance`` of ``[min_hz, max_hz]`` (WARN outside, ERROR with no events). Time-stamp delay is
    ``now - stamp`` per message (ERROR outside ``[min_delay_s, max_delay_s]``). Times come from the
    caller (the node clock: simulated time on replay)."""

    def __init__(self, name: str, hardware_id: str, min_hz: float, max_hz: float, tolerance: float = 0.1,
                 window_size: int = 5, min_delay_s: float = -1.0, max_delay_s: float = 5.0):
        self.name, self.hardware_id = name, hardware_id
        self.min_hz, self.max_hz, self.tolerance = min_hz, max_hz, tolerance
        self.min_delay_s, self.max_delay_s = min_delay_s, max_delay_s
        self._lock = threading.Lock()
        self.count = 0
        self._history: collections.deque = collections.deque(maxlen=max(1, window_size))   # (t_ns, count)
        self._delays: list[float] = []
        self._late = self._early = self._zero = 0
        self._zero_seen = False

    def tick(self, now_ns: int, stamp_ns: int) -> None:
        with self._lock:
            self.count += 1
            if stamp_ns == 0:
                self._zero_seen = True
            else:
                self._delays.append((now_ns - stamp_ns) / 1e9)

    def status(self, now_ns: int) -> DiagnosticStatus:
        with self._lock:
            if not self._history:
                self._history.append((now_ns, 0))
            t0, c0 = self._history[0]
            self._history.append((now_ns, self.count))
            events, window = self.count - c0, (now_ns - t0) / 1e9
            freq = events / window if window > 0 else 0.0
            delays, self._delays = self._delays, []
            zero, self._zero_seen = self._zero_seen, False
            level, message = DiagnosticStatus.OK, 'Desired frequency met'
            if events == 0:
                level, message = DiagnosticStatus.ERROR, 'No events recorded.'
            elif freq < self.min_hz * (1 - self.tolerance):
                level, message = DiagnosticStatus.WARN, 'Frequency too low.'
            elif freq > self.max_hz * (1 + self.tolerance):
                level, message = DiagnosticStatus.WARN, 'Frequency too high.'
            earliest, latest = (min(delays), max(delays)) if delays else (0.0, 0.0)
            stamp_problems = []
            if delays and earliest < self.min_delay_s:
                self._early += 1
                stamp_problems.append('Timestamps too far in future seen.')
            if delays and latest > self.max_delay_s:
                self._late += 1
                stamp_problems.append('Timestamps too far in past seen.')
            if zero:
                self._zero += 1
                stamp_problems.append('Zero timestamp seen.')
            if stamp_problems:
                level, message = DiagnosticStatus.ERROR, '; '.join([message] + stamp_problems)
            values = {'Events in window': events, 'Events since startup': self.count,
                      'Duration of window (s)': window, 'Actual frequency (Hz)': freq}
            if self.min_hz == self.max_hz:
                values['Target frequency (Hz)'] = self.min_hz
            values['Minimum acceptable frequency (Hz)'] = self.min_hz * (1 - self.tolerance)
            values['Maximum acceptable frequency (Hz)'] = self.max_hz * (1 + self.tolerance)
            values.update({'Earliest timestamp delay:': earliest, 'Latest timestamp delay:': latest,
                           'Earliest acceptable timestamp delay:': self.min_delay_s,
                           'Latest acceptable timestamp delay:': self.max_delay_s,
                           'Late diagnostic update count:': self._late,
                           'Early diagnostic update count:': self._early,
                           'Zero seen diagnostic update count:': self._zero})
        return diagnostic_status(self.name, self.hardware_id, level, message, values)


# ---------------------------------------------------------------- pacing

class ChunkPacer:
    """Real-time (or ``rate`` x real-time) pacing of a chunked audio stream that follows the wall clock.

    ``due(now)`` returns the stream indices (in samples) of the chunks to send now: chunk k is complete
    at ``t0 + (k + 1) * chunk_samples / sample_rate / rate``. When the caller fell more than ``max_lag_s``
    behind (CPU starvation), only the newest ``max_lag_s`` worth of chunks is sent and the older ones are
    skipped, as a real device overrun loses audio; stamped from the stream index, the skip appears
    downstream as a stamp gap. ``skipped`` counts skipped chunks.
    """

    def __init__(self, sample_rate: int, chunk_samples: int, rate: float = 1.0, max_lag_s: float = 0.5):
        if sample_rate <= 0 or chunk_samples <= 0 or rate <= 0:
            raise ValueError('sample_rate, chunk_samples and rate must be > 0')
        self.chunk = int(chunk_samples)
        self.period = chunk_samples / sample_rate / rate
        self.max_lag_chunks = max(1, int(max_lag_s / self.period))
        self.t0: float | None = None
        self.done = 0
        self.skipped = 0

    def wait_time(self, now: float) -> float:
        """Seconds from ``now`` until the next chunk is complete (0 before the first call of :meth:`due`)."""
        if self.t0 is None:
            return 0.0
        return max(self.t0 + (self.done + 1) * self.period - now, 0.0)

    def due(self, now: float) -> list[int]:
        if self.t0 is None:
            self.t0 = now
        n = max(int((now - self.t0) / self.period + 1e-9) - self.done, 0)
        skip = max(n - self.max_lag_chunks, 0)
        self.skipped += skip
        first = self.done + skip
        self.done += n
        return [k * self.chunk for k in range(first, self.done)]


class PacedLoop:
    """Runs ``tick()`` on its own thread at the instants ``pacer`` says a chunk is complete: the thread sleeps
    until the next chunk's due time (:meth:`ChunkPacer.wait_time`), so a chunk is published when its last
    sample is "captured", not up to one polling-timer period later, and the process wakes once per chunk
    instead of every few milliseconds. ``tick`` calls ``pacer.due(time.monotonic())`` itself (as a timer
    callback would) and may publish: rclpy publishers are thread-safe. ``cancel()`` stops the loop (like a
    timer's) and waits for a running tick; an exception in ``tick`` is logged with ``logger`` and the loop
    goes on with the next chunk, unless the ROS context has shut down. The thread starts with :meth:`start`
    (nodes call it from their first executor callback, so nothing is published before the graph spins).
    """

    def __init__(self, pacer: ChunkPacer, tick: Callable[[], None], name: str, logger=None, context=None):
        self.pacer, self._tick, self._logger, self._context = pacer, tick, logger, context
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        if not self._thread.is_alive() and not self._stop.is_set():
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            wait = self.pacer.wait_time(time.monotonic())
            if wait > 0 and self._stop.wait(wait):
                return
            try:
                self._tick()
            except Exception as exc:  # noqa: BLE001 - keep streaming; a shut-down context ends the loop
                if self._context is not None and not self._context.ok():
                    return
                if self._logger is not None:
                    self._logger.error(f'{self._thread.name}: {type(exc).__name__}: {exc}', throttle_duration_sec=5.0)
                self._stop.wait(self.pacer.period)

    def cancel(self) -> None:
        """Stop calling ``tick`` (idempotent); waits for a tick in progress unless called from the loop."""
        self._stop.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=5.0)

    def is_canceled(self) -> bool:
        return self._stop.is_set()
