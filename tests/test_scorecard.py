"""``swin-lit scorecard``: one row per paper claim of the stored studies, with the verdicts their reports give."""

import pandas as pd
import pytest
import scipy.stats as sp
from test_report import KNOWN, make_known_study, md_table, new_study

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
