#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Where the predicted depth goes wrong: global scale or shape, which surfaces, which ranges.

Scores the method's and the end-to-end baseline's depth on a split, decomposed three ways:

* **scale vs shape.** Each predicted image rescaled by its own median ratio to the truth
  (``s = median(gt / pred)`` over valid pixels, the usual scale-invariant protocol): the AbsRel left is
  the error of the image's *shape*; the part removed is the error of its overall distance. As a
  reference, the training-set mean image rescaled the same way shows how far the correct scale alone
  would carry a model that knows nothing else.
* **by surface**: AbsRel over the pixels of each ground-truth class (wall, floor, ceiling, bodies).
* **by range**: AbsRel over ground-truth depth bins.
* **by the layout prior**: over the pixels where the sonar front-end measured the room (its rendered depth prior is
  finite) and over the rest, each part's AbsRel and its share of the AbsRel summed over all pixels; the layout prior
  itself is scored on its own pixels beside them. Whether the error sits where the room was measured (the networks
  lose what the prior gives) or where it was not (a wall not heard) says which side to work on.

Pure evaluation (no training); writes docs/depth_error_probe.json, rendered by
scripts/write_results_docs.py.

    .venv/bin/python scripts/depth_error_probe.py --data data/default --models models --limit 1600
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from audio_vision.core.model.baselines import load_end_to_end, load_mean
from audio_vision.core.model.checkpoint import load_checkpoint
from audio_vision.training.data import load_split
from audio_vision.training.evaluate import bodies_on_floor
from audio_vision.training.layout_eval import predict_layout
from audio_vision.training.trainer import batched

ROOT = Path(__file__).resolve().parents[1]
RANGE_EDGES_M = (0.0, 1.0, 2.0, 3.0, 4.0, 6.0, 100.0)


