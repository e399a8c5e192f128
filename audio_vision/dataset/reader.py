# SPDX-License-Identifier: Apache-2.0
"""`DatasetReader`: random access to one split of a dataset directory, memory-mapped."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from audio_vision.dataset.files import read_json
from audio_vision.dataset.schema import ARRAY_NAMES, DatasetLayout


class DatasetReader:
    """Random access to one split, memory-mapped (nothing is loaded until indexed).

    Samples are ordered by their dataset index, whatever the sharding was.
    """

    def __init__(self, path: str | Path, split: str):
        self.path = Path(path)
        self.split = split
        self.card = read_json(self.path / 'card.json')
        if self.card is None:
            raise FileNotFoundError(f'{self.path / "card.json"} not found: not a dataset directory')
        self._shard_dirs = sorted(p for p in (self.path / split).glob('shard-*') if p.is_dir())
        if not self._shard_dirs:
            known = sorted(self.card.get('splits', {}))
            raise FileNotFoundError(f'no shards for split {split!r} in {self.path} (splits: {known})')
        index = [np.load(d / 'index.npy') for d in self._shard_dirs]
        shard_of = np.concatenate([np.full(len(ix), k) for k, ix in enumerate(index)])
        local = np.concatenate([np.arange(len(ix)) for ix in index])
        order = np.argsort(np.concatenate(index), kind='stable')
        self._shard_of, self._local = shard_of[order], local[order]
        self._arrays: list[dict] | None = None
        self._meta: dict[int, list] = {}

    def __getstate__(self):
        # Memory maps are reopened in the receiving process instead of being pickled (copied).
        state = dict(self.__dict__)
        state['_arrays'], state['_meta'] = None, {}
        return state

    def _open(self) -> list[dict]:
        if self._arrays is None:
            self._arrays = [{k: np.load(d / f'{k}.npy', mmap_mode='r') for k in ARRAY_NAMES}
                            for d in self._shard_dirs]
        return self._arrays

    @property
    def sample_rate(self) -> int:
        return int(self.card['sample_rate'])

    @property
    def mic_positions(self) -> np.ndarray:
        return np.load(self.path / 'mic_positions.npy')

    @property
    def class_table(self):
        from audio_vision.core.classes import ClassTable
        return ClassTable.from_list(self.card['class_table'])

    @property
    def layout(self) -> DatasetLayout:
        """What every sample shares (array, window, camera, class table, splits), from the card."""
        return DatasetLayout.from_card(self.card)

    def __len__(self) -> int:
        return len(self._shard_of)

    def __getitem__(self, i: int) -> dict:
        if not -len(self) <= i < len(self):
            raise IndexError(f'sample {i} out of range for {len(self)} samples')
        i = int(i) % len(self)
        arrays = self._open()[self._shard_of[i]]
        local = self._local[i]
        return {k: np.array(v[local]) for k, v in arrays.items()}

    def metadata(self, i: int) -> dict:
        """Per-sample metadata of sample i (simulated: scene and recording draws; from a bag: stamps)."""
        i = int(i) % len(self)
        shard = int(self._shard_of[i])
        if shard not in self._meta:
            self._meta[shard] = read_json(self._shard_dirs[shard] / 'meta.json')
        return self._meta[shard][int(self._local[i])]
