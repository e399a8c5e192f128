# SPDX-License-Identifier: Apache-2.0
"""audio_capture_node: the PortAudio callback logic up to the PortAudio boundary, and WAV capture
feeding perception_node on a real ROS graph."""
import os
from types import SimpleNamespace

import numpy as np
import pytest

rclpy = pytest.importorskip('rclpy', reason='needs rclpy + DDS: pip install -r requirements-ros.txt')
soundfile = pytest.importorskip('soundfile', reason='needs soundfile: pip install -r requirements.txt')

from sensor_msgs.msg import Image  # noqa: E402

from audio_vision.core.inference.pipeline import AudioToVision  # noqa: E402
from audio_vision.core.stream.windowing import NS_PER_S  # noqa: E402
from audio_vision.ros import conversions as conv  # noqa: E402
from audio_vision.ros.audio_capture_node import AudioCaptureNode  # noqa: E402
from audio_vision.ros.audio_io import AdcClock, CaptureBuffer, ChirpPlayer, WavReader, find_device, pcm_to_float  # noqa: E402,E501
from audio_vision.ros.graph import Graph, TopicRecorder  # noqa: E402
from audio_vision.ros.lifecycle import StartupError  # noqa: E402
from audio_vision.ros.perception_node import PerceptionNode  # noqa: E402
from helpers import write_tiny_models  # noqa: E402

pytestmark = pytest.mark.ros
DOMAIN = 63   # one ROS domain per test module
os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
FS, CH, WINDOW = 16000, 4, 4000


# ---------------------------------------------------------------- PortAudio callback logic

def test_pcm_conversion():
    block = np.array([[-32768, 16384], [0, 32767]], np.int16)      # (frames, channels)
    out = pcm_to_float(block, 'int16')
    assert out.shape == (2, 2) and out.dtype == np.float32 and out.flags.c_contiguous
    np.testing.assert_allclose(out, [[-1.0, 0.0], [0.5, 32767 / 32768]])
    np.testing.assert_allclose(pcm_to_float(np.array([[2 ** 30]], np.int32), 'int32'), [[0.5]])
    with pytest.raises(ValueError):
        pcm_to_float(block, 'uint8')


def test_adc_clock_maps_capture_time_and_filters_callback_jitter():
    clock = AdcClock(FS)
    offset = 1_000 * NS_PER_S   # ROS time = stream time + 1000 s
    stamps = []
    for k in range(20):
        adc = 5.0 + k * 0.064
        current = adc + 0.010                          # the callback runs 10 ms after the ADC
        delay = (k % 3) * 2_000_000                    # 0-4 ms scheduling delay before we read ROS time
        stamps.append(clock.stamp(adc, current, round(current * NS_PER_S) + offset + delay, 1024))
    np.testing.assert_array_equal(np.array(stamps) - offset, [round((5.0 + k * 0.064) * NS_PER_S) for k in range(20)])
    # no ADC time from the host API: ROS time minus the block duration
    assert clock.stamp(0.0, 0.0, 10 * NS_PER_S, 1600) == 10 * NS_PER_S - NS_PER_S // 10


def test_capture_buffer_callback_stamps_counts_and_bounds():
    now = [100 * NS_PER_S]
    buf = CaptureBuffer(channels=2, sample_rate=FS, dtype='int16', now_ns=lambda: now[0], max_blocks=3)
    for k in range(5):
        block = np.full((160, 3), k * 100, np.int16)         # the device delivers 3 channels; 2 are used
        t = SimpleNamespace(inputBufferAdcTime=1.0 + k * 0.01, currentTime=1.0 + k * 0.01 + 0.005)
        status = SimpleNamespace(input_overflow=(k == 2))
        now[0] = 100 * NS_PER_S + round((k * 0.01 + 0.005) * NS_PER_S)
        buf.callback(block, 160, t, status)
    assert buf.overruns == 1 and buf.blocks == 5 and buf.dropped_blocks == 2
    blocks = buf.drain()
    assert len(blocks) == 3 and buf.drain() == []
    for (samples, stamp), k in zip(blocks, (2, 3, 4)):
        assert samples.shape == (2, 160)
        np.testing.assert_allclose(samples, k * 100 / 32768)
        assert stamp == 99 * NS_PER_S + round((1.0 + k * 0.01) * NS_PER_S)


