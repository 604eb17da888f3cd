"""``swin-lit power``: the simulated design against hand computations (noncentral-t power of a fixed design,
the two-stage seed counts at extreme SDs, Holm's vectorised rejections), the false-positive rate of a real
spec, cell times from an earlier study, and bad input."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from swin_lit import stats
from swin_lit.ablate import power
from swin_lit.ablate.spec import read_spec
from swin_lit.cli import main

ROOT = Path(__file__).resolve().parents[1]
CIFAR = ROOT / "ablations" / "cifar10_shift_position.yaml"


def spec_file(tmp_path: Path, **fields) -> Path:
    plain = {"name": "pw", "base": "configs/default.yaml", "variants": {"a": {}, "b": {"model.shift": "none"}},
             "seeds": [0, 1, 2, 3, 4], "objective": "test.top1", **fields}
    path = tmp_path / "pw.yaml"
    path.write_text(yaml.safe_dump(plain))
    return path


def run_json(capsys, *args) -> dict:
    assert main(["power", *map(str, args), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_the_cifar10_spec_keeps_its_false_positive_rate(capsys):
    studies = 2000
    out = run_json(capsys, CIFAR, "--sd", 1.0, "--effect", 0, "--studies", studies)
    (row,) = out["effects"]
    bound = 0.05 + 3 * math.sqrt(0.05 * 0.95 / studies)
    assert row["effect"] == 0 and row["resolved"] <= bound and row["familywise_false_positive"] <= bound
    assert out["family"] == 3 and out["variants"] == 4 and out["seeds"]["rule"] == "two-stage"
    assert 3 <= row["seeds_mean"] <= row["seeds_max"] <= 5 and row["cells_max"] == 4 * row["seeds_max"]


def test_a_listed_design_matches_the_noncentral_t_power(tmp_path, capsys):
    """Two variants, 5 listed seeds, one comparison (Holm = the t-test): the simulated share resolved is the
    exact power P(|T| > t(0.975, 4)) of a noncentral t with delta = D sqrt(5) / S, and the 80% effect is
    ``stats.detectable_effect``."""
    studies, sd = 6000, 2.0
    out = run_json(capsys, spec_file(tmp_path), "--sd", sd, "--effect", 0, "--effect", 3.0, "--studies", studies,
                   "--cell-time", 60)
    se = sd / math.sqrt(5)
    for row in out["effects"]:
        exact = stats.power(row["effect"], se, 4, 0.05) if row["effect"] else 0.05
        if row["effect"]:  # the right sign only: the wrong-sign tail is below 1e-4 here
            exact -= row["wrong_sign"]
        assert abs(row["resolved"] - exact) <= 3.5 * math.sqrt(exact * (1 - exact) / studies), (row, exact)
        assert row["seeds_mean"] == row["seeds_max"] == 5 and row["cells_max"] == 10
        assert row["compute_hours_max"] == pytest.approx(10 * 60 / 3600)
    assert out["detectable_80"] == pytest.approx(stats.detectable_effect(se, 4, 0.05), rel=0.04)


def test_two_stage_seed_counts_at_extreme_sds(tmp_path):
    spec = read_spec(spec_file(tmp_path, seeds={"start": 3, "max": 7, "step": 1, "precision": 1.0}))
    design = power.design_of(spec)
    noise = power.Noise.draw(design, 500, 0)
    n, _ = power.simulate(design, noise, 0.01, 0.0)  # N = start: (4.3 * 0.01 / 1)^2 < 3
    assert set(n) == {3}
    n, _ = power.simulate(design, noise, 100.0, 0.0)  # N = max
    assert set(n) == {7}
    # in between: each study's N is the hand formula on its first-stage SD
    n, _ = power.simulate(design, noise, 0.5, 0.0)
    diffs = 0.5 / math.sqrt(2) * (noise.own - noise.base)
    s0 = diffs[:, 0, :3].std(axis=1, ddof=1)
    by_hand = [min(7, max(3, math.ceil((4.302652729911275 * s / 1.0) ** 2 - 1e-9))) for s in s0]
    assert list(n) == by_hand


def test_holm_reject_matches_holm():
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 0.1, size=(300, 4))
    fast = stats.holm_reject(p, 0.05)
    for row, got in zip(p, fast):
        assert list(got) == [q <= 0.05 for q in stats.holm(list(row))]


def test_cell_time_from_an_earlier_study(tmp_path, capsys):
    study = tmp_path / "earlier"
    study.mkdir()
    (study / "runs.csv").write_text("variant,seed,wall_time_s,state\na,0,100,COMPLETE\nb,0,300,COMPLETE\n"
                                    "a,1,200,COMPLETE\nb,1,9999,FAIL\n")
    out = run_json(capsys, spec_file(tmp_path), "--sd", 1, "--effect", 1, "--studies", 200, "--study", study)
    assert out["cell_time_s"] == 200 and "median wall_time_s of 3 cells" in out["cell_time_source"]
    assert out["effects"][0]["compute_hours_mean"] == pytest.approx(10 * 200 / 3600)
    text_args = ["power", str(spec_file(tmp_path)), "--sd", "1", "--studies", "200"]
    assert main(text_args) == 0  # no earlier study and no --cell-time: unknown, said so
    text = capsys.readouterr().out
    assert "cell time: unknown" in text and "unknown" in text.splitlines()[3]
    assert "80% power for |Δ| ≥" in text


@pytest.mark.parametrize("args, message", [
    (["--sd", "-1"], "--sd: must be a number > 0"),
    (["--sd", "1", "--studies", "10"], "--studies: must be >= 100"),
    (["--sd", "1", "--effect", "nan"], "--effect: must be finite"),
    (["--sd", "1", "--study", "/nonexistent/folder"], "--study: no runs.csv"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, args, message):
    assert main(["power", str(spec_file(tmp_path)), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_bad_specs_exit_2(tmp_path, capsys):
    assert main(["power", str(spec_file(tmp_path, variants={"a": {}})), "--sd", "1"]) == 2
    assert "one variant only" in capsys.readouterr().err
    assert main(["power", str(spec_file(tmp_path, seeds=[0])), "--sd", "1"]) == 2
    assert "a paired test needs at least 2" in capsys.readouterr().err
    r = subprocess.run([sys.executable, "-m", "swin_lit.cli", "power", str(tmp_path / "missing.yaml"), "--sd", "1"],
                       capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and r.stdout == ""


def test_ablate_dry_run_prints_the_power_table(tmp_path, capsys):
    spec = ROOT / "ablations" / "quick.yaml"
    assert main(["ablate", str(spec), "--dry-run", "--sd", "0.5", "--out", str(tmp_path / "q")]) == 0
    text = capsys.readouterr().out
    assert "power of quick: 5 listed seeds; Holm over 3 comparisons" in text
    assert "this design has 80% power for |Δ| ≥" in text and not (tmp_path / "q").exists()
    assert main(["ablate", str(spec), "--sd", "0.5", "--out", str(tmp_path / "q")]) == 2
    assert "--sd is for --dry-run" in capsys.readouterr().err
