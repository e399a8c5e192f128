# SPDX-License-Identifier: Apache-2.0
"""`SimConfig`: every number of the simulator, with `config/simulation.yaml` as its YAML twin.

Each section is a small frozen dataclass; `SimConfig.from_yaml` refuses unknown keys so a typo
in a YAML file fails loudly instead of silently keeping a default.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Pools of pyroomacoustics material-database names, one pool per surface type. The absorption
# coefficients (7 octave bands, 125 Hz..8 kHz) come from the database itself, so rooms get real
# frequency-dependent absorption. 'reverb_chamber' and audience/seating entries are left out:
# they are not surfaces a robot meets in homes, offices and labs.
WALL_MATERIALS = (
    'hard_surface', 'brickwork', 'rough_concrete', 'unpainted_concrete', 'rough_lime_wash',
    'smooth_brickwork_flush_pointing', 'brick_wall_rough', 'ceramic_tiles', 'limestone_wall',
    'plasterboard', 'wooden_lining', 'glass_3mm', 'glass_window', 'double_glazing_30mm',
    'wood_1.6cm', 'plywood_thin', 'wood_16mm', 'wooden_door', 'gypsum_board', 'facing_brick',
    'panel_fabric_covered_6pcf', 'acoustical_plaster_25mm', 'rockwool_50mm_80kgm3',
    'curtains_cotton_0.5', 'curtains_densely_woven', 'curtains_velvet', 'blinds_half_open',
)
FLOOR_MATERIALS = (
    'concrete_floor', 'marble_floor', 'ceramic_tiles', 'linoleum_on_concrete', 'stage_floor',
    'audience_floor', 'wood_16mm', 'carpet_cotton', 'carpet_tufted_9.5mm', 'carpet_thin',
    'carpet_6mm_closed_cell_foam', 'carpet_soft_10mm', 'carpet_hairy', 'carpet_rubber_5mm',
    'felt_5mm',
)
CEILING_MATERIALS = (
    'hard_surface', 'rough_lime_wash', 'plasterboard', 'ceiling_plasterboard',
    'ceiling_fibre_absorber', 'ceiling_fissured_tile', 'ceiling_perforated_gypsum_board',
    'ceiling_melamine_foam', 'ceiling_metal_panel', 'wooden_lining',
)

SOURCE_CLASSES = ('person', 'appliance', 'alarm')


@dataclass(frozen=True)
class RoomConfig:
    length_range: tuple[float, float] = (3.0, 10.0)   # x extent, m
    width_range: tuple[float, float] = (3.0, 10.0)    # y extent, m
    height_range: tuple[float, float] = (2.4, 4.0)    # z extent, m
    wall_materials: tuple[str, ...] = WALL_MATERIALS
    floor_materials: tuple[str, ...] = FLOOR_MATERIALS
    ceiling_materials: tuple[str, ...] = CEILING_MATERIALS
    # Material draws are repeated until the Eyring RT60 (mean of the 500 Hz and 1 kHz bands)
    # falls in this range: furnished rooms rarely leave it, all-concrete bunkers would.
    rt60_range: tuple[float, float] = (0.15, 1.2)
    max_material_draws: int = 50
    air_absorption: bool = True


@dataclass(frozen=True)
class ArrayConfig:
    # Two staggered rings (square antiprism): ring k has `mics_per_ring` mics at height
    # ring_heights[k] and azimuths offset by k * stagger_deg. Explicit `positions` win if given.
    ring_radius: float = 0.1
    ring_heights: tuple[float, ...] = (0.05, -0.05)
    mics_per_ring: int = 4
    stagger_deg: float = 45.0
    positions: tuple[tuple[float, float, float], ...] | None = None  # (C, 3) array frame, m


@dataclass(frozen=True)
class RobotConfig:
    height_range: tuple[float, float] = (0.3, 1.2)   # array centre above the floor, m
    wall_clearance: float = 0.5                       # array centre to every wall, m
    ceiling_clearance: float = 0.3
    body_clearance: float = 0.4                       # array centre to any source body (xy), m


@dataclass(frozen=True)
class CameraConfig:
    width: int = 64
    height: int = 64
    hfov_deg: float = 90.0


@dataclass(frozen=True)
class SourceClassConfig:
    shape: str                                  # 'cylinder' (radius, height) or 'box' (sx, sy, height)
    size: tuple[float, ...]
    emitter_height: float                       # acoustic source height above the floor, m
    level_db_spl: tuple[float, float]           # RMS level at 1 m, dB SPL (range)
    weight: float = 1.0                         # relative draw probability
    silent_fraction: float = 0.0                # P(the body emits nothing: present but quiet)
    reflection: float = 0.9                     # pressure reflection coefficient of the body, broadband


def _default_classes() -> dict[str, SourceClassConfig]:
    return {
        # Speech at a conversational level; the mouth sits near the top of the body.
        # A silent person stands and listens; clothing and skin absorb part of the sound.
        'person': SourceClassConfig('cylinder', (0.25, 1.7), 1.55, (55.0, 70.0),
                                    silent_fraction=0.3, reflection=0.8),
        # Fans, fridges, air purifiers: broadband, moderately loud, mid-height; hard casings;
        # a switched-off one is a silent obstacle.
        'appliance': SourceClassConfig('box', (0.6, 0.6, 0.9), 0.6, (50.0, 65.0),
                                       silent_fraction=0.3, reflection=0.95),
        # Beeping alarms / timers on a stand: loud and tonal, near the top; always sounding.
        'alarm': SourceClassConfig('box', (0.4, 0.4, 1.0), 0.9, (65.0, 80.0),
                                   silent_fraction=0.0, reflection=0.9),
    }


@dataclass(frozen=True)
class SourcesConfig:
    count_range: tuple[int, int] = (0, 3)
    in_fov_fraction: float = 0.72                  # P(try in view); ~60 % end up there (near walls block)
    in_fov_distance: tuple[float, float] = (1.0, 5.0)
    wall_clearance: float = 0.05                   # body to walls, m
    body_gap: float = 0.1                          # between bodies, m
    max_attempts: int = 60
    classes: dict[str, SourceClassConfig] = field(default_factory=_default_classes)


@dataclass(frozen=True)
class SpeakerConfig:
    """The chirp speaker as it really plays (docs/SONAR.md, "Calibration"): the front-end is told neither."""

    response_db: tuple[tuple[float, float], ...] = ()   # (Hz, dB) magnitude points, minimum phase; () = flat
    latency_s: float = 0.0                              # playback-to-capture latency


@dataclass(frozen=True)
class ChirpConfig:
    enabled: bool = True
    kind: str = 'linear'                           # 'linear' or 'exponential'
    f_start: float = 500.0
    f_end: float = 7500.0
    duration_s: float = 0.01
    period_s: float = 0.25                         # divides a 1 s window: 4 pings per window
    level_db_spl: float = 85.0                     # RMS during the sweep, at 1 m
    speaker_position: tuple[float, float, float] = (0.0, 0.0, 0.0)  # array frame, m
    speaker: SpeakerConfig = field(default_factory=SpeakerConfig)   # ideal by default


@dataclass(frozen=True)
class NoiseConfig:
    snr_db_range: tuple[float, float] = (25.0, 45.0)   # mic self-noise vs mean signal power
    gain_mismatch_db: float = 0.5                      # std of per-mic gain, dB (0 = matched)


@dataclass(frozen=True)
class RecordingConfig:
    sample_rate: int = 16000
    window_s: float = 1.0                          # one dataset sample
    ism_order: int = 3                             # pyroomacoustics image sources (early part)
    diffuse_tail: bool = True                      # statistical late tail (Eyring decay per band)
    rir_max_s: float = 1.0                         # RIR (and warm-up) length cap, s
    body_scattering: bool = True                   # bodies reflect every emitter (first order)
    sensitivity_dbfs: float = -26.0                # dBFS at 94 dB SPL (typical MEMS mic)


@dataclass(frozen=True)
class DatasetConfig:
    poses_per_room: int = 4
    split_fractions: dict[str, float] = field(
        default_factory=lambda: {'train': 0.8, 'val': 0.1, 'test': 0.1})


@dataclass(frozen=True)
class SimConfig:
    room: RoomConfig = field(default_factory=RoomConfig)
    array: ArrayConfig = field(default_factory=ArrayConfig)
    robot: RobotConfig = field(default_factory=RobotConfig)
    camera: CameraConfig = field(default_factory=CameraConfig)
    sources: SourcesConfig = field(default_factory=SourcesConfig)
    chirp: ChirpConfig = field(default_factory=ChirpConfig)
    noise: NoiseConfig = field(default_factory=NoiseConfig)
    recording: RecordingConfig = field(default_factory=RecordingConfig)
    dataset: DatasetConfig = field(default_factory=DatasetConfig)

    def __post_init__(self):
        _validate(self)

    def to_dict(self) -> dict[str, Any]:
        return _to_plain(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> 'SimConfig':
        return _build(cls, data or {}, 'simulation')

    @classmethod
    def from_yaml(cls, path: str | Path) -> 'SimConfig':
        import yaml
        with open(path, encoding='utf-8') as f:
            data = yaml.safe_load(f)
        if data is not None and not isinstance(data, dict):
            raise ValueError(f'{path}: expected a mapping at the top level')
        return cls.from_dict(data)


def _to_plain(value):
    """Tuples -> lists (YAML/JSON friendly), recursively."""
    if isinstance(value, dict):
        return {k: _to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_plain(v) for v in value]
    return value


def _build(cls, data: dict, where: str):
    if not isinstance(data, dict):
        raise ValueError(f'{where}: expected a mapping, got {type(data).__name__}')
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ValueError(f'{where}: unknown key(s) {unknown}; allowed: {sorted(fields)}')
    kwargs = {}
    for name, value in data.items():
        sub = _SECTIONS.get((cls, name))
        if sub is not None:
            kwargs[name] = _build(sub, value, f'{where}.{name}')
        elif (cls, name) == (SourcesConfig, 'classes'):
            if not isinstance(value, dict):
                raise ValueError(f'{where}.classes: expected a mapping of class name -> settings')
            kwargs[name] = {k: _build(SourceClassConfig, v, f'{where}.classes.{k}')
                            for k, v in value.items()}
        elif (cls, name) == (DatasetConfig, 'split_fractions'):
            kwargs[name] = {str(k): float(v) for k, v in value.items()}
        else:
            kwargs[name] = _freeze(value)
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ValueError(f'{where}: {exc}') from exc


def _freeze(value):
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


_SECTIONS = {
    (SimConfig, 'room'): RoomConfig, (SimConfig, 'array'): ArrayConfig,
    (SimConfig, 'robot'): RobotConfig, (SimConfig, 'camera'): CameraConfig,
    (SimConfig, 'sources'): SourcesConfig, (SimConfig, 'chirp'): ChirpConfig,
    (SimConfig, 'noise'): NoiseConfig, (SimConfig, 'recording'): RecordingConfig,
    (SimConfig, 'dataset'): DatasetConfig, (ChirpConfig, 'speaker'): SpeakerConfig,
}


def _check_range(name: str, rng, lo: float = float('-inf'), hi: float = float('inf')):
    if len(rng) != 2 or not (lo <= rng[0] <= rng[1] <= hi):
        raise ValueError(f'{name} must be [min, max] with {lo} <= min <= max <= {hi}, got {list(rng)}')


def _validate(cfg: SimConfig) -> None:
    r = cfg.room
    _check_range('room.length_range', r.length_range, 1.5)
    _check_range('room.width_range', r.width_range, 1.5)
    _check_range('room.height_range', r.height_range, 1.5)
    _check_range('room.rt60_range', r.rt60_range, 0.0)
    for pool in ('wall_materials', 'floor_materials', 'ceiling_materials'):
        if not getattr(r, pool):
            raise ValueError(f'room.{pool} must not be empty')
    _check_range('robot.height_range', cfg.robot.height_range, 0.0)
    if 2 * cfg.robot.wall_clearance >= min(r.length_range[0], r.width_range[0]):
        raise ValueError('robot.wall_clearance leaves no room for the robot in the smallest room')
    if cfg.robot.height_range[1] + cfg.robot.ceiling_clearance > r.height_range[0]:
        raise ValueError('robot.height_range + ceiling_clearance exceeds the lowest room height')
    _check_range('sources.count_range', cfg.sources.count_range, 0)
    _check_range('sources.in_fov_distance', cfg.sources.in_fov_distance, 0.0)
    if not 0.0 <= cfg.sources.in_fov_fraction <= 1.0:
        raise ValueError('sources.in_fov_fraction must be in [0, 1]')
    unknown = sorted(set(cfg.sources.classes) - set(SOURCE_CLASSES))
    if unknown:
        raise ValueError(f'sources.classes: unknown class(es) {unknown}; known: {list(SOURCE_CLASSES)}')
    for name, c in cfg.sources.classes.items():
        if c.shape not in ('cylinder', 'box') or len(c.size) != (2 if c.shape == 'cylinder' else 3):
            raise ValueError(f'sources.classes.{name}: shape cylinder needs size [radius, height], '
                             f'box needs [sx, sy, height]; got {c.shape} {list(c.size)}')
        if not 0.0 < c.emitter_height < c.size[-1]:
            raise ValueError(f'sources.classes.{name}.emitter_height must lie inside the body')
        _check_range(f'sources.classes.{name}.level_db_spl', c.level_db_spl)
        if not 0.0 <= c.silent_fraction <= 1.0:
            raise ValueError(f'sources.classes.{name}.silent_fraction must be in [0, 1]')
        if not 0.0 <= c.reflection <= 1.0:
            raise ValueError(f'sources.classes.{name}.reflection must be in [0, 1]')
    ch = cfg.chirp
    if ch.kind not in ('linear', 'exponential'):
        raise ValueError(f"chirp.kind must be 'linear' or 'exponential', got {ch.kind!r}")
    nyquist = cfg.recording.sample_rate / 2
    if not 0.0 < ch.f_start < nyquist or not 0.0 < ch.f_end < nyquist:
        raise ValueError(f'chirp band must lie in (0, {nyquist}) Hz')
    if not 0.0 < ch.duration_s <= ch.period_s:
        raise ValueError('chirp.duration_s must be positive and at most chirp.period_s')
    sp = ch.speaker
    if sp.response_db and (any(len(p) != 2 for p in sp.response_db)
                           or any(a[0] >= b[0] for a, b in zip(sp.response_db, sp.response_db[1:]))):
        raise ValueError('chirp.speaker.response_db must be [[Hz, dB], ...] with increasing frequencies')
    if not 0.0 <= sp.latency_s < ch.period_s:
        raise ValueError('chirp.speaker.latency_s must be in [0, chirp.period_s)')
    _check_range('noise.snr_db_range', cfg.noise.snr_db_range)
    if cfg.noise.gain_mismatch_db < 0:
        raise ValueError('noise.gain_mismatch_db must be >= 0')
    rec = cfg.recording
    if rec.sample_rate < 8000 or rec.window_s <= 0 or rec.rir_max_s <= 0 or rec.ism_order < 0:
        raise ValueError('recording: need sample_rate >= 8000, window_s > 0, rir_max_s > 0, ism_order >= 0')
    if cfg.dataset.poses_per_room < 1:
        raise ValueError('dataset.poses_per_room must be >= 1')
    fr = cfg.dataset.split_fractions
    if not fr or any(v < 0 for v in fr.values()) or abs(sum(fr.values()) - 1.0) > 1e-6:
        raise ValueError(f'dataset.split_fractions must be non-negative and sum to 1, got {fr}')
