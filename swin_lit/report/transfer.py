"""Transfer to larger windows (Swin V2 Table 1): the numbers (``transfer.csv``, ``transfer_tests.csv``), the layout
aligned with the paper by transfer ratio, and the tests between methods at each target."""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import pandas as pd

from swin_lit import stats
from swin_lit.report import captions
from swin_lit.report.compare import values_by_variant
from swin_lit.report.data import StudyData
from swin_lit.report.fmt import (
    DASH,
    clip_difference,
    decimals,
    design_sentence,
    format_p,
    interval_text,
    num,
    pm,
    short_label,
    shorten,
    sign_flip_text,
    span,
    std,
    verdict_text,
)
from swin_lit.report.render import Table

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
            reasons = [captions.TRAINED_CELL_FAILED.fill()]
        ratio = ratio_of(data, variant, window)
        rows.append({
            "variant": variant, "method": method, "img_size": int(img), "window_size": int(window),
            "ratio": float(ratio) if ratio is not None else math.nan, "n": len(g),
            f"{m} mean": g[m].mean() if len(g) else math.nan, f"{m} std": std(list(g[m])) if len(g) else
            math.nan, f"{m}_ft mean": ft.mean() if len(ft) else math.nan, f"{m}_ft std": std(list(ft)),
            f"{m}_ft n": len(ft), "failed": int(status.get("failed", 0)), "missing": int(status.get("missing", 0)),
            "running": int(status.get("running", 0) + status.get("waiting", 0)),
            "reason": shorten(reasons[0]) if reasons else "",
        })
    out = pd.DataFrame(rows, columns=columns)
    out["_o"] = out["variant"].map(lambda v: order.get(v, len(order)))
    return out.sort_values(["_o", "method", "window_size", "img_size"]).drop(columns="_o").reset_index(drop=True)


def _train_status(data: StudyData, variant: str, seed) -> str | None:
    hit = data.cells[(data.cells["variant"] == variant) & (data.cells["seed"] == seed)] if len(data.cells) else []
    return hit["status"].iloc[0] if len(hit) else None


def ratio_of(data: StudyData, variant: str, window) -> Fraction | None:
    geometry = data.trained_geometry.get(variant) or next(iter(data.trained_geometry.values()), None)
    return Fraction(int(window), geometry[1]) if geometry else None


def ratio_label(r: Fraction) -> str:
    return f"{captions.setting(float(r))}×"


def transfer_rows(data: StudyData, summary: pd.DataFrame) -> list[tuple[str, str]]:
    return list(dict.fromkeys((r.variant, r.method) for r in summary.itertuples()))


def transfer_values(data: StudyData, variant: str, method: str, img: int, window: int, ft: bool) -> dict[int, float]:
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
        return ratio_label(self.ratio) if self.ratio is not None else ""


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


def wi_label(target: tuple[int, int] | None) -> str:
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
    d = decimals(summary[f"{m} mean"], pd.concat([summary[f"{m} std"], summary[f"{m}_ft std"]]))

    def head(title: str, ours, paper) -> str:
        text = f"{title}: ours {wi_label(ours) if ours else 'not run'}"
        if tp is None:
            return text
        return text + f", paper {wi_label(paper) if paper else captions.NOT_IN_PAPER.fill()}"

    columns = ["", "variant", "method",
               head("1× as trained", geometry, tp.trained if tp is not None else None) if geometry or tp
               else "1× as trained"]
    columns += [head(col.title or "ratio unknown", col.ours, col.paper) for col in columns_at]
    trained = _trained_score(data, d)
    rows = []
    for variant, method in transfer_rows(data, summary):
        row = ["ours", short_label(variant), method, trained.get(variant, DASH)]
        for col in columns_at:
            hit = summary[(summary["variant"] == variant) & (summary["method"] == method)
                          & (summary["img_size"] == (col.ours or (0, 0))[0])
                          & (summary["window_size"] == (col.ours or (0, 0))[1])]
            missing = "not run" if col.ours else captions.NOT_IN_STUDY.fill()
            row.append(_layout_cell(hit.iloc[0], d, m) if len(hit) else missing)
        rows.append(row)
    if data.transfer_chance is not None:
        chance = num(data.transfer_chance, 1)
        rows.append(["ours", f"chance (1/{data.num_classes})", "", chance,
                     *[chance if col.ours else "" for col in columns_at]])
    ours_end = len(rows) - 1
    if tp is not None:
        for variant in tp.rows:
            rows.append(["paper", short_label(variant), "", _paper_cell(tp, variant, tp.trained, as_trained=True),
                         *[_paper_cell(tp, variant, col.paper) for col in columns_at]])
    label = data.transfer_label
    scaled = (captions.SCALED_DENSE if data.task_facts.dense else captions.SCALED_IMAGE).fill()
    chance_note = captions.TRANSFER_CHANCE.fill(source=data.num_classes_source) if data.transfer_chance else ""
    source = captions.TRANSFER_PAPER_ROWS.fill(source=tp.source or captions.NO_STORED_SOURCE.fill()) if (
        tp is not None) else ""
    caption = captions.TRANSFER_CAPTION.fill(study=data.name, scaled=scaled, label=label, chance=chance_note,
                                             source=source)
    return Table(captions.TRANSFER_TITLE.fill(), caption, columns, rows, f"tab:{data.name}:transfer",
                 cell_width=13, rules={ours_end})


