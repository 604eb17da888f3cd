"""The Swin model family: one ``SwinTransformer`` whose design switches live in ``SwinConfig``.

``SwinConfig`` and the presets import and validate without torch (the geometry is ``geometry.py``, the switches' kinds
are named in ``registry.py``); ``SwinTransformer`` and ``build`` load torch on first use.
"""

from swin_lit.models.config import SwinConfig
from swin_lit.models.presets import PRESETS, preset
from swin_lit.typed import ConfigError

__all__ = ["ConfigError", "PRESETS", "SwinConfig", "SwinTransformer", "build", "preset"]


def build(cfg: "SwinConfig | dict | str", **overrides):
    """Build a model from a config, a dict of config fields, or a preset name (plus overrides)."""
    from swin_lit.models.swin import SwinTransformer

    if isinstance(cfg, str):
        cfg = preset(cfg, **overrides)
    elif isinstance(cfg, dict):
        cfg = SwinConfig.from_dict({**cfg, **overrides})
    elif overrides:
        cfg = cfg.replace(**overrides)
    return SwinTransformer(cfg)


def __getattr__(name: str):
    if name == "SwinTransformer":
        from swin_lit.models.swin import SwinTransformer

        return SwinTransformer
    raise AttributeError(f"module 'swin_lit.models' has no attribute {name!r}")
