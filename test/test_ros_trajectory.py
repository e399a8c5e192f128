# SPDX-License-Identifier: Apache-2.0
"""simulator_node in trajectory mode on a real ROS graph: odometry follows the drive, ground truth follows the pose."""
import math
import os

import numpy as np
import pytest
import yaml

rclpy = pytest.importorskip('rclpy', reason='needs rclpy + DDS: pip install -r requirements-ros.txt')
nav_msgs = pytest.importorskip('nav_msgs', reason='needs nav_msgs: pip install -r requirements-ros.txt')

from nav_msgs.msg import Odometry  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402

from audio_vision.core.stream.windowing import NS_PER_S  # noqa: E402
from audio_vision.paths import config_dir  # noqa: E402
from audio_vision.ros import conversions as conv  # noqa: E402
from audio_vision.ros.graph import Graph, TopicRecorder  # noqa: E402
from audio_vision.ros.simulator_node import SimulatorNode  # noqa: E402
from audio_vision.simulation.config import SimConfig  # noqa: E402
from audio_vision.simulation.simulator import Simulator  # noqa: E402
from audio_vision.simulation.trajectory import MAX_SPEED, TrajectoryDrive  # noqa: E402

pytestmark = pytest.mark.ros
DOMAIN = 91   # one ROS domain per test module
os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
SEED = 77


@pytest.fixture(scope='module')
def small_room_config(tmp_path_factory):
    """The shipped simulation config in a small room, so one lap (the simulated loop) is short."""
    cfg = yaml.safe_load((config_dir() / 'simulation.yaml').read_text())
    cfg['room']['length_range'] = [3.0, 3.2]
    cfg['room']['width_range'] = [3.0, 3.2]
    path = tmp_path_factory.mktemp('traj') / 'small_room.yaml'
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_odometry_and_ground_truth_follow_the_drive(small_room_config):
    with Graph(domain_id=DOMAIN) as graph:
        sim = graph.add(SimulatorNode, {'seed': SEED, 'sim_config': str(small_room_config), 'trajectory': True,
                                        'segment_s': 1.0, 'trajectory_update_s': 0.5, 'rate': 4.0,
                                        'ground_truth_period_s': 0.5})
        rec = graph.add(TopicRecorder, topics={'odom': Odometry, 'audio/frames': Image,
                                               'ground_truth/depth/image': Image}, depth=500)
        graph.start()
        assert graph.wait_for(lambda: rec.count('odom') >= 40 and rec.count('ground_truth/depth/image') >= 3,
                              40.0), rec.counts
    start_ns = sim.start_ns
    offline = TrajectoryDrive.sample(Simulator(SimConfig.from_yaml(small_room_config)), SEED, 1.0)
    n_loop = sim.current.audio.shape[1]
    frames = {conv.time_to_ns(m.header.stamp) for _, m in rec.get('audio/frames')}
    odoms = [m for _, m in rec.get('odom')]
    assert all(m.header.frame_id == 'odom' and m.child_frame_id == 'base_link' for m in odoms)
    stamps = [conv.time_to_ns(m.header.stamp) for m in odoms]
    assert set(stamps) <= frames and stamps == sorted(stamps)     # one pose per audio frame, same stamp
    xy = []
    for m, stamp in zip(odoms, stamps):
        index = (stamp - start_ns) * 16000 // NS_PER_S
        want = offline.trajectory.pose_at((index % n_loop) / 16000)
        p = m.pose.pose
        assert (p.position.x, p.position.y) == pytest.approx((want.x, want.y), abs=1e-6)
        assert 2 * math.atan2(p.orientation.z, p.orientation.w) == pytest.approx(want.yaw, abs=1e-6)
        assert p.position.z == pytest.approx(offline.scene.robot_position[2])
        assert m.twist.twist.linear.x == pytest.approx(want.v)
        xy.append((p.position.x, p.position.y))
    xy, t = np.array(xy), np.array(stamps) / NS_PER_S
    speed = np.linalg.norm(np.diff(xy, axis=0), axis=1) / np.diff(t)
    assert speed.max() <= MAX_SPEED * 1.01 and np.linalg.norm(xy[-1] - xy[0]) > 0.1     # it moves, not too fast
    # ground truth rendered at the pose of its stamp
    for _, msg in rec.get('ground_truth/depth/image')[-2:]:
        index = (conv.time_to_ns(msg.header.stamp) - start_ns) * 16000 // NS_PER_S
        want = offline.render_at((index % n_loop) / 16000)
        np.testing.assert_allclose(conv.image_to_array(msg), want.depth, rtol=1e-6)
