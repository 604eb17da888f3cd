"""``swin-lit transfer``: evaluate (and fine-tune) a trained run at larger images and windows."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

EXAMPLES = """examples:
  swin-lit transfer runs/tiny-1a2b3c4d5e --to 48:6 --to 64:8            # every method the run allows
  swin-lit transfer runs/tiny-1a2b3c4d5e --to 64:8 --method extrapolate --finetune-epochs 2
  swin-lit transfer runs/camvid-0a1b2c3d4e --to 128x160:8              # segmentation: same crop, window x2

Methods by the run's relative-bias kind (model.relative): `swin-lit models` lists each kind's methods
(bicubic: tables resized; extrapolate: coordinates normalised by the training window; renormalize: by the
new one). A learned absolute embedding is always resized bicubically. A segmentation run reports test mIoU
and aAcc, its test images segmented whole at their own size (or as its trainer.inference says); IMG is its
new training crop (HxW for a rectangle).
Writes <run>/transfer.json (one record per target and method) and prints a table.
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("transfer", help="evaluate a trained run at larger images/windows", epilog=EXAMPLES,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", help="a finished run folder (config.yaml + checkpoints/best.ckpt)")
    p.add_argument("--to", dest="targets", action="append", required=True, metavar="IMG:WINDOW",
                   help="target image size (IMG or HxW) and window size (repeatable)")
    p.add_argument("--method", dest="methods", action="append", choices=("bicubic", "extrapolate", "renormalize"),
                   help="transfer method (repeatable; default: all that fit the run)")
    p.add_argument("--finetune-epochs", type=int, default=0, help="also fine-tune K epochs at each target")
    p.add_argument("--finetune-lr", type=float, default=2e-4)
    p.add_argument("--out", help="parent folder of fine-tune runs (default: beside the run)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from swin_lit.domain.task import get_task
    from swin_lit.errors import BadInput
    from swin_lit.record import write_json_atomic
    from swin_lit.train.runs import load_run_config
    from swin_lit.train.transfer import parse_target, plan, target_name, transfer_cell

    run_dir = Path(args.run_dir)
    cfg = load_run_config(run_dir)
    if not (run_dir / "checkpoints" / "best.ckpt").is_file():
        raise BadInput(f"{run_dir}: no finished checkpoint (checkpoints/best.ckpt)")
    if args.finetune_epochs < 0:
        raise BadInput("--finetune-epochs must be >= 0")
    cells = plan(cfg, [parse_target(t) for t in args.targets], args.methods)
    rows = []
    metric = get_task(cfg.task).primary
    print(f"{'target':>12} {'method':>12} {metric:>7} {metric + ' ft':>8}")
    for img, window, method in cells:
        rec = transfer_cell(run_dir, img, window, method, args.finetune_epochs, args.finetune_lr, args.out)
        rows.append({"img_size": img, "window_size": window, "method": method,
                     "finetune_epochs": args.finetune_epochs, **rec})
        ft = "-" if rec[f"{metric}_ft"] is None else f"{rec[f'{metric}_ft']:.2f}"
        print(f"{target_name(img, window):>12} {method:>12} {rec[metric]:7.2f} {ft:>8}", flush=True)
    write_json_atomic(run_dir / "transfer.json", {"rows": rows})
    print(json.dumps({"written": str(run_dir / "transfer.json")}))
    return 0
