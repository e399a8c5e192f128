# SPDX-License-Identifier: Apache-2.0
"""Layouts of consecutive windows fused into one room: a robot that stands still, or one that drives with
odometry (each window's array pose in a common frame).

One window measures the planes whose echo stands out of the clutter from where the array is: near walls,
not far ones (docs/SONAR.md, "walls by distance"). As the robot moves, other walls come near; in the
odometry frame a plane is the same plane from every pose. What a window measures precisely is where the
echo was reflected (the foot of the perpendicular from the array: millimetres) and the box's yaw (one for
all walls: a fraction of a degree); a single wall's own normal is a few degrees off at p90, which a lever
arm of metres would turn into decimetres. So, in the odometry frame: the box's yaw is the contrast-weighted
circular mean (mod 90 deg) of every wall seen, each wall is put on the nearest box direction through its
measured foot point, and walls of one direction whose offsets agree within ``match_m`` are one wall
(contrast-weighted mean). A wall seen from poses at least 0.5 m apart along it has a line through its foot
points: where there are such lines, the box's yaw is read off them instead (weighted by baseline squared).
Floor and ceiling (the array is level) are their contrast-weighted mean offsets.

The robot drove through every pose it was added at, so a wall with one of those poses behind it (a body's or
a multiple's echo taken for a wall in one window) is not the room's: of each direction the best-supported wall
that has every pose in front of it is kept. Without odometry (pose None) the array is taken not to have moved.

:class:`DriveFusion` is the causal form a stream (and the training data made like it) uses: each window's layout fused
with the drive's keyframes so far, a keyframe kept for every ``keyframe_m`` travelled (a robot standing still keeps
refreshing its last keyframe rather than fusing one spot many times over).
"""
from __future__ import annotations

import dataclasses
import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from .layout import CEILING, FLOOR, WALL, Plane, RoomLayout, horizontal


@dataclass(frozen=True)
class Observation:
    label: str
    normal: np.ndarray        # (3,) unit, odometry frame
    foot: np.ndarray          # (3,) the plane's point nearest the array, odometry frame
    contrast: float


@dataclass(frozen=True)
class FusedPlane:
    label: str
    normal: np.ndarray        # (3,) odometry frame
    offset: float             # m from the odometry origin
    weight: float             # sum of the contrasts that agree on it
    windows: int


