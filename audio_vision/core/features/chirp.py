# SPDX-License-Identifier: Apache-2.0
"""The active echolocation chirp, shared by the simulator (which emits it) and the features
(which matched-filter the recording with it), so both always use the same waveform.

The chirp's parameters are configured twice, ``FeatureConfig.chirp_*`` (the model) and the simulation
YAML's ``chirp`` section (the simulator node and the capture node emit that one): wherever both meet
(perception node start-up with ``sim_config``, which perceive.launch.py and the demo set to the emitting
node's file; training on a simulated dataset), :func:`check_chirp_match` refuses a mismatch instead of
letting the matched filter silently miss."""
from __future__ import annotations

import math

import numpy as np
import scipy.signal as sps


def chirp_pulse(fs: int, f_start: float, f_end: float, duration_s: float, kind: str) -> np.ndarray:
    """One sweep (linear or logarithmic) with 10 % Tukey tapers, unit RMS."""
    if kind not in ('linear', 'exponential', 'logarithmic'):
        raise ValueError(f"chirp kind must be 'linear' or 'exponential', got {kind!r}")
    n = max(int(round(duration_s * fs)), 2)
    t = np.arange(n) / fs
    method = 'linear' if kind == 'linear' else 'logarithmic'
    pulse = sps.chirp(t, f0=f_start, t1=t[-1], f1=f_end, method=method) * sps.windows.tukey(n, 0.2)
    return pulse / (np.sqrt(np.mean(pulse ** 2)) + 1e-12)


def played_pulse(pulse: np.ndarray, fs: int, response_db=(), latency_s: float = 0.0,
                 tail_s: float = 0.02) -> tuple[np.ndarray, int]:
    """The pulse as a real speaker plays it: ``response_db`` (Hz, dB) points of its magnitude response
    (linear in between, held beyond the ends; the phase minimum, as a small loudspeaker's nearly is) and a
    playback-to-capture ``latency_s``. Returns (pulse with ``tail_s`` of ringing appended, whole samples of
    latency to add to its start); the fractional part of the latency is in the pulse. With neither, the pulse
    itself and 0."""
    if not response_db and latency_s == 0.0:
        return pulse, 0
    lag = int(math.floor(latency_s * fs))
    n = len(pulse) + int(round(tail_s * fs))
    nfft = 1 << int(math.ceil(math.log2(4 * n)))
    freqs = np.fft.rfftfreq(nfft, 1.0 / fs)
    response = minimum_phase_response(freqs, response_db) if response_db else np.ones(len(freqs))
    shift = np.exp(-2j * np.pi * freqs * (latency_s - lag / fs))
    return np.fft.irfft(np.fft.rfft(pulse, nfft) * response * shift, nfft)[:n], lag


def minimum_phase_response(freqs: np.ndarray, response_db) -> np.ndarray:
    """(F,) complex minimum-phase response on the rfft grid ``freqs`` (0 .. Nyquist, even FFT length) whose
    magnitude interpolates the (Hz, dB) points (real cepstrum folded onto positive quefrencies)."""
    points = np.asarray(response_db, dtype=np.float64).reshape(-1, 2)
    log_mag = np.interp(freqs, points[:, 0], points[:, 1]) * (math.log(10.0) / 20.0)
    nfft = 2 * (len(freqs) - 1)
    cepstrum = np.fft.irfft(log_mag, nfft)
    fold = np.zeros(nfft)
    fold[0], fold[nfft // 2] = cepstrum[0], cepstrum[nfft // 2]
    fold[1:nfft // 2] = 2.0 * cepstrum[1:nfft // 2]
    return np.exp(np.fft.rfft(fold))


#: what defines the chirp as both sides see it (ChirpConfig's names; FeatureConfig prefixes them with chirp_)
CHIRP_FIELDS = ('kind', 'f_start', 'f_end', 'duration_s', 'period_s')


class ChirpMismatch(ValueError):
    """The chirp the features matched-filter is not the chirp the audio carries."""


def _kind(kind: str) -> str:
    return 'exponential' if kind == 'logarithmic' else kind       # chirp_pulse treats them alike


def features_chirp(features) -> dict | None:
    """The chirp a FeatureConfig matched-filters, as {field: value}; None when its features use no chirp
    (no echo channels and no direction maps)."""
    if not (getattr(features, 'echo', False) or getattr(features, 'direction_maps', False)
            or getattr(features, 'layout_prior', 'none') != 'none'):
        return None
    return {f: getattr(features, f'chirp_{f}') for f in CHIRP_FIELDS}


def emitted_chirp(chirp) -> dict | None:
    """The chirp a simulator or capture node emits, as {field: value}; None when it emits none.

    ``chirp``: a ``SimConfig.chirp`` (ChirpConfig) or its dict (as a dataset card stores it).
    """
    def get(key, default=None):
        return chirp.get(key, default) if isinstance(chirp, dict) else getattr(chirp, key, default)
    if not get('enabled', True):
        return None
    return {f: get(f) for f in CHIRP_FIELDS}


def emitted_speaker_position(chirp) -> tuple[float, float, float]:
    """Where the emitter's speaker is mounted (array frame, m): a ChirpConfig or its dict."""
    value = chirp.get('speaker_position') if isinstance(chirp, dict) else getattr(chirp, 'speaker_position', None)
    return tuple(float(v) for v in (value if value is not None else (0.0, 0.0, 0.0)))


def check_chirp_match(features, chirp, emitter: str) -> None:
    """Refuse (:class:`ChirpMismatch`) when the features matched-filter another chirp than ``emitter`` emits.

    ``features``: a FeatureConfig (the model's or the training config's); ``chirp``: the emitter's chirp
    (see :func:`emitted_chirp`); ``emitter`` names it in the message (e.g. the simulation YAML's path).
    Features without a chirp (no echo channels, no direction maps) match any emitter.
    """
    expected = features_chirp(features)
    if expected is None:
        return
    emitted = emitted_chirp(chirp)
    if emitted is None:
        raise ChirpMismatch(f'the features matched-filter a chirp but {emitter} emits none (chirp.enabled: false)')
    diffs = []
    for f in CHIRP_FIELDS:
        a, b = expected[f], emitted[f]
        same = _kind(a) == _kind(b) if f == 'kind' else math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=0.0)
        if not same:
            diffs.append(f'{f} {b!r} (emitted) vs chirp_{f} {a!r} (features)')
    if getattr(features, 'layout_prior', 'none') != 'none':        # the sonar's bistatic geometry
        speaker = emitted_speaker_position(chirp)
        if not all(math.isclose(float(a), float(b), abs_tol=1e-6) for a, b in zip(features.speaker_position, speaker)):
            diffs.append(f'speaker_position {list(speaker)} (emitted) vs speaker_position '
                         f'{list(features.speaker_position)} (features: the layout prior\'s sonar)')
    if diffs:
        wanted = ', '.join(f'{f}: {expected[f]!r}' for f in CHIRP_FIELDS)
        raise ChirpMismatch(f'the chirp of {emitter} is not the one the features matched-filter: '
                            + '; '.join(diffs) + f'. One chirp for both: set the `chirp` section of the simulation '
                            f'YAML to the features\' ({wanted}), or train the model on audio with this chirp')
