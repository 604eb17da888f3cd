"""The tables of a report: per-metric comparisons against the baseline, factorial cell means and effects, the
Swin V2 Table 1 transfer layout, and the paper's differences beside ours.

Every table is computed as numbers first (``cells.csv``, ``effects.csv``, ``transfer.csv``,
``transfer_tests.csv``) and formatted afterwards; the statistics are ``swin_lit.stats`` (paired by seed, Holm
within a family, verdicts, detectable effects, reproduction verdicts). Formatting gives a ``Table``: a heading,
column names, string cells, bold cells and a caption, which ``markdown`` and ``latex`` render. The wording of the
captions and lines is ``captions``' templates; numbers go through ``fmt.num``, verdicts through ``fmt.verdict_text``.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from swin_lit import stats
from swin_lit.report import captions
from swin_lit.report.columns import COMPARISON_COLUMNS
from swin_lit.report.compare import COST_COLUMNS, MetricComparison, paper_key
from swin_lit.report.data import StudyData
from swin_lit.report.fmt import (
    DASH,
    EQUIVALENT,
    decimals,
    design_sentence,
    format_p,
    interval_text,
    num,
    pm,
    short_label,
    sign_flip_text,
    span,
    verdict_text,
)
from swin_lit.report.render import Table


def comparison_explanation(data: StudyData, paper: bool = True) -> str:
    """How to read a comparison table (the part every metric shares)."""
    from swin_lit.report.checks import study_kind
    from swin_lit.report.reproduction import MECHANISM

    text = captions.COMPARISON_EXPLANATION.fill(baseline=short_label(data.baseline), design=design_sentence(),
                                                alpha=captions.setting(data.alpha))
    if paper and data.paper is not None:
        text += captions.PAPER_DELTA.fill(source=paper_source(data))
        text += (captions.PAPER_MECHANISM if study_kind(data) == MECHANISM else captions.PAPER_REPRODUCTION).fill()
    return text


def direction(mc: MetricComparison) -> str:
    return "higher" if mc.higher else "lower"


def comparison_brief(data: StudyData, mc: MetricComparison) -> str:
    """What differs between the metrics' tables: the family and where Welch was used."""
    welch = (captions.WELCH_FOR.fill(variants="; ".join(short_label(v) for v in mc.welch)) if mc.welch
             else captions.ALL_PAIRED.fill())
    return captions.COMPARISON_BRIEF.fill(metric=mc.metric, direction=direction(mc), m=mc.m, s=captions.plural(mc.m),
                                          alpha=captions.setting(data.alpha), welch=welch)


def comparison_caption(data: StudyData, mc: MetricComparison) -> str:
    return captions.COMPARISON_CAPTION.fill(
        study=data.name, brief=comparison_brief(data, mc),
        explanation=comparison_explanation(data, paper_key(data, mc.metric) is not None))


def paper_source(data: StudyData) -> str:
    if data.paper is None:
        return ""
    return data.paper.source or captions.NO_SOURCE.fill()


def comparison_table(data: StudyData, mc: MetricComparison, table: pd.DataFrame,
                     checks: dict[tuple[str, str], str] | None = None) -> Table:
    """One metric: every COMPARISON_COLUMNS column (``Table.select`` picks the LaTeX ones)."""
    metric = mc.metric
    d = decimals(table[f"{metric} mean"], table[f"{metric} std"])
    has_paper = paper_key(data, metric) is not None
    keys = [k for k in COMPARISON_COLUMNS if has_paper or k not in ("paper_delta", "reproduction")]
    checks = checks or {}
    rows, bold = [], set()
    for i, variant in enumerate(data.variants):
        r = table.loc[variant]
        cell: dict[str, str] = {"n": f"{r['n']}/{r['planned']}"}
        if r[f"{metric} n"] == 0:
            cell["mean"] = "missing" if r["n"] == 0 else DASH
        else:
            cell["mean"] = pm(r[f"{metric} mean"], r[f"{metric} std"], d)
            if variant in mc.ties:
                cell["mean"] += " ≈"
        if variant == data.baseline:
            cell.update(delta="baseline", simultaneous="", p="", p_holm="", sign_flip="", verdict="", paper_delta="",
                        reproduction="")
        else:
            c, t = mc.comparisons[variant], mc.tests[variant]
            cell["delta"] = interval_text(c, d, mc.clipped[variant]) if np.isfinite(c.estimate) else DASH
            cell["simultaneous"] = span(*mc.clipped_simultaneous[variant], d) or DASH
            if c.test == "paired" and c.n < max(c.n_a, c.n_b):
                cell["delta"] += f" ({c.n} pairs)"
            cell["p"] = format_p(c.p) + (" (Welch)" if c.test == "welch" else "")
            cell["p_holm"] = format_p(t.p_adjusted)
            flip = mc.sign_flip[variant]
            modes = mc.modes[variant]
            cell["sign_flip"] = sign_flip_text(flip.p, flip.min_p, f"{modes[0]}/{modes[1]}" if modes else "",
                                               data.alpha)
            cell["verdict"] = verdict_text(mc.verdicts[variant], t.detectable, metric, c.test, mc.margin)
            pd_ = mc.paper_delta.get(variant, math.nan)
            cell["paper_delta"] = num(pd_, 1, sign=True) if np.isfinite(pd_) else ""
            cell["reproduction"] = checks.get((metric, variant), "")
        label = short_label(variant) + (" (baseline)" if variant == data.baseline else "")
        rows.append([label] + [cell[k] for k in keys])
        if mc.best_resolved and mc.best == variant:
            bold.add((i, 1 + keys.index("mean")))
    columns = ["variant"] + [COMPARISON_COLUMNS[k] for k in keys]
    return Table(captions.COMPARISON_TITLE.fill(metric=metric, direction=direction(mc)), comparison_caption(data, mc),
                 columns, rows, f"tab:{data.name}:{metric}", bold, keys=["variant", *keys],
                 brief=comparison_brief(data, mc))


