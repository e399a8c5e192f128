# SPDX-License-Identifier: Apache-2.0
"""The perception node's pure parts, without ROS or a trained model: its configuration (parameter checks, window
sizes, the assembler it builds, the images a prediction publishes), its statistics (snapshot, diagnostic level,
message and values) and the worker queue's deferred start."""
import threading
from types import SimpleNamespace

import numpy as np
import pytest

from audio_vision.core.inference.inference_queue import InferenceQueue
from audio_vision.core.stream.windowing import DISCONTINUITY_REASONS, DROP_REASONS, FRAME_ERROR_REASONS, NS_PER_S
from audio_vision.runtime.perception_config import (ConfigError, PerceptionConfig, check_parameters, output_images,
                                                    wants_confidence)
from audio_vision.runtime.perception_stats import LayoutStats, PerceptionStats

FS, WINDOW, HOP_S = 16000, 16000, 0.25


def params(**changes):
    """The node's defaults (the ones these modules read)."""
    return {'modalities': ['depth', 'segmentation'], 'min_chunk_samples': 16, 'max_chunk_samples': 48000,
            'confidence_kind': 'echo_range', 'window_s': 0.0, 'hop_s': 0.0, 'stamp_tolerance_s': 0.002,
            'accept_any_frame_id': False, 'array_frame_id': 'audio_array', 'window_alignment': 'hop',
            'publish_confidence': False, 'min_confidence': 0.0, **changes}


def model(modalities=('segmentation', 'depth')):
    return SimpleNamespace(sample_rate=FS, window_samples=WINDOW, num_channels=4, device='cpu',
                           modalities=modalities, feature_config=SimpleNamespace(hop_s=HOP_S))


@pytest.mark.parametrize('changes, match', [
    ({'modalities': []}, "'modalities': \\[\\] must be a non-empty subset"),
    ({'modalities': ['depth', 'depth']}, "'modalities'"),
    ({'modalities': ['normals']}, "'modalities'"),
    ({'min_chunk_samples': 100, 'max_chunk_samples': 99}, "'min_chunk_samples' \\(100\\) exceeds"),
    ({'confidence_kind': 'guess'}, "'confidence_kind': 'guess' is not one of"),
])
def test_parameter_checks_name_the_parameter(changes, match):
    with pytest.raises(ConfigError, match=match):
        check_parameters(params(**changes))


def test_check_parameters_returns_the_requested_modalities():
    assert check_parameters(params(modalities=['segmentation'])) == ('segmentation',)
    assert issubclass(ConfigError, ValueError)


def test_config_from_parameters_and_model():
    cfg = PerceptionConfig.from_parameters(params(), model())
    assert cfg.modalities == ('depth', 'segmentation')          # publishing order, not the model's
    assert (cfg.window, cfg.hop, cfg.sample_rate, cfg.rate_hz) == (WINDOW, 4000, FS, 4.0)
    assert (cfg.spec.num_channels, cfg.spec.min_samples, cfg.spec.max_samples) == (4, 16, 48000)
    assert cfg.tolerance_ns == 2_000_000 and cfg.frame_id == 'audio_array' and cfg.device == 'cpu'
    assert PerceptionConfig.from_parameters(params(accept_any_frame_id=True), model()).frame_id is None
    assert PerceptionConfig.from_parameters(params(hop_s=0.5, window_s=1.0), model()).hop == 8000
    only = PerceptionConfig.from_parameters(params(), model(('segmentation',)))
    assert only.modalities == ('segmentation',)


def test_config_refuses_window_and_hop_that_do_not_fit_the_model():
    with pytest.raises(ConfigError, match="'window_s' \\(0.5 s\\) differs from the model's window \\(16000 "
                                          "samples = 1 s\\); set 0"):
        PerceptionConfig.from_parameters(params(window_s=0.5), model())
    with pytest.raises(ConfigError, match="'hop_s' \\(1e-05 s\\) is shorter than one sample at 16000 Hz"):
        PerceptionConfig.from_parameters(params(hop_s=1e-5), model())


