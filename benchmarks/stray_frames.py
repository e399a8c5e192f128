# SPDX-License-Identifier: Apache-2.0
"""Stray frames cost no output: depth images out of a stream with stray frames mixed in vs the clean stream.

    .venv/bin/python benchmarks/stray_frames.py --json docs/stray_frames.json        # shipped model, ~1 min

perception_node runs in its own process, as a robot integrator starts it
(``python -m audio_vision node perception --ros-args --params-file config/perception.yaml -p ...``); this
process publishes simulated 8-channel audio on ``audio/frames`` over real DDS in ``--chunk``-sample frames,
paced on their stamps (``--rate`` x real time): first the clean stream, then the same audio (stamps 1000 s
later) with one stray frame after every valid frame, cycling through :data:`STRAY_KINDS`: a copy 10 s old
(stale), a frame of another array with the same stamp (frame_id), the frame re-sent (duplicate), the next two
frames swapped (reordered), and the malformed kinds. Outputs are counted by their stamps (depth/image), not
by time; every stray frame must be counted under its reason in /diagnostics. The graph test
test/test_robustness_stray.py runs the same code on a tiny model.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import threading
import time
from datetime import date
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')

from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402

from audio_vision.core.stream.windowing import FRAME_ERROR_REASONS, NS_PER_S  # noqa: E402
from audio_vision.ros import conversions as conv  # noqa: E402
from audio_vision.ros.graph import Graph, TopicRecorder  # noqa: E402

#: one stray frame per valid frame, in this order; 'reordered' swaps the next two valid frames instead
STRAY_KINDS = ('stale', 'frame_id', 'duplicate', 'reordered') + FRAME_ERROR_REASONS
#: the /diagnostics key that counts each kind
DIAGNOSTIC_KEY = {'stale': 'dropped frames (stale)', 'frame_id': 'dropped frames (frame_id)',
                  'duplicate': 'dropped frames (duplicate)', 'reordered': 'reordered frames',
                  **{r: f'invalid frames ({r})' for r in FRAME_ERROR_REASONS}}
ARRAY_FRAME = 'audio_array'


def simulated_audio(seconds: float, seed: int = 0) -> tuple[np.ndarray, int]:
    """(8, N) float32 audio of one simulated scene, and its sample rate."""
    from audio_vision.simulation.simulator import Simulator
    sim = Simulator()
    audio = sim.record(sim.sample_scene(seed), seconds, seed)
    return np.ascontiguousarray(audio, np.float32), int(sim.sample_rate)


def stray(kind: str, x: np.ndarray, stamp_ns: int, fs: int) -> Image:
    """A stray frame of ``kind`` made from the valid frame (x, stamp) just sent."""
    if kind == 'stale':
        return conv.audio_to_msg(x, stamp_ns - 10 * NS_PER_S, ARRAY_FRAME)
    if kind == 'frame_id':
        return conv.audio_to_msg(x[:, ::-1].copy(), stamp_ns, 'another_array')
    if kind == 'duplicate':
        return conv.audio_to_msg(x, stamp_ns, ARRAY_FRAME)
    if kind == 'channels':
        return conv.audio_to_msg(np.vstack([x, x[:1]]), stamp_ns, ARRAY_FRAME)
    if kind == 'chunk_size':
        return conv.audio_to_msg(x[:, :8].copy(), stamp_ns, ARRAY_FRAME)   # below min_chunk_samples (16)
    bad = x.copy()
    if kind == 'non_finite':
        bad[1, 5] = np.nan
    elif kind == 'out_of_range':
        bad[0, 7] = 1e20
    msg = conv.audio_to_msg(bad, stamp_ns, ARRAY_FRAME)
    if kind == 'encoding':
        msg.encoding = '16SC1'
    elif kind == 'layout':
        msg.step += 4
    return msg


def frame_sequence(audio: np.ndarray, fs: int, t0_ns: int, chunk: int, mixed: bool):
    """[(message, offset of its stamp from t0 in s)] and {kind: strays put in}. Clean: the chunks in order.
    Mixed: after each valid frame one stray frame; 'reordered' sends the next frame before this one."""
    chunks = [(audio[:, k:k + chunk], t0_ns + k * NS_PER_S // fs) for k in range(0, audio.shape[1] - chunk + 1, chunk)]
    out, counts, i, n = [], dict.fromkeys(STRAY_KINDS, 0), 0, 0
    while i < len(chunks):
        x, stamp = chunks[i]
        kind = STRAY_KINDS[n % len(STRAY_KINDS)] if mixed else None
        if kind == 'reordered' and i + 1 < len(chunks) and i > 0:
            later = chunks[i + 1]
            out += [(conv.audio_to_msg(later[0], later[1], ARRAY_FRAME), later[1]),
                    (conv.audio_to_msg(x, stamp, ARRAY_FRAME), later[1])]
            counts[kind] += 1
            n += 1
            i += 1
            x, stamp = later
            kind = STRAY_KINDS[n % len(STRAY_KINDS)]
        else:
            out.append((conv.audio_to_msg(x, stamp, ARRAY_FRAME), stamp))
        if kind == 'reordered':   # no frame to swap with here: take the next kind
            n += 1
            kind = STRAY_KINDS[n % len(STRAY_KINDS)]
        if kind is not None:
            out.append((stray(kind, x, stamp, fs), stamp))
            counts[kind] += 1
            n += 1
        i += 1
    return [(msg, (stamp - t0_ns) / NS_PER_S) for msg, stamp in out], counts


class FramePublisher(Node):
    """Publishes audio/frames (reliable writer; the node's best-effort reader matches it)."""

    def __init__(self, **kwargs):
        super().__init__('stray_frame_publisher', **kwargs)
        self.pub = self.create_publisher(Image, 'audio/frames',
                                         QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE))


