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
    colours, counts = np.unique(pixels, axis=0, return_counts=True)
    background = colours[counts.argmax()]
    ink = float((pixels != background).any(axis=1).mean())
    assert ink >= min_ink, f"{path}: only {ink:.2%} of the pixels differ from the background {tuple(background)}"
    return size
