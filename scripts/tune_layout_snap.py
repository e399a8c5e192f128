#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Where the method's depth agrees with the measured room, take the room's: how much that is worth.

The sonar front-end measures the room's planes to centimetres where it measures them; the method's depth there is a
VQ-VAE decoding, accurate to a few per cent. Where the two agree within a tolerance ``tau`` (|log(method / layout)|
< tau on a pixel whose plane was measured), the pixel is most likely the measured plane, and its measured depth is the
better figure; where they disagree, a body or a surface the layout does not draw stands there and the method's depth
stays. Segmentation likewise: a pixel whose depth was snapped and that the method calls a room class (wall, floor,
ceiling) takes the layout's class.

Sweeps ``tau`` on the validation split, picks the one of lowest AbsRel whose δ1 is not below the method's, and scores
that one once on the test split. Pure evaluation (no training); writes docs/layout_snap.json.

    .venv/bin/python scripts/tune_layout_snap.py --data data/default --models models
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from audio_vision.core.eval.metrics import MetricAccumulator
from audio_vision.core.model.checkpoint import load_checkpoint
from audio_vision.training.data import load_split
from audio_vision.core.classes import ROOM_CLASSES
from audio_vision.training.layout_eval import predict_layout
from audio_vision.training.trainer import batched

ROOT = Path(__file__).resolve().parents[1]
TAUS = (0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5)


def snap(depth: np.ndarray, layout: np.ndarray, tau: float) -> tuple[np.ndarray, np.ndarray]:
    """(method depth with the layout's where they agree within ``tau`` in log ratio, the mask of those pixels)."""
    with np.errstate(invalid='ignore', divide='ignore'):
        agree = np.isfinite(layout) & (np.abs(np.log(depth / layout)) < tau)
    return np.where(agree, layout, depth), agree


def scores(depth, seg, gt_depth, gt_seg, table) -> dict:
    acc = MetricAccumulator(len(table), table.names)
    acc.add({'depth': depth, 'segmentation': seg}, {'depth': gt_depth, 'segmentation': gt_seg})
    r = acc.result()
    return {'abs_rel': r['depth']['abs_rel'], 'delta1': r['depth']['delta1'], 'miou': r['segmentation']['miou'],
            'per_class_iou': r['segmentation']['per_class_iou']}


def split_scores(data_dir: Path, models_dir: Path, split: str, taus, limit: int | None) -> dict:
    models = {m: load_checkpoint(models_dir / f'{m}.pt', expect={'modality': m}) for m in ('depth', 'segmentation')}
    spec = models['depth'].spec
    table = spec.class_table
    data = load_split(data_dir, split, spec.features, limit=limit, mic_positions=spec.array.mic_positions)
    n = len(data)
    with torch.inference_mode():
        pred = {m: batched(lambda s, mm=model: mm.encoding.decode(mm(data.features[s].float())).numpy(), n)
                for m, model in models.items()}
    layout = predict_layout(data_dir, split, limit=n)
    room = np.isin(pred['segmentation'], [table.id_of(c) for c in ROOM_CLASSES])
    out = {'windows': n, 'method': scores(pred['depth'], pred['segmentation'], data.depth, data.segmentation, table),
           'layout_pixel_share': float(np.isfinite(layout.depth).mean()), 'snap': {}}
    for tau in taus:
        depth, agree = snap(pred['depth'], layout.depth, tau)
        seg = np.where(agree & room, layout.segmentation, pred['segmentation'])
        row = scores(depth, seg, data.depth, data.segmentation, table)
        row['snapped_pixel_share'] = float(agree.mean())
        out['snap'][str(tau)] = row
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--data', type=Path, default=ROOT / 'data/default')
    ap.add_argument('--models', type=Path, default=ROOT / 'models')
    ap.add_argument('--limit', type=int, default=None)
    ap.add_argument('--json', type=Path, default=ROOT / 'docs/layout_snap.json')
    args = ap.parse_args()
    val = split_scores(args.data, args.models, 'val', TAUS, args.limit)
    base = val['method']
    allowed = [t for t in TAUS if val['snap'][str(t)]['delta1'] >= base['delta1']]
    chosen = min(allowed, key=lambda t: val['snap'][str(t)]['abs_rel']) if allowed else None
    test = split_scores(args.data, args.models, 'test', (chosen,) if chosen is not None else (), args.limit)

    def shown(path: Path) -> Path:          # as typed in the repository, not this machine's absolute path
        return path.resolve().relative_to(ROOT) if path.resolve().is_relative_to(ROOT) else path
    result = {'command': f'python scripts/tune_layout_snap.py --data {shown(args.data)} --models {shown(args.models)}'
                         + (f' --limit {args.limit}' if args.limit else ''),
              'date': time.strftime('%Y-%m-%d'), 'machine': f'{platform.machine()}, Python {platform.python_version()}',
              'rule': 'tau of lowest validation AbsRel among those whose validation δ1 is not below the method\'s',
              'chosen_tau': chosen, 'val': val, 'test': test}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1))
    for name, part in (('val', val), ('test', test)):
        print(f"{name}: method AbsRel {part['method']['abs_rel']:.4f} δ1 {part['method']['delta1']:.4f} "
              f"mIoU {part['method']['miou']:.4f}")
        for tau, row in part['snap'].items():
            print(f"  tau {tau}: AbsRel {row['abs_rel']:.4f} δ1 {row['delta1']:.4f} mIoU {row['miou']:.4f} "
                  f"(snapped {row['snapped_pixel_share']:.1%})")


if __name__ == '__main__':
    main()
