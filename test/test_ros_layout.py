# SPDX-License-Identifier: Apache-2.0
"""layout/depth and layout/planes over real DDS (rclpy + Fast DDS): the sonar front-end in the graph, on exact
synthetic echoes of a known box, against the offline front-end on the same windows."""
import os

import numpy as np
import pytest

rclpy = pytest.importorskip('rclpy', reason='needs rclpy + DDS: pip install -r requirements-ros.txt')
pytest.importorskip('visualization_msgs', reason='needs visualization_msgs: pip install -r requirements-ros.txt')

from rclpy.node import Node  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402
from visualization_msgs.msg import Marker, MarkerArray  # noqa: E402

from audio_vision.core.camera import PinholeCamera  # noqa: E402
from audio_vision.core.classes import DEFAULT_CLASS_TABLE  # noqa: E402
from audio_vision.core.stream.windowing import NS_PER_S  # noqa: E402
from audio_vision.ros import conversions as conv  # noqa: E402
from audio_vision.ros.graph import Graph, TopicRecorder  # noqa: E402
from audio_vision.ros.lifecycle import StartupError  # noqa: E402
from audio_vision.ros.perception_node import PerceptionNode  # noqa: E402
from audio_vision.simulation.config import ArrayConfig  # noqa: E402
from audio_vision.simulation.geometry import mic_positions  # noqa: E402
from audio_vision.sonar import CEILING, FLOOR, WALL, LayoutEstimator, Plane, SonarConfig, render_layout  # noqa: E402
from audio_vision.sonar.layout import horizontal  # noqa: E402
from audio_vision.sonar.synthetic import echo_recording  # noqa: E402
from helpers import write_tiny_models  # noqa: E402

pytestmark = pytest.mark.ros
DOMAIN = 93   # one ROS domain per test module
os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
MICS = mic_positions(ArrayConfig())          # the default 8-mic array: the tiny model is trained "for" it
FS, CH, WINDOW, CHUNK = 16000, len(MICS), 4000, 500   # tiny model: 0.25 s windows = one chirp period
CFG = SonarConfig()                           # the built-in chirp (perception's sim_config '')
WALLS = ((20.0, 1.3), (110.0, 2.0), (200.0, 1.7), (290.0, 2.4))   # (azimuth deg, distance m)
BOX = [Plane(FLOOR, (0.0, 0.0, -1.0), 0.45, strength=0.9), Plane(CEILING, (0.0, 0.0, 1.0), 2.1, strength=0.8)] + [
    Plane(WALL, tuple(horizontal(az)), d, strength=0.9) for az, d in WALLS]
TOPICS = {'depth/image': Image, 'layout/depth': Image, 'layout/planes': MarkerArray}


@pytest.fixture(scope='module')
def model_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp('tiny_model_layout')
    write_tiny_models(path, num_mics=CH, mic_positions=MICS)
    return path


class FramePublisher(Node):
    def __init__(self, **kwargs):
        super().__init__('test_layout_frame_publisher', **kwargs)
        self.pub = self.create_publisher(Image, 'audio/frames',
                                         QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE))


