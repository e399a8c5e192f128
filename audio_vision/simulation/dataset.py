# SPDX-License-Identifier: Apache-2.0
"""Simulated datasets: deterministic, sharded, parallel generation, written through `audio_vision.dataset`
(the format, its writer, card and reader live there; the bag converter writes through the same layer).

Sample `index` is a pure function of (seed, index): room `index // poses_per_room` is drawn from
(seed, room id), the pose and sources from (seed, index). Shard i of n holds the indices
congruent to i mod n, so machines can split work and any union of shards is consistent.
A room's split is fixed by its id alone (`audio_vision.dataset.split_of_room`), so a room never
appears in two splits.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from audio_vision.core.camera import PinholeCamera
from audio_vision.core.classes import DEFAULT_CLASS_TABLE, ClassTable
from audio_vision.dataset import (DatasetLayout, DatasetWriter, generator_info, shard_indices, shard_name,
                                  split_of_room)

from .config import SimConfig
from .geometry import mic_positions

_ROOM_SEED_TAG, _POSE_SEED_TAG = 1, 2


# --- determinism ---------------------------------------------------------------------------
def derive_seed(seed: int, item: int, tag: int) -> int:
    """A 63-bit seed for (dataset seed, room or sample id, purpose), independent of workers."""
    state = np.random.SeedSequence([int(seed), int(item), int(tag)]).generate_state(1, np.uint64)[0]
    return int(state >> np.uint64(1))


def dataset_layout(cfg: SimConfig, class_table: ClassTable = DEFAULT_CLASS_TABLE) -> DatasetLayout:
    """What every sample of a dataset made with `cfg` shares (array, window, camera, classes, splits), as the
    plain data the dataset layer writes the card from; also the bag converter's description of the robot."""
    return DatasetLayout(sample_rate=int(cfg.recording.sample_rate), window_s=cfg.recording.window_s,
                         mic_positions=mic_positions(cfg.array),
                         camera=PinholeCamera(cfg.camera.width, cfg.camera.height, cfg.camera.hfov_deg),
                         split_fractions=dict(cfg.dataset.split_fractions), config=cfg.to_dict(),
                         class_table=class_table)


# --- one sample ----------------------------------------------------------------------------
def make_sample(sim, seed: int, index: int) -> tuple[dict[str, np.ndarray], dict]:
    """Arrays and metadata of dataset sample `index`."""
    cfg = sim.cfg
    room_id = index // cfg.dataset.poses_per_room
    room = sim.sample_room(derive_seed(seed, room_id, _ROOM_SEED_TAG))
    sample_seed = derive_seed(seed, index, _POSE_SEED_TAG)
    scene = sim.sample_scene(sample_seed, room=room)
    gt = sim.render(scene)
    audio, info = sim.record_with_info(scene, cfg.recording.window_s, sample_seed)
    arrays = {'audio': audio, 'depth': gt.depth, 'segmentation': gt.segmentation, 'K': gt.K,
              'camera_pose': gt.camera_pose, 'room_size': np.asarray(room.size, dtype=np.float64),
              'seed': np.int64(sample_seed), 'index': np.int64(index), 'room_id': np.int64(room_id)}
    meta = {'index': index, 'seed': sample_seed, 'room_id': room_id,
            'split': split_of_room(room_id, cfg.dataset.split_fractions),
            'scene': scene.to_dict(), 'recording': info}
    return arrays, meta


# --- worker pool ---------------------------------------------------------------------------
_WORKER_SIM = None  # per worker process only, set by the pool initialiser


def _init_worker(cfg_dict: dict, sim_kwargs: dict) -> None:
    global _WORKER_SIM
    reuse_freed_memory()
    from .simulator import Simulator
    _WORKER_SIM = Simulator(SimConfig.from_dict(cfg_dict), **sim_kwargs)


def _work(task: tuple[int, int]):
    seed, index = task
    return make_sample(_WORKER_SIM, seed, index)


# glibc mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3


