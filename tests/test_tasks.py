"""A task is one object: its facts (``swin_lit.domain.task``) name its implementation (``swin_lit.tasks``), and the
training, the result record, the evaluator and the transfer scorer go through it.

- a toy task registered in this file alone (the relation scenes relabelled by direction only, 4 classes, its own
  metrics and a lower-is-better primary score) trains one step through ``swin_lit.train.runs.train``;
- a contract over every registered task: a tiny one-epoch run on the embedded scenes writes a record holding the
  task's metrics, and the task's evaluator, run on the trained model outside Lightning, gives the record's test
  numbers exactly;
- the task modules import without torch, and no module outside them compares a task's name.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers.training import TINY

from swin_lit.config import load_config
from swin_lit.data.classes import DIRECTIONS
from swin_lit.domain.result import Result
from swin_lit.domain.task import TASKS, Task, register
from swin_lit.tasks import implementation
from swin_lit.tasks.classification import Classification
from swin_lit.train.module import ClassificationScores, SwinClassifier
from swin_lit.train.runs import build_datamodule, load_run_config, load_trained_model, train
from swin_lit.typed import ConfigError

PACKAGE = Path(__file__).resolve().parents[1] / "swin_lit"

# A tiny one-epoch run of each registered task on the embedded relation scenes; a task registered later adds its own.
TINY_RUNS = {
    "classification": TINY + ["trainer.max_epochs=1", "data.test_size=70", "data.eval_batch_size=32"],
    "segmentation": [
        "task=segmentation", "model.img_size=16", "model.patch_size=2", "model.window_size=4", "model.embed_dim=16",
        "model.depths=[2, 2]", "model.num_heads=[2, 4]", "model.mlp_ratio=2.0", "head.channels=16",
        "data.train_size=64", "data.val_size=32", "data.test_size=40", "data.batch_size=16",
        "data.eval_batch_size=16", "trainer.max_epochs=1", "trainer.threads=1", "trainer.progress=false",
        "optim.schedule=poly"],
}


# -- a toy task, defined here only ---------------------------------------------------------------------------
def by_direction(y):
    """The relation scenes' label (direction x same/different colour, ``SYNTHETIC_CLASS_NAMES``) -> direction."""
    return y % len(DIRECTIONS)


class DirectionScores(ClassificationScores):
    def update(self, model, batch) -> None:
        x, y = batch
        super().update(model, (x, by_direction(y)))


class DirectionClassifier(SwinClassifier):
    def training_step(self, batch, batch_idx):
        x, y = batch
        return super().training_step((x, by_direction(y)), batch_idx)


class Direction(Classification):
    """Where the disc lies from the square, its colour ignored: the relation scenes with 4 classes."""

    def class_names(self, data):
        return DIRECTIONS

    def data_classes(self, dm) -> int:
        return len(DIRECTIONS)

    def module(self, cfg):
        return DirectionClassifier(cfg)

    def scores(self, cfg):
        return DirectionScores(cfg.model.num_classes)


TOY = Task(name="direction", metrics=("top1", "loss"), primary="loss", secondary="top1", sources=("synthetic",),
           implementation=f"{__name__}:TOY_IMPL")
TOY_IMPL = Direction(TOY)


@pytest.fixture
def toy_task():
    register(TOY)
    try:
        yield TOY
    finally:
        TASKS.pop(TOY.name)


def test_a_task_registered_in_a_test_trains_a_step_through_the_same_path(toy_task, tmp_path):
    cfg = load_config(None, TINY + ["task=direction", "trainer.max_steps=1"])
    assert cfg.model.num_classes == 4  # its class names, resolved by the config
    run_dir, record = train(cfg, tmp_path)
    assert record["task"] == "direction" and record["version"] == 2
    assert set(record["val"]) == set(record["test"]) == {"top1", "loss"}  # its metrics, no top-5 nor ECE
    assert 0.0 <= record["test"]["top1"] <= 100.0 and record["test"]["loss"] > 0
    assert len(record["history"]) == 1 and record["params"] > 0 and record["flops"] > 0
    assert Result.from_dict(json.loads((run_dir / "result.json").read_text())).to_dict() == record
    # its primary score (the loss, lower is better) chose the best checkpoint
    best = torch.load(run_dir / "checkpoints" / "best.ckpt", weights_only=False)
    [(key, state)] = [(k, v) for k, v in best["callbacks"].items() if k.startswith("ModelCheckpoint") and v["monitor"]]
    assert state["monitor"] == "val/loss" and "'mode': 'min'" in key
    assert float(state["best_model_score"]) == pytest.approx(record["val"]["loss"])
    # its evaluator (labels by direction) scores the trained model as the run's test did
    model = load_trained_model(run_dir)
    assert model.head.out_features == 4
    dm = build_datamodule(cfg)
    dm.setup("test")
    assert TOY_IMPL.evaluate(model, dm.test_dataloader(), cfg) == record["test"]


