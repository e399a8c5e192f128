# SPDX-License-Identifier: Apache-2.0
"""The layout prior fused over a drive (FeatureConfig.layout_fusion): the feature module on exact synthetic echoes
from two poses in one box, the training data's drives (one per room, the simulator's poses), the cache keys, the
pipeline's odometry and the node's drive bookkeeping (runtime/drive.py)."""
import dataclasses
import math

import numpy as np
import pytest
import torch

from audio_vision.core.features.config import FeatureConfig
from audio_vision.core.features.layout_prior import LayoutPriorMaps, sonar_config_of
from audio_vision.core.features.stack import FeatureStack
from audio_vision.core.inference.pipeline import AudioToVision
from audio_vision.runtime.drive import DriveOdometry
from audio_vision.simulation.config import ArrayConfig
from audio_vision.simulation.geometry import mic_positions
from audio_vision.sonar import FLOOR, WALL, Plane
from audio_vision.sonar.synthetic import echo_recording
from audio_vision.training.data import drive_pose, feature_cache_path

from helpers import write_tiny_models

MICS = mic_positions(ArrayConfig())
FC = FeatureConfig(layout_prior='layout+reflectors', layout_fusion=True, prior_size=32)
SIZE = (6.0, 4.0)                     # the box [0, 6] x [0, 4], floor at z = 0


def pose(x, y, yaw_deg=0.0, z=0.55):
    a = math.radians(yaw_deg)
    T = np.eye(4)
    T[:2, :2] = [[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]]
    T[:3, 3] = (x, y, z)
    return T


def heard(T, walls):
    """The floor and the chosen walls of the box (0: x = 0, 1: x = 6, 2: y = 0, 3: y = 4) in the array frame at T:
    what an array that hears only those walls records."""
    R, t = T[:3, :3], T[:3, 3]
    sides = [((-1.0, 0.0, 0.0), 0.0), ((1.0, 0.0, 0.0), SIZE[0]), ((0.0, -1.0, 0.0), 0.0), ((0.0, 1.0, 0.0), SIZE[1])]
    planes = [Plane(FLOOR, tuple(R.T @ np.array([0.0, 0.0, -1.0])), float(t[2]), strength=0.9)]
    for k in walls:
        n, c = np.asarray(sides[k][0]), sides[k][1]
        planes.append(Plane(WALL, tuple(R.T @ n), float(n @ (np.abs(n) * c - t)), strength=0.9))
    return echo_recording(sonar_config_of(FC), MICS, planes, order=2, periods=4, noise_rms=1e-4)


def facing(layout, T, room_normal):
    """The layout's walls (array frame at T) whose normal is ``room_normal`` of the box."""
    n = T[:3, :3].T @ np.asarray(room_normal, dtype=np.float64)
    return [p for p in layout.get(WALL) if float(p.n @ n) > 0.99]


@pytest.fixture(scope='module')
def two_poses():
    a, b = pose(1.2, 1.0, 10.0), pose(4.6, 2.9, -20.0)
    return (a, heard(a, (0, 2))), (b, heard(b, (1, 3)))


def test_the_prior_of_a_drive_holds_the_walls_earlier_windows_heard(two_poses):
    (a, audio_a), (b, audio_b) = two_poses
    prior = LayoutPriorMaps(FC, MICS)
    batch = np.stack([audio_a, audio_b])
    prior.set_odometry([a, b], ['drive'] * 2)
    fused = prior._layouts(batch)
    alone = prior._layouts(batch)                 # no odometry given for this batch: each window its room alone
    assert len(alone[0].get(WALL)) == len(fused[0].get(WALL)) == 2        # the drive's first window: its own walls
    assert not facing(alone[1], b, (0, -1, 0))                            # b alone does not hear the y = 0 wall
    for normal, offset in (((-1, 0, 0), 4.6), ((1, 0, 0), 1.4), ((0, -1, 0), 2.9), ((0, 1, 0), 1.1)):
        (w,) = facing(fused[1], b, normal)                                # fused: all four, each where it is
        assert abs(w.offset - offset) < 0.03, (normal, w.offset)
    # a new drive id restarts the drive: window b then is its room alone again
    prior.set_odometry([a, b], ['one', 'two'])
    assert not facing(prior._layouts(batch)[1], b, (0, -1, 0))
    # the maps the networks read: the walls only a heard are rendered at b
    x = torch.from_numpy(batch.astype(np.float32))
    prior.set_odometry([a, b], [0, 0])
    maps_fused = prior(x)
    maps_alone = prior(x)
    assert torch.equal(maps_fused[0], maps_alone[0]) and not torch.equal(maps_fused[1], maps_alone[1])
    with pytest.raises(ValueError, match='2 poses but 1 drive ids'):
        prior.set_odometry([a, b], [0])


