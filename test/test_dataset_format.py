# SPDX-License-Identifier: Apache-2.0
"""The dataset layer (audio_vision.dataset): shard writer, card, reader, pinned format, and the import
isolation that lets a robot's bag be converted without the simulator."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from audio_vision.core.camera import PinholeCamera
from audio_vision.dataset import (ARRAY_NAMES, DatasetLayout, DatasetReader, DatasetWriter, generator_info,
                                  hash_arrays, rebuild_card)
from audio_vision.dataset.files import write_json

REPO = Path(__file__).resolve().parents[1]
FRACTIONS = {'train': 0.5, 'test': 0.5}


def layout() -> DatasetLayout:
    mics = np.array([[0.05, 0.0, 0.0], [-0.05, 0.0, 0.0]])
    config = {'camera': {'width': 8, 'height': 8, 'hfov_deg': 90.0}, 'recording': {'window_s': 0.01},
              'dataset': {'split_fractions': FRACTIONS}}
    return DatasetLayout(1000, 0.01, mics, PinholeCamera(8, 8, 90.0), FRACTIONS, config)


def sample(index: int) -> tuple[dict, dict]:
    """Made-up arrays and metadata of dataset index `index` (nothing simulated), a function of the index."""
    arrays = {'audio': np.arange(20, dtype=np.float32).reshape(2, 10) * np.float32(index + 1) / np.float32(7),
              'depth': np.full((8, 8), 1.0 + index, np.float32),
              'segmentation': np.full((8, 8), index % 6, np.uint8), 'K': PinholeCamera(8, 8, 90.0).K,
              'camera_pose': np.eye(4), 'room_size': np.array([4.0, 3.0, 2.5]),
              'seed': index * 11, 'index': index, 'room_id': index // 2}
    return arrays, {'index': index, 'room_id': index // 2, 'note': f'sample {index}'}


def write(out: Path, shards: dict[tuple[str, int], list[int]], num_shards: int, n: int) -> dict:
    """Write the given (split, shard) -> indices; returns the card."""
    lay = layout()
    writer = DatasetWriter(out, lay, generator_info(lay.config, 3, n, num_shards))
    for (split, shard), indices in shards.items():
        w = writer.shard(split, shard, num_shards, len(indices))
        for i in indices:
            w.append(*sample(i))
        w.commit()
    return writer.finish()


def test_shards_card_and_reader_round_trip(tmp_path):
    out = tmp_path / 'ds'
    # shard 1 of 2 first: the card says incomplete; shard 0 then completes it
    first = write(out, {('train', 1): [1, 3, 5], ('test', 1): [7]}, 2, 8)
    assert first['count'] == 4 and not first['complete']
    card = write(out, {('train', 0): [0, 2], ('test', 0): [4, 6]}, 2, 8)
    assert card['complete'] and card['count'] == 8
    assert card['splits']['train'] == {'count': 5, 'rooms': 3, 'shards': ['shard-00000-of-00002',
                                                                          'shard-00001-of-00002']}
    assert card['num_channels'] == 2 and card['arrays']['audio'] == {'shape': ['n', 2, 10], 'dtype': 'float32'}
    assert card['mic_positions'] == layout().mic_positions.tolist() and card['camera']['width'] == 8

    reader = DatasetReader(out, 'train')                      # rows in dataset-index order across shards
    assert [int(reader[i]['index']) for i in range(len(reader))] == [0, 1, 2, 3, 5]
    for i in range(len(reader)):
        got, (expected, meta) = reader[i], sample(int(reader[i]['index']))
        for k in ARRAY_NAMES:
            np.testing.assert_array_equal(got[k], expected[k], err_msg=k)
        assert reader.metadata(i) == meta
    np.testing.assert_array_equal(reader.mic_positions, layout().mic_positions)
    assert reader.layout.card_fields() == layout().card_fields()
    info = json.loads((out / 'train' / 'shard-00001-of-00002' / 'shard.json').read_text())
    assert info['indices'] == [1, 3, 5] and info['rooms'] == [0, 1, 2]
    assert info['content_hash'] == hash_arrays(out / 'train' / 'shard-00001-of-00002')

    written = (out / 'card.json').read_bytes()
    (out / 'card.json').write_text(json.dumps(dict(card, count=0, splits={})))
    rebuild_card(out)
    assert (out / 'card.json').read_bytes() == written


def test_meta_json_is_the_plain_json_dump_of_the_metadata_list(tmp_path):
    """meta.json entries are serialised as samples arrive; the file is still json.dump(list, indent=1, sort_keys)."""
    lay = layout()
    writer = DatasetWriter(tmp_path / 'ds', lay, generator_info(lay.config, 3, 4, 1))
    metas = [{'index': 0, 'room_id': 0, 'scene': {'sources': [], 'z': {'b': [1.5, -0.0, 1e-300], 'a': None}},
              'text': 'line\nbreak "quoted" \u00e9'},
             {'index': 2, 'room_id': 1, 'nested': [[1, 2], [{'k': True}], {}]}]
    w = writer.shard('train', 0, 1, len(metas))
    for meta in metas:
        w.append(sample(meta['index'])[0], meta)
    w.commit()
    expected = tmp_path / 'expected.json'
    write_json(expected, metas)
    assert (tmp_path / 'ds' / 'train' / 'shard-00000-of-00001' / 'meta.json').read_bytes() == expected.read_bytes()
    assert json.loads(expected.read_text()) == metas


def test_the_format_is_pinned(tmp_path):
    """The bytes of the format: a change to the arrays' layout, dtypes or hashing changes these hashes (and
    breaks every dataset already written: FORMAT_VERSION would have to change)."""
    card = write(tmp_path / 'ds', {('train', 0): [0, 1, 2], ('test', 0): [3]}, 1, 4)
    shard = tmp_path / 'ds' / 'train' / 'shard-00000-of-00001'
    assert np.load(shard / 'audio.npy').dtype == np.float32 and np.load(shard / 'seed.npy').dtype == np.int64
    assert card['format_version'] == 1
    assert card['generator']['config_hash'] == '6755dedf6d8633d2'
    assert hash_arrays(shard) == 'ad429ab647d286769dc61e62b94567ef928bd571b94c41ff6da58bea3b414d71'
    assert card['content_hash'] == '70f72c4b09c604649a658c55fa5fc8c54b0652cf871c3c09b13382a924daace6'


def test_partial_shards_are_invisible_and_bad_input_is_refused(tmp_path):
    lay = layout()
    writer = DatasetWriter(tmp_path, lay, generator_info(lay.config, 3, 4))
    w = writer.shard('train', 0, 1, 2)
    w.append(*sample(0))
    assert w.tmp.is_dir() and not (tmp_path / 'train' / 'shard-00000-of-00001').exists()
    assert writer.finish()['count'] == 0                            # the card lists committed shards only
    with pytest.raises(FileNotFoundError, match='no shards'):
        DatasetReader(tmp_path, 'train')
    with pytest.raises(ValueError, match='1 of 2 samples written'):
        w.commit()
    arrays, meta = sample(1)
    with pytest.raises(ValueError, match='not the schema'):
        w.append({k: v for k, v in arrays.items() if k != 'K'}, meta)
    w.append(arrays, meta)
    with pytest.raises(ValueError, match='holds 2 samples'):
        w.append(*sample(2))
    w.commit()
    with pytest.raises(RuntimeError, match='already committed'):
        w.append(*sample(3))
    assert writer.finish()['splits']['train']['count'] == 2
    with pytest.raises(ValueError, match="unknown split 'val'"):
        writer.shard('val', 0, 1, 1)
    with pytest.raises(ValueError, match='another config/seed/n'):      # same directory, another generator
        DatasetWriter(tmp_path, lay, generator_info(lay.config, 4, 4))


def test_layout_with_images_keeps_the_recorded_config_in_step():
    lay = layout()
    out = lay.with_images(PinholeCamera(16, 12, 60.0), 0.02)
    assert (out.num_samples, out.num_channels, out.camera.height) == (20, 2, 12)
    assert out.config['camera'] == {'width': 16, 'height': 12, 'hfov_deg': 60.0}
    assert out.config['recording']['window_s'] == 0.02 and out.config['dataset'] == lay.config['dataset']
    assert lay.config['camera']['width'] == 8                      # the original is untouched
    with pytest.raises(ValueError, match=r'\(C, 3\)'):
        DatasetLayout(1000, 0.01, np.zeros((2, 2)), PinholeCamera(8, 8, 90.0), FRACTIONS)


def _modules_after(statement: str) -> set[str]:
    code = f'import sys\n{statement}\nprint("\\n".join(sorted(sys.modules)))'
    proc = subprocess.run([sys.executable, '-c', code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return set(proc.stdout.split())


def test_converting_a_bag_does_not_import_the_simulator():
    """The bag converter writes through the dataset layer: no simulator, no acoustics (pyroomacoustics)."""
    mods = _modules_after('import audio_vision.bag.convert')
    assert 'audio_vision.dataset.writer' in mods                    # the probe sees the package's modules
    assert 'pyroomacoustics' not in mods and 'audio_vision.simulation.simulator' not in mods
    assert not {m for m in mods if m.startswith('audio_vision.simulation')}


def small_robot_bag(path: Path, fs: int = 16000, seconds: float = 2.0) -> None:
    """Two channels of made-up audio in 50 ms frames, and 16UC1 depth with camera_info at 10 Hz."""
    from audio_vision.bag import messages as m
    from audio_vision.bag import schema
    from audio_vision.bag.writer import BagWriter
    t0, chunk = 1_700_000_000 * 10**9, fs // 20
    audio = (np.arange(int(seconds * fs) * 2, dtype=np.float32).reshape(2, -1) % 97) / 97
    depth = np.full((24, 32), 1500, np.uint16)
    K = PinholeCamera(32, 24, 80.0).K
    with BagWriter(path) as bag:
        bag.add_topic('/audio/frames', schema.IMAGE, schema.SENSOR_DATA_QOS)
        bag.add_topic('/camera/depth/image_rect_raw', schema.IMAGE, schema.SENSOR_DATA_QOS)
        bag.add_topic('/camera/depth/camera_info', schema.CAMERA_INFO, schema.RELIABLE_QOS)
        stamps = [(a, t0 + a * 10**9 // fs) for a in range(0, audio.shape[1], chunk)]
        events = [(t, '/audio/frames', m.audio_frame(audio[:, a:a + chunk], t, 'audio_array')) for a, t in stamps]
        for k in range(int(seconds * 10) + 1):
            t = t0 + k * 10**8
            events += [(t, '/camera/depth/image_rect_raw', m.image(depth, '16UC1', t, 'cam')),
                       (t, '/camera/depth/camera_info', m.camera_info(K, 32, 24, t, 'cam'))]
        for t, topic, msg in sorted(events, key=lambda e: e[0]):
            bag.write(topic, msg, t)


def test_a_conversion_runs_without_the_simulator(tmp_path):
    """A whole conversion (not just the import) in a fresh interpreter: the samples are written and neither
    the simulation layer nor pyroomacoustics was ever imported."""
    small_robot_bag(tmp_path / 'bag')
    code = f"""
