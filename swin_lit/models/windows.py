"""Window geometry: partition/reverse, relative position index, shifted-window mask.

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


def window_reverse(windows: torch.Tensor, window: int, H: int, W: int) -> torch.Tensor:
    """(B * nW, window * window, C) -> (B, H, W, C); inverse of ``window_partition``."""
    C = windows.shape[-1]
    x = windows.view(-1, H // window, W // window, window, window, C)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, H, W, C)


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
