# SPDX-License-Identifier: Apache-2.0
"""Acoustics: physics of the recordings (delays, echoes, reverberation, levels, steady state)."""
import dataclasses
import math

import numpy as np
import pyroomacoustics as pra
import pytest
from scipy import signal as sps

from audio_vision.core.classes import DEFAULT_CLASS_TABLE as CT
from audio_vision.simulation import SimConfig, Simulator
from audio_vision.simulation.acoustics import build_shoebox, diffuse_tail, ism_rirs, octave_band_sum
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


def test_octave_band_sum_is_pyroomacoustics_analysis_bit_for_bit():
    """The batched mirror of the Antoni filter bank gives pyroomacoustics' own numbers, so datasets do not change."""
    bank = build_shoebox(Room((7.0, 5.0, 3.0), MIXED, 0.5, 0), FS, 3).octave_bands
    rng = np.random.default_rng(3)
    for rows, length in ((1, 40), (8, 781), (24, 1703), (5, 2049)):
        x = rng.standard_normal((bank.n_bands, rows, length))
        reference = sum(bank.analysis(x[b], band=b) for b in range(bank.n_bands))
        ours = octave_band_sum(bank, x)
        assert ours.shape == (rows, length)
        assert np.array_equal(ours, reference), (rows, length)


def test_diffuse_tail_is_the_plain_overlap_add_bit_for_bit():
    """In-place complex view and overlap-add views: the same values as the straightforward synthesis."""
    rt60, centers = np.linspace(0.9, 0.3, 7), 125.0 * 2.0 ** np.arange(7)
    n_rows, length, latency, volume, c = 6, 3001, 40, 60.0, 343.0
    ours = diffuse_tail(n_rows, length, latency, FS, rt60, centers, volume, c, np.random.default_rng(5))
    # The straightforward version (as first written): complex from two real arrays, reshaped copies.
    n_fft, hop = 256, 128
    rng = np.random.default_rng(5)
    n_frames = int(math.ceil(length / hop)) + 1
    freqs = np.fft.rfftfreq(n_fft, 1.0 / FS)
    rt60_f = np.interp(np.log2(np.maximum(freqs, centers[0])), np.log2(centers), rt60)
    t_frames = ((np.arange(n_frames) + 1) * hop - latency) / FS
    gain = 10.0 ** (-3.0 * np.maximum(t_frames, 0.0)[:, None] / rt60_f[None, :])
    gain[:, 0] = 0.0
    coeffs = rng.standard_normal((n_rows, n_frames, len(freqs), 2), dtype=np.float32)
    spec = (coeffs[..., 0] + 1j * coeffs[..., 1]) * (gain * math.sqrt(n_fft / 2.0)).astype(np.float32)
    frames = np.fft.irfft(spec, n=n_fft, axis=-1)
    frames *= np.sqrt(sps.windows.hann(n_fft, sym=False))
    out = np.zeros((n_rows, (n_frames + 1) * hop))
    out[:, :n_frames * hop] += frames[:, :, :hop].reshape(n_rows, -1)
    out[:, hop:] += frames[:, :, hop:].reshape(n_rows, -1)
    reference = out[:, :length] * math.sqrt(4.0 * math.pi * c / (volume * FS))
    assert np.array_equal(ours, reference)


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


# --- bodies: silent sources and first-order body echoes (docs/SIMULATOR.md, "Bodies") -----------
ANECHOIC = {s: 'rockwool_50mm_80kgm3' for s in SURFACES}


def _body_cfg(scattering: bool = True, air: bool = False, chirp: bool = True, **recording) -> SimConfig:
    cfg = _quiet_cfg(**{'ism_order': 0, 'diffuse_tail': False, **recording, 'body_scattering': scattering})
    return dataclasses.replace(cfg, room=dataclasses.replace(cfg.room, air_absorption=air),
                               chirp=dataclasses.replace(cfg.chirp, enabled=chirp))


def _silent_person(xy, height=1.7, radius=0.25):
    return Source('person', CT.id_of('person'), (xy[0], xy[1], min(1.55, 0.9 * height)),
                  Body('cylinder', tuple(xy), (radius, height)), 60.0, 3, True, silent=True)


def _body_only(scene, **kw):
    """The RIRs with the body echoes minus RIRs without them (same seed): the body echoes alone."""
    with_bodies = Simulator(_body_cfg(True, **kw)).room_response(scene, seed=2)
    without = Simulator(_body_cfg(False, **kw)).room_response(scene, seed=2)
    diff = with_bodies.rirs.astype(np.float64)
    diff[..., :without.rirs.shape[-1]] -= without.rirs
    return diff, with_bodies.latency


