"""Evaluate and fine-tune a trained run at larger images and windows (the Swin V2 Table 1 experiment).

One transfer cell = (trained run, target image size, target window, method):
  1. the trained model is moved to the target with ``swin_lit.models.transfer`` (bicubic / extrapolate /
     renormalize) and evaluated on the test split drawn at the target size ("without fine-tuning");
  2. with ``finetune_epochs > 0``, a regular run at the target size starts from the trained weights
     (``init_from``) and trains that many epochs; its test result is "with fine-tuning". Being a regular
     run, it has its own run folder and resumes after a stop.
The embedded dataset is re-rendered at the target size (same scenes, more pixels); real images are
resized bicubically.

Segmentation runs (``task: segmentation``) move the same way, their backbone by the method and their heads as
they are; the target image size is the new crop (``IMG`` or ``HxW``), and the test images are segmented at their
own size (``trainer.inference``), so a target with the run's crop and a larger window asks how the model does
with larger windows at test time. Their records hold mIoU / aAcc instead of top-1 / top-5.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from swin_lit.config import RunConfig
from swin_lit.models.config import SwinConfig
from swin_lit.models.registry import transfer_methods
from swin_lit.models.transfer import transfer_config
from swin_lit.tasks import implementation
from swin_lit.typed import ConfigError


def parse_target(text: str) -> tuple[int | tuple[int, int], int]:
    """``"64:8"`` -> (64, 8): image size and window size; ``"128x160:8"`` -> ((128, 160), 8)."""
    try:
        img, window = text.split(":")
        sides = tuple(int(v) for v in img.lower().split("x"))
        if len(sides) not in (1, 2):
            raise ValueError(img)
        return (sides[0] if len(sides) == 1 else sides), int(window)
    except ValueError:
        raise ConfigError(f"--to {text!r}: expected IMG:WINDOW or HxW:WINDOW, e.g. 64:8 or 128x160:8") from None


def target_name(img_size, window_size: int) -> str:
    img = img_size if isinstance(img_size, int) else "x".join(str(v) for v in img_size)
    return f"{img}:{window_size}"


def check_target(cfg: SwinConfig, img_size, window_size: int, method: str, task: str) -> SwinConfig:
    """The moved model's config; ConfigError (naming the target) if the model cannot take it: an image the patch
    does not divide, a method that does not fit the relative-bias kind, or a target the ``task`` refuses
    (classification: a window that does not tile a stage map larger than it; segmentation pads every image to its
    windows)."""
    where = f"target {target_name(img_size, window_size)}"
    try:
        moved = transfer_config(cfg, img_size, window_size, method)
    except ConfigError as err:
        raise ConfigError(f"{where}: {err}") from None
    implementation(task).check_target(moved, img_size, window_size, where)
    return moved


def plan(cfg: RunConfig, targets: list[tuple[int, int]], methods: list[str] | None) -> list[tuple[int, int, str]]:
    """All (img, window, method) cells, validated before any work."""
    allowed = transfer_methods(cfg.model.relative)
    methods = list(methods or allowed)
    cells = []
    for img, window in targets:
        for method in methods:
            check_target(cfg.model, img, window, method, cfg.task)
            cells.append((img, window, method))
    return cells


def at_target(cfg: RunConfig, moved: SwinConfig) -> RunConfig:
    """``cfg`` with the moved model (and a segmentation run's training crop, which is the model's size)."""
    data = cfg.data
    if data.augment is not None:
        data = dataclasses.replace(data, augment=dataclasses.replace(data.augment, crop=moved.image_size))
    return dataclasses.replace(cfg, model=moved, data=data)


def finetune_config(cfg: RunConfig, run_dir: str | os.PathLike, moved: SwinConfig, epochs: int,
                    lr: float) -> RunConfig:
    """A run at the target size that starts from the trained weights (official fine-tune spirit: small
    constant-ish lr, tiny weight decay, no warmup)."""
    optim = dataclasses.replace(cfg.optim, lr=lr, min_lr=lr * 0.1, warmup_epochs=0.0, warmup_steps=None,
                                weight_decay=1e-8, lr_scale="none")  # lr as given, not scaled by the batch
    trainer = dataclasses.replace(cfg.trainer, max_epochs=epochs, max_steps=0)
    return dataclasses.replace(at_target(cfg, moved), name=f"{cfg.name}-ft", optim=optim, trainer=trainer,
                               init_from=str(Path(run_dir).resolve()))


def transfer_cell(run_dir: str | os.PathLike, img_size, window_size: int, method: str,
                  finetune_epochs: int = 0, finetune_lr: float = 2e-4, out: str | os.PathLike | None = None,
                  compile_cache: str | os.PathLike | None = None) -> dict:
    """Run one transfer cell; returns the transfer record (see ``swin_lit.record``): the task's primary and
    secondary scores (top1 / top5; segmentation: miou / aacc) and loss, the same scores after fine-tuning (``*_ft``,
    None without) and the fine-tune run folder (``compile_cache``: as for ``train``)."""
    import torch

    from swin_lit.train.runs import build_datamodule, load_run_config, load_trained_model, train

    cfg = load_run_config(run_dir)
    task = implementation(cfg.task)
    moved_cfg = check_target(cfg.model, img_size, window_size, method, cfg.task)
    model = load_trained_model(run_dir)
    torch.manual_seed(cfg.seed)
    target = at_target(cfg, moved_cfg)
    dm = build_datamodule(target)  # the test split drawn at the target size
    dm.setup("test")
    moved = task.move(model, img_size, window_size, method)
    # scored as the run's own test split is (the task's evaluator; swin_lit.tasks)
    scores = task.transfer_scores(task.evaluate(moved, dm.test_dataloader(), target))
    names = [n for n in scores if n != "loss"]
    record = {**scores, **{f"{n}_ft": None for n in names}, "ft_run_dir": None}
    if finetune_epochs > 0:
        ft_cfg = finetune_config(cfg, run_dir, moved_cfg, finetune_epochs, finetune_lr)
        ft_dir, ft = train(ft_cfg, out if out is not None else Path(run_dir).parent, progress=False,
                           compile_cache=compile_cache)
        record.update({f"{n}_ft": ft["test"][n] for n in names}, ft_run_dir=str(ft_dir))
    return record
