"""Reports from a hand-built study storage: numbers against a recomputation, duplicates, failures, files."""

from __future__ import annotations

import math
import re
import struct
from datetime import datetime, timedelta

import numpy as np
import optuna
import pandas as pd
import pytest
from scipy import stats

from swin_lit.cli import BadInput, main
from swin_lit.report.build import build_report
from swin_lit.report.data import load_study

optuna.logging.set_verbosity(optuna.logging.WARNING)
T0 = datetime(2026, 1, 1, 12, 0, 0)
METRICS = ["test.top1", "test.top5", "test.loss", "test.ece"]


def record(top1: float, seed: int, epochs: int = 4, params: int = 137_000) -> dict:
    """A realistic result.json (see swin_lit.record)."""
    loss = 2.5 - top1 / 50
    return {
        "val": {"top1": top1 + 0.5, "top5": min(99.9, top1 + 12), "loss": loss - 0.02, "ece": 0.05 - top1 / 4000},
        "test": {"top1": top1, "top5": min(99.9, top1 + 11.5), "loss": loss, "ece": 0.06 - top1 / 4000},
        "params": params, "flops": 7_100_000, "train_images_per_s": 1500.0 + 10 * seed, "eval_images_per_s": 3700.0,
        "wall_time_s": 31.0, "train_time_s": 27.0, "epochs": epochs, "seed": seed, "config_hash": "c0ffee",
        "versions": {"torch": "2.13.0", "optuna": "5.0.0", "lightning": "2.6.6"}, "git": "abc1234", "device": "cpu",
        "history": [
            {"epoch": e, "train_loss": 2.3 - 0.4 * e, "val_loss": 2.2 - 0.35 * e, "val_top1": top1 * (e + 1) / epochs}
            for e in range(epochs)
        ],
    }


def add(study, state, when: datetime, **attrs) -> None:
    trial = optuna.trial.create_trial(
        state=state, value=attrs["result"]["test"]["top1"] if state == optuna.trial.TrialState.COMPLETE else None,
        user_attrs=attrs,
    )
    trial.datetime_start = when - timedelta(seconds=30)
    trial.datetime_complete = when
    study.add_trial(trial)


def train_attrs(variant: str, seed: int, overrides: dict, result: dict | None = None, error: str | None = None):
    attrs = {"kind": "train", "cell": f"{variant}|seed={seed}", "variant": variant, "seed": seed,
             "overrides": overrides, "run_dir": f"runs/{variant}-s{seed}"}
    if result is not None:
        attrs["result"] = result
    if error is not None:
        attrs["error"] = error
    return attrs


def journal(path):
    return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path)))


COMPLETE, FAIL = optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL
QUICK = {  # the intended (winning) test top-1 per cell
    ("shift", 0): 71.0, ("shift", 1): 72.5, ("shift", 2): 70.2,
    ("noshift", 0): 68.1, ("noshift", 1): 69.4,
    ("v2", 0): 73.3, ("v2", 1): 74.1,
}


@pytest.fixture
def quick_study(tmp_path):
    return make_quick_study(tmp_path)


def make_quick_study(tmp_path):
    """3 planned seeds; shift: 3 finished + an older duplicate; noshift: FAIL then retry, and a FAIL-only seed;
    v2: seed 2 never run; abs: no trial at all."""
    folder = tmp_path / "results" / "quick"
    folder.mkdir(parents=True)
    study = optuna.create_study(study_name="quick", storage=journal(folder / "study.log"), direction="maximize")
    variants = {"shift": {"model.shift": "cyclic"}, "noshift": {"model.shift": "none"},
                "v2": {"model.norm": "res_post"}, "abs": {"model.absolute": "learned", "model.relative": "none"}}
    spec = {"name": "quick", "base": "configs/default.yaml", "baseline": "shift", "variants": variants,
            "seeds": [0, 1, 2], "metrics": METRICS, "paper": {"shift": {"top1": 81.3}, "noshift": {"top1": 80.2}}}
    study.set_user_attr("spec", spec)
    study.set_user_attr("cells", [f"{v}|seed={s}" for v in variants for s in (0, 1, 2)])
    add(study, FAIL, T0, **train_attrs("noshift", 0, variants["noshift"], error="CUDA out of memory"))
    for i, ((variant, seed), top1) in enumerate(QUICK.items()):
        add(study, COMPLETE, T0 + timedelta(minutes=i + 1), **train_attrs(variant, seed, variants[variant],
                                                                      record(top1, seed)))
    # An older duplicate of (shift, 1), added last (highest trial number) but finished earliest: ignored.
    add(study, COMPLETE, T0 - timedelta(hours=1), **train_attrs("shift", 1, variants["shift"], record(10.0, 1)))
    add(study, FAIL, T0 + timedelta(minutes=30), **train_attrs("noshift", 2, variants["noshift"],
                                                               error="NaN loss at epoch 2"))
    return folder


