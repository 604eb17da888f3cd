"""The Swin model config: every design switch of the V1/V2 family in one place.

Switches (each independent of the others, so every combination builds, except the one noted under ``windows``):

- ``shift``      a shift kind of the registry (``swin_lit.models.placement``), and any kind registered later:
                 ``cyclic``: shifted windows on every second block, by a cyclic roll + region mask (the paper's
                 efficient way); ``pad``: the same shifted windows computed naively (Swin V1 Table 5, "padding"):
                 the window grid offset by the shift and the map zero-padded so that the border windows are whole,
                 padded tokens masked. Same attention groups and relative offsets as ``cyclic``, more windows;
                 ``none``: regular windows only.
- ``windows``    a window kind of the registry (``swin_lit.models.window_kinds``), and any registered later:
                 ``partition``: non-overlapping windows (Swin); ``sliding``: every token attends to the M x M
                 neighbourhood around it (Swin V1 Tables 5 and 6). For an even M the neighbourhood reaches one
                 token further down/right than up/left (offsets -(M-1)//2 .. M//2, as ``Conv2d(padding="same")``);
                 keys beyond the map are zero padding, masked. A kind whose windows take no shift (its ``shifts``
                 fact is false: ``sliding``) needs a ``shift`` that makes no shifted blocks (``none``).
- ``norm``       a norm placement of the registry (``swin_lit.models.placement``), and any registered later:
                 ``pre`` (V1): x + f(LN(x));  ``res_post`` (V2): x + LN(f(x)), post-norms zero-initialised.
- ``attention``  a similarity kind of the registry (``swin_lit.models.attention``): ``dot``: softmax(q k^T / sqrt(d)
                 + B) with q/k/v bias; ``cosine`` (V2): softmax(cos(q, k) * exp(min(s, log 100)) + B), q/v bias only.
- ``absolute``   ``none`` or ``learned`` (the official ``ape``): one embedding on the stage-1 token grid added to
                 the patch tokens, trunc-normal 0.02, no weight decay.
- ``relative``   ``none`` or a relative position bias kind of the registry (``swin_lit.models.position``):
                 ``table`` (V1), ``cpb_linear`` / ``cpb_log`` (V2 continuous position bias on linear- or
                 log-spaced coordinates), and any kind registered later.
- ``merge``      patch merging order: ``norm_first`` (V1: LN then Linear), ``reduce_first`` (V2: Linear then
                 LN), or ``auto`` (the norm placement's ``merge_order``: pre -> norm_first, res_post -> reduce_first).
- ``out_indices`` stages whose output (after the stage's blocks, before its patch merging) gets its own
                 LayerNorm (``norm0`` .. ``norm3``, the official dense backbones' names) for
                 ``SwinTransformer.forward_intermediates``; empty for a classifier (no extra parameters).
- ``fused``      attention through ``F.scaled_dot_product_attention`` (True) or the explicit softmax
                 reference path (False). Same math; a speed switch, not a design switch.

- ``small_maps`` ``clip`` (the classification code): a stage map whose smaller side is no larger than the window
                 uses a square window of side min(H, W) and no shift (a 2 x 4 map gets a 2 x 2 window);
                 ``pad`` (the official segmentation backbone): the window stays ``window_size``, the odd blocks
                 shift by window_size // 2, and the small map is zero-padded to whole windows like any other.
- ``pad_keys``   ``mask``: the zero-padded tokens of a map the window does not tile are never attended as keys
                 (-inf); ``attend`` (the official segmentation backbone): they are attended like real tokens
                 (zero tokens: their keys and values are the qkv biases); the shifted blocks' region mask is built
                 on the padded map either way. Applies to every zero padding (``shift: pad`` borders, sliding
                 neighbourhoods beyond the map).
                 Defaults ``clip`` / ``mask``: the classification code's behaviour and the one every run made
                 before these switches existed (a stored config without them rebuilds that model).
                 ``official.build_backbone`` sets ``pad`` / ``attend``. Where every stage map is larger than the
                 window and tiled by it, neither switch changes anything (docs/dense_backbone.md).

Geometry (``stages``; the rules are pure functions in ``swin_lit.models.geometry``), per stage map of H x W tokens:
  - the window is square, of side M = ``window_size``, except on a small map with ``small_maps: clip`` (above);
  - each side has its own window count: a side that M does not tile is zero-padded at the bottom/right up to a
    multiple of M (before the cyclic roll), the padded tokens masked or attended as ``pad_keys`` says;
  - shifted blocks (every second block) shift on both sides by the shift kind's ``stage_shift(M)`` (M // 2 for
    ``cyclic`` and ``pad``, 0 for ``none``);
  - an odd side is padded by one before patch merging, so the next map is ceil(H/2) x ceil(W/2).
``img_size`` is one side (square) or ``[H, W]``. A built model also runs at any other input size the patch
divides: its geometry is recomputed for that size by the same rule (see ``SwinTransformer.layout``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from swin_lit.models.geometry import StageGeometry, stage_geometries
from swin_lit.models.registry import NORM_PLACEMENTS, RELATIVE_BIASES, SHIFTS, SIMILARITIES, WINDOWS
from swin_lit.typed import fail, from_dict, to_dict

Absolute = Literal["none", "learned"]
Merge = Literal["auto", "norm_first", "reduce_first"]
PadKeys = Literal["mask", "attend"]
SmallMaps = Literal["clip", "pad"]


@dataclass(frozen=True)
class SwinConfig:
    img_size: int | tuple[int, int] = 224
    patch_size: int = 4
    in_chans: int = 3
    num_classes: int = 1000
    embed_dim: int = 96
    depths: tuple[int, ...] = (2, 2, 6, 2)
    num_heads: tuple[int, ...] = (3, 6, 12, 24)
    window_size: int = 7
    mlp_ratio: float = 4.0
    drop_rate: float = 0.0
    attn_drop_rate: float = 0.0
    drop_path_rate: float = 0.1
    shift: str = "cyclic"  # a kind of the SHIFTS registry (swin_lit.models.placement)
    windows: str = "partition"  # a kind of the WINDOWS registry (swin_lit.models.window_kinds)
    norm: str = "pre"  # a kind of the NORM_PLACEMENTS registry (swin_lit.models.placement)
    attention: str = "dot"
    absolute: Absolute = "none"
    relative: str = "table"
    merge: Merge = "auto"
    qkv_bias: bool = True
    patch_norm: bool = True
    # Window that normalises the relative coordinates, one per stage (kinds that have coordinates, e.g. CPB);
    # 0 means the stage's own window. Set it to the training windows when a CPB model is moved to larger
    # windows (extrapolation).
    pretrained_window_sizes: tuple[int, ...] | None = None
    out_indices: tuple[int, ...] = ()
    fused: bool = True
    pad_keys: PadKeys = "mask"
    small_maps: SmallMaps = "clip"

    # Switches added after runs were stored, with the behaviour every earlier run had: a run config's hash leaves
    # them out at that value, so the earlier run folders keep their names (``RunConfig.hash``).
    ADDED_LATER: ClassVar[dict[str, object]] = {"pad_keys": "mask", "small_maps": "clip"}

    def __post_init__(self) -> None:
        if isinstance(self.img_size, tuple) and self.img_size[0] == self.img_size[1]:
            object.__setattr__(self, "img_size", self.img_size[0])  # one spelling of a square size
        SHIFTS.check(self.shift)  # registry names only: no torch
        WINDOWS.check(self.windows)
        NORM_PLACEMENTS.check(self.norm)
        if self.num_classes < 0:
            fail("num_classes", f"must be >= 1, or 0 for a backbone without a classifier, got {self.num_classes}")
        positive = ("patch_size", "in_chans", "embed_dim", "window_size")
        for name in positive:
            if getattr(self, name) < 1:
                fail(name, f"must be >= 1, got {getattr(self, name)}")
        if min(self.image_size) < 1:
            fail("img_size", f"must be >= 1, got {self.img_size}")
        if self.mlp_ratio <= 0:
            fail("mlp_ratio", f"must be > 0, got {self.mlp_ratio}")
        for name in ("drop_rate", "attn_drop_rate", "drop_path_rate"):
            if not 0.0 <= getattr(self, name) < 1.0:
                fail(name, f"must be in [0, 1), got {getattr(self, name)}")
        if not self.depths or any(d < 1 for d in self.depths):
            fail("depths", f"must be a non-empty list of positive integers, got {list(self.depths)}")
        if len(self.num_heads) != len(self.depths):
            fail("num_heads", f"needs one entry per stage ({len(self.depths)}), got {list(self.num_heads)}")
        for side in self.image_size:
            if side % self.patch_size:
                p = self.patch_size
                below = side // p * p
                ok = [s for s in (below - p, below, below + p, below + 2 * p) if s > 0]
                fail(
                    "img_size",
                    f"{side} is not divisible by patch_size {self.patch_size}; "
                    f"use a multiple of {self.patch_size} (e.g. {', '.join(map(str, ok))})",
                )
        for i, heads in enumerate(self.num_heads):
            dim = self.embed_dim * 2**i
            if heads < 1 or dim % heads:
                allowed = ", ".join(str(h) for h in range(1, dim + 1) if dim % h == 0)
                fail(f"num_heads[{i}]", f"{heads} heads do not divide stage {i} dim {dim} (embed_dim * 2^{i}); "
                     f"allowed: {allowed}")
        self._check_windows_take_the_shift()
        SIMILARITIES.check(self.attention)
        normalised = self._relative_normalised()
        if self.pretrained_window_sizes is not None:
            if len(self.pretrained_window_sizes) != len(self.depths):
                fail("pretrained_window_sizes", f"needs one entry per stage ({len(self.depths)})")
            if any(w < 0 for w in self.pretrained_window_sizes):
                fail("pretrained_window_sizes", "entries must be 0 (the stage's own window) or a window size")
            if not normalised:
                fail("pretrained_window_sizes", f"only applies to relative kinds with window-normalised coordinates "
                     f"({', '.join(map(repr, RELATIVE_BIASES.having('normalised')))}), not relative {self.relative!r}")
        n = len(self.depths)
        if sorted(set(self.out_indices)) != list(self.out_indices) or any(not 0 <= i < n for i in self.out_indices):
            fail("out_indices", f"must be increasing stage indices in [0, {n}), got {list(self.out_indices)}")
        if min(self.grid) < 2 ** (n - 1):
            fail("depths", f"{n} stages need at least {2 ** (n - 1)} tokens per side; "
                 f"img_size/patch_size gives {'x'.join(map(str, self.grid))}")

    def _check_windows_take_the_shift(self) -> None:
        """ConfigError naming ``shift`` unless the window kind takes a shift (its ``shifts`` fact, torch-free) or
        the shift kind makes no shifted blocks at this window (``ShiftKind.stage_shift``; the shift kinds are
        torch-free)."""
        if WINDOWS.fact(self.windows, "shifts") or not SHIFTS[self.shift].stage_shift(self.window_size):
            return
        still = [name for name in SHIFTS.names() if not SHIFTS[name].stage_shift(self.window_size)]
        fail("shift", f"{self.shift!r} does not go with windows: {self.windows} (a window kind whose windows take no "
             f"shift); use shift: {' or '.join(still)}")

    def _relative_normalised(self) -> bool:
        """Whether ``relative``'s coordinates are window-normalised (False for "none"); ConfigError listing the
        registered kinds (the registry's facts of the built-in kinds: no torch needed)."""
        if self.relative == "none":
            return False
        RELATIVE_BIASES.check(self.relative)
        return bool(RELATIVE_BIASES.fact(self.relative, "normalised"))

    # -- derived ---------------------------------------------------------------------------------
    @property
    def image_size(self) -> tuple[int, int]:
        """(H, W) of the input image."""
        return (self.img_size, self.img_size) if isinstance(self.img_size, int) else tuple(self.img_size)

    @property
    def grid(self) -> tuple[int, int]:
        """(H, W) tokens after the patch embedding."""
        return self.image_size[0] // self.patch_size, self.image_size[1] // self.patch_size

    @property
    def merge_order(self) -> Literal["norm_first", "reduce_first"]:
        """``merge``, or for ``auto`` the norm placement's own (``NormPlacement.merge_order``)."""
        if self.merge != "auto":
            return self.merge
        return NORM_PLACEMENTS.fact(self.norm, "merge_order")

    @property
    def num_features(self) -> int:
        return self.embed_dim * 2 ** (len(self.depths) - 1)

    def stages(self, grid: tuple[int, int] | None = None) -> list[StageGeometry]:
        """Per-stage geometry for a token grid (default: the configured image's), by the rule of the module
        docstring (``geometry.stage_geometries``, with this config's ``small_maps`` and ``pad_keys``)."""
        return stage_geometries(grid or self.grid, self.window_size, self.embed_dim, self.num_heads, self.shift,
                                self.windows, self.small_maps, self.pad_keys)

    def replace(self, **changes) -> SwinConfig:
        return from_dict(SwinConfig, {**to_dict(self), **changes})

    @classmethod
    def from_dict(cls, data: dict) -> SwinConfig:
        return from_dict(cls, data)

    def to_dict(self) -> dict:
        return to_dict(self)

