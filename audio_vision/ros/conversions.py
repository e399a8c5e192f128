# SPDX-License-Identifier: Apache-2.0
"""Message conversions for the ROS shell: numpy arrays <-> sensor_msgs, stamps, TF, point clouds.

The layouts and the decoding are :mod:`audio_vision.core.stream.codec`'s (shared with the bag modules); this
module wraps its fields in rclpy message classes. Uses ``cv_bridge`` and ``sensor_msgs_py`` when they are
importable (a ROS 2 install) and the codec's numpy code otherwise (the Python-package-index install has
neither); both paths produce the same messages. Nothing here creates a node.
"""
from __future__ import annotations

import array
import functools
import sys

import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import TransformStamped
from sensor_msgs.msg import CameraInfo, Image, PointCloud2, PointField
from std_msgs.msg import Header

from audio_vision.core.frames import BODY_TO_OPTICAL_QUATERNION, matrix_to_quaternion, yaw_quaternion
from audio_vision.core.stream import codec
from audio_vision.core.stream.codec import IMAGE_ENCODINGS, NS_PER_S, image_pixels  # noqa: F401  (re-exported)
from audio_vision.core.stream.windowing import FrameSpec

ENCODINGS = IMAGE_ENCODINGS


@functools.lru_cache(maxsize=1)
def _cv_bridge():
    try:
        from cv_bridge import CvBridge
        return CvBridge()
    except ImportError:
        return None


@functools.lru_cache(maxsize=1)
def _point_cloud2():
    try:
        from sensor_msgs_py import point_cloud2
        return point_cloud2
    except ImportError:
        return None


# ---------------------------------------------------------------- stamps

def ns_to_time(ns: int) -> Time:
    sec, nanosec = codec.split_ns(ns)
    return Time(sec=sec, nanosec=nanosec)


time_to_ns = codec.stamp_to_ns


def make_header(stamp_ns: int, frame_id: str) -> Header:
    return Header(stamp=ns_to_time(stamp_ns), frame_id=frame_id)


# ---------------------------------------------------------------- images

def _as_byte_array(arr: np.ndarray) -> array.array:
    data = array.array('B')
    data.frombytes(np.ascontiguousarray(arr).tobytes())
    return data


def array_to_image(arr: np.ndarray, encoding: str, header: Header) -> Image:
    """(H, W) or (H, W, 3) array -> Image with the given encoding (little-endian, no row padding)."""
    bridge = _cv_bridge()
    if bridge is not None:
        return bridge.cv2_to_imgmsg(image_pixels(arr, encoding), encoding=encoding, header=header)
    fields = codec.image_fields(arr, encoding)
    data = fields.pop('data')
    msg = Image(header=header, **fields)
    msg.data = _as_byte_array(data)
    return msg


def image_to_array(msg: Image) -> np.ndarray:
    """Image -> (H, W) or (H, W, C) array (a copy), honouring row padding and byte order."""
    if msg.encoding not in ENCODINGS:
        raise ValueError(f'unsupported encoding {msg.encoding!r}')
    bridge = _cv_bridge()
    if bridge is not None:
        return np.array(bridge.imgmsg_to_cv2(msg, desired_encoding='passthrough'))
    return codec.image_to_array(msg)


# ---------------------------------------------------------------- audio frames

def audio_to_msg(samples: np.ndarray, stamp_ns: int, frame_id: str) -> Image:
    """(C, N) samples -> audio frame: 32FC1 Image, height = channels, width = samples,
    stamp = capture time of the first sample, frame_id = the array frame."""
    return array_to_image(np.asarray(samples, np.float32), '32FC1', make_header(stamp_ns, frame_id))


def msg_to_audio(msg: Image, spec: FrameSpec) -> np.ndarray:
    """Validate an audio frame against ``spec`` and return its (C, N) float32 samples (read-only view).

    Raises :class:`audio_vision.core.stream.windowing.FrameError` with the reason of the first failed check.
    """
    return codec.audio_samples(msg, spec)


# ---------------------------------------------------------------- camera info

def camera_info_msg(K: np.ndarray, width: int, height: int, header: Header) -> CameraInfo:
    """Distortion-free pinhole CameraInfo (plumb_bob with zero coefficients, R = I, P = [K | 0])."""
    return CameraInfo(header=header, **codec.camera_info_fields(K, width, height))


# ---------------------------------------------------------------- point clouds

def depth_to_points(depth: np.ndarray, rays: np.ndarray, stride: int = 1) -> np.ndarray:
    """(H, W) z-depth + (H, W, 3) rays with z = 1 (``PinholeCamera.pixel_rays()``) -> (M, 3) float32
    points in the optical frame; NaN / non-positive depths are skipped."""
    d = depth[::stride, ::stride]
    valid = np.isfinite(d) & (d > 0)
    return (rays[::stride, ::stride][valid] * d[valid][:, None]).astype(np.float32)


def points_to_cloud(points: np.ndarray, header: Header) -> PointCloud2:
    """(M, 3) xyz -> unorganized, dense PointCloud2 with float32 fields x, y, z."""
    points = np.asarray(points, np.float32).reshape(-1, 3)
    pc2 = _point_cloud2()
    if pc2 is not None:
        return pc2.create_cloud_xyz32(header, points)
    fields = [PointField(name=n, offset=4 * i, datatype=PointField.FLOAT32, count=1)
              for i, n in enumerate('xyz')]
    msg = PointCloud2(header=header, height=1, width=len(points), fields=fields,
                      is_bigendian=sys.byteorder == 'big', point_step=12, row_step=12 * len(points),
                      is_dense=True)
    msg.data = _as_byte_array(points)
    return msg


