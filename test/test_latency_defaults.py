# SPDX-License-Identifier: Apache-2.0
"""The default latency path (issue 11), on stamps and counts: the shipped chunk sizes divide the shipped model's
hop (no window waits for the rest of a frame), a capture device's blocks are published when the audio thread
delivers them (not on a polling timer), and perception computes the derived outputs (colour view, points,
confidence) only while something subscribes to them."""
import os
import sys
from types import SimpleNamespace

import numpy as np
import pytest
import yaml

rclpy = pytest.importorskip('rclpy', reason='needs rclpy + DDS: pip install -r requirements-ros.txt')

from rclpy.node import Node  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import Image, PointCloud2  # noqa: E402

from audio_vision.core.model.checkpoint import load_checkpoint  # noqa: E402
from audio_vision.core.stream.windowing import NS_PER_S  # noqa: E402
from audio_vision.paths import config_dir, default_model_dir  # noqa: E402
from audio_vision.ros import conversions as conv  # noqa: E402
from audio_vision.ros.audio_capture_node import AudioCaptureNode  # noqa: E402
from audio_vision.ros.audio_capture_node import PARAMS as CAPTURE_PARAMS  # noqa: E402
from audio_vision.ros.graph import Graph, TopicRecorder  # noqa: E402
from audio_vision.ros.perception_node import PerceptionNode  # noqa: E402
from audio_vision.ros.simulator_node import PARAMS as SIM_PARAMS  # noqa: E402
from helpers import write_tiny_models  # noqa: E402

pytestmark = pytest.mark.ros
DOMAIN = 125   # one ROS domain per test module
os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
FS, CH, WINDOW, CHUNK = 16000, 4, 4000, 500   # the tiny model: 4 mics, 0.25 s windows and hop
DERIVED = {'segmentation/color': Image, 'depth/points': PointCloud2, 'depth/confidence': Image,
           'segmentation/confidence': Image}


def test_default_chunks_divide_the_shipped_models_hop():
    path = default_model_dir() / 'depth.pt'
    if not path.is_file():
        pytest.skip(f'no shipped model at {path}')
    features = load_checkpoint(path).spec.features
    hop = round(features.hop_s * features.sample_rate)
    defaults = {'simulator param': next(p.default for p in SIM_PARAMS if p.name == 'chunk_samples'),
                'capture param': next(p.default for p in CAPTURE_PARAMS if p.name == 'chunk_samples')}
    for node, name in (('simulator_node', 'simulator.yaml'), ('audio_capture_node', 'audio_capture.yaml')):
        data = yaml.safe_load((config_dir() / name).read_text())
        defaults[name] = data[f'/**/{node}']['ros__parameters']['chunk_samples']
    for where, chunk in defaults.items():
        assert hop % chunk == 0, f'{where}: chunk_samples {chunk} does not divide the hop ({hop} samples)'


@pytest.fixture(scope='module')
def model_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp('tiny_model_latency')
    write_tiny_models(path, num_mics=CH)
    return path


class FramePublisher(Node):
    def __init__(self, **kwargs):
        super().__init__('test_latency_frame_publisher', **kwargs)
        self.pub = self.create_publisher(Image, 'audio/frames',
                                         QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE))


