"""The LightningModules that train and evaluate any Swin variant: ``SwinClassifier`` here, ``SwinSegmentation``
(``swin_lit.train.seg_module``) for dense prediction. ``RunModule`` holds what both share: the official AdamW
groups and the warmup + cosine / poly schedule, gradient clipping, the training-time clock behind images/s, the
learning curve and the checkpointed state that makes a mid-epoch resume exact."""

from __future__ import annotations

import time

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
import torchmetrics
from lightning.pytorch.callbacks import ModelCheckpoint
from torchmetrics.classification import MulticlassAccuracy, MulticlassCalibrationError

from swin_lit.config import RunConfig
from swin_lit.models import SwinTransformer
from swin_lit.tasks import implementation, plain
from swin_lit.train import augment, schedule

HP_METRICS = {"hp/val_top1": 0.0, "hp/test_top1": 0.0}


def split_metrics(num_classes: int, calibration: bool) -> torchmetrics.MetricCollection:
    """top-1 / top-5 accuracy (micro, as in papers), and ECE for evaluation splits."""
    metrics = {
        "top1": MulticlassAccuracy(num_classes, top_k=1, average="micro"),
        "top5": MulticlassAccuracy(num_classes, top_k=min(5, num_classes), average="micro"),
    }
    if calibration:
        metrics["ece"] = MulticlassCalibrationError(num_classes, n_bins=15, norm="l1")
    return torchmetrics.MetricCollection(metrics)


