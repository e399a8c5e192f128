# SPDX-License-Identifier: Apache-2.0
"""The one place where a training config, a camera and an array become network configs.

The trainer, the benchmark and the tests all build their models through these, so the
channel counts, manifold size and direction-map layout can never disagree between them.
"""
from __future__ import annotations

from dataclasses import replace

from audio_vision.core.camera import PinholeCamera
from audio_vision.core.classes import ClassTable
from audio_vision.core.model.baselines import EndToEndConfig
from audio_vision.core.model.checkpoint import ArrayGeometry, ModalitySpec
from audio_vision.core.model.encoding import make_encoding
from audio_vision.training.config import TrainConfig


def modality_spec(cfg: TrainConfig, modality: str, camera: PinholeCamera, array: ArrayGeometry,
                  table: ClassTable, dataset: dict | None = None) -> ModalitySpec:
    """VQ-VAE + AT-net spec of one modality: image and feature shapes derived, the rest from `cfg`."""
    encoding = make_encoding(modality, len(table))
    vq = replace(cfg.vqvae, in_channels=encoding.in_channels, out_channels=encoding.out_channels,
                 image_size=camera.width, latent_size=cfg.latent_size)
    at = replace(cfg.atnet_of(modality), in_channels=cfg.features.num_feature_channels(array.num_channels),
                 latent_size=cfg.latent_size, code_dim=vq.code_dim, **cfg.features.map_layout(),
                 **cfg.features.prior_layout())
    spec = ModalitySpec(modality, cfg.features, vq, at, camera, array, table, dataset=dict(dataset or {}),
                        depth_target=cfg.depth_target if modality == 'depth' else 'absolute')
    spec.check_consistent()
    return spec


def end_to_end_config(cfg: TrainConfig, spec: ModalitySpec) -> EndToEndConfig:
    """The end-to-end baseline beside `spec`: same input, same encoder width, direct image decoder."""
    encoding = make_encoding(spec.modality, len(spec.class_table))
    return replace(cfg.end_to_end, in_channels=spec.atnet.in_channels, out_channels=encoding.out_channels,
                   image_size=spec.camera.width, encoder_width=spec.atnet.encoder_width, depth_target=spec.depth_target,
                   **spec.features.map_layout(), **spec.features.prior_layout())
