# SPDX-License-Identifier: Apache-2.0
"""The independent room-acoustics engine (`simulation/independent.py`, rir_generator's image method): delays and
echoes where the image method puts them, its place in the Simulator, the default engine untouched, and the sonar
front-end measuring the floor from its recordings."""
import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import signal as sps

pytest.importorskip('rir_generator')

from audio_vision.simulation import SimConfig, Simulator  # noqa: E402
from audio_vision.simulation import acoustics, independent  # noqa: E402
from audio_vision.simulation.scene import SURFACES, Room, Scene  # noqa: E402
from audio_vision.simulation.signals import chirp_pulse  # noqa: E402

FS = 16000
C = 343.0
DX = C / FS                                   # one sample of path, m
ANECHOIC = 'panel_fabric_covered_6pcf'        # energy absorption 1.0 in every octave of the chirp band: beta 0
HARD = 'hard_surface'
ROOT = Path(__file__).resolve().parents[1]


def _quiet_cfg() -> SimConfig:
    cfg = SimConfig()
    return dataclasses.replace(cfg, noise=dataclasses.replace(cfg.noise, snr_db_range=(300.0, 300.0),
                                                              gain_mismatch_db=0.0))


def _room(size, hard=()):
    return Room(tuple(size), {s: (HARD if s in hard else ANECHOIC) for s in SURFACES}, 0.1, 0)


def _response(room, mics, sources):
    return independent.room_response(room, np.asarray(mics, float), np.asarray(sources, float),
                                     SimConfig().recording, None)


def _wall_only(with_wall, free):
    """(S, M, L) what the hard surface adds: with_wall's RIRs minus the anechoic room's (shorter: padded)."""
    pad = with_wall.rirs.shape[-1] - free.rirs.shape[-1]
    assert pad >= 0 and free.latency == with_wall.latency
    return with_wall.rirs.astype(np.float64) - np.pad(free.rirs.astype(np.float64), ((0, 0), (0, 0), (0, pad)))


def test_reflection_coefficients_come_from_the_chirp_band_absorption():
    assert independent.broadband_absorption(ANECHOIC) == 1.0
    w = independent.octave_weights()
    assert sorted(w) == [500, 1000, 2000, 4000, 8000]
    assert math.isclose(sum(w.values()), 7000.0)                           # the band 500-7500 Hz, whole
    # hard_surface: 0.03 0.03 0.04 0.05 0.05 at 500 Hz .. 8 kHz
    expected = (207.1 * 0.03 + 707.1 * 0.03 + 1414.2 * 0.04 + 2828.4 * 0.05 + 1843.1 * 0.05) / 7000.0
    assert abs(independent.broadband_absorption(HARD) - expected) < 1e-4
    room = Room((5.0, 4.0, 3.0), dict(zip(SURFACES, (HARD, ANECHOIC, 'carpet_thin', HARD, HARD, HARD))), 0.5, 0)
    beta = independent.wall_reflection(room)
    assert beta[1] == 0.0 and beta[0] == beta[3] and 0.97 < beta[0] < 0.99 and beta[2] < beta[0]


def test_direct_path_and_a_wall_echo_at_the_image_method_delays_and_amplitudes():
    """Mic and source on a normal of the west wall, at whole-sample distances: the direct path (40 samples) and
    the first-order echo (80 samples) are single-sample peaks of amplitude 1/r and beta/r_image."""
    mic, src = [20 * DX, 3.0, 2.5], [60 * DX, 3.0, 2.5]
    with_wall = _response(_room((8.0, 6.0, 5.0), hard=('west',)), [mic], [src])
    free = _response(_room((8.0, 6.0, 5.0)), [mic], [src])
    lat = with_wall.latency
    h_free = free.rirs[0, 0].astype(np.float64)
    echo = _wall_only(with_wall, free)[0, 0]                              # the wall's contribution alone
    assert int(np.argmax(np.abs(h_free))) == lat + 40
    assert int(np.argmax(np.abs(echo))) == lat + 80
    beta = math.sqrt(1.0 - independent.broadband_absorption(HARD))
    np.testing.assert_allclose(h_free[lat + 40], 1.0 / (40 * DX), rtol=1e-3)     # 4 pi scaled: amplitude 1/r
    np.testing.assert_allclose(echo[lat + 80], beta / (80 * DX), rtol=2e-3)
    assert h_free[lat + 40] > echo[lat + 80] > 0.0                             # same sign, weaker
    assert np.abs(h_free[:lat + 30]).max() < 1e-3 * h_free[lat + 40]            # nothing before the direct path


