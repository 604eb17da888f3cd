"""What a metric path of a result record means: its direction, range, unit and label.

A spec names metrics as dotted paths into the result record (``swin_lit.record``): ``<split>.<metric>``
(``test.top1``, ``val.miou``) or a run-level scalar (``flops``, ``train_time_s``). Every layer (the spec's
checks, the driver's Optuna direction, the report's intervals and labels) reads these facts here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

SPLITS = ("val", "test")


@dataclass(frozen=True)
class Metric:
    name: str
    higher_is_better: bool
    low: float = -math.inf  # the range a value can take
    high: float = math.inf
    unit: str = ""
    label: str = ""  # how tables name it

    @property
    def percent(self) -> bool:
        return self.unit == "%"

    @property
    def range_width(self) -> float | None:
        """The widest difference the metric allows (100 points for top-1); None when unbounded."""
        width = self.high - self.low
        return width if math.isfinite(width) else None


def _percent(name: str, label: str) -> Metric:
    return Metric(name, True, 0.0, 100.0, "%", label)


# Metrics of a split (``val.<name>`` / ``test.<name>``); which of them a task reports is the task's fact.
SPLIT_METRICS: dict[str, Metric] = {m.name: m for m in (
    _percent("top1", "top-1"), _percent("top5", "top-5"), _percent("miou", "mIoU"), _percent("aacc", "aAcc"),
    Metric("loss", False, 0.0, math.inf, "", "loss"), Metric("ece", False, 0.0, 1.0, "", "ECE"),
)}

# Run-level scalars of a record.
SCALAR_METRICS: dict[str, Metric] = {m.name: m for m in (
    Metric("params", False, 0.0, label="params"), Metric("flops", False, 0.0, label="FLOPs"),
    Metric("train_images_per_s", True, 0.0, label="train img/s"),
    Metric("eval_images_per_s", True, 0.0, label="eval img/s"),
    Metric("wall_time_s", False, 0.0, unit="s", label="wall time"),
    Metric("train_time_s", False, 0.0, unit="s", label="train time"),
    Metric("epochs", True, 0.0, label="epochs"),
    Metric("params_backbone", False, 0.0, label="backbone params"),
    Metric("params_head", False, 0.0, label="head params"),
    Metric("flops_backbone", False, 0.0, label="backbone FLOPs"), Metric("flops_head", False, 0.0, label="head FLOPs"),
)}

UNBOUNDED = Metric("", True)


def metric(path: str) -> Metric:
    """The metric a path names (``test.top1``, ``top1``, ``flops``); an unknown one is unbounded and maximised."""
    name = str(path).split(".")[-1]
    return SPLIT_METRICS.get(name) or SCALAR_METRICS.get(name) or UNBOUNDED


def is_metric_path(path: str) -> bool:
    """``<split>.<split metric>`` or a run-level scalar."""
    parts = str(path).split(".")
    return (len(parts) == 2 and parts[0] in SPLITS and parts[1] in SPLIT_METRICS) or (
        len(parts) == 1 and parts[0] in SCALAR_METRICS)


def metric_paths() -> list[str]:
    """Every path ``is_metric_path`` accepts, for error messages."""
    return [f"{s}.{m}" for s in SPLITS for m in SPLIT_METRICS] + list(SCALAR_METRICS)


def lower_is_better(path: str) -> bool:
    """``test.loss`` / ``loss`` / ``flops`` -> True; ``test.top1`` -> False."""
    return not metric(path).higher_is_better


def direction(path: str) -> str:
    """The Optuna direction of a metric path."""
    return "minimize" if lower_is_better(path) else "maximize"
