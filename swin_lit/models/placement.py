"""Registries of the block's norm placement (``model.norm``) and shift kind (``model.shift``); imports without torch.

The model reads them (``docs/extending.md``): ``SwinConfig`` checks the names and takes ``merge: auto`` from the
placement; ``SwinBlock.forward`` is the placement's two residual calls and the model calls ``init_norms`` on every
block after its own initialisation; ``geometry`` (stage shift, padded grid) and ``windows`` (roll, region mask)
read the shift kind, once per input size (``SwinTransformer.layout``), never per forward.

A norm placement is one ``NormPlacement`` subclass registered with ``@NORM_PLACEMENTS.register("<name>")``. It
owns the order of a residual branch and its LayerNorm (``residual``), how the block's norms start (``init_norms``)
and the patch-merging order ``merge: auto`` takes with it (``merge_order``).

A shift kind is one ``ShiftKind`` subclass registered with ``@SHIFTS.register("<name>")``. It owns, for the odd
(shifted) blocks of a stage: the shift itself (``stage_shift``), where the map sits in the grid of whole windows
(``grid``: the grid offset and the padding), how far the tokens are rolled before the partition (``roll``) and
the region labels that keep tokens the roll brought together apart (``region_labels``; None: no such mask).
Regular (even) blocks get shift 0, and every kind must then give the default: padding bottom/right only, no
roll, no region labels (the contract test checks it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from swin_lit.models.registry import NORM_PLACEMENTS, SHIFTS

# -- norm placement ------------------------------------------------------------------------------------------


class NormPlacement:
    """Base class of a norm placement (module docstring). ``residual`` is called twice per block: with the
    attention branch and ``norm1``, then with the MLP branch and ``norm2``."""

    name: ClassVar[str] = ""  # set by the registry
    description: ClassVar[str] = ""
    merge_order: ClassVar[str] = "norm_first"  # what ``merge: auto`` means with this placement

    @staticmethod
    def residual(x, branch: Callable, norm: Callable, drop_path: Callable):
        """x (B, L, C) -> x + the branch's contribution, (B, L, C)."""
        raise NotImplementedError

    @classmethod
    def init_norms(cls, norm1, norm2) -> None:
        """Set the block's two LayerNorms after the model's own initialisation (default: as they are)."""


@NORM_PLACEMENTS.register("pre")
class PreNorm(NormPlacement):
    """Swin V1: x + drop_path(f(LN(x))), merging LN(4C) then Linear."""

    description = "Swin V1: x + f(LN(x))"
    merge_order = "norm_first"

    @staticmethod
    def residual(x, branch, norm, drop_path):
        return x + drop_path(branch(norm(x)))


@NORM_PLACEMENTS.register("res_post")
class ResPostNorm(NormPlacement):
    """Swin V2: x + drop_path(LN(f(x))), the norms zero-initialised (every block starts as the identity),
    merging Linear then LN(2C)."""

    description = "Swin V2: x + LN(f(x)), post-norms zero-initialised"
    merge_order = "reduce_first"

    @staticmethod
    def residual(x, branch, norm, drop_path):
        return x + drop_path(norm(branch(x)))

    @classmethod
    def init_norms(cls, norm1, norm2) -> None:
        import torch.nn as nn

        for norm in (norm1, norm2):
            nn.init.zeros_(norm.weight)
            nn.init.zeros_(norm.bias)


# -- shift kind ----------------------------------------------------------------------------------------------


class ShiftKind:
    """Base class of a shift kind (module docstring). Sizes are (H, W) token maps, windows square of side M."""

    name: ClassVar[str] = ""  # set by the registry
    description: ClassVar[str] = ""

    @classmethod
    def stage_shift(cls, window: int) -> int:
        """The shift of a stage's odd blocks, for a stage whose map is larger than its window (0: no shifted
        blocks; a map no larger than the window never shifts, whatever the kind)."""
        return window // 2

    @classmethod
    def grid(cls, size: tuple[int, int], window: int, shift: int) -> tuple[int, int, int, int]:
        """(top, left, Hp, Wp): where the map sits in the zero-padded grid of whole windows of a block shifted by
        ``shift`` (default: at the top left, padded bottom/right up to a multiple of M)."""
        H, W = size
        return 0, 0, -(-H // window) * window, -(-W // window) * window

    @classmethod
    def roll(cls, shift: int) -> int:
        """How far the padded grid is rolled (up and left) before the partition (default: not at all)."""
        return 0

    @classmethod
    def region_labels(cls, padded: tuple[int, int], window: int, shift: int):
        """(Hp, Wp) long labels, or None: tokens of one window may attend to each other only when they carry the
        same label (default: None, no region mask; the padding mask applies whatever the kind)."""
        return None


@SHIFTS.register("cyclic")
class CyclicShift(ShiftKind):
    """Swin's efficient shifted windows: the padded map rolled by -s, partitioned by the regular grid; the 9
    regions the roll brings together are kept apart by the official -100 mask."""

    description = "Swin: roll by -M/2, regular windows, region mask"

    @classmethod
    def roll(cls, shift: int) -> int:
        return shift

    @classmethod
    def region_labels(cls, padded, window, shift):
        """Rows (and columns) split into [0, -M), [-M, -s), [-s, end); labels 0..8 row-major."""
        if not shift:
            return None
        import torch

        Hp, Wp = padded
        bounds = (slice(0, -window), slice(-window, -shift), slice(-shift, None))
        labels = torch.zeros(Hp, Wp, dtype=torch.long)
        for i, rows in enumerate(bounds):
            for j, cols in enumerate(bounds):
                labels[rows, cols] = 3 * i + j
        return labels


@SHIFTS.register("pad")
class PaddedShift(ShiftKind):
    """The same shifted windows computed naively (Swin V1 Table 5, "padding"): the window grid offset by the
    shift, M - s rows/columns of zero padding at the top/left and enough at the bottom/right that every window is
    whole (the paper's (ceil(h/M) + 1) x (ceil(w/M) + 1) windows when M tiles the map); padded keys masked."""

    description = "Swin V1 Table 5: window grid offset by M/2, zero padding"

    @classmethod
    def grid(cls, size, window, shift):
        if not shift:
            return super().grid(size, window, shift)
        H, W = size
        top = window - shift
        return top, top, -(-(H + top) // window) * window, -(-(W + top) // window) * window


@SHIFTS.register("none")
class NoShift(ShiftKind):
    """Regular windows in every block (no cross-window connection)."""

    description = "regular windows only"

    @classmethod
    def stage_shift(cls, window: int) -> int:
        return 0
