"""Fused window attention: ``F.scaled_dot_product_attention`` with the position bias and shift mask merged.

On CPUs the fused kernel takes its fast path only when the additive mask does not require grad; with a
learnable position bias (V1 table, V2 CPB) it falls back to the slow math path. ``window_sdpa`` keeps the
fast kernel in training too: ``_BiasedWindowSDPA`` runs the fused forward and backward with the bias
detached, and adds the bias gradient itself,

    dS = P * (dP - rowsum(dO * O)),   P = exp(S - logsumexp),   dP = dO V^T,   d bias = sum over windows of dS,

where the fused forward already returned the logsumexp. Same math as the explicit path (tests pin it).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def merge_bias_and_mask(
    bias: torch.Tensor | None, mask: torch.Tensor | None, batch_windows: int
) -> torch.Tensor | None:
    """One additive attention bias for a batch of windows.

    bias: (heads, N, N) position bias or None; mask: (nW, N, N) shift/padding mask or None.
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


class _BiasedWindowSDPA(torch.autograd.Function):
    """Fused attention whose additive bias (heads, N, N) is learnable; see the module docstring."""

    @staticmethod
    def forward(ctx, q, k, v, bias, mask, scale):
        Bw = q.shape[0]
        attn_mask = merge_bias_and_mask(bias, mask, Bw)  # (Bw, h, N, N)
        out, lse = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(
            q, k, v, 0.0, False, attn_mask=attn_mask, scale=scale)
        ctx.save_for_backward(q, k, v, out, lse, attn_mask)
        ctx.scale = scale
        ctx.windows = 1 if mask is None else mask.shape[0]
        return out

    @staticmethod
    def backward(ctx, d_out):
        q, k, v, out, lse, attn_mask = ctx.saved_tensors
        d_out = d_out.contiguous()
        dq, dk, dv = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu_backward(
            d_out, q, k, v, out, lse, 0.0, False, attn_mask=attn_mask, scale=ctx.scale)
        d_bias = None
        if ctx.needs_input_grad[3]:
            Bw, h, N, _ = q.shape
            probs = torch.exp(torch.matmul(q * ctx.scale, k.transpose(-2, -1)) + attn_mask - lse.unsqueeze(-1))
            d_probs = torch.matmul(d_out, v.transpose(-2, -1))  # (Bw, h, N, N)
            d_logits = probs * (d_probs - (d_out * out).sum(-1, keepdim=True))
            d_bias = d_logits.view(-1, h, N, N).sum(0)  # summed over batch and windows: (h, N, N)
        return dq, dk, dv, d_bias, None, None


def window_sdpa(q, k, v, bias, mask, scale: float, dropout: float = 0.0) -> torch.Tensor:
    """softmax(q k^T * scale + bias + mask) v for (B*nW, heads, N, d) windows, fused.

    bias: (heads, N, N) or None; mask: (nW, N, N) or None."""
    learnable = bias is not None and bias.requires_grad and torch.is_grad_enabled()
    if learnable and dropout == 0.0 and q.device.type == "cpu":
        return _BiasedWindowSDPA.apply(q, k, v, bias, mask, scale)
    attn_mask = merge_bias_and_mask(bias, mask, q.shape[0])
    return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=dropout, scale=scale)


def explicit_attention(q, k, v, bias, mask, scale: float, dropout: float = 0.0) -> torch.Tensor:
    """The reference path: softmax((q * scale) k^T + bias + mask) v, written out."""
    logits = (q * scale) @ k.transpose(-2, -1)  # (B*nW, h, N, N)
    attn_mask = merge_bias_and_mask(bias, mask, q.shape[0])
    if attn_mask is not None:
        logits = logits + attn_mask
    attn = logits.softmax(dim=-1)
    if dropout > 0:
        attn = F.dropout(attn, p=dropout)
    return attn @ v
