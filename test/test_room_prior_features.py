# SPDX-License-Identifier: Apache-2.0
"""scripts/room_prior_features.py: another room replaces the layout prior's maps and nothing else; the exact room's
depth map is the simulator's ground truth of a room without bodies."""
import numpy as np
import torch
from helpers import load_script

from audio_vision.core.camera import PinholeCamera
from audio_vision.core.classes import DEFAULT_CLASS_TABLE
from audio_vision.core.features.config import LAYOUT_PRIOR_MAPS, FeatureConfig
from audio_vision.core.features.packing import unpack_maps
from audio_vision.simulation.render import render
from audio_vision.simulation.scene import Room, Scene


def _scene(size, position, yaw):
    room = Room(size, {s: 'hard_surface' for s in ('west', 'east', 'south', 'north', 'floor', 'ceiling')}, 0.5, 0)
    return Scene(room=room, robot_position=position, robot_yaw=yaw)


def test_the_exact_room_replaces_the_prior_maps_only():
    script = load_script('room_prior_features')
    config = FeatureConfig(spatial='ipd', echo=True, direction_maps=True, map_size=16, layout_prior='layout+reflectors',
                           prior_size=32, map_hfov_deg=90.0)
    camera = PinholeCamera(config.prior_size, config.prior_size, config.map_hfov_deg)
    scenes = [_scene((5.0, 4.0, 2.7), (1.3, 2.9, 0.7), 0.4), _scene((9.0, 3.2, 3.6), (7.5, 1.0, 0.4), 2.5)]
    truths = [render(s, camera, DEFAULT_CLASS_TABLE) for s in scenes]
    items = [{'camera_pose': t.camera_pose, 'room_size': s.room.size} for s, t in zip(scenes, truths)]
    rng = np.random.default_rng(0)
    features = rng.normal(size=(2,) + config.output_shape(8)).astype(np.float16)

    room = np.stack([script.exact_prior_maps(it['camera_pose'], it['room_size'], camera) for it in items])
    out = script.with_room_prior(features, room, config)

    assert out.shape == features.shape and out.dtype == np.float16
    np.testing.assert_array_equal(out[:, :-config.prior_planes], features[:, :-config.prior_planes])
    args = (config.num_prior_maps, config.prior_size, config.prior_planes)
    _, before = unpack_maps(torch.from_numpy(features.astype(np.float32)), *args)
    _, after = unpack_maps(torch.from_numpy(out.astype(np.float32)), *args)
    n = len(LAYOUT_PRIOR_MAPS)
    torch.testing.assert_close(after[:, n:], before[:, n:])                 # the front-end's reflectors kept
    for i, truth in enumerate(truths):
        log_depth, seen, wall, floor, ceiling, confidence = after[i, :n].numpy()
        assert seen.all() and (confidence == 1).all()                       # every plane, as if measured
        np.testing.assert_allclose(np.exp(log_depth), truth.depth, rtol=2e-3)   # float16 storage
        classes = np.select([wall > 0, floor > 0, ceiling > 0],
                            [DEFAULT_CLASS_TABLE.id_of(c) for c in ('wall', 'floor', 'ceiling')], 255)
        assert (classes == truth.segmentation).mean() > 0.99


def test_the_script_refuses_to_overwrite_the_measured_features(tmp_path):
    import pytest
    script = load_script('room_prior_features')
    with pytest.raises(SystemExit):
        script.main(['--room', 'exact', '--data', str(tmp_path), '--out', str(tmp_path)])
