# SPDX-License-Identifier: Apache-2.0
"""simulator_node: a simulated microphone array with a co-located camera, for demos and tests.

Publishes the array's audio on ``audio/frames`` (the audio-frame convention: 32FC1 Image, height =
channels, width = samples, stamp = first sample, frame = the array frame) in chunks, paced in real time
(or ``rate`` x real time), and the ground truth of the current scene on ``ground_truth/depth/image``
(+ ``camera_info``) and ``ground_truth/segmentation/image`` (+ ``camera_info``, ``color``), reliable and
transient-local so late subscribers (RViz) get the current scene at once. Also the static TF
array -> camera optical frame on ``/tf_static`` when ``tf2_msgs`` is importable.

One scene (``seed``) is held, or with ``scene_period_s`` > 0 a new random scene (seed + 1, + 2, ...) is
switched in every ``scene_period_s`` of audio time; the next scene is simulated on a background thread
while the current one streams. Each scene's audio is ``segment_s`` of steady-state recording, looped.
Stamps are audio time: ``t_start + sample_index / sample_rate``; at ``rate`` != 1 they run faster or
slower than the wall clock (for tests and benchmarks, not for RViz).
"""
from __future__ import annotations

import collections
import threading
import time
from dataclasses import dataclass

import numpy as np
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image

from audio_vision.core.classes import DEFAULT_CLASS_TABLE
from audio_vision.core.stream.windowing import NS_PER_S
from audio_vision.paths import config_dir
from audio_vision.ros import conversions as conv
from audio_vision.ros.lifecycle import ShellNode, StartupError, run_node
from audio_vision.ros.parameters import Param, declare_parameters
from audio_vision.runtime.pacing import ChunkPacer, PacedLoop

NODE_NAME = 'simulator_node'

PARAMS = [
    Param('sim_config', str(config_dir() / 'simulation.yaml'),
          "simulator configuration (SimConfig YAML); '' = built-in defaults"),
    Param('seed', 1000, 'seed of the first scene; scene k uses seed + k', range=(0, 2**31 - 1)),
    Param('scene_period_s', 0.0, 'audio time between scene changes in seconds; 0 = hold one scene',
          range=(0.0, 86400.0)),
    Param('rate', 1.0, 'playback speed relative to real time', range=(0.01, 100.0)),
    Param('chunk_samples', 1000, 'samples per audio frame; a divisor of the model\'s hop (4000 at 16 kHz) means no '
                                 'window waits for the rest of a frame', range=(16, 65536)),
    Param('segment_s', 10.0, 'seconds of audio simulated per scene (looped when the scene lasts longer)',
          range=(0.25, 600.0)),
    Param('array_frame_id', 'audio_array', 'frame_id of audio/frames (the array frame)'),
    Param('camera_frame_id', 'audio_camera_optical', 'frame_id of the ground truth (optical frame)'),
    Param('qos_depth', 10, 'history depth of the publishers', range=(1, 1000)),
    Param('publish_tf', True, 'publish the static TF array -> camera optical frame on /tf_static'),
    Param('trajectory', False, 'drive the robot along a smooth closed path through the room (trajectory mode): '
                               'the audio and ground truth follow the pose, published on odom (+ TF)'),
    Param('trajectory_update_s', 0.25, 'trajectory mode: room response updated every this many seconds',
          range=(0.01, 10.0)),
    Param('odom_frame_id', 'odom', 'trajectory mode: frame of the odometry (the room frame)'),
    Param('base_frame_id', 'base_link', 'trajectory mode: robot frame (the array is mounted above it)'),
    Param('ground_truth_period_s', 1.0, 'republish the ground truth every this many seconds of audio '
                                        'time; 0 = only when the scene changes', range=(0.0, 3600.0)),
]


@dataclass
class SceneRecord:
    """One simulated scene as streamed from stream index ``start_index``, stamped ``start_ns``."""

    seed: int
    audio: np.ndarray | None   # (C, N) float32, looped; None once the scene has been streamed
    gt: object                 # simulation GroundTruth (depth, segmentation, K, camera_pose)
    start_index: int = 0
    start_ns: int | None = None
    room_size: tuple[float, float, float] | None = None   # m, the room's [0, L] x [0, W] x [0, H]


def load_simulator(path: str):
    from audio_vision.simulation.config import SimConfig
    from audio_vision.simulation.simulator import Simulator
    try:
        cfg = SimConfig.from_yaml(path) if path else SimConfig()
    except FileNotFoundError:
        raise StartupError(f"parameter 'sim_config': file {path} not found") from None
    except (ValueError, TypeError, OSError) as exc:
        raise StartupError(f"parameter 'sim_config': {path}: {exc}") from None
    return Simulator(cfg)


