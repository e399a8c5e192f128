# SPDX-License-Identifier: Apache-2.0
"""Layouts of several windows fused in the odometry frame (sonar/fusion.py): exact layouts first, then the
front-end on exact synthetic echoes from two poses in one box."""
import dataclasses
import math

import numpy as np
import pytest

from audio_vision.simulation.config import ArrayConfig
from audio_vision.simulation.geometry import mic_positions
from audio_vision.sonar import FLOOR, WALL, LayoutEstimator, Plane, RoomLayout, SonarConfig
from audio_vision.sonar.fusion import DriveFusion, LayoutFusion
from audio_vision.sonar.synthetic import echo_recording

SIZE = (6.0, 4.0, 2.8)          # room [0, 6] x [0, 4] x [0, 2.8]


def pose(x, y, z, yaw_deg):
    """4 x 4 array frame -> room (odometry) frame."""
    a = math.radians(yaw_deg)
    T = np.eye(4)
    T[:3, :3] = [[math.cos(a), -math.sin(a), 0.0], [math.sin(a), math.cos(a), 0.0], [0.0, 0.0, 1.0]]
    T[:3, 3] = (x, y, z)
    return T


def room_planes(T, walls=(0, 1, 2, 3), contrast=10.0, strength=0.9):
    """The box's floor and the chosen walls (0: x = 0, 1: x = L, 2: y = 0, 3: y = W) in the array frame at T."""
    R, t = T[:3, :3], T[:3, 3]
    sides = [((-1, 0, 0), 0.0), ((1, 0, 0), SIZE[0]), ((0, -1, 0), 0.0), ((0, 1, 0), SIZE[1])]
    out = [Plane(FLOOR, tuple(R.T @ np.array([0.0, 0.0, -1.0])), float(t[2]), contrast=contrast, strength=strength)]
    for k in walls:
        n, c = np.asarray(sides[k][0], dtype=np.float64), sides[k][1]
        out.append(Plane(WALL, tuple(R.T @ n), float(n @ (np.abs(n) * c - t)), contrast=contrast, strength=strength))
    return out


def layout(T, walls, **kw):
    planes = room_planes(T, walls, **kw)
    yaw = math.degrees(math.atan2(planes[1].normal[1], planes[1].normal[0])) % 90.0 if len(planes) > 1 else None
    return RoomLayout(tuple(planes), yaw)


def wall_towards(lay, T, room_normal):
    n = T[:3, :3].T @ np.asarray(room_normal, dtype=np.float64)
    return [p for p in lay.get(WALL) if float(p.n @ n) > 0.99]


def test_a_wall_measured_at_one_pose_is_rendered_at_another():
    a, b = pose(1.0, 1.0, 0.5, 0.0), pose(4.5, 3.0, 0.8, 37.0)
    fusion = LayoutFusion()
    fusion.add(layout(a, walls=(0, 2)), a)          # near the x = 0 and y = 0 walls
    fusion.add(layout(b, walls=(1, 3)), b)          # near the other two
    fused = fusion.layout(b)
    assert fusion.windows == 2
    for normal, offset in (((-1, 0, 0), 4.5), ((1, 0, 0), 1.5), ((0, -1, 0), 3.0), ((0, 1, 0), 1.0)):
        (w,) = wall_towards(fused, b, normal)
        assert abs(w.offset - offset) < 1e-6
    assert abs(fused.get(FLOOR)[0].offset - 0.8) < 1e-6


def test_a_wall_with_a_visited_pose_behind_it_is_dropped():
    """A body's echo taken for a wall at x = 2.5 (facing -x from the first pose): the robot later stands at
    x = 1.5, behind it, so it is not the room's; the true x = 0 wall seen once is kept instead."""
    a, b = pose(3.5, 2.0, 0.6, 0.0), pose(1.5, 2.0, 0.6, 0.0)
    false = RoomLayout((Plane(WALL, (-1.0, 0.0, 0.0), 1.0, contrast=20.0),), 0.0)
    fusion = LayoutFusion()
    fusion.add(false, a)
    assert abs(wall_towards(fusion.layout(a), a, (-1, 0, 0))[0].offset - 1.0) < 1e-6
    fusion.add(layout(b, walls=(0,)), b)
    (w,) = wall_towards(fusion.layout(b), b, (-1, 0, 0))
    assert abs(w.offset - 1.5) < 1e-6                       # the true wall, not the body 1 m ahead of b


def test_still_array_averages_and_forgets_beyond_max_windows():
    fusion = LayoutFusion(max_windows=2)
    for offset in (2.00, 2.02, 2.04):
        fusion.add(RoomLayout((Plane(WALL, (1.0, 0.0, 0.0), offset, contrast=8.0),), 0.0))
    (w,) = fusion.layout().get(WALL)
    assert fusion.windows == 2 and abs(w.offset - 2.03) < 1e-9
    fusion.reset()
    assert fusion.windows == 0 and fusion.layout().planes == ()
    with pytest.raises(ValueError, match='4 x 4'):
        fusion.add(RoomLayout(), np.eye(3))
    pose = np.eye(4)
    pose[0, 3] = np.nan
    with pytest.raises(ValueError, match='non-finite'):
        fusion.add(RoomLayout(), pose)
    assert fusion.windows == 0                                   # nothing of the refused window kept


