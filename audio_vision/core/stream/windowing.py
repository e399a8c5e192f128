# SPDX-License-Identifier: Apache-2.0
"""Audio-frame validation and the ring buffer that assembles analysis windows (pure, no rclpy).

The perception node receives the audio stream as chunks ("frames") of ``C x N`` samples, each
stamped with the capture time of its first sample (see docs/ARCHITECTURE.md). This module

* validates a frame's layout and samples (:func:`check_layout`, :func:`check_samples`) and raises
  :class:`FrameError` with a short machine-readable ``reason`` (counted in diagnostics);
* assembles windows of ``window_samples`` every ``hop_samples`` in a ring buffer
  (:class:`WindowAssembler`). Each frame is placed where its stamp says: on time it is appended; a frame
  that arrives late but fits a hole the stream is still waiting for (best-effort transport reorders) fills
  it; a frame older than what the stream holds ('stale'), overlapping what it holds ('duplicate') or from
  another array ('frame_id') is dropped and counted without touching the buffer; a true forward gap
  (dropped chunks, overrun, paused source) and a lasting jump back (a bag loop, a clock reset) restart the
  stream at that point, so a window never stitches unrelated audio together.

Alignment (``align``): 'hop' (the default; what ``dataset from-bag`` and the golden summaries use) ends a
window exactly every ``hop_samples`` on the stream's sample grid, so a window ending inside a frame waits
for the rest of that frame; 'frame' emits a window when a frame reaches the next grid point, ending at the
newest sample the stream holds: the window holds the freshest audio and never waits for the rest of a
frame (windows still come once per hop on average; the interval between two jitters by up to one frame).

Window stamps: ``start_ns`` is the capture time of the window's first sample and ``end_ns`` =
``start_ns + window_samples / sample_rate``, i.e. the instant the window is complete (the capture time
of the sample after its last one). The perception node stamps its outputs with ``end_ns``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NS_PER_S = 1_000_000_000

#: reasons a frame is rejected, in the order the checks run
FRAME_ERROR_REASONS = ('encoding', 'layout', 'channels', 'chunk_size', 'non_finite', 'out_of_range')
#: largest accepted |sample|. Float audio is nominally within +-1 (full scale); 60 dB above that it is
#: not audio but a unit or gain error, and much larger values overflow float32 power spectra (NaN features)
MAX_ABS_SAMPLE = 1e3
#: reasons the stream restarts: a forward gap in the stamps (audio missing), a lasting jump back (rewind)
DISCONTINUITY_REASONS = ('gap', 'rewind')
#: reasons a well-formed frame is dropped without touching the buffer: another array's frame_id, older than
#: what the stream holds, overlapping audio the stream already holds
DROP_REASONS = ('frame_id', 'stale', 'duplicate')
#: everything :attr:`WindowAssembler.counts` counts; 'reordered' = a late frame placed into its hole
ASSEMBLY_EVENTS = DISCONTINUITY_REASONS + DROP_REASONS + ('reordered',)
#: where windows end: on the hop grid, or at the newest sample when a frame reaches the grid (module doc)
ALIGNMENTS = ('hop', 'frame')


class FrameError(ValueError):
    """A frame that cannot be used. ``reason`` is one of :data:`FRAME_ERROR_REASONS`."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class FrameSpec:
    """What a valid audio frame looks like for one consumer (e.g. one model)."""

    num_channels: int
    sample_rate: int
    min_samples: int = 1
    max_samples: int = 1 << 20

    def __post_init__(self):
        if self.num_channels < 1:
            raise ValueError(f'num_channels must be >= 1, got {self.num_channels}')
        if self.sample_rate < 1:
            raise ValueError(f'sample_rate must be >= 1, got {self.sample_rate}')
        if not 1 <= self.min_samples <= self.max_samples:
            raise ValueError(f'need 1 <= min_samples <= max_samples, got {self.min_samples}, {self.max_samples}')


