"""``swin-lit scorecard`` and its rules, recomputed by hand on small synthetic result sets: each reproduction
verdict (including untestable and within the paper's noise), the mechanism checks kept apart, one row per distinct
measurement, Benjamini-Hochberg across the reproductions, the section headlines."""

import math
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
import scipy.stats as sp
from helpers.stored import COMPLETE, KNOWN, T0, add, make_known_study, md_table, new_study, record, train_attrs

from swin_lit.cli import main
from swin_lit.report import reproduction as rp
from swin_lit.report.scorecard import BEGIN, END

# -- the verdict rules ----------------------------------------------------------------------------------------


def test_binomial_half_width_of_the_papers_test_sets():
    # ImageNet-1K val, 50,000 images at 81%: 1.96 sqrt(0.81 x 0.19 / 50,000) = 0.344 points
    assert rp.binomial_half_width(81.0, 50_000) == pytest.approx(1.959964 * math.sqrt(0.81 * 0.19 / 50_000) * 100)
    assert rp.binomial_half_width(81.0, 50_000) == pytest.approx(0.344, abs=5e-4)
    # ADE20K val, 2,000 images at 46.1% (mIoU read as a proportion over images): 2.18 points
    assert rp.binomial_half_width(46.1, 2_000) == pytest.approx(2.185, abs=5e-3)


@pytest.mark.parametrize("paper, est, low, high, resolved, why, expected", [
    (-1.1, -2.0, -3.0, -1.0, True, None, rp.AGREES),
    (+1.2, -4.0, -4.5, -3.5, True, None, rp.CONTRADICTS),
    (-2.8, +0.01, -0.16, +0.17, False, None, rp.SMALLER),  # holds 0, excludes the paper's Δ on zero's side
    (+2.8, -0.2, -0.9, +1.0, False, None, rp.SMALLER),
    (-1.1, -0.5, -1.7, +0.7, False, None, rp.CONSISTENT),  # holds 0 and the paper's Δ
    (-1.1, -2.0, -3.0, -0.5, False, None, rp.NOT_RESOLVED),  # excludes 0 but the family did not resolve it
    (+0.1, -3.1, -4.7, -1.6, True, None, rp.WITHIN_NOISE),  # |0.1| <= 0.34: no ordering to contradict
    (0.0, +1.0, +0.5, +1.5, True, None, rp.WITHIN_NOISE),
    (+0.5, +0.01, -0.02, +0.04, False, "ceiling", "untestable (ceiling)"),
])
def test_each_reproduction_verdict(paper, est, low, high, resolved, why, expected):
    assert rp.reproduction_verdict(paper, 0.34, est, low, high, resolved, why) == expected


def test_mechanism_verdicts_and_untestable_reasons():
    assert rp.mechanism_verdict(-1.1, 0.34, "worse", True) == rp.AS_DESIGNED
    assert rp.mechanism_verdict(-1.1, 0.34, "better", True) == rp.NOT_AS_DESIGNED
    assert rp.mechanism_verdict(-1.1, 0.34, "not resolved", True) == rp.NOT_RESOLVED
    assert rp.mechanism_verdict(+0.1, 0.34, "worse", True) == rp.NO_EXPECTATION
    assert rp.mechanism_verdict(+1.0, 0.34, "worse", False) == rp.AS_DESIGNED  # lower-is-better metric
    assert rp.untestable_reason("top1", 99.8, 100.0) == "ceiling"
    assert rp.untestable_reason("top1", 99.4, 100.0) is None
    assert rp.untestable_reason("top1", 10.2, 10.4, chance=10.0) == "floor"
    assert rp.untestable_reason("miou", 0.3, 0.1) == "floor"
    assert rp.untestable_reason("top1", 60.0, 70.0, converged=False) == "not converged"
    assert rp.untestable_reason("loss", 0.0, 0.0) is None


# -- the scorecard of stored studies -------------------------------------------------------------------------


