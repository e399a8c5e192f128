# SPDX-License-Identifier: Apache-2.0
"""The image encoding of each visual modality: how its images become network tensors and back, and its loss.

(The message codec, numpy <-> message fields, is another thing: :mod:`audio_vision.core.stream.codec`.)

depth: 2 input channels — normalised log-depth (0 where invalid) and the validity mask;
       2 output channels — normalised log-depth and a validity logit. Log-depth makes the
       error relative (as AbsRel is) and the mask lets real RGB-D holes (NaN) through.
       With a *reference* (:data:`DEPTH_TARGETS` ``layout_ratio``: the sonar layout's depth prior, normalised the
       same way, 0 where it sees no plane) the networks' images are departures from it: the log ratio of the
       depth to the measured room's, the reference added back to read metres.
segmentation: one-hot input, per-class logits output (no reference).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from audio_vision.core.classes import IGNORE_LABEL  # noqa: F401  (ids outside the table are unknown)

MODALITIES = ('depth', 'segmentation')
#: What a depth network's image is: ``absolute`` normalised log-depth, or ``layout_ratio``, its departure from the
#: layout prior's (the log ratio of the depth to the room the sonar front-end measured; needs the prior as input).
DEPTH_TARGETS = ('absolute', 'layout_ratio')


def check_depth_target(target: str, layout_prior: str) -> None:
    """Refuse (ValueError) a ``target`` outside :data:`DEPTH_TARGETS`, or a relative one whose features lack the prior
    (``FeatureConfig.layout_prior`` 'none')."""
    if target not in DEPTH_TARGETS:
        raise ValueError(f'unknown depth_target {target!r}; expected one of {DEPTH_TARGETS}')
    if target != 'absolute' and layout_prior == 'none':
        raise ValueError(f"depth_target {target!r} is relative to the layout prior: set features.layout_prior "
                         f"('layout' or 'layout+reflectors')")


@dataclass(frozen=True)
class DepthEncoding:
    min_depth: float = 0.1       # metres; closer is clamped
    max_depth: float = 20.0      # metres; farther is clamped
    log_center: float = math.log(3.0)
    log_scale: float = 0.7

    in_channels = 2
    out_channels = 2

    def encode(self, depth: torch.Tensor, reference: torch.Tensor | None = None) -> torch.Tensor:
        """(B, H, W) metres, NaN/<=0 invalid -> (B, 2, H, W); minus ``reference`` (B, H, W) where valid."""
        valid = torch.isfinite(depth) & (depth > 0)
        d = torch.where(valid, depth, torch.ones_like(depth)).clamp(self.min_depth, self.max_depth)
        x = (torch.log(d) - self.log_center) / self.log_scale
        if reference is not None:
            x = x - reference
        return torch.stack([torch.where(valid, x, torch.zeros_like(x)), valid.float()], dim=1)

    def reference(self, prior: torch.Tensor) -> torch.Tensor:
        """The layout prior's images (B, maps, H, W; :data:`~audio_vision.core.features.config.LAYOUT_PRIOR_MAPS`
        order: log z-depth, seen, ...) -> (B, H, W) its depth normalised as :meth:`encode` does, 0 where it sees no
        plane (there the image stays absolute)."""
        log_depth, seen = prior[:, 0], prior[:, 1]
        d = torch.exp(log_depth).clamp(self.min_depth, self.max_depth)
        return seen * (torch.log(d) - self.log_center) / self.log_scale

    @staticmethod
    def shifted(output: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        """(B, 2, H, W) output relative to ``reference`` (B, H, W) -> absolute (the validity logit unchanged)."""
        return torch.cat([output[:, :1] + reference[:, None], output[:, 1:]], dim=1)

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

    def encode(self, labels: torch.Tensor, reference: None = None) -> torch.Tensor:
        """(B, H, W) class ids -> (B, K, H, W) one-hot; an id outside the table (:data:`IGNORE_LABEL`) is
        unknown and encodes as all zeros (never as a class). (No reference: classes are not relative.)"""
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
