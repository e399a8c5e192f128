# SPDX-License-Identifier: Apache-2.0
"""AudioToVision: one analysis window of multichannel audio -> depth and segmentation images.

features -> AT-net(modality) -> nearest codewords (L2) -> frozen VQ-VAE decoder -> image.
The spectrogram is computed once and shared by the modalities. The engine that executes it is the
`backend` (audio_vision.core.inference.backends: eager PyTorch, TorchScript, ONNX Runtime, ...; None = the default).
"""
from __future__ import annotations

import reprlib
from pathlib import Path
from typing import Iterable

import numpy as np
import torch

from audio_vision.core.camera import PinholeCamera
from audio_vision.core.classes import ClassTable
from audio_vision.core.features.config import FeatureConfig
from audio_vision.core.features.stack import FeatureStack
from audio_vision.core.inference.backends import build_backend
from audio_vision.core.inference.floor_contact import FloorContact
from audio_vision.core.model.checkpoint import CheckpointError, ModalityModel, load_checkpoint
from audio_vision.core.model.configs import config_to_dict
from audio_vision.core.model.encoding import MODALITIES


def resolve_device(device: str | None) -> torch.device:
    """'auto'/None -> CUDA when available else CPU; otherwise the named device, validated."""
    if device in (None, '', 'auto'):
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    try:
        dev = torch.device(device)
    except RuntimeError as exc:
        raise ValueError(f'unknown device {device!r}: {exc}') from None
    if dev.type == 'cuda' and not torch.cuda.is_available():
        raise ValueError(f'device {device!r} requested but CUDA is not available on this machine')
    if dev.type not in ('cpu', 'cuda'):
        raise ValueError(f'device {device!r} is not supported; use cpu, cuda, cuda:N or auto')
    return dev


def describe_difference(a: dict, b: dict, max_keys: int = 3) -> str:
    """The keys on which two config dicts differ, values shortened: ``'key: 1 vs 2, ...'``."""
    short = reprlib.Repr()          # attributes, not keyword arguments: those need Python 3.12
    short.maxlevel, short.maxlist, short.maxtuple, short.maxstring, short.maxother = 2, 3, 3, 30, 12

    def one(key) -> str:
        x, y = a.get(key), b.get(key)
        if isinstance(x, (list, tuple)) and isinstance(y, (list, tuple)) and len(x) != len(y):
            return f'{key}: {len(x)} vs {len(y)} entries'
        return f'{key}: {short.repr(x)} vs {short.repr(y)}'

    keys = [k for k in sorted(set(a) | set(b), key=str) if a.get(k) != b.get(k)]
    text = ', '.join(one(k) for k in keys[:max_keys])
    return text + (f', and {len(keys) - max_keys} more' if len(keys) > max_keys else '')


