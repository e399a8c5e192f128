# SPDX-License-Identifier: Apache-2.0
"""Cost and size of the body echoes (docs/SIMULATOR.md, "Bodies"): JSON to stdout and --out.

    nice -n 15 .venv/bin/python benchmarks/bench_body_scattering.py --out docs/bench_body_scattering.json

Measures CPU time (process_time, so other jobs on a shared machine count less) per dataset
window with `recording.body_scattering` on and off, interleaved over the same windows, and the
time of `body_rirs` alone; plus how strong the chirp's body echoes are against the direct chirp.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from audio_vision.simulation import SimConfig, Simulator  # noqa: E402
from audio_vision.simulation.acoustics import body_echo_paths, body_rirs  # noqa: E402
from audio_vision.simulation.dataset import make_sample  # noqa: E402


def bench_windows(n: int, seed: int, rounds: int) -> dict:
    """CPU s per dataset window, scattering on vs off, same windows, alternating rounds."""
    cfg = SimConfig()
    off = dataclasses.replace(cfg, recording=dataclasses.replace(cfg.recording, body_scattering=False))
    sims = {'on': Simulator(cfg), 'off': Simulator(off)}
    for sim in sims.values():
        make_sample(sim, seed, 0)                                   # warm caches (materials, filters)
    cpu = {'on': [], 'off': []}
    for _ in range(rounds):
        for name, sim in sims.items():
            t0 = time.process_time()
            for i in range(n):
                make_sample(sim, seed, i)
            cpu[name].append((time.process_time() - t0) / n)
    on, off_s = float(np.median(cpu['on'])), float(np.median(cpu['off']))
    return {'windows': n, 'rounds': rounds, 'cpu_s_per_window_on': round(on, 4),
            'cpu_s_per_window_off': round(off_s, 4), 'overhead_fraction': round(on / off_s - 1.0, 3),
            'windows_per_cpu_s_on': round(1.0 / on, 1), 'windows_per_cpu_s_off': round(1.0 / off_s, 1)}


def bench_body_rirs(n_scenes: int) -> dict:
    sim = Simulator()
    scenes = [s for s in (sim.sample_scene(k) for k in range(n_scenes)) if s.sources]
    args = [(np.array([p for _, p in sim.emitters(s)]).reshape(-1, 3), sim.mic_positions_room(s),
             sim.scatterers(s)) for s in scenes]
    t0 = time.process_time()
    for e, m, b in args:
        body_rirs(e, m, b, sim.sample_rate, 343.0, 0.01)
    ms = 1000.0 * (time.process_time() - t0) / max(len(args), 1)
    # Chirp echo strength: strongest body echo vs the direct chirp (amplitude 1/|mic - speaker|).
    ratios_db, with_echo = [], 0
    for s, (e, m, b) in zip(scenes, args):
        _, _, amp = body_echo_paths(e[:1], m, b)
        direct = 1.0 / np.linalg.norm(m - e[0], axis=-1)                      # (M,)
        best = amp[0].max(axis=-1)                                           # (M,) strongest body
        if (best > 0).any():
            with_echo += 1
            ratios_db.append(float(np.median(20 * np.log10(best[best > 0] / direct[best > 0]))))
    return {'scenes_with_bodies': len(args), 'body_rirs_cpu_ms_per_scene': round(ms, 3),
            'scenes_with_a_chirp_body_echo': with_echo,
            'strongest_chirp_body_echo_re_direct_db': {
                'p10': round(float(np.percentile(ratios_db, 10)), 1),
                'median': round(float(np.median(ratios_db)), 1),
                'p90': round(float(np.percentile(ratios_db, 90)), 1)} if ratios_db else None}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--n', type=int, default=40, help='dataset windows per round')
    p.add_argument('--rounds', type=int, default=3)
    p.add_argument('--scenes', type=int, default=300, help='scenes for the body_rirs timing and echo levels')
    p.add_argument('--seed', type=int, default=1)
    p.add_argument('--out', type=Path, default=None, help='also write the JSON here')
    a = p.parse_args(argv)
    result = {'command': 'benchmarks/bench_body_scattering.py ' + ' '.join(sys.argv[1:]),
              'date': date.today().isoformat(), 'machine': f'{platform.machine()} {os.cpu_count()} CPUs',
              'python': platform.python_version(), 'numpy': np.__version__,
              'load_average_1min': round(os.getloadavg()[0], 2),
              'windows': bench_windows(a.n, a.seed, a.rounds), 'body_rirs': bench_body_rirs(a.scenes)}
    text = json.dumps(result, indent=1)
    print(text)
    if a.out is not None:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(text + '\n', encoding='utf-8')
    return 0


if __name__ == '__main__':
    sys.exit(main())
