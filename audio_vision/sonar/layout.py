# SPDX-License-Identifier: Apache-2.0
"""The room's planes measured from the chirp's echoes: floor, ceiling, walls (a shoebox by default).

Model (docs/SONAR.md): the array is level (the floor's normal is the array frame's -z), the walls are
vertical, and in a shoebox they meet at right angles. Each plane is a normal ``n`` (unit, array frame,
pointing from the array to the plane) and an offset ``d`` (the array centre's distance to it):
{x : n . x = d}. Its first-order echo is the speaker's image across it (:func:`echoes.image_of`).

Order of the fit, each step explaining away what it found (docs/SONAR.md, "Model"):
1. floor: the range profile of images straight down; a peak counts only if the vertical holds at least
   ``vertical_share`` of the strongest coherent echo on a sphere of directions at its range; the earliest
   with at least half the best evidence, placed by a parabola;
2. walls: far-field beams over azimuth x range, peaks against the local clutter (CFAR), refined with the
   exact evidence of the first-order image and its corner image with the floor; the strongest wall fixes
   the box's yaw, the other three are searched around yaw + 90 deg k;
3. ceiling last (an absorbing ceiling's echo is weaker than the walls' leaks), corroborated by its images
   with the floor.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.ndimage import uniform_filter1d

from .config import SonarConfig
from .echoes import EchoField, MatchedFilter, far_field_steering, image_of, parabola_offset

FLOOR, CEILING, WALL = 'floor', 'ceiling', 'wall'
_UP = np.array([0.0, 0.0, 1.0])


@dataclass(frozen=True)
class Plane:
    label: str                         # floor | ceiling | wall
    normal: tuple[float, float, float]  # unit, array frame, from the array towards the plane
    offset: float                      # m, array centre to the plane along `normal`
    confidence: float = 1.0            # [0, 1]
    strength: float = 0.0              # echo envelope (matched filter units)

    @property
    def n(self) -> np.ndarray:
        return np.asarray(self.normal, dtype=np.float64)


@dataclass(frozen=True)
class RoomLayout:
    planes: tuple[Plane, ...] = ()
    yaw_deg: float | None = None        # walls' yaw in the array frame (box fit), mod 90
    failed: tuple[str, ...] = field(default_factory=tuple)   # what could not be measured, and why

    def get(self, label: str) -> list[Plane]:
        return [p for p in self.planes if p.label == label]

    def to_dict(self) -> dict:
        return {'planes': [{'label': p.label, 'normal': list(p.normal), 'offset': p.offset,
                            'confidence': p.confidence, 'strength': p.strength} for p in self.planes],
                'yaw_deg': self.yaw_deg, 'failed': list(self.failed)}


def fibonacci_sphere(n: int) -> np.ndarray:
    """(n, 3) nearly uniform unit directions."""
    k = np.arange(n) + 0.5
    z = 1.0 - 2.0 * k / n
    phi = math.pi * (3.0 - math.sqrt(5.0)) * k
    r = np.sqrt(1.0 - z * z)
    return np.stack([r * np.cos(phi), r * np.sin(phi), z], axis=1)


def horizontal(azimuth_deg) -> np.ndarray:
    a = np.radians(np.asarray(azimuth_deg, dtype=np.float64))
    return np.stack([np.cos(a), np.sin(a), np.zeros_like(a)], axis=-1)


class LayoutEstimator:
    """(C, N) window -> :class:`RoomLayout`, for one array and chirp."""

    def __init__(self, cfg: SonarConfig, mic_positions: np.ndarray, direct_template: np.ndarray | None = None):
        self.cfg = cfg
        self.mics = np.asarray(mic_positions, dtype=np.float64).reshape(-1, 3)
        self.matched_filter = MatchedFilter(cfg)
        self.direct_template = direct_template
        self.sphere = fibonacci_sphere(400)
        self.reach_window = np.arange(-0.1, 0.1001, 0.02)      # m of image distance around a candidate
        # An array without vertical aperture hears up and down alike: it cannot tell floor from ceiling.
        self.vertical_aperture = float(np.ptp(self.mics[:, 2]))
        self.azimuths = np.arange(0.0, 360.0, cfg.azimuth_step_deg)
        freqs, c = self.matched_filter.freqs, cfg.speed_of_sound
        self.azimuth_steering = far_field_steering(horizontal(self.azimuths), self.mics, freqs, c)
        self.speaker = np.asarray(cfg.speaker_position, dtype=np.float64)

    def field(self, audio: np.ndarray) -> EchoField:
        return EchoField(self.matched_filter, self.mics, audio, self.direct_template)

    def estimate(self, audio: np.ndarray) -> RoomLayout:
        f = self.field(audio)
        planes, failed = [], []
        floor = self._vertical(f, -1.0, self.cfg.floor_range_m)
        if floor is not None:               # its echo, heard by half the mics, would pose as a ceiling
            f.explain(image_of(self.speaker, floor.n, floor.offset)[None])
        # The walls before the ceiling: an absorbing ceiling's echo is weaker than the walls' leaks into the
        # vertical profile, so those are explained away first.
        walls, yaw = self._walls(f, floor)
        ceiling = self._vertical(f, 1.0, self.cfg.ceiling_range_m, after=floor)
        for label, plane in ((FLOOR, floor), (CEILING, ceiling)):
            if plane is None:
                failed.append(f'{label}: no echo that comes from the vertical')
            else:
                planes.append(plane)
        planes += walls
        if yaw is None:
            failed.append('walls: no wall echo')
        return RoomLayout(tuple(planes), yaw, tuple(failed))

    # --- floor and ceiling -------------------------------------------------------------------
    def _vertical(self, f: EchoField, sign: float, limits, after: Plane | None = None) -> Plane | None:
        """The floor (sign -1) or ceiling (+1): of the range profile's local maxima (incoherent: smooth, so a
        parabola places the peak finely), those whose vertical image holds at least ``vertical_share`` of the
        strongest coherent echo at their range (an echo of a wall at the same range leaks into the vertical
        profile but is far stronger in its own direction); of them the earliest with at least half the best
        evidence (the ceiling's evidence includes its images with the floor)."""
        cfg = self.cfg
        n = sign * _UP
        offsets = np.arange(limits[0], limits[1], 0.001)
        profile = f.score(image_of(self.speaker, n, offsets), coherent=False)
        accepted = []
        peaks = _peaks(profile, cfg.peak_fraction)
        # Examined: the peaks strongest in the coherent vertical image (the incoherent profile ranks the walls'
        # leaks too high), each within a few mm of its incoherent peak.
        around_peaks = offsets[peaks][:, None] + np.arange(-0.01, 0.0101, 0.002)[None]
        coherent = f.score(image_of(self.speaker, n, around_peaks)).max(axis=1)
        for k in peaks[np.argsort(coherent)[::-1][:cfg.vertical_candidates]]:
            if after is not None and abs(offsets[k] - after.offset) < 0.05:
                continue                        # what is left of the floor's echo, heard "up" by half the mics
            reach = np.maximum(2.0 * offsets[k] + self.reach_window, 1e-3)
            around = f.score(self.speaker + reach[:, None, None] * self.sphere[None])       # (R, S)
            vertical = f.score(self.speaker + reach[:, None] * n[None])                     # (R,)
            if self.vertical_aperture == 0:     # planar: up and down alike
                vertical = np.maximum(vertical, f.score(self.speaker - reach[:, None] * n[None]))
            if vertical.max() < cfg.vertical_share * around.max():
                continue
            near = offsets[k] + np.arange(-0.01, 0.0101, 0.001)
            first = image_of(self.speaker, n, near)
            evidence = float(f.score(first).max())
            if after is not None:               # the ceiling: its images with the floor corroborate it
                evidence += float(f.score(image_of(first, after.n, after.offset)).max())
                evidence += float(f.score(image_of(image_of(self.speaker, after.n, after.offset), n, near)).max())
            accepted.append((k, evidence))
        if not accepted:
            return None
        # Multiples (floor-ceiling images) come later than their plane and may gather as much evidence: the
        # earliest candidate with at least half the best evidence.
        top = max(e for _, e in accepted)
        k = min(k for k, e in accepted if e >= 0.5 * top)
        d = offsets[k] + parabola_offset(profile, k) * (offsets[1] - offsets[0])
        return Plane(FLOOR if sign < 0 else CEILING, tuple(n), float(d),
                     confidence=float(min(1.0, profile[k] / (np.median(profile) * 10 + 1e-30))),
                     strength=float(profile[k]))

    # --- walls ---------------------------------------------------------------------------------
    def _wall_images(self, azimuth_deg: np.ndarray, offset: np.ndarray, vertical: list[Plane]) -> np.ndarray:
        """(..., 1 + len(vertical), 3) images of a vertical wall: first order, then its corner images with
        the floor and ceiling (each as strong as the first order, and what a body standing in the room has not)."""
        first = image_of(self.speaker, horizontal(azimuth_deg), offset)
        return np.stack([first] + [image_of(first, p.n, p.offset) for p in vertical], axis=-2)

    def _wall_evidence(self, f: EchoField, azimuth_deg, offset, vertical) -> np.ndarray:
        return f.score(self._wall_images(azimuth_deg, offset, vertical)).sum(axis=-1)

    def _wall_candidates(self, f: EchoField, azimuths: np.ndarray, vertical, count: int = 6,
                         steering: np.ndarray | None = None):
        """Strongest local maxima of the far-field beams over (azimuth, wall range), refined by their exact
        wall evidence: [(evidence, azimuth, offset)], best first. ``steering``: the azimuths' far-field
        steering, if at hand."""
        cfg = self.cfg
        if steering is None:
            steering = self.azimuth_steering if azimuths is self.azimuths else self._steering(azimuths)
        beams = f.beams(steering)                                                       # (A, P)
        fs, c = cfg.sample_rate, cfg.speed_of_sound
        k0 = int(math.floor(2 * cfg.wall_range_m[0] / c * fs))
        k1 = int(math.ceil(2 * cfg.wall_range_m[1] / c * fs))
        # Detection against the local clutter (cell-averaging CFAR along range): far walls are weak, but
        # so is what surrounds them; range-compensated amplitudes would favour the reverberant tail.
        cells = int(round(2 * cfg.cfar_window_m / c * fs)) | 1
        noise = uniform_filter1d(beams, cells, axis=1, mode='wrap')
        window = beams[:, k0:k1] / (noise[:, k0:k1] + 1e-30)
        noise = noise[:, k0:k1]
        peak = np.ones_like(window, dtype=bool)
        peak[:, 1:-1] = (window[:, 1:-1] >= window[:, :-2]) & (window[:, 1:-1] > window[:, 2:])
        if len(azimuths) > 2:
            peak &= (window >= np.roll(window, 1, axis=0)) & (window >= np.roll(window, -1, axis=0))
        flat = np.flatnonzero(peak.ravel())
        order = flat[np.argsort(window.ravel()[flat])[::-1][:count]]
        out = []
        for idx in order:
            a, k = np.unravel_index(int(idx), window.shape)
            r0 = (k + k0) / fs * c / 2.0
            az = azimuths[a] + np.arange(-2.0, 2.01, 0.25)
            rr = r0 + np.arange(-0.04, 0.0401, 0.002)
            ev = self._wall_evidence(f, az[:, None], rr[None, :], vertical)
            i, j = np.unravel_index(int(np.argmax(ev)), ev.shape)
            ratio = ev[i, j] / ((len(vertical) + 1) * noise[a, k] + 1e-30)
            out.append((float(ratio), float(az[i]), float(rr[j] + parabola_offset(ev[i], j) * 0.002)))
        return sorted(out, reverse=True)

    def _steering(self, azimuths: np.ndarray) -> np.ndarray:
        return far_field_steering(horizontal(azimuths), self.mics, self.matched_filter.freqs, self.cfg.speed_of_sound)

    def _walls(self, f: EchoField, floor: Plane | None):
        vertical = [] if floor is None else [floor]
        found = []                                           # (evidence, azimuth, offset, quadrant)
        cands = self._wall_candidates(f, self.azimuths, vertical)
        if not cands:
            return [], None
        ev, az, r = cands[0]
        found.append((ev, az, r, 0))
        f.explain(self._wall_images(az, r, vertical))
        remaining = [1, 2, 3]
        sectors = {q: az + 90.0 * q + np.arange(-4.0, 4.01, 0.5) for q in remaining}
        steering = {q: self._steering(a) for q, a in sectors.items()}    # the field changes, the sectors don't
        while remaining:
            best = None
            for q in remaining:
                c = self._wall_candidates(f, sectors[q], vertical, count=4, steering=steering[q])
                if c and (best is None or c[0][0] > best[0][0]):
                    best = (c[0], q)
            if best is None:
                break
            (ev_q, az_q, r_q), q = best
            found.append((ev_q, az_q, r_q, q))
            f.explain(self._wall_images(az_q, r_q, vertical))
            remaining.remove(q)
        # The box: one yaw for all walls, the evidence-weighted circular mean of (azimuth - 90 q) mod 90.
        w = np.array([e for e, *_ in found])
        ang = np.radians(4.0 * np.array([a - 90.0 * q for _, a, _, q in found]))
        yaw = math.degrees(math.atan2(np.sum(w * np.sin(ang)), np.sum(w * np.cos(ang)))) / 4.0
        top = max(w.max(), 1e-30)
        walls = []
        for e, a, r, q in sorted(found, key=lambda t: t[3]):
            walls.append(Plane(WALL, tuple(horizontal(a)), float(r), confidence=float(e / top), strength=float(e / r)))
        return walls, float(yaw % 90.0)


def _peaks(profile: np.ndarray, fraction: float) -> np.ndarray:
    """Indices of local maxima >= fraction x the maximum, in order of index (range)."""
    p = profile
    is_peak = np.zeros(len(p), dtype=bool)
    is_peak[1:-1] = (p[1:-1] >= p[:-2]) & (p[1:-1] > p[2:])
    return np.flatnonzero(is_peak & (p >= fraction * p.max()))
