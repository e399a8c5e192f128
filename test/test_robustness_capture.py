# SPDX-License-Identifier: Apache-2.0
"""audio_capture_node with a microphone array that overruns, disappears, comes back and stalls.

Exercised up to the PortAudio boundary: a fake ``sounddevice`` module (device list, InputStream with the
real callback / finished_callback signature, PortAudioError, _terminate/_initialize) replaces the real one
in ``sys.modules``; everything above it -- the node's stream and watchdog logic, audio_io.CaptureBuffer,
the ADC clock, the publisher, /diagnostics and a perception_node downstream -- is the real code on a real
ROS graph. The fake stream's callback is driven from a thread, in real time, as PortAudio would.
"""
import os
import sys
import threading
import time
from types import SimpleNamespace

import numpy as np
import pytest

rclpy = pytest.importorskip('rclpy', reason='needs rclpy + DDS: pip install -r requirements-ros.txt')

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402

from audio_vision.ros import conversions as conv  # noqa: E402
from audio_vision.ros.audio_capture_node import AudioCaptureNode  # noqa: E402
from audio_vision.ros.graph import Graph, TopicRecorder  # noqa: E402
from audio_vision.ros.perception_node import PerceptionNode  # noqa: E402
from helpers import write_tiny_models  # noqa: E402

pytestmark = [pytest.mark.ros, pytest.mark.timeout(120)]
DOMAIN = 68   # one ROS domain per test module
os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
FS, CH, BLOCK = 16000, 8, 512          # 32 ms blocks
DEVICE = {'name': 'Fake 8-Mic USB Array', 'max_input_channels': CH, 'max_output_channels': 0,
          'default_samplerate': FS}


class PortAudioError(Exception):
    pass


class FakeStream:
    def __init__(self, sd, device, channels, callback, finished_callback, **kwargs):
        if not sd.present:
            raise PortAudioError('Error opening InputStream: Device unavailable [PaErrorCode -9985]')
        self.sd, self.callback, self.finished_callback = sd, callback, finished_callback
        self.device = 0 if device is None else device
        self.channels, self.kwargs = channels, kwargs
        self.active = self.closed = False
        sd.streams.append(self)

    def start(self):
        self.active = True

    def abort(self, ignore_errors=True):
        self.active = False

    def close(self, ignore_errors=True):
        self.active, self.closed = False, True


class FakeSoundDevice:
    """The slice of the sounddevice API audio_capture_node uses."""

    PortAudioError = PortAudioError

    def __init__(self):
        self.present = True
        self.streams: list[FakeStream] = []
        self.rescans = 0

    def query_devices(self, device=None):
        devices = [dict(DEVICE)] if self.present else []
        if device is None:
            return devices
        if not 0 <= int(device) < len(devices):
            raise PortAudioError(f'Error querying device {device}')
        return devices[int(device)]

    def InputStream(self, **kwargs):  # noqa: N802 - the sounddevice name
        return FakeStream(self, **kwargs)

    def Stream(self, **kwargs):  # noqa: N802
        raise AssertionError('no full-duplex stream expected (chirp is off)')

    def _terminate(self):
        self.rescans += 1

    def _initialize(self):
        pass

    # -- what the hardware does
    def unplug(self):
        """The device disappears: PortAudio aborts the stream and calls finished_callback."""
        self.present = False
        stream = self.streams[-1]
        stream.active = False
        stream.finished_callback()


class Driver(threading.Thread):
    """The device's audio thread: every 32 ms of real time one block goes to the current stream's callback,
    unless the device is unplugged or ``paused`` (a stall). Every 10th block reports an input overflow."""

    def __init__(self, sd):
        super().__init__(daemon=True)
        self.sd = sd
        self.adc = 1000.0                   # the device's stream clock (s)
        self.delivered = []                 # (stream index, block) handed to a callback
        self.adc_times = []                 # inputBufferAdcTime of each delivered block
        self.overflows = 0
        self.paused = False
        self.stop = threading.Event()
        self.rng = np.random.default_rng(0)

    def run(self):
        t_next = time.monotonic()
        while not self.stop.is_set():
            t_next += BLOCK / FS
            time.sleep(max(0.0, t_next - time.monotonic()))
            stream = self.sd.streams[-1] if self.sd.streams else None
            if self.sd.present and not self.paused and stream is not None and stream.active:
                block = (0.1 * self.rng.normal(size=(BLOCK, CH))).astype(np.float32)
                overflow = len(self.delivered) % 10 == 9
                status = SimpleNamespace(input_overflow=overflow, output_underflow=False)
                info = SimpleNamespace(inputBufferAdcTime=self.adc, currentTime=self.adc + 0.004)
                stream.callback(block, BLOCK, info, status)
                self.delivered.append((len(self.sd.streams) - 1, block))
                self.adc_times.append(self.adc)
                self.overflows += overflow
            self.adc += BLOCK / FS          # the device clock runs on, delivered or not


def last_status(rec):
    msgs = [m for _, m in rec.get('/diagnostics') if m.status and 'audio capture' in m.status[0].name]
    if not msgs:
        return None, {}
    s = msgs[-1].status[0]
    return s, {kv.key: kv.value for kv in s.values}


def level_is(rec, level, words=''):
    s, _ = last_status(rec)
    return s is not None and s.level == level and words in s.message


