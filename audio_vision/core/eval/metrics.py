# SPDX-License-Identifier: Apache-2.0
"""Image-space metrics: the standard monocular-depth set and semantic-segmentation IoU."""
from __future__ import annotations

import numpy as np

DEPTH_KEYS = ('abs_rel', 'sq_rel', 'rmse', 'rmse_log', 'delta1', 'delta2', 'delta3')


def depth_metrics(pred: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    """Metrics of one depth image over pixels valid in both (finite, > 0).

    `valid_fraction` is the share of GT-valid pixels the prediction also covers, so a model
    that predicts NaN everywhere cannot look good.
    """
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    if pred.shape != gt.shape:
        raise ValueError(f'depth shapes differ: pred {pred.shape} vs gt {gt.shape}')
    with np.errstate(invalid='ignore'):
        gt_valid = np.isfinite(gt) & (gt > 0)
        both = gt_valid & np.isfinite(pred) & (pred > 0)
    if not both.any():
        return {**{k: float('nan') for k in DEPTH_KEYS}, 'valid_fraction': 0.0}
    p, g = pred[both], gt[both]
    ratio = np.maximum(p / g, g / p)
    return {
        'abs_rel': float(np.mean(np.abs(p - g) / g)),
        'sq_rel': float(np.mean((p - g) ** 2 / g)),
        'rmse': float(np.sqrt(np.mean((p - g) ** 2))),
        'rmse_log': float(np.sqrt(np.mean((np.log(p) - np.log(g)) ** 2))),
        'delta1': float(np.mean(ratio < 1.25)),
        'delta2': float(np.mean(ratio < 1.25 ** 2)),
        'delta3': float(np.mean(ratio < 1.25 ** 3)),
        'valid_fraction': float(both.sum() / max(gt_valid.sum(), 1)),
    }


def confusion_matrix(pred: np.ndarray, gt: np.ndarray, num_classes: int) -> np.ndarray:
    """(num_classes, num_classes) counts, rows = ground truth, columns = prediction."""
    pred = np.asarray(pred).astype(np.int64).ravel()
    gt = np.asarray(gt).astype(np.int64).ravel()
    keep = (gt >= 0) & (gt < num_classes) & (pred >= 0) & (pred < num_classes)
    return np.bincount(gt[keep] * num_classes + pred[keep], minlength=num_classes ** 2).reshape(
        num_classes, num_classes)


def segmentation_scores(confusion: np.ndarray, class_names: list[str] | None = None) -> dict:
    """The mIoU (over classes present in GT or prediction), pixel accuracy, per-class IoU."""
    tp = np.diag(confusion).astype(np.float64)
    union = confusion.sum(0) + confusion.sum(1) - tp
    names = class_names or [str(i) for i in range(len(tp))]
    present = union > 0
    iou = np.where(present, tp / np.maximum(union, 1), np.nan)
    return {
        'miou': float(np.mean(iou[present])) if present.any() else float('nan'),
        'pixel_acc': float(tp.sum() / max(confusion.sum(), 1)),
        'per_class_iou': {n: (None if np.isnan(v) else float(v)) for n, v in zip(names, iou)},
    }


def segmentation_metrics(pred: np.ndarray, gt: np.ndarray, num_classes: int,
                         class_names: list[str] | None = None) -> dict:
    return segmentation_scores(confusion_matrix(pred, gt, num_classes), class_names)


class MetricAccumulator:
    """Dataset-level metrics: depth metrics averaged over images, segmentation from one global confusion."""

    def __init__(self, num_classes: int, class_names: list[str] | None = None):
        self.num_classes, self.class_names = num_classes, class_names
        self.depth_rows: list[dict] = []
        self.confusion = np.zeros((num_classes, num_classes), dtype=np.int64)

    def add(self, pred: dict[str, np.ndarray], gt: dict[str, np.ndarray]) -> None:
        """Add a batch: dicts with 'depth' (B,H,W) and/or 'segmentation' (B,H,W)."""
        if 'depth' in pred:
            self.depth_rows += [depth_metrics(p, g) for p, g in zip(pred['depth'], gt['depth'])]
        if 'segmentation' in pred:
            self.confusion += confusion_matrix(pred['segmentation'], gt['segmentation'], self.num_classes)

    def result(self) -> dict:
        out = {}
        if self.depth_rows:
            out['depth'] = {k: float(np.nanmean([r[k] for r in self.depth_rows]))
                            for k in (*DEPTH_KEYS, 'valid_fraction')}
        if self.confusion.any():
            out['segmentation'] = segmentation_scores(self.confusion, self.class_names)
        return out
