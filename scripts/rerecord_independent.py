#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Re-record a dataset split's windows with the independent room-acoustics engine (rir_generator's image method,
`audio_vision/simulation/independent.py`) into a new dataset directory of the same format.

    python scripts/rerecord_independent.py --data data/default --split test --limit 400 --out data/independent
    python scripts/rerecord_independent.py --data data/default --split test --limit 400 --workers 2 \
        --reuse data/independent_100 --out data/independent      # the first 100 windows copied from an earlier run
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
import itertools  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from audio_vision.dataset import DatasetLayout, DatasetReader, DatasetWriter, generator_info  # noqa: E402
from audio_vision.simulation import independent  # noqa: E402
from audio_vision.simulation.config import SimConfig  # noqa: E402
from audio_vision.simulation.dataset import iter_samples  # noqa: E402

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


def reusable(earlier: Path | None, source: dict, reader: DatasetReader) -> DatasetReader | None:
    """The windows of an earlier re-recording of the same source dataset and split by the same engine (``--reuse``):
    the engine is deterministic (every draw from the seeds the source records), so its windows are what this run
    would record; None without one. Anything else is refused with what differs."""
    if earlier is None:
        return None
    try:
        old = DatasetReader(earlier, source['split'])
    except FileNotFoundError as exc:
        raise SystemExit(f'--reuse {earlier}: {exc}') from None
    gen = old.card.get('generator', {})
    was = gen.get('rerecorded_from') or {}
    for what, mine, theirs in (('engine', engine_record(), gen.get('engine')),
                               ('source content hash', source['content_hash'], was.get('content_hash')),
                               ('source split', source['split'], was.get('split')),
                               ('layout', reader.card.get('layout'), old.card.get('layout'))):
        if mine != theirs:
            raise SystemExit(f"--reuse {earlier}: its {what} is {theirs!r}, this run's {mine!r}: not the same "
                             "recording")
    return old


def rerecord(data: Path, split: str, out: Path, limit: int | None = None, progress: bool = True,
             workers: int = 1, reuse: Path | None = None) -> dict:
    """Re-record the first `limit` windows (dataset-index order) of `split` with `workers` processes, the first ones
    copied from `reuse` (an earlier re-recording of the same source: :func:`reusable`) where it holds them; returns the
    new card, the seconds each window recorded here took (with one worker; else empty), the windows reused and the
    wall-clock seconds of the recording."""
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
    source = {'path': str(data), 'split': split, 'windows': n, 'content_hash': card.get('content_hash'),
              'config_hash': gen.get('config_hash')}
    earlier = reusable(reuse, source, reader)
    reused = min(n, len(earlier)) if earlier is not None else 0
    generator = generator_info(layout.config, gen['seed'], gen['n'], gen.get('num_shards', 1),
                               engine=engine_record(), rerecorded_from=source)
    writer = DatasetWriter(out, layout, generator, DESCRIPTION)
    shard = writer.shard(split, 0, 1, n)
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=n, desc=f'rerecord {split}', unit='window', dynamic_ncols=True)
    seconds = []

    def copied():
        for i in range(reused):
            yield earlier[i], earlier.metadata(i)

    def recorded():
        indices = [int(reader[i]['index']) for i in range(reused, n)]
        samples = iter_samples(cfg, gen['seed'], indices, workers,
                               {'class_table': layout.class_table, 'room_acoustics': independent.room_response})
        while True:
            t0 = time.perf_counter()
            sample = next(samples, None)
            if sample is None:
                return
            if workers <= 1:        # with a pool the wait for the next window is not its time
                seconds.append(time.perf_counter() - t0)
            yield sample

    t_start = time.perf_counter()
    try:
        for i, (arrays, meta) in enumerate(itertools.chain(copied(), recorded())):
            old, old_meta = reader[i], reader.metadata(i)
            check_same(i, int(old['index']), arrays, meta, old, old_meta, split)
            if i >= reused:
                meta['engine'] = independent.ENGINE
                meta['source_recording'] = old_meta.get('recording')
            elif meta.get('engine') != independent.ENGINE:
                raise SystemExit(f'--reuse {reuse}: window {i} was recorded by {meta.get("engine")!r}')
            shard.append(arrays, meta)
            if bar is not None:
                bar.update(1)
                if seconds:
                    bar.set_postfix(s_per_window=f'{np.mean(seconds):.2f}')
    finally:
        if bar is not None:
            bar.close()
    shard.commit()
    new_card = writer.finish()
    return {'card': new_card, 'seconds': seconds, 'reused': reused, 'wall_s': time.perf_counter() - t_start}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--data', type=Path, required=True, help='source dataset directory')
    ap.add_argument('--split', default='test', help='split to re-record (default: test)')
    ap.add_argument('--limit', type=int, help='re-record only the first N windows (dataset-index order)')
    ap.add_argument('--out', type=Path, required=True, help='new dataset directory')
    ap.add_argument('--workers', type=int, default=1, help='processes recording windows in parallel (default: 1)')
    ap.add_argument('--reuse', type=Path, metavar='DIR',
                    help='an earlier re-recording of the same source and split: its windows are copied, not recorded '
                         'again (the engine is deterministic), and the rest recorded after them')
    ap.add_argument('--no-progress', action='store_true')
    args = ap.parse_args(argv)
    if args.out.resolve() == args.data.resolve():
        ap.error('--out must be another directory than --data')
    if args.workers < 1:
        ap.error(f'--workers must be >= 1, got {args.workers}')
    if args.reuse is not None and args.reuse.resolve() == args.out.resolve():
        ap.error('--reuse must be another directory than --out')
    t0 = time.perf_counter()
    result = rerecord(args.data, args.split, args.out, args.limit, progress=not args.no_progress,
                      workers=args.workers, reuse=args.reuse)
    seconds = np.asarray(result['seconds'])
    card = result['card']
    per_window = ({'mean': float(seconds.mean()), 'median': float(np.median(seconds)),
                   'p90': float(np.percentile(seconds, 90)), 'max': float(seconds.max())} if len(seconds) else None)
    print(json.dumps({'out': str(args.out), 'split': args.split,
                      'windows': int(card['splits'][args.split]['count']), 'reused': result['reused'],
                      'workers': args.workers, 'ground_truth_identical': True, 'engine': independent.ENGINE,
                      'seconds_per_window': per_window, 'recording_wall_s': result['wall_s'],
                      'total_s': time.perf_counter() - t0, 'content_hash': card['content_hash']}, indent=1))
    return 0


if __name__ == '__main__':
    sys.exit(main())
