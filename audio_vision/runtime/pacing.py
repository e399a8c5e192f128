# SPDX-License-Identifier: Apache-2.0
"""Real-time pacing of a chunked stream that follows the wall clock (pure: no rclpy; a ROS context may be handed
in to end the loop): ``ChunkPacer`` says which chunks are due, ``PacedLoop`` runs a tick on its own thread when
they are."""
from __future__ import annotations

import threading
import time
from typing import Callable


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
