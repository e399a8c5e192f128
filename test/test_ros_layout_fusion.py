# SPDX-License-Identifier: Apache-2.0
"""perception_node with a model that fuses the room over the drive, over real DDS (rclpy + Fast DDS): each window is
placed with the odometry at its end (nav_msgs/Odometry on odom + the mount), the images equal the offline pipeline's
given the same poses, and a stream without odometry is served window by window and reported."""
import os

import numpy as np
import pytest

rclpy = pytest.importorskip('rclpy', reason='needs rclpy + DDS: pip install -r requirements-ros.txt')
pytest.importorskip('nav_msgs', reason='needs nav_msgs: pip install -r requirements-ros.txt')
pytest.importorskip('visualization_msgs', reason='needs visualization_msgs: pip install -r requirements-ros.txt')

from nav_msgs.msg import Odometry  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402
from visualization_msgs.msg import Marker, MarkerArray  # noqa: E402

from audio_vision.core.features.config import FeatureConfig  # noqa: E402
from audio_vision.core.frames import planar_pose  # noqa: E402
from audio_vision.core.inference.pipeline import AudioToVision  # noqa: E402
from audio_vision.core.stream.windowing import NS_PER_S  # noqa: E402
from audio_vision.ros import conversions as conv  # noqa: E402
from audio_vision.ros.graph import Graph, TopicRecorder  # noqa: E402
from audio_vision.ros.perception_node import PerceptionNode  # noqa: E402
from audio_vision.simulation.config import ArrayConfig  # noqa: E402
from audio_vision.simulation.geometry import mic_positions  # noqa: E402
from audio_vision.sonar import CEILING, FLOOR, WALL, LayoutEstimator, Plane, SonarConfig  # noqa: E402
from audio_vision.sonar.fusion import DriveFusion  # noqa: E402
from audio_vision.sonar.render import plane_patches  # noqa: E402
from audio_vision.sonar.layout import horizontal  # noqa: E402
from audio_vision.sonar.synthetic import echo_recording  # noqa: E402
from helpers import write_tiny_models  # noqa: E402

pytestmark = pytest.mark.ros
DOMAIN = 94   # one ROS domain per test module
os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
MICS = mic_positions(ArrayConfig())
FS, WINDOW, CHUNK, WINDOWS = 16000, 4000, 500, 4       # tiny model: 0.25 s windows = one chirp period
BOX = [Plane(FLOOR, (0.0, 0.0, -1.0), 0.45, strength=0.9), Plane(CEILING, (0.0, 0.0, 1.0), 2.1, strength=0.8)] + [
    Plane(WALL, tuple(horizontal(az)), d, strength=0.9) for az, d in ((20.0, 1.3), (110.0, 2.0), (200.0, 1.7))]
T0 = 1_700_000_000 * NS_PER_S


def robot_pose(stamp_ns: int) -> tuple[float, float, float]:
    """(x, y, yaw) of base_link at a stamp: 0.4 m/s along x, turning slowly (keyframes every 0.3 m)."""
    t = (stamp_ns - T0) / NS_PER_S
    return 0.4 * t, 0.05 * t, 0.2 * t


@pytest.fixture(scope='module')
def model_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp('tiny_model_fusion')
    write_tiny_models(path, num_mics=len(MICS), mic_positions=MICS,
                      features=FeatureConfig(window_s=0.25, n_fft=256, n_mels=32, layout_prior='layout+reflectors',
                                             prior_size=32, layout_fusion=True))
    return path


@pytest.fixture(scope='module')
def audio():
    return echo_recording(SonarConfig(), MICS, BOX, order=2, periods=WINDOWS, phase_s=0.031, noise_rms=1e-4)


class Source(Node):
    def __init__(self, **kwargs):
        super().__init__('test_fusion_source', **kwargs)
        reliable = QoSProfile(depth=200, reliability=ReliabilityPolicy.RELIABLE)
        self.audio_pub = self.create_publisher(Image, 'audio/frames', reliable)
        self.odom_pub = self.create_publisher(Odometry, 'odom', reliable)


