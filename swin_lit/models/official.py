"""The official Swin V1/V2 models and checkpoints, in swin-lit terms.

- ``build_model(kind, **official_kwargs)``: the swin-lit model equal to the official constructor's.
- ``load_state_dict(model, state_dict)``: load an official (or timm) checkpoint exactly.
- ``load_pretrained(model, state_dict)``: the official fine-tune recipe into a model of another
  image/window size (V1 tables and absolute embedding resized bicubically; V2 weights as they are).

Key mapping, official -> swin-lit (everything else has the same name):
  ``attn.relative_position_bias_table`` -> ``attn.position_bias.table``
  ``attn.cpb_mlp.*``                    -> ``attn.position_bias.mlp.*``
The official persistent buffers (``relative_position_index``, ``relative_coords_table``, ``attn_mask``)
are dropped: swin-lit rebuilds them for its own resolution and never saves them.
timm's layout (patch merging at the start of the next stage, ``head.fc.*``) is converted first.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch
import torch.nn.functional as F

from swin_lit.models.config import SwinConfig
from swin_lit.models.swin import SwinTransformer
from swin_lit.typed import ConfigError

_COMMON = {
    "img_size", "patch_size", "in_chans", "num_classes", "embed_dim", "depths", "num_heads", "window_size",
    "mlp_ratio", "qkv_bias", "ape", "patch_norm", "drop_rate", "attn_drop_rate", "drop_path_rate",
}
_ACCEPTED = {"v1": _COMMON, "v2": _COMMON | {"pretrained_window_sizes"}}
_DERIVED_BUFFERS = ("relative_position_index", "relative_coords_table", "attn_mask")


def official_config(kind: str, **kwargs) -> SwinConfig:
    """The ``SwinConfig`` equal to the official constructor called with ``kwargs``."""
    if kind not in _ACCEPTED:
        raise ConfigError(f"kind: got {kind!r}; allowed values are 'v1', 'v2'")
    unknown = sorted(set(kwargs) - _ACCEPTED[kind])
    if unknown:
        allowed = ", ".join(sorted(_ACCEPTED[kind]))
        raise ConfigError(f"{unknown[0]}: not an official {kind} argument; allowed: {allowed}")
    kw = dict(kwargs)
    ape = kw.pop("ape", False)
    if "img_size" in kw and not isinstance(kw["img_size"], int):
        kw["img_size"] = _square(kw["img_size"], "img_size")
    if "patch_size" in kw and not isinstance(kw["patch_size"], int):
        kw["patch_size"] = _square(kw["patch_size"], "patch_size")
    kw.setdefault("drop_path_rate", 0.1)
    if kind == "v1":
        switches = dict(shift="cyclic", norm="pre", attention="dot", position="abs+table" if ape else "table")
    else:
        if ape:
            raise ConfigError("ape: V2 with an absolute embedding has no value in the position switch")
        pretrained = tuple(kw.pop("pretrained_window_sizes", ()) or ())
        if any(pretrained):
            kw["pretrained_window_sizes"] = pretrained
        switches = dict(shift="cyclic", norm="res_post", attention="cosine", position="cpb_log")
    for key in ("depths", "num_heads"):
        if key in kw:
            kw[key] = tuple(kw[key])
    return SwinConfig.from_dict({**kw, **switches, "merge": "auto"})


def build_model(kind: str, **official_kwargs) -> SwinTransformer:
    """``build_model("v2", img_size=256, window_size=8, ...)``: the swin-lit equivalent of the official model."""
    return SwinTransformer(official_config(kind, **official_kwargs))


def _square(value, name: str) -> int:
    a, b = value
    if a != b:
        raise ConfigError(f"{name}: only square sizes are supported, got {tuple(value)}")
    return a


def _unwrap(state_dict: Mapping) -> dict[str, torch.Tensor]:
    for key in ("model", "state_dict"):
        if key in state_dict and isinstance(state_dict[key], Mapping):
            return dict(state_dict[key])
    return dict(state_dict)


def _from_timm(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """timm layout -> official: ``layers.{i}.downsample`` -> ``layers.{i-1}.downsample``, ``head.fc`` -> ``head``."""
    out = {}
    for key, value in sd.items():
        m = re.match(r"layers\.(\d+)\.downsample\.(.*)", key)
        if m:
            key = f"layers.{int(m.group(1)) - 1}.downsample.{m.group(2)}"
        elif key.startswith("head.fc."):
            key = "head." + key[len("head.fc."):]
        out[key] = value
    return out


def to_swin_lit_keys(state_dict: Mapping) -> dict[str, torch.Tensor]:
    """Official or timm state dict -> swin-lit names, without the derived buffers."""
    sd = _unwrap(state_dict)
    if "head.fc.weight" in sd or "layers.0.downsample.reduction.weight" not in sd and any(
        k.startswith("layers.1.downsample.") for k in sd
    ):
        sd = _from_timm(sd)
    out = {}
    for key, value in sd.items():
        if key.rsplit(".", 1)[-1] in _DERIVED_BUFFERS or key.endswith("k_bias"):
            continue
        key = key.replace("attn.relative_position_bias_table", "attn.position_bias.table")
        key = key.replace("attn.cpb_mlp.", "attn.position_bias.mlp.")
        out[key] = value
    return out


def _check_keys(model: SwinTransformer, sd: dict[str, torch.Tensor], allow_missing: set[str] = frozenset()) -> None:
    expected = model.state_dict()
    missing = sorted(set(expected) - set(sd) - allow_missing)
    unexpected = sorted(set(sd) - set(expected))
    wrong = sorted(k for k in set(sd) & set(expected) if sd[k].shape != expected[k].shape)
    problems = []
    if missing:
        problems.append(f"missing keys: {', '.join(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {', '.join(unexpected)}")
    if wrong:
        shapes = (f"{k} {tuple(sd[k].shape)} vs {tuple(expected[k].shape)}" for k in wrong)
        problems.append("shape mismatch: " + ", ".join(shapes))
    if problems:
        raise KeyError("checkpoint does not fit the model; " + "; ".join(problems))


def load_state_dict(model: SwinTransformer, state_dict: Mapping) -> SwinTransformer:
    """Load an official-format (bare or under ``model``) or timm-format state dict exactly."""
    sd = to_swin_lit_keys(state_dict)
    _check_keys(model, sd)
    model.load_state_dict(sd, strict=True)
    return model


def resize_table(table: torch.Tensor, size: int) -> torch.Tensor:
    """((2M-1)^2, heads) relative bias table -> ((size)^2, heads), bicubic on the (2M-1)x(2M-1) grid
    (official recipe: align_corners=False, no antialias)."""
    side = int(round(table.shape[0] ** 0.5))
    if side == size:
        return table
    heads = table.shape[1]
    grid = table.T.reshape(1, heads, side, side)
    return F.interpolate(grid, size=(size, size), mode="bicubic").reshape(heads, size * size).T


def resize_abs_embed(embed: torch.Tensor, side: int) -> torch.Tensor:
    """(1, L, C) absolute embedding of a sqrt(L) grid -> (1, side^2, C), bicubic."""
    old = int(round(embed.shape[1] ** 0.5))
    if old == side:
        return embed
    C = embed.shape[2]
    grid = embed.reshape(1, old, old, C).permute(0, 3, 1, 2)
    return F.interpolate(grid, size=(side, side), mode="bicubic").permute(0, 2, 3, 1).reshape(1, side * side, C)


def load_pretrained(model: SwinTransformer, state_dict: Mapping) -> SwinTransformer:
    """The official fine-tune recipe (``utils.load_pretrained``) into a model of any image/window size:
    derived buffers rebuilt, V1 tables and the absolute embedding resized bicubically, CPB weights as they
    are, and a classifier with another class count re-initialised to zero."""
    sd = to_swin_lit_keys(state_dict)
    target = model.state_dict()
    for key, value in list(sd.items()):
        if key.endswith("position_bias.table") and key in target and value.shape != target[key].shape:
            if value.shape[1] != target[key].shape[1]:
                raise KeyError(f"{key}: {value.shape[1]} heads in the checkpoint, {target[key].shape[1]} in the model")
            sd[key] = resize_table(value, int(round(target[key].shape[0] ** 0.5)))
        elif key == "absolute_pos_embed" and key in target and value.shape != target[key].shape:
            sd[key] = resize_abs_embed(value, int(round(target[key].shape[1] ** 0.5)))
    head_changed = "head.weight" in sd and sd["head.weight"].shape != target["head.weight"].shape
    if head_changed:
        del sd["head.weight"], sd["head.bias"]
        torch.nn.init.zeros_(model.head.weight)
        torch.nn.init.zeros_(model.head.bias)
    _check_keys(model, sd, allow_missing={"head.weight", "head.bias"} if head_changed else set())
    model.load_state_dict(sd, strict=not head_changed)
    return model
