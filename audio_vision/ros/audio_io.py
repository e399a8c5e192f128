# SPDX-License-Identifier: Apache-2.0
"""Audio input for audio_capture_node, up to the PortAudio boundary (no rclpy, no sounddevice import).

* :class:`CaptureBuffer` - the PortAudio stream callback as a plain method: converts PCM to (C, N)
  float32, stamps each block with its ADC capture time (:class:`AdcClock`), counts overruns, and hands
  blocks to the node through a bounded queue (never blocks the audio thread).
* :func:`find_device` - picks an input device by index or (case-insensitive) name substring from the
  list ``sounddevice.query_devices()`` returns.
* :class:`WavReader` - a multichannel WAV/FLAC file read by stream index, optionally looped.
* :class:`ChirpPlayer` - the active chirp (the simulator's chirp pulse) for a full-duplex stream.
"""
from __future__ import annotations

import collections
import threading
from pathlib import Path

import numpy as np

from audio_vision.core.stream.windowing import NS_PER_S

PCM_SCALE = {'float32': 1.0, 'int16': 1.0 / 32768.0, 'int32': 1.0 / 2147483648.0}


def pcm_to_float(block: np.ndarray, dtype: str) -> np.ndarray:
    """(N, C) interleaved PCM block as PortAudio delivers it -> (C, N) float32 in [-1, 1)."""
    if dtype not in PCM_SCALE:
        raise ValueError(f'dtype must be one of {sorted(PCM_SCALE)}, got {dtype!r}')
    out = np.asarray(block).T.astype(np.float32)
    if PCM_SCALE[dtype] != 1.0:
        out *= PCM_SCALE[dtype]
    return np.ascontiguousarray(out)


class AdcClock:
    """Maps PortAudio stream time (seconds, the clock of ``inputBufferAdcTime``) to ROS time (ns).

    At every callback the offset ``ros_now - currentTime`` is measured; callback scheduling delay only
    makes it larger, so the minimum over the last ``history`` callbacks is the best estimate (it still
    follows slow drift between the two clocks). The stamp of a block is then
    ``inputBufferAdcTime + offset``. Host APIs that report no ADC time (0) fall back to
    ``ros_now - block duration``.
    """

    def __init__(self, sample_rate: int, history: int = 64):
        self.sample_rate = int(sample_rate)
        self._offsets = collections.deque(maxlen=history)

    def stamp(self, adc_time: float, current_time: float, ros_now_ns: int, frames: int) -> int:
        if adc_time <= 0.0 or current_time <= 0.0:
            return int(ros_now_ns) - frames * NS_PER_S // self.sample_rate
        self._offsets.append(int(ros_now_ns) - round(current_time * NS_PER_S))
        return round(adc_time * NS_PER_S) + min(self._offsets)

    def reset(self) -> None:
        """Forget the offset (a new stream may use a new time base)."""
        self._offsets.clear()


class CaptureBuffer:
    """The stream callback logic, drivable from tests with plain numpy blocks.

    ``callback(indata, frames, time_info, status)`` has sounddevice's signature (``time_info`` has
    ``inputBufferAdcTime`` and ``currentTime``, ``status`` has ``input_overflow``). Blocks wait in a
    bounded queue for :meth:`drain`; when the consumer stalls the oldest block is dropped and counted.
    ``notify()``, when given, is called (on the audio thread) after each block is queued, to wake the consumer.
    """

    def __init__(self, channels: int, sample_rate: int, dtype: str, now_ns, max_blocks: int = 64, notify=None):
        self.channels, self.sample_rate, self.dtype = int(channels), int(sample_rate), dtype
        self.clock = AdcClock(sample_rate)
        self._now_ns = now_ns
        self._queue = collections.deque()
        self._max = max_blocks
        self._lock = threading.Lock()
        self._notify = notify
        self.blocks = 0
        self.overruns = 0
        self.dropped_blocks = 0
        self.last_block_ns: int | None = None

    def callback(self, indata, frames, time_info, status) -> None:
        now = int(self._now_ns())
        if status and getattr(status, 'input_overflow', False):
            self.overruns += 1
        samples = pcm_to_float(indata[:frames, :self.channels], self.dtype)
        stamp = self.clock.stamp(float(getattr(time_info, 'inputBufferAdcTime', 0.0)),
                                 float(getattr(time_info, 'currentTime', 0.0)), now, frames)
        with self._lock:
            if len(self._queue) >= self._max:
                self._queue.popleft()
                self.dropped_blocks += 1
            self._queue.append((samples, stamp))
            self.blocks += 1
            self.last_block_ns = now
        if self._notify is not None:
            self._notify()

    def drain(self) -> list[tuple[np.ndarray, int]]:
        with self._lock:
            out = list(self._queue)
            self._queue.clear()
        return out

    def reset(self) -> None:
        with self._lock:
            self._queue.clear()
            self.last_block_ns = None
        self.clock.reset()


