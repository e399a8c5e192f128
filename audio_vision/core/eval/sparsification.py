# SPDX-License-Identifier: Apache-2.0
"""Sparsification curves: how well a per-pixel confidence ranks the errors of a prediction (pure numpy).

Scores any confidence (:mod:`audio_vision.core.inference.confidence`, scripts/eval_confidence.py) against the
ground truth: keep the most-confident fraction of the pixels and measure their error, next to the oracle that
keeps the pixels with the smallest error."""
from __future__ import annotations

import math

import numpy as np

#: kept fractions of the sparsification curves (most-confident 10 % ... 100 % of the pixels)
FRACTIONS = tuple(round(0.1 * k, 1) for k in range(1, 11))


def _kept_means(values, order, fractions) -> list[float]:
    """Mean of ``values`` over the first ceil(f * n) entries of ``order``, for every f."""
    v = np.asarray(values, dtype=np.float64)[order]
    csum = np.cumsum(v)
    n = len(v)
    return [float(csum[max(int(math.ceil(f * n)), 1) - 1] / max(int(math.ceil(f * n)), 1)) for f in fractions]


def sparsification(pred, gt, confidence, fractions=FRACTIONS) -> dict:
    """Sparsification curves of depth pixels valid in both ``pred`` and ``gt`` (any equal shapes, pooled).

    For each kept fraction f: AbsRel and delta1 of the f most-confident pixels (``curve``) and of the f
    pixels with the smallest error (``oracle``, the best any ordering can do); ``ause`` is the mean gap
    between the two over the fractions (area under the sparsification error, lower is better) and
    ``half_ratio`` the AbsRel of the most-confident half over the AbsRel of all pixels (< 1: confidence
    ranks errors). Ties in confidence are broken by a stable sort of the pixel order.
    """
    pred, gt, conf = (np.asarray(a, dtype=np.float64).ravel() for a in (pred, gt, confidence))
    if not pred.shape == gt.shape == conf.shape:
        raise ValueError(f'shapes differ: pred {pred.shape}, gt {gt.shape}, confidence {conf.shape}')
    with np.errstate(invalid='ignore'):
        ok = np.isfinite(pred) & (pred > 0) & np.isfinite(gt) & (gt > 0) & np.isfinite(conf)
    if not ok.any():
        raise ValueError('no pixel is valid in both prediction and ground truth')
    p, g, c = pred[ok], gt[ok], conf[ok]
    abs_rel = np.abs(p - g) / g
    ratio = np.maximum(p / g, g / p)
    good = (ratio < 1.25).astype(np.float64)
    by_conf = np.argsort(-c, kind='stable')
    curve = {'abs_rel': _kept_means(abs_rel, by_conf, fractions), 'delta1': _kept_means(good, by_conf, fractions)}
    oracle = {'abs_rel': _kept_means(abs_rel, np.argsort(abs_rel, kind='stable'), fractions),
              'delta1': _kept_means(good, np.argsort(ratio, kind='stable'), fractions)}
    ause = {'abs_rel': float(np.mean(np.subtract(curve['abs_rel'], oracle['abs_rel']))),
            'delta1': float(np.mean(np.subtract(oracle['delta1'], curve['delta1'])))}
    half = _kept_means(abs_rel, by_conf, (0.5,))[0]
    all_ = float(abs_rel.mean())
    return {'fractions': list(fractions), 'pixels': int(ok.sum()), 'curve': curve, 'oracle': oracle, 'ause': ause,
            'abs_rel_all': all_, 'abs_rel_half': half, 'half_ratio': half / all_ if all_ > 0 else float('nan')}


def error_sparsification(errors, confidence, fractions=FRACTIONS) -> dict:
    """Sparsification of a per-pixel 0/1 error (e.g. wrong class): error rate of the f most-confident pixels
    vs the oracle (all errors last), ``ause`` and ``half_ratio`` as in :func:`sparsification`."""
    e = np.asarray(errors, dtype=np.float64).ravel()
    c = np.asarray(confidence, dtype=np.float64).ravel()
    if e.shape != c.shape or e.size == 0:
        raise ValueError(f'errors {e.shape} and confidence {c.shape} must be equal and non-empty')
    by_conf = np.argsort(-c, kind='stable')
    curve = _kept_means(e, by_conf, fractions)
    oracle = _kept_means(e, np.argsort(e, kind='stable'), fractions)
    half = _kept_means(e, by_conf, (0.5,))[0]
    all_ = float(e.mean())
    return {'fractions': list(fractions), 'pixels': int(e.size), 'curve': curve, 'oracle': oracle,
            'ause': float(np.mean(np.subtract(curve, oracle))), 'error_all': all_, 'error_half': half,
            'half_ratio': half / all_ if all_ > 0 else float('nan')}
