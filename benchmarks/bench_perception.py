#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Benchmark the perception pipeline on this machine, every inference backend side by side.

Measures, in one run: perception latency per analysis window (p50/p95/p99, batch 1) for depth,
segmentation and both, per backend (audio_vision.core.inference.backends), with an output-equivalence check
against eager; windows/s and the real-time factor (latency / hop) of the default backend; per-stage
timings (features, AT-net encoder, MLP, manifold decoder, quantize, VQ-VAE decoder); the end-to-end
baseline's latency; parameter counts and checkpoint sizes; the peak RSS of a perception process;
the latency frame stamp -> output publish in the composed ROS graph (simulator + perception node);
the simulator's real-time factor and dataset samples/s (bench_simulator.py beside this file); training
samples/s per stage on random tensors of the real shapes.

Uses the models in --model-dir (default: the shipped models/); when they are absent, the default
architecture (config/train.yaml, config/simulation.yaml) with random weights -- speed does not depend on
the weights. Keep it to one run on a shared machine: the full run takes a few minutes.

  .venv/bin/python benchmarks/bench_perception.py --json docs/benchmarks.json
  .venv/bin/python benchmarks/bench_perception.py --backends eager,onnx-parallel --skip graph,training --windows 50
  .venv/bin/python benchmarks/bench_report.py docs/benchmarks.json     # the tables of docs/BENCHMARKS.md

A script of the source checkout, not part of the installed package (like every file in benchmarks/).
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
for _path in (str(REPO_ROOT), str(BENCH_DIR)):      # the package of this checkout; bench_simulator.py beside us
    if _path not in sys.path:
        sys.path.insert(0, _path)

from audio_vision.cli import UserError  # noqa: E402
from audio_vision.paths import source_commit  # noqa: E402
from machine_speed import reference_ms  # noqa: E402

SECTIONS = ('perception', 'stages', 'baseline', 'rss', 'graph', 'simulator', 'training')
MODES = ('depth', 'segmentation', 'both')


def add_arguments(parser):
    parser.add_argument('--json', metavar='FILE', help='write the results as JSON to FILE')
    parser.add_argument('--model-dir', default=None,
                        help='model directory (default: the shipped models; random weights of the default '
                             'architecture when they are absent)')
    parser.add_argument('--backends', default=None,
                        help="comma-separated backends to compare (default or 'all': every available one)")
    parser.add_argument('--windows', type=int, default=200, help='timed windows per backend and mode (default 200)')
    parser.add_argument('--threads', type=int, default=2, help='torch intra-op threads (default 2)')
    parser.add_argument('--graph-s', type=float, default=20.0,
                        help='seconds of real time the composed graph runs (default 20)')
    parser.add_argument('--sim-samples', type=int, default=60, help='dataset samples for the simulator rate')
    parser.add_argument('--skip', default='', help=f'comma-separated sections to skip: {",".join(SECTIONS)}')
    parser.add_argument('--graph-chunks', default='',
                        help="also run the graph with these simulator chunk sizes, side by side with the configured "
                             "one (e.g. '1024,512,256'): latency and process CPU per chunk size")
    parser.add_argument('--domain-id', type=int, default=79, help='ROS domain of the graph measurement (default 79)')
    parser.add_argument('--compare-model-dir', default=None, metavar='DIR',
                        help='also time the models in DIR with the default backend in the same run, side by side '
                             '(e.g. the previous default: git archive REV models | tar -x -C /tmp/previous)')
    parser.add_argument('--quick', action='store_true', help='tiny counts everywhere (smoke test)')


# ------------------------------------------------------------------------------------------ models

def default_specs(modalities=('depth', 'segmentation')):
    """The shipped model's specs (config/train.yaml + config/simulation.yaml), as the trainer builds them."""
    from audio_vision.core.model.checkpoint import ArrayGeometry
    from audio_vision.core.classes import DEFAULT_CLASS_TABLE
    from audio_vision.paths import config_dir
    from audio_vision.simulation import SimConfig, Simulator
    from audio_vision.training.config import TrainConfig
    from audio_vision.training.specs import modality_spec
    cfg = TrainConfig.from_yaml(config_dir() / 'train.yaml')
    sim = Simulator(SimConfig.from_yaml(config_dir() / 'simulation.yaml'))
    array = ArrayGeometry(int(sim.sample_rate), np.asarray(sim.mic_positions, np.float64))
    return {m: modality_spec(cfg, m, sim.camera, array, DEFAULT_CLASS_TABLE) for m in modalities}, cfg


