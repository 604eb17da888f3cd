"""The torch-free domain types: cell ids, metric facts, task facts."""

import math
import subprocess
import sys

import pytest

from swin_lit.domain.cell import CellId, Target
from swin_lit.domain.metrics import direction, is_metric_path, metric
from swin_lit.domain.task import TASKS, get_task, task_of_record
from swin_lit.typed import ConfigError

IDS = ["model.shift=none|seed=1", "w/o shifting|trial=3|seed=0",
       "model.shift=none,model.norm=pre|seed=1|to=384:24|method=bicubic", "abs.+rel.|trial=2|seed=5|to=64:8|method=x"]


@pytest.mark.parametrize("text", IDS)
def test_a_cell_id_parses_back_to_itself(text):
    cell = CellId.parse(text)
    assert str(cell) == text
    assert str(cell.trained) == text.split("|to=")[0]
    assert cell.is_transfer == ("|to=" in text)


def test_a_cell_id_holds_its_parts():
    cell = CellId.parse("model.window_size=4,model.shift=none|seed=2|to=64:8|method=renormalize")
    assert cell == CellId("model.window_size=4,model.shift=none", 2, None, Target(64, 8, "renormalize"))


@pytest.mark.parametrize("bad", ["a", "a|seed=x", "a|seed=1|to=3|method=b", "a|seed=1|foo=2", "a|seed=1|trial=2",
                                 "a|seed=1|to=64:8", "a|seed=1|seed=2"])
def test_text_that_is_no_cell_id_is_refused(bad):
    with pytest.raises(ValueError, match="not a cell id"):
        CellId.parse(bad)
    assert CellId.try_parse(bad) is None


def test_metric_facts():
    assert direction("test.loss") == "minimize" and direction("test.top1") == "maximize"
    assert direction("flops") == "minimize" and direction("eval_images_per_s") == "maximize"
    assert metric("val.miou").range_width == 100.0 and metric("test.ece").range_width == 1.0
    assert metric("test.loss").range_width is None and math.isinf(metric("unknown").high)
    assert is_metric_path("test.top1") and is_metric_path("flops")
    assert not is_metric_path("train.top1") and not is_metric_path("test.flops")


def test_task_facts():
    assert set(TASKS) >= {"classification", "segmentation"}
    seg = get_task("segmentation")
    assert (seg.monitor, seg.objective, seg.secondary) == ("val/miou", "test.miou", "aacc")
    assert task_of_record({"test": {"miou": 50.0}}) is seg
    assert task_of_record({"task": "classification", "test": {}}).name == "classification"
    with pytest.raises(ConfigError, match="task: got 'detection'; allowed values are 'classification'"):
        get_task("detection")


def test_the_domain_layer_imports_without_torch_or_optuna():
    """A fresh interpreter where torch and optuna cannot be imported (an import of either raises) loads every
    domain module, and nothing of the heavy stack is loaded after it."""
    code = ("import sys; sys.modules['torch'] = None; sys.modules['optuna'] = None\n"
            "import swin_lit.domain.cell, swin_lit.domain.metrics, swin_lit.domain.task, swin_lit.domain.result\n"
            "import swin_lit.domain.spec, swin_lit.domain.sections\n"
            "print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('torch', 'optuna', 'lightning', 'pandas', 'numpy') and sys.modules[m] is not None)))\n"
            "print(' '.join(m for m in sys.modules if m.startswith(('swin_lit.report', 'swin_lit.ablate', "
            "'swin_lit.cli'))), file=sys.stderr)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "", f"the domain layer loaded: {r.stdout.strip()}"
    assert r.stderr.strip() == "", f"the domain layer loaded: {r.stderr.strip()}"


def _record(**over):
    record = {"task": "classification", "val": {"top1": 90.0, "top5": 99.0, "loss": 0.3, "ece": 0.02},
              "test": {"top1": 89.5, "top5": 98.0, "loss": 0.35, "ece": 0.03}, "seed": 2, "epochs": 20,
              "params": 1000, "flops": 5000, "history": [{"epoch": 0, "val_top1": 50.0}], "device": "cpu (x)"}
    return {**record, **over}


def test_a_result_record_round_trips_and_names_its_version():
    from swin_lit.domain.result import VERSION, Result

    result = Result.from_dict(_record())
    assert result.version == 1  # stored before the field existed
    unset = dict.fromkeys(("config_hash", "train_images_per_s", "eval_images_per_s", "wall_time_s", "train_time_s"))
    assert result.to_dict() == {**unset, "config_hash": "", **_record(), "version": 1}  # every field, always
    assert result.extra == {"device": "cpu (x)"}
    assert result.value("test.top1") == 89.5 and result.value("flops") == 5000.0 and result.value("test.x") is None
    fresh = Result(task="classification", val=_record()["val"], test=_record()["test"], seed=0, epochs=1)
    assert Result.from_dict(fresh.to_dict()) == fresh and fresh.version == VERSION


def test_a_record_without_its_task_field_is_read_by_its_metrics():
    from swin_lit.domain.result import Result

    seg = {"val": {"miou": 40.0, "aacc": 80.0, "loss": 1.0}, "test": {"miou": 41.0, "aacc": 81.0, "loss": 1.1}}
    assert Result.from_dict(_record(task=None, **seg) | {"task": None}).task == "segmentation"


@pytest.mark.parametrize("bad, message", [
    ({"version": 9}, "version 9 is not one"), ({"test": {"top1": 1.0}}, "test lacks top5, loss, ece"),
    ({"task": "detection"}, "task 'detection' is not registered"),
    ({"seed": None} | {"_drop": "seed"}, "no 'seed' field")])
def test_a_bad_record_is_refused_naming_what_is_wrong(bad, message):
    from swin_lit.domain.result import RecordError, Result

    record = _record(**{k: v for k, v in bad.items() if k != "_drop"})
    if "_drop" in bad:
        record.pop(bad["_drop"])
    with pytest.raises(RecordError, match=message):  # what readers catch (study.result_of)
        Result.from_dict(record)