class SimulatorNode(ShellNode):

    def __init__(self, **kwargs):
        super().__init__(NODE_NAME, **kwargs)

    def _setup(self):
        p = self.params = declare_parameters(self, PARAMS)
        self.sim = load_simulator(p['sim_config'])
        self.sample_rate = int(self.sim.sample_rate)
        self.class_table = getattr(self.sim, 'class_table', DEFAULT_CLASS_TABLE)
        # the scenes streamed so far, in order (the newest 1000; only the current one keeps its audio)
        self.scene_log: collections.deque[SceneRecord] = collections.deque(maxlen=1000)
        self._lock = threading.Lock()
        self._next: SceneRecord | None = None

        qos = QoSProfile(depth=p['qos_depth'], reliability=ReliabilityPolicy.RELIABLE)
        latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.audio_pub = self.create_publisher(Image, 'audio/frames', qos)
        self.gt_pubs = {
            'depth': self.create_publisher(Image, 'ground_truth/depth/image', latched),
            'depth_info': self.create_publisher(CameraInfo, 'ground_truth/depth/camera_info', latched),
            'seg': self.create_publisher(Image, 'ground_truth/segmentation/image', latched),
            'seg_info': self.create_publisher(CameraInfo, 'ground_truth/segmentation/camera_info', latched),
            'seg_color': self.create_publisher(Image, 'ground_truth/segmentation/color', latched),
        }
        self.odom_pub = self.tf_dyn_pub = None
        if p['trajectory']:
            from nav_msgs.msg import Odometry
            self.odom_pub = self.create_publisher(Odometry, 'odom', qos)
            try:                            # TF odom -> base_link where tf2_msgs is importable
                from tf2_msgs.msg import TFMessage
                self._tf_message = TFMessage
                self.tf_dyn_pub = self.create_publisher(TFMessage, '/tf', QoSProfile(
                    depth=100, reliability=ReliabilityPolicy.RELIABLE))
            except ImportError:
                self.get_logger().info('tf2_msgs is not available: the pose goes on odom only, not on /tf')
        if p['publish_tf']:
            self._publish_static_tf()

        self.current = self._simulate(p['seed'])
        self._scene_index = 0
        self.scene_log.append(self.current)
        self._switch_at = self._samples(p['scene_period_s'])   # stream index of the next scene change
        self._gt_every = self._samples(p['ground_truth_period_s'])
        self._gt_due = 0
        if self._switch_at:
            self._prepare_next()

        self.pacer = ChunkPacer(self.sample_rate, p['chunk_samples'], p['rate'])
        self.start_ns: int | None = None        # stamp of stream index 0, set when streaming starts
        # each chunk is published at the instant its last sample is "captured" by a thread that sleeps until
        # then (a polling timer added up to its period of latency); it starts with the executor's first spin
        self.timer = PacedLoop(self.pacer, self.tick, 'simulator_stream', self.get_logger(), self.context)
        self._starter = self.create_timer(0.001, self._start_streaming)
        self.get_logger().info(
            f'simulating {self.sim.num_channels} mics @ {self.sample_rate} Hz, scene seed {p["seed"]}'
            + (f', new scene every {p["scene_period_s"]:g} s' if self._switch_at else ' (held)')
            + f', chunks of {p["chunk_samples"]} at {p["rate"]:g}x real time')

    def _start_streaming(self) -> None:
        self._starter.cancel()
        self.timer.start()

    def destroy_node(self):
        if getattr(self, 'timer', None) is not None:
            self.timer.cancel()                 # no tick publishes on a destroyed publisher
        return super().destroy_node()

    def _samples(self, seconds: float) -> int:
        return int(round(seconds * self.sample_rate))

    # ------------------------------------------------------------ scenes

    def _simulate(self, seed: int) -> SceneRecord:
        if self.params['trajectory']:
            from audio_vision.simulation.trajectory import TrajectoryDrive
            drive = TrajectoryDrive.sample(self.sim, seed, 1.0)
            drive.duration_s = TrajectoryDrive.laps_duration(drive.trajectory, self.params['segment_s'])
            audio = drive.record_loop(self.params['trajectory_update_s'])
            return SceneRecord(seed, np.ascontiguousarray(audio, np.float32), drive,
                               room_size=tuple(drive.scene.room.size))
        scene = self.sim.sample_scene(seed)
        gt = self.sim.render(scene)
        audio = np.ascontiguousarray(self.sim.record(scene, self.params['segment_s'], seed), np.float32)
        return SceneRecord(seed, audio, gt, room_size=tuple(scene.room.size))

    def _prepare_next(self):
        seed = self.params['seed'] + self._scene_index + 1

        def work():
            try:
                record = self._simulate(seed)
            except Exception as exc:  # noqa: BLE001 - keep streaming the current scene
                self.get_logger().error(f'simulating scene {seed} failed: {type(exc).__name__}: {exc}')
                return
            with self._lock:
                self._next = record
        threading.Thread(target=work, name='simulate_next_scene', daemon=True).start()

    def _maybe_switch(self, index: int) -> None:
        if not self._switch_at or index < self._switch_at:
            return
        with self._lock:
            record, self._next = self._next, None
        if record is None:
            return  # still simulating: keep streaming the current scene, switch as soon as it is ready
        record.start_index, record.start_ns = index, self._stamp(index)
        self.current.audio = None        # streamed: only the ground truth stays in the log
        self.current = record
        self._scene_index += 1
        self.scene_log.append(record)
        self._switch_at = index + self._samples(self.params['scene_period_s'])
        self._gt_due = index
        self.get_logger().info(f'scene {self._scene_index}: seed {record.seed}')
        self._prepare_next()

    # ------------------------------------------------------------ streaming

    def _stamp(self, index: int) -> int:
        return self.start_ns + index * NS_PER_S // self.sample_rate

    def tick(self) -> None:
        now = time.monotonic()
        if self.start_ns is None:
            # stamps start with the pacing, so a chunk is published when its last sample is "captured"
            self.start_ns = self.current.start_ns = self.get_clock().now().nanoseconds
        for index in self.pacer.due(now):
            self._maybe_switch(index)
            if index >= self._gt_due:
                self.publish_ground_truth(self._stamp(index))
                self._gt_due = index + self._gt_every if self._gt_every else float('inf')
            self.audio_pub.publish(conv.audio_to_msg(self._chunk(index), self._stamp(index),
                                                     self.params['array_frame_id']))
            if self.odom_pub is not None:
                self.publish_pose(index)

    def _chunk(self, index: int) -> np.ndarray:
        audio = self.current.audio
        n = self.pacer.chunk
        start = (index - self.current.start_index) % audio.shape[1]
        if start + n <= audio.shape[1]:
            return audio[:, start:start + n]
        return np.take(audio, np.arange(start, start + n), axis=1, mode='wrap')

    def drive_time(self, index: int) -> float:
        """Trajectory mode: time along the current drive of stream index ``index`` (wraps with the audio loop)."""
        return ((index - self.current.start_index) % self.current.audio.shape[1]) / self.sample_rate

    def publish_pose(self, index: int) -> None:
        """Trajectory mode: the robot pose at stream index ``index`` on ``odom`` and TF odom -> base_link.
        base_link is the array centre's footprint lifted to the array height (base_link -> array: identity)."""
        drive, stamp = self.current.gt, self._stamp(index)
        pose = drive.trajectory.pose_at(self.drive_time(index))
        odom = conv.odometry_msg(stamp, self.params['odom_frame_id'], self.params['base_frame_id'],
                                 (pose.x, pose.y, drive.scene.robot_position[2]), pose.yaw, pose.v, pose.omega)
        self.odom_pub.publish(odom)
        if self.tf_dyn_pub is not None:
            self.tf_dyn_pub.publish(self._tf_message(transforms=[conv.odometry_to_transform(odom)]))

    def publish_ground_truth(self, stamp_ns: int) -> None:
        gt = self.current.gt
        if self.params['trajectory']:      # the drive: render at the current pose
            index = (stamp_ns - self.start_ns) * self.sample_rate // NS_PER_S
            gt = gt.render_at(self.drive_time(index))
        header = conv.make_header(stamp_ns, self.params['camera_frame_id'])
        depth = np.asarray(gt.depth, np.float32)
        labels = np.asarray(gt.segmentation, np.uint8)
        info = conv.camera_info_msg(gt.K, depth.shape[1], depth.shape[0], header)
        self.gt_pubs['depth'].publish(conv.array_to_image(depth, '32FC1', header))
        self.gt_pubs['depth_info'].publish(info)
        self.gt_pubs['seg'].publish(conv.array_to_image(labels, 'mono8', header))
        self.gt_pubs['seg_info'].publish(info)
        self.gt_pubs['seg_color'].publish(conv.array_to_image(self.class_table.colorize(labels), 'rgb8', header))

    def _publish_static_tf(self) -> None:
        try:
            from tf2_msgs.msg import TFMessage
        except ImportError:
            self.get_logger().info('tf2_msgs is not available: not publishing /tf_static '
                                   '(the launch file publishes it with static_transform_publisher)')
            return
        qos = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                         durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.tf_pub = self.create_publisher(TFMessage, '/tf_static', qos)
        now = self.get_clock().now().nanoseconds
        transforms = [conv.static_transform(self.params['array_frame_id'], self.params['camera_frame_id'], now)]
        if self.params['trajectory']:
            transforms.append(conv.static_transform(self.params['base_frame_id'], self.params['array_frame_id'], now,
                                                    rotation=(0.0, 0.0, 0.0, 1.0)))
        self.tf_pub.publish(TFMessage(transforms=transforms))


def main(args=None):
    return run_node(SimulatorNode, args, NODE_NAME)


if __name__ == '__main__':
    raise SystemExit(main())
