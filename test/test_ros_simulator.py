# SPDX-License-Identifier: Apache-2.0
"""simulator_node -> perception_node on a real ROS graph, composed as the demo composes them."""
import os

import numpy as np
import pytest

rclpy = pytest.importorskip('rclpy', reason='needs rclpy + DDS: pip install -r requirements-ros.txt')

from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image  # noqa: E402

from audio_vision.core.frames import R_BODY_FROM_OPTICAL, quaternion_to_matrix  # noqa: E402
from audio_vision.core.stream.windowing import NS_PER_S  # noqa: E402
from audio_vision.paths import config_dir  # noqa: E402
from audio_vision.ros import conversions as conv  # noqa: E402
from audio_vision.ros.graph import Graph, TopicRecorder  # noqa: E402
from audio_vision.ros.lifecycle import StartupError  # noqa: E402
from audio_vision.ros.perception_node import PerceptionNode  # noqa: E402
from audio_vision.ros.simulator_node import SimulatorNode  # noqa: E402
from audio_vision.simulation.config import SimConfig  # noqa: E402
from audio_vision.simulation.simulator import Simulator  # noqa: E402
from helpers import write_tiny_models  # noqa: E402

pytestmark = pytest.mark.ros
DOMAIN = 62   # one ROS domain per test module
os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')

GT = {
    'ground_truth/depth/image': Image, 'ground_truth/depth/camera_info': CameraInfo,
    'ground_truth/segmentation/image': Image, 'ground_truth/segmentation/camera_info': CameraInfo,
    'ground_truth/segmentation/color': Image,
}
OUT = {'depth/image': Image, 'depth/camera_info': CameraInfo, 'segmentation/image': Image,
       'segmentation/color': Image, 'audio/frames': Image}


@pytest.fixture(scope='module')
def model_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp('tiny_model_8ch')
    write_tiny_models(path, num_mics=8)      # the simulator's array: 8 mics at 16 kHz
    return path


