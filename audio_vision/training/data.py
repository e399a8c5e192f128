# SPDX-License-Identifier: Apache-2.0
"""Training data in memory: images plus precomputed spectrogram features of one split.

Features are deterministic, so they are computed once per split (batched, with a progress
bar) and kept as float16 — a few thousand windows fit in RAM easily and every epoch then
costs only the networks. A whole split's features are also cached on disk next to the data
(`<data>/features_cache/`, keyed by the feature config, the array geometry and the dataset's
content hash), so resumed runs, ablations and evaluations do not recompute them; a cached split is
memory-mapped rather than loaded.
"""
from __future__ import annotations

import hashlib
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from audio_vision.core.features.config import FeatureConfig
from audio_vision.core.features.layout_prior import FRONT_END_REVISION
from audio_vision.core.features.stack import FeatureStack
from audio_vision.core.frames import body_pose
from audio_vision.core.model.configs import config_to_dict
from audio_vision.dataset import DatasetReader


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


def feature_cache_path(data_dir, split: str, features: FeatureConfig, mic_positions: np.ndarray,
                       content_hash: str | None) -> Path:
    """Where a whole split's features are cached: keyed by the feature config, the array geometry, the dataset's
    content hash and, with a layout prior, the front-end's revision (the prior is measured by code, not set by the
    config alone)."""
    config = config_to_dict(features)
    if not features.layout_fusion:      # unfused features keep the key they had before fusion was an option
        config = {k: v for k, v in config.items() if not k.startswith('layout_fusion')}
    keyed = [config, np.asarray(mic_positions, dtype=np.float64).round(9).tolist(), content_hash]
    if features.layout_prior != 'none':
        keyed.append(FRONT_END_REVISION)
    key = hashlib.sha256(json.dumps(keyed, sort_keys=True).encode()).hexdigest()[:16]
    return Path(data_dir) / 'features_cache' / f'{split}-{key}.npy'


def drive_pose(item: dict) -> np.ndarray | None:
    """A dataset window's array pose in its room (the odometry :class:`~audio_vision.sonar.fusion.DriveFusion`
    reads), or None for a window recorded without one."""
    pose = item.get('camera_pose')
    return None if pose is None else body_pose(pose)


def load_split(data_dir, split: str, features: FeatureConfig, batch_size: int = 64,
               limit: int | None = None, progress: bool = True, mic_positions=None,
               odometry: list | None = None) -> SplitData:
    """`mic_positions` default to the dataset's; pass a model's to compute its features. ``odometry``: with
    ``layout_fusion``, every window's pose to fuse with instead of the dataset's own (:func:`drive_pose`; None
    entries: no odometry), e.g. a study of drifting odometry."""
    reader = DatasetReader(data_dir, split)
    n = len(reader) if limit is None else min(limit, len(reader))
    if n == 0:
        raise ValueError(f'dataset {data_dir} has no samples in split {split!r}')
    if reader.sample_rate != features.sample_rate:
        raise ValueError(f'dataset sample rate {reader.sample_rate} Hz != feature config {features.sample_rate} Hz')
    mics = np.asarray(reader.mic_positions if mic_positions is None else mic_positions, dtype=np.float64)
    cache = feature_cache_path(data_dir, split, features, mics, reader.card.get('content_hash'))
    extractor = FeatureStack(features, mics)
    cached = np.load(cache, mmap_mode='r') if cache.is_file() else None
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
            if cached is None:
                if features.layout_fusion:
                    # each room's windows in the dataset's order are a drive, the simulator's poses its odometry
                    poses = ([drive_pose(it) for it in items] if odometry is None
                             else odometry[start:start + len(items)])
                    extractor.layout_prior.set_odometry(poses, [it.get('room_id') for it in items])
                feats.append(extractor(torch.from_numpy(audio)).half())
            depth.append(np.stack([it['depth'] for it in items]).astype(np.float32))
            seg.append(np.stack([it['segmentation'] for it in items]).astype(np.uint8))
    if cached is None and n == len(reader):
        cache.parent.mkdir(exist_ok=True)
        tmp = cache.with_suffix(f'.{os.getpid()}.tmp.npy')   # one writer's own file
        np.save(tmp, torch.cat(feats).numpy())
        tmp.replace(cache)        # atomic: a killed run never leaves a half-written cache
        cached = np.load(cache, mmap_mode='r')
    if cached is not None:
        # Memory-mapped: processes training on the same split (one per modality) share the
        # page cache instead of each holding a copy; batches read only the rows they use.
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', UserWarning)      # read-only memmap: never written
            features_t = torch.from_numpy(cached[:n])
    else:
        features_t = torch.cat(feats)
    return SplitData(features_t, np.concatenate(depth), np.concatenate(seg), tuple(audio_shape))
