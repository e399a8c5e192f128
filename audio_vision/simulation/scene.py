# SPDX-License-Identifier: Apache-2.0
"""`Scene` (room, robot pose, sources) and the random scene sampler.

Everything is drawn from `np.random.default_rng([seed, tag])` so a scene is a pure function of
its seed; the room and the robot/sources use different tags, which lets the dataset engine put
several robot poses into the same room. Whether a source is silent (`Source.silent`, drawn with
its class's `silent_fraction`) comes from a third stream, so adding it moved no other draw:
a seed gives the same room, pose, bodies and timbres as before silent bodies existed.
"""
from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass, field

import numpy as np

from audio_vision.core.classes import ClassTable

from .config import SimConfig
from .geometry import array_to_room, camera_to_room

SURFACES = ('west', 'east', 'south', 'north', 'floor', 'ceiling')  # x=0, x=L, y=0, y=W, z=0, z=H
_ROOM_TAG, _POSE_TAG, _SILENT_TAG = 0x524F4F4D, 0x504F5345, 0x53494C54  # 'ROOM', 'POSE', 'SILT'


@dataclass(frozen=True)
class Body:
    """A source's visible body standing on the floor (z from 0 to height)."""

    shape: str                       # 'cylinder' | 'box'
    center: tuple[float, float]      # xy on the floor, room frame
    size: tuple[float, ...]          # cylinder (radius, height); box (sx, sy, height)
    yaw: float = 0.0                 # box rotation about z, rad

    @property
    def height(self) -> float:
        return float(self.size[-1])

    @property
    def footprint_radius(self) -> float:
        """Radius of the smallest circle around the footprint (for clearance checks)."""
        if self.shape == 'cylinder':
            return float(self.size[0])
        return 0.5 * math.hypot(self.size[0], self.size[1])

    def to_dict(self) -> dict:
        return {'shape': self.shape, 'center': list(self.center), 'size': list(self.size), 'yaw': self.yaw}

    @classmethod
    def from_dict(cls, d: dict) -> 'Body':
        return cls(d['shape'], tuple(d['center']), tuple(d['size']), float(d.get('yaw', 0.0)))


@dataclass(frozen=True)
class Source:
    class_name: str
    class_id: int
    position: tuple[float, float, float]   # acoustic emitter, room frame, m (inside the body)
    body: Body
    level_db_spl: float                    # RMS at 1 m
    signal_seed: int                       # timbre parameters of the procedural signal
    in_fov: bool                           # placed inside the camera's view
    silent: bool = False                   # emits nothing; its body is still seen and still scatters

    def to_dict(self) -> dict:
        return {'class_name': self.class_name, 'class_id': self.class_id,
                'position': list(self.position), 'body': self.body.to_dict(),
                'level_db_spl': self.level_db_spl, 'signal_seed': self.signal_seed,
                'in_fov': self.in_fov, 'silent': self.silent}

    @classmethod
    def from_dict(cls, d: dict) -> 'Source':
        # Datasets written before silent bodies existed have no 'silent' key: they all sounded.
        return cls(d['class_name'], int(d['class_id']), tuple(d['position']), Body.from_dict(d['body']),
                   float(d['level_db_spl']), int(d['signal_seed']), bool(d['in_fov']),
                   bool(d.get('silent', False)))


@dataclass(frozen=True)
class Room:
    size: tuple[float, float, float]       # (length x, width y, height z), m
    materials: dict[str, str]              # surface -> pyroomacoustics material name
    rt60: float                            # Eyring estimate, mean of 500 Hz and 1 kHz bands, s
    seed: int

    def to_dict(self) -> dict:
        return {'size': list(self.size), 'materials': dict(self.materials), 'rt60': self.rt60,
                'seed': self.seed}

    @classmethod
    def from_dict(cls, d: dict) -> 'Room':
        return cls(tuple(d['size']), dict(d['materials']), float(d['rt60']), int(d['seed']))


