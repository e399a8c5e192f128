# SPDX-License-Identifier: Apache-2.0
"""Inference backends of :class:`audio_vision.core.inference.pipeline.AudioToVision`.

Every backend runs the same computation -- spectrogram features -> AT-net -> nearest codewords (L2)
-> frozen VQ-VAE decoder -- and returns, per modality, the network output the modality's encoding
decodes into an image (depth metres / class ids). They differ only in the engine that executes it:

===================  ==================================================================================
``eager``            plain PyTorch modules: the reference every other backend is tested against
``script``           TorchScript: features and each modality's network traced, frozen (constants folded,
                     conv+BN fused) and ``optimize_for_inference``
``script-parallel``  ``script`` with *inter-op* instead of intra-op parallelism: two worker threads, each
                     single-threaded (1 intra-op thread); the features' modules, split into two groups of
                     about equal cost (:func:`feature_groups`), run on the two workers at once, then the
                     modalities run concurrently
``onnx-parallel``    ONNX Runtime (CPU) runs each modality's AT-net + quantize + decoder as ONE fused
                     graph (exported in memory at load time) on the same workers; the two feature groups
                     run as TorchScript as in ``script`` when the traced groups reproduce the eager features
                     exactly, else eager
===================  ==================================================================================

Which engine is fastest on which machine, idle or loaded, is measured by benchmarks/bench_perception.py
(docs/BENCHMARKS.md); the engines kept here are those that were fastest somewhere there or are needed as
reference and fallback.

``backend=None`` (or '' / 'default') uses the default: :data:`DEFAULT_ORDER` ranks the engines, and
:func:`default_candidates` is the one place it is applied (those of the order that can run here: device,
packages); :func:`build_backend` builds the first and moves down the list when one fails to build. The
order puts first the fastest backend of the benchmark under load that passes the output-equivalence test
(test/test_backends.py: same segmentation labels on >= 99.9 % of the pixels and depth within float
tolerance of ``eager``). Intra-op threads of ``eager`` and ``script`` follow ``torch.get_num_threads()`` of
the thread that builds them.
"""
from __future__ import annotations

import importlib.util
import io
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

import numpy as np
import torch
from torch import nn

#: the default, best first (see the module docstring); :func:`default_candidates` applies it
DEFAULT_ORDER = ('onnx-parallel', 'script-parallel', 'eager')

_PARALLEL = '-parallel'
#: every selectable backend name
BACKENDS = ('eager', 'script', 'script-parallel', 'onnx-parallel')
_DEFAULT_NAMES = (None, '', 'default')
#: packages an engine needs beyond torch
_REQUIRES = {'onnx': ('onnxruntime',)}
_CPU_ONLY = ('onnx',)


class BackendError(ValueError):
    """An unknown backend name, or a backend that cannot run here (missing package, wrong device)."""


def _split(name: str) -> tuple[str, bool]:
    parallel = name.endswith(_PARALLEL)
    return (name[:-len(_PARALLEL)] if parallel else name), parallel


def unavailable_reason(name: str, device: torch.device | str = 'cpu') -> str | None:
    """Why backend ``name`` cannot run on ``device`` here, or None when it can."""
    if name not in BACKENDS:
        return f'unknown backend {name!r}; choose one of {", ".join(BACKENDS)} (or "" for the default)'
    engine, parallel = _split(name)
    for module in _REQUIRES.get(engine, ()):
        if importlib.util.find_spec(module) is None:
            return f'backend {name!r} needs the Python package {module!r} (pip install {module})'
    if (engine in _CPU_ONLY or parallel) and torch.device(device).type != 'cpu':
        return f'backend {name!r} runs on the CPU only, not on {device}; use eager or script'
    return None


def available_backends(device: torch.device | str = 'cpu') -> tuple[str, ...]:
    """The backends of :data:`BACKENDS` that can run on ``device`` here."""
    return tuple(n for n in BACKENDS if unavailable_reason(n, device) is None)


def default_candidates(device: torch.device | str = 'cpu') -> tuple[str, ...]:
    """The backends ``backend=None`` may use on ``device``, best first: :data:`DEFAULT_ORDER` less those
    that cannot run there (``eager`` always can). The one place the default is chosen:
    :func:`resolve_backend` names the first, :func:`build_backend` moves down the list when one fails
    to build."""
    return tuple(n for n in DEFAULT_ORDER if unavailable_reason(n, device) is None)


