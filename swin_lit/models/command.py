"""``swin-lit models``: the presets with parameters and FLOPs, or one config's per-stage geometry."""

from __future__ import annotations

import argparse

import yaml


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "models",
        help="list model presets (params, GFLOPs) or show one config's geometry",
        description="Without --preset: a table of the presets. With --preset (and --set overrides): the per-stage "
        "geometry, parameters and FLOPs of that config. FLOPs are multiply-adds per image, as in the papers.",
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


def _table(headers: list[str], rows: list[list]) -> str:
    cells = [headers] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.rjust(w) if j else c.ljust(w) for j, (c, w) in enumerate(zip(r, widths))) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


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
                         cfg.window_size, f"{cfg.norm}/{cfg.attention}/{cfg.position}"])
        print(_table(["preset", "params", "GFLOPs", "img", "window", "norm/attention/position"], rows))
        print("\nparams counted analytically (equal to the built model); GFLOPs = multiply-adds per image "
              "(matmuls, convs, linears; norms/softmax/GELU excluded)")
        return 0
    if args.preset not in PRESETS:
        raise BadInput(f"unknown preset {args.preset!r}; available: {', '.join(PRESETS)}")
    cfg = preset(args.preset, **overrides)
    bd = flops_breakdown(cfg)
    rows = []
    for i, (g, s, depth) in enumerate(zip(cfg.stages(), bd.stages, cfg.depths)):
        rows.append([i, f"{g.resolution}x{g.resolution}", g.window, g.shift, g.padded - g.resolution, g.dim, g.heads,
                     depth, f"{s.total / 1e6:.1f}"])
    print(f"{args.preset}" + (f" with {', '.join(f'{k}={v}' for k, v in overrides.items())}" if overrides else ""))
    print(f"switches: shift={cfg.shift} norm={cfg.norm} attention={cfg.attention} position={cfg.position} "
          f"merge={cfg.merge_order}")
    print(_table(["stage", "tokens", "window", "shift", "pad", "dim", "heads", "blocks", "MFLOPs"], rows))
    print(f"patch embed {bd.patch_embed / 1e6:.1f} MFLOPs, head {bd.head / 1e6:.2f} MFLOPs")
    print(f"params {count_params(cfg):,}  FLOPs {count_flops(cfg) / 1e9:.3f} G per image ({cfg.img_size}px)")
    return 0
