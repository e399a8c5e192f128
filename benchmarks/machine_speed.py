# SPDX-License-Identifier: Apache-2.0
"""How fast the machine runs a fixed workload now: the yardstick that tells a slower run of the benchmarks from
slower code.

On one day the same machine type measured the same models (the default backend, p50) at 25.2 ms beside other jobs
(`git show 79127bc:docs/benchmarks.json`, load average 1.39 at its start) and at 18.3 ms on a quiet machine (the
compared row of `git show afa24c6:docs/benchmarks.json`); a virtual machine's host can lower a core's throughput the
same way without any load or steal time showing. Each benchmark times :func:`reference_ms` at its start and end
and records both: two runs whose reference figures differ by as much as their results measured a different machine,
not a different program. It measures the core, not contention: a fair share of a busy machine runs it about as fast (the
load average says when other jobs ran).

The workload is the front-end's kind of work on one thread, without BLAS (whose thread count varies): real FFTs of
a window of 8 channels, a sort, and a Python loop over small arrays; in a fresh interpreter, because what a process
has loaded changes it (after torch's import the same loop ran faster in one process).

    .venv/bin/python benchmarks/machine_speed.py
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def _workload(audio: np.ndarray) -> float:
    spectrum = np.fft.rfft(audio, axis=-1)
    total = float(np.sort(np.abs(spectrum), axis=-1)[:, -8:].sum())
    for row in audio[:, :4096].reshape(-1, 64):           # many small array operations, as the front-end's loops
        total += float((row * row).sum())
    return total


def reference_ms() -> float:
    """Median milliseconds of the fixed workload (the module docstring), timed in a fresh interpreter."""
    out = subprocess.run([sys.executable, str(Path(__file__).resolve())], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)['reference_ms']


def measure(repeats: int = 25) -> float:
    """Median milliseconds of one fixed workload on the calling thread of this process, after a warm-up."""
    audio = np.random.default_rng(0).standard_normal((8, 16384))
    _workload(audio)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        _workload(audio)
        times.append(time.perf_counter() - t0)
    return round(float(np.median(times)) * 1e3, 3)


def reference_text(machine: dict) -> str:
    """'; the reference workload (benchmarks/machine_speed.py) X ms at start, Y ms at end' of a result's machine
    block, or '' where the run did not time it."""
    start, end = machine.get('reference_ms_at_start'), machine.get('reference_ms_at_end')
    if start is None:
        return ''
    return (f'; the reference workload (benchmarks/machine_speed.py) {start:.2f} ms at start'
            + (f', {end:.2f} ms at end' if end is not None else ''))


if __name__ == '__main__':
    print(json.dumps({'reference_ms': measure()}))
