"""Write a study's report: ``report.md``, ``table.tex``, ``cells.csv``, ``runs.csv`` (and ``effects.csv``,
``transfer.csv`` where they apply) and ``figures/*.png``, all from the study storage."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from swin_lit.domain.metrics import metric as metric_facts
from swin_lit.errors import BadInput
from swin_lit.report import captions, compare, factorial, figures, render, tables, transfer
from swin_lit.report import reproduction as rp
from swin_lit.report.checks import check_lookup, comparison_checks, study_kind, transfer_checks
from swin_lit.report.convergence import convergence, convergence_line, convergence_table
from swin_lit.report.data import StudyData, load_study
from swin_lit.report.fmt import DASH, short_label
from swin_lit.report.render import Table
from swin_lit.report.setting import setting_lines


@dataclass
class Report:
    """What ``make_report`` computed: the numbers and the formatted tables."""

    data: StudyData
    cells: pd.DataFrame  # numeric per-variant table (cells.csv)
    shown: list[str]  # metrics in the tables and figures
    hidden: dict[str, str]  # metric -> why it is not shown
    comparisons: list[compare.MetricComparison]  # shown metrics
    comparison_tables: list[Table]
    cost: Table | None
    effects: pd.DataFrame
    factorial_tables: dict[str, list[Table]]  # metric -> cell means, effects, simple effects
    transfer: pd.DataFrame
    transfer_tests: pd.DataFrame
    transfer_tables: list[Table]
    folder: Path
    convergence: pd.DataFrame  # per variant: the paired Δ's trend over the last epochs
    convergence_table: Table | None
    checks: list[rp.PaperCheck]  # the comparisons with the paper's Δ beside them

    @property
    def kind(self) -> str:
        """"mechanism check" (embedded data) or "reproduction" (natural data)."""
        return study_kind(self.data)

    @property
    def reproduction(self) -> list[str]:
        """Every paper check's verdict: the comparisons', then the transfer tests'."""
        out = [c.verdict for c in self.checks]
        if not self.transfer_tests.empty:
            out += [v for v in self.transfer_tests["reproduction"] if v]
        return out

    def latex(self) -> str:
        parts = [render.latex(tables.latex_comparison(self.data, t)) for t in self.comparison_tables]
        parts += [render.latex(t) for t in [self.convergence_table, self.cost] if t is not None]
        parts += [render.latex(t) for ts in self.factorial_tables.values() for t in ts]
        parts += [render.latex(t) for t in self.transfer_tables]
        return render.LATEX_PREAMBLE + "\n".join(parts)


def make_report(source, study: str | None = None, out: str | Path | None = None) -> Report:
    data = load_study(source, study)
    if data.runs.empty and data.transfer.empty:
        counts = data.cells["status"].value_counts().to_dict() if len(data.cells) else {}
        detail = ", ".join(f"{n} {s}" for s, n in counts.items()) or "no cells"
        raise BadInput(f"study {data.name!r} has no finished cell yet ({detail}); nothing to report")
    folder = Path(out) if out is not None else (data.folder or Path("results") / data.name)
    shown, hidden = compare.shown_metrics(data)
    settled = convergence(data)
    every = {m: compare.compare_metric(data, m) for m in data.metrics} if data.variants else {}
    comparisons = [every[m] for m in shown if m in every]
    checks = comparison_checks(data, list(every.values()), settled)
    lookup = check_lookup(checks)
    cells = compare.summarise(data, every, lookup) if data.variants else pd.DataFrame()
    comparison_tables, cost = [], None
    if len(cells):
        comparison_tables = [tables.comparison_table(data, mc, cells, lookup) for mc in comparisons]
        cost = tables.cost_table(data, cells)
    else:
        comparisons = []
    checks = [c for c in checks if c.metric in shown]
    effects = factorial.factorial_effects(data)
    factorial_tables = {}
    for metric in shown if not effects.empty else []:
        parts = [factorial.cell_means_table(data, metric), factorial.effects_table(data, effects, metric),
                 factorial.simple_effects_table(data, effects, metric)]
        factorial_tables[metric] = [t for t in parts if t is not None]
    summary = transfer.transfer_summary(data)
    tests = transfer_checks(data, transfer.transfer_tests(data, summary))
    transfer_tables = [t for t in (transfer.transfer_layout(data, summary),
                                   transfer.transfer_tests_table(data, tests, summary)) if t is not None]
    return Report(data, cells, shown, hidden, comparisons, comparison_tables, cost, effects, factorial_tables,
                  summary, tests, transfer_tables, folder, settled, convergence_table(data, settled), checks)


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
    (folder / "table.tex").write_text(report.latex())
    data.runs.to_csv(folder / "runs.csv", index=False)
    for name, frame in (("effects", report.effects), ("transfer", report.transfer),
                        ("transfer_tests", report.transfer_tests)):
        if not frame.empty:
            frame.to_csv(folder / f"{name}.csv", index=False)
        elif (folder / f"{name}.csv").exists():  # a stale file of an earlier report
            (folder / f"{name}.csv").unlink()
    written = figures.draw_all(report, folder / "figures")
    (folder / "report.md").write_text(render_markdown(report, [p.relative_to(folder) for p in written]))
    return folder


