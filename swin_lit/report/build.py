"""Write a study's report: ``report.md``, ``table.tex``, ``cells.csv``, ``runs.csv`` (and ``effects.csv``,
``transfer.csv`` where they apply) and ``figures/*.png``, all from the study storage."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from swin_lit.errors import BadInput
from swin_lit.report import figures, tables
from swin_lit.report.data import StudyData, load_study


@dataclass
class Report:
    """What ``make_report`` computed: the numbers and the rendered parts."""

    data: StudyData
    cells: pd.DataFrame  # numeric per-variant table
    markdown_table: str
    latex_table: str
    caption: str
    effects: pd.DataFrame
    transfer: pd.DataFrame
    folder: Path


def make_report(source, study: str | None = None, out: str | Path | None = None) -> Report:
    data = load_study(source, study)
    if data.runs.empty and data.transfer.empty:
        counts = data.cells["status"].value_counts().to_dict() if len(data.cells) else {}
        detail = ", ".join(f"{n} {s}" for s, n in counts.items()) or "no cells"
        raise BadInput(f"study {data.name!r} has no finished cell yet ({detail}); nothing to report")
    folder = Path(out) if out is not None else (data.folder or Path("results") / data.name)
    cells = tables.summarise(data) if data.variants else pd.DataFrame()
    caption = tables.caption(data, cells) if len(cells) else ""
    md, tex = "", ""
    if len(cells):
        strings, bold = tables.formatted_table(data, cells)
        md = tables.to_markdown(strings, bold)
        lstrings, lbold = tables.formatted_table(data, cells, latex=True)
        tex = tables.to_latex(lstrings, lbold, caption, label=f"tab:{data.name}")
    return Report(data, cells, md, tex, caption, tables.factorial_effects(data), tables.transfer_summary(data), folder)


def build_report(source, study: str | None = None, out: str | Path | None = None) -> Path:
    """Write the report of a study and return the folder holding ``report.md``.

    ``source``: a study folder, a storage URL or a storage file; ``study``: the study name when the storage holds
    several; ``out``: the output folder (default: the study folder, else ``results/<study>``).
    Raises BadInput for a study that does not exist or has no finished cell.
    """
    report = make_report(source, study, out)
    folder = report.folder
    folder.mkdir(parents=True, exist_ok=True)
    data = report.data
    if len(report.cells):
        report.cells.to_csv(folder / "cells.csv")
        (folder / "table.tex").write_text(report.latex_table)
    data.runs.to_csv(folder / "runs.csv", index=False)
    if not report.effects.empty:
        report.effects.to_csv(folder / "effects.csv", index=False)
    if not report.transfer.empty:
        report.transfer.to_csv(folder / "transfer.csv", index=False)
    written = figures.draw_all(data, folder / "figures")
    (folder / "report.md").write_text(render_markdown(report, [p.relative_to(folder) for p in written]))
    return folder


def render_markdown(report: Report, figure_paths: list[Path]) -> str:
    data = report.data
    lines = [f"# Ablation report: {data.name}", ""]
    status = data.cells["status"].value_counts().to_dict() if len(data.cells) else {}
    planned = len(data.planned)
    lines += [
        f"Storage: `{data.environment.get('storage')}` (study `{data.name}`). "
        f"Train cells: {status.get('finished', 0)} finished of {planned} planned"
        + "".join(f", {n} {s}" for s, n in status.items() if s != "finished")
        + f". Baseline: `{data.baseline}`. Seeds: {', '.join(map(str, data.seeds)) or '—'}.",
        "",
    ]
    if report.markdown_table:
        lines += ["## Comparison", "", report.caption, "", report.markdown_table, ""]
        lines += [
            "The numeric table (means, stds, n, deltas, Welch p-values `p_welch`, and paired t-test p-values "
            "`p_paired` over the seeds both variants finished) is in `cells.csv`; one row per finished cell in "
            "`runs.csv`.",
            "",
        ]
    unfinished = data.cells[data.cells["status"] != "finished"] if len(data.cells) else data.cells
    if len(unfinished):
        lines += ["### Cells not finished", ""]
        shown = unfinished[["variant", "seed", "status", "attempts", "error"]].fillna("").astype(str)
        lines += [shown.to_markdown(index=False, disable_numparse=True), ""]
    if not report.effects.empty:
        lines += ["## Factorial effects", "", tables.EFFECTS_CAPTION, "", tables.effects_markdown(report.effects), ""]
    if not report.transfer.empty:
        lines += ["## Transfer to larger windows", "", tables.TRANSFER_CAPTION, "",
                  tables.transfer_table(data).to_markdown(index=False, disable_numparse=True), ""]
        paper = ((data.spec or {}).get("transfer") or {}).get("paper")
        if paper:  # the paper's own Table 1 rows, at its (larger) windows, for the ordering to compare with
            frame = pd.DataFrame([{"variant": v, **cols} for v, cols in paper.items()]).fillna("")
            lines += ["The paper's numbers for these rows (its own model, data and windows; "
                      "without FT / with FT):", "", frame.to_markdown(index=False, disable_numparse=True), ""]
    if figure_paths:
        lines += ["## Figures", ""]
        for path in figure_paths:
            lines += [f"![{path.stem}]({path.as_posix()})", ""]
    lines += ["## Spec", "", "```yaml", _yaml(data.spec).rstrip(), "```", ""]
    lines += ["## Environment", "", *_environment(data), ""]
    return "\n".join(lines)


def _yaml(obj) -> str:
    import yaml

    return yaml.safe_dump(obj, sort_keys=False, allow_unicode=True) if obj else "{}\n"


def _environment(data: StudyData) -> list[str]:
    env = data.environment
    out = []
    for label, key in (("device", "device"), ("git revision", "git")):
        counts = env.get(key) or {}
        text = ", ".join(f"`{v}` ({n} runs)" for v, n in counts.items()) if counts else "not recorded"
        out.append(f"- {label}: {text}")
    versions = env.get("versions") or {}
    if versions:
        out += ["", "| package | version |", "|---|---|"]
        out += [f"| {pkg} | {', '.join(v)} |" for pkg, v in versions.items()]
    else:
        out.append("- package versions: not recorded")
    return out
