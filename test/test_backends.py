# SPDX-License-Identifier: Apache-2.0
"""Inference backends (audio_vision.core.inference.backends): every backend gives the same images as eager PyTorch
on the default architecture (random weights, real shapes), the default is chosen in one place and resolves
sensibly, and the benchmark script (benchmarks/bench_perception.py, not part of the package) writes the
documented JSON."""
import importlib.util
import json
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from audio_vision.core.inference import backends as B
from audio_vision.core.inference.pipeline import AudioToVision
from audio_vision.core.model.checkpoint import ModalityModel
from helpers import write_tiny_models

ROOT = Path(__file__).resolve().parents[1]
BENCH_SCRIPT = ROOT / 'benchmarks' / 'bench_perception.py'
sys.path.insert(0, str(BENCH_SCRIPT.parent))
from bench_perception import default_specs  # noqa: E402

AVAILABLE = list(B.available_backends('cpu'))


@pytest.fixture(scope='module')
def default_models():
    """The shipped model's architecture (config/train.yaml, 8 mics, 64x64 images) with random weights."""
    specs, _ = default_specs()
    torch.manual_seed(0)
    return {m: ModalityModel(spec).eval() for m, spec in specs.items()}


@pytest.fixture(scope='module')
def reference(default_models):
    eager = AudioToVision(default_models, backend='eager')
    rng = np.random.default_rng(7)
    windows = [(scale * rng.normal(size=(eager.num_channels, eager.window_samples))).astype(np.float32)
               for scale in (0.01, 0.1, 0.5, 1.0)]
    batch = np.stack(windows[:3])
    with torch.inference_mode():
        raw = [eager.backend(torch.from_numpy(w)[None]) for w in windows]
    return {'windows': windows, 'single': [eager.predict(w) for w in windows], 'batch': batch,
            'batched': eager.predict_batch(batch), 'raw': raw}


def check_equivalent(pipe, reference):
    for w, ref, raw in zip(reference['windows'], reference['single'], reference['raw']):
        out = pipe.predict(w)
        assert out['depth'].dtype == np.float32 and out['segmentation'].dtype == np.uint8
        verdict = B.compare_outputs(ref, out)
        assert verdict['equivalent'], verdict
        with torch.inference_mode():
            got = pipe.backend(torch.from_numpy(w)[None])
        for m in raw:   # the network outputs themselves (log-depth and validity logits, class logits)
            np.testing.assert_allclose(got[m].numpy(), raw[m].numpy(), rtol=1e-3, atol=2e-4, err_msg=m)
    batched = pipe.predict_batch(reference['batch'])
    assert B.compare_outputs(reference['batched'], batched)['equivalent']


@pytest.mark.parametrize('name', [b for b in AVAILABLE if b != 'eager'])
def test_backend_gives_the_same_images_as_eager(default_models, reference, name):
    pipe = AudioToVision(default_models, backend=name)
    try:
        assert pipe.backend_name == name
        if name.endswith('-parallel'):     # spectrogram and echo channels on two workers
            assert pipe.backend.feature_parts is not None
        check_equivalent(pipe, reference)
    finally:
        pipe.backend.close()


def test_default_backend_is_used_and_equivalent(default_models, reference):
    pipe = AudioToVision(default_models)
    assert pipe.backend_name == B.resolve_backend(None)
    if B.unavailable_reason(B.DEFAULT_ORDER[0]) is None:
        assert pipe.backend_name == B.DEFAULT_ORDER[0]
    check_equivalent(pipe, reference)


def test_single_modality_pipelines(tmp_path, rng):
    write_tiny_models(tmp_path)
    both = AudioToVision.load(tmp_path, backend='eager')
    audio = rng.normal(size=(both.num_channels, both.window_samples)).astype(np.float32)
    ref = both.predict(audio)
    for m in ('depth', 'segmentation'):
        for name in ('onnx-parallel', 'script'):
            if name not in AVAILABLE:
                continue
            out = AudioToVision.load(tmp_path, modalities=(m,), backend=name).predict(audio)
            assert set(out) == {m}
            assert B.compare_outputs({m: ref[m]}, out)['equivalent']


