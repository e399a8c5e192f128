# SPDX-License-Identifier: Apache-2.0
"""`dataset from-bag`: a recording -> the simulator's dataset schema, usable by train/evaluate unchanged."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from audio_vision import dataset as ds
from audio_vision.bag import BagError
from audio_vision.bag import messages as m
from audio_vision.bag import schema
from audio_vision.bag.convert import (FromBagOptions, bag_to_dataset, crop_box, crop_resize_K, resize_depth,
                                      resize_labels)
from audio_vision.bag.record import Segment, write_segments
from audio_vision.bag.writer import BagWriter
from audio_vision.simulation import dataset as sim_ds
from audio_vision.simulation.config import SimConfig
from audio_vision.simulation.simulator import Simulator

REPO = Path(__file__).resolve().parents[1]
GT = FromBagOptions(depth_topic='/ground_truth/depth/image', segmentation_topic='/ground_truth/segmentation/image')
NS = 1_000_000_000
LAYOUT = sim_ds.dataset_layout(SimConfig())      # the package's default array, window, classes, splits


def all_samples(path):
    items = []
    for split in ('train', 'val', 'test'):
        try:
            reader = ds.DatasetReader(path, split)
        except FileNotFoundError:
            continue
        items += [reader[i] | {'split': split} for i in range(len(reader))]
    return sorted(items, key=lambda it: int(it['index']))


def test_simulated_recording_converts_to_the_simulators_own_dataset(tmp_path):
    """A bag made from simulator samples posing as a real recording (1 s of audio per scene, GT as camera
    topics) converts to exactly the arrays the simulator's dataset writer writes for the same scenes."""
    cfg = SimConfig()
    sim = Simulator(cfg)
    n, seed = 6, 5
    sim_ds.generate_dataset(tmp_path / 'sim', n, seed, cfg, workers=1, progress=False)
    samples = (sim_ds.make_sample(sim, seed, i)[0] for i in range(n))
    write_segments(tmp_path / 'bag', (Segment(a['audio'], a['depth'], a['segmentation'], a['K'], int(a['seed']))
                                      for a in samples), sim.sample_rate, start_ns=1_600_000_000 * NS)
    result = bag_to_dataset(tmp_path / 'bag', tmp_path / 'from_bag', sim_ds.dataset_layout(cfg), GT)
    assert (result.windows, result.samples, result.unmatched) == (n, n, 0)
    assert result.stream_resets == n - 1 and not result.invalid_frames

    expected, got = all_samples(tmp_path / 'sim'), all_samples(tmp_path / 'from_bag')
    assert len(got) == len(expected) == n
    for e, g in zip(expected, got):
        for key in ('audio', 'depth', 'segmentation', 'K'):
            assert g[key].dtype == e[key].dtype and g[key].shape == e[key].shape
            np.testing.assert_array_equal(g[key], e[key], err_msg=key)
        assert np.isnan(g['camera_pose']).all() and int(g['seed']) == -1

    card = json.loads((tmp_path / 'from_bag' / 'card.json').read_text())
    sim_card = json.loads((tmp_path / 'sim' / 'card.json').read_text())
    for key in ('sample_rate', 'window_s', 'num_channels', 'mic_positions', 'camera', 'K', 'class_table', 'arrays',
                'format_version'):
        assert card[key] == sim_card[key], key
    assert card['count'] == n and card['complete'] and card['generator']['source']['kind'] == 'rosbag2'


# ---------------------------------------------------------------- a real robot's layout

