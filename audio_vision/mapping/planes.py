# SPDX-License-Identifier: Apache-2.0
"""The room's wall planes, fused over a drive, rasterised straight into a 2-D grid (pure: numpy only).

The sonar front-end measures each window's walls to millimetres (docs/SONAR.md); :class:`~audio_vision.sonar.
fusion.LayoutFusion` fuses them in the odometry frame, so a wall seen from several poses is one plane. Rendering
that fused layout as depth and ray-casting it (the ``layout_fused`` map of docs/MAPPING.md) smears a wall over
the cells its rays' end points scatter into; here each fused wall is instead drawn once, as one line of cells:

- **Occupied**: each fused wall's line, bounded where the neighbouring measured walls cut it (the box's
  corners). A side whose wall was never measured is open ``open_reach_m`` beyond each visited pose along its
  direction: a wall next to it is drawn only as far as that boundary.
- **Free**: the cells swept from the poses the robot visited, i.e. the union over the poses of the box bounded by
  the measured walls and, on an unmeasured side, by that pose's open boundary (all around: the sonar hears
  every direction). With four walls measured it is the box's interior.
- **Unknown**: everything else: behind the walls, and beyond the open boundary of an unmeasured side. The
  boundary is 0.5 m, not the 4 m up to which :func:`~audio_vision.sonar.render_layout` draws the floor: an
  absorbing wall returns no echo however near (docs/SONAR.md), so a missing echo does not clear space, while
  the robot's own path does; on validation drives 0.5 m also mapped best (docs/MAPPING.md).
- **Bodies** are not planes and are not drawn: the residual reflectors fused over a drive marked almost only
  cells off the bodies (docs/MAPPING.md gives the measurement).

    mapper = PlaneMapper()
    for layout, pose in drive:          # pose: 4 x 4, the window's array frame -> the odometry (map) frame
        mapper.add(layout, pose)
    grid = mapper.grid(GridConfig(...))  # an OccupancyGrid2D: occupied_mask(), free_mask(), occupancy_values()
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from audio_vision.sonar.fusion import FusedPlane, LayoutFusion
from audio_vision.sonar.layout import WALL, RoomLayout, horizontal

from .occupancy import GridConfig, OccupancyGrid2D


@dataclass(frozen=True)
class PlaneMapConfig:
    """Parameters of :class:`PlaneMapper` (lengths in metres, odometry frame)."""

    open_reach_m: float = 0.5            # an unmeasured side is open this far beyond each visited pose
    max_windows: int = 4096              # layouts fused (LayoutFusion): the whole drive
    match_m: float = 0.15                # walls of one direction this close are one (LayoutFusion)
    min_wall_windows: int = 3            # a fused wall measured in fewer windows is taken as not measured

    def __post_init__(self):
        if not (self.open_reach_m > 0 and self.max_windows >= 1 and self.match_m > 0 and self.min_wall_windows >= 1):
            raise ValueError('need open_reach_m > 0, max_windows >= 1, match_m > 0 and min_wall_windows >= 1')


class PlaneMapper:
    """``add`` each window's :class:`RoomLayout` with its array pose; ``grid`` the map (module docstring)."""

    def __init__(self, config: PlaneMapConfig | None = None):
        self.config = config or PlaneMapConfig()
        self.fusion = LayoutFusion(self.config.max_windows, self.config.match_m)
        self._positions: deque[np.ndarray] = deque(maxlen=self.config.max_windows)   # the array's, odometry frame

    @property
    def windows(self) -> int:
        return len(self._positions)

    def add(self, layout: RoomLayout, pose: np.ndarray | None = None) -> None:
        """``pose``: 4 x 4, the window's array frame -> the odometry frame (None: the array has not moved). A
        window's echoes are summed over its chirp periods, so on a moving robot its pose is the array's at the
        window's middle, not at its end (its stamp): at 0.5 m/s and 45 deg/s that is 0.25 m and 22 deg apart."""
        self.fusion.add(layout, pose)
        T = np.eye(4) if pose is None else np.asarray(pose, dtype=np.float64)
        self._positions.append(T[:3, 3].copy())

    def walls(self) -> tuple[list[FusedPlane | None], float | None]:
        """The fused wall of each box direction yaw + 90 k (k = 0..3; None: never measured) and the box's yaw
        (deg, odometry frame; None without any wall)."""
        planes, yaw = self.fusion.planes()
        walls: list[FusedPlane | None] = [None] * 4
        if yaw is None:
            return walls, None
        for f in planes:
            if f.label == WALL and f.windows >= self.config.min_wall_windows:
                walls[box_side(f.normal, yaw)] = f
        return walls, yaw

    def grid(self, config: GridConfig) -> OccupancyGrid2D:
        """The map on ``config``'s grid: occupied cells at the clamp ``l_max``, free ones at ``l_min``, the rest
        unknown (never observed)."""
        grid = OccupancyGrid2D(config)
        if not self._positions:
            return grid
        walls, yaw = self.walls()
        occupied, free = rasterise_box(grid, walls, yaw, np.array(self._positions)[:, :2], self.config.open_reach_m)
        grid.logodds[occupied] = config.l_max
        grid.logodds[free] = config.l_min
        grid.observed = occupied | free
        grid.frames = self.windows
        return grid


