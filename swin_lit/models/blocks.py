"""Swin blocks, patch merging and stages."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from swin_lit.models.attention import WindowAttention
from swin_lit.models.config import StageGeometry
from swin_lit.models.windows import attention_mask, from_windows, to_windows, window_order


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
    """(Shifted-)window attention + MLP, each a residual branch.

    ``norm="pre"``      (V1): x = x + drop_path(attn(norm1(x))); x = x + drop_path(mlp(norm2(x)))
    ``norm="res_post"`` (V2): x = x + drop_path(norm1(attn(x))); x = x + drop_path(norm2(mlp(x)))
                        with norm1/norm2 weight and bias zero-initialised (the block starts as identity).
    A block with ``shift > 0`` rolls the map by -shift before partitioning and masks pairs of tokens
    from different regions; a map that the window does not tile is zero-padded bottom/right first.
    """

    def __init__(self, geometry: StageGeometry, shift: int, cfg, drop_path: float, normalising_window: int) -> None:
        super().__init__()
        g = geometry
        self.resolution, self.window, self.shift = g.resolution, g.window, shift  # tokens per side, M, s
        self.post_norm = cfg.norm == "res_post"
        self.norm1 = nn.LayerNorm(g.dim)
        self.attn = WindowAttention(
            g.dim, g.heads, g.window,
            similarity=cfg.attention, position=cfg.position, normalising_window=normalising_window,
            qkv_bias=cfg.qkv_bias, attn_drop=cfg.attn_drop_rate, proj_drop=cfg.drop_rate, fused=cfg.fused,
        )
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(g.dim)
        self.mlp = Mlp(g.dim, int(g.dim * cfg.mlp_ratio), cfg.drop_rate)
        self.register_buffer("attn_mask", attention_mask(g.resolution, g.padded, g.window, shift), persistent=False)
        gather, scatter = window_order(g.resolution, g.padded, g.window, shift)
        self.register_buffer("gather", gather, persistent=False)  # (nW * N,) token of each window slot
        self.register_buffer("scatter", scatter, persistent=False)  # (L,) window slot of each token

    def zero_init_post_norms(self) -> None:
        for norm in (self.norm1, self.norm2):
            nn.init.zeros_(norm.weight)
            nn.init.zeros_(norm.bias)

    def window_attention(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, L, C) tokens of the map -> (B, L, C) after (shifted-)window attention. Padding, the cyclic roll
        and the window partition are one precomputed gather (and its inverse on the way back)."""
        B, _, C = x.shape
        windows = to_windows(x, self.gather, self.scatter).view(-1, self.window**2, C)  # (B * nW, M*M, C)
        windows = self.attn(windows, self.attn_mask)
        return from_windows(windows.view(B, -1, C), self.gather, self.scatter)  # (B, L, C)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.post_norm:
            x = x + self.drop_path(self.norm1(self.window_attention(x)))
            return x + self.drop_path(self.norm2(self.mlp(x)))
        x = x + self.drop_path(self.window_attention(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class PatchMerging(nn.Module):
    """2x2 neighbouring tokens -> one token of twice the width: (B, H*W, C) -> (B, H/2*W/2, 2C).

    ``order="norm_first"`` (V1): LayerNorm(4C) then Linear(4C, 2C); ``"reduce_first"`` (V2): Linear then
    LayerNorm(2C). An odd map is zero-padded by one row/column first.
    """

    def __init__(self, resolution: int, dim: int, order: str) -> None:
        super().__init__()
        self.resolution = resolution
        self.order = order
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)
        self.norm = nn.LayerNorm(4 * dim if order == "norm_first" else 2 * dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, L, C = x.shape
        H = self.resolution
        x = x.view(B, H, H, C)
        if H % 2:
            x = F.pad(x, (0, 0, 0, 1, 0, 1))
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
        g = geometry
        self.blocks = nn.ModuleList(
            SwinBlock(g, 0 if i % 2 == 0 else g.shift, cfg, drop_paths[i], normalising_window) for i in range(depth)
        )
        self.downsample = PatchMerging(g.resolution, g.dim, cfg.merge_order) if merge else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        if self.downsample is not None:
            x = self.downsample(x)
        return x
