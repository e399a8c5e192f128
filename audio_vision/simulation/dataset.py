# SPDX-License-Identifier: Apache-2.0
"""Dataset engine: deterministic, sharded, parallel generation; streaming reader; torch wrapper.

Layout (all readable with numpy alone; schema in docs/SIMULATOR.md):

    DIR/card.json                      generator config, class table, counts, content hash
    DIR/mic_positions.npy              (C, 3) float64, array frame
    DIR/<split>/shard-IIIII-of-NNNNN/  one directory per split and shard
        audio.npy (n, C, N) float32    depth.npy (n, H, W) float32   segmentation.npy (n, H, W) uint8
        K.npy (n, 3, 3) float64        camera_pose.npy (n, 4, 4)     room_size.npy (n, 3)
        seed.npy, index.npy, room_id.npy (n,) int64
        meta.json                      per-sample scene (materials, sources, pose) and recording draws
        shard.json                     counts and the shard's content hash

Sample `index` is a pure function of (seed, index): room `index // poses_per_room` is drawn from
(seed, room id), the pose and sources from (seed, index). Shard i of n holds the indices
congruent to i mod n, so machines can split work and any union of shards is consistent.
A room's split is fixed by its id alone, so a room never appears in two splits.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from .config import SimConfig

FORMAT_VERSION = 1
ARRAY_NAMES = ('audio', 'depth', 'segmentation', 'K', 'camera_pose', 'room_size', 'seed', 'index', 'room_id')
_GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0
_ROOM_SEED_TAG, _POSE_SEED_TAG = 1, 2


# --- determinism ---------------------------------------------------------------------------
def derive_seed(seed: int, item: int, tag: int) -> int:
    """A 63-bit seed for (dataset seed, room or sample id, purpose), independent of workers."""
    state = np.random.SeedSequence([int(seed), int(item), int(tag)]).generate_state(1, np.uint64)[0]
    return int(state >> np.uint64(1))


def split_of_room(room_id: int, fractions: dict[str, float]) -> str:
    """Split of a room: the golden-ratio sequence frac((r + 1) * phi) is equidistributed, so split
    sizes track the fractions closely for any number of rooms, with no randomness to share."""
    u = ((room_id + 1) * _GOLDEN) % 1.0
    acc = 0.0
    names = list(fractions)
    for name in names:
        acc += fractions[name]
        if u < acc:
            return name
    return names[-1]


def shard_indices(n: int, shard: int, num_shards: int) -> list[int]:
    if not 0 <= shard < num_shards:
        raise ValueError(f'shard index {shard} not in [0, {num_shards})')
    return list(range(shard, n, num_shards))


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


def array_specs(sim) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Shape and dtype of one sample's arrays: the shard layout (also written by bag.convert)."""
    cfg = sim.cfg
    n_samples = int(round(cfg.recording.window_s * sim.sample_rate))
    H, W = sim.camera.height, sim.camera.width
    return {'audio': ((sim.num_channels, n_samples), np.float32), 'depth': ((H, W), np.float32),
            'segmentation': ((H, W), np.uint8), 'K': ((3, 3), np.float64),
            'camera_pose': ((4, 4), np.float64), 'room_size': ((3,), np.float64),
            'seed': ((), np.int64), 'index': ((), np.int64), 'room_id': ((), np.int64)}


# --- worker pool ---------------------------------------------------------------------------
_WORKER_SIM = None  # per worker process only, set by the pool initialiser


def _init_worker(cfg_dict: dict) -> None:
    global _WORKER_SIM
    from .simulator import Simulator
    _WORKER_SIM = Simulator(SimConfig.from_dict(cfg_dict))


def _work(task: tuple[int, int]):
    seed, index = task
    return make_sample(_WORKER_SIM, seed, index)


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


