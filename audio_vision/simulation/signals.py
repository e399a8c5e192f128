# SPDX-License-Identifier: Apache-2.0
"""Procedural source signals: speech-like, fan noise, alarm beeps, and the echolocation chirp.

No recordings are downloaded. A source's timbre (pitch, formant habits, fan speed, beep tone
and rhythm) comes from its `signal_seed`; the moment-to-moment content comes from the
recording seed. Every generator returns a float64 signal with unit RMS over its length, so
levels are set in one place (the acoustics) from dB SPL.
"""
from __future__ import annotations

import numpy as np
from scipy import signal as sps

from audio_vision.core.features.chirp import (  # noqa: F401  (re-exported: the simulator emits them)
    chirp_pulse, played_pulse)

# (F1, F2, F3) Hz of a few vowels (Peterson & Barney averages, male/female mix).
_VOWELS = np.array([[730, 1090, 2440], [530, 1840, 2480], [270, 2290, 3010], [570, 840, 2410],
                    [300, 870, 2240], [660, 1720, 2410], [490, 1350, 1690], [440, 1020, 2240]],
                   dtype=np.float64)


def _unit_rms(x: np.ndarray) -> np.ndarray:
    rms = float(np.sqrt(np.mean(x * x)))
    return x / rms if rms > 0 else x


def _smooth_noise(rng: np.random.Generator, n: int, fs: int, rate_hz: float) -> np.ndarray:
    """Zero-mean, unit-std random curve that varies at about `rate_hz` (linear interpolation)."""
    knots = max(int(np.ceil(n / fs * rate_hz)) + 2, 2)
    values = rng.standard_normal(knots)
    return np.interp(np.arange(n) / fs * rate_hz, np.arange(knots), values)


def _resonator_sos(freqs, bandwidths, fs: int) -> np.ndarray:
    """Cascade of two-pole resonators (one per formant) as second-order sections."""
    sos = []
    for f, bw in zip(freqs, bandwidths):
        r = np.exp(-np.pi * bw / fs)
        theta = 2 * np.pi * min(f, 0.45 * fs) / fs
        a = [1.0, -2 * r * np.cos(theta), r * r]
        sos.append([1.0 - r, 0.0, 0.0] + a)
    return np.array(sos)


def speech_like(n: int, fs: int, timbre_seed: int, rng: np.random.Generator) -> np.ndarray:
    """Voiced syllables (glottal pulses through formant resonators), fricatives and short pauses."""
    timbre = np.random.default_rng(timbre_seed)
    f0_base = timbre.uniform(90.0, 240.0)
    formant_scale = timbre.uniform(0.9, 1.2)       # vocal-tract length
    syllable_s = timbre.uniform(0.14, 0.26)
    # Glottal excitation with a slowly drifting pitch (intonation) and a little jitter.
    f0 = f0_base * 2.0 ** (0.12 * _smooth_noise(rng, n, fs, 3.0) + 0.01 * rng.standard_normal(n))
    phase = np.cumsum(f0 / fs)
    pulses = np.diff(np.floor(phase), prepend=np.floor(phase[0])).astype(np.float64)
    excitation = sps.lfilter([1.0], [1.0, -0.95], pulses)       # glottal spectral tilt
    excitation = _unit_rms(excitation) + 0.05 * rng.standard_normal(n)  # aspiration
    noise = rng.standard_normal(n)
    out = np.zeros(n)
    start = 0
    while start < n:
        length = int(fs * syllable_s * rng.uniform(0.6, 1.5))
        stop = min(start + length, n)
        kind = rng.random()
        seg_len = stop - start
        if kind < 0.12:                                  # short pause between words
            pass
        elif kind < 0.30:                                # fricative: high-passed noise band
            centre = rng.uniform(3000.0, 6000.0)
            sos = _resonator_sos([centre, centre * 1.3], [1500.0, 2000.0], fs)
            out[start:stop] = 0.5 * sps.sosfilt(sos, noise[start:stop]) * np.hanning(seg_len)
        else:                                            # vowel
            formants = _VOWELS[rng.integers(len(_VOWELS))] * formant_scale
            sos = _resonator_sos(formants, [80.0, 100.0, 150.0], fs)
            out[start:stop] = sps.sosfilt(sos, excitation[start:stop]) * np.hanning(seg_len)
        start = stop
    return _unit_rms(out)