def median_scaled(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Each (H, W) image of ``pred`` times its median ratio to ``gt`` over the pixels valid in both."""
    out = np.empty_like(pred)
    for i, (p, g) in enumerate(zip(pred, gt)):
        ok = np.isfinite(g) & (g > 0) & np.isfinite(p) & (p > 0)
        out[i] = p * (np.median(g[ok] / p[ok]) if ok.any() else 1.0)
    return out


def abs_rel_over(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray) -> float | None:
    """The AbsRel pooled over the masked pixels of every image (None when there are none)."""
    ok = mask & np.isfinite(gt) & (gt > 0) & np.isfinite(pred) & (pred > 0)
    return float(np.mean(np.abs(pred[ok] - gt[ok]) / gt[ok])) if ok.any() else None


def per_image_abs_rel(pred: np.ndarray, gt: np.ndarray) -> float:
    """The AbsRel averaged over images, as docs/results.json reports it."""
    rows = [abs_rel_over(p, g, np.ones_like(g, dtype=bool)) for p, g in zip(pred, gt)]
    return float(np.mean([r for r in rows if r is not None]))


def by_prior(pred: np.ndarray, gt: np.ndarray, measured: np.ndarray) -> dict:
    """The AbsRel pooled over the pixels with a layout prior (``measured``) and over the others, each with its share of
    the valid pixels and of the AbsRel summed over them."""
    ok = np.isfinite(gt) & (gt > 0) & np.isfinite(pred) & (pred > 0)
    err = np.where(ok, np.abs(pred - gt) / np.where(ok, gt, 1.0), 0.0)
    total = float(err.sum())
    return {name: {'abs_rel': abs_rel_over(pred, gt, mask), 'pixel_share': float(mask[ok].mean()),
                   'error_share': float(err[mask].sum() / total) if total > 0 else None}
            for name, mask in (('measured', measured), ('not_measured', ~measured))}


def decompose(pred: np.ndarray, gt: np.ndarray, seg: np.ndarray, class_names: list[str]) -> dict:
    valid = np.isfinite(gt) & (gt > 0)
    by_class = {name: abs_rel_over(pred, gt, seg == k) for k, name in enumerate(class_names)}
    share = {name: float((seg[valid] == k).mean()) for k, name in enumerate(class_names)}
    by_range = {}
    for lo, hi in zip(RANGE_EDGES_M[:-1], RANGE_EDGES_M[1:]):
        in_bin = (gt >= lo) & (gt < hi)
        by_range[f'{lo:g}-{hi:g} m'] = {'abs_rel': abs_rel_over(pred, gt, in_bin),
                                        'pixel_share': float(in_bin[valid].mean())}
    return {'abs_rel': per_image_abs_rel(pred, gt),
            'abs_rel_median_scaled': per_image_abs_rel(median_scaled(pred, gt), gt),
            'by_class': by_class, 'class_pixel_share': share, 'by_range': by_range}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--data', type=Path, default=ROOT / 'data' / 'default')
    ap.add_argument('--models', type=Path, default=ROOT / 'models')
    ap.add_argument('--split', default='test')
    ap.add_argument('--limit', type=int, default=1600)
    ap.add_argument('--json', type=Path, default=ROOT / 'docs' / 'depth_error_probe.json')
    args = ap.parse_args()
    torch.set_num_threads(2)
    model = load_checkpoint(args.models / 'depth.pt', expect={'modality': 'depth'})
    spec = model.spec
    data = load_split(args.data, args.split, spec.features, limit=args.limit, progress=False,
                      mic_positions=spec.array.mic_positions)
    n, gt, seg = len(data), data.depth, data.segmentation
    feats = lambda s: data.features[s].float()  # noqa: E731
    preds = {}
    with torch.inference_mode():
        preds['method'] = batched(lambda s: model.encoding.decode(model(feats(s), quantize=True)).numpy(), n)
        e2e_path = args.models / 'end_to_end_depth.pt'
        if e2e_path.exists():
            e2e, _ = load_end_to_end(e2e_path)
            preds['end_to_end'] = batched(lambda s: e2e.encoding.decode(e2e(feats(s))).numpy(), n)
    if (args.models / 'mean.pt').exists():
        preds['mean'] = load_mean(args.models / 'mean.pt').predict(n)['depth']
    names = list(spec.class_table.names)
    layouts = predict_layout(args.data, args.split, limit=n, progress=False)
    if (args.models / 'segmentation.pt').exists():     # the depth as the pipeline publishes it (evaluate's row)
        seg_model = load_checkpoint(args.models / 'segmentation.pt', expect={'modality': 'segmentation'})
        with torch.inference_mode():
            drawn = batched(lambda s: seg_model.encoding.decode(seg_model(feats(s), quantize=True)).numpy(), n)
        preds['method_on_floor'] = bodies_on_floor({'depth': preds['method'], 'segmentation': drawn}, layouts.layouts,
                                                   spec.camera, spec.class_table)
    layout = layouts.depth.astype(np.float64)   # NaN: none
    measured = np.isfinite(layout)
    result = {
        'command': (f'python scripts/depth_error_probe.py --data {args.data} --models {args.models} '
                    f'--limit {args.limit}'),
        'date': time.strftime('%Y-%m-%d'),
        'machine': f'{platform.machine()}, Python {platform.python_version()}, torch {torch.__version__}',
        'split': args.split, 'windows': n, 'model_id': getattr(model, 'model_id', None),
        'published_row': 'method_on_floor' if 'method_on_floor' in preds else 'method',
        'range_edges_m': list(RANGE_EDGES_M),
        'rows': {row: decompose(p.astype(np.float64), gt.astype(np.float64), seg, names) for row, p in preds.items()},
        'by_prior': {**{row: by_prior(p.astype(np.float64), gt.astype(np.float64), measured)
                        for row, p in preds.items()},
                     'layout': {'measured': {'abs_rel': abs_rel_over(layout, gt.astype(np.float64), measured)}}},
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + '\n')
    for row, r in result['rows'].items():
        print(f'{row}: AbsRel {r["abs_rel"]:.3f}, median-scaled {r["abs_rel_median_scaled"]:.3f}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
