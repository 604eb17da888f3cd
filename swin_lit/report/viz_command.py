"""``swin-lit viz mask|bias``: pictures of a shift kind's shifted-window mask and of learned position biases."""

from __future__ import annotations

import argparse
from pathlib import Path

from swin_lit.errors import BadInput


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "viz",
        help="draw the shifted-window attention mask or a run's learned position biases",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  swin-lit viz mask --size 8 --window 4\n"
        "  swin-lit viz mask --size 8 --window 4 --kind pad\n  swin-lit viz bias runs/<run> --out /tmp/bias",
    )
    sub = parser.add_subparsers(dest="what", metavar="WHAT")
    mask = sub.add_parser("mask", help="shifted-window attention mask of a shift kind (the Swin paper's figure)")
    mask.add_argument("--size", type=int, required=True, metavar="H", help="tokens per side of the map")
    mask.add_argument("--window", type=int, required=True, metavar="M", help="window size")
    mask.add_argument("--kind", default="cyclic", metavar="KIND",
                      help="shift kind (model.shift: any registered kind, e.g. cyclic, pad, none; default: cyclic)")
    mask.add_argument("--shift", type=int, default=None, metavar="S",
                      help="shift of the shifted blocks (default: the kind's, window // 2 for cyclic and pad)")
    mask.add_argument("--out", default=None, metavar="FILE",
                      help="PNG to write (default: mask_{KIND}_H{H}_M{M}_S{S}.png)")
    mask.set_defaults(func=run_mask)
    bias = sub.add_parser("bias", help="each head's relative position bias per block of a trained run")
    bias.add_argument("run_dir", metavar="RUN_DIR")
    bias.add_argument("--which", default="best", help="checkpoint to load (default: best)")
    bias.add_argument("--out", default=None, metavar="DIR", help="folder for position_bias.png (default: RUN_DIR)")
    bias.set_defaults(func=run_bias)
    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])


def run_mask(args) -> int:
    from swin_lit.models.registry import SHIFTS
    from swin_lit.report.viz import draw_mask

    SHIFTS.check(args.kind, "--kind")  # ConfigError (exit 2) naming the registered kinds
    shift = SHIFTS[args.kind].stage_shift(args.window) if args.shift is None else args.shift
    out = Path(args.out) if args.out else Path(f"mask_{args.kind}_H{args.size}_M{args.window}_S{shift}.png")
    try:
        path = draw_mask(args.size, args.window, out, shift=shift, kind=args.kind)
    except ValueError as err:
        raise BadInput(str(err)) from err
    print(f"wrote {path}")
    return 0


def run_bias(args) -> int:
    run_dir = Path(args.run_dir)
    if not run_dir.is_dir():
        raise BadInput(f"no run folder at {run_dir}")
    from swin_lit.report.viz import draw_position_bias
    from swin_lit.train.runs import load_trained_model

    try:
        model = load_trained_model(run_dir, which=args.which)
    except FileNotFoundError as err:
        raise BadInput(f"cannot load a trained model from {run_dir}: {err}") from err
    out = Path(args.out) if args.out else run_dir
    path = draw_position_bias(model, out / "position_bias.png", title=f"{run_dir.name}: relative position bias")
    print(f"wrote {path}")
    return 0
