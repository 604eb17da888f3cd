"""The spec as every reader reads it back: ``Spec.from_stored`` on every committed study and on older stored
forms, and what derives from the spec alone (variants, a cell's params and id)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from swin_lit.domain.cell import CellId, Target
from swin_lit.domain.result import RecordError, TransferRecord, transfer_task
from swin_lit.domain.sections import SeedRule
from swin_lit.domain.spec import COMPARISON_COLUMN_KEYS, PaperSpec, Spec, TransferPaper
from swin_lit.typed import ConfigError

ROOT = Path(__file__).resolve().parents[1]
STORAGES = sorted(ROOT.glob("results/*/study.log"))


def test_every_committed_stored_spec_reads_back_and_round_trips():
    """Each committed study's ``spec`` user attr reads back as a ``Spec`` whose plain form is the stored dict
    (fields added since it was written take their defaults), and its stored trials' params give their ids."""
    import optuna

    from swin_lit.study import open_storage

    assert len(STORAGES) >= 8
    for log in STORAGES:
        opened = open_storage(log)
        (name,) = optuna.get_all_study_names(opened.storage)
        study = optuna.load_study(study_name=name, storage=opened.storage)
        stored = study.user_attrs["spec"]
        spec = Spec.from_stored(stored)
        plain = spec.to_plain()
        assert {k: plain[k] for k in stored} == stored, log
        assert Spec.from_stored(plain) == spec
        for t in study.get_trials(deepcopy=False):
            if t.user_attrs.get("cell") and t.params:
                kind = t.user_attrs.get("kind", "train")
                assert str(spec.cell_id(kind, t.params)) == t.user_attrs["cell"], (log, t.number)


def test_a_stored_spec_is_read_without_todays_checks_and_older_forms_are_converted():
    stored = {
        "name": "old", "variants": {"a": {}, "b": {}}, "seeds": [0, 1],
        "paper": {"a": {"top1": 81.3, "note": "x"}, "b": {"top1": 80.1}},  # the first form: no provenance
        "transfer": {"targets": ["64:8"], "paper": {"a": {"W8,I256": "81.7", "W12,I384": "79.4/82.7"}}},
        "retired_field": 1,  # a key a later version dropped
    }
    spec = Spec.from_stored(stored)
    assert (spec.paper.rows, spec.paper.source()) == ({"a": {"top1": 81.3}, "b": {"top1": 80.1}}, "")
    assert (spec.transfer.paper.trained, spec.transfer.paper.rows) == ("256:8", {"a": {"256:8": 81.7,
                                                                                        "384:12": [79.4, 82.7]}})
    assert spec.metrics == () and spec.objective == "test.top1"  # not stored: readers take them from the trials
    with pytest.raises(ConfigError, match="table: is required"):  # refused when a spec is written
        PaperSpec(rows={"a": {"top1": 1.0}})
    with pytest.raises(ConfigError, match="trained"):
        TransferPaper(table="t", model="m", dataset="d", rows={"a": {"384:12": 1.0}})
    bare = Spec.from_stored({}, name="s")  # a study stored without a spec: no variants, no seeds
    assert (bare.name, bare.variant_list(), bare.seeds, bare.baseline_variant) == ("s", [], (), None)


def test_factorial_variants_are_found_in_any_order_and_by_their_values():
    spec = Spec(name="f", factors={"model.shift": ["cyclic", "none"], "model.window_size": [4, 7]},
                seeds=SeedRule(start=2, max=5, precision=1.0), baseline="model.window_size=4,model.shift=cyclic")
    assert spec.baseline_variant == "model.shift=cyclic,model.window_size=4"
    assert spec.find_variant("model.window_size=7, model.shift=none") == "model.shift=none,model.window_size=7"
    assert spec.find_variant("model.shift=none,model.window_size=07") == "model.shift=none,model.window_size=7"
    assert spec.find_variant("model.shift=diagonal") is None
    assert spec.variant_of_overrides({"model.shift": "none", "model.window_size": 4}) == (
        "model.shift=none,model.window_size=4")
    assert spec.seed_range == (0, 4)  # adaptive: every seed the rule may reach


def test_a_cells_params_give_its_id_for_each_kind():
    spec = Spec(name="t", factors={"model.depths": [[2], [1]]}, seeds=(0, 3))
    params = spec.cell_params({"model.depths": [1]}, "model.depths=[1]", 3)
    assert params == {"model.depths": "[1]", "seed": 3}
    assert spec.cell_id("train", params) == CellId("model.depths=[1]", 3)
    moved = {**params, "method": "bicubic", "img_size": 64, "window_size": 8}
    assert str(spec.cell_id("transfer", moved)) == "model.depths=[1]|seed=3|to=64:8|method=bicubic"
    assert spec.cell_id("transfer", moved).target == Target(64, 8, "bicubic")
    search = Spec(name="s", variants={"v": {}}, mode="search", seeds=(0,),
                  search={"params": {"optim.lr": {"low": 1e-4, "high": 1e-2, "log": True}}, "trials": 2})
    assert str(search.cell_id("train", {"variant": "v", "seed": 0, "search_index": 1})) == "v|trial=1|seed=0"


def test_the_report_columns_a_spec_may_pick_are_the_reports():
    from swin_lit.report.columns import COMPARISON_COLUMNS

    assert tuple(COMPARISON_COLUMNS) == COMPARISON_COLUMN_KEYS


def test_a_transfer_record_names_its_task_by_its_score():
    seg = TransferRecord.from_dict({"miou": 40.0, "aacc": 80.0, "loss": 1.0, "miou_ft": None})
    assert seg.task == "segmentation" and seg.keys[:2] == ("miou", "aacc") and seg.value("miou_ft") is None
    assert TransferRecord.from_dict({"top1": 70.0}).task_facts.primary == "top1"
    assert transfer_task([{}, {"miou": 1.0}]).name == "segmentation"
    with pytest.raises(RecordError):
        TransferRecord.from_dict(None)


def test_the_spec_module_imports_without_optuna_until_a_distribution_is_asked_for():
    code = ("import sys; sys.modules['torch'] = None\n"
            "from swin_lit.domain.spec import Spec\n"
            "s = Spec(name='x', variants={'a': {}})\n"
            "assert 'optuna' not in sys.modules\n"
            "assert list(s.param_distributions()) == ['variant', 'seed'] and 'optuna' in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)
