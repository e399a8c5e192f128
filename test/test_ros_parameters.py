# SPDX-License-Identifier: Apache-2.0
"""Live parameters over DDS (the set_parameters / describe_parameters services, as `ros2 param set` and
`ros2 param describe` use them): the run-time ones change the running perception node and are validated
as at start-up; the others are refused, and their descriptors say why."""
import os
import time

import numpy as np
import pytest

pytest.importorskip('rclpy', reason='needs rclpy + DDS: pip install -r requirements-ros.txt')

from rclpy.node import Node  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.parameter_client import AsyncParameterClient  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import Image, PointCloud2  # noqa: E402

from audio_vision.core.stream.windowing import NS_PER_S  # noqa: E402
from audio_vision.ros import conversions as conv  # noqa: E402
from audio_vision.ros.audio_capture_node import PARAMS as CAPTURE_PARAMS  # noqa: E402
from audio_vision.ros.graph import Graph, TopicRecorder  # noqa: E402
from audio_vision.ros.perception_node import PARAMS, PerceptionNode  # noqa: E402
from audio_vision.ros.simulator_node import PARAMS as SIM_PARAMS  # noqa: E402
from helpers import write_tiny_models  # noqa: E402

pytestmark = pytest.mark.ros
DOMAIN = 89   # one ROS domain per test module
os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
FS, CH, WINDOW, CHUNK = 16000, 4, 4000, 500   # the tiny model: 4 mics, 0.25 s windows, hop 0.25 s
LIVE = {'publish_points', 'points_stride', 'queue_size', 'min_confidence'}


class Client(Node):
    def __init__(self, **kwargs):
        super().__init__('test_parameter_client', **kwargs)
        self.params = AsyncParameterClient(self, 'perception_node')
        self.pub = self.create_publisher(Image, 'audio/frames',
                                         QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE))


def result(future, timeout=10.0):
    end = time.monotonic() + timeout
    while not future.done():
        assert time.monotonic() < end, 'service call timed out'
        time.sleep(0.01)
    return future.result()


@pytest.fixture(scope='module')
def graph(tmp_path_factory):
    model_dir = tmp_path_factory.mktemp('tiny_model')
    write_tiny_models(model_dir, num_mics=CH)
    g = Graph(domain_id=DOMAIN)
    node = g.add(PerceptionNode, {'model_dir': str(model_dir), 'publish_points': False, 'input_qos_depth': 200,
                                  'publish_confidence': False, 'min_confidence': 0.0})
    rec = g.add(TopicRecorder, topics={'depth/image': Image, 'depth/points': PointCloud2})
    client = g.add(Client)
    g.start()
    assert client.params.wait_for_services(timeout_sec=15.0)
    assert g.wait_for(lambda: client.pub.get_subscription_count() >= 1, 10.0)
    yield g, node, rec, client
    g.shutdown()


def feed(client, node, rec, t0_ns, windows=1):
    """Publish ``windows`` windows of audio; wait until the node has published their outputs."""
    before = rec.count('depth/image')
    audio = np.random.default_rng(t0_ns % 1000).uniform(-0.1, 0.1, (CH, WINDOW * windows)).astype(np.float32)
    for k in range(0, audio.shape[1], CHUNK):
        client.pub.publish(conv.audio_to_msg(audio[:, k:k + CHUNK], t0_ns + k * NS_PER_S // FS, 'audio_array'))
    assert Graph.wait_for(None, lambda: rec.count('depth/image') >= before + windows, 20.0)


def set_params(client, **values):
    return result(client.params.set_parameters([Parameter(k, value=v) for k, v in values.items()])).results


def test_only_the_documented_parameters_are_live():
    assert {p.name for p in PARAMS if not p.read_only} == LIVE
    assert all(p.read_only for p in SIM_PARAMS + CAPTURE_PARAMS)


def test_publish_points_and_stride_change_the_running_node(graph):
    g, node, rec, client = graph
    feed(client, node, rec, 10 * NS_PER_S)
    assert rec.count('depth/points') == 0
    (res,) = set_params(client, publish_points=True)
    assert res.successful, res.reason
    assert node.params['publish_points'] is True
    assert g.wait_for(lambda: node.pubs['points'].get_subscription_count() >= 1, 10.0)
    feed(client, node, rec, 20 * NS_PER_S)
    assert g.wait_for(lambda: rec.count('depth/points') >= 1, 10.0)
    full = rec.get('depth/points')[-1][1].width
    (res,) = set_params(client, points_stride=4)
    assert res.successful and node.params['points_stride'] == 4
    feed(client, node, rec, 30 * NS_PER_S)
    assert g.wait_for(lambda: rec.count('depth/points') >= 2, 10.0)
    strided = rec.get('depth/points')[-1][1].width
    assert 0 < strided <= -(-64 // 4) ** 2 < full or (full == 0 and strided == 0)
    (res,) = set_params(client, publish_points=False)
    assert res.successful
    n = rec.count('depth/points')
    feed(client, node, rec, 40 * NS_PER_S)
    assert rec.count('depth/points') == n


def test_invalid_values_are_refused_as_at_start_up(graph):
    _, node, _, client = graph
    before = dict(node.params)
    for values in ({'points_stride': 0}, {'points_stride': 65}, {'queue_size': 'many'}, {'min_confidence': 1.5},
                   {'publish_points': 1}):
        (res,) = set_params(client, **values)
        assert not res.successful, values
    assert node.params == before
    assert all(r.successful for r in set_params(client, queue_size=3, min_confidence=0.25))
    assert node.params['queue_size'] == 3 and node.params['min_confidence'] == 0.25
    assert node._with_confidence       # confidence is computed from now on, for the masking
    set_params(client, min_confidence=0.0)


def test_read_only_parameters_are_refused_and_say_why(graph):
    _, node, _, client = graph
    for name, value in (('model_dir', '/elsewhere'), ('device', 'cuda'), ('qos_depth', 7)):
        (res,) = set_params(client, **{name: value})
        assert not res.successful, name
        assert node.params[name] != value
    names = sorted(p.name for p in PARAMS)
    descriptors = {d.name: d for d in result(client.params.describe_parameters(names)).descriptors}
    for p in PARAMS:
        d = descriptors[p.name]
        assert d.read_only == p.read_only, p.name
        if p.read_only:
            assert 'read-only: ' in d.additional_constraints and 'restart' in d.additional_constraints, p.name
        else:
            assert 'run time' in d.additional_constraints, p.name
    assert 'loaded once at start-up' in descriptors['model_dir'].additional_constraints
