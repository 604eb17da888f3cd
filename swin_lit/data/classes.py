"""The classes of each data source, read without decoding an image and without torch (config resolution
uses them: ``model.num_classes`` defaults to the number of classes in the data)."""

from __future__ import annotations

from pathlib import Path

from swin_lit.data.config import DataConfig

# The embedded relation scenes (``swin_lit.data.synthetic``): direction of the disc from the square x colour.
DIRECTIONS = ("right", "left", "above", "below")
SYNTHETIC_CLASS_NAMES = tuple(f"{d}-{c}" for c in ("same", "diff") for d in DIRECTIONS)


def class_names(cfg: DataConfig) -> tuple[str, ...]:
    """Class names of the configured data (raises DataError for data that cannot be read)."""
    if cfg.source == "synthetic":
        return SYNTHETIC_CLASS_NAMES
    from swin_lit.data import formats

    return formats.class_names(cfg.source, Path(cfg.root))
