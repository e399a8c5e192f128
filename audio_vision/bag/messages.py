# SPDX-License-Identifier: Apache-2.0
"""Messages as ``rosbags`` objects: numpy -> message (for writing) and message -> numpy (for reading).

The layouts are the ones the ROS shell publishes (``audio_vision.ros.conversions``): audio frames are
``32FC1`` Images with height = channels and width = samples, stamped at the first sample; depth is
``32FC1`` metres with NaN where unknown (REP 118); segmentation ``mono8`` class ids; CameraInfo is a
distortion-free pinhole (plumb_bob, zero coefficients, R = I, P = [K | 0]).

Reading also accepts what real RGB-D drivers publish: ``16UC1``/``mono16`` depth in millimetres with
0 = unknown, row padding (``step`` > row size) and big-endian data.
"""
from __future__ import annotations

import functools

import numpy as np
from rosbags.typesys import Stores, get_typestore

import audio_vision.core.camera as camera_conventions
from audio_vision.core.windowing import NS_PER_S  # noqa: F401  (re-exported for the bag modules)


# Shared with audio_vision.ros.conversions, so bags and live topics agree.
BODY_TO_OPTICAL_QUATERNION = camera_conventions.BODY_TO_OPTICAL_QUATERNION
ENCODINGS = camera_conventions.IMAGE_ENCODINGS


#: ROS 2 Kilted's message definitions (identical to Jazzy's for every type used here; older rosbags: Jazzy's)
STORE = getattr(Stores, 'ROS2_KILTED', None) or Stores.ROS2_JAZZY


@functools.lru_cache(maxsize=1)
def typestore():
    """Return the one shared store of message types (bag-specific types stay out: see BagReader.decode)."""
    return get_typestore(STORE)


def _t(name: str):
    return typestore().types[name]


# ---------------------------------------------------------------- stamps

