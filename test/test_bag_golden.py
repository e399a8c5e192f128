# SPDX-License-Identifier: Apache-2.0
"""Golden bag: the model's outputs on test/data/golden_bag must stay what scripts/make_golden_bag.py
recorded in test/data/golden_outputs.json, offline (features + model) and through the perception node
(replayed over DDS). A deliberate change of features, model or node means re-running the script."""
import copy
import json
import os
from pathlib import Path

import numpy as np
import pytest

from audio_vision.bag.golden import bag_windows, compare, file_sha256, summarize_offline, summarize_prediction
from audio_vision.core.inference.pipeline import AudioToVision
from audio_vision.paths import default_model_dir

DATA = Path(__file__).resolve().parent / 'data'
BAG = DATA / 'golden_bag'
SUMMARY = json.loads((DATA / 'golden_outputs.json').read_text())
DOMAIN = 88   # one ROS domain per test module
os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
REGENERATE = 'if the change is intended, re-run `.venv/bin/python scripts/make_golden_bag.py --keep-bag`'


@pytest.fixture(scope='module')
def model_dir(tmp_path_factory):
    info = SUMMARY['model']
    if info['source'] == 'models':
        d = default_model_dir()
        if not all((d / name).is_file() for name in info['files']):
            pytest.skip(f'the golden summary is for the shipped model, absent from {d}')
        changed = [n for n, h in info['files'].items() if file_sha256(d / n) != h]
        assert not changed, f'{changed} in {d} differ from the model the golden summary was made with; ' + REGENERATE
        return d
    from helpers import write_tiny_models     # the stand-in used when no shipped model existed
    d = tmp_path_factory.mktemp('golden_tiny')
    write_tiny_models(d, seed=0, num_mics=info['num_channels'])
    return d


@pytest.fixture(scope='module')
def model(model_dir):
    m = AudioToVision.load(model_dir, device='cpu')
    assert m.model_id == SUMMARY['model']['model_id'], (
        f'model {m.model_id} is not the one the golden summary was made with ({SUMMARY["model"]["model_id"]}): '
        'model code, config or the tiny stand-in changed; ' + REGENERATE)
    return m


def test_golden_bag_is_intact():
    storage = BAG / SUMMARY['bag']['file']
    assert file_sha256(storage) == SUMMARY['bag']['sha256']
    assert sum(p.stat().st_size for p in BAG.iterdir()) < 2 * 1024 * 1024


def test_offline_outputs_match_golden(model):
    windows = bag_windows(BAG, model.num_channels, model.sample_rate, model.window_samples,
                          model.feature_config.hop_samples)
    problems = compare(SUMMARY['windows'], summarize_offline(model, windows), SUMMARY['tolerances'])
    assert not problems, 'features/model regression on the golden bag:\n' + '\n'.join(problems[:20]) \
        + '\n' + REGENERATE


def test_comparison_is_sensitive():
    rows = copy.deepcopy(SUMMARY['windows'])
    assert not compare(SUMMARY['windows'], rows)
    rows[0]['features']['std'] *= 1.01
    hist = rows[-1]['segmentation']['histogram']
    k = int(np.argmax(hist))
    hist[k] -= 100
    hist[(k + 1) % len(hist)] += 100
    problems = compare(SUMMARY['windows'], rows)
    assert len(problems) == 2 and 'features std' in problems[0] and 'histogram' in problems[1]
    assert compare(SUMMARY['windows'], rows[1:])[0].startswith('windows differ')


def test_node_outputs_match_golden(model_dir, model):
    pytest.importorskip('rclpy', reason='needs rclpy + DDS: pip install -r requirements-ros.txt')
    from sensor_msgs.msg import Image

    from audio_vision.ros import conversions as conv
    from audio_vision.ros.bag_player import BagPlayer
    from audio_vision.ros.graph import Graph, TopicRecorder
    from audio_vision.ros.perception_node import PerceptionNode

    n = len(SUMMARY['windows'])
    with Graph(domain_id=DOMAIN) as graph:
        node = graph.add(PerceptionNode, {'model_dir': str(model_dir), 'queue_size': 64, 'input_qos_depth': 200,
                                          'qos_depth': 100, 'publish_points': False})
        rec = graph.add(TopicRecorder, topics={'depth/image': Image, 'segmentation/image': Image}, depth=200)
        player = graph.add(BagPlayer, {'bag': str(BAG), 'rate': 2.0, 'topics': '/audio/frames',
                                       'wait_for_topic': '/audio/frames', 'delay_s': 0.0}, params_file=None)
        graph.start()
        assert player.wait(60.0) and player.error is None
        assert graph.wait_for(lambda: rec.count('depth/image') >= n and rec.count('segmentation/image') >= n, 30.0), \
            node.stats()
        seg = {conv.time_to_ns(m.header.stamp): conv.image_to_array(m) for _, m in rec.get('segmentation/image')}
        rows = [{'end_ns': conv.time_to_ns(m.header.stamp),
                 **summarize_prediction({'depth': conv.image_to_array(m),
                                         'segmentation': seg[conv.time_to_ns(m.header.stamp)]},
                                        len(model.class_table))}
                for _, m in rec.get('depth/image')]
    problems = compare(SUMMARY['windows'], rows, SUMMARY['tolerances'], check_features=False)
    assert not problems, 'node regression on the golden bag:\n' + '\n'.join(problems[:20])