class ClassificationScores(torch.nn.Module):
    """The evaluation of a split: top-1 / top-5 (micro), ECE and the mean cross-entropy per image, one forward per
    batch. The same object scores validation and testing (``SwinClassifier``) and a moved model (transfer,
    ``swin_lit.tasks.classification``), so their numbers come from one code."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.metrics = split_metrics(num_classes, calibration=True)
        self.loss = torchmetrics.MeanMetric()

    def update(self, model, batch) -> None:
        x, y = batch
        logits = model(x)
        self.loss.update(F.cross_entropy(logits, y), weight=y.shape[0])  # weighted: the split's mean per image
        self.metrics.update(logits, y)

    def compute(self) -> dict[str, torch.Tensor]:
        return {**self.metrics.compute(), "loss": self.loss.compute()}

    def reset(self) -> None:
        self.metrics.reset()
        self.loss.reset()


class RunModule(pl.LightningModule):
    """The parts of a training module that do not depend on the task; subclasses build ``self.model`` (with a
    ``no_weight_decay()`` of parameter names) and the metrics, and set ``HP_METRICS``."""

    HP_METRICS: dict[str, float] = {}
    clock = staticmethod(time.perf_counter)  # the training and test clocks; tests drive it with a fake

    def __init__(self, cfg: RunConfig) -> None:
        super().__init__()
        self.save_hyperparameters({"config": cfg.to_dict()})  # plain JSON types only (weights_only loads)
        self.cfg = cfg
        self.history: list[dict] = []  # per-epoch curve, kept in checkpoints
        # Training time (for images/s): the training loop only (not validation), summed over the run's processes
        # through the checkpoints; a segment runs from an epoch's start (or a resume) to its validation.
        self.train_seconds = 0.0
        self.train_images = 0
        self._segment_start: float | None = None
        self.test_seconds, self.test_images = 0.0, 0
        self.evaluated: dict[str, dict] = {}  # split -> its scores at its last evaluation (``_log_scores``)

    # -- optimisation ----------------------------------------------------------------------------
    def configure_optimizers(self):
        o = self.cfg.effective_optim()  # under optim.lr_scale: linear, the rates scaled to the total batch
        skip = self.model.no_weight_decay()
        decay, no_decay = [], []
        for name, p in self.model.named_parameters():
            if p.requires_grad:
                (no_decay if name in skip else decay).append(p)
        groups = [{"params": decay, "weight_decay": o.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
        optimizer = torch.optim.AdamW(groups, lr=o.lr, betas=o.betas, eps=o.eps)
        # optimizer steps (Lightning counts max_steps, or epochs x ceil(batches / accumulation), in them)
        total = max(int(self.trainer.estimated_stepping_batches), 1)
        if self.cfg.trainer.max_steps:  # the run is max_steps long; an epoch is ceil(batches / accumulation) steps
            per_epoch = schedule.steps_per_epoch(self.trainer.num_training_batches,
                                                 self.trainer.accumulate_grad_batches) or total
        else:
            per_epoch = max(total // self.trainer.max_epochs, 1)
        warmup = schedule.warmup_steps(o, per_epoch, total)

        def factor(step: int) -> float:  # multiplies o.lr
            return schedule.lr_at(o, step, warmup, total) / o.lr

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        # interval "step": Lightning steps the scheduler after each optimizer step, not each accumulated batch
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def configure_gradient_clipping(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None):
        if self.cfg.optim.grad_clip > 0:
            self.clip_gradients(optimizer, gradient_clip_val=self.cfg.optim.grad_clip, gradient_clip_algorithm="norm")

    # -- the training clock ----------------------------------------------------------------------
    def _open_segment(self) -> None:
        if self._segment_start is None:
            self._segment_start = self.clock()

    def _close_segment(self) -> None:
        if self._segment_start is not None:
            self.train_seconds += self.clock() - self._segment_start
            self._segment_start = None

    def on_train_start(self):
        if self.logger is not None:
            self.logger.log_hyperparams(flat_hparams(self.cfg.to_dict()), self.HP_METRICS)
        # Resumed mid-epoch: the loader starts the epoch's (seed, epoch) order again, so skip what was done.
        done = self.trainer.fit_loop.epoch_loop.batch_progress.current.processed
        sampler = getattr(self.trainer.train_dataloader, "sampler", None)
        if 0 < done < self.trainer.num_training_batches and hasattr(sampler, "skip_batches"):
            sampler.skip_batches(done, self.trainer.train_dataloader.batch_size)
        if 0 < done < self.trainer.num_training_batches:
            self._open_segment()  # Lightning calls no on_train_epoch_start for the epoch it resumes into

    def on_train_epoch_start(self):
        self._open_segment()

    def on_train_batch_end(self, outputs, batch, batch_idx):
        # trainer.max_steps reached inside an epoch: a stop request (not Lightning's own max_steps check) makes the
        # loop validate the epoch's trained part, so the last steps count in the best checkpoint and the curve
        if 0 < self.trainer.max_steps <= self.trainer.global_step:
            self.trainer.should_stop = True

    def on_validation_start(self):
        if self.trainer.state.fn == "fit" and not self.trainer.sanity_checking:
            self._close_segment()  # validation is not training time

    def on_train_epoch_end(self):
        """Stop the clock, log the epoch's mean training loss (``self.train_loss``); a non-finite one fails."""
        self._close_segment()
        loss = self.train_loss.compute()
        self.train_loss.reset()
        if not torch.isfinite(loss):
            raise FloatingPointError(f"non-finite training loss ({loss.item()}) in epoch {self.current_epoch}")
        self.log("train/loss", loss)

    def on_test_epoch_start(self):
        self._test_start = self.clock()
        self.test_images = 0

    def _record_test_time(self) -> None:
        self.test_seconds = self.clock() - self._test_start  # the test loop alone (images/s in result.json)

    def _log_scores(self, split: str, scores) -> dict:
        """Compute a split's scores (the task's evaluator), log each scalar as ``<split>/<name>``, keep them as
        plain numbers in ``self.evaluated[split]`` (what the result record's split is made of), reset."""
        values = scores.compute()
        for name, value in values.items():
            if value.ndim == 0:
                self.log(f"{split}/{name}", value)
        scores.reset()
        self.evaluated[split] = plain(values)
        return self.evaluated[split]

    # -- checkpointed state ----------------------------------------------------------------------
    def extra_state(self) -> dict:
        """Task-specific state kept in checkpoints (restored by ``load_extra_state``)."""
        return {}

    def load_extra_state(self, state: dict) -> None:
        pass

    def on_save_checkpoint(self, checkpoint):
        # the RNG states too, so that a run resumed mid-epoch continues exactly as if never stopped
        open_segment = self.clock() - self._segment_start if self._segment_start is not None else 0.0
        checkpoint["swin_lit"] = {"history": self.history, "train_seconds": self.train_seconds + open_segment,
                                  "train_images": self.train_images, "torch_rng": torch.get_rng_state(),
                                  **self.extra_state()}

    def on_load_checkpoint(self, checkpoint):
        state = checkpoint.get("swin_lit", {})
        self.history = state.get("history", [])
        self.train_seconds = state.get("train_seconds", 0.0)  # up to the checkpoint, as are train_images
        self.train_images = state.get("train_images", 0)
        self._segment_start = None
        self.load_extra_state(state)
        if "torch_rng" in state and self.trainer.state.fn == "fit":
            torch.set_rng_state(state["torch_rng"])