def stream(graph, node, rec, src, audio, odometry: bool):
    assert graph.wait_for(lambda: src.audio_pub.get_subscription_count() >= 1, 10.0)
    stamps = [T0 + k * NS_PER_S // FS for k in range(0, audio.shape[1] + 1, CHUNK)]
    if odometry:                           # the poses first: every window finds the one at its end
        assert graph.wait_for(lambda: src.odom_pub.get_subscription_count() >= 1, 10.0)
        for s in stamps:
            x, y, yaw = robot_pose(s)
            src.odom_pub.publish(conv.odometry_msg(s, 'odom', 'base_link', (x, y, 0.0), yaw))
        assert graph.wait_for(lambda: len(node.poses.odometry_stamps) == len(stamps), 10.0)
    for k in range(0, audio.shape[1], CHUNK):
        src.audio_pub.publish(conv.audio_to_msg(audio[:, k:k + CHUNK], T0 + k * NS_PER_S // FS, 'audio_array'))
        done = (k + CHUNK) // WINDOW
        if node.layout is not None and (k + CHUNK) % WINDOW == 0:    # a window completed: the layout queue takes
            assert graph.wait_for(lambda: node.layout_stats()['outputs'] == done, 30.0)    # each (none pushed out)
    assert graph.wait_for(lambda: rec.count('depth/image') >= WINDOWS and rec.count('segmentation/image') >= WINDOWS,
                          30.0), (rec.counts, node.stats())


def run_graph(model_dir, audio, odometry: bool, **params):
    graph = Graph(domain_id=DOMAIN)
    node = graph.add(PerceptionNode, {'model_dir': str(model_dir), 'input_qos_depth': 200, 'queue_size': 16,
                                      'publish_points': False, 'warmup': False, 'pose_source': 'odom', **params})
    rec = graph.add(TopicRecorder, topics={'depth/image': Image, 'segmentation/image': Image,
                                           'layout/planes': MarkerArray})
    src = graph.add(Source)
    graph.start()
    with graph:
        stream(graph, node, rec, src, audio, odometry)
        images = {}
        for topic in ('depth/image', 'segmentation/image'):
            for _, m in rec.get(topic):
                images.setdefault(conv.time_to_ns(m.header.stamp), {})[topic.split('/')[0]] = conv.image_to_array(m)
        if node.layout is not None:      # every window's layout is published
            assert graph.wait_for(lambda: rec.count('layout/planes') == WINDOWS, 30.0)
            images['planes'] = [m for _, m in rec.get('layout/planes')]
        keyframes = node.model.features.layout_prior.drive.keyframes
        return node.fusion_stats(), node.statistics.report(node.stats(), 'm', 'cpu')[:2], images, keyframes


def test_each_window_is_fused_with_the_odometry_at_its_end(model_dir, audio):
    mount = planar_pose(0.1, 0.0, 0.3, 0.0)                       # the array 0.1 m ahead of base_link, 0.3 m up
    stats, _, images, keyframes = run_graph(model_dir, audio, True, mount_xyz=[0.1, 0.0, 0.3], publish_layout=True)
    planes = images.pop('planes')
    assert stats['pose_source'] == 'odom' and stats['posed_windows'] == WINDOWS
    assert sum(stats['restarts'].values()) == 0
    # 0.1 m between windows, a keyframe every 0.3 m: the windows at 0.1 m and 0.4 m along the drive
    assert keyframes == 2
    # the offline pipeline given the same poses (odometry at each window's end, times the mount), in order
    with AudioToVision.load(model_dir) as model:
        for end in sorted(images):
            k = (end - T0) * FS // NS_PER_S
            x, y, yaw = robot_pose(end)
            expected = model.predict(audio[:, k - WINDOW:k], planar_pose(x, y, 0.0, yaw) @ mount, 0)
            np.testing.assert_array_equal(images[end]['segmentation'], expected['segmentation'])
            np.testing.assert_allclose(images[end]['depth'], expected['depth'], rtol=1e-5, atol=1e-5, equal_nan=True)

    # the layout topics show the fused room the model reads: the windows the layout queue took, fused in order with
    # the same poses, give the planes published
    drive, estimator, differs = DriveFusion(), LayoutEstimator(SonarConfig(), MICS), 0

    def labels(layout):         # each plane's label, confidence and where its slab is drawn (mm)
        return sorted((f'{q.label} {q.confidence:.2f}', *np.round(q.center, 3)) for q in plane_patches(layout))

    for msg in planes:
        end = conv.time_to_ns(msg.markers[0].header.stamp)
        k = (end - T0) * FS // NS_PER_S
        x, y, yaw = robot_pose(end)
        own = estimator.estimate(audio[:, k - WINDOW:k].astype(np.float64))
        fused = drive.fuse(own, planar_pose(x, y, 0.0, yaw) @ mount, 0)
        texts = sorted((m.text, *np.round([m.pose.position.x, m.pose.position.y, m.pose.position.z], 3))
                       for m in msg.markers if m.type == Marker.TEXT_VIEW_FACING)
        assert texts == labels(fused)
        differs += texts != labels(own)
    assert len(planes) == WINDOWS and differs          # not the windows' own rooms


def test_without_odometry_every_window_is_its_room_alone_and_reported(model_dir, audio):
    stats, (level, message), images, keyframes = run_graph(model_dir, audio, False)
    assert stats['posed_windows'] == 0 and stats['restarts']['pose_missing'] == WINDOWS and keyframes == 0
    assert level == 'WARN' and f'{WINDOWS} windows without a pose' in message
    with AudioToVision.load(model_dir) as model:
        for end, image in images.items():
            k = (end - T0) * FS // NS_PER_S
            np.testing.assert_array_equal(image['segmentation'], model.predict(audio[:, k - WINDOW:k])['segmentation'])
