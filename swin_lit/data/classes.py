"""The classes of each data source, read without decoding an image and without torch (config resolution
uses them: ``model.num_classes`` defaults to the number of classes in the data)."""

from __future__ import annotations

from swin_lit.data.config import DataConfig

# The embedded relation scenes (``swin_lit.data.synthetic``): direction of the disc from the square x colour.
DIRECTIONS = ("right", "left", "above", "below")
SYNTHETIC_CLASS_NAMES = tuple(f"{d}-{c}" for c in ("same", "diff") for d in DIRECTIONS)
# The anchor marks (``swin_lit.data.marks``): anchor colour x colour of the anchor's horizontal neighbour.
MARK_ANCHORS = ("white", "black", "cyan")
MARK_COLOUR_NAMES = ("red", "green", "blue", "yellow")
MARKS_CLASS_NAMES = tuple(f"{a}:{c}" for a in MARK_ANCHORS for c in MARK_COLOUR_NAMES)
# Their dense version (``swin_lit.data.marks.render_label_maps``): the anchor's pixels carry the scene's class, each
# neighbour's pixels which side of the anchor it lies on.
MARKS_DENSE_CLASS_NAMES = ("background", *(f"anchor-{n}" for n in MARKS_CLASS_NAMES), "neighbour-horizontal",
                           "neighbour-vertical")
# The relation scenes' dense version (``swin_lit.data.synthetic.render_label_maps``): the disc's pixels carry the
# scene's relation.
DENSE_CLASS_NAMES = ("background", "distractor", "square", *(f"disc-{n}" for n in SYNTHETIC_CLASS_NAMES))


def class_names(cfg: DataConfig, dense: bool = False) -> tuple[str, ...]:
    """Class names of the configured data; ``dense``: the per-pixel classes of a source's label maps (the
    segmentation task asks for them). The listing's for a stream (cached; ADE20K: objectInfo150, no label map
    decoded), else the source's reader's (``swin_lit.data.sources``). Raises DataError for data that cannot be
    read."""
    from swin_lit.data.sources import reader

    if cfg.loader == "stream":
        from swin_lit.data.listing import listing

        return listing(cfg.source, cfg.root, cfg.cache_dir).class_names
    return reader(cfg.source).class_names(cfg, "map" if dense else "class")


def num_classes(cfg: DataConfig) -> int:
    """Number of classes of the configured data (what a classifier's ``num_classes`` must be)."""
    return len(class_names(cfg))
