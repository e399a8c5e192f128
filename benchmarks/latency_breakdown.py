# SPDX-License-Identifier: Apache-2.0
r"""Where the graph latency goes: window end -> image received, split into its stages, per configuration.

    .venv/bin/python benchmarks/latency_breakdown.py --seconds 20 --json docs/latency_breakdown.json \\
        chunk=1024,align=hop chunk=1024,align=frame chunk=1000,align=hop

simulator_node -> perception_node -> a recorder in one process (``audio_vision.ros.graph``, real DDS, the
shipped models, config/*.yaml), the way ``benchmarks/bench_perception.py``'s graph section runs them, once
per configuration given on the command line (``chunk=`` simulator chunk_samples, ``align=`` perception
window_alignment, ``points=`` publish_points true/false, ``backend=``). Nothing in the nodes is changed:
the script wraps, from outside, the simulator's audio publisher, the perception node's subscription callback,
its model's ``predict`` and its ``publish_prediction``, and stamps each event with the system clock (the
clock the simulator stamps the audio with). Per output window (stamped with its window end):

- ``chunk_wait``: the window end -> the capture time of the last sample of the frame that completed it
  (0 when windows end on frame boundaries);
- ``pacing``: that frame's capture end -> the simulator published it (its timer / thread);
- ``delivery``: publish -> the perception node's callback started (DDS + the executor);
- ``queue``: callback -> inference started (window assembly, the worker's wake-up);
- ``inference``: the model (features + networks);
- ``publish``: building and publishing every output message;
- ``received``: window end -> the depth / segmentation image received by the recorder (what
  bench_perception.py reports as graph latency, both images pooled: ``total``).

Percentiles are over the windows of ``--seconds`` after a warm-up. Compare configurations within one run:
absolute numbers follow the machine's load (the JSON records the load average).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')

STAGES = ('chunk_wait', 'pacing', 'delivery', 'queue', 'inference', 'publish')
KEYS = {'chunk': ('simulator', 'chunk_samples', int), 'align': ('perception', 'window_alignment', str),
        'points': ('perception', 'publish_points', lambda v: v.lower() == 'true'),
        'backend': ('perception', 'backend', str)}


def parse_config(text: str) -> dict:
    """'chunk=1024,align=hop' -> {'simulator': {...}, 'perception': {...}}."""
    out = {'simulator': {}, 'perception': {}}
    for item in filter(None, text.split(',')):
        key, _, value = item.partition('=')
        if key not in KEYS:
            raise SystemExit(f'unknown key {key!r} in {text!r}; keys: {", ".join(KEYS)}')
        node, name, cast = KEYS[key]
        out[node][name] = cast(value)
    return out


class Trace:
    """Event stamps (system clock, ns) collected by the wrappers; one lock, appends only."""

    def __init__(self):
        self.lock = threading.Lock()
        self.published = {}      # frame stamp -> (publish ns, frame end stamp ns)
        self.received = {}       # frame stamp -> callback start ns
        self.inference = []      # (start ns, end ns) per predict call, in order
        self.outputs = {}        # window end -> (inference start, inference end, publish start, publish end)


def instrument(sim, node, trace: Trace) -> None:
    """Wrap the simulator's audio publisher, the node's frame callback, predict and publish_prediction."""
    from audio_vision.ros import conversions as conv
    fs = sim.sample_rate
    publish = sim.audio_pub.publish

    def audio_publish(msg):
        stamp = conv.time_to_ns(msg.header.stamp)
        t = time.time_ns()
        publish(msg)
        with trace.lock:
            trace.published[stamp] = (t, stamp + msg.width * 1_000_000_000 // fs)
    sim.audio_pub.publish = audio_publish

    callback = node.sub.callback

    def on_frame(msg):
        t = time.time_ns()
        callback(msg)
        with trace.lock:
            trace.received.setdefault(conv.time_to_ns(msg.header.stamp), t)
    node.sub.callback = on_frame

    predict = node.model.predict

    def timed_predict(*args, **kwargs):
        t0 = time.time_ns()
        out = predict(*args, **kwargs)
        trace.inference.append((t0, time.time_ns()))
        return out
    node.model.predict = timed_predict

    publish_prediction = node.publish_prediction

    def timed_publish(prediction, stamp_ns, confidence=None):
        t0 = time.time_ns()
        publish_prediction(prediction, stamp_ns, confidence)
        t1 = time.time_ns()
        i0, i1 = trace.inference[-1] if trace.inference else (t0, t0)
        with trace.lock:
            trace.outputs[stamp_ns] = (i0, i1, t0, t1)
    node.publish_prediction = timed_publish


def percentiles(values) -> dict:
    v = np.asarray(values, np.float64)
    if not v.size:
        return {}
    return {'p50': round(float(np.percentile(v, 50)), 2), 'p95': round(float(np.percentile(v, 95)), 2),
            'mean': round(float(v.mean()), 2), 'n': int(v.size)}


def run(config: dict, seconds: float, warmup: float, domain_id: int, log) -> dict:
    from sensor_msgs.msg import Image

    from audio_vision.paths import config_dir, default_model_dir
    from audio_vision.ros import conversions as conv
    from audio_vision.ros.graph import Graph, TopicRecorder
    from audio_vision.ros.perception_node import PerceptionNode
    from audio_vision.ros.simulator_node import SimulatorNode
    sim_config = str(config_dir() / 'simulation.yaml')
    trace = Trace()
    with Graph(domain_id=domain_id) as g:
        sim = g.add(SimulatorNode, {'sim_config': sim_config, **config['simulator']})
        node = g.add(PerceptionNode, {'model_dir': str(default_model_dir()), 'sim_config': sim_config,
                                      **config['perception']})
        rec = g.add(TopicRecorder, topics={'depth/image': Image, 'segmentation/image': Image}, depth=200)
        instrument(sim, node, trace)
        g.start()
        if not g.wait_for(lambda: sim.audio_pub.get_subscription_count() >= 1
                          and rec.subs[0].get_publisher_count() >= 1, 20.0):
            return {'error': 'discovery timed out'}
        time.sleep(warmup)
        start_ns = time.time_ns()
        cpu0, wall0 = time.process_time(), time.monotonic()
        time.sleep(seconds)
        process_cpu = (time.process_time() - cpu0) / (time.monotonic() - wall0)
        time.sleep(0.5)                       # the last windows' outputs arrive
        stats = node.stats()
        received = {topic: {conv.time_to_ns(m.header.stamp): t for t, m in rec.get(topic)}
                    for topic in ('depth/image', 'segmentation/image')}
        params = {'chunk_samples': sim.params['chunk_samples'], 'backend': node.model.backend_name,
                  'publish_points': node.params['publish_points'],
                  'window_alignment': node.params.get('window_alignment', 'hop (before the parameter)')}
    with trace.lock:
        frames = np.array(sorted(trace.published), np.int64)
        rows = []
        for end, (i0, i1, p0, p1) in sorted(trace.outputs.items()):
            if end < start_ns or end > start_ns + seconds * 1e9:
                continue
            # the frame that completed the window: the one holding its last sample (stamp < end <= frame end)
            frame = int(frames[max(np.searchsorted(frames, end) - 1, 0)])
            if frame not in trace.received or not frame < end <= trace.published[frame][1]:
                continue
            t_pub, frame_end = trace.published[frame]
            rows.append({'end': end, 'chunk_wait': frame_end - end, 'pacing': t_pub - frame_end,
                         'delivery': trace.received[frame] - t_pub, 'queue': i0 - trace.received[frame],
                         'inference': i1 - i0, 'publish': p1 - i1,
                         'depth': received['depth/image'].get(end),
                         'segmentation': received['segmentation/image'].get(end)})
    ms = 1e-6
    out = {'config': params, 'seconds': seconds, 'windows': len(rows), 'dropped_windows': stats['dropped_windows'],
           'process_cpu': round(process_cpu, 3),
           'stages_ms': {s: percentiles([r[s] * ms for r in rows]) for s in STAGES}}
    for topic in ('depth', 'segmentation'):
        out[f'{topic}_received_ms'] = percentiles([(r[topic] - r['end']) * ms for r in rows if r[topic]])
    out['total_ms'] = percentiles([(r[t] - r['end']) * ms for r in rows for t in ('depth', 'segmentation') if r[t]])
    log(f"  {params}: total p50 {out['total_ms'].get('p50')} ms; "
        + ', '.join(f"{s} {out['stages_ms'][s].get('p50')}" for s in STAGES) + f'; cpu {process_cpu:.2f}')
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('configs', nargs='*', default=['chunk=1024'],
                        help="configurations, e.g. 'chunk=1024,align=hop' (default: config/*.yaml with chunk 1024)")
    parser.add_argument('--seconds', type=float, default=20.0, help='measured seconds per configuration')
    parser.add_argument('--warmup', type=float, default=3.0, help='seconds before measuring')
    parser.add_argument('--domain-id', type=int, default=118)
    parser.add_argument('--json', type=Path, help='write the results here')
    args = parser.parse_args(argv)

    def log(text):
        print(text, file=sys.stderr, flush=True)
    commit = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], cwd=ROOT, capture_output=True, text=True)
    result = {'command': 'python benchmarks/latency_breakdown.py ' + ' '.join(sys.argv[1:] if argv is None else argv),
              'date': datetime.now(timezone.utc).isoformat(timespec='seconds'),
              'machine': {'platform': platform.platform(), 'cpus': os.cpu_count(),
                          'git_commit': commit.stdout.strip() or None,
                          'load_average_at_start': [round(x, 2) for x in os.getloadavg()]},
              'results': {}}
    for text in args.configs:
        log(f'latency breakdown: {text}')
        result['results'][text] = run(parse_config(text), args.seconds, args.warmup, args.domain_id, log)
    result['machine']['load_average_at_end'] = [round(x, 2) for x in os.getloadavg()]
    text = json.dumps(result, indent=1)
    if args.json:
        args.json.write_text(text + '\n')
    print(text)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
