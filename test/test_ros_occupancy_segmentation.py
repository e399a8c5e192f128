# SPDX-License-Identifier: Apache-2.0
"""occupancy_node with ``use_segmentation`` on a real ROS graph (rclpy + Fast DDS): depth, confidence and
segmentation/image are paired by exact stamp, floor-labelled pixels only clear (the map equals the pure core's
labelled fusion), a depth image waits for its segmentation, and bad poses stay rejected."""
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
from audio_vision.core.classes import DEFAULT_CLASS_TABLE  # noqa: E402
from audio_vision.core.stream.windowing import NS_PER_S  # noqa: E402
from audio_vision.mapping.occupancy import GridConfig, OccupancyGrid2D  # noqa: E402
from audio_vision.ros import conversions as conv  # noqa: E402
from audio_vision.ros.graph import Graph, TopicRecorder  # noqa: E402
from audio_vision.ros.occupancy_node import OccupancyNode  # noqa: E402
from audio_vision.simulation.geometry import camera_to_room  # noqa: E402

pytestmark = pytest.mark.ros
DOMAIN = 110   # one ROS domain per test module
os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
CAM = PinholeCamera(32, 32, 90.0)
WALL, FLOOR = DEFAULT_CLASS_TABLE.id_of('wall'), DEFAULT_CLASS_TABLE.id_of('floor')
PARAMS = {'pose_source': 'odom', 'resolution': 0.1, 'width_m': 8.0, 'height_m': 8.0, 'origin_x': -4.0,
          'origin_y': -4.0, 'pixel_stride': 1, 'publish_period_s': 0.2, 'diagnostics_period_s': 0.2,
          'max_pose_age_s': 0.05, 'use_confidence': True, 'use_segmentation': True}
T0 = 1_700_000_000 * NS_PER_S


def scene(wall_m=3.0, floor_m=0.6):
    """A wall `wall_m` ahead (upper half, labelled wall) and, in the lower half, floor pixels whose depth is
    too short (`floor_m`: their end points lie inside the height band, as a noisy predicted depth puts them)."""
    depth = np.full((32, 32), wall_m, np.float32)
    labels = np.full((32, 32), WALL, np.uint8)
    depth[20:] = floor_m
    labels[20:] = FLOOR
    return depth, labels


class Feeder(Node):
    def __init__(self, **kwargs):
        super().__init__('test_occupancy_seg_feeder', **kwargs)
        qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
        self.pubs = {name: self.create_publisher(t, name, qos) for name, t in (
            ('depth/image', Image), ('depth/camera_info', CameraInfo), ('depth/confidence', Image),
            ('segmentation/image', Image), ('odom', Odometry))}

    def frame(self, stamp, depth, confidence, labels, segmentation_first=True):
        header = conv.make_header(stamp, 'audio_camera_optical')
        self.pubs['depth/confidence'].publish(conv.array_to_image(confidence, '32FC1', header))
        if segmentation_first:
            self.pubs['segmentation/image'].publish(conv.array_to_image(labels, 'mono8', header))
        self.pubs['depth/image'].publish(conv.array_to_image(depth, '32FC1', header))


def start(**params):
    graph = Graph(domain_id=DOMAIN)
    node = graph.add(OccupancyNode, {**PARAMS, **params})
    rec = graph.add(TopicRecorder, topics={'map': OccupancyGrid, '/diagnostics': DiagnosticArray})
    feeder = graph.add(Feeder)
    graph.start()
    used = [p for name, p in feeder.pubs.items() if name != 'depth/confidence' or node.params['use_confidence']]
    assert graph.wait_for(lambda: all(p.get_subscription_count() >= 1 for p in used), 10.0)
    # intrinsics first (DDS does not order messages across topics): no frame meets a node without them
    feeder.pubs['depth/camera_info'].publish(conv.camera_info_msg(CAM.K, 32, 32, conv.make_header(T0, 'x')))
    assert graph.wait_for(lambda: node._K is not None, 10.0)
    return graph, node, rec, feeder


def handled(node):
    return node.fused + sum(node.rejected.snapshot().values())


