"""``SwinSegmentation``: the LightningModule of ``task: segmentation``.

Pixel cross-entropy with the ignore label (``IGNORE_INDEX``, 255; ``optim.label_smoothing`` applies), plus
``head.aux_weight`` x the auxiliary head's when it has one; AdamW on the official no-decay groups, warmup then
cosine or poly (``RunModule``). Evaluation runs each image whole at its own size (padded to the patch size, the
padding cut off the logits) or, with ``trainer.inference: slide``, on crops of the model's size every
``slide_stride`` x crop pixels. mIoU (over the classes present in ground truth or prediction), per-class IoU and
pixel accuracy come from one confusion matrix per split (``SegmentationMetrics``), logged the Lightning way;
labels were checked when the data was read, so the step does no host sync for them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
import torchmetrics

from swin_lit.config import RunConfig
from swin_lit.data.segmentation import IGNORE_INDEX
from swin_lit.models.seg_inference import segment
from swin_lit.models.segmenter import SwinSegmenter
from swin_lit.tasks import implementation
from swin_lit.train.module import RunModule
from swin_lit.train.seg_metrics import SegmentationMetrics

SEG_HP_METRICS = {"hp/val_miou": 0.0, "hp/test_miou": 0.0}


class SegmentationScores(torch.nn.Module):
    """The evaluation of a split: each batch of whole images segmented as ``trainer.inference`` says, mIoU,
    per-class IoU and aAcc from one confusion matrix, the mean cross-entropy per labelled pixel. The same object
    scores validation and testing (``SwinSegmentation``) and a moved model (transfer,
    ``swin_lit.tasks.segmentation``), so their numbers come from one code."""

    def __init__(self, num_classes: int, inference: str = "whole", slide_stride: float = 2 / 3) -> None:
        super().__init__()
        self.inference, self.slide_stride = inference, slide_stride
        self.metrics = SegmentationMetrics(num_classes, validate_args=False)  # labels were checked when read
        self.loss = torchmetrics.MeanMetric()

    def update(self, model, batch) -> None:
        x, y = batch
        logits = segment(model, x, self.inference, self.slide_stride)
        labelled = (y != IGNORE_INDEX).sum()  # weight: the split's mean per labelled pixel (no host sync)
        self.loss.update(F.cross_entropy(logits, y, ignore_index=IGNORE_INDEX), weight=labelled)
        self.metrics.update(logits.argmax(1), y)

    def compute(self) -> dict[str, torch.Tensor]:
        return {**self.metrics.compute(), "loss": self.loss.compute()}

    def reset(self) -> None:
        self.metrics.reset()
        self.loss.reset()


class SwinSegmentation(RunModule):
    HP_METRICS = SEG_HP_METRICS

    def __init__(self, cfg: RunConfig) -> None:
        super().__init__(cfg)
        self.model = SwinSegmenter(cfg.model, cfg.head, cfg.model.num_classes)
        task = implementation(cfg.task)  # its evaluator: SegmentationScores, or a task's own
        self.val_scores, self.test_scores = task.scores(cfg), task.scores(cfg)
        self.train_loss = torchmetrics.MeanMetric()
        self.train_loss.persistent(True)  # in checkpoints: a resumed epoch's mean is whole

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (B, K, H, W) of whole images (B, C, H, W) of any size, as evaluation computes them."""
        return segment(self.model, x, self.cfg.trainer.inference, self.cfg.trainer.slide_stride)

    # -- steps -----------------------------------------------------------------------------------
    def training_step(self, batch, batch_idx):
        x, y = batch  # (B, 3, H, W) float, (B, H, W) int64
        logits, aux = self.model(x, aux=True)
        smoothing = self.cfg.optim.label_smoothing  # the segmentation configs set 0 (mmseg's recipe has none)
        loss = F.cross_entropy(logits, y, ignore_index=IGNORE_INDEX, label_smoothing=smoothing)
        if aux is not None:
            loss = loss + self.cfg.head.aux_weight * F.cross_entropy(aux, y, ignore_index=IGNORE_INDEX,
                                                                     label_smoothing=smoothing)
        self.train_loss.update(loss.detach())
        self.log("train/loss_step", loss.detach(), on_step=True, on_epoch=False)
        self.train_images += x.shape[0]
        return loss

    def validation_step(self, batch, batch_idx):
        self.val_scores.update(self.model, batch)

    def test_step(self, batch, batch_idx):
        self.test_scores.update(self.model, batch)
        self.test_images += batch[0].shape[0]

    # -- epoch ends ------------------------------------------------------------------------------
    def on_validation_epoch_end(self):
        if self.trainer.sanity_checking:
            self.val_scores.reset()
            return
        scores = self._log_scores("val", self.val_scores)
        if self.trainer.state.fn == "fit":  # the learning curve (a later validate() is not an epoch)
            train_loss = self.train_loss.compute().item() if self.train_loss.update_called else float("nan")
            self.history = [h for h in self.history if h["epoch"] != self.current_epoch]
            self.history.append({"epoch": self.current_epoch, "train_loss": train_loss, "val_loss": scores["loss"],
                                 "val_miou": 100.0 * scores["miou"], "val_aacc": 100.0 * scores["aacc"]})
            self.log("hp/val_miou", scores["miou"])

    def on_test_epoch_end(self):
        self._record_test_time()
        scores = self._log_scores("test", self.test_scores)
        self.log("hp/test_miou", scores["miou"])
