"""The result record: what one finished run reports (``result.json``; a study's trial user attr ``result``).

One typed, versioned record. The fields every task writes are attributes; the fields one task adds (a
segmentation run's backbone/head parameter split, per-class IoU, class names) and the run's provenance are
kept, by name, in ``extra``; ``to_dict`` writes the flat JSON layout ``swin_lit.record`` documents. Records
stored before the ``version`` field existed are version 1 and read the same way: ``from_dict`` is the one
converter at the storage boundary.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any

from swin_lit.domain.task import TASKS, Task, get_task, task_of_record

VERSION = 2  # 2: the ``version`` field itself, split losses a mean per image / labelled pixel (1: of batch means)


class RecordError(ValueError):
    """A stored record that is not a result record (names what is wrong)."""


@dataclass(frozen=True)
class Result:
    task: str
    val: dict[str, Any]  # the task's split metrics at the best checkpoint (percent for top-k, mIoU, aAcc)
    test: dict[str, Any]  # the same on the test split (segmentation adds "iou": per class)
    seed: int
    epochs: int
    config_hash: str = ""
    params: int | None = None
    flops: int | None = None  # multiply-adds per image (the papers' convention)
    train_images_per_s: float | None = None
    eval_images_per_s: float | None = None
    wall_time_s: float | None = None  # this process (a resumed run: since its resume)
    train_time_s: float | None = None  # the training loop, summed over the run's processes
    history: list[dict] = field(default_factory=list)  # one row per validation
    extra: dict[str, Any] = field(default_factory=dict)  # task fields and provenance (versions, git, device, ...)
    version: int = VERSION

    def __post_init__(self) -> None:
        if self.task not in TASKS:  # a record of a task this installation does not have
            raise RecordError(f"result record: task {self.task!r} is not registered (known: {', '.join(TASKS)})")
        task = self.task_facts
        for split in ("val", "test"):
            missing = [m for m in task.metrics if m not in getattr(self, split)]
            if missing:
                raise RecordError(f"result record: {split} lacks {', '.join(missing)} (task {self.task!r})")

    @property
    def task_facts(self) -> Task:
        return get_task(self.task)

    def value(self, path: str) -> float | None:
        """A dotted path (``test.top1``, ``flops``, ``extra`` fields by name) as a finite-or-not number, or None."""
        first, *rest = str(path).split(".")
        names = {f.name for f in fields(self)} - {"extra"}
        node: Any = getattr(self, first) if first in names else self.extra.get(first)
        for part in rest:
            if not isinstance(node, dict) or part not in node:
                return None
            node = node[part]
        return float(node) if isinstance(node, int | float) and not isinstance(node, bool) else None

    def finite(self, path: str) -> float | None:
        value = self.value(path)
        return value if value is not None and math.isfinite(value) else None

    def to_dict(self) -> dict:
        """The flat JSON layout (``result.json``)."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"}
        return {**out, **self.extra}

    @classmethod
    def from_dict(cls, data: dict) -> Result:
        """A stored record (any version) as a ``Result``; RecordError when it is not one."""
        if not isinstance(data, dict):
            raise RecordError(f"result record: expected a mapping, got {type(data).__name__}")
        version = data.get("version", 1)
        if not isinstance(version, int) or not 1 <= version <= VERSION:
            raise RecordError(f"result record: version {version!r} is not one this swin-lit reads (1..{VERSION})")
        names = {f.name for f in fields(cls)} - {"extra"}
        known = {k: v for k, v in data.items() if k in names}
        known["task"] = data.get("task") or task_of_record(data).name  # version 1 records of old runs lack it
        for key in ("val", "test", "seed", "epochs"):
            if key not in known:
                raise RecordError(f"result record: no {key!r} field")
        known["version"] = version
        return cls(**known, extra={k: v for k, v in data.items() if k not in names})


@dataclass(frozen=True)
class TransferRecord:
    """What a transfer cell reports (its trial's ``result`` user attr): the task's primary and secondary scores
    and the loss at the target without fine-tuning, the two scores after fine-tuning (``<score>_ft``, None
    without) and the fine-tune run folder. Stored flat (``{"top1": .., "top5": .., "loss": .., "top1_ft": ..,
    "top5_ft": .., "ft_run_dir": ..}``), without a task field: the task is the one whose primary score it holds."""

    task: str
    values: dict[str, Any]  # the stored record as it is

    @classmethod
    def from_dict(cls, data: dict) -> TransferRecord:
        if not isinstance(data, dict):
            raise RecordError(f"transfer record: expected a mapping, got {type(data).__name__}")
        return cls(_transfer_task(data).name, dict(data))

    @property
    def task_facts(self) -> Task:
        return get_task(self.task)

    @property
    def keys(self) -> tuple[str, ...]:
        """The record's scores in order: primary, secondary, loss, primary_ft, secondary_ft."""
        first, second = self.task_facts.primary, self.task_facts.secondary
        return first, second, "loss", f"{first}_ft", f"{second}_ft"

    def value(self, key: str) -> float | None:
        v = self.values.get(key)
        return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def _transfer_task(record: dict) -> Task:
    """The task of a transfer record: the one whose primary score it holds, else the first registered."""
    for task in TASKS.values():
        if task.primary in record:
            return task
    return next(iter(TASKS.values()))


def transfer_task(records: list[dict]) -> Task:
    """The task of a study's transfer records: the first record's that holds a task's primary score, else the
    first registered task."""
    for record in records:
        for task in TASKS.values():
            if isinstance(record, dict) and task.primary in record:
                return task
    return next(iter(TASKS.values()))
