"""``swin-lit``: the command line. Each subcommand lives with the part of the package it drives and
registers itself here; heavy imports (torch, lightning) happen only inside the command that needs them,
so ``--help`` and listings start fast.

Exit codes: 0 success (or nothing to do), 1 a run failed, 2 bad input (config, spec, data, storage,
arguments): every ``swin_lit.errors.BadInput`` becomes one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from swin_lit.errors import BadInput, SwinLitError, one_line

__all__ = ["BadInput", "main", "build_parser"]  # BadInput re-exported for older callers

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2

# subcommand -> module with ``register(subparsers)``; the module's parser sets ``func(args) -> int``.
COMMANDS = {
    "train": "swin_lit.train.command",
    "ablate": "swin_lit.ablate.command",
    "power": "swin_lit.ablate.power",
    "report": "swin_lit.report.command",
    "transfer": "swin_lit.train.transfer_command",
    "viz": "swin_lit.report.viz_command",
    "scorecard": "swin_lit.report.scorecard_command",
    "models": "swin_lit.models.command",
    "data": "swin_lit.data.command",
}

EPILOG = """examples:
  swin-lit train --config configs/default.yaml                      # one run on the embedded data
  swin-lit train --config configs/default.yaml --set model.shift=none --set seed=1
  swin-lit ablate ablations/quick.yaml --workers 2                  # a grid of variants x seeds
  swin-lit ablate ablations/quick.yaml --dry-run                    # list the cells and their state
  swin-lit power ablations/quick.yaml --sd 0.5                      # seeds, compute and power before a run
  swin-lit report results/quick                                     # tables and figures of a study
  swin-lit scorecard results/                                       # which paper claims reproduce
  swin-lit transfer runs/<run> --to 64:8 --to 96:12                 # evaluate at larger windows
  swin-lit models                                                   # presets with params and FLOPs
  swin-lit data check /data/imagenet                                # read every file, list the bad ones
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="swin-lit",
        description="Swin Transformer V1/V2 ablations: train variants, run grids with Optuna, report tables.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMANDS.values():
        importlib.import_module(module).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_BAD_INPUT
    try:
        return int(args.func(args) or 0)
    except BadInput as err:
        print(f"swin-lit {args.command}: error: {one_line(err)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except SwinLitError as err:
        print(f"swin-lit {args.command}: failed: {one_line(err)}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print(f"swin-lit {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