def test_reproductions_get_bh_across_the_section_and_their_verdicts(tmp_path, capsys):
    results = tmp_path / "results"
    make_known_study(results)  # natural data (no embedded source): reproductions
    new_study(results / "empty", "empty", {"variants": {"a": {}}, "seeds": [0]})  # no finished cell
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\n## What reproduces here\n\n{BEGIN}\nold\n{END}\n\nafter\n")
    assert main(["scorecard", str(results), "--readme", str(readme)]) == 0
    text = (results / "scorecard.md").read_text()
    table = md_table(text, "## Reproductions on natural data")
    table["key"] = table["claim"] + " | " + table["metric"]
    table = table.set_index("key")
    base = np.array(KNOWN["base ≥ 2×"])
    diffs = {v: np.array(KNOWN[v]) - base for v in ("big ± é", "noisy_Δ % & #", "contra")}
    # the testable family: big, noisy, contra on top-1 and big on top-5 (top-5 = top-1 + 11.5 here: same Δ);
    # 'same' (paper Δ 0) is exploratory
    p = [sp.ttest_1samp(diffs[v], 0).pvalue for v in ("big ± é", "noisy_Δ % & #", "contra")]
    p.append(p[0])
    order = np.argsort(p)
    q = np.empty(4)
    running = 1.0
    for rank in range(4, 0, -1):  # step-up: q_(k) = min over j >= k of m p_(j) / j
        i = order[rank - 1]
        running = min(running, 4 * p[i] / rank)
        q[i] = running
    rows = ["big ± é vs base ≥ 2× | test.top1", "noisy_Δ % & # vs base ≥ 2× | test.top1",
            "contra vs base ≥ 2× | test.top1", "big ± é vs base ≥ 2× | test.top5"]
    assert len(table) == 4
    for row, qi, pi in zip(rows, q, p):
        assert table.loc[row, "BH q"] == (f"{qi:.3f}" if qi >= 0.001 else "<0.001")
        assert table.loc[row, "p"] == (f"{pi:.3f}" if pi >= 0.001 else "<0.001")
    assert table.loc[rows[0], "verdict"] == "agrees" and table.loc[rows[3], "verdict"] == "agrees"
    assert table.loc[rows[2], "verdict"] == "contradicts"
    d = diffs["noisy_Δ % & #"]
    half = sp.t.ppf(0.975, 3) * d.std(ddof=1) / 2
    assert d.mean() - half < -1.3 < 0 < d.mean() + half and q[1] > 0.05
    assert table.loc[rows[1], "verdict"] == "consistent with both"
    assert table.loc[rows[1], "ours Δ [95% CI, unadjusted]"] == (
        f"{d.mean():+.2f} [{d.mean() - half:+.2f}, {d.mean() + half:+.2f}]")
    # the paper's Δ and its size relative to the paper's number
    assert table.loc[rows[0], "paper Δ (relative) [source]"].startswith(f"+0.70 (+{100 * 0.7 / 81.3:.1f}% of 81.3)")
    head = text.split("## Reproductions on natural data\n\n", 1)[1].splitlines()[0]
    assert head == ("Reproductions on natural data: agrees 2, contradicts 1, consistent with both 1 (of 4 claims) "
                    "from 1 study; agrees / contradicts at Benjamini-Hochberg q ≤ 0.05, family: the 4 testable "
                    "reproductions of this section (untestable ones are not tests).")
    # 'same': the paper's Δ is 0, exploratory, no verdict
    expl = md_table(text, "## Exploratory")
    assert list(expl["claim"]) == ["same vs base ≥ 2×"] and "verdict" not in expl.columns
    assert "Exploratory (1 row, no verdicts counted)" in text
    assert "Mechanism checks (embedded tasks built to need the switches; not reproductions): behaves as designed " \
           "0 of 0 (0 checks from 0 studies" in text
    assert "`" + str(results / "empty") + "` (study 'empty' has no finished cell yet" in text
    body = readme.read_text()
    assert body.startswith("# x\n") and body.endswith(f"{END}\n\nafter\n") and "old" not in body
    assert "[known](results/known/report.md)" in body