def write_random_default_models(model_dir: Path, seed: int = 0) -> dict:
    """depth.pt, segmentation.pt and end_to_end_*.pt of the default architecture with random weights."""
    from audio_vision.training.specs import end_to_end_config
    import torch
    from audio_vision.core.model.baselines import EndToEnd, save_end_to_end
    from audio_vision.core.model.checkpoint import ModalityModel, save_checkpoint
    specs, cfg = default_specs()
    torch.manual_seed(seed)
    models = {}
    for m, spec in specs.items():
        models[m] = ModalityModel(spec).eval()
        save_checkpoint(Path(model_dir) / f'{m}.pt', models[m])
        save_end_to_end(Path(model_dir) / f'end_to_end_{m}.pt', EndToEnd(end_to_end_config(cfg, spec)).eval(), spec)
    return models


def resolve_models(model_dir: str | None, tmp: Path, log) -> tuple[Path, str]:
    from audio_vision.paths import default_model_dir
    d = Path(model_dir) if model_dir else default_model_dir()
    if all((d / f'{m}.pt').is_file() for m in ('depth', 'segmentation')):
        return d, 'trained'
    if model_dir:
        raise UserError(f'{d} does not hold depth.pt and segmentation.pt')
    log(f'no trained model in {d}: using the default architecture with random weights')
    write_random_default_models(tmp)
    return tmp, 'random weights, default architecture'


def as_modality_net(e2e):
    """Lets the backends run an EndToEnd baseline like a modality network (``quantize`` is ignored)."""
    from torch import nn

    class EndToEndNet(nn.Module):
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, features, quantize=True):
            return self.net(features)
    adapter = EndToEndNet(e2e).eval()
    adapter.encoding = e2e.encoding
    return adapter


# ------------------------------------------------------------------------------------------ timing

def time_calls(fn, inputs: list, n: int, warmup: int = 5, cpu_clock=time.process_time) -> dict:
    """Wall and CPU (``cpu_clock``: all threads of the process by default) milliseconds of ``fn(x)``."""
    for i in range(warmup):
        fn(inputs[i % len(inputs)])
    wall, cpu = [], []
    for i in range(n):
        x = inputs[i % len(inputs)]
        c0, t0 = cpu_clock(), time.perf_counter()
        fn(x)
        wall.append(time.perf_counter() - t0)
        cpu.append(cpu_clock() - c0)
    w = np.asarray(wall) * 1e3
    return {'p50_ms': round(float(np.percentile(w, 50)), 3), 'p95_ms': round(float(np.percentile(w, 95)), 3),
            'p99_ms': round(float(np.percentile(w, 99)), 3), 'mean_ms': round(float(w.mean()), 3),
            'min_ms': round(float(w.min()), 3), 'cpu_p50_ms': round(float(np.percentile(np.asarray(cpu) * 1e3, 50)), 3),
            'n': n}


