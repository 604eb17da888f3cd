"""Window multi-head self-attention with a switchable similarity (dot / scaled cosine)."""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from swin_lit.models.kernels import explicit_attention, unit_normalize, window_sdpa
from swin_lit.models.position import build_position_bias

# V2 cosine attention: the learnable per-head logit scale starts at 10 and is clamped at 100.
LOGIT_SCALE_INIT = math.log(10.0)
LOGIT_SCALE_MAX = math.log(100.0)


class WindowAttention(nn.Module):
    """Attention inside each window of N = window^2 tokens.

    ``similarity="dot"``:    logits = (q k^T) / sqrt(head_dim) + B, with q, k and v biases (V1).
    ``similarity="cosine"``: logits = cos(q, k) * exp(min(s_h, log 100)) + B, per-head learnable s_h
                             (init log 10), with q and v biases only (V2: a key bias would change cos).
    B is the relative position bias (``position`` switch), plus the shift/padding mask of the block.
    """

    def __init__(
        self,
        dim: int,
        heads: int,
        window: int,
        similarity: str = "dot",
        position: str = "table",
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
        self.position_bias = build_position_bias(position, window, heads, normalising_window)
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

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """x: (B * nW, N, C); mask: (nW, N, N) or None. Returns (B * nW, N, C)."""
        Bw, N, C = x.shape
        qkv = F.linear(x, self.qkv.weight, self._qkv_bias()).view(Bw, N, 3, self.heads, self.head_dim)
        if self.similarity == "cosine":
            qk = unit_normalize(qkv[:, :, :2])  # q and k together, over head_dim: (Bw, N, 2, h, d)
            q, k = qk.permute(2, 0, 3, 1, 4).unbind(0)  # (Bw, h, N, d)
            q = q * torch.clamp(self.logit_scale, max=LOGIT_SCALE_MAX).exp()
            v = qkv[:, :, 2].transpose(1, 2)
            scale = 1.0
        else:
            q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # (Bw, h, N, d)
            scale = self.head_dim**-0.5
        bias = self.position_bias() if self.position_bias is not None else None  # (h, N, N) or None
        dropout = self.attn_drop if self.training else 0.0
        attend = window_sdpa if self.fused else explicit_attention
        out = attend(q, k, v, bias, mask, scale, dropout)  # (Bw, h, N, d)
        out = out.transpose(1, 2).reshape(Bw, N, C)  # (Bw, N, C)
        return self.proj_drop(self.proj(out))
