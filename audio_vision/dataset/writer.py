# SPDX-License-Identifier: Apache-2.0
"""Writing a dataset: shards (memory-mapped arrays in a hidden ``.partial`` directory, renamed into place with
their ``meta.json`` and ``shard.json``), then the card (``card.json``, ``mic_positions.npy``), rebuilt from every
shard present so that shards written on several machines (or runs) add up.

    layout = DatasetLayout(...)                    # or audio_vision.simulation.dataset.dataset_layout(cfg)
    writer = DatasetWriter(out, layout, generator_info(layout.config, seed, n, num_shards))
    shard = writer.shard('train', shard=0, num_shards=1, count=len(samples))
    for arrays, meta in samples:
        shard.append(arrays, meta)                 # arrays: every name of ARRAY_NAMES; meta: a JSON-able dict
    shard.commit()
    card = writer.finish()
"""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np

from audio_vision.dataset.files import hash_arrays, hash_json, read_json, write_json
from audio_vision.dataset.schema import FORMAT_VERSION, SHARDING, DatasetLayout, shard_indices, shard_name

DESCRIPTION = ('audio_vision simulated microphone-array recordings with ground-truth depth and segmentation '
               '(see docs/SIMULATOR.md)')


def generator_info(config: dict, seed: int, n: int, num_shards: int = 1, **extra) -> dict:
    """The card's ``generator`` entry (without its hash): what made the dataset; shards of one dataset share it.
    ``extra`` adds entries (the bag converter's ``source``)."""
    return {'format_version': FORMAT_VERSION, 'seed': int(seed), 'n': int(n), 'num_shards': int(num_shards),
            'sharding': SHARDING, 'config': config, **extra}


def meta_entry_json(entry) -> str:
    """One element of a top-level list as ``json.dump(list, indent=1, sort_keys=True)`` writes it (without the
    separator): the element's own indent-1 text, every line one level deeper (JSON strings hold no raw newlines)."""
    return json.dumps(entry, indent=1, sort_keys=True).replace('\n', '\n ')


def write_json_list(path: Path, entries: list[str]) -> None:
    """Write the list of pre-serialised `meta_entry_json` texts atomically, byte for byte as ``write_json`` would
    write the list itself."""
    text = '[\n ' + ',\n '.join(entries) + '\n]\n' if entries else '[]\n'
    tmp = Path(str(path) + '.tmp')
    tmp.write_text(text, encoding='utf-8')
    tmp.replace(path)


class ShardWriter:
    """One shard of one split: ``count`` rows of memory-mapped arrays, filled by :meth:`append` and made
    visible under the shard's name by :meth:`commit` (nothing half-written ever is)."""

    def __init__(self, out: Path, split: str, shard: int, num_shards: int, count: int, specs: dict,
                 config_hash: str):
        if count < 1:
            raise ValueError(f'a shard needs at least one sample, got {count}')
        self.split, self.shard, self.num_shards, self.count = split, int(shard), int(num_shards), int(count)
        self.final = Path(out) / split / shard_name(shard, num_shards)
        self.tmp = Path(out) / split / f'.{self.final.name}.partial'
        self._config_hash = config_hash
        if self.tmp.exists():
            shutil.rmtree(self.tmp)
        self.tmp.mkdir(parents=True)
        self._arrays = {k: np.lib.format.open_memmap(self.tmp / f'{k}.npy', mode='w+', dtype=dt,
                                                     shape=(self.count,) + tuple(shape))
                        for k, (shape, dt) in specs.items()}
        # Each sample's meta.json entry is serialised as it arrives (while the generators still run), not all
        # at commit; the file is byte for byte what json.dump(metas, indent=1, sort_keys=True) writes.
        self._meta_texts: list[str] = []
        self._ids: list[tuple[int, int]] = []          # (index, room_id) per row, for shard.json

    def __len__(self) -> int:
        return len(self._ids)

    def append(self, arrays: dict, meta: dict) -> None:
        """Write the next row: every array of the schema (a scalar fills a whole array), and its metadata
        (``index`` and ``room_id`` at least)."""
        if self._arrays is None:
            raise RuntimeError(f'{self.final.name} of {self.split} is already committed')
        row = len(self._ids)
        if row >= self.count:
            raise ValueError(f'{self.final.name} of {self.split} holds {self.count} samples; one more was given')
        if arrays.keys() != self._arrays.keys():
            raise ValueError(f'sample arrays {sorted(arrays)} are not the schema {sorted(self._arrays)}')
        for k, v in arrays.items():
            self._arrays[k][row] = v
        self._ids.append((meta['index'], meta['room_id']))
        self._meta_texts.append(meta_entry_json(meta))

    def commit(self) -> dict:
        """Flush, write meta.json and shard.json, rename into place (replacing an older copy); returns the
        shard info (shard.json)."""
        if len(self._ids) != self.count:
            raise ValueError(f'{self.final.name} of {self.split}: {len(self._ids)} of {self.count} samples written')
        for arr in self._arrays.values():
            arr.flush()
        self._arrays = None
        info = {'split': self.split, 'shard': self.shard, 'num_shards': self.num_shards, 'count': len(self._ids),
                'indices': [i for i, _ in self._ids], 'rooms': sorted({r for _, r in self._ids}),
                'content_hash': hash_arrays(self.tmp), 'config_hash': self._config_hash}
        write_json_list(self.tmp / 'meta.json', self._meta_texts)
        write_json(self.tmp / 'shard.json', info)
        if self.final.exists():
            shutil.rmtree(self.final)
        self.tmp.rename(self.final)
        return info