def stream_and_wait(graph, node, rec, src, audio, t0, windows):
    """Publish ``audio`` as frames stamped from ``t0`` and wait until every window's image is out and each window is
    measured or counted as pushed out by a newer one (latest wins), with one layout/planes per measurement."""
    assert graph.wait_for(lambda: src.pub.get_subscription_count() >= 1
                          and node.layout.planes_pub.get_subscription_count() >= 1, 10.0)
    for k in range(0, audio.shape[1], CHUNK):
        src.pub.publish(conv.audio_to_msg(audio[:, k:k + CHUNK], t0 + k * NS_PER_S // FS, 'audio_array'))
    assert graph.wait_for(lambda: rec.count('depth/image') >= windows and node.layout_stats()['outputs']
                          + node.layout_stats()['dropped_windows'] == windows
                          and rec.count('layout/planes') == node.layout_stats()['outputs'], 30.0), \
        (rec.counts, node.stats())


def test_layout_topics_carry_the_measured_box_with_the_image_stamps(model_dir):
    windows = 3
    audio = echo_recording(CFG, MICS, BOX, order=2, periods=windows, phase_s=0.031, noise_rms=1e-4)
    t0 = 1_700_000_000 * NS_PER_S
    graph = Graph(domain_id=DOMAIN)
    node = graph.add(PerceptionNode, {'model_dir': str(model_dir), 'input_qos_depth': 200, 'queue_size': 16,
                                      'publish_layout': True, 'publish_points': False})
    rec = graph.add(TopicRecorder, topics=TOPICS)
    src = graph.add(FramePublisher)
    graph.start()
    with graph:
        stream_and_wait(graph, node, rec, src, audio, t0, windows)
        graph.wait_for(lambda: False, 0.3)
        stats = node.layout_stats()
        got = {name: [m for _, m in rec.get(name)] for name in TOPICS}
    assert stats['errors'] == 0 and stats['outputs'] >= 1
    assert node.layout.shared is None and stats['shared_with_features'] is False    # the model reads no prior
    assert len(got['layout/depth']) == len(got['layout/planes']) == stats['outputs']
    image_stamps = {conv.time_to_ns(m.header.stamp) for m in got['depth/image']}
    offline = LayoutEstimator(CFG, MICS)
    camera = PinholeCamera(32, 32, 90.0)                      # the tiny model's camera
    for depth_msg, planes_msg in zip(got['layout/depth'], got['layout/planes']):
        stamp = conv.time_to_ns(depth_msg.header.stamp)
        assert stamp in image_stamps                          # the same header as the images of that window
        assert conv.time_to_ns(planes_msg.markers[0].header.stamp) == stamp
        assert depth_msg.header.frame_id == 'audio_camera_optical' and depth_msg.encoding == '32FC1'
        assert planes_msg.markers[0].header.frame_id == 'audio_array'
        assert planes_msg.markers[0].action == Marker.DELETEALL
        end = (stamp - t0) * FS // NS_PER_S
        expected = offline.estimate(audio[:, end - WINDOW:end])
        want = render_layout(expected, camera, DEFAULT_CLASS_TABLE)
        np.testing.assert_allclose(conv.image_to_array(depth_msg), want.depth, rtol=1e-6, equal_nan=True)
        cubes = {m.text.split()[0]: [] for m in planes_msg.markers if m.type == Marker.TEXT_VIEW_FACING}
        for cube, text in zip(planes_msg.markers[1::2], planes_msg.markers[2::2]):
            assert cube.type == Marker.CUBE
            cubes[text.text.split()[0]].append(cube)
        assert len(cubes['floor']) == len(cubes['ceiling']) == 1
        assert len(cubes['wall']) == len(expected.get(WALL)) >= 2     # the walls the front-end measured
        assert abs(cubes['floor'][0].pose.position.z + 0.45) < 0.01
        assert abs(cubes['ceiling'][0].pose.position.z - 2.1) < 0.01
        # the floor's slab spans the box the walls bound (a wall 1.3 m away at 20 deg, the opposite 1.7 m)
        assert cubes['floor'][0].scale.x == pytest.approx(3.0, abs=0.05) or \
            cubes['floor'][0].scale.y == pytest.approx(3.0, abs=0.05)


def test_layout_is_refused_for_a_window_shorter_than_a_chirp_period(tmp_path):
    from audio_vision.core.features.config import FeatureConfig
    write_tiny_models(tmp_path, num_mics=CH, mic_positions=MICS,
                      features=FeatureConfig(window_s=0.125, n_fft=256, n_mels=32, echo=False,
                                             direction_maps=False))
    with Graph(domain_id=DOMAIN) as graph:
        with pytest.raises(StartupError, match='shorter than one chirp period'):
            graph.add(PerceptionNode, {'model_dir': str(tmp_path), 'publish_layout': True})


def test_layout_equalises_a_calibrated_speaker_and_refuses_a_missing_or_foreign_calibration(model_dir, tmp_path):
    import dataclasses

    from audio_vision.sonar.calibration import measure_speaker
    from audio_vision.sonar.echoes import MatchedFilter
    speaker = ((500.0, -12.0), (2500.0, 8.0), (7500.0, -10.0))
    cal = measure_speaker(CFG, MICS, [echo_recording(CFG, MICS, [], order=0, speaker_response_db=speaker)])
    good = cal.save(tmp_path / 'speaker.npz')
    foreign = dataclasses.replace(cal, sample_rate=48000).save(tmp_path / 'foreign.npz')
    with Graph(domain_id=DOMAIN) as graph:
        node = graph.add(PerceptionNode, {'model_dir': str(model_dir), 'publish_layout': True,
                                          'sonar_calibration': str(good)})
        assert not np.allclose(node.layout.estimator.matched_filter.filter, MatchedFilter(CFG).filter)
        with pytest.raises(StartupError, match="sonar_calibration.*does not exist.*audio_vision calibrate"):
            graph.add(PerceptionNode, {'model_dir': str(model_dir), 'publish_layout': True,
                                       'sonar_calibration': str(tmp_path / 'missing.npz')})
        with pytest.raises(StartupError, match='48000 Hz.*calibrate again'):
            graph.add(PerceptionNode, {'model_dir': str(model_dir), 'publish_layout': True,
                                       'sonar_calibration': str(foreign)})


def test_a_model_reading_the_layout_prior_shares_its_measurements_with_the_layout_topics(tmp_path):
    """The model's features measure each window's room already: the layout topics get those measurements, and the
    front-end runs once per window (it ran twice before), with the same layout as the offline front-end."""
    from audio_vision.core.features.config import FeatureConfig
    write_tiny_models(tmp_path, num_mics=CH, mic_positions=MICS,
                      features=FeatureConfig(window_s=0.25, n_fft=256, n_mels=32, layout_prior='layout+reflectors',
                                             prior_size=32))
    windows = 3                                     # <= the shared measurements kept: none forgotten before use
    audio = echo_recording(CFG, MICS, BOX, order=2, periods=windows, phase_s=0.031, noise_rms=1e-4)
    t0 = 1_700_000_000 * NS_PER_S
    graph = Graph(domain_id=DOMAIN)
    node = graph.add(PerceptionNode, {'model_dir': str(tmp_path), 'input_qos_depth': 200, 'queue_size': 16,
                                      'publish_layout': True, 'publish_points': False, 'warmup': False})
    rec = graph.add(TopicRecorder, topics=TOPICS)
    src = graph.add(FramePublisher)
    graph.start()
    with graph:
        shared = node.layout.shared
        assert shared is not None and node.layout_stats()['shared_with_features'] is True
        stream_and_wait(graph, node, rec, src, audio, t0, windows)
        stats = node.layout_stats()
        got = [m for _, m in rec.get('layout/planes')]
    assert rec.count('depth/image') == windows and stats['errors'] == 0
    # every window measured once, by whichever path asked first; the others' requests were answered from it: the layout
    # topics' and, with both modalities, the step that stands the bodies on the floor (once per window)
    assert shared.measured == windows
    assert shared.shared == stats['outputs'] + windows
    offline = LayoutEstimator(CFG, MICS)
    for planes_msg in got:
        end = (conv.time_to_ns(planes_msg.markers[0].header.stamp) - t0) * FS // NS_PER_S
        expected = offline.estimate(audio[:, end - WINDOW:end])
        texts = sorted(m.text.split()[0] for m in planes_msg.markers if m.type == Marker.TEXT_VIEW_FACING)
        assert texts == sorted(p.label for p in expected.planes)