def random_windows(num_channels: int, samples: int, k: int = 16, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [(0.1 * rng.normal(size=(num_channels, samples))).astype(np.float32) for _ in range(k)]


#: the bench's drive for a model that fuses the layout over it: the array this far further along a circle of this
#: radius at every window (0.4 m/s at the 0.25 s hop: a keyframe every few windows, 16 kept once it has gone round)
DRIVE_STEP_M, DRIVE_RADIUS_M = 0.1, 1.5


def drive_pose(k: int) -> np.ndarray:
    """The array's pose (4 x 4, odometry frame) at the bench drive's ``k``-th window: facing along the circle."""
    from audio_vision.core.frames import planar_pose
    a = k * DRIVE_STEP_M / DRIVE_RADIUS_M
    return planar_pose(DRIVE_RADIUS_M * np.cos(a), DRIVE_RADIUS_M * np.sin(a), 0.0, a + np.pi / 2)


def driving(pipe):
    """``pipe.predict`` as a robot driving calls it: with each window's pose along the bench drive when the model
    fuses the layout over the drive (``FeatureConfig.layout_fusion``), so its fusion is timed too."""
    if not pipe.fuses_layout:
        return pipe.predict
    calls = itertools.count()
    return lambda audio: pipe.predict(audio, drive_pose(next(calls)), 0)


def bench_perception(model_dir: Path, backends: list[str], n: int, log) -> dict:
    from audio_vision.core.inference.backends import compare_outputs
    from audio_vision.core.inference.pipeline import AudioToVision
    results = {}
    reference = None
    for b in backends:
        t0 = time.perf_counter()
        try:
            pipes = {'both': AudioToVision.load(model_dir, backend=b)}
        except Exception as exc:  # noqa: BLE001 - report the backend as failed, keep benchmarking
            results[b] = {'error': f'{type(exc).__name__}: {exc}'}
            log(f'  {b:24s} failed: {exc}')
            continue
        build_s = time.perf_counter() - t0
        pipes.update({m: AudioToVision.load(model_dir, modalities=(m,), backend=b) for m in ('depth', 'segmentation')})
        both = pipes['both']
        windows = random_windows(both.num_channels, both.window_samples)
        check = windows[:8]
        outputs = [both.predict(w) for w in check]
        if reference is None:
            ref_pipe = both if b == 'eager' else AudioToVision.load(model_dir, backend='eager')
            reference = [ref_pipe.predict(w) for w in check]
        verdicts = [compare_outputs(r, o) for r, o in zip(reference, outputs)]
        equivalence = {'equivalent': all(v['equivalent'] for v in verdicts), 'windows': len(verdicts),
                       'label_agreement_min': min(v['label_agreement'] for v in verdicts),
                       'depth_max_abs_diff_m': max(v['depth_max_abs_diff_m'] for v in verdicts)}
        row = {'build_s': round(build_s, 2), 'equivalence': equivalence}
        for mode in MODES:
            row[mode] = time_calls(driving(pipes[mode]), windows, n)
        results[b] = row
        log(f"  {b:24s} both p50 {row['both']['p50_ms']:7.2f} ms  p95 {row['both']['p95_ms']:7.2f}  "
            f"depth {row['depth']['p50_ms']:6.2f}  seg {row['segmentation']['p50_ms']:6.2f}  "
            f"cpu {row['both']['cpu_p50_ms']:6.2f}  equivalent={equivalence['equivalent']}")
        for p in pipes.values():
            p.close()
    return results


def bench_stages(model_dir: Path, n: int) -> dict:
    """Per-stage timings of one window on ONE single-threaded worker (as in the -parallel backends), eager
    modules: where the time of the computation goes. Wall p50 and thread-CPU p50 in ms."""
    import torch
    from audio_vision.core.inference.backends import Workers
    from audio_vision.core.model.atnet import split_input
    from audio_vision.core.inference.pipeline import AudioToVision
    # bodies not stood on the floor: that shares the front-end's measurements, and one window timed over and over
    # would be measured once
    pipe = AudioToVision.load(model_dir, backend='eager', bodies_on_floor=False)
    feats_mod = pipe.features
    x = torch.from_numpy(random_windows(pipe.num_channels, pipe.window_samples, 1)[0])[None]
    stages = {}
    spec = feats_mod.stft(x)
    stages['features_total'] = lambda: feats_mod(x)
    stages['features_stft'] = lambda: feats_mod.stft(x)
    if feats_mod.spectrogram.filterbank is not None:
        stages['features_mel'] = lambda: torch.einsum('mk,bckt->bcmt', feats_mod.spectrogram.filterbank,
                                                      spec.real.square() + spec.imag.square())
    if feats_mod.phase_differences is not None:
        stages['features_ipd'] = lambda: feats_mod.phase_differences(x, spec)
    if feats_mod.echo_beams is not None:
        stages['features_echogram'] = lambda: feats_mod.echo_beams(x)
    if feats_mod.direction_maps is not None:
        stages['features_direction_maps'] = lambda: feats_mod.direction_maps.channels(x)
    if feats_mod.layout_prior is not None:
        stages['features_layout_prior'] = lambda: feats_mod.layout_prior.channels(x)
    if pipe.fuses_layout:
        stages['layout_fusion_full_drive'] = full_drive_fusion(feats_mod.config)
    with torch.inference_mode():
        f = feats_mod(x)
        for m, model in pipe.models.items():
            at, vq = model.atnet, model.vqvae
            spectral, maps, prior = split_input(at.config, f)
            e = at.encoder(spectral)
            h = at.mlp(e)
            z = at.decode_manifold(h, maps, prior)
            q = vq.quantizer.lookup(vq.quantizer.nearest(z))
            o = vq.decoder(q)
            stages.update({
                f'{m}_atnet_encoder': lambda at=at, spectral=spectral: at.encoder(spectral),
                f'{m}_atnet_mlp': lambda at=at, e=e: at.mlp(e),
                f'{m}_atnet_manifold_decoder': lambda at=at, h=h, maps=maps, prior=prior: at.decode_manifold(
                    h, maps, prior),
                f'{m}_quantize': lambda vq=vq, z=z: vq.quantizer.lookup(vq.quantizer.nearest(z)),
                f'{m}_vqvae_decoder': lambda vq=vq, q=q: vq.decoder(q),
                f'{m}_codec_decode': lambda model=model, o=o: model.encoding.decode(o)})
    worker = Workers(1)
    try:
        out = {}
        for name, fn in stages.items():
            r = worker.submit(lambda fn=fn: time_calls(lambda _: fn(), [None], n, 3, time.thread_time)).result()
            out[name] = {'p50_ms': r['p50_ms'], 'cpu_p50_ms': r['cpu_p50_ms']}
        return out
    finally:
        worker.close()


def full_drive_fusion(config):
    """A call fusing one more window into a drive that holds all its keyframes, each a whole measured box (six
    planes: the most a window gives), the bench drive's poses in a 6 x 4 x 2.8 m room: the fusion's cost on a
    robot that has driven a while."""
    from audio_vision.core.frames import optical_pose
    from audio_vision.sonar import true_layout
    from audio_vision.sonar.fusion import DriveFusion
    fusion = DriveFusion(config.layout_fusion_keyframe_m, config.layout_fusion_keyframes)
    centre = np.eye(4)
    centre[:3, 3] = (3.0, 2.0, 0.6)
    poses = [centre @ drive_pose(k) for k in range(400)]
    windows = [(true_layout(optical_pose(T), (6.0, 4.0, 2.8)), T) for T in poses]
    calls = itertools.count()

    def fuse():
        layout, T = windows[next(calls) % len(windows)]
        return fusion.fuse(layout, T)
    for _ in range(200):
        fuse()
    return fuse


def bench_baseline(model_dir: Path, backends: list[str], n: int, source: str = 'trained') -> dict:
    """The end-to-end baseline (features -> encoder -> MLP -> image decoder), both modalities."""
    from audio_vision.training.specs import end_to_end_config
    import torch
    from audio_vision.core.inference.backends import build_backend
    from audio_vision.core.model.baselines import EndToEnd, load_end_to_end
    from audio_vision.core.features.stack import FeatureStack
    from audio_vision.core.model.encoding import make_encoding
    nets, spec = {}, None
    specs, cfg = default_specs()
    for m in ('depth', 'segmentation'):
        path = model_dir / f'end_to_end_{m}.pt'
        if path.is_file():
            nets[m], spec = load_end_to_end(path)
        else:
            spec, source = specs[m], 'random weights, default architecture'
            nets[m] = EndToEnd(end_to_end_config(cfg, spec)).eval()
            nets[m].encoding = make_encoding(m, len(spec.class_table))
    features = FeatureStack(spec.features, spec.array.mic_positions)
    windows = random_windows(spec.array.num_channels, spec.features.window_samples)
    out = {'source': source, 'parameters': {m: sum(p.numel() for p in net.parameters()) for m, net in nets.items()}}
    for b in backends:
        backend = build_backend(b, features, {m: as_modality_net(net) for m, net in nets.items()},
                                spec.array.num_channels)

        @torch.inference_mode()
        def predict(audio, backend=backend):
            return {m: r.numpy() for m, r in backend.images(torch.from_numpy(audio)[None]).items()}
        out[b] = time_calls(predict, windows, n)
        backend.close()
    return out


def model_footprint(model_dir: Path) -> dict:
    from audio_vision.core.model.checkpoint import load_checkpoint
    params, sizes = {}, {}
    for m in ('depth', 'segmentation'):
        model = load_checkpoint(model_dir / f'{m}.pt')
        count = lambda mod: sum(p.numel() for p in mod.parameters())  # noqa: E731
        params[m] = {'atnet': count(model.atnet), 'vqvae_decoder': count(model.vqvae.decoder),
                     'codebook': int(model.vqvae.quantizer.codebook.numel()),
                     'inference_total': count(model.atnet) + count(model.vqvae.decoder)
                     + int(model.vqvae.quantizer.codebook.numel()),
                     'checkpoint_total': count(model.atnet) + count(model.vqvae)}
    for path in sorted(model_dir.glob('*.pt')):
        sizes[path.name] = round(path.stat().st_size / 2 ** 20, 3)
    return {'parameters': params, 'checkpoint_mb': sizes}


# ------------------------------------------------------------------------------------------ processes

def _memory_mb() -> tuple[float, float]:
    """(current RSS, peak RSS) of this process in MB from /proc (VmHWM belongs to this process image;
    getrusage's ru_maxrss would also count the parent's pages at fork time)."""
    values = {}
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(('VmRSS:', 'VmHWM:')):
                key, kb = line.split(':')
                values[key] = int(kb.split()[0]) / 1024
    return round(values['VmRSS'], 1), round(values['VmHWM'], 1)


def rss_probe(model_dir: str, backend: str, n: int, threads: int) -> None:
    """Run in a fresh process: load the pipeline, run ``n`` windows, print its memory as JSON."""
    import torch
    torch.set_num_threads(threads)
    from audio_vision.core.inference.pipeline import AudioToVision
    imports, _ = _memory_mb()
    pipe = AudioToVision.load(model_dir, backend=backend or None)
    loaded, _ = _memory_mb()
    for w in random_windows(pipe.num_channels, pipe.window_samples, n):
        pipe.predict(w)
    current, peak = _memory_mb()
    print(json.dumps({'backend': pipe.backend_name, 'after_imports_mb': imports, 'after_load_mb': loaded,
                      'after_windows_mb': current, 'peak_rss_mb': peak}))


def bench_rss(model_dir: Path, backends: list[str], threads: int, n: int) -> dict:
    out = {}
    for b in backends:
        code = (f'import sys; sys.path.insert(0, {str(BENCH_DIR)!r}); from bench_perception import rss_probe; '
                f'rss_probe({str(model_dir)!r}, {b!r}, {n}, {threads})')
        proc = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=600,
                              env={**os.environ, 'PYTHONPATH': os.pathsep.join([str(REPO_ROOT)] + sys.path[1:])})
        lines = [x for x in proc.stdout.splitlines() if x.startswith('{')]
        out[b or 'default'] = json.loads(lines[-1]) if proc.returncode == 0 and lines else {
            'error': (proc.stderr.strip().splitlines() or ['?'])[-1]}
    return out