def _trained_score(data: StudyData, d: int) -> dict[str, str]:
    values = values_by_variant(data, f"test.{data.transfer_metric}")
    return {v: f"{pm(np.mean(list(x.values())), std(list(x.values())), d)} (n={len(x)})"
            for v, x in values.items()}


def _paper_cell(tp, variant: str, target, as_trained: bool = False) -> str:
    numbers = (tp.rows.get(variant) or {}).get(tuple(target)) if target else None
    if numbers is None:
        return ""
    without, with_ft = numbers
    if with_ft is None or as_trained:
        return num(without, 1) if without is not None else ""
    return f"{num(without, 1) if without is not None else DASH} / {num(with_ft, 1)}"


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
    ft = pm(r[f"{m}_ft mean"], r[f"{m}_ft std"], d) if r[f"{m}_ft n"] else "no FT"
    text = f"{pm(r[f'{m} mean'], r[f'{m} std'], d)} / {ft} (n={r['n']})"
    return text + (f"; {'; '.join(issues)}" if issues else "")


TRANSFER_TEST_COLUMNS = ["img_size", "window_size", "ratio", "finetuned", "variant", "method", "versus",
                         "versus_method", "test", "n", "delta", "ci_low", "ci_high", "sim_low", "sim_high", "p",
                         "p_holm", "sign_flip_p", "sign_flip_min_p", "bimodal", "verdict", "detectable", "mean",
                         "versus_mean", "paper_target", "paper_delta", "paper_base", "reproduction"]


def transfer_contrasts(data: StudyData, rows_order: list[tuple[str, str]]) -> list[tuple[tuple[str, str], ...]]:
    """The spec's ``transfer.contrasts`` as ((variant, method), (variant, method)) pairs, each variant's first
    method; pairs whose variants have no transfer rows are left out."""
    first = {}
    for v, m in rows_order:
        first.setdefault(v, (v, m))
    out = []
    for a, b in (data.spec.transfer.contrasts if data.spec.transfer is not None else ()):
        va, vb = (data.spec.find_variant(n) for n in (a, b))
        if va in first and vb in first:
            out.append((first[va], first[vb]))
    return out


def transfer_tests(data: StudyData, summary: pd.DataFrame) -> pd.DataFrame:
    """Between methods at each target: every (variant, method) row vs the baseline's row, and the spec's
    ``transfer.contrasts`` (A vs B), without and with fine-tuning, paired by the trained seed; Holm within the
    target (both FT settings, every comparison) with the Bonferroni interval over that family beside the
    unadjusted one, the exact sign-flip test, bimodality; the paper's Δ at the target of the same ratio, its
    reference number (``paper_base``) and the paper check's verdict (``swin_lit.report.checks``)."""
    if summary.empty:
        return pd.DataFrame(columns=TRANSFER_TEST_COLUMNS)
    rows_order = transfer_rows(data, summary)
    base = next(((v, m) for v, m in rows_order if v == data.baseline), rows_order[0] if rows_order else None)
    pairs = [(row, base) for row in rows_order if row != base] + transfer_contrasts(data, rows_order)
    tp = data.transfer_paper
    paper_at = {c.ours: c.paper for c in transfer_columns(data, summary) if c.ours}
    out = []
    for (img, window), _ in summary.groupby(["img_size", "window_size"], sort=True):
        ratio = ratio_of(data, base[0], window)
        paper = paper_at.get((int(img), int(window)))
        family = []
        for ft in (False, True):
            for row, ref in pairs:
                mine, theirs = (transfer_values(data, *r, img, window, ft) for r in (row, ref))
                if not mine or not theirs:  # not run at this target, or without fine-tuning
                    continue
                c = stats.compare(mine, theirs, first_stage=data.first_stage)
                pdelta, pbase = math.nan, math.nan
                if tp is not None and paper is not None:
                    a_row, b_row = (tp.rows.get(row[0]) or {}).get(paper), (tp.rows.get(ref[0]) or {}).get(paper)
                    if a_row is not None and b_row is not None:
                        a, b = (a_row[1], b_row[1]) if ft else (a_row[0], b_row[0])
                        pdelta = a - b if a is not None and b is not None else math.nan
                        pbase = b if b is not None else math.nan
                diffs = [mine[s] - theirs[s] for s in sorted(set(mine) & set(theirs))] if c.test == "paired" else []
                family.append((ft, row, ref, c, pdelta, pbase, diffs, mine, theirs))
        tests = stats.adjust_family([f[3] for f in family], data.alpha, True)
        m = max(stats.family_size(f[3].p for f in family), 1)
        for (ft, (variant, method), (versus, versus_method), c, pdelta, pbase, diffs, mine, theirs), t in zip(
                family, tests):
            flip, modes = stats.sign_flip_test(diffs), stats.bimodal_groups(diffs)
            sim = stats.simultaneous_interval(c, m, c.level)
            out.append(dict(img_size=int(img), window_size=int(window), ratio=float(ratio) if ratio else math.nan,
                            finetuned=ft, variant=variant, method=method, versus=versus,
                            versus_method=versus_method, test=c.test, n=c.n, delta=c.estimate,
                            ci_low=c.low, ci_high=c.high, sim_low=sim[0], sim_high=sim[1], p=c.p,
                            p_holm=t.p_adjusted, sign_flip_p=flip.p, sign_flip_min_p=flip.min_p,
                            bimodal=f"{modes[0]}/{modes[1]}" if modes else "", verdict=t.verdict,
                            detectable=t.detectable if t.verdict == stats.NOT_RESOLVED else math.nan,
                            mean=float(np.mean(list(mine.values()))), versus_mean=float(np.mean(list(theirs.values()))),
                            paper_target=wi_label(paper), paper_delta=pdelta, paper_base=pbase, reproduction=""))
    return pd.DataFrame(out, columns=TRANSFER_TEST_COLUMNS)


