# SPDX-License-Identifier: Apache-2.0
"""Scene sampler: determinism, JSON round trip, placement rules."""
import json
import math

import numpy as np

from audio_vision.core.classes import DEFAULT_CLASS_TABLE
from audio_vision.simulation import Scene, SimConfig, Simulator
from audio_vision.core.frames import R_BODY_FROM_OPTICAL


def test_same_seed_same_scene_and_json_round_trip():
    sim = Simulator()
    a, b = sim.sample_scene(11), sim.sample_scene(11)
    assert a == b
    text = json.dumps(a.to_dict())
    assert Scene.from_dict(json.loads(text)) == a
    assert sim.sample_scene(12) != a


def test_placement_rules_hold_over_many_scenes():
    cfg = SimConfig()
    sim = Simulator(cfg)
    n_sources = n_in_fov = 0
    rt60 = []
    for seed in range(150):
        scene = sim.sample_scene(seed)
        L, W, H = scene.room.size
        assert 3 <= L <= 10 and 3 <= W <= 10 and 2.4 <= H <= 4
        x, y, z = scene.robot_position
        assert 0.5 <= x <= L - 0.5 and 0.5 <= y <= W - 0.5 and 0.3 <= z <= 1.2
        assert set(scene.room.materials) == {'west', 'east', 'south', 'north', 'floor', 'ceiling'}
        rt60.append(scene.room.rt60)
        assert 0 <= len(scene.sources) <= 3
        for s in scene.sources:
            body = s.body
            r = body.footprint_radius
            assert r <= body.center[0] <= L - r and r <= body.center[1] <= W - r
            assert 0 < s.position[2] < body.height            # emitter inside the body
            assert s.position[:2] == body.center
            assert math.hypot(body.center[0] - x, body.center[1] - y) >= r + cfg.robot.body_clearance
            assert s.class_id == DEFAULT_CLASS_TABLE.id_of(s.class_name)
            n_sources += 1
            if s.in_fov:
                n_in_fov += 1
                d = math.hypot(body.center[0] - x, body.center[1] - y)
                bearing = math.atan2(body.center[1] - y, body.center[0] - x) - scene.robot_yaw
                bearing = (bearing + math.pi) % (2 * math.pi) - math.pi
                assert 1.0 - 1e-9 <= d <= 5.0 + 1e-9 and abs(bearing) <= math.radians(45)
        for i, s in enumerate(scene.sources):                 # bodies do not overlap
            for t in scene.sources[i + 1:]:
                gap = math.hypot(s.body.center[0] - t.body.center[0], s.body.center[1] - t.body.center[1])
                assert gap >= s.body.footprint_radius + t.body.footprint_radius
    assert n_sources > 150
    assert 0.52 < n_in_fov / n_sources < 0.72                 # ~60 % in view (near walls block some)
    assert min(rt60) >= 0.15 - 1e-9 and max(rt60) <= 1.2 + 1e-9
    assert np.ptp(rt60) > 0.5                                 # materials really vary the reverb


def test_rooms_can_be_shared_between_poses():
    sim = Simulator()
    room = sim.sample_room(5)
    a, b = sim.sample_scene(1, room=room), sim.sample_scene(2, room=room)
    assert a.room == b.room == room and a.robot_position != b.robot_position


def test_camera_frame_is_the_rep103_optical_frame_of_the_array():
    sim = Simulator()
    scene = sim.sample_scene(3)
    R_array, R_cam = scene.array_pose[:3, :3], scene.camera_pose[:3, :3]
    np.testing.assert_allclose(R_cam[:, 2], R_array[:, 0])     # optical z = array x (forward)
    np.testing.assert_allclose(R_cam[:, 0], -R_array[:, 1])    # optical x = -array y (right)
    np.testing.assert_allclose(R_cam[:, 1], -R_array[:, 2])    # optical y = -array z (down)
    np.testing.assert_allclose(scene.camera_pose[:3, 3], scene.array_pose[:3, 3])
    assert np.isclose(np.linalg.det(R_BODY_FROM_OPTICAL), 1.0)
    assert abs(R_cam[2, 2]) < 1e-12                            # level camera: axis horizontal


def test_default_array_has_a_3d_aperture():
    mics = Simulator().mic_positions
    assert mics.shape == (8, 3)
    assert np.ptp(mics[:, 2]) > 0.05                           # up/down resolvable
    assert np.linalg.matrix_rank(mics - mics.mean(axis=0)) == 3
    az = np.degrees(np.arctan2(mics[:, 1], mics[:, 0])) % 360
    assert len(np.unique(np.round(az))) == 8                   # 8 distinct azimuths


def test_silent_sources_follow_their_class_fraction_and_move_no_other_draw():
    import dataclasses
    cfg = SimConfig()
    never = dataclasses.replace(cfg, sources=dataclasses.replace(cfg.sources, classes={
        k: dataclasses.replace(v, silent_fraction=0.0) for k, v in cfg.sources.classes.items()}))
    sim, loud = Simulator(cfg), Simulator(never)
    counts = {name: [0, 0] for name in cfg.sources.classes}               # [silent, all]
    for seed in range(400):
        scene = sim.sample_scene(seed)
        assert scene == sim.sample_scene(seed)                            # deterministic per seed
        for s in scene.sources:
            counts[s.class_name][0] += s.silent
            counts[s.class_name][1] += 1
        # The silent draw has its own stream: room, pose, bodies, levels, timbres are unchanged.
        plain = loud.sample_scene(seed)
        assert not any(s.silent for s in plain.sources)
        assert tuple(dataclasses.replace(s, silent=False) for s in scene.sources) == plain.sources
    for name, (silent, total) in counts.items():
        expected = cfg.sources.classes[name].silent_fraction
        assert total > 100
        assert abs(silent / total - expected) < 3.5 * math.sqrt(max(expected * (1 - expected), 1e-9) / total) + 1e-9
    assert counts['alarm'][0] == 0                                        # an alarm always sounds


def test_old_scene_dicts_without_silent_still_load():
    sim = Simulator()
    scene = next(s for s in (sim.sample_scene(k) for k in range(100)) if any(x.silent for x in s.sources))
    d = json.loads(json.dumps(scene.to_dict()))
    assert Scene.from_dict(d) == scene
    assert any(s['silent'] for s in d['sources'])
    for s in d['sources']:
        del s['silent']                                                   # a dataset from before silent bodies
    old = Scene.from_dict(d)
    assert [s.silent for s in old.sources] == [False] * len(old.sources)
    assert [s.body for s in old.sources] == [s.body for s in scene.sources]
