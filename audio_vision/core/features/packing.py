# SPDX-License-Identifier: Apache-2.0
"""Maps registered to the camera travel in the feature stack packed into trailing (bins, frames) channels.

The direction maps (:mod:`.direction_maps`) and the layout prior (:mod:`.layout_prior`) are square images of a few
channels; packing them row-major into whole channels of the spectrogram's grid keeps ONE tensor flowing through
the pipeline, the backends and the feature caches. The networks unpack them with :func:`unpack_maps`, the last
packed group first.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def planes_for(num_maps: int, size: int, bins: int, frames: int) -> int:
    """How many (bins, frames) channels hold ``num_maps`` maps of ``size`` x ``size`` (0 for none)."""
    values = num_maps * size * size
    return math.ceil(values / (bins * frames)) if values else 0


def pack_maps(maps: torch.Tensor, planes: int, bins: int, frames: int) -> torch.Tensor:
    """(B, maps, S, S) -> (B, planes, bins, frames): row-major, zero-padded."""
    flat = maps.flatten(1)
    flat = F.pad(flat, (0, planes * bins * frames - flat.shape[1]))
    return flat.reshape(-1, planes, bins, frames)


def unpack_maps(features: torch.Tensor, num_maps: int, size: int,
                planes: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(B, F_ch, bins, frames) -> the channels before the trailing ``planes`` (B, F_ch - planes, bins, frames)
    and the maps packed there (B, num_maps, size, size); (features, None) when ``planes`` is 0."""
    if not planes:
        return features, None
    b = features.shape[0]
    packed = features[:, -planes:].reshape(b, -1)[:, :num_maps * size * size]
    return features[:, :-planes], packed.reshape(b, num_maps, size, size)