def png_size(path) -> tuple[int, int]:
    data = path.read_bytes()[:24]
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


def md_table(markdown: str, heading: str) -> pd.DataFrame:
    """The first pipe table after ``heading`` as strings."""
    body = markdown.split(heading, 1)[1]
    lines = [ln for ln in body.splitlines() if ln.startswith("|")]
    block = []
    for ln in body.splitlines()[body.splitlines().index(lines[0]):]:
        if not ln.startswith("|"):
            break
        block.append(ln)
    cells = [[c.strip() for c in ln.strip("|").split("|")] for ln in block]
    return pd.DataFrame(cells[2:], columns=cells[0])


def test_runs_keep_newest_complete_trial(quick_study):
    data = load_study(quick_study)
    runs = data.runs.set_index(["variant", "seed"])
    assert len(runs) == len(QUICK)
    for cell, top1 in QUICK.items():
        assert runs.loc[cell, "test.top1"] == top1
    assert runs.loc[("shift", 1), "val.ece"] == pytest.approx(0.05 - 72.5 / 4000)
    assert {"params", "flops", "train_images_per_s", "run_dir", "trial", "state", "model.shift"} <= set(runs.columns)
    assert "history" not in runs.columns
    status = data.cells.set_index(["variant", "seed"])["status"]
    assert status[("noshift", 0)] == "finished" and status[("noshift", 2)] == "failed"
    assert status[("v2", 2)] == "missing" and (data.cells[data.cells.variant == "abs"].status == "missing").all()
    assert data.variants == ["shift", "noshift", "v2", "abs"] and data.baseline == "shift"
    assert len(data.planned) == 12


def test_report_numbers_match_recomputation(quick_study):
    out = build_report(quick_study)
    assert out == quick_study
    runs = pd.read_csv(out / "runs.csv")
    cells = pd.read_csv(out / "cells.csv", index_col="variant")
    assert list(cells.index) == ["shift", "noshift", "v2", "abs"]
    base = runs[runs.variant == "shift"]
    for variant in ["shift", "noshift", "v2"]:
        mine = runs[runs.variant == variant]
        for m in METRICS:
            assert cells.loc[variant, f"{m} mean"] == pytest.approx(mine[m].mean())
            assert cells.loc[variant, f"{m} std"] == pytest.approx(mine[m].std(ddof=1))
            assert cells.loc[variant, f"{m} n"] == len(mine)
            if variant != "shift":
                assert cells.loc[variant, f"{m} delta"] == pytest.approx(mine[m].mean() - base[m].mean())
                p = stats.ttest_ind(mine[m], base[m], equal_var=False).pvalue
                assert cells.loc[variant, f"{m} p_welch"] == pytest.approx(p)
                paired = base.set_index("seed")[m].loc[mine.seed]
                assert cells.loc[variant, f"{m} p_paired"] == pytest.approx(
                    stats.ttest_rel(mine.set_index("seed")[m], paired).pvalue)
    # The duplicate (top1 10.0) does not skew the mean.
    assert cells.loc["shift", "test.top1 mean"] == pytest.approx(np.mean([71.0, 72.5, 70.2]))
    assert cells.loc["abs", "n"] == 0 and math.isnan(cells.loc["abs", "test.top1 mean"])
    assert cells.loc["noshift", "planned"] == 3 and cells.loc["noshift", "failed"] == 1
    assert cells.loc["noshift", "note"] == "2/3 seeds; 1 failed: NaN loss at epoch 2"
    assert cells.loc["v2", "note"] == "2/3 seeds; 1 missing"
    assert cells.loc["shift", "paper top1"] == 81.3