def find_device(spec: str, devices, channels: int, kind: str = 'input') -> int:
    """Index of the device named by ``spec`` ('' = None is handled by the caller): an integer index or a
    case-insensitive substring of the name; the device must have ``channels`` channels of ``kind``.
    Raises LookupError naming the available devices."""
    key = f'max_{kind}_channels'
    devices = list(devices)
    usable = [(i, d) for i, d in enumerate(devices) if d.get(key, 0) >= channels]
    spec = str(spec).strip()
    if spec.lstrip('-').isdigit():
        i = int(spec)
        if not 0 <= i < len(devices):
            raise LookupError(f'no audio device with index {i}')
        if devices[i].get(key, 0) < channels:
            raise LookupError(f"device {i} ('{devices[i]['name']}') has {devices[i].get(key, 0)} {kind} "
                              f'channels, {channels} requested')
        return i
    for i, d in usable:
        if spec.lower() in str(d['name']).lower():
            return i
    names = ', '.join(f"{i}: '{d['name']}' ({d.get(key, 0)} ch)" for i, d in enumerate(devices)
                      if d.get(key, 0) > 0) or 'none'
    raise LookupError(f"no {kind} device matching '{spec}' with >= {channels} channels; available: {names}")


class WavReader:
    """A multichannel sound file read by absolute stream index; with ``loop`` it repeats forever."""

    def __init__(self, path: str | Path, loop: bool = False):
        import soundfile
        self.path = str(path)
        try:
            self._file = soundfile.SoundFile(self.path)
        except (RuntimeError, OSError) as exc:  # soundfile.LibsndfileError is a RuntimeError
            raise ValueError(f'cannot open sound file {self.path}: {exc}') from None
        self.loop = loop
        self.sample_rate = int(self._file.samplerate)
        self.channels = int(self._file.channels)
        self.frames = int(self._file.frames)
        if self.frames == 0:
            raise ValueError(f'sound file {self.path} is empty')

    def read(self, index: int, n: int) -> np.ndarray | None:
        """(C, <= n) float32 samples from stream index ``index``; None past the end (no loop)."""
        if not self.loop and index >= self.frames:
            return None
        out = []
        pos, want = (index % self.frames if self.loop else index), n
        while want > 0:
            self._file.seek(pos)
            block = self._file.read(min(want, self.frames - pos), dtype='float32', always_2d=True)
            out.append(block)
            want -= len(block)
            if not self.loop:
                break
            pos = 0
        return np.ascontiguousarray(np.concatenate(out).T)

    def close(self) -> None:
        self._file.close()


class ChirpPlayer:
    """Fills output blocks with a pulse (the simulator's chirp) repeated every ``period_s``, scaled to a
    peak of ``amplitude`` (full scale = 1)."""

    def __init__(self, waveform: np.ndarray, period_s: float, sample_rate: int, amplitude: float):
        waveform = np.asarray(waveform, np.float64)
        period = max(len(waveform), int(round(period_s * sample_rate)))
        self._pulse = np.zeros(period, np.float32)
        self._pulse[:len(waveform)] = amplitude * waveform / max(np.abs(waveform).max(), 1e-12)
        self._pos = 0

    def fill(self, outdata: np.ndarray) -> None:
        """Write the next ``len(outdata)`` samples into every output channel of (frames, ch) ``outdata``."""
        n = len(outdata)
        idx = (self._pos + np.arange(n)) % len(self._pulse)
        outdata[:] = self._pulse[idx][:, None]
        self._pos = (self._pos + n) % len(self._pulse)
