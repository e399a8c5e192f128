# SPDX-License-Identifier: Apache-2.0
"""Perception benchmark: the same as `python -m audio_vision bench` (see audio_vision/commands/bench.py).

    .venv/bin/python benchmarks/bench_perception.py --backends all --json docs/benchmarks.json
    .venv/bin/python benchmarks/bench_report.py docs/benchmarks.json     # the tables of docs/BENCHMARKS.md

Run it once, on a machine nobody else is loading if you want comparable numbers: the full run takes
a few minutes on 2 cores (torch.compile adds ~2 min of compilation with --backends all).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from audio_vision.cli import UserError  # noqa: E402
from audio_vision.commands import bench  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=bench.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    bench.add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return bench.run(args)
    except UserError as exc:
        print(f'bench_perception: error: {exc}', file=sys.stderr)
        return 2


if __name__ == '__main__':
    sys.exit(main())
