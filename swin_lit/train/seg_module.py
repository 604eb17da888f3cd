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
from swin_lit.train.module import RunModule
from swin_lit.train.seg_metrics import SegmentationMetrics

SEG_HP_METRICS = {"hp/val_miou": 0.0, "hp/test_miou": 0.0}


class SwinSegmentation(RunModule):
    HP_METRICS = SEG_HP_METRICS

    def __init__(self, cfg: RunConfig) -> None:
        super().__init__(cfg)
        self.model = SwinSegmenter(cfg.model, cfg.head, cfg.model.num_classes)
        k = cfg.model.num_classes
        self.val_metrics = SegmentationMetrics(k, validate_args=False)
        self.test_metrics = SegmentationMetrics(k, validate_args=False)
        self.train_loss = torchmetrics.MeanMetric()
        self.val_loss = torchmetrics.MeanMetric()
        self.test_loss = torchmetrics.MeanMetric()
        self.train_loss.persistent(True)  # in checkpoints: a resumed epoch's mean is whole
        self.test_scores: dict[str, list[float] | float] = {}

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

    def _eval_step(self, batch, metrics: SegmentationMetrics, loss_metric: torchmetrics.MeanMetric) -> None:
        x, y = batch
        logits = self(x)
        loss_metric.update(F.cross_entropy(logits, y, ignore_index=IGNORE_INDEX))
        metrics.update(logits.argmax(1), y)

    def validation_step(self, batch, batch_idx):
        self._eval_step(batch, self.val_metrics, self.val_loss)

    def test_step(self, batch, batch_idx):
        self._eval_step(batch, self.test_metrics, self.test_loss)
        self.test_images += batch[0].shape[0]

    # -- epoch ends ------------------------------------------------------------------------------
    def _log_scores(self, split: str, metrics: SegmentationMetrics) -> dict[str, torch.Tensor]:
        scores = metrics.compute()
        self.log(f"{split}/miou", scores["miou"])
        self.log(f"{split}/aacc", scores["aacc"])
        metrics.reset()
        return scores

    def on_validation_epoch_end(self):
        if self.trainer.sanity_checking:
            self.val_metrics.reset()
            self.val_loss.reset()
            return
        loss = self.val_loss.compute()
        scores = self._log_scores("val", self.val_metrics)
        if self.trainer.state.fn == "fit":  # the learning curve (a later validate() is not an epoch)
            train_loss = self.train_loss.compute().item() if self.train_loss.update_called else float("nan")
            self.history = [h for h in self.history if h["epoch"] != self.current_epoch]
            self.history.append({"epoch": self.current_epoch, "train_loss": train_loss, "val_loss": loss.item(),
                                 "val_miou": 100.0 * scores["miou"].item(),
                                 "val_aacc": 100.0 * scores["aacc"].item()})
            self.log("hp/val_miou", scores["miou"])
        self.log("val/loss", self.val_loss)

    def on_test_epoch_end(self):
        self._record_test_time()
        scores = self._log_scores("test", self.test_metrics)
        self.test_scores = {"iou": [100.0 * v for v in scores["iou"].tolist()]}
        self.log("hp/test_miou", scores["miou"])
        self.log("test/loss", self.test_loss)
