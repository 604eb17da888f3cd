"""Window attention kernels: the fused ``F.scaled_dot_product_attention`` with the position bias and shift
mask merged into one 4-D additive mask, and the explicit softmax reference path (same math; tests pin it).

Where the fused kernel pays (measured in ``benchmarks/model_speed.py``): on CPUs it takes its fast path
only when the additive mask needs no gradient. With a learnable position bias in training (V1 table,
V2 CPB) it falls back to a math path slower than the explicit one, and a hand-written bias gradient
around the fused forward/backward (flash backward for q, k, v plus a recomputed softmax for the bias)
measured 8-13% slower than the explicit path at window 4. So ``window_sdpa`` uses the explicit path when
the bias needs a gradient, and the fused kernel otherwise (evaluation, no relative bias) and on GPUs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def merge_bias_and_mask(
    bias: torch.Tensor | None, mask: torch.Tensor | None, batch_windows: int
) -> torch.Tensor | None:
    """One additive attention bias for a batch of windows.

    bias: (heads, N, N) relative position bias or None; mask: (nW, N, N) shift/padding mask or None (a sliding
    neighbourhood has one query and M*M keys: (heads, 1, M*M) and (L, 1, M*M)).
    Returns None or a 4-D (B * nW, heads|1, N, N) tensor (a broadcast view where possible): the 4-D form is
    what the fused CPU kernel accepts on its fast path.
    """
    if mask is None:
        if bias is None:
            return None
        return bias.unsqueeze(0).expand(batch_windows, -1, -1, -1)
    nW = mask.shape[0]
    merged = mask.unsqueeze(1) if bias is None else mask.unsqueeze(1) + bias  # (nW, heads|1, N, N)
    B = batch_windows // nW
    return merged.unsqueeze(0).expand(B, -1, -1, -1, -1).reshape(batch_windows, *merged.shape[1:])


class _UnitNormalize(torch.autograd.Function):
    """x / ||x|| over the last dim, with the closed-form backward dx = (g - y <g, y>) / ||x||: a few
    multiplies instead of the chain of divisions autograd records for ``F.normalize`` (which was the
    largest extra cost of cosine attention in training). Norms are clamped at 1e-12 like ``F.normalize``."""

    @staticmethod
    def forward(ctx, x):
        inv_norm = torch.rsqrt((x * x).sum(-1, keepdim=True).clamp_min(1e-24))
        y = x * inv_norm
        ctx.save_for_backward(y, inv_norm)
        return y

    @staticmethod
    def backward(ctx, g):
        y, inv_norm = ctx.saved_tensors
        return (g - y * (g * y).sum(-1, keepdim=True)) * inv_norm


def unit_normalize(x: torch.Tensor) -> torch.Tensor:
    """``x`` scaled to unit L2 norm along the last dim (cosine attention's q and k)."""
    return _UnitNormalize.apply(x)


def window_sdpa(q, k, v, bias, mask, scale: float, dropout: float = 0.0) -> torch.Tensor:
    """softmax(q k^T * scale + bias + mask) v for (B*nW, heads, N, d) windows, fused.

    bias: (heads, N, N) or None; mask: (nW, N, N) or None (keys may outnumber queries: see above)."""
    learnable = bias is not None and bias.requires_grad and torch.is_grad_enabled()
    if learnable and q.device.type == "cpu":
        return explicit_attention(q, k, v, bias, mask, scale, dropout)
    attn_mask = merge_bias_and_mask(bias, mask, q.shape[0])
    return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=dropout, scale=scale)


def explicit_attention(q, k, v, bias, mask, scale: float, dropout: float = 0.0) -> torch.Tensor:
    """The reference path: softmax((q * scale) k^T + bias + mask) v, written out. The bias and mask are
    broadcast onto the logits (never expanded to one mask per window of the batch)."""
    Bw, h, N, _ = q.shape
    logits = (q * scale) @ k.transpose(-2, -1)  # (B*nW, h, N, N_keys)
    if mask is not None:
        nW = mask.shape[0]
        logits = (logits.view(Bw // nW, nW, h, N, -1) + mask.unsqueeze(1)).view(logits.shape)
    if bias is not None:
        logits = logits + bias
    attn = logits.softmax(dim=-1)
    if dropout > 0:
        attn = F.dropout(attn, p=dropout)
    return attn @ v
