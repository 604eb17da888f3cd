"""``SegAugmentConfig``: the training augmentation of segmentation pairs, typed (imports without torch; the
augmentation itself is ``swin_lit.data.seg_augment``, whose docstring gives the recipe)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from swin_lit.typed import fail

__all__ = ["SegAugmentConfig"]


@dataclass(frozen=True)
class SegAugmentConfig:
    """Training augmentation of segmentation pairs (see the module docstring); the defaults are the recipe's
    except ``cat_max_ratio`` (recipe 0.75) and the crop (recipe 512 x 512)."""

    crop: tuple[int, int] = (512, 512)  # (height, width)
    scale: tuple[int, int] | None = None  # (long side, short side) keep-ratio base size; None: the image's own
    ratio_range: tuple[float, float] = (0.5, 2.0)
    interpolation: Literal["bilinear", "bicubic"] = "bilinear"
    cat_max_ratio: float = 1.0  # 1: off
    hflip: float = 0.5
    brightness: float = 32.0  # 0: off
    contrast: float = 0.5  # 0: off
    saturation: float = 0.5  # 0: off

    def __post_init__(self) -> None:
        if min(self.crop) < 1:
            fail("crop", f"must be positive (height, width), got {list(self.crop)}")
        if self.scale is not None and (min(self.scale) < 1 or self.scale[0] < self.scale[1]):
            fail("scale", f"must be (long side, short side) with long >= short >= 1, got {list(self.scale)}")
        lo, hi = self.ratio_range
        if not 0 < lo <= hi:
            fail("ratio_range", f"must be (low, high) with 0 < low <= high, got {list(self.ratio_range)}")
        if not 0 < self.cat_max_ratio <= 1:
            fail("cat_max_ratio", f"must be in (0, 1] (1: off), got {self.cat_max_ratio}")
        if not 0 <= self.hflip <= 1:
            fail("hflip", f"is a probability in [0, 1], got {self.hflip}")
        if not 0 <= self.brightness <= 255:
            fail("brightness", f"must be in [0, 255] (0-255 units), got {self.brightness}")
        for name in ("contrast", "saturation"):
            if not 0 <= getattr(self, name) < 1:
                fail(name, f"must be in [0, 1) (factor 1 +- {name}), got {getattr(self, name)}")
