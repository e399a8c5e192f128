# SPDX-License-Identifier: Apache-2.0
"""Fuzzing perception_node's input: >= 1000 generated audio frames (seeded, reproducible) with wrong
encodings, channel counts, zero / huge sizes, broken layouts, NaN/Inf, out-of-range and extreme values, duplicate,
stale, reordered and foreign (frame_id) frames, gaps and rewinds, mixed with valid frames.

The node must never crash or hang, must count every rejected or dropped frame by reason, every reordered
frame and every stream restart in /diagnostics (checked on the DDS topic), and every window assembled from
the accepted frames must give exactly what the offline pipeline gives on that window. Two feeds: the live
node's subscription callback directly (fast, exact, >= 1000 frames incl. 16 MB frames), and real DDS (fewer
frames).
Set AUDIO_VISION_FUZZ_SEED to try another sequence.
"""
import array
import collections
import os
import time

import numpy as np
import pytest

rclpy = pytest.importorskip('rclpy', reason='needs rclpy + DDS: pip install -r requirements-ros.txt')

from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402
from std_msgs.msg import Header  # noqa: E402

from audio_vision.core.inference.pipeline import AudioToVision  # noqa: E402
from audio_vision.core.stream.windowing import (  # noqa: E402
    DISCONTINUITY_REASONS, DROP_REASONS, FRAME_ERROR_REASONS, MAX_ABS_SAMPLE, NS_PER_S, WindowAssembler)
from audio_vision.ros import conversions as conv  # noqa: E402
from audio_vision.ros.graph import Graph, TopicRecorder  # noqa: E402
from audio_vision.ros.perception_node import PerceptionNode  # noqa: E402
from helpers import write_tiny_models  # noqa: E402

pytestmark = [pytest.mark.ros, pytest.mark.timeout(180)]
DOMAIN = 65   # one ROS domain per test module
os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
FS, CH, WINDOW, HOP = 16000, 4, 4000, 4000       # the tiny model: 4 mics, 0.25 s window and hop
MIN_CHUNK, MAX_CHUNK, TOLERANCE_NS = 16, 48000, 2_000_000   # the node's defaults
SEED = int(os.environ.get('AUDIO_VISION_FUZZ_SEED', '20240607'))
BAD_ENCODINGS = ['16SC1', 'mono8', '', 'rgb8', '32FC2', '64FC1', '32fc1', 'x' * 300]


@pytest.fixture(scope='module')
def model_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp('tiny_model')
    write_tiny_models(path, num_mics=CH)
    return path


def image(height, width, data: bytes, stamp_ns, encoding='32FC1', step=None, bigendian=0, frame_id='audio_array'):
    msg = Image(header=Header(stamp=conv.ns_to_time(stamp_ns), frame_id=frame_id), height=height, width=width,
                encoding=encoding, is_bigendian=bigendian, step=4 * width if step is None else step)
    buf = array.array('B')
    buf.frombytes(data)
    msg.data = buf
    return msg


