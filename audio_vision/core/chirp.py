# SPDX-License-Identifier: Apache-2.0
"""The active echolocation chirp, shared by the simulator (which emits it) and the features
(which matched-filter the recording with it), so both always use the same waveform."""
from __future__ import annotations

import numpy as np
import scipy.signal as sps


def chirp_pulse(fs: int, f_start: float, f_end: float, duration_s: float, kind: str) -> np.ndarray:
    """One sweep (linear or logarithmic) with 10 % Tukey tapers, unit RMS."""
    if kind not in ('linear', 'exponential', 'logarithmic'):
        raise ValueError(f"chirp kind must be 'linear' or 'exponential', got {kind!r}")
    n = max(int(round(duration_s * fs)), 2)
    t = np.arange(n) / fs
    method = 'linear' if kind == 'linear' else 'logarithmic'
    pulse = sps.chirp(t, f0=f_start, t1=t[-1], f1=f_end, method=method) * sps.windows.tukey(n, 0.2)
    return pulse / (np.sqrt(np.mean(pulse ** 2)) + 1e-12)
