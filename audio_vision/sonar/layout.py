# SPDX-License-Identifier: Apache-2.0
"""The room's planes measured from the chirp's echoes: floor, ceiling, walls (a shoebox by default).

Model (docs/SONAR.md): the array is level (the floor's normal is the array frame's -z), the walls are
vertical, and in a shoebox they meet at right angles. Each plane is a normal ``n`` (unit, array frame,
pointing from the array to the plane) and an offset ``d`` (the array centre's distance to it):
{x : n . x = d}. Its first-order echo is the speaker's image across it (:func:`echoes.image_of`).

Order of the fit, each step explaining away what it found (docs/SONAR.md, "Model"):
1. floor: the range profile of images straight down; a peak counts only if the vertical holds at least
   ``vertical_share`` of the strongest coherent echo on a sphere of directions at its range; the earliest
   with at least ``earliest_fraction`` of the best evidence, placed by a parabola;
2. walls: far-field beams over azimuth x range, peaks against the local clutter (CFAR), refined with the
   exact evidence of the first-order image and its corner image with the floor; the strongest wall fixes
   the box's yaw, the other three are searched around yaw + 90 deg k; a wall at the sum of two parallel
   walls' distances is their multiple and is replaced;
3. ceiling (an absorbing ceiling's echo is weaker than the walls' leaks), corroborated by its images with
   the floor; the earliest candidate with ``earliest_fraction`` of the best evidence;
4. residual reflectors: what the box (up to second-order images) does not explain.
A plane whose echo does not stand ``wall_cfar`` / ``vertical_contrast`` above the clutter is reported in
``RoomLayout.failed``, not as a plane.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .config import SonarConfig
from .echoes import EchoField, MatchedFilter, ScanGrid, far_field_steering, image_of, parabola_offset
from .kernels import cfar_ratio, local_maxima, refine_walls, wall_evidence

FLOOR, CEILING, WALL = 'floor', 'ceiling', 'wall'
_UP = np.array([0.0, 0.0, 1.0])
# A wall candidate's exact evidence is searched on this grid around its beam peak: azimuth (deg), range (m).
_REFINE_AZ = np.arange(-2.0, 2.01, 0.25)
_REFINE_R = np.arange(-0.04, 0.0401, 0.002)
# m around a range where the exact evidence is sought over azimuth (wall_exact_scan): every centimetre within 0.1 m
_EXACT_STEPS = np.arange(-0.1, 0.1001, 0.01)


@dataclass(frozen=True)
class Plane:
    label: str                         # floor | ceiling | wall
    normal: tuple[float, float, float]  # unit, array frame, from the array towards the plane
    offset: float                      # m, array centre to the plane along `normal`
    confidence: float = 1.0            # [0, 1]
    strength: float = 0.0              # echo envelope (matched filter units)
    # How far its echo stands above the clutter (walls: CFAR ratio; floor, ceiling: over the range profile's
    # median): what `wall_cfar` / `vertical_contrast` test.
    contrast: float = 0.0
    # Walls: the evidence of its corner image with the floor over that of its first-order image, when it was
    # chosen (NaN without a floor): a wall meets the floor, a body's flat face (an appliance's) hangs above it;
    # what `wall_corner_min` tests.
    corner: float = math.nan

    @property
    def n(self) -> np.ndarray:
        return np.asarray(self.normal, dtype=np.float64)


@dataclass(frozen=True)
class Reflector:
    """An echo no plane explains (a body, an edge): the point that scattered it."""

    position: tuple[float, float, float]   # array frame, m
    strength: float                        # echo envelope (matched filter units) at the array
    contrast: float                        # how far it stands above the local clutter (CFAR ratio)

    @property
    def range_m(self) -> float:
        return float(np.linalg.norm(self.position))

    @property
    def direction(self) -> np.ndarray:
        return np.asarray(self.position, dtype=np.float64) / max(self.range_m, 1e-12)


@dataclass(frozen=True)
class RoomLayout:
    planes: tuple[Plane, ...] = ()
    yaw_deg: float | None = None        # walls' yaw in the array frame (box fit), mod 90
    failed: tuple[str, ...] = field(default_factory=tuple)   # what could not be measured, and why
    reflectors: tuple[Reflector, ...] = ()   # strongest first

    def get(self, label: str) -> list[Plane]:
        return [p for p in self.planes if p.label == label]

    def to_dict(self) -> dict:
        return {'planes': [{'label': p.label, 'normal': list(p.normal), 'offset': p.offset,
                            'confidence': p.confidence, 'strength': p.strength, 'contrast': p.contrast}
                           for p in self.planes],
                'yaw_deg': self.yaw_deg, 'failed': list(self.failed),
                'reflectors': [{'position': list(r.position), 'strength': r.strength, 'contrast': r.contrast}
                               for r in self.reflectors]}


def fibonacci_sphere(n: int) -> np.ndarray:
    """(n, 3) nearly uniform unit directions."""
    k = np.arange(n) + 0.5
    z = 1.0 - 2.0 * k / n
    phi = math.pi * (3.0 - math.sqrt(5.0)) * k
    r = np.sqrt(1.0 - z * z)
    return np.stack([r * np.cos(phi), r * np.sin(phi), z], axis=1)


def horizontal(azimuth_deg) -> np.ndarray:
    """(...) azimuths (deg) -> (..., 3) horizontal unit vectors."""
    a = np.radians(np.asarray(azimuth_deg, dtype=np.float64))
    out = np.zeros(a.shape + (3,))
    out[..., 0], out[..., 1] = np.cos(a), np.sin(a)
    return out


#: the tangents of a reflector's placement fan: +-5 deg every degree around the direction it was found in
_PLACEMENT_TAN = np.tan(np.radians(np.arange(-5.0, 5.01, 1.0)))


def placement_fan(u: np.ndarray) -> np.ndarray:
    """(T, T, 3) unit directions around the unit direction ``u``, +-5 deg every degree along two axes across it (the
    horizontal one first): where a reflector found in direction u is placed."""
    a = np.array([u[1], -u[0], 0.0])                     # u x z (np.cross's arithmetic, without its overhead)
    a = a / np.linalg.norm(a) if np.linalg.norm(a) > 1e-6 else np.array([1.0, 0.0, 0.0])
    b = np.array([u[1] * a[2] - u[2] * a[1], u[2] * a[0] - u[0] * a[2], u[0] * a[1] - u[1] * a[0]])   # u x a
    t = _PLACEMENT_TAN
    dirs = u[None, None] + t[:, None, None] * a + t[None, :, None] * b
    return dirs / np.linalg.norm(dirs, axis=-1, keepdims=True)


class LayoutEstimator:
    """(C, N) window -> :class:`RoomLayout`, for one array and chirp."""

    def __init__(self, cfg: SonarConfig, mic_positions: np.ndarray, calibration=None):
        """``calibration``: the speaker's measured response (:class:`~.calibration.SpeakerCalibration`), or
        None for an ideal speaker."""
        self.cfg = cfg
        self.mics = np.asarray(mic_positions, dtype=np.float64).reshape(-1, 3)
        self.matched_filter = MatchedFilter(cfg, calibration)
        self.sphere = fibonacci_sphere(200)
        self.reach_window = np.arange(-0.1, 0.1001, 0.02)      # m of image distance around a candidate
        # An array without vertical aperture hears up and down alike: it cannot tell floor from ceiling.
        self.vertical_aperture = float(np.ptp(self.mics[:, 2]))
        self.azimuths = np.arange(0.0, 360.0, cfg.azimuth_step_deg)
        self.scan_grid = ScanGrid.of(self.matched_filter, cfg.scan_band_hz)      # where the coarse scans live
        freqs, c = self.matched_filter.gate.freqs[self.scan_grid.band], cfg.speed_of_sound
        self.azimuth_steering = far_field_steering(horizontal(self.azimuths), self.mics, freqs, c)
        # Each scan azimuth's refinement grid as unit normals (A, len(_REFINE_AZ), 3): the wall candidates are beam
        # peaks on the scan's azimuths, so their grids are rows of this table (the values forming them per call gives).
        self.refine_normals = horizontal(self.azimuths[:, None] + _REFINE_AZ)
        self.speaker = np.asarray(cfg.speaker_position, dtype=np.float64)
        sphere = fibonacci_sphere(cfg.reflector_directions)
        self.scan_directions = sphere[np.abs(sphere[:, 2]) <= math.sin(math.radians(60.0))]
        self.scan_steering = (far_field_steering(self.scan_directions, self.mics, freqs, c)
                              if cfg.max_reflectors else None)
        # Each scan direction's placement fan (D, T, T, 3) (a reflector is placed around the direction it was found in)
        self.placement_fans = (np.stack([placement_fan(u) for u in self.scan_directions])
                               if cfg.max_reflectors else None)

    def measures_like(self, other: 'LayoutEstimator') -> bool:
        """Whether ``other`` measures every window exactly as this one does: the same configuration, array and
        matched filter (the speaker's calibration included)."""
        return (self.cfg == other.cfg and np.array_equal(self.mics, other.mics)
                and np.array_equal(self.matched_filter.filter, other.matched_filter.filter))

    def field(self, audio: np.ndarray) -> EchoField:
        return EchoField(self.matched_filter, self.mics, audio)

    def estimate(self, audio: np.ndarray) -> RoomLayout:
        f = self.field(audio)
        planes, failed = [], []
        floor = self._floor(f, failed)
        # The walls before the ceiling: an absorbing ceiling's echo is weaker than the walls' leaks into the
        # vertical profile, so those are explained away first.
        walls, yaw, weak_walls = self._walls(f, floor)
        ceiling = self._measured(self._vertical(f, 1.0, self.cfg.ceiling_range_m, after=floor), failed)
        planes += [p for p in (floor, ceiling) if p is not None] + walls
        failed += weak_walls
        if yaw is None:
            failed.append('walls: no wall echo')
        if ceiling is not None:
            f.explain(image_of(self.speaker, ceiling.n, ceiling.offset)[None])
        if self.cfg.max_reflectors:             # what the box explains at second order is not a reflector
            f.explain(box_images(self.speaker, planes, order=2))
        return RoomLayout(tuple(planes), yaw, tuple(failed), self._reflectors(f))

    def wall_contrast(self, audio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The walls' detection statistic of a window as the first wall search sees it (for diagnostics): the
        far-field beams over the scan's ``azimuths`` x wall range, the floor's echo explained, over the local
        clutter (CFAR ratio, what ``wall_cfar`` thresholds). Returns (ratio (A, K), the K ranges in m)."""
        f = self.field(audio)
        self._floor(f, [])
        ratio, _ = self._cfar(f.beams(self.azimuth_steering, grid=self.scan_grid), self.cfg.wall_range_m)
        return ratio, self._cell_ranges(self.cfg.wall_range_m, ratio.shape[1])

    def _floor(self, f: EchoField, failed: list[str]) -> Plane | None:
        """The floor, measured and explained away (its echo, heard by half the mics, would pose as a ceiling)."""
        floor = self._measured(self._vertical(f, -1.0, self.cfg.floor_range_m), failed)
        if floor is not None:
            f.explain(image_of(self.speaker, floor.n, floor.offset)[None])
        return floor

    # --- residual reflectors --------------------------------------------------------------------
    def _reflectors(self, f: EchoField) -> tuple[Reflector, ...]:
        """What is left once the planes are explained: peaks of far-field beams over the sphere x range that
        stand ``reflector_cfar`` above the local clutter, strongest first, each placed by the exact
        point-scatter evidence around it; one scan, a reflector's neighbourhood (15 deg, 0.3 m) masked once
        taken, so one body is one reflector."""
        cfg = self.cfg
        if cfg.max_reflectors == 0:
            return ()
        ratio, _ = self._cfar(f.beams(self.scan_steering, grid=self.scan_grid), cfg.reflector_range_m)     # (D, K)
        ranges = self._cell_ranges(cfg.reflector_range_m, ratio.shape[1])
        out = []
        for _ in range(cfg.max_reflectors):
            d, k = np.unravel_index(int(np.argmax(ratio)), ratio.shape)
            if ratio[d, k] < cfg.reflector_cfar:
                break
            point, strength = self._place_scatterer(f, d, ranges[k])
            out.append(Reflector(tuple(float(v) for v in point), strength, float(ratio[d, k])))
            near = self.scan_directions @ self.scan_directions[d] > math.cos(math.radians(15.0))
            ratio[np.ix_(near, np.abs(ranges - ranges[k]) < 0.3)] = 0.0
        return tuple(out)

    def _place_scatterer(self, f: EchoField, d: int, r0: float) -> tuple[np.ndarray, float]:
        """Best point-scatter evidence within +-5 deg and +-5 cm of (scan direction ``d``, r0): (position, strength)."""
        dirs = self.placement_fans[d]                                                     # (T, T, 3)
        t = _PLACEMENT_TAN
        ranges = r0 + np.arange(-0.05, 0.0501, 0.005)                                      # (R,)

        def points(r: slice, a: slice, b: slice) -> np.ndarray:       # (r, a, b, 3) of the grid range x dirs
            return ranges[r, None, None, None] * dirs[None, a, b]

        every = slice(None)
        if not self.cfg.reflector_coarse_to_fine:
            grid = points(every, every, every)
            ev = f.score_points(grid)
            i = np.unravel_index(int(np.argmax(ev)), ev.shape)
            return grid[i], float(ev[i])
        # Only the points scored are formed (the grid's every other point, then a 3 x 3 x 3 block of it).
        coarse = f.score_points(points(slice(None, None, 2), slice(None, None, 2), slice(None, None, 2)))  # (11, 6, 6)
        i = 2 * np.array(np.unravel_index(int(np.argmax(coarse)), coarse.shape))
        lo = np.clip(i - 1, 0, np.array([len(ranges), len(t), len(t)]) - 3)
        block = points(slice(lo[0], lo[0] + 3), slice(lo[1], lo[1] + 3), slice(lo[2], lo[2] + 3))
        ev = f.score_points(block)
        j = np.unravel_index(int(np.argmax(ev)), ev.shape)
        return block[j], float(ev[j])

    def _measured(self, found: tuple[str, Plane | None, float, str | None], failed: list[str]) -> Plane | None:
        """The floor or ceiling if its echo stands ``vertical_contrast`` above its range profile's median (an
        absorbing ceiling's echo does not, and the best peak is then a multiple's or a body's) and, for the ceiling,
        is confirmed from the vertical (``ceiling_confirm_share``); else None, the reason appended to ``failed``."""
        label, plane, contrast, unconfirmed = found
        if plane is None and unconfirmed is None:
            failed.append(f'{label}: no echo that comes from the vertical')
            return None
        if contrast < self.cfg.vertical_contrast:
            failed.append(f'{label}: its best echo stands {contrast:.1f}x above the range profile\'s median, '
                          f'under vertical_contrast {self.cfg.vertical_contrast:g}')
            return None
        if plane is None:
            failed.append(f'{label}: {unconfirmed}')
        return plane

    # --- floor and ceiling -------------------------------------------------------------------
    def _vertical(self, f: EchoField, sign: float, limits,
                  after: Plane | None = None) -> tuple[str, Plane | None, float, str | None]:
        """The floor (sign -1) or ceiling (+1): of the range profile's local maxima (incoherent: smooth, so a
        parabola places the peak finely), those whose vertical image holds at least ``vertical_share`` of the
        strongest coherent echo at their range (an echo of a wall at the same range leaks into the vertical
        profile but is far stronger in its own direction); of them the earliest with at least
        ``earliest_fraction`` of the best evidence (the ceiling's evidence includes its images with the floor).
        Returns (label, plane or None, the peak's contrast: its height over the profile's median, why a peak was
        found but not confirmed from the vertical (``ceiling_confirm_share``) or None)."""
        cfg = self.cfg
        label = FLOOR if sign < 0 else CEILING
        n = sign * _UP
        offsets = np.arange(limits[0], limits[1], 0.001)
        profile = f.score(image_of(self.speaker, n, offsets), coherent=False)
        peaks = _peaks(profile, cfg.peak_fraction)
        # Examined: the peaks strongest in the coherent vertical image (the incoherent profile ranks the walls'
        # leaks too high), each within a few mm of its incoherent peak.
        around_peaks = offsets[peaks][:, None] + np.arange(-0.01, 0.0101, 0.002)[None]
        coherent = f.score(image_of(self.speaker, n, around_peaks)).max(axis=1)
        # A peak within floor_residual_m of the floor is what is left of the floor's echo, heard "up" by half the mics.
        candidates = [int(k) for k in peaks[np.argsort(coherent)[::-1][:cfg.vertical_candidates]]
                      if after is None or abs(offsets[k] - after.offset) >= cfg.floor_residual_m]
        evidence = dict(zip(candidates, self._vertical_evidence(f, n, offsets[candidates], after).tolist()))
        echoes: dict[int, tuple[float, float]] = {}

        def from_vertical(k: int, share: float = cfg.vertical_share) -> bool:
            """The sphere test, run only where the choice depends on it (once per candidate, whatever the share)."""
            if k not in echoes:
                echoes[k] = self._vertical_echo(f, n, offsets[k])
            vertical, around = echoes[k]
            return bool(vertical >= share * around)

        # The best evidence among the candidates that come from the vertical; then, multiples (floor-ceiling
        # images) coming later than their plane and gathering as much evidence, the earliest such candidate
        # with at least ``earliest_fraction`` of it.
        top = next((evidence[k] for k in sorted(candidates, key=lambda k: -evidence[k]) if from_vertical(k)), None)
        if top is None:
            return label, None, 0.0, None
        k = next(k for k in sorted(candidates) if evidence[k] >= cfg.earliest_fraction * top and from_vertical(k))
        d = offsets[k] + parabola_offset(profile, k) * (offsets[1] - offsets[0])
        contrast = float(profile[k] / (np.median(profile) + 1e-30))
        if (label == CEILING and cfg.ceiling_confirm_share > 0 and contrast < cfg.ceiling_confirm_exempt
                and not from_vertical(k, cfg.ceiling_confirm_share)):
            return label, None, contrast, (f'its echo at {d:.2f} m does not come clearly from the vertical (under '
                                           f'ceiling_confirm_share {cfg.ceiling_confirm_share:g})')
        return label, Plane(label, tuple(n), float(d), confidence=min(1.0, contrast / 10.0),
                            strength=float(profile[k]), contrast=contrast), contrast, None

    def _vertical_echo(self, f: EchoField, n: np.ndarray, offset: float) -> tuple[float, float]:
        """For the echo of a horizontal plane at ``offset``: (the strongest coherent echo of its vertical image, the
        strongest on a sphere of directions at its range). It comes from the vertical where the first holds
        ``vertical_share`` of the second (``ceiling_confirm_share`` to confirm a ceiling)."""
        reach = np.maximum(2.0 * offset + self.reach_window, 1e-3)
        around = f.score(self.speaker + reach[:, None, None] * self.sphere[None])       # (R, S)
        vertical = f.score(self.speaker + reach[:, None] * n[None])                     # (R,)
        if self.vertical_aperture == 0:     # planar: up and down alike
            vertical = np.maximum(vertical, f.score(self.speaker - reach[:, None] * n[None]))
        return float(vertical.max()), float(around.max())

    def _vertical_evidence(self, f: EchoField, n: np.ndarray, offsets: np.ndarray, after: Plane | None) -> np.ndarray:
        """(K,) the coherent evidence of a horizontal plane within 1 cm of each of ``offsets`` (K,), in one pass;
        for the ceiling (``after`` the floor) with its images with the floor, which corroborate it."""
        near = np.asarray(offsets, dtype=np.float64)[:, None] + np.arange(-0.01, 0.0101, 0.001)      # (K, 21)
        first = image_of(self.speaker, n, near)
        evidence = f.score(first).max(axis=1)
        if after is not None:
            evidence += f.score(image_of(first, after.n, after.offset)).max(axis=1)
            evidence += f.score(image_of(image_of(self.speaker, after.n, after.offset), n, near)).max(axis=1)
        return evidence

    # --- walls ---------------------------------------------------------------------------------
    def _wall_images(self, azimuth_deg: np.ndarray, offset: np.ndarray, vertical: list[Plane]) -> np.ndarray:
        """(..., 1 + len(vertical), 3) images of a vertical wall: first order, then its corner images with
        the floor and ceiling (each as strong as the first order, and what a body standing in the room has not)."""
        first = image_of(self.speaker, horizontal(azimuth_deg), offset)
        return np.stack([first] + [image_of(first, p.n, p.offset) for p in vertical], axis=-2)

    def _wall_candidates(self, f: EchoField, sectors: list[np.ndarray], vertical, count: int,
                         scan: tuple[np.ndarray, np.ndarray] | None = None, refined: dict | None = None,
                         explained: list[tuple[float, float]] = (), residues: set | None = None,
                         widen: bool = False) -> list[list[tuple]]:
        """Per sector of azimuths (indices into ``azimuths``), its ``count`` strongest local maxima of the far-field
        beams over (azimuth, wall range), refined by their exact wall evidence: [[(evidence, azimuth, offset)],
        best first] in the order of ``sectors``. All sectors' beams are formed in one pass, and all candidates
        refined in one (:meth:`_refine_walls`). ``scan``: the (ratio, clutter) of the full azimuth scan on the
        field as it is, when already at hand (a sector's rows are then that scan's own). ``refined``: {(azimuth row,
        range cell): (evidence, azimuth, offset)} of beam peaks already refined on the field as it is, read and added
        to (a peak of the full scan is often one of the first quadrant's too; each peak is refined on its own).
        ``explained``: [(offset, evidence)] of the walls explained away so far; a candidate that is their residue
        (:meth:`_residue`) is left out, and its sector's position in ``sectors`` added to ``residues``. ``widen``: each
        peak first moved to its sector's best exact evidence within 0.1 m of its range (``wall_exact_scan``)."""
        rows = np.concatenate(sectors)
        if scan is None:
            beams = f.beams(self.azimuth_steering, rows, self.scan_grid)
            window, noise = self._cfar(beams, self.cfg.wall_range_m)                                      # (A, K)
        elif len(rows) == len(scan[0]) and np.array_equal(rows, np.arange(len(rows))):
            window, noise = scan                               # the whole scan: its rows as they are, not a copy
        else:
            window, noise = scan[0][rows], scan[1][rows]
        found, start = [], 0                                   # (sector, row of window, range cell)
        for s, sector in enumerate(sectors):
            block = window[start:start + len(sector)]
            flat = local_maxima(block, len(sector) > 2)
            order = flat[np.argsort(block.ravel()[flat])[::-1][:count]]
            a, k = np.unravel_index(order, block.shape)
            found += [(s, start + i, j) for i, j in zip(a, k)]
            start += len(sector)
        out: list[list[tuple]] = [[] for _ in sectors]
        if not found:
            return out
        s, a, k = (np.array(v) for v in zip(*found))
        refined = {} if refined is None else refined
        keys = [(int(rows[i]), int(j)) for i, j in zip(a, k)]
        new = [p for p, key in enumerate(keys) if key not in refined]
        if new:
            r0 = self._cell_ranges(self.cfg.wall_range_m, window.shape[1])[k[new]]
            peaks = rows[a[new]]
            if widen:
                peaks, r0 = self._exact_sector_peaks(f, [sectors[s[p]] for p in new], r0, vertical)
            results = self._refine_walls(f, self.azimuths[peaks], r0, vertical, self.refine_normals[peaks])
            for key, *result in zip([keys[p] for p in new], *results):
                refined[key] = result
        ev, az, offset = (np.array(v) for v in zip(*(refined[key] for key in keys)))
        ratio = ev / ((len(vertical) + 1) * noise[a, k] + 1e-30)
        for p in range(len(found)):
            if explained and self._residue(float(ev[p]), float(offset[p]), explained):
                if residues is not None:
                    residues.add(int(s[p]))
                continue
            out[s[p]].append((float(ratio[p]), float(az[p]), float(offset[p])))
        return [sorted(c, reverse=True) for c in out]

    def _exact_scan_candidate(self, f: EchoField, scan: tuple[np.ndarray, np.ndarray], vertical) -> tuple:
        """The first wall's candidate by its exact evidence: every scan azimuth x every centimetre within 0.1 m of the
        range where the far-field scan's CFAR ratio peaks, its maximum refined (:meth:`_refine_walls`); (evidence over
        the clutter at its cell, azimuth, offset), as :meth:`_wall_candidates` gives."""
        ratio = scan[0]
        cell = np.unravel_index(int(np.argmax(ratio)), ratio.shape)[1]                  # where the scan peaks
        peak = self._cell_ranges(self.cfg.wall_range_m, ratio.shape[1])[cell]
        ranges = peak + _EXACT_STEPS
        ranges = ranges[(ranges > self.cfg.wall_range_m[0]) & (ranges < self.cfg.wall_range_m[1])]            # (R,)
        a, r = self._best_exact(f, np.arange(len(self.azimuths)), ranges, vertical)
        ev, az, offset = self._refine_walls(f, self.azimuths[[a]], np.array([r]), vertical, self.refine_normals[[a]])
        return (self._contrast(float(ev[0]), a, float(offset[0]), scan, vertical), float(az[0]), float(offset[0]))

    def _exact_sector_peaks(self, f: EchoField, sectors: list[np.ndarray], r0: np.ndarray, vertical):
        """Each beam peak (its sector's azimuth rows, its range r0) moved to the best exact wall evidence over those
        rows x every centimetre within 0.1 m of r0: (azimuth rows (P,), ranges (P,))."""
        best = [self._best_exact(f, sector, np.clip(r + _EXACT_STEPS, *self.cfg.wall_range_m), vertical)
                for sector, r in zip(sectors, r0)]
        return np.array([a for a, _ in best], dtype=np.int64), np.array([r for _, r in best])

    def _best_exact(self, f: EchoField, rows: np.ndarray, ranges: np.ndarray, vertical) -> tuple[int, float]:
        """The maximum of the exact wall evidence over the scan azimuths ``rows`` x ``ranges`` (m): (its azimuth row,
        its range)."""
        normals = np.ascontiguousarray(np.broadcast_to(self.refine_normals[rows, len(_REFINE_AZ) // 2],
                                                       (len(ranges), len(rows), 3)).reshape(-1, 3))
        vertical_normals, vertical_offsets = _plane_arrays(vertical)
        grid = wall_evidence(f.signal, f.mics, self.speaker, normals, np.repeat(ranges, len(rows)),
                             vertical_normals, vertical_offsets, float(f.rate), 1.0 / self.cfg.speed_of_sound)
        i, a = np.unravel_index(int(np.argmax(grid)), (len(ranges), len(rows)))             # (R, A) grid
        return int(rows[a]), float(ranges[i])

    def _contrast(self, evidence: float, row: int, offset: float, scan: tuple[np.ndarray, np.ndarray],
                  vertical) -> float:
        """A wall's exact evidence over the full scan's clutter at its azimuth row and range cell: what
        :meth:`_wall_candidates` ranks and thresholds, for a wall found outside it."""
        cells = self._cell_ranges(self.cfg.wall_range_m, scan[0].shape[1])
        k = int(np.clip(np.searchsorted(cells, offset), 0, len(cells) - 1))
        # in double precision, as the candidates' ratios are (the clutter is single precision)
        return float(np.float64(evidence) / ((len(vertical) + 1) * scan[1][row, k] + 1e-30))

    def _residue(self, evidence: float, offset: float, explained: list[tuple[float, float]]) -> bool:
        """Whether a wall candidate (its exact evidence, its offset) is what explaining left of a wall's echo: within
        ``wall_residual_m`` of that wall's range, under ``wall_residual_fraction`` of its evidence."""
        cfg = self.cfg
        return any(abs(offset - r) < cfg.wall_residual_m and evidence < cfg.wall_residual_fraction * e
                   for r, e in explained)

    def _wall_scores(self, f: EchoField, azimuth_deg: float, offset: float, vertical: list[Plane]) -> np.ndarray:
        """(1 + len(vertical),) the coherent scores of a wall's images on the field as it is: first order, then its
        corners with the floor (and ceiling). Summed, its exact evidence (what :meth:`_refine_walls` maximises)."""
        return f.score(self._wall_images(np.float64(azimuth_deg), np.float64(offset), vertical))

    def _refine_walls(self, f: EchoField, az0: np.ndarray, r0: np.ndarray, vertical, normals: np.ndarray | None = None):
        """(P,) beam peaks -> (evidence, azimuth, offset), each (P,): the best exact wall evidence on the grid
        ``_REFINE_AZ`` x ``_REFINE_R`` around each peak, its offset placed by a parabola along range. Coarse to
        fine: the grid every 1 deg x 1 cm, then the full grid within 0.75 deg x 1.2 cm of that maximum (the
        evidence of a wall is one lobe, as wide as the compressed pulse (~5 cm) and the array's back-projection
        (a few degrees), so its maximum lies there; docs/SONAR.md, "Speed"): sonar/kernels.py ``refine_walls``.
        ``normals`` (P, A, 3): the grids' azimuths ``az0 + _REFINE_AZ`` as unit normals, when at hand."""
        A, R = _REFINE_AZ, _REFINE_R
        normals = horizontal(az0[:, None] + A) if normals is None else normals                # (P, A, 3)
        vertical_normals, vertical_offsets = _plane_arrays(vertical)
        ev, i, j, shift = refine_walls(f.signal, f.mics, self.speaker, normals, np.ascontiguousarray(r0, np.float64),
                                       R, vertical_normals, vertical_offsets, float(f.rate),
                                       1.0 / self.cfg.speed_of_sound)
        return ev, az0 + A[i], r0 + R[j] + shift * (R[1] - R[0])

    def _corner_ratio(self, f: EchoField, azimuth_deg: float, offset: float, vertical: list[Plane]) -> float:
        """Floor-corner image evidence / first-order evidence of a wall (NaN without a floor), on the field as it
        is when the wall is chosen (before it is explained away)."""
        return _corner_of(self._wall_scores(f, azimuth_deg, offset, vertical[:1])) if vertical else math.nan

    def _nearest_of_tied(self, candidates: list[tuple]) -> tuple:
        """Of a sector's candidates [(evidence, azimuth, offset)], best first: the nearest that clears ``wall_cfar``
        with at least ``nearer_wall_fraction`` of the best one's evidence (a sector spans a few degrees, and behind
        a wall another is not heard in first order: the farther echo is an image), else the best one."""
        best, fraction = candidates[0], self.cfg.nearer_wall_fraction
        floor = max(fraction * best[0], self.cfg.wall_cfar)
        tied = [c for c in candidates[1:] if c[2] < best[2] - 0.3 and c[0] >= floor]
        return min(tied, key=lambda c: c[2]) if fraction > 0 and tied else best

    def _not_multiples(self, found: list[tuple], options: dict[int, list]) -> dict[int, tuple]:
        """Walls to replace: {quadrant: (evidence, azimuth, offset)}. Two parallel walls at d1 and d2 give an echo
        at d1 + d2 from each side, alone in a quiet stretch of range where the CFAR can rank it above the walls'
        own echoes among the corner images. A wall chosen at the sum (within 3 cm) of a nearer candidate of its
        own quadrant and a candidate of the opposite one, both standing half ``wall_cfar`` above the clutter,
        is that multiple: the strongest of its quadrant's other candidates replaces it."""
        half = 0.5 * self.cfg.wall_cfar
        chosen = {q: (e, a, r) for e, a, r, q in found}
        out = {}
        for q, (_, _, r) in chosen.items():
            opposite = (q + 2) % 4
            if opposite not in options:
                continue
            own = [c for c in options[q] if c[0] >= half and c[2] < r - 0.1]
            other = [c for c in options[opposite] if c[0] >= half]
            if any(abs(x[2] + y[2] - r) < 0.03 for x in own for y in other):
                out[q] = max(own, key=lambda c: c[0])
        return out

    def _pair_multiples(self, f: EchoField, found: list[tuple], strength: dict[int, float], vertical,
                        scan: tuple[np.ndarray, np.ndarray]) -> dict[int, tuple]:
        """Walls to replace, {quadrant: (evidence, azimuth, offset)}: a wall chosen at r opposite a wall measured at d
        (its echo clears its threshold) whose direction holds, at r - d, a wall with at least ``wall_multiple_fraction``
        of its own exact evidence (taken before it was explained away) is the pair's multiple, and that wall replaces
        it (its evidence over the first scan's clutter at its cell, as the candidates' is)."""
        chosen = {q: (a, r) for _, a, r, q in found}
        measured = {q for e, _, r, q in found if e >= self.wall_threshold(r)[1]}     # an opposite wall that is heard
        out = {}
        for q, (a, r) in chosen.items():
            opposite = chosen.get((q + 2) % 4) if (q + 2) % 4 in measured else None
            if opposite is None or q not in strength or r - opposite[1] <= self.cfg.wall_range_m[0]:
                continue
            ev, az, offset = self._refine_walls(f, np.array([a]), np.array([r - opposite[1]]), vertical)
            if ev[0] >= self.cfg.wall_multiple_fraction * strength[q]:
                row = int(np.argmin(np.abs((self.azimuths - az[0] + 180.0) % 360.0 - 180.0)))
                out[q] = (self._contrast(float(ev[0]), row, float(offset[0]), scan, vertical), float(az[0]),
                          float(offset[0]))
        return out

    def wall_threshold(self, offset: float) -> tuple[str, float]:
        """How far a wall's echo at ``offset`` (m) must stand above the clutter to be measured, and the field that says
        so: ``wall_cfar``, or ``wall_cfar_far`` from ``wall_cfar_far_m`` on where it is set."""
        cfg = self.cfg
        if cfg.wall_cfar_far is not None and offset >= cfg.wall_cfar_far_m:
            return 'wall_cfar_far', cfg.wall_cfar_far
        return 'wall_cfar', cfg.wall_cfar

    def _cell_ranges(self, range_m, count: int) -> np.ndarray:
        """(count,) the distances (m) of the round-trip cells :meth:`_cfar` keeps for ``range_m``."""
        rate, c = self.scan_grid.rate, self.cfg.speed_of_sound
        return (np.arange(count) + int(math.floor(2 * range_m[0] / c * rate))) / rate * c / 2.0

    def _cfar(self, beams: np.ndarray, range_m) -> tuple[np.ndarray, np.ndarray]:
        """(D, P) beams at the scan grid's rate -> (ratio, clutter) on the round trips of ``range_m``: detection
        against the local clutter (cell-averaging CFAR along range). Far echoes are weak, but so is what surrounds
        them; range-compensated amplitudes would favour the reverberant tail."""
        cfg = self.cfg
        rate, c = self.scan_grid.rate, cfg.speed_of_sound
        k0, k1 = int(math.floor(2 * range_m[0] / c * rate)), int(math.ceil(2 * range_m[1] / c * rate))
        cells = int(round(2 * cfg.cfar_window_m / c * rate)) | 1
        return cfar_ratio(beams, cells, k0, k1)

    def _walls(self, f: EchoField, floor: Plane | None):
        """The box's walls, strongest first: the strongest far-field echo fixes the yaw, then of the three
        remaining quadrants (yaw + 90 deg k) the one with the best candidate is taken, and so on; each wall
        found is explained away (its first-order image and its corner image with the floor) before the next.
        Last, a wall that is the multiple of a parallel pair is replaced (:meth:`_not_multiples`)."""
        vertical = [] if floor is None else [floor]
        found = []                                           # (evidence, azimuth, offset, quadrant)
        scan = self._cfar(f.beams(self.azimuth_steering, grid=self.scan_grid), self.cfg.wall_range_m)
        refined: dict = {}                                  # beam peaks refined on the field before its first wall
        cands = self._wall_candidates(f, [np.arange(len(self.azimuths))], vertical, self.cfg.wall_candidates,
                                      scan=scan, refined=refined)[0]
        if self.cfg.wall_exact_scan:
            cands = sorted(cands + [self._exact_scan_candidate(f, scan, vertical)], reverse=True)
        if not cands:
            return [], None, []
        ev, az, r = cands[0]
        found.append((ev, az, r, 0))
        residual = self.cfg.wall_residual_fraction > 0
        # Each wall's exact evidence when taken, before it is explained away (the residue and multiple tests read it):
        # its images' scores, which the corner test reads too.
        keep_strength = residual or self.cfg.wall_multiple_fraction > 0
        corner: dict[int, float] = {}
        strength: dict[int, float] = {}

        def chosen(q: int, a: float, r: float) -> None:
            """Record quadrant q's wall at (a, r): its floor-corner ratio and, where read, its exact evidence."""
            if not keep_strength:
                corner[q] = self._corner_ratio(f, a, r, vertical)
                return
            scores = self._wall_scores(f, a, r, vertical)
            corner[q] = _corner_of(scores) if vertical else math.nan
            strength[q] = float(scores.sum())

        chosen(0, az, r)
        explained = [(r, strength[0])] if residual else []                                  # (offset, evidence)
        residues: set[int] = set()                          # quadrants where a candidate was a residue
        # Each quadrant's sector: the scan's azimuths within 4 deg of yaw + 90 q (its steering at hand; the
        # candidates' exact refinement places them to a quarter degree).
        offsets = (self.azimuths - az + 180.0) % 360.0 - 180.0
        sectors = {q: np.flatnonzero(np.abs((offsets - 90.0 * q + 180.0) % 360.0 - 180.0) <= 4.0) for q in range(4)}
        options = {0: self._wall_candidates(f, [sectors[0]], vertical, self.cfg.sector_candidates, scan=scan,
                                            refined=refined)[0]}
        f.explain(self._wall_images(az, r, vertical))
        remaining = [1, 2, 3]

        def take(c: list[tuple], q: int) -> np.ndarray:
            """Quadrant q's wall from its candidates c, recorded; returns its images, to explain away."""
            wall = self._nearest_of_tied(c)
            found.append(wall + (q,))
            chosen(q, wall[1], wall[2])
            options[q] = c
            if residual:
                explained.append((wall[2], strength[q]))
            return self._wall_images(wall[1], wall[2], vertical)

        def candidates(quadrants: list[int]) -> list[list[tuple]]:
            """The quadrants' candidates on the field as it is, less the residues of the walls explained away."""
            at: set[int] = set()
            out = self._wall_candidates(f, [sectors[q] for q in quadrants], vertical, self.cfg.sector_candidates,
                                        explained=explained, residues=at, widen=self.cfg.wall_exact_scan)
            residues.update(quadrants[i] for i in at)
            return out

        if not self.cfg.sector_rescan:           # one scan of the remaining quadrants, each its best candidate
            images = [take(c, q) for q, c in zip(remaining, candidates(remaining)) if c]
            if images:
                f.explain(np.concatenate(images))
            remaining = []
        while remaining:
            best = None
            for q, c in zip(remaining, candidates(remaining)):
                if c and (best is None or c[0][0] > best[0][0][0]):
                    best = (c, q)
            if best is None:
                break
            c, q = best
            f.explain(take(c, q))
            remaining.remove(q)
        for q, (e, a, r) in self._not_multiples(found, options).items():
            found = [(e, a, r, q) if t[3] == q else t for t in found]
            corner[q] = self._corner_ratio(f, a, r, vertical)
            f.explain(self._wall_images(a, r, vertical))
        if self.cfg.wall_multiple_fraction > 0:
            # The wall behind the multiple replaces it; it is explained away only where it is heard (an echo that
            # is not a wall taken out of the field would change what the ceiling's confirmation compares).
            for q, (e, a, r) in self._pair_multiples(f, found, strength, vertical, scan).items():
                found = [(e, a, r, q) if t[3] == q else t for t in found]
                corner[q] = self._corner_ratio(f, a, r, vertical)
                if e >= self.wall_threshold(r)[1]:
                    f.explain(self._wall_images(a, r, vertical))
        # A wall is measured where its echo stands ``wall_cfar`` above the clutter; a farther or absorbing wall's
        # echo sinks into the reverberation and the best candidate of its quadrant is then a body's or a
        # multiple's echo: reported as not measured, not rendered.
        thresholds = [self.wall_threshold(r) for _, _, r, _ in found]
        weak = [(t, field, v) for t, (field, v) in zip(found, thresholds) if t[0] < v]
        failed = [f'wall near azimuth {a:.0f} deg: its best echo stands {e:.1f}x above the clutter, '
                  f'under {field} {v:g}' for (e, a, _, _), field, v in weak]
        found = [t for t, (_, v) in zip(found, thresholds) if t[0] >= v]
        # ... and where its echo has the floor corner a wall has: a body's flat face has almost none.
        hanging = [t for t in found if corner[t[3]] < self.cfg.wall_corner_min]
        failed += [f'wall near azimuth {a:.0f} deg at {r:.2f} m: its floor corner image holds {corner[q]:.2f} of its '
                   f'echo, under wall_corner_min {self.cfg.wall_corner_min:g} (a body\'s face, not a wall)'
                   for _, a, r, q in hanging]
        found = [t for t in found if t not in hanging]
        failed += [f'wall near azimuth {(az + 90.0 * q) % 360.0:.0f} deg: its candidates are the residue of the walls '
                   f'explained away (under wall_residual_fraction {self.cfg.wall_residual_fraction:g} of their '
                   f'evidence)' for q in sorted(residues) if q not in options]
        if not found:
            return [], None, failed
        # The box: one yaw for all walls, the evidence-weighted circular mean of (azimuth - 90 q) mod 90.
        w = np.array([e for e, *_ in found])
        ang = np.radians(4.0 * np.array([a - 90.0 * q for _, a, _, q in found]))
        yaw = math.degrees(math.atan2(np.sum(w * np.sin(ang)), np.sum(w * np.cos(ang)))) / 4.0
        top = max(w.max(), 1e-30)
        walls = []
        for e, a, r, q in sorted(found, key=lambda t: t[3]):
            if self.cfg.box_walls:    # on the box's direction, through the measured foot point (its range is exact)
                b = (yaw + 90.0 * round((a - yaw) / 90.0)) % 360.0
                a, r = b, r * math.cos(math.radians(a - b))
            walls.append(Plane(WALL, tuple(horizontal(a)), float(r), confidence=float(e / top), strength=float(e / r),
                               contrast=float(e), corner=float(corner[q])))
        return walls, float(yaw % 90.0), failed


def box_images(speaker: np.ndarray, planes: list[Plane], order: int = 2) -> np.ndarray:
    """(K, 3) the speaker's images across 2 .. ``order`` reflections on ``planes`` (no plane twice in a row:
    floor-ceiling multiples, corners wall-wall and wall-floor, parallel-wall multiples, ...), duplicates
    within 1 cm merged (the first kept, in the order of reflection depth, then of the planes crossed)."""
    normals, offsets = _plane_arrays(planes)
    images = [np.zeros((0, 3))]
    layer = np.asarray(speaker, dtype=np.float64).reshape(1, 3)
    last = np.array([-1])                                                 # the plane each image was made across
    for depth in range(1, order + 1):
        nxt = image_of(layer[:, None], normals[None], offsets[None])       # (M, P, 3)
        keep = last[:, None] != np.arange(len(planes))[None]
        layer, last = nxt[keep], np.nonzero(keep)[1]
        if depth >= 2:
            images.append(layer)
    candidates = np.concatenate(images)
    near = (np.sum((candidates[:, None] - candidates[None]) ** 2, axis=-1) <= 1e-4).tolist()   # (K, K)
    kept: list[int] = []
    for k, row in enumerate(near):
        if not any(row[j] for j in kept):
            kept.append(k)
    return candidates[kept]


def _corner_of(scores: np.ndarray) -> float:
    """A wall's floor-corner image score over its first-order score (:meth:`LayoutEstimator._wall_scores`)."""
    return float(scores[1] / max(scores[0], 1e-30))


def _plane_arrays(planes: list[Plane]) -> tuple[np.ndarray, np.ndarray]:
    """Planes as the compiled kernels take them: (P, 3) normals and (P,) offsets."""
    return (np.array([p.normal for p in planes], dtype=np.float64).reshape(-1, 3),
            np.array([p.offset for p in planes], dtype=np.float64))


def _peaks(profile: np.ndarray, fraction: float) -> np.ndarray:
    """Indices of local maxima >= fraction x the maximum, in order of index (range)."""
    p = profile
    is_peak = np.zeros(len(p), dtype=bool)
    is_peak[1:-1] = (p[1:-1] >= p[:-2]) & (p[1:-1] > p[2:])
    return np.flatnonzero(is_peak & (p >= fraction * p.max()))
