"""Reports from hand-built study storages (real Optuna journal files): every number recomputed by hand from
runs.csv or the stored values with scipy, on small synthetic result sets with known answers (resolved, not
resolved, a crossing interaction, failed cells, Welch), the paper beside ours, transfer, LaTeX, figures."""

from __future__ import annotations

import math
import re
import shutil
import subprocess
from datetime import timedelta

import numpy as np
import optuna
import pandas as pd
import pytest
from helpers.pictures import assert_drawn
from helpers.stored import (
    COMPLETE,
    FAIL,
    KNOWN,
    METRICS,
    T0,
    add,
    journal,
    make_known_study,
    md_table,
    new_study,
    record,
    train_attrs,
)
from scipy import optimize
from scipy import stats as sp

from swin_lit.cli import BadInput, main
from swin_lit.report.build import build_report
from swin_lit.report.data import load_study


def holm_by_hand(p: list[float]) -> list[float]:
    order = np.argsort(p)
    m, out, running = len(p), [0.0] * len(p), 0.0
    for k, i in enumerate(order):
        running = max(running, min(1.0, (m - k) * p[i]))
        out[i] = running
    return out


def detectable_by_hand(diffs, m: int, alpha: float = 0.05) -> float:
    """80%-power |Δ| of the two-sided paired t-test at alpha/m (upper tail of the noncentral t; the lower one is
    below 1e-6 here)."""
    n = len(diffs)
    se, df = np.std(diffs, ddof=1) / math.sqrt(n), n - 1
    crit = sp.t.ppf(1 - alpha / m / 2, df)
    return optimize.brentq(lambda nc: sp.nct.sf(crit, df, nc) - 0.8, 0.0, 1e4) * se


def interval_text(low: float, high: float, d: int = 2, base_mean: float | None = None) -> str:
    """"[-1.00, +2.00]"; with ``base_mean``, clipped to what a percent metric allows (the variant's mean within
    0..100: the difference within [-base_mean, 100 - base_mean])."""
    if base_mean is not None:
        low, high = max(low, -base_mean), min(high, 100 - base_mean)
    return f"[{low:+.{d}f}, {high:+.{d}f}]"


def power_text(x: float) -> str:
    """The wording of a design's detectable effect (stats.power_statement), recomputed."""
    if x > 100:
        return f"not resolved; uninformative (80% power only for |Δ| ≥ {x:.3g}, beyond the metric's range of 100)"
    return f"not resolved; this design had 80% power for |Δ| ≥ {x:.3g}"


# -- a study with duplicates and failures (the older paper section, as in results/quick) ------------------

QUICK = {  # the intended (winning) test top-1 per cell
    ("shift", 0): 71.0, ("shift", 1): 72.5, ("shift", 2): 70.2,
    ("noshift", 0): 68.1, ("noshift", 1): 69.4,
    ("v2", 0): 73.3, ("v2", 1): 74.1,
}


@pytest.fixture
def quick_study(tmp_path):
    """3 planned seeds; shift: 3 finished + an older duplicate; noshift: FAIL then retry, and a FAIL-only seed;
    v2: seed 2 never run; abs: no trial at all. The spec's paper section is the older {variant: numbers} form."""
    folder = tmp_path / "results" / "quick"
    variants = {"shift": {"model.shift": "cyclic"}, "noshift": {"model.shift": "none"},
                "v2": {"model.norm": "res_post"}, "abs": {"model.absolute": "learned", "model.relative": "none"}}
    spec = {"base": "configs/default.yaml", "baseline": "shift", "variants": variants, "seeds": [0, 1, 2],
            "metrics": METRICS, "paper": {"shift": {"top1": 81.3}, "noshift": {"top1": 80.2}}}
    study = new_study(folder, "quick", spec, [f"{v}|seed={s}" for v in variants for s in (0, 1, 2)])
    add(study, FAIL, T0, **train_attrs("noshift", 0, variants["noshift"], error="CUDA out of memory"))
    for i, ((variant, seed), top1) in enumerate(QUICK.items()):
        add(study, COMPLETE, T0 + timedelta(minutes=i + 1), **train_attrs(variant, seed, variants[variant],
                                                                      record(top1, seed)))
    # An older duplicate of (shift, 1), added last (highest trial number) but finished earliest: ignored.
    add(study, COMPLETE, T0 - timedelta(hours=1), **train_attrs("shift", 1, variants["shift"], record(10.0, 1)))
    add(study, FAIL, T0 + timedelta(minutes=30), **train_attrs("noshift", 2, variants["noshift"],
                                                               error="NaN loss at epoch 2"))
    return folder


def test_runs_keep_newest_complete_trial(quick_study):
    data = load_study(quick_study)
    runs = data.runs.set_index(["variant", "seed"])
    assert len(runs) == len(QUICK)
    for cell, top1 in QUICK.items():
        assert runs.loc[cell, "test.top1"] == top1
    assert {"params", "flops", "train_images_per_s", "run_dir", "trial", "state", "model.shift"} <= set(runs.columns)
    assert "history" not in runs.columns
    status = data.cells.set_index(["variant", "seed"])["status"]
    assert status[("noshift", 0)] == "finished" and status[("noshift", 2)] == "failed"
    assert status[("v2", 2)] == "missing" and (data.cells[data.cells.variant == "abs"].status == "missing").all()
    assert data.variants == ["shift", "noshift", "v2", "abs"] and data.baseline == "shift"
    assert len(data.planned) == 12 and data.num_classes == 10
    assert data.paper.source is None and data.paper.rows["noshift"] == {"top1": 80.2}  # the older form still reads


