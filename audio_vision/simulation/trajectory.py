# SPDX-License-Identifier: Apache-2.0
"""Trajectory mode: the robot drives a smooth closed path through one room (for mapping).

    sim = Simulator()
    drive = TrajectoryDrive.sample(sim, seed=3, duration_s=60.0)  # room, sources clear of the path, path
    audio = drive.record(update_s=0.25)                            # (C, N) continuous audio, moving array
    pose = drive.trajectory.pose_at(12.5)                          # Pose2D(x, y, yaw, v, omega)
    gt = drive.render_at(12.5)                                     # ground truth at that pose

Path: a rectangle with rounded corners (0.6 m radius) ``clearance`` inside the walls (or an ellipse), driven
at constant speed along its arc length, the robot facing along the path. Speed is the lower of ``max_speed``
(0.5 m/s) and what keeps the yaw rate (speed x curvature) at most ``max_yaw_rate_deg`` (45 deg/s).

Audio: the room response follows the pose. Every ``update_s`` the RIRs of the pose at the middle of the
update interval are computed (sources stay put; the array and its chirp speaker move); each interval is
rendered steady-state (full history) with its RIRs and neighbouring intervals are cross-faded over
``fade_s`` with complementary raised-cosine weights (they sum to 1), so no step in level or waveform
(click) appears at a pose update. The diffuse tail is drawn from the same seed at every pose, so the
cross-faded signals are coherent and their sum keeps the level. Self-noise and mic gains are drawn once.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from .acoustics import convolve_steady
from .render import GroundTruth
from .scene import Scene
from .simulator import _NOISE_TAG, Simulator

MAX_SPEED = 0.5            # m/s
MAX_YAW_RATE_DEG = 45.0    # deg/s


@dataclass(frozen=True)
class Pose2D:
    """Robot (array centre) pose on the floor at one time: room-frame x, y (m), yaw (rad), speed, yaw rate."""

    x: float
    y: float
    yaw: float
    v: float
    omega: float


class LoopTrajectory:
    """Constant-speed drive along a closed path given densely: points ``xy`` (N, 2) in driving order (the
    last joins the first), heading ``yaw`` (N,) and signed curvature (N,) at each point. The speed is the
    lower of ``max_speed`` and ``max_yaw_rate / max |curvature|``, so both limits hold everywhere."""

    def __init__(self, xy: np.ndarray, yaw: np.ndarray, curvature: np.ndarray, max_speed: float = MAX_SPEED,
                 max_yaw_rate_deg: float = MAX_YAW_RATE_DEG):
        if not (max_speed > 0 and max_yaw_rate_deg > 0):
            raise ValueError('max_speed and max_yaw_rate_deg must be positive')
        xy = np.asarray(xy, dtype=np.float64)
        closed = np.vstack([xy, xy[:1]])
        self._xy = closed
        self._yaw = np.unwrap(np.append(yaw, yaw[0]))
        self._yaw[-1] = self._yaw[-2] + np.angle(np.exp(1j * (yaw[0] - self._yaw[-2])))
        self._kappa = np.append(curvature, curvature[0])
        self._s = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(closed, axis=0), axis=1))])
        self.length = float(self._s[-1])
        kappa_max = float(np.abs(curvature).max())
        self.speed = float(min(max_speed, math.radians(max_yaw_rate_deg) / kappa_max if kappa_max > 0 else max_speed))
        self.lap_s = self.length / self.speed

    def pose_at(self, t: float) -> Pose2D:
        """The pose at time ``t`` seconds (periodic, one lap every ``lap_s``)."""
        s = float(np.mod(t * self.speed, self.length))
        x, y = (float(np.interp(s, self._s, self._xy[:, k])) for k in (0, 1))
        yaw = float(np.angle(np.exp(1j * np.interp(s, self._s, self._yaw))))
        i = min(int(np.searchsorted(self._s, s, side='right')) - 1, len(self._kappa) - 1)
        return Pose2D(x, y, yaw, self.speed, self.speed * float(self._kappa[i]))

    def poses(self, times) -> list[Pose2D]:
        return [self.pose_at(float(t)) for t in np.atleast_1d(times)]

    @classmethod
    def ellipse(cls, cx: float, cy: float, a: float, b: float, samples: int = 4096, **kwargs) -> 'LoopTrajectory':
        """Counter-clockwise along the ellipse with centre (cx, cy) and semi-axes a (x), b (y)."""
        if not (a > 0 and b > 0):
            raise ValueError(f'ellipse semi-axes must be positive, got {a}, {b}')
        u = np.linspace(0.0, 2.0 * math.pi, samples, endpoint=False)
        dx, dy, ddx, ddy = -a * np.sin(u), b * np.cos(u), -a * np.cos(u), -b * np.sin(u)
        kappa = (dx * ddy - dy * ddx) / (dx * dx + dy * dy) ** 1.5
        return cls(np.stack([cx + a * np.cos(u), cy + b * np.sin(u)], 1), np.arctan2(dy, dx), kappa, **kwargs)

    @classmethod
    def rounded_rectangle(cls, x0: float, y0: float, x1: float, y1: float, radius: float, step: float = 0.01,
                          **kwargs) -> 'LoopTrajectory':
        """Counter-clockwise around the rectangle [x0, x1] x [y0, y1] with its corners rounded to ``radius``
        (straight sides joined by quarter circles: position and heading continuous)."""
        r = min(radius, (x1 - x0) / 2, (y1 - y0) / 2)
        if not r > 0:
            raise ValueError('the rectangle must have positive size and radius')
        pts, yaws, kappas = [], [], []
        corners = [(x1 - r, y0 + r, -math.pi / 2), (x1 - r, y1 - r, 0.0), (x0 + r, y1 - r, math.pi / 2),
                   (x0 + r, y0 + r, math.pi)]                       # centre of each corner arc, start angle
        starts = [(x0 + r, y0), (x1, y0 + r), (x1 - r, y1), (x0, y1 - r)]  # start of each straight side
        for (sx, sy), (cx, cy, a0) in zip(starts, corners):
            heading = a0 + math.pi / 2
            ex, ey = cx + r * math.cos(a0), cy + r * math.sin(a0)
            n = max(int(math.hypot(ex - sx, ey - sy) / step), 1)
            f = np.arange(n) / n
            pts.append(np.stack([sx + (ex - sx) * f, sy + (ey - sy) * f], 1))
            yaws.append(np.full(n, heading))
            kappas.append(np.zeros(n))
            m = max(int(0.5 * math.pi * r / step), 2)
            ang = a0 + 0.5 * math.pi * np.arange(m) / m
            pts.append(np.stack([cx + r * np.cos(ang), cy + r * np.sin(ang)], 1))
            yaws.append(ang + math.pi / 2)
            kappas.append(np.full(m, 1.0 / r))
        return cls(np.concatenate(pts), np.concatenate(yaws), np.concatenate(kappas), **kwargs)

    @classmethod
    def in_room(cls, size, clearance: float = 0.7, radius: float = 0.6, **kwargs) -> 'LoopTrajectory':
        """The rounded rectangle ``clearance`` inside the room's walls (at least 0.2 m across), corner
        radius ``radius``: at 0.6 m the 45 deg/s limit allows 0.47 m/s in the corners."""
        L, W = float(size[0]), float(size[1])
        cx, cy = L / 2, W / 2
        hx, hy = max(L / 2 - clearance, 0.1), max(W / 2 - clearance, 0.1)
        return cls.rounded_rectangle(cx - hx, cy - hy, cx + hx, cy + hy, radius, **kwargs)


class StaticTrajectory:
    """A robot that stands still at (x, y, yaw): the trajectory interface with zero speed."""

    def __init__(self, x: float, y: float, yaw: float):
        self.pose = Pose2D(float(x), float(y), float(yaw), 0.0, 0.0)
        self.speed, self.lap_s = 0.0, float('inf')

    def pose_at(self, t: float) -> Pose2D:
        return self.pose

    def poses(self, times) -> list[Pose2D]:
        return [self.pose for _ in np.atleast_1d(times)]


def _path_clearance(traj: LoopTrajectory, xy) -> float:
    return float(np.min(np.hypot(traj._xy[:, 0] - xy[0], traj._xy[:, 1] - xy[1])))


def crossfade_weights(n: int) -> np.ndarray:
    """(n,) rising raised-cosine weights; ``w + w[::-1] == 1`` (complementary)."""
    if n <= 0:
        return np.zeros(0)
    return 0.5 - 0.5 * np.cos(math.pi * (np.arange(n) + 0.5) / n)


@dataclass
class TrajectoryDrive:
    """One room, its sources, and the robot's path through it."""

    sim: Simulator
    scene: Scene                     # the room and sources; its robot pose is replaced along the path
    trajectory: LoopTrajectory | StaticTrajectory
    duration_s: float
    seed: int

    @classmethod
    def sample(cls, sim: Simulator, seed: int, duration_s: float = 60.0, clearance: float = 0.7,
               body_clearance: float = 0.5, **trajectory_kwargs) -> 'TrajectoryDrive':
        """Room and sources of ``sim.sample_scene(seed)``; sources whose body comes within ``body_clearance``
        of the path are dropped (the robot does not drive through them)."""
        scene = sim.sample_scene(seed)
        traj = LoopTrajectory.in_room(scene.room.size, clearance, **trajectory_kwargs)
        keep = tuple(s for s in scene.sources
                     if _path_clearance(traj, s.body.center) > s.body.footprint_radius + body_clearance)
        return cls(sim, replace(scene, sources=keep), traj, float(duration_s), int(seed))

    def scene_at(self, t: float) -> Scene:
        p = self.trajectory.pose_at(t)
        z = self.scene.robot_position[2]
        return replace(self.scene, robot_position=(p.x, p.y, z), robot_yaw=p.yaw)

    def render_at(self, t: float) -> GroundTruth:
        return self.sim.render(self.scene_at(t))

    def floor_plan(self) -> dict:
        """What a 2-D map should show: the room rectangle and the source bodies' footprints (room frame)."""
        return {'size': list(self.scene.room.size[:2]), 'bodies': [s.body.to_dict() for s in self.scene.sources]}

    def record(self, update_s: float = 0.25, fade_s: float = 0.05, progress=None) -> np.ndarray:
        """(C, N) float32 audio of ``duration_s`` with the array moving along the path (see the module doc):
        :meth:`record_clean` plus the mic gain mismatch and self-noise (drawn once for the whole drive)."""
        audio = self.record_clean(update_s, fade_s, progress).astype(np.float32)
        sim, cfg = self.sim, self.sim.cfg
        noise_rng = np.random.default_rng([int(self.seed), _NOISE_TAG])
        gains_db = noise_rng.normal(0.0, cfg.noise.gain_mismatch_db, sim.num_channels) \
            if cfg.noise.gain_mismatch_db > 0 else np.zeros(sim.num_channels)
        audio *= (10.0 ** (gains_db / 20.0)).astype(np.float32)[:, None]
        snr_db = float(noise_rng.uniform(*cfg.noise.snr_db_range))
        noise_rms = 10.0 ** (cfg.recording.sensitivity_dbfs / 20.0) * 10.0 ** (-snr_db / 20.0)
        audio += (noise_rms * noise_rng.standard_normal(audio.shape)).astype(np.float32)
        return audio

    def record_loop(self, update_s: float = 0.25, fade_s: float = 0.05) -> np.ndarray:
        """Audio for endless playback: :meth:`record` of ``duration_s`` plus ``fade_s``, the extra samples
        (the continuation of the last ones) cross-faded into the first ones, so playing the result in a
        loop has no seam. Use whole laps (:meth:`laps_duration`) so the pose is continuous at the loop too."""
        fs = self.sim.sample_rate
        n, fade = int(round(self.duration_s * fs)), int(round(fade_s * fs))
        longer = replace(self, duration_s=(n + fade) / fs).record(update_s, fade_s)
        audio = longer[:, :n].copy()
        w = crossfade_weights(fade).astype(np.float32)
        audio[:, :fade] = w * audio[:, :fade] + w[::-1] * longer[:, n:n + fade]
        return audio

    @staticmethod
    def laps_duration(trajectory, at_least_s: float) -> float:
        """The duration of the smallest whole number of laps (>= 1) that is at least ``at_least_s``
        (``at_least_s`` itself for a standing robot)."""
        if not math.isfinite(trajectory.lap_s):
            return float(at_least_s)
        return max(1, math.ceil(at_least_s / trajectory.lap_s - 1e-9)) * trajectory.lap_s

    def record_clean(self, update_s: float = 0.25, fade_s: float = 0.05, progress=None) -> np.ndarray:
        """(C, N) float64 noise-free mic signals of the moving array (pose-following RIRs, cross-faded)."""
        sim, fs = self.sim, self.sim.sample_rate
        n_out = int(round(self.duration_s * fs))
        hop = int(round(update_s * fs))
        fade = min(int(round(fade_s * fs)), hop)
        if hop < 1 or n_out < 1:
            raise ValueError('duration_s and update_s must be at least one sample')
        n_seg = int(math.ceil(n_out / hop))
        # every pose's RIRs must fit the history: size it from the first pose, with margin for longer tails
        first = sim.room_response(self.scene_at(0.5 * update_s), self.seed)
        history = 2 * first.rirs.shape[-1]
        # (the length does not depend on fade_s: some source generators draw the whole signal at once)
        signals, _ = sim.emitter_signals(self.scene, history + first.latency + n_out + hop, history, self.seed)
        # output sample i (time i / fs) is at index i + half of `out`; interval k covers output samples
        # [k hop - half, (k + 1) hop - half + fade): ramps up over its first `fade` samples (k > 0) while
        # interval k - 1 ramps down over the same samples, and ramps down over its last `fade` samples
        out = np.zeros((sim.num_channels, n_seg * hop + fade), dtype=np.float64)
        w_up = crossfade_weights(fade)
        half = fade // 2
        for k in range(n_seg):
            response = first if k == 0 else sim.room_response(self.scene_at((k + 0.5) * update_s), self.seed)
            start = k * hop - half
            # signal index `history` is emitted at t = 0; RIR sample j arrives (j - latency) / fs later
            seg = convolve_steady(signals, response.rirs, history + response.latency + start, hop + fade)
            w = np.ones(hop + fade)
            if k > 0:
                w[:fade] = w_up
            if k < n_seg - 1:
                w[hop:] = w_up[::-1]
            out[:, start + half:start + half + hop + fade] += seg * w
            if progress is not None:
                progress(k + 1, n_seg)
        return out[:, half:half + n_out]


__all__ = ['LoopTrajectory', 'StaticTrajectory', 'Pose2D', 'TrajectoryDrive', 'crossfade_weights', 'MAX_SPEED',
           'MAX_YAW_RATE_DEG']
