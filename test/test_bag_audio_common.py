# SPDX-License-Identifier: Apache-2.0
"""audio_common_msgs audio (AudioDataStamped + AudioInfo, as ROS 2's audio_capture records it): the PCM codec
on plain bytes, bags written with rosbags and the shipped definitions, and `dataset from-bag` reading them."""
import array
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from rosbags.rosbag2 import Reader

from audio_vision.bag import BagError, audio_common
from audio_vision.bag import messages as m
from audio_vision.bag import schema
from audio_vision.bag.convert import WindowSettings, iter_windows
from audio_vision.bag.reader import BagReader
from audio_vision.bag.writer import BagWriter
from audio_vision.core.stream import codec
from audio_vision.core.stream.windowing import FrameError, FrameSpec

REPO = Path(__file__).resolve().parents[1]
NS = 1_000_000_000
FS = 16000
INFO = SimpleNamespace(channels=2, sample_rate=FS, sample_format='S16LE', bitrate=512000, coding_format='wave')


# ---------------------------------------------------------------- the codec, on plain bytes

@pytest.mark.parametrize('wrap', [bytes, lambda b: array.array('B', b), lambda b: np.frombuffer(b, np.uint8),
                                  lambda b: list(b)], ids=['bytes', 'array.array (rclpy)', 'ndarray (rosbags)', 'list'])
def test_s16le_interleaved_bytes_decode_to_channels_at_full_scale(wrap):
    # instants (L, R): (0, -32768), (16384, 32767), (-16384, 1)
    raw = np.array([0, -32768, 16384, 32767, -16384, 1], '<i2').tobytes()
    layout = codec.pcm_layout(INFO)
    assert (layout.channels, layout.sample_rate, layout.sample_format, layout.frame_bytes) == (2, FS, 'S16LE', 4)
    out = codec.pcm_samples(wrap(raw), layout, FrameSpec(2, FS))
    assert out.dtype == np.float32 and out.shape == (2, 3) and out.flags['C_CONTIGUOUS']
    np.testing.assert_array_equal(out, [[0.0, 0.5, -0.5], [-1.0, 32767 / 32768, 1 / 32768]])


def test_f32le_and_s32le_decode_and_encoding_round_trips():
    x = np.array([[0.25, -0.5, 0.125], [1.0, -1.0, 0.0]], np.float32)
    f32 = codec.pcm_layout(SimpleNamespace(**{**INFO.__dict__, 'sample_format': 'F32LE'}))
    raw = x.T.astype('<f4').tobytes()                    # interleaved by hand
    assert codec.pcm_bytes(x, 'F32LE').tobytes() == raw
    np.testing.assert_array_equal(codec.pcm_samples(raw, f32), x)
    s32 = codec.pcm_layout(SimpleNamespace(**{**INFO.__dict__, 'sample_format': 's32le'}))   # case-insensitive
    np.testing.assert_allclose(codec.pcm_samples(codec.pcm_bytes(x, 'S32LE'), s32), np.minimum(x, 1 - 2 ** -31))
    s16 = codec.pcm_layout(INFO)
    y = codec.pcm_samples(codec.pcm_bytes(x, 'S16LE'), s16)
    assert np.abs(y - x).max() <= 2 ** -15 and y[1, 0] == 32767 / 32768     # +1.0 clips to the largest code


def test_compressed_or_unknown_formats_are_refused_with_the_reason():
    with pytest.raises(ValueError, match="coding_format 'mp3' is not raw PCM.*format 'wave'"):
        codec.pcm_layout(SimpleNamespace(**{**INFO.__dict__, 'coding_format': 'mp3'}))
    with pytest.raises(ValueError, match="sample_format 'U8' is not supported.*S16LE, S32LE, F32LE"):
        codec.pcm_layout(SimpleNamespace(**{**INFO.__dict__, 'sample_format': 'U8'}))
    with pytest.raises(ValueError, match='0 channels'):
        codec.pcm_layout(SimpleNamespace(**{**INFO.__dict__, 'channels': 0}))
    assert codec.pcm_layout(SimpleNamespace(**{**INFO.__dict__, 'coding_format': 'WAVE'})).channels == 2


def test_pcm_frames_are_validated_like_image_frames():
    layout = codec.pcm_layout(INFO)
    spec = FrameSpec(2, FS, min_samples=2, max_samples=4)
    good = codec.pcm_bytes(np.zeros((2, 3)), 'S16LE').tobytes()
    cases = {'layout': good[:-1],                                      # half an instant
             'chunk_size': good[:4],                                   # 1 instant < min_samples
             'non_finite': np.array([np.nan, 0, 0, 0], '<f4').tobytes()}
    for reason, raw in cases.items():
        lay = codec.pcm_layout(SimpleNamespace(**{**INFO.__dict__, 'sample_format': 'F32LE'})) \
            if reason == 'non_finite' else layout
        with pytest.raises(FrameError) as err:
            codec.pcm_samples(raw, lay, spec)
        assert err.value.reason == reason
    with pytest.raises(FrameError) as err:
        codec.pcm_samples(good, layout, FrameSpec(4, FS))
    assert err.value.reason == 'channels'
    with pytest.raises(FrameError) as err:
        codec.pcm_samples(good, layout, FrameSpec(2, 48000))
    assert err.value.reason == 'encoding' and '16000 Hz' in str(err.value)