def test_comparison_numbers_match_a_recomputation_from_runs_csv(quick_study):
    out = build_report(quick_study)
    runs = pd.read_csv(out / "runs.csv")
    cells = pd.read_csv(out / "cells.csv", index_col="variant")
    assert list(cells.index) == ["shift", "noshift", "v2", "abs"]
    base = runs[runs.variant == "shift"].set_index("seed")
    for m in METRICS:
        diffs, ps = {}, {}
        for variant in ["noshift", "v2"]:
            mine = runs[runs.variant == variant].set_index("seed")
            shared = sorted(set(mine.index) & set(base.index))
            d = (mine.loc[shared, m] - base.loc[shared, m]).to_numpy()
            half = sp.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / math.sqrt(len(d))
            row = cells.loc[variant]
            assert row[f"{m} test"] == "paired" and row[f"{m} n_pairs"] == len(shared) == 2
            assert row[f"{m} delta"] == pytest.approx(d.mean())
            assert row[f"{m} ci_low"] == pytest.approx(d.mean() - half)
            assert row[f"{m} ci_high"] == pytest.approx(d.mean() + half)
            ps[variant] = sp.ttest_rel(mine.loc[shared, m], base.loc[shared, m]).pvalue
            assert row[f"{m} p"] == pytest.approx(ps[variant])
            assert row[f"{m} mean"] == pytest.approx(mine[m].mean()) and row[f"{m} std"] == pytest.approx(
                mine[m].std(ddof=1))
            diffs[variant] = d
        for variant, p_holm in zip(ps, holm_by_hand(list(ps.values()))):  # family: noshift, v2 (abs has no data)
            row = cells.loc[variant]
            assert row[f"{m} p_holm"] == pytest.approx(p_holm)
            higher = m.endswith(("top1", "top5"))
            expected = ("not resolved" if p_holm > 0.05 else
                        "better" if (diffs[variant].mean() > 0) == higher else "worse")
            assert row[f"{m} verdict"] == expected
            if expected == "not resolved":
                assert row[f"{m} detectable"] == pytest.approx(detectable_by_hand(diffs[variant], 2), rel=1e-4)
            else:
                assert math.isnan(row[f"{m} detectable"])
    assert cells.loc["noshift", "test.top1 verdict"] == "worse"
    assert cells.loc["v2", "test.top1 verdict"] == "not resolved"
    assert cells.loc["shift", "test.top1 mean"] == pytest.approx(np.mean([71.0, 72.5, 70.2]))  # not the duplicate
    assert cells.loc["abs", "n"] == 0 and math.isnan(cells.loc["abs", "test.top1 mean"])
    assert cells.loc["abs", "test.top1 test"] == "none" and cells.loc["abs", "test.top1 verdict"] == "not resolved"
    assert cells.loc["noshift", "planned"] == 3 and cells.loc["noshift", "failed"] == 1
    assert cells.loc["noshift", "note"] == "2/3 seeds; 1 failed: NaN loss at epoch 2"
    assert cells.loc["v2", "note"] == "2/3 seeds; 1 missing"
    assert cells.loc["noshift", "test.top1 paper_delta"] == pytest.approx(80.2 - 81.3)
    assert cells.loc["noshift", "test.top1 reproduction"] == "agrees"  # resolved worse, as the paper's -1.1

    md = (out / "report.md").read_text()
    table = md_table(md, "### test.top1").set_index("variant")
    noshift = table.loc["noshift"]
    assert noshift["n"] == "2/3" and noshift["mean ± std"] == "68.75 ± 0.92 ≈"  # v2 (best, 2 seeds) is no resolved best
    d = [68.1 - 71.0, 69.4 - 72.5]
    low = np.mean(d) - sp.t.ppf(0.975, 1) * np.std(d, ddof=1) / math.sqrt(2)
    base_mean = np.mean([71.0, 72.5, 70.2])
    assert noshift["Δ [95% CI] unadjusted"] == (
        f"{np.mean(d):+.2f} {interval_text(low, 2 * np.mean(d) - low, base_mean=base_mean)} (2 pairs)")
    # the simultaneous interval: Bonferroni over the family of 2 (noshift, v2), level 1 - 0.05/2
    sim = sp.t.ppf(1 - 0.025 / 2, 1) * np.std(d, ddof=1) / math.sqrt(2)
    assert noshift["simultaneous 95% CI"] == interval_text(np.mean(d) - sim, np.mean(d) + sim, base_mean=base_mean)
    # the exact sign-flip test at n = 2: both differences negative, p = 2/4, which is also its minimum
    assert noshift["sign-flip p"] == "0.500 (min 0.500: cannot reach α = 0.05 at this n)"
    assert noshift["verdict"] == "worse" and noshift["paper Δ"] == "-1.1" and noshift["vs the paper"] == "agrees"
    d = [73.3 - 71.0, 74.1 - 72.5]
    assert table.loc["v2", "verdict"] == power_text(detectable_by_hand(d, 2))
    assert table.loc["v2", "paper Δ"] == "" and table.loc["v2", "vs the paper"] == ""
    assert cells.loc["noshift", "test.top1 sign_flip_p"] == pytest.approx(0.5)
    assert cells.loc["noshift", "test.top1 sim_low"] == pytest.approx(np.mean(d := [68.1 - 71.0, 69.4 - 72.5])
                                                                     - sp.t.ppf(1 - 0.025 / 2, 1)
                                                                     * np.std(d, ddof=1) / math.sqrt(2))
    assert table.loc["abs", "mean ± std"] == "missing" and table.loc["abs", "n"] == "0/3"
    assert "source not stated in this study's stored spec" in md
    assert "every comparison paired" in md
    cost = md_table(md, "### Cost").set_index("variant")
    assert cost.loc["v2", "params (M)"] == "0.14" and cost.loc["v2", "FLOPs (M)"] == "7.10"
    assert "| noshift   |      2 | failed" in md or re.search(r"\| noshift\s*\|\s*2\s*\|\s*failed", md)
    assert "```yaml" in md and "baseline: shift" in md and "`cpu` (7 runs)" in md and "| torch | 2.13.0 |" in md


# -- known answers: one resolved, one not; bold only for a resolved best; the paper's orderings -------------

def test_known_answers_verdicts_bold_and_reproduction(tmp_path):
    out = build_report(make_known_study(tmp_path))
    runs = pd.read_csv(out / "runs.csv")
    by = {v: runs[runs.variant == v].sort_values("seed")["test.top1"].to_numpy() for v in KNOWN}
    others = [v for v in KNOWN if v != "base ≥ 2×"]
    ps = [sp.ttest_rel(by[v], by["base ≥ 2×"]).pvalue for v in others]
    holm = dict(zip(others, holm_by_hand(ps)))
    cells = pd.read_csv(out / "cells.csv", index_col="variant")
    expected = {"big ± é": "better", "noisy_Δ % & #": "not resolved", "contra": "worse", "same": "not resolved"}
    for v in others:
        assert cells.loc[v, "test.top1 p_holm"] == pytest.approx(holm[v])
        assert cells.loc[v, "test.top1 verdict"] == expected[v]
    assert holm["big ± é"] < 0.05 < holm["noisy_Δ % & #"]
    md = (out / "report.md").read_text()
    table = md_table(md, "### test.top1").set_index("variant")
    noisy = by["noisy_Δ % & #"] - by["base ≥ 2×"]
    assert table.loc["noisy_Δ % & #", "verdict"] == power_text(detectable_by_hand(noisy, 4))
    # Bold: big has the best mean and paired tests of big vs every other row (Holm over 4) all resolve.
    p_best = [sp.ttest_rel(by[v], by["big ± é"]).pvalue for v in KNOWN if v != "big ± é"]
    assert max(holm_by_hand(p_best)) < 0.05
    assert table.loc["big ± é", "mean ± std"].startswith("**") and cells.loc["big ± é", "test.top1 best"]
    assert sum(s.startswith("**") for s in table["mean ± std"]) == 1 and "≈" not in "".join(table["mean ± std"])
    # the paper's Δ beside ours, and the reproduction verdicts (not embedded data: reproductions)
    assert table.loc["big ± é", "paper Δ"] == "+0.7" and table.loc["big ± é", "vs the paper"] == "agrees"
    assert table.loc["contra", "paper Δ"] == "+1.2" and table.loc["contra", "vs the paper"] == "contradicts"
    # noisy: paper -1.3, ours +0.25 with a simultaneous interval (Bonferroni over 4) holding 0 and -1.3
    sim = sp.t.ppf(1 - 0.05 / 8, 3) * np.std(noisy, ddof=1) / 2
    assert noisy.mean() - sim < -1.3 < 0 < noisy.mean() + sim
    assert table.loc["noisy_Δ % & #", "vs the paper"] == "consistent with both"
    # same: the paper's Δ is 0, within the ImageNet-1K binomial half-width (0.34 at 81.3%)
    assert table.loc["same", "paper Δ"] == "+0.0"
    assert table.loc["same", "vs the paper"] == "paper's Δ within its own noise"
    assert ("**Reproduction of the paper** (Swin V1 Table 4 (≥ 300 epochs, ± 0.1 %, é), Swin-T, ImageNet-1K; "
            "family: the study's Holm families): agrees 2, contradicts 1, consistent with both 1 (of 4 claims); "
            "1 row where the paper's Δ is within its own test-set noise (no ordering to check) not counted.") in md
    line = next(ln for ln in md.splitlines() if ln.startswith("- **test.top1**"))
    assert "better than the baseline: big ± é (+5.00, simultaneous [" in line
    assert "worse than the baseline: contra (-3.99, simultaneous [" in line
    assert "No equivalence verdict: the spec gives no smallest effect of interest (margin)." in line
    assert "Resolved best: big ± é." in line
    # 10 classes: top-5 is shown
    assert "### test.top5" in md and "Not shown: test.top5" not in md


