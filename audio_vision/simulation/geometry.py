# SPDX-License-Identifier: Apache-2.0
"""Frames and rigid transforms shared by the sampler, the renderer and the acoustics.

Room frame: origin at a floor corner, x along the room length, y along its width, z up.
Array frame (`audio_array`): REP 103 body frame (x forward, y left, z up) at the array centre,
rotated by the robot's yaw about the room z axis.
Camera frame (`audio_camera_optical`): co-located with the array, REP 103 optical
(z forward = array x, x right = -array y, y down = -array z). The camera is level (pitch 0).
"""
from __future__ import annotations

import numpy as np

from audio_vision.core.frames import optical_pose, planar_pose

from .config import ArrayConfig


def array_to_room(position, yaw: float) -> np.ndarray:
    """4x4 pose of the array frame in the room frame."""
    return planar_pose(*(float(v) for v in position), yaw)


def camera_to_room(position, yaw: float) -> np.ndarray:
    """4x4 pose of the optical frame in the room frame (REP 118 camera pose)."""
    return optical_pose(array_to_room(position, yaw))


def transform_points(T: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a 4x4 transform to (N, 3) points."""
    points = np.asarray(points, dtype=np.float64)
    return points @ T[:3, :3].T + T[:3, 3]


def mic_positions(cfg: ArrayConfig) -> np.ndarray:
    """(C, 3) microphone positions in the array frame, metres.

    Default: two rings of 4 at +-5 cm, the lower ring rotated by 45 degrees (a square
    antiprism, ~0.2 m aperture). The vertical offset lets the array tell up from down, the
    stagger gives 8 distinct azimuths so front/back and left/right are unambiguous.
    """
    if cfg.positions is not None:
        pos = np.asarray(cfg.positions, dtype=np.float64)
        if pos.ndim != 2 or pos.shape[1] != 3 or len(pos) < 1:
            raise ValueError(f'array.positions must be a list of [x, y, z], got shape {pos.shape}')
        return pos
    rings = []
    for k, z in enumerate(cfg.ring_heights):
        az = np.deg2rad(k * cfg.stagger_deg) + 2 * np.pi * np.arange(cfg.mics_per_ring) / cfg.mics_per_ring
        rings.append(np.stack([cfg.ring_radius * np.cos(az), cfg.ring_radius * np.sin(az),
                               np.full_like(az, z)], axis=1))
    return np.concatenate(rings, axis=0)