def test_an_unregistered_task_is_refused_naming_the_registered_ones():
    with pytest.raises(ConfigError, match="task: got 'direction'; allowed values are 'classification'"):
        load_config(None, ["task=direction"])


def test_a_task_refuses_data_it_does_not_train_on(toy_task):
    with pytest.raises(ConfigError, match="data.source: 'marks' is not data of task 'direction'.*'synthetic'"):
        load_config(None, ["task=direction", "data.source=marks"])


# -- the contract, over every registered task -------------------------------------------------------------------
@pytest.fixture(scope="module", params=sorted(TASKS))
def tiny_run(request, tmp_path_factory):
    name = request.param
    assert name in TINY_RUNS, f"task {name!r}: add its tiny run to TINY_RUNS"
    cfg = load_config(None, TINY_RUNS[name])
    run_dir, record = train(cfg, tmp_path_factory.mktemp(name))
    return name, cfg, run_dir, record


def test_the_record_holds_the_task_metrics(tiny_run):
    name, cfg, run_dir, record = tiny_run
    facts = TASKS[name]
    assert record["task"] == name == cfg.task
    for split in ("val", "test"):
        assert set(facts.metrics) <= set(record[split])
    assert record["history"] and all(f"val_{facts.primary}" in row for row in record["history"])
    assert Result.from_dict(record).task_facts is facts
    assert load_run_config(run_dir).hash() == record["config_hash"]


def test_the_evaluator_gives_the_run_test_numbers(tiny_run):
    """The run's test split scored again outside Lightning by the task's evaluator, on the same batches: the same
    numbers, to the bit (one evaluation for testing and for transfer)."""
    name, cfg, run_dir, record = tiny_run
    task = implementation(name)
    dm = build_datamodule(cfg)
    dm.setup("test")
    scores = task.evaluate(load_trained_model(run_dir), dm.test_dataloader(), cfg)
    assert json.dumps(scores, sort_keys=True) == json.dumps(record["test"], sort_keys=True)


def test_a_transfer_to_the_run_own_size_scores_its_test_numbers(tiny_run):
    """Moved to its own image and window, a run's transfer record holds its test scores (primary, secondary, loss)
    exactly: the transfer scorer is the task's evaluator."""
    from swin_lit.train.transfer import transfer_cell

    name, cfg, run_dir, record = tiny_run
    facts = TASKS[name]
    method = "bicubic"  # the table bias of the tiny runs
    moved = transfer_cell(run_dir, cfg.model.img_size, cfg.model.window_size, method)
    assert set(moved) == {facts.primary, facts.secondary, "loss", f"{facts.primary}_ft", f"{facts.secondary}_ft",
                          "ft_run_dir"}
    for metric in (facts.primary, facts.secondary, "loss"):
        assert moved[metric] == record["test"][metric]


# -- no task name compared outside the tasks ------------------------------------------------------------------------
# Modules another change is still moving onto the task object (the report, the study, the spec): listed so that this
# test fails both ways, naming a module that compares a task's name and one that has stopped doing so.
PENDING = {"study.py", "ablate/spec.py", "report/data.py", "report/figures.py", "report/predictions.py",
           "report/scorecard.py"}


def task_name_comparisons(source: str) -> list[int]:
    """Lines of ``source`` that compare a value with a registered task's name (``==``, ``!=``, ``in``) or key a
    dict literal by one."""
    names = set(TASKS)
    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare):
            for operand in (node.left, *node.comparators):
                elements = operand.elts if isinstance(operand, ast.Tuple | ast.List | ast.Set) else [operand]
                if any(isinstance(e, ast.Constant) and e.value in names for e in elements):
                    lines.append(node.lineno)
                    break
        elif isinstance(node, ast.Dict):
            if any(isinstance(k, ast.Constant) and k.value in names for k in node.keys):
                lines.append(node.lineno)
    return sorted(lines)


def test_the_comparison_finder_finds_each_form():
    source = ('if cfg.task == "segmentation":\n    pass\nx = {"classification": 1}\ny = t in ("segmentation",)\n'
              'task: str = "classification"\nz = get_task(t).primary == "miou"\n')
    assert task_name_comparisons(source) == [1, 3, 4]  # a default value is no comparison


def test_no_module_outside_the_tasks_compares_a_task_name():
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel.startswith("tasks/") or rel == "domain/task.py":
            continue
        lines = task_name_comparisons(path.read_text())
        if lines:
            found[rel] = lines
    assert set(found) - PENDING == set(), f"compares a task's name (line numbers): {found}"
    assert PENDING - set(found) == set(), f"no longer compares a task's name: drop from PENDING: {PENDING - set(found)}"


def test_the_task_modules_and_config_import_without_torch():
    code = ("import sys; import swin_lit.tasks.classification, swin_lit.tasks.segmentation; "
            "from swin_lit.config import load_config; load_config(None, ['task=segmentation']); load_config(); "
            "bad = [m for m in ('torch', 'lightning', 'torchmetrics') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)
