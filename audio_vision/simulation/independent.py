# SPDX-License-Identifier: Apache-2.0
"""Room impulse responses from an independent room-acoustics implementation: a drop-in for
`acoustics.room_response` whose room shell comes from `rir_generator` (audiolabs' Python wrapper of
E. Habets' image-method RIR generator), not from pyroomacoustics' ISM and this project's diffuse tail.

    sim = Simulator(cfg, room_acoustics=independent.room_response)
    audio = sim.record(scene, 1.0, seed)         # the same scene, re-recorded by the other engine

What is this module's own, and what is shared with the project:

* **Room shell** (walls, floor, ceiling): `rir_generator.generate` per emitter and all mics at once, its own
  image method at full order (every image whose arrival falls inside the RIR), its own windowed-sinc
  fractional delays (8 ms) and its own Allen & Berkley 100 Hz high-pass. Reflection coefficients are
  frequency independent, one per surface: the database material's energy absorption (the numbers of
  pyroomacoustics' materials database, data, not its simulation) reduced to one broadband value over
  the chirp's band (`broadband_absorption`), beta = sqrt(1 - alpha), in rir_generator's order
  [x0, x1, y0, y1, z0, z1] = [west, east, south, north, floor, ceiling] (`scene.SURFACES`).
* **No air absorption**: rir_generator models none (the project's ISM applies pyroomacoustics' per-band
  air absorption to every image); and no diffuse tail is needed: the image method runs to the RIR's end.
* **RIR length**: the room's Eyring RT60 from the same broadband coefficients (`eyring_rt60`, computed here),
  capped by `cfg.rir_max_s` as the project caps its own; never shorter than the direct paths. No fade-out:
  rir_generator's response ends where it ends (by then at -60 dB unless the cap cut it).
* **Amplitude**: rir_generator's images have amplitude beta-product / (4 pi r) (a point source of unit
  volume velocity); the project's emitters are specified by their level at 1 m (amplitude 1 / r), so the
  shell is scaled by 4 pi: the same convention, no acoustics changed.
* **Bodies**: the project's first-order body echoes (`acoustics.body_rirs`, with its broadband air factor
  of the 4 kHz octave when `air_absorption`) are added on top, as the issue allows ("the bodies' echoes
  may stay the project's").
* **Time base**: rir_generator places every arrival at its physical time (sample dist / c * fs, tested).
  The body echoes' builder carries pyroomacoustics' fractional-delay latency (`body_rirs` returns it), so
  the shell is written `latency` samples late into the same array and that latency is returned:
  `Simulator.record_with_info` compensates it as for the project's engine, and the audio is in physical time.
* **Ignored settings**: `cfg.ism_order` and `cfg.diffuse_tail` (the image method here is full order, no
  tail) and `rng` (nothing is random: the same room gives the same RIRs).

Cost: rir_generator evaluates 128 windowed-sinc taps per image, and the image count grows with the cube of
the RIR length: about 1 s per emitter for a 0.3 s RIR, 40 s for a 1 s RIR (8 mics, 6 x 5 x 3 m room).
"""
from __future__ import annotations

import functools
import math

import numpy as np
import pyroomacoustics as pra
import rir_generator

from .acoustics import RoomResponse, body_rirs
from .config import RecordingConfig
from .scene import SURFACES, Room

#: the band the broadband coefficients are averaged over: the echolocation chirp's sweep, Hz
CHIRP_BAND_HZ = (500.0, 7500.0)
#: octave bands of the materials database that overlap the chirp's band (centre frequencies, Hz)
_OCTAVES_HZ = (500, 1000, 2000, 4000, 8000)
_BODY_AIR_HZ = 4000                 # the project's body echoes use the air absorption of this octave
ENGINE = f'rir_generator {getattr(rir_generator, "__version__", "?")} (Habets image method, full order)'


def octave_weights(band: tuple[float, float] = CHIRP_BAND_HZ) -> dict[int, float]:
    """Weight of each database octave in the broadband value: its overlap in Hz with `band`.

    An octave centred on fc spans [fc / sqrt 2, fc * sqrt 2]; a linear sweep puts equal energy into
    every Hz, so each octave counts with the width of the sweep it holds. For 500-7500 Hz: 500 Hz
    octave 207 Hz (500-707), 1 kHz 707 Hz, 2 kHz 1414 Hz, 4 kHz 2828 Hz, 8 kHz 1843 Hz (5657-7500).
    """
    lo, hi = band
    out = {}
    for fc in _OCTAVES_HZ:
        width = min(hi, fc * math.sqrt(2.0)) - max(lo, fc / math.sqrt(2.0))
        if width > 0:
            out[fc] = width
    return out


@functools.lru_cache(maxsize=None)
def broadband_absorption(material: str, band: tuple[float, float] = CHIRP_BAND_HZ) -> float:
    """One energy absorption coefficient for a database material over `band`: the mean of its octave-band
    coefficients weighted by `octave_weights` (the mean of the reflected energy, 1 - alpha, likewise).

    Materials listed without an 8 kHz value take their 4 kHz value there (the nearest band listed).
    """
    data = pra.Material(material).energy_absorption
    coeffs = {int(round(f)): float(a) for f, a in zip(data['center_freqs'], data['coeffs'])}
    weights = octave_weights(band)
    total = 0.0
    for fc, w in weights.items():
        listed = [f for f in coeffs if f <= fc] or list(coeffs)
        total += w * coeffs[fc if fc in coeffs else max(listed)]
    return float(min(max(total / sum(weights.values()), 0.0), 1.0))


