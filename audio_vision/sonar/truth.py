# SPDX-License-Identifier: Apache-2.0
"""The room's exact planes in the array frame (from a sample's camera pose and room size), and the
layout's errors against them: what `evaluate` reports and docs/SONAR.md quotes."""
from __future__ import annotations

import math

import numpy as np

from audio_vision.core.frames import body_pose

from .layout import CEILING, FLOOR, WALL, Plane, RoomLayout

#: a wall estimate is matched to the true wall whose normal is nearest, within this angle
MATCH_DEG = 45.0


def true_layout(camera_pose: np.ndarray, room_size) -> RoomLayout:
    """The shoebox [0, L] x [0, W] x [0, H] (room frame) seen from the array whose optical frame has
    pose ``camera_pose`` (4 x 4, optical -> room): six planes, normals in the array frame."""
    T = body_pose(camera_pose)
    R_room_from_array, p = T[:3, :3], T[:3, 3]
    size = np.asarray(room_size, dtype=np.float64)
    planes = []
    for axis in range(3):
        for side, sign in ((0.0, -1.0), (size[axis], 1.0)):
            n_room = np.zeros(3)
            n_room[axis] = sign
            offset = sign * (side - p[axis])
            label = WALL if axis < 2 else (FLOOR if sign < 0 else CEILING)
            planes.append(Plane(label, tuple(R_room_from_array.T @ n_room), float(offset)))
    walls = [q for q in planes if q.label == WALL]
    yaw = math.degrees(math.atan2(walls[0].normal[1], walls[0].normal[0])) % 90.0
    return RoomLayout(tuple(planes), yaw)


def angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    return math.degrees(math.acos(float(np.clip(np.dot(a, b), -1.0, 1.0))))


def distance_along(plane: Plane, direction: np.ndarray) -> float:
    """Where the ray from the array centre along ``direction`` meets ``plane`` (inf if it never does)."""
    den = float(plane.n @ direction)
    return plane.offset / den if den > 1e-9 else math.inf


def layout_errors(estimate: RoomLayout, truth: RoomLayout) -> dict:
    """Per-window errors: floor / ceiling distance (m, None when not measured), and per true wall the
    distance error along its true normal (m) and the angle between normals (deg), None where no estimated
    wall lies within MATCH_DEG."""
    out: dict = {}
    for label in (FLOOR, CEILING):
        est, tru = estimate.get(label), truth.get(label)[0]
        out[label] = abs(est[0].offset - tru.offset) if est else None
    walls = []
    for tru in truth.get(WALL):
        cands = [(angle_deg(w.n, tru.n), w) for w in estimate.get(WALL)]
        cands = [c for c in cands if c[0] <= MATCH_DEG]
        if not cands:
            walls.append({'offset': tru.offset, 'distance': None, 'angle': None})
            continue
        ang, w = min(cands, key=lambda c: c[0])
        walls.append({'offset': tru.offset, 'distance': abs(distance_along(w, tru.n) - tru.offset), 'angle': ang})
    out['walls'] = walls
    return out


def summarize_errors(errors: list[dict]) -> dict:
    """Median, p90 and failure share of each error over windows (failures never replaced by a value)."""
    def stats(values):
        ok = np.array([v for v in values if v is not None and math.isfinite(v)], dtype=np.float64)
        n = len(values)
        if not len(ok):
            return {'median': None, 'p90': None, 'failed': 1.0 if n else None, 'n': n}
        return {'median': float(np.median(ok)), 'p90': float(np.percentile(ok, 90)),
                'failed': float(1.0 - len(ok) / n), 'n': n}
    walls = [w for e in errors for w in e['walls']]
    return {'floor_m': stats([e[FLOOR] for e in errors]), 'ceiling_m': stats([e[CEILING] for e in errors]),
            'wall_distance_m': stats([w['distance'] for w in walls]),
            'wall_angle_deg': stats([w['angle'] for w in walls])}