@pytest.mark.skipif(B.unavailable_reason(B.DEFAULT_ORDER[0]) is not None, reason='the default cannot run here')
def test_backend_resolution_and_errors(monkeypatch):
    for name in (None, '', 'default'):
        assert B.resolve_backend(name) == B.DEFAULT_ORDER[0]
    assert B.resolve_backend('eager') == 'eager'
    with pytest.raises(B.BackendError, match="unknown backend 'tensorrt'.*eager") as err:
        B.resolve_backend('tensorrt')
    assert '\n' not in str(err.value)
    for pruned in ('channels_last', 'compile', 'onnx', 'eager-parallel'):   # never fastest in the benchmark
        with pytest.raises(B.BackendError, match='unknown backend'):
            B.resolve_backend(pruned)
    # one place chooses the default: resolving names the first candidate, building moves down the same list
    assert B.default_candidates('cpu') == B.DEFAULT_ORDER
    # a GPU gets eager: the ONNX Runtime and -parallel backends are CPU engines
    assert B.default_candidates('cuda') == ('eager',)
    assert B.resolve_backend(None, 'cuda') == 'eager'
    assert 'CPU only' in B.unavailable_reason('onnx-parallel', 'cuda')
    assert 'CPU only' in B.unavailable_reason('script-parallel', 'cuda')
    assert B.unavailable_reason('script', 'cuda') is None
    # without onnxruntime the default falls back to the next usable backend; naming it explicitly fails
    real = importlib.util.find_spec
    monkeypatch.setattr(B.importlib.util, 'find_spec', lambda n, *a: None if n == 'onnxruntime' else real(n, *a))
    assert B.default_candidates('cpu') == ('script-parallel', 'eager')
    assert B.resolve_backend(None) == 'script-parallel'
    with pytest.raises(B.BackendError, match="needs the Python package 'onnxruntime'"):
        B.resolve_backend('onnx-parallel')


@pytest.mark.skipif(B.unavailable_reason(B.DEFAULT_ORDER[0]) is not None, reason='the default cannot run here')
def test_default_falls_back_when_it_cannot_be_built(tmp_path, monkeypatch):
    write_tiny_models(tmp_path)

    def broken(self, example):
        raise RuntimeError('exporter unavailable')
    monkeypatch.setattr(B.OnnxBackend, 'compile', broken)
    with pytest.warns(RuntimeWarning, match="using backend 'script-parallel'"):
        pipe = AudioToVision.load(tmp_path)
    assert pipe.backend_name == 'script-parallel'
    with pytest.raises(B.BackendError, match="cannot build backend 'onnx-parallel'.*exporter unavailable"):
        AudioToVision.load(tmp_path, backend='onnx-parallel')


def test_unknown_backend_is_refused_at_load(tmp_path):
    write_tiny_models(tmp_path)
    with pytest.raises(ValueError, match='unknown backend'):
        AudioToVision.load(tmp_path, backend='fast-please')


def test_parallel_workers_do_not_change_the_thread_count(tmp_path):
    write_tiny_models(tmp_path)
    before = torch.get_num_threads()
    pipe = AudioToVision.load(tmp_path, backend='script-parallel')
    pipe.predict(np.zeros((pipe.num_channels, pipe.window_samples), np.float32))
    assert torch.get_num_threads() == before
    seen = {}
    t = threading.Thread(target=lambda: seen.setdefault('n', torch.get_num_threads()))
    t.start()
    t.join()
    assert seen['n'] == before          # threads created later keep the process default
    inside = pipe.backend._workers.submit(torch.get_num_threads).result()
    assert inside == 1                  # the workers are single-threaded
    pipe.backend.close()