def seeds_line(data: StudyData) -> str:
    """How many seeds each variant got and, for adaptive seeds, why the study stopped or goes on."""
    counts = {}
    for v in data.variants:
        counts.setdefault(int((data.runs["variant"] == v).sum()) if len(data.runs) else 0, []).append(v)
    if len(counts) == 1:
        got = captions.SEEDS_EVERY.fill(n=next(iter(counts)))
    else:
        got = "; ".join(captions.SEEDS_FINISHED.fill(n=n, variants=", ".join(short_label(v) for v in vs))
                        for n, vs in sorted(counts.items(), reverse=True))
    listed = ", ".join(map(str, data.seeds)) or DASH
    rule, decision = data.seed_rule, data.seed_decision
    if rule is None:
        return captions.SEEDS_LISTED.fill(seeds=listed, got=got)
    text = captions.SEEDS_TWO_STAGE.fill(start=rule.start, max=rule.max, precision=captions.setting(rule.precision),
                                         objective=data.objective, seeds=listed, got=got)
    if decision is not None:
        status = (captions.SEEDS_STOPPED if decision.stopped else captions.SEEDS_GO_ON).fill()
        text += captions.SEEDS_DECISION.fill(status=status, reason=decision.reason)
    return text + captions.SEEDS_LEVEL.fill(df=rule.start - 1)


def history_line(data: StudyData) -> str | None:
    """The stored study's spec changes after a result was seen (``spec_history``), or None: a study grown or
    re-run after a look is a sequential design its tests do not correct for."""
    if not data.spec_history:
        return None
    parts = []
    for h in data.spec_history:
        changes = ", ".join(captions.CHANGED.fill(key=k, old=repr(v[0]), new=repr(v[1]))
                            if isinstance(v, list | tuple) and len(v) == 2 else f"{k}"
                            for k, v in (h.get("changes") or {}).items())
        parts.append(captions.HISTORY_CHANGE.fill(when=h.get("changed_at", captions.HISTORY_NO_TIME.fill()),
                                                  cells=h.get("finished_cells", "?"),
                                                  changes=changes or captions.HISTORY_NO_CHANGES.fill()))
    return captions.HISTORY.fill(changes="; ".join(parts))


def versions_line(data: StudyData) -> str | None:
    """A warning when the finished cells' result records have different versions and the study reports a split
    loss (in its metrics or as its objective): version 2 records a mean per image over the split, version 1 the
    mean of batch means, so their losses are not comparable. None otherwise."""
    versions = sorted(set(data.record_versions.values()))
    losses = [m for m in dict.fromkeys([*data.metrics, data.objective]) if metric_facts(m).name == "loss"]
    if len(versions) < 2 or not losses:
        return None
    groups = [captions.VERSION_CELLS.fill(version=v, cells=", ".join(
        captions.CELL.fill(variant=short_label(variant), seed=seed)
        for (variant, seed), got in data.record_versions.items() if got == v)) for v in versions]
    return captions.MIXED_VERSIONS.fill(groups="; ".join(groups), metrics=", ".join(losses))