def test_ties_marked_and_no_bold_without_a_resolved_best(tmp_path):
    folder = tmp_path / "ties"
    study = new_study(folder, "ties", {"variants": {"a": {}, "b": {}}, "seeds": [0, 1, 2],
                                       "metrics": ["test.top1"]})
    for i, (v, s, top1) in enumerate([("a", 0, 39.8), ("a", 1, 40.1), ("a", 2, 40.0),
                                      ("b", 0, 38.2), ("b", 1, 41.0), ("b", 2, 39.8)]):
        add(study, COMPLETE, T0 + timedelta(minutes=i), **train_attrs(v, s, {}, record(top1, s)))
    md = (build_report(folder) / "report.md").read_text()
    table = md_table(md, "### test.top1").set_index("variant")
    assert table.loc["a (baseline)", "mean ± std"] == "39.97 ± 0.15 ≈" and table.loc["b", "mean ± std"].endswith("≈")
    assert "**" not in "".join(table["mean ± std"]) and "No resolved best (2 rows tied with the best mean)." in md


def test_failed_cells_pair_on_shared_seeds_and_welch_only_without_them(tmp_path):
    folder = tmp_path / "fail"
    variants = {"base": {}, "partial": {}, "apart": {}}
    study = new_study(folder, "fail", {"variants": variants, "seeds": [0, 1, 2, 3], "metrics": ["test.top1"],
                                       "baseline": "base"})
    values = {("base", 0): 70.0, ("base", 1): 71.0, ("base", 2): 69.5, ("partial", 0): 72.0, ("partial", 1): 72.6,
              ("partial", 3): 71.0, ("apart", 2): 60.0, ("apart", 3): 61.5}
    failures = {("base", 3): "CUDA out of memory", ("partial", 2): "NaN loss at epoch 3",
                ("apart", 0): "worker died", ("apart", 1): "worker died"}
    for i, ((v, s), top1) in enumerate(values.items()):
        add(study, COMPLETE, T0 + timedelta(minutes=i), **train_attrs(v, s, {}, record(top1, s)))
    for i, ((v, s), error) in enumerate(failures.items()):
        add(study, FAIL, T0 + timedelta(minutes=20 + i), **train_attrs(v, s, {}, error=error))
    out = build_report(folder)
    runs = pd.read_csv(out / "runs.csv")
    top1 = {v: runs[runs.variant == v].set_index("seed")["test.top1"] for v in variants}
    cells = pd.read_csv(out / "cells.csv", index_col="variant")
    p_partial = sp.ttest_rel(top1["partial"].loc[[0, 1]], top1["base"].loc[[0, 1]]).pvalue
    p_apart = sp.ttest_ind(top1["apart"], top1["base"], equal_var=False).pvalue
    assert cells.loc["partial", "test.top1 test"] == "paired" and cells.loc["partial", "test.top1 n_pairs"] == 2
    assert cells.loc["partial", "test.top1 p"] == pytest.approx(p_partial)
    assert cells.loc["apart", "test.top1 test"] == "welch"
    assert cells.loc["apart", "test.top1 p"] == pytest.approx(p_apart)
    assert cells.loc["apart", "test.top1 delta"] == pytest.approx(top1["apart"].mean() - top1["base"].mean())
    holm = holm_by_hand([p_partial, p_apart])
    assert [cells.loc[v, "test.top1 p_holm"] for v in ("partial", "apart")] == pytest.approx(holm)
    md = (out / "report.md").read_text()
    table = md_table(md, "### test.top1").set_index("variant")
    assert table.loc["partial", "Δ [95% CI] unadjusted"].endswith("(2 pairs)") and table.loc["partial", "n"] == "3/4"
    assert table.loc["apart", "p"].endswith("(Welch)") and table.loc["apart", "n"] == "2/4"
    assert "Welch's unpaired test (fewer than 2 seeds shared with the baseline) for apart" in md
    unfinished = md_table(md, "### Cells not finished")
    assert sorted(zip(unfinished.variant, unfinished.status, unfinished.error)) == [
        ("apart", "failed", "worker died"), ("apart", "failed", "worker died"),
        ("base", "failed", "CUDA out of memory"), ("partial", "failed", "NaN loss at epoch 3")]
    assert cells.loc["apart", "note"] == "2/4 seeds; 2 failed: worker died"


# -- factorial: a crossing interaction -----------------------------------------------------------------------

def make_crossing_study(tmp_path):
    """2 x 2 x 3 seeds: shift helps (+3) with pre-norm and hurts (-3) with res-post-norm; a per-seed block."""
    factors = {"model.shift": ["cyclic", "none"], "model.norm": ["pre", "res_post"]}
    folder = tmp_path / "cross"
    study = new_study(folder, "cross", {"baseline": "model.shift=cyclic,model.norm=pre", "factors": factors,
                                        "seeds": [0, 1, 2], "metrics": ["test.top1"]})
    block, noise = [0.0, 1.5, -1.0], {0: 0.05, 1: -0.08, 2: 0.02}
    i = 0
    for shift in factors["model.shift"]:
        for norm in factors["model.norm"]:
            for seed in (0, 1, 2):
                effect = (3.0 if norm == "pre" else -3.0) if shift == "none" else 0.0
                top1 = round(70 + block[seed] + effect + noise[seed] * (i % 4 + 1), 4)
                name = f"model.shift={shift},model.norm={norm}"
                add(study, COMPLETE, T0 + timedelta(minutes=i),
                    **train_attrs(name, seed, {"model.shift": shift, "model.norm": norm}, record(top1, seed)))
                i += 1
    return folder