class LayoutFusion:
    """``add`` each window's :class:`RoomLayout` with its pose, ``layout`` the fused room at a pose."""

    def __init__(self, max_windows: int = 32, match_m: float = 0.15):
        if max_windows < 1:
            raise ValueError(f'max_windows must be >= 1, got {max_windows}')
        self.match_m = match_m
        self._windows: deque[list[Observation]] = deque(maxlen=max_windows)
        self._positions: deque[np.ndarray] = deque(maxlen=max_windows)     # the array's, odometry frame

    @property
    def windows(self) -> int:
        return len(self._windows)

    def reset(self) -> None:
        self._windows.clear()
        self._positions.clear()

    def add(self, layout: RoomLayout, pose: np.ndarray | None = None, replace_last: bool = False) -> None:
        """``pose``: 4 x 4, the window's array frame -> the odometry frame; None: the array has not moved.
        ``replace_last``: the window takes the place of the last one added (if any)."""
        R, t = _rotation_translation(pose)
        if replace_last and self._windows:
            self._windows.pop()
            self._positions.pop()
        self._windows.append([Observation(p.label, R @ p.n, R @ (p.offset * p.n) + t, max(p.contrast, 1e-6))
                              for p in layout.planes])
        self._positions.append(t)

    def planes(self) -> tuple[list[FusedPlane], float | None]:
        """The fused planes in the odometry frame and the box's yaw there (deg, mod 90)."""
        obs = [o for window in self._windows for o in window]
        out = []
        for label in (FLOOR, CEILING):
            out += self._clusters([o for o in obs if o.label == label], label, None)[:1]
        walls = [o for o in obs if o.label == WALL]
        if not walls:
            return out, None
        yaw = _mean_yaw_mod90([math.degrees(math.atan2(o.normal[1], o.normal[0])) for o in walls],
                              [o.contrast for o in walls])
        # A wall seen from two poses gives two foot points on it: the line through them fixes its direction
        # far better than any window's yaw (millimetres over the baseline). Where there is such a line, the
        # box's yaw is re-read off the lines (weighted by baseline squared) and the walls re-placed on it.
        lines = [line for k in range(4) for g in self._group(_facing(walls, yaw, k), _along(yaw, k))
                 if (line := _foot_line(g))]
        if lines:
            yaw = _mean_yaw_mod90([a for a, _ in lines], [b * b for _, b in lines])
        for k in range(4):
            out += [f for f in self._clusters(_facing(walls, yaw, k), WALL, horizontal(yaw + 90.0 * k))
                    if self._in_front_of_every_pose(f)][:1]
        return out, yaw

    def layout(self, pose: np.ndarray | None = None) -> RoomLayout:
        """The fused room in the array frame at ``pose``; a plane behind the array there is dropped."""
        R, t = _rotation_translation(pose)
        fused, yaw_world = self.planes()
        top = {label: max((f.weight for f in fused if f.label == label), default=1.0)
               for label in (FLOOR, CEILING, WALL)}
        planes = []
        for f in fused:
            d = f.offset - float(f.normal @ t)
            if d <= 0:
                continue
            planes.append(Plane(f.label, tuple(float(v) for v in R.T @ f.normal), float(d),
                                confidence=float(f.weight / top[f.label]), contrast=float(f.weight / f.windows)))
        yaw = None
        if yaw_world is not None:
            yaw = (yaw_world - math.degrees(math.atan2(R[1, 0], R[0, 0]))) % 90.0
        failed = tuple(f'{label}: not measured in any of {self.windows} windows' for label in (FLOOR, CEILING)
                       if not any(p.label == label for p in planes))
        return RoomLayout(tuple(planes), yaw, failed)

    def _in_front_of_every_pose(self, plane: 'FusedPlane', margin_m: float = 0.05) -> bool:
        return all(float(plane.normal @ p) < plane.offset + margin_m for p in self._positions)

    def _group(self, obs: list[Observation], n_of) -> list[list[Observation]]:
        """Observations grouped by offset along ``n_of(o)`` (within ``match_m`` of the group's weighted mean),
        strongest first."""
        groups: list[list[Observation]] = []
        # per group its members' (contrast, offset) and weighted mean offset (as _mean_offset computes it),
        # updated only when the group grows: the fusion runs per window in the node
        members: list[tuple[list[float], list[float]]] = []
        means: list[float] = []
        for o in sorted(obs, key=lambda o: -o.contrast):
            d = float(n_of(o) @ o.foot)
            for k, g in enumerate(groups):
                if abs(means[k] - d) <= self.match_m:
                    g.append(o)
                    break
            else:
                k = len(groups)
                groups.append([o])
                members.append(([], []))
                means.append(0.0)
            w_k, d_k = members[k]
            w_k.append(o.contrast)
            d_k.append(d)
            w = np.array(w_k)
            means[k] = float(np.sum(w * np.array(d_k)) / np.sum(w))
        return groups

    def _clusters(self, obs: list[Observation], label: str, normal: np.ndarray | None) -> list[FusedPlane]:
        """Observations of one plane direction grouped by offset (within ``match_m`` of the group's weighted
        mean, strongest first), best supported first. ``normal``: the box direction the
        walls are put on (None: the observations' own, floor and ceiling)."""
        n_of = (lambda o: o.normal) if normal is None else _along_normal(normal)
        groups = self._group(obs, n_of)
        out = []
        for g in groups:
            n = normal if normal is not None else _unit(sum(o.normal * o.contrast for o in g))
            out.append(FusedPlane(label, n, _mean_offset(g, n_of), sum(o.contrast for o in g), len(g)))
        return sorted(out, key=lambda f: -f.weight)


