"""Move a trained model to a larger image size and window (the Swin V2 Table 1 experiment).

The methods a model allows are its relative-bias kind's ``transfer_methods`` (``swin_lit.models.position``):
  - ``bicubic``      (``table``): each relative position table resized bicubically (the official V1 recipe);
  - ``extrapolate``  (``cpb_linear``, ``cpb_log``): CPB coordinates stay normalised by the TRAINING window, so a
                     larger window feeds the MLP coordinates beyond the range it was trained on (the paper's setting);
  - ``renormalize``  (``cpb_linear``, ``cpb_log``): coordinates normalised by the NEW window (same range as in
                     training, but each offset maps to a different coordinate).
A model without a relative bias (``relative: none``) moves by ``bicubic``. In every case a learned absolute
embedding is resized bicubically to the new token grid.
"""

from __future__ import annotations

from swin_lit.models.config import SwinConfig
from swin_lit.models.official import load_pretrained
from swin_lit.models.position import relative_kind
from swin_lit.models.registry import TRANSFER_METHODS, transfer_methods
from swin_lit.models.swin import SwinTransformer
from swin_lit.typed import ConfigError


def transfer_config(cfg: SwinConfig, img_size: int, window_size: int, method: str) -> SwinConfig:
    """The config of the moved model; raises ConfigError naming what does not fit."""
    if method not in TRANSFER_METHODS:
        raise ConfigError(f"method: got {method!r}; allowed values are {', '.join(TRANSFER_METHODS)}")
    allowed = transfer_methods(cfg.relative)
    if method not in allowed:
        supported = ", ".join(allowed) or "none (its kind cannot be moved to another window)"
        raise ConfigError(f"method: {method!r} does not fit relative {cfg.relative!r}; use {supported}")
    changes: dict = {"img_size": img_size, "window_size": window_size}
    kind = relative_kind(cfg.relative)
    if kind is not None and kind.normalised:
        own = cfg.pretrained_window_sizes or (0,) * len(cfg.depths)
        moved = tuple(kind.normalising_window_after(method, p or g.window) for p, g in zip(own, cfg.stages()))
        changes["pretrained_window_sizes"] = moved if any(moved) else None
    return cfg.replace(**changes)


def transfer(model: SwinTransformer, img_size, window_size: int, method: str) -> SwinTransformer:
    """A new model at ``img_size`` / ``window_size`` carrying ``model``'s weights by ``method``
    (same dtype and device; derived tensors rebuilt for the new resolution)."""
    cfg = transfer_config(model.cfg, img_size, window_size, method)
    param = next(model.parameters())
    moved = SwinTransformer(cfg).to(device=param.device, dtype=param.dtype)
    return load_pretrained(moved, model.state_dict(), method=method if relative_kind(cfg.relative) else None,
                           source_grid=model.cfg.grid)


def initialise_from(model, source, method: str | None = None) -> None:
    """Load a trained ``source`` (a ``SwinTransformer`` or ``SwinSegmenter``) into ``model`` (either kind) at
    ``model``'s own image and window size, by the official recipe (``load_pretrained``: V1 tables resized
    bicubically, CPB as is, a learned absolute embedding resized from the source's token grid): a classifier's
    whole network (a classifier for other classes gets a fresh head), a segmenter's backbone, and a segmenter's
    decode and auxiliary heads when ``source`` is a segmenter with the same head and classes. ``method``: how
    relative biases move (default: the kind's first, the official recipe)."""
    target_backbone = getattr(model, "backbone", model)
    source_backbone = getattr(source, "backbone", source)
    load_pretrained(target_backbone, source_backbone.state_dict(), method=method,
                    source_grid=source_backbone.cfg.grid)
    if hasattr(model, "decode_head") and hasattr(source, "decode_head") and \
            (model.head_cfg, model.num_classes) == (source.head_cfg, source.num_classes):
        model.decode_head.load_state_dict(source.decode_head.state_dict())
        if model.aux_head is not None:
            model.aux_head.load_state_dict(source.aux_head.state_dict())


def transfer_segmenter(model, img_size, window_size: int, method: str):
    """A ``SwinSegmenter`` whose backbone is moved like ``transfer`` (``img_size``: the new crop, an int or
    (H, W)); the decode and auxiliary heads do not depend on the window and keep their weights as they are."""
    from swin_lit.models.segmenter import SwinSegmenter

    cfg = transfer_config(model.cfg, img_size, window_size, method)
    param = next(model.parameters())
    moved = SwinSegmenter(cfg, model.head_cfg, model.num_classes).to(device=param.device, dtype=param.dtype)
    initialise_from(moved, model, method if relative_kind(cfg.relative) else None)
    return moved.train(model.training)
