# SPDX-License-Identifier: Apache-2.0
"""Trajectory mode of the simulator: a smooth, limited drive; pose-following audio without seams; GT follows."""
import math

import numpy as np
import pytest

from audio_vision.simulation.acoustics import convolve_steady
from audio_vision.simulation.simulator import Simulator
from audio_vision.simulation.trajectory import (MAX_SPEED, MAX_YAW_RATE_DEG, LoopTrajectory, StaticTrajectory,
                                                TrajectoryDrive, crossfade_weights)


@pytest.fixture(scope='module')
def sim():
    return Simulator()


@pytest.mark.parametrize('size, shape', [((3.0, 3.0), 'rounded'), ((8.0, 3.2), 'rounded'), ((4.0, 6.5), 'rounded'),
                                         ((8.0, 3.2), 'ellipse')])
def test_path_is_smooth_inside_the_room_and_within_the_limits(size, shape):
    if shape == 'ellipse':
        traj = LoopTrajectory.ellipse(size[0] / 2, size[1] / 2, size[0] / 2 - 0.7, size[1] / 2 - 0.7)
    else:
        traj = LoopTrajectory.in_room(size, clearance=0.7)
    t = np.arange(0.0, 2 * traj.lap_s, 0.05)
    poses = traj.poses(t)
    xy = np.array([(p.x, p.y) for p in poses])
    assert xy.min() >= 0.7 - 1e-6
    assert (xy[:, 0] <= size[0] - 0.7 + 1e-6).all() and (xy[:, 1] <= size[1] - 0.7 + 1e-6).all()
    step = np.linalg.norm(np.diff(xy, axis=0), axis=1) / 0.05
    assert step.max() <= MAX_SPEED * 1.01 and step.max() > 0.05
    yaw_rate = np.abs(np.angle(np.exp(1j * np.diff([p.yaw for p in poses])))) / 0.05
    assert yaw_rate.max() <= math.radians(MAX_YAW_RATE_DEG) * 1.01
    assert max(abs(p.omega) for p in poses) <= math.radians(MAX_YAW_RATE_DEG) * 1.001
    # facing along the path
    heading = np.arctan2(np.diff(xy[:, 1]), np.diff(xy[:, 0]))
    assert np.abs(np.angle(np.exp(1j * (heading - [p.yaw for p in poses[:-1]])))).max() < math.radians(10)


def test_a_standing_robot_records_the_same_audio_as_one_steady_state_convolution(sim):
    """With identical RIRs at every pose update, the complementary cross-fades must leave no seam at all."""
    scene = sim.sample_scene(21)
    drive = TrajectoryDrive(sim, scene, StaticTrajectory(*scene.robot_position[:2], scene.robot_yaw), 1.0, 21)
    audio = drive.record_clean(update_s=0.25, fade_s=0.05)
    response = sim.room_response(scene, 21)
    history = 2 * response.rirs.shape[-1]
    n = audio.shape[1]
    signals, _ = sim.emitter_signals(scene, history + response.latency + n + 4000, history, 21)
    ref = convolve_steady(signals, response.rirs, history + response.latency, n)
    assert audio.shape == (sim.num_channels, 16000)
    np.testing.assert_allclose(audio, ref, rtol=0, atol=1e-5 * np.abs(ref).max())


def test_moving_robot_audio_changes_only_at_pose_updates_and_is_cross_faded(sim):
    drive = TrajectoryDrive.sample(sim, 5, duration_s=1.0)
    faded = drive.record_clean(update_s=0.25, fade_s=0.05)
    hard = drive.record_clean(update_s=0.25, fade_s=0.0)
    diff = np.abs(faded - hard).max(axis=0)
    hop, half = 4000, 400
    near = np.zeros(diff.size, bool)
    for b in (hop, 2 * hop, 3 * hop):
        near[b - half:b + half] = True
    assert diff[~near].max() <= 1e-6 * np.abs(hard).max()     # identical away from the pose updates
    assert diff[near].max() > 1e-3 * np.abs(hard).max()       # ... and the pose really changed there
    # the weights are complementary and change by < 0.2 % per sample: no step at a pose update
    w = crossfade_weights(800)
    np.testing.assert_allclose(w + w[::-1], 1.0)
    assert (np.diff(w) > 0).all() and np.abs(np.diff(w)).max() < 0.002


def test_ground_truth_follows_the_pose(sim):
    drive = TrajectoryDrive.sample(sim, 5, duration_s=20.0)
    gt0, gt1 = drive.render_at(0.0), drive.render_at(5.0)
    p0, p1 = drive.trajectory.pose_at(0.0), drive.trajectory.pose_at(5.0)
    np.testing.assert_allclose(gt0.camera_pose[:2, 3], [p0.x, p0.y])
    np.testing.assert_allclose(gt1.camera_pose[:2, 3], [p1.x, p1.y])
    assert math.hypot(p1.x - p0.x, p1.y - p0.y) > 1.0
    assert not np.allclose(gt0.depth, gt1.depth)
    for s in drive.scene.sources:      # no body on the path
        xy = np.array([(p.x, p.y) for p in drive.trajectory.poses(np.arange(0, drive.trajectory.lap_s, 0.1))])
        assert np.hypot(*(xy - s.body.center).T).min() > s.body.footprint_radius


def test_recorded_drive_has_noise_and_the_right_length(sim):
    drive = TrajectoryDrive.sample(sim, 8, duration_s=0.5)
    audio = drive.record()
    assert audio.shape == (sim.num_channels, 8000) and audio.dtype == np.float32 and np.isfinite(audio).all()
    assert not np.allclose(audio, drive.record_clean())