def _iter_samples(cfg: SimConfig, seed: int, indices: list[int], workers: int) -> Iterator:
    tasks = [(seed, i) for i in indices]
    if workers <= 1 or len(tasks) <= 1:
        from .simulator import Simulator
        sim = Simulator(cfg)
        for task in tasks:
            yield make_sample(sim, *task)
        return
    import multiprocessing as mp
    # spawn: fresh interpreters that honour the single-thread environment (fork would inherit
    # thread pools already started in the parent, e.g. by torch).
    with _single_threaded_env():
        pool = mp.get_context('spawn').Pool(workers, _init_worker, (cfg.to_dict(),))
    try:
        chunk = max(1, min(8, len(tasks) // (4 * workers)))
        yield from pool.imap(_work, tasks, chunksize=chunk)
    finally:
        pool.terminate()
        pool.join()


# --- writer --------------------------------------------------------------------------------
def shard_name(shard: int, num_shards: int) -> str:
    return f'shard-{shard:05d}-of-{num_shards:05d}'


def generate_dataset(out: str | Path, n: int, seed: int, cfg: SimConfig | None = None,
                     shard: int = 0, num_shards: int = 1, workers: int = 1,
                     progress: bool = True) -> dict:
    """Generate shard `shard` of `num_shards` of an `n`-sample dataset into `out`; returns the card.

    Re-running into the same directory with another shard adds it; the card is rebuilt from
    every shard present (they must share config, seed and n).
    """
    from .simulator import Simulator
    cfg = cfg if cfg is not None else SimConfig()
    if n < 1:
        raise ValueError(f'n must be >= 1, got {n}')
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    sim = Simulator(cfg)
    generator = {'format_version': FORMAT_VERSION, 'seed': int(seed), 'n': int(n),
                 'num_shards': int(num_shards), 'sharding': 'index % num_shards == shard',
                 'config': cfg.to_dict()}
    existing = _read_json(out / 'card.json')
    if existing is not None and existing.get('generator', {}).get('config_hash') != hash_json(generator):
        raise ValueError(f'{out} holds a dataset with another config/seed/n/num_shards; use a new directory')

    indices = shard_indices(n, shard, num_shards)
    splits = {i: split_of_room(i // cfg.dataset.poses_per_room, cfg.dataset.split_fractions) for i in indices}
    specs = array_specs(sim)
    name = shard_name(shard, num_shards)
    writers, rows, metas = {}, {}, {}
    for split in cfg.dataset.split_fractions:
        count = sum(1 for s in splits.values() if s == split)
        if count == 0:
            continue
        tmp = out / split / f'.{name}.partial'
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
        writers[split] = (tmp, {k: np.lib.format.open_memmap(tmp / f'{k}.npy', mode='w+', dtype=dt,
                                                             shape=(count,) + shape)
                                for k, (shape, dt) in specs.items()})
        rows[split], metas[split] = 0, []

    bar = _progress(len(indices), f'dataset {name}', progress)
    try:
        for arrays, meta in _iter_samples(cfg, seed, indices, workers):
            split = meta['split']
            tmp, mm = writers[split]
            r = rows[split]
            for k, v in arrays.items():
                mm[k][r] = v
            rows[split] = r + 1
            metas[split].append(meta)
            bar.update(1)
    finally:
        bar.close()

    for split, (tmp, mm) in writers.items():
        for arr in mm.values():
            arr.flush()
        del mm
        shard_info = {'split': split, 'shard': shard, 'num_shards': num_shards, 'count': rows[split],
                      'indices': [m['index'] for m in metas[split]],
                      'rooms': sorted({m['room_id'] for m in metas[split]}),
                      'content_hash': hash_arrays(tmp), 'config_hash': hash_json(generator)}
        write_json(tmp / 'meta.json', metas[split])
        write_json(tmp / 'shard.json', shard_info)
        final = out / split / name
        if final.exists():
            shutil.rmtree(final)
        tmp.rename(final)
    np.save(out / 'mic_positions.npy', np.asarray(sim.mic_positions, dtype=np.float64))
    return write_card(out, generator, sim)


def write_card(out: Path, generator: dict, sim) -> dict:
    """(Re)build card.json from every shard present in `out`."""
    out = Path(out)
    splits, hashes = {}, []
    for split in generator['config']['dataset']['split_fractions']:
        shards = []
        for info_path in sorted((out / split).glob('shard-*/shard.json')):
            info = _read_json(info_path)
            if info['config_hash'] != hash_json(generator):
                raise ValueError(f'{info_path.parent} was generated with another config/seed/n')
            shards.append(info)
            hashes.append(f"{split}/{info_path.parent.name}:{info['content_hash']}")
        splits[split] = {'count': sum(s['count'] for s in shards),
                         'rooms': len({r for s in shards for r in s['rooms']}),
                         'shards': [shard_name(s['shard'], s['num_shards']) for s in shards]}
    present = {s for v in splits.values() for s in v['shards']}
    card = {
        'name': out.name, 'format_version': FORMAT_VERSION,
        'description': 'audio_vision simulated microphone-array recordings with ground-truth depth '
                       'and segmentation (see docs/SIMULATOR.md)',
        'generator': dict(generator, config_hash=hash_json(generator)),
        'sample_rate': sim.sample_rate, 'window_s': sim.cfg.recording.window_s,
        'num_channels': sim.num_channels, 'mic_positions': np.asarray(sim.mic_positions).tolist(),
        'camera': sim.camera.to_dict(), 'K': sim.camera.K.tolist(),
        'class_table': sim.class_table.to_list(),
        'arrays': {k: {'shape': ['n'] + list(shape), 'dtype': np.dtype(dt).name}
                   for k, (shape, dt) in array_specs(sim).items()},
        'splits': splits,
        'count': sum(v['count'] for v in splits.values()),
        'complete': all(shard_name(i, generator['num_shards']) in present
                        or not shard_indices(generator['n'], i, generator['num_shards'])
                        for i in range(generator['num_shards']))
        if present else False,
        'content_hash': hashlib.sha256('\n'.join(sorted(hashes)).encode()).hexdigest(),
    }
    write_json(out / 'card.json', card)
    return card


def rebuild_card(out: str | Path) -> dict:
    """Re-list shards copied together from several machines and rewrite card.json."""
    from .simulator import Simulator
    out = Path(out)
    infos = sorted(out.glob('*/shard-*/shard.json'))
    card = _read_json(out / 'card.json')
    if card is None:
        raise ValueError(f'{out}: no card.json to take the generator config from')
    generator = {k: v for k, v in card['generator'].items() if k != 'config_hash'}
    if not infos:
        raise ValueError(f'{out}: no shards found')
    return write_card(out, generator, Simulator(SimConfig.from_dict(generator['config'])))


# --- reader --------------------------------------------------------------------------------
class DatasetReader:
    """Random access to one split, memory-mapped (nothing is loaded until indexed).

    Samples are ordered by their dataset index, whatever the sharding was.
    """

    def __init__(self, path: str | Path, split: str):
        self.path = Path(path)
        self.split = split
        self.card = _read_json(self.path / 'card.json')
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
        """Scene (room, materials, pose, sources) and recording draws of sample i."""
        i = int(i) % len(self)
        shard = int(self._shard_of[i])
        if shard not in self._meta:
            self._meta[shard] = _read_json(self._shard_dirs[shard] / 'meta.json')
        return self._meta[shard][int(self._local[i])]


def __getattr__(name):
    if name == 'AudioVisionDataset':
        from .torch_dataset import AudioVisionDataset
        return AudioVisionDataset
    raise AttributeError(name)


# --- helpers -------------------------------------------------------------------------------
def hash_arrays(directory: Path) -> str:
    """Content hash of a shard's arrays, as recorded in shard.json and checked on load."""
    h = hashlib.sha256()
    for name in ARRAY_NAMES:
        arr = np.load(directory / f'{name}.npy', mmap_mode='r')
        h.update(f'{name}:{arr.dtype.str}:{arr.shape}'.encode())
        step = max(1, (64 << 20) // max(arr[:1].nbytes, 1))      # ~64 MB at a time
        for start in range(0, len(arr), step):
            h.update(np.ascontiguousarray(arr[start:start + step]).tobytes())
    return h.hexdigest()


def hash_json(obj) -> str:
    """Short hash of a JSON-able object (key order independent): config_hash of a shard."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


def _read_json(path: Path):
    try:
        with open(path, encoding='utf-8') as f:
            return json.load(f)
    except FileNotFoundError:
        return None


def write_json(path: Path, obj) -> None:
    """Write atomically (temp file + rename) so a killed generator never leaves half a file."""
    tmp = Path(str(path) + '.tmp')
    with open(tmp, 'w', encoding='utf-8') as f:
        json.dump(obj, f, indent=1, sort_keys=True)
        f.write('\n')
    tmp.replace(path)


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
