# SPDX-License-Identifier: Apache-2.0
"""AT-net: audio transformation network (docs/ARCHITECTURE.md, "The method").

ResNet-18 audio encoder on the stacked spectrograms -> domain-transformation MLP (three
dense layers, ReLU, dropout 0.2) -> manifold decoder (strided transposed convs, x2
resolution and 1/2 features per stage, until the manifold size; a 1x1 projection to the
code dimension). Its output has the shape of the VQ-VAE encoder's continuous latent.

With direction maps in the input (FeatureConfig.direction_maps), a small convolutional branch
reads the maps, which are registered to the image, and joins the decoder at the manifold's
resolution: what is heard from a direction lands in the latent cells of that direction,
instead of having to pass through the global embedding. The layout prior (FeatureConfig.layout_prior:
the room the sonar front-end measures, rendered at image resolution) joins at the same place through
its own strided encoder (:class:`PriorEncoder`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from audio_vision.core.features.packing import unpack_maps
from audio_vision.core.model.resnet import ResNet18


@dataclass(frozen=True)
class InputBranches:
    """The packed inputs beside the spectrogram encoder, shared by ATNetConfig and EndToEndConfig (their fields are
    flat in a checkpoint's config)."""

    # Direction-map branch (0 maps = none); layout from FeatureConfig.map_layout(): num_direction_maps,
    # map_grid, map_margin, map_planes (in_channels counts the planes).
    map_channels: int = 0
    map_grid: int = 0
    map_margin: int = 0
    map_planes: int = 0
    map_features: int = 64
    # The leading direction maps that are SRP-PHAT band maps (FeatureConfig.map_layout(): num_srp_maps), and what
    # the branch does to each window's SRP maps first (SRP_NORMS): their level depends on the room's acoustics, not
    # only on where a source is (docs/RESULTS.md, "SRP-PHAT maps").
    map_srp: int = 0
    srp_norm: str = 'none'
    # Layout-prior branch (0 maps = none): FeatureConfig.prior_layout() (num_prior_maps, prior_size, prior_planes).
    prior_channels: int = 0
    prior_size: int = 0
    prior_planes: int = 0
    prior_features: int = 32


@dataclass(frozen=True)
class ATNetConfig(InputBranches):
    in_channels: int = 0          # feature channels: FeatureConfig.num_feature_channels (training/specs.py)
    encoder_width: int = 32       # ResNet-18 base width (64 = original)
    mlp_hidden: int = 512
    dropout: float = 0.2
    start_size: int = 4           # spatial size the MLP output is reshaped to
    start_channels: int = 128
    latent_size: int = 16         # must equal the VQ-VAE manifold size
    code_dim: int = 64
    # 3x3 conv layers (BatchNorm, ReLU) between the branches' join and the projection to the code dimension: room
    # for the embedding, the direction maps and the prior to be combined across neighbouring cells (the end-to-end
    # baseline has its last upsampling stages and its head there; 0: the projection follows the join at once).
    joined_convs: int = 0

    def __post_init__(self):
        ratio = self.latent_size / self.start_size
        if ratio < 1 or ratio != 2 ** round(math.log2(ratio)):
            raise ValueError(f'latent_size / start_size must be a power of two, got '
                             f'{self.latent_size} / {self.start_size}')
        if self.joined_convs < 0:
            raise ValueError(f'joined_convs must be >= 0 (3x3 layers after the join), got {self.joined_convs}')
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


#: InputBranches.srp_norm: 'none' (as computed), 'center' (each window's SRP map of each band less its mean over the
#: directions: the map's level removed, its contrast kept), 'standardize' (centred and divided by its standard
#: deviation over the directions), 'drop' (zeroed: the network does not read them; the ablation that measures what
#: they add, with everything else, the chirp's echo maps included, as it is)
SRP_NORMS = ('none', 'center', 'standardize', 'drop')


def normalize_srp(maps: torch.Tensor, count: int, norm: str) -> torch.Tensor:
    """(B, maps, G, G) direction maps -> the same with the leading ``count`` (the SRP-PHAT band maps) normalised per
    window and map over the grid as ``norm`` says (SRP_NORMS)."""
    if norm == 'none' or not count:
        return maps
    srp = maps[:, :count]
    if norm == 'drop':
        return torch.cat([torch.zeros_like(srp), maps[:, count:]], dim=1)
    srp = srp - srp.mean(dim=(-2, -1), keepdim=True)
    if norm == 'standardize':
        srp = srp / (srp.std(dim=(-2, -1), keepdim=True) + 1e-6)
    return torch.cat([srp, maps[:, count:]], dim=1)


class DirectionMapEncoder(nn.Module):
    """(B, maps, G, G) direction maps -> (B, features, G - 2 margin, G - 2 margin): the SRP-PHAT maps normalised
    (:func:`normalize_srp`), one unpadded 3x3 conv per margin cell (the margin is context for the border cells),
    then a padded one."""

    def __init__(self, in_maps: int, features: int, margin: int, srp_maps: int = 0, srp_norm: str = 'none'):
        super().__init__()
        if srp_norm not in SRP_NORMS:
            raise ValueError(f'unknown srp_norm {srp_norm!r}; expected one of {SRP_NORMS}')
        if not 0 <= srp_maps <= in_maps:
            raise ValueError(f'srp_maps must be within 0 .. {in_maps} (the direction maps), got {srp_maps}')
        self.srp_maps, self.srp_norm = srp_maps, srp_norm
        layers, c = [], in_maps
        for _ in range(margin):
            layers += [nn.Conv2d(c, features, 3), nn.BatchNorm2d(features), nn.ReLU(inplace=True)]
            c = features
        layers += [nn.Conv2d(c, features, 3, padding=1), nn.BatchNorm2d(features), nn.ReLU(inplace=True)]
        self.net = nn.Sequential(*layers)

    def forward(self, maps: torch.Tensor, size: int) -> torch.Tensor:
        out = self.net(normalize_srp(maps, self.srp_maps, self.srp_norm))
        if out.shape[-1] != size:
            out = F.interpolate(out, size=(size, size), mode='bilinear', align_corners=False)
        return out


class PriorEncoder(nn.Module):
    """(B, maps, S, S) layout prior at image resolution -> (B, features, size, size): a 3x3 conv at full
    resolution, then stride-2 convs (4x4) down to ``size`` (S / size a power of two), then a 3x3 conv."""

    def __init__(self, in_maps: int, features: int, in_size: int, size: int):
        super().__init__()
        ratio = in_size / size
        if ratio < 1 or ratio != 2 ** round(math.log2(ratio)):
            raise ValueError(f'prior_size / join size must be a power of two, got {in_size} / {size}')
        c = max(features // 2, 8)
        layers = [nn.Conv2d(in_maps, c, 3, padding=1), nn.BatchNorm2d(c), nn.ReLU(inplace=True)]
        for _ in range(int(round(math.log2(ratio)))):
            layers += [nn.Conv2d(c, features, 4, stride=2, padding=1), nn.BatchNorm2d(features), nn.ReLU(inplace=True)]
            c = features
        layers += [nn.Conv2d(c, features, 3, padding=1), nn.BatchNorm2d(features), nn.ReLU(inplace=True)]
        self.net = nn.Sequential(*layers)

    def forward(self, prior: torch.Tensor) -> torch.Tensor:
        return self.net(prior)


def fusion(channels: int, extra_features: int, out_channels: int) -> nn.Sequential:
    """Joins decoder features and the branches' (direction maps, layout prior) at the same resolution."""
    return nn.Sequential(nn.Conv2d(channels + extra_features, out_channels, 3, padding=1),
                         nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))


def direction_map_encoder(cfg: InputBranches) -> DirectionMapEncoder:
    """The direction-map branch of an ATNet or EndToEnd config."""
    return DirectionMapEncoder(cfg.map_channels, cfg.map_features, cfg.map_margin, cfg.map_srp, cfg.srp_norm)


def branch_features(cfg: InputBranches) -> int:
    """Channels the direction-map and layout-prior branches add where they join the decoder."""
    return (cfg.map_features if cfg.map_channels else 0) + (cfg.prior_features if cfg.prior_channels else 0)


def join_branches(net: nn.Module, h: torch.Tensor, maps: torch.Tensor | None,
                  prior: torch.Tensor | None) -> torch.Tensor:
    """Decoder features (B, c, s, s) fused (``net.fuse``) with the branches' encodings at the same resolution
    (``net.map_encoder``, ``net.prior_encoder``); ``h`` itself when the net has no branch."""
    branches = ([net.map_encoder(maps, h.shape[-1])] if maps is not None else []) + \
        ([net.prior_encoder(prior)] if prior is not None else [])
    return net.fuse(torch.cat([h] + branches, dim=1)) if branches else h


def split_input(cfg: InputBranches,
                features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """(B, F_ch, bins, frames) -> the spectrogram-encoder channels, the direction maps and the layout prior
    (None where the config has no such branch), for an ATNet or EndToEnd config."""
    rest, prior = unpack_maps(features, cfg.prior_channels, cfg.prior_size, cfg.prior_planes)
    spectral, maps = unpack_maps(rest, cfg.map_channels, cfg.map_grid, cfg.map_planes)
    return spectral, maps, prior


def feature_encoder(cfg) -> ResNet18:
    """The ResNet-18 over the feature channels but the packed planes, of an ATNet or EndToEnd config;
    refuses an unset ``in_channels``."""
    packed = cfg.map_planes + cfg.prior_planes
    if cfg.in_channels <= packed:
        raise ValueError(f'{type(cfg).__name__}.in_channels ({cfg.in_channels}) must be the number of feature '
                         'channels, FeatureConfig.num_feature_channels(num_mics) (training/specs.py derives it)')
    return ResNet18(cfg.in_channels - packed, cfg.encoder_width)


class ATNet(nn.Module):
    def __init__(self, cfg: ATNetConfig):
        super().__init__()
        self.config = cfg
        self.encoder = feature_encoder(cfg)
        self.mlp = transformation_mlp(self.encoder.out_features, cfg.mlp_hidden,
                                      cfg.start_channels * cfg.start_size ** 2, cfg.dropout)
        self.upsample, c = upsampling_stages(cfg.start_channels, cfg.num_upsamples)
        if cfg.map_channels:
            self.map_encoder = direction_map_encoder(cfg)
        if cfg.prior_channels:
            self.prior_encoder = PriorEncoder(cfg.prior_channels, cfg.prior_features, cfg.prior_size, cfg.latent_size)
        if branch_features(cfg):
            self.fuse = fusion(c, branch_features(cfg), c)
        self.joined = nn.Sequential(*[layer for _ in range(cfg.joined_convs) for layer in (
            nn.Conv2d(c, c, 3, padding=1), nn.BatchNorm2d(c), nn.ReLU(inplace=True))])
        self.project = nn.Conv2d(c, cfg.code_dim, 1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(B, F_ch, bins, frames) -> (B, code_dim, latent, latent) continuous manifold point."""
        spectral, maps, prior = split_input(self.config, features)
        return self.decode_manifold(self.mlp(self.encoder(spectral)), maps, prior)

    def decode_manifold(self, h: torch.Tensor, maps: torch.Tensor | None,
                        prior: torch.Tensor | None = None) -> torch.Tensor:
        """MLP output (B, C0*s*s) (+ direction maps, + layout prior) -> (B, code_dim, latent, latent)."""
        cfg = self.config
        h = self.upsample(h.view(-1, cfg.start_channels, cfg.start_size, cfg.start_size))   # (B, c, latent, latent)
        return self.project(self.joined(join_branches(self, h, maps, prior)))