# ---------------------------------------------------------------- bags written with the shipped definitions

def audio_capture_bag(path, audio, sample_format='S16LE', coding_format='wave', chunk=800, info=True,
                      images=True, t0=1_650_000_000 * NS):
    """What `ros2 bag record` of audio_capture (+ a depth camera) holds: AudioDataStamped on
    /audio/audio_stamped, the latched AudioInfo on /audio/audio_info; the same audio as 32FC1 Image frames on
    /audio/frames for comparison; depth + segmentation every 50 ms."""
    c, n = audio.shape
    events = []
    if info:
        events.append((t0, '/audio/audio_info', m.audio_info(c, FS, sample_format, coding_format, FS * c * 16)))
    for a in range(0, n, chunk):
        stamp = t0 + a * NS // FS
        events.append((stamp + chunk * NS // FS, '/audio/audio_stamped',
                       m.audio_data_stamped(audio[:, a:a + chunk], stamp, 'mic', sample_format)))
        events.append((stamp + chunk * NS // FS, '/audio/frames', m.audio_frame(audio[:, a:a + chunk], stamp, 'mic')))
    depth = np.full((16, 16), 2.0, np.float32)
    labels = np.zeros((16, 16), np.uint8)
    K = np.array([[8.0, 0, 7.5], [0, 8.0, 7.5], [0, 0, 1]])
    for k in range(int(n / FS * 20) + 1 if images else 0):
        stamp = t0 + k * NS // 20
        events.append((stamp, '/gt/depth/image', m.image(depth + k, '32FC1', stamp, 'cam')))
        events.append((stamp, '/gt/depth/camera_info', m.camera_info(K, 16, 16, stamp, 'cam')))
        events.append((stamp, '/gt/segmentation', m.image(labels, 'mono8', stamp, 'cam')))
    events.sort(key=lambda e: e[0])
    with BagWriter(path) as bag:
        if info:
            bag.add_topic('/audio/audio_info', audio_common.AUDIO_INFO, schema.LATCHED_QOS)
        bag.add_topic('/audio/audio_stamped', audio_common.AUDIO_DATA_STAMPED, schema.RELIABLE_QOS)
        bag.add_topic('/audio/frames', schema.IMAGE, schema.RELIABLE_QOS)
        if images:
            bag.add_topic('/gt/depth/image', schema.IMAGE, schema.SENSOR_DATA_QOS)
            bag.add_topic('/gt/depth/camera_info', schema.CAMERA_INFO, schema.SENSOR_DATA_QOS)
            bag.add_topic('/gt/segmentation', schema.IMAGE, schema.SENSOR_DATA_QOS)
        for t, topic, msg in events:
            bag.write(topic, msg, t)
    return path


def noise(channels=4, seconds=2.0, seed=0):
    return (np.random.default_rng(seed).uniform(-0.5, 0.5, (channels, int(seconds * FS)))).astype(np.float32)


def windows(bag, topic, channels=4):
    settings = WindowSettings(FrameSpec(channels, FS), FS, FS // 4, 2_000_000)
    with BagReader(bag) as reader:
        return [w for w, _ in iter_windows(reader, topic, settings)]


def test_the_bag_carries_the_definitions_and_decodes_without_them(tmp_path):
    bag = audio_capture_bag(tmp_path / 'bag', noise(seconds=0.5), images=False)
    with Reader(bag) as raw:
        defs = {c.topic: (c.msgtype, c.msgdef.data) for c in raw.connections}
    msgtype, text = defs['/audio/audio_stamped']
    assert msgtype == 'audio_common_msgs/msg/AudioDataStamped'
    assert 'audio_common_msgs/AudioData audio' in text and 'uint8[] data' in text
    assert 'string coding_format' in defs['/audio/audio_info'][1]
    with BagReader(bag) as reader:          # a bag reader with only ROS 2 Kilted's types reads them from the bag
        reader._store = m.get_typestore(m.STORE)
        (info,) = [reader.decode(x) for x in reader.messages(['/audio/audio_info'])]
        assert (info.channels, info.sample_rate, info.sample_format, info.coding_format) == (4, FS, 'S16LE', 'wave')


@pytest.mark.parametrize('sample_format', ['S16LE', 'F32LE'])
def test_audio_data_stamped_gives_the_windows_of_the_image_frames(tmp_path, sample_format):
    audio = noise()
    bag = audio_capture_bag(tmp_path / 'bag', audio, sample_format, images=False)
    expected = windows(bag, '/audio/frames')
    got = windows(bag, '/audio/audio_stamped')
    assert len(got) == len(expected) == 5            # 2 s, 1 s windows every 0.25 s
    quantised = codec.pcm_samples(codec.pcm_bytes(audio, sample_format),
                                  codec.PcmLayout(4, FS, sample_format))
    for k, (g, e) in enumerate(zip(got, expected)):
        assert (g.start_ns, g.end_ns) == (e.start_ns, e.end_ns)
        np.testing.assert_array_equal(g.audio, quantised[:, k * 4000:k * 4000 + FS])
        if sample_format == 'F32LE':
            np.testing.assert_array_equal(g.audio, e.audio)


def test_unusable_audio_common_bags_fail_with_the_reason(tmp_path):
    audio = noise(seconds=0.5)
    mp3 = audio_capture_bag(tmp_path / 'mp3', audio, coding_format='mp3', images=False)
    with pytest.raises(BagError, match="/audio/audio_info: AudioInfo coding_format 'mp3' is not raw PCM"):
        windows(mp3, '/audio/audio_stamped')
    no_info = audio_capture_bag(tmp_path / 'noinfo', audio, info=False, images=False)
    with pytest.raises(BagError, match='no AudioInfo topic /audio/audio_info in the bag.*--audio-info-topic'):
        windows(no_info, '/audio/audio_stamped')
    with BagReader(no_info) as reader, pytest.raises(BagError, match='only to audio_common_msgs/msg/AudioDataStamped'):
        audio_common.AudioTopic(reader, '/audio/frames', '/audio/audio_info')
    ok = audio_capture_bag(tmp_path / 'ok', audio, images=False)
    with BagReader(ok) as reader:
        topic = audio_common.AudioTopic(reader, '/audio/audio_stamped')
        assert topic.describe() == f'4 ch @ {FS} Hz S16LE (audio_common_msgs/msg/AudioDataStamped)'
        with pytest.raises(BagError, match='the audio has 4 channels but the array config has 8'):
            topic.check(8, FS)
        with pytest.raises(BagError, match='the audio is 16000 Hz but the config says 48000 Hz'):
            topic.check(4, 48000)


def cli(*args, ok=True):
    proc = subprocess.run([sys.executable, '-m', 'audio_vision', *map(str, args)], cwd=REPO, text=True,
                          capture_output=True, timeout=300, env={**os.environ, 'OMP_NUM_THREADS': '1'})
    assert (proc.returncode == 0) == ok, proc.stderr[-3000:]
    return proc


def test_dataset_from_bag_reads_audio_capture_recordings(tmp_path):
    """`dataset from-bag --audio-topic .../audio_stamped`: the AudioInfo is found next to it, the S16LE audio
    becomes the dataset's float audio, windows as from Image frames; an mp3 recording is refused."""
    cfg = tmp_path / 'array.yaml'
    cfg.write_text('array: {mics_per_ring: 2}\n')           # 4 microphones at 16 kHz
    audio = noise()
    bag = audio_capture_bag(tmp_path / 'bag', audio)
    common = ['--depth-topic', '/gt/depth/image', '--segmentation-topic', '/gt/segmentation', '--split', 'test',
              '--image-size', 16, '--config', cfg, '--quiet']
    cli('dataset', 'from-bag', bag, '--out', tmp_path / 'pcm', '--audio-topic', '/audio/audio_stamped', *common)
    cli('dataset', 'from-bag', bag, '--out', tmp_path / 'img', '--audio-topic', '/audio/frames', *common)
    got = np.concatenate([np.load(p) for p in sorted((tmp_path / 'pcm' / 'test').glob('shard-*/audio.npy'))])
    ref = np.concatenate([np.load(p) for p in sorted((tmp_path / 'img' / 'test').glob('shard-*/audio.npy'))])
    assert got.shape == ref.shape == (5, 4, FS) and got.dtype == np.float32
    quantised = codec.pcm_samples(codec.pcm_bytes(audio, 'S16LE'), codec.PcmLayout(4, FS, 'S16LE'))
    for k in range(5):
        np.testing.assert_array_equal(got[k], quantised[:, k * 4000:k * 4000 + FS])
    assert np.abs(got - ref).max() <= 2 ** -15
    depth = np.concatenate([np.load(p) for p in sorted((tmp_path / 'pcm' / 'test').glob('shard-*/depth.npy'))])
    np.testing.assert_array_equal(depth[:, 0, 0], [2.0 + 20 * (k + 4) / 4 for k in range(5)])   # image at window end

    mp3 = audio_capture_bag(tmp_path / 'mp3', audio, coding_format='mp3')
    proc = cli('dataset', 'from-bag', mp3, '--out', tmp_path / 'bad', '--audio-topic', '/audio/audio_stamped',
               *common, ok=False)
    assert "coding_format 'mp3' is not raw PCM" in proc.stderr and not (tmp_path / 'bad').exists()
