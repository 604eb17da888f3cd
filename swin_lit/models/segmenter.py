"""``SwinSegmenter``: a Swin backbone's feature pyramid into a decode head, logits at the input's size.

The backbone is the classification model of the same ``SwinConfig`` (every design switch applies) built without
a classifier (``num_classes`` 0) and with an output norm per stage (``out_indices`` = every stage, the official
dense backbones' ``norm0`` .. ``norm3``); the classifier's final norm is replaced by those, as in the official
segmentation backbone. ``forward_intermediates`` gives maps at strides patch x 1, 2, 4, 8; the head
(``swin_lit.models.heads``: UPerNet or semantic FPN) turns them into logits at stride patch, upsampled
bilinearly to the input. With ``head.aux_weight`` > 0 the training forward also returns the auxiliary FCN head's
logits (the recipe's extra loss on stage 3); inference never runs it.

Any input size that the patch size divides runs (the backbone pads to its windows and caches a layout per
size); ``swin_lit.models.seg_inference`` pads whole images to the patch size and cuts the padding off again.

The backbone's geometry is the config's: by default ``pad_keys: mask`` and ``small_maps: clip`` (the
classification code's rule, which every committed dense study ran with); ``pad_keys: attend`` and
``small_maps: pad`` give the official segmentation backbone's (``official.build_backbone``). Where every stage
map is larger than the window and tiled by it the two agree. Why this default: docs/dense_backbone.md.
"""

from __future__ import annotations

from dataclasses import replace

import torch
import torch.nn as nn

from swin_lit.models.config import SwinConfig
from swin_lit.models.head_config import HeadConfig, aux_level
from swin_lit.models.head_flops import aux_head_params, head_flops, head_params, pyramid_sizes
from swin_lit.models.heads import build_aux_head, build_head, resize
from swin_lit.models.swin import SwinTransformer


def backbone_config(cfg: SwinConfig) -> SwinConfig:
    """The dense backbone of a model config: no classifier, an output norm on every stage."""
    return replace(cfg, num_classes=0, out_indices=tuple(range(len(cfg.depths))))


def pyramid_channels(cfg: SwinConfig) -> list[int]:
    """Channels of the backbone's feature maps, finest first: embed_dim x 1, 2, 4, 8."""
    return [g.dim for g in cfg.stages()]


class SwinSegmenter(nn.Module):
    def __init__(self, cfg: SwinConfig, head: HeadConfig, num_classes: int) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.cfg, self.head_cfg, self.num_classes = backbone_config(cfg), head, num_classes
        self.backbone = SwinTransformer(self.cfg)
        self.backbone.norm = nn.Identity()  # the stage norms norm0..norm3 replace the classifier's final norm
        channels = pyramid_channels(self.cfg)
        self.levels = tuple(range(len(channels)))
        self.decode_head = build_head(head, channels, num_classes)
        self.aux_head = build_aux_head(head, channels, num_classes)

    @property
    def stride(self) -> int:
        """What an input side must be a multiple of (the patch size)."""
        return self.cfg.patch_size

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """(B, C_in, H, W) -> [(B, C_i, H / (patch 2^i), W / (patch 2^i)) for every stage]."""
        return self.backbone.forward_intermediates(x, self.levels)

    def forward(self, x: torch.Tensor, aux: bool = False):
        """(B, C_in, H, W) -> logits (B, K, H, W); with ``aux`` (training with an auxiliary head) also its logits
        (B, K, H, W), or None when the config has none."""
        size = x.shape[-2:]
        features = self.features(x)
        logits = resize(self.decode_head(features), size)  # (B, K, H / patch, W / patch) -> (B, K, H, W)
        if not aux:
            return logits
        extra = None
        if self.aux_head is not None:
            extra = resize(self.aux_head(features[aux_level(features)]), size)
        return logits, extra

    def no_weight_decay(self) -> set[str]:
        """The backbone's official no-decay names (norms, biases, position parameters, logit scales), prefixed;
        the heads' biases and BatchNorm parameters (every 1-d parameter) as well, as mmseg's recipe."""
        names = {f"backbone.{n}" for n in self.backbone.no_weight_decay()}
        for name, p in self.named_parameters():
            if not name.startswith("backbone.") and p.ndim <= 1:
                names.add(name)
        return names


def segmenter_params(cfg: SwinConfig, head: HeadConfig, num_classes: int) -> dict[str, int]:
    """Parameter counts (backbone, head = decode head, aux_head, total), from the configs alone."""
    from swin_lit.models.flops import count_params

    channels = pyramid_channels(backbone_config(cfg))
    out = {"backbone": count_params(backbone_config(cfg)) - cfg.embed_dim * 2 ** (len(cfg.depths) - 1) * 2,
           "head": head_params(head, channels, num_classes),
           "aux_head": aux_head_params(head, channels, num_classes)}
    out["total"] = sum(out.values())
    return out


def segmenter_flops(cfg: SwinConfig, head: HeadConfig, num_classes: int, size: tuple[int, int]) -> dict[str, int]:
    """Inference MACs at an input (H, W) (papers' "FLOPs"): backbone and decode head (the auxiliary head runs in
    training only)."""
    from swin_lit.models.flops import count_flops

    bcfg = replace(backbone_config(cfg), img_size=tuple(size))
    channels = pyramid_channels(bcfg)
    sizes = pyramid_sizes(size[0], size[1], cfg.patch_size, len(channels))
    out = {"backbone": count_flops(bcfg), "head": head_flops(head, channels, num_classes, sizes)}
    out["total"] = out["backbone"] + out["head"]
    return out
