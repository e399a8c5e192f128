#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Write the 'Direction maps' and 'Input chunk size' sections of docs/BENCHMARKS.md from the JSON files
of benchmarks/bench_features.py and `benchmarks/bench_perception.py --graph-chunks` (every figure and
comparison computed).

    .venv/bin/python benchmarks/bench_sections.py docs/bench_features.json docs/bench_chunks.json
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / 'docs' / 'BENCHMARKS.md'
BUDGET_MS = 25.0          # issue 10: both modalities, default backend, p50
LATENCY_BUDGET_MS = 40.0  # issue 11: window end -> image received, p50


def features_section(data: dict) -> str:
    lines = ['| models | backend | depth p50 | segmentation p50 | both p50 | both p95 |',
             '| --- | --- | --- | --- | --- | --- |']
    both = {}
    for key in ('before', 'after'):
        run = data[key]
        backend = run['default_backend']
        row = run['perception'][backend]
        both[key] = row['both']['p50_ms']
        lines.append(f"| {key}: `{run['models']}` | {backend} | {row['depth']['p50_ms']:.1f} ms | "
                     f"{row['segmentation']['p50_ms']:.1f} ms | {row['both']['p50_ms']:.1f} ms | "
                     f"{row['both']['p95_ms']:.1f} ms |")
    verdict = (f"Both modalities together: {both['after']:.1f} ms p50 with the direction maps against "
               f"{both['before']:.1f} ms before ({both['after'] - both['before']:+.1f} ms); "
               f"the {BUDGET_MS:g} ms budget "
               f"is {'met' if both['after'] <= BUDGET_MS else '**not met**'}.")
    return (f"## Direction maps: latency before and after\n\n`{data['command']}` ({data['date']}, {data['machine']}; "
            f"`docs/bench_features.json`), batch 1, the default backend, the shipped models of both revisions in one "
            f"run:\n\n" + '\n'.join(lines) + '\n\n' + verdict + '\n')


def chunks_section(data: dict) -> str:
    runs = data.get('graph_latency_by_chunk') or {}
    lines = ['| input chunk | window end -> image received p50 | p95 | process CPU |', '| --- | --- | --- | --- |']
    best = None
    for chunk, r in sorted(runs.items(), key=lambda kv: -int(kv[0])):
        if 'p50' not in r:
            lines.append(f"| {chunk} samples | {r.get('error', 'no result')} | | |")
            continue
        lines.append(f"| {chunk} samples ({r['chunk_ms']} ms) | {r['p50']:.1f} ms | {r['p95']:.1f} ms | "
                     f"{r['process_cpu'] * 100:.0f} % |")
        if r['p50'] <= LATENCY_BUDGET_MS and (best is None or int(chunk) > int(best)):
            best = chunk
    verdict = (f"The largest chunk meeting the {LATENCY_BUDGET_MS:g} ms p50 target here: {best} samples."
               if best else f"No chunk size met the {LATENCY_BUDGET_MS:g} ms p50 target on this run.")
    machine = data.get('machine', {})
    command = data.get('command', 'python benchmarks/bench_perception.py --graph-chunks ...')
    return (f"## Input chunk size and latency\n\n`{command}`"
            f" ({data.get('date', '')[:10]}, load average at the end {machine.get('load_average_at_end')}; "
            f"`docs/bench_chunks.json`): the composed graph (simulator + perception, shipped models) at each chunk "
            f"size:\n\n" + '\n'.join(lines) + '\n\n' + verdict + '\n')


def replace_section(doc: str, title: str, body: str) -> str:
    pattern = re.compile(rf'^## {re.escape(title)}\n.*?(?=^## |\Z)', re.S | re.M)
    if pattern.search(doc):
        return pattern.sub(lambda _: body + '\n', doc)
    anchor = doc.find('\n## Robustness tests')
    return doc[:anchor + 1] + body + '\n' + doc[anchor + 1:] if anchor >= 0 else doc + '\n' + body


def main(argv: list[str]) -> int:
    doc = DOC.read_text()
    features, chunks = (Path(a) for a in argv[:2])
    if features.is_file():
        doc = replace_section(doc, 'Direction maps: latency before and after',
                              features_section(json.loads(features.read_text())))
    if chunks.is_file():
        doc = replace_section(doc, 'Input chunk size and latency', chunks_section(json.loads(chunks.read_text())))
    DOC.write_text(doc)
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:] or ['docs/bench_features.json', 'docs/bench_chunks.json']))
