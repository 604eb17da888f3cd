"""Factorial studies: cell means, main effects and interactions (full-difference scale), simple effects of resolved
interactions; the numbers (``effects.csv``) and their tables."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd

from swin_lit import stats
from swin_lit.contrasts import Term, estimate_term, factorial_terms, simple_effect_terms
from swin_lit.domain.spec import value_key
from swin_lit.report import captions
from swin_lit.report.compare import values_by_variant
from swin_lit.report.data import StudyData
from swin_lit.report.fmt import (
    DASH,
    decimals,
    factor_label,
    format_p,
    higher_is_better,
    interval_text,
    num,
    pm,
    range_width,
    short_label,
    span,
    std,
    verdict_text,
)
from swin_lit.report.render import Table

# -- factorial cell means and effects ----------------------------------------------------------------------


def reference_levels(data: StudyData) -> dict[str, object]:
    """Each factor's reference level: the baseline's level, else the first level listed."""
    base = data.variant_overrides.get(data.baseline, {}) if data.baseline else {}
    out = {}
    for k, levels in data.factors.items():
        out[k] = base[k] if k in base and value_key(base[k]) in {value_key(v) for v in levels} else levels[0]
    return out


def cell_values(data: StudyData, metric: str) -> dict[tuple, dict[int, float]]:
    """factorial cell (one _key per factor) -> {seed: value} of one metric."""
    keys = list(data.factors)
    out: dict[tuple, dict[int, float]] = {}
    for variant, values in values_by_variant(data, metric).items():
        ov = data.variant_overrides.get(variant, {})
        out[tuple(value_key(ov.get(k)) for k in keys)] = values
    return out


def keyed_levels(data: StudyData) -> tuple[dict[str, list[str]], dict[str, str], dict[str, dict[str, object]]]:
    """Factor levels and references as _key strings (comparable), and _key -> the level as written."""
    levels = {k: [value_key(v) for v in vs] for k, vs in data.factors.items()}
    refs = {k: value_key(v) for k, v in reference_levels(data).items()}
    shown = {k: {value_key(v): v for v in vs} for k, vs in data.factors.items()}
    return levels, refs, shown


EFFECT_COLUMNS = ["metric", "effect", "term", "contrast", "at", "estimate", "ci_low", "ci_high", "sim_low",
                  "sim_high", "p", "p_holm",
                  "verdict", "detectable", "n_seeds"]


def _unkey(text: str, shown: dict[str, dict[str, object]]) -> str:
    """A term's contrast/at text with _key strings replaced by the levels as written."""
    for levels in shown.values():
        for k, v in levels.items():
            text = text.replace(k, str(v))
    return text


def factorial_effects(data: StudyData) -> pd.DataFrame:
    """Main effects and two-way interactions (full-difference scale, ``swin_lit.contrasts.factorial_terms``) of
    every metric, Holm-adjusted as one family per metric; simple effects of both factors of every resolved
    interaction, Holm-adjusted as a second family per metric. Each term is computed per seed (seeds finished in
    every cell involved) and summarised by its mean with a 95% t-interval and the t-test of 0."""
    if not data.factors or data.runs.empty:
        return pd.DataFrame(columns=EFFECT_COLUMNS)
    levels, refs, shown = keyed_levels(data)
    terms = factorial_terms(levels, refs)
    rows = []
    for metric in data.metrics:
        cells = cell_values(data, metric)
        higher = higher_is_better(metric)
        estimates = [estimate_term(t, cells, first_stage=data.first_stage) for t in terms]
        main = [i for i, t in enumerate(terms) if t.kind == "main"]
        tests = stats.adjust_family(estimates, data.alpha, None)
        directed = stats.adjust_family(estimates, data.alpha, higher)  # same Holm p; main effects get a direction
        simple_terms = []
        for i, (t, test) in enumerate(zip(terms, tests)):
            rows.append(_effect_row(metric, t, estimates[i], directed[i] if i in main else test, shown, test.m))
            if t.kind == "interaction" and test.verdict == "resolved":
                simple_terms += simple_effect_terms(levels, refs, *t.factors)
        unique = list({(t.factors, t.contrast, t.at): t for t in simple_terms}.values())
        simple = [estimate_term(t, cells, first_stage=data.first_stage) for t in unique]
        for t, c, test in zip(unique, simple, stats.adjust_family(simple, data.alpha, higher)):
            rows.append(_effect_row(metric, t, c, test, shown, test.m))
    return pd.DataFrame(rows, columns=EFFECT_COLUMNS)


