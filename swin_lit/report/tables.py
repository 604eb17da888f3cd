"""The tables of a report: per-metric comparisons against the baseline, factorial cell means and effects, the
Swin V2 Table 1 transfer layout, and the paper's differences beside ours.

Every table is computed as numbers first (``cells.csv``, ``effects.csv``, ``transfer.csv``,
``transfer_tests.csv``) and formatted afterwards; the statistics are ``swin_lit.stats`` (paired by seed, Holm
within a family, verdicts, detectable effects, reproduction verdicts). Formatting gives a ``Table``: a heading,
column names, string cells, bold cells and a caption, which ``markdown`` and ``latex`` render.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from swin_lit import stats
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

    text = (
        f"Each variant vs the baseline {short_label(data.baseline)} on the seeds both finished. n: finished/planned "
        f"seeds; mean ± sample std (ddof=1) over the finished seeds; Δ: mean per-seed difference (variant − "
        f"baseline) with its unadjusted 95% t-interval; simultaneous: the Bonferroni 95% interval over the metric's "
        f"family of m comparisons (level 1 − 0.05/m), the interval that goes with the Holm verdicts (one that "
        f"excludes 0 is Holm-resolved; Holm can resolve one whose simultaneous interval still touches 0); both "
        f"intervals clipped to what the metric allows (the variant's mean within the metric's range); p: two-sided "
        f"paired t-test; sign-flip p: the exact paired sign-flip (permutation) test over the 2^n sign patterns, with "
        f"the smallest p it can reach at this n (2/2^n: 0.25 at n = 3, 0.0625 at n = 5). {design_sentence()} "
        f"Family: per metric, the comparisons against the baseline, Holm-adjusted p, α = {data.alpha:g}; verdict "
        f"better / worse where the adjusted p ≤ α; equivalent where two one-sided tests put the difference within "
        f"the spec's smallest effect of interest (margin; without one in the spec, no equivalence verdict); else "
        f"not resolved, with the |Δ| this design had 80% power for (exact noncentral t at the observed paired "
        f"spread and n, level α/m: a property of the design computed from an estimated SD, not a bound on the "
        f"effect; uninformative where it exceeds the metric's range). Bold: the best mean, only when it is resolved "
        f"better than every other row (paired tests of the best row against each other row, Holm over those); ≈: "
        f"tied with the best in the sense of that test."
    )
    if paper and data.paper is not None:
        text += (f" paper Δ: the paper's number minus its baseline row's ({paper_source(data)}), never its absolute "
                 f"number.")
        if study_kind(data) == MECHANISM:
            text += (" vs the paper: this study runs on an embedded task built to need the switches, so each row is a "
                     "mechanism check, not a reproduction: behaves as designed where the Holm verdict has the "
                     "paper's direction (stated in the spec before the run), does not where it is resolved the "
                     "other way; untestable at a ceiling or floor of both means, or where the paired Δ had not "
                     "converged; no expectation where the paper's Δ is within its own test-set noise.")
        else:
            text += (" vs the paper: agrees / contradicts where our comparison is resolved (Holm) with / against the "
                     "paper's sign; smaller than the paper's where the simultaneous interval holds 0 but excludes "
                     "the paper's Δ; consistent with both where it holds both; untestable at a ceiling or floor of "
                     "both means or where the paired Δ had not converged; paper's Δ within its own noise where it "
                     "is at most the binomial 95% half-width of the paper's number on its test set.")
    return text


def comparison_brief(data: StudyData, mc: MetricComparison) -> str:
    """What differs between the metrics' tables: the family and where Welch was used."""
    m = mc.m
    welch = (f"Welch's unpaired test (fewer than 2 seeds shared with the baseline) for "
             f"{'; '.join(short_label(v) for v in mc.welch)}" if mc.welch else "every comparison paired")
    return (f"{mc.metric}, {'higher' if mc.higher else 'lower'} is better. Family: the {m} comparison"
            f"{'s' if m != 1 else ''} against the baseline on {mc.metric} (Holm, α = {data.alpha:g}); {welch}.")


def comparison_caption(data: StudyData, mc: MetricComparison) -> str:
    return (f"Study {data.name}, {comparison_brief(data, mc)} "
            + comparison_explanation(data, paper_key(data, mc.metric) is not None))


def paper_source(data: StudyData) -> str:
    if data.paper is None:
        return ""
    return data.paper.source or "source not stated in this study's stored spec"


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
    return Table(f"{metric} ({'higher' if mc.higher else 'lower'} is better)", comparison_caption(data, mc),
                 columns, rows, f"tab:{data.name}:{metric}", bold, keys=["variant", *keys],
                 brief=comparison_brief(data, mc))


def latex_comparison(data: StudyData, t: Table) -> Table:
    """The comparison table with the spec's ``report.columns`` (variant always first)."""
    keys = t.keys
    keep = [0] + [keys.index(k) for k in data.latex_columns if k in keys]
    out = t.select(keep)
    left = [COMPARISON_COLUMNS[k] for k in keys[1:] if k not in data.latex_columns]
    if left:
        out.caption += f" Not shown here (see report.md and cells.csv): {', '.join(left)}."
    return out