def bench_graph(model_dir: Path, backend: str, seconds: float, domain_id: int, log,
                chunk_samples: int | None = None) -> dict:
    """simulator_node -> perception_node in one process (audio_vision.ros.graph), real DDS, real time;
    ``chunk_samples`` overrides config/simulator.yaml's. ``process_cpu`` = process CPU time / wall time
    over the measured span (1.0 = one core)."""
    os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    from sensor_msgs.msg import Image

    from audio_vision.paths import config_dir
    from audio_vision.ros import conversions as conv
    from audio_vision.ros.graph import Graph, TopicRecorder
    from audio_vision.ros.perception_node import PerceptionNode
    from audio_vision.ros.simulator_node import SimulatorNode
    topics = {'depth/image': Image, 'segmentation/image': Image}
    with Graph(domain_id=domain_id) as g:
        # one simulation config for both nodes, as perceive.launch.py does: perception checks its chirp
        sim_config = str(config_dir() / 'simulation.yaml')
        sim = g.add(SimulatorNode, {'sim_config': sim_config,
                                    **({'chunk_samples': int(chunk_samples)} if chunk_samples else {})})
        node = g.add(PerceptionNode, {'model_dir': str(model_dir), 'backend': backend, 'sim_config': sim_config})
        rec = g.add(TopicRecorder, topics=topics, depth=100)
        g.start()
        if not g.wait_for(lambda: sim.audio_pub.get_subscription_count() >= 1
                          and all(p.get_subscription_count() >= 1 for k, p in node.pubs.items()
                                  if k in ('depth', 'segmentation')), 20.0):
            return {'error': 'discovery timed out'}
        warm = 2.0
        time.sleep(warm)
        cpu0, wall0 = time.process_time(), time.monotonic()
        time.sleep(seconds)
        process_cpu = (time.process_time() - cpu0) / (time.monotonic() - wall0)
        stats = node.stats()
        publish = node.statistics.output_latency.percentiles_ms((50, 95, 99))
        inference = node.statistics.inference_latency.percentiles_ms((50, 95, 99))
        msgs = rec.get('depth/image') + rec.get('segmentation/image')
    first = min((conv.time_to_ns(m.header.stamp) for _, m in msgs), default=0)
    lat = np.array([(recv - conv.time_to_ns(m.header.stamp)) / 1e6 for recv, m in msgs
                    if conv.time_to_ns(m.header.stamp) >= first + warm * 1e9])
    chunk, fs = sim.params['chunk_samples'], sim.sample_rate
    out = {'backend': node.model.backend_name, 'seconds': seconds, 'windows': stats['windows'],
           'outputs': stats['outputs'], 'dropped_windows': stats['dropped_windows'],
           'chunk_samples': chunk, 'chunk_ms': round(1e3 * chunk / fs, 1), 'process_cpu': round(process_cpu, 3),
           'publish_p50': round(publish[0], 2), 'publish_p95': round(publish[1], 2),
           'publish_p99': round(publish[2], 2),
           'inference_p50': round(inference[0], 2), 'inference_p95': round(inference[1], 2)}
    if lat.size:
        out.update({'p50': round(float(np.percentile(lat, 50)), 2), 'p95': round(float(np.percentile(lat, 95)), 2),
                    'p99': round(float(np.percentile(lat, 99)), 2), 'received': int(lat.size)})
    log(f"  graph: window end -> received p50 {out.get('p50')} ms, p95 {out.get('p95')} ms; publish p50 "
        f"{out['publish_p50']} ms; {out['windows']} windows, {out['dropped_windows']} dropped")
    return out


