"""``HeadConfig``: the decode head of a segmentation model, typed and strict (imports without torch).

``kind`` names a head kind of the registry (``swin_lit.models.head_kinds``; ``docs/extending.md`` adds one). The
kind says which of the options below it reads and their recipe values, and checks them. Built in, three heads
read the backbone's feature pyramid (strides patch x 1, 2, 4, 8):

- ``upernet``: mmseg's UPerHead as in the Swin ADE20K recipe (reference 10.2): pyramid pooling on the last
  map, 1x1 laterals, top-down path, 3x3 FPN convs, every level brought to the first level's resolution and
  concatenated, a 3x3 fusion conv, dropout, a 1x1 classifier. ``channels`` is the width of every conv
  (recipe 512); ``pool_scales`` the PPM bins (recipe (1, 2, 3, 6)).
- ``fpn``: semantic FPN (reference 10.3; Kirillov et al.'s Panoptic FPN semantic branch as mmseg's FPN neck +
  FPNHead): FPN laterals and top-down path at ``channels`` (recipe 256), then per level a tower of
  3x3 conv + 2x upsample steps at ``scale_channels`` (recipe 128) down to the first level's resolution,
  summed, dropout, a 1x1 classifier.
- ``linear``: a linear probe (as DINOv2's linear segmentation head): every level resized to the first level's
  resolution, concatenated, BatchNorm, dropout, a 1x1 classifier. No spatial mixing, so a pixel's class is
  read from its own token alone: what the backbone's windows, shift and position bias let a token know is all
  the head gets (``configs/marks_dense.yaml``). It has no widths to set.

Options a head does not use are rejected (``pool_scales`` on ``fpn``, ``scale_channels`` on ``upernet``),
naming the kinds that read them; left unset they take the recipe's value for the chosen head, so a saved config
shows the widths used.

``aux_weight`` > 0 adds the recipe's auxiliary FCN head (one 3x3 conv at ``aux_channels``, recipe 256, then
dropout and a 1x1 classifier) on the second-to-last feature map (Swin's stage 3); its cross-entropy is added
to the loss with that weight (recipe 0.4). It runs in training only and is not part of inference FLOPs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from swin_lit.models.registry import HEADS
from swin_lit.typed import fail, from_dict, to_dict

RECIPE_AUX_CHANNELS = 256
# the options a head kind may read (``HeadKind.options``), and what each sets
HEAD_OPTIONS = {
    "channels": "the width of its convs",
    "scale_channels": "its upsampling towers",
    "pool_scales": "pyramid pooling",
}


@dataclass(frozen=True)
class HeadConfig:
    kind: str = "upernet"  # a head kind of the registry
    channels: int | None = None  # upernet: every conv; fpn: the FPN levels. None: 512 / 256
    scale_channels: int | None = None  # fpn only: the per-level upsampling towers. None: 128
    pool_scales: tuple[int, ...] | None = None  # upernet only: PPM bins. None: (1, 2, 3, 6)
    dropout: float = 0.1  # channel dropout before the classifier (Dropout2d, as mmseg)
    aux_weight: float = 0.0  # > 0: auxiliary FCN head on the second-to-last map, loss weight (recipe 0.4)
    aux_channels: int | None = None  # width of the auxiliary head's conv. None: 256 when the head is on

    def __post_init__(self) -> None:
        HEADS.check(self.kind)
        kind = HEADS[self.kind]
        for name, what in HEAD_OPTIONS.items():
            if name not in kind.options and getattr(self, name) is not None:
                used = " and ".join(repr(n) for n, k in HEADS.items() if name in k.options)
                fail(name, f"only applies to head {used} ({what}); remove it for head '{self.kind}'")
        if self.aux_weight == 0.0 and self.aux_channels is not None:
            fail("aux_channels", "needs the auxiliary head: set aux_weight > 0 (recipe 0.4) or remove aux_channels")
        if self.aux_weight < 0.0:
            fail("aux_weight", f"must be >= 0 (0: no auxiliary head), got {self.aux_weight}")
        if not 0.0 <= self.dropout < 1.0:
            fail("dropout", f"must be in [0, 1), got {self.dropout}")
        # resolve the recipe values of the chosen head (frozen dataclass: set once, here)
        for name, recipe in kind.options.items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, recipe)
        if self.aux_weight > 0.0 and self.aux_channels is None:
            object.__setattr__(self, "aux_channels", RECIPE_AUX_CHANNELS)
        if self.aux_channels is not None and self.aux_channels < 1:
            fail("aux_channels", f"must be >= 1, got {self.aux_channels}")
        kind.validate(self)

    @property
    def aux(self) -> bool:
        return self.aux_weight > 0.0

    @classmethod
    def from_dict(cls, data: dict) -> HeadConfig:
        return from_dict(cls, data)

    def to_dict(self) -> dict:
        return to_dict(self)


def aux_level(in_channels: Sequence[int]) -> int:
    """Index of the feature map the auxiliary head reads: the second-to-last (Swin's stage 3), or the only one."""
    return max(len(in_channels) - 2, 0)