def transfer_tests_table(data: StudyData, tests: pd.DataFrame, summary: pd.DataFrame) -> Table | None:
    if tests.empty:
        return None
    d = decimals(summary[f"{data.transfer_metric} mean"])
    base = next(((v, m) for v, m in transfer_rows(data, summary) if v == data.baseline), None)
    has_paper = data.transfer_paper is not None
    rows = []
    for _, r in tests.iterrows():
        c = stats.Comparison(r["test"], r["delta"], r["ci_low"], r["ci_high"], r["p"], math.nan, math.nan, r["n"],
                             0, 0)
        v = verdict_text(r["verdict"], r["detectable"], data.transfer_metric, r["test"])
        base_mean = r["versus_mean"]
        unadjusted = clip_difference(r["ci_low"], r["ci_high"], data.transfer_metric, base_mean)
        simultaneous = clip_difference(r["sim_low"], r["sim_high"], data.transfer_metric, base_mean)
        ratio = f"{ratio_label(Fraction(r['ratio']).limit_denominator(64))} " if np.isfinite(r["ratio"]) else ""
        label = f"{short_label(r['variant'])} / {r['method']}"
        if base is not None and (r["versus"], r["versus_method"]) != base:
            label += f" vs {short_label(r['versus'])} / {r['versus_method']}"
        row = [f"{ratio}W{r['window_size']},I{r['img_size']}", "with FT" if r["finetuned"] else "without FT", label,
               interval_text(c, d, unadjusted) if np.isfinite(r["delta"]) else DASH,
               span(*simultaneous, d) or DASH,
               format_p(r["p"]) + (" (Welch)" if r["test"] == "welch" else ""), format_p(r["p_holm"]),
               sign_flip_text(r["sign_flip_p"], r["sign_flip_min_p"], r["bimodal"], data.alpha), v]
        if has_paper:
            row += [f"{num(r['paper_delta'], 1, sign=True)} ({r['paper_target']})" if np.isfinite(r["paper_delta"])
                    else "", r["reproduction"]]
        rows.append(row)
    columns = ["target", "", "row", captions.TRANSFER_DELTA.fill(label=data.transfer_label), "simultaneous 95% CI", "p",
               "p (Holm)", "sign-flip p", "verdict"]
    if has_paper:
        columns += ["paper Δ", "vs the paper"]
    base_name = f"{short_label(base[0])} / {base[1]}" if base else "the first row"
    contrasts = captions.TRANSFER_CONTRASTS.fill() if (
        base is not None and any((v, m) != base for v, m in zip(tests["versus"], tests["versus_method"]))) else ""
    caption = captions.TRANSFER_TESTS_CAPTION.fill(
        study=data.name, base=base_name, contrasts=contrasts, label=data.transfer_label, design=design_sentence(),
        alpha=captions.setting(data.alpha), paper=captions.TRANSFER_TESTS_PAPER.fill() if has_paper else "")
    return Table(captions.TRANSFER_TESTS_TITLE.fill(), caption, columns, rows, f"tab:{data.name}:transfer-tests",
                 cell_width=14)

