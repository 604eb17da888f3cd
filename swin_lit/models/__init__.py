"""The Swin model family: one ``SwinTransformer`` whose design switches live in ``SwinConfig``."""

from swin_lit.models.config import SwinConfig
from swin_lit.models.presets import PRESETS, preset
from swin_lit.models.swin import SwinTransformer
from swin_lit.typed import ConfigError

__all__ = ["ConfigError", "PRESETS", "SwinConfig", "SwinTransformer", "build", "preset"]


def build(cfg: SwinConfig | dict | str, **overrides) -> SwinTransformer:
    """Build a model from a config, a dict of config fields, or a preset name (plus overrides)."""
    if isinstance(cfg, str):
        cfg = preset(cfg, **overrides)
    elif isinstance(cfg, dict):
        cfg = SwinConfig.from_dict({**cfg, **overrides})
    elif overrides:
        cfg = cfg.replace(**overrides)
    return SwinTransformer(cfg)
