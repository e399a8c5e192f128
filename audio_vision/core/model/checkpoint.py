# SPDX-License-Identifier: Apache-2.0
"""Checkpoints: one file per modality holding the weights *and* the full config.

Layout (a plain dict, so `torch.load(..., weights_only=True)` can read it without
unpickling code):
    {'format': 'audio_vision.modality', 'version': 1, 'modality': 'depth',
     'config': {'features', 'vqvae', 'atnet', 'camera', 'class_table', 'array',
                'dataset', 'metrics', 'model_id', ['depth_target'], ...},
     'vqvae': state_dict, 'atnet': state_dict}
Float tensors may be stored as fp16 (`half=True`) and are restored to float32. A shipped file may leave out the
VQ-VAE's encoder (`vqvae_encoder=False`): inference needs only the AT-net, the codebook and the decoder; the encoder
turns true images into latents, which only training targets and the evaluation's upper bound need, and it stays in
the training run's own files.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from audio_vision.core.camera import PinholeCamera
from audio_vision.core.classes import ClassTable, DEFAULT_CLASS_TABLE
from audio_vision.core.features.config import FeatureConfig
from audio_vision.core.model.atnet import ATNet, ATNetConfig, split_input
from audio_vision.core.model.configs import config_from_dict, config_to_dict
from audio_vision.core.model.encoding import check_depth_target, make_encoding
from audio_vision.core.model.vqvae import VQVAE, VQVAEConfig

FORMAT = 'audio_vision.modality'
ENCODER_PREFIX = 'encoder.'          # the VQ-VAE's encoder in its state dict
BASELINE_FORMAT = 'audio_vision.baseline'
VERSION = 1


class CheckpointError(RuntimeError):
    """A model file is missing, unreadable or does not match what was asked for."""


@dataclass
class ArrayGeometry:
    sample_rate: int
    mic_positions: np.ndarray          # (C, 3) metres in the array frame

    @property
    def num_channels(self) -> int:
        return int(self.mic_positions.shape[0])

    def to_dict(self) -> dict:
        return {'sample_rate': int(self.sample_rate), 'mic_positions': np.asarray(self.mic_positions).tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> 'ArrayGeometry':
        return cls(int(d['sample_rate']), np.asarray(d['mic_positions'], dtype=np.float64).reshape(-1, 3))


@dataclass
class ModalitySpec:
    """Everything needed to rebuild one modality's models, besides the weights."""

    modality: str
    features: FeatureConfig
    vqvae: VQVAEConfig
    atnet: ATNetConfig
    camera: PinholeCamera
    array: ArrayGeometry
    class_table: ClassTable = DEFAULT_CLASS_TABLE
    dataset: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    depth_target: str = 'absolute'     # encoding.DEPTH_TARGETS: the VQ-VAE's images, absolute or the layout's ratio

    def to_dict(self) -> dict:
        d = {'modality': self.modality, 'features': config_to_dict(self.features),
             'vqvae': config_to_dict(self.vqvae), 'atnet': config_to_dict(self.atnet),
             'camera': self.camera.to_dict(), 'array': self.array.to_dict(),
             'class_table': self.class_table.to_list(), 'dataset': self.dataset, 'metrics': self.metrics}
        if self.depth_target != 'absolute':      # absent = absolute: the files made before the choice existed
            d['depth_target'] = self.depth_target
        return d

    @classmethod
    def from_dict(cls, d: dict) -> 'ModalitySpec':
        return cls(modality=d['modality'], features=config_from_dict(FeatureConfig, d['features']),
                   vqvae=config_from_dict(VQVAEConfig, d['vqvae']), atnet=config_from_dict(ATNetConfig, d['atnet']),
                   camera=config_from_dict(PinholeCamera, d['camera']), array=ArrayGeometry.from_dict(d['array']),
                   class_table=ClassTable.from_list(d['class_table']), dataset=d.get('dataset', {}),
                   metrics=d.get('metrics', {}), depth_target=d.get('depth_target', 'absolute'))

    def check_consistent(self) -> None:
        """The pieces of one spec must agree with each other (a hand-edited file may not)."""
        n_feat = self.features.num_feature_channels(self.array.num_channels)
        pairs = [('atnet.in_channels', self.atnet.in_channels, 'feature channels', n_feat),
                 ('atnet.latent_size', self.atnet.latent_size, 'vqvae.latent_size', self.vqvae.latent_size),
                 ('atnet.code_dim', self.atnet.code_dim, 'vqvae.code_dim', self.vqvae.code_dim),
                 ('vqvae.image_size', self.vqvae.image_size, 'camera.width', self.camera.width),
                 ('vqvae.image_size', self.vqvae.image_size, 'camera.height', self.camera.height),
                 ('features.sample_rate', self.features.sample_rate, 'array.sample_rate', self.array.sample_rate)]
        layout = {**self.features.map_layout(), **self.features.prior_layout()}
        if self.atnet.srp_norm == 'none':     # only a normalisation reads map_srp (checkpoints before it record none)
            del layout['map_srp']
        pairs += [(f'atnet.{k}', getattr(self.atnet, k), f'features {k}', v) for k, v in layout.items()]
        if self.features.direction_maps or self.features.layout_prior != 'none':
            pairs.append(('features.map_hfov_deg', self.features.map_hfov_deg, 'camera.hfov_deg', self.camera.hfov_deg))
        if self.features.layout_prior != 'none':
            pairs.append(('features.prior_size', self.features.prior_size, 'camera.width', self.camera.width))
        for name_a, a, name_b, b in pairs:
            if a != b:
                raise CheckpointError(f'{self.modality} model config is inconsistent: {name_a}={a} but {name_b}={b}')
        if self.depth_target != 'absolute' and self.modality != 'depth':
            raise CheckpointError(f'depth_target {self.depth_target!r} needs the depth modality, not {self.modality!r}')
        try:
            check_depth_target(self.depth_target, self.features.layout_prior)
        except ValueError as exc:
            raise CheckpointError(f'{self.modality} model config is inconsistent: {exc}') from None


