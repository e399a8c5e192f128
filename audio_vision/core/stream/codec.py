# SPDX-License-Identifier: Apache-2.0
"""The one message codec of the package: numpy <-> the fields of the messages it publishes and records.

Live topics (``audio_vision.ros.conversions``, rclpy message classes) and bags
(``audio_vision.bag.messages``, ``rosbags`` dataclasses) build their messages from the fields returned
here and decode any message through the functions here, so both speak exactly the same layouts:

- stamps: ``builtin_interfaces/Time`` (sec, nanosec) <-> integer nanoseconds;
- images: ``sensor_msgs/Image`` little-endian, no row padding when built; decoding honours row padding
  (``step`` > row size) and ``is_bigendian`` (encodings: :data:`IMAGE_ENCODINGS`);
- audio frames: ``32FC1`` Images with height = channels and width = samples, stamped at the first sample;
- PCM audio of ``audio_common_msgs`` (``AudioDataStamped`` + ``AudioInfo``): interleaved S16LE / S32LE /
  F32LE samples, scaled to +-1 full scale (:func:`pcm_layout`, :func:`pcm_samples`);
- depth: ``32FC1`` metres with NaN where unknown (REP 118); ``16UC1``/``mono16`` millimetres are read too;
- segmentation: ``mono8`` class ids;
- CameraInfo: distortion-free pinhole (plumb_bob, zero coefficients, R = I, P = [K | 0]);
- transforms: translation (x, y, z) and rotation quaternion (x, y, z, w) as floats.

Pure: numpy only (no rclpy, no rosbags); messages are read by their field names (duck typing).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from audio_vision.core.frames import BODY_TO_OPTICAL_QUATERNION
from audio_vision.core.stream.windowing import NS_PER_S, FrameError, FrameSpec, check_layout, check_samples

__all__ = ['NS_PER_S', 'IMAGE_ENCODINGS', 'split_ns', 'stamp_to_ns',
           'header_stamp_to_ns', 'image_fields', 'image_to_array', 'audio_samples', 'PCM_SAMPLE_FORMATS',
           'PCM_CODINGS', 'PcmLayout', 'pcm_layout', 'check_pcm_layout', 'pcm_samples', 'pcm_bytes',
           'depth_to_metres', 'labels_to_array', 'camera_info_fields', 'camera_matrix', 'transform_values']


# ---------------------------------------------------------------- stamps

def split_ns(ns: int) -> tuple[int, int]:
    """Integer nanoseconds -> (sec, nanosec) of a ``builtin_interfaces/Time`` (nanosec in [0, 1e9))."""
    return divmod(int(ns), NS_PER_S)


def stamp_to_ns(stamp) -> int:
    """A ``builtin_interfaces/Time`` (anything with ``sec`` and ``nanosec``) -> integer nanoseconds."""
    return int(stamp.sec) * NS_PER_S + int(stamp.nanosec)


def header_stamp_to_ns(msg) -> int:
    """The header stamp of a message (anything with ``.header.stamp``) in nanoseconds."""
    return stamp_to_ns(msg.header.stamp)


# ---------------------------------------------------------------- images

# sensor_msgs/Image encoding -> (numpy dtype, channels), for the encodings this package reads/writes.
IMAGE_ENCODINGS = {
    '32FC1': (np.float32, 1),
    '64FC1': (np.float64, 1),
    'mono8': (np.uint8, 1),
    '8UC1': (np.uint8, 1),
    'mono16': (np.uint16, 1),
    '16UC1': (np.uint16, 1),
    'rgb8': (np.uint8, 3),
    'bgr8': (np.uint8, 3),
}


def image_pixels(arr: np.ndarray, encoding: str) -> np.ndarray:
    """Check an (H, W) or (H, W, 3) array against an image encoding; return it C-contiguous and
    little-endian, ready to be an Image's data (no row padding). Shared by live topics and bags."""
    dtype, channels = IMAGE_ENCODINGS[encoding]
    arr = np.asarray(arr)
    if arr.dtype != dtype:
        raise TypeError(f'{encoding} needs {np.dtype(dtype).name} data, got {arr.dtype}')
    if arr.ndim != (2 if channels == 1 else 3) or (channels > 1 and arr.shape[2] != channels):
        raise ValueError(f'{encoding} needs {"(H, W)" if channels == 1 else f"(H, W, {channels})"} data, '
                         f'got shape {arr.shape}')
    return np.ascontiguousarray(arr, dtype=np.dtype(dtype).newbyteorder('<'))


def image_fields(arr: np.ndarray, encoding: str) -> dict:
    """(H, W) or (H, W, C) array -> the fields of a ``sensor_msgs/Image`` but its header.

    Little-endian, no row padding; ``data`` is a flat uint8 array (each message library wraps it its way).
    """
    arr = image_pixels(arr, encoding)
    return {'height': arr.shape[0], 'width': arr.shape[1], 'encoding': encoding, 'is_bigendian': 0,
            'step': arr.strides[0], 'data': arr.view(np.uint8).reshape(-1)}


