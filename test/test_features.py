# SPDX-License-Identifier: Apache-2.0
import numpy as np
import pytest
import torch

from audio_vision.core.features.config import FeatureConfig
from audio_vision.core.features.spectrogram import mel_filterbank
from audio_vision.core.features.stack import FeatureStack, compute_features


def reference_stft_power(x: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """Direct numpy STFT (centred, reflect padding, periodic Hann) of one channel: (bins, frames)."""
    padded = np.pad(x, n_fft // 2, mode='reflect')
    n_frames = 1 + (len(padded) - n_fft) // hop
    idx = np.arange(n_fft)[None] + hop * np.arange(n_frames)[:, None]
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
    spec = np.fft.rfft(padded[idx] * window, axis=1).T
    return np.abs(spec) ** 2


def test_linear_power_matches_numpy_reference(rng):
    cfg = FeatureConfig(scale='linear', log=False, normalize='none', spatial='none', echo=False, n_fft=256,
                        window_s=0.25)
    t = np.arange(cfg.window_samples) / cfg.sample_rate
    audio = np.stack([np.sin(2 * np.pi * 1000 * t), rng.normal(size=t.size)]).astype(np.float32)
    feats = compute_features(audio, cfg).numpy()
    assert feats.shape == cfg.output_shape(2)
    for c in range(2):
        ref = reference_stft_power(audio[c].astype(np.float64), cfg.n_fft, cfg.hop_length)
        np.testing.assert_allclose(feats[c], ref, rtol=1e-3, atol=1e-3 * ref.max())
    # A 1 kHz tone peaks in bin 1000 / (16000 / 256) = 16.
    assert feats[0].mean(axis=1).argmax() == 16


def test_default_shape_and_determinism(rng):
    cfg = FeatureConfig()
    audio = rng.normal(size=(8, cfg.window_samples)).astype(np.float32)
    mics = rng.normal(scale=0.1, size=(8, 3))
    a, b = compute_features(audio, cfg, mics), compute_features(audio.copy(), cfg, mics)
    assert tuple(a.shape) == cfg.output_shape(8) == (32, 64, 126)   # 8 log-mel + 14 IPD + 10 echo beams
    assert torch.equal(a, b)
    assert torch.isfinite(a).all()


def test_batched_equals_unbatched(rng):
    cfg = FeatureConfig(window_s=0.5)
    audio = rng.normal(size=(3, 4, cfg.window_samples)).astype(np.float32)
    mics = rng.normal(scale=0.1, size=(4, 3))
    batched = compute_features(audio, cfg, mics)
    for i in range(3):
        torch.testing.assert_close(batched[i], compute_features(audio[i], cfg, mics), rtol=1e-4, atol=1e-4)


def test_ipd_channels_encode_inter_channel_delay():
    cfg = FeatureConfig(scale='linear', spatial='ipd', echo=False, window_s=0.25, n_fft=256)
    rng = np.random.default_rng(3)
    x = rng.normal(size=cfg.window_samples + 8)
    delay = 3
    audio = np.stack([x[delay:delay + cfg.window_samples], x[:cfg.window_samples]]).astype(np.float32)
    f = compute_features(audio, cfg).numpy()
    cos, sin = f[2], f[3]                       # channel 1 vs reference channel 0
    phase = np.angle(np.median(cos, axis=1) + 1j * np.median(sin, axis=1))
    freqs = np.arange(cfg.n_fft // 2 + 1) * cfg.sample_rate / cfg.n_fft
    expected = np.angle(np.exp(-2j * np.pi * freqs * delay / cfg.sample_rate))
    low = slice(2, 40)                          # below spatial aliasing of a 3-sample delay
    err = np.angle(np.exp(1j * (phase[low] - expected[low])))
    assert np.median(np.abs(err)) < 0.2


def test_mel_filterbank_rows_normalised():
    fb = mel_filterbank(512, 16000, 64, 50.0, None)
    assert fb.shape == (64, 257)
    np.testing.assert_allclose(fb.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize('kwargs', [dict(n_fft=500), dict(overlap=1.0), dict(scale='bark'),
                                    dict(window_s=0.01), dict(stft_window='kaiser'), dict(sample_rate=0)])
def test_invalid_config_rejected(kwargs):
    with pytest.raises(ValueError):
        FeatureConfig(**kwargs)


def test_module_rejects_nothing_silently_on_wrong_rank():
    with pytest.raises(ValueError, match='audio must be'):
        compute_features(np.zeros(100, np.float32), FeatureConfig(echo=False))
    with pytest.raises(ValueError, match='array geometry'):
        FeatureStack(FeatureConfig())


def test_echogram_puts_an_echo_at_its_delay():
    """A periodic chirp plus one echo 10 ms later (1.7 m away): the echogram's second ridge
    sits at 10 ms whatever the chirp's phase in the window, on every microphone."""
    from audio_vision.core.features.chirp import chirp_pulse
    cfg = FeatureConfig()
    fs, period = cfg.sample_rate, int(cfg.chirp_period_s * cfg.sample_rate)
    pulse = chirp_pulse(fs, cfg.chirp_f_start, cfg.chirp_f_end, cfg.chirp_duration_s, cfg.chirp_kind)
    delay = int(0.010 * fs)
    frames_per_s = cfg.num_frames / cfg.echo_max_s
    for phase in (0, 1234, 3990):
        train = np.zeros(cfg.window_samples + period)
        for start in range(phase % period, len(train) - len(pulse), period):
            train[start:start + len(pulse)] += pulse
            train[start + delay:start + delay + len(pulse)] += 0.3 * pulse
        audio = np.stack([train[period:period + cfg.window_samples]] * 2).astype(np.float32)
        audio += np.random.default_rng(phase).normal(scale=1e-3, size=audio.shape).astype(np.float32)
        echo = compute_features(audio, cfg, np.zeros((2, 3)))[-len(cfg.echo_azimuths_deg):].numpy()
        profile = echo.mean(axis=(0, 1))                            # over beams and bands
        assert profile[:3].max() == profile.max()                   # direct path at delay 0
        far = int(0.004 * frames_per_s)                             # skip the direct path's skirt
        peak = far + profile[far:].argmax()
        assert abs(peak / frames_per_s - 0.010) < 0.001, (phase, peak / frames_per_s)


@pytest.mark.parametrize('kwargs', [dict(chirp_f_end=9000.0), dict(echo_max_s=0.5), dict(echo_bands=0),
                                    dict(chirp_kind='sine')])
def test_invalid_echo_config_rejected(kwargs):
    with pytest.raises(ValueError):
        FeatureConfig(**kwargs)


def test_echo_beams_point_where_the_reflector_is():
    """An echo arriving as a plane wave from the front shows in the front beam, not the back one."""
    from audio_vision.core.features.chirp import chirp_pulse
    cfg = FeatureConfig()
    fs, period, c = cfg.sample_rate, int(cfg.chirp_period_s * cfg.sample_rate), cfg.speed_of_sound
    mics = np.array([[0.1, 0, 0], [-0.1, 0, 0], [0, 0.1, 0], [0, -0.1, 0], [0, 0, 0.1], [0, 0, -0.1]])
    pulse = chirp_pulse(fs, cfg.chirp_f_start, cfg.chirp_f_end, cfg.chirp_duration_s, cfg.chirp_kind)
    n = cfg.window_samples + period
    spectrum_t = np.fft.rfftfreq(n, 1 / fs)
    audio = []
    for p in mics:
        train = np.zeros(n)
        for start in range(100, n - len(pulse), period):
            train[start:start + len(pulse)] += pulse
        # echo 12 ms later from +x: a mic at +x hears it earlier by p_x / c (fractional delay via FFT)
        delay = 0.012 - p[0] / c
        echo = np.fft.irfft(np.fft.rfft(train) * np.exp(-2j * np.pi * spectrum_t * delay), n)
        audio.append((train + 0.3 * echo)[period:period + cfg.window_samples])
    feats = compute_features(np.asarray(audio, np.float32), cfg, mics).numpy()
    beams = feats[-len(cfg.echo_azimuths_deg):].mean(axis=1)        # (U, frames)
    frame = int(round(0.012 * cfg.num_frames / cfg.echo_max_s))
    front, back = cfg.echo_azimuths_deg.index(0.0), cfg.echo_azimuths_deg.index(180.0)
    window = slice(frame - 1, frame + 2)
    # 0.1 here is 0.3 in log envelope: ~2.6 dB more echo energy in the front beam
    assert beams[front, window].max() > beams[back, window].max() + 0.1
    # and the front beam's echo stands out of its own envelope at the echo's delay, not elsewhere
    assert beams[front, window].max() > np.median(beams[front]) + 0.1
