"""AT-net: audio transformation network (DESIGN.md §5).

ResNet-18 audio encoder on the stacked spectrograms -> domain-transformation MLP (three
dense layers, ReLU, dropout 0.2) -> manifold decoder (strided transposed convs, x2
resolution and 1/2 features per stage, until the manifold size; a 1x1 projection to the
code dimension). Its output has the shape of the VQ-VAE encoder's continuous latent.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from audio_vision.core.resnet import ResNet18


@dataclass(frozen=True)
class ATNetConfig:
    in_channels: int = 22         # feature channels (FeatureConfig.num_feature_channels)
    encoder_width: int = 32       # ResNet-18 base width (64 = original)
    mlp_hidden: int = 512
    dropout: float = 0.2
    start_size: int = 4           # spatial size the MLP output is reshaped to
    start_channels: int = 128
    latent_size: int = 16         # must equal the VQ-VAE manifold size
    code_dim: int = 64

    def __post_init__(self):
        ratio = self.latent_size / self.start_size
        if ratio < 1 or ratio != 2 ** round(math.log2(ratio)):
            raise ValueError(f'latent_size / start_size must be a power of two, got '
                             f'{self.latent_size} / {self.start_size}')
        if self.start_channels >> self.num_upsamples < 1:
            raise ValueError(f'start_channels={self.start_channels} too small for {self.num_upsamples} halvings')

    @property
    def num_upsamples(self) -> int:
        return int(round(math.log2(self.latent_size / self.start_size)))


def transformation_mlp(in_features: int, hidden: int, out_features: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(in_features, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout),
        nn.Linear(hidden, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout),
        nn.Linear(hidden, out_features))


def upsampling_stages(channels: int, num_stages: int, min_channels: int = 1) -> tuple[nn.Sequential, int]:
    """Transposed-conv stages, each x2 resolution and 1/2 features (not below `min_channels`);
    returns (stages, out channels)."""
    layers = []
    for _ in range(num_stages):
        c_out = max(channels // 2, min_channels)
        layers += [nn.ConvTranspose2d(channels, c_out, 4, stride=2, padding=1),
                   nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
        channels = c_out
    return nn.Sequential(*layers), channels


class ATNet(nn.Module):
    def __init__(self, cfg: ATNetConfig):
        super().__init__()
        self.config = cfg
        self.encoder = ResNet18(cfg.in_channels, cfg.encoder_width)
        self.mlp = transformation_mlp(self.encoder.out_features, cfg.mlp_hidden,
                                      cfg.start_channels * cfg.start_size ** 2, cfg.dropout)
        self.upsample, c = upsampling_stages(cfg.start_channels, cfg.num_upsamples)
        self.project = nn.Conv2d(c, cfg.code_dim, 1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(B, F_ch, bins, frames) -> (B, code_dim, latent, latent) continuous manifold point."""
        cfg = self.config
        h = self.mlp(self.encoder(features))                                  # (B, C0*s*s)
        h = h.view(-1, cfg.start_channels, cfg.start_size, cfg.start_size)    # (B, C0, s, s)
        return self.project(self.upsample(h))
