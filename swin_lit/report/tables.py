"""The tables of a report: the per-variant comparison, factorial effects and the Swin V2 Table 1 transfer layout.

Every table is computed as a numeric frame first (written to CSV) and formatted afterwards, so sorting
and bolding happen on numbers. Statistics:
  - ``mean ± std``: mean and sample standard deviation (ddof=1) over the finished seeds of a variant;
  - delta vs the baseline: difference of means; p-value of Welch's two-sided t-test
    (``scipy.stats.ttest_ind(equal_var=False)``); a paired t-test over the seeds both variants finished
    is kept in the numeric table (``p_paired``) only;
  - factorial effects: computed per seed (seeds as blocks), then mean with a 95% t-interval over seeds.
"""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pandas as pd

from swin_lit.report.data import StudyData, _key

DASH = "—"
COST_COLUMNS = ("params", "flops", "train_images_per_s", "eval_images_per_s")
LOWER_IS_BETTER = ("loss", "ece", "error", "err", "nll", "params", "flops", "time")


# -- helpers -----------------------------------------------------------------------------------------------


def higher_is_better(metric: str) -> bool:
    """Direction of a metric: lower is better for loss/ECE/error/cost, higher for accuracy and throughput."""
    last = metric.rsplit(".", 1)[-1].lower()
    if "per_s" in last:
        return True
    return not any(word in last for word in LOWER_IS_BETTER)


def short_metric(metric: str) -> str:
    return metric.rsplit(".", 1)[-1]


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


