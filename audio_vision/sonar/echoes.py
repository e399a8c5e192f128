# SPDX-License-Identifier: Apache-2.0
"""The chirp's echoes as the array hears them: folded window -> matched filter at full resolution ->
direct path located and removed -> a scorer of image-source hypotheses.

An echo of a plane is the speaker's *image* across the plane; it reaches mic m at
``t_e + |X - p_m| / c`` (``t_e`` the emission, ``X`` the image, ``p_m`` the mic), so a hypothesis
about the room is scored by sampling each mic's matched-filter envelope at those delays
(:meth:`EchoField.score`): an envelope back-projection. The compressed chirp is ~c / B = 5 cm long
and the array 0.2 m wide, so a wrong direction misaligns the mics' envelopes within a few degrees:
sharper than the delay-and-sum beam of the same array at the chirp's frequencies.

Times are measured from the direct path, so a playback-to-capture latency of the speaker cancels:
``t_e`` is estimated from the direct arrivals, whose delays the array geometry gives.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.fft as sfft

from audio_vision.core.features.chirp import chirp_pulse

from .config import GATE_LEAD, SonarConfig
from .kernels import (arrival_phases, backproject, backproject_envelope, remove_arrivals, remove_arrivals_each_mic,
                      shifted_sum, steered_sum)


class MatchedFilter:
    """Folds a window by the chirp period and compresses the chirp: (C, N) audio -> the analytic
    matched-filter spectrum (C, F) on the in-band bins of the period's FFT. With a ``calibration``
    (:class:`~audio_vision.sonar.calibration.SpeakerCalibration`) the speaker's measured response is equalised
    (regularised inverse), so every arrival compresses to the ideal pulse."""

    def __init__(self, cfg: SonarConfig, calibration=None):
        self.cfg = cfg
        fs, period = cfg.sample_rate, cfg.period_samples
        pulse = chirp_pulse(fs, cfg.chirp_f_start, cfg.chirp_f_end, cfg.chirp_duration_s, cfg.chirp_kind)
        self.period = period
        #: the full period's grid (the emission time and the direct path are found and removed on it)
        self.full = SpectrumGrid.of_chirp(cfg, period, pulse)
        self.bins, self.freqs = self.full.bins, self.full.freqs     # (F,) rfft bins kept, their Hz
        self.pulse_spectrum = self.full.pulse_spectrum             # (F,) the ideal chirp as emitted
        self.filter = (np.conj(self.pulse_spectrum) * self.full.taper / len(pulse)).astype(np.complex128)
        if calibration is not None:            # a measured speaker (sonar/calibration.py) equalised away
            calibration.check(cfg)
            g = calibration.on(self.freqs)
            self.filter *= np.conj(g) / (np.abs(g) ** 2 + 0.01 * np.mean(np.abs(g) ** 2))
        # Every echo the front-end measures comes back within ``gate_fraction`` of the period (walls within
        # wall_range_m, reflectors within reflector_range_m: SonarConfig checks their round trips), so once the
        # direct path is removed the field is gated to [-GATE_LEAD, gate_fraction - GATE_LEAD) of the period around
        # the emission (circular: the lead holds the CFAR's neighbours of the nearest ranges) and lives on the in-band
        # bins of that stretch: (a quarter by default) the bins to explain echoes on, inverse FFTs of that length.
        self.gate_length = int(period * cfg.gate_fraction)
        self.gate_lead = int(period * GATE_LEAD)            # samples before the emission kept
        self.gate = SpectrumGrid.of_chirp(cfg, self.gate_length, pulse)
        #: an arrival later than this has wrapped into the gate's lead: it is not in the gated field
        self.gate_end_s = (self.gate_length - self.gate_lead) / fs

    def fold(self, audio: np.ndarray) -> np.ndarray:
        """(C, N) -> (C, period): the periods of the window summed (each holds every echo of one chirp)."""
        audio = np.asarray(audio, dtype=np.float64)
        n = audio.shape[-1] // self.period
        if n < 1:
            raise ValueError(f'window of {audio.shape[-1]} samples is shorter than one chirp period ({self.period})')
        return audio[..., :n * self.period].reshape(*audio.shape[:-1], n, self.period).sum(axis=-2) / n

    def __call__(self, audio: np.ndarray) -> np.ndarray:
        folded = self.fold(audio)
        if not np.isfinite(folded).all():
            raise ValueError('the window has non-finite samples (NaN or inf): drop it instead of measuring it')
        spec = sfft.rfft(folded, axis=-1)[..., self.bins]
        return spec * self.filter

    def analytic(self, spectrum: np.ndarray, grid: 'SpectrumGrid | None' = None) -> np.ndarray:
        """(C, F) in-band spectrum on ``grid`` (the full period's by default) -> (C, grid.length * upsample)
        analytic signal (its modulus is the envelope), in single precision: it is sampled and summed, never
        subtracted (the explained echoes are subtracted from the double-precision spectrum), and the upsampled
        inverse FFTs are most of the front-end's FFT time."""
        grid = self.full if grid is None else grid
        up = self.cfg.upsample
        full = np.zeros(spectrum.shape[:-1] + (grid.length * up,), dtype=np.complex64)
        full[..., grid.band] = spectrum * (2.0 * up)
        return sfft.ifft(full, axis=-1, overwrite_x=True)

    def gated(self, spectrum: np.ndarray, t_e: float) -> np.ndarray:
        """(C, F) spectrum on the full period's grid, emission at ``t_e`` -> (C, F') on the gate's grid, emission
        at t = 0: the gate [-lead, length - lead) around the emission (``gate_fraction`` of the period), circular."""
        full = np.zeros((spectrum.shape[0], self.period), dtype=np.complex128)
        full[:, self.full.band] = spectrum * np.exp(2j * np.pi * self.full.freqs * t_e)[None]   # emission at t = 0
        timed = sfft.ifft(full, axis=-1, overwrite_x=True)
        kept = np.concatenate([timed[:, :self.gate_length - self.gate_lead], timed[:, -self.gate_lead:]], axis=1)
        return sfft.fft(kept, axis=-1)[:, self.gate.bins]


@dataclass(frozen=True)
class SpectrumGrid:
    """The chirp's in-band bins of one FFT length, and what a unit arrival (the compressed pulse) looks like on
    them."""

    length: int                      # FFT length, samples at the sample rate
    bins: np.ndarray                 # (F,) rfft bins kept
    freqs: np.ndarray                # (F,) Hz, a uniform grid
    step: float                      # Hz between bins
    pulse_spectrum: np.ndarray       # (F,) the ideal chirp as emitted
    taper: np.ndarray                # (F,) Hann across the band: the direct path's range sidelobes stay low
    template: np.ndarray             # (F,) the compressed pulse (zero-phase): one arrival of unit amplitude
    band_slices: tuple[slice, ...]   # sub-bands with their own amplitude when an echo is explained away
    band_edges: np.ndarray           # (B + 1,) int64: the same sub-bands' bin bounds

    @property
    def band(self) -> slice:
        """``bins`` as a slice (they are consecutive): a slice assignment instead of a gather."""
        return slice(int(self.bins[0]), int(self.bins[-1]) + 1)

    @classmethod
    def of_chirp(cls, cfg: SonarConfig, length: int, pulse: np.ndarray) -> 'SpectrumGrid':
        fs = cfg.sample_rate
        freqs = np.fft.rfftfreq(length, 1.0 / fs)
        bins = np.flatnonzero((freqs >= cfg.chirp_f_start) & (freqs < cfg.chirp_f_end))
        taper = np.sin(np.pi * (freqs[bins] - cfg.chirp_f_start) / (cfg.chirp_f_end - cfg.chirp_f_start)) ** 2
        spectrum = np.fft.rfft(pulse, length)[bins]
        edges = np.linspace(0, len(bins), cfg.explain_bands + 1).round().astype(int)
        template = np.abs(spectrum) ** 2 * taper / len(pulse)
        return cls(length, bins, freqs[bins], fs / length, spectrum, taper, template,
                   tuple(slice(a, b) for a, b in zip(edges[:-1], edges[1:])), edges.astype(np.int64))


@dataclass(frozen=True)
class ScanGrid:
    """Where the coarse beam scans live: the gate's in-band bins ``band`` (a slice of ``mf.gate.bins``) placed at
    ``positions`` of an inverse FFT of ``length`` samples at ``rate`` samples / s. The whole band at the sample rate,
    or a sub-band at the coarsest rate that holds it: bin k of the gate's FFT goes to k mod ``length``, exact for
    the decimated samples as long as no two bins share a position (the sub-band is at most ``length`` bins wide)."""

    band: slice
    positions: np.ndarray            # (F',) int64
    length: int
    rate: float

    @classmethod
    def of(cls, mf: 'MatchedFilter', band_hz: tuple[float, float] | None) -> 'ScanGrid':
        freqs, bins = mf.gate.freqs, mf.gate.bins
        if band_hz is None:
            return cls(slice(0, len(bins)), bins.astype(np.int64), mf.gate_length, float(mf.cfg.sample_rate))
        j = np.flatnonzero((freqs >= band_hz[0]) & (freqs < band_hz[1]))
        width = len(j)
        decimation = max(d for d in range(1, mf.gate_length + 1)
                         if mf.gate_length % d == 0 and mf.gate_length // d >= width)
        length = mf.gate_length // decimation
        return cls(slice(int(j[0]), int(j[-1]) + 1), (bins[j] % length).astype(np.int64), length,
                   mf.cfg.sample_rate / decimation)


def image_of(point: np.ndarray, normal: np.ndarray, offset: float) -> np.ndarray:
    """Mirror ``point`` across the plane {x : n . x = offset} (n unit); point (..., 3), normal (..., 3)
    and offset (...) broadcast against each other."""
    point = np.asarray(point, dtype=np.float64)
    n = np.asarray(normal, dtype=np.float64)
    return point + 2.0 * (np.asarray(offset, dtype=np.float64) - (point * n).sum(axis=-1))[..., None] * n


class EchoField:
    """The matched-filtered window of one stream position, direct path removed, gated around the emission,
    ready to score images.

    ``spectrum`` (C, F'): the matched filter's output on the gate's grid (``mf.gate``), the emission at t = 0;
    ``signal`` (C, L) its analytic signal at ``rate``; ``mics`` (C, 3); ``t_e``: the emission time within the
    period (s), from the direct path.
    """

    def __init__(self, mf: MatchedFilter, mics: np.ndarray, audio: np.ndarray):
        cfg = mf.cfg
        self.mf, self.cfg = mf, cfg
        self.mics = np.ascontiguousarray(np.asarray(mics, dtype=np.float64).reshape(-1, 3))
        self.speaker = np.asarray(cfg.speaker_position, dtype=np.float64)
        self._mic_sq = np.einsum('ci,ci->c', self.mics, self.mics)
        spectrum = mf(audio)                                                     # (C, F) full period
        if spectrum.shape[0] != len(self.mics):
            raise ValueError(f'audio has {spectrum.shape[0]} channels, the array {len(self.mics)} mics')
        self.rate = cfg.sample_rate * cfg.upsample                               # envelope samples / s
        self.direct_delays = np.linalg.norm(self.mics - self.speaker, axis=1) / cfg.speed_of_sound  # (C,)
        self.t_e = self._emission_time(np.abs(mf.analytic(spectrum)))
        self.direct_amplitude = _remove(spectrum, self.t_e + self.direct_delays[:, None], mf.full, per_mic=True)
        # C order: each mic's bins contiguous, as the compiled kernels read them
        self.spectrum = np.ascontiguousarray(mf.gated(spectrum, self.t_e))      # (C, F') direct path removed
        self._spectrum_changed()

    def _emission_time(self, env: np.ndarray) -> float:
        """Emission time (s within the period) that best aligns the direct arrivals: the lag maximising
        the sum of each mic's envelope at its geometric direct delay, refined by a parabola."""
        length, up = env.shape[-1], self.cfg.upsample
        shifts = self.direct_delays * self.rate
        # Every upsample-th lag first (the envelope is band-limited: a peak spans several of them), then every lag
        # around the best of those: the same sums where they are formed, so the same maximum wherever the direct
        # path's stands out of the rest; all lags where it falls on the edge of that stretch.
        coarse = np.arange(0, length, up)
        best = int(coarse[np.argmax(shifted_sum(env, shifts, coarse))])
        lags = (best + np.arange(-2 * up - 1, 2 * up + 2)) % length
        total = shifted_sum(env, shifts, lags)
        i = int(np.argmax(total))
        if 0 < i < len(lags) - 1:
            return ((lags[i] + parabola_offset(total, i)) / self.rate) % (length / self.rate)
        total = shifted_sum(env, shifts, np.arange(length))
        k = int(np.argmax(total))
        return ((k + parabola_offset(total, k, circular=True)) / self.rate) % (length / self.rate)

    def delays(self, images: np.ndarray) -> np.ndarray:
        """(K, 3) image positions -> (K, C) arrival times after emission, s."""
        images = np.asarray(images, dtype=np.float64).reshape(-1, 3)
        sq = np.einsum('ki,ki->k', images, images)[:, None] - 2.0 * images @ self.mics.T + self._mic_sq[None]
        return np.sqrt(np.maximum(sq, 0.0)) * (1.0 / self.cfg.speed_of_sound)

    def score(self, images: np.ndarray, coherent: bool = True) -> np.ndarray:
        """(..., 3) image positions -> (...) the mics' analytic signals sampled at the images' arrival times
        and summed (the mean per mic, in the matched filter's units): coherently (modulus of the sum: a
        sharp direction, sidelobes ~1/sqrt(C)) or not (sum of moduli: a smooth range profile whose peak a
        parabola places to a fraction of a millimetre)."""
        images = np.asarray(images, dtype=np.float64)
        flat = np.ascontiguousarray(images.reshape(-1, 3))
        return self._score_at(flat, np.zeros(len(flat)), coherent).reshape(images.shape[:-1])

    def score_points(self, points: np.ndarray, coherent: bool = True) -> np.ndarray:
        """(..., 3) point scatterers (a body, an edge: what no plane explains) -> (...) as :meth:`score`, for the
        path speaker -> point -> mic."""
        points = np.asarray(points, dtype=np.float64)
        flat = np.ascontiguousarray(points.reshape(-1, 3))
        out = np.linalg.norm(flat - self.speaker, axis=1) / self.cfg.speed_of_sound
        return self._score_at(flat, out, coherent).reshape(points.shape[:-1])

    def _score_at(self, points: np.ndarray, extra_s: np.ndarray, coherent: bool) -> np.ndarray:
        """(K, 3) points whose arrival at each mic is its distance / c + ``extra_s`` (K,) after the emission
        -> (K,) mean over mics of the signal (or envelope) there (sonar/kernels.py)."""
        kernel, rows = (backproject, self.signal) if coherent else (backproject_envelope, self.envelope)
        return kernel(rows, self.mics, points, extra_s, float(self.rate), 1.0 / self.cfg.speed_of_sound)

    @property
    def envelope(self) -> np.ndarray:
        if self._envelope is None:
            self._envelope = np.abs(self.signal)
        return self._envelope

    @property
    def signal(self) -> np.ndarray:
        """(C, L) the analytic signal of :attr:`spectrum`, made when it is first sampled after a change: echoes
        explained one after another (the box's images after the ceiling) cost one inverse FFT, not one each."""
        if self._signal is None:
            self._signal = self.mf.analytic(self.spectrum, self.mf.gate)
        return self._signal

    def _spectrum_changed(self) -> None:
        self._signal, self._envelope = None, None

    def explain(self, images: np.ndarray) -> np.ndarray:
        """Remove the arrivals of the images (K, 3) from the field (least squares, jointly so that overlapping
        arrivals share their energy; one amplitude for all mics unless ``explain_per_mic``); returns their
        complex amplitudes (C or 1, K, bands). An image whose arrival falls beyond the gate (a far corner's) is
        not in the field and is left out (its amplitude 0)."""
        images = np.asarray(images, dtype=np.float64).reshape(-1, 3)
        delays = self.delays(images).T                                            # (C, K)
        inside = np.flatnonzero(delays.max(axis=0) < self.mf.gate_end_s)
        rows = 1 if not self.cfg.explain_per_mic else len(self.mics)
        amps = np.zeros((rows, len(images), len(self.mf.gate.band_slices)), dtype=np.complex128)
        if len(inside):
            amps[:, inside] = _remove(self.spectrum, delays[:, inside], self.mf.gate, per_mic=self.cfg.explain_per_mic)
            self._spectrum_changed()
        return amps

    def beams(self, steering: np.ndarray, directions: np.ndarray | None = None,
              grid: 'ScanGrid | None' = None) -> np.ndarray:
        """(D, C, F') far-field steering on the scan grid's bins (:func:`far_field_steering` at
        ``mf.gate.freqs[grid.band]``) -> (D', grid.length) modulus of the delay-and-sum beams of the analytic signal
        over the gate, at ``grid.rate`` (the whole band at the sample rate by default), for the ``directions``
        (indices into D; all by default): sample k holds arrivals k / rate after the emission (circular: the last
        samples are the ones just before it). A coarse, fast scan in single precision (the 0.2 m array's near field
        is ignored); candidates found in it are refined with :meth:`score`."""
        mf = self.mf
        grid = ScanGrid.of(mf, None) if grid is None else grid
        directions = np.arange(steering.shape[0]) if directions is None else np.asarray(directions, dtype=np.int64)
        out = np.zeros((len(directions), grid.length), dtype=np.complex64)
        steered_sum(steering, directions, np.ascontiguousarray(self.spectrum[:, grid.band], dtype=np.complex64),
                    grid.positions, out)
        moduli = np.abs(sfft.ifft(out, axis=-1, overwrite_x=True))
        moduli *= (2.0 / len(self.mics)) * (grid.length / mf.gate_length)   # the gate's scale at any length
        return moduli


def _remove(spectrum: np.ndarray, times: np.ndarray, grid: SpectrumGrid, per_mic: bool) -> np.ndarray:
    """Subtract arrivals of the compressed pulse at ``times`` (C, K; s on ``grid``'s time axis) from ``spectrum``
    (C, F on ``grid``) in place, amplitudes by least squares, one complex amplitude per arrival and sub-band
    (``grid.band_slices``: a surface reflects each band differently, and a single amplitude would leave the
    difference behind as a false echo); returns the amplitudes (C or 1, K, B). ``per_mic``: each mic its own
    amplitudes (the direct path: its near field differs from mic to mic); otherwise one amplitude for all mics
    (an echo: the same wave at every mic, :func:`~.kernels.remove_arrivals`), so an arrival removes only what lines
    up with its delays across the array and not another echo of nearly the same range from another direction, which a
    per-mic amplitude would absorb."""
    phase = arrival_phases(grid.freqs[0], grid.step, len(grid.freqs), np.ascontiguousarray(times).ravel())
    if per_mic:
        return remove_arrivals_each_mic(spectrum, phase, grid.template, grid.band_edges)
    return remove_arrivals(spectrum, phase, grid.template, grid.band_edges)[None]


def far_field_steering(directions: np.ndarray, mics: np.ndarray, freqs: np.ndarray, c: float) -> np.ndarray:
    """(D, 3) unit directions -> (D, C, F) delay-and-sum phases, single precision, direction-major (what
    :meth:`EchoField.beams` reads a direction at a time): a plane wave from u reaches mic m earlier by u . p_m / c, so
    mic m is delayed by that much."""
    lead = np.asarray(mics, dtype=np.float64) @ np.asarray(directions, dtype=np.float64).reshape(-1, 3).T / c  # (C, D)
    phases = np.exp(-2j * np.pi * np.asarray(freqs)[None, None] * lead[..., None]).astype(np.complex64)
    return np.ascontiguousarray(phases.transpose(1, 0, 2))


def parabola_offset(values: np.ndarray, k: int, circular: bool = False) -> float:
    """Sub-sample offset (in [-0.5, 0.5]) of the peak at k from a parabola through its neighbours; at an
    end of a non-circular row, 0."""
    n = len(values)
    if not circular and (k == 0 or k == n - 1):
        return 0.0
    a, b, c = values[(k - 1) % n], values[k], values[(k + 1) % n]
    den = a - 2.0 * b + c
    return 0.0 if den >= 0 else float(np.clip(0.5 * (a - c) / den, -0.5, 0.5))
