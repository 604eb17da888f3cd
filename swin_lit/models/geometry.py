"""Window geometry as pure functions of sizes, without torch: padding, the per-stage layout, relative offsets.

Every rule about where tokens sit lives here once; ``config`` (validation, ``SwinConfig.stages``), ``windows``
(the index and mask tensors), ``position`` (the offsets a relative bias is a function of) and ``flops`` (the
tokens each block computes on) read it. Sizes are ``(H, W)`` token maps; a window is square, of side M.

The stage layout has two behaviours where the official classification and segmentation code differ (reference
1.8 and 10.1), chosen by two switches of ``SwinConfig``:

- ``small_maps``: a map whose smaller side is no larger than M is ``clip``ped (the classification code: the
  window shrinks to min(H, W) and the stage does not shift) or ``pad``ded like any other map (the segmentation
  code: the window stays M, the odd blocks shift by M // 2, the map is zero-padded to whole windows);
- ``pad_keys``: the zero-padded tokens are ``mask``ed as keys (-inf) or ``attend``ed like real tokens (the
  segmentation code: its regular windows have no mask at all, its shifted windows only the region mask).

Where every stage map is larger than M and tiled by it, the two switches change nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

PAD_KEYS = ("mask", "attend")
SMALL_MAPS = ("clip", "pad")


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _shift_kind(name: str) -> type:
    """The shift kind ``name`` of the ``SHIFTS`` registry (torch-free). Imported here, not at the top: this module
    stays the leaf every other model module imports (no module-level import inside ``swin_lit.models``)."""
    from swin_lit.models.registry import SHIFTS

    return SHIFTS[name]


def padded_grid(size: tuple[int, int], window: int, shift: int, shift_mode: str) -> tuple[int, int, int, int]:
    """(top, left, Hp, Wp): where an H x W map sits in the zero-padded grid of whole M x M windows of one block:
    the shift kind's ``grid`` (``SHIFTS[shift_mode]``, torch-free).

    Regular blocks, and cyclically shifted ones (the roll happens inside the padded grid, after the padding, as
    in the official dense code), pad bottom/right up to a multiple of M. A ``pad`` shifted block offsets the grid
    by the shift s: M - s rows/columns of padding at the top/left, then enough at the bottom/right that every
    window is whole (one more window per side when M tiles the map: the paper's (ceil(h/M) + 1) x (ceil(w/M) + 1)).
    """
    return _shift_kind(shift_mode).grid(size, window, shift)


def merged_size(size: tuple[int, int]) -> tuple[int, int]:
    """The map after patch merging: an odd side is padded by one first, so (ceil(H/2), ceil(W/2))."""
    return ceil_div(size[0], 2), ceil_div(size[1], 2)


@dataclass(frozen=True)
class StageGeometry:
    """One stage's layout at one input size: token grid, window, shift and how shifted windows and padding work."""

    resolution: tuple[int, int]  # (H, W) tokens entering the stage
    window: int  # side M of the square window (clipped to min(H, W) on a small map with ``small_maps: clip``)
    shift: int  # shift of the odd blocks (0: no shifted blocks in this stage)
    shift_mode: str  # the shift kind (``SHIFTS``: "cyclic", "pad", "none", ...): how a shifted block is computed
    windows: str  # the window kind (``WINDOWS``: "partition", "sliding", ...): which keys each query meets
    dim: int
    heads: int
    mask_padding: bool = True  # zero-padded tokens masked as keys (``pad_keys: mask``) or attended (``attend``)

    def block_shift(self, index: int) -> int:
        """The shift of block ``index`` of the stage: 0 for even blocks, ``shift`` for odd ones."""
        return self.shift if index % 2 else 0

    def grid(self, shift: int) -> tuple[int, int, int, int]:
        """(top, left, Hp, Wp) of the padded window grid of a block with ``shift`` (see ``padded_grid``)."""
        return padded_grid(self.resolution, self.window, shift, self.shift_mode)

    @property
    def padded(self) -> tuple[int, int]:
        """(Hp, Wp): the map padded to whole windows in the regular (unshifted) blocks."""
        return self.grid(0)[2:]


def stage_geometries(
    grid: tuple[int, int],
    window_size: int,
    embed_dim: int,
    num_heads: tuple[int, ...],
    shift: str = "cyclic",
    windows: str = "partition",
    small_maps: str = "clip",
    pad_keys: str = "mask",
) -> list[StageGeometry]:
    """Per-stage geometry for a token grid (H, W) after the patch embedding; stage i has embed_dim * 2^i
    channels and ``num_heads[i]`` heads, and the next stage's map is ``merged_size`` of this one.

    ``small_maps: clip`` (the classification code): a stage whose smaller side is no larger than the window uses
    a square window of that side and does not shift. ``pad``: every stage uses ``window_size`` and its odd
    blocks shift by the shift kind's ``stage_shift(window_size)`` (window_size // 2; 0 for ``shift: none``).
    Maps the window does not tile are padded bottom/right. ``windows`` (the window kind's name) is carried on each
    stage: how its windows are built is the kind's (``swin_lit.models.window_kinds``), not the geometry's."""
    if small_maps not in SMALL_MAPS:
        raise ValueError(f"small_maps must be one of {SMALL_MAPS}, got {small_maps!r}")
    if pad_keys not in PAD_KEYS:
        raise ValueError(f"pad_keys must be one of {PAD_KEYS}, got {pad_keys!r}")
    out = []
    size = (int(grid[0]), int(grid[1]))
    for i, heads in enumerate(num_heads):
        if small_maps == "clip" and min(size) <= window_size:
            window, stage_shift = min(size), 0
        else:
            window = window_size
            stage_shift = _shift_kind(shift).stage_shift(window)
        out.append(StageGeometry(size, window, stage_shift, shift, windows, embed_dim * 2**i, heads,
                                 mask_padding=pad_keys == "mask"))
        size = merged_size(size)
    return out


# -- relative offsets ------------------------------------------------------------------------------------------
def offset_range(window: int) -> range:
    """The relative offsets d = query - key along one axis of an M x M window: -(M-1) .. M-1 (2M-1 values)."""
    return range(-(window - 1), window)


def offset_index(dh, dw, window: int):
    """Row-major index of the offset (dh, dw) in the (2M-1) x (2M-1) offset table: (dh + M-1) (2M-1) + dw + M-1.
    Works on ints and on integer tensors alike."""
    return (dh + window - 1) * (2 * window - 1) + (dw + window - 1)


def neighbourhood_range(window: int) -> range:
    """Key - query offsets along one axis of a sliding M-neighbourhood: -(M-1)//2 .. M//2 (centred for an odd M;
    for an even M one more below/right, as ``Conv2d(padding="same")``)."""
    return range(-((window - 1) // 2), window // 2 + 1)
