# SPDX-License-Identifier: Apache-2.0
"""2-D occupancy mapping from depth images (+ per-pixel confidence) and camera poses (pure: numpy only).

Every depth pixel (REP 118 z-depth, NaN invalid) is a ray from the camera centre to its 3-D point, in the
map frame through the camera pose (4x4, optical frame in the map frame). Only the part of a ray inside the
height band ``[z_min, z_max]`` (map z) matters: the cells its 2-D projection crosses are observed free,
and the cell of its end point is observed occupied when the end point lies in the band and closer than
``max_range`` (a longer ray is cut at ``max_range`` and only clears). Per frame every cell is updated at
most once (OctoMap's rule: occupied wins over free within one frame), by its log-odds increment times the
largest confidence of the rays that observed it; log-odds are clamped to ``[l_min, l_max]``.

With a semantic label per pixel (``labels``, e.g. the predicted segmentation), only pixels of an obstacle
class (``obstacle_classes``: wall, person, appliance, alarm) may mark their end point occupied; floor and
ceiling pixels only clear the cells their ray crosses. This keeps a depth error on the floor (an end point
lifted into the height band) from filling the room's interior with obstacles. Pixels labelled
:data:`~audio_vision.core.classes.IGNORE_LABEL` (unknown) fall back to the height band alone. With
``obstacle_any_height`` an obstacle pixel's end point marks its cell occupied at any height (walls and bodies
stand on the floor: their footprint is below every point of them), still only within ``max_range``.

    grid = OccupancyGrid2D(GridConfig(resolution=0.05, width_m=12, height_m=12, origin=(-1, -1)))
    grid.integrate(depth, K, T_map_camera, confidence)
    grid.occupancy_values()    # int8 (rows = y, cols = x): -1 unknown, 0..100 (nav_msgs/OccupancyGrid data)
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from audio_vision.core.classes import DEFAULT_CLASS_TABLE, IGNORE_LABEL

POSE_REJECT_REASONS = ('missing', 'non_finite', 'not_rigid', 'stale')


@dataclass(frozen=True)
class GridConfig:
    """Grid geometry and sensor model (all lengths in metres, map frame)."""

    resolution: float = 0.05
    width_m: float = 12.0                 # along map x
    height_m: float = 12.0                # along map y
    origin: tuple[float, float] = (-1.0, -1.0)   # map xy of the corner of cell (row 0, col 0)
    z_min: float = 0.1                    # height band of obstacles (map z)
    z_max: float = 2.0
    max_range: float = 8.0
    free_fraction: float = 1.0            # a ray clears only this first part of its length (noisy depth)
    l_occ: float = 0.85                   # log-odds increment of an occupied observation (confidence 1)
    l_free: float = -0.4                  # ... of a free observation
    l_min: float = -4.0
    l_max: float = 4.0
    pixel_stride: int = 1                 # use every n-th pixel in both directions
    min_confidence: float = 0.0           # pixels with a lower confidence are not fused
    occupied_threshold: float = 0.65      # probability above which a cell counts as occupied (evaluation)
    free_threshold: float = 0.35          # ... below which as free
    # with labels: classes whose pixels may mark their end point occupied (the others only clear)
    obstacle_classes: tuple[int, ...] = tuple(DEFAULT_CLASS_TABLE.id_of(n)
                                              for n in ('wall', 'person', 'appliance', 'alarm'))
    obstacle_any_height: bool = False     # with labels: an obstacle pixel's end point counts outside the band

    def __post_init__(self):
        if not (self.resolution > 0 and self.width_m > 0 and self.height_m > 0):
            raise ValueError('resolution, width_m and height_m must be positive')
        if not self.z_max > self.z_min:
            raise ValueError(f'z_max ({self.z_max}) must exceed z_min ({self.z_min})')
        if not (self.max_range > 0 and self.l_occ > 0 > self.l_free and self.l_min < 0 < self.l_max):
            raise ValueError('need max_range > 0, l_occ > 0 > l_free and l_min < 0 < l_max')
        if not 0.0 < self.free_fraction <= 1.0:
            raise ValueError(f'free_fraction must be in (0, 1], got {self.free_fraction}')
        if self.pixel_stride < 1 or not 0.0 <= self.min_confidence <= 1.0:
            raise ValueError('pixel_stride must be >= 1 and min_confidence in [0, 1]')

    @property
    def shape(self) -> tuple[int, int]:
        """(rows along y, cols along x)."""
        return int(math.ceil(self.height_m / self.resolution)), int(math.ceil(self.width_m / self.resolution))


def check_pose(T, stamp_ns: int | None = None, reference_ns: int | None = None,
               max_age_s: float | None = None) -> str | None:
    """Why a camera pose must not be fused (one of :data:`POSE_REJECT_REASONS`), or None when it is usable.

    ``T``: 4x4 pose or None (missing). ``stamp_ns`` (the pose's time) vs ``reference_ns`` (the depth image's):
    older or newer by more than ``max_age_s`` is stale.
    """
    if T is None:
        return 'missing'
    T = np.asarray(T, dtype=np.float64)
    if T.shape != (4, 4) or not np.isfinite(T).all():
        return 'non_finite'
    R = T[:3, :3]
    if not (np.allclose(R @ R.T, np.eye(3), atol=1e-3) and abs(np.linalg.det(R) - 1.0) < 1e-3
            and np.allclose(T[3], [0, 0, 0, 1], atol=1e-9)):
        return 'not_rigid'
    if max_age_s is not None and stamp_ns is not None and reference_ns is not None:
        if abs(int(reference_ns) - int(stamp_ns)) > max_age_s * 1e9:
            return 'stale'
    return None


class OccupancyGrid2D:
    """Log-odds occupancy grid fused from depth images (see the module docstring)."""

    def __init__(self, config: GridConfig | None = None):
        self.config = config or GridConfig()
        self.logodds = np.zeros(self.config.shape, dtype=np.float32)
        self.observed = np.zeros(self.config.shape, dtype=bool)
        self.frames = 0

    # ------------------------------------------------------------------------------ geometry
    def cell_of(self, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(N, 2) map xy -> (row, col, inside) integer cell indices and an inside-the-grid mask."""
        c = self.config
        col = np.floor((xy[:, 0] - c.origin[0]) / c.resolution).astype(np.int64)
        row = np.floor((xy[:, 1] - c.origin[1]) / c.resolution).astype(np.int64)
        rows, cols = c.shape
        inside = (row >= 0) & (row < rows) & (col >= 0) & (col < cols)
        return row, col, inside

    def cell_centers(self) -> tuple[np.ndarray, np.ndarray]:
        """(rows, cols) arrays of the map x and y of every cell centre."""
        c = self.config
        rows, cols = c.shape
        x = c.origin[0] + (np.arange(cols) + 0.5) * c.resolution
        y = c.origin[1] + (np.arange(rows) + 0.5) * c.resolution
        return np.meshgrid(x, y)

    # ------------------------------------------------------------------------------ fusion
    def integrate(self, depth: np.ndarray, K: np.ndarray, T_map_camera: np.ndarray,
                  confidence: np.ndarray | None = None, labels: np.ndarray | None = None) -> dict:
        """Fuse one depth image (H, W) m with intrinsics ``K`` (3x3) seen from ``T_map_camera`` (4x4,
        REP 103 optical frame in the map frame); ``confidence`` (H, W) in [0, 1] weights every pixel;
        ``labels`` (H, W) class ids decide which pixels may mark an obstacle (see the module docstring).
        Returns counts: rays used, cells updated free / occupied. Raises ValueError on a bad pose."""
        reason = check_pose(T_map_camera)
        if reason:
            raise ValueError(f'camera pose rejected: {reason}')
        c = self.config
        depth = np.asarray(depth, dtype=np.float64)
        s = c.pixel_stride
        H, W = depth.shape
        v, u = np.mgrid[0:H:s, 0:W:s]
        d = depth[::s, ::s]
        w = np.ones_like(d) if confidence is None else np.asarray(confidence, np.float64)[::s, ::s]
        if w.shape != d.shape:
            raise ValueError(f'confidence shape {np.shape(confidence)} differs from depth {depth.shape}')
        lab = None if labels is None else np.asarray(labels)[::s, ::s]
        if lab is not None and lab.shape != d.shape:
            raise ValueError(f'labels shape {np.shape(labels)} differs from depth {depth.shape}')
        with np.errstate(invalid='ignore'):
            ok = np.isfinite(d) & (d > 0) & np.isfinite(w) & (w > 0) & (w >= c.min_confidence)
        d, u, v, w = d[ok], u[ok], v[ok], np.clip(w[ok], 0.0, 1.0)
        if lab is not None:
            lab = lab[ok]
        K = np.asarray(K, dtype=np.float64)
        rays = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones_like(d)], axis=1)  # REP 103
        pts_cam = rays * d[:, None]
        R, t = T_map_camera[:3, :3], T_map_camera[:3, 3]
        end = pts_cam @ R.T + t                                           # (N, 3) map frame
        # cut at max_range (euclidean distance along the ray)
        dist = np.linalg.norm(pts_cam, axis=1)
        cut = dist > c.max_range
        frac = np.where(cut, c.max_range / np.maximum(dist, 1e-9), 1.0)
        end = t + (end - t) * frac[:, None]
        hit = ~cut & (end[:, 2] >= c.z_min) & (end[:, 2] <= c.z_max)
        if lab is not None:                   # floor / ceiling pixels only clear; unknown ones: the band decides
            obstacle, unknown = np.isin(lab, c.obstacle_classes), lab == IGNORE_LABEL
            hit = ((~cut & obstacle) if c.obstacle_any_height else hit & obstacle) | (hit & unknown)
        # the part [ta, tb] of each segment t -> end inside the height band
        dz = end[:, 2] - t[2]
        with np.errstate(divide='ignore', invalid='ignore'):
            t_lo = np.where(np.abs(dz) > 1e-12, (c.z_min - t[2]) / dz, -np.inf)
            t_hi = np.where(np.abs(dz) > 1e-12, (c.z_max - t[2]) / dz, np.inf)
        in_band_flat = (t[2] >= c.z_min) & (t[2] <= c.z_max)
        ta = np.where(np.abs(dz) > 1e-12, np.clip(np.minimum(t_lo, t_hi), 0, 1), 0.0 if in_band_flat else 1.0)
        tb = np.where(np.abs(dz) > 1e-12, np.clip(np.maximum(t_lo, t_hi), 0, 1), 1.0 if in_band_flat else 0.0)
        tb = np.minimum(tb, c.free_fraction)
        free_w = np.zeros(c.shape, dtype=np.float64)
        occ_w = np.zeros(c.shape, dtype=np.float64)
        span = tb > ta
        if span.any():
            a2 = t[:2] + (end[span, :2] - t[:2]) * ta[span, None]
            b2 = t[:2] + (end[span, :2] - t[:2]) * tb[span, None]
            length = np.linalg.norm(b2 - a2, axis=1)
            n = np.maximum(np.ceil(length / (0.5 * c.resolution)).astype(np.int64), 1)
            ray = np.repeat(np.arange(len(n)), n)
            offs = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)
            f = (offs + 0.5) / np.repeat(n, n)
            pts = a2[ray] + (b2 - a2)[ray] * f[:, None]
            row, col, inside = self.cell_of(pts)
            np.maximum.at(free_w, (row[inside], col[inside]), w[span][ray[inside]])
        if hit.any():
            row, col, inside = self.cell_of(end[hit, :2])
            np.maximum.at(occ_w, (row[inside], col[inside]), w[hit][inside])
        occupied = occ_w > 0
        free = (free_w > 0) & ~occupied
        self.logodds[occupied] += (c.l_occ * occ_w[occupied]).astype(np.float32)
        self.logodds[free] += (c.l_free * free_w[free]).astype(np.float32)
        np.clip(self.logodds, c.l_min, c.l_max, out=self.logodds)
        self.observed |= occupied | free
        self.frames += 1
        return {'rays': int(ok.sum()), 'free_cells': int(free.sum()), 'occupied_cells': int(occupied.sum())}

    # ------------------------------------------------------------------------------ output
    def probabilities(self) -> np.ndarray:
        """(rows, cols) occupancy probability; 0.5 where never observed."""
        return 1.0 / (1.0 + np.exp(-self.logodds.astype(np.float64)))

    def occupancy_values(self) -> np.ndarray:
        """int8 (rows, cols): -1 unknown (never observed), else round(100 * probability)."""
        out = np.rint(100.0 * self.probabilities()).astype(np.int8)
        out[~self.observed] = -1
        return out

    def occupied_mask(self) -> np.ndarray:
        return self.observed & (self.probabilities() > self.config.occupied_threshold)

    def free_mask(self) -> np.ndarray:
        return self.observed & (self.probabilities() < self.config.free_threshold)


