"""The registry of dense (decode) head kinds: ``head.kind`` names one ``HeadKind`` subclass (imports without torch).

A head kind is one class, registered with ``@HEADS.register("<name>")`` (``swin_lit.models.registry``). It owns:

- ``options``: the ``HeadConfig`` options it reads, each with the recipe's value (what an unset option becomes);
  ``HeadConfig`` rejects the options no kind of its ``kind`` reads, naming the kinds that do;
- ``validate(cfg)``: the checks of its options' values (ConfigError naming the key);
- ``build(cfg, in_channels, num_classes)``: the ``nn.Module`` (torch is imported there, not before): the
  feature pyramid ``[(B, C_i, H_i, W_i), ...]``, finest first, -> logits (B, K, H_0, W_0);
- ``parameter_count`` and ``flops_breakdown`` (MACs per image by part, for maps of ``sizes``): the analytic
  counts ``head_flops`` and ``swin-lit models`` read, with the conventions of ``swin_lit.models.head_flops``;
- ``description``: one line (listings, pictures).

The modules themselves are plain torch in ``swin_lit.models.heads``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from swin_lit.models.head_flops import Size, conv_bn_params, conv_params, pixels
from swin_lit.models.registry import HEADS
from swin_lit.typed import fail


class HeadKind:
    """Base class of a dense head kind (module docstring)."""

    name: ClassVar[str] = ""  # set by the registry
    description: ClassVar[str] = ""
    options: ClassVar[dict[str, object]] = {}  # HeadConfig option -> the recipe's value

    @classmethod
    def validate(cls, cfg) -> None:
        """Check the values of the options this kind reads (``cfg`` has them resolved); widths must be >= 1."""
        for name, default in cls.options.items():
            value = getattr(cfg, name)
            if isinstance(default, int) and value < 1:
                fail(name, f"must be >= 1, got {value}")

    @classmethod
    def build(cls, cfg, in_channels: Sequence[int], num_classes: int):
        """The head module for maps of ``in_channels`` (finest first)."""
        raise NotImplementedError

    @classmethod
    def parameter_count(cls, cfg, in_channels: Sequence[int], num_classes: int) -> int:
        """Trainable parameters of ``build(cfg, in_channels, num_classes)``, without building it."""
        raise NotImplementedError

    @classmethod
    def flops_breakdown(cls, cfg, in_channels: Sequence[int], num_classes: int,
                        sizes: Sequence[Size]) -> dict[str, int]:
        """MACs per image of each part of the head for feature maps of ``sizes`` (finest first)."""
        raise NotImplementedError


@HEADS.register("upernet")
class UperNet(HeadKind):
    """mmseg's UPerHead as in the Swin ADE20K recipe: pyramid pooling on the last map, 1x1 laterals, top-down
    path, 3x3 FPN convs, all levels fused by a 3x3 conv, a 1x1 classifier. ``channels``: every conv's width."""

    description = "UPerNet (Swin ADE20K recipe): PPM + FPN, levels fused"
    options = {"channels": 512, "pool_scales": (1, 2, 3, 6)}

    @classmethod
    def validate(cls, cfg) -> None:
        super().validate(cfg)
        if not cfg.pool_scales or any(s < 1 for s in cfg.pool_scales):
            fail("pool_scales", f"must be a non-empty list of positive bin counts, got {list(cfg.pool_scales)}")
        if len(set(cfg.pool_scales)) != len(cfg.pool_scales):
            fail("pool_scales", f"has repeated bins: {list(cfg.pool_scales)}")

    @classmethod
    def build(cls, cfg, in_channels, num_classes):
        from swin_lit.models.heads import UPerHead

        return UPerHead(in_channels, num_classes, cfg.channels, cfg.pool_scales, cfg.dropout)

    @classmethod
    def parameter_count(cls, cfg, in_channels, num_classes):
        c, L, s = cfg.channels, len(in_channels), len(cfg.pool_scales)
        ppm = s * conv_bn_params(in_channels[-1], c, 1) + conv_bn_params(in_channels[-1] + s * c, c, 3)
        fpn = sum(conv_bn_params(ci, c, 1) for ci in in_channels[:-1]) + (L - 1) * conv_bn_params(c, c, 3)
        return ppm + fpn + conv_bn_params(L * c, c, 3) + conv_params(c, num_classes, 1)

    @classmethod
    def flops_breakdown(cls, cfg, in_channels, num_classes, sizes):
        c, L, s, last = cfg.channels, len(in_channels), len(cfg.pool_scales), in_channels[-1]
        return {
            "ppm": sum(b * b * last * c for b in cfg.pool_scales) + pixels(sizes[-1]) * (last + s * c) * c * 9,
            "laterals": sum(pixels(hw) * ci * c for hw, ci in zip(sizes[:-1], in_channels[:-1])),
            "fpn_convs": sum(pixels(hw) * c * c * 9 for hw in sizes[:-1]),
            "fuse": pixels(sizes[0]) * L * c * c * 9,
            "classifier": pixels(sizes[0]) * c * num_classes,
        }