def reuse_freed_memory() -> bool:
    """Let glibc serve a sample's large temporaries (RIRs, spectra, tails: up to a few MB each) from the heap
    and keep freed memory for the next sample, instead of one mmap/munmap and fresh zeroed pages per array.

    The page faults of those fresh pages cost about a fifth of a sample's CPU time; the samples themselves
    do not change (allocation only). The generating process keeps up to a few hundred MB of freed heap.
    Returns whether the allocator took the settings (False off glibc: nothing changes there).
    """
    try:
        import ctypes
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError, TypeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    settings = ((_M_MMAP_THRESHOLD, 32 << 20), (_M_TRIM_THRESHOLD, 256 << 20), (_M_TOP_PAD, 64 << 20))
    return all([mallopt(option, value) == 1 for option, value in settings])


@contextmanager
def _single_threaded_env():
    """Children inherit these: one BLAS/OpenMP thread per worker, the pool supplies parallelism."""
    keys = ('OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS', 'NUMEXPR_NUM_THREADS')
    saved = {k: os.environ.get(k) for k in keys}
    os.environ.update({k: '1' for k in keys})
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def iter_samples(cfg: SimConfig, seed: int, indices: list[int], workers: int,
                 sim_kwargs: dict | None = None) -> Iterator:
    """(arrays, meta) of the samples ``indices`` of the dataset of ``seed``, in that order, made by ``workers``
    processes; ``sim_kwargs``: the :class:`~.simulator.Simulator`'s other arguments (picklable: another room-acoustics
    engine is passed by reference, scripts/rerecord_independent.py)."""
    tasks = [(seed, i) for i in indices]
    sim_kwargs = sim_kwargs or {}
    if workers <= 1 or len(tasks) <= 1:
        reuse_freed_memory()
        from .simulator import Simulator
        sim = Simulator(cfg, **sim_kwargs)
        for task in tasks:
            yield make_sample(sim, *task)
        return
    import multiprocessing as mp
    # spawn: fresh interpreters that honour the single-thread environment (fork would inherit
    # thread pools already started in the parent, e.g. by torch).
    with _single_threaded_env():
        pool = mp.get_context('spawn').Pool(workers, _init_worker, (cfg.to_dict(), sim_kwargs))
    try:
        chunk = max(1, min(8, len(tasks) // (4 * workers)))
        yield from pool.imap(_work, tasks, chunksize=chunk)
    finally:
        pool.terminate()
        pool.join()


# --- writer --------------------------------------------------------------------------------
def generate_dataset(out: str | Path, n: int, seed: int, cfg: SimConfig | None = None,
                     shard: int = 0, num_shards: int = 1, workers: int = 1,
                     progress: bool = True) -> dict:
    """Generate shard `shard` of `num_shards` of an `n`-sample dataset into `out`; returns the card.

    Re-running into the same directory with another shard adds it; the card is rebuilt from
    every shard present (they must share config, seed and n).
    """
    cfg = cfg if cfg is not None else SimConfig()
    if n < 1:
        raise ValueError(f'n must be >= 1, got {n}')
    layout = dataset_layout(cfg)
    writer = DatasetWriter(out, layout, generator_info(layout.config, seed, n, num_shards))
    indices = shard_indices(n, shard, num_shards)
    splits = [split_of_room(i // cfg.dataset.poses_per_room, cfg.dataset.split_fractions) for i in indices]
    shards = {split: writer.shard(split, shard, num_shards, splits.count(split))
              for split in layout.splits if split in splits}
    bar = _progress(len(indices), f'dataset {shard_name(shard, num_shards)}', progress)
    try:
        for arrays, meta in iter_samples(cfg, seed, indices, workers):
            shards[meta['split']].append(arrays, meta)
            bar.update(1)
    finally:
        bar.close()
    for shard_writer in shards.values():
        shard_writer.commit()
    return writer.finish()


@dataclass
class _NoBar:
    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def _progress(total: int, desc: str, enabled: bool):
    if not enabled:
        return _NoBar()
    try:
        from tqdm import tqdm
    except ImportError:
        return _NoBar()
    return tqdm(total=total, desc=desc, unit='sample', dynamic_ncols=True)
