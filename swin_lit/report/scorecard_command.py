"""``swin-lit scorecard RESULTS_DIR [--out FILE] [--readme README.md]``: which of the papers' claims reproduce."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "scorecard",
        help="one row per paper claim the stored studies test: paper Δ, ours, verdict",
        description="Read every study storage under RESULTS_DIR (study.log / study.db), recompute each study's "
        "comparisons as its report does, and list each claim of the papers that a study tests: the paper's Δ "
        "and source, our Δ with its 95%% interval, data set, model size and seeds, the verdict (agrees / "
        "contradicts / not resolved) and a link to the study's report.",
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
    claims, skipped = scorecard(root)
    out = Path(args.out) if args.out else root / "scorecard.md"
    out.write_text("# What reproduces here\n\n" + markdown(claims, skipped))
    if args.readme:
        readme = Path(args.readme)
        prefix = Path(root.resolve()).relative_to(readme.resolve().parent).as_posix() + "/"
        update_readme(readme, markdown(claims, skipped, link_prefix=prefix))
    print(markdown(claims, skipped))
    print(f"wrote {out}" + (f" and the scorecard section of {args.readme}" if args.readme else ""))
    return 0
