"""Window geometry: partition, the one-gather pad + roll + partition order, relative position index, mask.

Everything here is a pure function of sizes; the model calls the index/mask builders once per
resolution (at construction) and keeps the results as non-persistent buffers.
"""

from __future__ import annotations

import torch

# Logit offset for a query/key pair in different regions of a shifted window (official value).
REGION_MASK = -100.0


def window_partition(x: torch.Tensor, window: int) -> torch.Tensor:
    """(B, H, W, C) -> (B * nW, window * window, C), windows row-major, batch outermost."""
    B, H, W, C = x.shape
    x = x.view(B, H // window, window, W // window, window, C)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window * window, C)


def window_order(resolution: int, padded: int, window: int, shift: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Token indices that do pad + cyclic roll + window partition as ONE gather, and its inverse.

    ``gather`` (nW * N,): the token (row-major index into the resolution^2 map) that fills each window slot,
    or resolution^2 for a zero padding token; ``scatter`` (resolution^2,): the window slot of each token.
    Same order as padding bottom/right, then ``torch.roll(-shift)``, then ``window_partition``.
    """
    rows, cols = torch.meshgrid(torch.arange(padded), torch.arange(padded), indexing="ij")
    real = (rows < resolution) & (cols < resolution)
    token = torch.where(real, rows * resolution + cols, resolution * resolution)  # (padded, padded)
    token = torch.roll(token, shifts=(-shift, -shift), dims=(0, 1))
    gather = window_partition(token[None, :, :, None], window).flatten()
    L = resolution * resolution
    slots = torch.arange(gather.numel())
    scatter = torch.zeros(L + 1, dtype=torch.long).scatter_(0, gather, slots)[:L]  # [L]: the padding slots
    return gather, scatter


def _take(x: torch.Tensor, index: torch.Tensor, pad: bool) -> torch.Tensor:
    """x[:, index] for (B, L, C) tokens; with ``pad``, index L is a zero token."""
    if pad:
        x = torch.cat([x, x.new_zeros(x.shape[0], 1, x.shape[2])], dim=1)
    return x.index_select(1, index)


class _ReorderTokens(torch.autograd.Function):
    """A gather along the token dim whose gradient is the inverse gather (every real token is used exactly
    once), instead of the scatter-add autograd records for ``index_select``."""

    @staticmethod
    def forward(ctx, x, index, inverse, pad_forward: bool, pad_backward: bool):
        ctx.save_for_backward(inverse)
        ctx.pad_backward = pad_backward
        return _take(x, index, pad_forward)

    @staticmethod
    def backward(ctx, grad):
        (inverse,) = ctx.saved_tensors
        return _take(grad, inverse, ctx.pad_backward), None, None, None, None


def to_windows(x: torch.Tensor, gather: torch.Tensor, scatter: torch.Tensor) -> torch.Tensor:
    """(B, L, C) tokens -> (B, nW * N, C) padded, rolled and partitioned (see ``window_order``)."""
    pad = gather.numel() > scatter.numel()
    return _ReorderTokens.apply(x, gather, scatter, pad, False)


def from_windows(windows: torch.Tensor, gather: torch.Tensor, scatter: torch.Tensor) -> torch.Tensor:
    """(B, nW * N, C) -> (B, L, C): the inverse of ``to_windows`` (padding dropped, roll undone)."""
    pad = gather.numel() > scatter.numel()
    return _ReorderTokens.apply(windows, scatter, gather, False, pad)


def relative_position_index(window: int) -> torch.Tensor:
    """(N, N) long, N = window^2: index into the (2M-1)^2 relative-offset table for each query/key pair.

    index = (dh + M - 1) * (2M - 1) + (dw + M - 1), with (dh, dw) = query coords - key coords.
    """
    coords = torch.stack(torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")).flatten(1)
    rel = coords[:, :, None] - coords[:, None, :] + (window - 1)  # (2, N, N), offsets in [0, 2M-2]
    return rel[0] * (2 * window - 1) + rel[1]


def relative_offsets(window: int) -> torch.Tensor:
    """(2M-1, 2M-1, 2) float64 table of (dh, dw) offsets, in the row-major order the index uses."""
    axis = torch.arange(-(window - 1), window, dtype=torch.float64)
    return torch.stack(torch.meshgrid(axis, axis, indexing="ij"), dim=-1)


def region_labels(padded: int, window: int, shift: int) -> torch.Tensor:
    """(padded, padded) long: the 9 regions of a cyclically shifted map, labelled 0..8 row-major.

    Rows (and columns) split into [0, -window), [-window, -shift), [-shift, end); two tokens of one
    shifted window may attend to each other only when they carry the same label.
    """
    bounds = (slice(0, -window), slice(-window, -shift), slice(-shift, None))
    labels = torch.zeros(padded, padded, dtype=torch.long)
    for i, rows in enumerate(bounds):
        for j, cols in enumerate(bounds):
            labels[rows, cols] = 3 * i + j
    return labels


def attention_mask(resolution: int, padded: int, window: int, shift: int) -> torch.Tensor | None:
    """(nW, N, N) additive mask for one block, or None when the block needs none.

    - shifted blocks: REGION_MASK (-100) between tokens of different regions (the official rule);
    - maps padded up to a multiple of the window: padded tokens are never attended as keys (-inf).
      Padding happens before the roll, so the padded rows/columns are rolled with the map.
    Every window keeps at least one real key, so no row of the mask is all -inf.
    """
    if shift == 0 and padded == resolution:
        return None
    if shift > 0:
        labels = region_labels(padded, window, shift)
    else:
        labels = torch.zeros(padded, padded, dtype=torch.long)
    labels = window_partition(labels[None, :, :, None], window).squeeze(-1)  # (nW, N)
    mask = (labels[:, None, :] != labels[:, :, None]).float() * REGION_MASK  # (nW, N, N)
    if padded != resolution:
        real = torch.zeros(padded, padded, dtype=torch.bool)
        real[:resolution, :resolution] = True
        real = torch.roll(real, shifts=(-shift, -shift), dims=(0, 1))
        real = window_partition(real[None, :, :, None], window).squeeze(-1)  # (nW, N)
        mask = mask.masked_fill(~real[:, None, :], float("-inf"))
    return mask