def box_side(normal: np.ndarray, yaw_deg: float) -> int:
    """The box direction k (0..3) of a horizontal normal: the nearest of yaw + 90 k."""
    az = math.degrees(math.atan2(normal[1], normal[0]))
    return int(round(((az - yaw_deg) % 360.0) / 90.0)) % 4


def rasterise_box(grid: OccupancyGrid2D, walls, yaw_deg: float | None, positions: np.ndarray,
                  open_reach_m: float) -> tuple[np.ndarray, np.ndarray]:
    """(occupied, free) cells of a box whose side k is ``walls[k]`` (a plane {x : n.x = offset} in the grid's
    frame, n pointing out of the room; None: not measured, open ``open_reach_m`` beyond each of the
    ``positions`` (N, 2) along its direction), seen from ``positions``. Occupied: each wall's line where it is
    inside (or on) every other side, for some position; free: the cell centres strictly inside every side, for
    some position, off the wall lines."""
    shape = grid.config.shape
    occupied = np.zeros(shape, dtype=bool)
    if yaw_deg is None:          # no wall measured at all: every side open (a square around each pose)
        yaw_deg, walls = 0.0, [None] * 4
    normals = [horizontal(yaw_deg + 90.0 * k)[:2] for k in range(4)]
    for k, w in enumerate(walls):        # a fused wall's own normal (exactly the box direction by LayoutFusion)
        if w is not None:
            normals[k] = np.asarray(w.normal[:2], dtype=np.float64) / np.linalg.norm(w.normal[:2])
    measured = [k for k in range(4) if walls[k] is not None]
    open_sides = [k for k in range(4) if walls[k] is None]
    # the open boundary of side k reaches (over all positions) as far as n_k . p + reach for some p
    reach = {k: positions @ normals[k] + open_reach_m for k in open_sides}

    def inside(points: np.ndarray, skip: int | None, tol: float) -> np.ndarray:
        """Points (M, 2) inside every measured side but ``skip`` (within ``tol``) and, for some position,
        inside its open boundaries."""
        ok = np.ones(len(points), dtype=bool)
        for k in measured:
            if k != skip:
                ok &= points @ normals[k] <= walls[k].offset + tol
        if open_sides and ok.any():
            a = np.stack([points[ok] @ normals[k] for k in open_sides], axis=1)       # (M', S)
            b = np.stack([reach[k] for k in open_sides], axis=1)                     # (N, S)
            seen = np.zeros(len(a), dtype=bool)
            for start in range(0, len(b), 64):                                       # bounded memory
                seen |= np.all(a[:, None, :] <= b[None, start:start + 64, :] + tol, axis=2).any(axis=1)
            ok[np.flatnonzero(ok)[~seen]] = False
        return ok

    xs, ys = grid.cell_centers()
    free = inside(np.stack([xs.ravel(), ys.ravel()], axis=1), None, -1e-9).reshape(shape)
    c = grid.config
    corners = np.array([[c.origin[0] + i * c.width_m, c.origin[1] + j * c.height_m] for i in (0, 1) for j in (0, 1)])
    step = c.resolution / 4
    for k in measured:
        f, n = walls[k], normals[k]
        along = np.array([-n[1], n[0]])
        s = (corners - f.offset * n) @ along           # the line sampled across the whole grid
        s = np.arange(s.min() - c.resolution, s.max() + c.resolution + step, step)
        pts = f.offset * n + s[:, None] * along
        pts = pts[inside(pts, k, 1e-9)]
        row, col, ok = grid.cell_of(pts)
        occupied[row[ok], col[ok]] = True
    return occupied, free & ~occupied
