"""``task: classification``: a ``SwinTransformer`` trained by ``SwinClassifier`` (``swin_lit.train.module``) on
``SwinDataModule`` data; scored by top-1 / top-5 (micro), ECE and the mean cross-entropy per image
(``ClassificationScores``, the one evaluation of validation, testing and transfer)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from swin_lit.domain.task import CLASSIFICATION
from swin_lit.tasks import Implementation
from swin_lit.typed import ConfigError, fail

if TYPE_CHECKING:
    from swin_lit.config import RunConfig
    from swin_lit.data.config import DataConfig
    from swin_lit.models.config import SwinConfig


class Classification(Implementation):
    def check_config(self, cfg: RunConfig) -> None:
        if not isinstance(cfg.model.img_size, int):  # the classification data pipeline draws square images
            fail("model.img_size", f"a training run takes square images (one integer), got {list(cfg.model.img_size)}")
        if cfg.head is not None:
            fail("head", f"is a decode head; task {self.name!r} has none: remove it, or set task: segmentation")
        super().check_config(cfg)
        if cfg.data.augment is not None:
            fail("data.augment", "is segmentation augmentation; classification uses optim.randaugment_* / mixup")
        if cfg.trainer.inference != "whole":
            fail("trainer.inference", f"'slide' is segmentation inference; remove it for task {self.name!r}")

    def class_names(self, data: DataConfig) -> tuple[str, ...]:
        from swin_lit.data.classes import class_names

        return class_names(data)

    # -- training ---------------------------------------------------------------------------------
    def module(self, cfg: RunConfig):
        from swin_lit.train.module import SwinClassifier

        return SwinClassifier(cfg)

    def build_datamodule(self, cfg: RunConfig):
        from swin_lit.data.datamodule import SwinDataModule

        return SwinDataModule(cfg.data, img_size=cfg.model.img_size, in_chans=cfg.model.in_chans, seed=cfg.seed,
                              optim=cfg.optim)  # a stream applies RandAugment and erasing per sample

    def build_model(self, cfg: RunConfig):
        from swin_lit.models import SwinTransformer

        return SwinTransformer(cfg.model)

    def work(self, cfg: RunConfig) -> int:
        from swin_lit.models.flops import count_flops

        return count_flops(cfg.model)

    def record_sizes(self, cfg: RunConfig, module, dm) -> dict:
        return {"params": sum(p.numel() for p in module.model.parameters()), "flops": self.work(cfg)}

    def scores(self, cfg: RunConfig):
        from swin_lit.train.module import ClassificationScores

        return ClassificationScores(cfg.model.num_classes)

    # -- transfer ---------------------------------------------------------------------------------
    def check_target(self, moved: SwinConfig, img_size, window_size: int, where: str) -> None:
        """Square images, and windows that tile every stage map larger than them."""
        if not isinstance(img_size, int):
            raise ConfigError(f"{where}: a classification run moves to square images (IMG:WINDOW, e.g. 64:8)")
        for i, g in enumerate(moved.stages()):
            if g.padded != g.resolution:
                H, W = g.resolution
                raise ConfigError(f"{where}: window {window_size} does not tile stage {i} ({H}x{W} tokens); pick "
                                  "a window dividing it or scale the image with the window")

    def move(self, model, img_size, window_size: int, method: str):
        from swin_lit.models.transfer import transfer

        return transfer(model, img_size, window_size, method)


TASK = Classification(CLASSIFICATION)
