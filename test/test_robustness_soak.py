# SPDX-License-Identifier: Apache-2.0
"""Soak: >= 10 simulated minutes of audio through the composed graph (simulator_node -> perception_node,
real DDS, one process, audio_vision/ros/graph.py) at 15x real time, with scene changes. The run ends on
audio time, not on a wall-clock budget; a busy machine shows up as counted skips and drops, and the
assertions are on that accounting.

Checks: RSS growth after warm-up < 50 MB; the inference queue never grows beyond its bound; the
accounting in /diagnostics closes: windows assembled - dropped windows = outputs published = outputs
received. A small model (8 mics like the simulator's array) keeps the inference cheap; the node code is
the real one. Frames of 4096 samples (256 ms) keep the executor's per-message cost at 15x real time
(~59 frames/s) modest on 2 shared cores. The graph runs in a spawned process, so the RSS measured is the
graph's own and not the test runner's (whose heap carries every earlier test).
"""
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest

rclpy = pytest.importorskip('rclpy', reason='needs rclpy + DDS: pip install -r requirements-ros.txt')
psutil = pytest.importorskip('psutil', reason='needs psutil: pip install -r requirements.txt')

from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402

from audio_vision.ros.graph import Graph, TopicRecorder  # noqa: E402
from audio_vision.ros.perception_node import PerceptionNode  # noqa: E402
from audio_vision.ros.simulator_node import SimulatorNode  # noqa: E402
from helpers import write_tiny_models  # noqa: E402

pytestmark = [pytest.mark.ros, pytest.mark.timeout(240)]
DOMAIN = 66   # one ROS domain per test module
os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
RATE = 15.0                  # x real time
AUDIO_S = 600.0              # simulated audio to stream
WARMUP_S = 120.0             # audio time before the RSS baseline is taken


def audio_time_s(sim) -> float:
    """Audio time the simulator has advanced through (published or skipped)."""
    return sim.pacer.done * sim.pacer.chunk / sim.sample_rate


def streamed_audio_s(sim) -> float:
    """Audio time actually published (chunks skipped on starvation excluded)."""
    return (sim.pacer.done - sim.pacer.skipped) * sim.pacer.chunk / sim.sample_rate


def diagnostics(rec) -> dict:
    msgs = rec.get('/diagnostics')
    return {kv.key: kv.value for kv in msgs[-1][1].status[0].values} if msgs else {}


def soak(model_dir: str) -> dict:
    """The soak itself; runs in a fresh process so its RSS is the graph's, not the test runner's."""
    proc = psutil.Process()
    with Graph(domain_id=DOMAIN) as graph:
        sim = graph.add(SimulatorNode, {'rate': RATE, 'scene_period_s': 30.0, 'segment_s': 5.0, 'seed': 11,
                                        'chunk_samples': 4096})
        node = graph.add(PerceptionNode, {'model_dir': model_dir, 'diagnostics_period_s': 0.5,
                                          'input_qos_depth': 100})
        rec = graph.add(TopicRecorder, topics={'depth/image': Image, 'segmentation/image': Image,
                                               '/diagnostics': DiagnosticArray},
                        keep=lambda topic: topic == '/diagnostics', depth=100)
        graph.start()     # after discovery: no frame is published before perception subscribes
        t0 = time.monotonic()
        samples = []                        # (audio s, rss MB, inference queue length)
        while audio_time_s(sim) < AUDIO_S:
            samples.append((streamed_audio_s(sim), proc.memory_info().rss / 2 ** 20, node.inference.pending))
            time.sleep(0.25)
        wall = time.monotonic() - t0
        sim.timer.cancel()                  # stop the source, let the perception node drain
        audio, published = streamed_audio_s(sim), sim.pacer.done - sim.pacer.skipped
        last = [None]

        def settled():                      # no frame arrived since the previous poll, nothing queued
            s = node.stats()
            now, last[0] = (s['frames'], s['windows'], s['outputs']), (s['frames'], s['windows'], s['outputs'])
            return now == last[0] and not node.inference.pending and s['windows'] == s['outputs'] + s['dropped_windows']
        graph.wait_for(lambda: settled() and time.sleep(0.5) is None and settled(), 20.0)
        closed = graph.wait_for(lambda: diagnostics(rec).get('windows') == str(node.stats()['windows'])
                                and diagnostics(rec).get('dropped windows') == str(node.stats()['dropped_windows'])
                                and rec.count('depth/image') == node.stats()['outputs'], 15.0)
        return {'closed': closed, 'audio': audio, 'wall': wall, 'final': node.stats(), 'values': diagnostics(rec),
                'received': (rec.count('depth/image'), rec.count('segmentation/image')),
                'scenes': len(sim.scene_log), 'samples': samples, 'queue_size': node.params['queue_size'],
                'hop_s': node.model.feature_config.hop_s, 'skipped': sim.pacer.skipped, 'published': published,
                'done': sim.pacer.done, 'chunk': sim.pacer.chunk, 'window': node.model.window_samples,
                'hop': node.model.feature_config.hop_samples}


def test_ten_simulated_minutes_at_15x_real_time(tmp_path):
    write_tiny_models(tmp_path, num_mics=8)
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context('spawn')) as pool:
        r = pool.submit(soak, str(tmp_path)).result()      # bounded by the test's timeout mark
    final, values, audio, wall = r['final'], r['values'], r['audio'], r['wall']
    print(f"soak: {audio:.0f} s of audio in {wall:.0f} s wall, {r['skipped']} chunks skipped late, {final}")
    assert r['closed'], (final, values, r['received'])
    # the source's accounting closes: every chunk of the audio time was published or counted as skipped
    assert r['done'] * r['chunk'] >= AUDIO_S * 16000 and r['published'] + r['skipped'] == r['done']
    assert r['published'] * r['chunk'] / 16000 == audio and final['frames'] <= r['published']
    windows, dropped = int(values['windows']), int(values['dropped windows'])
    # windows follow the frames received: each contiguous run of n samples gives (n - W) // hop + 1
    resets = sum(int(v) for k, v in values.items() if k.startswith('stream resets'))
    samples_in, runs = final['frames'] * r['chunk'], resets + 1
    assert windows == final['windows']
    assert samples_in // r['hop'] - runs * -(-r['window'] // r['hop']) <= windows <= samples_in // r['hop'] + runs, \
        (windows, final, resets)
    assert windows >= 0.5 * AUDIO_S / r['hop_s'], (windows, r['skipped'])   # most of the audio got through
    assert windows - dropped == final['outputs'] == r['received'][0] == r['received'][1], (windows, dropped, r)
    assert values['inference errors'] == '0' and values['invalid frames'] == '0'
    # every stream reset has a missing frame behind it: skipped at the source or lost on the way
    assert int(values['stream resets (gap)']) <= r['skipped'] + r['published'] - final['frames'], (values, r['skipped'])
    assert all(v == '0' for k, v in values.items() if k.startswith('stream resets (') and k != 'stream resets (gap)'), \
        values
    assert r['scenes'] >= 10
    queue = np.array([q for _, _, q in r['samples']])
    assert queue.max() <= r['queue_size']
    audio_t = np.array([a for a, _, _ in r['samples']])
    rss = np.array([m for _, m, _ in r['samples']])
    after = rss[audio_t >= WARMUP_S]
    assert after.size > 10
    growth = after.max() - after[0]
    print(f'soak: RSS {after[0]:.0f} -> {after.max():.0f} MB after warm-up')
    assert growth < 50.0, f'RSS grew {growth:.1f} MB after warm-up ({after[0]:.0f} -> {after.max():.0f} MB)'
