"""Window multi-head self-attention with a switchable similarity (dot / scaled cosine) and relative bias kind,
over partitioned windows (``WindowAttention``) or sliding neighbourhoods (``SlidingWindowAttention``)."""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from swin_lit.models.kernels import explicit_attention, unit_normalize, window_sdpa
from swin_lit.models.position import build_relative_bias
from swin_lit.models.windows import from_windows, to_windows

# V2 cosine attention: the learnable per-head logit scale starts at 10 and is clamped at 100.
LOGIT_SCALE_INIT = math.log(10.0)
LOGIT_SCALE_MAX = math.log(100.0)


class WindowAttention(nn.Module):
    """Attention inside each window of N = M^2 tokens (the block's layout says which tokens form each window).

    ``similarity="dot"``:    logits = (q k^T) / sqrt(head_dim) + B, with q, k and v biases (V1).
    ``similarity="cosine"``: logits = cos(q, k) * exp(min(s_h, log 100)) + B, per-head learnable s_h
                             (init log 10), with q and v biases only (V2: a key bias would change cos).
    B is the relative position bias (``relative`` kind, none for ``"none"``), plus the shift/padding mask.
    """

    def __init__(
        self,
        dim: int,
        heads: int,
        window: int,
        similarity: str = "dot",
        relative: str = "table",
        normalising_window: int = 0,
        qkv_bias: bool = True,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
        fused: bool = True,
    ) -> None:
        super().__init__()
        self.dim, self.heads, self.window = dim, heads, window
        self.head_dim = dim // heads
        self.similarity = similarity
        self.fused = fused
        self.attn_drop = attn_drop
        self.relative_bias = build_relative_bias(relative, window, heads, normalising_window)
        if similarity == "cosine":
            self.logit_scale = nn.Parameter(torch.full((heads, 1, 1), LOGIT_SCALE_INIT))
            self.qkv = nn.Linear(dim, 3 * dim, bias=False)
            self.q_bias = nn.Parameter(torch.zeros(dim)) if qkv_bias else None
            self.v_bias = nn.Parameter(torch.zeros(dim)) if qkv_bias else None
        else:
            self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def _qkv_bias(self) -> torch.Tensor | None:
        if self.similarity != "cosine":
            return self.qkv.bias
        if self.q_bias is None:
            return None
        return torch.cat((self.q_bias, torch.zeros_like(self.q_bias), self.v_bias))

    def project(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]:
        """x: (Bx, N, C) -> q, k, v each (Bx, h, N, d) and the logit scale of q k^T. Cosine: q and k unit-normalised
        over head_dim, q already times the clamped logit scale (so the scale is 1)."""
        Bx, N, C = x.shape
        qkv = F.linear(x, self.qkv.weight, self._qkv_bias()).view(Bx, N, 3, self.heads, self.head_dim)
        if self.similarity == "cosine":
            qk = unit_normalize(qkv[:, :, :2])  # q and k together, over head_dim: (Bx, N, 2, h, d)
            q, k = qk.permute(2, 0, 3, 1, 4).unbind(0)  # (Bx, h, N, d)
            q = q * torch.clamp(self.logit_scale, max=LOGIT_SCALE_MAX).exp()
            return q, k, qkv[:, :, 2].transpose(1, 2), 1.0
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # (Bx, h, N, d)
        return q, k, v, self.head_dim**-0.5

    def attend(self, q, k, v, scale: float, layout) -> torch.Tensor:
        """softmax(q k^T * scale + relative bias + mask) v with the layout's bias index and mask."""
        bias = None
        if self.relative_bias is not None:
            bias = self.relative_bias(layout.window, layout.bias_constants, layout.relative_index)
        dropout = self.attn_drop if self.training else 0.0
        kernel = window_sdpa if self.fused else explicit_attention
        return kernel(q, k, v, bias, layout.mask, scale, dropout)

    def forward(self, x: torch.Tensor, layout) -> torch.Tensor:
        """x: (B, L, C) tokens of the map -> (B, L, C). Padding, the shift and the window partition are one
        precomputed gather (and its inverse on the way back)."""
        B, _, C = x.shape
        windows = to_windows(x, layout.gather, layout.scatter).view(-1, layout.window**2, C)  # (B * nW, N, C)
        Bw, N, _ = windows.shape
        q, k, v, scale = self.project(windows)  # (B * nW, h, N, d)
        out = self.attend(q, k, v, scale, layout).transpose(1, 2).reshape(Bw, N, C)
        out = self.proj_drop(self.proj(out))
        return from_windows(out.view(B, -1, C), layout.gather, layout.scatter)  # (B, L, C)


class SlidingWindowAttention(WindowAttention):
    """Every token attends to the M x M neighbourhood around it (``windows.sliding_neighbours``): one query per
    "window" of M*M keys. The same parameters (and checkpoint names) as ``WindowAttention``; q, k and v are
    computed once per token, and k, v gathered into the neighbourhoods (zero padding beyond the map, masked)."""

    def forward(self, x: torch.Tensor, layout) -> torch.Tensor:
        B, L, C = x.shape
        q, k, v, scale = self.project(x)  # (B, h, L, d)
        q = q.transpose(1, 2).reshape(B * L, self.heads, 1, self.head_dim)  # one query per neighbourhood
        k, v = (self._neighbourhoods(t, layout.gather, layout.window**2) for t in (k, v))  # (B * L, h, M*M, d)
        out = self.attend(q, k, v, scale, layout).reshape(B, L, C)
        return self.proj_drop(self.proj(out))

    @staticmethod
    def _neighbourhoods(t: torch.Tensor, gather: torch.Tensor, n: int) -> torch.Tensor:
        """(B, h, L, d) -> (B * L, h, n, d): each token's neighbours (index L: a zero padding token)."""
        B, h, L, d = t.shape
        t = torch.cat([t.transpose(1, 2), t.new_zeros(B, 1, h, d)], dim=1)  # (B, L + 1, h, d)
        return t.index_select(1, gather).view(B * L, n, h, d).transpose(1, 2)
