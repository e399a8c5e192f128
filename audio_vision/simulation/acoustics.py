# SPDX-License-Identifier: Apache-2.0
"""Room impulse responses (pyroomacoustics ISM + a statistical late tail) and steady-state mixing.

Early part: a pyroomacoustics `ShoeBox` with the room's database materials (7 octave bands),
`air_absorption=True`, image sources up to `recording.ism_order`. The per-(mic, source) RIRs
are assembled exactly as `Room.compute_rir()` does (same image sources, damping, air
absorption, fractional-delay sinc builder, octave filter bank, high-pass) but batched over
all pairs, which is several times faster than pyroomacoustics' per-pair loop. The octave filter
bank is pyroomacoustics' own computation with its per-FFT-size constants kept (`octave_band_sum`,
checked bit for bit against pyroomacoustics), so a dataset's samples do not depend on these shortcuts.

Late part: a low ISM order alone truncates the reverberant tail (RT60 collapses to the order's
horizon) and hybrid ray tracing costs seconds per room. Beyond the time where the ISM stops
being complete, the RIR is continued by a diffuse tail: Gaussian noise whose expected energy
follows the image-source density, 4*pi*c/V per second for pyroomacoustics' 1/r amplitude
convention, decaying per octave band with the Eyring RT60 of the same materials and air
absorption. ISM and tail are cross-faded with equal-power weights.

Bodies: every source body (sounding or silent) reflects every emitter to every mic, first
order, by geometric acoustics (`body_echo_paths`, docs/SIMULATOR.md "Bodies"): the body is a
vertical cylinder on the floor, the echo leaves its specular point with the spreading of a
curved-horizontally, flat-vertically mirror. Body echoes are added after the ISM/tail
cross-fade, so late body echoes are not faded out with the early part.

Time base: pyroomacoustics delays every arrival by half the fractional-delay filter
(`latency` samples); the mixer compensates, so recorded audio is in physical time.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pyroomacoustics as pra
import scipy.fft as sfft
from scipy import signal as sps

from .config import RecordingConfig
from .scene import Body, Room

_STFT_N, _STFT_HOP = 256, 128   # tail synthesis frames (16 ms at 16 kHz)
_BODY_AIR_HZ = 4000.0           # body echoes: broadband air absorption of this octave (mid chirp band)
_SPECULAR_ITERATIONS = 3        # fixed-point refinements of the horizontal specular point


@dataclass(frozen=True)
class Scatterer:
    """A body as sound sees it: a vertical cylinder standing on the floor (z from 0 to height)."""

    center: tuple[float, float]      # xy, room frame, m
    radius: float                    # m; a box gets an equivalent radius (see `from_body`)
    height: float                    # m
    reflection: float                # pressure reflection coefficient, broadband
    owner: int = -1                  # emitter inside this body (its own sound is not scattered), -1: none

    @classmethod
    def from_body(cls, body: Body, reflection: float, owner: int = -1) -> 'Scatterer':
        """Cylinder: itself. Box (sx, sy): radius (sx + sy) / 4, half the mean side, which matches
        the box's mean breadth over all yaws to within 25 % (a square's ranges 1..1.41 x side)."""
        if body.shape == 'cylinder':
            radius = float(body.size[0])
        else:
            radius = 0.25 * (float(body.size[0]) + float(body.size[1]))
        return cls((float(body.center[0]), float(body.center[1])), radius, body.height, float(reflection),
                   int(owner))


@dataclass(frozen=True)
class RoomResponse:
    rirs: np.ndarray            # (S, M, L) float32; sample k <-> (k - latency) / fs after emission
    latency: int                # samples of fractional-delay latency contained in `rirs`
    rt60_bands: np.ndarray      # (B,) Eyring RT60 per octave band, s
    band_centers: np.ndarray    # (B,) Hz
    fs: int


class _DatabaseMaterial(pra.Material):
    """A pyroomacoustics database material whose octave-band resampling (two interpolators per material and
    room) is computed once per (material, bands) and copied afterwards: the same coefficients, less time."""

    _resampled: dict = {}

    def __init__(self, name: str):
        super().__init__(name)
        self._name = name

    def resample(self, octave_bands):
        key = (self._name, np.asarray(octave_bands.centers, dtype=np.float64).tobytes())
        cached = self._resampled.get(key)
        if cached is None:
            super().resample(octave_bands)
            self._resampled[key] = (np.array(self.energy_absorption['coeffs']), np.array(self.scattering['coeffs']))
            return
        self.energy_absorption = {'coeffs': cached[0].copy(), 'center_freqs': octave_bands.centers}
        self.scattering = {'coeffs': cached[1].copy(), 'center_freqs': octave_bands.centers}


#: pyroomacoustics' octave bands of its material database, Hz (a material lists coefficients from the lowest)
DATABASE_OCTAVES_HZ = (125.0, 250.0, 500.0, 1000.0, 2000.0, 4000.0, 8000.0)


def band_absorption(material: str, f_low: float, f_high: float) -> float:
    """A database material's energy absorption averaged over the database's octave bands whose centre lies within
    [f_low, f_high] Hz (the coefficients the simulator's rooms are built from)."""
    coeffs = pra.Material(material).absorption_coeffs
    inside = [a for f, a in zip(DATABASE_OCTAVES_HZ, coeffs) if f_low <= f <= f_high]
    if not inside:
        raise ValueError(f'no octave band of {material} within {f_low:g}-{f_high:g} Hz')
    return float(np.mean(inside))


def build_shoebox(room: Room, fs: int, ism_order: int, air_absorption: bool = True) -> pra.ShoeBox:
    materials = {surface: _DatabaseMaterial(name) for surface, name in room.materials.items()}
    return pra.ShoeBox(list(room.size), fs=fs, materials=materials, max_order=ism_order,
                       air_absorption=air_absorption)


def eyring_rt60_bands(shoebox: pra.ShoeBox) -> np.ndarray:
    """Eyring RT60 per octave band from the room's wall absorption and air absorption."""
    areas = np.array([w.area() for w in shoebox.walls])
    alphas = np.array([np.asarray(w.absorption, dtype=np.float64) for w in shoebox.walls])  # (6, B)
    S, V = areas.sum(), float(shoebox.get_volume())
    alpha = np.clip(areas @ alphas / S, 0.0, 0.999)
    air = np.zeros_like(alpha) if shoebox.air_absorption is None else np.asarray(shoebox.air_absorption)
    return 24.0 * math.log(10.0) * V / (shoebox.c * (-S * np.log1p(-alpha) + 4.0 * air * V))


def ism_rirs(shoebox: pra.ShoeBox) -> tuple[np.ndarray, int]:
    """(S, M, L) early RIRs of every (source, mic) pair, batched; plus the latency in samples.

    Mirrors `pyroomacoustics.simulation.ism.compute_ism_rir` for omnidirectional mics and
    sources (tested against `Room.compute_rir`).
    """
    fs, c = shoebox.fs, shoebox.c
    fdl = pra.constants.get('frac_delay_length')
    latency = fdl // 2
    if shoebox.sources:
        shoebox.image_source_model()
    mics = shoebox.mic_array.R.T
    n_src, n_mic = len(shoebox.sources), len(mics)
    if n_src == 0:                                  # a silent room: nothing to build
        return np.zeros((0, n_mic, 1)), latency
    times, amps = [], []
    for s, src in enumerate(shoebox.sources):
        for m, mic in enumerate(mics):
            visible = shoebox.visibility[s][m, :].astype(bool)
            images, att = src.images[:, visible], src.damping[:, visible]
            dist = np.sqrt(np.sum((images - mic[:, None]) ** 2, axis=0))
            amp = att / dist
            if shoebox.air_absorption is not None:
                amp = amp * np.exp(-0.5 * np.asarray(shoebox.air_absorption)[:, None] * dist)
            times.append((dist / c + latency / fs).astype(np.float32))
            amps.append(amp.astype(np.float32))
    t_max = max((float(t.max()) for t in times if t.size), default=latency / fs)
    length = int(math.ceil(t_max * fs + latency + 1)) + 1
    n_bands = amps[0].shape[0] if amps else 1
    band_irs = _sinc_builder(times, amps, n_bands, n_src * n_mic, length, fs, fdl)
    if n_bands > 1:
        rir = octave_band_sum(shoebox.octave_bands, band_irs)
    else:
        rir = band_irs[0]
    if pra.constants.get('rir_hpf_enable'):
        rir = sps.sosfiltfilt(_rir_highpass_sos(fs), rir, axis=-1)
    return np.asarray(rir, dtype=np.float64).reshape(n_src, n_mic, length), latency


def _rir_highpass_sos(fs: int) -> np.ndarray:
    """The RIR high-pass of pyroomacoustics (`rir_hpf_fc`, `rir_hpf_kwargs`) as second-order sections, designed
    once per setting (the design costs more than the filtering of a whole room's RIRs)."""
    kwargs = pra.constants.get('rir_hpf_kwargs')
    key = (int(fs), float(pra.constants.get('rir_hpf_fc')), tuple(sorted(kwargs.items())))
    sos = _HPF_CACHE.get(key)
    if sos is None:
        from pyroomacoustics.utilities import design_highpass_filter_sos
        sos = _HPF_CACHE[key] = np.array(design_highpass_filter_sos(key[0], key[1], **kwargs))
    return sos.copy()                   # scipy's sosfilt wants a writable array; the cache stays pristine


_HPF_CACHE: dict = {}


def _sinc_builder(times: list[np.ndarray], amps: list[np.ndarray], n_bands: int, n_pairs: int,
                  length: int, fs: int, fdl: int) -> np.ndarray:
    """(B, P, L) band impulse trains: Hann-windowed sinc fractional delays (the filter of
    `pyroomacoustics.utilities.fractional_delay`), all images of all pairs in one bincount per
    band instead of one `rir_builder` call per pair and band.
    """
    half = fdl // 2
    counts = [len(t) for t in times]
    t_all = np.concatenate(times).astype(np.float64) * fs
    a_all = np.concatenate(amps, axis=1).astype(np.float64)                 # (B, I)
    n0 = np.floor(t_all).astype(np.int64)
    frac = t_all - n0
    taps = np.arange(fdl)
    kernel = np.hanning(fdl) * np.sinc(taps[None, :] - half - frac[:, None])  # (I, fdl)
    pair = np.repeat(np.arange(n_pairs), counts)
    index = (pair * length + n0 - half)[:, None] + taps[None, :]
    index = index.ravel()
    out = np.empty((n_bands, n_pairs, length))
    for b in range(n_bands):
        weights = (a_all[b][:, None] * kernel).ravel()
        out[b] = np.bincount(index, weights, minlength=n_pairs * length).reshape(n_pairs, length)
    return out


def octave_band_sum(octave_bands, band_irs: np.ndarray) -> np.ndarray:
    """(P, L) sum over bands b of octave band b of `band_irs[b]` (B, P, L), as pyroomacoustics'
    `octave_bands.analysis(band_irs[b], band=b)` summed in band order gives it, bit for bit.

    For pyroomacoustics' `AntoniOctaveFilterBank` the analysis and synthesis are mirrored here with their
    per-FFT-size constants (window, bins, phase factors) computed once and every band's FFTs batched in
    one call; the mirror is checked once per filter bank setting against pyroomacoustics itself (any
    difference, e.g. after an upgrade, and pyroomacoustics is used). Other filter banks: band by band.
    """
    band_irs = np.asarray(band_irs, dtype=np.float64)
    if isinstance(octave_bands, pra.acoustics.AntoniOctaveFilterBank) and _antoni_mirror_ok(octave_bands):
        return _antoni_band_sum(octave_bands, band_irs)
    return sum(_band_filter(octave_bands, band_irs[b], b) for b in range(len(band_irs)))


def _antoni_key(octave_bands) -> tuple:
    ob = octave_bands
    return (float(ob.fs), float(ob.overlap_ratio), int(ob.slope), np.asarray(ob.centers, dtype=np.float64).tobytes(),
            np.asarray(ob.bands, dtype=np.float64).tobytes())


_ANTONI_PLANS: dict = {}
_ANTONI_CHECKED: dict = {}


def _antoni_mirror_ok(octave_bands) -> bool:
    """Whether `_antoni_band_sum` reproduces pyroomacoustics exactly for this filter bank (checked once)."""
    key = _antoni_key(octave_bands)
    ok = _ANTONI_CHECKED.get(key)
    if ok is None:
        x = np.random.default_rng(0).standard_normal((octave_bands.n_bands, 3, 301))
        try:
            ref = sum(_band_filter(octave_bands, x[b], b) for b in range(len(x)))
            ok = bool(np.array_equal(_antoni_band_sum(octave_bands, x), ref))
        except Exception:                   # noqa: BLE001  any mismatch of internals: use pyroomacoustics
            ok = False
        _ANTONI_CHECKED[key] = ok
    return ok


def _antoni_plan(octave_bands, n_fft: int) -> tuple:
    """Constants of `AntoniOctaveFilterBank.wavelet_analysis` + `wavelet_synthesis` for FFT size n_fft, per band:
    (bins k, window G[b, k], analysis factor, synthesis cexp2, synthesis factor), built by the same expressions."""
    key = _antoni_key(octave_bands) + (int(n_fft),)
    plan = _ANTONI_PLANS.get(key)
    if plan is not None:
        return plan
    G, n_freq, k1, km, k2 = octave_bands._make_window_function(n_fft)
    Nm = np.ceil((k2 - k1) / 2.0).astype(int)
    upper = np.max(k1 + 2 * Nm)
    padded_length = n_freq + max(int(upper - n_freq), 0)
    if upper > n_freq:
        G = np.concatenate((G, np.zeros(G.shape[:-1] + (upper - n_freq,), dtype=G.dtype)), axis=-1)
    bands = []
    for band in range(octave_bands.n_bands):
        N = Nm[band]
        k = k1[band] + np.arange(2 * N, dtype=int)
        delta = np.sqrt(1 / (2.0 * N))
        window = G[band, k]
        j = np.arange(-N + 1, N + 1)
        analysis = 1j**band * delta * np.exp(1j * np.pi * (km[band] - k1[band]) * j / N)
        cexp1 = np.exp(-1j * np.pi * (k - km[band]) * (N - 1) / N)
        cexp2 = np.exp(-1j * np.pi * (km[band] - k1[band]) * np.arange(2 * N) / N)
        synthesis = (-1j) ** band * window * delta * cexp1
        bands.append((int(N), k, int(k1[band]), window, analysis, cexp2, synthesis))
    plan = (n_freq, padded_length, bands)
    _ANTONI_PLANS[key] = plan
    return plan


def _antoni_band_sum(octave_bands, x: np.ndarray) -> np.ndarray:
    """`AntoniOctaveFilterBank.analysis(x[b], band=b)` summed over b: the same operations on the same values
    (band by band: one band's arrays stay in cache)."""
    n_bands, n_rows, length = x.shape
    n_fft = 2 ** math.ceil(math.log2(2 * length))          # oversampling 2, as `analysis` defaults
    n_freq, padded_length, bands = _antoni_plan(octave_bands, n_fft)
    scale = np.sqrt(n_fft)
    out = 0
    for b in range(n_bands):                                 # the band order of sum(...)
        N, k, k1, window, analysis, cexp2, synthesis = bands[b]
        X = np.fft.rfft(x[b], axis=-1, n=n_fft)
        inside = k < n_freq                                  # bins past n_freq: pyroomacoustics' zero padding
        Xk = X[..., k] if inside.all() else np.where(inside, X[..., np.minimum(k, n_freq - 1)], 0)
        Xk = Xk / scale
        W_pos = np.fft.fft(window * Xk, axis=-1)
        W_neg = np.conj(np.fft.fft(window * np.conj(Xk), axis=-1))
        coeffs = analysis * np.concatenate((W_neg[..., N - 1:0:-1], W_pos[..., :N + 1]), axis=-1)
        Y = np.conj(np.fft.fft(np.conj(cexp2 * coeffs)))
        X_filt = np.zeros((n_rows, max(padded_length, n_freq)), dtype=X.dtype)
        X_filt[:, k1:k1 + 2 * N] = synthesis * Y
        out = out + np.fft.irfft(X_filt[:, :n_freq], axis=-1)[:, :length] * scale
    return out


def _band_filter(octave_bands, x: np.ndarray, band: int) -> np.ndarray:
    """One octave band of every row of x (batched when the filter bank supports it)."""
    try:
        y = octave_bands.analysis(x, band=band)
        if y.shape == x.shape:
            return y
    except (TypeError, ValueError):
        pass
    return np.stack([octave_bands.analysis(row, band=band) for row in x])  # older pyroomacoustics


def diffuse_tail(n_rows: int, length: int, latency: int, fs: int, rt60_bands: np.ndarray,
                 band_centers: np.ndarray, volume: float, c: float,
                 rng: np.random.Generator) -> np.ndarray:
    """(n_rows, length) Gaussian tails with the expected energy decay of a diffuse field.

    Synthesised in the STFT domain (sqrt-Hann, 50 % overlap: unit-variance output for unit
    gains) so every octave band decays at its own RT60.
    """
    n_frames = int(math.ceil(length / _STFT_HOP)) + 1
    freqs = np.fft.rfftfreq(_STFT_N, 1.0 / fs)
    log_f = np.log2(np.maximum(freqs, band_centers[0]))
    rt60_f = np.interp(log_f, np.log2(band_centers), rt60_bands)                  # (F,)
    t_frames = ((np.arange(n_frames) + 1) * _STFT_HOP - latency) / fs              # frame centres
    gain = 10.0 ** (-3.0 * np.maximum(t_frames, 0.0)[:, None] / rt60_f[None, :])  # amplitude
    gain[:, 0] = 0.0                                                              # no DC
    coeffs = rng.standard_normal((n_rows, n_frames, len(freqs), 2), dtype=np.float32)
    # (real, imaginary) pairs read as complex64 in place: the values of coeffs[..., 0] + 1j * coeffs[..., 1]
    spec = coeffs.view(np.complex64)[..., 0] * (gain * math.sqrt(_STFT_N / 2.0)).astype(np.float32)
    frames = np.fft.irfft(spec, n=_STFT_N, axis=-1)
    frames *= np.sqrt(sps.windows.hann(_STFT_N, sym=False))
    out = np.zeros((n_rows, (n_frames + 1) * _STFT_HOP))
    # Overlap-add through (rows, frames, hop) views of out: no reshaped copies of the frame halves.
    _frame_view(out[:, :n_frames * _STFT_HOP], n_frames)[...] += frames[:, :, :_STFT_HOP]
    _frame_view(out[:, _STFT_HOP:], n_frames)[...] += frames[:, :, _STFT_HOP:]
    # Image-source density for amplitude 1/r: energy 4*pi*c/V per second.
    return out[:, :length] * math.sqrt(4.0 * math.pi * c / (volume * fs))


def _frame_view(x: np.ndarray, n_frames: int) -> np.ndarray:
    """(rows, n_frames, hop) view of the rows of x (each row contiguous), for in-place overlap-add."""
    rows, row_stride, item = x.shape[0], x.strides[0], x.strides[1]
    hop = x.shape[1] // n_frames
    return np.lib.stride_tricks.as_strided(x, (rows, n_frames, hop), (row_stride, hop * item, item), writeable=True)


def body_echo_paths(emitters: np.ndarray, mics: np.ndarray, scatterers, air_np: float = 0.0
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """First-order specular echoes of every scatterer, for every (emitter, mic) pair.

    Returns (points (S, M, B, 3), path lengths (S, M, B) m, amplitudes (S, M, B)) in the ISM's
    convention (a direct path of length r has amplitude 1 / r); amplitude 0 where a body gives
    no specular echo. Geometric acoustics (k a >> 1) on a vertical cylinder of radius a:

    * horizontal: the specular point p lies on the circle where the normal bisects the
      directions to emitter and mic (fixed-point iteration from the bisector seen from the axis);
    * vertical: the face is a flat vertical mirror, so p sits at the height where the straight
      line from emitter to mic image crosses it, z = (z_e d_m + z_m d_e) / (d_e + d_m) with
      d_e, d_m the horizontal distances from p; outside [0, height] there is no echo;
    * amplitude: the reflected wavefront has principal radii rho1 (horizontal, 1/rho1 =
      1/r1 + 2 / (a cos i), i the incidence angle) and rho2 = r1 (flat vertically), so at the
      mic A = R / r1 * sqrt(rho1 rho2 / ((rho1 + r2) (rho2 + r2))); for r >> a this is
      R sqrt(a cos(i) / 2) / sqrt(r1 r2 (r1 + r2)), monostatically R sqrt(a) / (2 r^1.5);
    * air: amplitude exp(-air_np * (r1 + r2) / 2) with one broadband energy coefficient (1/m).

    A body does not scatter its own emitter (`owner`), nor a pair on opposite sides of it
    (forward scatter: the shadow, not modelled).
    """
    emitters = np.asarray(emitters, dtype=np.float64).reshape(-1, 3)
    mics = np.asarray(mics, dtype=np.float64).reshape(-1, 3)
    n_s, n_m, n_b = len(emitters), len(mics), len(scatterers)
    if n_b == 0 or n_s == 0:
        z = np.zeros((n_s, n_m, n_b))
        return np.zeros((n_s, n_m, n_b, 3)), z, z.copy()
    centers = np.array([b.center for b in scatterers], dtype=np.float64)          # (B, 2)
    radius = np.array([b.radius for b in scatterers], dtype=np.float64)           # (B,)
    height = np.array([b.height for b in scatterers], dtype=np.float64)
    refl = np.array([b.reflection for b in scatterers], dtype=np.float64)
    owner = np.array([b.owner for b in scatterers], dtype=np.int64)
    e_xy = emitters[:, None, None, :2]                                            # (S, 1, 1, 2)
    m_xy = mics[None, :, None, :2]                                                # (1, M, 1, 2)
    with np.errstate(invalid='ignore', divide='ignore'):
        u_e, u_m = e_xy - centers, m_xy - centers
        d_e0 = np.linalg.norm(u_e, axis=-1, keepdims=True)
        d_m0 = np.linalg.norm(u_m, axis=-1, keepdims=True)
        outside = (d_e0[..., 0] > radius) & (d_m0[..., 0] > radius)               # (S, M, B)
        n = u_e / d_e0 + u_m / d_m0
        n_len = np.linalg.norm(n, axis=-1)                 # ~0: emitter and mic on opposite sides
        for it in range(_SPECULAR_ITERATIONS + 1):
            n = n / np.linalg.norm(n, axis=-1, keepdims=True)                     # unit normal at p
            p = centers + radius[:, None] * n                                     # (S, M, B, 2)
            v_e, v_m = e_xy - p, m_xy - p
            d_e = np.linalg.norm(v_e, axis=-1)
            d_m = np.linalg.norm(v_m, axis=-1)
            if it == _SPECULAR_ITERATIONS:
                break
            n = v_e / d_e[..., None] + v_m / d_m[..., None]
        cos_i = np.sum(v_e * n, axis=-1) / d_e
        z_e, z_m = emitters[:, None, None, 2], mics[None, :, None, 2]
        z_p = (z_e * d_m + z_m * d_e) / (d_e + d_m)
    ok = (outside & (n_len > 1e-6) & (np.sum(v_m * n, axis=-1) > 0) & (cos_i > 1e-3)
          & (z_p >= 0.0) & (z_p <= height) & (owner[None, None, :] != np.arange(n_s)[:, None, None]))
    ok &= np.isfinite(z_p) & np.isfinite(cos_i)
    points = np.concatenate([np.where(ok[..., None], p, 0.0), np.where(ok, z_p, 0.0)[..., None]], axis=-1)
    r1 = np.linalg.norm(emitters[:, None, None, :] - points, axis=-1)
    r2 = np.linalg.norm(points - mics[None, :, None, :], axis=-1)
    r1, r2 = np.where(ok, r1, 1.0), np.where(ok, r2, 1.0)
    rho1 = 1.0 / (1.0 / r1 + 2.0 / (radius * np.where(ok, cos_i, 1.0)))
    amp = refl / r1 * np.sqrt(rho1 * r1 / ((rho1 + r2) * (r1 + r2))) * np.exp(-0.5 * air_np * (r1 + r2))
    return points, np.where(ok, r1 + r2, 0.0), np.where(ok, amp, 0.0)


def body_rirs(emitters: np.ndarray, mics: np.ndarray, scatterers, fs: int, c: float,
              air_np: float = 0.0) -> tuple[np.ndarray, int]:
    """(S, M, L) impulse responses of the body echoes alone, latency included like `ism_rirs`.

    Same fractional-delay sinc and high-pass as the ISM, one broadband band (no octave
    filtering: the reflection coefficient is frequency independent).
    """
    fdl = pra.constants.get('frac_delay_length')
    latency = fdl // 2
    _, dist, amp = body_echo_paths(emitters, mics, scatterers, air_np)
    n_s, n_m, n_b = amp.shape
    valid = amp.reshape(n_s * n_m, n_b) != 0.0
    if not valid.any():
        return np.zeros((n_s, n_m, 0)), latency
    t = (dist / c + latency / fs).reshape(n_s * n_m, n_b)
    length = int(math.ceil(float(t[valid].max()) * fs)) + latency + 2
    times = [t[i][valid[i]] for i in range(n_s * n_m)]
    amps = [amp.reshape(n_s * n_m, n_b)[i][valid[i]][None, :] for i in range(n_s * n_m)]
    rir = _sinc_builder(times, amps, 1, n_s * n_m, length, fs, fdl)[0]
    if pra.constants.get('rir_hpf_enable'):
        rir = sps.sosfiltfilt(_rir_highpass_sos(fs), rir, axis=-1)
    return rir.reshape(n_s, n_m, length), latency


def _air_coefficient(shoebox: pra.ShoeBox) -> float:
    """Air energy absorption (1/m) of the octave band nearest `_BODY_AIR_HZ` (0 without air)."""
    if shoebox.air_absorption is None:
        return 0.0
    centers = np.asarray(shoebox.octave_bands.centers, dtype=np.float64)
    return float(np.asarray(shoebox.air_absorption)[int(np.argmin(np.abs(np.log2(centers / _BODY_AIR_HZ))))])


def room_response(room: Room, mic_positions: np.ndarray, source_positions: np.ndarray,
                  cfg: RecordingConfig, rng: np.random.Generator,
                  air_absorption: bool = True, scatterers=()) -> RoomResponse:
    """The RIRs from every source (S, 3) to every mic (M, 3), both in the room frame; plus the
    first-order echoes of `scatterers` (a sequence of `Scatterer`) if `cfg.body_scattering`.
    """
    fs = cfg.sample_rate
    shoebox = build_shoebox(room, fs, cfg.ism_order, air_absorption)
    shoebox.add_microphone_array(np.asarray(mic_positions, dtype=np.float64).T)
    for p in np.asarray(source_positions, dtype=np.float64).reshape(-1, 3):
        shoebox.add_source(p)
    early, latency = ism_rirs(shoebox)
    rt60 = eyring_rt60_bands(shoebox)
    centers = np.asarray(shoebox.octave_bands.centers, dtype=np.float64)
    n_src, n_mic, n_early = early.shape
    bodies = np.zeros((n_src, n_mic, 0))
    if cfg.body_scattering and len(scatterers) and n_src:
        bodies, _ = body_rirs(np.asarray(source_positions, dtype=np.float64).reshape(-1, 3), mic_positions,
                              scatterers, fs, shoebox.c, _air_coefficient(shoebox))
    n_body = bodies.shape[-1]
    if not cfg.diffuse_tail or n_src == 0:
        rir = np.zeros((n_src, n_mic, max(n_early, n_body)))
        rir[..., :n_early] = early
        rir[..., :n_body] += bodies
        return RoomResponse(rir.astype(np.float32), latency, rt60, centers, fs)

    tail_s = min(cfg.rir_max_s, float(rt60.max()))
    length = max(n_early, n_body, latency + int(math.ceil(tail_s * fs)))
    early_padded = np.zeros((n_src, n_mic, max(length, n_early)))
    early_padded[:, :, :n_early] = early
    tail = diffuse_tail(n_src * n_mic, length, latency, fs, rt60, centers,
                        float(shoebox.get_volume()), shoebox.c, rng).reshape(n_src, n_mic, length)
    # Cross-fade where the ISM stops being complete: the first order-(N+1) images travel at
    # least about sqrt(r_direct^2 + (N * smallest room dimension)^2). Beyond: tail only.
    direct = np.linalg.norm(np.asarray(mic_positions)[None, :, :]
                            - np.asarray(source_positions).reshape(-1, 1, 3), axis=-1)  # (S, M)
    horizon = max(cfg.ism_order, 1) * min(room.size)
    t_end = np.sqrt(direct ** 2 + horizon ** 2) / shoebox.c
    t_start = np.maximum(direct / shoebox.c + 0.001, t_end - 0.5 * horizon / shoebox.c)
    t_end = np.maximum(t_end, t_start + 0.002)
    n_mix = min(length, latency + int(math.ceil(float(t_end.max()) * fs)) + 1)
    t = (np.arange(n_mix) - latency) / fs
    theta = 0.5 * np.pi * np.clip((t - t_start[..., None]) / (t_end - t_start)[..., None], 0.0, 1.0)
    rir = tail
    rir[..., :n_mix] = np.cos(theta) * early_padded[..., :n_mix] + np.sin(theta) * tail[..., :n_mix]
    rir[..., :n_body] += bodies            # after the cross-fade: late body echoes keep their level
    # Fade the last 5 % so a capped tail ends without a click.
    n_fade = max(int(0.05 * length), 1)
    rir[..., -n_fade:] *= np.linspace(1.0, 0.0, n_fade)
    return RoomResponse(rir.astype(np.float32), latency, rt60, centers, fs)


def convolve_steady(signals: np.ndarray, rirs: np.ndarray, out_start: int, n_out: int) -> np.ndarray:
    """Mic signals (M, n_out) = sum over sources of signals (S, T) * rirs (S, M, L), output
    linear-convolution samples [out_start, out_start + n_out). Requires out_start >= L - 1 so
    every output sample has its full history (steady state). Overlap-save FFT convolution.
    """
    n_src, n_mic, L = rirs.shape
    if out_start < L - 1:
        raise ValueError(f'out_start {out_start} < RIR length - 1 ({L - 1}): output not steady-state')
    if n_src == 0:
        return np.zeros((n_mic, n_out), dtype=np.float32)
    single = n_out + L - 1
    nfft = sfft.next_fast_len(single if single <= 2 ** 17 else max(4 * L, 2 ** 15), real=True)
    step = nfft - L + 1
    H = sfft.rfft(rirs.astype(np.float32), nfft, axis=-1)                      # (S, M, F)
    out = np.empty((n_mic, n_out), dtype=np.float32)
    for o in range(0, n_out, step):
        a = out_start + o - (L - 1)
        seg = np.zeros((n_src, nfft), dtype=np.float32)
        avail = signals[:, a:a + nfft]
        seg[:, :avail.shape[1]] = avail
        X = sfft.rfft(seg, axis=-1)                                            # (S, F)
        Y = np.einsum('sf,smf->mf', X, H)
        y = sfft.irfft(Y, nfft, axis=-1)[:, L - 1:]
        k = min(step, n_out - o)
        out[:, o:o + k] = y[:, :k]
    return out
