#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""What the sonar front-end's FFTs cost per window, and what another FFT library would save: every FFT call
``LayoutEstimator.estimate`` makes on real windows is recorded (shape, dtype, direction), then each distinct call is
timed on one thread with scipy.fft (pocketfft: what the front-end runs), numpy.fft, torch.fft (MKL in the CPU
wheels) and, where installed, pyfftw (FFTW) and ducc0; the per-window totals are those times weighted by the calls'
counts per window.

    python benchmarks/bench_fft.py --data data/default --json docs/bench_fft.json --markdown docs/BENCHMARKS.md

Only a saving that a library could bring on the front-end's own calls is measured here; whether the library may be
used is its licence's question (``LIBRARIES``), not this script's.
"""
from __future__ import annotations

import argparse
import importlib
import os
import platform
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import scipy.fft as sfft
import torch

from audio_vision.dataset import DatasetReader
from audio_vision.paths import cpu_model, publish_result, source_commit
from audio_vision.sonar import LayoutEstimator
from audio_vision.training.layout_eval import sonar_config_for

from bench_sonar import _TimedFFT          # benchmarks/: the script's own folder

MARK_BEGIN, MARK_END = '<!-- FFT BEGIN (benchmarks/bench_fft.py) -->', '<!-- FFT END -->'
#: library -> its licence (as its package declares it) and how it is installed
LIBRARIES = {'scipy.fft': 'BSD-3-Clause (pocketfft); a dependency already',
             'numpy.fft': 'BSD-3-Clause (pocketfft); a dependency already',
             'torch.fft': 'BSD-3-Clause, MKL in the CPU wheels (Intel Simplified Software License); a dependency '
                          'already, but it runs on torch\'s process-wide thread pool',
             'pyfftw': 'BSD-3-Clause wrapper around FFTW, which is GPL-2.0-or-later (bundled in its wheels)',
             'ducc0': 'GPL-2.0-or-later'}


def recorded_calls(estimator: LayoutEstimator, windows: list) -> Counter:
    """{(function, shape, dtype): calls per window} of every scipy.fft call the front-end makes on ``windows``."""
    echoes = importlib.import_module('audio_vision.sonar.echoes')
    calls: Counter = Counter()

    def counted(fn):
        def recorded(x, *args, **kwargs):
            calls[(fn.__name__, tuple(np.shape(x)), str(np.asarray(x).dtype))] += 1
            return fn(x, *args, **kwargs)
        return recorded

    echoes.sfft = _TimedFFT(sfft, counted)          # bench_sonar's wrapper of the front-end's scipy.fft
    try:
        for w in windows:
            estimator.estimate(w)
    finally:
        echoes.sfft = sfft
    return Counter({k: v / len(windows) for k, v in calls.items()})


def libraries() -> dict:
    """{name: (function name, x) -> callable doing that transform along the last axis}, for the libraries here."""
    out = {'scipy.fft': lambda name, x: (lambda: getattr(sfft, name)(x, axis=-1)),
           'numpy.fft': lambda name, x: (lambda: getattr(np.fft, name)(x, axis=-1))}
    t = {'fft': torch.fft.fft, 'ifft': torch.fft.ifft, 'rfft': torch.fft.rfft}
    out['torch.fft'] = lambda name, x: (lambda tx=torch.from_numpy(np.ascontiguousarray(x)): t[name](tx, dim=-1))
    try:
        import pyfftw
        pyfftw.config.NUM_THREADS = 1

        def fftw(name, x):
            kind = {'fft': pyfftw.builders.fft, 'ifft': pyfftw.builders.ifft, 'rfft': pyfftw.builders.rfft}[name]
            plan = kind(pyfftw.byte_align(np.ascontiguousarray(x)), axis=-1, threads=1,
                        planner_effort='FFTW_MEASURE')
            return plan
        out['pyfftw'] = fftw
    except ImportError:
        pass
    try:
        import ducc0

        def ducc(name, x):
            x = np.ascontiguousarray(x)
            if name == 'rfft':
                return lambda: ducc0.fft.r2c(x, axes=(x.ndim - 1,), nthreads=1)
            return lambda: ducc0.fft.c2c(x, axes=(x.ndim - 1,), forward=name == 'fft', nthreads=1)
        out['ducc0'] = ducc
    except ImportError:
        pass
    return out


def versions(libs) -> dict:
    """{library: the installed distribution's version} (pyfftw and ducc0 are not dependencies of this package: where
    they were timed, they were installed beside it)."""
    from importlib.metadata import PackageNotFoundError, version
    out = {}
    for lib in libs:
        try:
            out[lib] = version(lib.split('.')[0])
        except PackageNotFoundError:
            out[lib] = None
    return out


def timed_ms(fn, repeats: int) -> float:
    """Median ms of ``repeats`` calls (after one warm-up)."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1000.0 * float(np.median(times))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--data', type=Path, required=True)
    ap.add_argument('--split', default='test')
    ap.add_argument('--windows', type=int, default=20, help='windows whose FFT calls are recorded')
    ap.add_argument('--repeats', type=int, default=200, help='timed calls per transform and library')
    ap.add_argument('--json', type=Path, required=True)
    ap.add_argument('--markdown', type=Path, help='rewrite the generated block of this Markdown file')
    args = ap.parse_args()
    if args.windows < 1 or args.repeats < 1:
        ap.error('--windows and --repeats must be at least 1')
    torch.set_num_threads(1)
    reader = DatasetReader(args.data, args.split)
    windows = [reader[i]['audio'] for i in range(min(args.windows, len(reader)))]
    if not windows:
        ap.error(f'{args.data} has no windows in its {args.split} split')
    estimator = LayoutEstimator(sonar_config_for(reader), reader.mic_positions)
    estimator.estimate(windows[0])
    calls = recorded_calls(estimator, windows)
    rng = np.random.default_rng(0)
    libs = libraries()
    rows = []
    for (name, shape, dtype), per_window in sorted(calls.items(), key=lambda kv: -kv[1] * np.prod(kv[0][1])):
        x = rng.standard_normal(shape)
        if np.dtype(dtype).kind == 'c':
            x = x + 1j * rng.standard_normal(shape)
        x = x.astype(dtype)
        ms = {lib: timed_ms(make(name, x), args.repeats) for lib, make in libs.items()}
        rows.append({'function': name, 'shape': list(shape), 'dtype': dtype, 'calls_per_window': per_window,
                     'ms': ms})
    totals = {lib: sum(r['calls_per_window'] * r['ms'][lib] for r in rows) for lib in libs}
    result = {'command': 'python ' + ' '.join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
              'date': time.strftime('%Y-%m-%d'), 'commit': source_commit(), 'machine': cpu_model(),
              'cpus': os.cpu_count(), 'python': platform.python_version(), 'threads': 1,
              'windows': len(windows), 'calls': rows, 'ms_per_window': totals,
              'licences': {lib: LIBRARIES[lib] for lib in libs}, 'versions': versions(libs)}
    base = totals['scipy.fft']
    lines = [f"`{result['command']}`, measured {result['date']} at commit {result['commit']} on {result['machine']}, "
             f"1 thread (docs/bench_fft.json): the FFT calls `LayoutEstimator.estimate` makes per window on "
             f"{len(windows)} windows of `{args.data}` ({args.split}), each timed alone (median of {args.repeats}).",
             '', '| library | version | ms per window | vs scipy.fft | licence |', '| --- | --- | --- | --- | --- |']
    lines += [f"| {lib} | {result['versions'][lib]} | {ms:.2f} | {ms / base * 100:.0f} % | {LIBRARIES[lib]} |"
              for lib, ms in totals.items()]
    lines += ['', '| call | calls per window | ' + ' | '.join(libs) + ' |', '| --- | --- |' + ' --- |' * len(libs)]
    lines += [f"| {r['function']} {tuple(r['shape'])} {r['dtype']} | {r['calls_per_window']:.2f} | "
              + ' | '.join(f"{r['ms'][lib]:.3f}" for lib in libs) + ' |' for r in rows]
    publish_result(result, args.json, '\n'.join(lines), args.markdown, MARK_BEGIN, MARK_END)
    return 0


if __name__ == '__main__':
    sys.exit(main())