class SwinClassifier(RunModule):
    HP_METRICS = HP_METRICS

    def __init__(self, cfg: RunConfig) -> None:
        super().__init__(cfg)
        self.model = SwinTransformer(cfg.model)
        n = cfg.model.num_classes
        self.train_metrics = split_metrics(n, calibration=False).clone(prefix="train/")
        task = implementation(cfg.task)  # its evaluator: ClassificationScores, or a task's own
        self.val_scores, self.test_scores = task.scores(cfg), task.scores(cfg)
        self.train_loss = torchmetrics.MeanMetric()
        for metric in (self.train_metrics, self.train_loss):  # in checkpoints: a resumed epoch's mean is whole
            metric.persistent(True)
        self.aug_gen = torch.Generator().manual_seed(cfg.seed + 1)
        from swin_lit.data.datamodule import SwinDataModule

        self.batch_augments = SwinDataModule.step_augments(cfg.data)  # the data says which the step applies

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    # -- steps -----------------------------------------------------------------------------------
    def training_step(self, batch, batch_idx):
        x, y = batch
        o = self.cfg.optim
        x = augment.batch_augment(x, self.batch_augments, o, self.aug_gen)
        targets = augment.soft_targets(y, self.cfg.model.num_classes, o.label_smoothing)
        x, targets = augment.mix(x, targets, o, self.aug_gen)
        logits = self.model(x)
        loss = torch.sum(-targets * F.log_softmax(logits, dim=-1), dim=-1).mean()
        self.train_loss.update(loss.detach())
        self.train_metrics.update(logits.detach(), y)
        self.log("train/loss_step", loss.detach(), on_step=True, on_epoch=False)
        self.train_images += x.shape[0]
        return loss

    def validation_step(self, batch, batch_idx):
        self.val_scores.update(self.model, batch)

    def test_step(self, batch, batch_idx):
        self.test_scores.update(self.model, batch)
        self.test_images += batch[0].shape[0]

    # -- epoch ends: log the metrics, keep the curve -----------------------------------------------
    def on_train_epoch_end(self):
        super().on_train_epoch_end()
        self.log_dict(self.train_metrics)

    def on_validation_epoch_end(self):
        if self.trainer.sanity_checking:
            self.val_scores.reset()
            return
        val = self._log_scores("val", self.val_scores)
        if self.trainer.state.fn == "fit":  # the learning curve (a later validate() is not an epoch)
            train_loss = self.train_loss.compute().item() if self.train_loss.update_called else float("nan")
            self.history = [h for h in self.history if h["epoch"] != self.current_epoch]
            self.history.append({"epoch": self.current_epoch, "train_loss": train_loss, "val_loss": val["loss"],
                                 "val_top1": 100.0 * val["top1"], "val_top5": 100.0 * val["top5"],
                                 "val_ece": val["ece"]})
            self.log("hp/val_top1", val["top1"])

    def on_test_epoch_end(self):
        self._record_test_time()
        test = self._log_scores("test", self.test_scores)
        self.log("hp/test_top1", test["top1"])

    def extra_state(self) -> dict:
        return {"aug_gen": self.aug_gen.get_state()}

    def load_extra_state(self, state: dict) -> None:
        if "aug_gen" in state:
            self.aug_gen.set_state(state["aug_gen"])


class HistoryFile(pl.Callback):
    """Writes the learning curve so far (``SwinClassifier.history``) to a JSON file after each validation of
    a fit, atomically, on rank 0: a process watching the run (the ablation worker) reads it."""

    def __init__(self, path) -> None:
        self.path = path

    def on_validation_end(self, trainer, pl_module):
        if trainer.state.fn == "fit" and not trainer.sanity_checking and trainer.is_global_zero:
            from swin_lit.record import write_json_atomic

            write_json_atomic(self.path, {"history": pl_module.history})


class MidEpochCheckpoint(ModelCheckpoint):
    """Step checkpoints inside an epoch, skipping the epoch's last batch and the run's last step (``max_steps``):
    their validation has not run yet."""

    def on_train_batch_end(self, trainer, *args, **kwargs):
        last_step = 0 < trainer.max_steps <= trainer.global_step
        if not trainer.fit_loop.epoch_loop.batch_progress.is_last_batch and not last_step:
            super().on_train_batch_end(trainer, *args, **kwargs)


def flat_hparams(d: dict, prefix: str = "") -> dict:
    """{"model": {"shift": "cyclic"}} -> {"model.shift": "cyclic"}; lists become strings (TensorBoard)."""
    out = {}
    for key, value in d.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flat_hparams(value, f"{name}."))
        elif isinstance(value, (list, tuple)):
            out[name] = str(list(value))
        else:
            out[name] = "null" if value is None else value
    return out