def test_capture_buffer_wakes_the_consumer_after_each_block_is_queued():
    """The audio thread's callback calls ``notify`` once per block, with the block already drainable (the
    node publishes it from the executor at once instead of on a polling timer)."""
    drained = []
    buf = CaptureBuffer(channels=2, sample_rate=FS, dtype='float32', now_ns=lambda: 100 * NS_PER_S,
                        notify=lambda: drained.append(buf.drain()))
    for k in range(4):
        t = SimpleNamespace(inputBufferAdcTime=1.0 + k * 0.01, currentTime=1.0 + k * 0.01 + 0.005)
        buf.callback(np.full((160, 2), k, np.float32), 160, t, None)
    assert [len(d) for d in drained] == [1, 1, 1, 1]
    assert [float(d[0][0][0, 0]) for d in drained] == [0.0, 1.0, 2.0, 3.0]


def test_find_device_by_index_or_name():
    devices = [{'name': 'HDA Intel PCH: ALC (hw:0,0)', 'max_input_channels': 2, 'max_output_channels': 2},
               {'name': 'ReSpeaker 8-Mic Array', 'max_input_channels': 8, 'max_output_channels': 0},
               {'name': 'pulse', 'max_input_channels': 32, 'max_output_channels': 32}]
    assert find_device('respeaker', devices, 8) == 1
    assert find_device('1', devices, 8) == 1
    assert find_device('pulse', devices, 1, 'output') == 2
    with pytest.raises(LookupError, match='ReSpeaker'):      # the message lists what is available
        find_device('umik', devices, 8)
    with pytest.raises(LookupError, match='2 input channels'):
        find_device('0', devices, 8)
    with pytest.raises(LookupError):
        find_device('7', devices, 1)


