"""Cell kinds: what a worker runs for a cell, and how it reads the result. Everything else (claiming,
liveness, the child's exit code / signal / out-of-memory kill, NaN checks, recording, re-queueing) is the
worker's one path (``swin_lit.ablate.worker``), the same for every kind.

A kind is a small class registered in ``KINDS`` under the ``kind`` user attr of its trials:

- ``prepare(ctx, trial) -> Job``: in the worker, before the fork; cheap; an exception fails the cell.
- ``run(job) -> dict | None``: in the forked child; whatever it returns comes back to ``result``.
- ``progress(job) -> {step: value}``: in the worker while the child runs: values reported to Optuna as the
  trial's intermediate values (the learning curve), read from the run folder.
- ``result(job, returned) -> (objective value, record)``: in the worker after the child exited cleanly;
  raises ``CellFailed`` with a one-line reason for a result that must not count (NaN).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from swin_lit import study as contract
from swin_lit.domain.result import RecordError, Result, TransferRecord
from swin_lit.domain.spec import Spec
from swin_lit.errors import SwinLitError

COMPILE_CACHE = Path("cache") / "inductor"  # in the study folder; not a result (git-ignored)


class CellFailed(SwinLitError):
    """The cell ran but its result must not count (the message is the trial's ``error``)."""


@dataclass
class Job:
    """One claimed cell, prepared for its child."""

    cell: str
    lock: str  # the run folder (or cell) that one child at a time may work on
    run_dir: Path | None = None  # where the child's progress and result land
    inputs: dict = field(default_factory=dict)  # kind-specific


@dataclass
class Context:
    """What a kind needs from its worker."""

    out: Path  # the study folder
    runs: Path  # its run folders
    spec: Spec  # the study's spec


def is_finite(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


class TrainKind:
    """Train one variant x seed (search mode: with the trial's sampled values) into its run folder."""

    name = contract.TRAIN

    def prepare(self, ctx: Context, trial) -> Job:
        from swin_lit.ablate.replan import apply_search_values
        from swin_lit.config import stored_config
        from swin_lit.train.runs import run_dir_for

        attrs = trial.user_attrs
        search = ctx.spec.search if ctx.spec.mode == "search" else None
        if search is not None:
            values = {key: trial.params[key] for key in search.params}
            cfg = apply_search_values(attrs["config"], values)
        else:
            cfg = stored_config(attrs["config"])
        run_dir = run_dir_for(cfg, ctx.runs)
        key = contract.intermediate_metric(ctx.spec.objective)
        if search is not None:
            key = "val." + str(search.monitor).split("/")[-1]
        # one inductor cache per study: the later seeds of an architecture compile from it (trainer.compile)
        return Job(attrs["cell"], run_dir.name, run_dir, {"config": cfg, "history_key": key.replace(".", "_"),
                                                          "compile_cache": ctx.out / COMPILE_CACHE})

    def run(self, job: Job) -> None:
        from swin_lit.train.runs import train

        marker = os.environ.get("SWIN_LIT_ABLATE_MARKER")  # tests: count training starts
        if marker:
            with open(marker, "a") as f:
                f.write(f"{os.getpid()} {job.run_dir.name}\n")
        train(job.inputs["config"], job.run_dir.parent, progress=False, compile_cache=job.inputs["compile_cache"])

    def progress(self, job: Job) -> dict[int, float]:
        from swin_lit.record import HISTORY_FILE, read_json

        history = (read_json(job.run_dir / HISTORY_FILE) or {}).get("history") or []
        key = job.inputs["history_key"]
        return {int(h["epoch"]): float(h[key]) for h in history if is_finite(h.get(key))}

    def result(self, job: Job, returned: Any, objective: str) -> tuple[float, dict]:
        from swin_lit.record import read_result

        record = read_result(job.run_dir)
        if record is None:
            raise CellFailed("training finished without a result record")
        try:
            result = Result.from_dict(record)
        except RecordError as err:
            raise CellFailed(str(err)) from None
        for split in ("val", "test"):
            loss = result.value(f"{split}.loss")
            if loss is None or not math.isfinite(loss):
                raise CellFailed(f"NaN: {split} loss is {loss}")
        value = result.value(objective)
        if value is None or not math.isfinite(value):
            raise CellFailed(f"NaN: objective {objective} is {value}")
        return value, record


class TransferKind:
    """Move a trained cell's model to a larger image and window, evaluate it (and fine-tune it)."""

    name = contract.TRANSFER

    def prepare(self, ctx: Context, trial) -> Job:
        from swin_lit.config import stored_config
        from swin_lit.train.runs import run_dir_for

        attrs = trial.user_attrs
        run_dir = run_dir_for(stored_config(attrs["config"]), ctx.runs)  # the trained cell's run folder
        lock = f"{run_dir.name}-to{attrs['img_size']}x{attrs['window_size']}-{attrs['method']}"
        inputs = {k: attrs.get(k) for k in ("img_size", "window_size", "method", "finetune_epochs", "finetune_lr")}
        return Job(attrs["cell"], lock, run_dir, {**inputs, "compile_cache": ctx.out / COMPILE_CACHE})

    def run(self, job: Job) -> dict:
        from swin_lit.train.transfer import transfer_cell

        a = job.inputs
        return transfer_cell(job.run_dir, a["img_size"], a["window_size"], a["method"], a.get("finetune_epochs") or 0,
                             a.get("finetune_lr") or 2e-4, out=job.run_dir.parent, compile_cache=a["compile_cache"])

    def progress(self, job: Job) -> dict[int, float]:
        return {}

    def result(self, job: Job, returned: Any, objective: str) -> tuple[float, dict]:
        try:
            record = TransferRecord.from_dict(returned)
        except RecordError as err:
            raise CellFailed(str(err)) from None
        key = record.task_facts.primary  # top-1, a segmentation run's mIoU
        if not is_finite(record.values.get(key)):
            raise CellFailed(f"NaN: {key} is {record.values.get(key)}")
        return float(record.values[key]), returned


KINDS = {kind.name: kind for kind in (TrainKind(), TransferKind())}
