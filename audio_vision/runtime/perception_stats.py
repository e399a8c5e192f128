# SPDX-License-Identifier: Apache-2.0
"""The perception node's statistics (pure: no ROS): the counters its subscription callbacks, worker threads
and diagnostics timer share, the snapshot ``stats()`` returns, and the values, level and message of its
``<node>: audio perception`` diagnostic status.

    stats = PerceptionStats()
    stats.frames_in.tick(); stats.window_queued(pushed_out)      # input side
    stats.inference_failed(exc)                                   # worker
    snapshot = stats.snapshot(assembler.counts, layout_snapshot)  # totals since start-up
    level, message, values = stats.report(snapshot, model_id, device, layout_stats)   # once per period
"""
from __future__ import annotations

from audio_vision.core.stream.windowing import DISCONTINUITY_REASONS, DROP_REASONS, FRAME_ERROR_REASONS
from audio_vision.runtime.stats import Counters, LatencyStats, RateMeter

#: the parts of a room the layout may not measure in a window
LAYOUT_PARTS = ('floor', 'ceiling', 'walls')


def error_text(exc: BaseException) -> str:
    return f'{type(exc).__name__}: {exc}'


class PerceptionStats:
    """Totals since start-up of the images' path: frames in, windows, outputs, errors, latencies."""

    def __init__(self):
        self.frames_in = RateMeter()
        self.outputs = RateMeter()
        self.invalid = Counters(FRAME_ERROR_REASONS)
        self.windows = 0
        self.dropped_windows = 0
        self.inference_errors = 0
        self.inference_latency = LatencyStats()
        self.output_latency = LatencyStats()
        self.last_error: str | None = None      # the latest inference error not yet reported
        # totals at the previous report
        self._marks = {'frames': 0, 'invalid': 0, 'dropped': 0, 'stray': 0, 'unposed': 0}

    def window_queued(self, pushed_out: int) -> None:
        """A window went to the inference queue, pushing ``pushed_out`` waiting ones out."""
        self.windows += 1
        self.dropped_windows += pushed_out

    def inference_failed(self, exc: BaseException) -> str:
        """Count a failed inference; returns the error's one-line text."""
        self.inference_errors += 1
        self.last_error = error_text(exc)
        return self.last_error

    def published(self, latency_s: float) -> None:
        """A window's outputs went out ``latency_s`` after the window's end."""
        self.outputs.tick()
        self.output_latency.add(latency_s)

    def snapshot(self, stream_counts: dict, layout: dict | None = None, fusion: dict | None = None) -> dict:
        """Totals since start-up; ``stream_counts``: the window assembler's event counts; ``layout``:
        :meth:`LayoutStats.snapshot`, when the layout runs; ``fusion``: for a model that fuses the layout over the
        drive, {'pose_source', 'posed_windows', 'restarts': {reason: n}} (:class:`audio_vision.runtime.drive.
        DriveOdometry`)."""
        inf50, inf95 = self.inference_latency.percentiles_ms()
        out50, out95 = self.output_latency.percentiles_ms()
        counts = dict(stream_counts)
        return {
            'frames': self.frames_in.total, 'outputs': self.outputs.total, 'windows': self.windows,
            'dropped_windows': self.dropped_windows, 'invalid_frames': self.invalid.snapshot(),
            'stream_resets': {r: counts[r] for r in DISCONTINUITY_REASONS},
            'dropped_frames': {r: counts[r] for r in DROP_REASONS}, 'reordered_frames': counts['reordered'],
            'inference_errors': self.inference_errors,
            'inference_ms': {'p50': inf50, 'p95': inf95}, 'latency_ms': {'p50': out50, 'p95': out95},
            **({'layout': layout} if layout is not None else {}),
            **({'fusion': fusion} if fusion is not None else {}),
        }

    def report(self, s: dict, model_id: str, device: str,
               layout: LayoutStats | None = None) -> tuple[str, str, dict]:
        """(level 'OK' / 'WARN' / 'ERROR', message, values) of the diagnostic status from the snapshot ``s``:
        WARN for what went wrong since the previous report, ERROR for an inference or layout error not yet
        reported. Resets the rates and the period's marks: call it once per diagnostics period."""
        invalid_total = sum(s['invalid_frames'].values())
        fusion = s.get('fusion')
        unposed = sum(n for r, n in fusion['restarts'].items() if r.startswith('pose_')) if fusion else 0
        new = {'frames': s['frames'], 'invalid': invalid_total, 'dropped': s['dropped_windows'],
               'stray': sum(s['dropped_frames'].values()), 'unposed': unposed}
        delta = {k: new[k] - self._marks[k] for k in new}
        self._marks = new
        problems = []
        if delta['frames'] == 0:
            problems.append('no audio frames')
        if delta['invalid']:
            problems.append(f"{delta['invalid']} invalid frames")
        if delta['dropped']:
            problems.append(f"{delta['dropped']} windows dropped")
        if delta['stray']:
            problems.append(f"{delta['stray']} stray frames dropped")
        if delta['unposed'] and fusion['pose_source'] != 'none':
            problems.append(f"{delta['unposed']} windows without a pose (the room not fused over the drive)")
        level = 'WARN' if problems else 'OK'
        if self.last_error:
            level, problems = 'ERROR', [f'inference failed: {self.last_error}'] + problems
            self.last_error = None
        if layout is not None and layout.last_error:
            level, problems = 'ERROR', problems + [f'layout failed: {layout.last_error}']
            layout.last_error = None
        values = {
            'input rate (frames/s)': self.frames_in.rate(),
            'output rate (Hz)': self.outputs.rate(),
            'inference latency p50 (ms)': s['inference_ms']['p50'],
            'inference latency p95 (ms)': s['inference_ms']['p95'],
            'window end to publish p50 (ms)': s['latency_ms']['p50'],
            'window end to publish p95 (ms)': s['latency_ms']['p95'],
            'windows': s['windows'],
            'dropped windows': s['dropped_windows'],
            'invalid frames': invalid_total,
            **{f'invalid frames ({r})': n for r, n in s['invalid_frames'].items()},
            **{f'stream resets ({r})': n for r, n in s['stream_resets'].items()},
            **{f'dropped frames ({r})': n for r, n in s['dropped_frames'].items()},
            'reordered frames': s['reordered_frames'],
            'inference errors': s['inference_errors'],
            'model id': model_id,
            'device': device,
            **(LayoutStats.values(s['layout']) if 'layout' in s else {}),
            **({'fusion pose source': fusion['pose_source'], 'fusion windows with a pose': fusion['posed_windows'],
                **{f'fusion drive restarts ({r})': n for r, n in fusion['restarts'].items()}} if fusion else {}),
        }
        return level, '; '.join(problems) or 'OK', values


