"""Move a trained model to a larger image size and window (the Swin V2 Table 1 experiment).

Methods, by the model's ``position`` switch:
  - ``bicubic``      (``none``, ``abs``, ``table``, ``abs+table``): each relative position table and the absolute
                     embedding resized bicubically (the official V1 fine-tune recipe).
  - ``extrapolate``  (``cpb_linear``, ``cpb_log``): CPB coordinates stay normalised by the TRAINING window, so a
                     larger window feeds the MLP coordinates beyond the range it was trained on (the paper's setting).
  - ``renormalize``  (``cpb_linear``, ``cpb_log``): coordinates normalised by the NEW window (same range as in
                     training, but each offset maps to a different coordinate).
"""

from __future__ import annotations

from swin_lit.models.config import SwinConfig
from swin_lit.models.official import load_pretrained
from swin_lit.models.swin import SwinTransformer
from swin_lit.typed import ConfigError

METHODS = ("bicubic", "extrapolate", "renormalize")
_ALIASES = {"cpb_extrapolate": "extrapolate", "cpb_renormalize": "renormalize"}


def methods_for(position: str) -> tuple[str, ...]:
    """The transfer methods that fit a ``position`` switch value."""
    return ("extrapolate", "renormalize") if position.startswith("cpb") else ("bicubic",)


def transfer_config(cfg: SwinConfig, img_size: int, window_size: int, method: str) -> SwinConfig:
    """The config of the moved model; raises ConfigError naming what does not fit."""
    method = _ALIASES.get(method, method)
    if method not in METHODS:
        raise ConfigError(f"method: got {method!r}; allowed values are {', '.join(METHODS)}")
    allowed = methods_for(cfg.position)
    if method not in allowed:
        raise ConfigError(f"method: {method!r} does not fit position {cfg.position!r}; use {', '.join(allowed)}")
    changes: dict = {"img_size": img_size, "window_size": window_size}
    if cfg.position.startswith("cpb"):
        if method == "extrapolate":
            own = cfg.pretrained_window_sizes or (0,) * len(cfg.depths)
            changes["pretrained_window_sizes"] = tuple(p or g.window for p, g in zip(own, cfg.stages()))
        else:
            changes["pretrained_window_sizes"] = None
    return cfg.replace(**changes)


def transfer(model: SwinTransformer, img_size: int, window_size: int, method: str) -> SwinTransformer:
    """A new model at ``img_size`` / ``window_size`` carrying ``model``'s weights by ``method``
    (same dtype and device; derived buffers rebuilt for the new resolution)."""
    cfg = transfer_config(model.cfg, img_size, window_size, method)
    param = next(model.parameters())
    moved = SwinTransformer(cfg).to(device=param.device, dtype=param.dtype)
    return load_pretrained(moved, model.state_dict())
