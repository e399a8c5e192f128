import numpy as np
import pytest
import torch

from audio_vision.core.features import FeatureConfig, SpectrogramFeatures, compute_features, mel_filterbank


def reference_stft_power(x: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """Direct numpy STFT (centred, reflect padding, periodic Hann) of one channel: (bins, frames)."""
    padded = np.pad(x, n_fft // 2, mode='reflect')
    n_frames = 1 + (len(padded) - n_fft) // hop
    idx = np.arange(n_fft)[None] + hop * np.arange(n_frames)[:, None]
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
    spec = np.fft.rfft(padded[idx] * window, axis=1).T
    return np.abs(spec) ** 2


def test_linear_power_matches_numpy_reference(rng):
    cfg = FeatureConfig(scale='linear', log=False, normalize='none', spatial='none', n_fft=256, window_s=0.25)
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
    a, b = compute_features(audio, cfg), compute_features(audio.copy(), cfg)
    assert tuple(a.shape) == cfg.output_shape(8) == (22, 64, 126)
    assert torch.equal(a, b)
    assert torch.isfinite(a).all()


def test_batched_equals_unbatched(rng):
    cfg = FeatureConfig(window_s=0.5)
    audio = rng.normal(size=(3, 4, cfg.window_samples)).astype(np.float32)
    batched = compute_features(audio, cfg)
    for i in range(3):
        torch.testing.assert_close(batched[i], compute_features(audio[i], cfg), rtol=1e-4, atol=1e-4)


def test_ipd_channels_encode_inter_channel_delay():
    cfg = FeatureConfig(scale='linear', spatial='ipd', window_s=0.25, n_fft=256)
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
        compute_features(np.zeros(100, np.float32), FeatureConfig())
    assert isinstance(SpectrogramFeatures(FeatureConfig()), torch.nn.Module)
