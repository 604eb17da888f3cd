"""What each task does: its config checks, class names, LightningModule, DataModule, result fields, evaluator
and transfer scorer. A task's facts (metrics, primary score, sources) are ``swin_lit.domain.task.Task``; each
names its implementation here (``Task.impl()``), and no other module compares a task's name.

Importing a task module is cheap (no torch, no Lightning): the config checks and the class names run while a
config is resolved, the rest imports torch inside its methods. Adding a task: one ``register(Task(...))`` whose
``implementation`` names an ``Implementation`` (see ``tests/test_tasks.py`` for a toy one built in the test).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from swin_lit.domain.metrics import SPLIT_METRICS
from swin_lit.domain.task import TASKS, Task, get_task
from swin_lit.typed import ConfigError, fail

if TYPE_CHECKING:
    from swin_lit.config import RunConfig
    from swin_lit.data.config import DataConfig
    from swin_lit.models.config import SwinConfig


def implementation(name: str) -> Implementation:
    """The implementation of the task called ``name`` (ConfigError naming the registered ones otherwise)."""
    return get_task(name).impl()


class Implementation:
    """One task's behaviour; subclasses fill in the parts marked below. ``facts`` are its ``Task``."""

    def __init__(self, facts: Task) -> None:
        self.facts = facts

    @property
    def name(self) -> str:
        return self.facts.name

    # -- config (no torch) --------------------------------------------------------------------------
    def check_config(self, cfg: RunConfig) -> None:
        """ConfigError (``fail``) for a run config the task cannot run; may fill a default it resolves."""
        if cfg.data.source not in self.facts.sources:
            others = [t.name for t in TASKS.values() if cfg.data.source in t.sources]
            hint = f", or set task: {others[0]}" if others else ""
            fail("data.source", f"{cfg.data.source!r} is not data of task {self.name!r}; use one of "
                                f"{', '.join(map(repr, self.facts.sources))}{hint}")

    def class_names(self, data: DataConfig) -> tuple[str, ...]:
        """The class names of the configured data as this task labels it (no image decoded)."""
        raise NotImplementedError

    # -- training (torch, Lightning) ----------------------------------------------------------------
    def module(self, cfg: RunConfig) -> Any:
        """The LightningModule that trains ``cfg`` (a ``swin_lit.train.module.RunModule``: it evaluates each split
        with ``scores(cfg)`` and keeps the computed scores in ``evaluated[split]``)."""
        raise NotImplementedError

    def build_datamodule(self, cfg: RunConfig) -> Any:
        """The unchecked DataModule of ``cfg``'s data."""
        raise NotImplementedError

    def data_classes(self, dm) -> int:
        """How many classes the model needs for the data module's labels."""
        return dm.num_classes

    def datamodule(self, cfg: RunConfig) -> Any:
        """The DataModule of ``cfg``, checked (DataError before any work) and matched to the model's classes."""
        dm = self.build_datamodule(cfg)
        dm.check()
        n = self.data_classes(dm)
        if n != cfg.model.num_classes:
            raise ConfigError(f"model.num_classes: the model has {cfg.model.num_classes} classes but the data has "
                              f"{n}; set model.num_classes={n}")
        return dm

    def build_model(self, cfg: RunConfig) -> Any:
        """The untrained network of ``cfg`` (what the module's ``model`` is; a checkpoint's weights load into it)."""
        raise NotImplementedError

    def work(self, cfg: RunConfig) -> int:
        """Forward multiply-adds of one training image (``trainer.compile: auto`` weighs them)."""
        raise NotImplementedError

    def record_sizes(self, cfg: RunConfig, module, dm) -> dict:
        """The record's size fields: ``params`` and ``flops``, and any the task adds."""
        raise NotImplementedError

    # -- evaluation: one for validation, testing and transfer -----------------------------------------
    def scores(self, cfg: RunConfig) -> Any:
        """A fresh evaluator (a torch module): ``update(model, batch)`` per batch, ``compute()`` -> tensors by
        metric name (fractions for percent metrics), ``reset()``. The LightningModule evaluates with it too."""
        raise NotImplementedError

    def record_split(self, scores: dict[str, Any], split: str) -> dict:
        """A split of the result record from computed scores: the task's metrics, percent ones x 100."""
        out = {}
        for name in self.facts.metrics:
            value = float(scores[name])
            out[name] = 100.0 * value if SPLIT_METRICS[name].percent else value
        return out

    def evaluate(self, model, loader, cfg: RunConfig) -> dict:
        """``model`` scored on ``loader`` as the run's test split is scored (same evaluator, same record split),
        without Lightning."""
        import torch

        scores = self.scores(cfg)
        model.eval()
        with torch.inference_mode():
            for batch in loader:
                scores.update(model, batch)
        return self.record_split(plain(scores.compute()), "test")

    # -- transfer to another image and window size --------------------------------------------------
    def check_target(self, moved: SwinConfig, img_size, window_size: int, where: str) -> None:
        """ConfigError (naming ``where``) for a target the task's model cannot be moved to."""

    def move(self, model, img_size, window_size: int, method: str) -> Any:
        """The trained ``model`` at the target image and window size, its weights carried by ``method``."""
        raise NotImplementedError

    def transfer_scores(self, scores: dict) -> dict:
        """What a transfer record keeps of an evaluated split: the primary and secondary scores and the loss."""
        keep = dict.fromkeys((self.facts.primary, self.facts.secondary, "loss"))
        return {name: scores[name] for name in keep if name in scores}


def plain(values: dict) -> dict[str, Any]:
    """An evaluator's ``compute()`` (tensors) as plain numbers: scalars as floats, vectors as lists."""
    return {name: value.item() if value.ndim == 0 else value.tolist() for name, value in values.items()}
