# SPDX-License-Identifier: Apache-2.0
"""Ground-truth depth (REP 118 z-depth) and segmentation by vectorised ray casting.

The renderer sees exactly the geometry the acoustics use: the shoebox room and the source
bodies (vertical cylinders and yawed boxes standing on the floor). Every pixel ray is cast at
once with numpy; the only Python loop is over the (at most a handful of) bodies.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from audio_vision.core.camera import PinholeCamera
from audio_vision.core.classes import ClassTable

from .scene import Body, Scene

_EPS = 1e-12


@dataclass(frozen=True)
class GroundTruth:
    depth: np.ndarray          # (H, W) float32, metres along the optical axis (REP 118)
    segmentation: np.ndarray   # (H, W) uint8 class ids
    K: np.ndarray              # (3, 3) float64 intrinsics
    camera_pose: np.ndarray    # (4, 4) float64, optical frame in the room frame


def _safe(d: np.ndarray) -> np.ndarray:
    """Replace (near-)zero direction components so slab divisions stay finite and NaN-free."""
    return np.where(np.abs(d) < _EPS, _EPS, d)


def _room_hits(origin: np.ndarray, dirs: np.ndarray, size) -> tuple[np.ndarray, np.ndarray]:
    """Exit distance of rays from inside the box [0, size] and the axis/side that was hit."""
    d = _safe(dirs)
    bound = np.where(d > 0, np.asarray(size, dtype=np.float64), 0.0)
    t_axis = (bound - origin) / d                          # (..., 3), all >= 0 from inside
    axis = np.argmin(t_axis, axis=-1)
    t = np.take_along_axis(t_axis, axis[..., None], axis=-1)[..., 0]
    return t, axis


def _cylinder_hits(origin: np.ndarray, dirs: np.ndarray, body: Body) -> np.ndarray:
    """Nearest positive hit distance with a vertical capped cylinder (inf where missed)."""
    radius, height = body.size
    ox, oy = origin[0] - body.center[0], origin[1] - body.center[1]
    dx, dy, dz = dirs[..., 0], dirs[..., 1], dirs[..., 2]
    a = dx * dx + dy * dy
    b = 2.0 * (ox * dx + oy * dy)
    c = ox * ox + oy * oy - radius * radius
    disc = b * b - 4.0 * a * c
    with np.errstate(invalid='ignore', divide='ignore'):
        t_side = (-b - np.sqrt(np.maximum(disc, 0.0))) / (2.0 * np.maximum(a, _EPS))
    z_side = origin[2] + t_side * dz
    side_ok = (disc >= 0) & (a > _EPS) & (t_side > 0) & (z_side >= 0.0) & (z_side <= height)
    t = np.where(side_ok, t_side, np.inf)
    # Top cap, seen from above.
    t_cap = (height - origin[2]) / _safe(dz)
    cx, cy = ox + t_cap * dx, oy + t_cap * dy
    cap_ok = (dz < 0) & (t_cap > 0) & (cx * cx + cy * cy <= radius * radius)
    return np.minimum(t, np.where(cap_ok, t_cap, np.inf))


def _box_hits(origin: np.ndarray, dirs: np.ndarray, body: Body) -> np.ndarray:
    """Nearest positive hit distance with a box yawed about z (slab method in the box frame)."""
    sx, sy, height = body.size
    c, s = np.cos(-body.yaw), np.sin(-body.yaw)
    ox, oy = origin[0] - body.center[0], origin[1] - body.center[1]
    o_local = np.array([c * ox - s * oy, s * ox + c * oy, origin[2]])
    d_local = np.stack([c * dirs[..., 0] - s * dirs[..., 1], s * dirs[..., 0] + c * dirs[..., 1],
                        dirs[..., 2]], axis=-1)
    lo = np.array([-sx / 2, -sy / 2, 0.0])
    hi = np.array([sx / 2, sy / 2, height])
    d = _safe(d_local)
    t1, t2 = (lo - o_local) / d, (hi - o_local) / d
    t_near = np.minimum(t1, t2).max(axis=-1)
    t_far = np.maximum(t1, t2).min(axis=-1)
    hit = (t_near <= t_far) & (t_near > 0)
    return np.where(hit, t_near, np.inf)


def render(scene: Scene, camera: PinholeCamera, class_table: ClassTable) -> GroundTruth:
    pose = scene.camera_pose
    origin = pose[:3, 3]
    # Optical rays have z = 1, and rotation preserves the parameter t, so t is the z-depth.
    dirs = camera.pixel_rays() @ pose[:3, :3].T            # (H, W, 3) in the room frame
    t, axis = _room_hits(origin, dirs, scene.room.size)
    wall, floor, ceiling = (class_table.id_of(n) for n in ('wall', 'floor', 'ceiling'))
    labels = np.where(axis == 2, np.where(dirs[..., 2] < 0, floor, ceiling), wall).astype(np.uint8)
    for source in scene.sources:
        hits = _cylinder_hits if source.body.shape == 'cylinder' else _box_hits
        t_body = hits(origin, dirs, source.body)
        nearer = t_body < t
        t = np.where(nearer, t_body, t)
        labels[nearer] = source.class_id
    return GroundTruth(depth=t.astype(np.float32), segmentation=labels, K=camera.K, camera_pose=pose)