def test_report_markdown_and_latex(quick_study, tmp_path):
    out = build_report(quick_study, out=tmp_path / "rep")
    md = (out / "report.md").read_text()
    table = md_table(md, "## Comparison").set_index("variant")
    cells = pd.read_csv(out / "cells.csv", index_col="variant")
    # mean ± std parsed back from the table, best (v2 for top1, highest) in bold.
    for variant, row in table.iterrows():
        name = variant.replace(" (baseline)", "")
        text = row["test.top1"]
        if name == "abs":
            assert text == "missing" and row["n"] == "0/3" and "0/3 seeds; 3 missing" in row["note"]
            continue
        mean, std = (float(x) for x in re.findall(r"[-\d.]+", text.strip("*"))[:2])
        assert mean == pytest.approx(cells.loc[name, "test.top1 mean"], abs=0.005)
        assert std == pytest.approx(cells.loc[name, "test.top1 std"], abs=0.005)
        assert text.startswith("**") == (name == "v2")
        # lower loss is better: v2 has the highest top1, hence the lowest loss
        assert row["test.loss"].startswith("**") == (name == "v2")
    noshift = table.loc["noshift"]
    delta, p = re.fullmatch(r"([+-][\d.]+) \(p=([\d.]+)\)", noshift["Δ test.top1"]).groups()
    assert float(delta) == pytest.approx(cells.loc["noshift", "test.top1 delta"], abs=0.005)
    assert float(p) == pytest.approx(cells.loc["noshift", "test.top1 p_welch"], abs=0.0005)
    assert noshift["n"] == "2/3" and "1 failed: NaN loss at epoch 2" in noshift["note"]
    assert table.loc["shift (baseline)", "paper top1"] == "81.3"
    assert table.loc["v2", "params (M)"] == "0.14" and table.loc["v2", "FLOPs (M)"] == "7.10"
    assert "Welch" in md and "sample std" in md
    assert "![test.top1](figures/test.top1.png)" in md and "![learning_curves](figures/learning_curves.png)" in md
    assert "```yaml" in md and "baseline: shift" in md
    assert "`cpu` (7 runs)" in md and "`abc1234` (7 runs)" in md and "| torch | 2.13.0 |" in md
    assert "| noshift   |      2 | failed" in md or re.search(r"\| noshift\s*\|\s*2\s*\|\s*failed", md)

    tex = (out / "table.tex").read_text()
    assert "\\toprule" in tex and "\\midrule" in tex and "\\bottomrule" in tex
    assert "Welch" in tex and "\\caption{" in tex
    best = cells.loc["v2", "test.top1 mean"]
    assert f"\\bfseries {best:.2f} $\\pm$ {cells.loc['v2', 'test.top1 std']:.2f}" in tex
    assert tex.count("\\bfseries") == len(METRICS)
    assert "test.top1" in tex and "res_post" not in tex  # no unescaped underscore from names
    for row in tex.splitlines():
        if row.startswith("abs"):
            assert "missing" in row


def test_figures_are_pngs_of_expected_size(quick_study):
    out = build_report(quick_study)
    names = {p.name for p in (out / "figures").iterdir()}
    assert names == {f"{m}.png" for m in METRICS} | {"learning_curves.png"}
    for name in names:
        assert png_size(out / "figures" / name) == (960, 600)


def test_cli_report(quick_study, capsys):
    assert main(["report", str(quick_study)]) == 0
    printed = capsys.readouterr().out
    assert "report.md" in printed and "| variant" in printed and "noshift" in printed
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
    # a study whose only trial failed
    storage = journal(tmp_path / "failed.log")
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
    # the sqlite file itself is a source too
    assert load_study(tmp_path / "many.db", "alpha").name == "alpha"


def make_factorial_study(tmp_path):
    """2 x 2 factors x 2 seeds; returns (folder, {(shift, norm, seed): test top-1})."""
    factors = {"model.shift": ["cyclic", "none"], "model.norm": ["pre", "res_post"]}
    folder = tmp_path / "fact"
    folder.mkdir()
    study = optuna.create_study(study_name="fact", storage=journal(folder / "study.log"))
    spec = {"name": "fact", "baseline": "model.shift=cyclic,model.norm=pre", "factors": factors, "seeds": [0, 1],
            "metrics": ["test.top1", "test.loss"]}
    study.set_user_attr("spec", spec)
    rng = np.random.default_rng(0)
    y = {}
    i = 0
    for shift in factors["model.shift"]:
        for norm in factors["model.norm"]:
            for seed in (0, 1):
                value = 70 - 2 * (shift == "none") + 1 * (norm == "res_post") + 0.5 * (
                    shift == "none" and norm == "res_post") + rng.normal(0, 0.3)
                y[shift, norm, seed] = round(float(value), 3)
                name = f"model.shift={shift},model.norm={norm}"
                overrides = {"model.shift": shift, "model.norm": norm}
                attrs = train_attrs(name, seed, overrides, record(y[shift, norm, seed], seed))
                add(study, COMPLETE, T0 + timedelta(minutes=i), **attrs)
                i += 1
    return folder, y


