# SPDX-License-Identifier: Apache-2.0
"""The one message codec (audio_vision.core.stream.codec): the same decoding whatever holds a message's data."""
import array
from types import SimpleNamespace

import numpy as np
import pytest

from audio_vision.core.stream import codec
from audio_vision.core.stream.windowing import FrameError, FrameSpec


def message(arr, encoding, wrap):
    fields = codec.image_fields(arr, encoding)
    data = fields.pop('data')
    return SimpleNamespace(data=wrap(data), **fields)


WRAPPERS = {'ndarray (rosbags)': lambda d: d, 'array.array (rclpy)': lambda d: array.array('B', d.tobytes()),
            'bytes': lambda d: d.tobytes(), 'list': lambda d: d.tolist()}


@pytest.mark.parametrize('wrap', WRAPPERS.values(), ids=WRAPPERS.keys())
def test_image_round_trip_for_every_data_container(wrap):
    depth = np.arange(12, dtype=np.float32).reshape(3, 4) / 7
    rgb = np.arange(36, dtype=np.uint8).reshape(3, 4, 3)
    np.testing.assert_array_equal(codec.image_to_array(message(depth, '32FC1', wrap)), depth)
    np.testing.assert_array_equal(codec.image_to_array(message(rgb, 'rgb8', wrap)), rgb)


def test_row_padding_and_big_endian_are_honoured():
    depth = np.arange(6, dtype=np.float32).reshape(2, 3)
    padded = np.zeros((2, 16), np.uint8)
    padded[:, :12] = depth.astype('>f4').view(np.uint8).reshape(2, 12)
    msg = SimpleNamespace(height=2, width=3, encoding='32FC1', is_bigendian=1, step=16, data=padded.tobytes())
    np.testing.assert_array_equal(codec.image_to_array(msg), depth)
    msg.data = msg.data[:-1]
    with pytest.raises(ValueError, match='too short'):
        codec.image_to_array(msg)


def test_audio_frames_are_validated_against_the_spec():
    spec = FrameSpec(num_channels=2, sample_rate=16000, min_samples=4, max_samples=8)
    samples = np.linspace(-0.5, 0.5, 12, dtype=np.float32).reshape(2, 6)
    msg = message(samples, '32FC1', lambda d: array.array('B', d.tobytes()))
    np.testing.assert_array_equal(codec.audio_samples(msg, spec), samples)
    np.testing.assert_array_equal(codec.audio_samples(msg), samples)
    with pytest.raises(FrameError) as err:
        codec.audio_samples(message(samples[:1], '32FC1', lambda d: d), spec)
    assert err.value.reason == 'channels'
    bad = samples.copy()
    bad[1, 2] = np.nan
    with pytest.raises(FrameError) as err:
        codec.audio_samples(message(bad, '32FC1', lambda d: d), spec)
    assert err.value.reason == 'non_finite'


def test_stamps_split_and_join():
    for ns in (0, 1, 1_999_999_999, 1_700_000_000_123_456_789):
        sec, nanosec = codec.split_ns(ns)
        assert 0 <= nanosec < codec.NS_PER_S
        assert codec.stamp_to_ns(SimpleNamespace(sec=sec, nanosec=nanosec)) == ns


def test_camera_info_fields_are_a_pinhole():
    K = np.array([[30.0, 0, 32], [0, 30.0, 31.5], [0, 0, 1]])
    f = codec.camera_info_fields(K, 64, 63)
    assert (f['width'], f['height'], f['distortion_model'], f['d']) == (64, 63, 'plumb_bob', [0.0] * 5)
    np.testing.assert_array_equal(codec.camera_matrix(SimpleNamespace(k=f['k'])), K)
    np.testing.assert_array_equal(np.reshape(f['p'], (3, 4))[:, :3], K)
    with pytest.raises(ValueError, match='3 translation and 4 quaternion'):
        codec.transform_values((0.0, 0.0), (0.0, 0.0, 0.0, 1.0))