def test_crossing_interaction_gets_simple_effects(tmp_path):
    out = build_report(make_crossing_study(tmp_path))
    runs = pd.read_csv(out / "runs.csv")
    y = {(r["model.shift"], r["model.norm"], r.seed): r["test.top1"] for _, r in runs.iterrows()}
    seeds = (0, 1, 2)

    def per_seed(f):
        return np.array([f(s) for s in seeds])

    shift_at = {n: per_seed(lambda s, n=n: y["none", n, s] - y["cyclic", n, s]) for n in ("pre", "res_post")}
    norm_at = {h: per_seed(lambda s, h=h: y[h, "res_post", s] - y[h, "pre", s]) for h in ("cyclic", "none")}
    main_shift = (shift_at["pre"] + shift_at["res_post"]) / 2
    main_norm = (norm_at["cyclic"] + norm_at["none"]) / 2
    interaction = shift_at["res_post"] - shift_at["pre"]
    effects = pd.read_csv(out / "effects.csv", keep_default_na=False)
    top1 = effects[effects.metric == "test.top1"]

    def row(effect, term, at=""):
        hit = top1[(top1.effect == effect) & (top1.term == term) & (top1["at"] == at)]
        assert len(hit) == 1, (effect, term, at)
        return hit.iloc[0]

    family = [("main", "model.shift", main_shift), ("main", "model.norm", main_norm),
              ("interaction", "model.shift × model.norm", interaction)]
    ps = [sp.ttest_1samp(v, 0).pvalue for *_, v in family]
    for (effect, term, v), p_holm in zip(family, holm_by_hand(ps)):
        r = row(effect, term)
        half = sp.t.ppf(0.975, 2) * v.std(ddof=1) / math.sqrt(3)
        assert r["estimate"] == pytest.approx(v.mean()) and r["ci_low"] == pytest.approx(v.mean() - half)
        assert r["p_holm"] == pytest.approx(p_holm)
        sim = sp.t.ppf(1 - 0.05 / 3 / 2, 2) * v.std(ddof=1) / math.sqrt(3)  # Bonferroni over the family of 3
        assert r["sim_low"] == pytest.approx(v.mean() - sim) and r["sim_high"] == pytest.approx(v.mean() + sim)
    assert row("main", "model.shift")["verdict"] == "not resolved" and abs(main_shift.mean()) < 0.2
    assert row("interaction", "model.shift × model.norm")["verdict"] == "resolved"
    assert interaction.mean() == pytest.approx(-6.0, abs=0.3)
    simple = [("model.shift", "model.norm=pre", shift_at["pre"]), ("model.shift", "model.norm=res_post",
                                                                     shift_at["res_post"]),
              ("model.norm", "model.shift=cyclic", norm_at["cyclic"]), ("model.norm", "model.shift=none",
                                                                         norm_at["none"])]
    ps = [sp.ttest_1samp(v, 0).pvalue for *_, v in simple]
    for (term, at, v), p_holm in zip(simple, holm_by_hand(ps)):
        r = row("simple", term, at)
        assert r["estimate"] == pytest.approx(v.mean()) and r["p_holm"] == pytest.approx(p_holm)
    assert row("simple", "model.shift", "model.norm=pre")["verdict"] == "better"  # higher top-1 with none
    assert row("simple", "model.shift", "model.norm=res_post")["verdict"] == "worse"
    md = (out / "report.md").read_text()
    assert "Scale: full differences, not the 2^k effect coding" in md
    assert "a crossing interaction (its sign changes with norm)" in md
    assert "The main effects of shift and norm alone do not describe the data." in md
    means = md_table(md, "Cell means of test.top1").set_index("shift \\ norm")
    m = {(h, n): np.mean([y[h, n, s] for s in seeds]) for h in ("cyclic", "none") for n in ("pre", "res_post")}
    assert means.loc["shift=none", "norm=pre"].startswith(f"{m['none', 'pre']:.2f} ± ")
    assert means.loc["mean over shift", "mean over norm"] == f"{np.mean(list(m.values())):.2f}"
    assert assert_drawn(out / "figures" / "interaction.png") == (960, 600)


# -- top-5, LaTeX ------------------------------------------------------------------------------------------

def test_top5_hidden_below_ten_classes(tmp_path):
    out = build_report(make_known_study(tmp_path, classes=8))
    md = (out / "report.md").read_text()
    assert "Not shown: test.top5, 8 classes (fewer than 10)" in md and "### test.top5" not in md
    assert ("agrees 1, contradicts 1, consistent with both 1 (of 3 claims); 1 row where the paper's Δ is within "
            "its own test-set noise (no ordering to check) not counted. The paper's top5 numbers are not compared "
            "(test.top5 not shown).") in md
    assert not (out / "figures" / "test.top5.png").exists() and (out / "figures" / "test.top1.png").exists()
    assert "test.top5 mean" in pd.read_csv(out / "cells.csv").columns  # the numbers stay in the CSV
    assert "test.top5" not in (out / "table.tex").read_text()


LATEX_DOC = ("\\documentclass{article}\n\\usepackage{booktabs}\n\\usepackage{graphicx}\n\\begin{document}\n"
             "\\input{table.tex}\n\\end{document}\n")


def needs_pdflatex() -> None:
    """Skip, saying why, where TeX is missing: the compile cannot be checked without it."""
    if shutil.which("pdflatex") is None:
        pytest.skip("pdflatex is not installed: the table.tex compile check needs TeX (apt install texlive-latex-base)")


def test_latex_escapes_odd_characters(tmp_path):
    out = build_report(make_known_study(tmp_path, columns=["mean", "delta", "verdict", "reproduction"]))
    tex = (out / "table.tex").read_text()
    assert tex.isascii(), sorted({ch for ch in tex if not ch.isascii()})
    assert "base $\\ge$ 2$\\times$" in tex and "big $\\pm$ \\'{e}" in tex and "noisy\\_$\\Delta$ \\% \\& \\#" in tex
    assert "($\\ge$ 300 epochs, $\\pm$ 0.1 \\%, \\'{e})" in tex
    tables = re.findall(r"\\begin\{table\}.*?\\end\{table\}", tex, re.S)
    assert len(tables) == 4  # top1, top5, convergence, cost
    header = tables[0].split("\\midrule")[0].rsplit("\\toprule", 1)[1]
    assert "p (Holm)" not in header and "paper \\\\Delta" not in header and "vs the paper" in header
    assert ("Not shown here (see report.md and cells.csv): n, simultaneous 95\\% CI, p, p (Holm), sign-flip p, "
            "paper $\\Delta$.") in tables[0]
    for raw in ("≥", "±", "×", "é", "Δ", " _", " % ", " & #"):
        assert raw not in tex


def test_latex_of_odd_characters_compiles(tmp_path):
    needs_pdflatex()
    out = build_report(make_known_study(tmp_path, columns=["mean", "delta", "verdict", "reproduction"]))
    (out / "doc.tex").write_text(LATEX_DOC)
    proc = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "doc.tex"], cwd=out,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:]
    log = (out / "doc.log").read_text(errors="replace")
    assert "Overfull \\hbox" not in log and (out / "doc.pdf").stat().st_size > 1000


def test_latex_of_a_factorial_and_transfer_study_compiles(tmp_path):
    """Every table (comparison, convergence, cost, cell means, effects, simple effects, transfer layout and tests)
    in one file, fitting the line width of a default article page."""
    outs = [build_report(make_crossing_study(tmp_path)), build_report(make_transfer_study(tmp_path)[0])]
    texts = [(o / "table.tex").read_text() for o in outs]
    assert texts[0].count("\\begin{table}") == 6 and "Simple effects" in texts[0] and "Convergence" in texts[0]
    assert "Transfer to larger windows" in texts[1] and "Between methods at each target" in texts[1]
    assert all(t.isascii() for t in texts)
    needs_pdflatex()
    for out in outs:
        (out / "doc.tex").write_text(LATEX_DOC)
        proc = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "doc.tex"], cwd=out,
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stdout[-3000:]
        assert "Overfull \\hbox" not in (out / "doc.log").read_text(errors="replace")


# -- transfer (Swin V2 Table 1) ------------------------------------------------------------------------------

EFFECT = {"bicubic": 0.0, "extrapolate": 8.0, "renormalize": 3.0}


