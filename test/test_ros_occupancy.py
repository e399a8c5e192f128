# SPDX-License-Identifier: Apache-2.0
"""occupancy_node on a real ROS graph (rclpy + Fast DDS): fuses depth + confidence at odometry poses into the
same grid as the pure core, publishes nav_msgs/OccupancyGrid, and rejects bad poses with a diagnostic."""
import math
import os

import numpy as np
import pytest

rclpy = pytest.importorskip('rclpy', reason='needs rclpy + DDS: pip install -r requirements-ros.txt')
pytest.importorskip('nav_msgs', reason='needs nav_msgs: pip install -r requirements-ros.txt')

from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from nav_msgs.msg import OccupancyGrid, Odometry  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image  # noqa: E402

from audio_vision.core.camera import PinholeCamera  # noqa: E402
from audio_vision.core.stream.windowing import NS_PER_S  # noqa: E402
from audio_vision.mapping.occupancy import GridConfig, OccupancyGrid2D  # noqa: E402
from audio_vision.ros import conversions as conv  # noqa: E402
from audio_vision.ros.graph import Graph, TopicRecorder  # noqa: E402
from audio_vision.ros.lifecycle import StartupError  # noqa: E402
from audio_vision.ros.occupancy_node import OccupancyNode  # noqa: E402
from audio_vision.simulation.geometry import camera_to_room  # noqa: E402

pytestmark = pytest.mark.ros
DOMAIN = 92   # one ROS domain per test module
os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
CAM = PinholeCamera(32, 32, 90.0)
PARAMS = {'pose_source': 'odom', 'resolution': 0.1, 'width_m': 8.0, 'height_m': 8.0, 'origin_x': -4.0,
          'origin_y': -4.0, 'pixel_stride': 1, 'publish_period_s': 0.2, 'diagnostics_period_s': 0.2,
          'max_pose_age_s': 0.05, 'use_segmentation': False}   # (with segmentation: test_ros_occupancy_segmentation)
T0 = 1_700_000_000 * NS_PER_S


class Feeder(Node):
    def __init__(self, **kwargs):
        super().__init__('test_occupancy_feeder', **kwargs)
        qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
        self.pubs = {name: self.create_publisher(t, name, qos) for name, t in (
            ('depth/image', Image), ('depth/camera_info', CameraInfo), ('depth/confidence', Image),
            ('odom', Odometry))}


def wall(distance):
    return np.full((32, 32), distance, np.float32)


def frame(feeder, stamp, depth, confidence):
    """Publish camera_info, confidence and depth at `stamp` (confidence first, as perception does)."""
    header = conv.make_header(stamp, 'audio_camera_optical')
    feeder.pubs['depth/camera_info'].publish(conv.camera_info_msg(CAM.K, 32, 32, header))
    feeder.pubs['depth/confidence'].publish(conv.array_to_image(confidence, '32FC1', header))
    feeder.pubs['depth/image'].publish(conv.array_to_image(depth, '32FC1', header))


def start(**params):
    graph = Graph(domain_id=DOMAIN)
    node = graph.add(OccupancyNode, {**PARAMS, **params})
    rec = graph.add(TopicRecorder, topics={'map': OccupancyGrid, '/diagnostics': DiagnosticArray})
    feeder = graph.add(Feeder)
    graph.start()
    assert graph.wait_for(lambda: all(p.get_subscription_count() >= 1 for p in feeder.pubs.values()), 10.0)
    return graph, node, rec, feeder


