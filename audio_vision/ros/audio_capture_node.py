# SPDX-License-Identifier: Apache-2.0
"""audio_capture_node: a real microphone array (PortAudio) or a multichannel WAV file -> audio/frames.

``source: device`` captures through PortAudio (``sounddevice``; needs the system library libportaudio2).
Each block of ``chunk_samples`` is stamped with its ADC capture time (``inputBufferAdcTime`` mapped to
ROS time), overruns are counted, and a device that disappears or stalls is reopened every
``reconnect_period_s``. With ``chirp: true`` the stream is full duplex and plays the simulator's chirp
(``sim_config``'s ``chirp`` section) on the output device, so the real array hears what the model was
trained on.

``source: wav`` plays a multichannel sound file in real time (``rate`` x), optionally looped; stamps
are ``t_open + sample_index / sample_rate``.

Frames follow the audio-frame convention (32FC1 Image, height = channels, width = samples, stamp = first
sample, frame = ``array_frame_id``). Diagnostics on /diagnostics every ``diagnostics_period_s``.
"""
from __future__ import annotations

import time

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image

from audio_vision.core.stream.windowing import NS_PER_S
from audio_vision.paths import config_dir
from audio_vision.ros import conversions as conv
from audio_vision.ros.audio_io import PCM_SCALE, CaptureBuffer, ChirpPlayer, WavReader, find_device
from audio_vision.ros.diagnostics import diagnostic_array
from audio_vision.ros.lifecycle import ShellNode, StartupError, run_node
from audio_vision.ros.parameters import Param, declare_parameters
from audio_vision.runtime.pacing import ChunkPacer, PacedLoop
from audio_vision.runtime.stats import RateMeter

NODE_NAME = 'audio_capture_node'

PARAMS = [
    Param('source', 'device', "'device' (PortAudio microphone array) or 'wav' (sound file)",
          choices=('device', 'wav')),
    Param('device', '', "input device: index or case-insensitive name substring; '' = the default device"),
    Param('channels', 8, 'channels to capture; for a wav source 0 = all channels of the file',
          range=(0, 256)),
    Param('sample_rate', 16000, 'sample rate in Hz; for a wav source 0 = the rate of the file',
          range=(0, 384000)),
    Param('chunk_samples', 1000, 'samples per audio frame (PortAudio block size); a divisor of the model\'s hop '
                                 '(4000 at 16 kHz) means no window waits for the rest of a frame', range=(16, 65536)),
    Param('dtype', 'float32', 'PortAudio sample format', choices=tuple(PCM_SCALE)),
    Param('latency', 'low', "PortAudio latency hint: 'low' or 'high'", choices=('low', 'high')),
    Param('wav_path', '', 'sound file played when source is wav (any format libsndfile reads)'),
    Param('loop', False, 'loop the sound file'),
    Param('rate', 1.0, 'playback speed of the sound file relative to real time', range=(0.01, 100.0)),
    Param('array_frame_id', 'audio_array', 'frame_id of audio/frames (the array frame)'),
    Param('qos_depth', 10, 'history depth of the audio/frames publisher (reliable)', range=(1, 1000)),
    Param('reconnect_period_s', 2.0, 'reopen a lost or stalled device after this many seconds',
          range=(0.1, 600.0)),
    Param('chirp', False, 'play the active chirp (full-duplex stream) on the output device'),
    Param('output_device', '', "output device for the chirp: index or name substring; '' = default"),
    Param('chirp_amplitude', 0.5, 'peak amplitude of the chirp, full scale = 1', range=(0.0, 1.0)),
    Param('sim_config', str(config_dir() / 'simulation.yaml'),
          "simulator config whose 'chirp' section defines the chirp; '' = built-in defaults"),
    Param('diagnostics_period_s', 1.0, 'period of /diagnostics', range=(0.1, 60.0)),
]