def test_labelled_fusion_equals_the_pure_core_and_floor_pixels_only_clear():
    graph, node, rec, feeder = start()
    conf = np.linspace(0.3, 1.0, 32 * 32, dtype=np.float32).reshape(32, 32)
    depth, labels = scene()
    good = [(T0 + k * NS_PER_S // 4, k * 0.05) for k in range(3)]     # overlapping views: the wall accumulates
    with graph:
        steps = [(stamp, yaw, stamp - 10_000_000) for stamp, yaw in good]        # odometry 10 ms before
        steps.append((T0 + 2 * NS_PER_S, 0.0, None))                             # odometry 1.25 s old: stale
        steps.append((T0 + 3 * NS_PER_S, float('nan'), T0 + 3 * NS_PER_S))       # NaN odometry
        for k, (stamp, yaw, odom_stamp) in enumerate(steps):
            if odom_stamp is not None:
                feeder.pubs['odom'].publish(conv.odometry_msg(odom_stamp, 'odom', 'base_link', (0.0, 0.0, 1.0), yaw))
                assert graph.wait_for(lambda: odom_stamp in node.poses.odometry_stamps, 5.0)
            feeder.frame(stamp, depth, conf, labels)
            assert graph.wait_for(lambda: handled(node) == k + 1, 10.0), node.stats()
        n_maps = len(rec.get('map'))
        assert graph.wait_for(lambda: len(rec.get('map')) > n_maps, 5.0)
    assert node.fused == 3
    rejected = node.rejected.snapshot()
    assert (rejected['stale'], rejected['non_finite'], rejected['no_segmentation']) == (1, 1, 0)

    cfg = GridConfig(resolution=0.1, width_m=8, height_m=8, origin=(-4, -4), pixel_stride=1)
    labelled, unlabelled = OccupancyGrid2D(cfg), OccupancyGrid2D(cfg)
    for _, yaw in good:
        T = camera_to_room((0.0, 0.0, 1.0), yaw)
        labelled.integrate(depth, CAM.K, T, conf, labels)
        unlabelled.integrate(depth, CAM.K, T, conf)
    data = np.asarray(rec.get('map')[-1][1].data, np.int8).reshape(80, 80)
    np.testing.assert_array_equal(data, labelled.occupancy_values())
    # the floor pixels' end points (0.6 m ahead, ~0.5 m high) are obstacles without labels, free with them
    xs, ys = labelled.cell_centers()
    near = np.hypot(xs, ys) < 1.0
    assert unlabelled.occupied_mask()[near].sum() > 5
    assert not (data[near] > 65).any() and (data[near & labelled.observed] < 50).all()
    far = np.abs(np.hypot(xs, ys) - 3.0) < 0.3
    assert (data[far] > 65).sum() > 10                                   # the wall is still mapped


def test_depth_waits_for_its_segmentation_and_is_dropped_without_it():
    graph, node, rec, feeder = start(queue_size=2, use_confidence=False)     # the segmentation is the companion
    depth, labels = scene()
    ones = np.ones((32, 32), np.float32)
    with graph:
        feeder.pubs['odom'].publish(conv.odometry_msg(T0, 'odom', 'base_link', (0, 0, 1), 0.0))
        assert graph.wait_for(lambda: len(node.poses.odometry_stamps) == 1, 5.0)
        feeder.frame(T0, depth, ones, labels, segmentation_first=False)     # depth, no labels yet
        graph.wait_for(lambda: False, 0.5)
        assert node.fused == 0 and handled(node) == 0
        header = conv.make_header(T0, 'audio_camera_optical')
        feeder.pubs['segmentation/image'].publish(conv.array_to_image(labels, 'mono8', header))
        assert graph.wait_for(lambda: node.fused == 1, 5.0)
        # three more depth images whose segmentation never comes: the oldest leaves the queue of 2, counted
        for k in range(1, 4):      # one at a time: the subscription's history (queue_size) must not drop them
            feeder.frame(T0 + k, depth, ones, labels, segmentation_first=False)
            assert graph.wait_for(lambda: T0 + k in node._pending_depth, 5.0)
        assert graph.wait_for(lambda: node.rejected.snapshot()['no_segmentation'] == 1, 5.0), node.stats()
        assert node.fused == 1 and node.rejected.snapshot()['no_confidence'] == 0


def test_a_segmentation_image_of_another_size_is_rejected_not_fused():
    graph, node, rec, feeder = start()
    depth, _ = scene()
    with graph:
        feeder.pubs['odom'].publish(conv.odometry_msg(T0, 'odom', 'base_link', (0, 0, 1), 0.0))
        assert graph.wait_for(lambda: len(node.poses.odometry_stamps) == 1, 5.0)
        feeder.frame(T0, depth, np.ones((32, 32), np.float32), np.zeros((16, 16), np.uint8))
        assert graph.wait_for(lambda: handled(node) == 1, 5.0)
    assert node.fused == 0 and node.rejected.snapshot()['bad_image'] == 1 and not node.grid.observed.any()