def test_derived_outputs_are_computed_only_while_subscribed(model_dir):
    audio = (0.1 * np.random.default_rng(11).normal(size=(CH, 4 * WINDOW))).astype(np.float32)
    t0 = 1_700_000_000 * NS_PER_S
    with Graph(domain_id=DOMAIN) as graph:
        node = graph.add(PerceptionNode, {'model_dir': str(model_dir), 'input_qos_depth': 200, 'queue_size': 16,
                                          'publish_points': True, 'publish_confidence': True})
        images = graph.add(TopicRecorder, topics={'depth/image': Image, 'segmentation/image': Image})
        src = graph.add(FramePublisher)
        calls = {'confidence': 0}
        predict_with_confidence = node.model.predict_with_confidence

        def counted(*args, **kwargs):
            calls['confidence'] += 1
            return predict_with_confidence(*args, **kwargs)
        node.model.predict_with_confidence = counted
        graph.start()
        assert graph.wait_for(lambda: src.pub.get_subscription_count() >= 1
                              and node.pubs['segmentation'].get_subscription_count() >= 1, 10.0)

        def feed(first, last):
            for k in range(first * WINDOW, last * WINDOW, CHUNK):
                src.pub.publish(conv.audio_to_msg(audio[:, k:k + CHUNK], t0 + k * NS_PER_S // FS, 'audio_array'))
            assert graph.wait_for(lambda: images.count('segmentation/image') >= last
                                  and images.count('depth/image') >= last, 20.0), images.counts

        # nobody subscribes to the derived outputs: images only, the confidence path never runs
        feed(0, 2)
        assert calls['confidence'] == 0
        derived = graph.add(TopicRecorder, name='derived_recorder', topics=DERIVED)
        assert graph.wait_for(lambda: all(s.get_publisher_count() >= 1 for s in derived.subs), 10.0)
        # now they have subscribers: each later window gives every derived output, with the image's header
        feed(2, 4)
        assert graph.wait_for(lambda: all(derived.count(t) >= 2 for t in DERIVED), 10.0), derived.counts
        graph.wait_for(lambda: False, 0.3)          # anything else in flight arrives (or does not)
        assert calls['confidence'] == 2
        stamps = {conv.time_to_ns(m.header.stamp) for _, m in images.get('segmentation/image')}
        assert len(stamps) == 4
        for topic in DERIVED:
            got = sorted(conv.time_to_ns(m.header.stamp) for _, m in derived.get(topic))
            assert got == sorted(stamps)[2:], topic


class FakeSoundDevice:
    """The PortAudio boundary only (as test_robustness_capture.py fakes it): one 8-channel input device whose
    stream callback the test calls itself, from its own thread, as PortAudio's audio thread would."""

    class PortAudioError(Exception):
        pass

    def __init__(self):
        self.streams = []

    def query_devices(self, device=None):
        info = {'name': 'Fake 8-Mic Array', 'max_input_channels': 8, 'max_output_channels': 0}
        return info if device is not None else [info]

    def InputStream(self, device=None, callback=None, **kwargs):  # noqa: N802 - the sounddevice name
        stream = SimpleNamespace(device=0 if device is None else device, callback=callback, start=lambda: None,
                                 abort=lambda ignore_errors=True: None, close=lambda ignore_errors=True: None)
        self.streams.append(stream)
        return stream

    def _terminate(self):
        pass

    def _initialize(self):
        pass


def test_device_blocks_are_published_when_the_audio_thread_delivers_them(monkeypatch):
    """The polling drain timer is cancelled: every block still goes out, woken by the audio thread's callback."""
    sd = FakeSoundDevice()
    monkeypatch.setitem(sys.modules, 'sounddevice', sd)
    block = 1000
    with Graph(domain_id=DOMAIN) as graph:
        node = graph.add(AudioCaptureNode, {'source': 'device', 'channels': 8, 'sample_rate': FS,
                                            'chunk_samples': block, 'reconnect_period_s': 600.0})
        rec = graph.add(TopicRecorder, topics={'audio/frames': Image}, depth=100)
        node._drain_timer.cancel()
        graph.start()
        assert graph.wait_for(lambda: node.pub.get_subscription_count() >= 1, 10.0)
        (stream,) = sd.streams
        for k in range(6):
            indata = np.full((block, 8), k / 10, np.float32)
            t = SimpleNamespace(inputBufferAdcTime=1.0 + k * block / FS, currentTime=1.0 + (k + 1) * block / FS)
            stream.callback(indata, block, t, None)
        assert graph.wait_for(lambda: rec.count('audio/frames') >= 6, 20.0), rec.counts
    frames = [m for _, m in rec.get('audio/frames')]
    assert len(frames) == 6 and node.capture.dropped_blocks == 0
    assert np.all(np.diff([conv.time_to_ns(m.header.stamp) for m in frames]) > 0)
    assert [float(conv.image_to_array(m)[0, 0]) for m in frames] == pytest.approx([k / 10 for k in range(6)])
