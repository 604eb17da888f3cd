"""Official model sizes. Each preset is a ``SwinConfig``; any field can be overridden."""

from __future__ import annotations

from swin_lit.models.config import SwinConfig

_V1 = dict(img_size=224, window_size=7, shift="cyclic", norm="pre", attention="dot", absolute="none", relative="table")
_V2 = dict(img_size=256, window_size=8, shift="cyclic", norm="res_post", attention="cosine", absolute="none",
           relative="cpb_log")
_TINY = dict(embed_dim=96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24), drop_path_rate=0.2)
_SMALL = dict(embed_dim=96, depths=(2, 2, 18, 2), num_heads=(3, 6, 12, 24), drop_path_rate=0.3)
_BASE = dict(embed_dim=128, depths=(2, 2, 18, 2), num_heads=(4, 8, 16, 32), drop_path_rate=0.5)
_LARGE = dict(embed_dim=192, depths=(2, 2, 18, 2), num_heads=(6, 12, 24, 48), drop_path_rate=0.2)

PRESETS: dict[str, dict] = {
    "swin_t": {**_V1, **_TINY},
    "swin_s": {**_V1, **_SMALL},
    "swin_b": {**_V1, **_BASE},
    "swin_l": {**_V1, **_LARGE},
    "swinv2_t": {**_V2, **_TINY},
    "swinv2_s": {**_V2, **_SMALL},
    "swinv2_b": {**_V2, **_BASE},
    "swinv2_t_w16": {**_V2, **_TINY, "window_size": 16},
    "swinv2_s_w16": {**_V2, **_SMALL, "window_size": 16},
    "swinv2_b_w16": {**_V2, **_BASE, "window_size": 16},
}


def preset(name: str, **overrides) -> SwinConfig:
    """``preset("swin_t")``, ``preset("swinv2_b", num_classes=10, img_size=64)``."""
    if name not in PRESETS:
        raise KeyError(f"unknown preset {name!r}; available: {', '.join(PRESETS)}")
    return SwinConfig.from_dict({**PRESETS[name], **overrides})
