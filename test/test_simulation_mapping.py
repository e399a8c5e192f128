# SPDX-License-Identifier: Apache-2.0
"""Mapping a simulated drive (audio_vision.simulation.mapping): frames fused per variant, scored on the floor plan."""
import numpy as np
import pytest

from audio_vision.simulation.mapping import (DriveFrames, MapVariant, floor_plan_masks, fuse_drive, grid_for_room,
                                             score_grid)
from audio_vision.simulation.simulator import Simulator
from audio_vision.simulation.trajectory import TrajectoryDrive


@pytest.fixture(scope='module')
def drive_and_frames():
    """A lap of room 11 with the ground-truth depth as the 'method' depth (confidence 1, no segmentation)."""
    sim = Simulator()
    drive = TrajectoryDrive.sample(sim, 11, duration_s=40.0)
    renders = [drive.render_at(t) for t in np.arange(1.0, drive.trajectory.lap_s, 0.5)]
    depth = np.array([r.depth for r in renders])
    frames = DriveFrames(poses=np.array([r.camera_pose for r in renders]), path=np.zeros((len(renders), 4)),
                         depth=depth, confidence=np.ones_like(depth), segmentation=None, gt_depth=depth.copy(),
                         K=sim.camera.K)
    return drive, frames


def test_exact_depth_maps_the_floor_plan_and_matches_the_ground_truth_variant(drive_and_frames):
    drive, frames = drive_and_frames
    config = grid_for_room(drive.scene.room.size, 0.05, pixel_stride=2)
    method = fuse_drive(frames, config, MapVariant())
    truth = fuse_drive(frames, config, MapVariant('ground_truth', confidence=False))
    np.testing.assert_array_equal(method.logodds, truth.logodds)
    assert method.frames == len(frames.poses)
    occupied, free = floor_plan_masks(drive, config)
    scores = score_grid(method, occupied, free)
    assert scores['occupied_f1'] > 0.9 and scores['free_iou'] > 0.9


def test_overrides_change_the_grid_and_missing_inputs_are_refused(drive_and_frames):
    drive, frames = drive_and_frames
    config = grid_for_room(drive.scene.room.size, 0.05, pixel_stride=2)
    short = fuse_drive(frames, config, MapVariant(overrides=(('max_range', 0.5),)))
    assert short.config.max_range == 0.5
    occupied, free = floor_plan_masks(drive, config)
    # rays cut at 0.5 m only clear: the walls (at least 0.7 m from the path) stay unmarked
    assert score_grid(short, occupied, free)['occupied_recall'] < 0.5
    with pytest.raises(ValueError, match='segmentation'):
        fuse_drive(frames, config, MapVariant(segmentation=True))
    no_gt = DriveFrames(**{**frames.__dict__, 'gt_depth': None})
    with pytest.raises(ValueError, match='ground-truth'):
        fuse_drive(no_gt, config, MapVariant('ground_truth'))


def test_an_extra_depth_source_is_fused_by_name_and_an_unknown_one_refused(drive_and_frames):
    """The sonar layout's depth (or any other source) rides along the frames as ``extra_depth``: the exact
    shell of the room (no bodies) maps the walls, and a name the frames lack is refused."""
    from audio_vision.core.frames import body_pose
    from audio_vision.sonar import render_layout, true_layout
    drive, frames = drive_and_frames
    size = drive.scene.room.size
    shell = np.array([render_layout(true_layout(T, size), drive.sim.camera, drive.sim.class_table,
                                    wall_reach_m=None).depth
                      for T in frames.poses])
    with_shell = DriveFrames(**{**frames.__dict__, 'extra_depth': {'shell': shell}})
    config = grid_for_room(size, 0.05, pixel_stride=2)
    grid = fuse_drive(with_shell, config, MapVariant('shell', confidence=False))
    occupied, free = floor_plan_masks(drive, config)
    assert grid.frames == len(frames.poses) and score_grid(grid, occupied, free)['occupied_f1'] > 0.9
    assert np.allclose(body_pose(frames.poses[0])[:3, 3], frames.poses[0][:3, 3])
    with pytest.raises(ValueError, match="'layout'.*no such depth"):
        fuse_drive(with_shell, config, MapVariant('layout'))
