# SPDX-License-Identifier: Apache-2.0
"""Simulated recordings written straight to a bag, faster than real time (no ROS graph).

A recording is a sequence of *segments*: stretches of continuous audio, each with the ground truth that
holds during it (one simulated scene = one segment). The bag has the same topics, types, frames and QoS
as a live simulator + ``ros2 bag record``:

* ``/audio/frames`` - audio chunks of ``chunk_samples`` (the last chunk of a segment may be shorter),
  stamped at their first sample; received (bag time) when complete, at stamp + chunk duration;
* ``/ground_truth/{depth,segmentation}/{image,camera_info}`` and ``/ground_truth/segmentation/color``
  (rgb8, the class table's colours) - the segment's ground truth every ``gt_period_s`` from the segment's
  start to its end inclusive (a camera with a fixed frame rate), received at its stamp; image and
  camera_info share one header;
* ``/tf_static`` - the array -> camera optical transform, once, at the start.

Consecutive segments are ``gap_s`` apart (default 0.1 s): a new scene is a teleport, and the gap in the
audio stamps makes the perception node (and ``dataset from-bag``) restart the stream there, so no
analysis window ever mixes two scenes. Segment k starts ``k * (duration + gap)`` after ``start_ns``;
all stamps are integers computed from sample indices, so the bag is deterministic.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from audio_vision.bag import messages as m
from audio_vision.bag import schema
from audio_vision.bag.errors import BagError
from audio_vision.bag.messages import NS_PER_S
from audio_vision.bag.writer import BagWriter
from audio_vision.core.classes import DEFAULT_CLASS_TABLE


@dataclass
class Segment:
    """Continuous audio plus the ground truth that holds while it plays."""

    audio: np.ndarray             # (C, N) float32
    depth: np.ndarray             # (H, W) float32 m, NaN unknown
    segmentation: np.ndarray      # (H, W) uint8 class ids
    K: np.ndarray                 # (3, 3)
    seed: int | None = None       # scene seed, for the record


@dataclass
class RecordSummary:
    path: Path
    storage: str
    segments: int = 0
    audio_samples: int = 0          # per channel, over all segments
    sample_rate: int = 0
    start_ns: int = 0
    end_ns: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    segment_starts_ns: list[int] = field(default_factory=list)
    segment_samples: list[int] = field(default_factory=list)
    seeds: list[int | None] = field(default_factory=list)

    @property
    def audio_s(self) -> float:
        return self.audio_samples / self.sample_rate if self.sample_rate else 0.0

    def describe(self) -> str:
        counts = ', '.join(f'{t} {n}' for t, n in self.counts.items())
        return (f'{self.path} ({self.storage}): {self.segments} scene(s), {self.audio_s:.2f} s of audio, '
                f'span {(self.end_ns - self.start_ns) / NS_PER_S:.2f} s; {counts}')


def chunk_bounds(n: int, chunk: int) -> list[tuple[int, int]]:
    """(start, stop) of the chunks of an n-sample segment; a last remainder shorter than half a chunk
    is merged into the previous chunk (so no frame is tiny)."""
    bounds = [(s, min(s + chunk, n)) for s in range(0, n, chunk)]
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] < chunk // 2:
        last = bounds.pop()
        bounds[-1] = (bounds[-1][0], last[1])
    return bounds


def write_segments(path: str | Path, segments: Iterable[Segment], sample_rate: int, *, start_ns: int,
                   chunk_samples: int = 800, gt_period_s: float = 0.25, gap_s: float = 0.1,
                   storage: str = 'mcap', array_frame: str = schema.ARRAY_FRAME,
                   camera_frame: str = schema.CAMERA_FRAME, custom_data: dict[str, str] | None = None,
                   on_segment: Callable[[int, Segment], None] | None = None,
                   class_table=DEFAULT_CLASS_TABLE) -> RecordSummary:
    """Write ``segments`` (consumed lazily, one at a time) as a bag at ``path``; see the module doc."""
    if chunk_samples < 1:
        raise ValueError(f'chunk_samples must be >= 1, got {chunk_samples}')
    if gt_period_s <= 0:
        raise ValueError(f'gt_period_s must be > 0, got {gt_period_s}')
    if gap_s < 0:
        raise ValueError(f'gap_s must be >= 0, got {gap_s}')
    fs = int(sample_rate)
    gt_period_ns = int(round(gt_period_s * NS_PER_S))
    gap_ns = int(round(gap_s * NS_PER_S))
    summary = RecordSummary(Path(path), storage, sample_rate=fs, start_ns=int(start_ns))
    with BagWriter(path, storage, custom_data) as bag:
        for topic, (msgtype, qos) in schema.RECORDED_TOPICS.items():
            bag.add_topic(topic, msgtype, qos)
        bag.write(schema.TF_STATIC_TOPIC, m.static_transforms(array_frame, camera_frame, start_ns), start_ns)
        t0 = int(start_ns)
        for k, seg in enumerate(segments):
            audio = np.ascontiguousarray(seg.audio, np.float32)
            if audio.ndim != 2 or audio.shape[1] == 0:
                raise ValueError(f'segment {k}: audio must be (channels, samples), got {audio.shape}')
            n = audio.shape[1]
            end = t0 + n * NS_PER_S // fs
            events = []   # (receive time, order, topic, message)
            for j in range(0, (end - t0) // gt_period_ns + 1):
                ts = t0 + j * gt_period_ns
                if ts == end and gap_ns == 0:
                    break  # the next segment owns this instant
                events += _ground_truth(seg, ts, camera_frame, class_table)
            for a, b in chunk_bounds(n, chunk_samples):
                stamp = t0 + a * NS_PER_S // fs
                events.append((t0 + b * NS_PER_S // fs, 0, schema.AUDIO_TOPIC,
                               m.audio_frame(audio[:, a:b], stamp, array_frame)))
            events.sort(key=lambda e: (e[0], e[1]))
            for receive_ns, _, topic, msg in events:
                bag.write(topic, msg, receive_ns)
            summary.segments += 1
            summary.audio_samples += n
            summary.segment_starts_ns.append(t0)
            summary.segment_samples.append(n)
            summary.seeds.append(seg.seed)
            summary.end_ns = max(end, events[-1][0])
            if on_segment is not None:
                on_segment(k, seg)
            t0 = end + gap_ns
        if summary.segments == 0:
            raise BagError('nothing to record: no segments')
        summary.counts = dict(bag.counts)
    return summary


def _ground_truth(seg: Segment, stamp_ns: int, frame: str, class_table=DEFAULT_CLASS_TABLE) -> list:
    depth = np.asarray(seg.depth, np.float32)
    labels = np.asarray(seg.segmentation, np.uint8)
    info_d = m.camera_info(seg.K, depth.shape[1], depth.shape[0], stamp_ns, frame)
    info_s = m.camera_info(seg.K, labels.shape[1], labels.shape[0], stamp_ns, frame)
    return [(stamp_ns, 1, schema.GT_DEPTH_TOPIC, m.image(depth, '32FC1', stamp_ns, frame)),
            (stamp_ns, 2, schema.GT_DEPTH_INFO_TOPIC, info_d),
            (stamp_ns, 3, schema.GT_SEG_TOPIC, m.image(labels, 'mono8', stamp_ns, frame)),
            (stamp_ns, 4, schema.GT_SEG_INFO_TOPIC, info_s),
            (stamp_ns, 5, schema.GT_SEG_COLOR_TOPIC, m.image(class_table.colorize(labels), 'rgb8', stamp_ns, frame))]


# ---------------------------------------------------------------- the simulator as a segment source

def scene_durations(duration_s: float, scene_duration_s: float | None) -> list[float]:
    """Split ``duration_s`` of audio into scenes of ``scene_duration_s`` (the last one may be shorter,
    but never shorter than half a scene: then it is merged into the previous one)."""
    if not duration_s > 0:
        raise ValueError(f'duration must be > 0, got {duration_s}')
    if scene_duration_s is None or scene_duration_s >= duration_s:
        return [float(duration_s)]
    if not scene_duration_s > 0:
        raise ValueError(f'scene duration must be > 0, got {scene_duration_s}')
    n = int(math.floor(duration_s / scene_duration_s + 1e-9))
    out = [float(scene_duration_s)] * n
    rest = duration_s - n * scene_duration_s
    if rest > 1e-9:
        if rest < scene_duration_s / 2:
            out[-1] += rest
        else:
            out.append(rest)
    return out


def simulated_segments(sim, durations: list[float], seed: int) -> Iterator[Segment]:
    """Scene k (seed ``seed + k``, as the simulator node numbers them) recorded for ``durations[k]``."""
    for k, dur in enumerate(durations):
        scene_seed = int(seed) + k
        scene = sim.sample_scene(scene_seed)
        gt = sim.render(scene)
        audio = sim.record(scene, dur, scene_seed)
        yield Segment(audio, gt.depth, gt.segmentation, gt.K, scene_seed)


def record_simulation(sim, path: str | Path, duration_s: float, seed: int = 0,
                      scene_duration_s: float | None = None, start_ns: int | None = None,
                      chunk_s: float = 0.05, gt_period_s: float = 0.25, gap_s: float = 0.1,
                      storage: str = 'mcap', progress: Callable[[int, int], None] | None = None
                      ) -> RecordSummary:
    """Simulate ``duration_s`` of audio (scenes of ``scene_duration_s``, seeds ``seed``, ``seed + 1``, ...)
    and write it with its ground truth as a bag. ``start_ns`` defaults to now (whole seconds)."""
    durations = scene_durations(duration_s, scene_duration_s)
    fs = int(sim.sample_rate)
    chunk = max(1, int(round(chunk_s * fs)))
    if start_ns is None:
        start_ns = int(time.time()) * NS_PER_S
    custom = {'audio_vision.source': 'simulator', 'audio_vision.seed': str(int(seed)),
              'audio_vision.sample_rate': str(fs), 'audio_vision.num_channels': str(sim.num_channels),
              'audio_vision.scene_durations_s': ','.join(f'{d:g}' for d in durations),
              'audio_vision.gap_s': f'{gap_s:g}'}

    def report(k, _seg):
        if progress is not None:
            progress(k + 1, len(durations))
    return write_segments(path, simulated_segments(sim, durations, seed), fs, start_ns=start_ns,
                          chunk_samples=chunk, gt_period_s=gt_period_s, gap_s=gap_s, storage=storage,
                          custom_data=custom, on_segment=report,
                          class_table=getattr(sim, 'class_table', DEFAULT_CLASS_TABLE))
