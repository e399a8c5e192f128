# SPDX-License-Identifier: Apache-2.0
"""Simulator benchmark: dataset throughput, record() real-time factor, RT60 and level ranges.

    .venv/bin/python benchmarks/bench_simulator.py                 # JSON on stdout
    .venv/bin/python benchmarks/bench_simulator.py --figures docs/figures   # + example GT PNGs

Keep it short on shared machines: defaults take well under a minute on 2 cores.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from audio_vision.simulation import SimConfig, Simulator  # noqa: E402
from audio_vision.simulation.dataset import generate_dataset  # noqa: E402
from audio_vision.simulation.simulator import level_dbfs  # noqa: E402


def bench_dataset(cfg: SimConfig, n: int, workers: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        generate_dataset(Path(tmp) / 'bench', n, seed=0, cfg=cfg, workers=workers, progress=False)
        elapsed = time.perf_counter() - t0
    return {'n': n, 'workers': workers, 'seconds': round(elapsed, 2),
            'samples_per_s': round(n / elapsed, 2)}


def bench_record(sim: Simulator, duration_s: float, repeats: int) -> dict:
    rtf = []
    for seed in range(repeats):
        scene = sim.sample_scene(1000 + seed)
        t0 = time.perf_counter()
        sim.record(scene, duration_s, seed)
        rtf.append((time.perf_counter() - t0) / duration_s)
    return {'duration_s': duration_s, 'real_time_factor_mean': round(float(np.mean(rtf)), 4),
            'real_time_factor_max': round(float(np.max(rtf)), 4)}


def room_statistics(sim: Simulator, rooms: int, recordings: int) -> dict:
    rt60 = np.array([sim.sample_room(seed).rt60 for seed in range(rooms)])
    levels, peaks = [], []
    for seed in range(recordings):
        scene = sim.sample_scene(seed)
        audio = sim.record(scene, sim.cfg.recording.window_s, seed)
        levels.append(level_dbfs(audio))
        peaks.append(float(np.abs(audio).max()))
    return {'rooms': rooms, 'rt60_mid_s': {'min': round(float(rt60.min()), 3),
                                           'p10': round(float(np.percentile(rt60, 10)), 3),
                                           'median': round(float(np.median(rt60)), 3),
                                           'p90': round(float(np.percentile(rt60, 90)), 3),
                                           'max': round(float(rt60.max()), 3)},
            'recordings': recordings,
            'level_dbfs': {'min': round(min(levels), 1), 'max': round(max(levels), 1)},
            'peak_abs_max': round(max(peaks), 3)}


def write_figures(sim: Simulator, out: Path, seeds: list[int]) -> list[str]:
    """Example GT depth / segmentation PNGs (and the audio's spectrogram) for the docs."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    out.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(3, len(seeds), figsize=(2.6 * len(seeds), 7.4))
    palette = sim.class_table
    for col, seed in enumerate(seeds):
        scene = sim.sample_scene(seed)
        gt = sim.render(scene)
        audio = sim.record(scene, 1.0, seed)
        names = ', '.join(s.class_name for s in scene.sources) or 'no sources'
        ax = axes[0, col]
        im = ax.imshow(gt.depth, cmap='viridis')
        ax.set_title(f'seed {seed}: {names}\nRT60 {scene.room.rt60:.2f} s', fontsize=7)
        fig.colorbar(im, ax=ax, fraction=0.046, label='depth (m)')
        axes[1, col].imshow(palette.colorize(gt.segmentation))
        axes[2, col].specgram(audio[0], NFFT=256, Fs=sim.sample_rate, noverlap=192, cmap='magma')
        axes[2, col].set_xlabel('s', fontsize=7)
        for ax in axes[:2, col]:
            ax.set_xticks([])
            ax.set_yticks([])
    axes[1, 0].set_ylabel('segmentation')
    axes[2, 0].set_ylabel('mic 0 spectrogram (Hz)')
    handles = [plt.Rectangle((0, 0), 1, 1, color=np.array(c.color) / 255) for c in palette.classes]
    fig.legend(handles, palette.names, loc='lower center', ncol=len(handles), fontsize=8)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    path = out / 'simulator_examples.png'
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [str(path)]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--config', type=Path, help='simulation YAML (default: dataclass defaults)')
    p.add_argument('--n', type=int, default=200, help='dataset samples to generate (default 200)')
    p.add_argument('--workers', type=int, default=os.cpu_count() or 1)
    p.add_argument('--record-s', type=float, default=10.0, help='duration for the RTF measurement')
    p.add_argument('--rooms', type=int, default=500, help='rooms for the RT60 statistics')
    p.add_argument('--recordings', type=int, default=20, help='recordings for the level statistics')
    p.add_argument('--figures', type=Path, help='also write example PNGs into this directory')
    args = p.parse_args(argv)
    cfg = SimConfig.from_yaml(args.config) if args.config else SimConfig()
    sim = Simulator(cfg)
    result = {
        'date': date.today().isoformat(), 'machine': {'cpus': os.cpu_count(), 'platform': platform.platform(),
                                                      'processor': platform.processor() or platform.machine(),
                                                      'python': platform.python_version(),
                                                      'numpy': np.__version__},
        'command': 'benchmarks/bench_simulator.py ' + ' '.join(argv if argv is not None else sys.argv[1:]),
        'dataset': bench_dataset(cfg, args.n, args.workers),
        'dataset_single_worker': bench_dataset(cfg, max(args.n // 3, 4), 1),
        'record': bench_record(sim, args.record_s, 3),
        'statistics': room_statistics(sim, args.rooms, args.recordings),
    }
    if args.figures:
        result['figures'] = write_figures(sim, args.figures, [2, 4, 5, 11])
    print(json.dumps(result, indent=1))
    return 0


if __name__ == '__main__':
    sys.exit(main())