def latex_comparison(data: StudyData, t: Table) -> Table:
    """The comparison table with the spec's ``report.columns`` (variant always first)."""
    keys = t.keys
    keep = [0] + [keys.index(k) for k in data.latex_columns if k in keys]
    out = t.select(keep)
    left = [COMPARISON_COLUMNS[k] for k in keys[1:] if k not in data.latex_columns]
    if left:
        out.caption += captions.LATEX_LEFT_OUT.fill(columns=", ".join(left))
    return out


def verdict_line(data: StudyData, mc: MetricComparison, table: pd.DataFrame) -> str:
    """One line per metric: which comparisons are resolved, and how (the simultaneous interval, which matches the
    Holm verdicts), the equivalent ones, what the design could detect for the rest, and the warnings of the exact
    test (bimodal differences; too few seeds for the sign-flip test to reject)."""
    d = decimals(table[f"{mc.metric} mean"], table[f"{mc.metric} std"])
    alpha = captions.setting(data.alpha)
    parts = []
    for kind in (stats.BETTER, stats.WORSE):
        names = [captions.RESOLVED_VARIANT.fill(variant=short_label(v),
                                                estimate=num(mc.comparisons[v].estimate, d, sign=True),
                                                interval=span(*mc.clipped_simultaneous[v], d) or DASH,
                                                p=format_p(mc.tests[v].p_adjusted))
                 for v, verdict in mc.verdicts.items() if verdict == kind]
        if names:
            parts.append(captions.RESOLVED.fill(verdict=kind, variants="; ".join(names)))
    same = [short_label(v) for v, verdict in mc.verdicts.items() if verdict == EQUIVALENT]
    if same:
        parts.append(captions.EQUIVALENT_VARIANTS.fill(margin=captions.setting(mc.margin), alpha=alpha,
                                                       variants=", ".join(same)))
    unresolved = [v for v, verdict in mc.verdicts.items() if verdict == stats.NOT_RESOLVED]
    if unresolved:
        parts.append("; ".join(captions.UNRESOLVED_VARIANT.fill(
            variant=short_label(v),
            verdict=verdict_text(stats.NOT_RESOLVED, mc.tests[v].detectable, mc.metric, mc.comparisons[v].test))
            for v in unresolved))
    best = ""
    if mc.best_resolved:
        best = captions.BEST_RESOLVED.fill(variant=short_label(mc.best))
    elif mc.ties:
        best = captions.BEST_TIED.fill(ties=len(mc.ties))
    warnings = []
    for v in mc.comparisons:
        modes, means = mc.modes.get(v), mc.mode_means(v, data.baseline)
        if modes and means:
            warnings.append(captions.BIMODAL.fill(variant=short_label(v), low=modes[0], s=captions.plural(modes[0]),
                                                  low_delta=num(means[0], d, sign=True), high=modes[1],
                                                  high_delta=num(means[1], d, sign=True),
                                                  p=format_p(mc.sign_flip[v].p)))
    small = [v for v in mc.comparisons if mc.verdicts[v] in (stats.BETTER, stats.WORSE)
             and np.isfinite(mc.sign_flip[v].min_p) and mc.sign_flip[v].min_p > data.alpha]
    if small:
        n = sorted({mc.sign_flip[v].n for v in small})
        warnings.append(captions.SIGN_FLIP_FLOOR.fill(variants=", ".join(short_label(v) for v in small),
                                                      n="/".join(map(str, n)),
                                                      min_p=format_p(min(mc.sign_flip[v].min_p for v in small))))
    margin = "" if mc.margin or mc.metric != data.objective else captions.NO_MARGIN.fill()
    family = captions.VERDICT_FAMILY.fill(m=mc.m, baseline=short_label(data.baseline), alpha=alpha)
    text = captions.VERDICT_LINE.fill(metric=mc.metric, family=family,
                                      verdicts="; ".join(parts) or captions.NO_COMPARISON.fill(), best=best,
                                      margin=margin)
    return text + "".join(captions.WARNING.fill(warning=w) for w in warnings)


def cost_table(data: StudyData, table: pd.DataFrame) -> Table | None:
    if not any(np.isfinite(table[f"{c} mean"]).any() for c in COST_COLUMNS):
        return None
    unit, scale = flops_unit(table)
    rows = []
    for variant in data.variants:
        r = table.loc[variant]
        rows.append([short_label(variant), num(r["params mean"] / 1e6, 2), num(r["flops mean"] / scale, 2),
                     num(r["train_images_per_s mean"], 0), num(r["eval_images_per_s mean"], 0)])
    caption = captions.COST_CAPTION.fill(study=data.name, unit=unit)
    columns = ["variant", "params (M)", f"FLOPs ({unit})", "train img/s", "eval img/s"]
    return Table(captions.COST_TITLE.fill(), caption, columns, rows, f"tab:{data.name}:cost")


def flops_unit(table: pd.DataFrame) -> tuple[str, float]:
    flops = table.get("flops mean", pd.Series([], dtype=float)).dropna()
    return ("G", 1e9) if len(flops) and flops.max() >= 1e9 else ("M", 1e6)