def bench_simulator(n: int, record_s: float) -> dict:
    """The simulator's record() real-time factor and dataset samples/s (bench_simulator.py's functions)."""
    from bench_simulator import SimConfig, Simulator, bench_dataset, bench_record
    from audio_vision.paths import config_dir
    cfg = SimConfig.from_yaml(config_dir() / 'simulation.yaml')
    record = bench_record(Simulator(cfg), record_s, 3)
    dataset = bench_dataset(cfg, n, os.cpu_count() or 1)
    return {'real_time_factor': record['real_time_factor_mean'], 'real_time_factor_max': record['real_time_factor_max'],
            'record_duration_s': record_s, 'dataset_samples_per_s': dataset['samples_per_s'],
            'dataset_samples': n, 'dataset_workers': dataset['workers']}


def bench_training(steps: int, batch: int) -> dict:
    """Samples/s (batch / median step time) of a few AdamW steps per stage on random tensors of the real
    shapes (features are precomputed in training, as the trainer does)."""
    from audio_vision.training.specs import end_to_end_config
    import torch
    import torch.nn.functional as F
    from audio_vision.core.model.baselines import EndToEnd
    from audio_vision.core.model.checkpoint import ModalityModel
    specs, cfg = default_specs()
    out = {}
    for m, spec in specs.items():
        torch.manual_seed(0)
        model = ModalityModel(spec).train()
        encoding = model.encoding
        size = spec.camera.width
        shape = spec.features.output_shape(spec.array.num_channels)
        feats = torch.randn(batch, *shape)
        if m == 'depth':
            images = encoding.encode(torch.rand(batch, size, size) * 8 + 0.5)
        else:
            images = encoding.encode(torch.randint(0, len(spec.class_table), (batch, size, size)))
        latent = torch.randn(batch, spec.vqvae.code_dim, spec.vqvae.latent_size, spec.vqvae.latent_size)
        e2e = EndToEnd(end_to_end_config(cfg, spec)).train()

        def vq_step():
            o = model.vqvae(images)
            return encoding.loss(o.reconstruction, images) + o.vq_loss

        stages = {'vqvae': (model.vqvae, vq_step),
                  'atnet': (model.atnet, lambda: F.mse_loss(model.atnet(feats), latent)),
                  'end_to_end': (e2e, lambda: encoding.loss(e2e(feats), images))}
        for stage, (net, loss_fn) in stages.items():
            opt = torch.optim.AdamW(net.parameters(), lr=1e-4)

            def step():
                opt.zero_grad(set_to_none=True)
                loss_fn().backward()
                opt.step()
            step()                                   # warm-up
            times = []
            for _ in range(steps):
                t0 = time.perf_counter()
                step()
                times.append(time.perf_counter() - t0)
            dt = float(np.median(times))             # median: robust to other jobs on shared cores
            out[f'{stage}_{m}'] = {'samples_per_s': round(batch / dt, 1), 'batch': batch, 'steps': steps,
                                   'step_ms': round(1e3 * dt, 1), 'step_ms_min': round(1e3 * min(times), 1)}
    return out