class LayoutStats:
    """Totals since start-up of the layout's path (the sonar front-end on its own queue)."""

    def __init__(self):
        self.latency = LatencyStats()
        self.outputs = 0
        self.unmeasured = Counters(LAYOUT_PARTS)   # windows where that part was not found
        self.last_error: str | None = None         # the latest error not yet reported
        self.shared_with_features = False          # measured once for the layout topics and the model's prior

    def measured(self, failed, seconds: float) -> None:
        """A window was measured in ``seconds``; ``failed``: the layout's reasons ('<part>: why') for what it
        did not measure."""
        self.latency.add(seconds)
        for reason in failed:
            self.unmeasured.add(reason.split(':')[0])

    def failed(self, exc: BaseException) -> str:
        """Note a failed measurement; returns the error's one-line text."""
        self.last_error = error_text(exc)
        return self.last_error

    def snapshot(self, dropped_windows: int, errors: int) -> dict:
        """Totals since start-up; ``dropped_windows`` and ``errors`` are the layout queue's."""
        p50, p95 = self.latency.percentiles_ms()
        return {'outputs': self.outputs, 'dropped_windows': dropped_windows, 'errors': errors,
                'shared_with_features': self.shared_with_features,
                'unmeasured': self.unmeasured.snapshot(), 'ms': {'p50': p50, 'p95': p95}}

    @staticmethod
    def values(layout: dict) -> dict:
        """The layout's /diagnostics values from its :meth:`snapshot`."""
        return {'layout outputs': layout['outputs'], 'layout dropped windows': layout['dropped_windows'],
                'layout errors': layout['errors'],
                'layout shared with the features': layout['shared_with_features'],
                'layout latency p50 (ms)': layout['ms']['p50'],
                'layout latency p95 (ms)': layout['ms']['p95'],
                **{f'layout windows without {part}': n for part, n in layout['unmeasured'].items()}}
