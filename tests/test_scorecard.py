"""``swin-lit scorecard``: one row per paper claim of the stored studies, with the verdicts their reports give."""

from pathlib import Path

import pandas as pd
import pytest
import scipy.stats as sp
from helpers.stored import KNOWN, make_known_study, md_table, new_study

from swin_lit.cli import main
from swin_lit.report.scorecard import BEGIN, END


def test_scorecard_rows_match_the_reports_verdicts(tmp_path, capsys):
    results = tmp_path / "results"
    make_known_study(results)  # results/known/study.log
    new_study(results / "empty", "empty", {"variants": {"a": {}}, "seeds": [0]})  # no finished cell
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\n## What reproduces here\n\n{BEGIN}\nold\n{END}\n\nafter\n")
    assert main(["scorecard", str(results), "--readme", str(readme)]) == 0
    text = (results / "scorecard.md").read_text()
    table = md_table(text, "# What reproduces here")
    # one row per paper row with an ordering, per metric with paper numbers (top-1: 3, top-5: 1 for 'big')
    top1 = table[table["metric"] == "test.top1"].set_index("claim")
    assert set(top1.index) == {f"{v} vs base ≥ 2×" for v in ("big ± é", "noisy_Δ % & #", "contra")}
    assert top1.loc["big ± é vs base ≥ 2×", "verdict"] == "agrees"
    assert top1.loc["contra vs base ≥ 2×", "verdict"] == "contradicts"
    assert top1.loc["noisy_Δ % & # vs base ≥ 2×", "verdict"] == "not resolved"
    # our Δ and interval, recomputed by hand (paired t over the 4 seeds)
    diffs = pd.Series(KNOWN["big ± é"]) - pd.Series(KNOWN["base ≥ 2×"])
    half = sp.t.ppf(0.975, len(diffs) - 1) * diffs.std(ddof=1) / len(diffs) ** 0.5
    assert top1.loc["big ± é vs base ≥ 2×", "ours Δ [95% CI]"] == (
        f"{diffs.mean():+.2f} [{diffs.mean() - half:+.2f}, {diffs.mean() + half:+.2f}]")
    assert "Swin V1 Table 4" in top1.loc["big ± é vs base ≥ 2×", "paper Δ (source)"]
    assert top1.loc["big ± é vs base ≥ 2×", "study"] == "[known](known/report.md)"
    assert text.splitlines()[2].startswith(
        "2 of 4 of the paper's orderings reproduced, 1 contradicted, the rest (1) unresolved (4 claims from 1 study;")
    assert "`" + str(results / "empty") + "` (study 'empty' has no finished cell yet" in text
    # the README section between the markers, links relative to the README
    body = readme.read_text()
    assert body.startswith("# x\n") and body.endswith(f"{END}\n\nafter\n") and "old" not in body
    assert "[known](results/known/report.md)" in body


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


def test_counterpart_rows_compare_the_effect_across_studies(tmp_path, capsys):
    """A study's ``counterpart:`` row: our effect (per-seed Δ to our baseline) minus the counterpart study's effect
    of the same change, Welch over the two studies' seeds (no pairing across data sets), beside the paper's
    difference of the two Δs; the verdict is the sign test of that interval."""
    from datetime import timedelta

    from helpers.stored import COMPLETE, PAPER, T0, add, record, train_attrs

    results = tmp_path / "results"
    make_known_study(results)
    dense = {"base": [40.0, 42.0, 41.0], "noshift": [34.1, 35.8, 35.2]}  # about -6 (known 'contra': about -4)
    spec = {"variants": {"base": {}, "noshift": {"model.shift": "none"}}, "seeds": [0, 1, 2], "baseline": "base",
            "metrics": ["test.top1"], "alpha": 0.05,
            "paper": {"table": "Swin V1 Table 4", "model": "Swin-T + UperNet", "dataset": "ADE20K",
                      "rows": {"base": {"top1": 46.1}, "noshift": {"top1": 43.3}}},
            "counterpart": {"study": "known", "rows": {"noshift": "contra"}}}
    study = new_study(results / "dense", "dense", spec)
    for i, (variant, values) in enumerate(dense.items()):
        for seed, top1 in enumerate(values):
            overrides = spec["variants"][variant]
            add(study, COMPLETE, T0 + timedelta(minutes=3 * i + seed),
                **train_attrs(variant, seed, overrides, record(top1, seed)))
    assert main(["scorecard", str(results)]) == 0
    table = md_table((results / "scorecard.md").read_text(), "# What reproduces here")
    row = table[table["claim"] == "effect of noshift here minus that of contra in known"].iloc[0]
    ours = [a - b for a, b in zip(dense["noshift"], dense["base"])]
    theirs = [a - b for a, b in zip(KNOWN["contra"], KNOWN["base ≥ 2×"])]
    test = sp.ttest_ind(ours, theirs, equal_var=False)
    diff = sum(ours) / 3 - sum(theirs) / 4
    low, high = test.confidence_interval(0.95)
    assert row["ours Δ [95% CI]"] == f"{diff:+.2f} [{low:+.2f}, {high:+.2f}] (Welch)"
    paper = (43.3 - 46.1) - (PAPER["rows"]["contra"]["top1"] - PAPER["rows"]["base ≥ 2×"]["top1"])
    assert row["paper Δ (source)"].startswith(f"{paper:+.2f} (Swin V1 Table 4, Swin-T + UperNet, ADE20K minus")
    assert test.pvalue < 0.05 and diff < 0 and paper < 0 and row["verdict"] == "agrees"
    assert row["metric"] == "test.top1 - test.top1" and "n=3 and 4 seeds" in row["data, model, seeds"]
    # a counterpart that is not among the studies read gives no row and says why
    study.set_user_attr("spec", {"name": "dense", **spec, "counterpart": {"study": "gone", "rows": {"noshift": "x"}}})
    assert main(["scorecard", str(results)]) == 0
    text = (results / "scorecard.md").read_text()
    assert "no counterpart rows: its counterpart study 'gone' is not among the studies read" in text


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
