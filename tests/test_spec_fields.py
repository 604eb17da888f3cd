"""The spec fields the report and the adaptive-seed rule read: ``paper`` (with its provenance),
``transfer.paper``, ``alpha``, ``report.columns`` and ``seeds: {start, max, step, precision}``; strict, with
messages that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from swin_lit.ablate.spec import load_plan, read_spec
from swin_lit.cli import main
from swin_lit.domain.sections import SeedRule
from swin_lit.typed import ConfigError

ROOT = Path(__file__).resolve().parents[1]
PAPER = {"table": "Swin V1 Table 4", "model": "Swin-T", "dataset": "ImageNet-1K",
         "rows": {"a": {"top1": 81.3, "top5": 95.6}, "b": {"top1": 80.2}}}


def spec_file(tmp_path, **fields) -> Path:
    spec = {"name": "s", "base": str(ROOT / "configs" / "default.yaml"),
            "variants": {"a": {}, "b": {"model.shift": "none"}}, "seeds": [0, 1], "baseline": "a", **fields}
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False, allow_unicode=True))
    return path


def test_shipped_specs_name_their_papers():
    v1, v2 = "Swin V1 Table 4, Swin-T, ImageNet-1K", "Swin V2 Table {}, Swin-T, ImageNet-1K"
    sources = {"quick": v1, "swin_v1_table4": v1, "swin_v2_table6": v2.format(6), "swin_v2_table1": v2.format(1)}
    for name, source in sources.items():
        spec = read_spec(ROOT / "ablations" / f"{name}.yaml")
        assert spec.paper.source() == source and spec.alpha == 0.05
    v2 = read_spec(ROOT / "ablations" / "swin_v2_table1.yaml").transfer.paper
    assert v2.trained == "256:8" and v2.rows["log-spaced CPB"]["384:12"] == [82.4, 83.2]
    assert v2.rows["table (bicubic)"]["256:8"] == 81.7
    assert read_spec(ROOT / "ablations" / "factorial.yaml").paper is None


def test_good_fields_round_trip(tmp_path):
    spec = read_spec(spec_file(tmp_path, paper=PAPER, alpha=0.01, report={"columns": ["mean", "delta", "verdict"]}))
    assert spec.alpha == 0.01 and spec.report.columns == ("mean", "delta", "verdict")
    plain = spec.to_plain()
    assert plain["paper"]["rows"]["a"] == {"top1": 81.3, "top5": 95.6} and plain["paper"]["model"] == "Swin-T"
    assert plain["report"] == {"columns": ["mean", "delta", "verdict"]}
    rule = read_spec(spec_file(tmp_path, seeds={"start": 3, "max": 10, "step": 2, "precision": 1.0})).seeds
    assert rule == SeedRule(3, 10, 2, 1.0)
    assert read_spec(spec_file(tmp_path, seeds={"start": 4, "precision": 0.5})).to_plain()["seeds"] == {
        "start": 4, "max": 10, "step": 2, "precision": 0.5}


@pytest.mark.parametrize("fields, message", [
    ({"paper": {**PAPER, "table": ""}}, "paper.table: is required"),
    ({"paper": {k: v for k, v in PAPER.items() if k != "dataset"}}, "paper.dataset: is required"),
    ({"paper": {**PAPER, "page": 3}}, "paper.page: unknown key; allowed keys are table, model, dataset, rows"),
    ({"paper": {"a": {"top1": 81.3}}}, "paper.a: unknown key"),  # the older form is not accepted in a spec file
    ({"paper": {**PAPER, "rows": {"a": {"top1": 81.3}, "c": {"top1": 80.0}}}}, "paper.rows.c: unknown variant"),
    ({"paper": {**PAPER, "rows": {"a": {"top1": 81.3}, "b": {"top1": "80.2"}}}}, "paper.rows.b: must map metric"),
    ({"paper": {**PAPER, "rows": {"a": {"top1": 81.3, "ap": 50.5}}}}, "paper.rows.a.ap: matches none of the metrics"),
    ({"paper": {**PAPER, "rows": {"b": {"top1": 80.2}}}}, "paper.rows: must give the baseline's numbers ('a')"),
    ({"alpha": 0}, "alpha: must be between 0 and 1"),
    ({"alpha": 1.5}, "alpha: must be between 0 and 1"),
    ({"report": {"columns": ["mean", "stars"]}}, "report.columns[1]: got 'stars'; allowed values are n, mean"),
    ({"report": {"columns": ["mean", "mean"]}}, "report.columns: lists a column twice"),
    ({"report": {"colums": ["mean"]}}, "report.colums: unknown key"),
    ({"seeds": {"start": 3, "max": 2, "precision": 1.0}}, "seeds.max: must be >= start (3)"),
    ({"seeds": {"start": 3}}, "seeds.precision: is required"),
    ({"seeds": [0, 0]}, "seeds: lists a seed twice"),
    ({"transfer": {"targets": ["48:6"], "paper": {**PAPER, "trained": "W8,I256"}}},
     "transfer.paper.trained: got 'W8,I256'; expected the paper's training IMG:WINDOW"),
    ({"transfer": {"targets": ["48:6"], "paper": {**PAPER, "trained": "256:8", "rows": {"a": {"W12,I384": 79.4}}}}},
     "transfer.paper.rows.a.W12,I384: keys must be IMG:WINDOW"),
    ({"transfer": {"targets": ["48:6"], "paper": {**PAPER, "trained": "256:8", "rows": {"a": {"384:12": "79/82"}}}}},
     "transfer.paper.rows.a.384:12: got '79/82'; expected a number (without fine-tuning), [without FT, with FT] "
     "or [null, with FT]"),
    ({"transfer": {"targets": ["48:6"], "paper": {**PAPER, "trained": "256:8", "rows": {"a": {"384:12": [79, None]}}}}},
     "transfer.paper.rows.a.384:12: got [79, None]; expected a number"),
    ({"transfer": {"targets": ["48:6"], "paper": {**PAPER, "trained": "256:8", "rows": {"z": {"384:12": 1.0}}}}},
     "transfer.paper.rows.z: unknown variant"),
    ({"transfer": {"targets": ["48:6"], "contrasts": [["b", "z"]]}},
     "transfer.contrasts[0][1]: got 'z'; allowed values are 'a', 'b'"),
    ({"transfer": {"targets": ["48:6"], "contrasts": [["b", "b"]]}},
     "transfer.contrasts[0]: compares 'b' with itself"),
    ({"transfer": {"targets": ["48:6"], "contrasts": [["a", "b", "a"]]}},
     "transfer.contrasts[0]: got 3 items; expected 2"),
])
def test_bad_fields_name_the_key(tmp_path, fields, message):
    with pytest.raises(ConfigError) as err:
        read_spec(spec_file(tmp_path, **fields))
    assert message in str(err.value)


def test_adaptive_seeds_plan_every_seed_up_to_max(tmp_path, capsys):
    """An adaptive spec plans (and validates) the cells of every seed the rule may reach; the study's ``cells``
    attr holds those of the first ``start`` seeds; a dry run of a study not created yet shows the rule waiting
    for them and what a run would queue, and creates nothing."""
    path = spec_file(tmp_path, seeds={"start": 3, "max": 5, "step": 2, "precision": 1.0})
    plan = load_plan(path)
    assert [c.id for c in plan.cells] == [f"{v}|seed={s}" for v in ("a", "b") for s in range(5)]
    assert plan.cell_ids == [f"{v}|seed={s}" for v in ("a", "b") for s in range(3)]
    assert [c.id for c in plan.cells_of([3, 4])] == ["a|seed=3", "a|seed=4", "b|seed=3", "b|seed=4"]
    assert main(["ablate", str(path), "--out", str(tmp_path / "out"), "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert "6 cells: 2 variants x seeds 0–2 now" in text and text.count("missing ") == 6
    assert "adaptive seeds (two-stage, Stein): start 3, max 5, precision 1 (95% half-width of each variant - 'a'" \
        in text
    assert "decision: first stage: waiting for 6 cells of seeds 0–2" in text
    assert "would queue now: 6 cell(s): a|seed=0, a|seed=1, a|seed=2, b|seed=0, b|seed=1, b|seed=2" in text
    assert not (tmp_path / "out").exists()
    with pytest.raises(ConfigError, match="seeds: adaptive seeds .* are for mode: grid"):
        read_spec(spec_file(tmp_path, seeds={"start": 3, "precision": 1.0}, mode="search",
                            search={"params": {"optim.lr": {"low": 1e-4, "high": 1e-2}}}))


def test_margin_is_a_positive_effect_size(tmp_path):
    """``margin``: the smallest effect of interest on the objective, which the report's equivalence verdict reads."""
    assert read_spec(spec_file(tmp_path, margin=0.5)).margin == 0.5
    assert read_spec(spec_file(tmp_path)).margin is None
    for bad in (0, -1.0):
        with pytest.raises(ConfigError, match="margin"):
            read_spec(spec_file(tmp_path, margin=bad))
    with pytest.raises(ConfigError, match="margin"):
        read_spec(spec_file(tmp_path, margin="small"))
