"""Swin blocks, patch merging and stages, and the per-input-size layout tensors they run on."""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from swin_lit.models.attention import WindowAttention
from swin_lit.models.geometry import StageGeometry
from swin_lit.models.registry import NORM_PLACEMENTS, WINDOWS


class BlockLayout(NamedTuple):
    """What one block needs at one input size, built once per size (``SwinTransformer.layout``): the stage's
    ``window``, the window kind's tensors (``WindowKind.layout``; partitioned windows: ``gather`` (nW * N,) token of
    each window slot, ``scatter`` (L,) its inverse, ``mask`` (nW, N, N) or None, ``relative_index`` (N, N);
    sliding: ``gather`` (L * M*M,) neighbours of each token, ``scatter`` None, ``mask`` (L, 1, M*M) or None,
    ``relative_index`` (1, M*M)) and ``bias_constants``, the relative-bias kind's size-only tensors (CPB
    coordinates) or None."""

    window: int
    gather: torch.Tensor
    scatter: torch.Tensor | None
    mask: torch.Tensor | None
    relative_index: torch.Tensor
    bias_constants: torch.Tensor | None


class StageLayout(NamedTuple):
    resolution: tuple[int, int]  # (H, W) tokens entering the stage
    blocks: tuple[BlockLayout, ...]


class DropPath(nn.Module):
    """Stochastic depth: drop the whole residual branch per sample, rescale the kept ones."""

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.p == 0.0 or not self.training:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask / keep

    def extra_repr(self) -> str:
        return f"p={self.p}"


class Mlp(nn.Sequential):
    def __init__(self, dim: int, hidden: int, drop: float = 0.0) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.drop1 = nn.Dropout(drop)
        self.fc2 = nn.Linear(hidden, dim)
        self.drop2 = nn.Dropout(drop)


class SwinBlock(nn.Module):
    """(Shifted-)window attention + MLP, each a residual branch whose order with its LayerNorm is the norm
    placement's (``NORM_PLACEMENTS[cfg.norm]``, ``swin_lit.models.placement``):

    ``norm="pre"``      (V1): x = x + drop_path(attn(norm1(x))); x = x + drop_path(mlp(norm2(x)))
    ``norm="res_post"`` (V2): x = x + drop_path(norm1(attn(x))); x = x + drop_path(norm2(mlp(x)))
                        with norm1/norm2 weight and bias zero-initialised (the block starts as identity;
                        ``placement.init_norms``, called by the model after its own initialisation).
    ``shifted`` blocks (odd index in a stage) shift their windows by the stage's shift, as the shift kind says
    (cyclic: roll + region mask; pad: the padded window grid offset). Which keys each query meets is the window
    kind's (``model.windows``, ``swin_lit.models.window_kinds``: partitioned windows, sliding, ...). The
    parameters are built for the stage's window at the configured size (``geometry``); which tokens form each
    window, at whatever input size, comes with the ``layout`` of each forward (``Stage.layout``). ``resolution``,
    ``window`` and ``shift`` record the configured size's geometry.
    """

    def __init__(self, geometry: StageGeometry, shifted: bool, cfg, drop_path: float,
                 normalising_window: int) -> None:
        super().__init__()
        g = geometry
        self.resolution, self.window, self.shift = g.resolution, g.window, g.shift if shifted else 0
        self.shifted = shifted
        self.placement = NORM_PLACEMENTS[cfg.norm]
        self.norm1 = nn.LayerNorm(g.dim)
        self.attn = WindowAttention(
            g.dim, g.heads, g.window, windows=g.windows,
            similarity=cfg.attention, relative=cfg.relative, normalising_window=normalising_window,
            qkv_bias=cfg.qkv_bias, attn_drop=cfg.attn_drop_rate, proj_drop=cfg.drop_rate, fused=cfg.fused,
        )
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(g.dim)
        self.mlp = Mlp(g.dim, int(g.dim * cfg.mlp_ratio), cfg.drop_rate)

    def bias_constants(self, geometry: StageGeometry) -> torch.Tensor | None:
        """The relative-bias kind's size-only tensors at this stage geometry; ValueError if it cannot serve it."""
        bias = self.attn.relative_bias
        if bias is None:
            return None
        if not bias.serves(geometry.window):
            raise ValueError(f"a {'x'.join(map(str, geometry.resolution))} token map needs a window of "
                             f"{geometry.window} but this block's relative bias ({bias.name}) was built for window "
                             f"{bias.window}; move the model to that size with swin_lit.models.transfer.transfer")
        return bias.constants(geometry.window)

    def forward(self, x: torch.Tensor, layout: BlockLayout) -> torch.Tensor:
        """(B, L, C) -> (B, L, C)."""
        x = self.placement.residual(x, lambda t: self.attn(t, layout), self.norm1, self.drop_path)
        return self.placement.residual(x, self.mlp, self.norm2, self.drop_path)

    def extra_repr(self) -> str:
        return f"norm={self.placement.name}"