@pytest.mark.parametrize('surface', SURFACES)
def test_each_surface_reflects_at_its_own_image(surface):
    """rir_generator's beta order [x0, x1, y0, y1, z0, z1] is the Room's west, east, south, north, floor,
    ceiling: one hard surface at a time, the echo at every mic of the array arrives at that surface's image."""
    size = (8.0, 6.0, 5.0)
    sim = Simulator(_quiet_cfg())
    scene = Scene(_room(size, hard=(surface,)), (1.0, 2.0, 1.5), 0.7)
    mics = sim.mic_positions_room(scene)
    src = np.array([[1.3, 2.4, 1.2]])
    with_wall = _response(scene.room, mics, src)
    free = _response(_room(size), mics, src)
    lat = with_wall.latency
    echoes = _wall_only(with_wall, free)
    axis, side = divmod(SURFACES.index(surface), 2)
    image = src[0].copy()
    image[axis] = -image[axis] if side == 0 else 2 * size[axis] - image[axis]
    for m, mic in enumerate(mics):
        direct = np.linalg.norm(mic - src[0]) / C * FS
        assert abs(int(np.argmax(np.abs(free.rirs[0, m]))) - lat - direct) <= 1.0
        echo = echoes[0, m]
        expected = np.linalg.norm(mic - image) / C * FS
        assert abs(int(np.argmax(np.abs(echo))) - lat - expected) <= 1.0, (surface, m)
        assert echo[int(np.argmax(np.abs(echo)))] > 0.0


def test_rir_length_is_the_eyring_rt60_capped():
    room = Room((6.0, 5.0, 3.0), dict(zip(SURFACES, (HARD, 'plasterboard', 'carpet_thin', 'wooden_lining',
                                                     'carpet_hairy', 'ceiling_fissured_tile'))), 0.5, 0)
    response = _response(room, [[2.0, 2.0, 1.0]], [[3.0, 2.5, 1.2]])
    alphas = independent.wall_absorption(room)
    areas = independent.surface_areas(room.size)
    alpha = areas @ alphas / areas.sum()
    rt60 = 24 * math.log(10) * 90.0 / (C * -areas.sum() * math.log(1 - alpha))
    assert math.isclose(float(response.rt60_bands[0]), rt60, rel_tol=1e-9)
    assert response.rirs.shape[-1] == response.latency + math.ceil(rt60 * FS)
    capped = independent.room_response(room, np.array([[2.0, 2.0, 1.0]]), np.array([[3.0, 2.5, 1.2]]),
                                       dataclasses.replace(SimConfig().recording, rir_max_s=0.05), None)
    assert capped.rirs.shape[-1] == capped.latency + math.ceil(0.05 * FS)


