# SPDX-License-Identifier: Apache-2.0
"""`AudioVisionDataset`: a torch Dataset over a `DatasetReader` split (kept apart so that the
simulation layer imports torch only when this class is used)."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch
from torch.utils.data import Dataset

from .dataset import DatasetReader


class AudioVisionDataset(Dataset):
    """Samples as dicts of torch tensors: audio (C, N) float32, depth (H, W) float32,
    segmentation (H, W) int64 (class ids, ready for cross-entropy), K, camera_pose, room_size,
    seed, index, room_id. `transform(sample) -> sample` runs last (e.g. feature extraction).
    With `as_numpy=True` the numpy arrays of the reader are returned unchanged.
    """

    def __init__(self, path: str | Path, split: str, transform: Callable | None = None,
                 as_numpy: bool = False):
        self.reader = DatasetReader(path, split)
        self.transform = transform
        self.as_numpy = as_numpy

    def __len__(self) -> int:
        return len(self.reader)

    def __getitem__(self, i: int) -> dict:
        sample = self.reader[i]
        if not self.as_numpy:
            seg = sample.pop('segmentation')
            sample = {k: torch.from_numpy(v) if v.ndim else torch.tensor(v) for k, v in sample.items()}
            sample['segmentation'] = torch.from_numpy(seg.astype('int64'))
        return self.transform(sample) if self.transform is not None else sample

    @property
    def card(self) -> dict:
        return self.reader.card