def test_chirp_player_repeats_the_simulators_pulse():
    from audio_vision.core.features.chirp import chirp_pulse
    pulse = chirp_pulse(FS, 500.0, 7500.0, 0.01, 'linear')
    player = ChirpPlayer(pulse, 0.25, FS, amplitude=0.5)
    out = np.empty((3 * FS // 4, 2), np.float32)
    for k in range(0, len(out), 1000):            # blocks of any size
        player.fill(out[k:k + 1000])
    period = FS // 4
    np.testing.assert_array_equal(out[:, 0], out[:, 1])
    np.testing.assert_allclose(out[:period, 0], out[period:2 * period, 0])
    assert np.abs(out).max() == pytest.approx(0.5)
    np.testing.assert_allclose(out[:len(pulse), 0], 0.5 * pulse / np.abs(pulse).max(), rtol=1e-5, atol=1e-7)
    assert not out[len(pulse):period].any()


def write_wav(path, seconds=2.0, channels=CH, seed=0):
    audio = (0.1 * np.random.default_rng(seed).normal(size=(int(seconds * FS), channels))).astype(np.float32)
    soundfile.write(str(path), audio, FS, subtype='FLOAT')
    return audio.T.copy()


def test_wav_reader_reads_by_index_and_loops(tmp_path):
    audio = write_wav(tmp_path / 'a.wav', seconds=0.1)   # 1600 samples
    r = WavReader(tmp_path / 'a.wav')
    assert (r.channels, r.sample_rate, r.frames) == (CH, FS, 1600)
    np.testing.assert_array_equal(r.read(100, 50), audio[:, 100:150])
    assert r.read(1580, 50).shape == (CH, 20) and r.read(1600, 50) is None
    looped = WavReader(tmp_path / 'a.wav', loop=True)
    np.testing.assert_array_equal(looped.read(1580, 50), np.concatenate([audio[:, 1580:], audio[:, :30]], axis=1))
    np.testing.assert_array_equal(looped.read(3 * 1600 + 7, 10), audio[:, 7:17])
    with pytest.raises(ValueError, match='cannot open'):
        WavReader(tmp_path / 'missing.wav')


# ---------------------------------------------------------------- graph

@pytest.fixture(scope='module')
def model_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp('tiny_model')
    write_tiny_models(path, num_mics=CH)
    return path


def test_wav_capture_feeds_perception(model_dir, tmp_path):
    audio = write_wav(tmp_path / 'array.wav', seconds=1.25)
    with Graph(domain_id=DOMAIN) as graph:
        capture = graph.add(AudioCaptureNode, {'source': 'wav', 'wav_path': str(tmp_path / 'array.wav'),
                                               'channels': 0, 'chunk_samples': 800, 'rate': 2.0})
        perception = graph.add(PerceptionNode, {'model_dir': str(model_dir), 'queue_size': 8,
                                                'input_qos_depth': 100})
        rec = graph.add(TopicRecorder, topics={'depth/image': Image, 'segmentation/image': Image,
                                               'audio/frames': Image})
        graph.start()

        def drained():        # the file has ended and every frame published has been through perception
            s = perception.stats()
            return (not capture.connected and s['frames'] == capture.frames_out.total
                    and s['windows'] == s['outputs'] + s['dropped_windows'] == rec.count('segmentation/image'))
        assert graph.wait_for(drained, 20.0), (rec.counts, perception.stats(), capture.frames_out.total)
    stats, skipped, start_ns = perception.stats(), capture.pacer.skipped, capture.start_ns
    assert sum(stats['invalid_frames'].values()) == 0
    assert all(v == 0 for k, v in stats['stream_resets'].items() if k != 'gap'), stats
    # stamped from the file's sample index: t_open + index / fs. A starved timer skips chunks (counted,
    # as a device overrun would): those are missing stamps, never shifted ones.
    frames = [m for _, m in rec.get('audio/frames')]
    assert all(m.height == CH and m.width == 800 for m in frames)
    index = [(conv.time_to_ns(m.header.stamp) - start_ns) * FS // NS_PER_S for m in frames]
    assert [start_ns + i * NS_PER_S // FS for i in index] == [conv.time_to_ns(m.header.stamp) for m in frames]
    assert index == sorted(set(index)) and set(index) <= set(range(0, 25 * 800, 800)), index
    assert 25 - skipped <= len(frames) <= 25 and (skipped or len(frames) == 25), (len(frames), skipped)
    for i, m in zip(index, frames):
        np.testing.assert_array_equal(conv.msg_to_audio(m, perception.config.spec), audio[:, i:i + 800])
    jumps = int(np.count_nonzero(np.diff(index) != 800))
    assert stats['stream_resets']['gap'] <= jumps + len(frames) - stats['frames'], (stats, index)
    # the last window, as the offline pipeline sees it (the ring buffer only assembles contiguous audio)
    offline = AudioToVision.load(model_dir)
    last = rec.get('segmentation/image')[-1][1]
    end = (conv.time_to_ns(last.header.stamp) - start_ns) * FS // NS_PER_S
    assert end == 5 * WINDOW or (skipped and WINDOW <= end <= 5 * WINDOW), (end, skipped)
    np.testing.assert_array_equal(conv.image_to_array(last),
                                  offline.predict(audio[:, end - WINDOW:end])['segmentation'])


@pytest.mark.parametrize('params, words', [
    ({'source': 'wav', 'wav_path': ''}, ['wav_path']),
    ({'source': 'wav', 'wav_path': '/nonexistent.wav'}, ['cannot open']),
    ({'source': 'wav', 'channels': 8}, ['4 channels', "'channels' is 8"]),
    ({'source': 'wav', 'sample_rate': 48000}, ['16000 Hz', 'resample']),
    ({'source': 'microphone'}, ['source', 'one of']),
    ({'dtype': 'float64'}, ['dtype']),
])
def test_invalid_capture_parameters_are_refused(tmp_path, params, words):
    write_wav(tmp_path / 'a.wav', seconds=0.1)
    if params.get('source') == 'wav':   # config/audio_capture.yaml says 8 channels: 0 = the file's
        params = {'wav_path': str(tmp_path / 'a.wav'), 'channels': 0, **params}
    with Graph(domain_id=DOMAIN) as graph:
        with pytest.raises(StartupError) as err:
            graph.add(AudioCaptureNode, params)
    for w in words:
        assert w in str(err.value), str(err.value)


def test_device_source_without_portaudio_is_one_clear_error():
    try:
        import sounddevice  # noqa: F401
        pytest.skip('PortAudio is installed here: runs where libportaudio2 is absent')
    except OSError:
        pass
    with Graph(domain_id=DOMAIN) as graph:
        with pytest.raises(StartupError, match='libportaudio2'):
            graph.add(AudioCaptureNode, {'source': 'device'})