def _bytes(data) -> np.ndarray:
    """The uint8 view of a message's ``data`` (numpy array, array.array, bytes or a list of ints)."""
    if isinstance(data, (np.ndarray, list, tuple)):
        return np.asarray(data, np.uint8).reshape(-1)
    return np.frombuffer(data, np.uint8)


def image_to_array(msg) -> np.ndarray:
    """A ``sensor_msgs/Image`` -> (H, W) or (H, W, C) array (a copy) in native byte order.

    Honours row padding and ``is_bigendian``. Raises ValueError for unsupported encodings or short data.
    """
    if msg.encoding not in IMAGE_ENCODINGS:
        raise ValueError(f'unsupported image encoding {msg.encoding!r} (supported: {", ".join(IMAGE_ENCODINGS)})')
    dtype, channels = IMAGE_ENCODINGS[msg.encoding]
    dt = np.dtype(dtype).newbyteorder('>' if msg.is_bigendian else '<')
    row = msg.width * channels * dt.itemsize
    data = _bytes(msg.data)
    if msg.step < row or data.size < msg.step * msg.height:
        raise ValueError(f'image data too short: {data.size} bytes for {msg.height} rows of step {msg.step} '
                         f'({msg.width} x {msg.encoding})')
    buf = data[:msg.step * msg.height].reshape(msg.height, msg.step)[:, :row]
    out = np.ascontiguousarray(buf).view(dt).astype(dtype)
    return out.reshape(msg.height, msg.width, channels) if channels > 1 else out.reshape(msg.height, msg.width)


def audio_samples(msg, spec: FrameSpec | None = None) -> np.ndarray:
    """An audio frame -> its (C, N) float32 samples.

    With ``spec`` (the live and bag-to-dataset paths) the frame is validated like the perception node
    does (:func:`audio_vision.core.stream.windowing.check_layout`, then finite and in-range samples) and the
    samples are a read-only view of the message's data; a failed check raises
    :class:`audio_vision.core.stream.windowing.FrameError` (a ValueError) with its reason. Without ``spec``
    only the encoding is checked and the samples are a copy.
    """
    if spec is None:
        if msg.encoding != '32FC1':
            raise ValueError(f"audio frame encoding must be '32FC1', got {msg.encoding!r}")
        return image_to_array(msg)
    data = _bytes(msg.data)
    check_layout(spec, encoding=msg.encoding, height=msg.height, width=msg.width, step=msg.step,
                 is_bigendian=bool(msg.is_bigendian), data_len=data.size)
    samples = data.view('<f4').reshape(msg.height, msg.width)
    check_samples(samples)
    return samples


# ---------------------------------------------------------------- PCM audio (audio_common_msgs)

#: ``AudioInfo.sample_format`` (GStreamer raw-audio format names, as audio_capture sets them) -> numpy dtype
#: and the factor that maps the format's full scale to +-1 (the float convention of the audio frames)
PCM_SAMPLE_FORMATS = {'S16LE': ('<i2', 2.0 ** -15), 'S32LE': ('<i4', 2.0 ** -31), 'F32LE': ('<f4', 1.0)}
#: ``AudioInfo.coding_format`` values whose data is raw interleaved PCM (audio_capture: ``format: wave``);
#: anything else (``mp3``, ...) is compressed and refused
PCM_CODINGS = ('wave', 'wav', 'pcm', 'raw')


@dataclass(frozen=True)
class PcmLayout:
    """How the bytes of an ``audio_common_msgs/AudioData`` are laid out (from an ``AudioInfo``)."""

    channels: int
    sample_rate: int
    sample_format: str

    @property
    def dtype(self) -> np.dtype:
        """The numpy dtype of one sample."""
        return np.dtype(PCM_SAMPLE_FORMATS[self.sample_format][0])

    @property
    def frame_bytes(self) -> int:
        """Bytes of one sample instant (all channels)."""
        return self.channels * self.dtype.itemsize


def pcm_layout(info) -> PcmLayout:
    """An ``audio_common_msgs/AudioInfo`` (anything with ``channels``, ``sample_rate``, ``sample_format``,
    ``coding_format``) -> :class:`PcmLayout`.

    Raises ValueError, saying what is supported, for compressed audio (``coding_format`` mp3, ...), a sample
    format other than :data:`PCM_SAMPLE_FORMATS`, or no channels / no sample rate.
    """
    coding = str(info.coding_format).strip().lower()
    if coding not in PCM_CODINGS:
        raise ValueError(f'AudioInfo coding_format {info.coding_format!r} is not raw PCM: only uncompressed audio '
                         f"is supported (audio_capture: format 'wave'; coding_format one of {list(PCM_CODINGS)})")
    fmt = str(info.sample_format).strip().upper()
    if fmt not in PCM_SAMPLE_FORMATS:
        raise ValueError(f'AudioInfo sample_format {info.sample_format!r} is not supported '
                         f'(supported: {", ".join(PCM_SAMPLE_FORMATS)}: interleaved, little-endian)')
    channels, rate = int(info.channels), int(info.sample_rate)
    if channels < 1 or rate < 1:
        raise ValueError(f'AudioInfo has {channels} channels at {rate} Hz (both must be >= 1)')
    return PcmLayout(channels, rate, fmt)