def _marks_study(folder, name: str, values: dict, hashes: bool = True, extra: dict | None = None):
    """A study on the embedded anchor marks (a mechanism task) with per-(variant, seed) config hashes."""
    spec = {"variants": {v: {} for v in values}, "seeds": [0, 1, 2], "baseline": next(iter(values)),
            "metrics": ["test.top1"], "alpha": 0.05,
            "paper": {"table": "Swin V1 Table 4", "model": "Swin-T", "dataset": "ImageNet-1K",
                      "rows": {"base": {"top1": 81.3}, "noshift": {"top1": 80.2}, "abs": {"top1": 80.5},
                               "tiny": {"top1": 81.4}, **(extra or {})}}}
    study = new_study(folder, name, spec)
    for i, (variant, seeds) in enumerate(values.items()):
        for seed, top1 in enumerate(seeds):
            result = record(top1, seed)
            result["config_hash"] = f"{variant}-{seed}" if hashes else "same"
            attrs = train_attrs(variant, seed, {}, result, classes=12)
            attrs["config"]["data"] = {"source": "marks", "train_size": 4000, "test_size": 1000}
            add(study, COMPLETE, T0 + timedelta(minutes=3 * i + seed), **attrs)
    return folder


MARKS = {"base": [99.8, 99.9, 99.8], "noshift": [50.1, 49.2, 50.8], "abs": [99.1, 97.5, 99.6],
         "tiny": [99.7, 99.9, 99.8]}


def test_mechanism_checks_apart_and_shared_runs_counted_once(tmp_path):
    from swin_lit.report.scorecard import EXPLORATORY, scorecard

    results = tmp_path / "results"
    _marks_study(results / "quick", "quick", MARKS)
    _marks_study(results / "table4", "table4", {k: MARKS[k] for k in ("base", "noshift")})  # the same cells
    card = scorecard(results)
    mech = card.section(rp.MECHANISM)
    by_claim = {r.claim: r for r in mech}
    # noshift vs base is one measurement in both studies: one row listing both
    assert by_claim["noshift vs base"].studies == ("quick", "table4")
    assert by_claim["noshift vs base"].verdict == rp.AS_DESIGNED  # resolved worse, as the paper's -1.1
    assert by_claim["abs vs base"].verdict == rp.NOT_RESOLVED
    assert len(mech) == 2 and not card.section(rp.REPRODUCTION)
    # tiny: paper +0.1 within ImageNet's noise: exploratory, no verdict
    assert [r.claim for r in card.section(EXPLORATORY)] == ["tiny vs base"]
    from swin_lit.report.scorecard import headlines

    assert headlines(card)[rp.MECHANISM].startswith(
        "Mechanism checks (embedded tasks built to need the switches; not reproductions): behaves as designed 1 of "
        "2; not resolved 1 (2 checks from 2 studies")
    assert headlines(card)[rp.REPRODUCTION].startswith("Reproductions on natural data: none (of 0 claims)")


def test_untestable_reproduction_is_kept_out_of_the_bh_family(tmp_path):
    """On natural data: both means at the ceiling -> untestable (ceiling), no q; the other claim alone is the
    family (q = p)."""
    from swin_lit.report.scorecard import scorecard

    results = tmp_path / "results"
    folder = results / "nat"
    spec = {"variants": {"base": {}, "abs": {}, "noshift": {}}, "seeds": [0, 1, 2], "baseline": "base",
            "metrics": ["test.top1"], "alpha": 0.05,
            "paper": {"table": "Swin V1 Table 4", "model": "Swin-T", "dataset": "ImageNet-1K",
                      "rows": {"base": {"top1": 81.3}, "abs": {"top1": 80.5}, "noshift": {"top1": 80.2}}}}
    study = new_study(folder, "nat", spec)
    values = {"base": [99.8, 99.9, 99.7], "abs": [99.6, 99.9, 99.8], "noshift": [97.0, 96.1, 96.4]}
    for i, (v, seeds) in enumerate(values.items()):
        for s, top1 in enumerate(seeds):
            add(study, COMPLETE, T0 + timedelta(minutes=3 * i + s), **train_attrs(v, s, {}, record(top1, s)))
    card = scorecard(results)
    rows = {r.claim: r for r in card.section(rp.REPRODUCTION)}
    assert rows["abs vs base"].verdict == "untestable (ceiling)" and math.isnan(rows["abs vs base"].q)
    d = np.array(values["noshift"]) - np.array(values["base"])
    p = sp.ttest_1samp(d, 0).pvalue
    assert rows["noshift vs base"].q == pytest.approx(p) and rows["noshift vs base"].verdict == rp.AGREES