@HEADS.register("fpn")
class SemanticFPN(HeadKind):
    """Semantic FPN (Kirillov et al.; mmseg's FPN neck + FPNHead): FPN at ``channels``, then per level a tower
    of 3x3 conv + 2x upsample steps at ``scale_channels`` down to the first level, summed, a 1x1 classifier."""

    description = "semantic FPN: FPN neck, upsampling towers summed"
    options = {"channels": 256, "scale_channels": 128}

    @classmethod
    def build(cls, cfg, in_channels, num_classes):
        from swin_lit.models.heads import SemanticFPNHead

        return SemanticFPNHead(in_channels, num_classes, cfg.channels, cfg.scale_channels, cfg.dropout)

    @classmethod
    def parameter_count(cls, cfg, in_channels, num_classes):
        c, sc, L = cfg.channels, cfg.scale_channels, len(in_channels)
        neck = sum(conv_params(ci, c, 1) for ci in in_channels) + L * conv_params(c, c, 3)
        towers = sum(conv_bn_params(c, sc, 3) + max(i - 1, 0) * conv_bn_params(sc, sc, 3) for i in range(L))
        return neck + towers + conv_params(sc, num_classes, 1)

    @classmethod
    def flops_breakdown(cls, cfg, in_channels, num_classes, sizes):
        c, sc = cfg.channels, cfg.scale_channels
        towers = 0
        for i, (h, w) in enumerate(sizes):  # level i: i steps of conv then 2x upsample (level 0: one conv)
            for k in range(max(i, 1)):
                towers += (h * 2**k) * (w * 2**k) * (c if k == 0 else sc) * sc * 9
        return {
            "laterals": sum(pixels(hw) * ci * c for hw, ci in zip(sizes, in_channels)),
            "fpn_convs": sum(pixels(hw) * c * c * 9 for hw in sizes),
            "towers": towers,
            "classifier": pixels(sizes[0]) * sc * num_classes,
        }


@HEADS.register("linear")
class LinearProbe(HeadKind):
    """A linear probe: every level resized to the first level's resolution, concatenated, BatchNorm, a 1x1
    classifier. No spatial mixing: a pixel's class is read from its own tokens. No widths to set."""

    description = "linear probe: levels upsampled, concatenated, 1x1 classifier"

    @classmethod
    def build(cls, cfg, in_channels, num_classes):
        from swin_lit.models.heads import LinearHead

        return LinearHead(in_channels, num_classes, cfg.dropout)

    @classmethod
    def parameter_count(cls, cfg, in_channels, num_classes):
        return 2 * sum(in_channels) + conv_params(sum(in_channels), num_classes, 1)  # BatchNorm + classifier

    @classmethod
    def flops_breakdown(cls, cfg, in_channels, num_classes, sizes):
        return {"classifier": pixels(sizes[0]) * sum(in_channels) * num_classes}