def _fermat_path(s, m, center, radius, height):
    """Shortest emitter -> cylinder surface -> mic path, by brute force over the surface (Fermat:
    on a convex body the specular path is the shortest one touching it)."""
    phi_lo, phi_hi, z_lo, z_hi = -np.pi, np.pi, 0.0, height
    for _ in range(3):                                    # coarse grid, then two finer ones around the best
        phi, z = np.meshgrid(np.linspace(phi_lo, phi_hi, 361), np.linspace(z_lo, z_hi, 201), indexing='ij')
        p = np.stack([center[0] + radius * np.cos(phi), center[1] + radius * np.sin(phi), z], axis=-1)
        length = np.linalg.norm(p - s, axis=-1) + np.linalg.norm(p - m, axis=-1)
        k = np.unravel_index(np.argmin(length), length.shape)
        d_phi, d_z = 4 * (phi_hi - phi_lo) / 360, 4 * (z_hi - z_lo) / 200
        phi_lo, phi_hi = phi[k] - d_phi, phi[k] + d_phi
        z_lo, z_hi = max(z[k] - d_z, 0.0), min(z[k] + d_z, height)
    return float(length[k]), p[k]


def test_silent_body_echo_of_the_chirp_arrives_at_the_specular_path_delay():
    room = Room((12.0, 10.0, 3.0), ANECHOIC, 0.1, 0)
    scene = Scene(room, (2.0, 5.0, 1.0), 0.3, (_silent_person((5.2, 6.1)),))
    sim = Simulator(_body_cfg())
    assert [name for name, _ in sim.emitters(scene)] == ['chirp']          # the person emits nothing
    echoes, latency = _body_only(scene)
    speaker = sim.emitters(scene)[0][1]
    for m, mic in enumerate(sim.mic_positions_room(scene)):
        path, _ = _fermat_path(speaker, mic, (5.2, 6.1), 0.25, 1.7)
        peak = int(np.argmax(np.abs(echoes[0, m]))) - latency
        assert abs(peak - path / C * FS) <= 1.0, (m, peak, path / C * FS)
    # Nothing before the echo but the slow baseline of the 10 Hz high-pass (as in the ISM).
    assert np.abs(echoes[0, :, :latency + int(3.0 / C * FS)]).max() < 0.03 * np.abs(echoes).max()


def test_specular_point_is_the_fermat_point_for_bistatic_pairs():
    from audio_vision.simulation.acoustics import Scatterer, body_echo_paths
    emitters = np.array([[1.0, 1.0, 1.0], [6.0, 2.5, 0.9], [2.0, 6.0, 1.55]])
    mics = np.array([[1.1, 1.0, 1.05], [3.0, 0.5, 0.4], [5.0, 6.5, 1.2]])
    body = Scatterer((3.5, 3.5), 0.3, 1.7, 0.9)
    points, dist, amp = body_echo_paths(emitters, mics, [body])
    checked = 0
    for s in range(3):
        for m in range(3):
            if amp[s, m, 0] == 0.0:
                continue
            path, p = _fermat_path(emitters[s], mics[m], body.center, body.radius, body.height)
            assert dist[s, m, 0] == pytest.approx(path, abs=2e-3), (s, m)
            assert np.linalg.norm(points[s, m, 0] - p) < 0.02, (s, m, points[s, m, 0], p)
            checked += 1
    assert checked >= 6


def test_body_echo_level_follows_the_spreading_model_with_distance():
    # Monostatic: doubling the range to the surface scales the echo by 2^-1.5 (far field).
    room = Room((14.0, 10.0, 3.0), ANECHOIC, 0.1, 0)
    a, refl = 0.25, SimConfig().sources.classes['person'].reflection
    levels = []
    for r in (1.5, 3.0, 6.0):
        scene = Scene(room, (2.0, 5.0, 1.0), 0.0, (_silent_person((2.0 + r + a, 5.0)),))
        echoes, _ = _body_only(scene)
        rms = np.sqrt(np.sum(echoes[0] ** 2, axis=-1))                   # energy of each mic's echo
        # The fractional-delay kernel carries unit energy: the echo's RMS sum is its amplitude.
        far_field = refl * math.sqrt(a) / (2.0 * r ** 1.5)
        assert np.mean(rms) == pytest.approx(far_field, rel=0.12), r
        levels.append(float(np.mean(rms)))
    assert levels[1] / levels[0] == pytest.approx(2 ** -1.5, rel=0.06)
    assert levels[2] / levels[1] == pytest.approx(2 ** -1.5, rel=0.04)


