"""Checks that a written figure is a real picture: a PNG of the expected size with something drawn on it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) of a PNG, read by Pillow (fails on anything that is not a PNG)."""
    with Image.open(path) as image:
        assert image.format == "PNG", f"{path} is not a PNG ({image.format})"
        return image.size


def assert_drawn(path: Path, min_ink: float = 0.01) -> tuple[int, int]:
    """Assert that ``path`` is a PNG whose pixels are not one flat colour: the pixel values vary (std > 0) and at
    least ``min_ink`` of the pixels differ from the most common colour (the background). Returns (width, height)."""
    size = png_size(path)
    with Image.open(path) as image:
        pixels = np.asarray(image.convert("RGB")).reshape(-1, 3)
    assert pixels.std() > 0, f"{path} is blank (one colour)"
    # One integer per colour, 0xRRGGBB: ordered as the (R, G, B) rows are, so a tie for the most common colour
    # goes to the same colour as np.unique(pixels, axis=0) would pick (which sorts rows, ~20 s for a 1440 x 600
    # figure on a loaded 2-core machine; this sorts integers).
    packed = (pixels[:, 0].astype(np.int32) << 16) | (pixels[:, 1].astype(np.int32) << 8) | pixels[:, 2]
    colours, counts = np.unique(packed, return_counts=True)
    key = int(colours[counts.argmax()])
    background = (key >> 16, (key >> 8) & 0xFF, key & 0xFF)
    ink = float((packed != key).mean())
    assert ink >= min_ink, f"{path}: only {ink:.2%} of the pixels differ from the background {tuple(background)}"
    return size
