# SPDX-License-Identifier: Apache-2.0
"""Depth relative to the sonar layout (``depth_target: layout_ratio``): the networks' images are the departure of
the depth from the room the front-end measured, and every path that reads metres adds the measured room back."""
import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from audio_vision.core.features.config import FeatureConfig
from audio_vision.core.features.packing import pack_maps
from audio_vision.core.inference.confidence import KINDS, decode_with_confidence
from audio_vision.core.model.baselines import EndToEnd, EndToEndConfig
from audio_vision.core.model.checkpoint import CheckpointError, ModalityModel, ModalitySpec
from audio_vision.core.model.encoding import DepthEncoding
from audio_vision.training.config import TrainConfig
from helpers import tiny_spec

NUM_MICS = 4
FC = FeatureConfig(window_s=0.25, n_fft=256, n_mels=32, layout_prior='layout', prior_size=32)


def features_with_prior(depth: np.ndarray, seen: np.ndarray, seed: int = 0) -> torch.Tensor:
    """Random feature channels whose packed layout prior has the z-depth ``depth`` (B, S, S) where ``seen``."""
    b, s = depth.shape[0], FC.prior_size
    prior = torch.zeros(b, FC.num_prior_maps, s, s)
    prior[:, 0] = torch.from_numpy(np.where(seen, np.log(np.where(seen, depth, 1.0)), 0.0)).float()
    prior[:, 1] = torch.from_numpy(seen.astype(np.float32))
    feats = torch.randn(b, *FC.output_shape(NUM_MICS), generator=torch.Generator().manual_seed(seed))
    feats[:, -FC.prior_planes:] = pack_maps(prior, FC.prior_planes, FC.num_bins, FC.num_frames)
    return feats


def room(b: int = 2, s: int = 32):
    rng = np.random.default_rng(0)
    depth = rng.uniform(0.8, 7.0, size=(b, s, s))
    seen = np.ones((b, s, s), dtype=bool)
    seen[:, :4] = False                          # a side of the box the front-end did not measure
    return depth, seen


def zero_decoder(model: ModalityModel, valid_logit: float = 5.0) -> None:
    """The VQ-VAE decoder outputs 0 (no departure) and 'valid' everywhere."""
    last = model.vqvae.decoder.net[-1]                  # the transposed conv to the image
    with torch.no_grad():
        last.weight.zero_()
        last.bias.copy_(torch.tensor([0.0, valid_logit]))


def test_encoding_relative_to_a_reference_round_trips_to_metres():
    enc = DepthEncoding()
    depth, seen = room()
    depth = torch.from_numpy(depth).float()
    depth[0, 5, 5] = float('nan')                        # a hole stays a hole
    prior = torch.zeros(2, 6, 32, 32)
    prior[:, 0] = torch.log(torch.from_numpy(room()[0]).float() * 1.1)
    prior[:, 1] = torch.from_numpy(seen).float()
    reference = enc.reference(prior)
    assert torch.all(reference[:, :4] == 0)              # unseen: absolute there
    x = enc.encode(depth, reference)
    assert x[0, 0, 5, 5] == 0 and x[0, 1, 5, 5] == 0
    # where seen, the image is the log ratio to the prior (here ln(1/1.1) everywhere), normalised
    np.testing.assert_allclose(x[:, 0, 6:, :].numpy()[~np.isnan(depth[:, 6:, :].numpy())],
                               -math.log(1.1) / enc.log_scale, atol=1e-5)
    output = torch.stack([x[:, 0], torch.where(x[:, 1] > 0, 5.0, -5.0)], dim=1)
    back = enc.decode(enc.shifted(output, reference))
    np.testing.assert_allclose(back.numpy(), depth.numpy(), rtol=1e-5)


