# SPDX-License-Identifier: Apache-2.0
"""A non-ideal chirp speaker (its own response, a latency nobody is told) and the calibration that measures it:
physics on exact synthetic echoes first, then the simulator and the one command."""
import math

import numpy as np
import pytest

from audio_vision.core.features.chirp import chirp_pulse, minimum_phase_response, played_pulse
from audio_vision.simulation.config import ArrayConfig
from audio_vision.simulation.geometry import mic_positions
from audio_vision.sonar import CEILING, FLOOR, WALL, LayoutEstimator, Plane, SonarConfig
from audio_vision.sonar.calibration import SpeakerCalibration, measure_speaker
from audio_vision.sonar.layout import horizontal
from audio_vision.sonar.synthetic import echo_recording

CFG = SonarConfig()
MICS = mic_positions(ArrayConfig())
#: the non-ideal speaker of config/simulation_speaker.yaml
RESPONSE = ((500.0, -12.0), (1200.0, 0.0), (2500.0, 8.0), (4000.0, -4.0), (5500.0, 3.0), (7500.0, -10.0))
BOX = [Plane(FLOOR, (0.0, 0.0, -1.0), 0.62, strength=0.9), Plane(CEILING, (0.0, 0.0, 1.0), 2.1, strength=0.8),
       Plane(WALL, tuple(horizontal(20.0)), 1.3, strength=0.9),
       Plane(WALL, tuple(horizontal(200.0)), 1.8, strength=0.9)]


def free_field(response=RESPONSE, latency_s=0.0, seed=0):
    return echo_recording(CFG, MICS, [], order=0, noise_rms=1e-4, speaker_response_db=response,
                          latency_s=latency_s, seed=seed)


def test_an_ideal_speaker_plays_the_pulse_itself():
    """The simulator's default speaker changes nothing (datasets recorded before it stay bit-identical)."""
    pulse = chirp_pulse(16000, 500.0, 7500.0, 0.01, 'linear')
    played, lag = played_pulse(pulse, 16000)
    assert played is pulse and lag == 0


def test_minimum_phase_response_has_the_asked_magnitude_and_is_causal():
    freqs = np.fft.rfftfreq(4096, 1.0 / 16000)
    h = minimum_phase_response(freqs, RESPONSE)
    in_band = (freqs > 600) & (freqs < 7400)
    asked = np.interp(freqs, [p[0] for p in RESPONSE], [p[1] for p in RESPONSE])
    assert np.max(np.abs(20 * np.log10(np.abs(h[in_band])) - asked[in_band])) < 0.05
    impulse = np.fft.irfft(h, 4096)
    assert np.sum(impulse[:256] ** 2) > 0.99 * np.sum(impulse ** 2)      # energy at the start, not wrapped


def test_latency_is_whole_samples_plus_a_fraction_in_the_pulse():
    pulse = chirp_pulse(16000, 500.0, 7500.0, 0.01, 'linear')
    played, lag = played_pulse(pulse, 16000, latency_s=0.0073)
    assert lag == 116                                    # 116.8 samples: 116 whole, 0.8 in the pulse
    xc = np.correlate(played, pulse, mode='full')[len(pulse) - 1:]
    k = int(np.argmax(xc))
    assert k in (0, 1)


def test_calibration_measures_the_speaker_response():
    cal = measure_speaker(CFG, MICS, [free_field(seed=s) for s in range(2)])
    at = np.array([1000.0, 2000.0, 2500.0, 3000.0, 4000.0, 5000.0, 6000.0, 7000.0])
    asked = np.interp(at, [p[0] for p in RESPONSE], [p[1] for p in RESPONSE])
    measured = np.array(cal.response_db(at))
    # up to a common gain (the response is normalised to mean modulus 1)
    assert np.max(np.abs((measured - measured.mean()) - (asked - asked.mean()))) < 1.5
    flat = measure_speaker(CFG, MICS, [free_field(response=())])
    assert np.max(np.abs(flat.response_db(at))) < 0.5


