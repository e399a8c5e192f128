# SPDX-License-Identifier: Apache-2.0
"""The layout prior as network input: the sonar front-end's room rendered at image resolution, packed into the
feature stack, read by both networks, run eagerly by every backend (a trace would bake one window's room in)."""
import math

import numpy as np
import pytest
import torch

from audio_vision.core.camera import PinholeCamera
from audio_vision.core.features.chirp import ChirpMismatch, check_chirp_match
from audio_vision.core.features.config import LAYOUT_PRIOR_MAPS, REFLECTOR_MAPS, FeatureConfig
from audio_vision.core.features.layout_prior import LayoutPriorMaps, sonar_config_of
from audio_vision.core.features.stack import FeatureStack
from audio_vision.core.inference import backends as B
from audio_vision.core.inference.pipeline import AudioToVision
from audio_vision.core.model.atnet import ATNet, split_input
from audio_vision.core.model.baselines import EndToEnd, EndToEndConfig
from audio_vision.simulation.config import ArrayConfig
from audio_vision.simulation.geometry import mic_positions
from audio_vision.sonar import CEILING, FLOOR, WALL, Plane
from audio_vision.sonar.layout import horizontal
from audio_vision.sonar.synthetic import echo_recording

from helpers import tiny_spec, write_tiny_models

MICS = mic_positions(ArrayConfig())
FC = FeatureConfig(direction_maps=True, layout_prior='layout')
FC_REFLECTORS = FeatureConfig(direction_maps=True, layout_prior='layout+reflectors')
ROOM = [Plane(FLOOR, (0.0, 0.0, -1.0), 1.2, strength=0.9), Plane(CEILING, (0.0, 0.0, 1.0), 1.5, strength=0.8),
        Plane(WALL, tuple(horizontal(0.0)), 2.5, strength=0.9), Plane(WALL, tuple(horizontal(90.0)), 1.6, strength=0.9),
        Plane(WALL, tuple(horizontal(-90.0)), 2.1, strength=0.9)]


def room_audio(cfg: FeatureConfig, scatterers=(), seed=0) -> np.ndarray:
    return echo_recording(sonar_config_of(cfg), MICS, ROOM, order=2, periods=4, noise_rms=1e-4, seed=seed,
                          scatterers=scatterers)


def test_prior_images_hold_the_measured_room_in_the_cameras_pixels():
    maps = LayoutPriorMaps(FC, MICS)(torch.from_numpy(room_audio(FC))[None])[0].numpy()
    assert maps.shape == (len(LAYOUT_PRIOR_MAPS), FC.prior_size, FC.prior_size)
    ch = {name: maps[i] for i, name in enumerate(LAYOUT_PRIOR_MAPS)}
    cam = PinholeCamera(FC.prior_size, FC.prior_size, FC.map_hfov_deg)
    # A level camera: the floor's z-depth at row v is h f / (v - c_y); the ceiling's (H - h) f / (c_y - v).
    for row, label, height in ((FC.prior_size - 1, 'floor', 1.2), (0, 'ceiling', 1.5)):
        col = FC.prior_size // 2
        assert ch[label][row, col] == 1.0 and ch['seen'][row, col] == 1.0
        expected = height * cam.fy / abs(row - cam.cy)
        assert math.exp(ch['log_depth'][row, col]) == pytest.approx(expected, rel=0.01)
    # the image's left edge looks at the wall 1.6 m to the left: z-depth 1.6 / |x| of the pixel's ray
    row = FC.prior_size // 2
    assert ch['wall'][row, 0] == 1.0
    assert math.exp(ch['log_depth'][row, 0]) == pytest.approx(1.6 * cam.fx / cam.cx, rel=0.02)
    # the class prior is one-hot where the prior sees a plane, empty elsewhere
    classes = ch['wall'] + ch['floor'] + ch['ceiling']
    np.testing.assert_array_equal(classes, ch['seen'])
    assert np.all(ch['log_depth'][ch['seen'] == 0] == 0.0)
    assert np.all((ch['confidence'] >= 0) & (ch['confidence'] <= 1))