def _effect_row(metric: str, term: Term, c: stats.Comparison, test: stats.Test, shown, m: int) -> dict:
    """One effect's numbers; ``sim_low``/``sim_high``: the Bonferroni interval over its Holm family of ``m``."""
    term_name = " × ".join(term.factors)
    sim = stats.simultaneous_interval(c, max(m, 1), c.level)
    return dict(metric=metric, effect=term.kind, term=term_name, contrast=_unkey(term.contrast, shown),
                at=_unkey(term.at, shown), estimate=c.estimate, ci_low=c.low, ci_high=c.high, sim_low=sim[0],
                sim_high=sim[1], p=c.p,
                p_holm=test.p_adjusted, verdict=test.verdict,
                detectable=test.detectable if test.verdict == stats.NOT_RESOLVED else math.nan, n_seeds=c.n)


EFFECTS_CONVENTION = captions.EFFECTS_CONVENTION.fill()
EFFECTS_METHOD = captions.EFFECTS_METHOD.fill()


def effects_caption(data: StudyData, metric: str, m: int) -> str:
    return captions.EFFECTS_CAPTION.fill(
        metric=metric, direction="higher" if higher_is_better(metric) else "lower", study=data.name,
        convention=EFFECTS_CONVENTION, method=EFFECTS_METHOD, m=m, alpha=captions.setting(data.alpha))


def _effect_cells(r: pd.Series, d: int) -> list[str]:
    """Estimate [95% CI], p, Holm p, verdict, n. Not resolved: what the design had 80% power for; the range an
    interaction (a difference of differences) can take is twice the metric's."""
    c = stats.Comparison("paired", r["estimate"], r["ci_low"], r["ci_high"], r["p"], math.nan, math.nan,
                         int(r["n_seeds"]), 0, 0)
    detectable = r["detectable"] if np.isfinite(r["detectable"]) else math.nan  # none: no test
    v = verdict_text(r["verdict"], detectable, r["metric"], test="none" if r["n_seeds"] < 2 else "paired",
                     range_scale=2 if r["effect"] == "interaction" else 1, quantity="effect")
    width = range_width(r["metric"])
    bound = (2 * width if r["effect"] == "interaction" else width) if width is not None else math.inf
    unadjusted = (max(r["ci_low"], -bound), min(r["ci_high"], bound))
    simultaneous = (max(r["sim_low"], -bound), min(r["sim_high"], bound))
    return [interval_text(c, d, unadjusted) if np.isfinite(r["estimate"]) else DASH, span(*simultaneous, d) or DASH,
            format_p(r["p"]), format_p(r["p_holm"]), v, str(int(r["n_seeds"]))]


def effects_table(data: StudyData, effects: pd.DataFrame, metric: str) -> Table | None:
    rows_df = effects[(effects["metric"] == metric) & (effects["effect"] != "simple")]
    if rows_df.empty:
        return None
    d = decimals(rows_df["estimate"])
    rows = []
    for _, r in rows_df.iterrows():
        term = " × ".join(factor_label(k) for k in r["term"].split(" × "))
        rows.append([r["effect"], term, r["contrast"], *_effect_cells(r, d)])
    t = Table(captions.EFFECTS_TITLE.fill(metric=metric), effects_caption(data, metric, len(rows_df)),
              ["effect", "factor(s)", "contrast", captions.EFFECT_ESTIMATE.fill(), "simultaneous 95% CI", "p",
               "p (Holm)", "verdict", "n"], rows,
              f"tab:{data.name}:effects:{metric}",
              brief=captions.EFFECTS_BRIEF.fill(metric=metric, m=len(rows_df), alpha=captions.setting(data.alpha)))
    t.notes = interaction_sentences(effects, metric, d)
    return t


def simple_effects_table(data: StudyData, effects: pd.DataFrame, metric: str) -> Table | None:
    rows_df = effects[(effects["metric"] == metric) & (effects["effect"] == "simple")]
    if rows_df.empty:
        return None
    d = decimals(rows_df["estimate"])
    rows = [[factor_label(r["term"]), r["contrast"], short_label(r["at"]), *_effect_cells(r, d)]
            for _, r in rows_df.iterrows()]
    alpha = captions.setting(data.alpha)
    caption = captions.SIMPLE_CAPTION.fill(metric=metric, study=data.name, m=len(rows_df), alpha=alpha)
    return Table(captions.SIMPLE_TITLE.fill(metric=metric), caption,
                 ["factor", "contrast", "at", captions.EFFECT_ESTIMATE.fill(), "simultaneous 95% CI", "p", "p (Holm)",
                  "verdict", "n"], rows,
                 f"tab:{data.name}:simple:{metric}",
                 brief=captions.SIMPLE_BRIEF.fill(metric=metric, m=len(rows_df), alpha=alpha))


