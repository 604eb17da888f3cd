"""The spec fields the report and the adaptive-seed rule read: ``paper`` (with its provenance),
``transfer.paper``, ``alpha``, ``report.columns`` and ``seeds: {start, max, step, precision}``; strict, with
messages that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from swin_lit.ablate.spec import load_plan, read_spec
from swin_lit.cli import main
from swin_lit.stats import SeedRule
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
     "transfer.paper.rows.a.384:12: got '79/82'; expected a number (without fine-tuning) or [without FT, with FT]"),
    ({"transfer": {"targets": ["48:6"], "paper": {**PAPER, "trained": "256:8", "rows": {"z": {"384:12": 1.0}}}}},
     "transfer.paper.rows.z: unknown variant"),
])
def test_bad_fields_name_the_key(tmp_path, fields, message):
    with pytest.raises(ConfigError) as err:
        read_spec(spec_file(tmp_path, **fields))
    assert message in str(err.value)


def test_adaptive_seeds_are_refused_by_the_driver_for_now(tmp_path, capsys):
    """The decision exists (swin_lit.stats.seed_decision) but the driver does not call it yet: it refuses the
    spec before doing anything, with one line, instead of running a fixed number of seeds silently."""
    path = spec_file(tmp_path, seeds={"start": 3, "max": 10, "step": 2, "precision": 1.0})
    with pytest.raises(ConfigError, match="adaptive seeds .* are not run by swin-lit ablate yet"):
        load_plan(path)
    assert main(["ablate", str(path), "--out", str(tmp_path / "out"), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "seeds: adaptive seeds" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()
    with pytest.raises(ConfigError, match="seeds: adaptive seeds .* are for mode: grid"):
        read_spec(spec_file(tmp_path, seeds={"start": 3, "precision": 1.0}, mode="search",
                            search={"params": {"optim.lr": {"low": 1e-4, "high": 1e-2}}}))