def test_engine_plugs_into_the_simulator_and_records_in_physical_time():
    cfg = _quiet_cfg()
    sim = Simulator(cfg, room_acoustics=independent.room_response)
    scene = Scene(_room((7.0, 6.0, 3.0)), (2.0, 3.0, 1.0), 0.3)            # free field: only the direct chirp
    audio, info = sim.record_with_info(scene, 0.25, 11)
    assert audio.shape == (sim.num_channels, FS // 4) and audio.dtype == np.float32
    assert np.isfinite(audio).all() and np.abs(audio).max() > 0.0
    ch = cfg.chirp
    pulse = chirp_pulse(FS, ch.f_start, ch.f_end, ch.duration_s, ch.kind)
    phase = int(round(info['chirp_phase_s'] * FS))
    speaker = sim.emitters(scene)[0][1]
    for m, mic in enumerate(sim.mic_positions_room(scene)):
        mf = sps.correlate(audio[m], pulse, mode='full')[len(pulse) - 1:]
        peak = int(np.argmax(np.abs(mf[phase:phase + 40])))
        assert abs(peak - np.linalg.norm(mic - speaker) / C * FS) <= 1.0, m
    # A sampled scene with sources and bodies: right shape, finite, and not the default engine's audio.
    scene = _absorbing(Simulator(cfg).sample_scene(424203))
    audio = sim.record(scene, 1.0, 3)
    assert audio.shape == (sim.num_channels, FS) and np.isfinite(audio).all()
    assert not np.array_equal(audio, Simulator(cfg).record(scene, 1.0, 3))


def _absorbing(scene: Scene) -> Scene:
    """The scene in a dead room (absorbing walls and ceiling, hard floor): a short RIR, quick to compute."""
    mats = {s: ('rockwool_50mm_80kgm3' if s != 'floor' else 'linoleum_on_concrete') for s in SURFACES}
    return dataclasses.replace(scene, room=dataclasses.replace(scene.room, materials=mats))


def test_default_simulator_output_is_unchanged():
    cfg = SimConfig()
    scene = Simulator(cfg).sample_scene(77)
    reference = Simulator(cfg).record(scene, 0.5, 77)
    assert Simulator(cfg).room_acoustics is acoustics.room_response
    explicit = Simulator(cfg, room_acoustics=acoustics.room_response).record(scene, 0.5, 77)
    assert np.array_equal(explicit, reference)
    Simulator(cfg, room_acoustics=independent.room_response).record(_absorbing(scene), 0.25, 77)
    assert np.array_equal(Simulator(cfg).record(scene, 0.5, 77), reference)   # no state shared between engines


def test_default_simulator_reproduces_a_stored_dataset_window():
    """Bit for bit against a window with a source of data/default (skipped where that dataset is absent or was
    made with another config). The package's `SimConfig()`, not `from_dict` of the card's config: the card's keys
    are sorted, and the order of `sources.classes` decides which class a draw picks."""
    from audio_vision.dataset import DatasetReader
    from audio_vision.simulation.dataset import make_sample
    data = ROOT / 'data' / 'default'
    if not (data / 'card.json').is_file():
        pytest.skip('data/default is not present')
    reader = DatasetReader(data, 'test')
    if SimConfig().to_dict() != reader.card['generator']['config']:
        pytest.skip('data/default was made with another config')
    i = next(i for i in range(len(reader)) if reader.metadata(i)['scene']['sources'])
    stored = reader[i]
    arrays, meta = make_sample(Simulator(SimConfig()), reader.card['generator']['seed'], int(stored['index']))
    assert meta['scene'] == reader.metadata(i)['scene']
    assert np.array_equal(arrays['audio'], stored['audio'])


def test_sonar_measures_the_floor_from_independent_recordings():
    """The physics agrees: the sonar front-end, tuned on the project's engine, finds the floor of rooms recorded
    by rir_generator within 2 cm (sampled scenes with short broadband RT60, sources and bodies included)."""
    from audio_vision.sonar import FLOOR, LayoutEstimator, SonarConfig, layout_errors, true_layout
    cfg = SimConfig()
    sim = Simulator(cfg, room_acoustics=independent.room_response)
    est = LayoutEstimator(SonarConfig.from_sim_config(cfg), sim.mic_positions)
    picked = []
    for seed in range(424200, 424300):                     # sampled rooms whose RIR is short (fast to compute)
        scene = sim.sample_scene(seed)
        rt60 = independent.eyring_rt60(scene.room.size, independent.wall_absorption(scene.room), C)
        if rt60 < 0.2 and len(sim.emitters(scene)) <= 2:
            picked.append(scene)
        if len(picked) == 2:
            break
    assert len(picked) == 2
    for scene in picked:
        gt = sim.render(scene)
        errors = layout_errors(est.estimate(sim.record(scene, 1.0, scene.seed)),
                               true_layout(gt.camera_pose, scene.room.size))
        assert errors[FLOOR] is not None and errors[FLOOR] < 0.02, (scene.seed, errors[FLOOR])
