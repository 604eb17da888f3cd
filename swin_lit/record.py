"""The result record: what one finished run reports, and how a study stores it.

A training run writes ``result.json`` (atomically, last) into its run folder. The ablation driver copies
it into the Optuna trial's user attrs; reports read it back from there. This module is the single place
that names those fields.

``result.json`` / trial user attr ``result``::

    {
      "val":  {"top1": float, "top5": float, "loss": float, "ece": float},   # best checkpoint, % for top-k
      "test": {"top1": float, "top5": float, "loss": float, "ece": float},
      "params": int, "flops": int,            # flops: multiply-adds per image (paper convention)
      "train_images_per_s": float, "eval_images_per_s": float,
      "wall_time_s": float, "train_time_s": float, "epochs": int, "seed": int,
      "config_hash": str, "versions": {pkg: version}, "git": str, "device": str,
      "history": [{"epoch": int, "train_loss": float, "val_loss": float, "val_top1": float}, ...]
    }

Trial user attrs written by the driver (one trial = one cell = a variant x a seed):

    kind        "train" | "transfer"
    cell        unique cell id, e.g. "shift=none|seed=1" (transfer: "<train cell>|to=64:8|method=bicubic")
    variant     variant name (a row of the table)
    seed        int
    overrides   {dotted config key: value} applied to the spec's base config
    run_dir     run folder of the cell (relative to the study folder when inside it)
    result      the record above (train cells) or the transfer record below
    error       one-line reason (failed cells only)

Transfer record (``kind == "transfer"``): the train cell's ``variant`` and ``seed``, plus
``method``, ``img_size``, ``window_size``, ``finetune_epochs`` user attrs, and ``result`` =
``{"top1": float, "top5": float, "loss": float, "top1_ft": float | None, "top5_ft": float | None}``.

Study user attrs: ``spec`` (the ablation spec as a plain dict) and ``cells`` (the planned cell ids).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

RESULT_FILE = "result.json"


def write_json_atomic(path: str | os.PathLike, data: dict) -> None:
    """Write ``data`` as JSON so that a reader sees either the old file or the whole new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_result(run_dir: str | os.PathLike) -> dict | None:
    """The run's result record, or None when the run has not finished."""
    path = Path(run_dir) / RESULT_FILE
    if not path.is_file():
        return None
    return json.loads(path.read_text())