def surface_areas(size) -> np.ndarray:
    """(6,) areas of the room's surfaces in rir_generator's order [x0, x1, y0, y1, z0, z1], m^2."""
    L, W, H = (float(v) for v in size)
    return np.array([W * H, W * H, L * H, L * H, L * W, L * W])


def wall_absorption(room: Room) -> np.ndarray:
    """(6,) broadband energy absorption per surface, order [x0, x1, y0, y1, z0, z1] = `scene.SURFACES`
    (west x = 0, east x = L, south y = 0, north y = W, floor z = 0, ceiling z = H)."""
    return np.array([broadband_absorption(room.materials[s]) for s in SURFACES])


def wall_reflection(room: Room) -> np.ndarray:
    """(6,) pressure reflection coefficients beta = sqrt(1 - alpha), rir_generator's order."""
    return np.sqrt(1.0 - wall_absorption(room))


def eyring_rt60(size, alphas: np.ndarray, c: float) -> float:
    """Eyring reverberation time (s) of a shoebox with per-surface energy absorption `alphas` (rir_generator's
    order), no air absorption."""
    areas = surface_areas(size)
    S, V = float(areas.sum()), float(np.prod(size))
    alpha = min(float(areas @ np.asarray(alphas, dtype=np.float64)) / S, 0.999)
    if alpha <= 0.0:
        return math.inf
    return 24.0 * math.log(10.0) * V / (c * -S * math.log1p(-alpha))


def shell_rirs(size, beta: np.ndarray, mics: np.ndarray, sources: np.ndarray, fs: int, c: float,
               n_samples: int) -> np.ndarray:
    """(S, M, n_samples) rir_generator responses (high-pass on, full order, omnidirectional mics), scaled by
    4 pi to amplitude 1 / r per unit path; sample k is time k / fs after emission."""
    mics = np.asarray(mics, dtype=np.float64).reshape(-1, 3)
    sources = np.asarray(sources, dtype=np.float64).reshape(-1, 3)
    out = np.zeros((len(sources), len(mics), n_samples))
    for s, p in enumerate(sources):
        h = rir_generator.generate(c=c, fs=fs, r=mics, s=p, L=list(size), beta=list(beta), nsample=n_samples,
                                   mtype=rir_generator.mtype.omnidirectional, order=-1, dim=3, hp_filter=True)
        out[s] = np.asarray(h).T
    return out * (4.0 * math.pi)


def _body_air(air_absorption: bool) -> float:
    """The project's broadband air coefficient for body echoes (1/m): pyroomacoustics' 4 kHz octave."""
    if not air_absorption:
        return 0.0
    air = pra.Physics().get_air_absorption()
    return float(dict(zip(air['center_freqs'], air['coeffs']))[_BODY_AIR_HZ])


def room_response(room: Room, mic_positions: np.ndarray, source_positions: np.ndarray,
                  cfg: RecordingConfig, rng: np.random.Generator | None = None,
                  air_absorption: bool = True, scatterers=()) -> RoomResponse:
    """The RIRs from every source (S, 3) to every mic (M, 3), both in the room frame, by rir_generator; plus
    the project's first-order echoes of `scatterers` if `cfg.body_scattering`. Signature and result as
    `acoustics.room_response` (`rt60_bands`: one band, the broadband Eyring RT60 at the chirp band's
    geometric centre; `air_absorption` acts on the body echoes only; `rng` is unused)."""
    fs = int(cfg.sample_rate)
    c = float(pra.constants.get('c'))                  # the project's speed of sound: same delays for both
    mics = np.asarray(mic_positions, dtype=np.float64).reshape(-1, 3)
    sources = np.asarray(source_positions, dtype=np.float64).reshape(-1, 3)
    alphas = wall_absorption(room)
    rt60 = eyring_rt60(room.size, alphas, c)
    band = (np.array([rt60]), np.array([math.sqrt(CHIRP_BAND_HZ[0] * CHIRP_BAND_HZ[1])]))
    latency = int(pra.constants.get('frac_delay_length')) // 2
    bodies = np.zeros((len(sources), len(mics), 0))
    if cfg.body_scattering and len(scatterers) and len(sources):
        bodies, body_latency = body_rirs(sources, mics, scatterers, fs, c, _body_air(air_absorption))
        if body_latency != latency:
            raise RuntimeError(f'body echoes carry {body_latency} samples of latency, expected {latency}')
    if not len(sources):
        return RoomResponse(np.zeros((0, len(mics), 1), dtype=np.float32), latency, *band, fs)
    direct = float(np.linalg.norm(mics[None, :, :] - sources[:, None, :], axis=-1).max())
    half_window = int(round(0.004 * fs))             # rir_generator's sinc reaches 4 ms past an arrival
    n_shell = max(int(math.ceil(min(rt60, cfg.rir_max_s) * fs)), int(math.ceil(direct / c * fs)) + half_window)
    shell = shell_rirs(room.size, np.sqrt(1.0 - alphas), mics, sources, fs, c, n_shell)
    rir = np.zeros((len(sources), len(mics), max(latency + n_shell, bodies.shape[-1])))
    rir[..., latency:latency + n_shell] = shell
    rir[..., :bodies.shape[-1]] += bodies
    return RoomResponse(rir.astype(np.float32), latency, *band, fs)
