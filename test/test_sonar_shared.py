# SPDX-License-Identifier: Apache-2.0
"""One front-end measurement per window for all its consumers (audio_vision.sonar.shared), and what decides
whether two front-ends may share: they must measure exactly alike."""
import os
import threading

import numpy as np
import pytest

from audio_vision.simulation.config import ArrayConfig
from audio_vision.simulation.geometry import mic_positions
from audio_vision.sonar import CEILING, FLOOR, WALL, LayoutEstimator, Plane, SonarConfig
from audio_vision.sonar.calibration import measure_speaker
from audio_vision.sonar.layout import horizontal
from audio_vision.sonar.shared import SharedEstimates
from audio_vision.sonar.synthetic import echo_recording

CFG = SonarConfig()
MICS = mic_positions(ArrayConfig())
BOX = [Plane(FLOOR, (0.0, 0.0, -1.0), 0.6, strength=0.9), Plane(CEILING, (0.0, 0.0, 1.0), 1.9, strength=0.8),
       Plane(WALL, tuple(horizontal(30.0)), 1.4, strength=0.9),
       Plane(WALL, tuple(horizontal(120.0)), 2.2, strength=0.9)]


@pytest.fixture(scope='module')
def windows():
    audio = echo_recording(CFG, MICS, BOX, order=2, periods=2, noise_rms=1e-4).astype(np.float32)
    n = CFG.period_samples
    return audio[:, :n], audio[:, n:2 * n] + np.float32(1e-4)     # two windows that differ


def test_two_threads_asking_for_one_window_measure_it_once(windows):
    shared = SharedEstimates(LayoutEstimator(CFG, MICS))
    barrier, got = threading.Barrier(2), [None, None]

    def ask(i):
        barrier.wait()
        got[i] = shared.estimate(windows[0] if i == 0 else windows[0].astype(np.float64))   # the same samples
    threads = [threading.Thread(target=ask, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert (shared.measured, shared.shared) == (1, 1)
    assert got[0] is got[1]
    assert got[0].to_dict() == LayoutEstimator(CFG, MICS).estimate(windows[0]).to_dict()   # the front-end alone


def test_another_window_is_measured_and_the_oldest_forgotten(windows):
    shared = SharedEstimates(LayoutEstimator(CFG, MICS), size=1)
    a = shared.estimate(windows[0])
    b = shared.estimate(windows[1])
    assert shared.measured == 2 and shared.shared == 0 and a.to_dict() != b.to_dict()
    assert shared.estimate(windows[1]) is b and shared.shared == 1
    shared.estimate(windows[0])                     # forgotten (size 1): measured again
    assert (shared.measured, shared.shared) == (3, 1)
    with pytest.raises(ValueError):
        SharedEstimates(LayoutEstimator(CFG, MICS), size=0)


def test_a_failed_measurement_fails_for_every_consumer(windows):
    shared = SharedEstimates(LayoutEstimator(CFG, MICS))
    bad = windows[0][:, :100]                       # shorter than one chirp period
    for _ in range(2):                              # measured once, the second consumer gets the same error
        with pytest.raises(ValueError, match='shorter than one chirp period'):
            shared.estimate(bad)
    assert (shared.measured, shared.shared) == (1, 1)


def test_front_ends_share_only_when_they_measure_alike():
    base = LayoutEstimator(CFG, MICS)
    assert base.measures_like(LayoutEstimator(SonarConfig(), MICS.copy()))
    assert not base.measures_like(LayoutEstimator(SonarConfig(max_reflectors=0), MICS))
    assert not base.measures_like(LayoutEstimator(CFG, MICS + 0.001))
    speaker = ((500.0, -12.0), (2500.0, 8.0), (7500.0, -10.0))
    calibration = measure_speaker(CFG, MICS, [echo_recording(CFG, MICS, [], order=0, speaker_response_db=speaker)])
    assert not base.measures_like(LayoutEstimator(CFG, MICS, calibration))


def test_the_front_end_keeps_its_work_on_the_calling_thread():
    """CPU accounting (/proc, per thread) of a fresh process measuring simulated rooms: the front-end's work is on
    the thread that calls it. Its least squares once went through numpy's BLAS, whose helper thread then spun for
    about as much CPU as the front-end itself, on the core the other inference worker needs (this test, run on
    that code: 87 ticks on other threads against 97 on the caller's)."""
    import subprocess
    import sys
    from pathlib import Path
    if not Path('/proc/self/task').is_dir():
        pytest.skip('needs /proc (Linux) for per-thread CPU times')
    pytest.importorskip('pyroomacoustics')
    script = '''
import os, threading
from audio_vision.simulation.config import SimConfig
from audio_vision.simulation.simulator import Simulator
from audio_vision.sonar import LayoutEstimator, SonarConfig

def cpu():
    out = {}
    for t in os.listdir('/proc/self/task'):
        fields = open(f'/proc/self/task/{t}/stat').read().rsplit(')', 1)[1].split()
        out[t] = int(fields[11]) + int(fields[12])
    return out
sim = Simulator(SimConfig())
windows = [sim.record(sim.sample_scene(seed), 1.0, seed) for seed in range(424300, 424306)]
est = LayoutEstimator(SonarConfig.from_sim_config(sim.cfg), sim.mic_positions)
est.estimate(windows[0])                               # compile, warm up
before = cpu()
for _ in range(3):
    for w in windows:
        est.estimate(w)
after = cpu()
me = str(threading.get_native_id())
print(after[me] - before.get(me, 0), sum(v - before.get(t, 0) for t, v in after.items() if t != me))
'''
    env = {k: v for k, v in os.environ.items() if k not in ('OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS')}
    out = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    caller, others = map(int, out.stdout.split())
    assert caller > 0 and others <= 0.2 * caller, (caller, others)
