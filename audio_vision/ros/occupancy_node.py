# SPDX-License-Identifier: Apache-2.0
"""occupancy_node: depth images (+ confidence) and poses in, a 2-D occupancy grid (nav_msgs/OccupancyGrid) out.

Thin shell around :class:`audio_vision.mapping.occupancy.OccupancyGrid2D`. Subscribes ``depth/image`` and
``depth/camera_info`` (reliable) and, with ``use_confidence``, ``depth/confidence`` and, with ``use_segmentation``,
``segmentation/image`` (mono8 class ids), each paired with the depth image by exact stamp (message_filters'
ExactTime rule: a depth image waits for its companions, at most ``queue_size`` of them). With segmentation only
pixels of the ``obstacle_classes`` mark occupied cells; floor and ceiling pixels only clear (see
:mod:`audio_vision.mapping.occupancy`). The camera pose at the image stamp comes from TF (``map_frame_id`` -> the
image's frame) where tf2_ros is importable and ``pose_source`` is auto or tf; otherwise from ``odom``
(nav_msgs/Odometry of ``base_frame_id`` in ``map_frame_id``, the message nearest the image stamp within
``max_pose_age_s``) plus the mount pose of the array on the base (``mount_xyz``, ``mount_yaw``) and the fixed array
-> optical rotation. A missing, stale, non-finite or non-rigid pose is rejected (counted by reason in /diagnostics,
WARN), never fused. The map is published every ``publish_period_s`` (1 Hz) on ``map`` (reliable, transient local).
"""
from __future__ import annotations

import collections

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from nav_msgs.msg import OccupancyGrid
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image

from audio_vision.core.frames import optical_pose
from audio_vision.core.stream import codec
from audio_vision.core.stream.windowing import NS_PER_S
from audio_vision.mapping.occupancy import POSE_REJECT_REASONS, GridConfig, OccupancyGrid2D, check_pose
from audio_vision.ros import conversions as conv
from audio_vision.ros.diagnostics import diagnostic_array
from audio_vision.ros.lifecycle import ShellNode, StartupError, run_node
from audio_vision.ros.parameters import Param, declare_parameters
from audio_vision.ros.pose_source import PoseSource, pose_params
from audio_vision.runtime.stats import Counters

NODE_NAME = 'occupancy_node'
REJECT_REASONS = POSE_REJECT_REASONS + ('no_camera_info', 'bad_image', 'no_confidence', 'no_segmentation')

PARAMS = [
    Param('map_frame_id', 'odom', 'frame of the map (the odometry / TF parent frame)'),
    *pose_params('camera'),
    Param('resolution', 0.05, 'cell size, m', range=(0.005, 5.0)),
    Param('width_m', 20.0, 'map size along x, m', range=(0.1, 1000.0)),
    Param('height_m', 20.0, 'map size along y, m', range=(0.1, 1000.0)),
    Param('origin_x', -10.0, 'map x of the lower-left map corner, m', range=(-1e4, 1e4)),
    Param('origin_y', -10.0, 'map y of the lower-left map corner, m', range=(-1e4, 1e4)),
    Param('z_min', 0.1, 'lower edge of the obstacle height band (map z), m', range=(-100.0, 100.0)),
    Param('z_max', 2.0, 'upper edge of the obstacle height band (map z), m', range=(-100.0, 100.0)),
    Param('max_range', 8.0, 'depth beyond this only clears space, m', range=(0.1, 100.0)),
    Param('pixel_stride', 2, 'fuse every n-th depth pixel in both directions', range=(1, 64)),
    Param('use_confidence', True, 'weight pixels by depth/confidence (paired by stamp)'),
    Param('min_confidence', 0.0, 'pixels with a lower confidence are not fused', range=(0.0, 1.0)),
    Param('use_segmentation', False, 'pair depth with segmentation/image (by stamp): only obstacle_classes pixels '
                                     'mark occupied cells, floor/ceiling pixels only clear (docs/MAPPING.md)'),
    Param('obstacle_classes', [0, 3, 4, 5], 'class ids that may mark occupied cells (default: wall, person, '
                                            'appliance, alarm of the class table)'),
    Param('l_occ', 0.85, 'log-odds increment of an occupied observation', range=(0.001, 10.0)),
    Param('l_free', -0.4, 'log-odds increment of a free observation', range=(-10.0, -0.001)),
    Param('publish_period_s', 1.0, 'period of the map publication', range=(0.05, 3600.0)),
    Param('diagnostics_period_s', 1.0, 'period of /diagnostics', range=(0.1, 60.0)),
    Param('queue_size', 10, 'depth images / confidences kept for pairing', range=(1, 1000)),
]