def stamp(ns: int):
    ns = int(ns)
    return _t('builtin_interfaces/msg/Time')(sec=ns // NS_PER_S, nanosec=ns % NS_PER_S)


def header(stamp_ns: int, frame_id: str):
    return _t('std_msgs/msg/Header')(stamp=stamp(stamp_ns), frame_id=frame_id)


def stamp_ns(msg) -> int:
    """Header stamp of a message (anything with ``.header.stamp``) in nanoseconds."""
    s = msg.header.stamp
    return int(s.sec) * NS_PER_S + int(s.nanosec)


# ---------------------------------------------------------------- building

def image(arr: np.ndarray, encoding: str, stamp_ns: int, frame_id: str):
    """(H, W) or (H, W, 3) array -> sensor_msgs/Image (little-endian, no row padding)."""
    arr = camera_conventions.image_pixels(arr, encoding)
    return _t('sensor_msgs/msg/Image')(
        header=header(stamp_ns, frame_id), height=arr.shape[0], width=arr.shape[1], encoding=encoding,
        is_bigendian=0, step=arr.strides[0], data=arr.view(np.uint8).reshape(-1))


def audio_frame(samples: np.ndarray, stamp_ns: int, frame_id: str):
    """(C, N) samples -> audio frame (32FC1 Image, height = channels, width = samples, stamp = first sample)."""
    samples = np.asarray(samples, np.float32)
    if samples.ndim != 2:
        raise ValueError(f'audio frame needs (channels, samples), got shape {samples.shape}')
    return image(samples, '32FC1', stamp_ns, frame_id)


def camera_info(K: np.ndarray, width: int, height: int, stamp_ns: int, frame_id: str):
    """Distortion-free pinhole CameraInfo (plumb_bob with zero coefficients, R = I, P = [K | 0])."""
    K = np.asarray(K, np.float64).reshape(3, 3)
    P = np.zeros((3, 4))
    P[:, :3] = K
    roi = _t('sensor_msgs/msg/RegionOfInterest')(x_offset=0, y_offset=0, height=0, width=0, do_rectify=False)
    return _t('sensor_msgs/msg/CameraInfo')(
        header=header(stamp_ns, frame_id), height=int(height), width=int(width), distortion_model='plumb_bob',
        d=np.zeros(5), k=K.ravel().copy(), r=np.eye(3).ravel(), p=P.ravel(), binning_x=0, binning_y=0, roi=roi)


def static_transforms(parent: str, child: str, stamp_ns: int, translation=(0.0, 0.0, 0.0),
                      rotation=BODY_TO_OPTICAL_QUATERNION):
    """tf2_msgs/TFMessage with one transform: ``child`` in ``parent`` (default: optical in body frame)."""
    vec = _t('geometry_msgs/msg/Vector3')(*map(float, translation))
    quat = _t('geometry_msgs/msg/Quaternion')(*map(float, rotation))
    tf = _t('geometry_msgs/msg/TransformStamped')(
        header=header(stamp_ns, parent), child_frame_id=child,
        transform=_t('geometry_msgs/msg/Transform')(translation=vec, rotation=quat))
    return _t('tf2_msgs/msg/TFMessage')(transforms=[tf])


def serialize(msg) -> bytes:
    return bytes(typestore().serialize_cdr(msg, msg.__msgtype__))


# ---------------------------------------------------------------- decoding

def image_to_array(msg) -> np.ndarray:
    """sensor_msgs/Image -> (H, W) or (H, W, C) array (a copy) in native byte order; honours row padding
    and ``is_bigendian``. Raises ValueError for unsupported encodings or short data."""
    if msg.encoding not in ENCODINGS:
        raise ValueError(f'unsupported image encoding {msg.encoding!r} (supported: {", ".join(ENCODINGS)})')
    dtype, channels = ENCODINGS[msg.encoding]
    dt = np.dtype(dtype).newbyteorder('>' if msg.is_bigendian else '<')
    row = msg.width * channels * dt.itemsize
    data = np.asarray(msg.data, np.uint8)
    if msg.step < row or data.size < msg.step * msg.height:
        raise ValueError(f'image data too short: {data.size} bytes for {msg.height} rows of step {msg.step} '
                         f'({msg.width} x {msg.encoding})')
    buf = data[:msg.step * msg.height].reshape(msg.height, msg.step)[:, :row]
    out = np.ascontiguousarray(buf).view(dt).astype(dtype)
    return out.reshape(msg.height, msg.width, channels) if channels > 1 else out.reshape(msg.height, msg.width)


def depth_to_metres(msg) -> np.ndarray:
    """A depth Image -> (H, W) float32 metres, NaN where unknown.

    ``32FC1``/``64FC1``: metres, non-finite or <= 0 -> NaN. ``16UC1``/``mono16``: millimetres (the
    REP 118 integer convention of RealSense, Azure Kinect, OAK drivers), 0 -> NaN.
    """
    arr = image_to_array(msg)
    if arr.ndim != 2:
        raise ValueError(f'depth image must have one channel, got encoding {msg.encoding!r}')
    if arr.dtype == np.uint16:
        out = arr.astype(np.float32) / 1000.0
    elif arr.dtype.kind == 'f':
        out = arr.astype(np.float32)
    else:
        raise ValueError(f'depth image encoding {msg.encoding!r} is not a depth encoding '
                         '(use 32FC1 metres or 16UC1 millimetres)')
    out[~np.isfinite(out) | (out <= 0)] = np.nan
    return out


def labels_to_array(msg) -> np.ndarray:
    """A segmentation Image (mono8 / 8UC1 class ids) -> (H, W) uint8."""
    if msg.encoding not in ('mono8', '8UC1'):
        raise ValueError(f"segmentation image must be mono8 or 8UC1 class ids, got {msg.encoding!r}")
    return image_to_array(msg)


def audio_samples(msg) -> np.ndarray:
    """An audio frame -> (C, N) float32 samples; raises ValueError if it breaks the convention."""
    if msg.encoding != '32FC1':
        raise ValueError(f"audio frame encoding must be '32FC1', got {msg.encoding!r}")
    return image_to_array(msg)


def camera_matrix(msg) -> np.ndarray:
    """The 3x3 K of a CameraInfo."""
    return np.asarray(msg.k, np.float64).reshape(3, 3)
