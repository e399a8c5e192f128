"""Acoustics: physics of the recordings (delays, echoes, reverberation, levels, steady state)."""
import dataclasses
import math

import numpy as np
import pyroomacoustics as pra
import pytest
from scipy import signal as sps

from audio_vision.core.classes import DEFAULT_CLASS_TABLE as CT
from audio_vision.simulation import SimConfig, Simulator
from audio_vision.simulation.acoustics import build_shoebox, ism_rirs
from audio_vision.simulation.scene import Body, Room, Scene, Source
from audio_vision.simulation.signals import chirp_pulse
from audio_vision.simulation.simulator import level_dbfs

FS = 16000
C = pra.constants.get('c')
SURFACES = ('west', 'east', 'south', 'north', 'floor', 'ceiling')
MIXED = dict(zip(SURFACES, ('brickwork', 'plasterboard', 'glass_window', 'wooden_lining', 'carpet_thin',
                            'ceiling_plasterboard')))


def _quiet_cfg(**recording) -> SimConfig:
    """Default config without self-noise or gain mismatch (exact physics checks)."""
    cfg = SimConfig()
    return dataclasses.replace(
        cfg, noise=dataclasses.replace(cfg.noise, snr_db_range=(300.0, 300.0), gain_mismatch_db=0.0),
        recording=dataclasses.replace(cfg.recording, **recording))


def _person(xyz):
    return Source('person', CT.id_of('person'), tuple(xyz), Body('cylinder', tuple(xyz[:2]), (0.25, 1.7)),
                  60.0, 3, True)


def test_batched_ism_matches_pyroomacoustics_compute_rir():
    room = Room((7.0, 5.0, 3.0), MIXED, 0.5, 0)
    rng = np.random.default_rng(0)
    mics = np.array([3.0, 2.5, 1.0]) + rng.uniform(-0.1, 0.1, (4, 3))
    sources = rng.uniform([0.5, 0.5, 0.5], [6.5, 4.5, 2.5], (2, 3))
    ours_box, ref_box = build_shoebox(room, FS, 3), build_shoebox(room, FS, 3)
    for box in (ours_box, ref_box):
        box.add_microphone_array(mics.T)
        for s in sources:
            box.add_source(s)
    ours, latency = ism_rirs(ours_box)
    ref_box.compute_rir()
    assert latency == pra.constants.get('frac_delay_length') // 2
    for s in range(2):
        for m in range(4):
            ref = ref_box.rir[m][s]
            n = min(len(ref), ours.shape[-1])
            # pyroomacoustics filters each pair with an FFT of its own length: tiny differences.
            assert np.abs(ours[s, m, :n] - ref[:n]).max() < 1e-2 * np.abs(ref).max()


def test_direct_path_delay_at_each_mic_is_distance_over_c():
    sim = Simulator(_quiet_cfg())
    scene = Scene(Room((6.0, 5.0, 3.0), MIXED, 0.5, 0), (2.0, 2.5, 1.0), 0.4, (_person((4.5, 3.5, 1.55)),))
    response = sim.room_response(scene)
    mics = sim.mic_positions_room(scene)
    for e, (_, position) in enumerate(sim.emitters(scene)):          # chirp speaker and the person
        for m, mic in enumerate(mics):
            expected = np.linalg.norm(mic - position) / C * FS
            peak = int(np.argmax(np.abs(response.rirs[e, m]))) - response.latency
            assert abs(peak - expected) <= 1.0, (e, m, peak, expected)
    # And the inter-mic delays order the mics by distance to the source.
    d = np.linalg.norm(mics - np.array([4.5, 3.5, 1.55]), axis=1)
    peaks = np.argmax(np.abs(response.rirs[1]), axis=1)
    assert np.all(np.diff(peaks[np.argsort(d)]) >= 0)


def _matched_filter(audio, pulse):
    return np.stack([sps.correlate(ch, pulse, mode='full')[len(pulse) - 1:] for ch in audio])


def test_chirp_echo_from_a_wall_arrives_at_2d_over_c():
    room = Room((8.0, 8.0, 3.5), {s: 'hard_surface' for s in SURFACES}, 2.0, 0)
    d_wall = 0.6
    scene = Scene(room, (d_wall, 4.0, 1.75), 0.0)          # west wall x = 0 is 0.6 m behind the array
    seed = 5
    direct_only = Simulator(_quiet_cfg(ism_order=0, diffuse_tail=False)).record_with_info(scene, 0.25, seed)
    with_walls = Simulator(_quiet_cfg(ism_order=1, diffuse_tail=False)).record_with_info(scene, 0.25, seed)
    assert direct_only[1]['chirp_phase_s'] == with_walls[1]['chirp_phase_s']
    phase = int(round(with_walls[1]['chirp_phase_s'] * FS))
    ch = SimConfig().chirp
    pulse = chirp_pulse(FS, ch.f_start, ch.f_end, ch.duration_s, ch.kind)
    echoes = _matched_filter(with_walls[0] - direct_only[0], pulse)   # reflections only
    sim = Simulator(_quiet_cfg())
    speaker_image = np.array([-d_wall, 4.0, 1.75])                     # mirrored in the wall x = 0
    for m, mic in enumerate(sim.mic_positions_room(scene)):
        expected = np.linalg.norm(mic - speaker_image) / C * FS       # ~ 2 d / c at every mic
        assert abs(expected - 2 * d_wall / C * FS) < 0.15 / C * FS
        window = echoes[m, phase:phase + 120]                          # floor/ceiling echoes come later
        peak = int(np.argmax(np.abs(window)))
        assert abs(peak - expected) <= 1.0, (m, peak, expected)
    # The direct chirp itself arrives at |mic - speaker| / c.
    direct = _matched_filter(direct_only[0], pulse)
    dist = np.linalg.norm(sim.mic_positions_room(scene)[0] - np.array([d_wall, 4.0, 1.75]))
    assert abs(int(np.argmax(np.abs(direct[0, phase:phase + 40]))) - dist / C * FS) <= 1.0


