#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Speed of the sonar front-end per window on one core, side by side with today's feature extractor
(the shipped model's `FeatureStack`), on the same windows of a dataset; and its walls' directions
side by side with pyroomacoustics' DOA (SRP-PHAT, MUSIC) run on the same echoes, range-gated.

The peers are given what the front-end has to find itself: each wall's echo gated (+-2 ms of the
compressed, direct-path-free signal) at its true arrival time; they then estimate its azimuth on a 1 deg
grid. The front-end's error is that of the walls it measured (its own range and direction).

    python benchmarks/bench_sonar.py --data data/default --json docs/bench_sonar.json --markdown docs/BENCHMARKS.md

``--markdown`` rewrites the generated block of docs/BENCHMARKS.md (between its SONAR markers) from the result.
``--against REV`` also times the front-end of git revision REV (its ``audio_vision`` exported to a temporary folder)
against this checkout's, each in its own process, interleaved round by round on the same windows: on a shared
machine whose speed drifts, only an interleaved comparison says which is faster. ``--paired REV`` pairs finer, in one
process: REV's ``audio_vision/sonar`` imported as a package of its own beside this checkout's (it reads this
checkout's core: the chirp, camera, frames), every window measured by both in turn, the order alternating by round,
and the per-window ratio of their CPU times summarised (several revisions: one pairing each). The machine's speed
drifts within a pass (up to 1.7x here), so a few per cent are only resolved that way: on the same code changes the
round-by-round comparison once read 10 % where the paired one read 1 %.
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import os
import re
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from audio_vision.core.features.stack import FeatureStack
from audio_vision.core.model.checkpoint import load_checkpoint
from audio_vision.dataset import DatasetReader
from audio_vision.paths import cpu_model, default_model_dir, rewrite_generated_block, source_commit
from audio_vision.sonar import WALL, LayoutEstimator, image_of, true_layout
from audio_vision.sonar.truth import MATCH_DEG, angle_deg, distance_along
from audio_vision.training.layout_eval import sonar_config_for


def timed(fn, windows, repeats: int) -> dict:
    """Wall-clock and process CPU time per call (ms): the CPU time is what the one thread spends, whatever else
    the machine runs."""
    fn(windows[0])                                           # warm-up (caches, allocations, compilation)
    wall, cpu = [], []
    for _ in range(repeats):
        for w in windows:
            t0, c0 = time.perf_counter(), time.process_time()
            fn(w)
            wall.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
    ms, cpu_ms = 1000.0 * np.asarray(wall), 1000.0 * np.asarray(cpu)
    return {'p50_ms': float(np.median(ms)), 'p90_ms': float(np.percentile(ms, 90)), 'mean_ms': float(ms.mean()),
            'cpu_p50_ms': float(np.median(cpu_ms)), 'n': len(wall)}


#: the front-end's steps timed by :func:`phases`: LayoutEstimator method -> what it does
PHASES = {'field': 'matched filter, emission time, direct path, gate', '_vertical': 'floor and ceiling',
          '_walls': 'walls', '_reflectors': 'residual reflectors'}


#: the compiled work the front-end calls (sonar/kernels.py, the FFTs): module -> names, timed by :func:`phases`
COMPILED = {'audio_vision.sonar.echoes': ('steered_sum', 'backproject', 'backproject_envelope', 'arrival_phases',
                                          'shifted_sum', 'remove_arrivals', 'remove_arrivals_each_mic'),
            'audio_vision.sonar.layout': ('cfar_ratio', 'local_maxima', 'refine_walls')}


class _TimedFFT:
    """``scipy.fft`` as the front-end calls it (``sfft.rfft`` / ``fft`` / ``ifft``), each call timed."""

    def __init__(self, fft, record):
        self._fft, self._record = fft, record

    def __getattr__(self, name):
        return self._record(getattr(self._fft, name))


def phases(estimator: LayoutEstimator, windows) -> dict:
    """Mean CPU ms per window of each step of ``estimate`` (:data:`PHASES`, the rest: explaining the box's
    second-order images and bookkeeping), and of that the part spent in compiled work (:data:`COMPILED`: the numba
    kernels and the FFTs; the remainder is the Python and numpy between them): {'steps': ..., 'compiled': ...}. The
    steps' methods are wrapped on this instance only, the kernels in their modules for the run's duration."""
    import importlib
    spent, compiled = dict.fromkeys(PHASES, 0.0), dict.fromkeys([*PHASES, 'rest'], 0.0)
    current = ['rest']

    def wrap(name):
        method = getattr(estimator, name)

        def timed_method(*args, **kwargs):
            c0 = time.process_time()
            current.append(name)
            try:
                return method(*args, **kwargs)
            finally:
                current.pop()
                spent[name] += time.process_time() - c0
        return timed_method

    def record(fn):
        def timed_kernel(*args, **kwargs):
            c0 = time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                compiled[current[-1]] += time.process_time() - c0
        return timed_kernel

    originals = []
    for module_name, names in COMPILED.items():
        module = importlib.import_module(module_name)
        for name in names:
            originals.append((module, name, getattr(module, name)))
            setattr(module, name, record(getattr(module, name)))
    echoes = importlib.import_module('audio_vision.sonar.echoes')
    originals.append((echoes, 'sfft', echoes.sfft))
    echoes.sfft = _TimedFFT(echoes.sfft, record)
    for name in PHASES:
        setattr(estimator, name, wrap(name))
    try:
        estimator.estimate(windows[0])
        spent.update(dict.fromkeys(PHASES, 0.0))
        compiled.update(dict.fromkeys(compiled, 0.0))
        c0 = time.process_time()
        for w in windows:
            estimator.estimate(w)
        total = time.process_time() - c0
    finally:
        for name in PHASES:
            delattr(estimator, name)
        for module, name, original in originals:
            setattr(module, name, original)
    steps = {name: 1000.0 * v / len(windows) for name, v in spent.items()}
    steps['rest'] = 1000.0 * total / len(windows) - sum(steps.values())
    return {'steps': steps, 'compiled': {name: 1000.0 * v / len(windows) for name, v in compiled.items()}}


def azimuth_deg(n: np.ndarray) -> float:
    return float(np.degrees(np.arctan2(n[1], n[0])))


def doa_peers(reader: DatasetReader, estimator: LayoutEstimator, n: int, max_range_m: float = 4.0,
              gate_s: float = 0.002, nfft: int = 64) -> dict:
    """Wall directions: the front-end's (walls it measured) and pyroomacoustics' SRP-PHAT and MUSIC on the
    same windows' wall echoes within ``max_range_m``, gated at their true arrival; errors (deg) and ms."""
    import pyroomacoustics as pra
    cfg = estimator.cfg
    grid = np.radians(np.arange(0.0, 360.0, 1.0))
    # A wall's echo arrives horizontally, so the mics' heights do not change its delays: the peers search the
    # horizontal plane (dim 2) with the array's x, y.
    peers = {name: pra.doa.algorithms[name](estimator.mics[:, :2].T, cfg.sample_rate * cfg.upsample, nfft,
                                            c=cfg.speed_of_sound, num_src=1, azimuth=grid, dim=2)
             for name in ('SRP', 'MUSIC')}
    errors = {name: [] for name in ('front_end', *peers)}
    seconds = {name: 0.0 for name in peers}
    for i in range(n):
        item = reader[i]
        truth = true_layout(item['camera_pose'], item['room_size'])
        layout = estimator.estimate(item['audio'])
        f = estimator.field(item['audio'])                          # direct path removed, nothing else
        signal = f.signal.real                   # (C, L) compressed, at fs x upsample, the emission at sample 0
        half = int(round(gate_s * f.rate))
        for wall in truth.get(WALL):
            if wall.offset > max_range_m:
                continue
            measured = [w for w in layout.get(WALL) if angle_deg(w.n, wall.n) <= MATCH_DEG
                        and abs(distance_along(w, wall.n) - wall.offset) <= 0.3]
            if measured:
                errors['front_end'].append(min(angle_deg(w.n, wall.n) for w in measured))
            arrival = f.delays(image_of(estimator.speaker, wall.n, wall.offset)[None])[0].mean()
            centre = int(round(arrival * f.rate))
            gated = np.take(signal, np.arange(centre - half, centre + half), axis=1, mode='wrap')   # (C, 2 half)
            frames = np.lib.stride_tricks.sliding_window_view(gated, nfft, axis=1)[:, ::nfft // 4]  # (C, S, nfft)
            stft = np.fft.rfft(frames * np.hanning(nfft), axis=-1).transpose(0, 2, 1)              # (C, F, S)
            for name, doa in peers.items():
                t0 = time.perf_counter()
                doa.locate_sources(stft, freq_range=[cfg.chirp_f_start, cfg.chirp_f_end])
                seconds[name] += time.perf_counter() - t0
                err = abs((np.degrees(doa.azimuth_recon[0]) - azimuth_deg(wall.n) + 180.0) % 360.0 - 180.0)
                errors[name].append(float(err))
    echoes = len(errors['SRP'])
    out = {'windows': n, 'echoes': echoes, 'max_range_m': max_range_m, 'gate_s': gate_s}
    for name, e in errors.items():
        e = np.asarray(e)
        out[name] = {'median_deg': float(np.median(e)) if len(e) else None,
                     'p90_deg': float(np.percentile(e, 90)) if len(e) else None, 'n': int(len(e))}
        if name in seconds:
            out[name]['ms_per_echo'] = 1000.0 * seconds[name] / max(echoes, 1)
    return out


def least_disturbed_ms(data: Path, split: str, windows: int, passes: int) -> tuple[float, list[dict]]:
    """CPU ms per window of this process's ``LayoutEstimator`` (whichever ``audio_vision`` it imports): the mean of
    the least disturbed of ``passes`` passes over the split's first ``windows`` windows, after a warm-up; and the
    layouts it measured (``RoomLayout.to_dict``), to compare versions' outputs."""
    reader = DatasetReader(data, split)
    audio = [reader[i]['audio'] for i in range(min(windows, len(reader)))]
    estimator = LayoutEstimator(sonar_config_for(reader), reader.mic_positions)
    estimator.estimate(audio[0])
    per_pass, layouts = [], []
    for _ in range(passes):
        c0 = time.process_time()
        layouts = [estimator.estimate(w) for w in audio]
        per_pass.append(1000.0 * (time.process_time() - c0) / len(audio))
    return min(per_pass), [layout.to_dict() for layout in layouts]


def against_revisions(revisions: list[str], data: Path, split: str, windows: int, rounds: int = 3,
                      passes: int = 2) -> dict:
    """This checkout's front-end and each revision's, each timed in a fresh process (:func:`least_disturbed_ms`),
    interleaved over ``rounds`` rounds; per version its per-round figures and their median, and on how many of the
    windows its layouts equal this checkout's (every field, full precision)."""
    repo = Path(__file__).resolve().parent.parent
    runs = {'this checkout': [], **{rev: [] for rev in revisions}}
    layouts = {}
    with tempfile.TemporaryDirectory(prefix='bench_sonar_') as tmp:
        roots = {'this checkout': repo}
        for rev in revisions:
            roots[rev] = Path(tmp) / rev.replace('/', '_')
            roots[rev].mkdir()
            archive = subprocess.run(['git', '-C', str(repo), 'archive', rev, 'audio_vision'], check=True,
                                     capture_output=True).stdout
            subprocess.run(['tar', '-x', '-C', str(roots[rev])], input=archive, check=True)
        for _ in range(rounds):
            for name, root in roots.items():
                env = {**os.environ, 'PYTHONPATH': os.pathsep.join([str(root), os.environ.get('PYTHONPATH', '')])}
                out = subprocess.run([sys.executable, __file__, '--data', str(data), '--split', split, '--windows',
                                      str(windows), '--time-only', str(passes)], env=env, check=True,
                                     capture_output=True, text=True).stdout
                timed_root, ms, measured = out.strip().splitlines()[-3:]
                if Path(timed_root) != root.resolve():
                    raise RuntimeError(f'{name}: the child process imported audio_vision from {timed_root}, not {root}')
                runs[name].append(float(ms))
                layouts[name] = json.loads(measured)
    here = layouts['this checkout']
    return {'windows': windows, 'rounds': rounds, 'passes': passes,
            'versions': {name: {'cpu_ms_per_round': v, 'median_ms': float(np.median(v)),
                                'same_layouts': sum(a == b for a, b in zip(layouts[name], here))}
                         for name, v in runs.items()}}


def paired_against(revision: str, data: Path, split: str, windows: int, rounds: int = 4) -> dict:
    """This checkout's front-end against ``revision``'s ``audio_vision/sonar`` (imported as a package of its own, so
    it reads this checkout's core), in one process: each window measured by both in turn, the order alternating by
    round; the median and quartiles of the per-window CPU-time ratios (this / revision), each version's median ms,
    and on how many windows their layouts are equal (every field, full precision)."""
    repo = Path(__file__).resolve().parent.parent
    package = 'sonar_' + re.sub(r'\W', '_', revision)
    reader = DatasetReader(data, split)
    audio = [reader[i]['audio'] for i in range(min(windows, len(reader)))]
    cfg = sonar_config_for(reader)
    with tempfile.TemporaryDirectory(prefix='bench_sonar_') as tmp:
        archive = subprocess.run(['git', '-C', str(repo), 'archive', revision, 'audio_vision/sonar'], check=True,
                                 capture_output=True).stdout
        subprocess.run(['tar', '-x', '-C', tmp], input=archive, check=True)
        shutil.move(str(Path(tmp) / 'audio_vision' / 'sonar'), str(Path(tmp) / package))
        sys.path.insert(0, tmp)
        try:
            other = importlib.import_module(package)
        finally:
            sys.path.remove(tmp)
        theirs_fields = {f.name for f in dataclasses.fields(other.SonarConfig)}
        ours_fields = {f.name: f.default for f in dataclasses.fields(cfg)}
        unknown = [k for k in ours_fields if k not in theirs_fields and getattr(cfg, k) != ours_fields[k]]
        if unknown:
            raise ValueError(f'{revision} has no SonarConfig fields {unknown}, set for this dataset')
        estimators = {'this checkout': LayoutEstimator(cfg, reader.mic_positions),
                      revision: other.LayoutEstimator(
                          other.SonarConfig(**{k: getattr(cfg, k) for k in theirs_fields if k in ours_fields}),
                          reader.mic_positions)}
        same = sum(estimators['this checkout'].estimate(w).to_dict() == estimators[revision].estimate(w).to_dict()
                   for w in audio)                                        # also the warm-up (compilation)
        ms = {name: [] for name in estimators}
        for r in range(rounds):
            order = list(estimators.items())[::1 if r % 2 == 0 else -1]
            for w in audio:
                for name, estimator in order:
                    c0 = time.process_time()
                    estimator.estimate(w)
                    ms[name].append(1000.0 * (time.process_time() - c0))
        for name in [m for m in sys.modules if m == package or m.startswith(package + '.')]:
            del sys.modules[name]                  # the revision's modules do not outlive their folder
    ratio = np.array(ms['this checkout']) / np.array(ms[revision])
    return {'revision': revision, 'windows': len(audio), 'rounds': rounds, 'same_layouts': int(same),
            'median_ms': {name: float(np.median(v)) for name, v in ms.items()},
            'ratio_median': float(np.median(ratio)),
            'ratio_quartiles': [float(q) for q in np.percentile(ratio, [25, 75])]}


#: issue #21's budget for the front-end, ms per window on one core
BUDGET_MS = 10.0
MARK_BEGIN, MARK_END = '<!-- SONAR BEGIN (benchmarks/bench_sonar.py) -->', '<!-- SONAR END -->'


def budget_verdict(result: dict) -> str:
    """Whether the front-end keeps :data:`BUDGET_MS`, judged on every standalone pass of the run (the first, and the
    one after the pairings and the peers, ``sonar_front_end_after``): the machine's speed drifts between passes, so
    one pass under the budget is not enough. The pairings are not among them: each interleaves another revision's
    package, whose tables share the cache with this one's (they say which is faster, not how fast it runs alone)."""
    passes = [result['sonar_front_end']['p50_ms']]
    if 'sonar_front_end_after' in result:
        passes.append(result['sonar_front_end_after']['p50_ms'])
    under = sum(p <= BUDGET_MS for p in passes)
    spread = f'{passes[0]:.1f} ms' if len(passes) == 1 else f'{min(passes):.1f} - {max(passes):.1f} ms p50'
    if under == len(passes):
        return f'met (every standalone pass of this run: {under} of {len(passes)}, {spread})'
    if under:
        return (f'met by {under} of {len(passes)} standalone passes of this run ({spread}: the machine\'s speed drifts '
                'between them), so not met with a margin')
    return f'not met ({spread})'


def paragraph(result: dict) -> str:
    s, f = result['sonar_front_end'], result['feature_extractor']
    text = (f"`{result['command']}`, {result['machine']['torch_threads']} thread, {s['n']} timed windows, measured "
            f"{result['date']} at commit {result['commit']} on {result['machine']['cpu_model']} "
            f"(docs/bench_sonar.json): the front-end (`LayoutEstimator.estimate`) takes **{s['p50_ms']:.1f} ms p50** "
            f"({s['p90_ms']:.1f} ms p90) per window, {s['cpu_p50_ms']:.1f} ms of CPU time p50"
            + (f", and {result['sonar_front_end_after']['p50_ms']:.1f} ms p50 in a second standalone pass at the run's "
               "end" if 'sonar_front_end_after' in result else '')
            + f"; the shipped model's "
            f"feature extractor {f['p50_ms']:.0f} ms p50 ({f['cpu_p50_ms']:.0f} ms CPU) on the same windows; the "
            f"budget of {BUDGET_MS:g} ms is {budget_verdict(result)}.\n")
    steps = result.get('phases_cpu_ms')
    if steps:
        compiled = steps['compiled']
        text += ('\nWhere its CPU time goes (mean ms per window, the same windows; in brackets the part spent in the '
                 'compiled kernels and FFTs, the rest being the Python and numpy between them): ' + '; '.join(
                     f"{PHASES.get(name, 'the rest (explaining the box images, bookkeeping)')} {ms:.1f} "
                     f"({compiled[name]:.1f})" for name, ms in steps['steps'].items())
                 + f". In all {sum(compiled.values()):.1f} of {sum(steps['steps'].values()):.1f} ms compiled. "
                 '`--profile` lists the functions.\n')
    a = result.get('against')
    if a:
        versions = a['versions']
        here = versions['this checkout']['median_ms']
        text += (f"\nAgainst earlier revisions, each in its own process, interleaved over {a['rounds']} rounds on the "
                 f"first {a['windows']} windows (per round the least disturbed of {a['passes']} passes; median over "
                 "rounds): " + '; '.join(f"{name} {v['median_ms']:.1f} ms" for name, v in versions.items()) + '. '
                 + ' '.join(f"This checkout takes {here / v['median_ms']:.0%} of {name}'s time"
                            + (f"; their layouts are equal on {v['same_layouts']} of the {a['windows']} windows."
                               if 'same_layouts' in v else '.')
                            for name, v in versions.items() if name != 'this checkout') + '\n')
    for pa in result.get('paired', []):
        rev = pa['revision']
        text += (f"\nPaired against {rev} in one process ({rev}'s sonar package beside this checkout's; each of the "
                 f"first {pa['windows']} windows measured by both in turn, the order alternating over {pa['rounds']} "
                 f"rounds): this checkout takes {pa['ratio_median']:.1%} of {rev}'s CPU time per window (median of the "
                 f"per-window ratios; quartiles {pa['ratio_quartiles'][0]:.1%} - {pa['ratio_quartiles'][1]:.1%}; "
                 f"medians {pa['median_ms']['this checkout']:.1f} and {pa['median_ms'][rev]:.1f} ms); their layouts "
                 f"are equal on {pa['same_layouts']} of the {pa['windows']} windows.\n")
    d = result.get('doa')
    if d:
        def row(name, label):
            e = d[name]
            ms = f"{e['ms_per_echo']:.1f} ms per echo" if 'ms_per_echo' in e else 'its whole window above'
            return f"| {label} | {e['n']} | {e['median_deg']:.2f} | {e['p90_deg']:.2f} | {ms} |"
        text += ('\nWall directions on the same run\'s first ' + str(d['windows']) + ' windows (walls within '
                 f"{d['max_range_m']:g} m, {d['echoes']} echoes; the peers get each echo gated +-"
                 f"{1000 * d['gate_s']:g} ms at its true arrival, the front-end finds range and direction itself "
                 "and is scored on the walls it measured):\n\n| method | walls | median error (deg) | p90 (deg) | "
                 "time |\n|---|---|---|---|---|\n" + '\n'.join(
                     [row('front_end', 'front-end (`LayoutEstimator`)'), row('SRP', 'pyroomacoustics SRP-PHAT'),
                      row('MUSIC', 'pyroomacoustics MUSIC')]) + '\n')
    return text


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--data', type=Path, required=True)
    ap.add_argument('--split', default='test')
    ap.add_argument('--windows', type=int, default=20)
    ap.add_argument('--repeats', type=int, default=2)
    ap.add_argument('--doa-windows', type=int, default=100, help='windows for the direction peers (0: skip)')
    ap.add_argument('--profile', action='store_true',
                    help="only print where the front-end's time goes (cProfile, cumulative) on the windows")
    ap.add_argument('--against', nargs='*', default=[], metavar='REV',
                    help="also time these git revisions' front-end, interleaved with this checkout's")
    ap.add_argument('--paired', nargs='*', default=[], metavar='REV',
                    help="also pair these revisions' front-end with this checkout's, window by window in one process")
    ap.add_argument('--time-only', type=int, metavar='PASSES', help=argparse.SUPPRESS)   # --against's child
    ap.add_argument('--models', type=Path, default=default_model_dir())
    ap.add_argument('--json', type=Path)
    ap.add_argument('--markdown', type=Path, help='rewrite the generated block of this Markdown file')
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    if args.time_only:
        import audio_vision
        print(Path(audio_vision.__file__).resolve().parent.parent)          # which checkout this process timed
        ms, layouts = least_disturbed_ms(args.data, args.split, args.windows, args.time_only)
        print(ms)
        print(json.dumps(layouts))
        return 0
    reader = DatasetReader(args.data, args.split)
    windows = [reader[i]['audio'] for i in range(min(args.windows, len(reader)))]
    estimator = LayoutEstimator(sonar_config_for(reader), reader.mic_positions)
    if args.profile:
        import cProfile
        import pstats
        estimator.estimate(windows[0])
        with cProfile.Profile() as prof:
            for w in windows:
                estimator.estimate(w)
        pstats.Stats(prof).sort_stats('cumulative').print_stats(20)
        return 0
    spec = load_checkpoint(args.models / 'depth.pt', expect={'modality': 'depth'}).spec
    features = FeatureStack(spec.features, spec.array.mic_positions)

    def extract(w):
        with torch.inference_mode():
            features(torch.from_numpy(w[None, :, :spec.features.window_samples]))

    result = {'sonar_front_end': timed(estimator.estimate, windows, args.repeats),
              'feature_extractor': timed(extract, windows, args.repeats),
              'phases_cpu_ms': phases(estimator, windows),
              'machine': {'cpu': platform.processor() or platform.machine(), 'cpu_model': cpu_model(),
                          'python': platform.python_version(), 'torch_threads': torch.get_num_threads()},
              'commit': source_commit(), 'date': time.strftime('%Y-%m-%d'),
              'command': 'python benchmarks/bench_sonar.py ' + ' '.join(argv if argv is not None else sys.argv[1:])}
    if args.against:
        result['against'] = against_revisions(args.against, args.data, args.split, args.windows)
    if args.paired:
        result['paired'] = [paired_against(rev, args.data, args.split, args.windows) for rev in args.paired]
    if args.doa_windows:
        result['doa'] = doa_peers(reader, estimator, min(args.doa_windows, len(reader)))
    result['sonar_front_end_after'] = timed(estimator.estimate, windows, args.repeats)     # a later standalone pass
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    if args.markdown:
        rewrite_generated_block(args.markdown, MARK_BEGIN, MARK_END, paragraph(result))
    return 0


if __name__ == '__main__':
    sys.exit(main())
