# SPDX-License-Identifier: Apache-2.0
"""Every frame convention of the package in one place (pure numpy).

Body frame (REP 103: x forward, y left, z up; the array's `audio_array`) and the co-located optical frame
(REP 103 optical: z forward, x right, y down; the camera's `audio_camera_optical`); a pose is a 4 x 4
transform of a frame into its parent (world, room, map, odom); quaternions are (x, y, z, w).
"""
from __future__ import annotations

import math

import numpy as np

# Rotation from a body frame to the co-located optical frame, as the quaternion (x, y, z, w) of the optical
# frame in the body frame. Used by the static TF of every publisher and bag writer.
BODY_TO_OPTICAL_QUATERNION = (-0.5, 0.5, -0.5, 0.5)
# The same rotation as a matrix: its columns are the optical-frame axes expressed in the body frame.
R_BODY_FROM_OPTICAL = np.array([[0.0, 0.0, 1.0],
                                [-1.0, 0.0, 0.0],
                                [0.0, -1.0, 0.0]])
R_BODY_FROM_OPTICAL.setflags(write=False)


def body_pose(optical_pose: np.ndarray) -> np.ndarray:
    """4 x 4 pose of a body frame from that of its co-located optical frame."""
    T = np.array(optical_pose, dtype=np.float64)
    T[:3, :3] = T[:3, :3] @ R_BODY_FROM_OPTICAL.T
    return T


def optical_pose(body_pose: np.ndarray) -> np.ndarray:
    """4 x 4 pose of the optical frame co-located with a body frame of pose ``body_pose``."""
    T = np.array(body_pose, dtype=np.float64)
    T[:3, :3] = T[:3, :3] @ R_BODY_FROM_OPTICAL
    return T


def planar_pose(x: float, y: float, z: float, yaw: float) -> np.ndarray:
    """4 x 4 pose of a frame at (x, y, z) rotated by ``yaw`` (rad) about z."""
    c, s = math.cos(yaw), math.sin(yaw)
    T = np.eye(4)
    T[:2, :2] = [[c, -s], [s, c]]
    T[:3, 3] = (x, y, z)
    return T


def yaw_quaternion(yaw: float) -> tuple[float, float, float, float]:
    """(x, y, z, w) of a rotation by ``yaw`` about z."""
    return (0.0, 0.0, float(np.sin(yaw / 2.0)), float(np.cos(yaw / 2.0)))


def quaternion_to_matrix(q) -> np.ndarray:
    """(x, y, z, w) unit quaternion -> 3x3 rotation matrix."""
    x, y, z, w = q
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


def matrix_to_quaternion(R) -> tuple[float, float, float, float]:
    """3x3 rotation matrix -> (x, y, z, w) unit quaternion, w >= 0 (the inverse of quaternion_to_matrix;
    Shepperd's method: the largest of w, x, y, z is found first, so no branch divides by a small number)."""
    R = np.asarray(R, dtype=np.float64)
    t = np.trace(R)
    k = int(np.argmax([t, R[0, 0], R[1, 1], R[2, 2]]))
    if k == 0:
        s = 2.0 * np.sqrt(1.0 + t)
        q = (R[2, 1] - R[1, 2]) / s, (R[0, 2] - R[2, 0]) / s, (R[1, 0] - R[0, 1]) / s, 0.25 * s
    elif k == 1:
        s = 2.0 * np.sqrt(1.0 + R[0, 0] - R[1, 1] - R[2, 2])
        q = 0.25 * s, (R[0, 1] + R[1, 0]) / s, (R[0, 2] + R[2, 0]) / s, (R[2, 1] - R[1, 2]) / s
    elif k == 2:
        s = 2.0 * np.sqrt(1.0 - R[0, 0] + R[1, 1] - R[2, 2])
        q = (R[0, 1] + R[1, 0]) / s, 0.25 * s, (R[1, 2] + R[2, 1]) / s, (R[0, 2] - R[2, 0]) / s
    else:
        s = 2.0 * np.sqrt(1.0 - R[0, 0] - R[1, 1] + R[2, 2])
        q = (R[0, 2] + R[2, 0]) / s, (R[1, 2] + R[2, 1]) / s, 0.25 * s, (R[1, 0] - R[0, 1]) / s
    q = np.asarray(q) / np.linalg.norm(q)
    return tuple(float(v) for v in (q if q[3] >= 0 else -q))


def quaternion_pose(position, quaternion) -> np.ndarray:
    """4x4 pose from a position and an (x, y, z, w) quaternion (normalised here; a zero one gives NaN)."""
    q = np.array([float(v) for v in quaternion])
    n = float(np.linalg.norm(q))
    T = np.eye(4)
    T[:3, :3] = quaternion_to_matrix(q / n) if n > 0 and math.isfinite(n) else np.nan
    T[:3, 3] = [float(v) for v in position]
    return T