def _welch(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < 2 or len(b) < 2:
        return math.nan
    from scipy import stats

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        return float(stats.ttest_ind(a, b, equal_var=False).pvalue)


def _paired(a: pd.Series, b: pd.Series) -> float:
    shared = a.index.intersection(b.index)
    if len(shared) < 2:
        return math.nan
    from scipy import stats

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        return float(stats.ttest_rel(a[shared], b[shared]).pvalue)


def t_interval(values, level: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high) of a t-interval over the values (low/high NaN for fewer than 2 values)."""
    values = np.asarray(values, dtype=float)
    if len(values) == 0:
        return math.nan, math.nan, math.nan
    mean = float(values.mean())
    if len(values) < 2:
        return mean, math.nan, math.nan
    from scipy import stats

    half = stats.t.ppf(0.5 + level / 2, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values))
    return mean, mean - half, mean + half


def paper_keys(data: StudyData) -> dict[str, str]:
    """metric -> key of the spec's ``paper`` numbers that matches it (``test.top1`` <- ``top1``)."""
    paper = data.spec.get("paper") or {}
    keys = {k for numbers in paper.values() if isinstance(numbers, dict) for k in numbers}
    out = {}
    for metric in data.metrics:
        for key in (metric, short_metric(metric)):
            if key in keys:
                out[metric] = key
                break
    return out


# -- the comparison table ----------------------------------------------------------------------------------


def summarise(data: StudyData) -> pd.DataFrame:
    """The numeric per-variant table (``cells.csv``): one row per variant, baseline first, none dropped.

    Columns: ``n``, ``planned``, ``failed``, ``note``; per metric ``<m> mean/std/n/delta/p_welch/p_paired``;
    per cost ``<c> mean``; ``paper <key>`` where the spec gives the paper's numbers.
    """
    runs, cells = data.runs, data.cells
    planned = pd.Series([v for v, _ in data.planned], dtype=object).value_counts()
    base = runs[runs["variant"] == data.baseline] if len(runs) else runs
    rows = []
    for variant in data.variants:
        mine = runs[runs["variant"] == variant] if len(runs) else runs
        status = cells[cells["variant"] == variant]
        n = len(mine)
        n_planned = int(planned.get(variant, 0)) or len(status)
        row = {"variant": variant, "baseline": variant == data.baseline, "n": n, "planned": n_planned}
        failed = status[status["status"] == "failed"]
        row["failed"] = len(failed)
        row["note"] = _note(n, n_planned, status)
        for metric in data.metrics:
            values = pd.to_numeric(mine[metric], errors="coerce").dropna() if metric in mine else pd.Series([])
            ref = pd.to_numeric(base[metric], errors="coerce").dropna() if metric in base else pd.Series([])
            mean = float(values.mean()) if len(values) else math.nan
            ref_mean = float(ref.mean()) if len(ref) else math.nan
            row[f"{metric} mean"] = mean
            row[f"{metric} std"] = float(values.std(ddof=1)) if len(values) > 1 else math.nan
            row[f"{metric} n"] = len(values)
            if variant == data.baseline:
                row[f"{metric} delta"] = row[f"{metric} p_welch"] = row[f"{metric} p_paired"] = math.nan
            else:
                row[f"{metric} delta"] = mean - ref_mean
                row[f"{metric} p_welch"] = _welch(values.to_numpy(float), ref.to_numpy(float))
                by_seed = pd.Series(values.to_numpy(float), index=mine.loc[values.index, "seed"].to_numpy())
                ref_by_seed = pd.Series(ref.to_numpy(float), index=base.loc[ref.index, "seed"].to_numpy())
                row[f"{metric} p_paired"] = _paired(by_seed, ref_by_seed)
        for cost in COST_COLUMNS:
            values = pd.to_numeric(mine[cost], errors="coerce").dropna() if cost in mine else pd.Series([])
            row[f"{cost} mean"] = float(values.mean()) if len(values) else math.nan
        paper = (data.spec.get("paper") or {}).get(variant) or {}
        for key in dict.fromkeys(paper_keys(data).values()):
            row[f"paper {key}"] = float(paper[key]) if paper.get(key) is not None else math.nan
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


def _shorten(text: str, limit: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def best_variants(table: pd.DataFrame, metric: str) -> set[str]:
    """Variants holding the best mean of ``metric`` (ties share it)."""
    means = table[f"{metric} mean"].dropna()
    if means.empty:
        return set()
    best = means.max() if higher_is_better(metric) else means.min()
    return set(means.index[np.isclose(means, best, rtol=0, atol=1e-12)])


def flops_unit(table: pd.DataFrame) -> tuple[str, float]:
    flops = table.get("flops mean", pd.Series([], dtype=float)).dropna()
    return ("G", 1e9) if len(flops) and flops.max() >= 1e9 else ("M", 1e6)


def formatted_table(data: StudyData, table: pd.DataFrame, latex: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(strings, bold mask) of the comparison table; ``latex`` uses ``$\\pm$`` and LaTeX-escaped text."""
    pm = " $\\pm$ " if latex else " ± "
    esc = latex_escape if latex else (lambda s: s)
    delta = "$\\Delta$" if latex else "Δ"
    papers = paper_keys(data)
    unit, scale = flops_unit(table)
    rows, bold = [], []
    bests = {m: best_variants(table, m) for m in data.metrics}
    for variant, r in table.iterrows():
        label = esc(str(variant)) + (" (baseline)" if r["baseline"] else "")
        row = {"variant": label, "n": f"{r['n']}/{r['planned']}"}
        marks = {"variant": False, "n": False}
        for metric in data.metrics:
            d = _decimals(table[f"{metric} mean"], table[f"{metric} std"])
            name = esc(metric)
            if r[f"{metric} n"] == 0:
                row[name] = "missing" if r["n"] == 0 else DASH
            else:
                std = _f(r[f"{metric} std"], d)
                row[name] = _f(r[f"{metric} mean"], d) + (pm + std if std != DASH else "")
            marks[name] = variant in bests[metric]
            if r["baseline"]:
                row[f"{delta} {name}"] = "baseline" if not latex else DASH
            elif np.isfinite(r[f"{metric} delta"]):
                p = format_p(r[f"{metric} p_welch"])
                p = p.replace("<", "$<$") if latex else p
                text = _f(r[f"{metric} delta"], d, sign=True)
                text = text.replace("-", "$-$", 1) if latex else text
                row[f"{delta} {name}"] = text + (f" (p={p})" if p != DASH else "")
            else:
                row[f"{delta} {name}"] = DASH
            marks[f"{delta} {name}"] = False
            if metric in papers:
                col = esc(f"paper {papers[metric]}")
                row[col] = _f(r.get(f"paper {papers[metric]}", math.nan), 1)
                marks[col] = False
        costs = {
            "params (M)": (r["params mean"] / 1e6, 2),
            f"FLOPs ({unit})": (r["flops mean"] / scale, 2),
            "train img/s": (r["train_images_per_s mean"], 0),
            "eval img/s": (r["eval_images_per_s mean"], 0),
        }
        for col, (value, d) in costs.items():
            if any(np.isfinite(table[f"{c} mean"]).any() for c in COST_COLUMNS):
                row[col] = _f(value, d)
                marks[col] = False
        row["note"] = esc(r["note"]) if r["note"] else ""
        marks["note"] = False
        rows.append(row)
        bold.append(marks)
    strings = pd.DataFrame(rows)
    if latex:
        strings = strings.replace(DASH, "--")
    return strings, pd.DataFrame(bold, columns=strings.columns)


def caption(data: StudyData, table: pd.DataFrame) -> str:
    finished = sorted({int(n) for n in table["n"] if n > 0})
    if not finished:
        seeds = "0"
    else:
        seeds = f"{finished[0]}–{finished[-1]}" if finished[0] != finished[-1] else str(finished[0])
    unit, _ = flops_unit(table)
    directions = ", ".join(f"{m}: {'higher' if higher_is_better(m) else 'lower'}" for m in data.metrics)
    return (
        f"Study {data.name}: mean ± sample std (ddof=1) over the finished seeds of each variant (n = {seeds}; "
        f"column n: finished/planned seeds). Δ is the difference of means vs the baseline {data.baseline}; "
        f"p is the two-sided Welch's t-test (unequal variances) over seeds. Bold: best mean per column "
        f"({directions} is better). FLOPs ({unit}) are multiply-adds per image (paper convention); "
        f"throughput in images/s."
    )


def to_markdown(strings: pd.DataFrame, bold: pd.DataFrame) -> str:
    marked = strings.copy()
    for col in marked.columns:
        marked[col] = [f"**{s}**" if b and s not in (DASH, "missing") else s for s, b in zip(marked[col], bold[col])]
    return marked.to_markdown(index=False, disable_numparse=True)


_LATEX = {"\\": "\\textbackslash{}", "&": "\\&", "%": "\\%", "$": "\\$", "#": "\\#", "_": "\\_",
          "{": "\\{", "}": "\\}", "~": "\\textasciitilde{}", "^": "\\^{}", "±": "$\\pm$", "—": "--",
          "…": "\\ldots{}", "×": "$\\times$", "−": "$-$", "Δ": "$\\Delta$"}


def latex_escape(text: str) -> str:
    """Plain text -> LaTeX (special characters escaped, ± × − Δ as math)."""
    return "".join(_LATEX.get(ch, ch) for ch in str(text))


def to_latex(strings: pd.DataFrame, bold: pd.DataFrame, caption_text: str, label: str) -> str:
    """A booktabs table (``Styler.to_latex(hrules=True)``), best cells in ``\\bfseries``."""
    css = bold.map(lambda b: "font-weight: bold;" if b else "")
    css.index, css.columns = strings.index, strings.columns
    styler = strings.style.hide(axis="index").apply(lambda _: css, axis=None)
    return styler.to_latex(
        hrules=True, convert_css=True, caption=latex_escape(caption_text), label=label, position="t",
        column_format="l" + "r" * (len(strings.columns) - 2) + "l",
    )


# -- factorial effects -------------------------------------------------------------------------------------


def _cell_values(data: StudyData, metric: str) -> dict[tuple, dict[int, float]]:
    """factor-level key tuple -> {seed: value} of one metric."""
    keys = list(data.factors)
    out: dict[tuple, dict[int, float]] = {}
    if metric not in data.runs:
        return out
    for _, row in data.runs.iterrows():
        ov = data.variant_overrides.get(row["variant"], {})
        value = pd.to_numeric(row[metric], errors="coerce")
        if pd.isna(value):
            continue
        out.setdefault(tuple(_key(ov.get(k)) for k in keys), {})[int(row["seed"])] = float(value)
    return out


def reference_levels(data: StudyData) -> dict[str, object]:
    """Each factor's reference level: the baseline's level, else the first level listed."""
    base = data.variant_overrides.get(data.baseline, {}) if data.baseline else {}
    out = {}
    for k, levels in data.factors.items():
        out[k] = base[k] if k in base and _key(base[k]) in {_key(v) for v in levels} else levels[0]
    return out


def _contrast(weights: dict[tuple, float], cells: dict[tuple, dict[int, float]]) -> list[float]:
    """Per seed: sum of weight * cell value, over the seeds finished in every weighted cell."""
    involved = [c for c, w in weights.items() if w != 0]
    if any(c not in cells for c in involved):
        return []
    seeds = set.intersection(*(set(cells[c]) for c in involved)) if involved else set()
    return [sum(w * cells[c][s] for c, w in weights.items() if w != 0) for s in sorted(seeds)]


def factorial_effects(data: StudyData, level: float = 0.95) -> pd.DataFrame:
    """Main effects and two-way interactions of a factorial spec (empty frame otherwise).

    Main effect of factor A (level a vs the reference a0): mean over all combinations c of the other
    factors of y(a, c) - y(a0, c). Interaction of A and B: mean over the remaining factors of
    [y(a, b) - y(a0, b)] - [y(a, b0) - y(a0, b0)]. Each is computed per seed (only seeds finished in every
    cell involved), then summarised as the mean with a ``level`` t-interval over seeds (df = n - 1).
    """
    columns = ["effect", "term", "contrast", "metric", "estimate", "ci_low", "ci_high", "n_seeds"]
    factors = data.factors
    if not factors or data.runs.empty:
        return pd.DataFrame(columns=columns)
    keys = list(factors)
    refs = reference_levels(data)
    combos = list(itertools.product(*[[_key(v) for v in factors[k]] for k in keys]))

    def others(fixed: dict[int, str]) -> list[tuple]:
        return [c for c in combos if all(c[i] == v for i, v in fixed.items())]

    terms = []  # (effect, term, contrast, weights)
    for i, k in enumerate(keys):
        ref = _key(refs[k])
        for lv in factors[k]:
            if _key(lv) == ref:
                continue
            hi, lo = others({i: _key(lv)}), others({i: ref})
            w = {c: 1 / len(hi) for c in hi} | {c: -1 / len(lo) for c in lo}
            terms.append(("main", k, f"{lv} − {refs[k]}", w))
    for (i, a), (j, b) in itertools.combinations(enumerate(keys), 2):
        ra, rb = _key(refs[a]), _key(refs[b])
        for la, lb in itertools.product(factors[a], factors[b]):
            if _key(la) == ra or _key(lb) == rb:
                continue
            w: dict[tuple, float] = {}
            for va, vb, sign in ((la, lb, 1), (refs[a], lb, -1), (la, refs[b], -1), (refs[a], refs[b], 1)):
                group = others({i: _key(va), j: _key(vb)})
                for c in group:
                    w[c] = w.get(c, 0.0) + sign / len(group)
            terms.append(("interaction", f"{a} × {b}", f"({la} − {refs[a]}) × ({lb} − {refs[b]})", w))
    rows = []
    for metric in data.metrics:
        cells = _cell_values(data, metric)
        for effect, term, contrast, weights in terms:
            per_seed = _contrast(weights, cells)
            mean, low, high = t_interval(per_seed, level)
            rows.append(dict(effect=effect, term=term, contrast=contrast, metric=metric, estimate=mean,
                             ci_low=low, ci_high=high, n_seeds=len(per_seed)))
    return pd.DataFrame(rows, columns=columns)


def effects_markdown(effects: pd.DataFrame) -> str:
    """Effects as a Markdown table: rows = (effect, term, contrast), columns = metrics ``est [lo, hi] (n)``."""
    if effects.empty:
        return ""
    cells = {}
    for metric, group in effects.groupby("metric", sort=False):
        d = _decimals(group["estimate"])
        for _, r in group.iterrows():
            text = _f(r["estimate"], d, sign=True)
            if np.isfinite(r["ci_low"]):
                text += f" [{_f(r['ci_low'], d, sign=True)}, {_f(r['ci_high'], d, sign=True)}]"
            text += f" (n={r['n_seeds']})"
            cells.setdefault((r["effect"], r["term"], r["contrast"]), {})[metric] = text
    frame = pd.DataFrame(
        [{"effect": e, "term": t, "contrast": c, **v} for (e, t, c), v in cells.items()]
    )
    return frame.to_markdown(index=False, disable_numparse=True)


EFFECTS_CAPTION = (
    "Main effect: difference of means between a level and the reference level (the baseline's), averaged over "
    "all levels of the other factors. Interaction: difference of differences, averaged over the remaining "
    "factors. Each is computed per seed (seeds as blocks; only seeds finished in every cell involved count) "
    "and shown as mean [95% t-interval over seeds, df = n−1] (n seeds). An interval that excludes 0 marks an "
    "effect distinguishable from seed noise."
)


# -- transfer (Swin V2 Table 1) ----------------------------------------------------------------------------


def transfer_summary(data: StudyData) -> pd.DataFrame:
    """Numeric transfer table: one row per (variant, method, img_size, window_size) with mean/std/n."""
    t = data.transfer
    columns = ["variant", "method", "img_size", "window_size", "n", "top1 mean", "top1 std", "top1_ft mean",
               "top1_ft std", "top1_ft n"]
    if t.empty:
        return pd.DataFrame(columns=columns)
    rows = []
    order = {v: i for i, v in enumerate(data.variants)}
    for (variant, method, img, window), g in t.groupby(["variant", "method", "img_size", "window_size"],
                                                       sort=False, dropna=False):
        ft = g["top1_ft"].dropna()
        rows.append({
            "variant": variant, "method": method, "img_size": img, "window_size": window, "n": len(g),
            "top1 mean": g["top1"].mean(), "top1 std": g["top1"].std(ddof=1) if len(g) > 1 else math.nan,
            "top1_ft mean": ft.mean() if len(ft) else math.nan,
            "top1_ft std": ft.std(ddof=1) if len(ft) > 1 else math.nan, "top1_ft n": len(ft),
        })
    out = pd.DataFrame(rows, columns=columns)
    out["_o"] = out["variant"].map(lambda v: order.get(v, len(order)))
    return out.sort_values(["_o", "method", "img_size", "window_size"]).drop(columns="_o").reset_index(drop=True)


def transfer_table(data: StudyData) -> pd.DataFrame:
    """Swin V2 Table 1 layout: rows = variant + method, columns ``W{window},I{img}``,
    cells ``top1 without FT / with FT`` as mean ± std over seeds (``—`` where not run)."""
    summary = transfer_summary(data)
    if summary.empty:
        return pd.DataFrame()
    targets = sorted({(int(r.img_size), int(r.window_size)) for r in summary.itertuples()})
    d = _decimals(summary["top1 mean"], pd.concat([summary["top1 std"], summary["top1_ft std"]]))
    rows = []
    trained = summarise_trained(data)
    for (variant, method), g in summary.groupby(["variant", "method"], sort=False):
        row = {"variant": variant, "method": method, "n": "/".join(str(n) for n in sorted(set(g["n"])))}
        if trained:
            row["as trained (test.top1)"] = trained.get(variant, DASH)
        for img, window in targets:
            hit = g[(g["img_size"] == img) & (g["window_size"] == window)]
            col = f"W{window},I{img}"
            if hit.empty:
                row[col] = DASH
                continue
            r = hit.iloc[0]
            row[col] = f"{_pm(r['top1 mean'], r['top1 std'], d)} / {_pm(r['top1_ft mean'], r['top1_ft std'], d)}"
        rows.append(row)
    return pd.DataFrame(rows)


def summarise_trained(data: StudyData) -> dict[str, str]:
    if data.runs.empty or "test.top1" not in data.runs:
        return {}
    g = data.runs.groupby("variant")["test.top1"]
    d = _decimals(data.runs["test.top1"], g.std(ddof=1))
    return {v: _pm(m, s, d) for v, m, s in zip(g.mean().index, g.mean(), g.std(ddof=1))}


def _pm(mean, std, d: int) -> str:
    if mean is None or not np.isfinite(mean):
        return DASH
    return _f(mean, d) + (f" ± {_f(std, d)}" if std is not None and np.isfinite(std) else "")


TRANSFER_CAPTION = (
    "Transfer to larger windows (Swin V2 Table 1 layout): rows are a trained variant and the position-bias "
    "transfer method, columns the target window W and image size I. Cells: test top-1 without fine-tuning / "
    "with fine-tuning, mean ± sample std over seeds (— where not run)."
)