def _schroeder_t60(h, fs):
    edc = np.cumsum(h[::-1] ** 2)[::-1]
    edc_db = 10 * np.log10(edc / edc[0] + 1e-30)
    i5, i25 = np.argmax(edc_db <= -5), np.argmax(edc_db <= -25)
    return 3.0 * (i25 - i5) / fs                                      # T20 extrapolated to 60 dB


def test_reverberation_tail_decays_at_the_eyring_rt60():
    room = Room((7.0, 6.0, 3.0), MIXED, 0.5, 0)
    sim = Simulator(_quiet_cfg(rir_max_s=2.0))
    scene = Scene(room, (2.0, 3.0, 1.0), 0.0, (_person((5.0, 2.0, 1.55)),))
    response = sim.room_response(scene, seed=1)
    sos = sps.butter(4, [707, 1414], btype='bandpass', fs=FS, output='sos')   # 1 kHz octave
    measured = np.mean([_schroeder_t60(sps.sosfilt(sos, response.rirs[1, m]), FS) for m in range(8)])
    expected = response.rt60_bands[list(response.band_centers).index(1000)]
    assert measured == pytest.approx(expected, rel=0.25)
    # ISM alone at this order would have almost no tail: the hybrid keeps the realistic one.
    ism_only = Simulator(_quiet_cfg(diffuse_tail=False)).room_response(scene)
    assert ism_only.rirs.shape[-1] < 0.2 * response.rirs.shape[-1]


def test_record_is_steady_state_from_the_first_sample():
    room = Room((5.0, 4.0, 3.0), MIXED, 0.5, 0)
    fan = Source('appliance', CT.id_of('appliance'), (3.5, 2.0, 0.6), Body('box', (3.5, 2.0), (0.6, 0.6, 0.9)),
                 60.0, 9, True)
    scene = Scene(room, (1.5, 2.0, 1.0), 0.0, (fan,))
    cfg = _quiet_cfg()
    sim = Simulator(dataclasses.replace(cfg, chirp=dataclasses.replace(cfg.chirp, enabled=False)))
    long = sim.record(scene, 2.0, seed=4)
    assert long.shape == (8, 32000) and long.dtype == np.float32
    levels = [level_dbfs(long[:, i:i + 4000]) for i in range(0, 32000, 4000)]
    assert np.ptp(levels) < 2.0                                       # no fade-in, no fade-out
    assert level_dbfs(long[:, :160]) > levels[1] - 3.0                # first 10 ms already reverberant
    short = sim.record(scene, 1.0, seed=4)
    assert abs(level_dbfs(short) - level_dbfs(long)) < 1.0


def test_same_seed_is_bit_identical_and_levels_are_in_the_documented_range():
    sim = Simulator()
    for seed in range(4):
        scene = sim.sample_scene(seed)
        a = sim.record(scene, 1.0, seed)
        assert a.shape == (8, 16000) and a.dtype == np.float32
        assert np.isfinite(a).all()
        np.testing.assert_array_equal(a, sim.record(scene, 1.0, seed))
        assert -40.0 <= level_dbfs(a) <= -15.0                        # docs/SIMULATOR.md, "Levels"
        assert np.abs(a).max() < 1.0
    assert not np.array_equal(sim.record(scene, 1.0, 1), sim.record(scene, 1.0, 2))


def test_self_noise_follows_the_datasheet_snr():
    cfg = SimConfig()
    cfg = dataclasses.replace(cfg, chirp=dataclasses.replace(cfg.chirp, enabled=False),
                              noise=dataclasses.replace(cfg.noise, snr_db_range=(60.0, 60.0)))
    sim = Simulator(cfg)
    scene = Scene(Room((5.0, 4.0, 3.0), MIXED, 0.5, 0), (2.0, 2.0, 1.0), 0.0)   # silent room
    a = sim.record(scene, 1.0, seed=0)
    # 94 dB SPL reads -26 dBFS, so a 60 dB SNR mic has a floor at -86 dBFS.
    assert level_dbfs(a) == pytest.approx(-26.0 - 60.0, abs=0.5)
