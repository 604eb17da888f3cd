"""Decode heads for segmentation: UPerNet, semantic FPN and a linear probe (plain torch), from a ``HeadConfig``
through its head kind (``swin_lit.models.head_kinds``: the kind builds its module and counts it).

Every head takes the backbone's feature pyramid, a list of NCHW maps ``[(B, C_0, H_0, W_0), ...]`` at strides
patch x (1, 2, 4, ...) (each map ceil-halved from the one before, so odd and rectangular sizes occur), and returns
logits (B, num_classes, H_0, W_0) at the first map's resolution; the segmentation model upsamples them to the
input size. Resizing is bilinear with ``align_corners=False`` throughout, as in the Swin recipe. Conv modules are
conv (no bias) + BatchNorm + ReLU like mmcv's ``ConvModule``; the classifier is a 1x1 conv with bias, initialised
N(0, 0.01) as mmseg's ``conv_seg``.

The FPN neck of ``fpn`` uses plain convs with bias and no activation and a nearest-neighbour top-down path (mmseg's
``FPN`` neck defaults); UPerNet's top-down path is bilinear (mmseg's ``UPerHead``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from swin_lit.models.head_config import HeadConfig, aux_level
from swin_lit.models.registry import HEADS


def resize(x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Bilinear resize of (B, C, h, w) to ``size`` (align_corners=False); a no-op at that size."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False)


class ConvBNReLU(nn.Sequential):
    """k x k conv (no bias, 'same' padding) + BatchNorm + ReLU."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )


class Classifier(nn.Sequential):
    """Dropout2d then a 1x1 conv to the class logits."""

    def __init__(self, channels: int, num_classes: int, dropout: float) -> None:
        super().__init__(nn.Dropout2d(dropout), nn.Conv2d(channels, num_classes, 1))
        nn.init.normal_(self[1].weight, std=0.01)
        nn.init.zeros_(self[1].bias)


