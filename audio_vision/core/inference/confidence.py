# SPDX-License-Identifier: Apache-2.0
"""Per-pixel confidence of the method's images, from its latent (pure: numpy + torch).

The AT-net predicts a continuous latent ``z`` (B, D, h, w); inference snaps every latent cell to its
L2-nearest codeword and decodes. How much a pixel can be trusted follows from how *decided* that
snap was and how much it *matters* for the pixel:

``margin``     per cell, ``1 - d1 / d2`` (squared distances to the nearest and second-nearest codeword):
               0 when the cell lies half-way between two codewords, 1 on a codeword.
``posterior``  per cell, the softmax weight of the chosen codeword, ``softmax(-d / T)``, with the
               temperature ``T`` the median squared distance between neighbouring codewords (a
               property of the codebook, not of the data).
``latent``     the decoder's disagreement across the two nearest codewords: the image is decoded once
               from the nearest and once from the second-nearest codewords; the pixel's expected change
               ``E`` is the per-cell weight of the runner-up (``d1 / (d1 + d2)``, 0 ... 0.5, upsampled)
               times the change of the decoded pixel. A near-tie in a cell that the decoder ignores costs
               nothing; a near-tie between codewords that decode to different depths or classes costs
               confidence. Depth: ``exp(-E / ln 1.25)`` with ``E`` the expected change of ln(depth) (a
               pixel expected to move by the delta1 threshold gets 0.37); segmentation: ``1 - E`` with
               ``E`` the expected total-variation change of the class probabilities.
``decoder``    ``latent``, and for depth also a range term: ``exp(-(E / ln 1.25 + d / r0))``
               with ``d`` the predicted depth and ``r0`` = ``range_scale_m`` (4 m). The relative depth error
               of sound grows with range (scripts/eval_confidence.py reports AbsRel per predicted-depth
               bin): far surfaces return weaker echoes later, among more reverberation, their direction
               is resolved no better than the array's ~20 deg, and the network pulls what it cannot
               resolve toward the training rooms' mean; near pixels are mostly floor, fixed by the mount
               height. On the shipped models the latent term alone barely ranks depth errors (measured
               in the same JSON), so the range term is what makes depth confidence useful.
``echo_range`` (default) depth: ``exp(-(rho / r0) * sqrt(q_cell * q_window))``. ``q = d1 / T`` is how far the
               AT-net's latent lies from its nearest codeword, in units of the codebook temperature ``T`` (the
               median squared distance between neighbouring codewords, a property of the codebook): a
               regressor trained with L2 towards codewords answers an ambiguous input with an average of the
               plausible codewords, which lies *between* them, so a large ``q`` marks a guess; ``q_cell`` is
               per latent cell (upsampled), ``q_window`` its mean over the window (unfamiliar audio makes the
               whole image wrong: ranking the pixels by their window's true AbsRel alone goes a long way,
               ``window_oracle_half_ratio`` in scripts/eval_confidence.py's JSON).
               ``rho = d * sqrt(1 + x^2) / sqrt(1 + y^2)`` (``d`` the predicted z-depth, ``x, y`` the
               pixel's normalised image coordinates of the level camera): ``d * sqrt(1 + x^2)`` is the
               horizontal range to the surface point, which the two horizontal rings of microphones
               resolve worse the farther it is (weaker, later echoes among more reverberation); the
               ``1 / sqrt(1 + y^2)`` = cos(elevation) factor discounts steep rays,
               which end on the floor or ceiling, whose depth is pinned by the mount and room heights (one
               strong specular echo each) rather than by the room's horizontal extent. At a fixed predicted
               depth the AbsRel peaks at the horizon rows and grows towards the left/right edges, as this
               predicts (``depth_abs_rel_by_row_band`` / ``_by_column_band`` in the same JSON). ``r0`` =
               ``range_scale_m`` only scales the values, not the ranking. No constant is fitted (nor chosen on
               the test split: the form was picked among variants on the val split).
               Segmentation: as ``latent``. Cheaper than ``decoder`` (one decode for depth).

All confidences are in [0, 1], per pixel at the image size (cell signals upsampled bilinearly).
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from audio_vision.core.model.vqvae import codebook_temperature, codeword_sq_distances

KINDS = ('echo_range', 'decoder', 'latent', 'margin', 'posterior')
#: the kinds read off the latent cells alone (no decoding)
CELL_KINDS = ('margin', 'posterior')
RANGE_SCALE_M = 4.0
DEFAULT_KIND = 'echo_range'
_LN_DELTA1 = math.log(1.25)


def two_nearest(dist: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(B, h, w, K) distances -> (d1, d2, i1, i2): the two smallest distances and their codeword ids."""
    vals, idx = dist.topk(2, dim=-1, largest=False)
    return vals[..., 0], vals[..., 1], idx[..., 0], idx[..., 1]


def cell_confidence(dist: torch.Tensor, kind: str, temperature: float = 1.0) -> torch.Tensor:
    """(B, h, w, K) distances -> (B, h, w) cell confidence in [0, 1] for ``margin`` / ``posterior``."""
    if kind == 'margin':
        d1, d2, _, _ = two_nearest(dist)
        return (1.0 - d1 / d2.clamp_min(1e-12)).clamp(0.0, 1.0)
    if kind == 'posterior':
        return torch.softmax(-dist / temperature, dim=-1).amax(dim=-1)
    raise ValueError(f'unknown cell confidence kind {kind!r}; expected margin or posterior')


