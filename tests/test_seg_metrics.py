"""Segmentation metrics: mIoU / per-class IoU / aAcc recomputed by hand on a small confusion matrix, the ignore
label ignored, absent classes skipped, accumulation over a split (not a mean of per-image scores), and agreement
with torchmetrics where torchmetrics computes the same thing."""

from __future__ import annotations

import math

import pytest
import torch
from torchmetrics.classification import MulticlassConfusionMatrix, MulticlassJaccardIndex

from swin_lit.data.segmentation import IGNORE_INDEX
from swin_lit.train.seg_metrics import SegmentationMetrics, confusion_matrix, scores

I = IGNORE_INDEX
# 9 pixels, K = 5: class 2 is predicted only where the label is ignored (absent), class 4 only predicted (IoU 0)
TARGET = torch.tensor([[0, 0, 0, 1, 1, I, I, 3, 0]])
PREDS = torch.tensor([[0, 0, 1, 1, 1, 2, 0, 1, 4]])


def test_by_hand():
    cm = confusion_matrix(PREDS, TARGET, 5)
    assert cm.tolist() == [
        [2, 1, 0, 0, 1],  # ground truth 0: 2 right, one taken for 1, one for 4
        [0, 2, 0, 0, 0],
        [0, 0, 0, 0, 0],  # class 2 nowhere once the ignored pixels are out
        [0, 1, 0, 0, 0],
        [0, 0, 0, 0, 0],
    ]
    s = scores(cm)
    # IoU = TP / (TP + FP + FN): 0: 2/(2+0+2); 1: 2/(2+2+0); 2: absent; 3: 0/(0+0+1); 4: 0/(0+1+0)
    iou = s["iou"].tolist()
    assert iou[0] == pytest.approx(0.5) and iou[1] == pytest.approx(0.5) and math.isnan(iou[2])
    assert iou[3] == 0.0 and iou[4] == 0.0
    assert s["miou"].item() == pytest.approx((0.5 + 0.5 + 0 + 0) / 4)  # the absent class is skipped, not a 0
    assert s["aacc"].item() == pytest.approx(4 / 7)  # 7 labelled pixels, 4 right


def test_ignored_pixels_change_nothing():
    metric = SegmentationMetrics(5)
    metric.update(PREDS, TARGET)
    base = metric.compute()
    other = PREDS.clone()
    other[TARGET == I] = 3  # any prediction on ignored pixels
    metric.reset()
    metric.update(other, TARGET)
    again = metric.compute()
    assert torch.equal(metric.confmat, confusion_matrix(PREDS, TARGET, 5))
    assert again["miou"] == base["miou"] and again["aacc"] == base["aacc"]


def test_logits_are_argmaxed():
    logits = torch.nn.functional.one_hot(PREDS, 5).permute(0, 2, 1).float().unsqueeze(-1)  # (1, 5, 9, 1)
    metric = SegmentationMetrics(5)
    metric.update(logits * 3.0 - 1.0, TARGET.unsqueeze(-1))
    assert torch.equal(metric.confmat, confusion_matrix(PREDS, TARGET, 5))


def test_accumulates_over_the_split_not_per_image():
    # image 1: all class 0, right; image 2: class 1 labelled, everything predicted 0
    t1, p1 = torch.zeros(1, 4, 4, dtype=torch.long), torch.zeros(1, 4, 4, dtype=torch.long)
    t2, p2 = torch.ones(1, 2, 2, dtype=torch.long), torch.zeros(1, 2, 2, dtype=torch.long)
    metric = SegmentationMetrics(2)
    metric.update(p1, t1)
    metric.update(p2, t2)
    s = metric.compute()
    # split: class 0 IoU 16 / (16 + 4) = 0.8, class 1 IoU 0 -> 0.4; per-image means would give (1.0 + 0.0) / 2
    assert s["miou"].item() == pytest.approx(0.4) and s["aacc"].item() == pytest.approx(16 / 20)


def test_nothing_labelled_is_nan():
    metric = SegmentationMetrics(3)
    metric.update(torch.zeros(1, 2, 2, dtype=torch.long), torch.full((1, 2, 2), I))  # every pixel ignored
    s = metric.compute()
    assert math.isnan(s["miou"].item()) and math.isnan(s["aacc"].item()) and s["iou"].isnan().all()


def test_labels_outside_the_classes():
    metric = SegmentationMetrics(5)
    with pytest.raises(ValueError, match=r"label 7 is neither a class \(0\.\.4\) nor the ignore label 255"):
        metric.update(PREDS, torch.where(TARGET == 3, 7, TARGET))
    loose = SegmentationMetrics(5, validate_args=False)
    loose.update(PREDS, torch.where(TARGET == 3, 7, TARGET))  # left out like the ignore label
    assert loose.confmat.sum() == 6
    with pytest.raises(ValueError, match="differ in shape"):
        metric.update(PREDS[:, :4], TARGET)


def test_agrees_with_torchmetrics():
    gen = torch.Generator().manual_seed(0)
    K = 7
    metric = SegmentationMetrics(K)
    tm_cm = MulticlassConfusionMatrix(K, ignore_index=I)
    tm_miou = MulticlassJaccardIndex(K, average="macro", ignore_index=I)
    tm_iou = MulticlassJaccardIndex(K, average="none", ignore_index=I)
    for _ in range(3):
        target = torch.randint(0, 4, (2, 9, 11), generator=gen)  # classes 4, 5, 6 never labelled
        preds = torch.randint(0, 5, (2, 9, 11), generator=gen)  # class 4 predicted, 5 and 6 never
        target[torch.rand(target.shape, generator=gen) < 0.2] = I
        for m in (metric, tm_cm, tm_miou, tm_iou):
            m.update(preds, target)
    s = metric.compute()
    assert torch.equal(metric.confmat, tm_cm.compute())
    assert s["miou"].item() == pytest.approx(tm_miou.compute().item(), abs=1e-6)  # both skip classes 5 and 6
    assert s["iou"][5:].isnan().all() and (tm_iou.compute()[5:] == 0).all()  # torchmetrics reports them as 0
    torch.testing.assert_close(s["iou"][:5], tm_iou.compute()[:5])