@dataclass(frozen=True)
class Scene:
    room: Room
    robot_position: tuple[float, float, float]   # array centre, room frame, m
    robot_yaw: float                             # rad, about room z
    sources: tuple[Source, ...] = field(default_factory=tuple)
    seed: int = 0

    @property
    def array_pose(self) -> np.ndarray:
        return array_to_room(self.robot_position, self.robot_yaw)

    @property
    def camera_pose(self) -> np.ndarray:
        return camera_to_room(self.robot_position, self.robot_yaw)

    def to_dict(self) -> dict:
        return {'room': self.room.to_dict(), 'robot_position': list(self.robot_position),
                'robot_yaw': self.robot_yaw, 'sources': [s.to_dict() for s in self.sources],
                'seed': self.seed}

    @classmethod
    def from_dict(cls, d: dict) -> 'Scene':
        return cls(Room.from_dict(d['room']), tuple(d['robot_position']), float(d['robot_yaw']),
                   tuple(Source.from_dict(s) for s in d['sources']), int(d['seed']))


def surface_areas(size) -> dict[str, float]:
    L, W, H = size
    return {'west': W * H, 'east': W * H, 'south': L * H, 'north': L * H, 'floor': L * W, 'ceiling': L * W}


def eyring_rt60(size, absorption: dict[str, float], air_m: float = 0.0, c: float = 343.0) -> float:
    """Eyring reverberation time for per-surface energy absorption coefficients (one band)."""
    areas = surface_areas(size)
    S = sum(areas.values())
    V = size[0] * size[1] * size[2]
    alpha = sum(areas[k] * absorption[k] for k in SURFACES) / S
    alpha = min(alpha, 0.999)
    return 24.0 * math.log(10.0) * V / (c * (-S * math.log(1.0 - alpha) + 4.0 * air_m * V))


@functools.lru_cache(maxsize=None)
def _mid_band_absorption(name: str) -> float:
    """Mean database absorption at 500 Hz and 1 kHz (the bands RT60 is usually quoted at)."""
    import pyroomacoustics as pra
    data = pra.Material(name).energy_absorption
    coeffs = dict(zip(data['center_freqs'], data['coeffs']))
    return 0.5 * (coeffs[500] + coeffs[1000])


def sample_room(cfg: SimConfig, seed: int) -> Room:
    rc = cfg.room
    rng = np.random.default_rng([seed, _ROOM_TAG])
    size = (float(rng.uniform(*rc.length_range)), float(rng.uniform(*rc.width_range)),
            float(rng.uniform(*rc.height_range)))
    best = None
    for _ in range(rc.max_material_draws):
        materials = {s: str(rng.choice(rc.wall_materials)) for s in SURFACES[:4]}
        materials['floor'] = str(rng.choice(rc.floor_materials))
        materials['ceiling'] = str(rng.choice(rc.ceiling_materials))
        rt60 = eyring_rt60(size, {k: _mid_band_absorption(v) for k, v in materials.items()}, 0.0008)
        # Keep the draw closest to the range if none falls inside it.
        miss = max(rc.rt60_range[0] - rt60, rt60 - rc.rt60_range[1], 0.0)
        if best is None or miss < best[0]:
            best = (miss, materials, rt60)
        if miss == 0.0:
            break
    return Room(size, best[1], float(best[2]), int(seed))


def sample_scene(cfg: SimConfig, class_table: ClassTable, seed: int, room: Room | None = None) -> Scene:
    """A robot pose and 0..3 sources in `room` (sampled from `seed` if not given)."""
    if room is None:
        room = sample_room(cfg, seed)
    rng = np.random.default_rng([seed, _POSE_TAG])
    L, W, H = room.size
    rc = cfg.robot
    position = (float(rng.uniform(rc.wall_clearance, L - rc.wall_clearance)),
                float(rng.uniform(rc.wall_clearance, W - rc.wall_clearance)),
                float(rng.uniform(rc.height_range[0], min(rc.height_range[1], H - rc.ceiling_clearance))))
    yaw = float(rng.uniform(-math.pi, math.pi))

    sc = cfg.sources
    names = list(sc.classes)
    weights = np.array([sc.classes[n].weight for n in names], dtype=np.float64)
    count = int(rng.integers(sc.count_range[0], sc.count_range[1] + 1)) if names and weights.sum() > 0 else 0
    sources: list[Source] = []
    silent_rng = np.random.default_rng([seed, _SILENT_TAG])   # its own stream: no other draw moves
    for _ in range(count):
        name = names[int(rng.choice(len(names), p=weights / weights.sum()))]
        source = _place_source(cfg, class_table, rng, room, position, yaw, name, sources)
        if source is not None:
            silent = bool(silent_rng.random() < sc.classes[name].silent_fraction)
            sources.append(dataclasses.replace(source, silent=silent) if silent else source)
    return Scene(room, position, yaw, tuple(sources), int(seed))


