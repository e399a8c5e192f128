# SPDX-License-Identifier: Apache-2.0
"""A bounded work queue with its own thread where the latest item wins: what a perception stage needs
between a subscription callback (which must return at once) and a computation slower than the callbacks.

    queue = InferenceQueue(handle, capacity=1, name='perception_inference', on_error=report, start=False)
    queue.start()              # once everything ``handle`` uses exists (``start=True``, the default: at once)
    queue.put(window)          # from the callback; drops (and counts) the oldest waiting item when full
    queue.close()              # stops the thread after the item in hand; waiting items are discarded

``handle(item)`` runs on the queue's thread, one item at a time; an exception it raises is passed to
``on_error`` (the queue keeps serving). No rclpy here: the ROS shell and tests use it alike.
"""
from __future__ import annotations

import collections
import threading
from typing import Any, Callable


class InferenceQueue:

    def __init__(self, handle: Callable[[Any], None], capacity: int = 1, name: str = 'inference',
                 on_error: Callable[[BaseException], None] | None = None, start: bool = True):
        if capacity < 1:
            raise ValueError(f'capacity must be >= 1, got {capacity}')
        self._handle, self._on_error = handle, on_error
        self.capacity = int(capacity)
        self.submitted = 0           # items put
        self.dropped = 0             # items discarded unprocessed because a newer one came (queue full)
        self.errors = 0              # items whose handler raised
        self._items: collections.deque = collections.deque()
        self._cv = threading.Condition()
        self._stop = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        if start:
            self.start()

    def start(self) -> None:
        """Start the thread (once; not after :meth:`close`); items put before wait for it."""
        with self._cv:
            if self._thread.ident is None and not self._stop:
                self._thread.start()

    def put(self, item) -> int:
        """Queue ``item``; returns how many waiting items it pushed out (0 or more when capacity shrank)."""
        with self._cv:
            self.submitted += 1
            pushed_out = 0
            while len(self._items) >= self.capacity:
                self._items.popleft()
                pushed_out += 1
            self.dropped += pushed_out
            self._items.append(item)
            self._cv.notify()
        return pushed_out

    def set_capacity(self, capacity: int) -> None:
        """Takes effect with the next ``put`` (a waiting item is never dropped by the change itself)."""
        if capacity < 1:
            raise ValueError(f'capacity must be >= 1, got {capacity}')
        self.capacity = int(capacity)

    @property
    def pending(self) -> int:
        """Items waiting (not counting the one being handled)."""
        return len(self._items)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def close(self, timeout: float = 10.0) -> bool:
        """Stop after the item being handled (if any); True when the thread has ended."""
        with self._cv:
            self._stop = True
            self._items.clear()
            self._cv.notify_all()
        if self._thread.ident is not None and threading.current_thread() is not self._thread:
            self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._items and not self._stop:
                    self._cv.wait()
                if self._stop:
                    return
                item = self._items.popleft()
            try:
                self._handle(item)
            except Exception as exc:  # noqa: BLE001 - keep serving; the owner reports it
                self.errors += 1
                if self._on_error is not None:
                    self._on_error(exc)
