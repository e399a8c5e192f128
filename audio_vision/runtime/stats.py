# SPDX-License-Identifier: Apache-2.0
"""Run-time statistics of a stream (pure: no rclpy): event rates, latency percentiles, named counters; all
thread-safe, read by the nodes' diagnostics."""
from __future__ import annotations

import collections
import threading
import time
from typing import Callable

import numpy as np


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