class DriveFusion:
    """A drive's layouts fused causally: :meth:`fuse` each window's layout with its pose (in order) and get the
    room of the drive so far in that window's array frame, with the window's own residual reflectors.

    A window is added as a keyframe when the array has moved at least ``keyframe_m`` from where the last keyframe
    was added; otherwise it takes the last keyframe's place (the newest measurement of the same spot), so the
    fused room is always the keyframes before plus this window. At most ``max_keyframes`` are kept (the oldest
    go). A window without a pose (no odometry) restarts the drive and is its room alone; :meth:`reset`
    restarts it (a new room, an odometry jump)."""

    def __init__(self, keyframe_m: float = 0.3, max_keyframes: int = 16, match_m: float = 0.15):
        if keyframe_m < 0:
            raise ValueError(f'keyframe_m must be >= 0, got {keyframe_m}')
        self.keyframe_m = keyframe_m
        self.fusion = LayoutFusion(max_windows=max_keyframes, match_m=match_m)
        self._anchor: np.ndarray | None = None     # where the last keyframe was added, odometry frame
        self.drive = None                          # the id of the drive fused now (:meth:`fuse`)

    @property
    def keyframes(self) -> int:
        return self.fusion.windows

    def reset(self) -> None:
        self.fusion.reset()
        self._anchor = None

    def fuse(self, layout: RoomLayout, pose: np.ndarray | None, drive=None) -> RoomLayout:
        """``layout`` (the window's own, array frame) fused with the drive so far; ``pose``: 4 x 4 array frame ->
        odometry frame, or None; ``drive``: the id of the drive the window belongs to (any hashable): the fusion
        restarts where it changes (a new room, an odometry reset)."""
        if drive != self.drive:
            self.reset()
            self.drive = drive
        if pose is None:          # fused alone, as a drive's first window is (the same form of room either way)
            self.reset()
            alone = LayoutFusion(match_m=self.fusion.match_m)
            alone.add(layout)
            fused = alone.layout()
        else:
            _, t = _rotation_translation(pose)
            moved = self._anchor is None or float(np.linalg.norm(t - self._anchor)) >= self.keyframe_m
            self.fusion.add(layout, pose, replace_last=not moved)
            if moved:
                self._anchor = t
            fused = self.fusion.layout(pose)
        # the residual reflectors stay the window's own: echoes of this moment (bodies move), not the room's
        return dataclasses.replace(fused, reflectors=layout.reflectors)


def _mean_offset(group: list[Observation], n_of) -> float:
    w = np.array([o.contrast for o in group])
    return float(np.sum(w * np.array([n_of(o) @ o.foot for o in group])) / np.sum(w))


def _foot_line(group: list[Observation], min_baseline_m: float = 0.5) -> tuple[float, float] | None:
    """(the wall's normal azimuth from the line through its foot points, deg; the baseline, m), or None when the
    feet span less than ``min_baseline_m``."""
    feet = np.array([o.foot[:2] for o in group])
    if len(feet) < 2:
        return None
    centred = feet - feet.mean(axis=0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    baseline = float(np.ptp(centred @ vt[0]))
    if baseline < min_baseline_m:
        return None
    normal = np.array([-vt[0][1], vt[0][0]])
    return math.degrees(math.atan2(normal[1], normal[0])), baseline


_COS_45 = math.cos(math.radians(45.0))


def _facing(walls: list[Observation], yaw: float, k: int) -> list[Observation]:
    """The walls whose normal lies within 45 deg of the box direction yaw + 90 k."""
    n = horizontal(yaw + 90.0 * k)
    return [o for o in walls if float(o.normal @ n) > _COS_45]


def _along(yaw: float, k: int):
    return _along_normal(horizontal(yaw + 90.0 * k))


def _along_normal(n: np.ndarray):
    """``n_of`` for :meth:`LayoutFusion._group`: every observation measured along the one normal ``n``."""
    return lambda _: n


def _mean_yaw_mod90(azimuths_deg, weights) -> float:
    """The weighted circular mean of azimuths modulo 90 deg (the box's four directions are one yaw)."""
    w = np.asarray(weights, dtype=np.float64)
    ang = np.radians(4.0 * np.asarray(azimuths_deg, dtype=np.float64))
    return math.degrees(math.atan2(np.sum(w * np.sin(ang)), np.sum(w * np.cos(ang)))) / 4.0 % 90.0


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def _rotation_translation(pose: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    if pose is None:
        return np.eye(3), np.zeros(3)
    T = np.asarray(pose, dtype=np.float64)
    if T.shape != (4, 4):
        raise ValueError(f'pose must be a 4 x 4 transform, got shape {T.shape}')
    if not np.isfinite(T).all():
        raise ValueError('pose has non-finite entries (NaN or inf): drop the window instead of fusing it')
    return T[:3, :3], T[:3, 3]
