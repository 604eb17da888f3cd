"""``swin-lit report STUDY_DIR_OR_STORAGE [--study NAME] [--out DIR]``: tables and figures of a study."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "report",
        help="tables, factorial effects and figures of a study",
        description="Build report.md, table.tex, cells.csv, runs.csv and figures/ from a study's storage: the "
        "setting beside the paper's, each variant vs the baseline paired by seed (unadjusted and simultaneous "
        "intervals clipped to the metric's range, Holm-adjusted verdicts better / worse / equivalent / not "
        "resolved with the effect the design could detect, the exact sign-flip test), convergence of each "
        "comparison, factorial effects, transfer tables, and the paper's differences beside ours (mechanism checks "
        "on embedded tasks, reproductions on natural data).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  swin-lit report results/quick\n"
        "  swin-lit report sqlite:///studies.db --study quick --out /tmp/r",
    )
    parser.add_argument("source", metavar="STUDY_DIR_OR_STORAGE",
                        help="study folder (results/<study>), storage URL, or journal/sqlite file")
    parser.add_argument("--study", help="study name, when the storage holds several")
    parser.add_argument("--out", help="output folder (default: the study folder)")
    parser.set_defaults(func=run)


def run(args) -> int:
    from swin_lit.report.build import build_report

    folder = build_report(args.source, study=args.study, out=args.out)
    print(f"wrote {folder / 'report.md'} (with table.tex, cells.csv, runs.csv, figures/)")
    table = (folder / "report.md").read_text()
    section = _section(table, "## Verdicts")
    if section:
        print()
        print(section)
    return 0


def _section(markdown: str, heading: str) -> str:
    """The text of one ``##`` section of the report (without the heading)."""
    if heading not in markdown:
        return ""
    body = markdown.split(heading, 1)[1]
    return body.split("\n## ", 1)[0].split("\n### ", 1)[0].strip()