class OccupancyNode(ShellNode):

    def __init__(self, **kwargs):
        super().__init__(NODE_NAME, **kwargs)

    def _setup(self):
        p = self.params = declare_parameters(self, PARAMS)
        try:
            self.grid = OccupancyGrid2D(GridConfig(
                resolution=p['resolution'], width_m=p['width_m'], height_m=p['height_m'],
                origin=(p['origin_x'], p['origin_y']), z_min=p['z_min'], z_max=p['z_max'], max_range=p['max_range'],
                l_occ=p['l_occ'], l_free=p['l_free'], pixel_stride=p['pixel_stride'],
                min_confidence=p['min_confidence'], obstacle_classes=tuple(int(c) for c in p['obstacle_classes'])))
        except ValueError as exc:
            raise StartupError(f'map parameters: {exc}') from None
        # array -> optical: with the mount, the fixed part of the camera pose in odom mode
        self.poses = PoseSource(self, p, p['map_frame_id'], optical_pose(np.eye(4)))
        self.pose_source = self.poses.mode
        self._K = None
        self._pending_depth: collections.OrderedDict[int, Image] = collections.OrderedDict()
        self._confidence: collections.OrderedDict[int, np.ndarray] = collections.OrderedDict()
        self._labels: collections.OrderedDict[int, np.ndarray] = collections.OrderedDict()
        # the companions a depth image waits for (exact stamp): (name, received images by stamp)
        self._companions = ([('confidence', self._confidence)] if p['use_confidence'] else []) + \
            ([('segmentation', self._labels)] if p['use_segmentation'] else [])
        self.rejected = Counters(REJECT_REASONS)
        self.fused = 0
        self.maps_published = 0
        self._diag_mark = (0, 0)

        reliable = QoSProfile(depth=p['queue_size'], reliability=ReliabilityPolicy.RELIABLE)
        latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.map_pub = self.create_publisher(OccupancyGrid, 'map', latched)
        self.diag_pub = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self.create_subscription(CameraInfo, 'depth/camera_info', self.on_info, reliable)
        if p['use_confidence']:
            self.create_subscription(Image, 'depth/confidence', self.on_confidence, reliable)
        if p['use_segmentation']:
            self.create_subscription(Image, 'segmentation/image', self.on_segmentation, reliable)
        self.create_subscription(Image, 'depth/image', self.on_depth, reliable)
        self.map_timer = self.create_timer(p['publish_period_s'], self.publish_map)
        self.diag_timer = self.create_timer(p['diagnostics_period_s'], self.publish_diagnostics)
        rows, cols = self.grid.config.shape
        self.get_logger().info(f'mapping {cols} x {rows} cells of {p["resolution"]:g} m in {p["map_frame_id"]}, '
                               f'pose from {self.pose_source}, confidence {"on" if p["use_confidence"] else "off"}, '
                               f'segmentation {"on" if p["use_segmentation"] else "off"}')

    # ------------------------------------------------------------ inputs

    def on_info(self, msg: CameraInfo) -> None:
        self._K = np.reshape(np.asarray(msg.k, dtype=np.float64), (3, 3))

    def on_confidence(self, msg: Image) -> None:
        self._companion(msg, self._confidence, conv.image_to_array)

    def on_segmentation(self, msg: Image) -> None:
        self._companion(msg, self._labels, codec.labels_to_array)

    def _companion(self, msg: Image, store: collections.OrderedDict, decode) -> None:
        """Keep a confidence / segmentation image by stamp; fuse its depth image once all companions are in."""
        stamp = conv.time_to_ns(msg.header.stamp)
        try:
            store[stamp] = decode(msg)
        except Exception:  # noqa: BLE001 - a malformed image is counted, not fatal
            self.rejected.add('bad_image')
            return
        self._trim(store)
        if stamp in self._pending_depth and self._complete(stamp):
            self.fuse(self._pending_depth.pop(stamp))

    def _complete(self, stamp: int) -> bool:
        return all(stamp in store for _, store in self._companions)

    def on_depth(self, msg: Image) -> None:
        stamp = conv.time_to_ns(msg.header.stamp)
        if self._complete(stamp):
            self.fuse(msg)
            return
        self._pending_depth[stamp] = msg          # a companion is still on the way
        if len(self._pending_depth) > self.params['queue_size']:
            old, _ = self._pending_depth.popitem(last=False)
            missing = next(name for name, store in self._companions if old not in store)
            self.rejected.add(f'no_{missing}')

    def _trim(self, d: collections.OrderedDict) -> None:
        while len(d) > self.params['queue_size']:
            d.popitem(last=False)

    # ------------------------------------------------------------ fusion

    def fuse(self, msg: Image) -> bool:
        """Fuse one depth image if its pose, intrinsics and pixels are usable; count the reason otherwise."""
        stamp = conv.time_to_ns(msg.header.stamp)
        confidence = self._confidence.pop(stamp, None)
        labels = self._labels.pop(stamp, None)
        if self._K is None:
            self.rejected.add('no_camera_info')
            return False
        T, pose_stamp = self.poses.pose(stamp, msg.header.frame_id)
        reason = check_pose(T, pose_stamp, stamp, self.params['max_pose_age_s'])
        if reason:
            self.rejected.add(reason)
            self.get_logger().warning(f'depth image at {stamp / NS_PER_S:.3f} s not fused: pose {reason}',
                                      throttle_duration_sec=5.0)
            return False
        try:
            depth = conv.image_to_array(msg)
            self.grid.integrate(depth, self._K, T, confidence if self.params['use_confidence'] else None,
                                labels if self.params['use_segmentation'] else None)
        except ValueError as exc:
            self.rejected.add('bad_image')
            self.get_logger().warning(f'depth image not fused: {exc}', throttle_duration_sec=5.0)
            return False
        self.fused += 1
        return True

    # ------------------------------------------------------------ outputs

    def map_message(self) -> OccupancyGrid:
        c = self.grid.config
        rows, cols = c.shape
        now = self.get_clock().now().nanoseconds
        msg = OccupancyGrid(header=conv.make_header(now, self.params['map_frame_id']))
        msg.info.map_load_time = msg.header.stamp
        msg.info.resolution = float(c.resolution)
        msg.info.width, msg.info.height = cols, rows
        msg.info.origin.position.x, msg.info.origin.position.y = float(c.origin[0]), float(c.origin[1])
        msg.info.origin.orientation.w = 1.0
        msg.data = self.grid.occupancy_values().ravel().tolist()
        return msg

    def publish_map(self) -> None:
        self.map_pub.publish(self.map_message())
        self.maps_published += 1

    def stats(self) -> dict:
        return {'fused': self.fused, 'rejected': self.rejected.snapshot(), 'maps': self.maps_published,
                'pose_source': self.pose_source}

    def publish_diagnostics(self) -> None:
        s = self.stats()
        rejected = sum(s['rejected'].values())
        new_fused, new_rejected = s['fused'] - self._diag_mark[0], rejected - self._diag_mark[1]
        self._diag_mark = (s['fused'], rejected)
        problems = []
        if new_rejected:
            problems.append(f'{new_rejected} depth images rejected')
        if not new_fused:
            problems.append('nothing fused')
        level = DiagnosticStatus.WARN if problems else DiagnosticStatus.OK
        values = {'fused images': s['fused'], 'rejected images': rejected,
                  **{f'rejected ({r})': n for r, n in s['rejected'].items()},
                  'maps published': s['maps'], 'pose source': self.pose_source,
                  'observed cells': int(self.grid.observed.sum()),
                  'occupied cells': int(self.grid.occupied_mask().sum())}
        self.diag_pub.publish(diagnostic_array(self.get_clock().now().to_msg(), f'{self.get_name()}: occupancy mapping',
                                               self.params['map_frame_id'], level, '; '.join(problems) or 'OK', values))


def main(args=None):
    return run_node(OccupancyNode, args, NODE_NAME)


if __name__ == '__main__':
    raise SystemExit(main())
