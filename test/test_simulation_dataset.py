# SPDX-License-Identifier: Apache-2.0
"""Dataset engine: determinism across workers and shards, splits by room, reader round trip, CLI."""
import dataclasses
import json
import platform
from pathlib import Path

import numpy as np
import pytest
import yaml

from audio_vision.cli import main as cli_main
from audio_vision.simulation import SimConfig, Simulator
from audio_vision.dataset import ARRAY_NAMES, DatasetReader, split_of_room
from audio_vision.simulation.dataset import generate_dataset, make_sample, reuse_freed_memory


def _small_cfg() -> SimConfig:
    cfg = SimConfig()
    return dataclasses.replace(
        cfg, camera=dataclasses.replace(cfg.camera, width=16, height=16),
        recording=dataclasses.replace(cfg.recording, window_s=0.25, rir_max_s=0.3),
        dataset=dataclasses.replace(cfg.dataset, poses_per_room=2))


def _all_arrays(path: Path) -> dict:
    out = {}
    for split in ('train', 'val', 'test'):
        if (path / split).exists():
            reader = DatasetReader(path, split)
            out[split] = [reader[i] for i in range(len(reader))]
    return out


def _assert_same(a: dict, b: dict):
    assert a.keys() == b.keys()
    for split in a:
        assert len(a[split]) == len(b[split])
        for x, y in zip(a[split], b[split]):
            for k in ARRAY_NAMES:
                assert x[k].tobytes() == y[k].tobytes(), (split, k)


@pytest.fixture(scope='module')
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp('ds') / 'one_worker'
    card = generate_dataset(out, 12, seed=7, cfg=_small_cfg(), workers=1, progress=False)
    return out, card


def test_reader_round_trip_and_card(dataset):
    out, card = dataset
    sim = Simulator(_small_cfg())
    assert card['count'] == 12 and card['complete']
    assert sum(v['count'] for v in card['splits'].values()) == 12
    assert card['sample_rate'] == 16000 and card['class_table'][3]['name'] == 'person'
    assert len(card['content_hash']) == 64
    reader = DatasetReader(out, 'train')
    assert reader.sample_rate == 16000
    np.testing.assert_array_equal(reader.mic_positions, sim.mic_positions)
    assert len(reader) == card['splits']['train']['count'] > 0
    sample = reader[0]
    assert sample['audio'].shape == (8, 4000) and sample['audio'].dtype == np.float32
    assert sample['depth'].shape == (16, 16) and sample['depth'].dtype == np.float32
    assert sample['segmentation'].dtype == np.uint8 and sample['K'].shape == (3, 3)
    assert sample['camera_pose'].shape == (4, 4)
    for i in range(len(reader)):
        s = reader[i]
        assert all(np.isfinite(s[k]).all() for k in ('audio', 'depth', 'K', 'camera_pose'))
    # The stored sample equals a fresh generation of the same index.
    arrays, meta = make_sample(sim, 7, int(sample['index']))
    for k in ARRAY_NAMES:
        assert np.asarray(arrays[k]).tobytes() == sample[k].tobytes()
    assert reader.metadata(0)['scene']['room']['materials'] == meta['scene']['room']['materials']
    assert isinstance(reader.metadata(0)['scene']['sources'], list)
    # Streaming: the arrays are memory maps, not loaded copies.
    assert isinstance(reader._open()[0]['audio'], np.memmap)


def test_splits_never_share_a_room(dataset):
    out, _ = dataset
    rooms = {}
    for split in ('train', 'val', 'test'):
        if (out / split).exists():
            reader = DatasetReader(out, split)
            rooms[split] = {int(reader[i]['room_id']) for i in range(len(reader))}
    names = list(rooms)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert not rooms[a] & rooms[b]
    # Room r -> split is a fixed function: ~80/10/10 over many rooms.
    fractions = SimConfig().dataset.split_fractions
    counts = {k: 0 for k in fractions}
    for r in range(1000):
        counts[split_of_room(r, fractions)] += 1
    assert all(abs(counts[k] / 1000 - fractions[k]) < 0.02 for k in fractions)


