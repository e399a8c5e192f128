# SPDX-License-Identifier: Apache-2.0
"""Which drive each window of a stream belongs to, for a model that fuses the room over a drive
(``FeatureConfig.layout_fusion``, :class:`audio_vision.sonar.fusion.DriveFusion`).

A window's pose is its array frame in the odometry frame at the window's end, or None where there is none usable
(no odometry yet, stale, non-finite, not rigid: :func:`audio_vision.mapping.occupancy.check_pose`'s reasons). A
window without a pose is its room alone and the drive restarts after it; so does a step between consecutive windows'
poses longer than ``max_step_m`` (an odometry reset, a relocalisation, a new room in the simulator): what was
measured before is not in this frame any more. Restarts (each window without a pose is one) are counted by reason
for the node's diagnostics.
"""
from __future__ import annotations

import numpy as np

from audio_vision.mapping.occupancy import POSE_REJECT_REASONS, check_pose
from audio_vision.runtime.stats import Counters

#: why a drive restarted: a window without a usable pose (by reason), or a jump
RESTART_REASONS = tuple(f'pose_{r}' for r in POSE_REJECT_REASONS) + ('jump',)


class DriveOdometry:
    """``window(T, pose_stamp_ns, window_end_ns)`` -> (the pose to fuse with, or None; the drive's id)."""

    def __init__(self, max_step_m: float = 1.0, max_pose_age_s: float = 0.1):
        if max_step_m <= 0:
            raise ValueError(f'max_step_m must be > 0, got {max_step_m}')
        self.max_step_m = max_step_m
        self.max_pose_age_s = max_pose_age_s
        self.drive = 0
        self.posed = 0                          # windows fused with a pose
        self.restarts = Counters(RESTART_REASONS)
        self._last: np.ndarray | None = None    # the previous window's position, None after a restart

    def window(self, T, pose_stamp_ns: int | None, window_end_ns: int) -> tuple[np.ndarray | None, int]:
        reason = check_pose(T, pose_stamp_ns, window_end_ns, self.max_pose_age_s)
        if reason is not None:
            self._restart(f'pose_{reason}')
            return None, self.drive
        T = np.asarray(T, dtype=np.float64)
        if self._last is not None and float(np.linalg.norm(T[:3, 3] - self._last)) > self.max_step_m:
            self._restart('jump')
        self._last = T[:3, 3].copy()
        self.posed += 1
        return T, self.drive

    def _restart(self, reason: str) -> None:
        self.restarts.add(reason)
        self.drive += 1
        self._last = None
