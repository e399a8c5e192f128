# SPDX-License-Identifier: Apache-2.0
"""What a dataset holds: array names, shapes and dtypes, shard names, and the room-to-split rule.

:class:`DatasetLayout` is what every sample of one dataset shares (the array, the window, the camera, the
class table, the split fractions, and the configuration recorded on the card), as plain data: the
simulator builds it from its config (``audio_vision.simulation.dataset.dataset_layout``), the bag converter
from that and the bag's camera, and the card is written from it.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from audio_vision.core.camera import PinholeCamera
from audio_vision.core.classes import DEFAULT_CLASS_TABLE, ClassTable

FORMAT_VERSION = 1
ARRAY_NAMES = ('audio', 'depth', 'segmentation', 'K', 'camera_pose', 'room_size', 'seed', 'index', 'room_id')
#: how the samples of an n-sample dataset are dealt to shards (recorded in the card's generator)
SHARDING = 'index % num_shards == shard'
_GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0


def array_specs(num_channels: int, num_samples: int, height: int, width: int) -> dict[str, tuple]:
    """Shape (without the leading sample axis) and dtype of each array of one sample."""
    return {'audio': ((int(num_channels), int(num_samples)), np.float32),
            'depth': ((int(height), int(width)), np.float32),
            'segmentation': ((int(height), int(width)), np.uint8), 'K': ((3, 3), np.float64),
            'camera_pose': ((4, 4), np.float64), 'room_size': ((3,), np.float64),
            'seed': ((), np.int64), 'index': ((), np.int64), 'room_id': ((), np.int64)}


def shard_name(shard: int, num_shards: int) -> str:
    """Directory name of shard `shard` of `num_shards` inside a split directory."""
    return f'shard-{shard:05d}-of-{num_shards:05d}'


def shard_indices(n: int, shard: int, num_shards: int) -> list[int]:
    """Dataset indices held by shard `shard` of `num_shards` of an `n`-sample dataset (see SHARDING)."""
    if not 0 <= shard < num_shards:
        raise ValueError(f'shard index {shard} not in [0, {num_shards})')
    return list(range(shard, n, num_shards))


def split_of_room(room_id: int, fractions: Mapping[str, float]) -> str:
    """Split of a room (a simulated room, or a block of a recording): the golden-ratio sequence
    frac((r + 1) * phi) is equidistributed, so split sizes track the fractions closely for any number of
    rooms, with no randomness to share."""
    u = ((room_id + 1) * _GOLDEN) % 1.0
    acc = 0.0
    names = list(fractions)
    for name in names:
        acc += fractions[name]
        if u < acc:
            return name
    return names[-1]


@dataclass(frozen=True, eq=False)
class DatasetLayout:
    """What every sample of a dataset shares, as plain data; the card's descriptive fields come from it.

    ``config`` is the generator configuration recorded on the card (``generator.config``: the simulation
    config as a dict, ``SimConfig.to_dict()``); its ``camera`` and ``recording.window_s`` agree with the
    fields here (:meth:`with_images` keeps them so).
    """

    sample_rate: int
    window_s: float
    mic_positions: np.ndarray                     # (C, 3) float64, array frame, m
    camera: PinholeCamera
    split_fractions: Mapping[str, float]
    config: Mapping = field(default_factory=dict)
    class_table: ClassTable = DEFAULT_CLASS_TABLE

    def __post_init__(self):
        mics = np.array(self.mic_positions, dtype=np.float64)
        if mics.ndim != 2 or mics.shape[1] != 3 or len(mics) < 1:
            raise ValueError(f'mic_positions must be (C, 3), got shape {mics.shape}')
        mics.setflags(write=False)
        object.__setattr__(self, 'mic_positions', mics)
        if not self.split_fractions:
            raise ValueError('split_fractions must name at least one split')

    @property
    def num_channels(self) -> int:
        return int(self.mic_positions.shape[0])

    @property
    def num_samples(self) -> int:
        """Audio samples per window."""
        return int(round(self.window_s * self.sample_rate))

    @property
    def splits(self) -> list[str]:
        return list(self.split_fractions)

    def array_specs(self) -> dict[str, tuple]:
        """Shape and dtype of one sample's arrays: the shard layout."""
        return array_specs(self.num_channels, self.num_samples, self.camera.height, self.camera.width)

    def with_images(self, camera: PinholeCamera, window_s: float) -> 'DatasetLayout':
        """The same array and splits with another camera and window (a bag converted to the model's image
        size); the recorded config's ``camera`` and ``recording.window_s`` follow."""
        config = dict(self.config)
        config['camera'] = camera.to_dict()
        config['recording'] = dict(config.get('recording', {}), window_s=window_s)
        return DatasetLayout(self.sample_rate, window_s, self.mic_positions, camera, self.split_fractions,
                             config, self.class_table)

    def card_fields(self) -> dict:
        """The card's descriptive fields (everything but the generator, the splits and the hashes)."""
        return {'sample_rate': int(self.sample_rate), 'window_s': self.window_s,
                'num_channels': self.num_channels, 'mic_positions': self.mic_positions.tolist(),
                'camera': self.camera.to_dict(), 'K': self.camera.K.tolist(),
                'class_table': self.class_table.to_list(),
                'arrays': {k: {'shape': ['n'] + list(shape), 'dtype': np.dtype(dt).name}
                           for k, (shape, dt) in self.array_specs().items()}}

    @classmethod
    def from_card(cls, card: Mapping) -> 'DatasetLayout':
        """The layout a card was written from (split fractions from its generator config when present, else
        the splits it lists)."""
        config = card.get('generator', {}).get('config', {})
        fractions = config.get('dataset', {}).get('split_fractions') or {s: 0.0 for s in card.get('splits', {})}
        return cls(int(card['sample_rate']), card['window_s'], np.asarray(card['mic_positions'], np.float64),
                   PinholeCamera(**card['camera']), fractions, config, ClassTable.from_list(card['class_table']))
