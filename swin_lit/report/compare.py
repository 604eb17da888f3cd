"""Computation: every variant vs the baseline on each metric (paired by seed, Holm within the metric), as numbers
(``cells.csv``); no formatting here."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from swin_lit import stats
from swin_lit.report import captions
from swin_lit.report.data import StudyData
from swin_lit.report.fmt import EQUIVALENT, clip_difference, higher_is_better, num, short_metric, shorten, std

COST_COLUMNS = ("params", "flops", "train_images_per_s", "eval_images_per_s")
MIN_CLASSES_FOR_TOP5 = 10


# -- which metrics inform ----------------------------------------------------------------------------------


def shown_metrics(data: StudyData) -> tuple[list[str], dict[str, str]]:
    """(metrics shown in tables and figures, {hidden metric: why}). Top-5 accuracy is shown only with at least
    10 classes: with fewer it sits near its ceiling and cannot tell variants apart. The class count is read from
    the trained cells' configs (``model.num_classes``), else the spec's budget; unknown: shown."""
    shown, hidden = [], {}
    for metric in data.metrics:
        if short_metric(metric) == "top5" and data.num_classes is not None and data.num_classes < MIN_CLASSES_FOR_TOP5:
            hidden[metric] = captions.TOP5_HIDDEN.fill(
                classes=data.num_classes, least=MIN_CLASSES_FOR_TOP5,
                chance=num(100 * min(5, data.num_classes) / data.num_classes, 1))
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
    """Every variant vs the baseline on one metric (the Holm family), and the best-row test.

    Beside the t-test of each comparison: the Bonferroni interval over the family (``simultaneous``, which
    matches Holm's verdicts: one that excludes 0 is Holm-resolved), both intervals clipped to what the metric
    allows (``clipped``, ``clipped_simultaneous``), the exact sign-flip test (``sign_flip``), whether the per-seed
    differences are bimodal (``modes``: seeds below / above the largest gap, None when not bimodal), the TOST p
    against the spec's smallest effect of interest (``equivalence_p``, NaN without a margin) and the final
    verdict (``verdicts``: better / worse / equivalent / not resolved)."""

    metric: str
    higher: bool
    values: dict[str, dict[int, float]]
    comparisons: dict[str, stats.Comparison]  # non-baseline variants
    tests: dict[str, stats.Test]
    paper_delta: dict[str, float]
    best: str | None
    best_resolved: bool
    ties: set[str]
    simultaneous: dict[str, tuple[float, float]] = field(default_factory=dict)
    clipped: dict[str, tuple[float, float]] = field(default_factory=dict)
    clipped_simultaneous: dict[str, tuple[float, float]] = field(default_factory=dict)
    sign_flip: dict[str, stats.SignFlip] = field(default_factory=dict)
    modes: dict[str, tuple[int, int] | None] = field(default_factory=dict)
    equivalence_p: dict[str, float] = field(default_factory=dict)
    verdicts: dict[str, str] = field(default_factory=dict)
    margin: float | None = None

    @property
    def m(self) -> int:
        return next(iter(self.tests.values())).m if self.tests else 0

    @property
    def welch(self) -> list[str]:
        return [v for v, c in self.comparisons.items() if c.test == "welch"]

    def mode_means(self, variant: str, baseline: str) -> tuple[float, float] | None:
        """The mean difference of the seeds below and above the largest gap, where the differences are bimodal."""
        modes = self.modes.get(variant)
        if not modes:
            return None
        d = sorted(self.differences(variant, baseline))
        return float(np.mean(d[: modes[0]])), float(np.mean(d[modes[0]:]))

    def differences(self, variant: str, baseline: str) -> list[float]:
        """The per-seed differences variant − baseline over the seeds both finished."""
        a, b = self.values.get(variant, {}), self.values.get(baseline, {})
        return [a[s] - b[s] for s in sorted(set(a) & set(b))]


def margin_of(data: StudyData, metric: str) -> float | None:
    """The spec's smallest effect of interest for the objective (``margin:``, in the objective's units), else
    None: no equivalence verdict without one."""
    value = data.spec.margin
    if metric != data.objective or not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
        return None
    return float(value)


def compare_metric(data: StudyData, metric: str) -> MetricComparison:
    values = values_by_variant(data, metric)
    higher = higher_is_better(metric)
    base = values.get(data.baseline, {})
    base_mean = float(np.mean(list(base.values()))) if base else math.nan
    others = [v for v in data.variants if v != data.baseline]
    comparisons = {v: stats.compare(values.get(v, {}), base, first_stage=data.first_stage) for v in others}
    tests = dict(zip(others, stats.adjust_family(list(comparisons.values()), data.alpha, higher)))
    margin = margin_of(data, metric)
    deltas = {v: paper_delta(data, metric, v) for v in others}
    best, resolved, ties = stats.best_row({v: values[v] for v in data.variants if v in values}, higher, data.alpha)
    mc = MetricComparison(metric, higher, values, comparisons, tests, deltas, best, resolved, ties, margin=margin)
    m = max(mc.m, 1)
    for v, c in comparisons.items():
        mc.simultaneous[v] = stats.simultaneous_interval(c, m, c.level)
        mc.clipped[v] = clip_difference(c.low, c.high, metric, base_mean)
        mc.clipped_simultaneous[v] = clip_difference(*mc.simultaneous[v], metric, base_mean)
        diffs = mc.differences(v, data.baseline) if c.test == "paired" else []
        mc.sign_flip[v] = stats.sign_flip_test(diffs)
        mc.modes[v] = stats.bimodal_groups(diffs)
        mc.equivalence_p[v] = stats.equivalence(c, margin) if margin else math.nan
        verdict = tests[v].verdict
        if verdict == stats.NOT_RESOLVED and margin and mc.equivalence_p[v] <= data.alpha:
            verdict = EQUIVALENT
        mc.verdicts[v] = verdict
    return mc


def summarise(data: StudyData, comparisons: dict[str, MetricComparison] | None = None,
              checks: dict[tuple[str, str], str] | None = None) -> pd.DataFrame:
    """The numeric per-variant table (``cells.csv``): one row per variant, baseline first, none dropped.

    Columns: ``n``, ``planned``, ``failed``, ``note``; per metric ``<m> mean/std/n``, and vs the baseline
    ``<m> test`` (paired / welch / none), ``n_pairs``, ``delta`` (mean per-seed difference, or the difference
    of means for Welch), ``ci_low``/``ci_high`` (95%, unadjusted), ``sim_low``/``sim_high`` (Bonferroni over the
    family, matching Holm), ``p``, ``p_holm`` (family: the metric's comparisons vs the baseline), ``sign_flip_p``
    and ``sign_flip_min_p`` (exact paired sign-flip test and its smallest attainable p), ``bimodal`` ("k/j": seeds
    below / above the largest gap, empty when not bimodal), ``tost_p`` (equivalence, NaN without the spec's
    margin), ``verdict`` (better / worse / equivalent / not resolved), ``detectable`` (80%-power |Δ| at alpha/m),
    ``paper``, ``paper_delta``, ``reproduction`` (``checks``: the paper check's verdict), ``best`` (resolved
    best), ``tie`` (tied with the best); per cost ``<c> mean``. Intervals here are not clipped.
    """
    runs, cells = data.runs, data.cells
    planned = pd.Series([v for v, _ in data.planned], dtype=object).value_counts()
    comparisons = dict(comparisons or {})
    comparisons.update({m: compare_metric(data, m) for m in data.metrics if m not in comparisons})
    checks = checks or {}
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
            row[f"{metric} std"] = std(vals)
            row[f"{metric} n"] = len(vals)
            c, t = mc.comparisons.get(variant), mc.tests.get(variant)
            row[f"{metric} test"] = c.test if c else ""
            row[f"{metric} n_pairs"] = c.n if c and c.test == "paired" else math.nan
            sim = mc.simultaneous.get(variant, (math.nan, math.nan))
            flip = mc.sign_flip.get(variant)
            for name, value in (("delta", c.estimate if c else math.nan), ("ci_low", c.low if c else math.nan),
                                ("ci_high", c.high if c else math.nan), ("sim_low", sim[0]), ("sim_high", sim[1]),
                                ("p", c.p if c else math.nan), ("p_holm", t.p_adjusted if t else math.nan),
                                ("sign_flip_p", flip.p if flip else math.nan),
                                ("sign_flip_min_p", flip.min_p if flip else math.nan),
                                ("tost_p", mc.equivalence_p.get(variant, math.nan)),
                                ("detectable", t.detectable if t and t.verdict == stats.NOT_RESOLVED else math.nan)):
                row[f"{metric} {name}"] = value
            modes = mc.modes.get(variant)
            row[f"{metric} bimodal"] = f"{modes[0]}/{modes[1]}" if modes else ""
            row[f"{metric} verdict"] = mc.verdicts.get(variant, "baseline")
            key = paper_key(data, metric)
            row[f"{metric} paper"] = (data.paper.rows.get(variant) or {}).get(key, math.nan) if key else math.nan
            row[f"{metric} paper_delta"] = mc.paper_delta.get(variant, math.nan)
            row[f"{metric} reproduction"] = checks.get((metric, variant), "")
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
                text += ": " + "; ".join(shorten(r) for r in reasons[:2])
        parts.append(text)
    return "; ".join(parts)

