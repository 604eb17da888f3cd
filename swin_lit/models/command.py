"""``swin-lit models``: the presets with parameters and FLOPs, or one config's per-stage geometry."""

from __future__ import annotations

import argparse

import yaml

from swin_lit.models.registry import WINDOWS


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "models",
        help="list model presets (params, GFLOPs) and the registered kinds, or show one config's geometry",
        description="Without --preset: a table of the presets, and one per registry of kinds (every kind "
        "registered): attention similarities (model.attention), relative position biases (model.relative, with the "
        "transfer methods each supports), norm placements (model.norm, with the merge order merge: auto takes), "
        "shift kinds (model.shift, with their shifted windows on Swin-T's first stage) and dense heads (head.kind). "
        "With --preset (and --set overrides): "
        "the per-stage geometry, parameters and FLOPs of that config. FLOPs are multiply-adds per image, as in "
        "the papers.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  swin-lit models\n  swin-lit models --preset swin_t --set img_size=[224,320]\n"
        "  swin-lit models --preset swin_t --set shift=pad\n"
        "  swin-lit models --preset swin_t --set img_size=512 --set small_maps=pad --set pad_keys=attend\n"
        "  swin-lit models --preset swin_t --set windows=sliding --set shift=none",
    )
    p.add_argument("--preset", metavar="NAME", help="show one preset in detail")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config field (YAML value), e.g. --set img_size=32 --set depths=[2,2]")
    p.set_defaults(func=run)


def parse_overrides(items: list[str]) -> dict:
    from swin_lit.errors import BadInput

    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise BadInput(f"--set expects KEY=VALUE, got {item!r}")
        out[key.strip()] = yaml.safe_load(value)
    return out


def _table(headers: list[str], rows: list[list], left: int = 1) -> str:
    """Columns padded to a common width; the first ``left`` columns left-aligned, the others right-aligned."""
    cells = [headers] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.rjust(w) if j >= left else c.ljust(w) for j, (c, w) in enumerate(zip(r, widths))).rstrip()
             for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _kinds_table() -> str:
    from swin_lit.models.registry import RELATIVE_BIASES

    rows = [[RELATIVE_BIASES.absent, "-", "bicubic (absolute embedding only)", "no relative position bias"]]
    for name, kind in RELATIVE_BIASES.items():
        rows.append([name, "yes" if kind.normalised else "-", ", ".join(kind.transfer_methods) or "-",
                     kind.description])
    return _table([RELATIVE_BIASES.key, "pretrained_window_sizes", "transfer methods", "what it is"], rows, left=4)


# the widths the listings count at: Swin-T's stage 1 (C 96, 3 heads, a 56 x 56 map in 7 x 7 windows); its pyramid
# at 512 px, ADE20K's 150 classes
_DIM, _HEADS, _MAP, _WINDOW, _PYRAMID, _CLASSES, _SEG_SIZE = 96, 3, 56, 7, (96, 192, 384, 768), 150, 512


def _similarity_table() -> str:
    from swin_lit.models.registry import SIMILARITIES

    rows = [[name, kind.description, f"{kind.parameter_count(_DIM, _HEADS, True):,}"]
            for name, kind in SIMILARITIES.items()]
    return _table([SIMILARITIES.key, "what it is", f"qkv params (C={_DIM}, {_HEADS} heads)"], rows, left=2)


def _heads_table() -> str:
    from swin_lit.models.head_config import HeadConfig
    from swin_lit.models.head_flops import pyramid_sizes
    from swin_lit.models.registry import HEADS

    sizes = pyramid_sizes(_SEG_SIZE, _SEG_SIZE, 4, len(_PYRAMID))
    rows = []
    for name, kind in HEADS.items():
        cfg = HeadConfig(kind=name)
        options = ", ".join(f"{k}={list(v) if isinstance(v, tuple) else v}" for k, v in kind.options.items()) or "-"
        flops = sum(kind.flops_breakdown(cfg, _PYRAMID, _CLASSES, sizes).values())
        rows.append([name, kind.description, options, f"{kind.parameter_count(cfg, _PYRAMID, _CLASSES) / 1e6:.2f}M",
                     f"{flops / 1e9:.1f}"])
    return _table([f"head.{HEADS.key}", "what it is", "options (recipe values)", "params", f"GFLOPs ({_SEG_SIZE}px)"],
                  rows, left=3) + f"\n(heads counted on Swin-T's pyramid, {_CLASSES} classes)"


def _norm_table() -> str:
    from swin_lit.models.registry import NORM_PLACEMENTS

    rows = [[name, kind.description, kind.merge_order] for name, kind in NORM_PLACEMENTS.items()]
    return _table([NORM_PLACEMENTS.key, "what it is", "merge: auto"], rows, left=3)


