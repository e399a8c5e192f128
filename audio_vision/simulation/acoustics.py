"""Room impulse responses (pyroomacoustics ISM + a statistical late tail) and steady-state mixing.

Early part: a pyroomacoustics `ShoeBox` with the room's database materials (7 octave bands),
`air_absorption=True`, image sources up to `recording.ism_order`. The per-(mic, source) RIRs
are assembled exactly as `Room.compute_rir()` does (same image sources, damping, air
absorption, fractional-delay sinc builder, octave filter bank, high-pass) but batched over
all pairs, which is several times faster than pyroomacoustics' per-pair loop.

Late part: a low ISM order alone truncates the reverberant tail (RT60 collapses to the order's
horizon) and hybrid ray tracing costs seconds per room. Beyond the time where the ISM stops
being complete, the RIR is continued by a diffuse tail: Gaussian noise whose expected energy
follows the image-source density, 4*pi*c/V per second for pyroomacoustics' 1/r amplitude
convention, decaying per octave band with the Eyring RT60 of the same materials and air
absorption. ISM and tail are cross-faded with equal-power weights.

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
from .scene import Room

_STFT_N, _STFT_HOP = 256, 128   # tail synthesis frames (16 ms at 16 kHz)


@dataclass(frozen=True)
class RoomResponse:
    rirs: np.ndarray            # (S, M, L) float32; sample k <-> (k - latency) / fs after emission
    latency: int                # samples of fractional-delay latency contained in `rirs`
    rt60_bands: np.ndarray      # (B,) Eyring RT60 per octave band, s
    band_centers: np.ndarray    # (B,) Hz
    fs: int


def build_shoebox(room: Room, fs: int, ism_order: int, air_absorption: bool = True) -> pra.ShoeBox:
    materials = {surface: pra.Material(name) for surface, name in room.materials.items()}
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
        rir = sum(_band_filter(shoebox.octave_bands, band_irs[b], b) for b in range(n_bands))
    else:
        rir = band_irs[0]
    if pra.constants.get('rir_hpf_enable'):
        from pyroomacoustics.utilities import design_highpass_filter_sos
        sos = design_highpass_filter_sos(fs, pra.constants.get('rir_hpf_fc'),
                                         **pra.constants.get('rir_hpf_kwargs'))
        rir = sps.sosfiltfilt(sos, rir, axis=-1)
    return np.asarray(rir, dtype=np.float64).reshape(n_src, n_mic, length), latency


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
    spec = (coeffs[..., 0] + 1j * coeffs[..., 1]) * (gain * math.sqrt(_STFT_N / 2.0)).astype(np.float32)
    frames = np.fft.irfft(spec, n=_STFT_N, axis=-1)
    frames *= np.sqrt(sps.windows.hann(_STFT_N, sym=False))
    out = np.zeros((n_rows, (n_frames + 1) * _STFT_HOP))
    out[:, :n_frames * _STFT_HOP] += frames[:, :, :_STFT_HOP].reshape(n_rows, -1)
    out[:, _STFT_HOP:] += frames[:, :, _STFT_HOP:].reshape(n_rows, -1)
    # Image-source density for amplitude 1/r: energy 4*pi*c/V per second.
    return out[:, :length] * math.sqrt(4.0 * math.pi * c / (volume * fs))


def room_response(room: Room, mic_positions: np.ndarray, source_positions: np.ndarray,
                  cfg: RecordingConfig, rng: np.random.Generator,
                  air_absorption: bool = True) -> RoomResponse:
    """RIRs from every source (S, 3) to every mic (M, 3), both in the room frame."""
    fs = cfg.sample_rate
    shoebox = build_shoebox(room, fs, cfg.ism_order, air_absorption)
    shoebox.add_microphone_array(np.asarray(mic_positions, dtype=np.float64).T)
    for p in np.asarray(source_positions, dtype=np.float64).reshape(-1, 3):
        shoebox.add_source(p)
    early, latency = ism_rirs(shoebox)
    rt60 = eyring_rt60_bands(shoebox)
    centers = np.asarray(shoebox.octave_bands.centers, dtype=np.float64)
    n_src, n_mic, n_early = early.shape
    if not cfg.diffuse_tail or n_src == 0:
        return RoomResponse(early.astype(np.float32), latency, rt60, centers, fs)

    tail_s = min(cfg.rir_max_s, float(rt60.max()))
    length = max(n_early, latency + int(math.ceil(tail_s * fs)))
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
