"""Evaluate and fine-tune a trained run at larger images and windows (the Swin V2 Table 1 experiment).

One transfer cell = (trained run, target image size, target window, method):
  1. the trained model is moved to the target with ``swin_lit.models.transfer`` (bicubic / extrapolate /
     renormalize) and evaluated on the test split drawn at the target size ("without fine-tuning");
  2. with ``finetune_epochs > 0``, a regular run at the target size starts from the trained weights
     (``init_from``) and trains that many epochs; its test result is "with fine-tuning". Being a regular
     run, it has its own run folder and resumes after a stop.
The embedded dataset is re-rendered at the target size (same scenes, more pixels); real images are
resized bicubically.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from swin_lit.config import RunConfig
from swin_lit.models.config import SwinConfig
from swin_lit.models.transfer import methods_for, transfer_config
from swin_lit.typed import ConfigError


def parse_target(text: str) -> tuple[int, int]:
    """``"64:8"`` -> (64, 8): image size and window size."""
    try:
        img, window = (int(v) for v in text.split(":"))
    except ValueError:
        raise ConfigError(f"--to {text!r}: expected IMG:WINDOW, e.g. 64:8") from None
    return img, window


def check_target(cfg: SwinConfig, img_size: int, window_size: int, method: str) -> SwinConfig:
    """The moved model's config; ConfigError (naming the target) if the model cannot take it: an image
    the patch does not divide, a window that does not tile a stage map larger than it, a method that
    does not fit the relative-bias kind."""
    where = f"target {img_size}:{window_size}"
    try:
        moved = transfer_config(cfg, img_size, window_size, method)
    except ConfigError as err:
        raise ConfigError(f"{where}: {err}") from None
    for i, g in enumerate(moved.stages()):
        if g.padded != g.resolution:
            H, W = g.resolution
            raise ConfigError(f"{where}: window {window_size} does not tile stage {i} ({H}x{W} tokens); pick a "
                              "window dividing it or scale the image with the window")
    return moved


def plan(cfg: RunConfig, targets: list[tuple[int, int]], methods: list[str] | None) -> list[tuple[int, int, str]]:
    """All (img, window, method) cells, validated before any work."""
    allowed = methods_for(cfg.model.relative)
    methods = list(methods or allowed)
    cells = []
    for img, window in targets:
        for method in methods:
            check_target(cfg.model, img, window, method)
            cells.append((img, window, method))
    return cells


def finetune_config(cfg: RunConfig, run_dir: str | os.PathLike, moved: SwinConfig, epochs: int,
                    lr: float) -> RunConfig:
    """A run at the target size that starts from the trained weights (official fine-tune spirit: small
    constant-ish lr, tiny weight decay, no warmup)."""
    optim = dataclasses.replace(cfg.optim, lr=lr, min_lr=lr * 0.1, warmup_epochs=0.0, weight_decay=1e-8)
    trainer = dataclasses.replace(cfg.trainer, max_epochs=epochs)
    return dataclasses.replace(cfg, name=f"{cfg.name}-ft", model=moved, optim=optim, trainer=trainer,
                               init_from=str(Path(run_dir).resolve()))


def evaluate(model, loader) -> dict:
    """top-1 / top-5 (%) and loss of ``model`` on a loader, no Lightning."""
    import torch
    import torch.nn.functional as F

    model.eval()
    correct1 = correct5 = total = 0
    loss = 0.0
    with torch.inference_mode():
        for x, y in loader:
            logits = model(x)
            loss += F.cross_entropy(logits, y, reduction="sum").item()
            top = logits.topk(min(5, logits.shape[1]), dim=1).indices
            correct1 += (top[:, 0] == y).sum().item()
            correct5 += (top == y[:, None]).any(dim=1).sum().item()
            total += y.numel()
    return {"top1": 100.0 * correct1 / total, "top5": 100.0 * correct5 / total, "loss": loss / total}


def transfer_cell(run_dir: str | os.PathLike, img_size: int, window_size: int, method: str,
                  finetune_epochs: int = 0, finetune_lr: float = 2e-4, out: str | os.PathLike | None = None) -> dict:
    """Run one transfer cell; returns the transfer record (see ``swin_lit.record``)."""
    import torch

    from swin_lit.data.datamodule import SwinDataModule
    from swin_lit.models.transfer import transfer
    from swin_lit.train.runs import load_run_config, load_trained_model, train

    cfg = load_run_config(run_dir)
    moved_cfg = check_target(cfg.model, img_size, window_size, method)
    model = load_trained_model(run_dir)
    torch.manual_seed(cfg.seed)
    dm = SwinDataModule(cfg.data, img_size=img_size, in_chans=cfg.model.in_chans, seed=cfg.seed)
    dm.check()
    dm.setup("test")
    moved = transfer(model, img_size, window_size, method)
    record = {**evaluate(moved, dm.test_dataloader()), "top1_ft": None, "top5_ft": None, "ft_run_dir": None}
    if finetune_epochs > 0:
        ft_cfg = finetune_config(cfg, run_dir, moved_cfg, finetune_epochs, finetune_lr)
        ft_dir, ft = train(ft_cfg, out if out is not None else Path(run_dir).parent, progress=False)
        record.update(top1_ft=ft["test"]["top1"], top5_ft=ft["test"]["top5"], ft_run_dir=str(ft_dir))
    return record
