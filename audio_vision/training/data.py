"""Training data in memory: images plus precomputed spectrogram features of one split.

Features are deterministic, so they are computed once per split (batched, with a progress
bar) and kept as float16 — a few thousand windows fit in RAM easily and every epoch then
costs only the networks.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from audio_vision.core.features import FeatureConfig, SpectrogramFeatures
from audio_vision.simulation.dataset import DatasetReader


@dataclass
class SplitData:
    features: torch.Tensor         # (n, F_ch, bins, frames) float16
    depth: np.ndarray              # (n, H, W) float32 metres
    segmentation: np.ndarray       # (n, H, W) uint8
    audio_shape: tuple[int, int]   # (channels, samples) of one window

    def __len__(self) -> int:
        return int(self.features.shape[0])

    def images(self, modality: str) -> np.ndarray:
        return self.depth if modality == 'depth' else self.segmentation


def load_split(data_dir, split: str, features: FeatureConfig, batch_size: int = 64,
               limit: int | None = None, progress: bool = True, mic_positions=None) -> SplitData:
    """`mic_positions` default to the dataset's; pass a model's to compute its features."""
    reader = DatasetReader(data_dir, split)
    n = len(reader) if limit is None else min(limit, len(reader))
    if n == 0:
        raise ValueError(f'dataset {data_dir} has no samples in split {split!r}')
    if reader.sample_rate != features.sample_rate:
        raise ValueError(f'dataset sample rate {reader.sample_rate} Hz != feature config {features.sample_rate} Hz')
    extractor = SpectrogramFeatures(features, reader.mic_positions if mic_positions is None else mic_positions)
    feats, depth, seg = [], [], []
    audio_shape = None
    with torch.inference_mode():
        for start in tqdm(range(0, n, batch_size), desc=f'features {split}', unit='batch', disable=not progress,
                          leave=False):
            items = [reader[i] for i in range(start, min(n, start + batch_size))]
            audio = np.stack([it['audio'][:, :features.window_samples] for it in items]).astype(np.float32)
            if audio.shape[-1] != features.window_samples:
                raise ValueError(f'dataset windows have {audio.shape[-1]} samples, features need '
                                 f'{features.window_samples}')
            audio_shape = audio.shape[1:]
            feats.append(extractor(torch.from_numpy(audio)).half())
            depth.append(np.stack([it['depth'] for it in items]).astype(np.float32))
            seg.append(np.stack([it['segmentation'] for it in items]).astype(np.uint8))
    return SplitData(torch.cat(feats), np.concatenate(depth), np.concatenate(seg), tuple(audio_shape))
