# SPDX-License-Identifier: Apache-2.0
"""Replay behaves like live. (1) Bags carry the QoS the live nodes offer (read back from the bag's
metadata.yaml and compared with the publishers of a real simulator_node and audio_capture_node).
(2) Replay on simulated time: a bag recorded in 2001 played with /clock (BagPlayer ``clock: true``, and
``python -m audio_vision replay --clock``) into a perception node with ``use_sim_time: true``. The node's
clock follows the bag, its outputs carry the bag's stamps, and its latency statistics (window end ->
publish, on the node clock) are small and never negative; on the wall clock they would be 25 years."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

pytest.importorskip('rclpy', reason='needs rclpy + DDS: pip install -r requirements-ros.txt')

from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from rclpy.clock import ClockType  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402

from audio_vision.bag.record import simulated_segments, write_segments  # noqa: E402
from audio_vision.ros import conversions as conv  # noqa: E402
from audio_vision.ros.audio_capture_node import AudioCaptureNode  # noqa: E402
from audio_vision.ros.bag_player import BagPlayer  # noqa: E402
from audio_vision.ros.graph import Graph, TopicRecorder  # noqa: E402
from audio_vision.ros.perception_node import PerceptionNode  # noqa: E402
from audio_vision.ros.simulator_node import SimulatorNode  # noqa: E402
from audio_vision.simulation.simulator import Simulator  # noqa: E402
from helpers import write_tiny_models  # noqa: E402

pytestmark = pytest.mark.ros
DOMAIN = 86   # one ROS domain per test module
os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
ROOT = Path(__file__).resolve().parents[1]
NS = 1_000_000_000
START = 1_000_000_000 * NS       # 2001-09-09: far from the wall clock
DURATION_S = 2.5


@pytest.fixture(scope='module')
def model_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp('tiny_model')
    write_tiny_models(path, num_mics=8)
    return path


@pytest.fixture(scope='module')
def bag(tmp_path_factory):
    sim = Simulator()
    path = tmp_path_factory.mktemp('simtime') / 'bag'
    summary = write_segments(path, simulated_segments(sim, [DURATION_S], 3), sim.sample_rate, start_ns=START)
    return path, summary


def offered_qos(metadata_file: Path) -> dict:
    """Map topic -> [offered QoS (dict of the policies that matter for matching)] from a bag's metadata.yaml."""
    info = yaml.safe_load(metadata_file.read_text())['rosbag2_bagfile_information']
    return {t['topic_metadata']['name']: [{k: q[k] for k in ('reliability', 'durability', 'history', 'depth')}
                                          for q in t['topic_metadata']['offered_qos_profiles']]
            for t in info['topics_with_message_count']}


def live_qos(publisher) -> dict:
    q = publisher.qos_profile
    return {'reliability': q.reliability.name.lower(), 'durability': q.durability.name.lower(),
            'history': q.history.name.lower(), 'depth': q.depth}


def test_recorded_bag_offers_the_live_nodes_qos(bag, tmp_path):
    """Every topic the simulator publishes is in the bag, with the QoS its publisher offers live."""
    soundfile = pytest.importorskip('soundfile')
    wav = tmp_path / 'array.wav'
    soundfile.write(wav, np.zeros((1600, 8), np.float32), 16000)
    recorded = offered_qos(bag[0] / 'metadata.yaml')
    with Graph(domain_id=DOMAIN) as graph:      # built, never spun: nothing is published
        sim = graph.add(SimulatorNode, {'segment_s': 0.25, 'publish_tf': False}, namespace='qos_probe')
        cap = graph.add(AudioCaptureNode, {'source': 'wav', 'wav_path': str(wav), 'channels': 0,
                                           'sample_rate': 0}, namespace='qos_probe')
        live = {}
        for pub in sim.publishers:          # everything it publishes (with tf2_msgs: /tf_static too)
            if pub.topic_name not in ('/rosout', '/parameter_events'):
                live[pub.topic_name.removeprefix('/qos_probe')] = live_qos(pub)
        assert '/ground_truth/segmentation/color' in live
        assert live_qos(cap.pub) == live['/audio/frames']
    assert set(live) <= set(recorded), set(live) - set(recorded)
    for topic, qos in live.items():
        assert recorded[topic] == [qos], topic
    assert recorded['/tf_static'] == [{'reliability': 'reliable', 'durability': 'transient_local',
                                       'history': 'keep_last', 'depth': 1}]