class FrameFuzzer:
    """Seeded frame generator that knows each frame's fate: the rejection reason, the drop reason, or accepted
    (reordered, or with the stream restart it causes): the rules of docs/ROS.md, independent of the node's code.
    Every valid frame is one of these events, each with one known count: on time; a forward gap (never filled:
    one 'gap', at once or when its hole is given up); a re-sent frame ('duplicate'); a frame 10 .. 1000 s old,
    beyond the 4 s the stream holds ('stale'); two frames swapped ('reordered'); a rewind (three frames that
    continue each other 1000 s back: two 'stale', then the restart); another array's frame_id."""

    KINDS = ['valid', 'valid', 'valid', 'valid', 'encoding', 'layout', 'channels', 'chunk_size', 'non_finite',
             'out_of_range']

    def __init__(self, seed, huge=True):
        self.rng = np.random.default_rng(seed)
        self.huge = huge
        self.next_ns = 1_700_000_000 * NS_PER_S     # where a continuing frame starts
        self.last = None                             # (samples, stamp) of the last accepted frame
        self.invalid = collections.Counter()
        self.resets = collections.Counter()
        self.dropped = collections.Counter()
        self.reordered = 0
        self.assembled = []                          # (samples, stamp_ns, frame_id) that reach the assembler
        self.queued = []                             # valid frames to send before anything else
        self.sizes = collections.Counter()

    # -- samples
    def samples(self, n):
        r = self.rng
        x = (0.1 * r.normal(size=(CH, n))).astype(np.float32)
        style = r.integers(10)
        if style == 0:
            x[:] = 0.0
        elif style == 1:                                  # extreme but accepted values: the limit, denormals
            idx = r.integers(0, x.size, size=max(1, x.size // 50))
            x.flat[idx] = r.choice([MAX_ABS_SAMPLE, -MAX_ABS_SAMPLE, 1e-45, -1e-45, 1.0], size=idx.size)
        elif style == 2:
            x = np.clip(x * 100, -1, 1).astype(np.float32)   # clipped full scale
        return x

    def chunk_size(self):
        r = self.rng.random()
        if r < 0.03:
            return MIN_CHUNK
        if r < 0.05:
            return int(self.rng.integers(8000, MAX_CHUNK + 1))
        return int(self.rng.integers(MIN_CHUNK, 2049))

    # -- valid frames and their fates
    def continuing(self, n=None):
        """The next frame of the stream (accepted on time)."""
        # swapped frames are longer than the stamp tolerance (32 samples), else a swap looks like jitter
        x = self.samples(n or int(self.rng.integers(64, 2049)))
        msg = image(CH, x.shape[1], x.tobytes(), self.next_ns)
        self.last = (x, self.next_ns)
        self.next_ns += x.shape[1] * NS_PER_S // FS
        return msg, x

    def valid(self, on_time=False):
        r = 1.0 if on_time or self.last is None else self.rng.random()
        if r < 0.03:                                              # another array
            x = self.samples(self.chunk_size())
            self.dropped['frame_id'] += 1
            return image(CH, x.shape[1], x.tobytes(), self.next_ns, frame_id='some_other_array'), x, 'some_other_array'
        if r < 0.08:                                              # forward gap 3 ms .. 5 s
            self.next_ns += int(self.rng.integers(3, 5000)) * 1_000_000
            self.resets['gap'] += 1
        elif r < 0.13:                                            # the last accepted frame again
            x, stamp = self.last
            self.dropped['duplicate'] += 1
            return image(CH, x.shape[1], x.tobytes(), stamp), x, 'audio_array'
        elif r < 0.18:                                            # an old frame
            x = self.samples(self.chunk_size())
            self.dropped['stale'] += 1
            stamp = self.next_ns - int(self.rng.integers(10_000, 1_000_000)) * 1_000_000
            return image(CH, x.shape[1], x.tobytes(), stamp), x, 'audio_array'
        elif r < 0.23:                                            # two frames swapped
            first, x1 = self.continuing()
            second, x2 = self.continuing()
            self.queued.append((first, x1, 'audio_array'))
            self.reordered += 1
            return second, x2, 'audio_array'
        elif r < 0.245:                                           # the stamps go back for good
            self.next_ns -= 1000 * NS_PER_S
            frames = [self.continuing() for _ in range(3)]
            self.queued += [(m, x, 'audio_array') for m, x in frames[1:]]
            self.dropped['stale'] += 2
            self.resets['rewind'] += 1
            return frames[0][0], frames[0][1], 'audio_array'
        msg, x = self.continuing(self.chunk_size())
        return msg, x, 'audio_array'

    # -- frames
    def frame(self, kind=None, on_time=False):
        kind = kind or self.KINDS[self.rng.integers(len(self.KINDS))]
        n = self.chunk_size()
        stamp = self.next_ns
        if self.queued or kind == 'valid':
            msg, x, frame_id = self.queued.pop(0) if self.queued else self.valid(on_time)
            self.assembled.append((x, conv.time_to_ns(msg.header.stamp), frame_id))
            self.sizes['valid'] += 1
            return msg
        self.invalid[kind] += 1
        x = self.samples(n)
        data = x.tobytes()
        if kind == 'encoding':
            return image(CH, n, data, stamp, encoding=str(self.rng.choice(BAD_ENCODINGS)))
        if kind == 'layout':
            how = self.rng.integers(6)
            if how == 0:
                return image(CH, n, data, stamp, step=4 * n + 4)
            if how == 1:
                return image(CH, n, data[:-int(self.rng.integers(1, 9))], stamp)          # truncated
            if how == 2:
                return image(CH, n, data + b'\0' * 4, stamp)                                # trailing bytes
            if how == 3:
                return image(CH, n, data, stamp, bigendian=1)
            if how == 4:
                return image(CH, 2 ** 30 - 1, data, stamp)                                  # huge declared width
            return image(2 ** 31, n, data, stamp)                                           # huge declared height
        if kind == 'channels':
            c = int(self.rng.choice([0, 1, CH - 1, CH + 1, 16, 64]))
            return image(c, n, (0.1 * self.rng.normal(size=(c, n))).astype(np.float32).tobytes(), stamp)
        if kind == 'chunk_size':
            how = self.rng.integers(10)
            if how < 3:
                w = 0
            elif how < 8:
                w = int(self.rng.integers(1, MIN_CHUNK))
            elif how == 8 or not self.huge:
                w = int(self.rng.integers(MAX_CHUNK + 1, 100_000))
            else:
                w = 1 << 20                                                                # 16 MB frame
                self.sizes['16MB'] += 1
            return image(CH, w, np.zeros((CH, w), np.float32).tobytes(), stamp)
        if kind == 'non_finite':
            bad = x.copy()
            idx = self.rng.integers(0, bad.size, size=int(self.rng.choice([1, 3, bad.size])))
            bad.flat[idx] = self.rng.choice([np.nan, np.inf, -np.inf], size=idx.size)
            return image(CH, n, bad.tobytes(), stamp)
        if kind == 'out_of_range':                        # finite, but not audio (and overflows float32 power)
            bad = x.copy()
            idx = self.rng.integers(0, bad.size, size=int(self.rng.choice([1, 3, bad.size])))
            bad.flat[idx] = self.rng.choice([3.0e38, -3.0e38, 1e20, -2 * MAX_ABS_SAMPLE], size=idx.size)
            return image(CH, n, bad.tobytes(), stamp)
        raise AssertionError(kind)

    def reference_windows(self):
        asm = WindowAssembler(CH, FS, WINDOW, HOP, MAX_CHUNK, tolerance_ns=TOLERANCE_NS, frame_id='audio_array')
        return [w for x, stamp, frame_id in self.assembled for w in asm.push(x, stamp, frame_id)]


def start(model_dir, **params):
    graph = Graph(domain_id=DOMAIN)
    node = graph.add(PerceptionNode, {'model_dir': str(model_dir), 'queue_size': 64, 'diagnostics_period_s': 0.2,
                                      'publish_points': True, 'input_qos_depth': 1000, **params})
    rec = graph.add(TopicRecorder, topics={'/diagnostics': DiagnosticArray, 'depth/image': Image}, depth=1000)
    published = []
    original = node.publish_prediction

    def capture(prediction, stamp_ns, *args):   # every prediction the worker publishes, in order
        published.append((stamp_ns, {k: np.array(v) for k, v in prediction.items()}))
        original(prediction, stamp_ns, *args)
    node.publish_prediction = capture
    graph.start()
    assert graph.wait_for(lambda: node.diag_pub.get_subscription_count() >= 1, 10.0), 'discovery timed out'
    return graph, node, rec, published


def pending(node):
    s = node.stats()
    return s['windows'] - s['outputs'] - s['dropped_windows'] - s['inference_errors']


def diagnostics_values(rec):
    msgs = rec.get('/diagnostics')
    return {kv.key: kv.value for kv in msgs[-1][1].status[0].values} if msgs else {}


def expected_diagnostics(fuzz, windows):
    want = {f'invalid frames ({r})': str(fuzz.invalid[r]) for r in FRAME_ERROR_REASONS}
    want.update({f'stream resets ({r})': str(fuzz.resets[r]) for r in DISCONTINUITY_REASONS})
    want.update({f'dropped frames ({r})': str(fuzz.dropped[r]) for r in DROP_REASONS})
    want['reordered frames'] = str(fuzz.reordered)
    want.update({'invalid frames': str(sum(fuzz.invalid.values())), 'windows': str(windows),
                 'dropped windows': '0', 'inference errors': '0'})
    return want


def check_outputs(model_dir, fuzz, published):
    windows = fuzz.reference_windows()
    assert len(published) == len(windows)
    offline = AudioToVision.load(model_dir)
    for (stamp, got), w in zip(published, windows):
        assert stamp == w.end_ns
        want = offline.predict(w.audio)
        np.testing.assert_allclose(got['depth'], want['depth'], rtol=1e-5, atol=1e-6, equal_nan=True)
        np.testing.assert_array_equal(got['segmentation'], want['segmentation'])
    return windows


def test_fuzzed_frames_through_the_subscription_callback(model_dir):
    fuzz = FrameFuzzer(SEED)
    graph, node, rec, published = start(model_dir)
    with graph:
        slowest = 0.0
        frames = [fuzz.frame() for _ in range(1200)] + [fuzz.frame('valid', on_time=True) for _ in range(40)]
        for msg in frames:
            t0 = time.thread_time()                 # CPU time of this thread: what the callback itself costs,
            node.on_frame(msg)                      # not the waits other load imposes on a shared machine
            slowest = max(slowest, time.thread_time() - t0)
            while pending(node) > 32:               # the worker keeps up: no window is dropped
                time.sleep(0.005)
        windows = fuzz.reference_windows()
        want = expected_diagnostics(fuzz, len(windows))
        ok = graph.wait_for(lambda: pending(node) == 0
                            and all(diagnostics_values(rec).get(k) == v for k, v in want.items()), 60.0)
        values = diagnostics_values(rec)
        assert ok, {k: (values.get(k), v) for k, v in want.items() if values.get(k) != v}
        assert node.inference.alive
    assert len(frames) >= 1000 and fuzz.sizes['16MB'] >= 1
    assert all(fuzz.invalid[r] > 20 for r in FRAME_ERROR_REASONS), fuzz.invalid
    assert fuzz.resets['gap'] > 5 and fuzz.resets['rewind'] >= 1, fuzz.resets
    assert all(fuzz.dropped[r] > 5 for r in DROP_REASONS) and fuzz.reordered > 5, (fuzz.dropped, fuzz.reordered)
    assert slowest < 1.0, f'the callback took {slowest:.2f} s of CPU on one frame'
    windows = check_outputs(model_dir, fuzz, published)
    assert len(windows) > 50


class FramePublisher(Node):
    def __init__(self, **kwargs):
        super().__init__('fuzz_frame_publisher', **kwargs)
        self.pub = self.create_publisher(Image, 'audio/frames',
                                         QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE))


def test_fuzzed_frames_over_dds(model_dir):
    fuzz = FrameFuzzer(SEED + 1, huge=False)
    graph, node, rec, published = start(model_dir)
    src = graph.add(FramePublisher)
    with graph:
        assert graph.wait_for(lambda: src.pub.get_subscription_count() >= 1, 10.0)
        frames = [fuzz.frame() for _ in range(300)] + [fuzz.frame('valid', on_time=True) for _ in range(20)]
        for msg in frames:
            src.pub.publish(msg)
            time.sleep(0.002)
            while pending(node) > 32:
                time.sleep(0.005)
        windows = fuzz.reference_windows()
        want = expected_diagnostics(fuzz, len(windows))
        ok = graph.wait_for(lambda: node.statistics.frames_in.total == len(frames) and pending(node) == 0
                            and all(diagnostics_values(rec).get(k) == v for k, v in want.items()), 60.0)
        values = diagnostics_values(rec)
        assert ok, (node.statistics.frames_in.total, len(frames), {k: (values.get(k), v) for k, v in want.items()
                                                                   if values.get(k) != v})
        assert graph.wait_for(lambda: rec.count('depth/image') == len(windows), 10.0)
    check_outputs(model_dir, fuzz, published)