def test_front_end_from_two_poses_fused_finds_all_four_walls():
    """Exact synthetic echoes of the box from two poses: each pose measures what it hears, the fusion holds the
    room's four walls within 2 cm at both poses."""
    # first-order echoes only: no wall has its floor-corner image, so the test that asks for one is off
    cfg, mics = SonarConfig(wall_corner_min=0.0), mic_positions(ArrayConfig())
    est, fusion = LayoutEstimator(cfg, mics), LayoutFusion()
    poses = [pose(1.2, 1.0, 0.55, 10.0), pose(4.6, 2.9, 0.55, -20.0)]
    for T in poses:
        audio = echo_recording(cfg, mics, room_planes(T), order=1, noise_rms=1e-4)
        fusion.add(est.estimate(audio), T)
    for T in poses:
        fused = fusion.layout(T)
        for normal, c in (((-1, 0, 0), 0.0), ((1, 0, 0), SIZE[0]), ((0, -1, 0), 0.0), ((0, 1, 0), SIZE[1])):
            walls = wall_towards(fused, T, normal)
            assert len(walls) == 1, (normal, fused.get(WALL))
            n = np.asarray(normal, dtype=np.float64)
            true_offset = float(n @ (np.abs(n) * c - T[:3, 3]))
            assert abs(walls[0].offset - true_offset) < 0.02


def test_two_feet_on_one_wall_fix_the_yaw_better_than_either_window():
    """Each window's wall normal is 1-1.5 deg off (the same way), its foot point exact: the line through the two
    feet (2 m apart) gives the wall's direction, so the fused wall is right at a pose 4 m along it too."""
    a, b = pose(1.0, 1.0, 0.5, 0.0), pose(3.0, 1.5, 0.5, 0.0)
    fusion = LayoutFusion()
    for T, err in ((a, 1.5), (b, 1.0)):
        y = T[1, 3]
        n = np.array([math.sin(math.radians(err)), -math.cos(math.radians(err)), 0.0])   # towards y = 0
        fusion.add(RoomLayout((Plane(WALL, tuple(n), float(y), contrast=10.0),), err % 90.0), T)
    far = pose(5.0, 2.0, 0.5, 0.0)
    (w,) = wall_towards(fusion.layout(far), far, (0, -1, 0))
    assert abs(w.offset - 2.0) < 0.005 and float(w.n @ np.array([0.0, -1.0, 0.0])) > math.cos(math.radians(0.1))


def test_drive_fusion_keeps_a_keyframe_per_keyframe_m_and_refreshes_the_last_in_between():
    """Windows 0.1 m apart replace the last keyframe (the fused room is the keyframes before plus this window); one
    0.3 m from where the last keyframe was added is a new keyframe; the walls each pose heard stay in the room."""
    drive = DriveFusion(keyframe_m=0.3)
    a = pose(1.0, 1.0, 0.5, 0.0)
    drive.fuse(layout(a, walls=(0, 2)), a)                    # hears the x = 0 and y = 0 walls
    for x in (1.1, 1.2):                                     # creeping: < 0.3 m from the keyframe at x = 1.0
        T = pose(x, 1.0, 0.5, 0.0)
        fused = drive.fuse(layout(T, walls=(0,)), T)          # hears only x = 0 now
        assert drive.keyframes == 1
        assert not wall_towards(fused, T, (0, -1, 0))         # the first window (y = 0 heard) was replaced
    T = pose(1.3, 1.0, 0.5, 0.0)                              # 0.3 m from the keyframe's anchor: a new keyframe
    drive.fuse(layout(T, walls=(1,)), T)
    assert drive.keyframes == 2
    b = pose(4.0, 3.0, 0.5, 20.0)
    fused = drive.fuse(layout(b, walls=(3,)), b)
    assert drive.keyframes == 3
    for normal, offset in (((-1, 0, 0), 4.0), ((1, 0, 0), 2.0), ((0, 1, 0), 1.0)):
        (w,) = wall_towards(fused, b, normal)
        assert abs(w.offset - offset) < 1e-6


def test_drive_fusion_without_a_pose_is_the_window_alone_and_restarts_the_drive():
    drive = DriveFusion()
    a, b = pose(1.0, 1.0, 0.5, 0.0), pose(4.5, 3.0, 0.5, 0.0)
    drive.fuse(layout(a, walls=(0, 2)), a)
    alone = drive.fuse(layout(b, walls=(1,)), None)           # no odometry: nothing of the drive before
    assert drive.keyframes == 0
    assert len(alone.get(WALL)) == 1
    fused = drive.fuse(layout(b, walls=(3,)), b)              # the drive restarted: only this window
    assert drive.keyframes == 1 and len(fused.get(WALL)) == 1
    # the fused room keeps the window's own residual reflectors (echoes of this moment), not the drive's
    from audio_vision.sonar.layout import Reflector
    echo = (Reflector((1.5, 0.2, 0.0), strength=0.5, contrast=9.0),)
    own = dataclasses.replace(layout(b, walls=(3,)), reflectors=echo)
    assert drive.fuse(own, b).reflectors == echo
    assert drive.fuse(layout(b, walls=(3,)), b).reflectors == ()
