# SPDX-License-Identifier: Apache-2.0
"""perception_node on a real ROS graph (rclpy + Fast DDS), fed by a test publisher.

Tiny randomly-initialised models (test/helpers.py) keep inference fast; the node loads them from disk
exactly as it loads the shipped ones.
"""
import os
import subprocess
import sys
import time

import numpy as np
import pytest

rclpy = pytest.importorskip('rclpy', reason='needs rclpy + DDS: pip install -r requirements-ros.txt')

from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image, PointCloud2  # noqa: E402

from audio_vision.core.inference.pipeline import AudioToVision  # noqa: E402
from audio_vision.core.stream.windowing import FRAME_ERROR_REASONS, NS_PER_S  # noqa: E402
from audio_vision.ros import conversions as conv  # noqa: E402
from audio_vision.ros.graph import Graph, TopicRecorder  # noqa: E402
from audio_vision.ros.lifecycle import StartupError  # noqa: E402
from audio_vision.ros.perception_node import PerceptionNode  # noqa: E402
from helpers import write_tiny_models  # noqa: E402

pytestmark = pytest.mark.ros
DOMAIN = 61   # one ROS domain per test module: no crosstalk between modules running concurrently
os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
FS, CH, WINDOW = 16000, 4, 4000   # the tiny model: 4 mics, 0.25 s windows, hop 0.25 s
CHUNK = 500
OUTPUTS = {
    'depth/image': Image, 'depth/camera_info': CameraInfo, 'depth/points': PointCloud2,
    'segmentation/image': Image, 'segmentation/camera_info': CameraInfo, 'segmentation/color': Image,
    '/diagnostics': DiagnosticArray,
}


@pytest.fixture(scope='module')
def model_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp('tiny_model')
    write_tiny_models(path, num_mics=CH)
    return path


class FramePublisher(Node):
    def __init__(self, **kwargs):
        super().__init__('test_frame_publisher', **kwargs)
        self.pub = self.create_publisher(Image, 'audio/frames',
                                         QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE))


def start_graph(model_dir, **params):
    graph = Graph(domain_id=DOMAIN)
    node = graph.add(PerceptionNode, {'model_dir': str(model_dir), 'publish_points': True,
                                      'input_qos_depth': 200, 'diagnostics_period_s': 0.2, **params})
    rec = graph.add(TopicRecorder, topics=OUTPUTS)
    src = graph.add(FramePublisher)
    graph.start()
    if not graph.wait_for(lambda: src.pub.get_subscription_count() >= 1
                          and node.diag_pub.get_subscription_count() >= 1
                          and all(p.get_subscription_count() >= 1 for p in node.pubs.values()), 10.0):
        graph.shutdown()
        pytest.fail('discovery timed out')
    return graph, node, rec, src


