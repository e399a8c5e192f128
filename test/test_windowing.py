"""Pure tests of frame validation and window assembly (no ROS)."""
import numpy as np
import pytest
import torch

from audio_vision.core.windowing import (MAX_ABS_SAMPLE, NS_PER_S, FrameError, FrameSpec, WindowAssembler,
                                         check_layout, check_samples)

FS = 1000  # 1 sample = 1 ms keeps the stamp arithmetic readable


def stream(total, channels=2):
    """A (C, total) ramp whose value is the sample index (channel c offset by c * 1e6)."""
    idx = np.arange(total, dtype=np.float32)
    return np.stack([idx + c * 1e6 for c in range(channels)]).astype(np.float32)


def feed(asm, audio, chunk, t0_ns=5 * NS_PER_S):
    out = []
    for k in range(0, audio.shape[1], chunk):
        out += asm.push(audio[:, k:k + chunk], t0_ns + k * NS_PER_S // FS)
    return out


def layout(**kw):
    fields = dict(encoding='32FC1', height=2, width=100, step=400, is_bigendian=False, data_len=800)
    fields.update(kw)
    return fields


SPEC = FrameSpec(num_channels=2, sample_rate=FS, min_samples=10, max_samples=500)


def test_valid_layout_passes():
    check_layout(SPEC, **layout())


@pytest.mark.parametrize('fields, reason', [
    (dict(encoding='16SC1'), 'encoding'),
    (dict(encoding='mono8'), 'encoding'),
    (dict(step=399), 'layout'),
    (dict(data_len=799), 'layout'),
    (dict(is_bigendian=True), 'layout'),
    (dict(height=3, data_len=1200), 'channels'),
    (dict(width=5, step=20, data_len=40), 'chunk_size'),
    (dict(width=501, step=2004, data_len=4008), 'chunk_size'),
])
def test_invalid_layouts_name_their_reason(fields, reason):
    with pytest.raises(FrameError) as err:
        check_layout(SPEC, **layout(**fields))
    assert err.value.reason == reason
    assert str(err.value)


@pytest.mark.parametrize('bad', [np.nan, np.inf, -np.inf])
def test_non_finite_samples_rejected(bad):
    x = np.zeros((2, 50), np.float32)
    check_samples(x)
    x[1, 7] = bad
    with pytest.raises(FrameError) as err:
        check_samples(x)
    assert err.value.reason == 'non_finite'


@pytest.mark.parametrize('value, reason', [(MAX_ABS_SAMPLE, None), (-MAX_ABS_SAMPLE, None), (1e-45, None),
                                           (2 * MAX_ABS_SAMPLE, 'out_of_range'), (-3e38, 'out_of_range')])
def test_samples_beyond_the_limit_rejected_as_out_of_range(value, reason):
    x = np.zeros((2, 50), np.float32)
    x[0, 3] = value
    if reason is None:
        check_samples(x)
        return
    with pytest.raises(FrameError) as err:
        check_samples(x)
    assert err.value.reason == reason and 'full scale' in str(err.value)


def test_out_of_range_samples_would_break_the_features():
    """Why the limit exists: float32 power spectra overflow, and the features stop being finite."""
    from audio_vision.core.features import FeatureConfig, SpectrogramFeatures
    cfg = FeatureConfig(sample_rate=16000, window_s=0.25, hop_s=0.25)
    features = SpectrogramFeatures(cfg, np.array([[0.0, 0, 0], [0.05, 0, 0]]))
    x = np.zeros((2, cfg.window_samples), np.float32)
    x[:, 100:120] = MAX_ABS_SAMPLE
    assert torch.isfinite(features(torch.from_numpy(x)[None])).all()
    x[:, 100:120] = 3e38
    assert not torch.isfinite(features(torch.from_numpy(x)[None])).all()


def test_frame_spec_validates_itself():
    with pytest.raises(ValueError):
        FrameSpec(num_channels=0, sample_rate=FS)
    with pytest.raises(ValueError):
        FrameSpec(num_channels=2, sample_rate=FS, min_samples=10, max_samples=5)


def test_windows_are_contiguous_with_exact_stamps():
    asm = WindowAssembler(2, FS, window_samples=300, hop_samples=100, max_chunk_samples=64)
    audio = stream(1000)
    t0 = 5 * NS_PER_S
    windows = feed(asm, audio, chunk=64, t0_ns=t0)
    # windows end at 300, 400, ..., 1000 samples
    assert len(windows) == 8
    for i, w in enumerate(windows):
        start = 100 * i
        np.testing.assert_array_equal(w.audio, audio[:, start:start + 300])
        assert w.audio.dtype == np.float32 and w.audio.flags.c_contiguous
        assert w.start_ns == t0 + start * NS_PER_S // FS
        assert w.end_ns == w.start_ns + 300 * NS_PER_S // FS  # end = completion instant


@pytest.mark.parametrize('chunk', [1, 7, 100, 300, 512])
def test_any_chunking_gives_the_same_windows(chunk):
    audio = stream(2000)
    ref = feed(WindowAssembler(2, FS, 256, 128, 512), audio, chunk=512)
    got = feed(WindowAssembler(2, FS, 256, 128, 512), audio, chunk=chunk)
    assert [w.start_ns for w in got] == [w.start_ns for w in ref]
    for a, b in zip(got, ref):
        np.testing.assert_array_equal(a.audio, b.audio)


def test_hop_larger_than_window_skips_audio():
    windows = feed(WindowAssembler(2, FS, 100, 250, 50), stream(1000), chunk=50)
    assert [int(w.audio[0, 0]) for w in windows] == [0, 250, 500, 750]


def test_window_returned_is_not_a_view_of_the_ring():
    asm = WindowAssembler(1, FS, 10, 10, 10)
    (w,) = asm.push(np.ones((1, 10), np.float32), 0)
    asm.push(np.zeros((1, 10), np.float32), 10 * NS_PER_S // FS)
    assert (w.audio == 1).all()


def test_gap_resets_instead_of_stitching():
    asm = WindowAssembler(2, FS, window_samples=200, hop_samples=100, max_chunk_samples=100)
    audio = stream(1000)
    t0 = 0
    out = []
    for k in range(0, 1000, 100):
        if k == 300:  # drop the chunk [300, 400)
            continue
        out += asm.push(audio[:, k:k + 100], t0 + k * NS_PER_S // FS)
        if k == 400:
            assert asm.last_discontinuity == 'gap'
        else:
            assert asm.last_discontinuity is None
    starts = [int(w.audio[0, 0]) for w in out]
    # before the gap: [0,200) [100,300); after: restart at 400 -> [400,600) [500,700) ...
    assert starts == [0, 100, 400, 500, 600, 700, 800]
    for w in out:  # never mixes audio across the gap
        np.testing.assert_array_equal(np.diff(w.audio[0]), 1.0)


def test_reordered_or_duplicate_frame_resets():
    asm = WindowAssembler(2, FS, 200, 100, 100)
    audio = stream(600)
    asm.push(audio[:, 0:100], 0)
    asm.push(audio[:, 100:200], 100 * NS_PER_S // FS)
    # the same frame again (duplicate stamp)
    assert asm.push(audio[:, 100:200], 100 * NS_PER_S // FS) == []
    assert asm.last_discontinuity == 'reordered'
    assert asm.buffered_samples == 100
    # an older frame (stamp goes backwards)
    asm.push(audio[:, 0:100], 0)
    assert asm.last_discontinuity == 'reordered'
    # the stream continues from the older frame
    (w,) = asm.push(audio[:, 100:200], 100 * NS_PER_S // FS)
    assert asm.last_discontinuity is None
    np.testing.assert_array_equal(w.audio, audio[:, :200])


def test_jitter_within_tolerance_is_accepted_and_not_accumulated():
    asm = WindowAssembler(1, FS, 100, 100, 10, tolerance_ns=2_000_000)
    rng = np.random.default_rng(0)
    out = []
    for k in range(0, 1000, 10):
        jitter = int(rng.integers(-900_000, 900_000))  # < 1 ms around the true stamp
        out += asm.push(np.full((1, 10), k, np.float32), k * NS_PER_S // FS + jitter)
        assert asm.last_discontinuity is None
    assert len(out) == 10


def test_slow_clock_drift_is_followed():
    # the sender's clock runs 0.05 % fast: 1000 frames accumulate 5 ms, more than the 1 ms tolerance,
    # but each frame is within tolerance of the previous one
    asm = WindowAssembler(1, FS, 100, 100, 10, tolerance_ns=1_000_000)
    for k in range(1000):
        asm.push(np.zeros((1, 10), np.float32), int(k * 10 * NS_PER_S // FS * 1.0005))
        assert asm.last_discontinuity is None


def test_wrong_shapes_rejected_by_the_assembler():
    asm = WindowAssembler(2, FS, 100, 50, 64)
    with pytest.raises(FrameError) as err:
        asm.push(np.zeros((3, 10), np.float32), 0)
    assert err.value.reason == 'channels'
    with pytest.raises(FrameError) as err:
        asm.push(np.zeros((2, 65), np.float32), 0)
    assert err.value.reason == 'chunk_size'
    assert asm.buffered_samples == 0


def test_constructor_rejects_nonsense():
    with pytest.raises(ValueError):
        WindowAssembler(2, FS, 0, 10, 10)
    with pytest.raises(ValueError):
        WindowAssembler(2, FS, 10, 10, 10, tolerance_ns=-1)
