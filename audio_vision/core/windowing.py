"""Audio-frame validation and the ring buffer that assembles analysis windows (pure, no rclpy).

The perception node receives the audio stream as chunks ("frames") of ``C x N`` samples, each
stamped with the capture time of its first sample (see docs/ARCHITECTURE.md). This module

* validates a frame's layout and samples (:func:`check_layout`, :func:`check_samples`) and raises
  :class:`FrameError` with a short machine-readable ``reason`` (counted in diagnostics);
* assembles windows of ``window_samples`` every ``hop_samples`` in a ring buffer
  (:class:`WindowAssembler`). Stamp continuity is checked on every frame: a frame that starts later
  than where the previous one ended (a gap: dropped chunks, overrun, paused source) or earlier (a
  reordered/duplicated frame, a replay loop, a clock jump) *resets* the buffer and the stream starts
  afresh at that frame, so a window never stitches unrelated audio together.

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
#: reasons the stream is reset (the frame itself is accepted and starts the new stream)
DISCONTINUITY_REASONS = ('gap', 'reordered')


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

    ``push(samples, stamp_ns)`` returns the windows completed by that frame (oldest first; usually
    zero or one). A frame whose stamp differs from the expected one (end of the previous frame) by more
    than ``tolerance_ns`` resets the stream; :attr:`last_discontinuity` then names the reason
    ('gap' or 'reordered') until the next push. The expected stamp is carried from the *previous frame's*
    stamp, so a slow drift between the sample clock and the stamping clock never accumulates.
    """

    def __init__(self, num_channels: int, sample_rate: int, window_samples: int, hop_samples: int,
                 max_chunk_samples: int, tolerance_ns: int = 1_000_000):
        if window_samples < 1 or hop_samples < 1 or max_chunk_samples < 1:
            raise ValueError('window_samples, hop_samples and max_chunk_samples must be >= 1')
        self.num_channels = int(num_channels)
        self.sample_rate = int(sample_rate)
        self.window_samples = int(window_samples)
        self.hop_samples = int(hop_samples)
        self.max_chunk_samples = int(max_chunk_samples)
        if tolerance_ns < 0:
            raise ValueError(f'tolerance_ns must be >= 0, got {tolerance_ns}')
        self.tolerance_ns = int(tolerance_ns)
        self._capacity = self.window_samples + self.max_chunk_samples
        self._buf = np.zeros((self.num_channels, self._capacity), np.float32)
        self.last_discontinuity: str | None = None
        self.reset()

    def reset(self) -> None:
        """Forget the stream: the next frame starts a new one."""
        self._total = 0            # samples written since the stream started
        self._next_window_end = self.window_samples  # stream index where the next window ends
        self._anchor_ns = 0        # stamp of stream index `_anchor_index`
        self._anchor_index = 0
        self._expected_ns: int | None = None  # stamp the next frame should carry

    @property
    def buffered_samples(self) -> int:
        return min(self._total, self._capacity)

    def _stamp_of(self, index: int) -> int:
        return self._anchor_ns + (index - self._anchor_index) * NS_PER_S // self.sample_rate

    def push(self, samples: np.ndarray, stamp_ns: int) -> list[Window]:
        """Append one validated (C, N) frame stamped at its first sample; return completed windows."""
        c, n = samples.shape
        if c != self.num_channels:
            raise FrameError('channels', f'frame has {c} channels, expected {self.num_channels}')
        if not 1 <= n <= self.max_chunk_samples:
            raise FrameError('chunk_size', f'frame has {n} samples, expected 1..{self.max_chunk_samples}')
        stamp_ns = int(stamp_ns)
        self.last_discontinuity = None
        if self._expected_ns is not None:
            delta = stamp_ns - self._expected_ns
            if delta > self.tolerance_ns:
                self.last_discontinuity = 'gap'
            elif delta < -self.tolerance_ns:
                self.last_discontinuity = 'reordered'
            if self.last_discontinuity:
                self.reset()
        # re-anchor on every frame so stamps follow the sender's clock
        self._anchor_ns, self._anchor_index = stamp_ns, self._total
        self._expected_ns = stamp_ns + n * NS_PER_S // self.sample_rate

        pos = self._total % self._capacity
        first = min(n, self._capacity - pos)
        self._buf[:, pos:pos + first] = samples[:, :first]
        if first < n:
            self._buf[:, :n - first] = samples[:, first:]
        self._total += n

        windows = []
        while self._next_window_end <= self._total:
            # capacity = window + largest chunk, so every window completed by this frame is intact
            start = self._next_window_end - self.window_samples
            lo = start % self._capacity
            hi = lo + self.window_samples
            audio = (self._buf[:, lo:hi].copy() if hi <= self._capacity else
                     np.concatenate([self._buf[:, lo:], self._buf[:, :hi - self._capacity]], axis=1))
            start_ns = self._stamp_of(start)
            windows.append(Window(audio, start_ns,
                                  start_ns + self.window_samples * NS_PER_S // self.sample_rate))
            self._next_window_end += self.hop_samples
        return windows