def check_pcm_layout(layout: PcmLayout, spec: FrameSpec) -> None:
    """Raise :class:`FrameError` when audio of ``layout`` cannot be what ``spec`` takes: 'channels' for another
    channel count, 'encoding' for another sample rate."""
    if layout.channels != spec.num_channels:
        raise FrameError('channels', f'AudioInfo says {layout.channels} channels, expected {spec.num_channels}')
    if layout.sample_rate != spec.sample_rate:
        raise FrameError('encoding', f'AudioInfo says {layout.sample_rate} Hz, expected {spec.sample_rate} Hz')


def pcm_samples(data, layout: PcmLayout, spec: FrameSpec | None = None) -> np.ndarray:
    """The ``data`` of an ``audio_common_msgs/AudioData`` (interleaved PCM of ``layout``) -> (C, N) float32,
    full scale = +-1 (a new C-contiguous array).

    With ``spec`` (the live and bag-to-dataset paths) the frame is validated like an Image audio frame:
    :func:`check_pcm_layout`, whole sample instants ('layout'), the chunk size limits ('chunk_size'), then
    finite and in-range samples; a failed check raises :class:`FrameError` with its reason. Without ``spec``
    only the whole-instant check is made (ValueError).
    """
    raw = _bytes(data)
    if raw.size % layout.frame_bytes:
        raise FrameError('layout', f'{raw.size} bytes of {layout.sample_format} audio is not a whole number of '
                                   f'{layout.channels}-channel samples ({layout.frame_bytes} bytes each)')
    n = raw.size // layout.frame_bytes
    if spec is not None:
        check_pcm_layout(layout, spec)
        if not spec.min_samples <= n <= spec.max_samples:
            raise FrameError('chunk_size', f'frame has {n} samples, expected {spec.min_samples}..{spec.max_samples}')
    dtype, scale = PCM_SAMPLE_FORMATS[layout.sample_format]
    interleaved = raw.view(dtype).reshape(n, layout.channels)
    samples = np.empty((layout.channels, n), np.float32)
    np.multiply(interleaved.T, np.float32(scale), out=samples, casting='unsafe')
    if spec is not None:
        check_samples(samples)
    return samples


def pcm_bytes(samples: np.ndarray, sample_format: str) -> np.ndarray:
    """(C, N) float samples (+-1 full scale) -> the interleaved ``sample_format`` bytes of an
    ``audio_common_msgs/AudioData`` (flat uint8). Integer formats are rounded and clipped to their range."""
    samples = np.asarray(samples)
    if samples.ndim != 2:
        raise ValueError(f'audio needs (channels, samples), got shape {samples.shape}')
    if sample_format not in PCM_SAMPLE_FORMATS:
        raise ValueError(f'sample format {sample_format!r} is not one of {", ".join(PCM_SAMPLE_FORMATS)}')
    dtype, scale = PCM_SAMPLE_FORMATS[sample_format]
    dtype = np.dtype(dtype)
    values = samples.T.astype(np.float64) / scale
    if dtype.kind == 'i':
        info = np.iinfo(dtype)
        values = np.clip(np.rint(values), info.min, info.max)
    return np.ascontiguousarray(values.astype(dtype)).view(np.uint8).reshape(-1)


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


# ---------------------------------------------------------------- camera info

def camera_info_fields(K: np.ndarray, width: int, height: int) -> dict:
    """The fields of a distortion-free pinhole ``sensor_msgs/CameraInfo`` but its header (float lists)."""
    K = np.asarray(K, np.float64).reshape(3, 3)
    P = np.zeros((3, 4))
    P[:, :3] = K
    return {'width': int(width), 'height': int(height), 'distortion_model': 'plumb_bob', 'd': [0.0] * 5,
            'k': K.ravel().tolist(), 'r': np.eye(3).ravel().tolist(), 'p': P.ravel().tolist()}


def camera_matrix(msg) -> np.ndarray:
    """The 3x3 K of a CameraInfo."""
    return np.asarray(msg.k, np.float64).reshape(3, 3)


# ---------------------------------------------------------------- transforms

def transform_values(translation=(0.0, 0.0, 0.0), rotation=BODY_TO_OPTICAL_QUATERNION):
    """Check and convert a rigid transform: ((x, y, z), (qx, qy, qz, qw)) as Python floats."""
    t, q = tuple(map(float, translation)), tuple(map(float, rotation))
    if len(t) != 3 or len(q) != 4:
        raise ValueError(f'a transform needs 3 translation and 4 quaternion values, got {len(t)} and {len(q)}')
    return t, q
