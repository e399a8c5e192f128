# SPDX-License-Identifier: Apache-2.0
"""Baselines kept beside the method in every results table (docs/ARCHITECTURE.md, "The method").

- EndToEnd: the same ResNet-18 audio encoder and MLP, but a conv decoder straight to the
  image, trained with the pixel loss (no manifold, no codebook).
- MeanImage: the training set's mean image (per-pixel mean log-depth; per-pixel majority class).
AT-net without quantization and the VQ-VAE reconstruction need no extra model.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from audio_vision.core.model.atnet import (InputBranches, PriorEncoder, branch_features, direction_map_encoder,
                                           feature_encoder, fusion, join_branches, split_input, transformation_mlp,
                                           upsampling_stages)
from audio_vision.core.model.checkpoint import (BASELINE_FORMAT, VERSION, CheckpointError, ModalitySpec,
                                                load_state_for_compute, read_checkpoint, state_for_storage,
                                                write_payload)
from audio_vision.core.model.configs import config_from_dict, config_to_dict
from audio_vision.core.model.encoding import DEPTH_TARGETS, DepthEncoding, make_encoding


@dataclass(frozen=True)
class EndToEndConfig(InputBranches):
    """The branches (InputBranches) join the decoder at ``join_size``; the prior's images are read again at image
    resolution by the head."""

    in_channels: int = 0          # feature channels: FeatureConfig.num_feature_channels (training/specs.py)
    out_channels: int = 2
    image_size: int = 64
    encoder_width: int = 32
    mlp_hidden: int = 512
    dropout: float = 0.2
    start_size: int = 4
    start_channels: int = 128
    min_channels: int = 32        # the image-resolution stages keep at least this many features
    # encoding.DEPTH_TARGETS: 'layout_ratio' adds the layout prior's normalised log-depth to the head's output (the
    # head predicts the departure from the measured room), as the method's VQ-VAE does with the same setting.
    depth_target: str = 'absolute'

    @property
    def num_upsamples(self) -> int:
        return int(round(math.log2(self.image_size / self.start_size)))

    @property
    def map_size(self) -> int:
        return self.map_grid - 2 * self.map_margin

    @property
    def join_size(self) -> int:
        """Resolution at which the branches join the decoder: the direction maps' grid, else a quarter of the
        image for the layout prior alone."""
        return self.map_size if self.map_channels else max(self.start_size, self.image_size // 4)

    @property
    def upsamples_before_maps(self) -> int:
        """Decoder stages that run before the branches join (all of them without branches)."""
        if not (self.map_channels or self.prior_channels):
            return self.num_upsamples
        return max(0, min(self.num_upsamples, int(round(math.log2(self.join_size / self.start_size)))))


class EndToEnd(nn.Module):
    def __init__(self, cfg: EndToEndConfig):
        super().__init__()
        self.config = cfg
        self.encoder = feature_encoder(cfg)
        self.mlp = transformation_mlp(self.encoder.out_features, cfg.mlp_hidden,
                                      cfg.start_channels * cfg.start_size ** 2, cfg.dropout)
        self.upsample, c = upsampling_stages(cfg.start_channels, cfg.upsamples_before_maps, cfg.min_channels)
        if cfg.map_channels:
            self.map_encoder = direction_map_encoder(cfg)
        if cfg.prior_channels:
            join = cfg.start_size * 2 ** cfg.upsamples_before_maps
            self.prior_encoder = PriorEncoder(cfg.prior_channels, cfg.prior_features, cfg.prior_size, join)
        if branch_features(cfg):
            self.fuse = fusion(c, branch_features(cfg), c)
            self.upsample_rest, c = upsampling_stages(c, cfg.num_upsamples - cfg.upsamples_before_maps,
                                                      cfg.min_channels)
        # The head reads the prior's images again at image resolution (its edges are sharper than the join's grid).
        self.head = nn.Conv2d(c + cfg.prior_channels, cfg.out_channels, 3, padding=1)
        self.reference_encoding = None
        if cfg.depth_target not in DEPTH_TARGETS:
            raise ValueError(f'unknown EndToEndConfig.depth_target {cfg.depth_target!r}; '
                             f'expected one of {DEPTH_TARGETS}')
        if cfg.depth_target != 'absolute':
            if not cfg.prior_channels or cfg.prior_size != cfg.image_size or cfg.out_channels != 2:
                raise ValueError(f'EndToEndConfig.depth_target {cfg.depth_target!r} needs a depth head (2 channels) '
                                 f'and the layout prior at image resolution (prior_channels {cfg.prior_channels}, '
                                 f'prior_size {cfg.prior_size}, image_size {cfg.image_size})')
            self.reference_encoding = DepthEncoding()

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(B, F_ch, bins, frames) -> (B, out_channels, H, W) network output (what the encoding decodes)."""
        cfg = self.config
        spectral, maps, prior = split_input(cfg, features)
        h = self.mlp(self.encoder(spectral)).view(-1, cfg.start_channels, cfg.start_size, cfg.start_size)
        h = self.upsample(h)
        if branch_features(cfg):
            h = self.upsample_rest(join_branches(self, h, maps, prior))
        if prior is not None:
            image_prior = prior
            if prior.shape[-1] != h.shape[-1]:
                image_prior = F.interpolate(prior, size=h.shape[-2:], mode='bilinear', align_corners=False)
            h = torch.cat([h, image_prior], dim=1)
        out = self.head(h)
        if self.reference_encoding is not None:
            out = self.reference_encoding.shifted(out, self.reference_encoding.reference(prior))
        return out


