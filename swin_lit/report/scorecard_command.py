"""``swin-lit scorecard RESULTS_DIR [--out FILE] [--readme README.md]``: which of the papers' claims reproduce."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "scorecard",
        help="the papers' claims the stored studies test: mechanism checks, reproductions, exploratory rows",
        description="Read every study storage under RESULTS_DIR (study.log / study.db), recompute each study's "
        "comparisons as its report does, and list each claim of the papers that a study tests, one row per "
        "distinct measurement (studies that ran the same cells share a row), in three sections never pooled: "
        "mechanism checks (embedded tasks built to need the switches: behaves as designed / does not), "
        "reproductions on natural data (the paper's Δ and its relative size, ours with unadjusted and simultaneous "
        "intervals, Benjamini-Hochberg q across them, the scale gap; agrees / contradicts / smaller than the "
        "paper's / consistent with both / untestable) and exploratory rows (the paper's Δ within its own noise).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  swin-lit scorecard results/                      # writes results/scorecard.md",
    )
    parser.add_argument("root", metavar="RESULTS_DIR", help="folder holding study folders (e.g. results/)")
    parser.add_argument("--out", default=None, metavar="FILE", help="Markdown file (default: RESULTS_DIR/scorecard.md)")
    parser.add_argument("--readme", default=None, metavar="FILE",
                        help="also write the table between the scorecard markers of this file")
    parser.set_defaults(func=run)


def run(args) -> int:
    from swin_lit.report.scorecard import markdown, scorecard, update_readme

    root = Path(args.root)
    card = scorecard(root)
    out = Path(args.out) if args.out else root / "scorecard.md"
    out.write_text("# What reproduces here\n\n" + markdown(card))
    if args.readme:
        readme = Path(args.readme)
        prefix = Path(root.resolve()).relative_to(readme.resolve().parent).as_posix() + "/"
        update_readme(readme, markdown(card, link_prefix=prefix))
    print(markdown(card))
    print(f"wrote {out}" + (f" and the scorecard section of {args.readme}" if args.readme else ""))
    return 0
