# SPDX-License-Identifier: Apache-2.0
"""Messages as ``rosbags`` objects: numpy -> message (for writing) and message -> numpy (for reading).

The layouts and the decoding are :mod:`audio_vision.core.stream.codec`'s, the same the ROS shell publishes
(``audio_vision.ros.conversions``); this module wraps the codec's fields in ``rosbags`` dataclasses.
Reading also accepts what real RGB-D drivers publish: ``16UC1``/``mono16`` depth in millimetres with
0 = unknown, row padding (``step`` > row size) and big-endian data.
"""
from __future__ import annotations

import functools

import numpy as np
from rosbags.typesys import Stores, get_typestore

from audio_vision.bag import audio_common
from audio_vision.core.frames import BODY_TO_OPTICAL_QUATERNION
from audio_vision.core.stream import codec
from audio_vision.core.stream.codec import (  # noqa: F401  (re-exported for the bag modules and tests)
    NS_PER_S, audio_samples, camera_matrix, depth_to_metres, image_to_array, labels_to_array)

ENCODINGS = codec.IMAGE_ENCODINGS


#: ROS 2 Kilted's message definitions (identical to Jazzy's for every type used here; older rosbags: Jazzy's)
STORE = getattr(Stores, 'ROS2_KILTED', None) or Stores.ROS2_JAZZY


def new_typestore():
    """A new store of ROS 2 Kilted's message types plus the shipped ``audio_common_msgs`` ones."""
    return audio_common.register(get_typestore(STORE))


@functools.lru_cache(maxsize=1)
def typestore():
    """Return the one shared store of message types (bag-specific types stay out: see BagReader.decode)."""
    return new_typestore()


def _t(name: str):
    return typestore().types[name]


# ---------------------------------------------------------------- stamps

def stamp(ns: int):
    sec, nanosec = codec.split_ns(ns)
    return _t('builtin_interfaces/msg/Time')(sec=sec, nanosec=nanosec)


def header(stamp_ns: int, frame_id: str):
    return _t('std_msgs/msg/Header')(stamp=stamp(stamp_ns), frame_id=frame_id)


stamp_ns = codec.header_stamp_to_ns


# ---------------------------------------------------------------- building

def image(arr: np.ndarray, encoding: str, stamp_ns: int, frame_id: str):
    """(H, W) or (H, W, 3) array -> sensor_msgs/Image (little-endian, no row padding)."""
    return _t('sensor_msgs/msg/Image')(header=header(stamp_ns, frame_id), **codec.image_fields(arr, encoding))


def audio_frame(samples: np.ndarray, stamp_ns: int, frame_id: str):
    """(C, N) samples -> audio frame (32FC1 Image, height = channels, width = samples, stamp = first sample)."""
    samples = np.asarray(samples, np.float32)
    if samples.ndim != 2:
        raise ValueError(f'audio frame needs (channels, samples), got shape {samples.shape}')
    return image(samples, '32FC1', stamp_ns, frame_id)


def audio_data_stamped(samples: np.ndarray, stamp_ns: int, frame_id: str, sample_format: str = 'S16LE'):
    """(C, N) float samples (+-1 full scale) -> ``audio_common_msgs/AudioDataStamped`` with interleaved
    ``sample_format`` PCM, stamped at the first sample (as ROS 2's audio_capture publishes it)."""
    data = _t(audio_common.AUDIO_DATA)(data=codec.pcm_bytes(samples, sample_format))
    return _t(audio_common.AUDIO_DATA_STAMPED)(header=header(stamp_ns, frame_id), audio=data)


def audio_info(channels: int, sample_rate: int, sample_format: str = 'S16LE', coding_format: str = 'wave',
               bitrate: int = 0):
    """``audio_common_msgs/AudioInfo`` (audio_capture's ``format: wave`` publishes coding_format 'wave')."""
    return _t(audio_common.AUDIO_INFO)(channels=int(channels), sample_rate=int(sample_rate),
                                       sample_format=sample_format, bitrate=int(bitrate), coding_format=coding_format)


def camera_info(K: np.ndarray, width: int, height: int, stamp_ns: int, frame_id: str):
    """Distortion-free pinhole CameraInfo (plumb_bob with zero coefficients, R = I, P = [K | 0])."""
    fields = codec.camera_info_fields(K, width, height)
    fields.update({k: np.asarray(fields[k], np.float64) for k in 'dkrp'})   # rosbags wants arrays
    roi = _t('sensor_msgs/msg/RegionOfInterest')(x_offset=0, y_offset=0, height=0, width=0, do_rectify=False)
    return _t('sensor_msgs/msg/CameraInfo')(header=header(stamp_ns, frame_id), binning_x=0, binning_y=0, roi=roi,
                                            **fields)


def static_transforms(parent: str, child: str, stamp_ns: int, translation=(0.0, 0.0, 0.0),
                      rotation=BODY_TO_OPTICAL_QUATERNION):
    """tf2_msgs/TFMessage with one transform: ``child`` in ``parent`` (default: optical in body frame)."""
    translation, rotation = codec.transform_values(translation, rotation)
    vec = _t('geometry_msgs/msg/Vector3')(*translation)
    quat = _t('geometry_msgs/msg/Quaternion')(*rotation)
    tf = _t('geometry_msgs/msg/TransformStamped')(
        header=header(stamp_ns, parent), child_frame_id=child,
        transform=_t('geometry_msgs/msg/Transform')(translation=vec, rotation=quat))
    return _t('tf2_msgs/msg/TFMessage')(transforms=[tf])


def serialize(msg) -> bytes:
    return bytes(typestore().serialize_cdr(msg, msg.__msgtype__))


# decoding: image_to_array, depth_to_metres, labels_to_array, audio_samples, pcm_samples, camera_matrix
# (audio_vision.core.stream.codec)
