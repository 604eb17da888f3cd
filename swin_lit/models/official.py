"""The official Swin V1/V2 models and checkpoints, in swin-lit terms.

- ``build_model(kind, **official_kwargs)``: the swin-lit model equal to the official constructor's.
- ``build_backbone(kind, **official_seg_kwargs)``: the swin-lit dense backbone equal to the official
  segmentation backbone (``mmseg/models/backbones/swin_transformer.py`` of Swin-Transformer-Semantic-Segmentation,
  the same file in the detection repository): its keyword arguments, its geometry (``small_maps: pad``,
  ``pad_keys: attend``), its output norms ``norm0``..``norm3`` and no final norm; ``forward_intermediates``
  gives its outputs.
- ``load_state_dict(model, state_dict)``: load an official, timm, or mmseg / mmdet checkpoint exactly.
- ``load_pretrained(model, state_dict)``: the official fine-tune recipe into a model of another
  image/window size (V1 tables and absolute embedding resized bicubically; V2 weights as they are).

Key mapping, official -> swin-lit (everything else has the same name), from each relative-bias kind's
``official_names`` (``swin_lit.models.position``):
  ``attn.relative_position_bias_table`` -> ``attn.relative_bias.table``   (kind ``table``)
  ``attn.cpb_mlp.*``                    -> ``attn.relative_bias.mlp.*``   (kinds ``cpb_log``, ``cpb_linear``)
The official ``ape`` is ``absolute: learned`` (V1 and V2); ``img_size`` may be an int or ``[H, W]``.
The official persistent buffers (``relative_position_index``, ``relative_coords_table``, ``attn_mask``)
are dropped: swin-lit rebuilds them for its own resolution and never saves them.
timm's layout (patch merging at the start of the next stage, ``head.fc.*``) is converted first. An mmseg / mmdet
checkpoint (every backbone key under ``backbone.``) loads its backbone; its other keys (``decode_head.*``,
``auxiliary_head.*``, ``neck.*`` ...) are skipped and named in a warning (``backbone_state`` returns them).
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Mapping

import torch
import torch.nn as nn

from swin_lit.models.config import SwinConfig
from swin_lit.models.position import RELATIVE_BIASES, RelativeBias, resize_absolute
from swin_lit.models.swin import SwinTransformer
from swin_lit.typed import ConfigError

_COMMON = {
    "img_size", "patch_size", "in_chans", "num_classes", "embed_dim", "depths", "num_heads", "window_size",
    "mlp_ratio", "qkv_bias", "ape", "patch_norm", "drop_rate", "attn_drop_rate", "drop_path_rate",
}
_ACCEPTED = {"v1": _COMMON, "v2": _COMMON | {"pretrained_window_sizes"}}
_DERIVED_BUFFERS = ("relative_position_index", "relative_coords_table", "attn_mask")


def _check_arguments(kind: str, kwargs: dict, accepted: dict[str, set[str]], what: str) -> None:
    """ConfigError naming the kind or the first keyword argument that the official constructor does not take."""
    if kind not in accepted:
        raise ConfigError(f"kind: got {kind!r}; allowed values are {', '.join(map(repr, accepted))}")
    unknown = sorted(set(kwargs) - accepted[kind])
    if unknown:
        raise ConfigError(f"{unknown[0]}: not {what}; allowed: {', '.join(sorted(accepted[kind]))}")


def official_config(kind: str, **kwargs) -> SwinConfig:
    """The ``SwinConfig`` equal to the official constructor called with ``kwargs``."""
    _check_arguments(kind, kwargs, _ACCEPTED, f"an official {kind} argument")
    kw = dict(kwargs)
    absolute = "learned" if kw.pop("ape", False) else "none"
    if "img_size" in kw and not isinstance(kw["img_size"], int):
        kw["img_size"] = tuple(kw["img_size"])
    if "patch_size" in kw and not isinstance(kw["patch_size"], int):
        kw["patch_size"] = _square(kw["patch_size"], "patch_size")
    kw.setdefault("drop_path_rate", 0.1)
    if kind == "v1":
        switches = dict(shift="cyclic", norm="pre", attention="dot", relative="table")
    else:
        pretrained = tuple(kw.pop("pretrained_window_sizes", ()) or ())
        if any(pretrained):
            kw["pretrained_window_sizes"] = pretrained
        switches = dict(shift="cyclic", norm="res_post", attention="cosine", relative="cpb_log")
    for key in ("depths", "num_heads"):
        if key in kw:
            kw[key] = tuple(kw[key])
    return SwinConfig.from_dict({**kw, **switches, "absolute": absolute, "merge": "auto"})


def build_model(kind: str, **official_kwargs) -> SwinTransformer:
    """``build_model("v2", img_size=256, window_size=8, ...)``: the swin-lit equivalent of the official model."""
    return SwinTransformer(official_config(kind, **official_kwargs))


# The official segmentation backbone's keyword arguments (SwinTransformer.__init__ of the segmentation and
# detection repositories) that swin-lit maps; ``norm_layer`` (always LayerNorm) is not a config value.
_SEG_COMMON = {
    "pretrain_img_size", "patch_size", "in_chans", "embed_dim", "depths", "num_heads", "window_size", "mlp_ratio",
    "qkv_bias", "qk_scale", "drop_rate", "attn_drop_rate", "drop_path_rate", "ape", "patch_norm", "out_indices",
    "frozen_stages", "use_checkpoint",
}
_SEG_ACCEPTED = {"v1": _SEG_COMMON, "v2": _SEG_COMMON | {"pretrained_window_sizes"}}
# The official segmentation backbone's geometry (reference 10.1): small maps padded to one window and shifted,
# zero-padded tokens attended as keys.
DENSE_GEOMETRY = {"small_maps": "pad", "pad_keys": "attend"}


def official_backbone_config(kind: str, **kwargs) -> SwinConfig:
    """The ``SwinConfig`` of the official segmentation backbone called with ``kwargs`` (its defaults otherwise:
    Swin-T, window 7, drop_path_rate 0.2, out_indices (0, 1, 2, 3)), with the official dense geometry."""
    _check_arguments(kind, kwargs, _SEG_ACCEPTED, "an official segmentation backbone argument")
    kw = dict(kwargs)
    if kw.pop("qk_scale", None) is not None:
        raise ConfigError("qk_scale: only None (the scale head_dim ** -0.5) is supported")
    if kw.pop("frozen_stages", -1) != -1:
        raise ConfigError("frozen_stages: only -1 is supported (freezing is a training choice: set requires_grad "
                          "on the stages yourself)")
    if kw.pop("use_checkpoint", False):
        raise ConfigError("use_checkpoint: only False is supported (activation checkpointing is not implemented)")
    size = kw.pop("pretrain_img_size", 224)
    kw["img_size"] = size if isinstance(size, int) else tuple(size)
    out_indices = tuple(kw.pop("out_indices", (0, 1, 2, 3)))
    kw.setdefault("drop_path_rate", 0.2)  # the segmentation backbone's default
    cfg = official_config(kind, num_classes=0, **kw)
    return cfg.replace(out_indices=list(out_indices), **DENSE_GEOMETRY)


def build_backbone(kind: str, **official_seg_kwargs) -> SwinTransformer:
    """``build_backbone("v1", pretrain_img_size=224, embed_dim=96, depths=[2, 2, 6, 2], ...)``: the swin-lit
    equivalent of the official segmentation backbone. It has no classifier and no final norm (the output norms
    ``norm{i}`` of ``out_indices`` replace it, as in the official checkpoints); ``forward_intermediates(x,
    out_indices)`` gives the official outputs; it runs at any input size the patch divides. ``kind="v2"``
    builds the V2 switches (res-post-norm, cosine attention, log CPB) with the same dense geometry."""
    model = SwinTransformer(official_backbone_config(kind, **official_seg_kwargs))
    model.norm = nn.Identity()  # the official dense backbone has none: its stage norms replace it
    return model


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


def backbone_state(state_dict: Mapping) -> tuple[dict[str, torch.Tensor], list[str]]:
    """(the backbone's state, the keys left out): an mmseg / mmdet checkpoint (bare or under ``state_dict``)
    keeps its ``backbone.*`` keys without the prefix and leaves out every other key (heads, necks); any other
    checkpoint is returned whole, nothing left out. An absolute embedding stored as the dense backbones' NCHW
    (1, C, H, W) becomes the classification layout (1, H*W, C)."""
    sd = _unwrap(state_dict)
    if not any(k.startswith("backbone.") for k in sd):
        return sd, []
    skipped = sorted(k for k in sd if not k.startswith("backbone."))
    sd = {k[len("backbone."):]: v for k, v in sd.items() if k.startswith("backbone.")}
    embed = sd.get("absolute_pos_embed")
    if embed is not None and embed.ndim == 4:
        sd["absolute_pos_embed"] = embed.flatten(2).transpose(1, 2)
    return sd, skipped


def to_swin_lit_keys(state_dict: Mapping) -> dict[str, torch.Tensor]:
    """Official, timm or mmseg / mmdet state dict -> swin-lit names, without the derived buffers (and, for
    mmseg / mmdet, without the keys that are not the backbone's: ``load_state_dict`` warns about those)."""
    sd, _ = backbone_state(state_dict)
    if "head.fc.weight" in sd or "layers.0.downsample.reduction.weight" not in sd and any(
        k.startswith("layers.1.downsample.") for k in sd
    ):
        sd = _from_timm(sd)
    out = {}
    for key, value in sd.items():
        if key.rsplit(".", 1)[-1] in _DERIVED_BUFFERS or key.endswith("k_bias"):
            continue
        for theirs, ours in _official_names():
            key = key.replace(f"attn.{theirs}", f"attn.relative_bias.{ours}")
        out[key] = value
    return out


def _official_names() -> list[tuple[str, str]]:
    """(official name, swin-lit name) of every registered relative-bias kind's parameters, inside ``attn.``."""
    return sorted({pair for kind in RELATIVE_BIASES.values() for pair in kind.official_names.items()})


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


def _warn_skipped(state_dict: Mapping, caller: str) -> None:
    _, skipped = backbone_state(state_dict)
    if skipped:
        warnings.warn(f"{caller}: {len(skipped)} key(s) outside the backbone skipped: {', '.join(skipped)}",
                      UserWarning, stacklevel=3)


def load_state_dict(model: SwinTransformer, state_dict: Mapping) -> SwinTransformer:
    """Load an official-format (bare or under ``model``), timm-format or mmseg / mmdet (``backbone.*``, bare or
    under ``state_dict``) state dict exactly. The keys of an mmseg / mmdet checkpoint that are not the backbone's
    are skipped, each named in a UserWarning."""
    _warn_skipped(state_dict, "load_state_dict")
    sd = to_swin_lit_keys(state_dict)
    _check_keys(model, sd)
    model.load_state_dict(sd, strict=True)
    return model


def load_pretrained(model: SwinTransformer, state_dict: Mapping, method: str | None = None,
                    source_grid: tuple[int, int] | None = None) -> SwinTransformer:
    """The official fine-tune recipe (``utils.load_pretrained``) into a model of any image/window size: derived
    buffers rebuilt, each relative bias moved to the model's windows by its kind (``RelativeBias.moved_state``:
    ``method``, default the kind's first, i.e. V1 tables resized bicubically and CPB weights as they are), the
    absolute embedding resized bicubically from ``source_grid`` (default: a square grid), and a classifier with
    another class count re-initialised to zero. An mmseg / mmdet checkpoint gives its backbone (the other keys
    skipped, named in a UserWarning)."""
    _warn_skipped(state_dict, "load_pretrained")
    sd = to_swin_lit_keys(state_dict)
    for name, module in model.named_modules():
        if isinstance(module, RelativeBias):
            prefix = f"{name}."
            own = {k[len(prefix):]: sd.pop(k) for k in list(sd) if k.startswith(prefix)}
            chosen = method or (module.transfer_methods[0] if module.transfer_methods else None)
            moved = own if chosen is None or not own else module.moved_state(own, chosen)
            sd.update({prefix + k: v for k, v in moved.items()})
    target = model.state_dict()
    embed = sd.get("absolute_pos_embed")
    if embed is not None and "absolute_pos_embed" in target and embed.shape != target["absolute_pos_embed"].shape:
        if source_grid is None:
            side = math.isqrt(embed.shape[1])
            if side * side != embed.shape[1]:
                raise KeyError(f"absolute_pos_embed: {embed.shape[1]} tokens is not a square grid; pass source_grid")
            source_grid = (side, side)
        sd["absolute_pos_embed"] = resize_absolute(embed, source_grid, model.cfg.grid)
    allow_missing = set()
    for part in ("head", "norm"):  # a dense backbone (num_classes 0, stage norms) has no classifier and final norm
        if f"{part}.weight" not in target:
            sd = {k: v for k, v in sd.items() if not k.startswith(f"{part}.")}
    # the stage norms of a dense backbone that the checkpoint lacks keep their init (ones / zeros)
    allow_missing |= {k for k in target if k.split(".")[0] in {f"norm{i}" for i in model.cfg.out_indices}} - set(sd)
    head_changed = "head.weight" in sd and sd["head.weight"].shape != target["head.weight"].shape
    if head_changed:
        del sd["head.weight"], sd["head.bias"]
        torch.nn.init.zeros_(model.head.weight)
        torch.nn.init.zeros_(model.head.bias)
        allow_missing |= {"head.weight", "head.bias"}
    _check_keys(model, sd, allow_missing=allow_missing)
    model.load_state_dict(sd, strict=not allow_missing)
    return model