def test_map_equals_the_pure_fusion_and_bad_poses_are_rejected():
    graph, node, rec, feeder = start()
    conf = np.linspace(0.2, 1.0, 32 * 32, dtype=np.float32).reshape(32, 32)
    good = [(T0 + k * NS_PER_S // 4, 2.0 + 0.5 * k, k * math.pi / 2) for k in range(3)]
    handled = lambda: node.fused + sum(node.rejected.snapshot().values())  # noqa: E731
    with graph:
        # one frame at a time (DDS does not order messages across topics): wait until each is handled
        steps = [(T0 - NS_PER_S, wall(3.0), 0.0, None)]                          # no odometry yet: missing
        steps += [(stamp, wall(d), yaw, stamp - 10_000_000) for stamp, d, yaw in good]   # odometry 10 ms before
        steps.append((T0 + 2 * NS_PER_S, wall(2.0), 0.0, None))                   # odometry 1.5 s old: stale
        steps.append((T0 + 3 * NS_PER_S, wall(2.0), float('nan'), T0 + 3 * NS_PER_S))   # NaN odometry
        for k, (stamp, depth, yaw, odom_stamp) in enumerate(steps):
            if odom_stamp is not None:
                feeder.pubs['odom'].publish(conv.odometry_msg(odom_stamp, 'odom', 'base_link', (0.0, 0.0, 1.0), yaw))
                assert graph.wait_for(lambda: odom_stamp in node.poses.odometry_stamps, 5.0)
            frame(feeder, stamp, depth, conf)
            assert graph.wait_for(lambda: handled() == k + 1, 10.0), node.stats()
        n_maps = len(rec.get('map'))
        assert graph.wait_for(lambda: len(rec.get('map')) > n_maps, 5.0)      # a map after the last fusion
        assert graph.wait_for(lambda: any(kv.key == 'fused images' and kv.value == '3' for _, m in
                                          rec.get('/diagnostics') for kv in m.status[0].values), 5.0)
    assert node.fused == 3
    rejected = node.rejected.snapshot()
    assert (rejected['missing'], rejected['stale'], rejected['non_finite']) == (1, 1, 1)

    offline = OccupancyGrid2D(GridConfig(resolution=0.1, width_m=8, height_m=8, origin=(-4, -4), pixel_stride=1))
    for _, d, yaw in good:
        offline.integrate(wall(d), CAM.K, camera_to_room((0.0, 0.0, 1.0), yaw), conf)
    msg = rec.get('map')[-1][1]
    assert msg.header.frame_id == 'odom' and (msg.info.width, msg.info.height) == (80, 80)
    assert msg.info.resolution == pytest.approx(0.1) and msg.info.origin.position.x == pytest.approx(-4.0)
    data = np.asarray(msg.data, np.int8).reshape(80, 80)
    np.testing.assert_array_equal(data, offline.occupancy_values())
    assert (data > 65).sum() > 20 and (data == -1).sum() > 0

    diag = [m for _, m in rec.get('/diagnostics')]
    warn = [m.status[0] for m in diag if m.status[0].level == b'\x01']
    assert warn and any('rejected' in st.message for st in warn)
    last = {kv.key: kv.value for kv in diag[-1].status[0].values}
    assert last['rejected (stale)'] == '1' and last['rejected (missing)'] == '1'


def test_depth_without_its_confidence_is_not_fused_until_it_arrives():
    graph, node, rec, feeder = start(queue_size=2)
    with graph:
        header = conv.make_header(T0, 'audio_camera_optical')
        feeder.pubs['odom'].publish(conv.odometry_msg(T0, 'odom', 'base_link', (0, 0, 1), 0.0))
        feeder.pubs['depth/camera_info'].publish(conv.camera_info_msg(CAM.K, 32, 32, header))
        feeder.pubs['depth/image'].publish(conv.array_to_image(wall(2.0), '32FC1', header))
        graph.wait_for(lambda: False, 0.5)
        assert node.fused == 0
        feeder.pubs['depth/confidence'].publish(conv.array_to_image(np.ones((32, 32), np.float32), '32FC1', header))
        assert graph.wait_for(lambda: node.fused == 1, 5.0)


def test_pose_source_tf_without_tf2_is_refused():
    pytest.importorskip('nav_msgs')
    try:
        import tf2_ros  # noqa: F401
        pytest.skip('tf2_ros is importable here: the tf pose source works')
    except ImportError:
        pass
    with Graph(domain_id=DOMAIN) as graph:
        with pytest.raises(StartupError, match='tf2_ros'):
            graph.add(OccupancyNode, {'pose_source': 'tf'})