import sys
import numpy as np
from audio_vision.bag.convert import FromBagOptions, bag_to_dataset
from audio_vision.core.camera import PinholeCamera
from audio_vision.dataset import DatasetLayout
layout = DatasetLayout(16000, 1.0, np.array([[0.05, 0, 0], [-0.05, 0, 0]]), PinholeCamera(16, 16, 90.0),
                       {{'train': 0.8, 'val': 0.1, 'test': 0.1}})
result = bag_to_dataset({str(tmp_path / 'bag')!r}, {str(tmp_path / 'out')!r}, layout,
                        FromBagOptions(split='test', image_size=(16, 16)))
print(result.samples)
print('\\n'.join(sorted(sys.modules)))
"""
    proc = subprocess.run([sys.executable, '-c', code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    samples, *mods = proc.stdout.split()
    assert int(samples) == 5 == len(DatasetReader(tmp_path / 'out', 'test'))     # 2 s: windows at 0..1 s
    assert 'pyroomacoustics' not in mods and not {m for m in mods if m.startswith('audio_vision.simulation')}


def test_the_dataset_layer_imports_only_core():
    mods = _modules_after('import audio_vision.dataset')
    ours = {m for m in mods if m.startswith('audio_vision.')}
    assert 'audio_vision.dataset.reader' in ours
    assert all(m.startswith(('audio_vision.dataset', 'audio_vision.core')) for m in ours), sorted(ours)
    assert 'torch' not in mods and 'pyroomacoustics' not in mods


def test_the_converter_wants_a_layout_not_a_simulation_config(tmp_path):
    from audio_vision.bag.convert import bag_to_dataset
    from audio_vision.simulation.config import SimConfig
    with pytest.raises(TypeError, match='dataset_layout'):
        bag_to_dataset(tmp_path / 'bag', tmp_path / 'out', SimConfig())
    assert not (tmp_path / 'out').exists()