def render_markdown(report: Report, figure_paths: list[Path]) -> str:
    data = report.data
    lines = [captions.REPORT_TITLE.fill(study=data.name), ""]
    status = data.cells["status"].value_counts().to_dict() if len(data.cells) else {}
    others = "".join(captions.STATUS_COUNT.fill(count=n, status=s) for s, n in status.items() if s != "finished")
    lines += [captions.STORAGE.fill(storage=data.environment.get("storage"), study=data.name,
                                    finished=status.get("finished", 0), planned=len(data.planned), others=others,
                                    baseline=data.baseline, seeds=seeds_line(data)), ""]
    for line in (history_line(data), versions_line(data)):
        if line:
            lines += [line, ""]
    lines += ["## Setting", "", *setting_lines(data), ""]
    for metric, why in report.hidden.items():
        lines += [captions.NOT_SHOWN.fill(metric=metric, why=why), ""]
    if report.comparisons:
        lines += ["## Verdicts", ""]
        lines += [f"- {tables.verdict_line(data, mc, report.cells)}" for mc in report.comparisons]
        if report.reproduction:
            skipped = [m for m in report.hidden if compare.paper_key(data, m) is not None]
            tail = captions.PAPER_NOT_COMPARED.fill(
                keys=", ".join(compare.paper_key(data, m) for m in skipped),
                metrics=", ".join(skipped)) if skipped else ""
            source = tables.paper_source(data) or captions.TRANSFER_ROWS.fill()
            if report.kind == rp.MECHANISM:
                lines.append(captions.MECHANISM_LINE.fill(
                    source=source, data=data.data_config.get("source"),
                    summary=rp.summary(report.reproduction, rp.MECHANISM), tail=tail))
            else:
                lines.append(captions.REPRODUCTION_LINE.fill(
                    source=source, summary=rp.summary(report.reproduction, rp.REPRODUCTION), tail=tail))
        settled = convergence_line(report.convergence, data)
        if settled:
            lines.append(f"- {settled}")
        lines.append("")
    if report.comparison_tables:
        lines += ["## Comparison", "", tables.comparison_explanation(data), ""]
        for t in report.comparison_tables:
            lines += [f"### {t.title}", "", t.brief, "", render.markdown(t), ""]
        for t in (report.convergence_table, report.cost):
            if t is not None:
                lines += [f"### {t.title}", "", t.caption, "", render.markdown(t), ""]
        lines += [captions.CELLS_FOOTER.fill(), ""]
    unfinished = data.cells[data.cells["status"] != "finished"] if len(data.cells) else data.cells
    if len(unfinished):
        lines += [captions.CELLS_NOT_FINISHED.fill(), ""]
        shown = unfinished[["variant", "seed", "status", "attempts", "error"]].fillna("").astype(str)
        lines += [shown.to_markdown(index=False, disable_numparse=True), ""]
    if report.factorial_tables:
        lines += ["## Factorial effects", "", factorial.EFFECTS_CONVENTION, "", factorial.EFFECTS_METHOD, ""]
        for metric, ts in report.factorial_tables.items():
            lines += [f"### {metric}", ""]
            for t in ts:
                lines += [t.brief or t.caption, "", render.markdown(t), ""]
                lines += [*(f"{note}" for note in t.notes), ""] if t.notes else []
        lines += [captions.EFFECTS_FOOTER.fill(), ""]
    if report.transfer_tables:
        lines += [captions.TRANSFER_SECTION.fill(), ""]
        for t in report.transfer_tables:
            lines += [f"### {t.title}", "", t.caption, "", render.markdown(t), ""]
        lines += [captions.TRANSFER_FOOTER.fill(), ""]
    if figure_paths:
        lines += ["## Figures", ""]
        for path in figure_paths:
            lines += [f"![{path.stem}]({path.as_posix()})", ""]
    lines += ["## Spec", "", "```yaml", _yaml(data.stored_spec).rstrip(), "```", ""]
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
        text = (", ".join(captions.ENV_COUNT.fill(value=v, n=n) for v, n in counts.items()) if counts
                else captions.NOT_RECORDED.fill())
        out.append(captions.ENV_LINE.fill(label=label, text=text))
    versions = env.get("versions") or {}
    if versions:
        out += ["", captions.PACKAGES_HEADER.fill(), "|---|---|"]
        out += [f"| {pkg} | {', '.join(v)} |" for pkg, v in versions.items()]
    else:
        out.append(captions.PACKAGES_NOT_RECORDED.fill())
    return out
