# SPDX-License-Identifier: Apache-2.0
"""/diagnostics messages: one status from a dict of values, and a topic's frequency and stamp health in the shape
of diagnostic_updater's ``TopicDiagnostic``."""
from __future__ import annotations

import collections
import threading
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from std_msgs.msg import Header


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
