# SPDX-License-Identifier: Apache-2.0
"""The latency path's structure, on stamps and counts (no wall-clock asserts): windows that end at the newest
sample ('frame' alignment) and the paced publishing loop of the simulator / capture nodes."""
import threading

import numpy as np
import pytest

from audio_vision.core.stream.windowing import NS_PER_S, WindowAssembler

FS, C = 16000, 2


def stream(assembler, chunk, n_samples, t0=10 * NS_PER_S):
    audio = np.arange(n_samples, dtype=np.float32)[None].repeat(C, 0)
    out = []
    for a in range(0, n_samples, chunk):
        for w in assembler.push(audio[:, a:a + chunk], t0 + a * NS_PER_S // FS):
            out.append((a + audio[:, a:a + chunk].shape[1], w))       # (samples received so far, window)
    return audio, out


@pytest.mark.parametrize('chunk', [1024, 1000, 256, 6000])
def test_frame_alignment_ends_windows_at_the_newest_sample(chunk):
    window, hop, t0 = FS, FS // 4, 10 * NS_PER_S
    audio, grid = stream(WindowAssembler(C, FS, window, hop, 8192), chunk, 5 * FS)
    _, fresh = stream(WindowAssembler(C, FS, window, hop, 8192, align='frame'), chunk, 5 * FS)
    for received, w in fresh:
        end = received
        assert w.end_ns == t0 + end * NS_PER_S // FS                 # the frame just received ends the window
        np.testing.assert_array_equal(w.audio, audio[:, end - window:end])
    # one window per frame that reaches the grid (a frame longer than the hop gives one window, not several)
    ends_grid = [w.end_ns for _, w in grid]
    assert [r for r, _ in fresh] == sorted({r for r, _ in grid})
    if chunk <= hop:
        assert len(fresh) == len(grid)
        # never older than the grid window it replaces, at most one frame newer
        for (_, f), g in zip(fresh, ends_grid):
            assert 0 <= f.end_ns - g < chunk * NS_PER_S // FS
    if hop % chunk == 0:                                            # frames divide the hop: identical windows
        assert [w.end_ns for _, w in fresh] == ends_grid


def test_frame_alignment_refused_values():
    with pytest.raises(ValueError, match='align'):
        WindowAssembler(C, FS, FS, FS // 4, 1024, align='newest')


def test_paced_loop_publishes_each_chunk_once_in_order_and_stops():
    from audio_vision.runtime.pacing import ChunkPacer, PacedLoop
    pacer = ChunkPacer(FS, 160, rate=10.0)                  # 1 ms chunks
    got, done = [], threading.Event()

    def tick():
        import time
        got.extend(pacer.due(time.monotonic()))
        if len(got) >= 50:
            done.set()
    loop = PacedLoop(pacer, tick, 'test_paced_loop')
    assert not got                                          # nothing before start()
    loop.start()
    assert done.wait(30.0)
    loop.cancel()
    assert loop.is_canceled() and pacer.done - pacer.skipped == len(got)
    assert got == sorted(set(got)) and all(k % 160 == 0 for k in got)      # each chunk once, in order
    assert pacer.wait_time(pacer.t0 + (pacer.done + 1) * pacer.period) == 0.0
    assert pacer.wait_time(pacer.t0 + pacer.done * pacer.period) == pytest.approx(pacer.period)
