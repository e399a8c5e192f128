#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
r"""Evaluate the per-pixel confidence of the method's depth and segmentation (sparsification curves).

For every confidence kind (audio_vision.core.inference.confidence.KINDS) on a dataset split: AbsRel and delta1 of the
most-confident 10 ... 100 % of the depth pixels (pooled over the split) against the oracle ordering (by the
true error), the area between them (AUSE), and AbsRel(most-confident half) / AbsRel(all) — the target is
<= 0.7 for the default kind. Segmentation: the same for the pixel error rate. Writes JSON + PNG.

    .venv/bin/python scripts/eval_confidence.py --data data/default --models models --limit 400 \
        --json docs/confidence.json --png docs/confidence_sparsification.png
"""
from __future__ import annotations

import argparse
import datetime
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from audio_vision.core.eval.sparsification import error_sparsification, sparsification  # noqa: E402
from audio_vision.core.inference.confidence import DEFAULT_KIND, KINDS, decode_with_confidence  # noqa: E402
from audio_vision.core.model.checkpoint import load_checkpoint  # noqa: E402
from audio_vision.core.model.encoding import MODALITIES  # noqa: E402
from audio_vision.paths import source_commit  # noqa: E402
from audio_vision.training.data import load_split  # noqa: E402

TARGET_HALF_RATIO = 0.7


def predict_split(models: dict, data, kinds, batch: int = 32) -> dict:
    """{modality: {'image': (n, H, W), 'confidence': {kind: (n, H, W)}, 'ms_per_window': {...}}} for the split.

    ``ms_per_window``: CPU milliseconds per window (batched) of the AT-net (``atnet``), of the plain quantized
    decode (``decode``, the node's path without confidence) and of decode + confidence for every kind.
    """
    out = {}
    with torch.inference_mode():
        for m, model in models.items():
            images, conf = [], {k: [] for k in kinds}
            secs = dict.fromkeys(('atnet', 'decode') + tuple(kinds), 0.0)
            for s in range(0, len(data), batch):
                t = time.perf_counter()
                feats = data.features[s:s + batch].float()
                z = model.atnet(feats)
                secs['atnet'] += time.perf_counter() - t
                t = time.perf_counter()
                reference = model.reference(feats)
                model.absolute(model.vqvae.decode_latent(z), reference)
                secs['decode'] += time.perf_counter() - t
                for i, kind in enumerate(kinds):
                    t = time.perf_counter()
                    o, c = decode_with_confidence(model, z, kind, reference=reference)
                    secs[kind] += time.perf_counter() - t
                    if i == 0:
                        images.append(model.encoding.decode(o).numpy())
                    conf[kind].append(c.numpy())
            out[m] = {'image': np.concatenate(images), 'confidence': {k: np.concatenate(v) for k, v in conf.items()},
                      'ms_per_window': {k: round(1000.0 * v / max(len(data), 1), 3) for k, v in secs.items()}}
    return out


def window_oracle_half_ratio(pred, gt) -> float:
    """half_ratio of the ordering by each window's true AbsRel (every pixel of a window equally confident):
    how much of the error a per-window signal alone could rank."""
    with np.errstate(invalid='ignore'):
        err = np.abs(pred - gt) / gt
        per_window = np.nanmean(np.where(np.isfinite(pred) & (gt > 0), err, np.nan), axis=(1, 2))
    return sparsification(pred, gt, -np.broadcast_to(per_window[:, None, None], pred.shape))['half_ratio']


def abs_rel_by_band(pred, gt, axis: int, bands: int = 8, depth_range=(1.0, 3.0)) -> list[dict]:
    """The AbsRel of the pixels with a predicted depth in ``depth_range`` per image row (axis 1) or column (axis 2)
    band: how the error depends on the pixel's direction at a fixed predicted depth."""
    with np.errstate(invalid='ignore'):
        ok = np.isfinite(pred) & np.isfinite(gt) & (gt > 0) & (pred >= depth_range[0]) & (pred < depth_range[1])
    size = pred.shape[axis]
    index = np.arange(size) * bands // size
    band = np.broadcast_to(index[:, None] if axis == 1 else index[None, :], pred.shape[1:])[None]
    rows = []
    for b in range(bands):
        m = ok & (band == b)
        rows.append({'band': b, 'from_px': int(np.flatnonzero(index == b)[0]), 'pixels': int(m.sum()),
                     'abs_rel': float(np.mean(np.abs(pred[m] - gt[m]) / gt[m])) if m.any() else None})
    return rows


def abs_rel_by_depth(pred, gt, edges=(0, 1, 2, 3, 4, 6, 20)) -> list[dict]:
    """The AbsRel of the pixels whose predicted depth falls in each bin (why confidence falls with range)."""
    with np.errstate(invalid='ignore'):
        ok = np.isfinite(pred) & np.isfinite(gt) & (gt > 0) & (pred > 0)
    rows = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        m = ok & (pred >= lo) & (pred < hi)
        rows.append({'from_m': lo, 'to_m': hi, 'pixels': int(m.sum()),
                     'abs_rel': float(np.mean(np.abs(pred[m] - gt[m]) / gt[m])) if m.any() else None})
    return rows