def verdict_line(data: StudyData, mc: MetricComparison, table: pd.DataFrame) -> str:
    """One line per metric: which comparisons are resolved, and how (the simultaneous interval, which matches the
    Holm verdicts), the equivalent ones, what the design could detect for the rest, and the warnings of the exact
    test (bimodal differences; too few seeds for the sign-flip test to reject)."""
    d = decimals(table[f"{mc.metric} mean"], table[f"{mc.metric} std"])
    parts = []
    for kind in (stats.BETTER, stats.WORSE):
        names = [f"{short_label(v)} ({num(mc.comparisons[v].estimate, d, sign=True)}, simultaneous "
                 f"{span(*mc.clipped_simultaneous[v], d) or DASH}, Holm p {format_p(mc.tests[v].p_adjusted)})"
                 for v, verdict in mc.verdicts.items() if verdict == kind]
        if names:
            parts.append(f"{kind} than the baseline: " + "; ".join(names))
    same = [short_label(v) for v, verdict in mc.verdicts.items() if verdict == EQUIVALENT]
    if same:
        parts.append(f"equivalent within ±{mc.margin:g} (TOST, α = {data.alpha:g}): " + ", ".join(same))
    unresolved = [v for v, verdict in mc.verdicts.items() if verdict == stats.NOT_RESOLVED]
    if unresolved:
        parts.append("; ".join(f"{short_label(v)}: " + verdict_text(stats.NOT_RESOLVED, mc.tests[v].detectable,
                                                                     mc.metric, mc.comparisons[v].test)
                               for v in unresolved))
    best = ""
    if mc.best_resolved:
        best = f" Resolved best: {short_label(mc.best)}."
    elif mc.ties:
        best = f" No resolved best ({len(mc.ties)} rows tied with the best mean)."
    warnings = []
    for v in mc.comparisons:
        modes, means = mc.modes.get(v), mc.mode_means(v, data.baseline)
        if modes and means:
            warnings.append(f"{short_label(v)}: the per-seed differences are bimodal ({modes[0]} seed"
                            f"{'s' if modes[0] != 1 else ''} at Δ ≈ {num(means[0], d, sign=True)}, {modes[1]} at Δ ≈ "
                            f"{num(means[1], d, sign=True)}: some seeds learned and some did not), so the t-test's "
                            f"normal model does not hold; the exact sign-flip p is "
                            f"{format_p(mc.sign_flip[v].p)}")
    small = [v for v in mc.comparisons if mc.verdicts[v] in (stats.BETTER, stats.WORSE)
             and np.isfinite(mc.sign_flip[v].min_p) and mc.sign_flip[v].min_p > data.alpha]
    if small:
        n = sorted({mc.sign_flip[v].n for v in small})
        warnings.append(f"{', '.join(short_label(v) for v in small)}: resolved by the t-test, but at n = "
                        f"{'/'.join(map(str, n))} the exact sign-flip test cannot go below "
                        f"{format_p(min(mc.sign_flip[v].min_p for v in small))} (> α): the verdict rests on the "
                        f"normal model")
    margin = "" if mc.margin or mc.metric != data.objective else (
        " No equivalence verdict: the spec gives no smallest effect of interest (margin).")
    family = f"{mc.m} comparisons vs {short_label(data.baseline)}, Holm, α = {data.alpha:g}"
    text = f"**{mc.metric}** ({family}): " + ("; ".join(parts) or "no comparison") + "." + best + margin
    return text + "".join(f" Warning: {w}." for w in warnings)


def cost_table(data: StudyData, table: pd.DataFrame) -> Table | None:
    if not any(np.isfinite(table[f"{c} mean"]).any() for c in COST_COLUMNS):
        return None
    unit, scale = flops_unit(table)
    rows = []
    for variant in data.variants:
        r = table.loc[variant]
        rows.append([short_label(variant), num(r["params mean"] / 1e6, 2), num(r["flops mean"] / scale, 2),
                     num(r["train_images_per_s mean"], 0), num(r["eval_images_per_s mean"], 0)])
    caption = (f"Cost, study {data.name}: parameters (millions), FLOPs ({unit}: multiply-adds per image, the papers' "
               f"convention), training and evaluation throughput (images/s, mean over the finished seeds; "
               f"throughput depends on the machine's load).")
    return Table("Cost", caption, ["variant", "params (M)", f"FLOPs ({unit})", "train img/s", "eval img/s"], rows,
                 f"tab:{data.name}:cost")


def flops_unit(table: pd.DataFrame) -> tuple[str, float]:
    flops = table.get("flops mean", pd.Series([], dtype=float)).dropna()
    return ("G", 1e9) if len(flops) and flops.max() >= 1e9 else ("M", 1e6)

