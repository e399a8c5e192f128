# SPDX-License-Identifier: Apache-2.0
"""One front-end measurement per window for every consumer of it in a process.

The perception node needs a window's room twice when its model reads the layout prior and it also publishes
the layout (``publish_layout``, on by default in perceive.launch.py): once inside the model's features, once
for ``layout/depth`` and ``layout/planes``, on two threads. Measured twice, the front-end was the largest
cost of a window twice over. :class:`SharedEstimates` measures each window once: the first thread to ask
measures it, a thread asking for the same window meanwhile or afterwards waits for and gets that result.
Windows are matched by content (exact equality of their samples), not by a hash or an id, so a different
window is never given another's room. Two threads may measure two different windows at once: ``LayoutEstimator``
keeps nothing between calls (each window's state lives in its own ``EchoField``).
"""
from __future__ import annotations

import collections
import threading
from concurrent.futures import Future

import numpy as np

from .layout import LayoutEstimator, RoomLayout


class SharedEstimates:
    """``estimator.estimate`` with the last ``size`` windows' results shared between threads (module docstring).
    ``measured`` and ``shared`` count the windows measured and those answered from another's measurement."""

    def __init__(self, estimator: LayoutEstimator, size: int = 4):
        if size < 1:
            raise ValueError(f'size must be >= 1, got {size}')
        self.estimator = estimator
        self._lock = threading.Lock()
        self._recent: collections.deque[tuple[np.ndarray, Future]] = collections.deque(maxlen=size)
        self.measured = 0
        self.shared = 0

    def estimate(self, audio: np.ndarray) -> RoomLayout:
        """(C, N) window -> its :class:`RoomLayout`, measured here or by the thread that asked first (its error,
        if it failed, is raised here too)."""
        audio = np.asarray(audio, dtype=np.float64)      # float32 windows convert exactly: they match their copies
        with self._lock:
            future = next((f for seen, f in self._recent if seen.shape == audio.shape and np.array_equal(seen, audio)),
                          None)
            if future is not None:
                self.shared += 1
            else:
                mine = Future()
                self._recent.append((audio.copy(), mine))
                self.measured += 1
        if future is not None:
            return future.result()
        try:
            layout = self.estimator.estimate(audio)
        except BaseException as exc:
            mine.set_exception(exc)
            raise
        mine.set_result(layout)
        return layout
