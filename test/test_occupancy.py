# SPDX-License-Identifier: Apache-2.0
"""Occupancy fusion core (audio_vision.mapping.occupancy): ray casting, log-odds, pose checks, evaluation."""
import math

import numpy as np
import pytest

from audio_vision.core.camera import PinholeCamera
from audio_vision.core.frames import planar_pose, quaternion_pose
from audio_vision.mapping.occupancy import GridConfig, OccupancyGrid2D, check_pose, iou, occupied_f1
from audio_vision.simulation.geometry import camera_to_room

CAM = PinholeCamera(32, 32, 90.0)


def wall_depth(distance=3.0):
    """A camera 1 m above the floor facing a wall `distance` away: z-depth is the wall plane, except the floor."""
    depth = np.full((32, 32), distance, np.float32)
    v = np.arange(32, dtype=np.float64)
    down = (v - CAM.K[1, 2]) / CAM.K[1, 1]                 # y_optical per unit z
    floor_z = np.where(down > 0, 1.0 / np.maximum(down, 1e-9), np.inf)
    return np.minimum(depth, floor_z[:, None]).astype(np.float32)


def test_wall_in_front_is_occupied_and_the_space_before_it_free():
    grid = OccupancyGrid2D(GridConfig(resolution=0.1, width_m=6, height_m=6, origin=(-1, -3), z_min=0.2, z_max=2.0))
    T = camera_to_room((0.0, 0.0, 1.0), 0.0)               # facing +x
    stats = grid.integrate(wall_depth(3.0), CAM.K, T)
    assert stats['rays'] == 32 * 32 and stats['occupied_cells'] > 0
    occ = grid.occupied_mask()
    xs, ys = grid.cell_centers()
    assert occ.any() and np.all(np.abs(xs[occ] - 3.0) <= 0.1)        # only the wall's cells
    assert np.abs(ys[occ]).max() >= 2.5                              # ... across the 90 deg view
    cleared = grid.observed & (grid.logodds < 0)
    assert cleared[(np.abs(ys) < 0.3) & (xs > 0.3) & (xs < 1.2)].all()  # the rays are dense near the camera
    assert cleared[(np.abs(ys) < 0.3) & (xs > 0.3) & (xs < 2.8)].mean() > 0.7
    assert not grid.observed[xs > 3.1].any()                             # nothing behind the wall
    values = grid.occupancy_values()
    assert values.dtype == np.int8 and values.min() == -1 and values.max() > 65


def test_rotated_pose_and_repeated_frames_accumulate_and_clamp():
    cfg = GridConfig(resolution=0.1, width_m=8, height_m=8, origin=(-4, -4), l_max=2.0)
    grid = OccupancyGrid2D(cfg)
    T = camera_to_room((0.0, 0.0, 1.0), math.pi / 2)       # facing +y
    for _ in range(5):
        grid.integrate(wall_depth(2.0), CAM.K, T)
    xs, ys = grid.cell_centers()
    occ = grid.occupied_mask()
    assert np.all(np.abs(ys[occ] - 2.0) <= 0.1)
    assert grid.logodds.max() == pytest.approx(2.0) and grid.frames == 5


def test_confidence_weights_and_min_confidence_drops_pixels():
    T = camera_to_room((0.0, 0.0, 1.0), 0.0)
    full, half, none = (OccupancyGrid2D(GridConfig(resolution=0.1, origin=(-1, -6), min_confidence=m))
                        for m in (0.0, 0.0, 0.6))
    full.integrate(wall_depth(), CAM.K, T)
    half.integrate(wall_depth(), CAM.K, T, np.full((32, 32), 0.5))
    np.testing.assert_allclose(half.logodds, 0.5 * full.logodds, atol=1e-6)
    assert none.integrate(wall_depth(), CAM.K, T, np.full((32, 32), 0.5))['rays'] == 0
    assert not none.observed.any()
    nan = wall_depth()
    nan[:, :16] = np.nan                                     # REP 118 invalid pixels are skipped
    assert OccupancyGrid2D().integrate(nan, CAM.K, T)['rays'] == 32 * 16


def test_max_range_only_clears():
    grid = OccupancyGrid2D(GridConfig(resolution=0.1, origin=(-1, -6), max_range=2.0))
    grid.integrate(wall_depth(5.0), CAM.K, camera_to_room((0.0, 0.0, 1.0), 0.0))
    xs, _ = grid.cell_centers()
    assert not grid.occupied_mask()[xs > 2.5].any() and (grid.logodds < 0).any()


@pytest.mark.parametrize('T, reason', [
    (None, 'missing'),
    (np.full((4, 4), np.nan), 'non_finite'),
    (np.diag([2.0, 1.0, 1.0, 1.0]), 'not_rigid'),
    (quaternion_pose((0, 0, 0), (0, 0, 0, 0)), 'non_finite'),
])
def test_bad_poses_are_rejected_never_fused(T, reason):
    assert check_pose(T) == reason
    grid = OccupancyGrid2D()
    with pytest.raises(ValueError, match=reason):
        grid.integrate(wall_depth(), CAM.K, T)
    assert grid.frames == 0 and not grid.observed.any()