def resolve_backend(name: str | None, device: torch.device | str = 'cpu') -> str:
    """The backend name to build: ``name`` itself (validated), or the default for ``device``."""
    if name in _DEFAULT_NAMES:
        return default_candidates(device)[0]
    if not isinstance(name, str):
        raise BackendError(f'backend must be a string, got {name!r}')
    reason = unavailable_reason(name, device)
    if reason:
        raise BackendError(reason)
    return name


# ------------------------------------------------------------------------------------------ networks

class ModalityNet(nn.Module):
    """One modality's network as a single module: features -> network output (AT-net, then the nearest
    codewords and the VQ-VAE decoder when ``quantize``, else the decoder on the continuous latent)."""

    def __init__(self, model: nn.Module, quantize: bool):
        super().__init__()
        self.model = model
        self.quantize = bool(quantize)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.model(features, quantize=self.quantize)


class Workers:
    """``n`` worker threads, each limited to ONE intra-op torch thread (inter-op parallelism).

    ``torch.set_num_threads`` is per thread under OpenMP but also sets the default of threads created
    later; the creating thread's count is restored once the workers are up, so nothing else changes.
    """

    def __init__(self, n: int):
        saved = torch.get_num_threads()
        started = threading.Barrier(n + 1)

        def init():
            torch.get_num_threads()      # run torch's lazy per-thread initialisation first ...
            torch.set_num_threads(1)     # ... so this per-thread setting sticks

        self.pool = ThreadPoolExecutor(n, thread_name_prefix='audio_vision_infer', initializer=init)
        for _ in range(n):
            self.pool.submit(started.wait, 30.0)
        started.wait(30.0)
        torch.set_num_threads(saved)

    def submit(self, fn, *args):
        return self.pool.submit(_inference(fn), *args)

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


def _inference(fn):
    def run(*args):
        with torch.inference_mode():
            return fn(*args)
    return run


# ------------------------------------------------------------------------------------------ backends

def feature_groups(features: nn.Module) -> tuple[nn.Module, nn.Module] | None:
    """The ``-parallel`` backends' split of a feature stack (:class:`audio_vision.core.features.stack.FeatureStack`)
    into two groups of whole modules of about equal cost, or None when there is nothing to split: the last module
    (the echo beams, or the direction maps) on one worker, the modules before it on the other. Checked against the
    whole stack when built (``split_features``)."""
    parts = getattr(features, 'parts', [])
    if len(parts) < 2 or not (features.config.echo or features.config.direction_maps):
        return None
    return features.group(parts[:-1]).eval(), features.group(parts[-1:]).eval()


def _run_net(net, parts, encoding=None):
    out = net(parts[0] if len(parts) == 1 else torch.cat(parts, dim=1))
    return out if encoding is None else encoding.decode(out)