def test_two_workers_and_two_shards_give_byte_identical_samples(dataset, tmp_path):
    out, card = dataset
    reference = _all_arrays(out)
    generate_dataset(tmp_path / 'two', 12, seed=7, cfg=_small_cfg(), workers=2, progress=False)
    _assert_same(reference, _all_arrays(tmp_path / 'two'))
    sharded = tmp_path / 'sharded'
    first = generate_dataset(sharded, 12, seed=7, cfg=_small_cfg(), shard=1, num_shards=2, progress=False)
    assert not first['complete'] and first['count'] == 6
    second = generate_dataset(sharded, 12, seed=7, cfg=_small_cfg(), shard=0, num_shards=2, progress=False)
    assert second['complete'] and second['count'] == 12
    _assert_same(reference, _all_arrays(sharded))                   # merged in index order
    with pytest.raises(ValueError, match='another config'):
        generate_dataset(sharded, 13, seed=7, cfg=_small_cfg(), shard=0, num_shards=2, progress=False)


@pytest.mark.skipif(platform.system() != 'Linux' or platform.libc_ver()[0] != 'glibc', reason='glibc mallopt only')
def test_generation_keeps_freed_memory_on_glibc_and_samples_do_not_change():
    sim = Simulator(_small_cfg())
    before = make_sample(sim, 7, 3)[0]
    assert reuse_freed_memory()               # every mallopt setting accepted
    after = make_sample(Simulator(_small_cfg()), 7, 3)[0]
    for k in ARRAY_NAMES:
        assert np.asarray(before[k]).tobytes() == np.asarray(after[k]).tobytes(), k


def test_cli_generates_a_dataset_and_refuses_bad_input(tmp_path, capsys):
    cfg_path = tmp_path / 'sim.yaml'
    cfg_path.write_text(yaml.safe_dump(_small_cfg().to_dict()))
    out = tmp_path / 'cli'
    assert cli_main(['dataset', '--out', str(out), '--n', '3', '--seed', '1', '--workers', '1',
                     '--config', str(cfg_path), '--no-progress']) == 0
    card = json.loads((out / 'card.json').read_text())
    assert card['count'] == 3 and card['generator']['config']['camera']['width'] == 16
    written = (out / 'card.json').read_bytes()
    (out / 'card.json').write_text(json.dumps(dict(card, count=0, splits={})))      # a stale card
    assert cli_main(['dataset', 'card', str(out)]) == 0
    assert (out / 'card.json').read_bytes() == written                  # rebuilt from the shards, as written
    assert cli_main(['dataset', '--out', str(out), '--n', '3', '--shard', '2/2']) == 2
    assert cli_main(['dataset', '--out', str(out), '--n', '3', '--shard', 'half']) == 2
    bad = tmp_path / 'bad.yaml'
    bad.write_text('room: {size: 3}\n')
    assert cli_main(['dataset', '--out', str(out), '--n', '3', '--config', str(bad)]) == 2
    assert 'unknown key' in capsys.readouterr().err


def test_from_bag_is_dispatched_to_its_own_arguments(capsys, tmp_path):
    from audio_vision.cli import build_parser
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(['dataset', 'from-bag', '--help'])
    assert exit_.value.code == 0
    usage = capsys.readouterr().out
    assert 'from-bag' in usage and '--out' in usage
    # a bag that does not exist is one clear error from the from-bag command, not the simulator's
    assert cli_main(['dataset', 'from-bag', str(tmp_path / 'missing.mcap'), '--out', str(tmp_path / 'o'),
                     '--depth-topic', '/depth/image']) == 2
    err = capsys.readouterr().err
    assert 'missing.mcap' in err and 'Traceback' not in err
