"""The tables of a report: per-metric comparisons against the baseline, factorial cell means and effects, the
Swin V2 Table 1 transfer layout, and the paper's differences beside ours.

Every table is computed as numbers first (``cells.csv``, ``effects.csv``, ``transfer.csv``,
``transfer_tests.csv``) and formatted afterwards; the statistics are ``swin_lit.stats`` (paired by seed, Holm
within a family, verdicts, detectable effects, reproduction verdicts). Formatting gives a ``Table``: a heading,
column names, string cells, bold cells and a caption, which ``markdown`` and ``latex`` render.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np
import pandas as pd

from swin_lit import stats
from swin_lit import study as contract
from swin_lit.report.columns import COMPARISON_COLUMNS
from swin_lit.report.data import StudyData, _key

DASH = "—"
COST_COLUMNS = ("params", "flops", "train_images_per_s", "eval_images_per_s")
MIN_CLASSES_FOR_TOP5 = 10


# -- helpers -----------------------------------------------------------------------------------------------


def higher_is_better(metric: str) -> bool:
    """Direction of a metric (the study contract's rule: loss, ECE and cost are minimised)."""
    return not contract.lower_is_better(metric)


def short_metric(metric: str) -> str:
    return metric.rsplit(".", 1)[-1]


def short_label(variant: str) -> str:
    """``"model.shift=none,model.norm=pre"`` -> ``"shift=none, norm=pre"``; other names unchanged."""
    if "=" not in str(variant):
        return str(variant)
    parts = []
    for part in str(variant).split(","):
        key, _, value = part.partition("=")
        parts.append(f"{key.rsplit('.', 1)[-1]}={value}" if value else part)
    return ", ".join(parts)


def factor_label(key: str) -> str:
    return key.rsplit(".", 1)[-1]


def _decimals(values, spreads=None) -> int:
    """Decimals for a column: 2 for values >= 1, else 4; more when needed to show a spread (std) at all."""
    finite = [abs(v) for v in values if v is not None and np.isfinite(v)]
    d = 2 if finite and max(finite) >= 1 else 4
    small = [abs(v) for v in (spreads if spreads is not None else []) if v is not None and np.isfinite(v) and v > 0]
    if small:
        d = max(d, min(5, math.ceil(-math.log10(min(small)))))
    return d


def _f(value, decimals: int, sign: bool = False) -> str:
    if value is None or not np.isfinite(value):
        return DASH
    return f"{value:+.{decimals}f}" if sign else f"{value:.{decimals}f}"


def format_p(p) -> str:
    if p is None or not np.isfinite(p):
        return DASH
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def _pm(mean, std, d: int) -> str:
    if mean is None or not np.isfinite(mean):
        return DASH
    return _f(mean, d) + (f" ± {_f(std, d)}" if std is not None and np.isfinite(std) else "")


def _interval(c: stats.Comparison, d: int) -> str:
    """"-0.70 [-5.36, +3.96]"; the estimate alone without an interval."""
    text = _f(c.estimate, d, sign=True)
    if np.isfinite(c.low):
        text += f" [{_f(c.low, d, sign=True)}, {_f(c.high, d, sign=True)}]"
    return text


def _verdict_text(test: stats.Test, d: int) -> str:
    """The verdict; "not resolved" says what this design could have detected."""
    if test.verdict != stats.NOT_RESOLVED:
        return test.verdict
    if np.isfinite(test.detectable):
        return f"not resolved (|Δ| < {_f(test.detectable, d)}, or more seeds)"
    return no_test(test.comparison.test)


def no_test(kind: str) -> str:
    if kind == "none":
        return "not resolved (too few seeds for a test)"
    return "not resolved (no spread across seeds: no t-test)"


def _std(values) -> float:
    return float(np.std(values, ddof=1)) if len(values) > 1 else math.nan


def _shorten(text: str, limit: int = 80) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass
class Table:
    """A formatted table: ``columns`` headings, ``rows`` of strings, ``bold`` (row, column) cells, an optional
    group header (``groups``: (title, span) over the columns, for LaTeX and Markdown headings alike)."""

    title: str
    caption: str
    columns: list[str]
    rows: list[list[str]]
    label: str
    bold: set[tuple[int, int]] = field(default_factory=set)
    groups: list[tuple[str, int]] | None = None
    notes: list[str] = field(default_factory=list)  # sentences printed after the table
    keys: list[str] = field(default_factory=list)  # a key per column, where the columns have keys
    brief: str = ""  # the caption in report.md, where a shared explanation precedes the table (else: caption)
    cell_width: int = 18  # LaTeX: cells longer than this many characters are stacked on lines
    rules: set[int] = field(default_factory=set)  # LaTeX: a \midrule after these rows

    def select(self, keep: list[int]) -> Table:
        """The same table with only the columns ``keep`` (indices)."""
        where = {old: new for new, old in enumerate(keep)}
        return Table(self.title, self.caption, [self.columns[i] for i in keep],
                     [[r[i] for i in keep] for r in self.rows], self.label,
                     {(r, where[c]) for r, c in self.bold if c in where}, None, list(self.notes),
                     [self.keys[i] for i in keep] if self.keys else [], self.brief, self.cell_width)


# -- which metrics inform ----------------------------------------------------------------------------------


def shown_metrics(data: StudyData) -> tuple[list[str], dict[str, str]]:
    """(metrics shown in tables and figures, {hidden metric: why}). Top-5 accuracy is shown only with at least
    10 classes: with fewer it sits near its ceiling and cannot tell variants apart. The class count is read from
    the trained cells' configs (``model.num_classes``), else the spec's budget; unknown: shown."""
    shown, hidden = [], {}
    for metric in data.metrics:
        if short_metric(metric) == "top5" and data.num_classes is not None and data.num_classes < MIN_CLASSES_FOR_TOP5:
            hidden[metric] = (f"{data.num_classes} classes (fewer than {MIN_CLASSES_FOR_TOP5}): top-5 of "
                              f"{data.num_classes} classes is near its ceiling (chance "
                              f"{100 * min(5, data.num_classes) / data.num_classes:.1f}%)")
        else:
            shown.append(metric)
    return shown, hidden


# -- per-metric comparisons against the baseline -----------------------------------------------------------


def values_by_variant(data: StudyData, metric: str) -> dict[str, dict[int, float]]:
    """{variant: {seed: value}} of one metric over the finished cells."""
    out: dict[str, dict[int, float]] = {}
    if data.runs.empty or metric not in data.runs:
        return out
    for variant, seed, value in zip(data.runs["variant"], data.runs["seed"], data.runs[metric]):
        value = pd.to_numeric(value, errors="coerce")
        if pd.notna(value) and seed is not None:
            out.setdefault(variant, {})[int(seed)] = float(value)
    return out


def paper_key(data: StudyData, metric: str) -> str | None:
    """The paper rows' key for ``metric`` (``test.top1`` <- ``top1``), if any row has one."""
    if data.paper is None:
        return None
    keys = {k for numbers in data.paper.rows.values() for k in numbers}
    return next((k for k in (metric, short_metric(metric)) if k in keys), None)


def paper_delta(data: StudyData, metric: str, variant: str) -> float:
    """The paper's number of ``variant`` minus its baseline row's, NaN where either is not given."""
    key = paper_key(data, metric)
    if key is None:
        return math.nan
    rows = data.paper.rows
    mine, base = (rows.get(variant) or {}).get(key), (rows.get(data.baseline) or {}).get(key)
    return float(mine - base) if mine is not None and base is not None else math.nan


@dataclass
class MetricComparison:
    """Every variant vs the baseline on one metric (the Holm family), and the best-row test."""

    metric: str
    higher: bool
    values: dict[str, dict[int, float]]
    comparisons: dict[str, stats.Comparison]  # non-baseline variants
    tests: dict[str, stats.Test]
    paper_delta: dict[str, float]
    reproduction: dict[str, str]  # variants with a paper Δ (incl. "no ordering")
    best: str | None
    best_resolved: bool
    ties: set[str]

    @property
    def m(self) -> int:
        return next(iter(self.tests.values())).m if self.tests else 0

    @property
    def welch(self) -> list[str]:
        return [v for v, c in self.comparisons.items() if c.test == "welch"]


def compare_metric(data: StudyData, metric: str) -> MetricComparison:
    values = values_by_variant(data, metric)
    higher = higher_is_better(metric)
    base = values.get(data.baseline, {})
    others = [v for v in data.variants if v != data.baseline]
    comparisons = {v: stats.compare(values.get(v, {}), base) for v in others}
    tests = dict(zip(others, stats.adjust_family(list(comparisons.values()), data.alpha, higher)))
    deltas, repro = {}, {}
    for v in others:
        deltas[v] = paper_delta(data, metric, v)
        if np.isfinite(deltas[v]):
            repro[v] = stats.reproduction(deltas[v], comparisons[v], tests[v].p_adjusted, data.alpha)
    best, resolved, ties = stats.best_row({v: values[v] for v in data.variants if v in values}, higher, data.alpha)
    return MetricComparison(metric, higher, values, comparisons, tests, deltas, repro, best, resolved, ties)


def summarise(data: StudyData) -> pd.DataFrame:
    """The numeric per-variant table (``cells.csv``): one row per variant, baseline first, none dropped.

    Columns: ``n``, ``planned``, ``failed``, ``note``; per metric ``<m> mean/std/n``, and vs the baseline
    ``<m> test`` (paired / welch / none), ``n_pairs``, ``delta`` (mean per-seed difference, or the difference
    of means for Welch), ``ci_low``/``ci_high`` (95%), ``p``, ``p_holm`` (family: the metric's comparisons vs
    the baseline), ``verdict``, ``detectable`` (80%-power |Δ| at alpha/m), ``paper``, ``paper_delta``,
    ``reproduction``, ``best`` (resolved best), ``tie`` (tied with the best); per cost ``<c> mean``.
    """
    runs, cells = data.runs, data.cells
    planned = pd.Series([v for v, _ in data.planned], dtype=object).value_counts()
    comparisons = {m: compare_metric(data, m) for m in data.metrics}
    rows = []
    for variant in data.variants:
        mine = runs[runs["variant"] == variant] if len(runs) else runs
        status = cells[cells["variant"] == variant]
        n_planned = int(planned.get(variant, 0)) or len(status)
        row = {"variant": variant, "baseline": variant == data.baseline, "n": len(mine), "planned": n_planned,
               "failed": int((status["status"] == "failed").sum()), "note": _note(len(mine), n_planned, status)}
        for metric, mc in comparisons.items():
            vals = list(mc.values.get(variant, {}).values())
            row[f"{metric} mean"] = float(np.mean(vals)) if vals else math.nan
            row[f"{metric} std"] = _std(vals)
            row[f"{metric} n"] = len(vals)
            c, t = mc.comparisons.get(variant), mc.tests.get(variant)
            row[f"{metric} test"] = c.test if c else ""
            row[f"{metric} n_pairs"] = c.n if c and c.test == "paired" else math.nan
            for name, value in (("delta", c.estimate if c else math.nan), ("ci_low", c.low if c else math.nan),
                                ("ci_high", c.high if c else math.nan), ("p", c.p if c else math.nan),
                                ("p_holm", t.p_adjusted if t else math.nan),
                                ("detectable", t.detectable if t and t.verdict == stats.NOT_RESOLVED else math.nan)):
                row[f"{metric} {name}"] = value
            row[f"{metric} verdict"] = t.verdict if t else "baseline"
            key = paper_key(data, metric)
            row[f"{metric} paper"] = (data.paper.rows.get(variant) or {}).get(key, math.nan) if key else math.nan
            row[f"{metric} paper_delta"] = mc.paper_delta.get(variant, math.nan)
            row[f"{metric} reproduction"] = mc.reproduction.get(variant, "")
            row[f"{metric} best"] = mc.best_resolved and mc.best == variant
            row[f"{metric} tie"] = variant in mc.ties
        for cost in COST_COLUMNS:
            values = pd.to_numeric(mine[cost], errors="coerce").dropna() if cost in mine else pd.Series([])
            row[f"{cost} mean"] = float(values.mean()) if len(values) else math.nan
        rows.append(row)
    return pd.DataFrame(rows).set_index("variant")


def _note(n: int, planned: int, status: pd.DataFrame) -> str:
    """``"2/3 seeds; 1 failed: <reason>"``; empty when every planned seed finished."""
    parts = []
    if n < planned or planned == 0:
        parts.append(f"{n}/{planned} seeds")
    for name in ("failed", "running", "waiting", "pruned", "missing"):
        these = status[status["status"] == name]
        if len(these) == 0:
            continue
        text = f"{len(these)} {name}"
        if name == "failed":
            reasons = list(dict.fromkeys(str(e) for e in these["error"] if e is not None and str(e) != "nan"))
            if reasons:
                text += ": " + "; ".join(_shorten(r) for r in reasons[:2])
        parts.append(text)
    return "; ".join(parts)


def design_sentence() -> str:
    return ("Assumption: seeds are blocks (one seed fixes the data order, augmentation draws and initialisation "
            "for every variant), so each variant is compared with the baseline by its per-seed differences, "
            "taken as independent and roughly normal (t-based interval and test).")


def comparison_explanation(data: StudyData, paper: bool = True) -> str:
    """How to read a comparison table (the part every metric shares)."""
    text = (
        f"Each variant vs the baseline {short_label(data.baseline)} on the seeds both finished. n: finished/planned "
        f"seeds; mean ± sample std (ddof=1) over the finished seeds; Δ: mean per-seed difference (variant − "
        f"baseline) with its 95% t-interval; p: two-sided paired t-test. {design_sentence()} Family: per metric, "
        f"the comparisons against the baseline, Holm-adjusted p, α = {data.alpha:g}; verdict better / worse where "
        f"the adjusted p ≤ α, else not resolved with the smallest |Δ| this design detects with 80% power (exact "
        f"noncentral t at the observed paired spread and n, at level α/m for a family of m, Holm's strictest "
        f"step). Bold: the best mean, only when it is resolved better than every other row (paired tests of the "
        f"best row against each other row, Holm over those); ≈: tied with the best in the sense of that test."
    )
    if paper and data.paper is not None:
        text += (f" paper Δ: the paper's number minus its baseline row's ({paper_source(data)}), never its "
                 f"absolute number; reproduction: agrees / contradicts when our comparison is resolved (Holm) with "
                 f"/ against the paper's sign, not resolved otherwise, no ordering where the paper's Δ is 0.")
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


def comparison_table(data: StudyData, mc: MetricComparison, table: pd.DataFrame) -> Table:
    """One metric: every COMPARISON_COLUMNS column (``Table.select`` picks the LaTeX ones)."""
    metric = mc.metric
    d = _decimals(table[f"{metric} mean"], table[f"{metric} std"])
    has_paper = paper_key(data, metric) is not None
    keys = [k for k in COMPARISON_COLUMNS if has_paper or k not in ("paper_delta", "reproduction")]
    rows, bold = [], set()
    for i, variant in enumerate(data.variants):
        r = table.loc[variant]
        cell: dict[str, str] = {"n": f"{r['n']}/{r['planned']}"}
        if r[f"{metric} n"] == 0:
            cell["mean"] = "missing" if r["n"] == 0 else DASH
        else:
            cell["mean"] = _pm(r[f"{metric} mean"], r[f"{metric} std"], d)
            if variant in mc.ties:
                cell["mean"] += " ≈"
        if variant == data.baseline:
            cell.update(delta="baseline", p="", p_holm="", verdict="", paper_delta="", reproduction="")
        else:
            c, t = mc.comparisons[variant], mc.tests[variant]
            cell["delta"] = _interval(c, d) if np.isfinite(c.estimate) else DASH
            if c.test == "paired" and c.n < max(c.n_a, c.n_b):
                cell["delta"] += f" ({c.n} pairs)"
            cell["p"] = format_p(c.p) + (" (Welch)" if c.test == "welch" else "")
            cell["p_holm"] = format_p(t.p_adjusted)
            cell["verdict"] = _verdict_text(t, d)
            pd_ = mc.paper_delta.get(variant, math.nan)
            cell["paper_delta"] = _f(pd_, 1, sign=True) if np.isfinite(pd_) else ""
            cell["reproduction"] = mc.reproduction.get(variant, "")
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
    """One line per metric: which comparisons are resolved, and how."""
    d = _decimals(table[f"{mc.metric} mean"], table[f"{mc.metric} std"])
    parts = []
    for kind in (stats.BETTER, stats.WORSE):
        names = [f"{short_label(v)} ({_interval(mc.comparisons[v], d)}, Holm p {format_p(mc.tests[v].p_adjusted)})"
                 for v, t in mc.tests.items() if t.verdict == kind]
        if names:
            parts.append(f"{kind} than the baseline: " + "; ".join(names))
    unresolved = [v for v, t in mc.tests.items() if t.verdict == stats.NOT_RESOLVED]
    if unresolved:
        names = [short_label(v) + (f" (|Δ| < {_f(mc.tests[v].detectable, d)} or more seeds)"
                                   if np.isfinite(mc.tests[v].detectable) else " (too few seeds)") for v in unresolved]
        parts.append("not resolved: " + "; ".join(names))
    best = ""
    if mc.best_resolved:
        best = f" Resolved best: {short_label(mc.best)}."
    elif mc.ties:
        best = f" No resolved best ({len(mc.ties)} rows tied with the best mean)."
    family = f"{mc.m} comparisons vs {short_label(data.baseline)}, Holm, α = {data.alpha:g}"
    return f"**{mc.metric}** ({family}): " + ("; ".join(parts) or "no comparison") + "." + best


def cost_table(data: StudyData, table: pd.DataFrame) -> Table | None:
    if not any(np.isfinite(table[f"{c} mean"]).any() for c in COST_COLUMNS):
        return None
    unit, scale = flops_unit(table)
    rows = []
    for variant in data.variants:
        r = table.loc[variant]
        rows.append([short_label(variant), _f(r["params mean"] / 1e6, 2), _f(r["flops mean"] / scale, 2),
                     _f(r["train_images_per_s mean"], 0), _f(r["eval_images_per_s mean"], 0)])
    caption = (f"Cost, study {data.name}: parameters (millions), FLOPs ({unit}: multiply-adds per image, the papers' "
               f"convention), training and evaluation throughput (images/s, mean over the finished seeds; "
               f"throughput depends on the machine's load).")
    return Table("Cost", caption, ["variant", "params (M)", f"FLOPs ({unit})", "train img/s", "eval img/s"], rows,
                 f"tab:{data.name}:cost")


def flops_unit(table: pd.DataFrame) -> tuple[str, float]:
    flops = table.get("flops mean", pd.Series([], dtype=float)).dropna()
    return ("G", 1e9) if len(flops) and flops.max() >= 1e9 else ("M", 1e6)


# -- factorial cell means and effects ----------------------------------------------------------------------


def reference_levels(data: StudyData) -> dict[str, object]:
    """Each factor's reference level: the baseline's level, else the first level listed."""
    base = data.variant_overrides.get(data.baseline, {}) if data.baseline else {}
    out = {}
    for k, levels in data.factors.items():
        out[k] = base[k] if k in base and _key(base[k]) in {_key(v) for v in levels} else levels[0]
    return out


def _cell_values(data: StudyData, metric: str) -> dict[tuple, dict[int, float]]:
    """factorial cell (one _key per factor) -> {seed: value} of one metric."""
    keys = list(data.factors)
    out: dict[tuple, dict[int, float]] = {}
    for variant, values in values_by_variant(data, metric).items():
        ov = data.variant_overrides.get(variant, {})
        out[tuple(_key(ov.get(k)) for k in keys)] = values
    return out


def _keyed_levels(data: StudyData) -> tuple[dict[str, list[str]], dict[str, str], dict[str, dict[str, object]]]:
    """Factor levels and references as _key strings (comparable), and _key -> the level as written."""
    levels = {k: [_key(v) for v in vs] for k, vs in data.factors.items()}
    refs = {k: _key(v) for k, v in reference_levels(data).items()}
    shown = {k: {_key(v): v for v in vs} for k, vs in data.factors.items()}
    return levels, refs, shown


EFFECT_COLUMNS = ["metric", "effect", "term", "contrast", "at", "estimate", "ci_low", "ci_high", "p", "p_holm",
                  "verdict", "detectable", "n_seeds"]


def _unkey(text: str, shown: dict[str, dict[str, object]]) -> str:
    """A term's contrast/at text with _key strings replaced by the levels as written."""
    for levels in shown.values():
        for k, v in levels.items():
            text = text.replace(k, str(v))
    return text


def factorial_effects(data: StudyData) -> pd.DataFrame:
    """Main effects and two-way interactions (full-difference scale, ``stats.factorial_terms``) of every metric,
    Holm-adjusted as one family per metric; simple effects of both factors of every resolved interaction,
    Holm-adjusted as a second family per metric. Each term is computed per seed (seeds finished in every cell
    involved) and summarised by its mean with a 95% t-interval and the t-test of 0."""
    if not data.factors or data.runs.empty:
        return pd.DataFrame(columns=EFFECT_COLUMNS)
    levels, refs, shown = _keyed_levels(data)
    terms = stats.factorial_terms(levels, refs)
    rows = []
    for metric in data.metrics:
        cells = _cell_values(data, metric)
        higher = higher_is_better(metric)
        estimates = [stats.estimate_term(t, cells) for t in terms]
        main = [i for i, t in enumerate(terms) if t.kind == "main"]
        tests = stats.adjust_family(estimates, data.alpha, None)
        directed = stats.adjust_family(estimates, data.alpha, higher)  # same Holm p; main effects get a direction
        simple_terms = []
        for i, (t, test) in enumerate(zip(terms, tests)):
            rows.append(_effect_row(metric, t, estimates[i], directed[i] if i in main else test, shown))
            if t.kind == "interaction" and test.verdict == "resolved":
                simple_terms += stats.simple_effect_terms(levels, refs, *t.factors)
        unique = list({(t.factors, t.contrast, t.at): t for t in simple_terms}.values())
        simple = [stats.estimate_term(t, cells) for t in unique]
        for t, c, test in zip(unique, simple, stats.adjust_family(simple, data.alpha, higher)):
            rows.append(_effect_row(metric, t, c, test, shown))
    return pd.DataFrame(rows, columns=EFFECT_COLUMNS)


def _effect_row(metric: str, term: stats.Term, c: stats.Comparison, test: stats.Test, shown) -> dict:
    term_name = " × ".join(term.factors)
    return dict(metric=metric, effect=term.kind, term=term_name, contrast=_unkey(term.contrast, shown),
                at=_unkey(term.at, shown), estimate=c.estimate, ci_low=c.low, ci_high=c.high, p=c.p,
                p_holm=test.p_adjusted, verdict=test.verdict,
                detectable=test.detectable if test.verdict == stats.NOT_RESOLVED else math.nan, n_seeds=c.n)


EFFECTS_CONVENTION = (
    "Scale: full differences, not the 2^k effect coding. Main effect of A (level a vs the reference a0, the "
    "baseline's level) = the mean over the other factors' cells of y(a, ·) − y(a0, ·); for a 2×2, "
    "((m21 − m11) + (m22 − m12)) / 2. Interaction of A and B = the difference of differences "
    "(y(a, b) − y(a0, b)) − (y(a, b0) − y(a0, b0)); for a 2×2, (m22 − m12) − (m21 − m11) (the 2^k coding "
    "reports half of it). Simple effect of A at B = b: y(a, b) − y(a0, b). Higher-order interactions are not "
    "formed."
)


EFFECTS_METHOD = (
    "Each effect is computed per seed (seeds as blocks; only seeds finished in every cell involved) and shown as its "
    "mean with the 95% t-interval over seeds (df = n − 1) and the two-sided t-test of 0. Per metric, the main "
    "effects and interactions form one Holm family, the simple effects shown (only for a resolved interaction) "
    "another. Verdicts: main and simple effects better / worse (the level vs the reference), interactions "
    "resolved / not resolved, from the Holm-adjusted p; not resolved with the smallest |effect| detectable with "
    "80% power (exact noncentral t, level α/m)."
)


def effects_caption(data: StudyData, metric: str, m: int) -> str:
    return (f"Factorial effects on {metric} ({'higher' if higher_is_better(metric) else 'lower'} is better), "
            f"study {data.name}. {EFFECTS_CONVENTION} {EFFECTS_METHOD} Family here: the {m} main effects and "
            f"interactions of this metric, α = {data.alpha:g}.")


def _effect_cells(r: pd.Series, d: int) -> list[str]:
    c = stats.Comparison("paired", r["estimate"], r["ci_low"], r["ci_high"], r["p"], math.nan, math.nan,
                         int(r["n_seeds"]), 0, 0)
    if r["verdict"] == stats.NOT_RESOLVED:
        v = (f"not resolved (|effect| < {_f(r['detectable'], d)}, or more seeds)" if np.isfinite(r["detectable"])
             else no_test("none" if r["n_seeds"] < 2 else "paired"))
    else:
        v = r["verdict"]
    return [_interval(c, d) if np.isfinite(r["estimate"]) else DASH, format_p(r["p"]), format_p(r["p_holm"]), v,
            str(int(r["n_seeds"]))]


def effects_table(data: StudyData, effects: pd.DataFrame, metric: str) -> Table | None:
    rows_df = effects[(effects["metric"] == metric) & (effects["effect"] != "simple")]
    if rows_df.empty:
        return None
    d = _decimals(rows_df["estimate"])
    rows = []
    for _, r in rows_df.iterrows():
        term = " × ".join(factor_label(k) for k in r["term"].split(" × "))
        rows.append([r["effect"], term, r["contrast"], *_effect_cells(r, d)])
    t = Table(f"Effects on {metric}", effects_caption(data, metric, len(rows_df)),
              ["effect", "factor(s)", "contrast", "estimate [95% CI]", "p", "p (Holm)", "verdict", "n"], rows,
              f"tab:{data.name}:effects:{metric}",
              brief=f"Main effects and interactions on {metric}. Family: these {len(rows_df)} effects (Holm, "
                    f"α = {data.alpha:g}).")
    t.notes = interaction_sentences(effects, metric, d)
    return t


def simple_effects_table(data: StudyData, effects: pd.DataFrame, metric: str) -> Table | None:
    rows_df = effects[(effects["metric"] == metric) & (effects["effect"] == "simple")]
    if rows_df.empty:
        return None
    d = _decimals(rows_df["estimate"])
    rows = [[factor_label(r["term"]), r["contrast"], short_label(r["at"]), *_effect_cells(r, d)]
            for _, r in rows_df.iterrows()]
    caption = (f"Simple effects on {metric} of the factors of each resolved interaction, study {data.name}: the "
               f"effect of one factor at each level of the other (other factors averaged), per seed, mean with the "
               f"95% t-interval. Family: these {len(rows_df)} simple effects, Holm-adjusted, α = {data.alpha:g}.")
    return Table(f"Simple effects on {metric}", caption,
                 ["factor", "contrast", "at", "estimate [95% CI]", "p", "p (Holm)", "verdict", "n"], rows,
                 f"tab:{data.name}:simple:{metric}",
                 brief=f"Simple effects on {metric} (the interaction is resolved). Family: these {len(rows_df)} "
                       f"simple effects (Holm, α = {data.alpha:g}).")


def interaction_sentences(effects: pd.DataFrame, metric: str, d: int) -> list[str]:
    """For each resolved interaction: the simple effects in words, and that the main effects alone do not
    describe the data."""
    out = []
    mine = effects[effects["metric"] == metric]
    for _, r in mine[(mine["effect"] == "interaction") & (mine["verdict"] == "resolved")].iterrows():
        a, b = r["term"].split(" × ")
        parts = []
        for factor, other in ((a, b), (b, a)):
            simple = mine[(mine["effect"] == "simple") & (mine["term"] == factor)]
            simple = simple[simple["at"].str.startswith(f"{other}=")]
            at = "; ".join(f"{_f(s['estimate'], d, sign=True)} [{_f(s['ci_low'], d, sign=True)}, "
                           f"{_f(s['ci_high'], d, sign=True)}] at {factor_label(s['at'].split('=')[0])}="
                           f"{s['at'].split('=', 1)[1]} ({s['verdict']})" for _, s in simple.iterrows())
            main = mine[(mine["effect"] == "main") & (mine["term"] == factor)]
            main_text = f" (main effect {_f(main['estimate'].iloc[0], d, sign=True)})" if len(main) else ""
            parts.append(f"the effect of {factor_label(factor)} ({simple['contrast'].iloc[0] if len(simple) else ''})"
                         f" is {at}{main_text}")
            signs = {np.sign(s["estimate"]) for _, s in simple.iterrows() if s["verdict"] != stats.NOT_RESOLVED}
            if len(signs) > 1:
                parts[-1] += ", a crossing interaction (its sign changes with " + factor_label(other) + ")"
        out.append(f"The {factor_label(a)} × {factor_label(b)} interaction on {metric} is resolved "
                   f"({_f(r['estimate'], d, sign=True)} [{_f(r['ci_low'], d, sign=True)}, "
                   f"{_f(r['ci_high'], d, sign=True)}], Holm p {format_p(r['p_holm'])}): " + "; ".join(parts)
                   + f". The main effects of {factor_label(a)} and {factor_label(b)} alone do not describe the data.")
    return out


def cell_means_table(data: StudyData, metric: str) -> Table | None:
    """Cell means of a factorial: for two factors the levels(A) x levels(B) table with margins (unweighted
    means of the cell means); otherwise one row per cell."""
    factors = data.factors
    if not factors:
        return None
    cells = _cell_values(data, metric)
    if not cells:
        return None
    levels, _, shown = _keyed_levels(data)
    all_values = [v for vals in cells.values() for v in vals.values()]
    d = _decimals(all_values, [_std(list(v.values())) for v in cells.values()])

    def text(cell) -> str:
        vals = list(cells.get(cell, {}).values())
        return f"{_pm(np.mean(vals), _std(vals), d)} (n={len(vals)})" if vals else "missing"

    def mean_of(cs) -> float:
        means = [np.mean(list(cells[c].values())) for c in cs if cells.get(c)]
        return float(np.mean(means)) if len(means) == len(cs) else math.nan

    keys = list(factors)
    caption = (f"Cell means of {metric}, study {data.name}: mean ± sample std over the finished seeds (n)")
    if len(keys) == 2:
        a, b = keys
        rows = []
        for la in levels[a]:
            row_cells = [(la, lb) for lb in levels[b]]
            rows.append([f"{factor_label(a)}={shown[a][la]}", *[text(c) for c in row_cells],
                         _f(mean_of(row_cells), d)])
        col_margin = [_f(mean_of([(la, lb) for la in levels[a]]), d) for lb in levels[b]]
        grand = _f(mean_of([(la, lb) for la in levels[a] for lb in levels[b]]), d)
        rows.append([f"mean over {factor_label(a)}", *col_margin, grand])
        columns = [f"{factor_label(a)} \\ {factor_label(b)}", *[f"{factor_label(b)}={shown[b][lb]}" for lb in
                                                                levels[b]], f"mean over {factor_label(b)}"]
        caption += ("; margins: unweighted means of the cell means (with 2 levels, a main effect on the "
                    "full-difference scale is the difference of its margins, up to seeds that did not finish).")
        return Table(f"Cell means of {metric}", caption, columns, rows, f"tab:{data.name}:cells:{metric}")
    import itertools

    rows = [[*(str(shown[k][c[i]]) for i, k in enumerate(keys)), text(c)]
            for c in itertools.product(*levels.values())]
    return Table(f"Cell means of {metric}", caption + ".", [*(factor_label(k) for k in keys), metric], rows,
                 f"tab:{data.name}:cells:{metric}")


# -- transfer (Swin V2 Table 1) ----------------------------------------------------------------------------


def transfer_summary(data: StudyData) -> pd.DataFrame:
    """Numeric transfer table (``transfer.csv``): one row per (variant, method, img_size, window_size) planned or
    run: ratio (target window / trained window), n, mean/std without and with fine-tuning, failed/missing
    counts and the first failure's reason. The score is test top-1, or a segmentation study's mIoU
    (``data.transfer_metric``, which names the columns)."""
    t, cells, m = data.transfer, data.transfer_cells, data.transfer_metric
    columns = ["variant", "method", "img_size", "window_size", "ratio", "n", f"{m} mean", f"{m} std", f"{m}_ft mean",
               f"{m}_ft std", f"{m}_ft n", "failed", "missing", "running", "reason"]
    keys = ["variant", "method", "img_size", "window_size"]
    groups = set()
    for frame in (t, cells):
        if not frame.empty:
            groups |= {tuple(r) for r in frame[keys].itertuples(index=False)}
    if not groups:
        return pd.DataFrame(columns=columns)
    order = {v: i for i, v in enumerate(data.variants)}
    rows = []
    for variant, method, img, window in groups:
        g = t[(t["variant"] == variant) & (t["method"] == method) & (t["img_size"] == img)
              & (t["window_size"] == window)] if not t.empty else t
        c = cells[(cells["variant"] == variant) & (cells["method"] == method) & (cells["img_size"] == img)
                  & (cells["window_size"] == window)] if not cells.empty else cells
        ft = g[f"{m}_ft"].dropna() if len(g) else pd.Series([], dtype=float)
        status = c["status"].value_counts().to_dict() if len(c) else {}
        reasons = [str(e) for e in c.loc[c["status"] == "failed", "error"] if e] if len(c) else []
        missing = c[c["status"] == "missing"] if len(c) else c
        trained_failed = [s for s in (missing["seed"] if len(missing) else [])
                          if _train_status(data, variant, s) in ("failed", "pruned")]
        if trained_failed and not reasons:
            reasons = ["its trained cell failed"]
        ratio = _ratio(data, variant, window)
        rows.append({
            "variant": variant, "method": method, "img_size": int(img), "window_size": int(window),
            "ratio": float(ratio) if ratio is not None else math.nan, "n": len(g),
            f"{m} mean": g[m].mean() if len(g) else math.nan, f"{m} std": _std(list(g[m])) if len(g) else
            math.nan, f"{m}_ft mean": ft.mean() if len(ft) else math.nan, f"{m}_ft std": _std(list(ft)),
            f"{m}_ft n": len(ft), "failed": int(status.get("failed", 0)), "missing": int(status.get("missing", 0)),
            "running": int(status.get("running", 0) + status.get("waiting", 0)),
            "reason": _shorten(reasons[0]) if reasons else "",
        })
    out = pd.DataFrame(rows, columns=columns)
    out["_o"] = out["variant"].map(lambda v: order.get(v, len(order)))
    return out.sort_values(["_o", "method", "window_size", "img_size"]).drop(columns="_o").reset_index(drop=True)


def _train_status(data: StudyData, variant: str, seed) -> str | None:
    hit = data.cells[(data.cells["variant"] == variant) & (data.cells["seed"] == seed)] if len(data.cells) else []
    return hit["status"].iloc[0] if len(hit) else None


def _ratio(data: StudyData, variant: str, window) -> Fraction | None:
    geometry = data.trained_geometry.get(variant) or next(iter(data.trained_geometry.values()), None)
    return Fraction(int(window), geometry[1]) if geometry else None


def _ratio_label(r: Fraction) -> str:
    return f"{float(r):g}×"


def _transfer_rows(data: StudyData, summary: pd.DataFrame) -> list[tuple[str, str]]:
    return list(dict.fromkeys((r.variant, r.method) for r in summary.itertuples()))


def _transfer_values(data: StudyData, variant: str, method: str, img: int, window: int, ft: bool) -> dict[int, float]:
    t = data.transfer
    if t.empty:
        return {}
    g = t[(t["variant"] == variant) & (t["method"] == method) & (t["img_size"] == img) & (t["window_size"] == window)]
    col = f"{data.transfer_metric}_ft" if ft else data.transfer_metric
    return {int(s): float(v) for s, v in zip(g["seed"], g[col]) if pd.notna(v) and s is not None}


@dataclass(frozen=True)
class TransferColumn:
    """One column group of the transfer layout: a transfer ratio (target window / training window; None where
    our training window is not recorded), our target (img, window) and the paper's target of the same ratio."""

    ratio: Fraction | None
    ours: tuple[int, int] | None
    paper: tuple[int, int] | None

    @property
    def title(self) -> str:
        return _ratio_label(self.ratio) if self.ratio is not None else ""


def transfer_columns(data: StudyData, summary: pd.DataFrame) -> list[TransferColumn]:
    """Our targets and the paper's, merged by transfer ratio, ascending; the paper's training size left out."""
    ours: dict = {}
    for r in summary.itertuples():
        ratio = Fraction(r.ratio).limit_denominator(64) if np.isfinite(r.ratio) else None
        ours.setdefault(ratio if ratio is not None else ("target", r.img_size, r.window_size),
                        (int(r.img_size), int(r.window_size)))
    paper: dict = {}
    tp = data.transfer_paper
    if tp is not None and tp.trained is not None:
        for cols in tp.rows.values():
            for img, w in cols:
                if (img, w) != tuple(tp.trained):
                    paper.setdefault(Fraction(w, tp.trained[1]), (img, w))
    keys = sorted({k for k in ours if isinstance(k, Fraction)} | set(paper)) + [k for k in ours if
                                                                               not isinstance(k, Fraction)]
    return [TransferColumn(k if isinstance(k, Fraction) else None, ours.get(k), paper.get(k)) for k in keys]


def _wi(target: tuple[int, int] | None) -> str:
    return f"W{target[1]},I{target[0]}" if target else ""


def transfer_layout(data: StudyData, summary: pd.DataFrame) -> Table | None:
    """Swin V2 Table 1 layout: one column per transfer ratio (1x = as trained), headed by our target and the
    paper's target of that ratio; rows: ours (trained variant x transfer method, then the chance level), then the
    paper's rows; cells "without FT / with FT (n)"."""
    if summary.empty:
        return None
    columns_at = transfer_columns(data, summary)
    tp = data.transfer_paper
    geometry = next(iter(data.trained_geometry.values()), None)
    m = data.transfer_metric
    d = _decimals(summary[f"{m} mean"], pd.concat([summary[f"{m} std"], summary[f"{m}_ft std"]]))

    def head(title: str, ours, paper) -> str:
        text = f"{title}: ours {_wi(ours) if ours else 'not run'}"
        return text + (f", paper {_wi(paper) if paper else 'not in its table'}" if tp is not None else "")

    columns = ["", "variant", "method",
               head("1× as trained", geometry, tp.trained if tp is not None else None) if geometry or tp
               else "1× as trained"]
    columns += [head(col.title or "ratio unknown", col.ours, col.paper) for col in columns_at]
    trained = _trained_score(data, d)
    rows = []
    for variant, method in _transfer_rows(data, summary):
        row = ["ours", short_label(variant), method, trained.get(variant, DASH)]
        for col in columns_at:
            hit = summary[(summary["variant"] == variant) & (summary["method"] == method)
                          & (summary["img_size"] == (col.ours or (0, 0))[0])
                          & (summary["window_size"] == (col.ours or (0, 0))[1])]
            missing = "not run" if col.ours else "not in this study"
            row.append(_layout_cell(hit.iloc[0], d, m) if len(hit) else missing)
        rows.append(row)
    if data.transfer_chance is not None:
        chance = _f(data.transfer_chance, 1)
        rows.append(["ours", f"chance (1/{data.num_classes})", "", chance,
                     *[chance if col.ours else "" for col in columns_at]])
    ours_end = len(rows) - 1
    if tp is not None:
        for variant in tp.rows:
            rows.append(["paper", short_label(variant), "", _paper_cell(tp, variant, tp.trained, as_trained=True),
                         *[_paper_cell(tp, variant, col.paper) for col in columns_at]])
    label = data.transfer_label
    scaled = ("the image size scaled with it" if m == "top1" else
              "I: the fine-tuning crop; the test images are segmented at their own size")
    chance_note = f" Chance: 1/number of classes ({data.num_classes_source})." if data.transfer_chance else ""
    source = (f" Paper rows: {tp.source or 'source not stated in the stored spec'}, at its own training size and "
              f"windows, aligned with ours by the ratio; its numbers are on its own data, not comparable with ours "
              f"in absolute terms." if tp is not None else "")
    caption = (f"Transfer to larger windows, study {data.name} (Swin V2 Table 1 layout): one column per transfer "
               f"ratio (target window / training window, {scaled}), headed by our target and "
               f"the paper's target of the same ratio; 1× is the model as trained (test {label} of the trained "
               f"cells). Our rows: a trained variant and its position-bias transfer method; cells: test {label} "
               f"without fine-tuning / with fine-tuning, mean ± sample std over seeds (n); failed or missing cells "
               f"say so, with the reason.{chance_note}{source}")
    return Table("Transfer (Swin V2 Table 1 layout)", caption, columns, rows, f"tab:{data.name}:transfer",
                 cell_width=13, rules={ours_end})


def _trained_score(data: StudyData, d: int) -> dict[str, str]:
    values = values_by_variant(data, f"test.{data.transfer_metric}")
    return {v: f"{_pm(np.mean(list(x.values())), _std(list(x.values())), d)} (n={len(x)})"
            for v, x in values.items()}


def _paper_cell(tp, variant: str, target, as_trained: bool = False) -> str:
    numbers = (tp.rows.get(variant) or {}).get(tuple(target)) if target else None
    if numbers is None:
        return ""
    without, with_ft = numbers
    if with_ft is None or as_trained:
        return _f(without, 1) if without is not None else ""
    return f"{_f(without, 1) if without is not None else DASH} / {_f(with_ft, 1)}"


def _layout_cell(r, d: int, m: str) -> str:
    issues = []
    if r["failed"]:
        issues.append(f"{r['failed']} failed" + (f": {r['reason']}" if r["reason"] else ""))
    if r["missing"]:
        issues.append(f"{r['missing']} missing" + (f": {r['reason']}" if r["reason"] and not r["failed"] else ""))
    if r["running"]:
        issues.append(f"{r['running']} running")
    if r["n"] == 0:
        return "; ".join(issues) or "missing"
    ft = _pm(r[f"{m}_ft mean"], r[f"{m}_ft std"], d) if r[f"{m}_ft n"] else "no FT"
    text = f"{_pm(r[f'{m} mean'], r[f'{m} std'], d)} / {ft} (n={r['n']})"
    return text + (f"; {'; '.join(issues)}" if issues else "")


TRANSFER_TEST_COLUMNS = ["img_size", "window_size", "ratio", "finetuned", "variant", "method", "versus",
                         "versus_method", "test", "n", "delta",
                         "ci_low", "ci_high", "p", "p_holm", "verdict", "detectable", "paper_target", "paper_delta",
                         "reproduction"]


def transfer_contrasts(data: StudyData, rows_order: list[tuple[str, str]]) -> list[tuple[tuple[str, str], ...]]:
    """The spec's ``transfer.contrasts`` as ((variant, method), (variant, method)) pairs, each variant's first
    method; pairs whose variants have no transfer rows are left out."""
    from swin_lit.study import find_variant

    first = {}
    for v, m in rows_order:
        first.setdefault(v, (v, m))
    out = []
    for a, b in ((data.spec.get("transfer") or {}).get("contrasts") or []):
        va, vb = (find_variant(list(data.variants), n, bool(data.spec.get("factors"))) for n in (a, b))
        if va in first and vb in first:
            out.append((first[va], first[vb]))
    return out


def transfer_tests(data: StudyData, summary: pd.DataFrame) -> pd.DataFrame:
    """Between methods at each target: every (variant, method) row vs the baseline's row, and the spec's
    ``transfer.contrasts`` (A vs B), without and with fine-tuning, paired by the trained seed; Holm within the
    target (both FT settings, every comparison); the paper's Δ at the target of the same ratio and the
    reproduction verdict."""
    if summary.empty:
        return pd.DataFrame(columns=TRANSFER_TEST_COLUMNS)
    rows_order = _transfer_rows(data, summary)
    base = next(((v, m) for v, m in rows_order if v == data.baseline), rows_order[0] if rows_order else None)
    pairs = [(row, base) for row in rows_order if row != base] + transfer_contrasts(data, rows_order)
    tp = data.transfer_paper
    paper_at = {c.ours: c.paper for c in transfer_columns(data, summary) if c.ours}
    out = []
    for (img, window), _ in summary.groupby(["img_size", "window_size"], sort=True):
        ratio = _ratio(data, base[0], window)
        paper = paper_at.get((int(img), int(window)))
        family = []
        for ft in (False, True):
            for row, ref in pairs:
                mine, theirs = (_transfer_values(data, *r, img, window, ft) for r in (row, ref))
                if not mine or not theirs:  # not run at this target, or without fine-tuning
                    continue
                c = stats.compare(mine, theirs)
                pdelta = math.nan
                if tp is not None and paper is not None:
                    a_row, b_row = (tp.rows.get(row[0]) or {}).get(paper), (tp.rows.get(ref[0]) or {}).get(paper)
                    if a_row is not None and b_row is not None:
                        a, b = (a_row[1], b_row[1]) if ft else (a_row[0], b_row[0])
                        pdelta = a - b if a is not None and b is not None else math.nan
                family.append((ft, row, ref, c, pdelta))
        tests = stats.adjust_family([f[3] for f in family], data.alpha, True)
        for (ft, (variant, method), (versus, versus_method), c, pdelta), t in zip(family, tests):
            out.append(dict(img_size=int(img), window_size=int(window), ratio=float(ratio) if ratio else math.nan,
                            finetuned=ft, variant=variant, method=method, versus=versus,
                            versus_method=versus_method, test=c.test, n=c.n, delta=c.estimate,
                            ci_low=c.low, ci_high=c.high, p=c.p, p_holm=t.p_adjusted, verdict=t.verdict,
                            detectable=t.detectable if t.verdict == stats.NOT_RESOLVED else math.nan,
                            paper_target=_wi(paper), paper_delta=pdelta,
                            reproduction=stats.reproduction(pdelta, c, t.p_adjusted, data.alpha)
                            if np.isfinite(pdelta) else ""))
    return pd.DataFrame(out, columns=TRANSFER_TEST_COLUMNS)


def transfer_tests_table(data: StudyData, tests: pd.DataFrame, summary: pd.DataFrame) -> Table | None:
    if tests.empty:
        return None
    d = _decimals(summary[f"{data.transfer_metric} mean"])
    base = next(((v, m) for v, m in _transfer_rows(data, summary) if v == data.baseline), None)
    has_paper = data.transfer_paper is not None
    rows = []
    for _, r in tests.iterrows():
        c = stats.Comparison(r["test"], r["delta"], r["ci_low"], r["ci_high"], r["p"], math.nan, math.nan, r["n"],
                             0, 0)
        v = r["verdict"]
        if v == stats.NOT_RESOLVED:
            v = (f"not resolved (|Δ| < {_f(r['detectable'], d)}, or more seeds)" if np.isfinite(r["detectable"])
                 else no_test(r["test"]))
        ratio = f"{_ratio_label(Fraction(r['ratio']).limit_denominator(64))} " if np.isfinite(r["ratio"]) else ""
        label = f"{short_label(r['variant'])} / {r['method']}"
        if base is not None and (r["versus"], r["versus_method"]) != base:
            label += f" vs {short_label(r['versus'])} / {r['versus_method']}"
        row = [f"{ratio}W{r['window_size']},I{r['img_size']}", "with FT" if r["finetuned"] else "without FT", label,
               _interval(c, d) if np.isfinite(r["delta"]) else DASH,
               format_p(r["p"]) + (" (Welch)" if r["test"] == "welch" else ""), format_p(r["p_holm"]), v]
        if has_paper:
            row += [f"{_f(r['paper_delta'], 1, sign=True)} ({r['paper_target']})" if np.isfinite(r["paper_delta"])
                    else "", r["reproduction"]]
        rows.append(row)
    columns = ["target", "", "row", f"Δ {data.transfer_label} [95% CI]", "p", "p (Holm)", "verdict"]
    if has_paper:
        columns += ["paper Δ", "reproduction"]
    base_name = f"{short_label(base[0])} / {base[1]}" if base else "the first row"
    contrasts = " unless it names its reference (the spec's transfer.contrasts)" if (
        base is not None and any((v, m) != base for v, m in zip(tests["versus"], tests["versus_method"]))) else ""
    caption = (f"Between methods at each target, study {data.name}: each row vs {base_name}{contrasts}, test "
               f"{data.transfer_label}, "
               f"paired by the trained seed (Δ: mean per-seed difference, 95% t-interval, two-sided paired "
               f"t-test). {design_sentence()} Family: every comparison at one target (without and with "
               f"fine-tuning), Holm-adjusted, α = {data.alpha:g}; not resolved with the 80%-power detectable |Δ|."
               + (" paper Δ: the paper's difference between the same rows at its target of the same ratio; "
                  "reproduction as in the comparison tables." if has_paper else ""))
    return Table("Between methods at each target", caption, columns, rows, f"tab:{data.name}:transfer-tests",
                 cell_width=14)


# -- reproduction summary ----------------------------------------------------------------------------------


def reproduction_verdicts(comparisons: list[MetricComparison], tests: pd.DataFrame) -> list[str]:
    out = [v for mc in comparisons for v in mc.reproduction.values()]
    if not tests.empty:
        out += [v for v in tests["reproduction"] if v]
    return out


# -- rendering ---------------------------------------------------------------------------------------------


def markdown(table: Table) -> str:
    """A pipe table; bold cells in ``**``; group headings (if any) folded into the column names."""
    columns = list(table.columns)
    if table.groups:
        names, i = [], 0
        for title, span in table.groups:
            for _ in range(span):
                names.append(f"{title} {columns[i]}".strip() if title else columns[i])
                i += 1
        columns = names + columns[i:]
    def cell(r: int, c: int, s: str) -> str:
        s = s.replace("|", "\\|")  # a pipe inside a cell would end it
        return f"**{s}**" if (r, c) in table.bold and s not in (DASH, "missing", "") else s

    frame = pd.DataFrame([[cell(r, c, s) for c, s in enumerate(row)] for r, row in enumerate(table.rows)],
                         columns=_unique([c.replace("|", "\\|") for c in columns]))
    return frame.to_markdown(index=False, disable_numparse=True)


def _unique(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for n in names:
        seen[n] = seen.get(n, 0) + 1
        out.append(n if seen[n] == 1 else f"{n} ({seen[n]})")
    return out


_LATEX = {
    "\\": "\\textbackslash{}", "&": "\\&", "%": "\\%", "$": "\\$", "#": "\\#", "_": "\\_", "{": "\\{", "}": "\\}",
    "~": "\\textasciitilde{}", "^": "\\textasciicircum{}", "<": "$<$", ">": "$>$", "|": "$|$",
    "±": "$\\pm$", "×": "$\\times$", "−": "$-$", "–": "--", "—": "---", "…": "\\ldots{}", "·": "$\\cdot$",
    "≈": "$\\approx$", "≤": "$\\le$", "≥": "$\\ge$", "≠": "$\\ne$", "→": "$\\to$", "←": "$\\leftarrow$",
    "°": "$^\\circ$", "²": "$^2$", "³": "$^3$", "µ": "$\\mu$", "\u00a0": "~", "“": "``", "”": "''", "‘": "`",
    "’": "'", "ß": "\\ss{}", "æ": "\\ae{}", "Æ": "\\AE{}", "ø": "\\o{}", "Ø": "\\O{}", "ł": "\\l{}", "Ł": "\\L{}",
    "œ": "\\oe{}", "Œ": "\\OE{}", "†": "\\dag{}", "‡": "\\ddag{}", "§": "\\S{}", "¶": "\\P{}", "©": "\\copyright{}",
    "√": "$\\surd$", "∞": "$\\infty$",
    **{g: f"$\\{n}$" for g, n in zip("αβγδεζηθικλμνξπρστυφχψωΓΔΘΛΞΠΣΦΨΩ",
                                    ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota",
                                     "kappa", "lambda", "mu", "nu", "xi", "pi", "rho", "sigma", "tau", "upsilon",
                                     "phi", "chi", "psi", "omega", "Gamma", "Delta", "Theta", "Lambda", "Xi", "Pi",
                                     "Sigma", "Phi", "Psi", "Omega"])},
}
_ACCENTS = {"\u0301": "'", "\u0300": "`", "\u0302": "^", "\u0308": '"', "\u0303": "~", "\u0304": "=", "\u0307": ".",
            "\u0327": "c", "\u030c": "v", "\u0306": "u", "\u030a": "r", "\u030b": "H", "\u0328": "k"}


def latex_escape(text: str) -> str:
    """Plain text -> ASCII LaTeX for pdflatex: special characters escaped, symbols as math, accented letters
    as accent commands; any other non-ASCII character becomes a visible ``[U+XXXX]``."""
    import re
    import unicodedata

    out = []
    for ch in str(text):
        if ch in _LATEX:
            out.append(_LATEX[ch])
        elif ord(ch) < 128:
            out.append(ch)
        else:
            parts = unicodedata.normalize("NFD", ch)
            base, marks = parts[0], parts[1:]
            if ord(base) < 128 and marks and all(m in _ACCENTS for m in marks):
                piece = base if base not in "ij" else f"\\{base}"
                for m in marks:
                    piece = f"\\{_ACCENTS[m]}{{{piece}}}"
                out.append(piece)
            else:
                out.append(f"[U+{ord(ch):04X}]")
    joined = "".join(out)
    joined = re.sub(r"(?<![\w\\])-(?=[\d.])", "$-$", joined)  # a minus sign, not a hyphen
    return re.sub(r"(?<!\\)\$\$", "", joined)  # adjacent math joined: $|$$\Delta$ -> $|\Delta$


GLUE = {"±", "<", ">", "≤", "≥", "−", "=", "≈"}  # never a line break beside these
LEFT = {"/", "×"}  # nor before these


def wrap(text: str, width: int = 18) -> list[str]:
    """Lines of about ``width`` characters for a LaTeX cell: broken at spaces outside brackets (a bracketed
    interval or remark stays on one line when it fits, else breaks after its commas), never beside ``±``,
    ``<``, ``×`` and the like."""
    tokens, depth, current = [], 0, ""
    for ch in str(text):
        depth += ch in "[(" and 1 or 0
        depth -= ch in "])" and 1 or 0
        if ch == " " and depth == 0:
            tokens.append(current)
            current = ""
        else:
            current += ch
    tokens.append(current)
    glued: list[str] = []
    for tok in tokens:
        if glued and (tok in GLUE | LEFT or glued[-1].split(" ")[-1] in GLUE):
            glued[-1] += " " + tok
        else:
            glued.append(tok)
    pieces = []
    for tok in glued:  # a bracketed piece longer than a line breaks after its commas
        pieces += tok.replace(", ", ",\0").split("\0") if len(tok) > width and tok[:1] in "[(" else [tok]
    lines = [pieces[0]]
    for piece in pieces[1:]:
        if len(lines[-1]) + 1 + len(piece) > width:
            lines.append(piece)
        else:
            lines[-1] += " " + piece
    return lines


def _latex_cell(text: str, align: str, width: int) -> str:
    lines = [latex_escape(line) for line in wrap(text, width)]
    if len(lines) == 1:
        return lines[0]
    # "\\ \relax": a line starting with "[" must not read as the optional argument of "\\"
    return f"\\begin{{tabular}}[t]{{@{{}}{align}@{{}}}}" + " \\\\ \\relax ".join(lines) + "\\end{tabular}"


def latex(table: Table) -> str:
    """A booktabs ``table`` float in footnotesize; long cells stacked on lines of about ``cell_width`` characters;
    the whole scaled down to the line width only when still wider (graphicx ``\\resizebox``)."""
    import re

    def numeric(c: int) -> bool:
        cells = [row[c] for row in table.rows if row[c] and row[c] not in (DASH, "baseline")]
        return bool(cells) and all(re.match(r"[-+<\d]", x) for x in cells)

    align = ["r" if c > 0 and numeric(c) else "l" for c in range(len(table.columns))]

    def cell(r: int, c: int, s: str) -> str:
        text = _latex_cell(s, align[c], table.cell_width)
        return f"\\textbf{{{text}}}" if (r, c) in table.bold and s.strip() else text

    lines = ["\\begin{table}[htbp]", "\\centering", "\\footnotesize", "\\setlength{\\tabcolsep}{4pt}",
             f"\\caption{{{latex_escape(table.caption)}}}", f"\\label{{{_label(table.label)}}}",
             "\\resizebox{\\ifdim\\width>\\linewidth\\linewidth\\else\\width\\fi}{!}{%",
             f"\\begin{{tabular}}{{{''.join(align)}}}", "\\toprule"]
    if table.groups and any(title for title, _ in table.groups):
        heads, rules, col = [], [], 1
        for title, span in table.groups:
            heads.append(f"\\multicolumn{{{span}}}{{c}}{{{latex_escape(title)}}}" if span > 1 else latex_escape(title))
            if title:
                rules.append(f"\\cmidrule(lr){{{col}-{col + span - 1}}}")
            col += span
        lines += [" & ".join(heads) + " \\\\", " ".join(rules)]
    lines.append(" & ".join(_latex_cell(c, align[i], 12) for i, c in enumerate(table.columns)) + " \\\\")
    lines.append("\\midrule")
    for r, row in enumerate(table.rows):
        lines.append(" & ".join(cell(r, c, s) for c, s in enumerate(row)) + " \\\\")
        if r in table.rules and r < len(table.rows) - 1:
            lines.append("\\midrule")
    lines += ["\\bottomrule", "\\end{tabular}}", "\\end{table}", ""]
    return "\n".join(lines)


def _label(label: str) -> str:
    return "".join(ch if ch.isascii() and (ch.isalnum() or ch in ":-.") else "-" for ch in label)


LATEX_PREAMBLE = ("% Tables of a swin-lit report. Needs \\usepackage{booktabs} and \\usepackage{graphicx};\n"
                  "% every table is scaled to the line width only when it is wider. The text is plain ASCII.\n\n")
