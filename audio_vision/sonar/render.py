# SPDX-License-Identifier: Apache-2.0
"""A room layout rendered into the camera: depth prior (REP 118 z-depth, m), class prior and confidence."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from audio_vision.core.camera import PinholeCamera
from audio_vision.core.classes import ClassTable
from audio_vision.core.frames import R_BODY_FROM_OPTICAL

from .layout import CEILING, FLOOR, WALL, Plane, RoomLayout, horizontal


#: render_layout's defaults, the shipped render (scripts measuring other settings name these)
OPEN_REACH_M = 4.0               # an unmeasured side's boundary, m from the array
OPEN_CEILING_ABOVE_M = 1.0       # where no ceiling was measured, walls drawn up to this height above the array (m)
WALL_REACH_M = 5.0               # a wall measured farther than this (m) is not drawn


@dataclass(frozen=True)
class LayoutPrior:
    depth: np.ndarray        # (H, W) float32, m along the optical axis; NaN where no plane is seen
    classes: np.ndarray      # (H, W) uint8 class ids (wall / floor / ceiling); 255 where no plane
    confidence: np.ndarray   # (H, W) float32 in [0, 1]: the confidence of the plane each pixel sees


def render_layout(layout: RoomLayout, camera: PinholeCamera, class_table: ClassTable,
                  open_reach_m: float = OPEN_REACH_M, orientless_open: bool = True,
                  open_ceiling_above_m: float | None = OPEN_CEILING_ABOVE_M,
                  wall_reach_m: float | None = WALL_REACH_M) -> LayoutPrior:
    """Cast every pixel's ray (optical frame, z = 1, so the ray parameter is z-depth) against the planes.

    A box side whose wall was not measured (its echo did not stand out of the clutter: a far or absorbing
    wall) is an unknown boundary ``open_reach_m`` from the array: the floor and ceiling are rendered up to it,
    what lies beyond has no prior (NaN, class 255, confidence 0) rather than a floor running to the horizon.
    Where no wall at all was measured the box's orientation is unknown too, so the boundary is ``open_reach_m``
    in every horizontal direction (a cylinder about the array), not a square of some yaw whose corners reach
    1.4 times as far (``orientless_open`` false draws that square, at the layout's yaw or 0, as revision 3 of the
    front-end did: scripts/sonar_thresholds.py measures both).

    Where no ceiling was measured, the walls run up to an unknown ceiling: ``open_ceiling_above_m`` (m above the
    array) bounds what is drawn, what lies higher has no prior (None: the walls drawn to any height, revision 4;
    scripts/sonar_thresholds.py measures it, docs/SONAR.md "Ceiling confirmation").

    A wall measured farther than ``wall_reach_m`` is not drawn: its side is open at ``open_reach_m`` like an
    unmeasured one (revision 6; None draws every wall, revision 5). This pipeline's recordings give none there (the
    farthest wall measured in data/default's train and validation windows is nearer), another engine's do, and many
    of those are multiples taken for a wall, drawn metres behind the real one (docs/SONAR.md, "Walls beyond the
    reach").
    """
    if not open_reach_m > 0:
        raise ValueError(f'open_reach_m must be > 0 (m from the array), got {open_reach_m}')
    if open_ceiling_above_m is not None and not open_ceiling_above_m > 0:
        raise ValueError(f'open_ceiling_above_m must be > 0 (m above the array) or None, got {open_ceiling_above_m}')
    if wall_reach_m is not None and not wall_reach_m > 0:
        raise ValueError(f'wall_reach_m must be > 0 (m from the array) or None, got {wall_reach_m}')
    if wall_reach_m is not None:
        layout = dataclasses.replace(layout, planes=tuple(p for p in layout.planes
                                                          if not (p.label == WALL and p.offset > wall_reach_m)))
    rays = camera.pixel_rays() @ R_BODY_FROM_OPTICAL.T                    # (H, W, 3) in the array frame
    shape = rays.shape[:2]
    depth = np.full(shape, np.inf)
    classes = np.full(shape, 255, dtype=np.uint8)
    confidence = np.zeros(shape, dtype=np.float32)
    orientless = orientless_open and not layout.get(WALL)
    for plane in list(layout.planes) + ([] if orientless else _open_sides(layout, open_reach_m)):
        den = rays @ plane.n
        with np.errstate(divide='ignore', invalid='ignore'):
            t = np.where(den > 1e-9, plane.offset / den, np.inf)
        nearer = t < depth
        depth = np.where(nearer, t, depth)
        known = plane.label in (FLOOR, CEILING, WALL)
        classes[nearer] = class_table.id_of(plane.label) if known else 255
        confidence[nearer] = plane.confidence if known else 0.0
    if orientless:                           # the open boundary as a cylinder: the ray's horizontal reach
        across = np.hypot(rays[..., 0], rays[..., 1])
        with np.errstate(divide='ignore'):
            t = np.where(across > 1e-9, open_reach_m / across, np.inf)
        nearer = t < depth
        depth = np.where(nearer, t, depth)
        classes[nearer] = 255
        confidence[nearer] = 0.0
    if open_ceiling_above_m is not None and not layout.get(CEILING):
        with np.errstate(invalid='ignore'):
            above = rays[..., 2] * depth > open_ceiling_above_m        # the hit's height above the array (t = z-depth)
        classes[above] = 255
        confidence[above] = 0.0
    depth = np.where(np.isfinite(depth) & (classes != 255), depth, np.nan).astype(np.float32)
    return LayoutPrior(depth, classes, confidence)


@dataclass(frozen=True)
class ReflectorMap:
    depth: np.ndarray        # (H, W) float32 z-depth (m) of the reflector splatted there, NaN elsewhere
    strength: np.ndarray     # (H, W) float32 its contrast (CFAR ratio) x the splat weight, 0 elsewhere


def render_reflectors(layout: RoomLayout, camera: PinholeCamera) -> ReflectorMap:
    """The residual reflectors placed into the image: each projected to its sub-pixel position and splatted
    bilinearly onto the four pixels around it (the weights keep the sub-pixel position; a pixel two reflectors
    share keeps the nearer one's depth and the sum of their strengths). A reflector behind the camera or out of
    the image is not drawn."""
    depth = np.full((camera.height, camera.width), np.inf)
    strength = np.zeros((camera.height, camera.width), dtype=np.float32)
    K = camera.K
    for r in layout.reflectors:
        x = R_BODY_FROM_OPTICAL.T @ np.asarray(r.position, dtype=np.float64)       # optical frame
        if x[2] <= 1e-6:
            continue
        u, v = K[0, 0] * x[0] / x[2] + K[0, 2], K[1, 1] * x[1] / x[2] + K[1, 2]
        u0, v0 = int(math.floor(u)), int(math.floor(v))
        for du, dv in ((0, 0), (1, 0), (0, 1), (1, 1)):
            col, row = u0 + du, v0 + dv
            if 0 <= col < camera.width and 0 <= row < camera.height:
                w = (1.0 - abs(u - col)) * (1.0 - abs(v - row))
                strength[row, col] += np.float32(w * r.contrast)
                depth[row, col] = min(depth[row, col], x[2])
    return ReflectorMap(np.where(np.isfinite(depth), depth, np.nan).astype(np.float32), strength)


def _open_sides(layout: RoomLayout, reach: float) -> list[Plane]:
    """Stand-ins (label 'open') at ``reach`` for the box sides (yaw + 90 deg k, yaw 0 if none) with no measured
    wall."""
    yaw = layout.yaw_deg or 0.0
    walls = [w.n for w in layout.get(WALL)]
    out = []
    for k in range(4):
        n = horizontal(yaw + 90.0 * k)
        if not any(float(n @ w) > math.cos(math.radians(45.0)) for w in walls):
            out.append(Plane('open', tuple(n), reach, confidence=0.0))
    return out


@dataclass(frozen=True)
class PlanePatch:
    """The part of a plane the layout bounds, for display (RViz markers): a rectangle in the array frame."""

    label: str
    center: np.ndarray        # (3,) m
    axes: np.ndarray          # (3, 3) rows: in-plane u, in-plane v, normal (a right-handed rotation's columns)
    half_size: np.ndarray     # (2,) half extents along u and v, m
    confidence: float


def plane_patches(layout: RoomLayout, default_half_size: float = 3.0) -> list[PlanePatch]:
    """Each plane of ``layout`` as the rectangle the other planes cut out of it (a shoebox: walls between floor
    and ceiling, each between its two neighbours); where a bounding plane was not measured, the rectangle
    reaches ``default_half_size`` from the foot of the array's perpendicular."""
    planes = list(layout.planes)

    def extent(point: np.ndarray, direction: np.ndarray) -> tuple[float, float]:
        """How far the planes facing +-direction lie from ``point`` (the default where none does)."""
        lo, hi = -default_half_size, default_half_size
        for q in planes:
            cos = float(q.n @ direction)
            if abs(cos) > 0.9:                         # a plane across this direction bounds it
                reach = (q.offset - float(q.n @ point)) / cos
                lo, hi = (lo, reach) if reach > 0 else (reach, hi)
        return lo, hi

    # floor and ceiling are cut along the walls' yaw (the box's axes), or the array's x without walls
    yaw = math.radians(layout.yaw_deg or 0.0)
    along_walls = np.array([math.cos(yaw), math.sin(yaw), 0.0])
    patches = []
    for p in planes:
        n = p.n
        u = np.cross([0.0, 0.0, 1.0], n)
        u = u / np.linalg.norm(u) if np.linalg.norm(u) > 1e-6 else along_walls
        v = np.cross(n, u)
        foot = p.offset * n
        (u0, u1), (v0, v1) = extent(foot, u), extent(foot, v)
        center = foot + 0.5 * (u0 + u1) * u + 0.5 * (v0 + v1) * v
        patches.append(PlanePatch(p.label, center, np.stack([u, v, n]),
                                  np.array([0.5 * (u1 - u0), 0.5 * (v1 - v0)]), float(p.confidence)))
    return patches
