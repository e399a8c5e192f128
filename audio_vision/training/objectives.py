# SPDX-License-Identifier: Apache-2.0
"""What the AT-net is trained against, given the frozen VQ-VAE of its modality.

The patent's objective is the L2 distance between the AT-net's latent and the VQ-VAE encoder's
continuous latent of the true image (``latent_weight``). Inference then snaps every latent cell to
its nearest codeword and decodes. Under uncertainty the L2 target pays the *mean* of the plausible
latents, which lies between codewords and decodes to none of the plausible images
(scripts/latent_mean_probe.py measures it). Two further terms keep the method (latent -> nearest
codeword -> frozen decoder) but train the latent for what inference does with it:

``code_weight``   cross-entropy of the true image's codeword per cell, with logits ``-||z - e_k||^2 / T``
                  (``T``: the codebook's median neighbour distance, :func:`codebook_temperature`). The
                  nearest codeword of ``z`` is the argmax of these logits, so this trains exactly the
                  choice inference makes, and under uncertainty it picks the most likely codeword
                  instead of averaging them.
``image_weight``  the modality's image loss (depth L1 on log-depth + validity, segmentation
                  cross-entropy) of the frozen decoder's output on the quantized latent, with the
                  straight-through gradient to ``z``: the codewords are chosen for the pixels they
                  decode to.
``dice_weight``   segmentation only: one minus the soft Dice overlap of the decoded class probabilities (the same
                  straight-through decode as ``image_weight``) with the true classes, averaged over the classes
                  present in the batch. The cross-entropy is paid per pixel, so the room's classes (90 % of the
                  pixels) dominate it; mIoU and person IoU weigh every class alike, and so does this term.
``soft_image_weight`` the same image loss of the frozen decoder on each cell's codebook mixture
                  ``softmax(logits) @ codebook`` (the code cross-entropy's logits): the straight-through
                  gradient reaches only the snapped codeword's neighbourhood, this one every codeword's
                  probability, by what the decoder makes of it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from audio_vision.core.model.configs import config_from_dict
from audio_vision.core.model.vqvae import VQVAE, codebook_temperature, codeword_sq_distances


@dataclass(frozen=True)
class ATNetObjectiveConfig:
    latent_weight: float = 1.0      # MSE to the continuous target latent (the patent's objective)
    code_weight: float = 0.0        # cross-entropy of the target latent's nearest codeword per cell
    image_weight: float = 0.0       # image loss through the frozen decoder (straight-through quantization)
    soft_image_weight: float = 0.0  # image loss through the frozen decoder of the codebook mixture the logits give
    dice_weight: float = 0.0        # segmentation: soft Dice loss of the straight-through decode (per class alike)

    def __post_init__(self):
        weights = (self.latent_weight, self.code_weight, self.image_weight, self.soft_image_weight, self.dice_weight)
        if min(weights) < 0 or max(weights) <= 0:
            raise ValueError(f'AT-net objective weights must be >= 0 with one > 0, got {weights}')


@dataclass(frozen=True)
class ATNetObjectives:
    """One objective per modality: a depth codeword stands for a patch of *continuous* depth, with
    near-duplicate neighbours that a cross-entropy would punish as wrong as a distant one, while a
    segmentation codeword stands for a discrete class layout."""

    depth: ATNetObjectiveConfig = field(default_factory=ATNetObjectiveConfig)
    segmentation: ATNetObjectiveConfig = field(default_factory=ATNetObjectiveConfig)

    @classmethod
    def from_dict(cls, d: dict | None) -> 'ATNetObjectives':
        d = dict(d or {})
        return config_from_dict(cls, {k: config_from_dict(ATNetObjectiveConfig, v) for k, v in d.items()})

    def __post_init__(self):
        if self.depth.dice_weight > 0:
            raise ValueError('dice_weight is a segmentation term (class overlap): depth has no classes; set it under '
                             'atnet_objective.segmentation')

    def of(self, modality: str) -> ATNetObjectiveConfig:
        return getattr(self, modality)


class ATNetObjective:
    """``objective(z, target_latent, target_image) -> scalar loss`` for one modality's frozen VQ-VAE.

    ``encoding`` is the modality's encoding (``loss(output, encoded_image)``); ``target_image`` is the
    encoded image, needed only when ``image_weight`` or ``soft_image_weight > 0``.
    """

    def __init__(self, cfg: ATNetObjectiveConfig, vqvae: VQVAE, encoding):
        self.cfg, self.vqvae, self.encoding = cfg, vqvae, encoding
        self.temperature = codebook_temperature(vqvae.quantizer.codebook)

    @property
    def needs_images(self) -> bool:
        return self.cfg.image_weight > 0 or self.cfg.soft_image_weight > 0 or self.cfg.dice_weight > 0

    def __call__(self, z: torch.Tensor, target_latent: torch.Tensor,
                 target_image: torch.Tensor | None = None) -> torch.Tensor:
        cfg, quantizer = self.cfg, self.vqvae.quantizer
        loss = z.new_zeros(())
        if cfg.latent_weight > 0:
            loss = loss + cfg.latent_weight * F.mse_loss(z, target_latent)
        if self.needs_images and target_image is None:
            raise ValueError('image_weight, soft_image_weight or dice_weight > 0 needs the encoded target image')
        if cfg.code_weight > 0 or cfg.soft_image_weight > 0:
            logits = -codeword_sq_distances(z, quantizer.codebook) / self.temperature   # (B, h, w, K)
        if cfg.code_weight > 0:
            codes = quantizer.nearest(target_latent)                                    # (B, h, w)
            loss = loss + cfg.code_weight * F.cross_entropy(logits.permute(0, 3, 1, 2), codes)
        if cfg.soft_image_weight > 0:
            mixture = (logits.softmax(dim=-1) @ quantizer.codebook.float()).permute(0, 3, 1, 2)  # (B, D, h, w)
            loss = loss + cfg.soft_image_weight * self.encoding.loss(self.vqvae.decoder(mixture.to(z.dtype)),
                                                                     target_image)
        if cfg.image_weight > 0 or cfg.dice_weight > 0:
            snapped = quantizer.lookup(quantizer.nearest(z))
            decoded = self.vqvae.decoder(z + (snapped - z).detach())                  # straight-through
            if cfg.image_weight > 0:
                loss = loss + cfg.image_weight * self.encoding.loss(decoded, target_image)
            if cfg.dice_weight > 0:
                loss = loss + cfg.dice_weight * soft_dice_loss(decoded, target_image)
        return loss


def soft_dice_loss(logits: torch.Tensor, onehot: torch.Tensor) -> torch.Tensor:
    """1 - mean over the classes present in ``onehot`` of 2 |P n T| / (|P| + |T|), with P the softmax of ``logits``
    (B, K, H, W) and T the one-hot classes (B, K, H, W; all-zero pixels are of unknown class and left out), each
    summed over the batch's pixels. 0 for a certain, correct prediction; a class absent from the batch adds nothing."""
    known = (onehot.sum(dim=1, keepdim=True) > 0).to(logits.dtype)
    probs = logits.softmax(dim=1) * known
    inter = (probs * onehot).sum(dim=(0, 2, 3))
    total = probs.sum(dim=(0, 2, 3)) + onehot.sum(dim=(0, 2, 3))
    present = onehot.sum(dim=(0, 2, 3)) > 0
    if not bool(present.any()):
        return logits.sum() * 0.0
    return 1.0 - (2.0 * inter[present] / total[present].clamp(min=1e-6)).mean()