def make_transfer_study(tmp_path):
    """Two trained variants x 3 seeds (trained at 32 px / window 4, 10 classes), moved to 64:8 (2x) and 96:12 (3x)
    by 1-2 methods; (table, seed 0, 96:12) failed; (cpb, seed 2, 96:12, renormalize) planned but never run."""
    folder = tmp_path / "tr"
    variants = {"table": {"model.relative": "table"}, "cpb": {"model.relative": "cpb_log"}}
    paper = {"table": "Swin V2 Table 1", "model": "Swin-T", "dataset": "ImageNet-1K", "trained": "256:8",
             "rows": {"table": {"256:8": 81.7, "512:16": [77.2, 83.0], "768:24": [68.7, 83.2]},
                      "cpb": {"256:8": 81.8, "512:16": [81.7, 83.8], "768:24": [79.1, 84.2]}}}
    methods = {"table": ["bicubic"], "cpb": ["extrapolate", "renormalize"]}
    cells = [f"{v}|seed={s}|to={i}:{w}|method={m}" for v in variants for s in (0, 1, 2) for i, w in ((64, 8), (96, 12))
             for m in methods[v]]
    study = new_study(folder, "tr", {"variants": variants, "seeds": [0, 1, 2], "metrics": ["test.top1"],
                                     "baseline": "table", "transfer": {"targets": ["64:8", "96:12"], "paper": paper}},
                      [f"{v}|seed={s}" for v in variants for s in (0, 1, 2)] + cells)
    i = 0
    for v in variants:
        for s in (0, 1, 2):
            add(study, COMPLETE, T0 + timedelta(minutes=i), **train_attrs(v, s, variants[v], record(70.0 + s, s)))
            i += 1
    acc = {}
    for v in variants:
        for method in methods[v]:
            for img, win in ((64, 8), (96, 12)):
                for s in (0, 1, 2):
                    cell = f"{v}|seed={s}|to={img}:{win}|method={method}"
                    attrs = {"kind": "transfer", "cell": cell, "variant": v, "seed": s, "method": method,
                             "img_size": img, "window_size": win, "run_dir": f"runs/{v}-s{s}"}
                    if (v, s, win) == ("table", 0, 12):
                        trial = optuna.trial.create_trial(state=FAIL, user_attrs={
                            **attrs, "error": "CUDA out of memory at 96 px"})
                        study.add_trial(trial)
                        continue
                    if (v, s, win, method) == ("cpb", 2, 12, "renormalize"):
                        continue
                    top1 = 50.0 - win + 2 * s + EFFECT[method] + 0.7 * ((s * 7 + win + len(method)) % 3)
                    ft = None if method == "extrapolate" else top1 + 5 + 0.4 * s * (method == "bicubic")
                    acc[v, method, win, s] = (top1, ft)
                    attrs["finetune_epochs"] = 0 if ft is None else 1
                    attrs["result"] = {"top1": top1, "top5": top1 + 10, "loss": 1.0, "top1_ft": ft,
                                       "top5_ft": None if ft is None else ft + 10}
                    study.add_trial(optuna.trial.create_trial(state=COMPLETE, value=top1, user_attrs=attrs))
    return folder, acc


def test_transfer_layout_aligns_ours_with_the_paper_by_ratio(tmp_path):
    folder, acc = make_transfer_study(tmp_path)
    out = build_report(folder)
    md = (out / "report.md").read_text()
    table = md_table(md, "### Transfer (Swin V2 Table 1 layout)")
    assert list(table.columns) == ["", "variant", "method", "1× as trained: ours W4,I32, paper W8,I256",
                                   "2×: ours W8,I64, paper W16,I512", "3×: ours W12,I96, paper W24,I768"]
    rows = {(r["variant"], r["method"], r[""]): r for _, r in table.iterrows()}
    assert list(rows) == [("table", "bicubic", "ours"), ("cpb", "extrapolate", "ours"), ("cpb", "renormalize", "ours"),
                          ("chance (1/10)", "", "ours"), ("table", "", "paper"), ("cpb", "", "paper")]
    for (v, method, who), r in rows.items():
        if who != "ours" or v.startswith("chance"):
            continue
        for win, col in ((8, "2×: ours W8,I64, paper W16,I512"), (12, "3×: ours W12,I96, paper W24,I768")):
            vals = [acc[v, method, win, s] for s in (0, 1, 2) if (v, method, win, s) in acc]
            a = np.array([x[0] for x in vals])
            ft = "no FT" if vals[0][1] is None else (
                f"{np.mean([x[1] for x in vals]):.2f} ± {np.std([x[1] for x in vals], ddof=1):.2f}")
            assert r[col].startswith(f"{a.mean():.2f} ± {a.std(ddof=1):.2f} / {ft} (n={len(vals)})")
    assert rows["table", "bicubic", "ours"]["3×: ours W12,I96, paper W24,I768"].endswith(
        "; 1 failed: CUDA out of memory at 96 px")
    assert rows["cpb", "renormalize", "ours"]["3×: ours W12,I96, paper W24,I768"].endswith("; 1 missing")
    assert rows["chance (1/10)", "", "ours"]["2×: ours W8,I64, paper W16,I512"] == "10.0"
    assert load_study(folder).transfer_chance == 10.0  # the same level in the figure
    assert rows["table", "", "paper"]["2×: ours W8,I64, paper W16,I512"] == "77.2 / 83.0"
    assert rows["table", "", "paper"]["1× as trained: ours W4,I32, paper W8,I256"] == "81.7"

    # between methods: paired by the trained seed, Holm within the target (without and with FT together)
    tests = pd.read_csv(out / "transfer_tests.csv")
    for win in (8, 12):
        mine = tests[tests.window_size == win]
        ps = []
        for _, r in mine.iterrows():
            k = 1 if r.finetuned else 0
            x = {s: acc[r.variant, r.method, win, s][k] for s in (0, 1, 2) if (r.variant, r.method, win, s) in acc}
            y = {s: acc["table", "bicubic", win, s][k] for s in (0, 1, 2) if ("table", "bicubic", win, s) in acc}
            shared = sorted(set(x) & set(y))
            if len(shared) >= 2:
                a, b = np.array([x[s] for s in shared]), np.array([y[s] for s in shared])
                assert r["test"] == "paired" and r["n"] == len(shared) and r["delta"] == pytest.approx((a - b).mean())
                ps.append(sp.ttest_rel(a, b).pvalue)
            else:  # renormalize at 96:12 lost seed 2, bicubic lost seed 0: one shared seed
                assert r["test"] == "welch" and (r.method, win) == ("renormalize", 12)
                ps.append(sp.ttest_ind(list(x.values()), list(y.values()), equal_var=False).pvalue)
            assert r["p"] == pytest.approx(ps[-1])
        assert list(mine["p_holm"]) == pytest.approx(holm_by_hand(ps))
        assert len(mine) == 3  # extrapolate and renormalize without FT, renormalize with FT
    r = tests[(tests.window_size == 8) & (tests.method == "extrapolate")].iloc[0]
    assert r["paper_target"] == "W16,I512" and r["paper_delta"] == pytest.approx(81.7 - 77.2)
    assert r["verdict"] == "better" and r["reproduction"] == "agrees"
    assert "Reproduction of the paper" in md and assert_drawn(out / "figures" / "transfer.png") == (1440, 600)
    assert (out / "transfer.csv").is_file()