class AudioToVision:
    """Per-modality AT-net + frozen VQ-VAE codebook/decoder, behind one `predict` call."""

    def __init__(self, models: dict[str, ModalityModel], device: torch.device | str = 'cpu',
                 quantize: bool = True, backend: str | None = None, calibration=None, bodies_on_floor: bool = True):
        """``calibration``: the chirp speaker's measured response (:class:`audio_vision.sonar.calibration.
        SpeakerCalibration`) for a model whose features hold the sonar layout prior; None = an ideal speaker.
        ``bodies_on_floor``: with both modalities and the layout prior, the depth's bodies (where the segmentation
        draws them) are stood on each window's measured floor (:mod:`.floor_contact`; docs/RESULTS.md measures it)."""
        if not models:
            raise ValueError('AudioToVision needs at least one modality model')
        specs = [m.spec for m in models.values()]
        first = specs[0]
        for spec in specs[1:]:
            for what, a, b in (('features', config_to_dict(first.features), config_to_dict(spec.features)),
                               ('array geometry', first.array.to_dict(), spec.array.to_dict()),
                               ('camera', first.camera.to_dict(), spec.camera.to_dict())):
                if a != b:
                    raise CheckpointError(f'{first.modality} and {spec.modality} models disagree on {what} '
                                          f'({describe_difference(a, b)}); train them on the same data')
        self.device = torch.device(device)
        self.models = {name: m.to(self.device).eval() for name, m in models.items()}
        self.spec = first
        self.quantize = quantize
        self.features = FeatureStack(first.features, first.array.mic_positions, calibration).to(self.device)
        # the engine running features + networks; None/'' = the default (backends.default_candidates)
        self.backend = build_backend(backend, self.features, self.models, first.array.num_channels,
                                     quantize, self.device)
        self.bodies_on_floor = (bodies_on_floor and set(self.models) == set(MODALITIES)
                                and self.features.layout_prior is not None)
        self._floor_contact = None
        if self.bodies_on_floor:
            self._floor_contact = FloorContact(first.camera, first.class_table)
            self.shared_layout_estimates()    # shared from the first window on: the floor is the features' own

    @classmethod
    def load(cls, model_dir: str | Path, modalities: Iterable[str] = MODALITIES,
             device: str | None = 'cpu', quantize: bool = True, backend: str | None = None,
             calibration=None, bodies_on_floor: bool = True) -> 'AudioToVision':
        """Load `<model_dir>/<modality>.pt` for each requested modality; `backend` names the inference
        engine (audio_vision.core.inference.backends.BACKENDS; None = the default); `calibration` as in
        the constructor, and ``bodies_on_floor``."""
        modalities = tuple(modalities)
        unknown = [m for m in modalities if m not in MODALITIES]
        if unknown or not modalities:
            raise ValueError(f'modalities must be a non-empty subset of {MODALITIES}, got {modalities}')
        model_dir = Path(model_dir)
        if not model_dir.is_dir():
            raise CheckpointError(f'model directory {model_dir} '
                                  + ('is a file, not a directory' if model_dir.exists() else 'does not exist')
                                  + ": pass the directory holding depth.pt / segmentation.pt ('' = the shipped models)")
        dev = resolve_device(device)
        models = {m: load_checkpoint(model_dir / f'{m}.pt', expect={'modality': m}, device=dev) for m in modalities}
        return cls(models, dev, quantize, backend, calibration, bodies_on_floor)

    def shared_layout_estimates(self):
        """The sonar front-end inside the features (their layout prior), its measurements shared with the caller
        (:class:`audio_vision.sonar.shared.SharedEstimates`: a window the features measured is not measured again),
        or None when the features hold no layout prior."""
        prior = self.features.layout_prior
        return None if prior is None else prior.share_estimates()

    def close(self) -> None:
        """Release the inference engine (its worker threads) now; idempotent. Owners call it when done
        (the perception node in ``destroy_node``) or use the pipeline as a context manager; afterwards a
        parallel backend runs on the calling thread."""
        self.backend.close()

    def __enter__(self) -> 'AudioToVision':
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- what the model expects -------------------------------------------------------------
    @property
    def modalities(self) -> tuple[str, ...]:
        return tuple(self.models)

    @property
    def feature_config(self) -> FeatureConfig:
        return self.spec.features

    @property
    def sample_rate(self) -> int:
        return self.spec.features.sample_rate

    @property
    def num_channels(self) -> int:
        return self.spec.array.num_channels

    @property
    def window_samples(self) -> int:
        return self.spec.features.window_samples

    @property
    def camera(self) -> PinholeCamera:
        return self.spec.camera

    @property
    def class_table(self) -> ClassTable:
        return self.spec.class_table

    @property
    def fuses_layout(self) -> bool:
        """Whether the model's layout prior is the room fused over a drive (``FeatureConfig.layout_fusion``): then
        the ``poses`` given with the windows place them (:meth:`predict_batch`)."""
        prior = self.features.layout_prior
        return prior is not None and prior.drive is not None

    @property
    def backend_name(self) -> str:
        return self.backend.name

    @property
    def model_id(self) -> str:
        return '+'.join(f'{name}:{getattr(m, "model_id", "untrained")}' for name, m in self.models.items())

    # -- inference ------------------------------------------------------------------------------
    def check_audio(self, audio: np.ndarray) -> None:
        want = (self.num_channels, self.window_samples)
        if audio.ndim not in (2, 3) or tuple(audio.shape[-2:]) != want:
            raise ValueError(f'audio must be (channels, samples) = {want} or batched (B, {want[0]}, {want[1]}), '
                             f'got shape {tuple(audio.shape)}')

    def _set_odometry(self, batch: int, poses, drives) -> None:
        """Where the next ``batch`` windows were measured, for a model that fuses the layout over a drive (no-op
        otherwise): ``poses`` (4 x 4 array frame -> odometry frame, or None each; None: no odometry, each window
        its room alone) and ``drives`` (the drive each window belongs to; it restarts where the id changes)."""
        if not self.fuses_layout:
            return
        poses = [None] * batch if poses is None else list(poses)
        if len(poses) != batch:
            raise ValueError(f'{len(poses)} poses for {batch} windows')
        self.features.layout_prior.set_odometry(poses, drives)

    @torch.inference_mode()
    def predict_batch(self, audio: np.ndarray | torch.Tensor, poses=None, drives=None) -> dict[str, np.ndarray]:
        """(B, C, N) float audio -> {'depth': (B,H,W) float32 m, 'segmentation': (B,H,W) uint8}; ``poses`` and
        ``drives``: the windows' odometry, in their order, for a model that fuses the layout (:attr:`fuses_layout`;
        ignored otherwise)."""
        self.check_audio(audio)
        x = torch.as_tensor(audio, dtype=torch.float32, device=self.device)
        self._set_odometry(x.shape[0], poses, drives)
        images = self.backend.images(x)       # features -> networks -> the encodings decode
        out = {name: images[name].cpu().numpy() for name in self.models}
        if 'depth' in out:
            out['depth'] = out['depth'].astype(np.float32, copy=False)
        return self._stand_bodies(x, out)

    def _stand_bodies(self, audio: torch.Tensor, images: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """``images`` with the depth's bodies stood on each window's measured floor (``bodies_on_floor``); the
        features measured these windows already, so the shared estimates answer without measuring again."""
        if not self.bodies_on_floor:
            return images
        estimates = self.shared_layout_estimates()
        # numpy's float64 of the float32 samples, as the features' own (a torch cast here would leave torch's
        # intra-op threads spinning beside the next window's inference engine: measured 7 ms more per window)
        windows = audio.detach().cpu().numpy()
        depth = images['depth'].copy()
        for b, window in enumerate(windows):
            depth[b] = self._floor_contact(depth[b], images['segmentation'][b], estimates.estimate(window))
        return {**images, 'depth': depth}

    @torch.inference_mode()
    def predict_batch_with_confidence(self, audio: np.ndarray | torch.Tensor, kind: str | None = None, poses=None,
                                      drives=None) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """(B, C, N) audio -> (images as :meth:`predict_batch`, {modality: (B, H, W) float32 confidence in [0, 1]}).

        Runs the eager modules (the latent is needed; the images equal the eager backend's). ``kind``: one
        of :data:`audio_vision.core.inference.confidence.KINDS` (None = its ``DEFAULT_KIND``); ``poses``, ``drives``
        as in :meth:`predict_batch`.
        """
        from audio_vision.core.inference.confidence import DEFAULT_KIND, decode_with_confidence
        if not self.quantize:
            raise ValueError('confidence needs the quantized path (quantize=True): it is measured on the codebook')
        self.check_audio(audio)
        x = torch.as_tensor(audio, dtype=torch.float32, device=self.device)
        self._set_odometry(x.shape[0], poses, drives)
        feats = self.features(x)
        images, confidence = {}, {}
        for name, model in self.models.items():
            out, conf = decode_with_confidence(model, model.atnet(feats), kind or DEFAULT_KIND,
                                               reference=model.reference(feats))
            images[name] = model.encoding.decode(out).cpu().numpy()
            confidence[name] = conf.float().cpu().numpy()
        if 'depth' in images:
            images['depth'] = images['depth'].astype(np.float32, copy=False)
        return self._stand_bodies(x, images), confidence

    def predict_with_confidence(self, audio: np.ndarray, kind: str | None = None, pose=None, drive=None
                                ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """(C, N) audio -> ({modality: (H, W) image}, {modality: (H, W) float32 confidence in [0, 1]}); ``pose``,
        ``drive``: the window's odometry (:meth:`predict`)."""
        audio = np.asarray(audio)
        if audio.ndim != 2:
            raise ValueError(f'predict takes one window (channels, samples); got shape {audio.shape}')
        images, conf = self.predict_batch_with_confidence(audio[None], kind, [pose], [drive])
        return {k: v[0] for k, v in images.items()}, {k: v[0] for k, v in conf.items()}

    def predict(self, audio: np.ndarray, pose=None, drive=None) -> dict[str, np.ndarray]:
        """(C, N) float audio -> {'depth': (H,W) float32 m (NaN invalid), 'segmentation': (H,W) uint8}; ``pose``
        (4 x 4, the array frame in the odometry frame, or None) and ``drive`` (its drive's id): where the window
        was measured, for a model that fuses the layout over a drive (:attr:`fuses_layout`)."""
        audio = np.asarray(audio)
        if audio.ndim != 2:
            raise ValueError(f'predict takes one window (channels, samples); got shape {audio.shape}')
        return {k: v[0] for k, v in self.predict_batch(audio[None], [pose], [drive]).items()}