def test_counterpart_rows_are_not_scored(tmp_path, capsys):
    results = tmp_path / "results"
    make_known_study(results)
    spec = {"variants": {"base": {}, "noshift": {"model.shift": "none"}}, "seeds": [0, 1, 2], "baseline": "base",
            "metrics": ["test.top1"], "alpha": 0.05,
            "paper": {"table": "Swin V1 Table 4", "model": "Swin-T + UperNet", "dataset": "ADE20K",
                      "rows": {"base": {"top1": 46.1}, "noshift": {"top1": 43.3}}},
            "counterpart": {"study": "known", "rows": {"noshift": "contra"}}}
    study = new_study(results / "dense", "dense", spec)
    for i, (v, vals) in enumerate({"base": [40.0, 42.0, 41.0], "noshift": [34.1, 35.8, 35.2]}.items()):
        for s, top1 in enumerate(vals):
            add(study, COMPLETE, T0 + timedelta(minutes=3 * i + s),
                **train_attrs(v, s, spec["variants"][v], record(top1, s)))
    assert main(["scorecard", str(results)]) == 0
    text = (results / "scorecard.md").read_text()
    assert "minus" not in md_table(text, "## Reproductions on natural data")["claim"].str.cat()
    assert "its counterpart: rows (a cross-study difference of effects in different units on different data) are " \
           "not scored" in text


def test_scorecard_of_a_missing_folder_is_bad_input(tmp_path, capsys):
    assert main(["scorecard", str(tmp_path / "nope")]) == 2
    assert "not a folder of studies" in capsys.readouterr().err


@pytest.mark.parametrize("markers", ["", BEGIN])
def test_scorecard_readme_without_markers_is_bad_input(tmp_path, capsys, markers):
    make_known_study(tmp_path / "results")
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n{markers}\n")
    assert main(["scorecard", str(tmp_path / "results"), "--readme", str(readme)]) == 2
    assert "no scorecard markers" in capsys.readouterr().err and readme.read_text() == f"# x\n{markers}\n"


@pytest.mark.parametrize("counterpart, named", [
    ({"study": "quick", "rows": {"nope": "x"}}, "counterpart.rows.nope: unknown variant"),
    ({"study": "quick", "rows": {"abs": "x"}}, "counterpart.rows.abs: needs the paper's own number"),
    ({"rows": {"noshift": "x"}}, "counterpart.study: must name the counterpart study"),
    ({"study": "quick", "rows": {}}, "counterpart.rows: must map at least one"),
])
def test_bad_counterpart_blocks_fail_before_any_work(tmp_path, counterpart, named):
    import yaml

    from swin_lit.ablate.spec import load_plan
    from swin_lit.typed import ConfigError

    base = Path(__file__).resolve().parents[1] / "configs" / "default.yaml"
    spec = {"name": "s", "base": str(base), "variants": {"base": {}, "noshift": {"model.shift": "none"},
                                                         "abs": {"model.absolute": "learned"}},
            "paper": {"table": "T", "model": "M", "dataset": "D", "rows": {"base": {"top1": 1.0},
                                                                          "noshift": {"top1": 0.5}}},
            "counterpart": counterpart}
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    with pytest.raises(ConfigError, match=named):
        load_plan(path)


def test_a_spec_changed_after_results_is_listed_and_marked(tmp_path):
    """The driver's ``spec_history`` (a stored study's spec changed after results were seen) is listed in the
    report and marks the study's rows in the scorecard."""
    import optuna
    from helpers.stored import journal

    from swin_lit.report.build import build_report
    from swin_lit.report.scorecard import markdown, scorecard

    results = tmp_path / "results"
    folder = make_known_study(results)
    study = optuna.load_study(study_name="known", storage=journal(folder / "study.log"))
    study.set_user_attr("spec_history", [{"changed_at": "2026-12-01T23:33:25Z", "finished_cells": 12,
                                          "changes": {"seeds.max": [5, 8]}}])
    md = (build_report(folder) / "report.md").read_text()
    assert ("**History: the spec was changed after results were seen** (2026-12-01T23:33:25Z, after 12 finished "
            "cells: seeds.max 5 → 8).") in md
    text = markdown(scorecard(results))
    assert "[known](known/report.md) †" in text and "† the study's spec was changed after results were seen" in text