def test_transfer_contrasts_test_two_rows_against_each_other_in_the_targets_family(tmp_path):
    """``transfer.contrasts: [[c, b]]``: at each target c's row minus b's, paired by seed, in one Holm family with
    the rows' tests against the baseline a; the paper's Δ is its c row minus its b row."""
    folder = tmp_path / "con"
    variants = {"a": {"model.relative": "table"}, "b": {"model.relative": "cpb_linear"},
                "c": {"model.relative": "cpb_log"}}
    paper = {"table": "Swin V2 Table 1", "model": "Swin-T", "dataset": "ImageNet-1K", "trained": "256:8",
             "rows": {"a": {"256:8": 81.7, "512:16": 77.2}, "b": {"256:8": 81.7, "512:16": 81.2},
                      "c": {"256:8": 81.8, "512:16": 81.7}}}
    study = new_study(folder, "con", {"variants": variants, "seeds": [0, 1, 2], "metrics": ["test.top1"],
                                      "baseline": "a", "transfer": {"targets": ["64:8"], "paper": paper,
                                                                    "contrasts": [["c", "b"]]}})
    top1 = {(v, s): 40.0 + 9 * i + s * (1 + i) + 0.3 * (s == 1) * i for i, v in enumerate(variants)
            for s in (0, 1, 2)}
    for i, (v, s) in enumerate(top1):
        add(study, COMPLETE, T0 + timedelta(minutes=i), **train_attrs(v, s, variants[v], record(70.0, s)))
        method = "bicubic" if v == "a" else "extrapolate"
        attrs = {"kind": "transfer", "cell": f"{v}|seed={s}|to=64:8|method={method}", "variant": v, "seed": s,
                 "method": method, "img_size": 64, "window_size": 8, "run_dir": f"runs/{v}-s{s}",
                 "finetune_epochs": 0, "result": {"top1": top1[v, s], "top5": 90.0, "loss": 1.0}}
        study.add_trial(optuna.trial.create_trial(state=COMPLETE, value=top1[v, s], user_attrs=attrs))
    out = build_report(folder)
    tests = pd.read_csv(out / "transfer_tests.csv", keep_default_na=False)
    assert [(r.variant, r.versus) for r in tests.itertuples()] == [("b", "a"), ("c", "a"), ("c", "b")]
    by_hand = [sp.ttest_rel([top1[x, s] for s in (0, 1, 2)], [top1[y, s] for s in (0, 1, 2)]).pvalue
               for x, y in (("b", "a"), ("c", "a"), ("c", "b"))]
    assert list(tests["p"]) == pytest.approx(by_hand)
    assert list(tests["p_holm"]) == pytest.approx(holm_by_hand(by_hand))
    contrast = tests.iloc[2]
    assert contrast["delta"] == pytest.approx(np.mean([top1["c", s] - top1["b", s] for s in (0, 1, 2)]))
    assert contrast["paper_delta"] == pytest.approx(81.7 - 81.2) and contrast["paper_target"] == "W16,I512"
    md = (out / "report.md").read_text()
    assert "| c / extrapolate vs b / extrapolate |" in md.replace("  ", " ").replace("  ", " ")


def test_paper_numbers_with_fine_tuning_only_compare_the_fine_tuned_cells_only(tmp_path):
    """``[null, with FT]`` (the paper's ADE20K columns of Swin V2 Table 1): the paper's Δ exists for the fine-tuned
    comparison only; the cell reads "— / 47.0" and the as-trained column stays empty."""
    folder = tmp_path / "ftonly"
    variants = {"a": {"model.relative": "table"}, "b": {"model.relative": "cpb_log"}}
    paper = {"table": "Swin V2 Table 1", "model": "Swin-T", "dataset": "ADE20K", "trained": "256:8",
             "rows": {"a": {"512:16": [None, 45.5]}, "b": {"512:16": [None, 47.0]}}}
    study = new_study(folder, "ftonly", {"variants": variants, "seeds": [0, 1, 2], "metrics": ["test.top1"],
                                         "baseline": "a", "transfer": {"targets": ["64:8"], "paper": paper,
                                                                       "finetune_epochs": 1}})
    for i, (v, s) in enumerate((v, s) for v in variants for s in (0, 1, 2)):
        add(study, COMPLETE, T0 + timedelta(minutes=i), **train_attrs(v, s, variants[v], record(70.0, s)))
        method = "bicubic" if v == "a" else "extrapolate"
        top1, ft = 40.0 + 3 * s + 5 * (v == "b"), 60.0 + 2 * s + (4 + 0.5 * s) * (v == "b")
        attrs = {"kind": "transfer", "cell": f"{v}|seed={s}|to=64:8|method={method}", "variant": v, "seed": s,
                 "method": method, "img_size": 64, "window_size": 8, "run_dir": f"runs/{v}-s{s}",
                 "finetune_epochs": 1, "result": {"top1": top1, "top5": 90.0, "loss": 1.0, "top1_ft": ft}}
        study.add_trial(optuna.trial.create_trial(state=COMPLETE, value=top1, user_attrs=attrs))
    out = build_report(folder)
    tests = pd.read_csv(out / "transfer_tests.csv", keep_default_na=False)
    without, with_ft = (tests[tests.finetuned == ft].iloc[0] for ft in (False, True))
    assert without["paper_delta"] == "" and without["reproduction"] == ""
    assert float(with_ft["paper_delta"]) == pytest.approx(1.5) and with_ft["delta"] == pytest.approx(4.5)
    table = md_table((out / "report.md").read_text(), "### Transfer (Swin V2 Table 1 layout)")
    paper_b = table[(table[""] == "paper") & (table["variant"] == "b")].iloc[0]
    assert paper_b["2×: ours W8,I64, paper W16,I512"] == "— / 47.0"
    assert paper_b["1× as trained: ours W4,I32, paper W8,I256"] == ""


# -- adaptive seeds in the report --------------------------------------------------------------------------

def make_adaptive_study(tmp_path, noise: float):
    folder = tmp_path / f"adaptive{noise}"
    rule = {"start": 3, "max": 6, "step": 2, "precision": 1.0}
    study = new_study(folder, "adaptive", {"variants": {"a": {}, "b": {}}, "seeds": rule, "baseline": "a",
                                           "metrics": ["test.top1"], "objective": "test.top1"})
    for i, s in enumerate(range(3)):
        add(study, COMPLETE, T0 + timedelta(minutes=i), **train_attrs("a", s, {}, record(60.0 + s, s)))
        b = 62.0 + s + noise * (-1) ** s * (s + 1)
        add(study, COMPLETE, T0 + timedelta(minutes=i + 5), **train_attrs("b", s, {}, record(b, s)))
    return folder


def test_adaptive_seeds_say_why_the_study_stopped_or_goes_on(tmp_path):
    folder = make_adaptive_study(tmp_path, 0.01)
    done = load_study(folder)
    assert done.seed_decision.state == "precision reached" and done.seeds == [0, 1, 2] and len(done.planned) == 6
    md = (build_report(folder) / "report.md").read_text()
    assert ("Seeds: two-stage (Stein 1945): 3 first, then N from each comparison's first-stage SD (max 6, precision "
            "1 on test.top1); now 0, 1, 2; every variant finished 3. The study stopped: precision reached") in md
    assert "Tests and intervals use the first-stage SD with 2 df, which keeps their level." in md
    folder = make_adaptive_study(tmp_path, 2.0)
    wide = load_study(folder)
    assert wide.seed_decision.state == "waiting" and wide.seeds == [0, 1, 2, 3, 4, 5]  # Stein: N from s0, capped
    assert set(wide.cells[wide.cells.status == "missing"][["variant", "seed"]].itertuples(index=False)) == {
        (v, s) for v in "ab" for s in (3, 4, 5)}
    md = (build_report(folder) / "report.md").read_text()
    assert "The study goes on: at 3 seeds (the first stage)" in md
    assert "waiting for 6 cells of seeds 0–5." in md


