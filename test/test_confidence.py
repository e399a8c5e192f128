# SPDX-License-Identifier: Apache-2.0
"""Per-pixel confidence (audio_vision.core.inference.confidence) and its evaluation (sparsification curves)."""
import numpy as np
import pytest
import torch

from audio_vision.core.eval.sparsification import error_sparsification, sparsification
from audio_vision.core.inference.confidence import KINDS, decode_with_confidence, mask_low_confidence
from audio_vision.core.inference.pipeline import AudioToVision
from audio_vision.core.model.vqvae import codeword_sq_distances
from helpers import write_tiny_models


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    path = tmp_path_factory.mktemp('tiny_conf')
    write_tiny_models(path, num_mics=4)
    return AudioToVision.load(path, backend='eager')


def test_distances_match_brute_force():
    gen = torch.Generator().manual_seed(0)
    z, cb = torch.randn(2, 8, 3, 5, generator=gen), torch.randn(16, 8, generator=gen)
    d = codeword_sq_distances(z, cb)
    brute = ((z.permute(0, 2, 3, 1)[..., None, :] - cb) ** 2).sum(-1)
    torch.testing.assert_close(d, brute, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize('kind', KINDS)
def test_confidence_shapes_range_and_images_unchanged(tiny, kind):
    rng = np.random.default_rng(3)
    audio = (0.1 * rng.normal(size=(3, tiny.num_channels, tiny.window_samples))).astype(np.float32)
    plain = AudioToVision(tiny.models, backend='eager').predict_batch(audio)
    images, conf = tiny.predict_batch_with_confidence(audio, kind)
    assert set(conf) == set(images) == {'depth', 'segmentation'}
    for m in images:
        assert conf[m].shape == images[m].shape == (3, tiny.camera.height, tiny.camera.width)
        assert conf[m].dtype == np.float32
        assert np.isfinite(conf[m]).all() and conf[m].min() >= 0.0 and conf[m].max() <= 1.0
    np.testing.assert_array_equal(images['segmentation'], plain['segmentation'])
    np.testing.assert_allclose(images['depth'], plain['depth'], rtol=1e-6, equal_nan=True)
    one_img, one_conf = tiny.predict_with_confidence(audio[1], kind)
    np.testing.assert_allclose(one_conf['depth'], conf['depth'][1], rtol=1e-5, atol=1e-6)


def _on_first_codeword(tiny):
    """(depth model, its codebook, its latent size h, a latent whose every h x h cell is codeword 0)."""
    model = tiny.models['depth']
    cb = model.vqvae.quantizer.codebook
    h = model.spec.vqvae.latent_size
    return model, cb, h, cb[0][None, :, None, None].expand(1, -1, h, h).contiguous()


def test_confidence_is_one_on_a_codeword_and_falls_at_a_tie(tiny):
    """A latent exactly on codewords is certain; half-way between two codewords is not (margin -> 0)."""
    model, cb, h, on = _on_first_codeword(tiny)
    _, c_on = decode_with_confidence(model, on, 'margin')
    assert torch.allclose(c_on, torch.ones_like(c_on), atol=1e-4)
    d = ((cb - cb[0]) ** 2).sum(1)
    d[0] = float('inf')
    j = int(d.argmin())                              # the codeword nearest to codeword 0
    tie = (0.5 * (cb[0] + cb[j]))[None, :, None, None].expand(1, -1, h, h).contiguous()
    _, c_tie = decode_with_confidence(model, tie, 'margin')
    assert float(c_tie.max()) < 0.05
    _, c_latent_on = decode_with_confidence(model, on, 'latent')
    assert torch.allclose(c_latent_on, torch.ones_like(c_latent_on), atol=1e-4)


def test_echo_range_is_one_on_codewords_and_falls_off_the_codebook_and_with_range(tiny):
    """echo_range: a latent on codewords (q = 0) is certain; off the codebook, the farther predicted pixel of two in
    the same direction is less confident, and a direction nearer the horizon less than a steep one."""
    from audio_vision.core.inference.confidence import echo_range_confidence
    from audio_vision.core.model.vqvae import codebook_temperature
    model, cb, h, on = _on_first_codeword(tiny)
    _, c_on = decode_with_confidence(model, on, 'echo_range')
    assert torch.allclose(c_on, torch.ones_like(c_on), atol=1e-4)
    _, c_off = decode_with_confidence(model, on + 0.5 * cb.std(), 'echo_range')
    assert float(c_off.detach().max()) < 1.0
    assert codebook_temperature(cb) > 0
    size = (model.spec.camera.height, model.spec.camera.width)
    encoding = model.encoding
    ln_d = torch.log(torch.tensor([1.0, 4.0]))[:, None, None].expand(2, *size)   # two windows: 1 m and 4 m
    out = torch.stack([(ln_d - encoding.log_center) / encoding.log_scale, torch.ones(2, *size)], dim=1)
    conf = echo_range_confidence(model, out, torch.ones(2, h, h))
    assert (conf[1] < conf[0]).all()
    mid = size[1] // 2
    assert conf[0, size[0] // 2, mid] < conf[0, 0, mid] and conf[0, size[0] // 2, mid] < conf[0, -1, mid]
    assert conf[0, size[0] // 2, mid] > conf[0, size[0] // 2, 0]     # the image's side edge: longer horizontal range


def test_unknown_kind_and_unquantized_are_refused(tiny):
    with pytest.raises(ValueError, match='kind'):
        decode_with_confidence(tiny.models['depth'], torch.zeros(1, 8, 8, 8), 'entropy')
    unq = AudioToVision(tiny.models, quantize=False, backend='eager')
    with pytest.raises(ValueError, match='quantized'):
        unq.predict_batch_with_confidence(np.zeros((1, tiny.num_channels, tiny.window_samples), np.float32))


def test_min_confidence_masks_depth():
    depth = np.full((4, 4), 2.0, np.float32)
    conf = np.linspace(0, 1, 16, dtype=np.float32).reshape(4, 4)
    assert mask_low_confidence(depth, conf, 0.0) is depth
    out = mask_low_confidence(depth, conf, 0.5)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(np.isnan(out), conf < 0.5)
    assert (out[conf >= 0.5] == 2.0).all()
    with pytest.raises(ValueError):
        mask_low_confidence(depth, conf[:2], 0.5)


def test_sparsification_oracle_and_perfect_ranking():
    rng = np.random.default_rng(0)
    gt = rng.uniform(1, 5, 1000)
    rel = rng.uniform(0, 0.6, 1000)
    pred = gt * (1 + rel)
    perfect = sparsification(pred, gt, -rel)                  # confidence ranks exactly by error
    assert perfect['ause']['abs_rel'] == pytest.approx(0.0, abs=1e-12)
    assert perfect['curve']['abs_rel'][-1] == pytest.approx(rel.mean())
    assert perfect['half_ratio'] < 0.55
    inverse = sparsification(pred, gt, rel)                   # worst ordering
    assert inverse['half_ratio'] > 1.4 and inverse['ause']['abs_rel'] > 0.2
    # the oracle is never worse than any ordering, and curves end at the all-pixel value
    noisy = sparsification(pred, gt, -rel + rng.normal(0, 0.2, 1000))
    assert all(o <= c + 1e-12 for o, c in zip(noisy['oracle']['abs_rel'], noisy['curve']['abs_rel']))
    assert noisy['curve']['abs_rel'][-1] == pytest.approx(noisy['abs_rel_all'])
    # invalid pixels are left out
    pred[:10] = np.nan
    assert sparsification(pred, gt, -rel)['pixels'] == 990


def test_error_sparsification():
    errors = np.array([0, 0, 1, 1, 0, 1, 0, 0, 0, 1], float)
    r = error_sparsification(errors, 1.0 - errors)
    assert r['ause'] == pytest.approx(0.0) and r['half_ratio'] == 0.0
    assert r['error_all'] == pytest.approx(0.4)