def test_stale_and_good_poses():
    T = planar_pose(1.0, 2.0, 0.5, 0.3)
    assert check_pose(T, 0, 200_000_000, max_age_s=0.1) == 'stale'
    assert check_pose(T, 0, 50_000_000, max_age_s=0.1) is None
    q = (0.0, 0.0, math.sin(0.15), math.cos(0.15))
    np.testing.assert_allclose(quaternion_pose((1.0, 2.0, 0.5), q), T, atol=1e-12)


def test_f1_with_tolerance_and_iou():
    true = np.zeros((20, 20), bool)
    true[10, :] = True
    shifted = np.roll(true, 1, axis=0)                      # one 0.1 m cell off
    assert occupied_f1(shifted, true, 0.1, 0.2)['f1'] == 1.0
    assert occupied_f1(shifted, true, 0.1, 0.05)['f1'] == 0.0
    half = true.copy()
    half[10, 10:] = False
    r = occupied_f1(half, true, 0.1, 0.0)
    assert r['precision'] == 1.0 and r['recall'] == 0.5
    assert iou(half, true) == 0.5 and iou(true, true) == 1.0


def lifted_floor_scene():
    """wall_depth with the floor rows' depth halved (a predicted depth too short on the floor: their end
    points rise into the height band) and labels: wall above, floor below."""
    from audio_vision.core.classes import DEFAULT_CLASS_TABLE
    depth = wall_depth(3.0)
    labels = np.full(depth.shape, DEFAULT_CLASS_TABLE.id_of('wall'), np.uint8)
    floor = depth < 2.99
    labels[floor] = DEFAULT_CLASS_TABLE.id_of('floor')
    depth[floor] *= 0.5
    return depth, labels


def test_labels_floor_pixels_only_clear_and_walls_still_mark():
    from audio_vision.core.classes import IGNORE_LABEL
    cfg = GridConfig(resolution=0.1, width_m=6, height_m=6, origin=(-1, -3), z_min=0.2, z_max=2.0)
    T = camera_to_room((0.0, 0.0, 1.0), 0.0)
    depth, labels = lifted_floor_scene()
    plain, labelled, unknown = OccupancyGrid2D(cfg), OccupancyGrid2D(cfg), OccupancyGrid2D(cfg)
    plain.integrate(depth, CAM.K, T)
    labelled.integrate(depth, CAM.K, T, labels=labels)
    unknown.integrate(depth, CAM.K, T, labels=np.full(labels.shape, IGNORE_LABEL, np.uint8))
    xs, _ = plain.cell_centers()
    assert plain.occupied_mask()[xs < 2.5].sum() > 3                 # lifted floor end points: false obstacles
    occ = labelled.occupied_mask()
    assert occ.any() and np.all(np.abs(xs[occ] - 3.0) <= 0.1)        # with labels: only the wall
    assert (labelled.logodds[(xs > 0.3) & (xs < 1.0) & labelled.observed] < 0).all()
    np.testing.assert_array_equal(unknown.logodds, plain.logodds)    # unknown labels: the height band decides
    with pytest.raises(ValueError, match='labels shape'):
        labelled.integrate(depth, CAM.K, T, labels=labels[:16])


def test_obstacle_any_height_marks_wall_pixels_above_the_band():
    from audio_vision.core.classes import DEFAULT_CLASS_TABLE
    T = camera_to_room((0.0, 0.0, 1.0), 0.0)
    depth = wall_depth(3.0)
    depth[16:] = np.nan                                    # only the wall above the camera (z > 1 m) is seen
    labels = np.full(depth.shape, DEFAULT_CLASS_TABLE.id_of('wall'), np.uint8)
    band = dict(resolution=0.1, width_m=6, height_m=6, origin=(-1, -3), z_min=0.2, z_max=0.5)
    low, any_height = OccupancyGrid2D(GridConfig(**band)), OccupancyGrid2D(GridConfig(**band, obstacle_any_height=True))
    low.integrate(depth, CAM.K, T, labels=labels)
    any_height.integrate(depth, CAM.K, T, labels=labels)
    assert not low.occupied_mask().any()
    occ = any_height.occupied_mask()
    xs, _ = low.cell_centers()
    assert occ.sum() > 20 and np.all(np.abs(xs[occ] - 3.0) <= 0.1)


def test_free_fraction_clears_only_the_first_part_of_each_ray():
    T = camera_to_room((0.0, 0.0, 1.0), 0.0)
    cfg = dict(resolution=0.1, width_m=6, height_m=6, origin=(-1, -3), z_min=0.2, z_max=2.0)
    full, half = OccupancyGrid2D(GridConfig(**cfg)), OccupancyGrid2D(GridConfig(**cfg, free_fraction=0.5))
    full.integrate(wall_depth(3.0), CAM.K, T)
    half.integrate(wall_depth(3.0), CAM.K, T)
    xs, ys = full.cell_centers()
    middle = (np.abs(ys) < 0.2) & (xs > 1.8) & (xs < 2.8)           # beyond half of the 3 m rays
    assert (full.logodds[middle] < 0).mean() > 0.5 and not half.observed[middle].any()
    np.testing.assert_array_equal(half.occupied_mask(), full.occupied_mask())   # the wall is still marked
    with pytest.raises(ValueError, match='free_fraction'):
        GridConfig(free_fraction=0.0)