def _shift_table() -> str:
    """Each shift kind's shifted block on Swin-T's stage 1: its shift, window grid, roll and region mask."""
    from swin_lit.models.registry import SHIFTS

    rows = []
    for name, kind in SHIFTS.items():
        shift = kind.stage_shift(_WINDOW)
        top, left, Hp, Wp = kind.grid((_MAP, _MAP), _WINDOW, shift)
        labels = kind.region_labels((Hp, Wp), _WINDOW, shift) if shift else None
        regions = "-" if labels is None else f"{len(set(labels.flatten().tolist()))} regions"
        rows.append([name, kind.description, shift, f"{Hp // _WINDOW}x{Wp // _WINDOW}", f"{top},{left}",
                     kind.roll(shift) if shift else 0, regions])
    note = f"\n(the shifted blocks of a {_MAP}x{_MAP} map in {_WINDOW}x{_WINDOW} windows: Swin-T's stage 1)"
    return _table([SHIFTS.key, "what it is", "shift", "windows", "grid offset", "roll", "region mask"], rows,
                  left=2) + note


def _plain_table(registry) -> str:
    """Any other registry: its kinds' names and descriptions."""
    return _table([registry.key, f"what it is ({registry.what})"],
                  [[name, getattr(kind, "description", "") or "-"] for name, kind in registry.items()], left=2)


def kinds_tables() -> list[str]:
    """A table per registry of ``swin_lit.models.registry`` (every kind registered now, the built-in ones and
    any added since), the registries with their own facts first; a registry without a table of its own is
    listed by name and description."""
    from swin_lit.models import registry as registries

    own = {"SIMILARITIES": _similarity_table, "RELATIVE_BIASES": _kinds_table, "NORM_PLACEMENTS": _norm_table,
           "SHIFTS": _shift_table, "HEADS": _heads_table}
    found = {name: value for name, value in vars(registries).items() if isinstance(value, registries.Registry)}
    return [own[name]() for name in own if name in found] + [_plain_table(r) for n, r in found.items() if n not in own]


def run(args: argparse.Namespace) -> int:
    from swin_lit.errors import BadInput
    from swin_lit.models.flops import count_flops, count_params, flops_breakdown
    from swin_lit.models.presets import PRESETS, preset

    overrides = parse_overrides(args.overrides)
    if args.preset is None:
        if overrides:
            raise BadInput("--set needs --preset NAME")
        rows = []
        for name in PRESETS:
            cfg = preset(name)
            rows.append([name, f"{count_params(cfg) / 1e6:.2f}M", f"{count_flops(cfg) / 1e9:.2f}", cfg.img_size,
                         cfg.window_size, f"{cfg.norm}/{cfg.attention}/{cfg.absolute}/{cfg.relative}"])
        print(_table(["preset", "params", "GFLOPs", "img", "window", "norm/attention/absolute/relative"], rows))
        print("\nparams counted analytically (equal to the built model); GFLOPs = multiply-adds per image "
              "(matmuls, convs, linears; norms/softmax/GELU excluded)\n")
        print("\n\n".join(kinds_tables()))
        return 0
    if args.preset not in PRESETS:
        raise BadInput(f"unknown preset {args.preset!r}; available: {', '.join(PRESETS)}")
    cfg = preset(args.preset, **overrides)
    bd = flops_breakdown(cfg)
    rows = []
    for i, (g, s, depth) in enumerate(zip(cfg.stages(), bd.stages, cfg.depths)):
        H, W = g.resolution
        Hp, Wp = g.padded
        partitions = WINDOWS.fact(g.windows, "partitions")  # a kind that does not partition the map has no count
        windows = f"{Hp // g.window}x{Wp // g.window}" if partitions else g.windows
        if g.shift and partitions:
            _, _, Hs, Ws = g.grid(g.shift)
            windows += f" / {Hs // g.window}x{Ws // g.window}"
        rows.append([i, f"{H}x{W}", g.window, g.shift, windows, g.dim, g.heads, depth, f"{s.total / 1e6:.1f}"])
    print(f"{args.preset}" + (f" with {', '.join(f'{k}={v}' for k, v in overrides.items())}" if overrides else ""))
    print(f"switches: shift={cfg.shift} windows={cfg.windows} norm={cfg.norm} attention={cfg.attention} "
          f"absolute={cfg.absolute} relative={cfg.relative} merge={cfg.merge_order} small_maps={cfg.small_maps} "
          f"pad_keys={cfg.pad_keys}")
    print(_table(["stage", "tokens", "window", "shift", "windows (regular / shifted)", "dim", "heads", "blocks",
                  "MFLOPs"], rows))
    print(f"patch embed {bd.patch_embed / 1e6:.1f} MFLOPs, head {bd.head / 1e6:.2f} MFLOPs")
    H, W = cfg.image_size
    print(f"params {count_params(cfg):,}  FLOPs {count_flops(cfg) / 1e9:.3f} G per image ({H}x{W} px)")
    return 0