class PatchMerging(nn.Module):
    """2x2 neighbouring tokens -> one token of twice the width: (B, H*W, C) -> (B, ceil(H/2)*ceil(W/2), 2C).

    ``order="norm_first"`` (V1): LayerNorm(4C) then Linear(4C, 2C); ``"reduce_first"`` (V2): Linear then
    LayerNorm(2C). An odd side is zero-padded by one row/column first.
    """

    def __init__(self, dim: int, order: str) -> None:
        super().__init__()
        self.order = order
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)
        self.norm = nn.LayerNorm(4 * dim if order == "norm_first" else 2 * dim)

    def forward(self, x: torch.Tensor, resolution: tuple[int, int]) -> torch.Tensor:
        B, L, C = x.shape
        H, W = resolution
        x = x.view(B, H, W, C)
        if H % 2 or W % 2:
            x = F.pad(x, (0, 0, 0, W % 2, 0, H % 2))
        # channel order [x(0,0), x(1,0), x(0,1), x(1,1)] as in the official code
        x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], dim=-1)
        x = x.view(B, -1, 4 * C)  # (B, H/2 * W/2, 4C)
        if self.order == "norm_first":
            return self.reduction(self.norm(x))
        return self.norm(self.reduction(x))


class Stage(nn.Module):
    """``depth`` blocks at one resolution, alternating regular and shifted windows, then (optionally)
    patch merging. Merging sits at the END of the stage, as in the official checkpoints."""

    def __init__(self, geometry: StageGeometry, depth: int, cfg, drop_paths: list[float], normalising_window: int,
                 merge: bool) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            SwinBlock(geometry, i % 2 == 1, cfg, drop_paths[i], normalising_window) for i in range(depth)
        )
        self.downsample = PatchMerging(geometry.dim, cfg.merge_order) if merge else None

    def layout(self, geometry: StageGeometry) -> StageLayout:
        """The stage's tensors at one input size (CPU, float32): the window kind's (``WindowKind.layout``) for each
        block's shift, blocks with the same shift sharing theirs."""
        kind = WINDOWS[geometry.windows]
        windows: dict[int, tuple] = {}
        blocks = []
        for block in self.blocks:
            shift = geometry.shift if block.shifted else 0
            if shift not in windows:
                windows[shift] = kind.layout(geometry, shift)
            blocks.append(BlockLayout(geometry.window, *windows[shift], block.bias_constants(geometry)))
        return StageLayout(geometry.resolution, tuple(blocks))

    def forward(self, x: torch.Tensor, layout: StageLayout) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, H*W, C) -> (the blocks' output (B, H*W, C), the stage's output after merging (or the same))."""
        for block, block_layout in zip(self.blocks, layout.blocks):
            x = block(x, block_layout)
        if self.downsample is None:
            return x, x
        return x, self.downsample(x, layout.resolution)