def test_assembler_follows_the_config():
    cfg = PerceptionConfig.from_parameters(params(window_alignment='frame', stamp_tolerance_s=0.01), model())
    asm = cfg.assembler()
    assert (asm.num_channels, asm.sample_rate, asm.window_samples, asm.hop_samples) == (4, FS, WINDOW, 4000)
    assert (asm.max_chunk_samples, asm.tolerance_ns, asm.frame_id, asm.align) == (48000, 10_000_000,
                                                                                  'audio_array', 'frame')
    assert cfg.assembler() is not asm
    chunk = 1000
    windows = [w for k in range(WINDOW // chunk + 4)
               for w in asm.push(np.ones((4, chunk), np.float32), k * chunk * NS_PER_S // FS, 'audio_array')]
    assert [w.end_ns for w in windows] == [NS_PER_S, NS_PER_S + NS_PER_S // 4]


def test_chunk_note_only_for_chunks_that_make_hop_windows_wait():
    cfg = PerceptionConfig.from_parameters(params(), model())
    assert cfg.chunk_note(1000) is None and cfg.chunk_note(4000) is None
    assert cfg.chunk_note(3000) == ('audio frames of 3000 samples do not divide the hop (4000 samples): a window '
                                    'waits up to 188 ms for the rest of the frame holding its last sample; a chunk '
                                    'size that divides 4000 (or window_alignment: frame) avoids it')
    assert PerceptionConfig.from_parameters(params(window_alignment='frame'), model()).chunk_note(3000) is None
    assert cfg.describe('depth:abc') == ("model depth:abc on cpu: 4 ch @ 16000 Hz, window 1 s, hop 0.25 s, "
                                         "outputs ['depth', 'segmentation']")


def test_output_images_dtypes_and_depth_masking():
    prediction = {'depth': np.array([[1.0, 2.0], [3.0, 4.0]]), 'segmentation': np.array([[0, 1], [2, 3]])}
    confidence = {'depth': np.array([[0.9, 0.1], [0.5, 0.2]]), 'segmentation': np.zeros((2, 2))}
    images = output_images(prediction, {}, ('depth', 'segmentation'), 0.3)
    assert list(images) == ['depth', 'segmentation']
    assert images['depth'].dtype == np.float32 and images['segmentation'].dtype == np.uint8
    np.testing.assert_array_equal(images['depth'], prediction['depth'])      # no confidence: nothing masked
    masked = output_images(prediction, confidence, ('depth',), 0.3)
    assert list(masked) == ['depth']
    np.testing.assert_array_equal(masked['depth'], [[1.0, np.nan], [3.0, np.nan]])
    np.testing.assert_array_equal(output_images(prediction, confidence, ('depth',), 0.0)['depth'], prediction['depth'])
    assert not wants_confidence(params()) and wants_confidence(params(publish_confidence=True))
    assert wants_confidence(params(min_confidence=0.2))


STREAM = {**dict.fromkeys(DISCONTINUITY_REASONS + DROP_REASONS, 0), 'reordered': 0}


def test_stats_snapshot_counts_windows_errors_and_layout():
    stats = PerceptionStats()
    stats.frames_in.tick(3)
    stats.invalid.add('chunk_size')
    stats.window_queued(0)
    stats.window_queued(1)
    stats.published(0.05)
    assert stats.inference_failed(RuntimeError('boom')) == 'RuntimeError: boom'
    s = stats.snapshot({**STREAM, 'gap': 2, 'stale': 1, 'reordered': 4})
    assert (s['frames'], s['windows'], s['dropped_windows'], s['outputs'], s['inference_errors']) == (3, 2, 1, 1, 1)
    assert s['invalid_frames'] == {**dict.fromkeys(FRAME_ERROR_REASONS, 0), 'chunk_size': 1}
    assert s['stream_resets'] == {'gap': 2, 'rewind': 0} and s['reordered_frames'] == 4
    assert s['dropped_frames'] == {'frame_id': 0, 'stale': 1, 'duplicate': 0}
    assert s['latency_ms']['p50'] == pytest.approx(50.0) and np.isnan(s['inference_ms']['p95'])
    assert 'layout' not in s
    layout = LayoutStats()
    layout.measured(['floor: no echo', 'walls: too few'], 0.01)
    layout.outputs += 1
    assert stats.snapshot(STREAM, layout.snapshot(3, 1))['layout'] == {
        'outputs': 1, 'dropped_windows': 3, 'errors': 1, 'shared_with_features': False,
        'unmeasured': {'floor': 1, 'ceiling': 0, 'walls': 1},
        'ms': {'p50': pytest.approx(10.0), 'p95': pytest.approx(10.0)}}


def test_report_levels_and_messages_per_period():
    stats, layout = PerceptionStats(), LayoutStats()
    level, message, values = stats.report(stats.snapshot(STREAM), 'm', 'cpu')
    assert (level, message) == ('WARN', 'no audio frames')
    assert values['model id'] == 'm' and values['device'] == 'cpu' and values['windows'] == 0
    assert not any(k.startswith('layout') for k in values)
    stats.frames_in.tick(5)
    assert stats.report(stats.snapshot(STREAM), 'm', 'cpu')[:2] == ('OK', 'OK')
    stats.frames_in.tick()
    stats.invalid.add('encoding', 2)
    stats.window_queued(3)
    stream = {**STREAM, 'duplicate': 1}           # the assembler's totals
    level, message, values = stats.report(stats.snapshot(stream), 'm', 'cpu')
    assert (level, message) == ('WARN', '2 invalid frames; 3 windows dropped; 1 stray frames dropped')
    assert values['invalid frames'] == 2 and values['invalid frames (encoding)'] == 2
    assert values['dropped frames (duplicate)'] == 1 and values['dropped windows'] == 3
    stats.frames_in.tick()
    stats.inference_failed(ValueError('bad'))
    layout.failed(OSError('gone'))
    level, message, values = stats.report(stats.snapshot(stream, layout.snapshot(0, 1)), 'm', 'cpu', layout)
    assert (level, message) == ('ERROR', 'inference failed: ValueError: bad; layout failed: OSError: gone')
    assert values['layout errors'] == 1 and values['layout windows without walls'] == 0
    assert values['inference errors'] == 1
    stats.frames_in.tick()                      # an error is reported once
    assert stats.report(stats.snapshot(stream, layout.snapshot(0, 1)), 'm', 'cpu', layout)[:2] == ('OK', 'OK')


def test_report_keys_in_order():
    stats = PerceptionStats()
    keys = list(stats.report(stats.snapshot(STREAM, LayoutStats().snapshot(0, 0)), 'm', 'cpu')[2])
    assert keys[:9] == ['input rate (frames/s)', 'output rate (Hz)', 'inference latency p50 (ms)',
                        'inference latency p95 (ms)', 'window end to publish p50 (ms)',
                        'window end to publish p95 (ms)', 'windows', 'dropped windows', 'invalid frames']
    assert keys[-11:] == ['model id', 'device', 'layout outputs', 'layout dropped windows', 'layout errors',
                          'layout shared with the features', 'layout latency p50 (ms)', 'layout latency p95 (ms)',
                          *(f'layout windows without {part}' for part in ('floor', 'ceiling', 'walls'))]


def test_queue_started_later_serves_what_was_put_before():
    handled, done = [], threading.Event()

    def handle(item):
        handled.append(item)
        done.set()
    queue = InferenceQueue(handle, capacity=2, name='deferred', start=False)
    assert not queue.alive
    assert queue.put(1) == 0 and queue.put(2) == 0 and queue.put(3) == 1     # latest wins before the start too
    queue.start()
    queue.start()                                                             # once
    assert done.wait(5.0)
    assert queue.close() and handled[0] == 2


def test_queue_closed_before_start_never_starts():
    queue = InferenceQueue(lambda item: None, start=False)
    assert queue.close()          # no thread to join
    queue.start()
    assert not queue.alive