def test_factorial_effects_match_hand_computation(tmp_path):
    folder, y = make_factorial_study(tmp_path)
    out = build_report(folder)
    effects = pd.read_csv(out / "effects.csv")
    top1 = effects[effects.metric == "test.top1"].set_index("term")
    t = stats.t.ppf(0.975, 1)

    def check(term, per_seed):
        row = top1.loc[term]
        mean, half = np.mean(per_seed), t * np.std(per_seed, ddof=1) / math.sqrt(2)
        assert row["estimate"] == pytest.approx(mean)
        assert row["ci_low"] == pytest.approx(mean - half) and row["ci_high"] == pytest.approx(mean + half)
        assert row["n_seeds"] == 2

    def diff(norm, s):  # shift none - cyclic at one norm level and seed
        return y["none", norm, s] - y["cyclic", norm, s]

    def norm_diff(shift, s):
        return y[shift, "res_post", s] - y[shift, "pre", s]

    check("model.shift", [(diff("pre", s) + diff("res_post", s)) / 2 for s in (0, 1)])
    check("model.norm", [(norm_diff("cyclic", s) + norm_diff("none", s)) / 2 for s in (0, 1)])
    check("model.shift × model.norm", [diff("res_post", s) - diff("pre", s) for s in (0, 1)])
    assert top1.loc["model.shift", "contrast"] == "none − cyclic"
    md = (out / "report.md").read_text()
    assert "## Factorial effects" in md and "t-interval" in md
    shift_row = md_table(md, "## Factorial effects").set_index("term").loc["model.shift"]
    assert shift_row["test.top1"].startswith(f"{top1.loc['model.shift', 'estimate']:+.2f} [")
    # rows in factorial order, baseline first; the variant names map back to the switches in runs.csv
    cells = pd.read_csv(out / "cells.csv", index_col="variant")
    assert cells.index[0] == "model.shift=cyclic,model.norm=pre" and len(cells) == 4
    runs = pd.read_csv(out / "runs.csv")
    assert set(runs["model.norm"]) == {"pre", "res_post"}


def make_transfer_study(tmp_path):
    """Two trained variants x 2 seeds, moved to two targets by 1-2 methods; returns (folder, accuracies)."""
    folder = tmp_path / "tr"
    folder.mkdir()
    study = optuna.create_study(study_name="tr", storage=journal(folder / "study.log"))
    variants = {"table": {"model.relative": "table"}, "cpb": {"model.relative": "cpb_log"}}
    study.set_user_attr("spec", {"variants": variants, "seeds": [0, 1], "metrics": ["test.top1"],
                                 "transfer": {"to": ["64:8", "96:12"]}})
    i = 0
    for v in variants:
        for s in (0, 1):
            add(study, COMPLETE, T0 + timedelta(minutes=i), **train_attrs(v, s, variants[v], record(70.0 + s, s)))
            i += 1
    acc = {}
    for v, methods in (("table", ["bicubic"]), ("cpb", ["extrapolate", "renormalize"])):
        for method in methods:
            for img, win in ((64, 8), (96, 12)):
                for s in (0, 1):
                    top1 = 60.0 - win + s + (3 if method == "renormalize" else 0)
                    ft = None if method == "extrapolate" else top1 + 5
                    acc[v, method, img, win, s] = (top1, ft)
                    attrs = {"kind": "transfer", "cell": f"{v}|seed={s}|to={img}:{win}|method={method}", "variant": v,
                             "seed": s, "method": method, "img_size": img, "window_size": win,
                             "finetune_epochs": 0 if ft is None else 1, "run_dir": f"runs/{v}-s{s}",
                             "result": {"top1": top1, "top5": top1 + 10, "loss": 1.0, "top1_ft": ft,
                                        "top5_ft": None if ft is None else ft + 10}}
                    trial = optuna.trial.create_trial(state=COMPLETE, value=top1, user_attrs=attrs)
                    study.add_trial(trial)
    return folder, acc


def test_transfer_table_layout(tmp_path):
    folder, acc = make_transfer_study(tmp_path)
    out = build_report(folder)
    md = (out / "report.md").read_text()
    table = md_table(md, "## Transfer to larger windows")
    assert list(table.columns) == ["variant", "method", "n", "as trained (test.top1)", "W8,I64", "W12,I96"]
    assert [tuple(r) for r in table[["variant", "method"]].to_numpy()] == [
        ("table", "bicubic"), ("cpb", "extrapolate"), ("cpb", "renormalize")]
    for _, row in table.iterrows():
        for img, win in ((64, 8), (96, 12)):
            vals = [acc[row.variant, row.method, img, win, s] for s in (0, 1)]
            a = np.array([v[0] for v in vals])
            expect = f"{a.mean():.2f} ± {a.std(ddof=1):.2f} / "
            if vals[0][1] is None:
                expect += "—"
            else:
                b = np.array([v[1] for v in vals])
                expect += f"{b.mean():.2f} ± {b.std(ddof=1):.2f}"
            assert row[f"W{win},I{img}"] == expect
    assert png_size(out / "figures" / "transfer.png") == (960, 600)
    assert (out / "transfer.csv").is_file()


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