class Backend:
    """Runs features + every modality's network: ``backend(audio (B, C, N) float32 tensor on the
    device) -> {modality: (B, out, H, W) network output tensor}``. Subclasses compile ``self.nets`` (and
    ``self.features``) in :meth:`compile`; ``-parallel`` variants also split the features in two."""

    engine = 'eager'

    def __init__(self, features: nn.Module, models: dict[str, nn.Module], quantize: bool,
                 device: torch.device, num_channels: int, parallel: bool = False):
        self.device = torch.device(device)
        self.quantize = bool(quantize)
        self.num_channels = int(num_channels)
        self.feature_module = features
        self.features: Callable = features
        self.feature_parts: tuple[Callable, ...] | None = None
        self.nets: dict[str, Callable] = {k: ModalityNet(m, quantize).eval() for k, m in models.items()}
        self.encodings = {k: getattr(m, 'encoding', None) for k, m in models.items()}
        self.name = self.engine + (_PARALLEL if parallel else '')
        # two single-threaded workers (the 2-thread budget), or one per modality if there are more
        self._workers = Workers(max(2, len(self.nets))) if parallel else None

    def example_audio(self, batch: int = 1) -> torch.Tensor:
        """Random audio of the model's shape (for tracing, export and warm-up)."""
        gen = torch.Generator().manual_seed(0)
        n = self.feature_module.config.window_samples
        return (0.1 * torch.randn(batch, self.num_channels, n, generator=gen)).to(self.device)

    def compile(self, example_audio: torch.Tensor) -> None:
        """Build the engine-specific versions of ``self.features`` / ``self.nets`` (no-op for eager)."""

    def compile_features(self, module: nn.Module, example_audio: torch.Tensor) -> Callable:
        """The engine's version of a feature module (eager: itself)."""
        return module

    def split_features(self, example_audio: torch.Tensor) -> None:
        """-parallel: compute the two groups of :func:`feature_groups` on two workers at once, if together they
        reproduce the feature module's output exactly on ``example_audio``: the engine's versions of the groups,
        else the eager groups."""
        eager = feature_groups(self.feature_module)
        if eager is None:
            return
        with torch.inference_mode():
            whole = self.feature_module(example_audio)
        for parts in (tuple(self.compile_features(p, example_audio) for p in eager), eager):
            with torch.inference_mode():
                split = torch.cat([p(example_audio) for p in parts], dim=1)
            if whole.shape == split.shape and torch.equal(whole, split):
                self.feature_parts = parts
                return

    def __call__(self, audio: torch.Tensor) -> dict[str, torch.Tensor]:
        """{modality: (B, out, H, W) network output}: what the modality's encoding decodes."""
        return self.run(audio, decode=False)

    def images(self, audio: torch.Tensor) -> dict[str, torch.Tensor]:
        """{modality: decoded (B, H, W) image tensor} (depth metres / class ids). The -parallel backends
        decode on their workers too, so the calling thread runs no torch op: with several intra-op
        threads every op would start an OpenMP team, which costs a scheduler tick when another process
        holds the other core (the bench measures it: docs/BENCHMARKS.md)."""
        return self.run(audio, decode=True)

    def run(self, audio: torch.Tensor, decode: bool) -> dict[str, torch.Tensor]:
        encodings = self.encodings if decode else {}
        if self._workers is None:
            feats = self.features(audio)
            return {k: _run_net(net, (feats,), encodings.get(k)) for k, net in self.nets.items()}
        if self.feature_parts is None:
            parts = (self._workers.submit(self.features, audio).result(),)
        else:
            futures = [self._workers.submit(p, audio) for p in self.feature_parts]
            parts = tuple(f.result() for f in futures)
        futures = {k: self._workers.submit(_run_net, net, parts, encodings.get(k)) for k, net in self.nets.items()}
        return {k: f.result() for k, f in futures.items()}

    def close(self) -> None:
        if self._workers is not None:
            self._workers.close()
            self._workers = None

    def __del__(self):     # a safety net only: owners call AudioToVision.close() (or use it in a with block)
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass


class EagerBackend(Backend):
    engine = 'eager'


class ScriptBackend(Backend):
    engine = 'script'

    def compile(self, example_audio):
        self.features = self.compile_features(self.feature_module, example_audio)
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter('ignore')
            feats = self.feature_module(example_audio)
            for k, net in list(self.nets.items()):
                self.nets[k] = _freeze(torch.jit.trace(net, (feats,), check_trace=False))

    def compile_features(self, module, example_audio):
        if not getattr(module, 'traceable', True):      # numpy inside (the layout prior): a trace would bake it in
            return module
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter('ignore')
            return _freeze(torch.jit.trace(module.eval(), (example_audio,), check_trace=False))


def _freeze(traced):
    frozen = torch.jit.freeze(traced.eval())
    try:
        return torch.jit.optimize_for_inference(frozen)
    except Exception:  # noqa: BLE001 - some builds lack the MKLDNN passes; the frozen module still works
        return frozen


class OnnxBackend(Backend):
    engine = 'onnx'
    compile_features = ScriptBackend.compile_features       # the feature halves traced (split_features checks them)

    def compile(self, example_audio):
        import onnxruntime as ort
        threads = 1 if self._workers is not None else max(1, torch.get_num_threads())
        with torch.no_grad():
            feats = self.features(example_audio)
        traced = self.compile_features(self.feature_module, example_audio)
        with torch.inference_mode():
            if torch.equal(traced(example_audio), self.feature_module(example_audio)):
                self.features = traced          # the whole feature module, when the halves are not split
        for k, net in list(self.nets.items()):
            buf = io.BytesIO()
            with torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter('ignore')
                _export_onnx(net, feats, buf)
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
            opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            opts.log_severity_level = 3
            self.nets[k] = _OrtNet(ort.InferenceSession(buf.getvalue(), opts, providers=['CPUExecutionProvider']))


