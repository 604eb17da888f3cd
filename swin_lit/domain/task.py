"""A task's facts, and the registry that names each task's implementation.

The facts (which split metrics a task's result records hold, its primary score, the data sources it trains
on) are plain data any layer may read without torch. The behaviour (its LightningModule, DataModule, result
fields, evaluator and transfer scorer) lives in the task's implementation, imported on first use: a new task
(detection, say) is one ``register(Task(...))`` and one implementation module, and no other module compares a
task's name.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from swin_lit.domain.metrics import SPLIT_METRICS
from swin_lit.typed import ConfigError


@dataclass(frozen=True)
class Task:
    name: str
    metrics: tuple[str, ...]  # the split metrics of its records (``val.<m>``, ``test.<m>``), see domain.metrics
    primary: str  # its main score: the checkpoint monitor, the transfer score, the default objective
    secondary: str  # the second score a transfer record keeps (top-5, aAcc)
    sources: tuple[str, ...]  # the ``data.source`` values it trains on
    implementation: str  # "module:attribute" of its behaviour (``swin_lit.tasks``), imported on first use
    targets: str = "class"  # a sample's target: "class" (one index an image) or "map" (one a pixel); data.sources

    def __post_init__(self) -> None:
        unknown = [m for m in (*self.metrics, self.primary, self.secondary) if m not in SPLIT_METRICS]
        if unknown:
            raise ValueError(f"task {self.name!r}: unknown metrics {unknown}; known: {', '.join(SPLIT_METRICS)}")

    @property
    def dense(self) -> bool:
        """Its labels are per pixel (a report draws its predictions; its transfer crops the image)."""
        return self.targets == "map"

    @property
    def monitor(self) -> str:
        """The logged value the best checkpoint is chosen by."""
        return f"val/{self.primary}"

    @property
    def objective(self) -> str:
        """The result path a study of this task compares by default."""
        return f"test.{self.primary}"

    def impl(self) -> Any:
        """The task's implementation (imports torch and Lightning)."""
        module, attribute = self.implementation.split(":")
        return getattr(importlib.import_module(module), attribute)


TASKS: dict[str, Task] = {}


def register(task: Task) -> Task:
    if task.name in TASKS:
        raise ValueError(f"task {task.name!r} is already registered")
    TASKS[task.name] = task
    return task


def get_task(name: str) -> Task:
    """The task called ``name``; a ConfigError naming the registered ones otherwise."""
    try:
        return TASKS[name]
    except KeyError:
        raise ConfigError(f"task: got {name!r}; allowed values are {', '.join(map(repr, TASKS))}") from None


def task_of_record(record: dict) -> Task:
    """The task of a result record: its ``task`` field, else the task whose primary score it holds (records
    written before the field existed), else the first registered task."""
    if record.get("task") in TASKS:
        return TASKS[record["task"]]
    for task in TASKS.values():
        if task.primary in (record.get("test") or {}):
            return task
    return next(iter(TASKS.values()))


CLASSIFICATION = register(Task(
    name="classification", metrics=("top1", "top5", "loss", "ece"), primary="top1", secondary="top5",
    sources=("synthetic", "marks", "folder", "cifar", "idx"),
    implementation="swin_lit.tasks.classification:TASK"))
SEGMENTATION = register(Task(
    name="segmentation", metrics=("miou", "aacc", "loss"), primary="miou", secondary="aacc",
    sources=("synthetic", "marks", "camvid", "ade20k", "cityscapes"),
    implementation="swin_lit.tasks.segmentation:TASK", targets="map"))
