"""Segmentation metrics as scored by mmseg (reference 10.4): mIoU, per-class IoU and pixel accuracy (aAcc).

All three come from one confusion matrix accumulated over the whole split (rows: ground truth, columns:
prediction), never from per-image scores. Pixels labelled ``ignore_index`` count nowhere. Per class,
IoU = TP / (TP + FP + FN); a class absent from both the ground truth and the predictions of the whole split has
no IoU (NaN) and is left out of the mean, as mmseg skips NaN classes; a class that is predicted but absent from the
ground truth has IoU 0 and counts. aAcc = correct pixels / labelled pixels.

torchmetrics 1.9's ``MulticlassJaccardIndex(average="macro", ignore_index=...)`` gives the same mIoU (its macro
mean drops classes whose union is empty), but its per-class form reports such classes as 0 rather than absent, and
aAcc needs the matrix too; so ``SegmentationMetrics`` keeps the matrix as its state and derives all three from it
(tests pin the agreement with torchmetrics). Its update runs on the batch's device with a fixed-size scatter, so
it adds no host synchronisation unless ``validate_args`` checks the labels.
"""

from __future__ import annotations

import torch
from torchmetrics import Metric

from swin_lit.data.segmentation import IGNORE_INDEX


def confusion_matrix(preds: torch.Tensor, target: torch.Tensor, num_classes: int,
                     ignore_index: int = IGNORE_INDEX) -> torch.Tensor:
    """int64 (K, K) counts of (ground truth, prediction) over the labelled pixels. ``preds`` are class indices
    (B, H, W) or logits (B, K, H, W); ``target`` (B, H, W) holds classes and ``ignore_index``. Target values
    outside [0, K) are left out like the ignore label (``SegmentationMetrics`` can reject them)."""
    if preds.is_floating_point():
        preds = preds.argmax(1)  # (B, K, H, W) -> (B, H, W)
    if preds.shape != target.shape:
        raise ValueError(f"predictions {tuple(preds.shape)} and labels {tuple(target.shape)} differ in shape")
    K = num_classes
    target, preds = target.long().reshape(-1), preds.long().reshape(-1)
    valid = (target != ignore_index) & (target >= 0) & (target < K) & (preds >= 0) & (preds < K)
    slot = torch.where(valid, target * K + preds, K * K)  # invalid pixels go to a spare slot, dropped below
    counts = torch.zeros(K * K + 1, dtype=torch.long, device=target.device)
    counts.scatter_add_(0, slot, torch.ones_like(slot))
    return counts[:-1].view(K, K)


def scores(confmat: torch.Tensor) -> dict[str, torch.Tensor]:
    """mIoU, per-class IoU (NaN for classes absent from ground truth and predictions) and aAcc of a confusion
    matrix (rows ground truth, columns prediction). mIoU is the mean over classes with an IoU (NaN if none)."""
    cm = confmat.double()
    tp = cm.diagonal()
    union = cm.sum(0) + cm.sum(1) - tp
    iou = torch.where(union > 0, tp / union.clamp(min=1), torch.full_like(tp, float("nan")))
    present = ~iou.isnan()
    miou = iou[present].mean() if present.any() else torch.tensor(float("nan"), dtype=cm.dtype)
    labelled = cm.sum()
    aacc = tp.sum() / labelled if labelled > 0 else torch.tensor(float("nan"), dtype=cm.dtype)
    return {"miou": miou.float(), "iou": iou.float(), "aacc": aacc.float()}


class SegmentationMetrics(Metric):
    """mIoU, per-class IoU and aAcc over a split, from an accumulated confusion matrix (state ``confmat``,
    summed across processes). ``update(preds, target)`` takes class indices (B, H, W) or logits (B, K, H, W)
    and labels (B, H, W); ``compute()`` returns ``{"miou": (), "iou": (K,), "aacc": ()}``.

    With ``validate_args`` (default) a label other than a class or ``ignore_index`` raises ValueError (a host
    sync per update); without it such pixels are left out.
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    def __init__(self, num_classes: int, ignore_index: int = IGNORE_INDEX, validate_args: bool = True,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.num_classes, self.ignore_index, self.validate_args = num_classes, ignore_index, validate_args
        self.add_state("confmat", torch.zeros(num_classes, num_classes, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        if self.validate_args:
            bad = (target != self.ignore_index) & ((target < 0) | (target >= self.num_classes))
            if bad.any():
                raise ValueError(f"label {int(target[bad][0])} is neither a class (0..{self.num_classes - 1}) "
                                 f"nor the ignore label {self.ignore_index}")
        self.confmat += confusion_matrix(preds, target, self.num_classes, self.ignore_index)

    def compute(self) -> dict[str, torch.Tensor]:
        return scores(self.confmat)
