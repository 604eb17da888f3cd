"""The result record: what one finished run reports, and how a study stores it.

A training run writes ``result.json`` (atomically, last) into its run folder. The ablation driver copies
it into the Optuna trial's user attrs; reports read it back from there. The record is the typed, versioned
``swin_lit.domain.result.Result`` (``Result.to_dict()`` is the file; ``Result.from_dict`` reads every stored
version); which split metrics it holds are its task's facts (``swin_lit.domain.task``), its task-specific fields
come from the task's implementation (``swin_lit.tasks``). The layout this documents:

``result.json`` / trial user attr ``result``::

    {
      "version": 2,                          # absent in records written before it existed (version 1)
      "task": "classification",
      "val":  {"top1": float, "top5": float, "loss": float, "ece": float},   # best checkpoint, % for top-k;
                                             # loss: mean per image over the split (version 1: mean of batch means)
      "test": {"top1": float, "top5": float, "loss": float, "ece": float},
      "params": int, "flops": int,            # flops: multiply-adds per image (paper convention)
      "train_images_per_s": float, "eval_images_per_s": float,
      "wall_time_s": float,                  # this process (a resumed run: since its resume)
      "train_time_s": float,                 # the training loop only, summed over the run's processes
      "epochs": int, "seed": int,
      "config_hash": str, "versions": {pkg: version}, "git": str, "device": str,
      "history": [{"epoch": int, "train_loss": float, "val_loss": float, "val_top1": float,
                   "val_top5": float, "val_ece": float}, ...]     # val_top5 / val_ece: newer runs only
    }

``task: segmentation`` runs report, instead of the classification metrics::

      "val":  {"miou": float, "aacc": float, "loss": float},                # %, best checkpoint (val mIoU);
                                             # loss: mean per labelled pixel (version 1: mean of batch means)
      "test": {"miou": float, "aacc": float, "loss": float, "iou": [float per class, NaN: class absent]},
      "params": int (backbone + decode head), "params_backbone": int, "params_head": int,
      "params_aux_head": int (training only), "flops": int, "flops_backbone": int, "flops_head": int,
      "flops_size": [H, W] (the test images' size the FLOPs are counted at), "class_names": [str, ...],
      "history": [{"epoch", "train_loss", "val_loss", "val_miou", "val_aacc"}, ...]

``history.json`` (rewritten after each validation while the run trains): ``{"history": [...]}``, the same
list as the record's ``history``.

How a study stores these records (trial user attrs, params, states) is the study contract:
``swin_lit.study``.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

RESULT_FILE = "result.json"
HISTORY_FILE = "history.json"


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


def read_json(path: str | os.PathLike) -> dict | None:
    """A JSON file written by ``write_json_atomic``, or None when it is absent (or, rarely, unreadable)."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def read_result(run_dir: str | os.PathLike) -> dict | None:
    """The run's result record, or None when the run has not finished."""
    path = Path(run_dir) / RESULT_FILE
    if not path.is_file():
        return None
    return json.loads(path.read_text())
