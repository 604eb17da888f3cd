"""Relative position bias inside a window: the V1 table and the V2 continuous position bias (CPB).

A position-bias module maps nothing to a (heads, N, N) tensor that is added to the attention logits.
It is evaluated once per block per forward (never per window or per sample). To add a new kind, write
one module with that ``forward`` and register it in ``build_position_bias``.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from swin_lit.models.windows import relative_offsets, relative_position_index

# CPB coordinates are scaled to [-8, 8] at the normalising window (official constant).
CPB_RANGE = 8.0
# The CPB output is squashed to (0, 16) (official: 16 * sigmoid).
CPB_BIAS_MAX = 16.0
CPB_HIDDEN = 512


class RelativePositionTable(nn.Module):
    """V1: one learnable bias per relative offset and head, table shape ((2M-1)^2, heads)."""

    def __init__(self, window: int, heads: int) -> None:
        super().__init__()
        self.window, self.heads = window, heads
        self.table = nn.Parameter(torch.empty((2 * window - 1) ** 2, heads))
        nn.init.trunc_normal_(self.table, std=0.02)
        self.register_buffer("index", relative_position_index(window).flatten(), persistent=False)

    def forward(self) -> torch.Tensor:
        n = self.window**2
        return self.table[self.index].view(n, n, self.heads).permute(2, 0, 1)  # (heads, N, N)


def cpb_coordinates(window: int, normalising_window: int, spacing: str) -> torch.Tensor:
    """(2M-1, 2M-1, 2) float32 CPB input coordinates for a window of side M.

    Offsets are divided by (normalising_window - 1) and scaled to [-8, 8], so at the normalising window
    they span exactly [-8, 8]; a larger window than the normalising one extrapolates beyond it.
      - ``log``    (official V2): t -> sign(t) * log2(1 + |t|) / log2(8)   (range +-1.0566 at the norm. window)
      - ``linear`` (Swin V2 paper, Table 1; no public code): t is used as is (range +-8 at the norm. window).
    """
    # float32 arithmetic in the official order (divide, scale, log), so the table matches it bit for bit.
    t = relative_offsets(window).float() / max(normalising_window - 1, 1)
    t = t * CPB_RANGE
    if spacing == "log":
        t = torch.sign(t) * torch.log2(t.abs() + 1.0) / math.log2(CPB_RANGE)
    elif spacing != "linear":
        raise ValueError(f"spacing must be 'log' or 'linear', got {spacing!r}")
    return t


class ContinuousPositionBias(nn.Module):
    """V2: a small MLP (2 -> 512 -> heads) evaluated on the relative coordinates, 16 * sigmoid(output)."""

    def __init__(self, window: int, heads: int, spacing: str, normalising_window: int = 0) -> None:
        super().__init__()
        self.window, self.heads, self.spacing = window, heads, spacing
        self.normalising_window = normalising_window or window
        self.mlp = nn.Sequential(
            nn.Linear(2, CPB_HIDDEN), nn.ReLU(inplace=True), nn.Linear(CPB_HIDDEN, heads, bias=False)
        )
        coords = cpb_coordinates(window, self.normalising_window, spacing)
        self.register_buffer("coords", coords.view(-1, 2), persistent=False)  # ((2M-1)^2, 2)
        self.register_buffer("index", relative_position_index(window).flatten(), persistent=False)

    def forward(self) -> torch.Tensor:
        n = self.window**2
        table = self.mlp(self.coords.to(self.mlp[0].weight.dtype))  # ((2M-1)^2, heads)
        bias = table[self.index].view(n, n, self.heads).permute(2, 0, 1)  # (heads, N, N)
        return CPB_BIAS_MAX * torch.sigmoid(bias)


def build_position_bias(position: str, window: int, heads: int, normalising_window: int = 0) -> nn.Module | None:
    """The relative position bias module for a ``position`` switch value (None: no relative bias)."""
    if position in ("table", "abs+table"):
        return RelativePositionTable(window, heads)
    if position == "cpb_log":
        return ContinuousPositionBias(window, heads, "log", normalising_window)
    if position == "cpb_linear":
        return ContinuousPositionBias(window, heads, "linear", normalising_window)
    return None
