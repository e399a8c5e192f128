# SPDX-License-Identifier: Apache-2.0
"""The plane mapper (audio_vision.mapping.planes): fused wall planes rasterised as lines, the box's interior free."""
import math

import numpy as np
import pytest

from audio_vision.core.frames import planar_pose
from audio_vision.mapping.occupancy import GridConfig, OccupancyGrid2D, occupied_f1
from audio_vision.mapping.planes import PlaneMapConfig, PlaneMapper, box_side
from audio_vision.sonar.layout import FLOOR, WALL, Plane, RoomLayout

# A 3 x 2 m box whose walls lie on cell centres of a 5 cm grid with its origin at (-0.5, -0.5):
# x = 0.125 (col 12), x = 3.125 (col 72), y = 0.125 (row 12), y = 2.125 (row 52).
BOX = {0: 3.125, 1: 2.125, 2: -0.125, 3: -0.125}          # side k (normal at 90 k deg) -> offset n.x
GRID = GridConfig(resolution=0.05, width_m=4.5, height_m=3.5, origin=(-0.5, -0.5))


def box_layout(x, y, yaw=0.0, sides=(0, 1, 2, 3), offset_error=0.0):
    """The layout one window at array pose (x, y, 0.5 m, yaw rad) measures of the box's ``sides``."""
    planes = [Plane(FLOOR, (0.0, 0.0, -1.0), 0.5, contrast=10.0)]
    c, s = math.cos(yaw), math.sin(yaw)
    for k in sides:
        n = np.array([math.cos(math.pi / 2 * k), math.sin(math.pi / 2 * k)])
        d = BOX[k] - n @ (x, y) + offset_error
        planes.append(Plane(WALL, (c * n[0] + s * n[1], -s * n[0] + c * n[1], 0.0), float(d), contrast=10.0))
    return RoomLayout(tuple(planes), math.degrees(-yaw) % 90.0)


def pose(x, y, yaw=0.0):
    return planar_pose(x, y, 0.5, yaw)


ONE = PlaneMapConfig(min_wall_windows=1)       # a wall measured in one window is drawn


def mapped(windows, config=ONE):
    mapper = PlaneMapper(config)
    for (x, y, yaw), layout in windows:
        mapper.add(layout, pose(x, y, yaw))
    return mapper, mapper.grid(GRID)


def outline_and_interior():
    occ, free = np.zeros(GRID.shape, bool), np.zeros(GRID.shape, bool)
    occ[12:53, [12, 72]] = True
    occ[[12, 52], 12:73] = True
    free[13:52, 13:72] = True
    return occ, free


def test_a_fused_box_is_its_outline_of_cells_and_its_interior_free():
    _, grid = mapped([((1.0, 1.0, 0.0), box_layout(1.0, 1.0))])
    occ, free = outline_and_interior()
    np.testing.assert_array_equal(grid.occupied_mask(), occ)
    np.testing.assert_array_equal(grid.free_mask(), free)
    np.testing.assert_array_equal(grid.observed, occ | free)          # behind the walls: unknown
    values = grid.occupancy_values()
    assert values[0, 0] == -1 and values[12, 40] > 65 and values[30, 40] < 35


def test_two_poses_seeing_one_wall_give_one_line_not_two():
    # the second pose is rotated 90 deg (its array frame differs) and measures the walls 1 cm farther
    windows = [((1.0, 1.0, 0.0), box_layout(1.0, 1.0)),
               ((2.5, 1.2, math.pi / 2), box_layout(2.5, 1.2, math.pi / 2, offset_error=0.01))]
    mapper, grid = mapped(windows)
    walls, yaw = mapper.walls()
    assert yaw == pytest.approx(0.0, abs=1e-6) or yaw == pytest.approx(90.0, abs=1e-6)
    assert all(w is not None and w.windows == 2 for w in walls)
    occ, free = outline_and_interior()
    np.testing.assert_array_equal(grid.occupied_mask(), occ)
    np.testing.assert_array_equal(grid.free_mask(), free)


def test_an_unmeasured_side_is_unknown_beyond_the_open_boundary():
    # the +x wall (x = 3.125) is never measured; the robot stays at x <= 1.5 and the open boundary is 1 m
    windows = [((x, 1.0, 0.0), box_layout(x, 1.0, sides=(1, 2, 3))) for x in (0.8, 1.2, 1.5)]
    mapper, grid = mapped(windows, PlaneMapConfig(open_reach_m=1.0, min_wall_windows=1))
    walls, _ = mapper.walls()
    assert sum(w is None for w in walls) == 1 and not any(w is not None and w.normal[0] > 0.9 for w in walls)
    xs, ys = grid.cell_centers()
    occ, free = grid.occupied_mask(), grid.free_mask()
    assert not grid.observed[xs > 2.5 + 0.05].any()                  # neither free nor a wall: unknown
    assert (grid.occupancy_values()[xs > 2.55] == -1).all()
    assert free[(xs > 0.15) & (xs < 2.45) & (ys > 0.15) & (ys < 2.1)].all()
    assert occ[(np.abs(ys - 2.125) < 0.01) & (xs > 0.1) & (xs < 2.5)].all()   # the side walls up to the boundary
    assert not occ[xs > 2.55].any()


def test_a_wall_measured_in_too_few_windows_is_not_drawn():
    windows = [((1.0, 1.0, 0.0), box_layout(1.0, 1.0, sides=(1, 2, 3))) for _ in range(3)]
    windows.append(((1.0, 1.0, 0.0), box_layout(1.0, 1.0, sides=(0,))))
    _, once = mapped(windows)
    _, gated = mapped(windows, PlaneMapConfig())          # the default: at least 3 windows
    xs, ys = once.cell_centers()
    at_wall = (np.abs(xs - 3.125) < 0.01) & (ys > 0.2) & (ys < 2.05)
    assert once.occupied_mask()[at_wall].all()
    assert not gated.occupied_mask()[at_wall].any()


def test_scored_against_its_own_outline_and_config_checks():
    _, grid = mapped([((1.0, 1.0, 0.0), box_layout(1.0, 1.0))])
    occ, _ = outline_and_interior()
    assert occupied_f1(grid.occupied_mask(), occ, GRID.resolution)['f1'] == 1.0
    assert box_side(np.array([0.0, -1.0, 0.0]), 0.5) == 3 and box_side(np.array([1.0, 0.0, 0.0]), 89.5) == 3
    empty = PlaneMapper().grid(GRID)
    assert isinstance(empty, OccupancyGrid2D) and not empty.observed.any()     # nothing added: all unknown
    for bad in ({'open_reach_m': 0.0}, {'min_wall_windows': 0}, {'max_windows': 0}):
        with pytest.raises(ValueError):
            PlaneMapConfig(**bad)
    mapper = PlaneMapper()
    with pytest.raises(ValueError, match='non-finite'):        # a broken odometry pose is refused, not drawn
        mapper.add(box_layout(1.0, 1.0), np.full((4, 4), np.nan))
    assert mapper.windows == 0


def test_without_any_wall_only_the_open_boundary_around_the_path_is_free():
    _, grid = mapped([((1.0, 1.0, 0.0), box_layout(1.0, 1.0, sides=()))], PlaneMapConfig(open_reach_m=0.5))
    xs, ys = grid.cell_centers()
    near = (np.abs(xs - 1.0) < 0.5) & (np.abs(ys - 1.0) < 0.5)
    assert not grid.occupied_mask().any()
    np.testing.assert_array_equal(grid.free_mask(), near)