# ------------------------------------------------------------------------------------------ evaluation

def occupied_f1(pred_occupied: np.ndarray, true_occupied: np.ndarray, resolution: float,
                tolerance_m: float = 0.2) -> dict:
    """Occupied-cell precision / recall / F1 with a distance tolerance: a predicted occupied cell is correct
    when a true occupied cell lies within ``tolerance_m``, a true one is found when a predicted one does."""
    from scipy import ndimage
    pred, true = np.asarray(pred_occupied, bool), np.asarray(true_occupied, bool)
    if pred.shape != true.shape:
        raise ValueError(f'grid shapes differ: {pred.shape} vs {true.shape}')
    dist_to_true = ndimage.distance_transform_edt(~true) * resolution if true.any() else np.full(true.shape, np.inf)
    dist_to_pred = ndimage.distance_transform_edt(~pred) * resolution if pred.any() else np.full(pred.shape, np.inf)
    tp_pred = int((pred & (dist_to_true <= tolerance_m + 1e-9)).sum())
    tp_true = int((true & (dist_to_pred <= tolerance_m + 1e-9)).sum())
    precision = tp_pred / pred.sum() if pred.any() else 0.0
    recall = tp_true / true.sum() if true.any() else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return {'precision': float(precision), 'recall': float(recall), 'f1': float(f1),
            'predicted_cells': int(pred.sum()), 'true_cells': int(true.sum()), 'tolerance_m': tolerance_m}


def iou(pred: np.ndarray, true: np.ndarray) -> float:
    pred, true = np.asarray(pred, bool), np.asarray(true, bool)
    union = (pred | true).sum()
    return float((pred & true).sum() / union) if union else 0.0
