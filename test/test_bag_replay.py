# SPDX-License-Identifier: Apache-2.0
"""Replay tests: a simulated bag played into the perception node over real DDS (rclpy + Fast DDS).

Model: the shipped one (models/depth.pt + models/segmentation.pt) when present, else a tiny randomly
initialised one (test/helpers.py). Checked: the window count follows the bag's audio and the hop; every
output equals the offline pipeline (`AudioToVision.predict`) on the same audio window; replayed messages
keep their content, stamps and recorded QoS; with the shipped model, per-window metrics against the
bag's ground truth stay above a floor. The same through `python -m audio_vision replay` and, when a ROS 2
install is present, `ros2 bag play`.
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

rclpy = pytest.importorskip('rclpy', reason='needs rclpy + DDS: pip install -r requirements-ros.txt')

from rclpy.qos import DurabilityPolicy, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image  # noqa: E402

from audio_vision.bag.record import simulated_segments, write_segments  # noqa: E402
from audio_vision.core.eval.metrics import depth_metrics, segmentation_metrics  # noqa: E402
from audio_vision.core.inference.pipeline import AudioToVision  # noqa: E402
from audio_vision.paths import default_model_dir  # noqa: E402
from audio_vision.ros import conversions as conv  # noqa: E402
from audio_vision.ros.bag_player import BagPlayer  # noqa: E402
from audio_vision.ros.graph import Graph, TopicRecorder  # noqa: E402
from audio_vision.ros.perception_node import PerceptionNode  # noqa: E402
from audio_vision.simulation.simulator import Simulator  # noqa: E402
from helpers import write_tiny_models  # noqa: E402

pytestmark = pytest.mark.ros
DOMAIN = 87   # one ROS domain per test module
os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
REPO = Path(__file__).resolve().parents[1]
NS = 1_000_000_000
START = 1_720_000_000 * NS
SCENE_S, SEED, RATE = 1.5, 41, 2.0
# The shipped model's floors on these windows are the shipped mean-image baseline's scores on the same
# windows (models/mean.pt): a model that does not beat predicting the training mean has learnt nothing.
OUTPUTS = {'depth/image': Image, 'depth/camera_info': CameraInfo, 'segmentation/image': Image,
           '/ground_truth/depth/image': Image}


def shipped_model_present() -> bool:
    d = default_model_dir()
    return (d / 'depth.pt').is_file() and (d / 'segmentation.pt').is_file()


@pytest.fixture(scope='module')
def model_dir(tmp_path_factory):
    if shipped_model_present():
        return default_model_dir()
    path = tmp_path_factory.mktemp('tiny_model')
    write_tiny_models(path, num_mics=8)
    return path


@pytest.fixture(scope='module')
def model(model_dir):
    return AudioToVision.load(model_dir, device='cpu')


@pytest.fixture(scope='module')
def recording(tmp_path_factory):
    sim = Simulator()
    segments = list(simulated_segments(sim, [SCENE_S, SCENE_S], SEED))
    path = tmp_path_factory.mktemp('replay') / 'sim_bag'
    summary = write_segments(path, segments, sim.sample_rate, start_ns=START)
    return path, segments, summary


@pytest.fixture(scope='module')
def expected(model, recording):
    """Offline: every window the audio holds (hop grid from each scene's start) and its prediction."""
    _, segments, summary = recording
    fs, W, hop = model.sample_rate, model.window_samples, model.feature_config.hop_samples
    out = {}
    for seg, start in zip(segments, summary.segment_starts_ns):
        n = seg.audio.shape[1]
        for k in range((n - W) // hop + 1):
            audio = seg.audio[:, k * hop:k * hop + W]
            out[start + (k * hop + W) * NS // fs] = (model.predict(audio), seg)
    return out


def start_graph(model_dir):
    graph = Graph(domain_id=DOMAIN)
    node = graph.add(PerceptionNode, {'model_dir': str(model_dir), 'queue_size': 64, 'input_qos_depth': 200,
                                      'qos_depth': 100, 'publish_points': False})
    rec = graph.add(TopicRecorder, topics=OUTPUTS, depth=200)
    graph.start()
    return graph, node, rec


def wait_discovery(graph, node, extra=lambda: True):
    ok = graph.wait_for(lambda: all(node.pubs[k].get_subscription_count() >= 1
                                    for k in ('depth', 'depth_info', 'segmentation'))
                        and node.sub.get_publisher_count() >= 1 and extra(), 15.0)
    if not ok:
        graph.shutdown()
        pytest.fail('discovery timed out')


def stamp(msg) -> int:
    return conv.time_to_ns(msg.header.stamp)


@pytest.fixture(scope='module')
def replay(model_dir, recording, expected):
    path = recording[0]
    graph, node, rec = start_graph(model_dir)
    try:
        player = graph.add(BagPlayer, {'bag': str(path), 'rate': RATE, 'autostart': False, 'delay_s': 0.0},
                           params_file=None)
        wait_discovery(graph, node, lambda: player.channels['/ground_truth/depth/image']
                       .publisher.get_subscription_count() >= 1)
        player.play()
        assert player.wait(30.0) and player.error is None
        graph.wait_for(lambda: rec.count('depth/image') >= len(expected)
                       and rec.count('segmentation/image') >= len(expected), 30.0)
        graph.wait_for(lambda: False, 0.3)          # anything extra would show up now
        result = {'rec': rec, 'stats': node.stats(), 'published': player.published, 'skipped': player.skipped,
                  'qos': {t: c.publisher.qos_profile for t, c in player.channels.items()}}
    finally:
        graph.shutdown()     # before the next test starts its own perception node on this domain
    return result


def test_window_count_follows_audio_duration_and_hop(replay, recording, model, expected):
    _, segments, summary = recording
    W, hop = model.window_samples, model.feature_config.hop_samples
    per_scene = (int(round(SCENE_S * model.sample_rate)) - W) // hop + 1
    assert len(expected) == 2 * per_scene
    stats = replay['stats']
    assert stats['windows'] == len(expected), stats
    assert stats['dropped_windows'] == 0 and sum(stats['invalid_frames'].values()) == 0
    assert stats['stream_resets'].get('gap') == 1            # the teleport between the two scenes
    assert replay['rec'].count('depth/image') == len(expected)
    assert replay['rec'].count('segmentation/image') == len(expected)
    assert replay['published']['/audio/frames'] == sum(len(range(0, s.audio.shape[1], 800)) for s in segments)


def test_outputs_equal_the_offline_pipeline(replay, expected):
    rec = replay['rec']
    depth = {stamp(m): conv.image_to_array(m) for _, m in rec.get('depth/image')}
    seg = {stamp(m): conv.image_to_array(m) for _, m in rec.get('segmentation/image')}
    infos = {stamp(m): m for _, m in rec.get('depth/camera_info')}
    assert sorted(depth) == sorted(expected) == sorted(seg)          # stamped with each window's end
    for t, (pred, _) in expected.items():
        np.testing.assert_allclose(depth[t], pred['depth'], rtol=1e-5, atol=1e-5, equal_nan=True)
        assert np.mean(seg[t] == pred['segmentation']) >= 0.999
        assert infos[t].header.frame_id == 'audio_camera_optical'


def test_replayed_messages_keep_content_stamps_and_qos(replay, recording):
    rec, qos = replay['rec'], replay['qos']
    assert qos['/audio/frames'].reliability == ReliabilityPolicy.RELIABLE        # as the live nodes offer
    assert qos['/ground_truth/depth/image'].reliability == ReliabilityPolicy.RELIABLE
    assert qos['/ground_truth/depth/image'].durability == DurabilityPolicy.TRANSIENT_LOCAL
    if '/tf_static' in qos:      # only where tf2_msgs is installed
        assert qos['/tf_static'].durability == DurabilityPolicy.TRANSIENT_LOCAL
    else:
        assert replay['skipped'] == {'/tf_static': 'tf2_msgs/msg/TFMessage'}
    _, segments, summary = recording
    gts = rec.get('/ground_truth/depth/image')
    assert len(gts) == summary.counts['/ground_truth/depth/image']
    first_of_second = next(m for _, m in gts if stamp(m) == summary.segment_starts_ns[1])
    np.testing.assert_array_equal(conv.image_to_array(first_of_second), segments[1].depth)
    # paced like the recording: received in stamp order, and never faster than the bag / rate (a busy
    # machine can only delay a message, so only the lower bound is a property of the player)
    assert [stamp(m) for _, m in gts] == sorted(stamp(m) for _, m in gts)
    span = (gts[-1][0] - gts[0][0]) / NS
    recorded = (max(stamp(m) for _, m in gts) - min(stamp(m) for _, m in gts)) / NS
    assert span > recorded / RATE * 0.8, (span, recorded)


@pytest.mark.skipif(not (shipped_model_present() and (default_model_dir() / 'mean.pt').is_file()),
                    reason='runs with the shipped models: models/depth.pt, models/segmentation.pt and the '
                           'models/mean.pt baseline (python -m audio_vision train ... --export models)')
def test_metrics_against_the_bags_ground_truth(replay, model, recording):
    from audio_vision.core.model.baselines import load_mean
    mean = load_mean(default_model_dir() / 'mean.pt').predict(1)
    rec = replay['rec']
    gt = {stamp(m): conv.image_to_array(m) for _, m in rec.get('/ground_truth/depth/image')}
    depth = {stamp(m): conv.image_to_array(m) for _, m in rec.get('depth/image')}
    seg = {stamp(m): conv.image_to_array(m) for _, m in rec.get('segmentation/image')}
    delta1, acc, mean_delta1, mean_acc = [], [], [], []
    for t in depth:
        assert t in gt, 'every window end has a ground-truth image at the same stamp'
        delta1.append(depth_metrics(depth[t], gt[t])['delta1'])
        mean_delta1.append(depth_metrics(mean['depth'][0], gt[t])['delta1'])
    # segmentation GT from the bag directly (not replayed to the recorder)
    _, segments, summary = recording
    n_classes = len(model.class_table)
    for t, labels in seg.items():
        truth = segments[int(t >= summary.segment_starts_ns[1])].segmentation
        acc.append(segmentation_metrics(labels, truth, n_classes)['pixel_acc'])
        mean_acc.append(segmentation_metrics(mean['segmentation'][0], truth, n_classes)['pixel_acc'])
    print(f'shipped model on the replayed bag ({len(acc)} windows): depth delta1 {np.mean(delta1):.3f} '
          f'(mean image {np.mean(mean_delta1):.3f}), segmentation pixel accuracy {np.mean(acc):.3f} '
          f'(mean image {np.mean(mean_acc):.3f})')
    assert np.mean(delta1) >= np.mean(mean_delta1)
    assert np.mean(acc) >= np.mean(mean_acc)


def players():
    out = [pytest.param([sys.executable, '-m', 'audio_vision', 'replay', '--rate', '4', '--wait-for', '/audio/frames',
                         '--domain-id', str(DOMAIN)], id='audio_vision_replay')]
    ros2 = shutil.which('ros2')
    out.append(pytest.param([ros2 or 'ros2', 'bag', 'play', '--rate', '4', '--delay', '2.0'], id='ros2_bag_play',
                            marks=pytest.mark.skipif(ros2 is None, reason='ros2 (rosbag2) is not installed')))
    return out


@pytest.mark.parametrize('command', players())
def test_replay_command_feeds_the_perception_node(command, model_dir, recording, expected):
    graph, node, rec = start_graph(model_dir)
    try:
        proc = subprocess.Popen([*command, str(recording[0])], cwd=REPO, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True,
                                env={**os.environ, 'ROS_DOMAIN_ID': str(DOMAIN)})
        try:
            out, err = proc.communicate(timeout=60)
        finally:
            proc.kill()
        assert proc.returncode == 0, err[-2000:]
        graph.wait_for(lambda: rec.count('depth/image') >= len(expected), 20.0)
        got = sorted(stamp(m) for _, m in rec.get("depth/image"))
        assert got == sorted(expected), (node.stats(), err[-2000:])
    finally:
        graph.shutdown()
