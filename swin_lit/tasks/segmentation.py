"""``task: segmentation``: a ``SwinSegmenter`` (the model as the backbone of ``head``) trained by
``SwinSegmentation`` (``swin_lit.train.seg_module``) on ``SegDataModule`` data; scored by mIoU, per-class IoU,
aAcc and the mean pixel cross-entropy (``SegmentationScores``, the one evaluation of validation, testing and
transfer). Its records add the backbone / head split of parameters and FLOPs, the test split's per-class IoU and
the class names."""

from __future__ import annotations

from typing import TYPE_CHECKING

from swin_lit.data.sources import embedded
from swin_lit.domain.task import SEGMENTATION
from swin_lit.tasks import Implementation
from swin_lit.typed import fail

if TYPE_CHECKING:
    from swin_lit.config import RunConfig
    from swin_lit.data.config import DataConfig


class Segmentation(Implementation):
    def check_config(self, cfg: RunConfig) -> None:
        from swin_lit.models.head_config import HeadConfig

        if cfg.head is None:
            object.__setattr__(cfg, "head", HeadConfig())  # the resolved config shows the head that ran
        super().check_config(cfg)
        if cfg.model.in_chans != 3:
            fail("model.in_chans", f"segmentation data is RGB (3 channels), got {cfg.model.in_chans}")
        if cfg.model.out_indices:
            fail("model.out_indices", "is set by the segmentation model itself (every stage); remove it")
        size = tuple(cfg.model.image_size)
        if cfg.data.augment is not None and tuple(cfg.data.augment.crop) != size:
            fail("data.augment.crop", f"must be the model's img_size {list(size)} (the training crop is what the "
                                      f"model is built for), got {list(cfg.data.augment.crop)}")
        if embedded(cfg.data.source) and size[0] != size[1]:
            fail("model.img_size", f"the embedded scenes are square; got {list(size)}")
        if embedded(cfg.data.source) and cfg.data.augment is not None:
            fail("data.augment", "the embedded tasks are rendered at the model's size, their labels are relations "
                                 f"and resized crops break them; remove data.augment for source {cfg.data.source!r}")
        if any(s % cfg.model.patch_size for s in size):
            fail("model.img_size", f"{list(size)} must be a multiple of patch_size {cfg.model.patch_size}")
        o = cfg.optim
        if o.mixup_alpha or o.cutmix_alpha or o.randaugment_ops or o.random_erasing:
            fail("optim", "mixup, cutmix, randaugment and random_erasing are classification augmentations; "
                          "segmentation uses data.augment")

    def class_names(self, data: DataConfig) -> tuple[str, ...]:
        from swin_lit.data.classes import class_names

        return class_names(data, dense=True)

    # -- training ---------------------------------------------------------------------------------
    def module(self, cfg: RunConfig):
        from swin_lit.train.seg_module import SwinSegmentation

        return SwinSegmentation(cfg)

    def build_datamodule(self, cfg: RunConfig):
        from swin_lit.data.seg_datamodule import SegDataModule

        return SegDataModule(cfg.data, img_size=cfg.model.image_size, seed=cfg.seed)

    def build_model(self, cfg: RunConfig):
        from swin_lit.models.segmenter import SwinSegmenter

        return SwinSegmenter(cfg.model, cfg.head, cfg.model.num_classes)

    def work(self, cfg: RunConfig) -> int:
        from swin_lit.models.segmenter import segmenter_flops

        return segmenter_flops(cfg.model, cfg.head, cfg.model.num_classes, tuple(cfg.model.image_size))["total"]

    def record_sizes(self, cfg: RunConfig, module, dm) -> dict:
        """Parameters of backbone and decode head (the auxiliary head, training only, apart), inference FLOPs of
        both at the test images' size (the crop size where they differ in size, or where a stream, which does not
        open its images to learn their sizes, serves them), and the class names."""
        from swin_lit.models.segmenter import segmenter_flops

        model = module.model
        params = {"backbone": sum(p.numel() for p in model.backbone.parameters()),
                  "head": sum(p.numel() for p in model.decode_head.parameters()),
                  "aux_head": sum(p.numel() for p in model.aux_head.parameters()) if model.aux_head is not None else 0}
        size = dm.splits["test"].size or tuple(cfg.model.image_size)
        flops = segmenter_flops(cfg.model, cfg.head, cfg.model.num_classes, size)
        return {"params": params["backbone"] + params["head"], "params_backbone": params["backbone"],
                "params_head": params["head"], "params_aux_head": params["aux_head"], "flops": flops["total"],
                "flops_backbone": flops["backbone"], "flops_head": flops["head"], "flops_size": list(size),
                "class_names": list(dm.class_names)}

    def scores(self, cfg: RunConfig):
        from swin_lit.train.seg_module import SegmentationScores

        return SegmentationScores(cfg.model.num_classes, cfg.trainer.inference, cfg.trainer.slide_stride)

    def record_split(self, scores: dict, split: str) -> dict:
        """mIoU and aAcc in percent, the loss; the test split adds the per-class IoU (percent, NaN: class absent)."""
        out = super().record_split(scores, split)
        if split == "test":
            out["iou"] = [100.0 * v for v in scores["iou"]]
        return out

    # -- transfer ---------------------------------------------------------------------------------
    def move(self, model, img_size, window_size: int, method: str):
        from swin_lit.models.transfer import transfer_segmenter

        return transfer_segmenter(model, img_size, window_size, method)


TASK = Segmentation(SEGMENTATION)
