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


def test_the_fused_room_keeps_the_walls_an_earlier_window_of_its_room_heard():
    """Exact synthetic echoes: the first pose hears two walls, the second the other two and faces one it does not
    hear. Fused, the second window's prior has the room the first heard (its depth the exact room's), alone it has
    not; a window of another room starts afresh."""
    import math

    from audio_vision.core.frames import optical_pose, planar_pose
    from audio_vision.core.features.layout_prior import prior_images
    from audio_vision.simulation.config import ArrayConfig
    from audio_vision.simulation.geometry import mic_positions
    from audio_vision.sonar import FLOOR, WALL, LayoutEstimator, Plane, SonarConfig
    from audio_vision.sonar.synthetic import echo_recording

    script = load_script('room_prior_features')
    size = (6.0, 4.0, 2.8)
    sides = [((-1, 0, 0), 0.0), ((1, 0, 0), size[0]), ((0, -1, 0), 0.0), ((0, 1, 0), size[1])]

    def heard(T, walls):
        R, t = T[:3, :3], T[:3, 3]
        out = [Plane(FLOOR, tuple(R.T @ np.array([0.0, 0.0, -1.0])), float(t[2]), contrast=10.0, strength=0.9)]
        for k in walls:
            n, c = np.asarray(sides[k][0], dtype=np.float64), sides[k][1]
            out.append(Plane(WALL, tuple(R.T @ n), float(n @ (np.abs(n) * c - t)), contrast=10.0, strength=0.9))
        return out

    cfg, mics = SonarConfig(wall_corner_min=0.0), mic_positions(ArrayConfig())   # first-order echoes only
    estimator, camera = LayoutEstimator(cfg, mics), PinholeCamera(32, 32, 90.0)
    first, second = planar_pose(1.2, 1.0, 0.55, math.radians(10.0)), planar_pose(4.6, 2.9, 0.55, math.pi)
    windows = [(first, (0, 2)), (second, (1, 3))]      # the second faces the wall x = 0, which only the first hears
    items = [{'room_id': 7, 'camera_pose': optical_pose(T), 'room_size': size,
              'audio': echo_recording(cfg, mics, heard(T, walls), order=1, noise_rms=1e-4)} for T, walls in windows]

    fused_maps = script.FusedRoomMaps(estimator, camera)
    fused_maps(items[0])
    fused = fused_maps(items[1])
    alone = prior_images(estimator.estimate(items[1]['audio']), camera, reflectors=False)
    exact = script.exact_prior_maps(items[1]['camera_pose'], size, camera)
    below = np.zeros(exact[0].shape, dtype=bool)
    below[camera.height // 2:] = True                # no ceiling heard: the prior stops 1 m above the array
    fused_seen, alone_seen = fused[1] > 0, alone[1] > 0
    assert fused_seen[below].all() and not alone_seen[below].all()
    np.testing.assert_allclose(np.exp(fused[0][below]), np.exp(exact[0][below]), rtol=0.02)

    afresh = fused_maps({**items[1], 'room_id': 8})          # its confidence is relative to the fused planes'
    np.testing.assert_array_equal(afresh[1], alone[1])
    np.testing.assert_allclose(afresh[0], alone[0], atol=1e-3)