def plot(result: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    panels = [('depth', 'abs_rel', 'depth AbsRel'), ('depth', 'delta1', 'depth δ<1.25'),
              ('segmentation', None, 'segmentation pixel error')]
    panels = [p for p in panels if p[0] in result['modalities']]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.4 * len(panels), 3.6), squeeze=False)
    for ax, (m, key, title) in zip(axes[0], panels):
        res = result['modalities'][m]
        x = [100 * f for f in next(iter(res.values()))['fractions']]
        for i, (kind, r) in enumerate(res.items()):
            y = r['curve'][key] if key else r['curve']
            ause = r['ause'][key] if key else r['ause']
            ax.plot(x, y, marker='o', ms=3, lw=2 if kind == DEFAULT_KIND else 1,
                    label=f'{kind} (AUSE {ause:.3f})')
        oracle = res[DEFAULT_KIND]['oracle'][key] if key else res[DEFAULT_KIND]['oracle']
        ax.plot(x, oracle, 'k--', lw=1, label='oracle')
        ax.set_xlabel('most-confident pixels kept (%)')
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(f"confidence sparsification, {result['split']} split of {result['data']} "
                 f"({result['samples']} windows)", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--data', required=True, type=Path, help='dataset directory')
    parser.add_argument('--models', type=Path, default=Path('models'), help='model directory (default: models)')
    parser.add_argument('--split', default='test', help='dataset split (default: test)')
    parser.add_argument('--limit', type=int, help='at most this many windows')
    parser.add_argument('--json', type=Path, default=Path('docs/confidence.json'))
    parser.add_argument('--png', type=Path, default=Path('docs/confidence_sparsification.png'))
    parser.add_argument('--threads', type=int, default=2, help='torch threads (default 2)')
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    t0 = time.time()
    found = [m for m in MODALITIES if (args.models / f'{m}.pt').is_file()]
    if not found:
        parser.error(f'no depth.pt / segmentation.pt in {args.models}')
    models = {m: load_checkpoint(args.models / f'{m}.pt', expect={'modality': m}).eval() for m in found}
    spec = next(iter(models.values())).spec
    data = load_split(args.data, args.split, spec.features, limit=args.limit, progress=False,
                      mic_positions=spec.array.mic_positions)
    preds = predict_split(models, data, KINDS)
    result = {'command': ' '.join([Path(sys.argv[0]).as_posix()] + (argv if argv is not None else sys.argv[1:])),
              'date': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
              'machine': f'{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, '
                         f'Python {platform.python_version()}, torch {torch.__version__}',
              'git': source_commit() or 'unknown', 'data': str(args.data), 'split': args.split,
              'samples': len(data),
              'models': str(args.models), 'model_ids': {m: getattr(mm, 'model_id', None) for m, mm in models.items()},
              'default_kind': DEFAULT_KIND, 'target_half_ratio': TARGET_HALF_RATIO, 'modalities': {}}
    if 'depth' in preds:
        p = preds['depth']
        result['modalities']['depth'] = {k: sparsification(p['image'], data.depth, c)
                                         for k, c in p['confidence'].items()}
        result['depth_abs_rel_by_predicted_depth'] = abs_rel_by_depth(p['image'], data.depth)
        result['depth_abs_rel_by_row_band'] = abs_rel_by_band(p['image'], data.depth, axis=1)
        result['depth_abs_rel_by_column_band'] = abs_rel_by_band(p['image'], data.depth, axis=2)
        result['window_oracle_half_ratio'] = window_oracle_half_ratio(p['image'], np.asarray(data.depth))
    if 'segmentation' in preds:
        p = preds['segmentation']
        wrong = p['image'] != data.segmentation
        result['modalities']['segmentation'] = {k: error_sparsification(wrong, c) for k, c in p['confidence'].items()}
    result['ms_per_window'] = {m: p['ms_per_window'] for m, p in preds.items()}
    if 'depth' in result['modalities']:
        ratio = result['modalities']['depth'][DEFAULT_KIND]['half_ratio']
        result['target_met'] = bool(ratio <= TARGET_HALF_RATIO)
    result['seconds'] = round(time.time() - t0, 1)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2))
    plot(result, args.png)
    for m, res in result['modalities'].items():
        for kind, r in res.items():
            ause = r['ause'] if m == 'segmentation' else r['ause']['abs_rel']
            print(f'{m:12s} {kind:9s} AUSE {ause:.4f}  half/all {r["half_ratio"]:.3f}')
    print(f'wrote {args.json} and {args.png}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