def test_a_model_that_departs_nowhere_predicts_the_measured_room():
    depth, seen = room()
    feats = features_with_prior(depth, seen)
    spec = tiny_spec('depth', num_mics=NUM_MICS, image=32, features=FC)
    torch.manual_seed(0)
    relative = ModalityModel(replace(spec, depth_target='layout_ratio')).eval()
    absolute = ModalityModel(spec).eval()
    absolute.load_state_dict(relative.state_dict())
    for model in (relative, absolute):
        zero_decoder(model)
    with torch.no_grad():
        rel = relative.encoding.decode(relative(feats)).numpy()
        ab = absolute.encoding.decode(absolute(feats)).numpy()
    np.testing.assert_allclose(rel[seen], depth[seen], rtol=1e-4)        # the room, measured
    np.testing.assert_allclose(rel[~seen], 3.0, rtol=1e-5)              # unmeasured: the encoding's centre
    np.testing.assert_allclose(ab, 3.0, rtol=1e-5)                      # absolute: no room at all
    # the VQ-VAE's upper bound and the confidence path add the same room back
    with torch.no_grad():
        gt = torch.from_numpy(depth).float()
        np.testing.assert_allclose(relative.encoding.decode(relative.reconstruction(gt, feats)).numpy()[seen],
                                   depth[seen], rtol=1e-4)
        z = relative.atnet(feats)
        for kind in KINDS:
            out, conf = decode_with_confidence(relative, z, kind, reference=relative.reference(feats))
            torch.testing.assert_close(out, relative(feats))
            assert conf.shape == (2, 32, 32) and torch.isfinite(conf).all()


def test_the_target_travels_with_the_checkpoint_and_is_checked():
    spec = replace(tiny_spec('depth', num_mics=NUM_MICS, image=32, features=FC), depth_target='layout_ratio')
    d = spec.to_dict()
    assert d['depth_target'] == 'layout_ratio'
    assert ModalitySpec.from_dict(d).depth_target == 'layout_ratio'
    absolute = tiny_spec('depth', num_mics=NUM_MICS, image=32, features=FC).to_dict()
    assert 'depth_target' not in absolute and ModalitySpec.from_dict(absolute).depth_target == 'absolute'
    with pytest.raises(CheckpointError, match='layout_prior'):
        replace(tiny_spec('depth', num_mics=NUM_MICS), depth_target='layout_ratio').check_consistent()
    with pytest.raises(CheckpointError, match='depth modality'):
        replace(tiny_spec('segmentation', num_mics=NUM_MICS, image=32, features=FC),
                depth_target='layout_ratio').check_consistent()
    with pytest.raises(CheckpointError, match='unknown depth_target'):
        replace(spec, depth_target='metres').check_consistent()
    with pytest.raises(ValueError, match='layout_prior'):
        TrainConfig(depth_target='layout_ratio')
    with pytest.raises(ValueError, match='depth_target'):
        TrainConfig(depth_target='ratio', features=FC)


def test_the_end_to_end_head_departs_from_the_measured_room():
    depth, seen = room()
    feats = features_with_prior(depth, seen)
    cfg = EndToEndConfig(in_channels=FC.num_feature_channels(NUM_MICS), out_channels=2, image_size=32,
                         encoder_width=8, mlp_hidden=32, start_channels=32, min_channels=8,
                         depth_target='layout_ratio', **FC.map_layout(), **FC.prior_layout())
    torch.manual_seed(0)
    net = EndToEnd(cfg).eval()
    with torch.no_grad():
        net.head.weight.zero_()
        net.head.bias.copy_(torch.tensor([0.0, 5.0]))
        out = DepthEncoding().decode(net(feats)).numpy()
    np.testing.assert_allclose(out[seen], depth[seen], rtol=1e-4)
    with pytest.raises(ValueError, match='layout prior'):
        EndToEnd(replace(cfg, prior_channels=0, prior_planes=0, prior_size=0))
    with pytest.raises(ValueError, match='unknown EndToEndConfig.depth_target'):
        EndToEnd(replace(cfg, depth_target='metres'))