def _export_onnx(net: nn.Module, feats: torch.Tensor, buf: io.BytesIO) -> None:
    """TorchScript-based exporter (no extra packages; dynamic batch), or the torch.export-based one
    where the former is gone."""
    kwargs = dict(input_names=['features'], output_names=['output'], opset_version=17,
                  dynamic_axes={'features': {0: 'batch'}, 'output': {0: 'batch'}}, do_constant_folding=True)
    try:
        torch.onnx.export(net, (feats,), buf, dynamo=False, **kwargs)
    except TypeError:            # a torch without the `dynamo` switch: the TorchScript exporter is the only one
        buf.seek(0)
        buf.truncate()
        torch.onnx.export(net, (feats,), buf, **kwargs)


class _OrtNet:
    def __init__(self, session):
        self.session = session

    def __call__(self, features: torch.Tensor) -> torch.Tensor:
        x = np.ascontiguousarray(features.detach().cpu().numpy(), dtype=np.float32)
        return torch.from_numpy(self.session.run(None, {'features': x})[0])


_CLASSES = {c.engine: c for c in (EagerBackend, ScriptBackend, OnnxBackend)}


def build_backend(name: str | None, features: nn.Module, models: dict[str, nn.Module], num_channels: int,
                  quantize: bool = True, device: torch.device | str = 'cpu') -> Backend:
    """Build backend ``name`` (None/'' = the default) for a pipeline's feature module and models
    (``num_channels`` microphones). A named backend that fails raises :class:`BackendError`; when the
    default fails to build (e.g. a torch without a working ONNX exporter) the next of
    :func:`default_candidates` is built instead, with a warning."""
    device = torch.device(device)
    if name not in _DEFAULT_NAMES:
        return _build(resolve_backend(name, device), features, models, num_channels, quantize, device)
    candidates = default_candidates(device)
    for i, candidate in enumerate(candidates):
        try:
            return _build(candidate, features, models, num_channels, quantize, device)
        except BackendError as exc:
            if i == len(candidates) - 1:
                raise
            warnings.warn(f'{exc}; using backend {candidates[i + 1]!r} instead', RuntimeWarning, stacklevel=2)
    raise BackendError('no inference backend can run here')


def _build(resolved: str, features, models, num_channels, quantize, device) -> Backend:
    engine, parallel = _split(resolved)
    backend = _CLASSES[engine](features, models, quantize, device, num_channels, parallel)
    try:
        example = backend.example_audio()
        if engine != 'eager':
            backend.compile(example)
        if parallel:
            backend.split_features(example)
    except BackendError:
        backend.close()
        raise
    except Exception as exc:  # noqa: BLE001 - one clear line for the node's start-up error
        backend.close()
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BackendError(f'cannot build backend {resolved!r}: {type(exc).__name__}: {first}') from None
    return backend


# ------------------------------------------------------------------------------------------ equivalence

#: what "the same output" means for a backend vs eager (test/test_backends.py, the bench)
LABEL_AGREEMENT_MIN = 0.999     # share of segmentation pixels with the same class id
DEPTH_RTOL, DEPTH_ATOL = 1e-3, 1e-4   # every depth pixel valid in both must agree this closely (metres)
#: share of depth pixels valid (non-NaN) in both or in neither (a validity logit within float rounding of 0 may flip)
VALIDITY_AGREEMENT_MIN = 0.999


def compare_outputs(reference: dict[str, np.ndarray], output: dict[str, np.ndarray]) -> dict:
    """Agreement of two ``predict``/``predict_batch`` results; ``equivalent`` is the pass/fail verdict."""
    result, ok = {}, True
    if 'segmentation' in reference:
        agree = float(np.mean(np.asarray(output['segmentation']) == np.asarray(reference['segmentation'])))
        result['label_agreement'] = agree
        ok &= agree >= LABEL_AGREEMENT_MIN
    if 'depth' in reference:
        ref, out = np.asarray(reference['depth'], np.float64), np.asarray(output['depth'], np.float64)
        ref_valid, out_valid = np.isfinite(ref), np.isfinite(out)
        validity = float(np.mean(ref_valid == out_valid))
        both = ref_valid & out_valid
        close = np.isclose(out[both], ref[both], rtol=DEPTH_RTOL, atol=DEPTH_ATOL)
        result['depth_validity_agreement'] = validity
        result['depth_max_abs_diff_m'] = float(np.abs(out[both] - ref[both]).max()) if both.any() else 0.0
        result['depth_close_fraction'] = float(close.mean()) if both.any() else 1.0
        ok &= validity >= VALIDITY_AGREEMENT_MIN and bool(close.all())
    result['equivalent'] = bool(ok)
    return result
