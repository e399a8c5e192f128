# SPDX-License-Identifier: Apache-2.0
"""Regression summaries of a model's outputs on a bag (the golden-bag check, scripts/make_golden_bag.py).

A summary holds, per analysis window (assembled from the bag's audio frames as the perception node
assembles them): robust statistics of the spectrogram features, the depth image (mean, percentiles, NaN
share, 8 x 8 block means) and the segmentation image (class histogram). Statistics rather than hashes,
so a summary survives BLAS / CPU differences but not a change of features, model or node.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from audio_vision.bag.convert import WindowSettings, iter_windows
from audio_vision.bag.reader import BagReader
from audio_vision.bag.schema import AUDIO_TOPIC, IMAGE
from audio_vision.core.stream.windowing import FrameSpec, Window

#: default comparison tolerances (stored in the summary file, so they travel with it)
TOLERANCES = {
    'features_rel': 1e-3,          # relative, on feature mean / std
    'depth_abs': 2e-3,             # metres, on depth statistics
    'depth_block_abs': 1e-2,       # metres, on 8 x 8 block means
    'seg_hist_fraction': 0.005,    # share of the image's pixels per class
}


def bag_windows(bag: str | Path, num_channels: int, sample_rate: int, window: int, hop: int,
                audio_topic: str = AUDIO_TOPIC, stamp_tolerance_s: float = 0.002) -> list[Window]:
    """The analysis windows the perception node would assemble from the bag's audio frames."""
    with BagReader(bag) as reader:
        topic = reader.topic(audio_topic, IMAGE, 'audio topic').name
        settings = WindowSettings(FrameSpec(num_channels, sample_rate), window, hop, int(stamp_tolerance_s * 1e9))
        return [w for w, _ in iter_windows(reader, topic, settings)]


def _blocks(depth: np.ndarray, n: int = 8) -> list[list[float | None]]:
    h, w = depth.shape
    rows = np.array_split(np.arange(h), n)
    cols = np.array_split(np.arange(w), n)
    out = []
    for r in rows:
        line = []
        for c in cols:
            cell = depth[np.ix_(r, c)]
            cell = cell[np.isfinite(cell)]
            line.append(round(float(cell.mean()), 6) if cell.size else None)
        out.append(line)
    return out


def summarize_prediction(prediction: dict, num_classes: int) -> dict:
    out = {}
    if 'depth' in prediction:
        d = np.asarray(prediction['depth'], np.float64)
        v = d[np.isfinite(d)]
        q = [float(x) for x in np.percentile(v, [10, 50, 90])] if v.size else [None] * 3
        out['depth'] = {'mean': float(v.mean()) if v.size else None, 'p10': q[0], 'p50': q[1], 'p90': q[2],
                        'nan_fraction': float(1 - v.size / d.size), 'blocks': _blocks(d)}
    if 'segmentation' in prediction:
        s = np.asarray(prediction['segmentation'])
        out['segmentation'] = {'histogram': np.bincount(s.ravel().astype(np.int64),
                                                        minlength=num_classes).tolist(),
                               'pixels': int(s.size),
                               'sha256': hashlib.sha256(np.ascontiguousarray(s, np.uint8).tobytes()).hexdigest()}
    return out


def summarize_features(model, audio: np.ndarray) -> dict:
    import torch
    with torch.inference_mode():
        f = model.features(torch.as_tensor(audio[None], dtype=torch.float32, device=model.device)).cpu().numpy()
    return {'mean': float(f.mean()), 'std': float(f.std()), 'shape': list(f.shape[1:])}


def summarize_offline(model, windows: list[Window]) -> list[dict]:
    """Per-window summary of ``AudioToVision.predict`` (and its features)."""
    rows = []
    for w in windows:
        row = {'end_ns': int(w.end_ns), 'features': summarize_features(model, w.audio)}
        row.update(summarize_prediction(model.predict(w.audio), len(model.class_table)))
        rows.append(row)
    return rows


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            h.update(block)
    return h.hexdigest()


def _close(a, b, atol: float) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return abs(a - b) <= atol


def compare(expected: list[dict], actual: list[dict], tol: dict | None = None,
            check_features: bool = True) -> list[str]:
    """Differences between two per-window summaries (matched by window end stamp), as readable lines."""
    tol = {**TOLERANCES, **(tol or {})}
    problems = []
    exp = {r['end_ns']: r for r in expected}
    act = {r['end_ns']: r for r in actual}
    if sorted(exp) != sorted(act):
        problems.append(f'windows differ: expected {len(exp)} ending at {sorted(exp)[:4]}..., '
                        f'got {len(act)} ending at {sorted(act)[:4]}...')
    for t in sorted(set(exp) & set(act)):
        e, a = exp[t], act[t]
        where = f'window ending {t}'
        if check_features and 'features' in e and 'features' in a:
            for k in ('mean', 'std'):
                x, y = e['features'][k], a['features'][k]
                if abs(x - y) > tol['features_rel'] * max(abs(x), 1e-6):
                    problems.append(f'{where}: features {k} {y:.6g} != {x:.6g}')
        if 'depth' in e:
            if 'depth' not in a:
                problems.append(f'{where}: no depth')
                continue
            for k in ('mean', 'p10', 'p50', 'p90', 'nan_fraction'):
                if not _close(e['depth'][k], a['depth'][k], tol['depth_abs']):
                    problems.append(f'{where}: depth {k} {a["depth"][k]} != {e["depth"][k]}')
            eb = np.array(e['depth']['blocks'], dtype=float)    # None -> NaN
            ab = np.array(a['depth']['blocks'], dtype=float)
            bad = ~(np.isclose(eb, ab, atol=tol['depth_block_abs'], rtol=0) | (np.isnan(eb) & np.isnan(ab)))
            if bad.any():
                problems.append(f'{where}: {int(bad.sum())} of {bad.size} depth blocks differ')
        if 'segmentation' in e:
            if 'segmentation' not in a:
                problems.append(f'{where}: no segmentation')
                continue
            he, ha = np.array(e['segmentation']['histogram']), np.array(a['segmentation']['histogram'])
            limit = max(1.0, tol['seg_hist_fraction'] * e['segmentation']['pixels'])
            if he.shape != ha.shape or (np.abs(he - ha) > limit).any():
                problems.append(f'{where}: segmentation histogram {ha.tolist()} != {he.tolist()}')
    return problems