def check_layout(spec: FrameSpec, *, encoding: str, height: int, width: int, step: int,
                 is_bigendian: bool, data_len: int) -> None:
    """Check the layout fields of a ``32FC1`` audio frame (``height`` = channels, ``width`` = samples).

    Raises :class:`FrameError`; returns None when the layout is valid.
    """
    if encoding != '32FC1':
        raise FrameError('encoding', f"encoding must be '32FC1', got {encoding!r}")
    if step != 4 * width or data_len != step * height:
        raise FrameError('layout', f'inconsistent layout: height={height} width={width} step={step} '
                                   f'data={data_len} bytes (expected step=4*width, data=step*height)')
    if is_bigendian:
        raise FrameError('layout', 'big-endian audio frames are not supported')
    if height != spec.num_channels:
        raise FrameError('channels', f'frame has {height} channels, expected {spec.num_channels}')
    if not spec.min_samples <= width <= spec.max_samples:
        raise FrameError('chunk_size', f'frame has {width} samples, expected '
                                       f'{spec.min_samples}..{spec.max_samples}')


def check_samples(samples: np.ndarray) -> None:
    """Raise :class:`FrameError`: 'non_finite' if any sample is NaN or infinite, 'out_of_range' if any
    exceeds :data:`MAX_ABS_SAMPLE` in magnitude."""
    peak = float(np.max(np.abs(samples))) if samples.size else 0.0
    if not np.isfinite(peak):
        bad = int(samples.size - np.count_nonzero(np.isfinite(samples)))
        raise FrameError('non_finite', f'frame has {bad} non-finite samples')
    if peak > MAX_ABS_SAMPLE:
        bad = int(np.count_nonzero(np.abs(samples) > MAX_ABS_SAMPLE))
        raise FrameError('out_of_range', f'frame has {bad} samples beyond +-{MAX_ABS_SAMPLE:g} (peak {peak:.3g}); '
                                         'float audio is expected within +-1 full scale')


@dataclass(frozen=True)
class Window:
    """One analysis window: ``audio`` is a (C, window_samples) float32 array owned by the window."""

    audio: np.ndarray
    start_ns: int
    end_ns: int


