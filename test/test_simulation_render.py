# SPDX-License-Identifier: Apache-2.0
"""Ground-truth renderer: analytic depths, projection with K, labels, frames."""
import math

import numpy as np
import pytest

from audio_vision.core.camera import PinholeCamera
from audio_vision.core.classes import DEFAULT_CLASS_TABLE as CT
from audio_vision.simulation.render import render
from audio_vision.simulation.scene import Body, Room, Scene, Source

ROOM = Room((6.0, 5.0, 3.0), {s: 'brickwork' for s in ('west', 'east', 'south', 'north', 'floor', 'ceiling')},
            0.5, 0)
CAM = PinholeCamera(65, 65, 90.0)   # odd size: the centre pixel is exactly on the optical axis


def _source(name, body, height):
    return Source(name, CT.id_of(name), (body.center[0], body.center[1], height), body, 60.0, 1, True)


def test_centre_pixel_depth_is_the_analytic_wall_distance():
    yaw = math.radians(30)
    scene = Scene(ROOM, (2.0, 2.5, 1.2), yaw)
    gt = render(scene, CAM, CT)
    assert gt.depth.dtype == np.float32 and gt.segmentation.dtype == np.uint8
    assert gt.depth.shape == gt.segmentation.shape == (65, 65)
    # The axis leaves (2, 2.5) at 30 deg and meets the east wall x = 6 first.
    assert gt.depth[32, 32] == pytest.approx(4.0 / math.cos(yaw), abs=1e-5)
    assert gt.segmentation[32, 32] == CT.id_of('wall')
    np.testing.assert_allclose(gt.K, CAM.K)
    assert np.isfinite(gt.depth).all() and (gt.depth > 0).all()


def test_level_camera_puts_floor_below_and_ceiling_above_the_horizon():
    scene = Scene(ROOM, (3.0, 2.5, 1.0), 0.0)
    gt = render(scene, CAM, CT)
    assert gt.segmentation[-1, 32] == CT.id_of('floor') and gt.segmentation[0, 32] == CT.id_of('ceiling')
    # Bottom-centre pixel: the ray (0, 1, 1)*t / |..| in optical coords hits the floor at z-depth 1.0 m.
    v = 64
    expected = 1.0 / ((v - CAM.cy) / CAM.fy)                 # camera height / slope of the ray
    assert gt.depth[v, 32] == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize('name, body, front', [
    ('appliance', Body('box', (4.5, 2.5), (0.6, 0.6, 0.9), 0.0), 4.5 - 0.3),
    ('alarm', Body('box', (4.0, 2.5), (0.4, 0.4, 1.0), math.radians(45)), 4.0 - 0.2 * math.sqrt(2)),
    ('person', Body('cylinder', (4.0, 2.5), (0.25, 1.7)), 4.0 - 0.25),
])
def test_centre_pixel_hits_the_body_in_front(name, body, front):
    scene = Scene(ROOM, (1.0, 2.5, 0.8), 0.0, (_source(name, body, 0.5),))
    gt = render(scene, CAM, CT)
    assert gt.segmentation[32, 32] == CT.id_of(name)
    assert gt.depth[32, 32] == pytest.approx(front - 1.0, abs=1e-5)


def test_source_lands_on_its_pixels_at_the_projection_with_K():
    robot = np.array([1.0, 1.5, 1.0])
    yaw = math.radians(20)
    centre = robot[:2] + 3.0 * np.array([math.cos(yaw + 0.3), math.sin(yaw + 0.3)])
    body = Body('cylinder', tuple(centre), (0.25, 1.7))
    scene = Scene(ROOM, tuple(robot), yaw, (_source('person', body, 1.55),))
    gt = render(scene, PinholeCamera(64, 64, 90.0), CT)
    # The body point facing the camera at 1.3 m height, mapped into the optical frame.
    toward = (robot[:2] - centre) / np.linalg.norm(robot[:2] - centre)
    point = np.array([*(centre + 0.25 * toward), 1.3])
    T = scene.camera_pose
    p_opt = T[:3, :3].T @ (point - T[:3, 3])
    uvw = gt.K @ p_opt
    u, v = int(round(uvw[0] / uvw[2])), int(round(uvw[1] / uvw[2]))
    assert 0 <= u < 64 and 0 <= v < 64
    assert gt.segmentation[v, u] == CT.id_of('person')
    assert gt.depth[v, u] == pytest.approx(p_opt[2], abs=0.03)
    # Only the pixels around that projection are 'person'.
    vs, us = np.nonzero(gt.segmentation == CT.id_of('person'))
    assert abs(np.median(us) - uvw[0] / uvw[2]) < 3


def test_body_behind_the_camera_is_invisible():
    body = Body('box', (0.7, 2.5), (0.4, 0.4, 1.0), 0.0)
    scene = Scene(ROOM, (3.0, 2.5, 1.0), 0.0, (_source('alarm', body, 0.9),))
    assert CT.id_of('alarm') not in render(scene, CAM, CT).segmentation
