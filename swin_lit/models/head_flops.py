"""Analytic parameter and FLOP counts of the decode heads from their config: each head kind counts its own
(``swin_lit.models.head_kinds``); the conventions and the shared pieces are here.

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
from swin_lit.models.registry import HEADS

Size = tuple[int, int]


def pyramid_sizes(height: int, width: int, patch_size: int, levels: int) -> list[Size]:
    """(h, w) of each backbone level for an input of ``height`` x ``width``: ceil(H/p), then ceil-halved."""
    h, w = -(-height // patch_size), -(-width // patch_size)
    sizes = []
    for _ in range(levels):
        sizes.append((h, w))
        h, w = -(-h // 2), -(-w // 2)
    return sizes


def conv_bn_params(cin: int, cout: int, k: int) -> int:
    return cin * cout * k * k + 2 * cout  # conv weight (no bias) + BatchNorm weight and bias


def conv_params(cin: int, cout: int, k: int) -> int:
    return cin * cout * k * k + cout  # conv weight + bias


def pixels(size: Size) -> int:
    return size[0] * size[1]


def head_params(cfg: HeadConfig, in_channels: Sequence[int], num_classes: int) -> int:
    """Trainable parameters of ``build_head(cfg, in_channels, num_classes)``, computed without building it (the
    head kind's ``parameter_count``)."""
    return HEADS[cfg.kind].parameter_count(cfg, in_channels, num_classes)


def head_flops_breakdown(cfg: HeadConfig, in_channels: Sequence[int], num_classes: int,
                         sizes: Sequence[Size]) -> dict[str, int]:
    """MACs per image of each part of the head, for feature maps of ``sizes`` (finest first): the head kind's
    ``flops_breakdown``."""
    if len(sizes) != len(in_channels):
        raise ValueError(f"{len(sizes)} map sizes for {len(in_channels)} levels")
    return HEADS[cfg.kind].flops_breakdown(cfg, in_channels, num_classes, sizes)


def head_flops(cfg: HeadConfig, in_channels: Sequence[int], num_classes: int, sizes: Sequence[Size]) -> int:
    """MACs per image of the decode head (inference; the auxiliary head is counted apart)."""
    return sum(head_flops_breakdown(cfg, in_channels, num_classes, sizes).values())


def aux_head_params(cfg: HeadConfig, in_channels: Sequence[int], num_classes: int) -> int:
    """Trainable parameters of ``build_aux_head`` (0 when there is none)."""
    if not cfg.aux:
        return 0
    cin = in_channels[aux_level(in_channels)]
    return conv_bn_params(cin, cfg.aux_channels, 3) + conv_params(cfg.aux_channels, num_classes, 1)


def aux_head_flops(cfg: HeadConfig, in_channels: Sequence[int], num_classes: int, sizes: Sequence[Size]) -> int:
    """MACs per image of the auxiliary head (training only; 0 when there is none)."""
    if not cfg.aux:
        return 0
    level = aux_level(in_channels)
    return pixels(sizes[level]) * cfg.aux_channels * (in_channels[level] * 9 + num_classes)
