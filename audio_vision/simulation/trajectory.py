"""Trajectory mode: the robot drives a smooth closed path through one room (for mapping).

    sim = Simulator()
    drive = TrajectoryDrive.sample(sim, seed=3, duration_s=60.0)  # room, sources clear of the path, path
    audio = drive.record(update_s=0.25)                            # (C, N) continuous audio, moving array
    pose = drive.trajectory.pose_at(12.5)                          # Pose2D(x, y, yaw, v, omega)
    gt = drive.render_at(12.5)                                     # ground truth at that pose

Path: an ellipse centred in the room, ``clearance`` from the walls, driven at constant speed along its
arc length with the robot facing along the path. Speed is the lower of ``max_speed`` (0.5 m/s) and what
keeps the yaw rate (speed x curvature) at most ``max_yaw_rate_deg`` (45 deg/s).

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


class EllipseTrajectory:
    """Constant-speed drive along an ellipse (centre ``cx, cy``, semi-axes ``a`` along x, ``b`` along y)."""

    def __init__(self, cx: float, cy: float, a: float, b: float, max_speed: float = MAX_SPEED,
                 max_yaw_rate_deg: float = MAX_YAW_RATE_DEG, samples: int = 4096):
        if not (a > 0 and b > 0):
            raise ValueError(f'ellipse semi-axes must be positive, got {a}, {b}')
        if not (max_speed > 0 and max_yaw_rate_deg > 0):
            raise ValueError('max_speed and max_yaw_rate_deg must be positive')
        self.cx, self.cy, self.a, self.b = float(cx), float(cy), float(a), float(b)
        u = np.linspace(0.0, 2.0 * math.pi, samples + 1)
        pts = np.stack([self.a * np.cos(u), self.b * np.sin(u)], axis=1)
        self._u = u
        self._s = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(pts, axis=0), axis=1))])
        self.length = float(self._s[-1])
        # curvature of an ellipse: a b / (a^2 sin^2 u + b^2 cos^2 u)^(3/2); largest at the ends of the major axis
        kappa_max = max(self.a, self.b) / min(self.a, self.b) ** 2
        self.speed = float(min(max_speed, math.radians(max_yaw_rate_deg) / kappa_max))
        self.lap_s = self.length / self.speed

    def _u_at(self, t: np.ndarray) -> np.ndarray:
        s = np.mod(np.asarray(t, dtype=np.float64) * self.speed, self.length)
        return np.interp(s, self._s, self._u)

    def pose_at(self, t: float) -> Pose2D:
        """The pose at time ``t`` seconds (periodic, one lap every ``lap_s``)."""
        u = float(self._u_at(t))
        dx, dy = -self.a * math.sin(u), self.b * math.cos(u)            # d/du, counter-clockwise
        ddx, ddy = -self.a * math.cos(u), -self.b * math.sin(u)
        curvature = (dx * ddy - dy * ddx) / (dx * dx + dy * dy) ** 1.5
        return Pose2D(self.cx + self.a * math.cos(u), self.cy + self.b * math.sin(u), math.atan2(dy, dx),
                      self.speed, self.speed * curvature)

    def poses(self, times) -> list[Pose2D]:
        return [self.pose_at(float(t)) for t in np.atleast_1d(times)]

    @classmethod
    def in_room(cls, size, clearance: float = 0.7, **kwargs) -> 'EllipseTrajectory':
        """The ellipse inscribed in the room's floor with ``clearance`` to every wall (semi-axes >= 0.2 m)."""
        L, W = float(size[0]), float(size[1])
        a, b = max(L / 2 - clearance, 0.2), max(W / 2 - clearance, 0.2)
        return cls(L / 2, W / 2, a, b, **kwargs)


class StaticTrajectory:
    """A robot that stands still at (x, y, yaw): the trajectory interface with zero speed."""

    def __init__(self, x: float, y: float, yaw: float):
        self.pose = Pose2D(float(x), float(y), float(yaw), 0.0, 0.0)
        self.speed, self.lap_s = 0.0, float('inf')

    def pose_at(self, t: float) -> Pose2D:
        return self.pose

    def poses(self, times) -> list[Pose2D]:
        return [self.pose for _ in np.atleast_1d(times)]


def _path_clearance(traj: EllipseTrajectory, xy, n: int = 720) -> float:
    u = np.linspace(0, 2 * math.pi, n, endpoint=False)
    px, py = traj.cx + traj.a * np.cos(u), traj.cy + traj.b * np.sin(u)
    return float(np.min(np.hypot(px - xy[0], py - xy[1])))


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
    trajectory: EllipseTrajectory | StaticTrajectory
    duration_s: float
    seed: int

    @classmethod
    def sample(cls, sim: Simulator, seed: int, duration_s: float = 60.0, clearance: float = 0.7,
               body_clearance: float = 0.5, **trajectory_kwargs) -> 'TrajectoryDrive':
        """Room and sources of ``sim.sample_scene(seed)``; sources whose body comes within ``body_clearance``
        of the path are dropped (the robot does not drive through them)."""
        scene = sim.sample_scene(seed)
        traj = EllipseTrajectory.in_room(scene.room.size, clearance, **trajectory_kwargs)
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
        signals, _ = sim.emitter_signals(self.scene, history + first.latency + n_out + fade, history, self.seed)
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


__all__ = ['EllipseTrajectory', 'StaticTrajectory', 'Pose2D', 'TrajectoryDrive', 'crossfade_weights', 'MAX_SPEED',
           'MAX_YAW_RATE_DEG']
