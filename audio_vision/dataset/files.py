# SPDX-License-Identifier: Apache-2.0
"""JSON files written atomically, and the two hashes of the format (a shard's arrays, a generator config)."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from audio_vision.dataset.schema import ARRAY_NAMES


def hash_arrays(directory: Path) -> str:
    """Content hash of a shard's arrays, as recorded in shard.json (sha256 over names, dtypes, shapes, bytes)."""
    h = hashlib.sha256()
    for name in ARRAY_NAMES:
        arr = np.load(Path(directory) / f'{name}.npy', mmap_mode='r')
        h.update(f'{name}:{arr.dtype.str}:{arr.shape}'.encode())
        step = max(1, (64 << 20) // max(arr[:1].nbytes, 1))      # ~64 MB at a time
        for start in range(0, len(arr), step):
            h.update(np.ascontiguousarray(arr[start:start + step]).tobytes())
    return h.hexdigest()


def hash_json(obj) -> str:
    """Short hash of a JSON-able object (key order independent): the config_hash of a generator."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


def read_json(path: Path):
    """The parsed file, or None when it does not exist."""
    try:
        with open(path, encoding='utf-8') as f:
            return json.load(f)
    except FileNotFoundError:
        return None


def write_json(path: Path, obj) -> None:
    """Write atomically (temp file + rename) so a killed writer never leaves half a file."""
    tmp = Path(str(path) + '.tmp')
    with open(tmp, 'w', encoding='utf-8') as f:
        json.dump(obj, f, indent=1, sort_keys=True)
        f.write('\n')
    tmp.replace(path)


def link_dataset(src: Path, out: Path) -> None:
    """``out`` with a link to every entry of the dataset ``src`` but its feature cache: the same windows under
    another feature cache (a study's features made another way, read by ``train`` and ``evaluate`` unchanged)."""
    out.mkdir(parents=True, exist_ok=True)
    for entry in Path(src).iterdir():
        target = out / entry.name
        if entry.name == 'features_cache' or target.exists() or target.is_symlink():
            continue
        target.symlink_to(entry.resolve())
