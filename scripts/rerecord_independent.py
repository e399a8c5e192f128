#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Re-record a dataset split's windows with the independent room-acoustics engine (rir_generator's image method,
`audio_vision/simulation/independent.py`) into a new dataset directory of the same format.

    python scripts/rerecord_independent.py --data data/default --split test --limit 400 --out data/independent
    python -m audio_vision evaluate --data data/independent --split test --json docs/results_independent.json

Each window is regenerated from the seeds the source dataset records (card: generator seed and config; window:
its dataset index), exactly as the generator made it (`simulation.dataset.make_sample`: the room from (seed,
room id), the pose, sources, ground truth and recording seed from (seed, index)), but recorded through a
`Simulator` whose room acoustics are `independent.room_response`. The regenerated scene and every ground-truth
array (depth, segmentation, K, camera pose, room size, seed, index, room id) must equal the source's, checked for
every window (the script stops otherwise), so a comparison of the two datasets is on the same scenes. (The card's
config has its keys sorted; the orders that sampling depends on are restored from the package's `SimConfig()`:
`generator_order`.) Only the
audio and the recording draws in meta.json change; meta.json also keeps the source's draws (`source_recording`)
and names the engine (`engine`), and the card's generator records the engine and the source dataset.
"""
from __future__ import annotations

import os

for _key in ('OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS', 'NUMEXPR_NUM_THREADS'):
    os.environ.setdefault(_key, '1')        # one core: the machine is shared

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from audio_vision.dataset import DatasetLayout, DatasetReader, DatasetWriter, generator_info  # noqa: E402
from audio_vision.simulation import independent  # noqa: E402
from audio_vision.simulation.config import SimConfig  # noqa: E402
from audio_vision.simulation.dataset import make_sample  # noqa: E402
from audio_vision.simulation.simulator import Simulator  # noqa: E402

#: arrays that must come out of the regeneration exactly as stored (everything but the audio)
SAME_ARRAYS = ('depth', 'segmentation', 'K', 'camera_pose', 'room_size', 'seed', 'index', 'room_id')
DESCRIPTION = ('audio_vision simulated windows re-recorded by an independent room-acoustics engine (rir_generator '
               'image method for the room shell, the project\'s body echoes); ground truth identical to the source '
               'dataset (see scripts/rerecord_independent.py)')


def engine_record() -> dict:
    """What recorded the audio (on the card and in every window's meta)."""
    return {'room_shell': independent.ENGINE, 'room_response': 'audio_vision.simulation.independent.room_response',
            'bodies': 'audio_vision.simulation.acoustics.body_rirs (the project\'s body echoes)',
            'reflection': f'one broadband beta = sqrt(1 - alpha) per surface, alpha over '
                          f'{independent.CHIRP_BAND_HZ[0]:.0f}-{independent.CHIRP_BAND_HZ[1]:.0f} Hz',
            'air_absorption': 'none on the room shell (rir_generator has none)'}


def generator_order(config: dict, reference: dict) -> dict:
    """`config` (the card's, whose keys JSON sorted) with its dict keys in `reference`'s order where both have them
    (other keys after, as they are), recursively.

    The order matters: the sampler draws a source's class by its index in `sources.classes` and `split_of_room`
    walks `dataset.split_fractions` in order, so `SimConfig.from_dict` of the sorted card config (classes
    alarm, appliance, person; splits test, train, val) draws other scenes and splits than the generator did.
    The package's own `SimConfig()` order is the generator's for datasets made with the shipped config; every
    window's regenerated scene is then checked against the stored one, so a wrong order cannot pass unnoticed.
    """
    if not isinstance(config, dict) or not isinstance(reference, dict):
        return config
    keys = [k for k in reference if k in config] + [k for k in config if k not in reference]
    return {k: generator_order(config[k], reference.get(k)) for k in keys}


def check_same(i: int, index: int, new_arrays: dict, new_meta: dict, old: dict, old_meta: dict, split: str) -> None:
    """The regenerated window is the stored one: scene, seeds, split and every ground-truth array."""
    for name in SAME_ARRAYS:
        if not np.array_equal(np.asarray(new_arrays[name]), np.asarray(old[name])):
            raise AssertionError(f'window {i} (index {index}): regenerated {name} differs from the source dataset')
    if json.loads(json.dumps(new_meta['scene'])) != old_meta['scene']:
        raise AssertionError(f'window {i} (index {index}): regenerated scene differs from the source meta.json')
    for key in ('index', 'seed', 'room_id'):
        if new_meta[key] != old_meta[key]:
            raise AssertionError(f'window {i} (index {index}): {key} {new_meta[key]} != {old_meta[key]}')
    if not new_meta['split'] == old_meta['split'] == split:
        raise AssertionError(f'window {i} (index {index}): split {new_meta["split"]} (regenerated), '
                             f'{old_meta["split"]} (stored), {split} (read)')


def rerecord(data: Path, split: str, out: Path, limit: int | None = None, progress: bool = True) -> dict:
    """Re-record the first `limit` windows (dataset-index order) of `split`; returns the new card and timings."""
    reader = DatasetReader(data, split)
    card = reader.card
    gen = card.get('generator', {})
    if not gen.get('config') or 'seed' not in gen:
        raise SystemExit(f'{data}: the card records no simulator config/seed (a dataset from a bag?): '
                         f'its scenes cannot be regenerated')
    n = len(reader) if limit is None else min(int(limit), len(reader))
    if n < 1:
        raise SystemExit(f'{data}/{split}: no windows to re-record')
    cfg = SimConfig.from_dict(generator_order(gen['config'], SimConfig().to_dict()))
    layout = DatasetLayout.from_card(card)
    sim = Simulator(cfg, layout.class_table, room_acoustics=independent.room_response)
    source = {'path': str(data), 'split': split, 'windows': n, 'content_hash': card.get('content_hash'),
              'config_hash': gen.get('config_hash')}
    generator = generator_info(layout.config, gen['seed'], gen['n'], gen.get('num_shards', 1),
                               engine=engine_record(), rerecorded_from=source)
    writer = DatasetWriter(out, layout, generator, DESCRIPTION)
    shard = writer.shard(split, 0, 1, n)
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=n, desc=f'rerecord {split}', unit='window', dynamic_ncols=True)
    seconds = []
    try:
        for i in range(n):
            old, old_meta = reader[i], reader.metadata(i)
            index = int(old['index'])
            t0 = time.perf_counter()
            arrays, meta = make_sample(sim, gen['seed'], index)
            seconds.append(time.perf_counter() - t0)
            check_same(i, index, arrays, meta, old, old_meta, split)
            meta['engine'] = independent.ENGINE
            meta['source_recording'] = old_meta.get('recording')
            shard.append(arrays, meta)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(s_per_window=f'{np.mean(seconds):.2f}')
    finally:
        if bar is not None:
            bar.close()
    shard.commit()
    new_card = writer.finish()
    return {'card': new_card, 'seconds': seconds}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--data', type=Path, required=True, help='source dataset directory')
    ap.add_argument('--split', default='test', help='split to re-record (default: test)')
    ap.add_argument('--limit', type=int, help='re-record only the first N windows (dataset-index order)')
    ap.add_argument('--out', type=Path, required=True, help='new dataset directory')
    ap.add_argument('--no-progress', action='store_true')
    args = ap.parse_args(argv)
    if args.out.resolve() == args.data.resolve():
        ap.error('--out must be another directory than --data')
    t0 = time.perf_counter()
    result = rerecord(args.data, args.split, args.out, args.limit, progress=not args.no_progress)
    seconds = np.asarray(result['seconds'])
    card = result['card']
    print(json.dumps({'out': str(args.out), 'split': args.split, 'windows': int(len(seconds)),
                      'ground_truth_identical': True, 'engine': independent.ENGINE,
                      'seconds_per_window': {'mean': float(seconds.mean()), 'median': float(np.median(seconds)),
                                             'p90': float(np.percentile(seconds, 90)), 'max': float(seconds.max())},
                      'total_s': time.perf_counter() - t0, 'content_hash': card['content_hash']}, indent=1))
    return 0


if __name__ == '__main__':
    sys.exit(main())
