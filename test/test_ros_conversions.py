# SPDX-License-Identifier: Apache-2.0
"""Message conversions and node utilities (message types only, no ROS graph)."""
import numpy as np
import pytest

pytest.importorskip('sensor_msgs.msg')

from rcl_interfaces.msg import ParameterDescriptor  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402

from audio_vision.core.camera import PinholeCamera  # noqa: E402
from audio_vision.core.stream.windowing import NS_PER_S, FrameError, FrameSpec  # noqa: E402
from audio_vision.ros import conversions as conv  # noqa: E402
from audio_vision.ros.parameters import Param  # noqa: E402
from audio_vision.runtime.pacing import ChunkPacer  # noqa: E402
from audio_vision.runtime.stats import LatencyStats, RateMeter  # noqa: E402

SPEC = FrameSpec(num_channels=3, sample_rate=16000, min_samples=8, max_samples=4096)


def test_stamp_round_trip():
    for ns in (0, 1, NS_PER_S - 1, 1_700_000_000 * NS_PER_S + 123_456_789):
        t = conv.ns_to_time(ns)
        assert 0 <= t.nanosec < NS_PER_S and conv.time_to_ns(t) == ns


@pytest.mark.parametrize('encoding, shape, dtype', [
    ('32FC1', (5, 7), np.float32), ('mono8', (4, 6), np.uint8), ('rgb8', (3, 5, 3), np.uint8),
    ('16UC1', (2, 9), np.uint16),
])
def test_image_round_trip(encoding, shape, dtype):
    arr = (np.arange(np.prod(shape)) % 200).reshape(shape).astype(dtype)
    msg = conv.array_to_image(arr, encoding, conv.make_header(5, 'cam'))
    assert (msg.height, msg.width, msg.encoding, msg.is_bigendian) == (shape[0], shape[1], encoding, 0)
    assert msg.step == shape[1] * (3 if encoding == 'rgb8' else 1) * np.dtype(dtype).itemsize
    assert len(msg.data) == msg.step * msg.height
    np.testing.assert_array_equal(conv.image_to_array(msg), arr)


def test_image_to_array_honours_padding_and_byte_order():
    arr = np.array([[1.5, -2.0], [3.25, 4.0]], np.float32)
    msg = Image(height=2, width=2, encoding='32FC1', is_bigendian=1, step=12)   # 4 bytes of row padding
    msg.data = b''.join(row.astype('>f4').tobytes() + b'\0' * 4 for row in arr)
    np.testing.assert_array_equal(conv.image_to_array(msg), arr)


def test_array_to_image_rejects_wrong_dtype_and_shape():
    with pytest.raises(TypeError):
        conv.array_to_image(np.zeros((2, 2)), '32FC1', conv.make_header(0, ''))
    with pytest.raises(ValueError):
        conv.array_to_image(np.zeros((2, 2), np.uint8), 'rgb8', conv.make_header(0, ''))


def test_audio_frame_convention_and_validation():
    x = np.random.default_rng(0).normal(size=(3, 100)).astype(np.float32)
    msg = conv.audio_to_msg(x, 42 * NS_PER_S, 'audio_array')
    assert (msg.encoding, msg.height, msg.width, msg.step, msg.is_bigendian) == ('32FC1', 3, 100, 400, 0)
    assert msg.header.frame_id == 'audio_array' and conv.time_to_ns(msg.header.stamp) == 42 * NS_PER_S
    np.testing.assert_array_equal(conv.msg_to_audio(msg, SPEC), x)

    def reason(msg):
        with pytest.raises(FrameError) as err:
            conv.msg_to_audio(msg, SPEC)
        return err.value.reason

    bad = conv.audio_to_msg(x, 0, 'a')
    bad.data = bad.data[:-4]
    assert reason(bad) == 'layout'
    assert reason(conv.audio_to_msg(x[:2], 0, 'a')) == 'channels'
    assert reason(conv.audio_to_msg(x[:, :4], 0, 'a')) == 'chunk_size'
    x[1, 3] = np.inf
    assert reason(conv.audio_to_msg(x, 0, 'a')) == 'non_finite'
    assert reason(conv.array_to_image(np.zeros((3, 100), np.uint8), 'mono8', conv.make_header(0, ''))) == 'encoding'