# ------------------------------------------------------------------------------------------ machine

def machine_info() -> dict:
    import torch
    info = {'platform': platform.platform(), 'python': platform.python_version(), 'numpy': np.__version__,
            'torch': torch.__version__, 'cpus': os.cpu_count(), 'torch_threads': torch.get_num_threads(),
            'cpu_capability': getattr(torch.backends.cpu, 'get_cpu_capability', lambda: '?')()}
    try:
        with open('/proc/cpuinfo') as f:
            names = [line.split(':', 1)[1].strip() for line in f if line.startswith('model name')]
        info['cpu'] = names[0] if names else platform.processor()
    except OSError:
        info['cpu'] = platform.processor() or platform.machine()
    try:
        import onnxruntime
        info['onnxruntime'] = onnxruntime.__version__
    except ImportError:
        info['onnxruntime'] = None
    try:
        import psutil
        info['memory_gb'] = round(psutil.virtual_memory().total / 2 ** 30, 1)
    except ImportError:
        pass
    if hasattr(os, 'getloadavg'):
        info['load_average_at_start'] = [round(x, 2) for x in os.getloadavg()]
    info['git_commit'] = source_commit()
    info['reference_ms_at_start'] = reference_ms()
    return info


def choose_backends(spec: str | None) -> list[str]:
    """The backends to measure: ``spec`` (comma-separated names) or every available one; eager first."""
    from audio_vision.core.inference.backends import BACKENDS, available_backends, unavailable_reason
    if not spec or spec == 'all':
        chosen = list(available_backends('cpu'))
    else:
        chosen = [b.strip() for b in spec.split(',') if b.strip()]
        for b in chosen:
            if b not in BACKENDS or unavailable_reason(b):
                raise UserError(unavailable_reason(b) or f'unknown backend {b!r}')
    if 'eager' not in chosen:
        chosen.insert(0, 'eager')       # the reference of the equivalence check
    return chosen


