#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Perception latency of the shipped models next to the models of an earlier revision (by default the
last one before the direction maps), in one run: the default backend, batch 1, both modalities.

    .venv/bin/python benchmarks/bench_features.py --old-rev 0b2b443 --json docs/bench_features.json
"""
from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FILES = ('depth.pt', 'segmentation.pt')


def bench(model_dir: Path, windows: int, out: Path) -> dict:
    from audio_vision.core.inference.backends import resolve_backend
    subprocess.run([sys.executable, str(ROOT / 'benchmarks' / 'bench_perception.py'), '--model-dir', str(model_dir),
                    '--backends', resolve_backend(None), '--skip', 'stages,baseline,rss,graph,simulator,training',
                    '--windows', str(windows),
                    '--json', str(out)], check=True, cwd=ROOT)
    return json.loads(out.read_text())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--old-rev', default='0b2b443', help='git revision whose models/ is the "before"')
    ap.add_argument('--windows', type=int, default=200)
    ap.add_argument('--json', type=Path, default=ROOT / 'docs' / 'bench_features.json')
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        old = Path(tmp) / 'old'
        old.mkdir()
        for name in FILES:
            blob = subprocess.run(['git', 'show', f'{args.old_rev}:models/{name}'], cwd=ROOT, check=True,
                                  capture_output=True).stdout
            (old / name).write_bytes(blob)
        result = {'before': {'models': f'{args.old_rev}:models', **bench(old, args.windows, Path(tmp) / 'a.json')},
                  'after': {'models': 'models', **bench(ROOT / 'models', args.windows, Path(tmp) / 'b.json')}}
    result['machine'] = f'{platform.machine()}, {platform.python_version()}'
    result['date'] = date.today().isoformat()
    result['command'] = f'python benchmarks/bench_features.py --old-rev {args.old_rev} --windows {args.windows}'
    args.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == '__main__':
    sys.exit(main())
