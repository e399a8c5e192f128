# SPDX-License-Identifier: Apache-2.0
r"""Where the graph latency goes: window end -> image received, split into its stages, per configuration.

    .venv/bin/python benchmarks/latency_breakdown.py --seconds 20 --json docs/latency_breakdown.json \\
        chunk=1024,align=hop chunk=1024,align=frame chunk=1000,align=hop

simulator_node -> perception_node -> a recorder in one process (``audio_vision.ros.graph``, real DDS, the shipped
models, config/*.yaml), the way ``benchmarks/bench_perception.py``'s graph section runs them, once per configuration
given on the command line (``chunk=`` the source's chunk_samples, ``align=`` perception window_alignment,
``points=`` publish_points true/false, ``backend=``, ``layout=`` true (publish_layout, as perceive.launch.py runs
it: the layout topics share the model's layout-prior measurements) | own (publish_layout with the node's own
front-end, as before the sharing: each window measured twice) | false, ``rviz=true`` (the recorder also subscribes
to segmentation/color and depth/points, as RViz does), ``source=`` sim (simulator_node, the default) | wav
(audio_capture_node playing a WAV file of the simulator's audio, the graph a robot runs with a recording) | none (no
graph: the same model's ``predict`` called once per hop on the same audio, for comparison)). A configuration without
``chunk=`` / ``align=`` uses config/*.yaml's values. ``drive=true``: the simulator drives a path through one
room and publishes ``odom``, and perception fuses the room over the drive with it (the shipped model's
``layout_fusion``); otherwise the source holds still and perception reads no pose (``pose_source: none``, as
perceive.launch.py runs a still simulator). Nothing in the nodes is changed (but ``layout=own``'s
front-end): the script wraps, from outside, the source's audio publisher, the perception node's subscription
callback, its model's ``predict`` (and, inside it, the backend's feature parts and networks) and its
``publish_prediction``, and stamps each event with the system clock (the clock the sources stamp the audio with).
Per output window (stamped with its window end):

- ``chunk_wait``: the window end -> the capture time of the last sample of the frame that completed it
  (0 when windows end on frame boundaries);
- ``pacing``: that frame's capture end -> the simulator published it (its timer / thread);
- ``delivery``: publish -> the perception node's callback started (DDS + the executor);
- ``queue``: callback -> inference started (window assembly, the worker's wake-up);
- ``inference``: the model (features + networks);
- ``publish``: building and publishing every output message;
- ``received``: window end -> the depth / segmentation image received by the recorder (what
  bench_perception.py reports as graph latency, both images pooled: ``total``).

Inside ``inference`` (``inference_parts_ms``): each feature part and each modality's network, wall time, the
CPU time of the thread that ran it (``cpu``), the time it waited for a core (``runq``: load) and the rest
(``blocked``: a single-threaded part blocks only on the GIL, i.e. on other Python threads), ``features``
(predict start -> the last feature part done) and ``networks`` (-> the last network done). ``cpu`` and
``blocked`` hardly depend on other processes' load, wall and ``runq`` do.
``threads_cpu``: CPU time per thread over the measured span, as a share of one core (``/proc/self/task``;
Python threads by name, native ones -- DDS, onnxruntime -- by their OS name), so the cost of the source node
(simulating the next scene, pacing) shows next to the perception node's. ``gc``: Python garbage collections
in the span per generation (count, total and longest wall time; one stalls every Python thread).

Percentiles are over the windows of ``--seconds`` after a warm-up. Compare configurations within one run:
absolute numbers follow the machine's load (the JSON records the load average).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))        # machine_speed.py beside us
from machine_speed import reference_ms, reference_text  # noqa: E402
os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')

STAGES = ('chunk_wait', 'pacing', 'delivery', 'queue', 'inference', 'publish')
SOURCES = ('sim', 'wav', 'none')
KEYS = {'chunk': ('source', 'chunk_samples', int), 'align': ('perception', 'window_alignment', str),
        'points': ('perception', 'publish_points', lambda v: v.lower() == 'true'),
        'backend': ('perception', 'backend', str), 'source': ('graph', 'source', str),
        'rviz': ('graph', 'rviz', lambda v: v.lower() == 'true'), 'layout': ('graph', 'layout', str.lower),
        'drive': ('graph', 'drive', lambda v: v.lower() == 'true')}
LAYOUTS = ('true', 'own', 'false')


def parse_config(text: str) -> dict:
    """'chunk=1024,align=hop' -> {'graph': {'source': 'sim'}, 'source': {...}, 'perception': {...}}."""
    out = {'graph': {'source': 'sim', 'rviz': False, 'layout': 'false', 'drive': False}, 'source': {},
           'perception': {}}
    for item in filter(None, text.split(',')):
        key, _, value = item.partition('=')
        if key not in KEYS:
            raise SystemExit(f'unknown key {key!r} in {text!r}; keys: {", ".join(KEYS)}')
        node, name, cast = KEYS[key]
        out[node][name] = cast(value)
    if out['graph']['source'] not in SOURCES:
        raise SystemExit(f"source must be one of {', '.join(SOURCES)}, got {out['graph']['source']!r}")
    if out['graph']['layout'] not in LAYOUTS:
        raise SystemExit(f"layout must be one of {', '.join(LAYOUTS)}, got {out['graph']['layout']!r}")
    out['perception']['publish_layout'] = out['graph']['layout'] != 'false'
    if out['graph']['drive']:
        if out['graph']['source'] != 'sim':
            raise SystemExit(f'drive=true needs the simulator (source=sim), got {text!r}')
        # the simulator drives one room and publishes odom; perception fuses the room over the drive with it
        out['source'].update(trajectory=True, scene_period_s=0.0)
        out['perception']['pose_source'] = 'odom'
    elif out['graph']['source'] != 'none':
        out['perception']['pose_source'] = 'none'     # a source holding still has no odometry (perceive.launch.py)
    return out


class Trace:
    """Event stamps (system clock, ns) collected by the wrappers; one lock, appends only."""

    def __init__(self):
        self.lock = threading.Lock()
        self.published = {}      # frame stamp -> (publish ns, frame end stamp ns)
        self.received = {}       # frame stamp -> callback start ns
        self.inference = []      # (start ns, end ns) per predict call, in order
        self.parts = []          # (name, start ns, end ns, thread CPU ns, run-queue ns) per part call
        self.outputs = {}        # window end -> (inference start, inference end, publish start, publish end)


def _schedstat() -> tuple[int, int]:
    """(CPU ns, ns waited on a run queue) of the calling thread (Linux ``schedstat``; zeros elsewhere)."""
    try:
        with open('/proc/thread-self/schedstat') as f:
            cpu, runq, _ = f.read().split()
        return int(cpu), int(runq)
    except (OSError, ValueError):
        return 0, 0


def _timed(name: str, fn, trace: Trace):
    """``fn`` stamped as inference part ``name``: wall, the CPU time of the thread that runs it, the time it
    waited for a core (run queue: other processes' load) and the rest of the wall time, when the thread was
    blocked (within one single-threaded part: waiting for the GIL)."""
    def run(*args, **kwargs):
        t0, (c0, q0) = time.time_ns(), _schedstat()
        out = fn(*args, **kwargs)
        (c1, q1), t1 = _schedstat(), time.time_ns()
        with trace.lock:
            trace.parts.append((name, t0, t1, c1 - c0, q1 - q0))
        return out
    return run


def instrument_model(model, trace: Trace) -> None:
    """Wrap ``model.predict`` and, inside it, the backend's feature parts (or features) and networks."""
    backend = model.backend
    if backend.feature_parts is not None:
        backend.feature_parts = tuple(_timed(f'features:{name}', part, trace)
                                      for name, part in zip(('spectral', 'echo'), backend.feature_parts))
    else:
        backend.features = _timed('features:all', backend.features, trace)
    for k in list(backend.nets):
        backend.nets[k] = _timed(f'network:{k}', backend.nets[k], trace)
    predict = model.predict

    def timed_predict(*args, **kwargs):
        t0 = time.time_ns()
        out = predict(*args, **kwargs)
        trace.inference.append((t0, time.time_ns()))
        return out
    model.predict = timed_predict


def instrument(source_pub, sample_rate: int, node, trace: Trace) -> None:
    """Wrap the source's audio publisher, the node's frame callback, predict and publish_prediction."""
    from audio_vision.ros import conversions as conv
    fs = sample_rate
    publish = source_pub.publish

    def audio_publish(msg):
        stamp = conv.time_to_ns(msg.header.stamp)
        t = time.time_ns()
        publish(msg)
        with trace.lock:
            trace.published[stamp] = (t, stamp + msg.width * 1_000_000_000 // fs)
    source_pub.publish = audio_publish

    callback = node.sub.callback

    def on_frame(msg):
        t = time.time_ns()
        callback(msg)
        with trace.lock:
            trace.received.setdefault(conv.time_to_ns(msg.header.stamp), t)
    node.sub.callback = on_frame

    instrument_model(node.model, trace)

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


def thread_cpu() -> dict[str, float]:
    """CPU seconds so far of each thread of this process, by name: the Python thread's name where there is one
    (the ``-N`` of pool threads folded), else the OS name (DDS, onnxruntime, OpenMP threads)."""
    names = {t.native_id: t.name for t in threading.enumerate()}
    tick = os.sysconf('SC_CLK_TCK')
    out: dict[str, float] = {}
    for task in os.listdir('/proc/self/task'):
        try:
            with open(f'/proc/self/task/{task}/stat') as f:
                stat = f.read()
        except OSError:         # the thread ended
            continue
        fields = stat[stat.rindex(')') + 2:].split()
        name = names.get(int(task)) or stat[stat.index('(') + 1:stat.rindex(')')]
        name = 'MainThread' if int(task) == os.getpid() else name.split(' (')[0]
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return out


def cpu_shares(before: dict, after: dict, wall_s: float) -> dict[str, float]:
    """Per-thread CPU over a span as a share of one core, largest first; shares below 0.5 % pooled as 'other'."""
    shares = {k: (after[k] - before.get(k, 0.0)) / wall_s for k in after}
    out, other = {}, 0.0
    for k, v in sorted(shares.items(), key=lambda kv: -kv[1]):
        if v >= 0.005:
            out[k] = round(v, 3)
        else:
            other += max(v, 0.0)
    out['other'] = round(other, 3)
    return out


def part_stats(trace: Trace, spans) -> dict:
    """Per predict call ``(start, end)`` of ``spans``: wall / thread CPU of each inference part, and the
    features / networks phases, in ms."""
    parts = sorted(trace.parts, key=lambda p: p[1])
    starts = np.array([p[1] for p in parts], np.int64)
    rows = []
    for i0, i1 in spans:
        inside = [p for p in parts[np.searchsorted(starts, i0):np.searchsorted(starts, i1, 'right')] if p[2] <= i1]
        if not inside:
            continue
        row = {}
        for name, t0, t1, cpu, runq in inside:
            row[f'{name}'] = (t1 - t0) * 1e-6
            row[f'{name} cpu'] = cpu * 1e-6
            row[f'{name} runq'] = runq * 1e-6
            row[f'{name} blocked'] = max(t1 - t0 - cpu - runq, 0) * 1e-6
        feats = [p[2] for p in inside if p[0].startswith('features')]
        nets = [p[2] for p in inside if p[0].startswith('network')]
        if feats:
            row['features'] = (max(feats) - i0) * 1e-6
            if nets:
                row['networks'] = (max(nets) - max(feats)) * 1e-6
        if nets:
            row['after networks'] = (i1 - max(nets)) * 1e-6
        rows.append(row)
    keys = sorted({k for r in rows for k in r})
    return {k: percentiles([r[k] for r in rows if k in r]) for k in keys}


class GcTimes:
    """Python garbage collections during a span (``gc.callbacks``): count and wall time per generation. A
    collection runs on whichever thread allocates and holds the GIL, so it stalls every Python thread."""

    def __init__(self):
        self.start: dict[int, int] = {}
        self.times: list[tuple[int, float]] = []
        self.on = False

    def __call__(self, phase, info):
        if not self.on:
            return
        if phase == 'start':
            self.start[threading.get_ident()] = time.perf_counter_ns()
        elif threading.get_ident() in self.start:
            self.times.append((info['generation'], (time.perf_counter_ns() - self.start.pop(threading.get_ident()))
                               * 1e-6))

    def __enter__(self):
        import gc
        gc.callbacks.append(self)
        self.on = True
        return self

    def __exit__(self, *exc):
        import gc
        self.on = False
        gc.callbacks.remove(self)

    def summary(self) -> dict:
        out = {}
        for gen in (0, 1, 2):
            t = [ms for g, ms in self.times if g == gen]
            out[f'gen{gen}'] = {'count': len(t), 'total_ms': round(sum(t), 1), 'max_ms': round(max(t, default=0.0), 2)}
        return out


def write_wav(sim_config: str, seconds: float, path: Path) -> Path:
    """The simulator's audio of its first scene (as simulator_node would stream it) as a float WAV file."""
    import soundfile

    from audio_vision.simulation.config import SimConfig
    from audio_vision.simulation.simulator import Simulator
    sim = Simulator(SimConfig.from_yaml(sim_config))
    seed = 1000000                      # config/simulator.yaml's first scene
    audio = sim.record(sim.sample_scene(seed), seconds, seed)
    soundfile.write(str(path), np.ascontiguousarray(audio.T, np.float32), int(sim.sample_rate), subtype='FLOAT')
    return path


def run_standalone(config: dict, seconds: float, warmup: float, wav: Path, log) -> dict:
    """No graph: the model's predict once per hop on windows of the WAV's audio (paced as in the graph)."""
    import soundfile

    from audio_vision.core.inference.pipeline import AudioToVision
    from audio_vision.paths import default_model_dir
    backend = config['perception'].get('backend') or None
    audio = soundfile.read(str(wav), dtype='float32', always_2d=True)[0].T
    trace = Trace()
    with AudioToVision.load(default_model_dir(), backend=backend) as model:
        instrument_model(model, trace)
        window, hop = model.window_samples, round(model.feature_config.hop_s * model.sample_rate)
        period = hop / model.sample_rate
        k, start_ns, t_next = 0, None, time.monotonic()
        cpu0 = wall0 = None
        deadline = time.monotonic() + warmup + seconds
        before = None
        gc_times = GcTimes().__enter__()
        gc_times.on = False
        while time.monotonic() < deadline:
            if start_ns is None and time.monotonic() >= deadline - seconds:
                start_ns, before = time.time_ns(), thread_cpu()
                cpu0, wall0 = time.process_time(), time.monotonic()
                gc_times.on = True
            a = (k * hop) % (audio.shape[1] - window)
            model.predict(audio[:, a:a + window])
            k += 1
            t_next += period
            time.sleep(max(t_next - time.monotonic(), 0.0))
        wall = time.monotonic() - wall0
        process_cpu = (time.process_time() - cpu0) / wall
        threads = cpu_shares(before, thread_cpu(), wall)
        gc_times.__exit__()
        name = model.backend_name
    spans = [(i0, i1) for i0, i1 in trace.inference if i0 >= start_ns]
    out = {'config': {'source': 'none', 'backend': name}, 'seconds': seconds, 'windows': len(spans),
           'process_cpu': round(process_cpu, 3),
           'stages_ms': {'inference': percentiles([(i1 - i0) * 1e-6 for i0, i1 in spans])},
           'inference_parts_ms': part_stats(trace, spans), 'threads_cpu': threads, 'gc': gc_times.summary()}
    log(f"  standalone {name}: inference p50 {out['stages_ms']['inference'].get('p50')} ms; cpu {process_cpu:.2f}")
    return out


def run(config: dict, seconds: float, warmup: float, domain_id: int, wav: Path | None, log) -> dict:
    if config['graph']['source'] == 'none':
        return run_standalone(config, seconds, warmup, wav, log)
    from sensor_msgs.msg import Image, PointCloud2

    from audio_vision.paths import config_dir, default_model_dir
    from audio_vision.ros import conversions as conv
    from audio_vision.ros.graph import Graph, TopicRecorder
    from audio_vision.ros.perception_node import PerceptionNode
    sim_config = str(config_dir() / 'simulation.yaml')
    trace = Trace()
    with Graph(domain_id=domain_id) as g:
        if config['graph']['source'] == 'sim':
            from audio_vision.ros.simulator_node import SimulatorNode
            src = g.add(SimulatorNode, {'sim_config': sim_config, **config['source']})
            src_pub = src.audio_pub
        else:
            from audio_vision.ros.audio_capture_node import AudioCaptureNode
            src = g.add(AudioCaptureNode, {'source': 'wav', 'wav_path': str(wav), 'loop': True, **config['source']})
            src_pub = src.pub
        node = g.add(PerceptionNode, {'model_dir': str(default_model_dir()), 'sim_config': sim_config,
                                      **config['perception']})
        if config['graph']['layout'] == 'own':    # the node's own front-end (before the sharing), from outside
            node.layout.shared, node.layout.measure = None, node.layout.estimator.estimate
            node.layout.stats.shared_with_features = False
        topics = {'depth/image': Image, 'segmentation/image': Image}
        if config['graph']['rviz']:           # what perceive.launch.py's RViz also subscribes to
            topics.update({'segmentation/color': Image, 'depth/points': PointCloud2})
        rec = g.add(TopicRecorder, topics=topics, depth=200)
        instrument(src_pub, src.sample_rate, node, trace)
        g.start()
        if not g.wait_for(lambda: src_pub.get_subscription_count() >= 1
                          and rec.subs[0].get_publisher_count() >= 1, 20.0):
            return {'error': 'discovery timed out'}
        time.sleep(warmup)
        start_ns = time.time_ns()
        before = thread_cpu()
        cpu0, wall0 = time.process_time(), time.monotonic()
        with GcTimes() as gc_times:
            time.sleep(seconds)
        wall = time.monotonic() - wall0
        process_cpu = (time.process_time() - cpu0) / wall
        threads = cpu_shares(before, thread_cpu(), wall)
        time.sleep(0.5)                       # the last windows' outputs arrive
        stats = node.stats()
        layout = node.layout_stats() if node.layout is not None else None
        received = {topic: {conv.time_to_ns(m.header.stamp): t for t, m in rec.get(topic)}
                    for topic in ('depth/image', 'segmentation/image')}
        params = {'source': config['graph']['source'], 'rviz_subscribers': config['graph']['rviz'],
                  'chunk_samples': src.params['chunk_samples'],
                  'backend': node.model.backend_name, 'publish_points': node.params['publish_points'],
                  'publish_layout': node.params['publish_layout'],
                  'layout_shared': node.layout is not None and node.layout.shared is not None,
                  'window_alignment': node.params.get('window_alignment', 'hop (before the parameter)'),
                  'drive': config['graph']['drive']}
        fusion = node.fusion_stats() if node.drive is not None else None
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
                         'inference': i1 - i0, 'publish': p1 - i1, 'span': (i0, i1),
                         'depth': received['depth/image'].get(end),
                         'segmentation': received['segmentation/image'].get(end)})
    ms = 1e-6
    out = {'config': params, 'seconds': seconds, 'windows': len(rows), 'dropped_windows': stats['dropped_windows'],
           'process_cpu': round(process_cpu, 3),
           'stages_ms': {s: percentiles([r[s] * ms for r in rows]) for s in STAGES}}
    for topic in ('depth', 'segmentation'):
        out[f'{topic}_received_ms'] = percentiles([(r[topic] - r['end']) * ms for r in rows if r[topic]])
    out['total_ms'] = percentiles([(r[t] - r['end']) * ms for r in rows for t in ('depth', 'segmentation') if r[t]])
    out['inference_parts_ms'] = part_stats(trace, [r['span'] for r in rows])
    out['threads_cpu'] = threads
    out['gc'] = gc_times.summary()
    if fusion is not None:          # the room fused over the drive: windows placed with a pose, restarts
        out['fusion'] = fusion
    if layout is not None:          # the layout topics' own path: outputs, windows pushed out, its latency
        out['layout'] = layout
    log(f"  {params}: total p50 {out['total_ms'].get('p50')} ms; "
        + ', '.join(f"{s} {out['stages_ms'][s].get('p50')}" for s in STAGES) + f'; cpu {process_cpu:.2f}')
    return out


