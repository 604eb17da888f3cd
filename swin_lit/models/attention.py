"""Window multi-head self-attention (``WindowAttention``) with a registered similarity kind (``model.attention``),
relative bias kind (``model.relative``) and window kind (``model.windows``: partitioned windows, sliding
neighbourhoods, ...; ``swin_lit.models.window_kinds``, which groups the tokens for the shared kernel).

A similarity kind is one ``Similarity`` subclass registered under its name in
``swin_lit.models.registry.SIMILARITIES``. It owns how a window's tokens become queries, keys and values and how
a query meets a key (logits = scale * q k^T, to which the relative bias and the mask are added):

- ``make_parameters(dim, heads, qkv_bias)``: its parameters, by the names the attention module holds them under
  (the official checkpoints' names, so checkpoints load as they are), built once per attention module;
- ``project(attn, x)``: (Bx, N, C) tokens -> q, k, v (Bx, h, N, d) and the scalar scale, from ``attn``'s
  parameters; the fused and the reference attention kernels take it from there;
- ``parameter_count`` and ``flops`` (what it computes beyond the shared qkv projection and the two attention
  matmuls), read by ``swin_lit.models.flops``; ``description`` (listings, pictures).
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
import torch.nn as nn
import torch.nn.functional as F

from swin_lit.models.kernels import explicit_attention, unit_normalize, window_sdpa
from swin_lit.models.position import build_relative_bias
from swin_lit.models.registry import SIMILARITIES, WINDOWS

# V2 cosine attention: the learnable per-head logit scale starts at 10 and is clamped at 100.
LOGIT_SCALE_INIT = math.log(10.0)
LOGIT_SCALE_MAX = math.log(100.0)


class Similarity:
    """Base class of an attention similarity kind (module docstring). Kinds hold no state of their own: their
    parameters live on the attention module, which passes itself to ``project``."""

    name: ClassVar[str] = ""  # set by the registry
    description: ClassVar[str] = ""  # one line: what the logits are (listings, pictures)

    @classmethod
    def make_parameters(cls, dim: int, heads: int, qkv_bias: bool) -> dict[str, nn.Module | nn.Parameter | None]:
        """The kind's parameters for one attention module of width ``dim`` with ``heads`` heads, by name."""
        raise NotImplementedError

    @classmethod
    def project(cls, attn: WindowAttention, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]:
        """x: (Bx, N, C) -> q, k, v each (Bx, h, N, d) and the scale of q k^T."""
        raise NotImplementedError

    @classmethod
    def parameter_count(cls, dim: int, heads: int, qkv_bias: bool) -> int:
        """Parameters of ``make_parameters(dim, heads, qkv_bias)`` (``count_params`` adds these)."""
        raise NotImplementedError

    @classmethod
    def flops(cls, tokens: int, dim: int, heads: int) -> int:
        """MACs beyond the qkv projection (tokens * C * 3C) and the two attention matmuls, for ``tokens`` tokens
        (matmul-type work only, as everywhere in ``swin_lit.models.flops``)."""
        return 0