def mask_low_confidence(depth: np.ndarray, confidence: np.ndarray, min_confidence: float) -> np.ndarray:
    """``depth`` with the pixels whose confidence is below ``min_confidence`` set to NaN (REP 118 invalid);
    ``min_confidence`` <= 0 returns ``depth`` unchanged (the same array)."""
    if not min_confidence > 0:
        return depth
    depth = np.asarray(depth)
    if np.shape(confidence) != depth.shape:
        raise ValueError(f'confidence {np.shape(confidence)} and depth {depth.shape} shapes differ')
    return np.where(np.asarray(confidence) < min_confidence, np.float32(np.nan), depth).astype(depth.dtype, copy=False)


def upsample(cells: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(B, h, w) cell values -> (B, H, W), bilinear (half-pixel centres), clamped to [0, 1]."""
    return F.interpolate(cells[:, None].float(), size=size, mode='bilinear', align_corners=False)[:, 0].clamp(0, 1)


def echo_range_confidence(model, out: torch.Tensor, q: torch.Tensor, range_scale_m: float = RANGE_SCALE_M
                          ) -> torch.Tensor:
    """The ``echo_range`` depth confidence (module docstring): ``out`` the depth network output (B, 2, H, W), ``q``
    the per-cell squared distance to the nearest codeword over the codebook temperature (B, h, w)."""
    size = tuple(out.shape[-2:])
    depth = model.encoding.metres(out)
    rays = torch.as_tensor(model.spec.camera.pixel_rays(), dtype=depth.dtype, device=depth.device)
    rho = depth * torch.sqrt((1.0 + rays[..., 0].square()) / (1.0 + rays[..., 1].square()))
    q_cell = F.interpolate(q[:, None].float(), size=size, mode='bilinear', align_corners=False)[:, 0].clamp_min(0)
    q_window = q.float().mean(dim=(1, 2))[:, None, None]
    return torch.exp(-(rho / range_scale_m) * torch.sqrt(q_cell * q_window)).clamp(0.0, 1.0)


def runner_up_change(model, out: torch.Tensor, d1: torch.Tensor, d2: torch.Tensor, i2: torch.Tensor,
                     reference: torch.Tensor | None = None) -> torch.Tensor:
    """(B, H, W) expected change ``E`` of each pixel (module docstring, ``latent``): the runner-up codewords' weight
    ``d1 / (d1 + d2)`` times the change of the pixel decoded from them instead; depth in units of ln 1.25 (of
    ln(depth)), segmentation as the total variation of the class probabilities."""
    vq = model.vqvae
    runner_up = upsample(d1 / (d1 + d2).clamp_min(1e-12), tuple(out.shape[-2:]))   # 0 (decided) ... 0.5 (tie)
    alt = model.absolute(vq.decoder(vq.quantizer.lookup(i2)), reference)
    if model.spec.modality == 'depth':
        change = (out[:, 0] - alt[:, 0]).abs() * float(model.encoding.log_scale)   # normalised log-depth -> ln(m)
        return runner_up * change / _LN_DELTA1
    return runner_up * (0.5 * (torch.softmax(out, dim=1) - torch.softmax(alt, dim=1)).abs().sum(dim=1))


def decode_with_confidence(model, z: torch.Tensor, kind: str = DEFAULT_KIND,
                           range_scale_m: float = RANGE_SCALE_M,
                           reference: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """One modality's AT-net latent ``z`` (B, D, h, w) -> (network output (B, out, H, W), confidence (B, H, W)).

    ``model`` is a :class:`audio_vision.core.model.checkpoint.ModalityModel` (needs ``vqvae``, ``encoding``,
    ``spec``, ``absolute``); ``reference``: ``model.reference(features)`` of the windows (None for absolute images).
    The network output equals ``model(features)`` (the quantized inference path).
    Segmentation has no range: its ``echo_range`` and ``decoder`` are ``latent``.
    """
    if kind not in KINDS:
        raise ValueError(f'unknown confidence kind {kind!r}; expected one of {KINDS}')
    if not range_scale_m > 0:
        raise ValueError(f'range_scale_m must be positive, got {range_scale_m}')
    vq = model.vqvae
    codebook = vq.quantizer.codebook
    dist = codeword_sq_distances(z, codebook)
    d1, d2, i1, i2 = two_nearest(dist)
    out = model.absolute(vq.decoder(vq.quantizer.lookup(i1)), reference)
    if kind in CELL_KINDS:
        temperature = codebook_temperature(codebook) if kind == 'posterior' else 1.0
        return out, upsample(cell_confidence(dist, kind, temperature), tuple(out.shape[-2:]))
    if model.spec.modality != 'depth':
        return out, (1.0 - runner_up_change(model, out, d1, d2, i2, reference)).clamp(0.0, 1.0)
    if kind == 'echo_range':
        return out, echo_range_confidence(model, out, d1 / codebook_temperature(codebook), range_scale_m)
    energy = runner_up_change(model, out, d1, d2, i2, reference)
    if kind == 'decoder':
        energy = energy + model.encoding.metres(out) / range_scale_m
    return out, torch.exp(-energy).clamp(0.0, 1.0)
