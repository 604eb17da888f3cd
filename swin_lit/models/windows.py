"""Window geometry: partition, the one-gather pad + shift + partition order, sliding neighbourhoods, relative
position indices and attention masks.

Everything here is a pure function of sizes (an H x W token map, a square window of side M, a shift s); the
model builds these tensors once per input size and caches them (``SwinTransformer.layout``). Sizes are
``(H, W)`` pairs; an int means a square map. The rules themselves (where the map sits in its padded grid, the
offset table's order, the sliding offsets) are the torch-free ``swin_lit.models.geometry``; this module turns
them into tensors.
"""

from __future__ import annotations

import torch

from swin_lit.models.geometry import neighbourhood_range, offset_index
from swin_lit.models.registry import SHIFTS

# Logit offset for a query/key pair in different regions of a cyclically shifted window (official value).
REGION_MASK = -100.0


def _pair(size: int | tuple[int, int]) -> tuple[int, int]:
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


def window_partition(x: torch.Tensor, window: int) -> torch.Tensor:
    """(B, H, W, C) -> (B * nW, window * window, C), windows row-major, batch outermost."""
    B, H, W, C = x.shape
    x = x.view(B, H // window, window, W // window, window, C)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window * window, C)


def _padded_tokens(size, window: int, shift: int, shift_mode: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The padded window grid of one block: (Hp, Wp) long token index (H*W for a padding token) and (Hp, Wp)
    bool "is a real token", with the shift kind's roll (``SHIFTS[shift_mode]``: ``grid``, ``roll``) rolled in."""
    H, W = _pair(size)
    kind = SHIFTS[shift_mode]
    top, left, Hp, Wp = kind.grid((H, W), window, shift)
    rows = torch.arange(Hp)[:, None] - top
    cols = torch.arange(Wp)[None, :] - left
    real = (rows >= 0) & (rows < H) & (cols >= 0) & (cols < W)  # (Hp, Wp)
    token = torch.where(real, rows * W + cols, H * W)
    roll = kind.roll(shift)
    if roll:
        token = torch.roll(token, shifts=(-roll, -roll), dims=(0, 1))
        real = torch.roll(real, shifts=(-roll, -roll), dims=(0, 1))
    return token, real


def window_order(size, window: int, shift: int = 0, shift_mode: str = "cyclic") -> tuple[torch.Tensor, torch.Tensor]:
    """Token indices that do padding (+ cyclic roll) + window partition as ONE gather, and its inverse.

    ``gather`` (nW * N,): the token (row-major index into the H x W map) that fills each window slot, or H*W for
    a zero padding token; ``scatter`` (H*W,): the window slot of each token. The shift kind says where the map
    sits in its padded grid and how far that grid is rolled: cyclic pads bottom/right, then ``torch.roll(-shift)``,
    then ``window_partition``; pad offsets the window grid by the shift (``ShiftKind.grid``), no roll.
    """
    H, W = _pair(size)
    token, _ = _padded_tokens((H, W), window, shift, shift_mode)
    gather = window_partition(token[None, :, :, None], window).flatten()
    L = H * W
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
    """(B, L, C) tokens -> (B, nW * N, C) padded, shifted and partitioned (see ``window_order``)."""
    pad = gather.numel() > scatter.numel()
    return _ReorderTokens.apply(x, gather, scatter, pad, False)


def from_windows(windows: torch.Tensor, gather: torch.Tensor, scatter: torch.Tensor) -> torch.Tensor:
    """(B, nW * N, C) -> (B, L, C): the inverse of ``to_windows`` (padding dropped, shift undone)."""
    pad = gather.numel() > scatter.numel()
    return _ReorderTokens.apply(windows, scatter, gather, False, pad)


def relative_position_index(window: int) -> torch.Tensor:
    """(N, N) long, N = window^2: index into the (2M-1)^2 relative-offset table for each query/key pair.

    index = (dh + M - 1) * (2M - 1) + (dw + M - 1), with (dh, dw) = query coords - key coords.
    """
    coords = torch.stack(torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")).flatten(1)
    rel = coords[:, :, None] - coords[:, None, :]  # (2, N, N), offsets in [-(M-1), M-1]
    return offset_index(rel[0], rel[1], window)


def neighbourhood_offsets(window: int) -> torch.Tensor:
    """(M,) key - query offsets along one axis of a sliding M-neighbourhood: -(M-1)//2 .. M//2 (centred for an
    odd M; for an even M one more below/right, as ``Conv2d(padding="same")``)."""
    r = neighbourhood_range(window)
    return torch.arange(r.start, r.stop)


def sliding_relative_index(window: int) -> torch.Tensor:
    """(1, M*M) long: the relative-offset index (``relative_position_index``'s convention, query - key) of each
    neighbour of a sliding neighbourhood, the same for every query."""
    offsets = -neighbourhood_offsets(window)  # query - key
    return offset_index(offsets[:, None], offsets[None, :], window).view(1, -1)


def sliding_neighbours(size, window: int, mask_padding: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The M x M neighbourhood of every token of an H x W map, as one gather.

    ``gather`` (L * M*M,): the neighbour tokens of each token in turn (row-major over the neighbourhood), H*W
    for positions beyond the map (zero padding); ``mask`` (L, 1, M*M): -inf for those keys, 0 elsewhere (None
    when no neighbourhood leaves the map, or without ``mask_padding``: the zero tokens attended, ``pad_keys:
    attend``). Every query keeps itself as a key.
    """
    H, W = _pair(size)
    offsets = neighbourhood_offsets(window)
    rows = (torch.arange(H)[:, None] + offsets)[:, None, :, None]  # (H, 1, M, 1)
    cols = (torch.arange(W)[:, None] + offsets)[None, :, None, :]  # (1, W, 1, M)
    real = (rows >= 0) & (rows < H) & (cols >= 0) & (cols < W)  # (H, W, M, M)
    gather = torch.where(real, rows * W + cols, H * W).flatten()
    if real.all() or not mask_padding:
        return gather, None
    mask = torch.zeros(real.shape).masked_fill(~real, float("-inf"))
    return gather, mask.view(H * W, 1, window * window)


def region_labels(padded, window: int, shift: int) -> torch.Tensor:
    """(Hp, Wp) long: the 9 regions of a cyclically shifted (padded) map, labelled 0..8 row-major (the rule lives
    in ``CyclicShift.region_labels``; this spelling takes an int for a square map, for pictures and tests)."""
    return SHIFTS["cyclic"].region_labels(_pair(padded), window, shift)


def attention_mask(size, window: int, shift: int = 0, shift_mode: str = "cyclic",
                   mask_padding: bool = True) -> torch.Tensor | None:
    """(nW, N, N) additive mask for one block, or None when the block needs none.

    - REGION_MASK (-100, the official value) between tokens of one window that carry different region labels of
      the shift kind (``ShiftKind.region_labels`` on the padded grid, after its roll: the 9 regions of a cyclic
      shift; None for kinds without such a mask, ``pad`` and ``none``);
    - with ``mask_padding`` (``pad_keys: mask``), padded tokens are never attended as keys (-inf): the
      bottom/right padding of a map that the window does not tile (padding happens before the cyclic roll, so
      the padded rows/columns are rolled with the map), and the border padding of a ``pad`` shifted block.
      Without it (``pad_keys: attend``, the official dense code) they are keys like any other, and the region
      labels of the padded map (computed on the padded size) are the only mask.
    Every window keeps at least one real key, so no row of the mask is all -inf.
    """
    H, W = _pair(size)
    _, real = _padded_tokens((H, W), window, shift, shift_mode)
    labels = SHIFTS[shift_mode].region_labels(tuple(real.shape), window, shift)
    masked = mask_padding and not real.all()
    if labels is None and not masked:
        return None
    if labels is None:
        labels = torch.zeros(real.shape, dtype=torch.long)
    labels = window_partition(labels[None, :, :, None], window).squeeze(-1)  # (nW, N)
    mask = (labels[:, None, :] != labels[:, :, None]).float() * REGION_MASK  # (nW, N, N)
    if masked:
        real = window_partition(real[None, :, :, None], window).squeeze(-1)  # (nW, N)
        mask = mask.masked_fill(~real[:, None, :], float("-inf"))
    return mask
