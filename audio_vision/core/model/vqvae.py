# SPDX-License-Identifier: Apache-2.0
"""VQ-VAE: learns the manifold of one visual modality (docs/ARCHITECTURE.md, "The method").

Encoder: strided 4x4 convs (x2 downsampling each; 64 then 128 features), a 3x3 conv,
three residual blocks, a 1x1 projection to the code dimension. Quantizer: nearest of
`codebook_size` codewords in L2, straight-through gradients, commitment loss, EMA codebook
updates and restart of dead codewords from the batch (guards against collapse). Decoder
mirrors the encoder with transposed convs.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class VQVAEConfig:
    in_channels: int = 2
    out_channels: int = 2
    image_size: int = 64
    latent_size: int = 16        # manifold h = w: 8, 16 or 32 for a 64x64 image
    hidden: int = 128            # features after the second strided conv (first has hidden // 2 = 64)
    res_blocks: int = 3
    res_hidden: int = 32          # bottleneck of the residual blocks
    codebook_size: int = 64
    code_dim: int = 64
    commitment: float = 0.25
    ema_decay: float = 0.99
    dead_code_threshold: float = 1e-3  # EMA usage below which a codeword is restarted

    def __post_init__(self):
        ratio = self.image_size / self.latent_size
        if ratio < 2 or ratio != 2 ** round(math.log2(ratio)):
            raise ValueError(f'image_size / latent_size must be a power of two >= 2, got '
                             f'{self.image_size} / {self.latent_size}')

    @property
    def num_downsamples(self) -> int:
        return int(round(math.log2(self.image_size / self.latent_size)))


class ResidualBlock(nn.Module):
    def __init__(self, channels: int, hidden: int):
        super().__init__()
        self.block = nn.Sequential(nn.ReLU(), nn.Conv2d(channels, hidden, 3, padding=1),
                                   nn.ReLU(), nn.Conv2d(hidden, channels, 1))

    def forward(self, x):
        return x + self.block(x)


def _stage_channels(cfg: VQVAEConfig) -> list[int]:
    """Output features of each strided conv: 64, 128, 128, ... (first is hidden // 2)."""
    return [cfg.hidden // 2] + [cfg.hidden] * (cfg.num_downsamples - 1)


class Encoder(nn.Module):
    def __init__(self, cfg: VQVAEConfig):
        super().__init__()
        layers, c_in = [], cfg.in_channels
        for c_out in _stage_channels(cfg):
            layers += [nn.Conv2d(c_in, c_out, 4, stride=2, padding=1), nn.ReLU()]
            c_in = c_out
        layers.append(nn.Conv2d(c_in, cfg.hidden, 3, padding=1))
        layers += [ResidualBlock(cfg.hidden, cfg.res_hidden) for _ in range(cfg.res_blocks)]
        layers += [nn.ReLU(), nn.Conv2d(cfg.hidden, cfg.code_dim, 1)]
        self.net = nn.Sequential(*layers)

    def forward(self, x):                 # (B, in, H, W) -> (B, D, h, w)
        return self.net(x)


class Decoder(nn.Module):
    def __init__(self, cfg: VQVAEConfig):
        super().__init__()
        layers = [nn.Conv2d(cfg.code_dim, cfg.hidden, 3, padding=1)]
        layers += [ResidualBlock(cfg.hidden, cfg.res_hidden) for _ in range(cfg.res_blocks)]
        layers.append(nn.ReLU())
        channels = _stage_channels(cfg)[::-1]           # e.g. [128, 64]
        c_in = cfg.hidden
        for i, c_stage in enumerate(channels):
            last = i == len(channels) - 1
            c_out = cfg.out_channels if last else channels[i + 1]
            layers.append(nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1))
            if not last:
                layers.append(nn.ReLU())
            c_in = c_out
        self.net = nn.Sequential(*layers)

    def forward(self, z):                 # (B, D, h, w) -> (B, out, H, W)
        return self.net(z)


def codeword_sq_distances(z: torch.Tensor, codebook: torch.Tensor, full: bool = True) -> torch.Tensor:
    """(B, D, h, w) latents, (K, D) codebook -> (B, h, w, K) squared L2 distances to every codeword.

    ``||z - e||^2 = ||z||^2 - 2 z.e + ||e||^2``, in float32 and clamped at 0. ``full=False`` leaves out
    ``||z||^2``, the same for every codeword of a cell, in the latent's dtype: what the nearest codeword (the
    inference path) needs, one term cheaper. Inference, the confidence and the training objective all use it.
    """
    flat = z.permute(0, 2, 3, 1).reshape(-1, codebook.shape[1])
    if full:
        flat, codebook = flat.float(), codebook.float()
    cross = 2.0 * flat @ codebook.t()
    if full:
        d = (flat.square().sum(1, keepdim=True) - cross + codebook.square().sum(1)[None]).clamp_min(0.0)
    else:
        d = codebook.square().sum(1)[None] - cross
    return d.reshape(z.shape[0], z.shape[2], z.shape[3], codebook.shape[0])


def codebook_temperature(codebook: torch.Tensor) -> float:
    """Median squared distance from each codeword to its nearest other codeword (> 0): the codebook's own
    scale of distances (the confidence's and the codeword cross-entropy's temperature)."""
    cb = codebook.float()
    d = torch.cdist(cb, cb).square()
    d.fill_diagonal_(float('inf'))
    return max(float(d.min(dim=1).values.median()), 1e-12)


@dataclass
class QuantizerOutput:
    quantized: torch.Tensor     # (B, D, h, w), straight-through
    indices: torch.Tensor       # (B, h, w) codeword ids
    loss: torch.Tensor          # commitment loss (codebook is updated by EMA)
    perplexity: torch.Tensor    # exp(entropy) of codeword usage in the batch


class VectorQuantizer(nn.Module):
    def __init__(self, codebook_size: int, code_dim: int, commitment: float = 0.25,
                 ema_decay: float = 0.99, dead_code_threshold: float = 1e-3):
        super().__init__()
        self.codebook_size, self.code_dim = codebook_size, code_dim
        self.commitment, self.decay, self.dead_threshold = commitment, ema_decay, dead_code_threshold
        self.register_buffer('codebook', torch.randn(codebook_size, code_dim) * 0.1)
        self.register_buffer('ema_count', torch.ones(codebook_size))
        self.register_buffer('ema_sum', self.codebook.clone())
        self.register_buffer('usage', torch.ones(codebook_size) / codebook_size)

    def nearest(self, z: torch.Tensor) -> torch.Tensor:
        """(B, D, h, w) continuous latents -> (B, h, w) ids of the L2-nearest codewords."""
        return codeword_sq_distances(z, self.codebook, full=False).argmin(dim=-1)

    def lookup(self, indices: torch.Tensor) -> torch.Tensor:
        """(B, h, w) ids -> (B, D, h, w) codewords."""
        return F.embedding(indices, self.codebook).permute(0, 3, 1, 2).contiguous()

    def forward(self, z: torch.Tensor) -> QuantizerOutput:
        indices = self.nearest(z)
        quantized = self.lookup(indices)
        one_hot = F.one_hot(indices.reshape(-1), self.codebook_size).type_as(z)
        probs = one_hot.mean(0)
        if self.training:
            self._ema_update(z.detach(), one_hot, probs)
        loss = self.commitment * F.mse_loss(z, quantized.detach())
        quantized = z + (quantized - z).detach()                   # straight-through estimator
        perplexity = torch.exp(-(probs * torch.log(probs + 1e-10)).sum())
        return QuantizerOutput(quantized, indices, loss, perplexity)

    @torch.no_grad()
    def _ema_update(self, z, one_hot, probs):
        flat = z.permute(0, 2, 3, 1).reshape(-1, self.code_dim)
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            counts, sums = one_hot.sum(0), one_hot.t() @ flat
            torch.distributed.all_reduce(counts)
            torch.distributed.all_reduce(sums)
            probs = counts / counts.sum()
        else:
            counts, sums = one_hot.sum(0), one_hot.t() @ flat
        self.ema_count.mul_(self.decay).add_(counts, alpha=1 - self.decay)
        self.ema_sum.mul_(self.decay).add_(sums, alpha=1 - self.decay)
        n = self.ema_count.sum()
        count = (self.ema_count + 1e-5) / (n + self.codebook_size * 1e-5) * n   # Laplace smoothing
        self.codebook.copy_(self.ema_sum / count[:, None])
        self.usage.mul_(self.decay).add_(probs, alpha=1 - self.decay)
        # Restart dead codewords at random encoder outputs of this batch, so none stays unused.
        dead = self.usage < self.dead_threshold / self.codebook_size
        if dead.any():
            picks = flat[torch.randint(0, flat.shape[0], (int(dead.sum()),), device=flat.device)]
            if torch.distributed.is_available() and torch.distributed.is_initialized():
                torch.distributed.broadcast(picks, src=0)   # replicas must stay identical
            self.codebook[dead] = picks
            self.ema_sum[dead] = picks
            self.ema_count[dead] = 1.0
            self.usage[dead] = 1.0 / self.codebook_size

    def fraction_used(self) -> float:
        """Share of codewords with non-negligible recent usage (collapse shows as a small value)."""
        return float((self.usage > 0.1 / self.codebook_size).float().mean())


@dataclass
class VQVAEOutput:
    reconstruction: torch.Tensor
    latent: torch.Tensor          # continuous encoder output z_e (B, D, h, w)
    indices: torch.Tensor
    vq_loss: torch.Tensor
    perplexity: torch.Tensor


class VQVAE(nn.Module):
    def __init__(self, cfg: VQVAEConfig):
        super().__init__()
        self.config = cfg
        self.encoder = Encoder(cfg)
        self.quantizer = VectorQuantizer(cfg.codebook_size, cfg.code_dim, cfg.commitment,
                                         cfg.ema_decay, cfg.dead_code_threshold)
        self.decoder = Decoder(cfg)

    def encode(self, x):
        return self.encoder(x)

    def decode_latent(self, z):
        """Snap continuous latents to the nearest codewords, then decode (the inference path)."""
        return self.decoder(self.quantizer.lookup(self.quantizer.nearest(z)))

    def forward(self, x) -> VQVAEOutput:
        z = self.encoder(x)
        q = self.quantizer(z)
        return VQVAEOutput(self.decoder(q.quantized), z, q.indices, q.loss, q.perplexity)
