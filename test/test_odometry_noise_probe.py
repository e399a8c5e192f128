# SPDX-License-Identifier: Apache-2.0
"""scripts/odometry_noise_probe.py's drifting odometry: none at zero drift, a level array stays level, the error
starts at the drive's first window and grows with the distance driven."""
import numpy as np

from audio_vision.core.frames import planar_pose
from helpers import load_script

probe = load_script('odometry_noise_probe')


def drive(steps=40, step_m=0.5):
    return [planar_pose(k * step_m, 0.1 * k, 0.6, 0.05 * k) for k in range(steps)]


def test_zero_drift_is_the_true_odometry():
    poses = drive()
    for a, b in zip(poses, probe.drifting(poses, 0.0, 0.0, np.random.default_rng(0))):
        np.testing.assert_allclose(a, b, atol=1e-12)


def test_drift_grows_from_the_first_window_and_keeps_the_array_level():
    poses = drive()
    errors = np.zeros(len(poses))
    for seed in range(50):
        noisy = probe.drifting(poses, 0.05, 2.0, np.random.default_rng(seed))
        np.testing.assert_allclose(noisy[0], poses[0])
        for k, (a, b) in enumerate(zip(poses, noisy)):
            np.testing.assert_allclose(b[2, :3], [0.0, 0.0, 1.0], atol=1e-12)     # level: z stays up
            assert abs(b[2, 3] - a[2, 3]) < 1e-12
            errors[k] += np.linalg.norm(b[:2, 3] - a[:2, 3]) ** 2
    rms = np.sqrt(errors / 50)
    assert rms[0] == 0 and rms[10] < rms[39]
    # a random walk of 5 % of each 0.51 m step per axis: about 0.05 * 0.51 * sqrt(2 k) after k steps
    assert 0.5 < rms[39] / (0.05 * np.hypot(0.5, 0.1) * np.sqrt(2 * 39)) < 1.5
