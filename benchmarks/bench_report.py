# SPDX-License-Identifier: Apache-2.0
"""Render the JSON of `benchmarks/bench_perception.py --json FILE` as the Markdown tables of docs/BENCHMARKS.md.

Usage:
    .venv/bin/python benchmarks/bench_report.py docs/benchmarks.json
    .venv/bin/python benchmarks/bench_report.py --perception-only docs/benchmarks_loaded.json
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from audio_vision.paths import busy_at_start

sys.path.insert(0, str(Path(__file__).resolve().parent))        # machine_speed.py beside us
from machine_speed import reference_text  # noqa: E402


def fmt(v, digits=1):
    if v is None:
        return '–'
    if isinstance(v, float):
        return f'{v:.{digits}f}'
    return str(v)


def busy(machine: dict) -> str:
    """' (other jobs were running)' where the 1-minute load average at the start says so (at least one core busy
    before the benchmark began), else ''."""
    return ' (other jobs were running)' if busy_at_start(machine) else ''


def report(r: dict, perception_only: bool = False) -> str:
    out = []
    m = r['machine']
    out.append(f"Measured {r['date']} with `{r['command']}` (git {m.get('git_commit')}), {r['elapsed_s']:.0f} s.")
    out.append(f"Machine: {m.get('cpu')}, {m.get('cpus')} CPUs ({m.get('cpu_capability')}), "
               f"{m.get('memory_gb')} GB; {m.get('platform')}; Python {m.get('python')}, torch {m.get('torch')}, "
               f"numpy {m.get('numpy')}, onnxruntime {m.get('onnxruntime')}. Load average at start "
               f"{m.get('load_average_at_start')}, at end {m.get('load_average_at_end')}{busy(m)}"
               f"{reference_text(m)}.")
    model = r['model']
    out.append(f"Model: {model['source']} ({model['model_id']}), window {model['window_s']} s, hop {model['hop_s']} s, "
               f"features {' x '.join(map(str, model['feature_shape']))}. Batch {r['batch']}, "
               f"{r['threads']} torch threads.\n")
    if 'perception' in r:
        out.append('| backend | depth p50 | segmentation p50 | both p50 | both p95 | both p99 | both CPU p50 | '
                   'RTF (p50 / hop) | build (s) | equivalent to eager |')
        out.append('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |')
        for b, row in r['perception'].items():
            if 'both' not in row:
                out.append(f'| {b} | failed: {row.get("error")} | | | | | | | | |')
                continue
            name = f'**{b}** (default)' if b == r['default_backend'] else b
            eq = row['equivalence']
            out.append(f"| {name} | {fmt(row['depth']['p50_ms'])} | {fmt(row['segmentation']['p50_ms'])} | "
                       f"{fmt(row['both']['p50_ms'])} | {fmt(row['both']['p95_ms'])} | {fmt(row['both']['p99_ms'])} | "
                       f"{fmt(row['both']['cpu_p50_ms'])} | {fmt(r['real_time_factor_by_backend'][b], 3)} | "
                       f"{fmt(row['build_s'])} | {'yes' if eq['equivalent'] else 'NO'} "
                       f"(labels {100 * eq['label_agreement_min']:.2f} %, "
                       f"depth ≤ {eq['depth_max_abs_diff_m']:.1e} m) |")
        base = r.get('end_to_end_baseline')
        if base:
            for b in [k for k in base if isinstance(base[k], dict) and 'p50_ms' in base[k]]:
                row = base[b]
                out.append(f"| end-to-end baseline, {b} | | | {fmt(row['p50_ms'])} | {fmt(row['p95_ms'])} | "
                           f"{fmt(row['p99_ms'])} | {fmt(row['cpu_p50_ms'])} | "
                           f"{fmt(row['p50_ms'] / 1e3 / model['hop_s'], 3)} | | ({base['source']}) |")
        cmp = r.get('perception_compared')
        if cmp and 'both' in cmp.get(r['default_backend'], {}):
            row = cmp[r['default_backend']]
            out.append(f"| compared: {cmp['model_id']} ({cmp['dir']}), {r['default_backend']} | "
                       f"{fmt(row['depth']['p50_ms'])} | {fmt(row['segmentation']['p50_ms'])} | "
                       f"{fmt(row['both']['p50_ms'])} | {fmt(row['both']['p95_ms'])} | {fmt(row['both']['p99_ms'])} | "
                       f"{fmt(row['both']['cpu_p50_ms'])} | {fmt(row['both']['p50_ms'] / 1e3 / model['hop_s'], 3)} | "
                       f"{fmt(row['build_s'])} | features {' x '.join(map(str, cmp['feature_shape']))} |")
        out.append('')
        out.append('Latencies in ms per analysis window (1 s of 8-channel audio), `AudioToVision.predict` '
                   '(features + networks + decoding to images).')
        out.append(f"\nDefault backend: **{r['default_backend']}**; fastest equivalent backend in this run: "
                   f"{r.get('fastest_equivalent_backend')}. Windows/s (default, sequential): {r.get('windows_per_s')}; "
                   f"real-time factor at the {model['hop_s']} s hop: {r.get('real_time_factor')} "
                   f"(p95: {r.get('real_time_factor_p95')}).\n")
    if perception_only:
        return '\n'.join(out) + '\n'
    if 'stages_ms' in r:
        st = r['stages_ms']
        out.append('Where the time goes: eager modules on one single-threaded worker (as in the -parallel '
                   'backends), p50 thread CPU (wall) in ms:\n')
        out.append('| stage | depth | segmentation |')
        out.append('| --- | ---: | ---: |')

        def cell(key):
            v = st.get(key)
            if v is None:
                return '–'
            return f"{v['cpu_p50_ms']:.2f} ({v['p50_ms']:.2f})" if isinstance(v, dict) else fmt(v, 2)
        for k in [k for k in st if k.startswith('features')]:
            out.append(f'| {k.replace("_", " ")} (shared) | {cell(k)} | |')
        for stage in ('atnet_encoder', 'atnet_mlp', 'atnet_manifold_decoder', 'quantize', 'vqvae_decoder',
                      'codec_decode'):
            out.append(f"| {stage.replace('_', ' ')} | {cell('depth_' + stage)} | {cell('segmentation_' + stage)} |")
        out.append('')
    g = r.get('graph_latency_ms')
    if g and 'p50' in g:
        out.append(f"Composed graph (simulator_node → perception_node, real DDS, {g['seconds']:.0f} s real time, "
                   f"backend {g['backend']}, chunks of {g['chunk_samples']} samples = {g['chunk_ms']} ms): window end "
                   f"stamp → output received p50 **{g['p50']} ms**, p95 {g['p95']} ms, p99 {g['p99']} ms "
                   f"({g['received']} images); window end → publish p50 {g['publish_p50']} ms, "
                   f"p95 {g['publish_p95']} ms; "
                   f"inference in the node p50 {g['inference_p50']} ms; {g['windows']} windows, "
                   f"{g['dropped_windows']} dropped.\n")
    extra = []
    if 'peak_rss_mb' in r:
        extra.append(f"| peak RSS of a perception process ({r['default_backend']}) | {r['peak_rss_mb']} MB |")
        for b, v in r.get('rss', {}).items():
            if 'peak_rss_mb' in v:
                extra.append(f"| peak RSS, {b} (after imports / after load / peak) | {v['after_imports_mb']} / "
                             f"{v['after_load_mb']} / {v['peak_rss_mb']} MB |")
    for mod, p in model.get('parameters', {}).items():
        extra.append(f"| parameters, {mod} (AT-net / VQ-VAE decoder + codebook / inference total) | "
                     f"{p['atnet']:,} / {p['vqvae_decoder'] + p['codebook']:,} / {p['inference_total']:,} |")
    base = r.get('end_to_end_baseline', {})
    for mod, n in base.get('parameters', {}).items():
        extra.append(f'| parameters, end-to-end baseline {mod} | {n:,} |')
    for name, mb in model.get('checkpoint_mb', {}).items():
        extra.append(f'| checkpoint {name} | {mb} MB |')
    s = r.get('simulator')
    if s and 'real_time_factor' in s:
        extra.append(f"| simulator record real-time factor ({s['record_duration_s']} s, mean of 3) | "
                     f"{s['real_time_factor']} |")
        extra.append(f"| dataset generation ({s['dataset_samples']} samples, {s['dataset_workers']} workers) | "
                     f"{s['dataset_samples_per_s']} samples/s |")
    for k, v in r.get('training', {}).items():
        extra.append(f"| training {k.replace('_', ' ')} (batch {v['batch']}) | {v['samples_per_s']} samples/s "
                     f"({v['step_ms']} ms/step) |")
    if extra:
        out.append('| quantity | value |')
        out.append('| --- | --- |')
        out += extra
    return '\n'.join(out) + '\n'


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    perception_only = '--perception-only' in argv
    paths = [a for a in argv if not a.startswith('--')] or ['docs/benchmarks.json']
    for path in paths:
        print(report(json.loads(Path(path).read_text()), perception_only))
    return 0


if __name__ == '__main__':
    sys.exit(main())
