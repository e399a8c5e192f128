# SPDX-License-Identifier: Apache-2.0
"""Exact synthetic echoes for physics tests: the chirp train as the mics of an array hear it from a set of
planes (image sources up to a given order, 1/r spreading, one reflection coefficient per plane), with
fractional delays applied in the frequency domain. No room simulator involved, so a test of the front-end
against it checks the measurement, not the simulator."""
from __future__ import annotations

import itertools

import numpy as np

from audio_vision.core.features.chirp import chirp_pulse, played_pulse

from .config import SonarConfig
from .echoes import image_of
from .layout import Plane


def image_sources(speaker: np.ndarray, planes: list[Plane], order: int) -> list[tuple[np.ndarray, float]]:
    """(image position, product of reflection coefficients) of every sequence of up to ``order`` reflections
    that never reflects twice in a row on the same plane; the direct path first. Each plane's reflection
    coefficient is its ``strength``."""
    out = [(np.asarray(speaker, dtype=np.float64), 1.0)]
    for k in range(1, order + 1):
        for seq in itertools.product(range(len(planes)), repeat=k):
            if any(a == b for a, b in zip(seq, seq[1:])):
                continue
            point, gain = np.asarray(speaker, dtype=np.float64), 1.0
            for i in seq:
                point = image_of(point, planes[i].n, planes[i].offset)
                gain *= planes[i].strength
            out.append((point, gain))
    return out


def echo_recording(cfg: SonarConfig, mics: np.ndarray, planes: list[Plane], order: int = 2,
                   periods: int = 4, phase_s: float = 0.0, latency_s: float = 0.0, noise_rms: float = 0.0,
                   seed: int = 0, scatterers=(), speaker_response_db=()) -> np.ndarray:
    """(C, periods x period) float32: a steady chirp train (first sweep at ``phase_s`` + ``latency_s``) heard
    through the planes' image sources and ``scatterers``: (position, gain) points that re-radiate what
    reaches them (first order, amplitude gain / (r_in r_out)); a speaker with ``speaker_response_db`` (Hz, dB
    points, minimum phase: :func:`~audio_vision.core.features.chirp.played_pulse`) colours every path alike."""
    fs, period = cfg.sample_rate, cfg.period_samples
    mics = np.asarray(mics, dtype=np.float64).reshape(-1, 3)
    pulse, _ = played_pulse(chirp_pulse(fs, cfg.chirp_f_start, cfg.chirp_f_end, cfg.chirp_duration_s, cfg.chirp_kind),
                            fs, speaker_response_db)
    spectrum = np.fft.rfft(pulse, period)
    freqs = np.fft.rfftfreq(period, 1.0 / fs)
    sources = image_sources(np.asarray(cfg.speaker_position), planes, order)
    out = np.zeros((len(mics), period))
    for m, mic in enumerate(mics):
        acc = np.zeros(len(freqs), dtype=np.complex128)
        for position, gain in sources:
            r = np.linalg.norm(position - mic)
            acc += gain / r * np.exp(-2j * np.pi * freqs * (r / cfg.speed_of_sound + phase_s + latency_s))
        for position, gain in scatterers:
            r_in = np.linalg.norm(np.asarray(position) - np.asarray(cfg.speaker_position))
            r_out = np.linalg.norm(np.asarray(position) - mic)
            delay = (r_in + r_out) / cfg.speed_of_sound + phase_s + latency_s
            acc += gain / (r_in * r_out) * np.exp(-2j * np.pi * freqs * delay)
        out[m] = np.fft.irfft(spectrum * acc, period)
    audio = np.tile(out, (1, periods))
    if noise_rms:
        audio = audio + noise_rms * np.random.default_rng(seed).standard_normal(audio.shape)
    return audio.astype(np.float32)