def test_overruns_device_loss_and_stalls_are_reported_and_recovered(monkeypatch, tmp_path):
    sd = FakeSoundDevice()
    monkeypatch.setitem(sys.modules, 'sounddevice', sd)     # the PortAudio boundary
    write_tiny_models(tmp_path, num_mics=CH)
    drive = Driver(sd)
    with Graph(domain_id=DOMAIN) as graph:
        perception = graph.add(PerceptionNode, {'model_dir': str(tmp_path), 'queue_size': 8,
                                                'input_qos_depth': 200, 'diagnostics_period_s': 0.2})
        rec = graph.add(TopicRecorder, topics={'audio/frames': Image, '/diagnostics': DiagnosticArray,
                                               'depth/image': Image}, depth=1000)
        capture = graph.add(AudioCaptureNode, {'source': 'device', 'device': 'fake 8-mic', 'channels': CH,
                                               'sample_rate': FS, 'chunk_samples': BLOCK,
                                               'reconnect_period_s': 0.3, 'diagnostics_period_s': 0.1})
        drive.start()                       # the hardware starts delivering as soon as the stream is open
        try:
            graph.start()
            assert len(sd.streams) == 1 and sd.streams[0].device == 0     # found by name substring

            # 1. streaming, with overruns: the blocks are published in order, stamped from the ADC clock
            assert graph.wait_for(lambda: rec.count('audio/frames') >= 40 and rec.count('depth/image') >= 4, 15.0)
            assert capture.reconnects == 0
            frames = [m for _, m in rec.get('audio/frames')]
            blocks = [b for _, b in drive.delivered]
            first = 0                              # the recorder may have joined after the first blocks
            while not np.array_equal(conv.image_to_array(frames[0]), blocks[first].T):
                first += 1
            for msg, block in zip(frames, blocks[first:]):
                np.testing.assert_array_equal(conv.image_to_array(msg), block.T)
            # stamp = ADC time + the smallest ROS-minus-stream-clock offset seen so far: a late callback (busy
            # machine) never makes a stamp later, a prompt one can only pull the offset earlier
            stamps = np.array([conv.time_to_ns(m.header.stamp) for m in frames])
            adc_ns = np.round(np.array(drive.adc_times[first:first + len(frames)]) * 10 ** 9).astype(np.int64)
            offsets = (stamps - adc_ns)[:64]                  # AdcClock's history: 64 callbacks
            assert (np.diff(offsets) <= 1).all(), np.diff(offsets)
            assert graph.wait_for(lambda: level_is(rec, DiagnosticStatus.OK)
                                  and int(last_status(rec)[1]['overruns']) >= 3, 5.0), last_status(rec)

            # 2. the device is unplugged: ERROR while it is gone, retried every reconnect_period_s
            sd.unplug()
            assert graph.wait_for(lambda: level_is(rec, DiagnosticStatus.ERROR, 'unavailable'), 5.0), last_status(rec)
            rescans = sd.rescans
            assert graph.wait_for(lambda: sd.rescans >= rescans + 1, 5.0)     # retried, however busy the machine
            assert sd.streams[0].closed and len(sd.streams) == 1

            # 3. it comes back: reopened, OK again, audio reaches perception again (after a stamp gap)
            outputs_before = rec.count('depth/image')
            sd.present = True
            assert graph.wait_for(lambda: len(sd.streams) == 2 and capture.reconnects == 1, 5.0)
            assert graph.wait_for(lambda: level_is(rec, DiagnosticStatus.OK)
                                  and last_status(rec)[1]['reconnects'] == '1', 5.0), last_status(rec)
            assert graph.wait_for(lambda: rec.count('depth/image') >= outputs_before + 4, 10.0)
            # one gap for the reconnect, plus at most one per ADC-offset correction (a prompter callback
            # after a starved one pulls the stamps earlier: the stream restarts there)
            frames = [m for _, m in rec.get('audio/frames')]
            adc_ns = np.round(np.array(drive.adc_times[first:first + len(frames)]) * 10 ** 9).astype(np.int64)
            offsets = np.array([conv.time_to_ns(m.header.stamp) for m in frames]) - adc_ns[:len(frames)]
            corrections = int(np.count_nonzero(np.diff(offsets)))
            assert 1 <= perception.stats()['stream_resets']['gap'] <= 1 + corrections, (perception.stats(), offsets)

            # 4. the stream stalls (open, but no callbacks): the watchdog reopens it
            drive.paused = True
            assert graph.wait_for(lambda: len(sd.streams) == 3 and sd.streams[1].closed, 5.0)
            drive.paused = False
            assert graph.wait_for(lambda: capture.reconnects == 2 and last_status(rec)[1].get('reconnects') == '2'
                                  and level_is(rec, DiagnosticStatus.OK), 5.0), last_status(rec)
            time.sleep(0.3)
        finally:
            drive.stop.set()
            drive.join(timeout=5)
        # every block the device delivered was published; overruns counted one by one
        assert graph.wait_for(lambda: last_status(rec)[1].get('frames published') == str(len(drive.delivered))
                              and last_status(rec)[1].get('overruns') == str(drive.overflows), 5.0), (
            last_status(rec), len(drive.delivered), drive.overflows)
        assert last_status(rec)[1]['dropped blocks'] == '0'
        assert perception.stats()['invalid_frames'] == {r: 0 for r in perception.stats()['invalid_frames']}
        assert perception.stats()['inference_errors'] == 0
