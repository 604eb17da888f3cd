"""Analytic parameter and FLOP counts of the decode heads (``swin_lit.models.heads``) from their config.

FLOPs are multiply-accumulates per image (the papers' convention; ``torch.utils.flop_counter`` reports twice
these). What is counted: every convolution, as output pixels x in-channels x out-channels x k^2 (the PPM's 1x1
convs run on their s x s pooled maps). Not counted (elementwise, pooling or resampling, each O(pixels x
channels)): BatchNorm, ReLU, conv biases, adaptive average pooling, bilinear / nearest resizing, the top-down and
tower sums, dropout, and the model's final upsampling of the logits to the input size.

Feature-map sizes come from ``pyramid_sizes``: the dense backbone pads an image bottom/right to a multiple of
the patch, and each patch merging ceil-halves the map.
"""

from __future__ import annotations

from collections.abc import Sequence

from swin_lit.models.head_config import HeadConfig, aux_level

Size = tuple[int, int]


def pyramid_sizes(height: int, width: int, patch_size: int, levels: int) -> list[Size]:
    """(h, w) of each backbone level for an input of ``height`` x ``width``: ceil(H/p), then ceil-halved."""
    h, w = -(-height // patch_size), -(-width // patch_size)
    sizes = []
    for _ in range(levels):
        sizes.append((h, w))
        h, w = -(-h // 2), -(-w // 2)
    return sizes


def _conv_bn(cin: int, cout: int, k: int) -> int:
    return cin * cout * k * k + 2 * cout  # conv weight (no bias) + BatchNorm weight and bias


def _conv(cin: int, cout: int, k: int) -> int:
    return cin * cout * k * k + cout  # conv weight + bias


def _pixels(size: Size) -> int:
    return size[0] * size[1]


def head_params(cfg: HeadConfig, in_channels: Sequence[int], num_classes: int) -> int:
    """Trainable parameters of ``build_head(cfg, in_channels, num_classes)``, computed without building it."""
    c, L = cfg.channels, len(in_channels)
    if cfg.kind == "linear":
        return 2 * sum(in_channels) + _conv(sum(in_channels), num_classes, 1)  # BatchNorm + classifier
    if cfg.kind == "upernet":
        s = len(cfg.pool_scales)
        ppm = s * _conv_bn(in_channels[-1], c, 1) + _conv_bn(in_channels[-1] + s * c, c, 3)
        fpn = sum(_conv_bn(ci, c, 1) for ci in in_channels[:-1]) + (L - 1) * _conv_bn(c, c, 3)
        return ppm + fpn + _conv_bn(L * c, c, 3) + _conv(c, num_classes, 1)
    sc = cfg.scale_channels
    neck = sum(_conv(ci, c, 1) for ci in in_channels) + L * _conv(c, c, 3)
    towers = sum(_conv_bn(c, sc, 3) + max(i - 1, 0) * _conv_bn(sc, sc, 3) for i in range(L))
    return neck + towers + _conv(sc, num_classes, 1)


def head_flops_breakdown(cfg: HeadConfig, in_channels: Sequence[int], num_classes: int,
                         sizes: Sequence[Size]) -> dict[str, int]:
    """MACs per image of each part of the head, for feature maps of ``sizes`` (finest first)."""
    if len(sizes) != len(in_channels):
        raise ValueError(f"{len(sizes)} map sizes for {len(in_channels)} levels")
    c, L = cfg.channels, len(in_channels)
    first = _pixels(sizes[0])
    if cfg.kind == "linear":
        return {"classifier": first * sum(in_channels) * num_classes}
    if cfg.kind == "upernet":
        s, last = len(cfg.pool_scales), in_channels[-1]
        return {
            "ppm": sum(b * b * last * c for b in cfg.pool_scales) + _pixels(sizes[-1]) * (last + s * c) * c * 9,
            "laterals": sum(_pixels(hw) * ci * c for hw, ci in zip(sizes[:-1], in_channels[:-1])),
            "fpn_convs": sum(_pixels(hw) * c * c * 9 for hw in sizes[:-1]),
            "fuse": first * L * c * c * 9,
            "classifier": first * c * num_classes,
        }
    sc = cfg.scale_channels
    towers = 0
    for i, (h, w) in enumerate(sizes):  # level i: i steps of conv then 2x upsample (level 0: one conv)
        for k in range(max(i, 1)):
            towers += (h * 2**k) * (w * 2**k) * (c if k == 0 else sc) * sc * 9
    return {
        "laterals": sum(_pixels(hw) * ci * c for hw, ci in zip(sizes, in_channels)),
        "fpn_convs": sum(_pixels(hw) * c * c * 9 for hw in sizes),
        "towers": towers,
        "classifier": first * sc * num_classes,
    }


def head_flops(cfg: HeadConfig, in_channels: Sequence[int], num_classes: int, sizes: Sequence[Size]) -> int:
    """MACs per image of the decode head (inference; the auxiliary head is counted apart)."""
    return sum(head_flops_breakdown(cfg, in_channels, num_classes, sizes).values())


def aux_head_params(cfg: HeadConfig, in_channels: Sequence[int], num_classes: int) -> int:
    """Trainable parameters of ``build_aux_head`` (0 when there is none)."""
    if not cfg.aux:
        return 0
    cin = in_channels[aux_level(in_channels)]
    return _conv_bn(cin, cfg.aux_channels, 3) + _conv(cfg.aux_channels, num_classes, 1)


def aux_head_flops(cfg: HeadConfig, in_channels: Sequence[int], num_classes: int, sizes: Sequence[Size]) -> int:
    """MACs per image of the auxiliary head (training only; 0 when there is none)."""
    if not cfg.aux:
        return 0
    level = aux_level(in_channels)
    return _pixels(sizes[level]) * cfg.aux_channels * (in_channels[level] * 9 + num_classes)