def run(args) -> int:
    skip = {s.strip() for s in args.skip.split(',') if s.strip()}
    if skip - set(SECTIONS):
        raise UserError(f'--skip: unknown section(s) {sorted(skip - set(SECTIONS))}; known: {", ".join(SECTIONS)}')
    if args.threads < 1 or args.windows < 1:
        raise UserError('--threads and --windows must be >= 1')
    import torch
    torch.set_num_threads(args.threads)
    from audio_vision.core.inference.backends import resolve_backend
    if args.quick:
        args.windows, args.graph_s = min(args.windows, 10), min(args.graph_s, 3.0)
        args.sim_samples = min(args.sim_samples, 4)
    backends = choose_backends(args.backends)
    log = lambda msg: print(msg, flush=True)  # noqa: E731
    started = datetime.now(timezone.utc)
    argv = getattr(args, 'argv', None)
    argv = sys.argv[1:] if argv is None else argv
    result = {'command': 'python benchmarks/bench_perception.py ' + ' '.join(argv),
              'date': started.isoformat(timespec='seconds'), 'machine': machine_info(), 'threads': args.threads,
              'batch': 1}
    with tempfile.TemporaryDirectory(prefix='av_bench_') as tmp:
        model_dir, source = resolve_models(args.model_dir, Path(tmp), log)
        from audio_vision.core.inference.pipeline import AudioToVision
        probe = AudioToVision.load(model_dir, backend='eager')
        hop_s = probe.feature_config.hop_s
        result['model'] = {'dir': str(model_dir), 'source': source, 'model_id': probe.model_id,
                           'window_s': probe.feature_config.window_s, 'hop_s': hop_s,
                           'feature_shape': list(probe.feature_config.output_shape(probe.num_channels)),
                           **model_footprint(model_dir)}
        del probe
        default = resolve_backend(None, 'cpu')
        result['default_backend'] = default
        if default not in backends:
            backends.append(default)
        result['backends'] = backends
        if 'perception' not in skip:
            log(f'perception latency per window, batch 1, {args.threads} threads, {args.windows} windows:')
            perception = bench_perception(model_dir, backends, args.windows, log)
            result['perception'] = perception
            ok = {b: r for b, r in perception.items() if 'both' in r and r['equivalence']['equivalent']}
            fastest = min(ok, key=lambda b: ok[b]['both']['p50_ms']) if ok else None
            result['fastest_equivalent_backend'] = fastest
            d = perception.get(default, {}).get('both')
            if d:
                result['windows_per_s'] = round(1e3 / d['mean_ms'], 1)
                result['real_time_factor'] = round(d['p50_ms'] / 1e3 / hop_s, 4)
                result['real_time_factor_p95'] = round(d['p95_ms'] / 1e3 / hop_s, 4)
            result['real_time_factor_by_backend'] = {b: round(r['both']['p50_ms'] / 1e3 / hop_s, 4)
                                                     for b, r in perception.items() if 'both' in r}
            if fastest and fastest != default:
                log(f'note: the fastest equivalent backend here is {fastest}, the default is {default}')
            if args.compare_model_dir:
                compared = Path(args.compare_model_dir)
                log(f'compared models in {compared}, {default}:')
                probe = AudioToVision.load(compared, backend='eager')
                result['perception_compared'] = {'dir': str(compared), 'model_id': probe.model_id,
                                                 'feature_shape': list(probe.feature_config.output_shape(
                                                     probe.num_channels)),
                                                 **bench_perception(compared, [default], args.windows, log)}
                del probe
        if 'stages' not in skip:
            log('per-stage CPU ms (eager, one single-threaded worker):')
            result['stages_ms'] = bench_stages(model_dir, max(10, args.windows // 4))
            log('  ' + ', '.join(f"{k} {v['cpu_p50_ms']:.2f}" for k, v in result['stages_ms'].items()))
        if 'baseline' not in skip:
            base = bench_baseline(model_dir, sorted({'eager', default}), args.windows, source)
            result['end_to_end_baseline'] = {**base, 'p50_ms': base['eager']['p50_ms'],
                                             'p95_ms': base['eager']['p95_ms'], 'p99_ms': base['eager']['p99_ms']}
            log(f"end-to-end baseline (both modalities): eager p50 {base['eager']['p50_ms']} ms, "
                f"{default} p50 {base[default]['p50_ms']} ms")
        if 'rss' not in skip:
            rss = bench_rss(model_dir, sorted({'eager', default}), args.threads, 20 if not args.quick else 3)
            result['rss'] = rss
            result['peak_rss_mb'] = rss.get(default, {}).get('peak_rss_mb')
            log(f'peak RSS of a perception process ({default}): {result["peak_rss_mb"]} MB')
        if 'graph' not in skip:
            try:
                result['graph_latency_ms'] = bench_graph(model_dir, default, args.graph_s, args.domain_id, log)
                chunks = [int(c) for c in args.graph_chunks.split(',') if c.strip()]
                if chunks:
                    result['graph_latency_by_chunk'] = {
                        str(c): bench_graph(model_dir, default, args.graph_s, args.domain_id, log, chunk_samples=c)
                        for c in chunks}
            except ImportError as exc:
                result['graph_latency_ms'] = {'error': f'rclpy unavailable: {exc}'}
        if 'simulator' not in skip:
            result['simulator'] = bench_simulator(args.sim_samples, 10.0 if not args.quick else 1.0)
            log(f"simulator: record RTF {result['simulator'].get('real_time_factor')}, dataset "
                f"{result['simulator'].get('dataset_samples_per_s')} samples/s")
        if 'training' not in skip:
            result['training'] = bench_training(5 if not args.quick else 1, 32 if not args.quick else 4)
            log('training samples/s: ' + ', '.join(f"{k} {v['samples_per_s']}" for k, v in result['training'].items()))
    if hasattr(os, 'getloadavg'):
        result['machine']['load_average_at_end'] = [round(x, 2) for x in os.getloadavg()]
    result['machine']['reference_ms_at_end'] = reference_ms()
    result['elapsed_s'] = round((datetime.now(timezone.utc) - started).total_seconds(), 1)
    print_summary(result)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=1) + '\n')
        log(f'wrote {args.json}')
    return 0