# -- files, CLI, bad input -----------------------------------------------------------------------------------

def test_figures_are_pngs_of_expected_size(quick_study):
    out = build_report(quick_study)
    names = {p.name for p in (out / "figures").iterdir()}
    assert names == {f"{m}.png" for m in METRICS} | {"learning_curves.png"}
    for name in names:
        assert assert_drawn(out / "figures" / name) == ((960, 600) if name == "learning_curves.png" else (1440, 600))
    md = (out / "report.md").read_text()
    assert "![test.top1](figures/test.top1.png)" in md and "![learning_curves](figures/learning_curves.png)" in md


def test_cli_report(quick_study, capsys):
    assert main(["report", str(quick_study)]) == 0
    printed = capsys.readouterr().out
    assert "report.md" in printed and "- **test.top1**" in printed and "noshift" in printed
    assert main(["report", str(quick_study.parent / "nope")]) == 2
    assert "no study at" in capsys.readouterr().err


def test_bad_sources(tmp_path):
    with pytest.raises(BadInput, match="no study at"):
        build_report(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BadInput, match="holds no study storage"):
        build_report(tmp_path / "empty")
    with pytest.raises(BadInput, match="does not exist"):
        build_report(f"sqlite:///{tmp_path / 'none.db'}")
    storage = journal(tmp_path / "failed.log")  # a study whose only trial failed
    study = optuna.create_study(study_name="failed", storage=storage)
    study.set_user_attr("spec", {"variants": {"a": {}}, "seeds": [0]})
    add(study, FAIL, T0, **train_attrs("a", 0, {}, error="boom"))
    with pytest.raises(BadInput, match="no finished cell"):
        build_report(tmp_path / "failed.log", out=tmp_path / "o")
    assert main(["report", str(tmp_path / "failed.log"), "--out", str(tmp_path / "o")]) == 2


def test_several_studies_need_a_name(tmp_path):
    url = f"sqlite:///{tmp_path / 'many.db'}"
    for name in ("alpha", "beta"):
        study = optuna.create_study(study_name=name, storage=url)
        study.set_user_attr("spec", {"variants": {"a": {}, "b": {}}, "seeds": [0, 1], "metrics": ["test.top1"]})
        for i, (v, s) in enumerate([("a", 0), ("a", 1), ("b", 0), ("b", 1)]):
            add(study, COMPLETE, T0 + timedelta(minutes=i), **train_attrs(v, s, {}, record(60.0 + i, s)))
    with pytest.raises(BadInput, match="alpha, beta"):
        load_study(url)
    with pytest.raises(BadInput, match="no study named 'gamma'"):
        load_study(url, "gamma")
    out = build_report(url, study="beta", out=tmp_path / "beta")
    cells = pd.read_csv(out / "cells.csv", index_col="variant")
    assert cells.loc["b", "test.top1 mean"] == pytest.approx(62.5)
    assert load_study(tmp_path / "many.db", "alpha").name == "alpha"


def test_factorial_rows_found_by_their_switches(tmp_path):
    """A trial named differently from the spec's factor names still lands in its cell, via its overrides;
    a trial without report attrs is ignored."""
    factors = {"model.shift": ["cyclic", "none"]}
    study = optuna.create_study(study_name="f1", storage=journal(tmp_path / "f1.log"))
    study.set_user_attr("spec", {"factors": factors, "seeds": [0, 1], "metrics": ["test.top1"]})
    for i, (shift, seed, top1) in enumerate([("cyclic", 0, 70.0), ("cyclic", 1, 71.0), ("none", 0, 66.0)]):
        add(study, COMPLETE, T0 + timedelta(minutes=i),
            **train_attrs(f"shift={shift}", seed, {"model.shift": shift}, record(top1, seed)))
    study.add_trial(optuna.trial.create_trial(state=COMPLETE, value=1.0, user_attrs={}))  # foreign trial: ignored
    data = load_study(tmp_path / "f1.log")
    assert data.variants == ["model.shift=cyclic", "model.shift=none"]
    assert data.runs.set_index(["variant", "seed"]).loc[("model.shift=none", 0), "test.top1"] == 66.0
    status = data.cells.set_index(["variant", "seed"])["status"]
    assert status[("model.shift=none", 1)] == "missing"


def test_three_factors_average_over_the_third(tmp_path):
    """2 x 2 x 2: main effects average over both other factors, two-way interactions over the third; cell means
    as one row per cell."""
    factors = {"model.shift": ["cyclic", "none"], "model.norm": ["pre", "res_post"],
               "model.attention": ["dot", "cosine"]}
    folder = tmp_path / "three"
    study = new_study(folder, "three", {"factors": factors, "seeds": [0, 1, 2], "metrics": ["test.top1"]})
    rng = np.random.default_rng(5)
    y, i = {}, 0
    for a in factors["model.shift"]:
        for b in factors["model.norm"]:
            for c in factors["model.attention"]:
                for s in (0, 1, 2):
                    y[a, b, c, s] = 60 + 2 * (a == "none") - 1.5 * (c == "cosine") + 4 * (a == "none") * (
                        b == "res_post") + float(rng.normal(0, 0.3))
                    add(study, COMPLETE, T0 + timedelta(minutes=i), **train_attrs(
                        f"model.shift={a},model.norm={b},model.attention={c}", s,
                        {"model.shift": a, "model.norm": b, "model.attention": c}, record(y[a, b, c, s], s)))
                    i += 1
    out = build_report(folder)
    effects = pd.read_csv(out / "effects.csv", keep_default_na=False).set_index(["effect", "term", "at"])
    seeds = (0, 1, 2)
    attention = [np.mean([y[a, b, "cosine", s] - y[a, b, "dot", s] for a in factors["model.shift"]
                          for b in factors["model.norm"]]) for s in seeds]
    assert effects.loc[("main", "model.attention", ""), "estimate"] == pytest.approx(np.mean(attention))
    shift_norm = [np.mean([(y["none", "res_post", c, s] - y["cyclic", "res_post", c, s])
                           - (y["none", "pre", c, s] - y["cyclic", "pre", c, s]) for c in ("dot", "cosine")])
                  for s in seeds]
    inter = effects.loc[("interaction", "model.shift × model.norm", "")]
    assert inter["estimate"] == pytest.approx(np.mean(shift_norm)) and inter["verdict"] == "resolved"
    simple = [np.mean([y["none", "res_post", c, s] - y["cyclic", "res_post", c, s] for c in ("dot", "cosine")])
              for s in seeds]
    assert effects.loc[("simple", "model.shift", "model.norm=res_post"), "estimate"] == pytest.approx(np.mean(simple))
    md = (out / "report.md").read_text()
    means = md_table(md, "Cell means of test.top1")
    assert list(means.columns) == ["shift", "norm", "attention", "test.top1"] and len(means) == 8