def test_the_pipeline_passes_each_windows_odometry_and_ignores_it_without_fusion(tmp_path, two_poses):
    (a, audio_a), (b, audio_b) = two_poses
    window = FC.window_samples
    write_tiny_models(tmp_path, num_mics=len(MICS), mic_positions=MICS, image=32,
                      features=dataclasses.replace(FC))
    with AudioToVision.load(tmp_path, backend='eager') as model:
        assert model.fuses_layout
        first = model.predict(audio_a[:, :window], a, 0)
        second = model.predict(audio_b[:, :window], b, 0)
        again_alone = model.predict(audio_b[:, :window], b, 1)     # a new drive: b alone
        no_pose = model.predict(audio_b[:, :window])
    assert first['depth'].shape == (32, 32)
    assert not np.array_equal(second['depth'], again_alone['depth'])
    np.testing.assert_array_equal(again_alone['depth'], no_pose['depth'])
    with pytest.raises(ValueError, match='1 poses for 2 windows'):
        AudioToVision.load(tmp_path, backend='eager').predict_batch(np.stack([audio_a[:, :window]] * 2), [a])
    unfused = tmp_path / 'unfused'
    write_tiny_models(unfused, num_mics=len(MICS), mic_positions=MICS, image=32,
                      features=dataclasses.replace(FC, layout_fusion=False))
    with AudioToVision.load(unfused, backend='eager') as model:
        assert not model.fuses_layout
        np.testing.assert_array_equal(model.predict(audio_b[:, :window], b, 0)['depth'],
                                      model.predict(audio_b[:, :window])['depth'])


def test_fusion_options_key_the_cache_only_when_fusion_is_on():
    base = FeatureConfig(layout_prior='layout')
    key = feature_cache_path('d', 'test', base, MICS, 'h')
    assert feature_cache_path('d', 'test', dataclasses.replace(base, layout_fusion_keyframe_m=1.0), MICS, 'h') == key
    fused = dataclasses.replace(base, layout_fusion=True)
    assert feature_cache_path('d', 'test', fused, MICS, 'h') != key
    assert feature_cache_path('d', 'test', dataclasses.replace(fused, layout_fusion_keyframe_m=1.0), MICS, 'h') != \
        feature_cache_path('d', 'test', fused, MICS, 'h')
    with pytest.raises(ValueError, match='layout_fusion fuses the layout prior'):
        FeatureConfig(layout_fusion=True)
    with pytest.raises(ValueError, match='layout_fusion_keyframes'):
        dataclasses.replace(fused, layout_fusion_keyframes=0)


def same(cached: torch.Tensor, computed: torch.Tensor) -> bool:
    """Cached (float16) features equal to computed ones up to float16 and batch-size rounding (a prior map that
    differs differs by far more: log-depths of metres)."""
    return torch.allclose(cached.float(), computed.float(), rtol=0.0, atol=5e-3)


def test_training_data_fuse_each_rooms_windows_in_order(tmp_path):
    """A tiny simulated dataset (rooms of two poses): the first window of every room has the features of that window
    alone (the drive restarts per room); the second is placed with the simulator's pose of it."""
    from audio_vision.dataset import DatasetReader
    from audio_vision.simulation.config import SimConfig
    from audio_vision.simulation.dataset import generate_dataset
    from audio_vision.training.data import load_split
    cfg = SimConfig()
    cfg = dataclasses.replace(cfg, camera=dataclasses.replace(cfg.camera, width=16, height=16),
                              recording=dataclasses.replace(cfg.recording, window_s=0.5, rir_max_s=0.3),
                              dataset=dataclasses.replace(cfg.dataset, poses_per_room=2))
    generate_dataset(tmp_path, 8, seed=3, cfg=cfg, workers=1, progress=False)
    reader = DatasetReader(tmp_path, 'train')
    fc = FeatureConfig(window_s=0.5, layout_prior='layout+reflectors', layout_fusion=True, prior_size=16)
    data = load_split(tmp_path, 'train', fc, batch_size=3, progress=False)     # drives across batch edges
    rooms = [int(reader[i]['room_id']) for i in range(len(reader))]
    assert len(set(rooms)) >= 2
    stack = FeatureStack(fc, np.asarray(reader.mic_positions))
    prior = stack.layout_prior
    with torch.inference_mode():
        for i, room in enumerate(rooms):
            audio = torch.from_numpy(reader[i]['audio'][None].astype(np.float32))
            if i == 0 or rooms[i - 1] != room:
                assert same(data.features[i], stack(audio)[0]), i
            else:                      # the room's earlier window, then this one, in one drive
                before = torch.from_numpy(reader[i - 1]['audio'][None].astype(np.float32))
                poses = [drive_pose(reader[j]) for j in (i - 1, i)]
                prior.set_odometry(poses, [room, room])
                assert same(data.features[i], stack(torch.cat([before, audio]))[1]), i
                assert not same(data.features[i], stack(audio)[0]), i   # and not as the window alone


def test_drive_odometry_restarts_on_a_missing_stale_or_jumping_pose():
    drive = DriveOdometry(max_step_m=1.0, max_pose_age_s=0.1)
    s = 10**9
    assert drive.window(pose(0, 0), s, s)[1] == 0
    T, d = drive.window(pose(0.5, 0), 2 * s, 2 * s)
    assert d == 0 and np.allclose(T, pose(0.5, 0))
    assert drive.window(pose(0.6, 0), 2 * s, 3 * s) == (None, 1)        # a pose 1 s older than the window: stale
    assert drive.window(None, None, 4 * s) == (None, 2)                  # no odometry
    _, d = drive.window(pose(0.7, 0), 5 * s, 5 * s)
    assert d == 2                                                        # the next posed window starts drive 2
    _, d = drive.window(pose(3.0, 0), 6 * s, 6 * s)                      # 2.3 m in one window: a jump
    assert d == 3
    counts = drive.restarts.snapshot()
    assert counts['pose_stale'] == 1 and counts['pose_missing'] == 1 and counts['jump'] == 1
    assert drive.posed == 4