def test_bench_script_writes_the_documented_json(tmp_path):
    write_tiny_models(tmp_path / 'models')
    out = tmp_path / 'bench.json'
    args = ['--quick', '--model-dir', str(tmp_path / 'models'), '--backends', 'eager', '--json', str(out),
            '--skip', 'graph,simulator,training,rss,stages', '--windows', '5']
    # run from elsewhere, as a script: it finds the package of its checkout itself
    proc = subprocess.run([sys.executable, str(BENCH_SCRIPT), *args], capture_output=True, text=True, timeout=540,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    r = json.loads(out.read_text())
    assert r['command'] == 'python benchmarks/bench_perception.py ' + ' '.join(args)
    for key in ('machine', 'date', 'command', 'perception', 'default_backend', 'real_time_factor',
                'end_to_end_baseline', 'model'):
        assert key in r, key
    assert r['default_backend'] in r['perception']
    assert r['backends'] == ['eager', B.resolve_backend(None)]      # the default is always measured too
    for b in ('eager', r['default_backend']):
        for mode in ('depth', 'segmentation', 'both'):
            assert {'p50_ms', 'p95_ms', 'p99_ms'} <= set(r['perception'][b][mode])
        assert r['perception'][b]['equivalence']['equivalent']
    assert r['end_to_end_baseline']['p50_ms'] > 0
    assert r['model']['parameters']['depth']['atnet'] > 0 and r['model']['checkpoint_mb']['depth.pt'] > 0
    assert r['machine']['reference_ms_at_start'] > 0 and r['machine']['reference_ms_at_end'] > 0  # the yardstick


def test_the_package_carries_no_benchmark_and_the_old_command_says_where_it_went():
    from audio_vision.cli import SUBCOMMANDS
    assert 'bench' not in SUBCOMMANDS
    assert not (ROOT / 'audio_vision' / 'commands' / 'bench.py').exists()
    proc = subprocess.run([sys.executable, '-m', 'audio_vision', 'bench', '--quick', '--json', 'x.json'],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 2
    assert 'benchmarks/bench_perception.py --quick --json x.json' in proc.stderr, proc.stderr


def test_recorded_benchmark_is_complete_and_its_default_is_the_code_default():
    path = ROOT / 'docs' / 'benchmarks.json'
    if not path.is_file():
        pytest.skip('no recorded benchmark (python benchmarks/bench_perception.py --json docs/benchmarks.json)')
    r = json.loads(path.read_text())
    assert r['default_backend'] == B.DEFAULT_ORDER[0]
    assert r['perception'][B.DEFAULT_ORDER[0]]['equivalence']['equivalent']
    for key in ('machine', 'real_time_factor', 'end_to_end_baseline', 'peak_rss_mb'):
        assert key in r, key
    assert {'p50', 'p95'} <= set(r['graph_latency_ms'])
    assert {'real_time_factor', 'dataset_samples_per_s'} <= set(r['simulator'])
    for mode in ('depth', 'segmentation', 'both'):
        assert {'p50_ms', 'p95_ms', 'p99_ms'} <= set(r['perception'][B.DEFAULT_ORDER[0]][mode])


def test_default_backend_on_the_shipped_model_and_simulated_audio():
    """The trained model puts latents near codewords (near-ties are likelier than with random weights):
    the default backend must still choose the same codewords as eager on real array recordings."""
    from audio_vision.paths import default_model_dir
    model_dir = default_model_dir()
    if not all((model_dir / f'{m}.pt').is_file() for m in ('depth', 'segmentation')):
        pytest.skip(f'no shipped model in {model_dir}')
    from audio_vision.simulation import SimConfig, Simulator
    eager = AudioToVision.load(model_dir, backend='eager')
    default = AudioToVision.load(model_dir)
    sim = Simulator(SimConfig())
    n = eager.window_samples
    for seed in range(4):
        audio = sim.record(sim.sample_scene(500 + seed), n / eager.sample_rate + 0.1, seed)[:, :n]
        audio = np.ascontiguousarray(audio, np.float32)
        verdict = B.compare_outputs(eager.predict(audio), default.predict(audio))
        assert verdict['equivalent'], (seed, verdict)


def test_close_ends_the_worker_threads_and_a_with_block_closes(tmp_path):
    write_tiny_models(tmp_path)

    def workers():
        return {t for t in threading.enumerate() if t.name.startswith('audio_vision_infer')}

    before = workers()
    with AudioToVision.load(tmp_path, backend='script-parallel') as pipe:
        window = np.zeros((pipe.num_channels, pipe.window_samples), np.float32)
        expected = pipe.predict(window)
        mine = workers() - before
        assert len(mine) >= 2                       # the -parallel engine runs on its own threads
    for t in mine:                                  # closed on leaving the block: they end (no __del__ needed)
        t.join(timeout=60.0)
    assert not [t.name for t in mine if t.is_alive()]
    pipe.close()                                    # idempotent
    after = pipe.predict(window)                    # still usable, on the calling thread
    np.testing.assert_array_equal(after['segmentation'], expected['segmentation'])


def test_the_benchmark_report_says_other_jobs_ran_only_when_the_load_at_start_says_so():
    import bench_report
    assert bench_report.busy({'load_average_at_start': [1.6, 2.9, 3.6]}) == ' (other jobs were running)'
    assert bench_report.busy({'load_average_at_start': [0.52, 0.81, 0.93]}) == ''
    assert bench_report.busy({}) == ''