class DatasetWriter:
    """A dataset directory being written: shards (:meth:`shard`), then the card (:meth:`finish`).

    A directory whose card names another generator (config, seed, n, num_shards) is refused."""

    def __init__(self, out: str | Path, layout: DatasetLayout, generator: dict, description: str = DESCRIPTION):
        self.out = Path(out)
        self.layout, self.generator, self.description = layout, generator, description
        self.config_hash = hash_json(generator)
        existing = read_json(self.out / 'card.json')
        if existing is not None and existing.get('generator', {}).get('config_hash') != self.config_hash:
            raise ValueError(f'{self.out} holds a dataset with another config/seed/n/num_shards; use a new directory')
        self.out.mkdir(parents=True, exist_ok=True)

    def shard(self, split: str, shard: int, num_shards: int, count: int) -> ShardWriter:
        """A writer for `count` samples of shard `shard` of `num_shards` of `split`."""
        if split not in self.layout.split_fractions:
            raise ValueError(f'unknown split {split!r}; the layout has {self.layout.splits}')
        return ShardWriter(self.out, split, shard, num_shards, count, self.layout.array_specs(), self.config_hash)

    def finish(self) -> dict:
        """Write mic_positions.npy and (re)build card.json from every shard present; returns the card."""
        np.save(self.out / 'mic_positions.npy', self.layout.mic_positions)
        return write_card(self.out, self.generator, self.layout, self.description)


def write_card(out: str | Path, generator: dict, layout: DatasetLayout, description: str = DESCRIPTION) -> dict:
    """(Re)build card.json from every shard present in `out`; shards of another generator are refused."""
    out = Path(out)
    config_hash = hash_json(generator)
    splits, hashes = {}, []
    for split in layout.splits:
        shards = []
        for info_path in sorted((out / split).glob('shard-*/shard.json')):
            info = read_json(info_path)
            if info['config_hash'] != config_hash:
                raise ValueError(f'{info_path.parent} was generated with another config/seed/n')
            shards.append(info)
            hashes.append(f"{split}/{info_path.parent.name}:{info['content_hash']}")
        splits[split] = {'count': sum(s['count'] for s in shards),
                         'rooms': len({r for s in shards for r in s['rooms']}),
                         'shards': [shard_name(s['shard'], s['num_shards']) for s in shards]}
    present = {s for v in splits.values() for s in v['shards']}
    num_shards = generator['num_shards']
    complete = bool(present) and all(shard_name(i, num_shards) in present
                                     or not shard_indices(generator['n'], i, num_shards)
                                     for i in range(num_shards))
    card = {'name': out.name, 'format_version': FORMAT_VERSION, 'description': description,
            'generator': dict(generator, config_hash=config_hash), **layout.card_fields(),
            'splits': splits, 'count': sum(v['count'] for v in splits.values()), 'complete': complete,
            'content_hash': hashlib.sha256('\n'.join(sorted(hashes)).encode()).hexdigest()}
    write_json(out / 'card.json', card)
    return card


def rebuild_card(out: str | Path) -> dict:
    """Re-list shards copied together from several machines and rewrite card.json (from the card present)."""
    out = Path(out)
    card = read_json(out / 'card.json')
    if card is None:
        raise ValueError(f'{out}: no card.json to take the generator config from')
    if not any(out.glob('*/shard-*/shard.json')):
        raise ValueError(f'{out}: no shards found')
    generator = {k: v for k, v in card['generator'].items() if k != 'config_hash'}
    return write_card(out, generator, DatasetLayout.from_card(card), card.get('description', DESCRIPTION))