def test_camera_info_is_a_distortion_free_pinhole():
    cam = PinholeCamera(64, 48, 90.0)
    info = conv.camera_info_msg(cam.K, cam.width, cam.height, conv.make_header(7, 'cam'))
    assert (info.width, info.height, info.distortion_model) == (64, 48, 'plumb_bob')
    np.testing.assert_array_equal(info.d, np.zeros(5))
    np.testing.assert_allclose(np.reshape(info.k, (3, 3)), cam.K)
    np.testing.assert_allclose(np.reshape(info.r, (3, 3)), np.eye(3))
    np.testing.assert_allclose(np.reshape(info.p, (3, 4))[:, :3], cam.K)


def test_depth_to_points_reprojects_to_the_same_pixels():
    cam = PinholeCamera(16, 12, 70.0)
    depth = np.random.default_rng(1).uniform(0.5, 5.0, (12, 16)).astype(np.float32)
    depth[3, 4] = np.nan
    depth[5, 6] = 0.0
    pts = conv.depth_to_points(depth, cam.pixel_rays())
    assert pts.shape == (12 * 16 - 2, 3) and pts.dtype == np.float32
    uvw = pts.astype(np.float64) @ cam.K.T
    u, v = uvw[:, 0] / uvw[:, 2], uvw[:, 1] / uvw[:, 2]
    valid = np.isfinite(depth) & (depth > 0)
    vv, uu = np.nonzero(valid)
    np.testing.assert_allclose(u, uu, atol=1e-3)
    np.testing.assert_allclose(v, vv, atol=1e-3)
    np.testing.assert_allclose(pts[:, 2], depth[valid])
    assert len(conv.depth_to_points(depth, cam.pixel_rays(), stride=2)) == np.isfinite(depth[::2, ::2]).sum()


def test_point_cloud_round_trip():
    pts = np.random.default_rng(2).normal(size=(50, 3)).astype(np.float32)
    msg = conv.points_to_cloud(pts, conv.make_header(3, 'audio_camera_optical'))
    assert (msg.height, msg.width, msg.point_step, msg.row_step) == (1, 50, 12, 600)
    assert [f.name for f in msg.fields] == ['x', 'y', 'z']
    np.testing.assert_array_equal(conv.cloud_to_points(msg), pts)


def test_static_transform_is_the_simulators_body_to_optical_rotation():
    from audio_vision.core import frames
    t = conv.static_transform('audio_array', 'audio_camera_optical', 0)
    r = t.transform.rotation
    np.testing.assert_allclose(frames.quaternion_to_matrix((r.x, r.y, r.z, r.w)), frames.R_BODY_FROM_OPTICAL,
                               atol=1e-12)
    assert (t.header.frame_id, t.child_frame_id) == ('audio_array', 'audio_camera_optical')


def test_param_descriptors():
    d = Param('hop_s', 0.25, 'hop', range=(0.0, 2.0)).descriptor()
    assert isinstance(d, ParameterDescriptor) and d.read_only and d.description == 'hop'
    assert (d.floating_point_range[0].from_value, d.floating_point_range[0].to_value) == (0.0, 2.0)
    d = Param('n', 3, 'n', range=(1, 9), read_only=False).descriptor()
    assert (d.integer_range[0].from_value, d.integer_range[0].to_value) == (1, 9) and not d.read_only
    assert 'cpu' in Param('x', 'cpu', 'd', choices=('cpu', 'cuda')).descriptor().additional_constraints


def test_chunk_pacer_follows_the_wall_clock_and_skips_when_starved():
    p = ChunkPacer(sample_rate=1000, chunk_samples=100, rate=1.0, max_lag_s=0.5)   # 0.1 s chunks
    assert p.due(10.0) == []
    assert p.due(10.05) == []
    assert p.due(10.1) == [0]
    assert p.due(10.35) == [100, 200]
    assert p.due(12.0) == [1500, 1600, 1700, 1800, 1900]   # 1.65 s late: the newest 0.5 s only
    assert p.skipped == 12
    fast = ChunkPacer(1000, 100, rate=4.0)
    sent = [i for k in range(21) for i in fast.due(k * 0.05)]
    assert sent == list(range(0, 4000, 100)) and fast.skipped == 0   # 4 s of audio in 1 s


def test_rate_and_latency_stats():
    t = [0.0]
    meter = RateMeter(clock=lambda: t[0])
    meter.tick(5)
    t[0] = 2.0
    assert meter.rate() == 2.5 and meter.total == 5
    t[0] = 3.0
    assert meter.rate() == 0.0
    lat = LatencyStats(maxlen=100)
    assert all(np.isnan(lat.percentiles_ms()))
    for v in range(1, 101):
        lat.add(v / 1000)
    p50, p95 = lat.percentiles_ms()
    assert p50 == pytest.approx(50.5) and p95 == pytest.approx(95.05)