class MeanImage:
    """Predicts the same image for every input: the training set's per-pixel summary."""

    def __init__(self, depth: np.ndarray | None = None, segmentation: np.ndarray | None = None):
        self.depth, self.segmentation = depth, segmentation

    @classmethod
    def fit(cls, depths: np.ndarray | None, labels: np.ndarray | None, num_classes: int) -> 'MeanImage':
        depth = seg = None
        if depths is not None:
            # Geometric mean: the mean of log-depth minimises the log errors the metrics weigh.
            with np.errstate(invalid='ignore', divide='ignore'):
                depth = np.exp(np.nanmean(np.log(np.where(depths > 0, depths, np.nan)), axis=0)).astype(np.float32)
        if labels is not None:
            counts = np.stack([(labels == k).sum(axis=0) for k in range(num_classes)])
            seg = counts.argmax(axis=0).astype(np.uint8)
        return cls(depth, seg)

    def predict(self, batch: int) -> dict[str, np.ndarray]:
        out = {}
        if self.depth is not None:
            out['depth'] = np.repeat(self.depth[None], batch, axis=0)
        if self.segmentation is not None:
            out['segmentation'] = np.repeat(self.segmentation[None], batch, axis=0)
        return out

    def state(self) -> dict[str, torch.Tensor]:
        return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in
                (('depth', self.depth), ('segmentation', self.segmentation)) if v is not None}


def save_end_to_end(path, model: EndToEnd, spec: ModalitySpec, half: bool = False) -> None:
    """The end-to-end baseline of one modality, with the spec of the method it is compared to."""
    write_payload(path, {'format': BASELINE_FORMAT, 'version': VERSION, 'kind': 'end_to_end',
                         'modality': spec.modality, 'spec': spec.to_dict(),
                         'config': config_to_dict(model.config), 'weights': state_for_storage(model, half)})


def load_end_to_end(path, device='cpu') -> tuple[EndToEnd, ModalitySpec]:
    payload = read_checkpoint(path, fmt=BASELINE_FORMAT)
    if payload.get('kind') != 'end_to_end':
        raise CheckpointError(f'{path} holds a {payload.get("kind")!r} baseline, not end_to_end')
    spec = ModalitySpec.from_dict(payload['spec'])
    model = EndToEnd(config_from_dict(EndToEndConfig, payload['config']))
    load_state_for_compute(model, payload['weights'], path)
    model.encoding = make_encoding(spec.modality, len(spec.class_table))
    return model.to(device).eval(), spec


def save_mean(path, mean: MeanImage) -> None:
    write_payload(path, {'format': BASELINE_FORMAT, 'version': VERSION, 'kind': 'mean', **mean.state()})


def load_mean(path) -> MeanImage:
    payload = read_checkpoint(path, fmt=BASELINE_FORMAT)
    if payload.get('kind') != 'mean':
        raise CheckpointError(f'{path} holds a {payload.get("kind")!r} baseline, not mean')
    return MeanImage(*(payload[k].numpy() if k in payload else None for k in ('depth', 'segmentation')))