LATENCY_TARGET_MS = 40.0       # issue 11: window end -> image received p50 in the composed graph
CPU_GROWTH_TARGET_PCT = 10.0   # ... for at most this much more process CPU than the previous setting


def report(result: dict) -> str:
    """A markdown table of a result JSON (docs/BENCHMARKS.md quotes it): one row per configuration; process CPU
    also relative to the first configuration (today's setting in the documented command)."""
    m = result['machine']
    lines = [f"`{result['command']}` ({result['date']}, git {m.get('git_commit')}, {m.get('cpus')} CPUs, "
             f"{m.get('platform')}; load average at start {m.get('load_average_at_start')}, at end "
             f"{m.get('load_average_at_end')}{reference_text(m)}):", '',
             '| configuration | source | chunk | alignment | RViz subscribers | window end -> image received p50 '
             '| p95 | chunk wait p50 | pacing p50 | inference p50 | publish p50 | process CPU (1 = one core) '
             '| CPU vs first row | windows (dropped) |',
             '| --- | --- | ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |']
    first_cpu = None
    for text, r in result['results'].items():
        if 'error' in r:
            lines.append(f"| `{text}` | {r['error']} |")
            continue
        c, st = r['config'], r['stages_ms']
        first_cpu = r['process_cpu'] if first_cpu is None else first_cpu

        def p50(d, key='p50'):
            return '' if not d or d.get(key) is None else f'{d[key]:.1f}'
        rel = f"{100 * (r['process_cpu'] / first_cpu - 1):+.0f} %" if first_cpu else ''
        lines.append(f"| `{text}` | {c.get('source')} | {c.get('chunk_samples', '')} | {c.get('window_alignment', '')} "
                     f"| {'yes' if c.get('rviz_subscribers') else 'no'} | {p50(r.get('total_ms'))} "
                     f"| {p50(r.get('total_ms'), 'p95')} | {p50(st.get('chunk_wait'))} | {p50(st.get('pacing'))} "
                     f"| {p50(st.get('inference'))} | {p50(st.get('publish'))} | {r['process_cpu']:.3f} | {rel} "
                     f"| {r['windows']} ({r.get('dropped_windows', '')}) |")
    lines += ['', 'Milliseconds; `source=none` is the model alone, once per hop, no graph (its inference is the '
              "comparison for the graph's)."]
    rows = {t: r for t, r in result['results'].items() if 'error' not in r}
    if 'source=sim' in rows and len(rows) > 1:
        first_text, first = next(iter(rows.items()))
        shipped = rows['source=sim']
        p50 = (shipped.get('total_ms') or {}).get('p50')
        cpu = 100 * (shipped['process_cpu'] / first['process_cpu'] - 1) if first['process_cpu'] else None
        if p50 is not None and cpu is not None:
            lines += ['', f"The shipped configuration (`source=sim`): window end -> image received p50 {p50:.1f} ms, "
                      f"{'within' if p50 <= LATENCY_TARGET_MS else '**above**'} the {LATENCY_TARGET_MS:g} ms target; "
                      f"process CPU {cpu:+.0f} % against `{first_text}`, "
                      f"{'within' if cpu <= CPU_GROWTH_TARGET_PCT else '**above**'} the "
                      f"+{CPU_GROWTH_TARGET_PCT:g} % allowed."]
    drive = rows.get('source=sim,drive=true')
    if drive and drive.get('total_ms') and drive.get('fusion'):
        f = drive['fusion']
        reasons = ', '.join(f'{k} {n}' for k, n in f['restarts'].items() if n)
        lines += ['', "Driving (`drive=true`: the simulator drives one room and publishes odom, perception fuses the "
                  f"room over the drive with it): window end -> image received p50 {drive['total_ms']['p50']:.1f} ms, "
                  f"inference p50 {drive['stages_ms']['inference']['p50']:.1f} ms, process CPU "
                  f"{drive['process_cpu']:.3f}; {f['posed_windows']} windows fused with a pose, drive restarts "
                  f"{sum(f['restarts'].values())}" + (f' ({reasons})' if reasons else '') + '.']
    shared, own = rows.get('source=sim,layout=true'), rows.get('source=sim,layout=own')
    if shared and own and shared.get('total_ms') and own.get('total_ms'):
        lines += ['', "With the layout topics on (`publish_layout`, as perceive.launch.py runs them): window end -> "
                  f"image received p50 {shared['total_ms']['p50']:.1f} ms and process CPU {shared['process_cpu']:.3f} "
                  "when the layout shares the model's layout-prior measurement (`layout=true`), "
                  f"{own['total_ms']['p50']:.1f} ms and {own['process_cpu']:.3f} with the node's own front-end "
                  "(`layout=own`, each window measured twice); layout outputs "
                  f"{shared['layout']['outputs']} and {own['layout']['outputs']}, windows pushed out "
                  f"{shared['layout']['dropped_windows']} and {own['layout']['dropped_windows']}."]
    return '\n'.join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('configs', nargs='*', default=['source=sim'],
                        help="configurations, e.g. 'chunk=1024,align=hop' or 'source=wav' (default: 'source=sim', "
                             'config/*.yaml as shipped)')
    parser.add_argument('--seconds', type=float, default=20.0, help='measured seconds per configuration')
    parser.add_argument('--warmup', type=float, default=3.0, help='seconds before measuring')
    parser.add_argument('--domain-id', type=int, default=118)
    parser.add_argument('--json', type=Path, help='write the results here')
    parser.add_argument('--report', type=Path, metavar='JSON',
                        help='print the markdown table of a result JSON written before, measure nothing')
    args = parser.parse_args(argv)
    if args.report:
        print(report(json.loads(args.report.read_text())))
        return 0

    def log(text):
        print(text, file=sys.stderr, flush=True)
    from audio_vision.paths import source_commit
    result = {'command': 'python benchmarks/latency_breakdown.py ' + ' '.join(sys.argv[1:] if argv is None else argv),
              'date': datetime.now(timezone.utc).isoformat(timespec='seconds'),
              'machine': {'platform': platform.platform(), 'cpus': os.cpu_count(),
                          'git_commit': source_commit(),
                          'load_average_at_start': [round(x, 2) for x in os.getloadavg()],
                          'reference_ms_at_start': reference_ms()},
              'results': {}}
    configs = {text: parse_config(text) for text in args.configs}
    with tempfile.TemporaryDirectory(prefix='latency_breakdown_') as tmp:
        wav = None
        if any(c['graph']['source'] != 'sim' for c in configs.values()):
            from audio_vision.paths import config_dir
            wav = write_wav(str(config_dir() / 'simulation.yaml'), 10.0, Path(tmp) / 'array.wav')
        for text, config in configs.items():
            log(f'latency breakdown: {text}')
            result['results'][text] = run(config, args.seconds, args.warmup, args.domain_id, wav, log)
    result['machine']['load_average_at_end'] = [round(x, 2) for x in os.getloadavg()]
    result['machine']['reference_ms_at_end'] = reference_ms()
    for t in threading.enumerate():     # a scene still being simulated: exiting under it aborted the process
        if t.name == 'simulate_next_scene':
            t.join(timeout=60.0)
    text = json.dumps(result, indent=1)
    if args.json:
        args.json.write_text(text + '\n')
    print(text)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