# -- issue 28: equivalence, small n and bimodal differences, uninformative designs, the Setting section -------

def _simple_study(folder, name: str, values: dict, spec_extra: dict | None = None, classes: int = 10):
    """Variants with per-seed test top-1 (the first one is the baseline)."""
    spec = {"variants": {v: {} for v in values}, "seeds": list(range(len(next(iter(values.values()))))),
            "baseline": next(iter(values)), "metrics": ["test.top1"], "alpha": 0.05, **(spec_extra or {})}
    study = new_study(folder, name, spec)
    for i, (variant, seeds) in enumerate(values.items()):
        for seed, top1 in enumerate(seeds):
            add(study, COMPLETE, T0 + timedelta(minutes=10 * i + seed),
                **train_attrs(variant, seed, {}, record(top1, seed), classes=classes))
    return folder


def test_equivalence_verdict_from_the_specs_margin(tmp_path):
    base = [70.0, 72.0, 69.0, 71.0, 70.5, 71.5]
    values = {"base": base, "same": [b + e for b, e in zip(base, (0.1, -0.1, 0.05, 0.0, -0.05, 0.1))],
              "far": [b + 3 + e for b, e in zip(base, (0.2, -0.2, 0.1, 0.0, 0.1, -0.1))]}
    out = build_report(_simple_study(tmp_path / "eq", "eq", values, {"margin": 0.5}))
    cells = pd.read_csv(out / "cells.csv", index_col="variant")
    d = np.array(values["same"]) - np.array(base)
    se = d.std(ddof=1) / math.sqrt(len(d))
    tost = max(sp.t.sf((d.mean() + 0.5) / se, len(d) - 1), sp.t.cdf((d.mean() - 0.5) / se, len(d) - 1))
    assert tost <= 0.05 and cells.loc["same", "test.top1 tost_p"] == pytest.approx(tost)
    assert cells.loc["same", "test.top1 verdict"] == "equivalent" and cells.loc["far", "test.top1 verdict"] == "better"
    md = (out / "report.md").read_text()
    table = md_table(md, "### test.top1").set_index("variant")
    assert table.loc["same", "verdict"] == "equivalent (within ±0.5)"
    assert "equivalent within ±0.5 (TOST, α = 0.05): same" in md
    # without a margin in the spec: no equivalence verdict, and the report says so
    out = build_report(_simple_study(tmp_path / "noeq", "noeq", values))
    cells = pd.read_csv(out / "cells.csv", index_col="variant")
    assert cells.loc["same", "test.top1 verdict"] == "not resolved"
    assert math.isnan(cells.loc["same", "test.top1 tost_p"])
    assert "No equivalence verdict: the spec gives no smallest effect of interest (margin)." in (
        out / "report.md").read_text()


def test_bimodal_differences_and_the_exact_test_at_five_seeds(tmp_path):
    """Dense Table 4's 'w/o shifting' per-seed Δ: -20, -78, -79, -79, -79. The t-test resolves it; the exact
    sign-flip test cannot go below 2/2^5 = 0.0625; the report warns and says how many seeds fell on each side."""
    base = [88.0, 87.0, 89.0, 88.5, 87.5]
    values = {"base": base, "noshift": [b + d for b, d in zip(base, (-20.0, -78.0, -79.0, -79.0, -79.0))]}
    out = build_report(_simple_study(tmp_path / "bi", "bi", values))
    cells = pd.read_csv(out / "cells.csv", index_col="variant")
    assert cells.loc["noshift", "test.top1 verdict"] == "worse"
    assert cells.loc["noshift", "test.top1 sign_flip_p"] == pytest.approx(2 / 32)
    assert cells.loc["noshift", "test.top1 sign_flip_min_p"] == pytest.approx(2 / 32)
    assert cells.loc["noshift", "test.top1 bimodal"] == "4/1"
    md = (out / "report.md").read_text()
    table = md_table(md, "### test.top1").set_index("variant")
    assert table.loc["noshift", "sign-flip p"] == (
        "0.062 (min 0.062: cannot reach α = 0.05 at this n); bimodal: 4 / 1 seeds")
    line = next(ln for ln in md.splitlines() if ln.startswith("- **test.top1**"))
    assert ("Warning: noshift: the per-seed differences are bimodal (4 seeds at Δ ≈ -78.75, 1 at Δ ≈ -20.00: some "
            "seeds learned and some did not)") in line
    assert ("at n = 5 the exact sign-flip test cannot go below 0.062 (> α): the verdict rests on the normal "
            "model") in line


def test_an_uninformative_design_and_intervals_clipped_to_the_range(tmp_path):
    # two seeds, differences -40 and +40: se 40, df 1; the 80%-power effect is far beyond 100 points
    values = {"base": [50.0, 50.0], "wild": [10.0, 90.0]}
    out = build_report(_simple_study(tmp_path / "wild", "wild", values))
    cells = pd.read_csv(out / "cells.csv", index_col="variant")
    x = detectable_by_hand([-40.0, 40.0], 1)
    assert x > 100 and cells.loc["wild", "test.top1 detectable"] == pytest.approx(x, rel=1e-4)
    table = md_table((out / "report.md").read_text(), "### test.top1").set_index("variant")
    assert table.loc["wild", "verdict"] == power_text(x) and "uninformative" in power_text(x)
    half = sp.t.ppf(0.975, 1) * 40.0
    assert half > 50 and cells.loc["wild", "test.top1 ci_high"] == pytest.approx(half)  # the CSV keeps the raw interval
    assert table.loc["wild", "Δ [95% CI] unadjusted"] == "+0.00 [-50.00, +50.00]"  # variant's mean within 0..100


def test_setting_section_beside_the_papers(tmp_path):
    out = build_report(make_known_study(tmp_path))
    md = (out / "report.md").read_text()
    setting = md.split("## Setting\n\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert setting[0] == "- **Model (ours)**: 0.137 M parameters, 7.1 M multiply-adds per image."
    # images per epoch measured from throughput x training time / epochs: median over the 20 runs of
    # (1500 + 10 seed) x 27 s / 4 epochs; seeds 0..3 in equal numbers: median of 10125, 10192.5, 10260, 10327.5
    images = np.median([(1500 + 10 * s) * 27 / 4 for s in range(4)])
    assert setting[1] == (f"- **Training (ours)**: 4 epochs x {images / 1e3:.3g} k training images per epoch "
                          f"(measured: throughput x training time / epochs) = {4 * images / 1e3:.3g} k images seen "
                          f"per run.")
    assert setting[2] == "- **Compute (ours)**: 0.15 h of training loops over 20 finished runs, on cpu (20 runs)."
    assert setting[3].startswith("- **Test set (ours)**: size not recorded")
    assert setting[4] == ("- **The paper's setting** (Swin V1 Table 4 (≥ 300 epochs, ± 0.1 %, é), Swin-T, "
                          "ImageNet-1K): Swin-T, 29 M parameters, 4.5 GFLOPs; 300 epochs x 1.28 M training images; "
                          "test set ImageNet-1K val, 50,000 images.")
    assert setting[5] == (f"- **Scale gap**: about 1/{29e6 / 137_000:.0f} of the paper's parameters, "
                          f"1/{300 * 1.28e6 / (4 * images):.0f} of its training images seen.")