def _place_source(cfg: SimConfig, class_table: ClassTable, rng: np.random.Generator, room: Room,
                  robot_xyz, robot_yaw: float, name: str, placed: list[Source]) -> Source | None:
    sc = cfg.sources
    cc = sc.classes[name]
    L, W, _ = room.size
    want_fov = bool(rng.random() < sc.in_fov_fraction)
    size = tuple(float(v) for v in cc.size)
    level = float(rng.uniform(*cc.level_db_spl))
    signal_seed = int(rng.integers(0, 2**62))
    half_fov = math.radians(cfg.camera.hfov_deg) / 2.0
    # Try inside the view first (if wanted), then anywhere; drop the source if nothing fits.
    for in_fov in ((True, False) if want_fov else (False,)):
        for _ in range(sc.max_attempts):
            yaw = float(rng.uniform(-math.pi, math.pi)) if cc.shape == 'box' else 0.0
            body = Body(cc.shape, (0.0, 0.0), size, yaw)
            r = body.footprint_radius
            if in_fov:
                # Bearing first, then a distance that fits before the wall along that bearing
                # (uniform distances would mostly land outside when the robot faces a near wall).
                d_min, d_max = sc.in_fov_distance
                bearing = robot_yaw + float(rng.uniform(-half_fov, half_fov))
                d_max = min(d_max, _free_distance(robot_xyz, bearing, L, W) - r - sc.wall_clearance)
                if d_max < d_min:
                    continue
                d = float(rng.uniform(d_min, d_max))
                # Keep the whole body inside the view: pull the bearing in by its angular radius.
                margin = max(half_fov - math.atan2(r, d), 0.0)
                bearing = robot_yaw + max(-margin, min(margin, bearing - robot_yaw))
                xy = (robot_xyz[0] + d * math.cos(bearing), robot_xyz[1] + d * math.sin(bearing))
            else:
                m = r + sc.wall_clearance
                if 2 * m >= min(L, W):
                    break
                xy = (float(rng.uniform(m, L - m)), float(rng.uniform(m, W - m)))
            if _fits(cfg, room, robot_xyz, xy, r, placed):
                body = Body(cc.shape, (float(xy[0]), float(xy[1])), size, yaw)
                position = (float(xy[0]), float(xy[1]), float(cc.emitter_height))
                return Source(name, class_table.id_of(name), position, body, level, signal_seed, in_fov)
    return None


def _free_distance(robot_xyz, bearing: float, L: float, W: float) -> float:
    """Horizontal distance from the robot to the room boundary along `bearing`."""
    dx, dy = math.cos(bearing), math.sin(bearing)
    tx = ((L if dx > 0 else 0.0) - robot_xyz[0]) / dx if abs(dx) > 1e-12 else math.inf
    ty = ((W if dy > 0 else 0.0) - robot_xyz[1]) / dy if abs(dy) > 1e-12 else math.inf
    return min(tx, ty)


def _fits(cfg: SimConfig, room: Room, robot_xyz, xy, radius: float, placed: list[Source]) -> bool:
    L, W, _ = room.size
    m = radius + cfg.sources.wall_clearance
    if not (m <= xy[0] <= L - m and m <= xy[1] <= W - m):
        return False
    if math.hypot(xy[0] - robot_xyz[0], xy[1] - robot_xyz[1]) < radius + cfg.robot.body_clearance:
        return False
    for other in placed:
        gap = math.hypot(xy[0] - other.body.center[0], xy[1] - other.body.center[1])
        if gap < radius + other.body.footprint_radius + cfg.sources.body_gap:
            return False
    return True