def robot_bag(path, sim, seconds=2.0, depth_size=(160, 120), hz=30.0, offset_s=0.007):
    """Audio from the simulator at 20 frames/s; a '30 Hz RGB-D camera' (16UC1 mm depth + camera_info) and a
    segmenter (foreign class ids) not synchronised with the audio."""
    fs = sim.sample_rate
    scene = sim.sample_scene(1)
    audio = sim.record(scene, seconds, 1)
    w, h = depth_size
    depth_mm = np.full((h, w), 2000, np.uint16)
    depth_mm[:, : w // 4] = 4000            # a far strip on the left
    depth_mm[:10, :] = 0                    # no return at the top
    labels = np.full((h, w), 7, np.uint8)
    labels[h // 2:, :] = 9
    f = 100.0
    K = np.array([[f, 0, (w - 1) / 2], [0, f, (h - 1) / 2], [0, 0, 1]])
    t0 = 1_650_000_000 * NS
    events = []
    for a in range(0, audio.shape[1], 800):
        stamp = t0 + a * NS // fs
        frame = m.audio_frame(audio[:, a:a + 800], stamp, 'audio_array')
        events.append((stamp + 800 * NS // fs, '/mic_array/frames', frame))
    for k in range(int(seconds * hz)):
        stamp = t0 + int((offset_s + k / hz) * NS)
        events.append((stamp + 20_000_000, '/camera/depth/image_rect_raw', m.image(depth_mm, '16UC1', stamp, 'cam')))
        events.append((stamp + 20_000_000, '/camera/depth/camera_info', m.camera_info(K, w, h, stamp, 'cam')))
        events.append((stamp + 60_000_000, '/segmenter/labels', m.image(labels, 'mono8', stamp, 'cam')))
    events.sort(key=lambda e: e[0])
    with BagWriter(path) as bag:
        bag.add_topic('/mic_array/frames', schema.IMAGE, schema.SENSOR_DATA_QOS)
        bag.add_topic('/camera/depth/image_rect_raw', schema.IMAGE, schema.SENSOR_DATA_QOS)
        bag.add_topic('/camera/depth/camera_info', schema.CAMERA_INFO, schema.RELIABLE_QOS)
        bag.add_topic('/segmenter/labels', schema.IMAGE, schema.RELIABLE_QOS)
        for t, topic, msg in events:
            bag.write(topic, msg, t)
    return audio, K, t0


def test_robot_layout_alignment_crop_resize_and_label_map(tmp_path):
    sim = Simulator()
    audio, K, t0 = robot_bag(tmp_path / 'bag', sim)
    opts = FromBagOptions(audio_topic='/mic_array/frames', depth_topic='/camera/depth/image_rect_raw',
                          segmentation_topic='/segmenter/labels', tolerance_s=0.02, image_size=(32, 32),
                          label_map={7: 0, 9: 1}, split='test')
    result = bag_to_dataset(tmp_path / 'bag', tmp_path / 'ds', LAYOUT, opts)
    # 2 s of audio, 1 s windows every 0.25 s -> 5 windows; camera frames every 33 ms from 7 ms: the last
    # window (ending at 2.0 s) is 26 ms after the last frame (1.974 s), outside the tolerance
    assert (result.windows, result.samples, result.unmatched) == (5, 4, 1)
    got = all_samples(tmp_path / 'ds')
    for k, item in enumerate(got):
        np.testing.assert_array_equal(item['audio'], audio[:, k * 4000:k * 4000 + 16000])
        assert item['split'] == 'test'
    d, s = got[0]['depth'], got[0]['segmentation']
    assert d.shape == (32, 32) and d.dtype == np.float32
    # 160x120 -> centred 120x120 crop (x 20..140) -> 32x32; the far strip (x < 40) is 20 source columns
    assert np.all(d[3:, 6:] == 2.0) and np.all(d[3:, :5] == 4.0)
    assert np.isnan(d[:2]).all()                      # rows without returns stay unknown
    assert set(np.unique(s)) == {0, 1} and (s[:16] == 0).all() and (s[16:] == 1).all()
    np.testing.assert_allclose(got[0]['K'], crop_resize_K(K, (20, 0, 140, 120), 32, 32))
    card = json.loads((tmp_path / 'ds' / 'card.json').read_text())
    assert card['camera']['width'] == 32 and card['camera']['hfov_deg'] == pytest.approx(61.93, abs=0.01)
    meta = ds.DatasetReader(tmp_path / 'ds', 'test').metadata(0)
    assert abs(meta['image_stamps_ns']['depth'] - meta['window_end_ns']) <= 0.02 * NS

    # without a segmentation topic every label is unknown, never a class (255 was clamped to 5 'alarm')
    from audio_vision.core.classes import IGNORE_LABEL
    from audio_vision.core.model.encoding import SegmentationEncoding
    bag_to_dataset(tmp_path / 'bag', tmp_path / 'noseg', LAYOUT,
                   FromBagOptions(**{**opts.__dict__, 'segmentation_topic': None}))
    labels = np.stack([item['segmentation'] for item in all_samples(tmp_path / 'noseg')])
    assert labels.shape == (4, 32, 32) and (labels == IGNORE_LABEL).all()
    assert not SegmentationEncoding(6).encode(torch.from_numpy(labels)).any()     # no class gets these pixels

    # a tolerance tighter than the camera's offset keeps nothing: a clear error, nothing left behind
    with pytest.raises(BagError, match='within 0.001 s'):
        bag_to_dataset(tmp_path / 'bag', tmp_path / 'none', LAYOUT,
                       FromBagOptions(**{**opts.__dict__, 'tolerance_s': 0.001}))
    assert not (tmp_path / 'none').exists()
    with pytest.raises(BagError, match=r'class ids \[9\] are not in the label map'):
        bag_to_dataset(tmp_path / 'bag', tmp_path / 'bad', LAYOUT,
                       FromBagOptions(**{**opts.__dict__, 'label_map': {7: 0}}))
    with pytest.raises(BagError, match='channels but the array config has 4'):
        cfg = SimConfig.from_dict({'array': {'mics_per_ring': 2}})
        bag_to_dataset(tmp_path / 'bag', tmp_path / 'bad2', sim_ds.dataset_layout(cfg), opts)


def test_resizing_helpers():
    depth = np.arange(16, dtype=np.float32).reshape(4, 4)
    depth[0, 0] = np.nan
    out = resize_depth(depth, (0, 0, 4, 4), 2, 2)
    np.testing.assert_array_equal(out, [[np.median([1, 4, 5]), 4.5], [10.5, 12.5]])
    depth[0, 1] = depth[1, 0] = np.nan                        # 3 of 4 unknown -> unknown
    assert np.isnan(resize_depth(depth, (0, 0, 4, 4), 2, 2)[0, 0])
    labels = np.arange(16, dtype=np.uint8).reshape(4, 4)
    np.testing.assert_array_equal(resize_labels(labels, (0, 0, 4, 4), 2, 2), [[5, 7], [13, 15]])
    assert crop_box(640, 480, 64, 64) == (80, 0, 560, 480)
    assert crop_box(480, 640, 64, 64) == (0, 80, 480, 560)
    np.testing.assert_array_equal(resize_depth(depth, (0, 0, 4, 4), 4, 4), depth)   # same size: unchanged
    K = np.array([[32.0, 0, 31.5], [0, 32.0, 31.5], [0, 0, 1]])
    np.testing.assert_array_equal(crop_resize_K(K, (0, 0, 64, 64), 64, 64), K)


def test_from_bag_dataset_trains_and_evaluates(tmp_path):
    """The CLI output goes through `train` (two stages, a few steps) and `evaluate` unchanged."""
    sim = Simulator()
    segs = []
    for k in range(12):
        scene = sim.sample_scene(100 + k)
        gt = sim.render(scene)
        segs.append(Segment(sim.record(scene, 1.25, 100 + k), gt.depth, gt.segmentation, gt.K))
    write_segments(tmp_path / 'bag', segs, sim.sample_rate, start_ns=1_600_000_000 * NS)

    def cli(*args):
        proc = subprocess.run([sys.executable, '-m', 'audio_vision', *map(str, args)], cwd=REPO, text=True,
                              capture_output=True, timeout=300, env={**os.environ, 'OMP_NUM_THREADS': '1'})
        assert proc.returncode == 0, proc.stderr[-3000:]
        return proc
    out = tmp_path / 'data'
    cli('dataset', 'from-bag', tmp_path / 'bag', '--out', out, '--depth-topic', '/ground_truth/depth/image',
        '--segmentation-topic', '/ground_truth/segmentation/image', '--block', 1.25, '--quiet')
    card = json.loads((out / 'card.json').read_text())
    assert card['count'] == 24 and all(card['splits'][s]['count'] > 0 for s in ('train', 'val', 'test'))
    cfg = tmp_path / 'train.yaml'
    cfg.write_text('vqvae: {hidden: 16, res_hidden: 8, res_blocks: 1, codebook_size: 8, code_dim: 8}\n'
                   'atnet: {encoder_width: 8, mlp_hidden: 32, start_channels: 16}\n'
                   'vqvae_optim: {epochs: 1, batch_size: 8}\natnet_optim: {epochs: 1, batch_size: 8}\n'
                   'threads: 1\n')
    cli('train', '--data', out, '--run-dir', tmp_path / 'run', '--config', cfg, '--stages', 'vqvae', 'atnet',
        '--max-steps', 2, '--no-progress')
    assert (tmp_path / 'run' / 'models' / 'depth.pt').is_file()
    cli('evaluate', '--data', out, '--models', tmp_path / 'run' / 'models', '--json', tmp_path / 'eval.json',
        '--no-progress')
    result = json.loads((tmp_path / 'eval.json').read_text())
    assert result['n_samples'] == card['splits']['test']['count']