def test_uncalibrated_speaker_breaks_the_layout_and_calibration_restores_it():
    """The speaker's ringing left behind by the ideal-pulse direct-path subtraction poses as near echoes: the
    floor is taken at a fraction of its distance. Equalised by the calibration, every plane is back within 1 cm,
    and a latency the calibration never saw still cancels."""
    audio = echo_recording(CFG, MICS, BOX, order=2, noise_rms=1e-4, speaker_response_db=RESPONSE, latency_s=0.0073)
    raw = LayoutEstimator(CFG, MICS).estimate(audio)
    assert not raw.get(FLOOR) or abs(raw.get(FLOOR)[0].offset - 0.62) > 0.05
    cal = measure_speaker(CFG, MICS, [free_field(latency_s=0.0021)])
    layout = LayoutEstimator(CFG, MICS, cal).estimate(audio)
    assert abs(layout.get(FLOOR)[0].offset - 0.62) < 0.01
    assert abs(layout.get(CEILING)[0].offset - 2.1) < 0.01
    for truth in BOX[2:]:
        w = min(layout.get(WALL), key=lambda p: float(np.arccos(np.clip(p.n @ truth.n, -1, 1))))
        assert math.degrees(math.acos(min(1.0, w.n @ truth.n))) < 2.0 and abs(w.offset - truth.offset) < 0.01


def test_calibration_file_round_trip_and_refusals(tmp_path):
    cal = measure_speaker(CFG, MICS, [free_field()])
    path = cal.save(tmp_path / 'sub' / 'speaker.npz')
    back = SpeakerCalibration.load(path)
    assert np.allclose(back.response, cal.response) and back.windows == 1 and back.band == (500.0, 7500.0)
    with pytest.raises(ValueError, match='8000 Hz.*calibrate again'):
        LayoutEstimator(SonarConfig(sample_rate=8000, chirp_f_end=3900.0), MICS, back)
    with pytest.raises(FileNotFoundError, match='audio_vision calibrate'):
        SpeakerCalibration.load(tmp_path / 'missing.npz')
    (tmp_path / 'junk.npz').write_bytes(b'not a calibration')
    with pytest.raises(ValueError, match='not a speaker calibration'):
        SpeakerCalibration.load(tmp_path / 'junk.npz')


def test_simulator_speaker_config_is_checked():
    from audio_vision.simulation.config import SimConfig
    with pytest.raises(ValueError, match='increasing frequencies'):
        SimConfig.from_dict({'chirp': {'speaker': {'response_db': [[2000, 0], [1000, 3]]}}})
    with pytest.raises(ValueError, match='latency_s'):
        SimConfig.from_dict({'chirp': {'speaker': {'latency_s': -0.001}}})


def test_calibrate_command_in_the_simulators_free_field(tmp_path, capsys):
    """One command: the simulator's non-ideal speaker (config/simulation_speaker.yaml) recorded in free field;
    the latency it reports is the config's, which the front-end is never told."""
    pytest.importorskip('pyroomacoustics')
    from pathlib import Path

    from audio_vision.cli import main
    from audio_vision.simulation.config import SimConfig
    config = Path(__file__).resolve().parents[1] / 'config' / 'simulation_speaker.yaml'
    out = tmp_path / 'speaker.npz'
    assert main(['calibrate', '--simulate', '--sim-config', str(config), '--windows', '2', '--out', str(out)]) == 0
    printed = capsys.readouterr().out
    latency_ms = float(printed.split('direct path: ')[1].split(' ms')[0])
    true_ms = 1000 * SimConfig.from_yaml(config).chirp.speaker.latency_s
    assert abs(latency_ms - true_ms) < 0.2
    cal = SpeakerCalibration.load(out)
    assert (tmp_path / 'speaker.png').stat().st_size > 0
    db = cal.response_db([2500.0, 4000.0])
    assert db[0] - db[1] > 8.0               # the resonance over the dip: +8 vs -4 dB asked


def test_calibrate_command_refuses_a_wav_of_another_array(tmp_path, capsys):
    import soundfile

    from audio_vision.cli import main
    wav = tmp_path / 'two.wav'
    soundfile.write(str(wav), np.zeros((16000, 2), dtype=np.float32), 16000)
    assert main(['calibrate', '--wav', str(wav), '--out', str(tmp_path / 'c.npz')]) == 2
    assert '2 channels' in capsys.readouterr().err


def test_calibrate_command_from_a_wav_matches_the_library(tmp_path):
    import soundfile

    from audio_vision.cli import main
    audio = free_field()
    wav = tmp_path / 'speaker.wav'
    soundfile.write(str(wav), audio.T, CFG.sample_rate, subtype='FLOAT')
    out = tmp_path / 'speaker.npz'
    assert main(['calibrate', '--wav', str(wav), '--out', str(out)]) == 0
    assert np.allclose(SpeakerCalibration.load(out).response, measure_speaker(CFG, MICS, [audio]).response,
                       atol=1e-4)
