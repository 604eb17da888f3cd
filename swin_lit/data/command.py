"""``swin-lit data check ROOT``: read every file of a data folder once and report each problem on one line.

The layout is detected (or given with ``--layout``): an image-folder tree (``folder``: ImageNet's ``train/<wnid>/
*.JPEG``, ``val/<wnid>/*.JPEG``), ADE20K, Cityscapes or CamVid (``swin_lit.data.segmentation`` describes them).
Every image is decoded in full; every label map is decoded and compared with its image's size and the layout's
label values. Nothing is written anywhere.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EXAMPLES = """examples:
  swin-lit data check /data/imagenet                 # train/<wnid>/*.JPEG, val/<wnid>/*.JPEG
  swin-lit data check /data/ADEChallengeData2016     # images/ + annotations/
  swin-lit data check /data/cityscapes --layout cityscapes --workers 8

exit codes: 0 no problem, 1 problems found (one line each on stdout, naming the file), 2 bad input (not a
data folder of the layout, an unpaired file).
"""
LAYOUTS = ("folder", "ade20k", "cityscapes", "camvid")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="check a data folder", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    data_sub = p.add_subparsers(dest="data_command", metavar="SUBCOMMAND", required=True)
    c = data_sub.add_parser("check", help="read every file of a data folder and report each problem",
                            description=__doc__, epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    c.add_argument("root", help="the data folder")
    c.add_argument("--layout", choices=("auto", *LAYOUTS), default="auto", help="the layout (default: detected)")
    c.add_argument("--num-classes", type=int, default=None,
                   help="ADE20K: the number of classes (default: objectInfo150's rows, else 150)")
    c.add_argument("--workers", type=int, default=None, help="decoding threads (default: the CPU count)")
    c.add_argument("--no-progress", action="store_true", help="no progress bar")
    c.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from swin_lit.data.check import check

    problems, checked = check(Path(args.root), args.layout, args.num_classes, args.workers,
                              progress=not args.no_progress, report=print)
    print(f"swin-lit data check: {checked} files read, {len(problems)} problem{'s' * (len(problems) != 1)}",
          file=sys.stderr)
    return 1 if problems else 0