def publish(src, audio, t0_ns, chunk=CHUNK, pause=0.0):
    for k in range(0, audio.shape[1], chunk):
        src.pub.publish(conv.audio_to_msg(audio[:, k:k + chunk], t0_ns + k * NS_PER_S // FS, 'audio_array'))
        if pause:
            time.sleep(pause)


def last_diagnostics(rec):
    msgs = rec.get('/diagnostics')
    assert msgs, 'no /diagnostics'
    status = msgs[-1][1].status[0]
    return status, {kv.key: kv.value for kv in status.values}


def test_outputs_have_the_convention_and_equal_the_offline_pipeline(model_dir):
    rng = np.random.default_rng(0)
    audio = (0.1 * rng.normal(size=(CH, 8 * WINDOW))).astype(np.float32)
    t0 = 1_700_000_000 * NS_PER_S
    graph, node, rec, src = start_graph(model_dir, queue_size=16)
    with graph:
        publish(src, audio, t0, pause=0.002)
        assert graph.wait_for(lambda: rec.count('segmentation/color') >= 8
                              and rec.count('depth/points') >= 8, 20.0), rec.counts
        assert graph.wait_for(lambda: rec.get('/diagnostics')
                              and last_diagnostics(rec)[1]['windows'] == '8', 5.0)

    offline = AudioToVision.load(model_dir)
    expected_ends = [t0 + (i + 1) * WINDOW * NS_PER_S // FS for i in range(8)]
    depth = rec.get('depth/image')
    assert [conv.time_to_ns(m.header.stamp) for _, m in depth] == expected_ends  # one per hop, in order
    for name in ('depth/image', 'depth/camera_info', 'segmentation/image', 'segmentation/camera_info',
                 'segmentation/color', 'depth/points'):
        msgs = [m for _, m in rec.get(name)]
        assert len(msgs) == 8, name
        assert all(m.header.frame_id == 'audio_camera_optical' for m in msgs), name
        # identical headers on image and camera_info (depth_image_proc syncs on exact stamps)
        assert [conv.time_to_ns(m.header.stamp) for m in msgs] == expected_ends, name
    info = rec.get('depth/camera_info')[0][1]
    assert (info.width, info.height) == (32, 32)
    np.testing.assert_allclose(np.reshape(info.k, (3, 3)), offline.camera.K)
    assert len(info.p) == 12 and info.distortion_model == 'plumb_bob'

    for (_, d), (_, s), (_, c), (_, pts) in zip(depth, rec.get('segmentation/image'),
                                                rec.get('segmentation/color'), rec.get('depth/points')):
        assert (d.encoding, d.height, d.width, d.step) == ('32FC1', 32, 32, 128)
        assert (s.encoding, s.height, s.width) == ('mono8', 32, 32)
        assert (c.encoding, c.height, c.width) == ('rgb8', 32, 32)
        end = (conv.time_to_ns(d.header.stamp) - t0) * FS // NS_PER_S
        want = offline.predict(audio[:, end - WINDOW:end])
        got_depth = conv.image_to_array(d)
        np.testing.assert_allclose(got_depth, want['depth'], rtol=1e-5, atol=1e-6, equal_nan=True)
        np.testing.assert_array_equal(conv.image_to_array(s), want['segmentation'])
        np.testing.assert_array_equal(conv.image_to_array(c), offline.class_table.colorize(want['segmentation']))
        points = conv.cloud_to_points(pts)
        assert len(points) == np.isfinite(got_depth).sum()
        np.testing.assert_allclose(np.sort(points[:, 2]), np.sort(got_depth[np.isfinite(got_depth)]), rtol=1e-6)

    status, values = last_diagnostics(rec)
    assert values['model id'] == offline.model_id and values['device'] == 'cpu'
    assert int(values['windows']) == 8 and int(values['dropped windows']) == 0
    assert float(values['inference latency p50 (ms)']) > 0


def test_malformed_frames_are_counted_and_later_frames_still_processed(model_dir):
    t0 = 1_800_000_000 * NS_PER_S
    good = np.zeros((CH, CHUNK), np.float32)
    graph, node, rec, src = start_graph(model_dir, queue_size=16)
    with graph:
        bad = []
        m = conv.audio_to_msg(good, t0, 'audio_array')
        m.encoding = '16SC1'
        bad.append(m)                                                   # encoding
        bad.append(conv.audio_to_msg(np.zeros((CH + 1, CHUNK), np.float32), t0, 'audio_array'))  # channels
        m = conv.audio_to_msg(good, t0, 'audio_array')
        m.step += 4
        bad.append(m)                                                   # layout
        bad.append(conv.audio_to_msg(np.zeros((CH, 8), np.float32), t0, 'audio_array'))  # chunk_size
        nan = good.copy()
        nan[2, 100] = np.nan
        bad.append(conv.audio_to_msg(nan, t0, 'audio_array'))          # non_finite
        loud = good.copy()
        loud[0, 5] = 1e20
        bad.append(conv.audio_to_msg(loud, t0, 'audio_array'))         # out_of_range
        for msg in bad:
            src.pub.publish(msg)
        audio = (0.1 * np.random.default_rng(1).normal(size=(CH, 4 * WINDOW))).astype(np.float32)
        publish(src, audio[:, :2 * WINDOW], t0)
        publish(src, audio[:, 2 * WINDOW:], t0 + 3 * WINDOW * NS_PER_S // FS)   # a gap of one window
        assert graph.wait_for(lambda: rec.count('depth/image') >= 4, 20.0), rec.counts
        assert graph.wait_for(lambda: rec.get('/diagnostics')
                              and last_diagnostics(rec)[1]['windows'] == '4', 5.0)
        status, values = last_diagnostics(rec)

    for reason in FRAME_ERROR_REASONS:
        assert values[f'invalid frames ({reason})'] == '1', (reason, values)
    assert values['invalid frames'] == '6'
    assert values['stream resets (gap)'] == '1'
    # 2 windows before the gap, 2 after it: the ring buffer restarted at the gap, never stitching across it
    ends = [conv.time_to_ns(m.header.stamp) for _, m in rec.get('depth/image')]
    assert ends == [t0 + k * WINDOW * NS_PER_S // FS for k in (1, 2, 4, 5)]
    assert node.stats()['invalid_frames'] == dict.fromkeys(FRAME_ERROR_REASONS, 1)


def test_latest_window_wins_and_drops_are_counted(model_dir):
    t0 = 1_900_000_000 * NS_PER_S
    graph, node, rec, src = start_graph(model_dir, queue_size=1, hop_s=0.0625)  # 4 windows per window
    with graph:
        audio = np.zeros((CH, 6 * WINDOW), np.float32)
        publish(src, audio, t0, chunk=6 * WINDOW // 4)   # bursts: each frame completes several windows
        assert graph.wait_for(lambda: node.stats()['windows'] == 21
                              and node.stats()['outputs'] + node.stats()['dropped_windows'] == 21, 20.0), node.stats()
        stats = node.stats()
        # the node counts an output when it publishes it; the recorder receives it later (DDS delivery)
        assert graph.wait_for(lambda: rec.count('depth/image') == stats['outputs'], 20.0), \
            (rec.count('depth/image'), stats)
    assert stats['dropped_windows'] > 0
    # the newest window is never dropped
    last_end = max(conv.time_to_ns(m.header.stamp) for _, m in rec.get('depth/image'))
    assert last_end == t0 + 6 * WINDOW * NS_PER_S // FS


@pytest.mark.parametrize('params, words', [
    ({'hop_s': -1.0}, ['hop_s', 'range']),
    ({'hop_s': 1}, ['hop_s', 'must be a float']),
    ({'window_s': 0.5}, ['window_s', "model's window"]),
    ({'modalities': ['depth', 'rgb']}, ['modalities']),
    ({'min_chunk_samples': 1000, 'max_chunk_samples': 100}, ['min_chunk_samples']),
    ({'device': 'tpu'}, ['device']),
])
def test_invalid_parameters_are_refused(model_dir, params, words):
    with Graph(domain_id=DOMAIN) as graph:
        with pytest.raises(StartupError) as err:
            graph.add(PerceptionNode, {'model_dir': str(model_dir), **params})
    message = str(err.value)
    assert '\n' not in message
    for w in words:
        assert w in message, message


def test_missing_and_corrupt_models_are_refused(model_dir, tmp_path):
    (tmp_path / 'depth.pt').write_bytes(b'not a checkpoint')
    with Graph(domain_id=DOMAIN) as graph:
        with pytest.raises(StartupError, match='does not exist'):
            graph.add(PerceptionNode, {'model_dir': str(tmp_path / 'nope')})
        with pytest.raises(StartupError, match='depth.pt'):
            graph.add(PerceptionNode, {'model_dir': str(tmp_path)})
        with pytest.raises(StartupError, match='segmentation.pt'):   # mismatch: only depth present
            graph.add(PerceptionNode, {'model_dir': str(tmp_path), 'modalities': ['segmentation']})


def test_command_line_start_up_error_is_one_line_and_nonzero(tmp_path):
    env = {**os.environ, 'ROS_DOMAIN_ID': str(DOMAIN), 'PYTHONPATH': os.getcwd()}
    proc = subprocess.run([sys.executable, '-m', 'audio_vision', 'node', 'perception', '--ros-args',
                           '-p', f'model_dir:={tmp_path / "missing"}'],
                          capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 1
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith('perception_node: error:'), proc.stderr
    assert 'Traceback' not in proc.stderr
