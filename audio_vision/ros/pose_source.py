# SPDX-License-Identifier: Apache-2.0
"""A sensor frame's pose at a stamp, from TF or from odometry plus the sensor's mount on the robot.

What occupancy_node reads (the camera's pose, to map) and perception_node reads (the array's, to fuse the room over a
drive): with ``pose_source`` tf (where tf2_ros imports) the transform ``fixed frame -> the sensor's frame`` at the
stamp; with odom the nav_msgs/Odometry message on ``odom`` nearest the stamp (``base_frame_id`` in the fixed frame)
times the fixed ``base -> sensor`` transform the node gives (built from ``mount_xyz`` / ``mount_yaw``). ``auto``
picks tf where tf2_ros imports, else odom; ``none`` (where a node offers it) reads no pose at all.
"""
from __future__ import annotations

import bisect
import threading

import numpy as np
from nav_msgs.msg import Odometry
from rclpy.qos import QoSProfile, ReliabilityPolicy

from audio_vision.core.frames import planar_pose, quaternion_pose
from audio_vision.ros import conversions as conv
from audio_vision.ros.lifecycle import StartupError
from audio_vision.ros.parameters import Param

#: how many odometry messages are kept (at 50 Hz, 4 s: windows are looked up within a second of their end)
ODOM_HISTORY = 200


def pose_params(what: str, choices=('auto', 'tf', 'odom'), max_age_s: float = 0.1) -> list[Param]:
    """The parameters of a :class:`PoseSource` (``what``: whose pose, for the descriptions)."""
    return [
        Param('base_frame_id', 'base_link', 'robot frame of the odometry (pose_source odom)'),
        Param('pose_source', 'auto', f"{what} pose from 'tf' (needs tf2_ros), 'odom' (nav_msgs/Odometry + mount "
                                     "pose) or 'auto' (tf where tf2_ros imports, else odom)"
              + (", or 'none'" if 'none' in choices else ''), choices=tuple(choices)),
        Param('mount_xyz', [0.0, 0.0, 0.0], 'array centre in the base frame (pose_source odom), m'),
        Param('mount_yaw', 0.0, 'array yaw in the base frame (pose_source odom), rad', range=(-3.15, 3.15)),
        Param('max_pose_age_s', max_age_s, f'largest stamp difference between the {what} stamp and its pose',
              range=(0.0, 10.0)),
    ]


def tf2_ros_module():
    """tf2_ros, or None where it is not importable (the package index has no wheel of it)."""
    try:
        import tf2_ros
        return tf2_ros
    except ImportError:
        return None


class PoseSource:
    """Poses of one sensor frame in ``fixed_frame`` for a node (see the module docstring). ``array_to_sensor``:
    4 x 4, the sensor frame in the array frame (the identity for the array itself); the array sits on the base at
    ``mount_xyz`` / ``mount_yaw`` (odom mode). Raises :class:`StartupError` for a mode it cannot serve."""

    def __init__(self, node, params: dict, fixed_frame: str, array_to_sensor: np.ndarray | None = None):
        if len(params['mount_xyz']) != 3:
            raise StartupError(f"parameter 'mount_xyz': needs 3 values, got {list(params['mount_xyz'])}")
        mount = planar_pose(*params['mount_xyz'], params['mount_yaw'])          # base -> array
        tf2_ros = tf2_ros_module()
        requested = params['pose_source']
        if requested == 'tf' and tf2_ros is None:
            raise StartupError("parameter 'pose_source' is 'tf' but tf2_ros is not importable; use odom")
        self.mode = requested if requested in ('tf', 'none') else ('tf' if tf2_ros is not None and requested == 'auto'
                                                                   else 'odom')
        self.fixed_frame = fixed_frame
        self._base_to_sensor = mount if array_to_sensor is None else mount @ np.asarray(array_to_sensor, float)
        self._lock = threading.Lock()
        self._odom: list[tuple[int, np.ndarray]] = []        # (stamp ns, T_fixed_base), sorted by stamp
        if self.mode == 'tf':
            self.tf_buffer = tf2_ros.Buffer()
            self.tf_listener = tf2_ros.TransformListener(self.tf_buffer, node)
        elif self.mode == 'odom':
            node.create_subscription(Odometry, 'odom', self.on_odom,
                                     QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE))

    @property
    def odometry_stamps(self) -> list[int]:
        with self._lock:
            return [stamp for stamp, _ in self._odom]

    def on_odom(self, msg: Odometry) -> None:
        p = msg.pose.pose
        T = quaternion_pose((p.position.x, p.position.y, p.position.z),
                            (p.orientation.x, p.orientation.y, p.orientation.z, p.orientation.w))
        with self._lock:
            bisect.insort(self._odom, (conv.time_to_ns(msg.header.stamp), T), key=lambda e: e[0])
            del self._odom[:-ODOM_HISTORY]

    def pose(self, stamp_ns: int, sensor_frame: str) -> tuple[np.ndarray | None, int | None]:
        """(T_fixed_sensor, stamp of the pose) at ``stamp_ns``, or (None, None) when there is none
        (``sensor_frame``: the frame TF looks up)."""
        if self.mode == 'none':
            return None, None
        if self.mode == 'tf':
            from rclpy.time import Time
            try:
                t = self.tf_buffer.lookup_transform(self.fixed_frame, sensor_frame, Time(nanoseconds=stamp_ns))
            except Exception:  # noqa: BLE001 - tf2 lookup/extrapolation/connectivity errors: no pose
                return None, None
            tr, q = t.transform.translation, t.transform.rotation
            return quaternion_pose((tr.x, tr.y, tr.z), (q.x, q.y, q.z, q.w)), conv.time_to_ns(t.header.stamp)
        with self._lock:
            if not self._odom:
                return None, None
            i = bisect.bisect_left(self._odom, stamp_ns, key=lambda e: e[0])
            near = min(self._odom[max(i - 1, 0):i + 1], key=lambda e: abs(e[0] - stamp_ns))
        return near[1] @ self._base_to_sensor, near[0]
