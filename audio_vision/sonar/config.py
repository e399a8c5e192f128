# SPDX-License-Identifier: Apache-2.0
"""`SonarConfig`: every number of the sonar front-end (docs/SONAR.md).

The chirp fields are the emitter's (the simulation YAML's or capture node's ``chirp`` section):
:meth:`SonarConfig.from_sim_config` / :meth:`SonarConfig.from_emitter` build one from what the emitter
uses, so the front-end measures the chirp that is emitted, from the speaker where it is mounted.
"""
from __future__ import annotations

from dataclasses import dataclass

from audio_vision.core.features.chirp import emitted_speaker_position


#: the share of the period the gated field keeps before the emission (the CFAR's neighbours of the nearest ranges)
GATE_LEAD = 0.05


@dataclass(frozen=True)
class SonarConfig:
    sample_rate: int = 16000
    chirp_kind: str = 'linear'
    chirp_f_start: float = 500.0
    chirp_f_end: float = 7500.0
    chirp_duration_s: float = 0.01
    chirp_period_s: float = 0.25
    speaker_position: tuple[float, float, float] = (0.0, 0.0, 0.0)   # array frame, m
    speed_of_sound: float = 343.0
    upsample: int = 4                      # matched-filter output at upsample x fs (sub-sample delays)
    # Search ranges, distances from the array centre to the plane, m.
    floor_range_m: tuple[float, float] = (0.1, 2.5)
    ceiling_range_m: tuple[float, float] = (0.3, 6.0)
    # Walls to 8 m: none farther than 4 m stands out of the clutter (docs/SONAR.md, walls by distance), and 8 m fits
    # the quarter-period gate below.
    wall_range_m: tuple[float, float] = (0.3, 8.0)
    # A peak of the vertical range profile is the floor / ceiling only if the vertical direction holds at
    # least this share of the strongest coherent echo on a sphere of directions at its range.
    vertical_share: float = 0.5
    vertical_contrast: float = 2.0         # ... and only if its peak stands this far above the profile's median
    # A ceiling candidate this close to the floor's distance is what is left of the floor's echo, heard "up"
    # (explained with one amplitude for all mics, the floor's strong echo leaves the mics' gain mismatch behind).
    floor_residual_m: float = 0.12
    # The chosen ceiling confirmed: its vertical image must hold this share of the strongest coherent echo on the
    # sphere at its range (the test every candidate passed at vertical_share), unless its peak stands
    # ceiling_confirm_exempt above the profile's median; else the ceiling is reported not measured. High-order wall
    # images (parallel-wall multiples, corners) come from the horizontal but pass vertical_share with a 0.1 m
    # vertical aperture (docs/SONAR.md, "Ceiling confirmation"; revision 5). 0 = not confirmed.
    ceiling_confirm_share: float = 0.7
    ceiling_confirm_exempt: float = 12.0
    earliest_fraction: float = 0.6         # the earliest vertical candidate with this share of the best evidence
    vertical_candidates: int = 16          # the range profile's strongest local maxima examined
    cfar_window_m: float = 1.0             # range window of the local clutter level a wall echo must stand out of
    wall_cfar: float = 6.0                 # a wall is measured where its echo stands this far above the clutter
    # ... or, a wall at wall_cfar_far_m or farther, this far (None: wall_cfar at every range). Near the array the
    # clutter holds bodies and furniture whose echoes a lower threshold would take for walls; beyond a few metres
    # those are rare and a wall's echo weak (docs/SONAR.md, "Walls by range: candidates and threshold"; revision 9, not
    # shipped, set it to 4.5 with the residue and pair-multiple tests below, which the lower threshold needs).
    wall_cfar_far: float | None = None
    wall_cfar_far_m: float = 2.5
    # ... and not where it lies within wall_residual_m of the range of a wall already explained away with an exact
    # evidence under wall_residual_fraction of that wall's: what explaining leaves of an echo (a few per cent of it,
    # heard through a small array's wide beams in every quadrant at the same range) stands far above a quiet clutter
    # and is not a wall (0 = not tested; revision 9: 0.2; docs/SONAR.md, "The residue of a wall explained away").
    wall_residual_fraction: float = 0.0
    wall_residual_m: float = 0.1
    # The first wall also sought by its exact evidence over every scan azimuth, within 0.1 m of the range where the
    # far-field scan peaks (that scan's own peaks miss a wall from ~3.5 m over a floor: docs/SONAR.md, "Far walls over
    # a floor"); false: the scan's peaks only.
    wall_exact_scan: bool = False
    # A wall chosen at r in the quadrant opposite a wall measured at d is that parallel pair's multiple (its echo
    # arrives from there at d + the wall's true distance) when the exact evidence of a wall at r - d in its direction
    # holds at least this share of its own: it is replaced by that wall (0 = not tested; revision 9: 0.5; docs/SONAR.md,
    # "A pair's multiple by its evidence"). _not_multiples' test needs that wall among the candidates.
    wall_multiple_fraction: float = 0.0
    # ... and where its corner image with the floor holds this share of its first-order echo (Plane.corner): a
    # body's flat face, which does not reach the floor, is not taken for a wall (0 = not tested). Read off the
    # validation split: scripts/sonar_thresholds.py, docs/SONAR.md ("wall_corner_min").
    wall_corner_min: float = 0.15
    # Horizontal scan for the walls' yaw. 4 deg measured as well on the validation windows (docs/SONAR.md, "Speed")
    # but takes a multiple for the first wall in a synthetic box without reverberation, where 2 deg does not.
    azimuth_step_deg: float = 2.0
    # Beam peaks refined with the exact wall evidence: of the whole azimuth scan for the first wall, and of each
    # remaining quadrant's sector for the others (each candidate costs a grid of back-projections).
    wall_candidates: int = 3
    sector_candidates: int = 2
    # Each wall put on the box's direction (yaw + 90 deg k, the evidence-weighted mean of all walls: sharper
    # than one wall's own azimuth); false keeps every wall's own normal (a room that is not a box).
    box_walls: bool = True
    # A sector wall (every wall after the first) is the nearest of its candidates that clears wall_cfar with at least
    # this share of the best one's evidence (0: the best one; the first wall, which fixes the yaw, is the best one).
    nearer_wall_fraction: float = 0.0
    # The walls after the first: true, one quadrant at a time (the remaining quadrants' sectors formed and refined again
    # after each wall is explained away); false, the three remaining quadrants formed and refined once, after the first
    # wall, each taking its best candidate (one scan instead of three: faster; scripts/sonar_speed_sweep.py).
    sector_rescan: bool = True
    explain_per_mic: bool = False          # an echo explained away with one amplitude for all mics, or one per mic
    explain_bands: int = 4                 # sub-bands with their own amplitude when an echo is explained away
    peak_fraction: float = 0.1             # an echo candidate: a local maximum >= this x the profile's maximum
    # Residual reflectors (bodies, edges): echoes left once the planes are explained away.
    max_reflectors: int = 4
    reflector_cfar: float = 3.0            # kept if it stands this many times above the local clutter
    reflector_range_m: tuple[float, float] = (0.3, 6.0)
    # Far-field scan over the sphere (|elevation| <= 60 deg kept). 80 measured as fast and as well on the validation
    # windows' layouts but places a synthetic body 7 deg off, where 160 places it within 4 deg (test_sonar.py).
    reflector_directions: int = 160
    # A reflector placed on the full grid around its beam peak (+-5 deg in 1 deg steps x +-5 cm in 5 mm), or coarse to
    # fine: every other grid point, then the full grid next to that maximum (as the walls are; a sixth of the points;
    # revision 4, chosen on validation windows: scripts/sonar_speed_sweep.py).
    reflector_coarse_to_fine: bool = True
    # The coarse scans (the walls' azimuth scan, the reflectors' sphere scan) formed on this sub-band of the chirp
    # (Hz) only, sampled at the coarsest rate that holds it: fewer bins to steer, shorter inverse FFTs, coarser
    # range cells (their candidates are refined with the exact full-band evidence as before). None: the whole
    # band at the sample rate, what the thresholds were read with (scripts/sonar_speed_sweep.py measures both).
    scan_band_hz: tuple[float, float] | None = None
    # The share of the period the field keeps around the emission once the direct path is removed (its lead: a
    # twentieth of the period before it): every echo measured must return within it (the ranges' round trips and
    # the CFAR window are checked). Shorter: fewer bins to steer, explain and transform, nothing farther heard.
    # Revision 3's defaults (this gate, walls to 8 m, 3 / 2 refined wall candidates)
    # were chosen on validation windows: scripts/sonar_speed_sweep.py, docs/SONAR.md ("Speed").
    gate_fraction: float = 0.25

    def __post_init__(self):
        if self.sample_rate <= 0:
            raise ValueError(f'sample_rate must be > 0, got {self.sample_rate}')
        if not 0 < self.chirp_f_start < self.chirp_f_end <= self.sample_rate / 2:
            raise ValueError(f'chirp band must satisfy 0 < f_start < f_end <= Nyquist, got '
                             f'{self.chirp_f_start}..{self.chirp_f_end} Hz')
        if not 0 < self.chirp_duration_s < self.chirp_period_s:
            raise ValueError('need 0 < chirp_duration_s < chirp_period_s')
        if self.upsample < 1:
            raise ValueError(f'upsample must be >= 1, got {self.upsample}')
        if self.wall_candidates < 1 or self.sector_candidates < 1:
            raise ValueError(f'wall_candidates and sector_candidates must be >= 1, got {self.wall_candidates}, '
                             f'{self.sector_candidates}')
        if self.wall_cfar_far is not None and not self.wall_cfar_far > 0:
            raise ValueError(f'wall_cfar_far must be > 0 or None, got {self.wall_cfar_far}')
        if not 0.0 <= self.wall_residual_fraction < 1.0 or not self.wall_residual_m > 0:
            raise ValueError(f'wall_residual_fraction must be within [0, 1) and wall_residual_m > 0, got '
                             f'{self.wall_residual_fraction}, {self.wall_residual_m}')
        if not 0.0 <= self.wall_multiple_fraction <= 1.0:
            raise ValueError(f'wall_multiple_fraction must be within [0, 1], got {self.wall_multiple_fraction}')
        if not 0.0 <= self.nearer_wall_fraction <= 1.0:
            raise ValueError(f'nearer_wall_fraction must be within [0, 1], got {self.nearer_wall_fraction}')
        if not 0.0 <= self.ceiling_confirm_share <= 1.0:
            raise ValueError(f'ceiling_confirm_share must be within [0, 1], got {self.ceiling_confirm_share}')
        if self.max_reflectors < 0:
            raise ValueError(f'max_reflectors must be >= 0, got {self.max_reflectors}')
        if not GATE_LEAD < self.gate_fraction <= 0.5:
            raise ValueError(f'gate_fraction must be within ({GATE_LEAD:g}, 0.5], got {self.gate_fraction}')
        reach = (self.gate_fraction - GATE_LEAD) * self.chirp_period_s        # s after the emission in the gate
        for name in ('floor_range_m', 'ceiling_range_m', 'wall_range_m', 'reflector_range_m'):
            lo, hi = getattr(self, name)
            if not 0 < lo < hi:
                raise ValueError(f'{name} must be (min, max) with 0 < min < max, got {(lo, hi)}')
            if (2 * hi + self.cfar_window_m) / self.speed_of_sound >= reach:
                raise ValueError(f'{name}[1]: its round trip (and the CFAR window) must fit in the gate after the '
                                 f'emission, {(self.gate_fraction - GATE_LEAD) * 100:g} % of the chirp period '
                                 '(gate_fraction less its lead)')
        if self.scan_band_hz is not None and not (
                self.chirp_f_start <= self.scan_band_hz[0] < self.scan_band_hz[1] <= self.chirp_f_end):
            raise ValueError(f'scan_band_hz must be (low, high) within the chirp band {self.chirp_f_start:g}..'
                             f'{self.chirp_f_end:g} Hz, got {self.scan_band_hz}')
        if len(self.speaker_position) != 3:
            raise ValueError(f'speaker_position must be [x, y, z], got {self.speaker_position}')

    @property
    def period_samples(self) -> int:
        return int(round(self.chirp_period_s * self.sample_rate))

    @classmethod
    def from_sim_config(cls, sim_cfg, **overrides) -> 'SonarConfig':
        """The front-end for the chirp, speaker and sample rate of a ``SimConfig``."""
        return cls.from_emitter(sim_cfg.chirp, int(sim_cfg.recording.sample_rate), **overrides)

    @classmethod
    def from_emitter(cls, chirp, sample_rate: int, **overrides) -> 'SonarConfig':
        """The front-end for an emitter's ``chirp`` (a ``ChirpConfig``, or its dict as a dataset card stores it)."""
        def get(key, default=None):
            return chirp.get(key, default) if isinstance(chirp, dict) else getattr(chirp, key, default)
        if not get('enabled', True):
            raise ValueError('the sonar front-end needs a chirp: the emitter has chirp.enabled: false')
        kw = dict(sample_rate=int(sample_rate), chirp_kind=get('kind'), chirp_f_start=float(get('f_start')),
                  chirp_f_end=float(get('f_end')), chirp_duration_s=float(get('duration_s')),
                  chirp_period_s=float(get('period_s')), speaker_position=emitted_speaker_position(chirp))
        kw.update(overrides)
        return cls(**kw)