class AudioCaptureNode(ShellNode):

    def __init__(self, **kwargs):
        super().__init__(NODE_NAME, **kwargs)

    def _setup(self):
        self.stream = None
        p = self.params = declare_parameters(self, PARAMS)
        self.pub = self.create_publisher(Image, 'audio/frames',
                                         QoSProfile(depth=p['qos_depth'], reliability=ReliabilityPolicy.RELIABLE))
        self.diag_pub = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self.frames_out = RateMeter()
        self.reconnects = 0
        self.connected = False
        self.status_message = ''
        if p['source'] == 'wav':
            self._setup_wav()
        else:
            self._setup_device()
        self.create_timer(p['diagnostics_period_s'], self.publish_diagnostics)

    def _publish(self, samples, stamp_ns: int) -> None:
        self.pub.publish(conv.audio_to_msg(samples, stamp_ns, self.params['array_frame_id']))
        self.frames_out.tick()

    # ------------------------------------------------------------ WAV source

    def _setup_wav(self):
        p = self.params
        if not p['wav_path']:
            raise StartupError("parameter 'wav_path' is required when source is 'wav'")
        try:
            self.reader = WavReader(p['wav_path'], loop=p['loop'])
        except ValueError as exc:
            raise StartupError(str(exc)) from None
        r = self.reader
        if p['channels'] and p['channels'] != r.channels:
            raise StartupError(f"{p['wav_path']} has {r.channels} channels, parameter 'channels' is {p['channels']}")
        if p['sample_rate'] and p['sample_rate'] != r.sample_rate:
            raise StartupError(f"{p['wav_path']} is sampled at {r.sample_rate} Hz, parameter 'sample_rate' is "
                               f"{p['sample_rate']} (resample the file)")
        self.sample_rate, self.channels = r.sample_rate, r.channels
        self.pacer = ChunkPacer(r.sample_rate, p['chunk_samples'], p['rate'])
        self.start_ns: int | None = None     # stamp of the file's first sample, set when playback starts
        self.connected = True
        # each chunk is published when its last sample is due, by a thread that sleeps until then (a polling
        # timer added up to its period of latency); it starts with the executor's first spin
        self.wav_timer = PacedLoop(self.pacer, self._tick_wav, 'wav_stream', self.get_logger(), self.context)
        self._starter = self.create_timer(0.001, self._start_wav)
        self.get_logger().info(f"playing {p['wav_path']}: {r.channels} ch @ {r.sample_rate} Hz, "
                               f"{r.frames / r.sample_rate:.1f} s{' (looped)' if p['loop'] else ''}")

    def _start_wav(self) -> None:
        self._starter.cancel()
        self.wav_timer.start()

    def _tick_wav(self):
        now = time.monotonic()
        if self.start_ns is None:
            self.start_ns = self.get_clock().now().nanoseconds
        for index in self.pacer.due(now):
            samples = self.reader.read(index, self.pacer.chunk)
            if samples is None:
                self.wav_timer.cancel()
                self.connected = False
                self.status_message = 'end of file'
                self.get_logger().info(f"end of {self.params['wav_path']}")
                return
            self._publish(samples, self.start_ns + index * NS_PER_S // self.sample_rate)

    # ------------------------------------------------------------ PortAudio source

    def _setup_device(self):
        p = self.params
        if p['channels'] < 1 or p['sample_rate'] < 1:
            raise StartupError("parameters 'channels' and 'sample_rate' must be > 0 for a device source")
        try:
            import sounddevice
        except OSError as exc:  # the Python package is there but the PortAudio library is not
            raise StartupError(f'PortAudio is unavailable ({exc}); install libportaudio2 '
                               '(scripts/setup.sh does)') from None
        self.sd = sounddevice
        self.sample_rate, self.channels = p['sample_rate'], p['channels']
        # the audio thread wakes the executor for each block (a guard condition), so a block is published as
        # soon as PortAudio delivers it, not up to one polling period later
        self._block_ready = self.create_guard_condition(self._drain)
        self.capture = CaptureBuffer(self.channels, self.sample_rate, p['dtype'],
                                     lambda: self.get_clock().now().nanoseconds, notify=self._notify_block)
        self.chirp = self._make_chirp() if p['chirp'] else None
        self.output_underflows = 0
        try:
            self._open_stream()
        except (LookupError, self.sd.PortAudioError, ValueError) as exc:
            raise StartupError(f'cannot open the audio device: {exc}') from None
        # a safety net only: blocks are drained on the guard condition
        self._drain_timer = self.create_timer(max(0.1, p['chunk_samples'] / self.sample_rate), self._drain)
        self.create_timer(p['reconnect_period_s'], self._watchdog)

    def _make_chirp(self) -> ChirpPlayer:
        from audio_vision.simulation.config import SimConfig
        from audio_vision.core.features.chirp import chirp_pulse
        path = self.params['sim_config']
        try:
            ch = (SimConfig.from_yaml(path) if path else SimConfig()).chirp
        except (OSError, ValueError) as exc:
            raise StartupError(f"parameter 'sim_config': {path}: {exc}") from None
        pulse = chirp_pulse(self.sample_rate, ch.f_start, ch.f_end, ch.duration_s, ch.kind)
        return ChirpPlayer(pulse, ch.period_s, self.sample_rate, self.params['chirp_amplitude'])

    def _duplex_callback(self, indata, outdata, frames, time_info, status):
        if status and status.output_underflow:
            self.output_underflows += 1
        self.chirp.fill(outdata)
        self.capture.callback(indata, frames, time_info, status)

    def _open_stream(self):
        p, sd = self.params, self.sd
        devices = sd.query_devices()
        device = find_device(p['device'], devices, self.channels) if p['device'] else None
        common = dict(samplerate=self.sample_rate, blocksize=p['chunk_samples'], dtype=p['dtype'],
                      latency=p['latency'], finished_callback=self._on_finished)
        if self.chirp is not None:
            out = find_device(p['output_device'], devices, 1, 'output') if p['output_device'] else None
            stream = sd.Stream(device=(device, out), channels=(self.channels, 1),
                               callback=self._duplex_callback, **common)
        else:
            stream = sd.InputStream(device=device, channels=self.channels, callback=self.capture.callback,
                                    **common)
        self.capture.reset()
        stream.start()
        self.stream, self.connected, self._opened_at = stream, True, time.monotonic()
        name = sd.query_devices(stream.device[0] if isinstance(stream.device, (list, tuple)) else stream.device)['name']
        self.status_message = f"capturing from '{name}'"
        self.hardware_id = f'{name} ({self.channels} ch @ {self.sample_rate} Hz)'   # the device in use
        self.get_logger().info(f'{self.status_message}: {self.channels} ch @ {self.sample_rate} Hz, '
                               f"blocks of {p['chunk_samples']}{', chirp on' if self.chirp else ''}")

    def _on_finished(self):
        self.connected = False  # called from the PortAudio thread when the stream stops or aborts

    def _notify_block(self) -> None:
        """Called on the audio thread after each block: wake the executor to publish it."""
        try:
            self._block_ready.trigger()
        except Exception:  # noqa: BLE001 - node shutting down; the block is dropped with the node
            pass

    def _drain(self):
        for samples, stamp_ns in self.capture.drain():
            self._publish(samples, stamp_ns)

    def _watchdog(self):
        """Reopen the device when the stream ended or no block arrived for reconnect_period_s."""
        now = time.monotonic()
        last = self.capture.last_block_ns
        stalled = self.connected and now - self._opened_at > self.params['reconnect_period_s'] and (
            last is None or self.get_clock().now().nanoseconds - last > self.params['reconnect_period_s'] * NS_PER_S)
        if self.connected and not stalled:
            return
        if self.stream is not None:
            self.get_logger().warning(('no audio from the device for '
                                       f"{self.params['reconnect_period_s']:g} s" if stalled else
                                       'the audio stream stopped (device lost?)') + ': reconnecting')
        self._close_stream()
        self.connected = False
        try:
            self.sd._terminate()      # rescan: PortAudio only enumerates devices at initialisation
            self.sd._initialize()
            self._open_stream()
            self.reconnects += 1
        except Exception as exc:  # noqa: BLE001 - any failure: keep retrying
            self.status_message = f'device unavailable: {exc}'
            self.get_logger().warning(f"{self.status_message}; retrying every {self.params['reconnect_period_s']:g} s",
                                      throttle_duration_sec=30.0)

    def _close_stream(self):
        if getattr(self, 'stream', None) is not None:
            try:
                self.stream.abort(ignore_errors=True)
                self.stream.close(ignore_errors=True)
            except Exception:  # noqa: BLE001 - the device may already be gone
                pass
            self.stream = None

    def destroy_node(self):
        if getattr(self, 'wav_timer', None) is not None:
            self.wav_timer.cancel()             # no tick publishes on a destroyed publisher
        self._close_stream()
        if getattr(self, 'reader', None) is not None:
            self.reader.close()
        return super().destroy_node()

    # ------------------------------------------------------------ diagnostics

    def publish_diagnostics(self):
        p = self.params
        values = {'source': p['source'], 'frames published': self.frames_out.total,
                  'output rate (frames/s)': self.frames_out.rate(),
                  'sample rate (Hz)': self.sample_rate, 'channels': self.channels,
                  'chunk (samples)': p['chunk_samples']}
        if p['source'] == 'device':
            values.update({'overruns': self.capture.overruns, 'dropped blocks': self.capture.dropped_blocks,
                           'reconnects': self.reconnects, 'output underflows': self.output_underflows})
        else:
            values.update({'file': p['wav_path'], 'skipped chunks (late)': self.pacer.skipped})
        level = DiagnosticStatus.OK if self.connected else (
            DiagnosticStatus.WARN if p['source'] == 'wav' else DiagnosticStatus.ERROR)
        self.diag_pub.publish(diagnostic_array(
            self.get_clock().now().to_msg(), f'{self.get_name()}: audio capture',
            getattr(self, 'hardware_id', None) or (f"wav:{p['wav_path']}" if p['source'] == 'wav'
                                                   else f"audio device {p['device'] or 'default'}"), level,
            self.status_message or ('OK' if self.connected else 'not capturing'), values))


def main(args=None):
    return run_node(AudioCaptureNode, args, NODE_NAME)


if __name__ == '__main__':
    raise SystemExit(main())