def perception_graph(model_dir):
    graph = Graph(domain_id=DOMAIN)
    node = graph.add(PerceptionNode, {'model_dir': str(model_dir), 'use_sim_time': True, 'queue_size': 64,
                                      'input_qos_depth': 200, 'qos_depth': 100, 'publish_points': False,
                                      'diagnostics_period_s': 0.5})
    rec = graph.add(TopicRecorder, topics={'depth/image': Image, '/diagnostics': DiagnosticArray}, depth=200)
    return graph, node, rec


def check_on_bag_time(node, rec, summary):
    end = summary.end_ns
    assert node.get_clock().clock_type == ClockType.ROS_TIME and node.get_clock().ros_time_is_active
    assert START <= node.get_clock().now().nanoseconds <= end + NS
    stamps = [conv.time_to_ns(m.header.stamp) for _, m in rec.get('depth/image')]
    assert stamps and all(START < s <= end for s in stamps), stamps
    # the latency samples themselves: window end -> publish on the node's (simulated) clock
    values = list(node.statistics.output_latency._values)
    assert len(values) == node.statistics.outputs.total
    assert min(values) >= 0.0 and max(values) < DURATION_S, values
    diag = [m for _, m in rec.get('/diagnostics') if any('perception' in s.name for s in m.status)]
    assert diag and all(START <= conv.time_to_ns(m.header.stamp) <= end + NS for m in diag)
    # diagnostic_updater-shaped output topic status, on the same (simulated) clock
    topic = [st for m in diag for st in m.status if st.name == 'perception_node: /depth/image topic status']
    assert topic and all(st.hardware_id == 'audio_array' for st in topic)
    seen = [st for st in topic if {kv.key: kv.value for kv in st.values}['Events in window'] != '0']
    assert seen, [st.message for st in topic]
    for st in seen:
        v = {kv.key: float(kv.value) for kv in st.values}
        assert 0.0 <= v['Earliest timestamp delay:'] <= v['Latest timestamp delay:'] < DURATION_S
        assert v['Events since startup'] <= node.statistics.outputs.total


def test_bag_player_clock_drives_perception_on_sim_time(bag, model_dir):
    path, summary = bag
    graph, node, rec = perception_graph(model_dir)
    with graph:
        player = graph.add(BagPlayer, {'bag': str(path), 'clock': True, 'autostart': False, 'delay_s': 0.0},
                           params_file=None)
        graph.start()
        assert graph.wait_for(lambda: node.sub.get_publisher_count() >= 1
                              and player.clock_pub.get_subscription_count() >= 1, 15.0)
        assert node.get_clock().now().nanoseconds == 0      # no /clock yet: simulated time has not started
        player.play()
        assert player.wait(60.0) and player.error is None
        windows = node.statistics.windows
        assert windows >= 1
        assert graph.wait_for(lambda: node.statistics.outputs.total >= windows and rec.count('/diagnostics') >= 2, 30.0)
        assert player._clock_ns == max(m.log_time_ns for m in player.reader.messages(list(player.channels)))
        check_on_bag_time(node, rec, summary)


def test_the_clock_never_runs_past_a_message_not_yet_published(bag):
    """On a busy machine the play thread may publish a message after its due time; the /clock timer, which runs the
    clock on with the wall clock between messages, stops at that message's time instead of running past it (the
    bag's last message would otherwise not be the clock's end)."""
    import time
    path, _ = bag
    graph = Graph(domain_id=DOMAIN)
    with graph:
        player = graph.add(BagPlayer, {'bag': str(path), 'clock': True, 'autostart': False, 'delay_s': 0.0},
                           params_file=None)
        first = START
        player._position = (first, time.monotonic() - 10.0, 1.0, first + 5_000_000)    # 10 s late, next at +5 ms
        player._tick_clock()
        assert player._clock_ns == first + 5_000_000
        player._position = (first, time.monotonic() - 0.001, 1.0, first + NS)           # on time: the wall clock
        player._tick_clock()
        assert player._clock_ns == first + 5_000_000                                   # never backwards


def test_replay_command_publishes_clock(bag, model_dir):
    path, summary = bag
    graph, node, rec = perception_graph(model_dir)
    with graph:
        graph.start()
        env = dict(os.environ, PYTHONUNBUFFERED='1')
        proc = subprocess.run([sys.executable, '-m', 'audio_vision', 'replay', str(path), '--clock',
                               '--domain-id', str(DOMAIN), '--wait-for', '/audio/frames'],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert graph.wait_for(lambda: node.statistics.windows >= 1
                              and node.statistics.outputs.total >= node.statistics.windows, 30.0)
        check_on_bag_time(node, rec, summary)
