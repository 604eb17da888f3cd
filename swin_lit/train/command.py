"""``swin-lit train``: train one variant."""

from __future__ import annotations

import argparse
import json
import sys

EXAMPLES = """examples:
  swin-lit train                                          # configs/default.yaml: tiny Swin, embedded data
  swin-lit train --config configs/default.yaml --set model.shift=none --set seed=1
  swin-lit train --set data.source=folder --set data.root=/data/cifar10 --out runs/cifar
  swin-lit train --print-config                           # show the resolved config and run folder, do nothing

Running the same command again resumes an interrupted run; a finished run is reported and left alone.
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train and evaluate one variant", description=__doc__, epilog=EXAMPLES,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", help="YAML run config (default: configs/default.yaml)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, dotted key (repeatable)")
    p.add_argument("--out", default="runs", help="parent folder of run folders (default: runs)")
    p.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import yaml

    from swin_lit.config import load_config
    from swin_lit.record import read_result
    from swin_lit.train.runs import run_dir_for

    cfg = load_config(args.config, args.overrides)
    run_dir = run_dir_for(cfg, args.out)
    if args.print_config:
        print(yaml.safe_dump(cfg.to_dict(), sort_keys=False), end="")
        print(f"# run folder: {run_dir}")
        return 0
    if read_result(run_dir) is not None:
        print(f"{run_dir}: already finished; nothing to do (result.json)")
        return 0
    from swin_lit.train.runs import train

    run_dir, record = train(cfg, args.out, progress=False if args.no_progress else None)  # DataError: exit 2
    summary = {k: record[k] for k in ("val", "test", "params", "flops", "train_images_per_s", "wall_time_s")}
    print(json.dumps(summary, indent=1), file=sys.stderr)
    print(run_dir)
    return 0
