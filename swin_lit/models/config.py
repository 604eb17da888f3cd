"""The Swin model config: every design switch of the V1/V2 family in one place.

Switches (each independent of the others, so every combination builds):

- ``shift``      ``cyclic``: shifted windows on every second block (cyclic roll + region mask);
                 ``none``: regular windows only.
- ``norm``       ``pre`` (V1): x + f(LN(x));  ``res_post`` (V2): x + LN(f(x)), post-norms zero-initialised.
- ``attention``  ``dot``: softmax(q k^T / sqrt(d) + B) with q/k/v bias;
                 ``cosine`` (V2): softmax(cos(q, k) * exp(min(s, log 100)) + B), q/v bias only.
- ``position``   ``none``, ``abs`` (absolute embedding), ``table`` (V1 relative bias table),
                 ``abs+table``, ``cpb_linear`` / ``cpb_log`` (V2 continuous position bias MLP on linear- or
                 log-spaced relative coordinates).
- ``merge``      patch merging order: ``norm_first`` (V1: LN then Linear), ``reduce_first`` (V2: Linear then
                 LN), or ``auto`` (follows ``norm``: pre -> norm_first, res_post -> reduce_first).
- ``fused``      attention through ``F.scaled_dot_product_attention`` (True) or the explicit softmax
                 reference path (False). Same math; a speed switch, not a design switch.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

from swin_lit.typed import fail, from_dict, to_dict

Shift = Literal["cyclic", "none"]
Norm = Literal["pre", "res_post"]
Attention = Literal["dot", "cosine"]
Position = Literal["none", "abs", "table", "abs+table", "cpb_linear", "cpb_log"]
Merge = Literal["auto", "norm_first", "reduce_first"]


@dataclass(frozen=True)
class StageGeometry:
    """Derived per-stage layout: token grid, window, shift and padding."""

    resolution: int  # tokens per side entering the stage
    window: int  # window side used by this stage (clipped to the map when the map is small)
    shift: int  # cyclic shift of the odd blocks (0: no shifted blocks in this stage)
    padded: int  # resolution padded up to a multiple of the window
    dim: int
    heads: int


@dataclass(frozen=True)
class SwinConfig:
    img_size: int = 224
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
    shift: Shift = "cyclic"
    norm: Norm = "pre"
    attention: Attention = "dot"
    position: Position = "table"
    merge: Merge = "auto"
    qkv_bias: bool = True
    patch_norm: bool = True
    # Window that normalises CPB coordinates, one per stage; 0 means the stage's own window.
    # Set it to the training windows when a CPB model is moved to larger windows (extrapolation).
    pretrained_window_sizes: tuple[int, ...] | None = None
    fused: bool = True

    def __post_init__(self) -> None:
        positive = ("img_size", "patch_size", "in_chans", "num_classes", "embed_dim", "window_size")
        for name in positive:
            if getattr(self, name) < 1:
                fail(name, f"must be >= 1, got {getattr(self, name)}")
        if self.mlp_ratio <= 0:
            fail("mlp_ratio", f"must be > 0, got {self.mlp_ratio}")
        for name in ("drop_rate", "attn_drop_rate", "drop_path_rate"):
            if not 0.0 <= getattr(self, name) < 1.0:
                fail(name, f"must be in [0, 1), got {getattr(self, name)}")
        if not self.depths or any(d < 1 for d in self.depths):
            fail("depths", f"must be a non-empty list of positive integers, got {list(self.depths)}")
        if len(self.num_heads) != len(self.depths):
            fail("num_heads", f"needs one entry per stage ({len(self.depths)}), got {list(self.num_heads)}")
        if self.img_size % self.patch_size:
            p = self.patch_size
            below = self.img_size // p * p
            ok = [s for s in (below - p, below, below + p, below + 2 * p) if s > 0]
            fail(
                "img_size",
                f"{self.img_size} is not divisible by patch_size {self.patch_size}; "
                f"use a multiple of {self.patch_size} (e.g. {', '.join(map(str, ok))})",
            )
        for i, heads in enumerate(self.num_heads):
            dim = self.embed_dim * 2**i
            if heads < 1 or dim % heads:
                allowed = ", ".join(str(h) for h in range(1, dim + 1) if dim % h == 0)
                fail(f"num_heads[{i}]", f"{heads} heads do not divide stage {i} dim {dim} (embed_dim * 2^{i}); "
                     f"allowed: {allowed}")
        if self.pretrained_window_sizes is not None:
            if len(self.pretrained_window_sizes) != len(self.depths):
                fail("pretrained_window_sizes", f"needs one entry per stage ({len(self.depths)})")
            if any(w < 0 for w in self.pretrained_window_sizes):
                fail("pretrained_window_sizes", "entries must be 0 (the stage's own window) or a window size")
            if not self.position.startswith("cpb"):
                fail("pretrained_window_sizes", f"only applies to position cpb_linear/cpb_log, not {self.position!r}")
        if self.img_size // self.patch_size < 2 ** (len(self.depths) - 1):
            fail("depths", f"{len(self.depths)} stages need at least {2 ** (len(self.depths) - 1)} tokens per side; "
                 f"img_size/patch_size gives {self.img_size // self.patch_size}")

    # -- derived ---------------------------------------------------------------------------------
    @property
    def merge_order(self) -> Literal["norm_first", "reduce_first"]:
        if self.merge != "auto":
            return self.merge
        return "norm_first" if self.norm == "pre" else "reduce_first"

    @property
    def num_features(self) -> int:
        return self.embed_dim * 2 ** (len(self.depths) - 1)

    def stages(self) -> list[StageGeometry]:
        """Per-stage geometry, following the official rule: a stage whose map is no larger than the
        window uses the whole map as its window and does not shift. Larger maps that the window does
        not tile are padded (bottom/right) up to a multiple of the window."""
        out = []
        res = self.img_size // self.patch_size
        for i, heads in enumerate(self.num_heads):
            if res <= self.window_size:
                window, shift = res, 0
            else:
                window = self.window_size
                shift = window // 2 if self.shift == "cyclic" else 0
            padded = -(-res // window) * window
            out.append(StageGeometry(res, window, shift, padded, self.embed_dim * 2**i, heads))
            res = -(-res // 2)  # patch merging pads an odd map by one row/column
        return out

    def replace(self, **changes) -> SwinConfig:
        return from_dict(SwinConfig, {**to_dict(self), **changes})

    @classmethod
    def from_dict(cls, data: dict) -> SwinConfig:
        return from_dict(cls, data)

    def to_dict(self) -> dict:
        return to_dict(self)


FIELDS = tuple(f.name for f in dataclasses.fields(SwinConfig))