def test_a_body_the_room_does_not_explain_is_drawn_where_it_stands():
    body = np.array([1.4, 0.35, -0.2])            # array frame: ahead, a little left and down
    audio = room_audio(FC_REFLECTORS, scatterers=[(body, 0.6)])
    maps = LayoutPriorMaps(FC_REFLECTORS, MICS)(torch.from_numpy(audio)[None])[0].numpy()
    assert maps.shape[0] == len(LAYOUT_PRIOR_MAPS) + len(REFLECTOR_MAPS)
    strength = maps[len(LAYOUT_PRIOR_MAPS) + 1]
    cam = PinholeCamera(FC.prior_size, FC.prior_size, FC.map_hfov_deg)
    u = cam.cx + cam.fx * (-body[1]) / body[0]     # optical x = -y, optical y = -z, z = x
    v = cam.cy + cam.fy * (-body[2]) / body[0]
    row, col = np.unravel_index(np.argmax(strength), strength.shape)
    assert math.hypot(col - u, row - v) < 4.0, (row, col, v, u)
    depth = math.exp(maps[len(LAYOUT_PRIOR_MAPS)][row, col])
    assert depth == pytest.approx(body[0], abs=0.15)


def test_silence_and_noise_give_an_empty_prior_not_an_error():
    module = LayoutPriorMaps(FC, MICS)
    audio = np.stack([np.zeros((len(MICS), FC.window_samples)),
                      np.random.default_rng(0).normal(size=(len(MICS), FC.window_samples))]).astype(np.float32)
    maps = module(torch.from_numpy(audio)).numpy()
    assert np.isfinite(maps).all()
    assert maps[0].sum() == 0.0                      # no echo, no plane


def test_the_stack_packs_the_prior_and_both_networks_read_it():
    stack = FeatureStack(FC_REFLECTORS, MICS)
    audio = torch.from_numpy(np.stack([room_audio(FC_REFLECTORS, seed=s) for s in (0, 1)]))
    feats = stack(audio)
    assert feats.shape == (2, *FC_REFLECTORS.output_shape(len(MICS)))
    assert not stack.traceable
    spec = tiny_spec('depth', num_mics=len(MICS), image=64, latent=16, features=FC_REFLECTORS, mic_positions=MICS)
    spectral, maps, prior = split_input(spec.atnet, feats)
    np.testing.assert_array_equal(prior.numpy(), stack.layout_prior(audio).numpy())
    assert spectral.shape[1] == FC_REFLECTORS.num_spectral_channels(len(MICS))
    assert maps.shape[1:] == (FC_REFLECTORS.num_direction_maps, FC_REFLECTORS.map_grid, FC_REFLECTORS.map_grid)
    at = ATNet(spec.atnet)
    e2e = EndToEnd(EndToEndConfig(in_channels=spec.atnet.in_channels, out_channels=2, image_size=64, encoder_width=8,
                                  mlp_hidden=32, start_channels=32, **FC_REFLECTORS.map_layout(),
                                  **FC_REFLECTORS.prior_layout()))
    for net, shape in ((at, (2, 8, 16, 16)), (e2e, (2, 2, 64, 64))):
        out = net(feats)
        assert out.shape == shape
        out.square().mean().backward()
        assert net.prior_encoder.net[0].weight.grad.abs().sum() > 0      # the prior reaches the output
    # the end-to-end head also reads the prior's images at full resolution
    assert e2e.head.in_channels == e2e.upsample_rest[-3].out_channels + FC_REFLECTORS.num_prior_maps


@pytest.mark.parametrize('name', [b for b in B.available_backends() if b != 'eager'])
def test_every_backend_runs_the_prior_eagerly_and_agrees_with_eager(tmp_path, name):
    fc = FeatureConfig(window_s=0.5, n_fft=256, n_mels=32, direction_maps=True, map_size=8, layout_prior='layout')
    write_tiny_models(tmp_path, num_mics=len(MICS), image=32, latent=8,
                      features=fc.__class__(**{**fc.__dict__, 'prior_size': 32}), mic_positions=MICS)
    eager = AudioToVision.load(tmp_path, backend='eager')
    other = AudioToVision.load(tmp_path, backend=name)
    try:
        # a room other than the example audio the backend compiled with: a traced prior would keep that one
        audio = room_audio(eager.feature_config)[:, :eager.window_samples]
        ref, out = eager.predict(audio), other.predict(audio)
        assert B.compare_outputs(ref, out)['equivalent']
    finally:
        eager.close()
        other.close()


def test_a_prior_for_another_speaker_position_is_refused():
    fc = FeatureConfig(layout_prior='layout', speaker_position=(0.05, 0.0, 0.0))
    chirp = {'enabled': True, 'kind': 'linear', 'f_start': 500.0, 'f_end': 7500.0, 'duration_s': 0.01,
             'period_s': 0.25, 'speaker_position': [0.0, 0.0, 0.0]}
    with pytest.raises(ChirpMismatch, match='speaker_position'):
        check_chirp_match(fc, chirp, 'the simulator')
    check_chirp_match(FeatureConfig(layout_prior='layout'), chirp, 'the simulator')     # the same speaker: fine
    with pytest.raises(ValueError, match='layout_prior'):
        FeatureConfig(layout_prior='room')