def test_body_outside_the_vertical_mirror_condition_gives_no_echo():
    # Array at 1.0 m: the specular height of a 0.5 m high body would be ~1 m, above its top.
    room = Room((12.0, 10.0, 3.0), ANECHOIC, 0.1, 0)
    low = Scene(room, (2.0, 5.0, 1.0), 0.0, (_silent_person((5.0, 5.0), height=0.5),))
    echoes, _ = _body_only(low)
    assert np.abs(echoes).max() == 0.0
    tall = Scene(room, (2.0, 5.0, 1.0), 0.0, (_silent_person((5.0, 5.0), height=1.2),))
    echoes, _ = _body_only(tall)
    assert np.abs(echoes).max() > 1e-3


def test_body_echoes_survive_the_ism_to_tail_cross_fade():
    # A far body's echo comes after the ISM horizon: it must keep its level, not fade out with the ISM.
    room = Room((12.0, 10.0, 3.0), MIXED, 0.5, 0)
    r, a = 6.0, 0.25
    scene = Scene(room, (2.0, 5.0, 1.0), 0.0, (_silent_person((2.0 + r + a, 5.0)),))
    echoes, latency = _body_only(scene, ism_order=1, diffuse_tail=True)
    expected = 2 * r / C * FS
    horizon = 1 * min(room.size)
    assert expected / FS > math.hypot(0.1, horizon) / C                # beyond the cross-fade's end
    refl = SimConfig().sources.classes['person'].reflection
    for m in range(8):
        window = echoes[0, m, latency + int(expected) - 20:latency + int(expected) + 20]
        assert np.sqrt(np.sum(window ** 2)) == pytest.approx(refl * math.sqrt(a) / (2 * r ** 1.5), rel=0.12)
    assert np.abs(echoes[0, :, :latency + int(expected) - 20]).max() < 0.03 * np.abs(echoes).max()


def test_silent_sources_emit_nothing_but_their_bodies_scatter_the_others():
    room = Room((8.0, 6.0, 3.0), ANECHOIC, 0.1, 0)
    person = _silent_person((5.0, 3.0))
    cfg = _body_cfg(chirp=False)
    silent_scene = Scene(room, (2.0, 3.0, 1.0), 0.0, (person,))
    assert np.abs(Simulator(cfg).record(silent_scene, 0.5, seed=1)).max() < 1e-9
    speaking = Scene(room, (2.0, 3.0, 1.0), 0.0, (dataclasses.replace(person, silent=False),))
    assert level_dbfs(Simulator(cfg).record(speaking, 0.5, seed=1)) > -80.0   # 60 dB SPL at 3 m: ~-70 dBFS
    # A sounding alarm next to the silent person: the person's body echoes the alarm ...
    alarm = Source('alarm', CT.id_of('alarm'), (6.5, 1.5, 0.9), Body('box', (6.5, 1.5), (0.4, 0.4, 1.0)),
                   70.0, 5, True)
    both = Scene(room, (2.0, 3.0, 1.0), 0.0, (alarm, person))
    sim = Simulator(cfg)
    assert [name for name, _ in sim.emitters(both)] == ['alarm']
    assert [s.owner for s in sim.scatterers(both)] == [0, -1]
    echoes, _ = _body_only(both, chirp=False)
    assert np.abs(echoes[0]).max() > 1e-3
    # ... but a body never echoes its own emitter.
    alone, _ = _body_only(Scene(room, (2.0, 3.0, 1.0), 0.0, (alarm,)), chirp=False)
    assert np.abs(alone).max() == 0.0


def test_body_scattering_is_deterministic_and_changes_the_recording():
    sim = Simulator()
    off_cfg = dataclasses.replace(SimConfig(), recording=dataclasses.replace(SimConfig().recording,
                                                                             body_scattering=False))
    seed = next(s for s in range(50) if sim.sample_scene(s).sources)
    scene = sim.sample_scene(seed)
    a = sim.record(scene, 1.0, seed)
    np.testing.assert_array_equal(a, Simulator().record(scene, 1.0, seed))
    assert not np.array_equal(a, Simulator(off_cfg).record(scene, 1.0, seed))