def _bracket(low, high, d: int) -> str:
    """"[-1.20, +3.40]", a dash for a missing end."""
    return f"[{num(low, d, sign=True)}, {num(high, d, sign=True)}]"


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
            at = "; ".join(captions.SIMPLE_AT.fill(
                estimate=num(s["estimate"], d, sign=True), interval=_bracket(s["ci_low"], s["ci_high"], d),
                factor=factor_label(s["at"].split("=")[0]), level=s["at"].split("=", 1)[1], verdict=s["verdict"])
                for _, s in simple.iterrows())
            main = mine[(mine["effect"] == "main") & (mine["term"] == factor)]
            main_text = captions.MAIN_EFFECT.fill(estimate=num(main["estimate"].iloc[0], d, sign=True)) if len(
                main) else ""
            parts.append(captions.EFFECT_OF.fill(factor=factor_label(factor), at=at, main=main_text,
                                                 contrast=simple["contrast"].iloc[0] if len(simple) else ""))
            signs = {np.sign(s["estimate"]) for _, s in simple.iterrows() if s["verdict"] != stats.NOT_RESOLVED}
            if len(signs) > 1:
                parts[-1] += captions.CROSSING.fill(factor=factor_label(other))
        out.append(captions.INTERACTION.fill(
            a=factor_label(a), b=factor_label(b), metric=metric, estimate=num(r["estimate"], d, sign=True),
            interval=_bracket(r["ci_low"], r["ci_high"], d), p=format_p(r["p_holm"]), parts="; ".join(parts)))
    return out


def cell_means_table(data: StudyData, metric: str) -> Table | None:
    """Cell means of a factorial: for two factors the levels(A) x levels(B) table with margins (unweighted
    means of the cell means); otherwise one row per cell."""
    factors = data.factors
    if not factors:
        return None
    cells = cell_values(data, metric)
    if not cells:
        return None
    levels, _, shown = keyed_levels(data)
    all_values = [v for vals in cells.values() for v in vals.values()]
    d = decimals(all_values, [std(list(v.values())) for v in cells.values()])

    def text(cell) -> str:
        vals = list(cells.get(cell, {}).values())
        return f"{pm(np.mean(vals), std(vals), d)} (n={len(vals)})" if vals else "missing"

    def mean_of(cs) -> float:
        means = [np.mean(list(cells[c].values())) for c in cs if cells.get(c)]
        return float(np.mean(means)) if len(means) == len(cs) else math.nan

    keys = list(factors)
    caption = captions.CELL_MEANS_CAPTION.fill(metric=metric, study=data.name)
    if len(keys) == 2:
        a, b = keys
        rows = []
        for la in levels[a]:
            row_cells = [(la, lb) for lb in levels[b]]
            rows.append([f"{factor_label(a)}={shown[a][la]}", *[text(c) for c in row_cells],
                         num(mean_of(row_cells), d)])
        col_margin = [num(mean_of([(la, lb) for la in levels[a]]), d) for lb in levels[b]]
        grand = num(mean_of([(la, lb) for la in levels[a] for lb in levels[b]]), d)
        rows.append([captions.MEAN_OVER.fill(factor=factor_label(a)), *col_margin, grand])
        columns = [f"{factor_label(a)} \\ {factor_label(b)}",
                   *[f"{factor_label(b)}={shown[b][lb]}" for lb in levels[b]],
                   captions.MEAN_OVER.fill(factor=factor_label(b))]
        caption += captions.CELL_MEANS_MARGINS.fill()
        return Table(captions.CELL_MEANS_TITLE.fill(metric=metric), caption, columns, rows,
                     f"tab:{data.name}:cells:{metric}")
    rows = [[*(str(shown[k][c[i]]) for i, k in enumerate(keys)), text(c)]
            for c in itertools.product(*levels.values())]
    return Table(captions.CELL_MEANS_TITLE.fill(metric=metric), caption + ".",
                 [*(factor_label(k) for k in keys), metric], rows,
                 f"tab:{data.name}:cells:{metric}")

