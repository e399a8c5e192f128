# SPDX-License-Identifier: Apache-2.0
"""Bodies stood on the measured floor (core/inference/floor_contact.py), against the simulator's exact renders."""
import math

import numpy as np
import pytest

from audio_vision.core.camera import PinholeCamera
from audio_vision.core.classes import DEFAULT_CLASS_TABLE as CT
from audio_vision.core.inference.floor_contact import floor_contact_depth, stand_bodies_on_floor
from audio_vision.simulation.render import render
from audio_vision.simulation.scene import Body, Room, Scene, Source
from audio_vision.sonar import FLOOR, true_layout

ROOM = Room((6.0, 5.0, 3.0), {s: 'brickwork' for s in ('west', 'east', 'south', 'north', 'floor', 'ceiling')},
            0.5, 0)
CAM = PinholeCamera(64, 64, 90.0)
BODIES = [CT.id_of(c) for c in ('person', 'appliance', 'alarm')]


def _scene(bodies, position=(1.0, 2.5, 0.8), yaw=0.0):
    sources = tuple(Source(name, CT.id_of(name), (b.center[0], b.center[1], 0.5), b, 60.0, 1, True)
                    for name, b in bodies)
    return Scene(ROOM, position, yaw, sources)


def _floor(scene):
    return true_layout(render(scene, CAM, CT).camera_pose, ROOM.size).get(FLOOR)[0]


def test_the_floor_contact_is_the_floors_depth_at_each_pixels_lower_edge():
    """A level array 0.8 m above the floor: z = h fy / (v + 0.5 - cy) below the horizon, NaN above it."""
    floor = _floor(_scene([]))
    contact = floor_contact_depth(floor.normal, floor.offset, CAM)
    v = np.arange(CAM.height, dtype=np.float64)
    below = v + 0.5 > CAM.cy
    expected = 0.8 * CAM.fy / (v[below] + 0.5 - CAM.cy)
    np.testing.assert_allclose(contact[below], np.repeat(expected[:, None], CAM.width, axis=1), rtol=1e-9)
    assert np.isnan(contact[~below]).all()


@pytest.mark.parametrize('yaw_deg', [0.0, 25.0])
def test_bodies_drawn_as_the_room_behind_them_are_brought_to_their_depth(yaw_deg):
    """The exact room without its bodies is the depth a network that misses them draws; stood on the floor where the
    true segmentation puts them, the bodies' pixels come to their true depth (within the half-pixel of where the
    lowest body pixel meets the floor), and nothing else moves."""
    bodies = [('appliance', Body('box', (3.2, 1.9), (0.6, 0.6, 0.9), math.radians(yaw_deg))),
              ('person', Body('cylinder', (4.4, 3.3), (0.25, 1.7)))]
    scene = _scene(bodies)
    truth, room = render(scene, CAM, CT), render(_scene([]), CAM, CT)
    floor = _floor(scene)
    contact = floor_contact_depth(floor.normal, floor.offset, CAM)
    out = stand_bodies_on_floor(room.depth, truth.segmentation, contact, BODIES)
    body = np.isin(truth.segmentation, BODIES)
    assert body.sum() > 50
    before = np.abs(room.depth[body] - truth.depth[body]) / truth.depth[body]
    after = np.abs(out[body] - truth.depth[body]) / truth.depth[body]
    assert np.median(before) > 0.3 and np.median(after) < 0.05 and after.mean() < before.mean() / 4
    np.testing.assert_array_equal(out[~body], room.depth[~body])
    assert out.dtype == room.depth.dtype


def test_a_body_is_never_pushed_back_and_a_floorless_column_keeps_its_depth():
    depth = np.full((64, 64), 2.0, dtype=np.float32)
    seg = np.full((64, 64), CT.id_of('wall'), dtype=np.uint8)
    seg[30:36, 10] = BODIES[0]            # meets the floor far beyond 2 m: kept at 2 m
    seg[5:20, 20] = BODIES[1]             # its lowest pixel is above the horizon: no floor there
    floor = _floor(_scene([]))
    contact = floor_contact_depth(floor.normal, floor.offset, CAM)
    assert contact[35, 10] > 2.0 and np.isnan(contact[19, 20])
    out = stand_bodies_on_floor(depth, seg, contact, BODIES)
    np.testing.assert_array_equal(out, depth)
    seg[40:63, 30] = BODIES[2]            # meets the floor near the array: brought nearer
    out = stand_bodies_on_floor(depth, seg, contact, BODIES)
    np.testing.assert_allclose(out[40:63, 30], contact[62, 30])


def test_the_pipeline_stands_the_segmentations_bodies_on_the_measured_floor_and_moves_nothing_else():
    """The shipped models on simulated windows with bodies in view: with ``bodies_on_floor`` the depth differs from
    the decoded one only on pixels the segmentation calls a body, never farther, and exactly as the measured floor
    puts them; one modality alone is never changed."""
    from audio_vision.core.inference.floor_contact import FloorContact
    from audio_vision.core.inference.pipeline import AudioToVision
    from audio_vision.paths import default_model_dir
    from audio_vision.simulation import SimConfig, Simulator
    model_dir = default_model_dir()
    if not all((model_dir / f'{m}.pt').is_file() for m in ('depth', 'segmentation')):
        pytest.skip(f'no shipped model in {model_dir}')
    standing = AudioToVision.load(model_dir, backend='eager')
    decoded = AudioToVision.load(model_dir, backend='eager', bodies_on_floor=False)
    assert standing.bodies_on_floor and not decoded.bodies_on_floor
    assert not AudioToVision.load(model_dir, modalities=('depth',), backend='eager').bodies_on_floor
    sim, n, moved = Simulator(SimConfig()), standing.window_samples, 0
    contact = FloorContact(standing.camera, standing.class_table)
    for seed in range(3):
        scene = sim.sample_scene(700 + seed)
        audio = np.ascontiguousarray(sim.record(scene, n / standing.sample_rate + 0.1, seed)[:, :n], np.float32)
        a, b = standing.predict(audio), decoded.predict(audio)
        np.testing.assert_array_equal(a['segmentation'], b['segmentation'])
        body = np.isin(a['segmentation'], contact.body_ids)
        np.testing.assert_array_equal(a['depth'][~body], b['depth'][~body])
        assert (a['depth'] <= b['depth']).all()
        layout = standing.shared_layout_estimates().estimate(audio)
        np.testing.assert_array_equal(a['depth'], contact(b['depth'], b['segmentation'], layout))
        moved += int((a['depth'] != b['depth']).sum())
    assert moved > 0
    assert standing.shared_layout_estimates().measured == 3      # each window measured once, by the features
