# SPDX-License-Identifier: Apache-2.0
"""The dataset format: one layer that the simulator's generator and the bag converter write through and that
training and evaluation read through (numpy + json only; imports nothing above ``audio_vision.core``).

Layout (all readable with numpy alone; the schema is described in docs/SIMULATOR.md)::

    DIR/card.json                      generator config, class table, counts, content hash
    DIR/mic_positions.npy              (C, 3) float64, array frame
    DIR/<split>/shard-IIIII-of-NNNNN/  one directory per split and shard
        audio.npy (n, C, N) float32    depth.npy (n, H, W) float32   segmentation.npy (n, H, W) uint8
        K.npy (n, 3, 3) float64        camera_pose.npy (n, 4, 4)     room_size.npy (n, 3)
        seed.npy, index.npy, room_id.npy (n,) int64
        meta.json                      per-sample metadata (scene and recording draws, or bag stamps)
        shard.json                     counts and the shard's content hash

* :mod:`~audio_vision.dataset.schema` - array names, shapes and dtypes (``DatasetLayout``: what every sample of a
  dataset shares - sample rate, window, microphone positions, camera, class table, splits), shard names,
  the room-to-split rule;
* :mod:`~audio_vision.dataset.files` - atomic JSON writes, the content and config hashes;
* :mod:`~audio_vision.dataset.writer` - ``DatasetWriter`` / ``ShardWriter`` (memory-mapped arrays in a hidden
  ``.partial`` directory renamed into place), the card (``write_card``, ``rebuild_card``);
* :mod:`~audio_vision.dataset.reader` - ``DatasetReader``: one split, memory-mapped, in dataset-index order.
"""
from audio_vision.dataset.files import hash_arrays, hash_json, read_json, write_json
from audio_vision.dataset.reader import DatasetReader
from audio_vision.dataset.schema import (ARRAY_NAMES, FORMAT_VERSION, DatasetLayout, array_specs, shard_indices,
                                         shard_name, split_of_room)
from audio_vision.dataset.writer import DatasetWriter, ShardWriter, generator_info, rebuild_card, write_card

__all__ = ['ARRAY_NAMES', 'FORMAT_VERSION', 'DatasetLayout', 'DatasetReader', 'DatasetWriter', 'ShardWriter',
           'array_specs', 'generator_info', 'hash_arrays', 'hash_json', 'read_json', 'rebuild_card',
           'shard_indices', 'shard_name', 'split_of_room', 'write_card', 'write_json']
