#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Speed of the sonar front-end per window on one core, side by side with today's feature extractor
(the shipped model's `SpectrogramFeatures`), on the same windows of a dataset.

    python benchmarks/bench_sonar.py --data data/default --json docs/bench_sonar.json --markdown docs/BENCHMARKS.md

``--markdown`` rewrites the generated block of docs/BENCHMARKS.md (between its SONAR markers) from the result.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

from audio_vision.core.checkpoint import load_checkpoint
from audio_vision.core.features import SpectrogramFeatures
from audio_vision.dataset import DatasetReader
from audio_vision.paths import cpu_model, default_model_dir, rewrite_generated_block, source_commit
from audio_vision.sonar import LayoutEstimator
from audio_vision.training.layout_eval import sonar_config_for


def timed(fn, windows, repeats: int) -> dict:
    fn(windows[0])                                           # warm-up (caches, allocations)
    times = []
    for _ in range(repeats):
        for w in windows:
            t0 = time.perf_counter()
            fn(w)
            times.append(time.perf_counter() - t0)
    ms = 1000.0 * np.asarray(times)
    return {'p50_ms': float(np.median(ms)), 'p90_ms': float(np.percentile(ms, 90)), 'mean_ms': float(ms.mean()),
            'n': len(times)}


#: issue #21's budget for the front-end, ms per window on one core
BUDGET_MS = 10.0
MARK_BEGIN, MARK_END = '<!-- SONAR BEGIN (benchmarks/bench_sonar.py) -->', '<!-- SONAR END -->'


def paragraph(result: dict) -> str:
    s, f = result['sonar_front_end'], result['feature_extractor']
    verdict = 'met' if s['p50_ms'] <= BUDGET_MS else 'not met'
    return (f"`{result['command']}`, {result['machine']['torch_threads']} thread, {s['n']} timed windows, measured "
            f"{result['date']} at commit {result['commit']} on {result['machine']['cpu_model']} "
            f"(docs/bench_sonar.json): the front-end (`LayoutEstimator.estimate`) takes **{s['p50_ms']:.0f} ms p50** "
            f"({s['p90_ms']:.0f} ms p90) per window, the shipped model's feature extractor {f['p50_ms']:.0f} ms p50 "
            f"on the same windows; the budget of {BUDGET_MS:g} ms is {verdict}.\n")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--data', type=Path, required=True)
    ap.add_argument('--split', default='test')
    ap.add_argument('--windows', type=int, default=20)
    ap.add_argument('--repeats', type=int, default=2)
    ap.add_argument('--models', type=Path, default=default_model_dir())
    ap.add_argument('--json', type=Path)
    ap.add_argument('--markdown', type=Path, help='rewrite the generated block of this Markdown file')
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    reader = DatasetReader(args.data, args.split)
    windows = [reader[i]['audio'] for i in range(min(args.windows, len(reader)))]
    estimator = LayoutEstimator(sonar_config_for(reader), reader.mic_positions)
    spec = load_checkpoint(args.models / 'depth.pt', expect={'modality': 'depth'}).spec
    features = SpectrogramFeatures(spec.features, spec.array.mic_positions)

    def extract(w):
        with torch.inference_mode():
            features(torch.from_numpy(w[None, :, :spec.features.window_samples]))

    result = {'sonar_front_end': timed(estimator.estimate, windows, args.repeats),
              'feature_extractor': timed(extract, windows, args.repeats),
              'machine': {'cpu': platform.processor() or platform.machine(), 'cpu_model': cpu_model(),
                          'python': platform.python_version(), 'torch_threads': torch.get_num_threads()},
              'commit': source_commit(), 'date': time.strftime('%Y-%m-%d'),
              'command': 'python benchmarks/bench_sonar.py ' + ' '.join(argv if argv is not None else sys.argv[1:])}
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    if args.markdown:
        rewrite_generated_block(args.markdown, MARK_BEGIN, MARK_END, paragraph(result))
    return 0


if __name__ == '__main__':
    sys.exit(main())