class ModalityModel(nn.Module):
    """AT-net + VQ-VAE (codebook and decoder frozen at inference) + encoding for one modality."""

    def __init__(self, spec: ModalitySpec):
        super().__init__()
        spec.check_consistent()
        self.spec = spec
        self.encoding = make_encoding(spec.modality, len(spec.class_table))
        self.vqvae = VQVAE(spec.vqvae)
        self.atnet = ATNet(spec.atnet)

    @property
    def relative(self) -> bool:
        """Whether the VQ-VAE's images are relative to a reference read from the features (``spec.depth_target``)."""
        return self.spec.depth_target != 'absolute'

    def reference(self, features: torch.Tensor | None) -> torch.Tensor | None:
        """(B, H, W) what the VQ-VAE's images are relative to (``spec.depth_target``), read from the layout prior in
        ``features``; None for absolute images."""
        if not self.relative:
            return None
        return self.encoding.reference(split_input(self.spec.atnet, features)[2])

    def absolute(self, output: torch.Tensor, reference: torch.Tensor | None) -> torch.Tensor:
        """A VQ-VAE decoder output -> the network output the encoding decodes (the reference added back)."""
        return output if reference is None else self.encoding.shifted(output, reference)

    def targets(self, images: torch.Tensor, features: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Raw images (B, H, W) of the windows of ``features`` (None will do where not :attr:`relative`) -> (the
        images encoded as the VQ-VAE sees them, relative to the reference where the spec has one; that reference or
        None)."""
        reference = self.reference(features)
        return self.encoding.encode(images, reference), reference

    @property
    def has_vqvae_encoder(self) -> bool:
        """Whether the VQ-VAE's encoder was loaded (a shipped inference file leaves it out)."""
        return self.vqvae.encoder is not None

    def reconstruction(self, images: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """decode(quantize(encode(GT))) of raw images (B, H, W) as a network output: the manifold's upper bound."""
        if not self.has_vqvae_encoder:
            raise CheckpointError(f'the {self.spec.modality} model holds no VQ-VAE encoder (a shipped inference file): '
                                  'the reconstruction needs the training run\'s own file (<run-dir>/models)')
        x, reference = self.targets(images, features)
        return self.absolute(self.vqvae.decode_latent(self.vqvae.encode(x)), reference)

    def forward(self, features: torch.Tensor, quantize: bool = True) -> torch.Tensor:
        """(B, F_ch, bins, frames) -> (B, out_channels, H, W) network output (what the encoding decodes)."""
        z = self.atnet(features)
        out = self.vqvae.decode_latent(z) if quantize else self.vqvae.decoder(z)
        return self.absolute(out, self.reference(features))


def state_for_storage(module: nn.Module, half: bool) -> dict[str, torch.Tensor]:
    return {k: (v.half() if half and v.is_floating_point() else v).detach().cpu().clone()
            for k, v in module.state_dict().items()}


def load_state_for_compute(module: nn.Module, state: dict[str, torch.Tensor], path) -> None:
    """Load a (possibly fp16) stored state into `module`, as a CheckpointError if it does not fit."""
    reference = module.state_dict()
    try:
        module.load_state_dict({k: v.to(reference[k].dtype) if k in reference else v for k, v in state.items()})
    except (KeyError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0]
        raise CheckpointError(f'model file {path}: weights do not fit the stored config: {first}') from None


def write_payload(path: str | Path, payload: dict) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + '.tmp')
    torch.save(payload, tmp)
    tmp.replace(path)          # atomic: a crash never leaves a truncated checkpoint behind


def model_id_of(spec_dict: dict, states: dict) -> str:
    h = hashlib.sha256(json.dumps(spec_dict, sort_keys=True).encode())
    for name in sorted(states):
        for k, v in sorted(states[name].items()):
            h.update(k.encode())
            h.update(v.float().numpy().tobytes())
    return h.hexdigest()[:12]


def save_checkpoint(path: str | Path, model: ModalityModel, half: bool = False, extra: dict | None = None,
                    vqvae_encoder: bool = True) -> str:
    """Write `model` with its spec; returns the model id (a content hash). ``vqvae_encoder=False`` leaves the VQ-VAE's
    encoder out (what inference does not run)."""
    spec = model.spec.to_dict()
    vqvae = state_for_storage(model.vqvae, half)
    if not vqvae_encoder:
        vqvae = {k: v for k, v in vqvae.items() if not k.startswith(ENCODER_PREFIX)}
    states = {'vqvae': vqvae, 'atnet': state_for_storage(model.atnet, half)}
    model_id = model_id_of(spec, states)
    write_payload(path, {'format': FORMAT, 'version': VERSION, 'modality': model.spec.modality,
                         'config': {**spec, 'model_id': model_id, **(extra or {})}, **states})
    return model_id


def read_checkpoint(path: str | Path, fmt: str = FORMAT) -> dict[str, Any]:
    """Load and validate the raw payload, with a clear CheckpointError for every failure."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f'model file {path} not found; train one with `python -m audio_vision train` '
                              f'or point model_dir at a directory holding depth.pt / segmentation.pt')
    try:
        payload = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means the same thing to the user
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f'model file {path} is not a loadable audio_vision checkpoint '
                              f'(truncated, corrupt, or contains code): {first}') from None
    if not isinstance(payload, dict) or payload.get('format') != fmt:
        raise CheckpointError(f'model file {path} is not an audio_vision checkpoint (format tag missing)')
    if payload.get('version') != VERSION:
        raise CheckpointError(f'model file {path} has checkpoint version {payload.get("version")}, '
                              f'this audio_vision reads version {VERSION}')
    return payload


def load_checkpoint(path: str | Path, expect: dict[str, Any] | None = None,
                    device: str | torch.device = 'cpu') -> ModalityModel:
    """Rebuild a ModalityModel; `expect` (e.g. {'modality': 'depth', 'num_channels': 8,
    'sample_rate': 16000}) is checked against the stored config, naming both values on mismatch."""
    payload = read_checkpoint(path)
    try:
        spec = ModalitySpec.from_dict(payload['config'])
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f'model file {path} has an invalid config: {exc}') from None
    stored = {'modality': spec.modality, 'num_channels': spec.array.num_channels,
              'sample_rate': spec.features.sample_rate, 'window_samples': spec.features.window_samples,
              'image_size': spec.vqvae.image_size, 'latent_size': spec.vqvae.latent_size}
    for key, want in (expect or {}).items():
        if key not in stored:
            raise ValueError(f'cannot check unknown checkpoint property {key!r}; known: {sorted(stored)}')
        if stored[key] != want:
            raise CheckpointError(f'model file {path} does not match: it has {key}={stored[key]!r} '
                                  f'but {want!r} was requested')
    model = ModalityModel(spec)
    for name in ('vqvae', 'atnet'):
        if name not in payload:
            raise CheckpointError(f'model file {path} has no {name} weights')
    if not any(k.startswith(ENCODER_PREFIX) for k in payload['vqvae']):
        model.vqvae.encoder = None           # a shipped inference file: no random encoder left to use by mistake
    for name in ('vqvae', 'atnet'):
        load_state_for_compute(getattr(model, name), payload[name], path)
    model.model_id = payload['config'].get('model_id', 'unknown')
    return model.to(device).eval()
