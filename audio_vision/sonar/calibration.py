# SPDX-License-Identifier: Apache-2.0
"""What a real speaker does to the chirp, measured once from a recording, so the matched filter equalises it.

A loudspeaker is not flat: a small one rolls off below its resonance, peaks at it and rings. Every arrival
(direct path and echo alike) carries that colouring, so the compressed pulse is not the ideal one and
subtracting the direct path or an explained echo with the ideal shape leaves a residue that poses as echoes.
:func:`measure_speaker` estimates the response G(f) from the direct arrivals of a recording (the chirp
deconvolved, each mic's direct arrival time-gated at its geometric delay, phase-aligned and averaged over
mics and windows); :class:`~audio_vision.sonar.echoes.MatchedFilter` then applies conj(G) / (|G|^2 + eps) so
what follows sees the ideal pulse again. The linear part of G's phase is removed: a playback-to-capture
latency needs no calibration, the emission time of each window is measured from its direct path
(docs/SONAR.md, "Calibration").
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from .config import SonarConfig
from .echoes import EchoField, MatchedFilter

#: calibration file format version (``SpeakerCalibration.save``)
FORMAT = 1


@dataclass(frozen=True)
class SpeakerCalibration:
    sample_rate: int
    band: tuple[float, float]        # Hz, the chirp's sweep it was measured with
    freqs: np.ndarray                # (F,) Hz
    response: np.ndarray             # (F,) complex, relative to the ideal chirp: mean modulus 1, no linear phase
    windows: int                     # windows averaged
    gate_s: float                    # direct-arrival gate (half width), s

    def on(self, freqs: np.ndarray) -> np.ndarray:
        """The response interpolated onto ``freqs`` (modulus and unwrapped phase), held beyond its ends."""
        mag = np.interp(freqs, self.freqs, np.abs(self.response))
        phase = np.interp(freqs, self.freqs, np.unwrap(np.angle(self.response)))
        return mag * np.exp(1j * phase)

    def check(self, cfg: SonarConfig) -> None:
        """Refuse a calibration measured for another sample rate or chirp band, naming both."""
        if self.sample_rate != cfg.sample_rate or not np.allclose(self.band, (cfg.chirp_f_start, cfg.chirp_f_end)):
            raise ValueError(f'speaker calibration measured at {self.sample_rate} Hz for a {self.band[0]:g}-'
                             f'{self.band[1]:g} Hz chirp; the front-end runs at {cfg.sample_rate} Hz with a '
                             f'{cfg.chirp_f_start:g}-{cfg.chirp_f_end:g} Hz chirp: calibrate again '
                             '(python -m audio_vision calibrate)')

    def response_db(self, at_hz: Iterable[float]) -> list[float]:
        return [float(20.0 * np.log10(max(abs(v), 1e-12))) for v in self.on(np.asarray(list(at_hz), float))]

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = {'format': FORMAT, 'sample_rate': self.sample_rate, 'band': list(self.band),
                'windows': self.windows, 'gate_s': self.gate_s}
        with open(path, 'wb') as f:
            np.savez(f, freqs=self.freqs, response=self.response, meta=np.array(json.dumps(meta)))
        return path

    @classmethod
    def load(cls, path: str | Path) -> 'SpeakerCalibration':
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f'speaker calibration {path} does not exist: make it with '
                                    'python -m audio_vision calibrate (docs/SONAR.md, "Calibration")')
        try:
            with np.load(path, allow_pickle=False) as z:
                meta = json.loads(str(z['meta']))
                freqs, response = np.asarray(z['freqs'], np.float64), np.asarray(z['response'], np.complex128)
        except (OSError, KeyError, ValueError) as exc:
            raise ValueError(f'{path} is not a speaker calibration ({exc})') from None
        if meta.get('format') != FORMAT or freqs.shape != response.shape or freqs.ndim != 1:
            raise ValueError(f'{path}: calibration format {meta.get("format")!r}, expected {FORMAT}: calibrate again')
        return cls(int(meta['sample_rate']), tuple(meta['band']), freqs, response, int(meta['windows']),
                   float(meta['gate_s']))


def measure_speaker(cfg: SonarConfig, mics: np.ndarray, windows: Iterable[np.ndarray],
                    gate_s: float = 0.005) -> SpeakerCalibration:
    """The speaker's response from the direct arrivals of ``windows`` ((C, N) each, the speaker playing the
    chirp; best in free field or with every surface farther than c * gate_s / 2 beyond the mics, since an echo
    inside the gate is taken for the speaker's ringing). Per window: the chirp deconvolved on the in-band
    bins, each mic's arrival gated +-``gate_s`` around its geometric direct delay after the emission time,
    phase-aligned to that delay and scaled by its distance (1/r spreading); the mean over mics and windows."""
    mics = np.asarray(mics, dtype=np.float64).reshape(-1, 3)
    mf = MatchedFilter(cfg)                                   # ideal: what is measured is what it lacks
    up = cfg.upsample
    total = np.zeros(len(mf.bins), dtype=np.complex128)
    count = 0
    for audio in windows:
        field = EchoField(mf, mics, audio)                   # emission time from the direct path
        spectrum = np.fft.rfft(mf.fold(audio), axis=-1)[:, mf.bins] / mf.pulse_spectrum   # (C, F): G a_m e^{-iw t}
        signal = mf.analytic(spectrum)                       # (C, L) at upsample x fs
        t = np.arange(signal.shape[1]) / (cfg.sample_rate * up)
        arrival = field.t_e + field.direct_delays                                    # (C,)
        lag = (t[None] - arrival[:, None] + 0.5 * mf.period / cfg.sample_rate) % (mf.period / cfg.sample_rate)
        lag -= 0.5 * mf.period / cfg.sample_rate                                     # (C, L) s, circular
        gate = _gate(lag, gate_s)
        full = np.fft.fft(signal * gate, axis=-1)[:, mf.bins]                       # back to the bins
        # An ideal arrival at the same delays, gated alike: the gate smooths the band's edges of both alike,
        # so their ratio is the speaker's response up to the band's edges.
        ideal = mf.analytic(np.exp(-2j * np.pi * mf.freqs[None] * arrival[:, None]))
        reference = np.fft.fft(ideal * gate, axis=-1)[:, mf.bins]
        distance = np.linalg.norm(mics - np.asarray(cfg.speaker_position), axis=1)
        total += np.sum(full / reference * distance[:, None], axis=0)
        count += len(mics)
    if count == 0:
        raise ValueError('no window to calibrate from')
    response = total / count
    # The linear part of the phase is a time shift: each window's emission time absorbs it.
    weight = np.abs(response) ** 2
    phase = np.unwrap(np.angle(response))
    slope = np.polyfit(mf.freqs, phase, 1, w=np.sqrt(weight))[0]
    response = response * np.exp(-1j * slope * mf.freqs)
    response /= np.mean(np.abs(response))
    return SpeakerCalibration(cfg.sample_rate, (cfg.chirp_f_start, cfg.chirp_f_end), mf.freqs.copy(), response,
                              count // len(mics), float(gate_s))


def _gate(lag: np.ndarray, half_width: float) -> np.ndarray:
    """1 within +-half_width of the arrival, raised-cosine edges of a quarter of it, 0 beyond."""
    edge = 0.25 * half_width
    x = np.clip((np.abs(lag) - (half_width - edge)) / edge, 0.0, 1.0)
    return 0.5 * (1.0 + np.cos(np.pi * x))
