# SPDX-License-Identifier: Apache-2.0
"""depth/confidence and segmentation/confidence over real DDS (rclpy + Fast DDS), and min_confidence."""
import os

import numpy as np
import pytest

rclpy = pytest.importorskip('rclpy', reason='needs rclpy + DDS: pip install -r requirements-ros.txt')

from rclpy.node import Node  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402

from audio_vision.core.inference.pipeline import AudioToVision  # noqa: E402
from audio_vision.core.stream.windowing import NS_PER_S  # noqa: E402
from audio_vision.ros import conversions as conv  # noqa: E402
from audio_vision.ros.graph import Graph, TopicRecorder  # noqa: E402
from audio_vision.ros.lifecycle import StartupError  # noqa: E402
from audio_vision.ros.perception_node import PerceptionNode  # noqa: E402
from helpers import write_tiny_models  # noqa: E402

pytestmark = pytest.mark.ros
DOMAIN = 90   # one ROS domain per test module
os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
FS, CH, WINDOW, CHUNK = 16000, 4, 4000, 500   # the tiny model: 4 mics, 0.25 s windows and hop
TOPICS = {'depth/image': Image, 'depth/confidence': Image, 'segmentation/image': Image,
          'segmentation/confidence': Image}


@pytest.fixture(scope='module')
def model_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp('tiny_model_conf')
    write_tiny_models(path, num_mics=CH)
    return path


class FramePublisher(Node):
    def __init__(self, **kwargs):
        super().__init__('test_conf_frame_publisher', **kwargs)
        self.pub = self.create_publisher(Image, 'audio/frames',
                                         QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE))


def run(model_dir, audio, t0, windows, **params):
    graph = Graph(domain_id=DOMAIN)
    node = graph.add(PerceptionNode, {'model_dir': str(model_dir), 'input_qos_depth': 200, 'queue_size': 16,
                                      **params})
    rec = graph.add(TopicRecorder, topics=TOPICS)
    src = graph.add(FramePublisher)
    graph.start()
    with graph:
        assert graph.wait_for(lambda: src.pub.get_subscription_count() >= 1
                              and all(p.get_subscription_count() >= 1 for p in
                                      (node.pubs['depth'], node.pubs['segmentation'], *node.conf_pubs.values())), 10.0)
        for k in range(0, audio.shape[1], CHUNK):
            src.pub.publish(conv.audio_to_msg(audio[:, k:k + CHUNK], t0 + k * NS_PER_S // FS, 'audio_array'))
        assert graph.wait_for(lambda: rec.count('segmentation/image') >= windows
                              and rec.count('depth/image') >= windows, 20.0), rec.counts
        graph.wait_for(lambda: False, 0.3)          # anything else in flight arrives (or does not)
        return node, {name: [m for _, m in rec.get(name)] for name in TOPICS}


def test_confidence_topics_share_the_image_header_and_equal_the_offline_pipeline(model_dir):
    audio = (0.1 * np.random.default_rng(5).normal(size=(CH, 4 * WINDOW))).astype(np.float32)
    t0 = 1_700_000_000 * NS_PER_S
    _, got = run(model_dir, audio, t0, 4, publish_confidence=True)
    offline = AudioToVision.load(model_dir, backend='eager')
    for image, conf in (('depth/image', 'depth/confidence'), ('segmentation/image', 'segmentation/confidence')):
        assert len(got[conf]) == len(got[image]) == 4
        for im, c in zip(got[image], got[conf]):
            assert c.header.stamp == im.header.stamp
            assert c.header.frame_id == im.header.frame_id == 'audio_camera_optical'
            assert (c.encoding, c.height, c.width) == ('32FC1', im.height, im.width)
    for d, c in zip(got['depth/image'], got['depth/confidence']):
        end = (conv.time_to_ns(d.header.stamp) - t0) * FS // NS_PER_S
        _, want = offline.predict_with_confidence(audio[:, end - WINDOW:end])
        got_c = conv.image_to_array(c)
        assert got_c.min() >= 0.0 and got_c.max() <= 1.0
        np.testing.assert_allclose(got_c, want['depth'], rtol=1e-5, atol=1e-6)
    for s, c in zip(got['segmentation/image'], got['segmentation/confidence']):
        end = (conv.time_to_ns(s.header.stamp) - t0) * FS // NS_PER_S
        _, want = offline.predict_with_confidence(audio[:, end - WINDOW:end])
        np.testing.assert_allclose(conv.image_to_array(c), want['segmentation'], rtol=1e-5, atol=1e-6)


def test_min_confidence_publishes_low_confidence_depth_as_nan(model_dir):
    audio = (0.1 * np.random.default_rng(6).normal(size=(CH, 2 * WINDOW))).astype(np.float32)
    t0 = 1_800_000_000 * NS_PER_S
    offline = AudioToVision.load(model_dir, backend='eager')
    _, conf = offline.predict_with_confidence(audio[:, :WINDOW])
    threshold = float(np.median(conf['depth']))           # masks about half of the pixels
    _, got = run(model_dir, audio, t0, 2, min_confidence=threshold, publish_confidence=True)
    for d, c in zip(got['depth/image'], got['depth/confidence']):
        end = (conv.time_to_ns(d.header.stamp) - t0) * FS // NS_PER_S
        images, want = offline.predict_with_confidence(audio[:, end - WINDOW:end])
        depth, conf_arr = conv.image_to_array(d), conv.image_to_array(c)
        low = conf_arr < threshold
        assert low.any() and (~low).any()
        assert np.isnan(depth[low]).all()
        np.testing.assert_allclose(depth[~low], images['depth'][~low], rtol=1e-5, equal_nan=True)


def test_confidence_topics_can_be_switched_off(model_dir):
    audio = (0.1 * np.random.default_rng(7).normal(size=(CH, WINDOW))).astype(np.float32)
    node, got = run(model_dir, audio, 1_900_000_000 * NS_PER_S, 1, publish_confidence=False)
    assert node.conf_pubs == {}
    assert got['depth/confidence'] == [] and got['segmentation/confidence'] == []
    assert len(got['depth/image']) == 1


def test_unknown_confidence_kind_is_refused(model_dir):
    with Graph(domain_id=DOMAIN) as graph:
        with pytest.raises(StartupError, match='confidence_kind'):
            graph.add(PerceptionNode, {'model_dir': str(model_dir), 'confidence_kind': 'entropy'})
