# SPDX-License-Identifier: Apache-2.0
"""Pure tests of frame validation and window assembly (no ROS)."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from audio_vision.core.stream.windowing import (MAX_ABS_SAMPLE, NS_PER_S, FrameError, FrameSpec, WindowAssembler,
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
    from audio_vision.core.features.config import FeatureConfig
    from audio_vision.core.features.stack import FeatureStack
    cfg = FeatureConfig(sample_rate=16000, window_s=0.25, hop_s=0.25)
    features = FeatureStack(cfg, np.array([[0.0, 0, 0], [0.05, 0, 0]]))
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


@pytest.mark.parametrize('max_reorder', [0, None])
def test_gap_resets_instead_of_stitching(max_reorder):
    """A missing chunk restarts the stream after it: at once when the jump is beyond the reorder span,
    else once the hole can no longer be filled (when the first window after it completes): same windows."""
    asm = WindowAssembler(2, FS, window_samples=200, hop_samples=100, max_chunk_samples=100,
                          max_reorder_samples=max_reorder)
    audio = stream(1000)
    t0 = 0
    out = []
    for k in range(0, 1000, 100):
        if k == 300:  # drop the chunk [300, 400)
            continue
        out += asm.push(audio[:, k:k + 100], t0 + k * NS_PER_S // FS)
        gap_at = 400 if max_reorder == 0 else 500   # the hole is given up when [400, 600) is complete
        assert asm.last_discontinuity == ('gap' if k == gap_at else None), k
    starts = [int(w.audio[0, 0]) for w in out]
    # before the gap: [0,200) [100,300); after: restart at 400 -> [400,600) [500,700) ...
    assert starts == [0, 100, 400, 500, 600, 700, 800]
    for w in out:  # never mixes audio across the gap
        np.testing.assert_array_equal(np.diff(w.audio[0]), 1.0)
        assert w.start_ns == int(w.audio[0, 0]) * NS_PER_S // FS
    assert asm.counts['gap'] == 1 and asm.pending_holes == 0


def test_duplicate_and_stale_frames_are_dropped_without_touching_the_buffer():
    asm = WindowAssembler(2, FS, 200, 100, 100)
    audio = stream(600)
    t0 = 5 * NS_PER_S
    asm.push(audio[:, 0:100], t0)
    asm.push(audio[:, 100:200] + 0, t0 + 100 * NS_PER_S // FS)
    junk = np.full((2, 100), -7.0, np.float32)
    # the same stamp again, other samples: a duplicate, dropped
    assert asm.push(junk, t0 + 100 * NS_PER_S // FS) == [] and asm.last_event == 'duplicate'
    # overlapping the held audio and reaching past it: a duplicate too
    assert asm.push(junk, t0 + 150 * NS_PER_S // FS) == [] and asm.last_event == 'duplicate'
    # before the stream started: stale
    assert asm.push(junk, t0 - 10 * NS_PER_S) == [] and asm.last_event == 'stale'
    assert asm.push(junk, t0 - 50 * NS_PER_S // FS) == [] and asm.last_event == 'stale'
    assert asm.last_discontinuity is None and asm.buffered_samples == 200
    assert asm.counts == {'gap': 0, 'rewind': 0, 'frame_id': 0, 'stale': 2, 'duplicate': 2, 'reordered': 0}
    # the stream goes on as if they never came
    (w,) = asm.push(audio[:, 200:300], t0 + 200 * NS_PER_S // FS)
    np.testing.assert_array_equal(w.audio, audio[:, 100:300])
    assert w.start_ns == t0 + 100 * NS_PER_S // FS


def test_reordered_frames_are_placed_where_their_stamps_say():
    asm = WindowAssembler(2, FS, 200, 100, 100)
    ref = WindowAssembler(2, FS, 200, 100, 100)
    audio = stream(1000)
    t0 = 5 * NS_PER_S
    order = [0, 1, 3, 2, 4, 6, 5, 7, 9, 8]      # three swapped pairs
    got = []
    for k in order:
        got += asm.push(audio[:, 100 * k:100 * k + 100], t0 + 100 * k * NS_PER_S // FS)
        if k in (3, 6, 9):
            assert asm.pending_holes == 1 and asm.last_event == 'appended'
        if k in (2, 5, 8):
            assert asm.pending_holes == 0 and asm.last_event == 'reordered'
    want = feed(ref, audio, 100, t0)
    assert [w.start_ns for w in got] == [w.start_ns for w in want] and len(got) == 9
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a.audio, b.audio)
    assert asm.counts['reordered'] == 3 and asm.counts['gap'] == 0


def test_a_hole_waits_for_several_late_frames_in_any_order():
    asm = WindowAssembler(1, FS, 100, 50, 20)
    audio = stream(200, channels=1)
    order = [0, 4, 3, 1, 2, 5, 6, 7, 8, 9]       # 20-sample frames 1..3 arrive after 4, 2 last
    got = []
    for k in order:
        got += asm.push(audio[:, 20 * k:20 * k + 20], 20 * k * NS_PER_S // FS)
    assert [int(w.audio[0, 0]) for w in got] == [0, 50, 100]
    for w in got:
        np.testing.assert_array_equal(np.diff(w.audio[0]), 1.0)
    assert asm.counts['reordered'] == 3 and asm.counts['gap'] == 0


def test_a_late_frame_after_its_hole_was_given_up_is_stale():
    asm = WindowAssembler(1, FS, 100, 100, 50)
    audio = stream(400, channels=1)
    asm.push(audio[:, 0:50], 0)
    for k in range(100, 250, 50):              # [50, 100) missing; given up once [100, 200) is complete
        asm.push(audio[:, k:k + 50], k * NS_PER_S // FS)
    assert asm.counts['gap'] == 1 and asm.pending_holes == 0
    assert asm.push(audio[:, 50:100], 50 * NS_PER_S // FS) == [] and asm.last_event == 'stale'


def test_foreign_frame_ids_are_dropped_unless_any_is_accepted():
    audio = stream(400)
    strict = WindowAssembler(2, FS, 200, 100, 100, frame_id='array_a')
    anyone = WindowAssembler(2, FS, 200, 100, 100)
    got = []
    for k in range(0, 400, 100):
        stamp = k * NS_PER_S // FS
        got += strict.push(audio[:, k:k + 100], stamp, 'array_a')
        # a second array on the topic, same stamps: never spliced in
        assert strict.push(np.zeros((2, 100), np.float32), stamp, 'array_b') == []
        assert strict.last_event == 'frame_id'
        anyone.push(audio[:, k:k + 100], stamp, 'array_b')
    assert strict.push(audio[:, :100], 0) == [] and strict.last_event == 'frame_id'   # no frame_id given
    assert [int(w.audio[0, 0]) for w in got] == [0, 100, 200]
    assert strict.counts['frame_id'] == 5 and strict.counts['duplicate'] == 0
    assert anyone.counts['frame_id'] == 0 and anyone.last_event == 'appended'


def test_a_lasting_jump_back_restarts_the_stream():
    """A bag loop: after `rewind_frames` frames that continue each other behind the stream, it restarts."""
    asm = WindowAssembler(1, FS, 100, 100, 50, rewind_frames=3)
    audio = stream(600, channels=1)
    for k in range(0, 300, 50):
        asm.push(audio[:, k:k + 50], 10 * NS_PER_S + k * NS_PER_S // FS)
    got = []
    for i, k in enumerate(range(0, 300, 50)):   # the loop: the stamps start again from 10 s
        got += asm.push(audio[:, k:k + 50], 10 * NS_PER_S + k * NS_PER_S // FS)
        assert asm.last_event == ('duplicate' if i < 2 else 'rewind' if i == 2 else 'appended'), i
    assert asm.counts['rewind'] == 1 and asm.counts['duplicate'] == 2
    # the new stream starts at the third frame of the loop
    assert [int(w.audio[0, 0]) for w in got] == [100, 200]


def test_interleaved_stale_frames_never_rewind():
    asm = WindowAssembler(1, FS, 100, 100, 50, rewind_frames=2)
    audio = stream(1000, channels=1)
    got = []
    for k in range(0, 1000, 50):
        stamp = 20 * NS_PER_S + k * NS_PER_S // FS
        got += asm.push(audio[:, k:k + 50], stamp)
        asm.push(audio[:, k:k + 50], stamp - 10 * NS_PER_S)      # a 10 s old copy of the stream
    assert len(got) == 10 and asm.counts['stale'] == 20 and asm.counts['rewind'] == 0


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
    with pytest.raises(ValueError):
        WindowAssembler(2, FS, 10, 10, 10, max_reorder_samples=-1)
    with pytest.raises(ValueError):
        WindowAssembler(2, FS, 10, 10, 10, rewind_frames=0)


# ---------------------------------------------------------------- properties (hypothesis)

T0 = 7 * NS_PER_S
TOL = NS_PER_S // FS // 10    # a tenth of a sample: a lost 1-sample frame is a gap, not jitter
frames_strategy = st.lists(st.tuples(st.integers(1, 60),                     # chunk size
                                     st.sampled_from(['keep', 'keep', 'keep', 'swap', 'drop']),
                                     st.sets(st.sampled_from(['duplicate', 'stale', 'frame_id']))),
                           min_size=1, max_size=60)


def arrivals(plan, audio, allow_drop):
    """The clean frames [(samples, stamp, frame_id)] and the arrival sequence the plan makes of them,
    with the number of stray frames of each kind put in and of swapped pairs."""
    clean, k = [], 0
    for n, _, _ in plan:
        clean.append((audio[:, k:k + n], T0 + k * NS_PER_S // FS, 'arr'))
        k += n
    tail = [(audio[:, k + i:k + i + 50], T0 + (k + i) * NS_PER_S // FS, 'arr') for i in (0, 50, 100)]
    seq, strays, i = [], {'duplicate': 0, 'stale': 0, 'frame_id': 0, 'reordered': 0, 'dropped': 0}, 0
    while i < len(plan):
        _, op, extras = plan[i]
        # a swap needs a frame before it (an older frame than the stream's first one is stale) and after it
        follows = i > 0 and not (allow_drop and plan[i - 1][1] == 'drop')
        if op == 'swap' and follows and i + 1 < len(plan) and plan[i + 1][1] != 'drop':
            seq += [clean[i + 1], clean[i]]
            strays['reordered'] += 1
            i += 1
        elif op == 'drop' and allow_drop:
            strays['dropped'] += 1
        else:
            seq.append(clean[i])
        x, stamp, fid = seq[-1] if seq else clean[i]
        if seq:
            for kind in sorted(extras):
                strays[kind] += 1
                seq.append({'duplicate': (x, stamp, fid), 'stale': (x, stamp - 100 * NS_PER_S, fid),
                            'frame_id': (np.zeros_like(x), stamp, 'other_array')}[kind])
        i += 1
    return clean + tail, seq + tail, strays


def run(asm, seq):
    return [w for x, stamp, fid in seq for w in asm.push(x, stamp, fid)]


@settings(max_examples=100, deadline=None)
@given(plan=frames_strategy, hop=st.sampled_from([25, 50, 100, 130]))
def test_stray_frames_cost_no_window(plan, hop):
    """Stale, duplicate, foreign and reordered frames mixed into a stream: exactly the clean stream's windows,
    every stray counted under its reason."""
    audio = stream(60 * 60 + 200, channels=1)
    clean, seq, strays = arrivals(plan, audio, allow_drop=False)
    want = run(WindowAssembler(1, FS, 100, hop, 60, frame_id='arr', tolerance_ns=TOL), clean)
    asm = WindowAssembler(1, FS, 100, hop, 60, frame_id='arr', tolerance_ns=TOL)
    got = run(asm, seq)
    assert [(w.start_ns, w.end_ns) for w in got] == [(w.start_ns, w.end_ns) for w in want]
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a.audio, b.audio)
    assert asm.counts == {'gap': 0, 'rewind': 0, 'frame_id': strays['frame_id'], 'stale': strays['stale'],
                          'duplicate': strays['duplicate'], 'reordered': strays['reordered']}


@settings(max_examples=100, deadline=None)
@given(plan=frames_strategy, hop=st.sampled_from([25, 50, 100]))
def test_lost_frames_give_the_windows_of_a_reset_at_each_gap(plan, hop):
    """With frames lost too: waiting for a hole gives exactly what restarting at each gap gives, and no
    window ever splices audio from both sides of a gap (the ramp is continuous and matches the stamp)."""
    audio = stream(60 * 60 + 200, channels=1)
    _, seq, strays = arrivals(plan, audio, allow_drop=True)
    ordered = [f for f in seq if f[2] == 'arr' and f[1] > T0 - NS_PER_S]
    ordered = sorted({f[1]: f for f in ordered}.values(), key=lambda f: f[1])     # in order, once each
    reset_at_gap = WindowAssembler(1, FS, 100, hop, 60, max_reorder_samples=0, tolerance_ns=TOL)
    want = run(reset_at_gap, ordered)
    asm = WindowAssembler(1, FS, 100, hop, 60, frame_id='arr', tolerance_ns=TOL)
    got = run(asm, seq)
    assert [(w.start_ns, w.end_ns) for w in got] == [(w.start_ns, w.end_ns) for w in want]
    for w in got:
        np.testing.assert_array_equal(np.diff(w.audio[0]), 1.0)
        assert T0 + int(w.audio[0, 0]) * NS_PER_S // FS == w.start_ns
    assert asm.counts['gap'] == reset_at_gap.counts['gap'] and asm.pending_holes == 0
    assert asm.counts['reordered'] == strays['reordered'] and asm.counts['rewind'] == 0
