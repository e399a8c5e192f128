# SPDX-License-Identifier: Apache-2.0
import numpy as np

from audio_vision.core.eval.metrics import MetricAccumulator, depth_metrics, segmentation_metrics


def test_depth_metrics_known_values():
    gt = np.full((2, 2), 2.0)
    pred = np.array([[2.0, 2.0], [3.0, np.nan]])
    m = depth_metrics(pred, gt)
    assert np.isclose(m['abs_rel'], 0.5 / 3)
    assert np.isclose(m['rmse'], np.sqrt(1 / 3))
    # ratio 1.5: fails 1.25, passes 1.25^2 = 1.5625
    assert np.isclose(m['delta1'], 2 / 3) and m['delta2'] == 1.0 and m['delta3'] == 1.0
    assert np.isclose(m['valid_fraction'], 0.75)
    perfect = depth_metrics(gt, gt)
    assert perfect['abs_rel'] == 0 and perfect['delta1'] == 1


def test_segmentation_metrics_known_values():
    gt = np.array([[0, 0], [1, 1]])
    pred = np.array([[0, 1], [1, 1]])
    m = segmentation_metrics(pred, gt, 3, ['a', 'b', 'c'])
    assert np.isclose(m['per_class_iou']['a'], 0.5)
    assert np.isclose(m['per_class_iou']['b'], 2 / 3)
    assert m['per_class_iou']['c'] is None               # absent everywhere: not in the mean
    assert np.isclose(m['miou'], (0.5 + 2 / 3) / 2)
    assert np.isclose(m['pixel_acc'], 0.75)


def test_accumulator_averages_images():
    acc = MetricAccumulator(2)
    gt = {'depth': np.ones((2, 3, 3)), 'segmentation': np.zeros((2, 3, 3), np.uint8)}
    acc.add({'depth': np.ones((2, 3, 3)) * np.array([1.0, 2.0])[:, None, None],
             'segmentation': np.zeros((2, 3, 3), np.uint8)}, gt)
    res = acc.result()
    assert np.isclose(res['depth']['abs_rel'], 0.5)
    assert res['segmentation']['miou'] == 1.0
