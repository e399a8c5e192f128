# SPDX-License-Identifier: Apache-2.0
"""perception_node with ``audio_msg_type: audio_common``: audio_common_msgs/AudioDataStamped + AudioInfo in,
decoded by the same codec as bags (audio_vision.core.stream.codec, tested on plain bytes in test_bag_audio_common.py).

Where ``audio_common_msgs`` is not installed (``ros-<distro>-audio-common-msgs``; it is not on the Python
package index) the node must refuse to start and say what to install; the graph test then skips.
"""
import importlib.util
import os
import subprocess
import sys
import time

import numpy as np
import pytest

rclpy = pytest.importorskip('rclpy', reason='needs rclpy + DDS: pip install -r requirements-ros.txt')

from audio_vision.core.inference.pipeline import AudioToVision  # noqa: E402
from audio_vision.core.stream import codec  # noqa: E402
from audio_vision.core.stream.windowing import NS_PER_S  # noqa: E402
from audio_vision.ros import conversions as conv  # noqa: E402
from audio_vision.ros.graph import Graph, TopicRecorder  # noqa: E402
from audio_vision.ros.lifecycle import StartupError  # noqa: E402
from audio_vision.ros.perception_node import PerceptionNode  # noqa: E402
from helpers import write_tiny_models  # noqa: E402

pytestmark = pytest.mark.ros
DOMAIN = 115   # one ROS domain per test module
os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
FS, CH, WINDOW, CHUNK = 16000, 4, 4000, 500   # the tiny model: 4 mics, 0.25 s windows and hop
HAVE_AUDIO_COMMON = importlib.util.find_spec('audio_common_msgs') is not None
NOT_INSTALLED = ('audio_common_msgs is not installed (ros-<distro>-audio-common-msgs is a ROS package, not on '
                 'the Python package index)')


@pytest.fixture(scope='module')
def model_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp('tiny_model')
    write_tiny_models(path, num_mics=CH)
    return path


def test_audio_msg_type_is_checked(model_dir):
    with Graph(domain_id=DOMAIN) as graph, pytest.raises(StartupError, match=r"'audio_msg_type'.*not one of"):
        graph.add(PerceptionNode, {'model_dir': str(model_dir), 'audio_msg_type': 'multichannel'})


@pytest.mark.skipif(HAVE_AUDIO_COMMON, reason='audio_common_msgs is installed here: the node starts')
def test_without_audio_common_msgs_the_node_refuses_to_start_and_says_what_to_install(model_dir):
    with Graph(domain_id=DOMAIN) as graph, pytest.raises(StartupError) as err:
        graph.add(PerceptionNode, {'model_dir': str(model_dir), 'audio_msg_type': 'audio_common'})
    message = str(err.value)
    assert '\n' not in message and 'audio-common-msgs' in message and "audio_msg_type 'image'" in message
    env = {**os.environ, 'ROS_DOMAIN_ID': str(DOMAIN), 'ROS_DISTRO': 'jazzy'}
    proc = subprocess.run([sys.executable, '-m', 'audio_vision', 'node', 'perception', '--ros-args',
                           '-p', 'audio_msg_type:=audio_common'], capture_output=True, text=True, timeout=300, env=env)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 1 and len(lines) == 1, proc.stderr
    assert lines[0].startswith('perception_node: error:') and 'install ros-jazzy-audio-common-msgs' in lines[0]


@pytest.mark.skipif(not HAVE_AUDIO_COMMON, reason=NOT_INSTALLED)
def test_audio_data_stamped_in_images_out(model_dir):
    """S16LE AudioDataStamped + a latched AudioInfo (as audio_capture publishes them): one output per hop
    stamped with the window end, equal to the offline pipeline on the decoded audio; frames before the
    AudioInfo and after a mismatching one are dropped and counted."""
    from audio_common_msgs.msg import AudioData, AudioDataStamped, AudioInfo
    from rclpy.node import Node
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    class Capture(Node):           # what audio_capture_node offers: reliable keep-last 10, latched info
        def __init__(self, **kwargs):
            super().__init__('test_audio_capture', **kwargs)
            self.audio = self.create_publisher(AudioDataStamped, 'audio_stamped', 10)
            self.info = self.create_publisher(AudioInfo, 'audio_info', QoSProfile(
                depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL))

    rng = np.random.default_rng(0)
    audio = np.clip(0.1 * rng.normal(size=(CH, 4 * WINDOW)), -1, 1).astype(np.float32)
    t0 = 1_700_000_000 * NS_PER_S

    def frame(a, k):
        data = codec.pcm_bytes(a[:, k:k + CHUNK], 'S16LE')
        msg = AudioDataStamped(audio=AudioData(data=data.tobytes()))
        msg.header = conv.make_header(t0 + k * NS_PER_S // FS, 'audio_array')
        return msg

    with Graph(domain_id=DOMAIN) as graph:
        node = graph.add(PerceptionNode, {'model_dir': str(model_dir), 'audio_msg_type': 'audio_common',
                                          'queue_size': 16})
        rec = graph.add(TopicRecorder, topics={'depth/image': Image})
        src = graph.add(Capture)
        graph.start()
        assert graph.wait_for(lambda: src.audio.get_subscription_count() >= 1
                              and src.info.get_subscription_count() >= 1, 10.0)
        src.audio.publish(frame(audio, 0))                                  # before any AudioInfo: dropped
        assert graph.wait_for(lambda: node.stats()['invalid_frames']['encoding'] == 1, 10.0), node.stats()
        src.info.publish(AudioInfo(channels=CH, sample_rate=FS, sample_format='S16LE', bitrate=0,
                                   coding_format='wave'))
        assert graph.wait_for(lambda: isinstance(node._pcm, codec.PcmLayout), 10.0)
        for k in range(0, audio.shape[1], CHUNK):
            src.audio.publish(frame(audio, k))
            time.sleep(0.002)
        assert graph.wait_for(lambda: rec.count('depth/image') >= 4, 20.0), node.stats()
        src.info.publish(AudioInfo(channels=CH, sample_rate=48000, sample_format='S16LE', bitrate=0,
                                   coding_format='wave'))
        assert graph.wait_for(lambda: isinstance(node._pcm, Exception), 10.0)
        src.audio.publish(frame(audio, 0))
        assert graph.wait_for(lambda: node.stats()['invalid_frames']['encoding'] == 2, 10.0), node.stats()

    decoded = codec.pcm_samples(codec.pcm_bytes(audio, 'S16LE'), codec.PcmLayout(CH, FS, 'S16LE'))
    offline = AudioToVision.load(model_dir)
    depth = rec.get('depth/image')
    ends = [conv.time_to_ns(m.header.stamp) for _, m in depth]
    assert ends == [t0 + (i + 1) * WINDOW * NS_PER_S // FS for i in range(4)]
    for (_, msg), end in zip(depth, ends):
        stop = (end - t0) * FS // NS_PER_S
        want = offline.predict(decoded[:, stop - WINDOW:stop])['depth']
        np.testing.assert_allclose(conv.image_to_array(msg), want, rtol=1e-5, atol=1e-6, equal_nan=True)