def cloud_to_points(msg: PointCloud2) -> np.ndarray:
    """PointCloud2 with float32 x, y, z fields -> (M, 3) float32 (for tests and tools)."""
    offsets = {f.name: f.offset for f in msg.fields if f.datatype == PointField.FLOAT32}
    f4 = '>f4' if msg.is_bigendian else '<f4'
    dt = np.dtype({'names': ['x', 'y', 'z'], 'formats': [f4] * 3,
                   'offsets': [offsets['x'], offsets['y'], offsets['z']], 'itemsize': msg.point_step})
    rec = np.frombuffer(msg.data, dt, count=msg.width * msg.height)
    return np.stack([rec['x'], rec['y'], rec['z']], axis=1)


# ---------------------------------------------------------------- TF

def static_transform(parent: str, child: str, stamp_ns: int, translation=(0.0, 0.0, 0.0),
                     rotation=BODY_TO_OPTICAL_QUATERNION) -> TransformStamped:
    """A TransformStamped of ``child`` in ``parent`` (default: the optical frame of a body frame)."""
    t = TransformStamped(header=make_header(stamp_ns, parent), child_frame_id=child)
    (tx, ty, tz), (qx, qy, qz, qw) = codec.transform_values(translation, rotation)
    t.transform.translation.x, t.transform.translation.y, t.transform.translation.z = tx, ty, tz
    t.transform.rotation.x, t.transform.rotation.y, t.transform.rotation.z, t.transform.rotation.w = qx, qy, qz, qw
    return t


def odometry_msg(stamp_ns: int, frame_id: str, child_frame_id: str, position, yaw: float, v: float = 0.0,
                 omega: float = 0.0):
    """nav_msgs/Odometry: pose of ``child_frame_id`` in ``frame_id`` (planar: yaw only), twist in the child frame."""
    from nav_msgs.msg import Odometry
    msg = Odometry(header=make_header(stamp_ns, frame_id), child_frame_id=child_frame_id)
    p = msg.pose.pose
    p.position.x, p.position.y, p.position.z = map(float, position)
    p.orientation.x, p.orientation.y, p.orientation.z, p.orientation.w = yaw_quaternion(yaw)
    msg.twist.twist.linear.x, msg.twist.twist.angular.z = float(v), float(omega)
    return msg


def odometry_to_transform(msg) -> TransformStamped:
    """The TF transform (frame_id -> child_frame_id) of a nav_msgs/Odometry message."""
    t = TransformStamped(header=msg.header, child_frame_id=msg.child_frame_id)
    p = msg.pose.pose
    t.transform.translation.x, t.transform.translation.y, t.transform.translation.z = p.position.x, p.position.y, \
        p.position.z
    t.transform.rotation = p.orientation
    return t


# ---------------------------------------------------------------- layout markers

#: thickness of a plane's slab in layout/planes, m
PLANE_THICKNESS_M = 0.02


def layout_markers(patches, header: Header, class_table, namespace: str = 'layout'):
    """visualization_msgs/MarkerArray of a room layout (``sonar.render.plane_patches``, array frame): a
    DELETEALL first (a plane not measured this window disappears), then one thin CUBE per plane in its class
    colour, opaque as it is confident, and a TEXT label at its centre."""
    from visualization_msgs.msg import Marker, MarkerArray
    clear = Marker(header=header, ns=namespace, action=Marker.DELETEALL)
    markers = [clear]
    palette = class_table.palette()
    for i, patch in enumerate(patches):
        r, g, b = (float(v) / 255.0 for v in palette[class_table.id_of(patch.label)])
        qx, qy, qz, qw = matrix_to_quaternion(patch.axes.T)       # columns u, v, n: the slab's x, y, z
        cube = Marker(header=header, ns=namespace, id=2 * i, type=Marker.CUBE, action=Marker.ADD)
        cube.pose.position.x, cube.pose.position.y, cube.pose.position.z = (float(v) for v in patch.center)
        cube.pose.orientation.x, cube.pose.orientation.y = qx, qy
        cube.pose.orientation.z, cube.pose.orientation.w = qz, qw
        cube.scale.x, cube.scale.y = (max(2.0 * float(h), PLANE_THICKNESS_M) for h in patch.half_size)
        cube.scale.z = PLANE_THICKNESS_M
        cube.color.r, cube.color.g, cube.color.b = r, g, b
        cube.color.a = float(0.2 + 0.6 * min(max(patch.confidence, 0.0), 1.0))
        text = Marker(header=header, ns=namespace, id=2 * i + 1, type=Marker.TEXT_VIEW_FACING, action=Marker.ADD)
        text.pose.position = cube.pose.position
        text.pose.orientation.w = 1.0
        text.scale.z = 0.2
        text.color.r = text.color.g = text.color.b = text.color.a = 1.0
        text.text = f'{patch.label} {patch.confidence:.2f}'
        markers += [cube, text]
    return MarkerArray(markers=markers)