class PerceptionProcess:
    """``python -m audio_vision node perception --ros-args ...`` in its own process (context manager)."""

    def __init__(self, domain_id: int, model_dir: str | None, params: dict, params_file: str | None = None):
        args = [sys.executable, '-m', 'audio_vision', 'node', 'perception', '--ros-args']
        if params_file:
            args += ['--params-file', str(params_file)]
        if model_dir:
            params = {'model_dir': str(model_dir), **params}
        for k, v in params.items():
            args += ['-p', f'{k}:={v}']
        env = {**os.environ, 'ROS_DOMAIN_ID': str(domain_id), 'ROS_AUTOMATIC_DISCOVERY_RANGE': 'LOCALHOST',
               'PYTHONPATH': str(ROOT)}
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                                     cwd=ROOT)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=lambda: self.lines.extend(self.proc.stdout), daemon=True)
        self._reader.start()
        self.returncode: int | None = None

    def stop(self) -> int:
        """SIGINT, wait (kill after 30 s); the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            self.returncode = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.returncode = self.proc.wait(timeout=10)
        self._reader.join(timeout=5)
        return self.returncode

    @property
    def output(self) -> str:
        """Everything the node printed so far."""
        return ''.join(self.lines)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def diagnostics(rec: TopicRecorder) -> dict[str, str]:
    """The values of the last perception /diagnostics status received ({} before the first)."""
    msgs = [m for _, m in rec.get('/diagnostics') if m.status and 'audio perception' in m.status[0].name]
    return {kv.key: kv.value for kv in msgs[-1].status[0].values} if msgs else {}


def publish_paced(src: FramePublisher, frames, rate: float) -> None:
    """Publish each frame when the wall clock reaches its stamp offset / rate (stray frames right after)."""
    start = time.monotonic()
    for msg, offset in frames:
        delay = start + offset / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        src.pub.publish(msg)


def settle(graph: Graph, rec: TopicRecorder, want: dict[str, int], timeout: float) -> dict[str, str]:
    """Wait until /diagnostics shows ``want`` (key: at least), every window is accounted for (published and
    received, or dropped) and the window count has not moved for 1 s; returns the last diagnostics."""
    state = {'windows': None, 'since': time.monotonic()}

    def done():
        d = diagnostics(rec)
        if not d or any(int(d.get(k, -1)) < v for k, v in want.items()):
            return False
        if d['windows'] != state['windows']:
            state.update(windows=d['windows'], since=time.monotonic())
            return False
        served = int(d['windows']) - int(d['dropped windows']) - int(d['inference errors'])
        return rec.count('depth/image') == served and time.monotonic() - state['since'] > 1.0
    graph.wait_for(done, timeout, poll=0.1)
    return diagnostics(rec)


def measure(model_dir: str | None = None, seconds: float = 12.0, chunk: int = 1024, rate: float = 1.0,
            domain_id: int = 81, params: dict | None = None, params_file: str | None = None, seed: int = 0,
            timeout: float = 120.0) -> dict:
    """Run the clean stream then the mixed one through one perception_node process; the counts of each."""
    audio, fs = simulated_audio(seconds, seed)
    t0 = 1_700_000_000 * NS_PER_S
    t1 = t0 + 1000 * NS_PER_S                        # the mixed run: same audio, a clean restart (one gap)
    clean, _ = frame_sequence(audio, fs, t0, chunk, mixed=False)
    mixed, strays = frame_sequence(audio, fs, t1, chunk, mixed=True)
    node_params = {'queue_size': 64, 'input_qos_depth': 1000, 'diagnostics_period_s': 0.2, **(params or {})}
    result = {'seconds': seconds, 'chunk': chunk, 'rate': rate, 'sample_rate': fs, 'channels': int(audio.shape[0]),
              'valid_frames': len(clean), 'stray_frames': strays, 'node_params': node_params,
              'params_file': params_file and os.path.relpath(params_file, ROOT)}
    with PerceptionProcess(domain_id, model_dir, node_params, params_file) as node, \
            Graph(domain_id=domain_id) as graph:
        src = graph.add(FramePublisher)
        rec = graph.add(TopicRecorder, topics={'depth/image': Image, '/diagnostics': DiagnosticArray}, depth=1000)
        graph.start()
        ready = graph.wait_for(lambda: node.proc.poll() is not None or (
            src.pub.get_subscription_count() >= 1 and rec.count_publishers('depth/image') >= 1
            and rec.count_publishers('/diagnostics') >= 1 and diagnostics(rec)), timeout, poll=0.1)
        if not ready or node.proc.poll() is not None:
            node.stop()
            raise RuntimeError(f'perception_node did not come up:\n{node.output}')
        publish_paced(src, clean, rate)
        after_clean = settle(graph, rec, {}, timeout)
        result['received_clean'] = rec.count('depth/image')
        publish_paced(src, mixed, rate)
        want = {DIAGNOSTIC_KEY[k]: n for k, n in strays.items()}
        after_mixed = settle(graph, rec, want, timeout)
        stamps = [conv.time_to_ns(m.header.stamp) for _, m in rec.get('depth/image')]
        result['exit_code'] = node.stop()
        result['node_log_tail'] = node.output[-2000:]
    span = (seconds + 10) * NS_PER_S
    out_clean = sorted({s - t0 for s in stamps if t0 <= s < t0 + span})
    out_mixed = sorted({s - t1 for s in stamps if t1 <= s < t1 + span})
    counted = {k: int(after_mixed.get(DIAGNOSTIC_KEY[k], 0)) - int(after_clean.get(DIAGNOSTIC_KEY[k], 0))
               for k in STRAY_KINDS}
    result.update({
        'outputs_clean': len(out_clean), 'outputs_mixed': len(out_mixed),
        'output_ratio': len(out_mixed) / len(out_clean) if out_clean else None,
        'mixed_stamps_subset_of_clean': set(out_mixed) <= set(out_clean),
        'strays_counted': counted,
        'stream_resets': {k: int(after_mixed.get(f'stream resets ({k})', 0)) for k in ('gap', 'rewind')},
        'dropped_windows': int(after_mixed.get('dropped windows', 0)),
        'diagnostics_after_clean': after_clean, 'diagnostics_after_mixed': after_mixed,
    })
    return result


def main(argv=None) -> int:
    """Command line: measure, write the JSON; exit 1 when the ratio is below 0.95 or a count is off."""
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--model-dir', default=None, help="models to load; default: the shipped ones")
    ap.add_argument('--params-file', default=str(ROOT / 'config' / 'perception.yaml'))
    ap.add_argument('--seconds', type=float, default=12.0, help='simulated audio per run')
    ap.add_argument('--chunk', type=int, default=1024, help='samples per audio frame')
    ap.add_argument('--rate', type=float, default=1.0, help='publishing speed, x real time')
    ap.add_argument('--domain-id', type=int, default=81)
    ap.add_argument('--json', default=None, help='write the result here (else stdout only)')
    args = ap.parse_args(argv)
    result = measure(args.model_dir, args.seconds, args.chunk, args.rate, args.domain_id,
                     params_file=args.params_file)
    result.update({'command': 'python benchmarks/stray_frames.py ' + ' '.join(argv or sys.argv[1:]),
                   'date': date.today().isoformat(), 'machine': f'{platform.machine()}, {os.cpu_count()} cores',
                   'model_dir': args.model_dir or 'shipped (models/)'})
    text = json.dumps(result, indent=2)
    if args.json:
        Path(args.json).write_text(text + '\n')
    print(text)
    ok = (result['output_ratio'] or 0) >= 0.95 and result['strays_counted'] == result['stray_frames']
    return 0 if ok else 1


if __name__ == '__main__':
    raise SystemExit(main())