class WindowAssembler:
    """Ring buffer turning a stream of stamped frames into analysis windows.

    ``push(samples, stamp_ns, frame_id)`` returns the windows completed by that frame (oldest first;
    usually zero or one). Where a frame goes is decided by its stamp against the *expected* stamp (the
    end of the newest frame held), within ``tolerance_ns``:

    * on time: appended (the expectation is carried from each frame's stamp, so a slow drift between the
      sample clock and the stamping clock is followed, never accumulated);
    * ahead by at most ``max_reorder_samples``: appended after a *hole*, which a late frame may still fill;
      ahead by more: a gap, the stream restarts at this frame;
    * behind, fitting a hole (within the tolerance): placed where its stamp says, counted 'reordered';
    * behind, anything else: dropped without touching the buffer, counted 'stale' (it starts before the
      oldest sample the stream holds) or 'duplicate' (it overlaps audio already held). After
      ``rewind_frames`` such frames in a row, each continuing the previous one, the stamps really went back
      (a bag loop, a clock reset): the stream restarts at the last of them ('rewind').

    A frame whose ``frame_id`` is not the configured one (when ``frame_id`` is set) is dropped
    ('frame_id'): two arrays are never spliced into one window. ``align`` places the window ends (module doc:
    'hop' grid or 'frame'). A window is emitted only when all of its
    samples are present. A hole still open when ``window_samples`` of newer audio have arrived (the first
    window after it would be complete) is given up: counted as a 'gap' and the stream restarts after it,
    which is what restarting at the gap gives, without delay. :attr:`counts` holds the number of each event
    (:data:`ASSEMBLY_EVENTS`) since construction; :attr:`last_event` names what the last frame did and
    :attr:`last_discontinuity` the restart ('gap' / 'rewind') that the last push caused, if any.
    """

    def __init__(self, num_channels: int, sample_rate: int, window_samples: int, hop_samples: int,
                 max_chunk_samples: int, tolerance_ns: int = 1_000_000, frame_id: str | None = None,
                 max_reorder_samples: int | None = None, rewind_frames: int = 3, align: str = 'hop'):
        if window_samples < 1 or hop_samples < 1 or max_chunk_samples < 1:
            raise ValueError('window_samples, hop_samples and max_chunk_samples must be >= 1')
        if tolerance_ns < 0:
            raise ValueError(f'tolerance_ns must be >= 0, got {tolerance_ns}')
        if max_reorder_samples is not None and max_reorder_samples < 0:
            raise ValueError(f'max_reorder_samples must be >= 0, got {max_reorder_samples}')
        if rewind_frames < 1:
            raise ValueError(f'rewind_frames must be >= 1, got {rewind_frames}')
        if align not in ALIGNMENTS:
            raise ValueError(f'align must be one of {ALIGNMENTS}, got {align!r}')
        self.align = align
        self.num_channels = int(num_channels)
        self.sample_rate = int(sample_rate)
        self.window_samples = int(window_samples)
        self.hop_samples = int(hop_samples)
        self.max_chunk_samples = int(max_chunk_samples)
        self.tolerance_ns = int(tolerance_ns)
        self.frame_id = frame_id
        self.max_reorder_samples = self.window_samples if max_reorder_samples is None else int(max_reorder_samples)
        self.rewind_frames = int(rewind_frames)
        self._tol_samples = self.tolerance_ns * self.sample_rate // NS_PER_S
        # everything a pending window or hole can still need, plus the frame being written (see _emit)
        self._capacity = 2 * (self.window_samples + self.max_reorder_samples) + self.max_chunk_samples
        self._buf = np.zeros((self.num_channels, self._capacity), np.float32)
        self.counts: dict[str, int] = dict.fromkeys(ASSEMBLY_EVENTS, 0)
        self.last_event: str | None = None
        self.last_discontinuity: str | None = None
        self.reset()

    def reset(self) -> None:
        """Forget the stream: the next frame starts a new one."""
        self._start = 0            # stream index of the stream's first sample
        self._head = 0             # one past the newest sample held
        self._next_window_end = self.window_samples  # stream index where the next window ends
        self._anchor_ns = 0        # stamp of stream index `_anchor_index`
        self._anchor_index = 0
        self._expected_ns: int | None = None  # stamp the next frame should carry
        self._holes: list[list[int]] = []     # sorted [a, b) index ranges not received yet
        self._run = 0              # consecutive frames dropped behind the stream, each continuing the last
        self._run_next_ns = 0

    @property
    def buffered_samples(self) -> int:
        """Samples the current stream holds (holes included)."""
        return min(self._head - self._start, self._capacity)

    @property
    def pending_holes(self) -> int:
        """Holes waiting for a late frame."""
        return len(self._holes)

    def _stamp_of(self, index: int) -> int:
        return self._anchor_ns + (index - self._anchor_index) * NS_PER_S // self.sample_rate

    def _samples_in(self, delta_ns: int) -> int:
        return (delta_ns * self.sample_rate + NS_PER_S // 2) // NS_PER_S   # rounded, also for delta < 0

    def push(self, samples: np.ndarray, stamp_ns: int, frame_id: str | None = None) -> list[Window]:
        """Place one validated (C, N) frame stamped at its first sample; return the completed windows."""
        c, n = samples.shape
        if c != self.num_channels:
            raise FrameError('channels', f'frame has {c} channels, expected {self.num_channels}')
        if not 1 <= n <= self.max_chunk_samples:
            raise FrameError('chunk_size', f'frame has {n} samples, expected 1..{self.max_chunk_samples}')
        stamp_ns = int(stamp_ns)
        self.last_discontinuity = None
        if self.frame_id is not None and frame_id != self.frame_id:
            return self._drop('frame_id')
        out: list[Window] = []
        delta = 0 if self._expected_ns is None else stamp_ns - self._expected_ns
        # a frame shorter than the tolerance: its re-sent copy is nearer the newest frame's stamp than the end
        resent = self._expected_ns is not None and abs(stamp_ns - self._anchor_ns) < abs(delta)
        if abs(delta) <= self.tolerance_ns and not resent:
            self._append(samples, stamp_ns, self._head, 'appended')
        elif delta > 0:
            jump = self._samples_in(delta)
            if jump > self.max_reorder_samples:
                out += self._restart('gap')
                jump = 0
            self._append(samples, stamp_ns, self._head + jump, self.last_discontinuity or 'appended')
        else:
            pos = self._head + min(self._samples_in(delta), -1)
            if not self._place(samples, pos):
                reason = 'stale' if pos < max(self._start, self._head - self._capacity) else 'duplicate'
                continues = self._run and abs(stamp_ns - self._run_next_ns) <= self.tolerance_ns
                self._run = self._run + 1 if continues else 1
                self._run_next_ns = stamp_ns + n * NS_PER_S // self.sample_rate
                if self._run < self.rewind_frames:
                    return self._drop(reason)
                out += self._restart('rewind')
                self._append(samples, stamp_ns, self._head, 'rewind')
        self._run = 0
        return out + self._emit()

    def _drop(self, reason: str) -> list[Window]:
        self.counts[reason] += 1
        self.last_event = reason
        return []

    def _write(self, samples: np.ndarray, index: int) -> None:
        n = samples.shape[1]
        pos = index % self._capacity
        first = min(n, self._capacity - pos)
        self._buf[:, pos:pos + first] = samples[:, :first]
        if first < n:
            self._buf[:, :n - first] = samples[:, first:]

    def _append(self, samples: np.ndarray, stamp_ns: int, index: int, event: str) -> None:
        """Write a frame at or after the head (leaving a hole before it); it anchors the stamps."""
        if index > self._head:
            self._holes.append([self._head, index])
        self._write(samples, index)
        self._head = index + samples.shape[1]
        # re-anchor on every frame that extends the stream so stamps follow the sender's clock
        self._anchor_ns, self._anchor_index = stamp_ns, index
        self._expected_ns = stamp_ns + samples.shape[1] * NS_PER_S // self.sample_rate
        self.last_event = event

    def _place(self, samples: np.ndarray, pos: int) -> bool:
        """Put a late frame into the hole it fits (within the tolerance); False when none fits."""
        n, tol = samples.shape[1], self._tol_samples
        for i, (a, b) in enumerate(self._holes):
            if a - tol <= pos and pos + n <= b + tol and n <= b - a + tol:
                m = min(n, b - a)                      # a frame longer than its hole within the tolerance
                pos = min(max(pos, a), b - m)
                self._write(samples[:, :m], pos)
                self._holes[i:i + 1] = [h for h in ([a, pos], [pos + m, b]) if h[1] > h[0]]
                self.counts['reordered'] += 1
                self.last_event = 'reordered'
                return True
        return False

    def _restart(self, reason: str) -> list[Window]:
        """Give up the open holes (emitting what follows them), count ``reason`` and forget the stream."""
        out = []
        while self._holes:
            out += self._emit(expire_all=True)
        self.counts[reason] += 1
        self.reset()
        self.last_discontinuity = reason
        return out

    def _emit(self, expire_all: bool = False) -> list[Window]:
        """Windows complete before the first hole; holes that can no longer be filled in time are given up.

        A hole [a, b) is open only while head < b + window, and the next window then ends after a - window,
        so the samples still needed span at most (b - a) + 2 * window + one frame written ahead
        (max_reorder + max_chunk): within the capacity.
        """
        out = []
        while True:
            limit = self._holes[0][0] if self._holes else self._head
            if self.align == 'frame' and self._next_window_end <= limit:
                out.append(self._window(limit))          # the newest complete window; the grid goes on
                self._next_window_end += ((limit - self._next_window_end) // self.hop_samples + 1) * self.hop_samples
            while self._next_window_end <= limit:
                out.append(self._window(self._next_window_end))
                self._next_window_end += self.hop_samples
            if not self._holes or not (expire_all or self._head >= self._holes[0][1] + self.window_samples):
                return out
            _, b = self._holes.pop(0)       # the audio in the hole is lost: the stream restarts after it
            self.counts['gap'] += 1
            self.last_discontinuity = 'gap'
            self._start = b
            self._next_window_end = b + self.window_samples
            expire_all = False

    def _window(self, end: int) -> Window:
        start = end - self.window_samples
        lo = start % self._capacity
        hi = lo + self.window_samples
        audio = (self._buf[:, lo:hi].copy() if hi <= self._capacity else
                 np.concatenate([self._buf[:, lo:], self._buf[:, :hi - self._capacity]], axis=1))
        start_ns = self._stamp_of(start)
        return Window(audio, start_ns, start_ns + self.window_samples * NS_PER_S // self.sample_rate)