def test_simulated_stream_feeds_perception_in_real_time(model_dir):
    seed = 4242
    with Graph(domain_id=DOMAIN) as graph:
        # the same YAML files the demo and the launch file use, plus test overrides
        sim = graph.add(SimulatorNode, {'seed': seed, 'scene_period_s': 0.0, 'segment_s': 2.0})
        perception = graph.add(PerceptionNode, {'model_dir': str(model_dir), 'publish_points': False})
        rec = graph.add(TopicRecorder, topics={**GT, **OUT}, depth=200)
        graph.start()
        assert graph.wait_for(lambda: rec.count('depth/image') >= 9, 25.0), rec.counts
    # the graph has stopped: the counters are final and cover everything the recorder received
    stats, skipped = perception.stats(), sim.pacer.skipped
    published = sim.pacer.done - skipped

    # audio frames: the documented convention; stamps on the chunk grid. A busy machine may starve the
    # simulator's timer: the pacer then skips chunks (counted) and the skip is a stamp gap, never a shift.
    chunk = sim.params['chunk_samples']                   # config/simulator.yaml's
    chunk_ns = chunk * NS_PER_S // 16000
    assert chunk_ns * 16000 == chunk * NS_PER_S           # a whole number of ns: stamps exactly on the grid
    frames = [m for _, m in rec.get('audio/frames')]
    assert all((m.encoding, m.height, m.width, m.step, m.header.frame_id) ==
               ('32FC1', 8, chunk, 4 * chunk, 'audio_array') for m in frames)
    stamps = np.array([conv.time_to_ns(m.header.stamp) for m in frames])
    steps = np.diff(stamps)
    assert (steps > 0).all() and (steps % chunk_ns == 0).all(), steps
    assert (steps // chunk_ns - 1).sum() <= skipped, (steps, skipped)
    assert stats['invalid_frames'] == dict.fromkeys(stats['invalid_frames'], 0)
    # every stream reset the perception node counted has a missing chunk behind it
    assert {k: v for k, v in stats['stream_resets'].items() if k != 'gap'} == \
        dict.fromkeys(set(stats['stream_resets']) - {'gap'}, 0)
    assert stats['stream_resets']['gap'] <= skipped + published - stats['frames'], (stats, skipped, published)

    # ground truth of the held scene, equal to the offline simulator's
    offline = Simulator(SimConfig.from_yaml(config_dir() / 'simulation.yaml'))
    gt = offline.render(offline.sample_scene(seed))
    depth_msg = rec.get('ground_truth/depth/image')[-1][1]
    info_msg = rec.get('ground_truth/depth/camera_info')[-1][1]
    assert depth_msg.header == info_msg.header and depth_msg.header.frame_id == 'audio_camera_optical'
    np.testing.assert_array_equal(conv.image_to_array(depth_msg), gt.depth)
    np.testing.assert_array_equal(conv.image_to_array(rec.get('ground_truth/segmentation/image')[-1][1]),
                                  gt.segmentation)
    np.testing.assert_allclose(np.reshape(info_msg.k, (3, 3)), gt.K)
    color = rec.get('ground_truth/segmentation/color')[-1][1]
    assert (color.encoding, color.height, color.width) == ('rgb8', 64, 64)

    # predictions: one per hop (0.25 s) in stamp time, each stamped with its window's end. Windows the
    # node dropped (queue full) leave whole hops out; a stream reset restarts the hop grid.
    hop_ns = NS_PER_S // 4
    outs = rec.get('depth/image')
    out_stamps = np.array([conv.time_to_ns(m.header.stamp) for _, m in outs])
    out_steps = np.diff(out_stamps)
    assert (out_steps > 0).all(), out_steps
    off_grid = int(np.count_nonzero(out_steps % hop_ns))
    assert off_grid <= stats['stream_resets']['gap'], (out_steps, stats)
    missing_hops = int((out_steps[out_steps % hop_ns == 0] // hop_ns - 1).sum())
    assert missing_hops <= stats['dropped_windows'], (out_steps, stats)
    assert len(outs) <= stats['outputs'] and stats['windows'] >= stats['outputs'] + stats['dropped_windows']
    assert [conv.time_to_ns(m.header.stamp) for _, m in rec.get('depth/camera_info')][:len(outs)] == \
        list(out_stamps)[:len(rec.get('depth/camera_info'))]
    # output stamp = end of the analysis window: whole hops after the first sample of a frame that
    # (re)started the stream (the simulator's frames: the recorder may have joined after the first ones)
    window_ns = perception.model.window_samples * NS_PER_S // perception.model.sample_rate
    frame_starts = sim.start_ns + chunk_ns * np.arange(sim.pacer.done)
    assert set(stamps) <= set(frame_starts)
    for t in out_stamps:
        since = t - window_ns - frame_starts
        assert np.any((since >= 0) & (since % hop_ns == 0)), (t, stamps)


def test_scene_changes_publish_new_ground_truth(model_dir):
    with Graph(domain_id=DOMAIN) as graph:
        sim = graph.add(SimulatorNode, {'seed': 7, 'scene_period_s': 0.5, 'rate': 4.0, 'segment_s': 0.5,
                                        'ground_truth_period_s': 0.0})
        rec = graph.add(TopicRecorder, topics=GT, depth=50)
        graph.start()
        assert graph.wait_for(lambda: len(sim.scene_log) >= 3 and rec.count('ground_truth/depth/image') >= 3,
                              20.0), (len(sim.scene_log), rec.counts)
        log = list(sim.scene_log)
    assert [r.seed for r in log[:3]] == [7, 8, 9]
    starts = [r.start_index for r in log[:3]]
    assert starts[0] == 0 and all(b - a >= 8000 for a, b in zip(starts, starts[1:]))  # >= 0.5 s of audio
    msgs = [m for _, m in rec.get('ground_truth/depth/image')]
    # one GT publication per scene, stamped at the scene's first sample
    assert [conv.time_to_ns(m.header.stamp) for m in msgs[:3]] == [r.start_ns for r in log[:3]]
    depths = [conv.image_to_array(m) for m in msgs[:3]]
    assert not np.array_equal(depths[0], depths[1], equal_nan=True)


def test_static_tf_is_published_when_tf2_msgs_is_available():
    tf2_msgs = pytest.importorskip('tf2_msgs.msg',
                                   reason='needs tf2_msgs: a ROS 2 install (ros-$ROS_DISTRO-tf2-msgs)')
    qos = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                     durability=rclpy.qos.DurabilityPolicy.TRANSIENT_LOCAL)
    with Graph(domain_id=DOMAIN) as graph:
        graph.add(SimulatorNode, {'segment_s': 0.5})
        rec = graph.add(TopicRecorder, topics={'/tf_static': tf2_msgs.TFMessage}, qos=qos)
        graph.start()
        assert graph.wait_for(lambda: rec.get('/tf_static'), 10.0)
    t = rec.get('/tf_static')[0][1].transforms[0]
    assert (t.header.frame_id, t.child_frame_id) == ('audio_array', 'audio_camera_optical')
    r = t.transform.rotation
    np.testing.assert_allclose(quaternion_to_matrix((r.x, r.y, r.z, r.w)), R_BODY_FROM_OPTICAL, atol=1e-12)


@pytest.mark.parametrize('params, words', [
    ({'rate': 0.0}, ['rate', 'range']),
    ({'chunk_samples': 4}, ['chunk_samples', 'range']),
    ({'sim_config': '/nonexistent/simulation.yaml'}, ['sim_config', 'not found']),
])
def test_invalid_simulator_parameters_are_refused(params, words):
    with Graph(domain_id=DOMAIN) as graph:
        with pytest.raises(StartupError) as err:
            graph.add(SimulatorNode, params)
    for w in words:
        assert w in str(err.value), str(err.value)


def test_bad_sim_config_content_is_refused(tmp_path):
    bad = tmp_path / 'sim.yaml'
    bad.write_text('room:\n  lenght_range: [3, 4]\n')
    with Graph(domain_id=DOMAIN) as graph:
        with pytest.raises(StartupError, match='lenght_range'):
            graph.add(SimulatorNode, {'sim_config': str(bad)})