def print_summary(r: dict) -> None:
    if 'perception' in r:
        print(f"\n{'backend':26s}{'depth p50':>10s}{'seg p50':>10s}{'both p50':>10s}{'p95':>9s}{'p99':>9s}"
              f"{'RTF':>8s}  equivalent")
        for b, row in r['perception'].items():
            if 'both' not in row:
                print(f'{b:26s} error: {row.get("error")}')
                continue
            mark = ' (default)' if b == r.get('default_backend') else ''
            print(f"{b + mark:26s}{row['depth']['p50_ms']:10.2f}{row['segmentation']['p50_ms']:10.2f}"
                  f"{row['both']['p50_ms']:10.2f}{row['both']['p95_ms']:9.2f}{row['both']['p99_ms']:9.2f}"
                  f"{r['real_time_factor_by_backend'][b]:8.3f}  {row['equivalence']['equivalent']}")
    for key in ('default_backend', 'real_time_factor', 'windows_per_s', 'peak_rss_mb'):
        if key in r:
            print(f'{key}: {r[key]}')


def main(argv=None) -> int:
    """Command line: see the module docstring (``--help``)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    args.argv = argv
    try:
        return run(args)
    except UserError as exc:
        print(f'bench_perception: error: {exc}', file=sys.stderr)
        return 2


if __name__ == '__main__':
    sys.exit(main())