class PyramidPooling(nn.Module):
    """PSPNet's pyramid pooling on the last map: average-pool to s x s bins per scale, 1x1 conv, upsample back,
    concatenate with the input, fuse with a 3x3 conv. (B, C_in, h, w) -> (B, channels, h, w)."""

    def __init__(self, in_channels: int, channels: int, pool_scales: Sequence[int]) -> None:
        super().__init__()
        self.pool_scales = tuple(pool_scales)
        self.convs = nn.ModuleList(ConvBNReLU(in_channels, channels, 1) for _ in self.pool_scales)
        self.bottleneck = ConvBNReLU(in_channels + len(self.pool_scales) * channels, channels, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        pooled = [resize(conv(F.adaptive_avg_pool2d(x, s)), size) for s, conv in zip(self.pool_scales, self.convs)]
        return self.bottleneck(torch.cat([x, *pooled], dim=1))  # (B, C_in + S * channels, h, w) -> (B, channels, h, w)


class UPerHead(nn.Module):
    """UPerNet (Xiao et al. 2018) as mmseg's UPerHead: PPM on the last level, FPN on the others, fusion of all."""

    def __init__(self, in_channels: Sequence[int], num_classes: int, channels: int, pool_scales: Sequence[int],
                 dropout: float) -> None:
        super().__init__()
        *lower, last = in_channels
        self.ppm = PyramidPooling(last, channels, pool_scales)
        self.laterals = nn.ModuleList(ConvBNReLU(c, channels, 1) for c in lower)
        self.fpn_convs = nn.ModuleList(ConvBNReLU(channels, channels, 3) for _ in lower)
        self.fuse = ConvBNReLU(len(in_channels) * channels, channels, 3)
        self.classifier = Classifier(channels, num_classes, dropout)

    def forward(self, features: Sequence[torch.Tensor]) -> torch.Tensor:
        levels = [lateral(f) for lateral, f in zip(self.laterals, features)] + [self.ppm(features[-1])]
        for i in range(len(levels) - 1, 0, -1):  # top-down: add each coarser level to the next finer one
            levels[i - 1] = levels[i - 1] + resize(levels[i], levels[i - 1].shape[-2:])
        outs = [conv(level) for conv, level in zip(self.fpn_convs, levels)] + [levels[-1]]
        size = outs[0].shape[-2:]
        fused = self.fuse(torch.cat([resize(o, size) for o in outs], dim=1))  # (B, L * channels, H_0, W_0)
        return self.classifier(fused)  # (B, K, H_0, W_0)


class FPNNeck(nn.Module):
    """Feature pyramid network (Lin et al. 2017) as mmseg's FPN neck: 1x1 laterals, nearest top-down, 3x3 convs."""

    def __init__(self, in_channels: Sequence[int], channels: int) -> None:
        super().__init__()
        self.laterals = nn.ModuleList(nn.Conv2d(c, channels, 1) for c in in_channels)
        self.convs = nn.ModuleList(nn.Conv2d(channels, channels, 3, padding=1) for _ in in_channels)

    def forward(self, features: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        levels = [lateral(f) for lateral, f in zip(self.laterals, features)]
        for i in range(len(levels) - 1, 0, -1):
            levels[i - 1] = levels[i - 1] + F.interpolate(levels[i], size=levels[i - 1].shape[-2:], mode="nearest")
        return [conv(level) for conv, level in zip(self.convs, levels)]


class ScaleTower(nn.Sequential):
    """One level of semantic FPN: ``steps`` x (3x3 conv + BN + ReLU, then 2x bilinear upsample), or one conv
    without upsampling when ``steps`` is 0 (the finest level)."""

    def __init__(self, in_channels: int, channels: int, steps: int) -> None:
        layers: list[nn.Module] = []
        for k in range(max(steps, 1)):
            layers.append(ConvBNReLU(in_channels if k == 0 else channels, channels, 3))
            if steps:
                layers.append(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False))
        super().__init__(*layers)


class SemanticFPNHead(nn.Module):
    """Semantic FPN (Kirillov et al. 2019): FPN, each level brought to the first level's resolution by
    conv + 2x upsample steps, summed, classified."""

    def __init__(self, in_channels: Sequence[int], num_classes: int, channels: int, scale_channels: int,
                 dropout: float) -> None:
        super().__init__()
        self.neck = FPNNeck(in_channels, channels)
        self.towers = nn.ModuleList(ScaleTower(channels, scale_channels, i) for i in range(len(in_channels)))
        self.classifier = Classifier(scale_channels, num_classes, dropout)

    def forward(self, features: Sequence[torch.Tensor]) -> torch.Tensor:
        levels = self.neck(features)
        out = self.towers[0](levels[0])  # (B, scale_channels, H_0, W_0)
        for tower, level in zip(self.towers[1:], levels[1:]):
            # 2^i upsampling of a ceil-halved map can overshoot an odd H_0 by a pixel: resize to match
            out = out + resize(tower(level), out.shape[-2:])
        return self.classifier(out)  # (B, K, H_0, W_0)


class LinearHead(nn.Module):
    """A linear probe: every level resized to the first level's resolution, concatenated, BatchNorm, dropout,
    1x1 classifier. Each pixel's logits are a linear function of its own (upsampled) tokens."""

    def __init__(self, in_channels: Sequence[int], num_classes: int, dropout: float) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(sum(in_channels))
        self.classifier = Classifier(sum(in_channels), num_classes, dropout)

    def forward(self, features: Sequence[torch.Tensor]) -> torch.Tensor:
        size = features[0].shape[-2:]
        x = torch.cat([resize(f, size) for f in features], dim=1)  # (B, sum C_i, H_0, W_0)
        return self.classifier(self.norm(x))  # (B, K, H_0, W_0)


class FCNHead(nn.Module):
    """The recipe's auxiliary head: one 3x3 conv + BN + ReLU, dropout, 1x1 classifier (mmseg FCNHead, 1 conv)."""

    def __init__(self, in_channels: int, num_classes: int, channels: int, dropout: float) -> None:
        super().__init__()
        self.conv = ConvBNReLU(in_channels, channels, 3)
        self.classifier = Classifier(channels, num_classes, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.conv(x))  # (B, C, h, w) -> (B, K, h, w)


def build_head(cfg: HeadConfig, in_channels: Sequence[int], num_classes: int) -> nn.Module:
    """The decode head of ``cfg`` for maps of ``in_channels`` (finest first): features -> (B, K, H_0, W_0)."""
    return HEADS[cfg.kind].build(cfg, in_channels, num_classes)


def build_aux_head(cfg: HeadConfig, in_channels: Sequence[int], num_classes: int) -> FCNHead | None:
    """The auxiliary FCN head on ``features[aux_level(in_channels)]``, or None when ``cfg.aux_weight`` is 0."""
    if not cfg.aux:
        return None
    return FCNHead(in_channels[aux_level(in_channels)], num_classes, cfg.aux_channels, cfg.dropout)

