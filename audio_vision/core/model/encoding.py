# SPDX-License-Identifier: Apache-2.0
"""The image encoding of each visual modality: how its images become network tensors and back, and its loss.

(The message codec, numpy <-> message fields, is another thing: :mod:`audio_vision.core.stream.codec`.)

depth: 2 input channels — normalised log-depth (0 where invalid) and the validity mask;
       2 output channels — normalised log-depth and a validity logit. Log-depth makes the
       error relative (as AbsRel is) and the mask lets real RGB-D holes (NaN) through.
segmentation: one-hot input, per-class logits output.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from audio_vision.core.classes import IGNORE_LABEL  # noqa: F401  (ids outside the table are unknown)

MODALITIES = ('depth', 'segmentation')


@dataclass(frozen=True)
class DepthEncoding:
    min_depth: float = 0.1       # metres; closer is clamped
    max_depth: float = 20.0      # metres; farther is clamped
    log_center: float = math.log(3.0)
    log_scale: float = 0.7

    in_channels = 2
    out_channels = 2

    def encode(self, depth: torch.Tensor) -> torch.Tensor:
        """(B, H, W) metres, NaN/<=0 invalid -> (B, 2, H, W)."""
        valid = torch.isfinite(depth) & (depth > 0)
        d = torch.where(valid, depth, torch.ones_like(depth)).clamp(self.min_depth, self.max_depth)
        x = (torch.log(d) - self.log_center) / self.log_scale
        return torch.stack([torch.where(valid, x, torch.zeros_like(x)), valid.float()], dim=1)

    def metres(self, output: torch.Tensor) -> torch.Tensor:
        """(B, 2, H, W) network output -> (B, H, W) metres of every pixel, the validity logit ignored."""
        return torch.exp(output[:, 0] * self.log_scale + self.log_center).clamp(self.min_depth, self.max_depth)

    def decode(self, output: torch.Tensor) -> torch.Tensor:
        """(B, 2, H, W) network output -> (B, H, W) metres, NaN where predicted invalid."""
        depth = self.metres(output)
        return torch.where(output[:, 1] > 0, depth, torch.full_like(depth, float('nan')))

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """L1 on normalised log-depth over valid pixels + BCE on validity."""
        valid = target[:, 1]
        l1 = ((output[:, 0] - target[:, 0]).abs() * valid).sum() / valid.sum().clamp(min=1.0)
        return l1 + 0.1 * F.binary_cross_entropy_with_logits(output[:, 1], valid)


@dataclass(frozen=True)
class SegmentationEncoding:
    num_classes: int = 6

    @property
    def in_channels(self) -> int:
        return self.num_classes

    @property
    def out_channels(self) -> int:
        return self.num_classes

    def encode(self, labels: torch.Tensor) -> torch.Tensor:
        """(B, H, W) class ids -> (B, K, H, W) one-hot; an id outside the table (:data:`IGNORE_LABEL`) is
        unknown and encodes as all zeros (never as a class)."""
        labels = labels.long()
        known = (labels >= 0) & (labels < self.num_classes)
        onehot = F.one_hot(torch.where(known, labels, 0), self.num_classes).permute(0, 3, 1, 2).float()
        return onehot * known.unsqueeze(1)

    def decode(self, output: torch.Tensor) -> torch.Tensor:
        """(B, K, H, W) logits -> (B, H, W) uint8 class ids."""
        return output.argmax(dim=1).to(torch.uint8)

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Cross-entropy over the pixels of known class; unknown pixels (all-zero targets) are ignored."""
        known = target.sum(dim=1) > 0
        if not bool(known.any()):
            return output.sum() * 0.0
        return F.cross_entropy(output, torch.where(known, target.argmax(dim=1), -100), ignore_index=-100)


def make_encoding(modality: str, num_classes: int = 6):
    if modality == 'depth':
        return DepthEncoding()
    if modality == 'segmentation':
        return SegmentationEncoding(num_classes)
    raise ValueError(f'unknown modality {modality!r}; expected one of {MODALITIES}')


def image_to_tensor(image: np.ndarray, modality: str) -> torch.Tensor:
    """Stack of raw images (B, H, W) as the dtype the encoding expects."""
    if modality == 'depth':
        return torch.as_tensor(np.asarray(image, dtype=np.float32))
    return torch.as_tensor(np.asarray(image, dtype=np.int64))