def fan_noise(n: int, fs: int, timbre_seed: int, rng: np.random.Generator) -> np.ndarray:
    """Broadband (coloured) noise with a resonance hump, blade-pass harmonics and a slow wobble."""
    timbre = np.random.default_rng(timbre_seed)
    slope = timbre.uniform(0.5, 1.5)                 # spectral tilt, 1 = pink
    hump_hz, hump_q = timbre.uniform(200.0, 2000.0), timbre.uniform(1.0, 3.0)
    blade_hz = timbre.uniform(60.0, 300.0)
    tonal_db = timbre.uniform(-12.0, -4.0)
    wobble_hz = timbre.uniform(0.3, 3.0)
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1.0 / fs)
    shape = (np.maximum(f, 40.0) / 1000.0) ** (-slope / 2.0)
    shape *= 1.0 + 2.0 / (1.0 + (hump_q * (f / hump_hz - hump_hz / np.maximum(f, 1.0))) ** 2)
    shape[f < 30.0] = 0.0
    broadband = _unit_rms(np.fft.irfft(spec * shape, n))
    t = np.arange(n) / fs
    speed = 1.0 + 0.01 * _smooth_noise(rng, n, fs, 0.5)        # motor speed drift
    blade_phase = 2 * np.pi * blade_hz * np.cumsum(speed) / fs + rng.uniform(0, 2 * np.pi)
    tonal = sum(np.sin(k * blade_phase) / k for k in range(1, 6))
    mix = broadband + 10 ** (tonal_db / 20) * _unit_rms(tonal)
    return _unit_rms(mix * (1.0 + 0.1 * np.sin(2 * np.pi * wobble_hz * t + rng.uniform(0, 2 * np.pi))))


def alarm_beeps(n: int, fs: int, timbre_seed: int, rng: np.random.Generator) -> np.ndarray:
    """Square-ish tone bursts (optionally two alternating tones) in a fixed on/off rhythm."""
    timbre = np.random.default_rng(timbre_seed)
    f_tone = timbre.uniform(1500.0, 4000.0)
    two_tone = timbre.random() < 0.5
    f_alt = f_tone * timbre.uniform(0.7, 0.9) if two_tone else f_tone
    on_s = timbre.uniform(0.06, 0.25)
    period_s = on_s + timbre.uniform(0.08, 0.5)
    t = np.arange(n) / fs + rng.uniform(0.0, 2 * period_s)      # random rhythm phase
    beep_index = np.floor(t / period_s).astype(np.int64)
    in_beep = (t - beep_index * period_s) < on_s
    freq = np.where(beep_index % 2 == 0, f_tone, f_alt)
    phase = 2 * np.pi * np.cumsum(freq) / fs
    # Odd harmonics below Nyquist give the harsh piezo-buzzer timbre.
    tone = sum(np.where(k * freq < 0.45 * fs, np.sin(k * phase) / k, 0.0) for k in (1, 3, 5))
    ramp = max(int(0.002 * fs), 1)                              # 2 ms on/off ramps, no clicks
    gate = np.convolve(in_beep.astype(np.float64), np.ones(ramp) / ramp, mode='same')
    return _unit_rms(tone * gate)


GENERATORS = {'person': speech_like, 'appliance': fan_noise, 'alarm': alarm_beeps}


def chirp_train(n: int, pulse: np.ndarray, period: int, first_start: int) -> np.ndarray:
    """Periodic pulses starting at sample `first_start` (may be negative) every `period` samples."""
    out = np.zeros(n)
    start = first_start % period - period       # a pulse that began before sample 0 shows its end
    while start < n:
        lo, hi = max(start, 0), min(start + len(pulse), n)
        if hi > lo:
            out[lo:hi] = pulse[lo - start:hi - start]
        start += period
    return out