@SIMILARITIES.register("dot")
class ScaledDotProduct(Similarity):
    """Swin V1: logits = (q k^T) / sqrt(head_dim), with a q, k and v bias (one ``qkv`` linear layer)."""

    description = "Swin V1: q k^T / sqrt(d), q/k/v bias"

    @classmethod
    def make_parameters(cls, dim, heads, qkv_bias):
        return {"qkv": nn.Linear(dim, 3 * dim, bias=qkv_bias)}

    @classmethod
    def project(cls, attn, x):
        Bx, N, _ = x.shape
        qkv = attn.qkv(x).view(Bx, N, 3, attn.heads, attn.head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # (Bx, h, N, d)
        return q, k, v, attn.head_dim**-0.5

    @classmethod
    def parameter_count(cls, dim, heads, qkv_bias):
        return 3 * dim * dim + (3 * dim if qkv_bias else 0)


@SIMILARITIES.register("cosine")
class ScaledCosine(Similarity):
    """Swin V2: logits = cos(q, k) * exp(min(s_h, log 100)), a learnable s_h per head (init log 10), with a q and
    a v bias only (a key bias would change cos). Official names: ``qkv`` (no bias), ``q_bias``, ``v_bias``,
    ``logit_scale`` (heads, 1, 1)."""

    description = "Swin V2: cos(q, k) exp(min(s_h, log 100)), q/v bias"

    @classmethod
    def make_parameters(cls, dim, heads, qkv_bias):
        return {
            "logit_scale": nn.Parameter(torch.full((heads, 1, 1), LOGIT_SCALE_INIT)),
            "qkv": nn.Linear(dim, 3 * dim, bias=False),
            "q_bias": nn.Parameter(torch.zeros(dim)) if qkv_bias else None,
            "v_bias": nn.Parameter(torch.zeros(dim)) if qkv_bias else None,
        }

    @classmethod
    def project(cls, attn, x):
        """q and k unit-normalised over head_dim, q already times the clamped logit scale (so the scale is 1)."""
        Bx, N, _ = x.shape
        bias = None
        if attn.q_bias is not None:
            bias = torch.cat((attn.q_bias, torch.zeros_like(attn.q_bias), attn.v_bias))
        qkv = F.linear(x, attn.qkv.weight, bias).view(Bx, N, 3, attn.heads, attn.head_dim)
        qk = unit_normalize(qkv[:, :, :2])  # q and k together, over head_dim: (Bx, N, 2, h, d)
        q, k = qk.permute(2, 0, 3, 1, 4).unbind(0)  # (Bx, h, N, d)
        q = q * torch.clamp(attn.logit_scale, max=LOGIT_SCALE_MAX).exp()
        return q, k, qkv[:, :, 2].transpose(1, 2), 1.0

    @classmethod
    def parameter_count(cls, dim, heads, qkv_bias):
        return 3 * dim * dim + heads + (2 * dim if qkv_bias else 0)


class WindowAttention(nn.Module):
    """Attention of each query over its window's keys (the ``windows`` kind groups them, from the block's layout):
    softmax(similarity(q, k) + B + mask) v, with the ``similarity`` kind's logits (``dot``, ``cosine``, ...), B the
    relative position bias (``relative`` kind, none for ``"none"``) and the layout's shift/padding mask. Every
    window kind has the same parameters (and checkpoint names).
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
        windows: str = "partition",
    ) -> None:
        super().__init__()
        self.dim, self.heads, self.window = dim, heads, window
        self.head_dim = dim // heads
        self.similarity = SIMILARITIES[similarity]
        self.windows = WINDOWS[windows]
        self.fused = fused
        self.attn_drop = attn_drop
        self.relative_bias = build_relative_bias(relative, window, heads, normalising_window)
        for name, parameter in self.similarity.make_parameters(dim, heads, qkv_bias).items():
            setattr(self, name, parameter)  # the similarity's parameters, under its (the checkpoints') names
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def project(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]:
        """x: (Bx, N, C) -> q, k, v each (Bx, h, N, d) and the scale of q k^T (the similarity kind's)."""
        return self.similarity.project(self, x)

    def relative_bias_of(self, layout) -> torch.Tensor | None:
        """(heads, Nq, Nk) relative position bias of the layout's query/key pairs, or None."""
        if self.relative_bias is None:
            return None
        return self.relative_bias(layout.window, layout.bias_constants, layout.relative_index)

    def attend(self, q, k, v, scale: float, layout) -> torch.Tensor:
        """softmax(q k^T * scale + relative bias + mask) v with the layout's bias index and mask."""
        dropout = self.attn_drop if self.training else 0.0
        kernel = window_sdpa if self.fused else explicit_attention
        return kernel(q, k, v, self.relative_bias_of(layout), layout.mask, scale, dropout)

    def weights(self, x: torch.Tensor, layout) -> torch.Tensor:
        """(G, h, Nq, Nk) softmax attention weights of every group of the window kind (pictures, tests; not the
        forward): the reference kernel with v = the identity, whose output rows are then the weight rows."""
        q, k, _, scale = self.windows.split(self, x, layout)
        eye = torch.eye(k.shape[-2], dtype=k.dtype, device=k.device).expand(*k.shape[:-1], -1)
        return explicit_attention(q, k, eye, self.relative_bias_of(layout), layout.mask, scale)

    def forward(self, x: torch.Tensor, layout) -> torch.Tensor:
        """x: (B, L, C) tokens of the map -> (B, L, C). The window kind groups the tokens into queries and keys
        (partitioned windows: padding, the shift and the partition as one precomputed gather) and back."""
        q, k, v, scale = self.windows.split(self, x, layout)  # q (G, h, Nq, d), k and v (G, h, Nk, d)
        return self.windows.join(self, self.attend(q, k, v, scale, layout), layout, x.shape)

    def extra_repr(self) -> str:
        return f"windows={self.windows.name}, similarity={self.similarity.name}"
