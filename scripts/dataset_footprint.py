# SPDX-License-Identifier: Apache-2.0
"""Disk footprint of a dataset and its feature caches, per window, and what a lossless layout would save.

    .venv/bin/python scripts/dataset_footprint.py data/default --out docs/dataset_footprint.json

Reads only (nothing is rewritten). For the dataset: bytes per window of every shard file (audio, depth,
segmentation, metadata, ...). For every ``features_cache/<split>-<key>.npy``: bytes per window, and two
lossless redundancies found in the values themselves:

* channels whose rows repeat in blocks along the bins axis (the echo beams are a bands x delay echogram
  resized to the spectrogram's bins with nearest-neighbour interpolation: each band row is stored
  ``bins / bands`` times) -- storing each distinct row once is lossless;
* caches that are a channel prefix of another cache of the same split (a feature ablation variant is
  the full feature stack's first channels) -- serving them as a slice of the full cache is lossless.

Redundancies are checked on the first ``--rows`` windows of each cache (``--rows 0``: every window).
"""
from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from pathlib import Path

import numpy as np


def _repeats(x: np.ndarray, k: int) -> bool:
    """Whether the rows of x (n, bins, frames) are equal within consecutive blocks of k along the bins axis."""
    blocks = x.reshape(x.shape[0], x.shape[1] // k, k, x.shape[2])
    return bool(np.array_equal(blocks, np.broadcast_to(blocks[:, :, :1], blocks.shape)))


def _chunks(arr: np.ndarray, rows: int, chunk: int = 256):
    n = len(arr) if rows <= 0 else min(rows, len(arr))
    for start in range(0, n, chunk):
        yield np.asarray(arr[start:min(n, start + chunk)])


def dataset_bytes(data: Path) -> dict:
    """Bytes per window of each file kind over every shard of every split."""
    totals: dict[str, int] = {}
    windows = 0
    for shard in sorted(p.parent for p in data.glob('*/shard-*/shard.json')):
        windows += int(json.loads((shard / 'shard.json').read_text())['count'])
        for f in shard.iterdir():
            totals[f.name] = totals.get(f.name, 0) + f.stat().st_size
    total = sum(totals.values())
    return {'windows': windows, 'bytes': total, 'bytes_per_window': round(total / max(windows, 1), 1),
            'bytes_per_window_by_file': {k: round(v / max(windows, 1), 1) for k, v in sorted(totals.items())}}


def cache_bytes(data: Path, rows: int) -> dict:
    """Size, per-window bytes and lossless redundancies of every cached feature file (read in chunks)."""
    caches = []
    for f in sorted((data / 'features_cache').glob('*.npy')):
        arr = np.load(f, mmap_mode='r')
        bins = arr.shape[2]
        # per channel: the block sizes (divisors of bins) still consistent with every chunk read so far
        candidates = [[d for d in range(2, bins + 1) if bins % d == 0] for _ in range(arr.shape[1])]
        checked = 0
        for x in _chunks(arr, rows):
            checked += len(x)
            for c in range(arr.shape[1]):
                candidates[c] = [k for k in candidates[c] if _repeats(x[:, c], k)]
        blocks = [max(c, default=1) for c in candidates]
        compact = sum(bins // k * arr.shape[3] * arr.dtype.itemsize for k in blocks)
        caches.append({'file': f.name, 'split': f.name.split('-')[0], 'shape': list(arr.shape), 'dtype': str(arr.dtype),
                       'bytes': f.stat().st_size, 'bytes_per_window': arr[0].nbytes, 'checked_windows': checked,
                       'channels_repeating_along_bins': {str(c): k for c, k in enumerate(blocks) if k > 1},
                       'bytes_per_window_rows_stored_once': compact})
    for c in caches:
        small = np.load(data / 'features_cache' / c['file'], mmap_mode='r')
        for other in sorted(caches, key=lambda o: -o['shape'][1]):
            if other['split'] != c['split'] or other['shape'][1] <= c['shape'][1] or other['shape'][0] != c['shape'][0]:
                continue
            big = np.load(data / 'features_cache' / other['file'], mmap_mode='r')
            if all(np.array_equal(b[:, :small.shape[1]], s) for b, s in zip(_chunks(big, rows), _chunks(small, rows))):
                c['channel_prefix_of'] = other['file']
                break
    total = sum(c['bytes'] for c in caches)
    duplicate = sum(c['bytes'] for c in caches if 'channel_prefix_of' in c)
    return {'files': caches, 'bytes': total, 'bytes_in_channel_prefix_copies': duplicate}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('data', type=Path, help='dataset directory (with card.json and features_cache/)')
    p.add_argument('--rows', type=int, default=512, help='windows per cache checked for redundancy (0: all)')
    p.add_argument('--out', type=Path, help='write the JSON here (default: stdout only)')
    args = p.parse_args(argv)
    if not (args.data / 'card.json').is_file():
        print(f'{args.data}: no card.json', file=sys.stderr)
        return 2
    card = json.loads((args.data / 'card.json').read_text())
    result = {'command': 'python scripts/dataset_footprint.py ' + ' '.join(argv if argv is not None else sys.argv[1:]),
              'date': date.today().isoformat(), 'dataset': str(args.data),
              'content_hash': card.get('content_hash'), 'data': dataset_bytes(args.data),
              'features_cache': cache_bytes(args.data, args.rows)}
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text + '\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
