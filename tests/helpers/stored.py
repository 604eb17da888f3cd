"""Study storages built by hand (real Optuna journal files) with known per-seed results, and a reader for the
pipe tables of the Markdown reports."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import optuna
import pandas as pd

optuna.logging.set_verbosity(optuna.logging.WARNING)
T0 = datetime(2026, 1, 1, 12, 0, 0)
METRICS = ["test.top1", "test.top5", "test.loss", "test.ece"]
COMPLETE, FAIL = optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL


def record(top1: float, seed: int, epochs: int = 4, params: int = 137_000) -> dict:
    """A realistic result.json (see swin_lit.record)."""
    loss = 2.5 - top1 / 50
    return {
        "val": {"top1": top1 + 0.5, "top5": min(99.9, top1 + 12), "loss": loss - 0.02, "ece": 0.05 - top1 / 4000},
        "test": {"top1": top1, "top5": min(99.9, top1 + 11.5), "loss": loss, "ece": 0.06 - top1 / 4000},
        "params": params, "flops": 7_100_000, "train_images_per_s": 1500.0 + 10 * seed, "eval_images_per_s": 3700.0,
        "wall_time_s": 31.0, "train_time_s": 27.0, "epochs": epochs, "seed": seed, "config_hash": "c0ffee",
        "versions": {"torch": "2.13.0", "optuna": "5.0.0", "lightning": "2.6.6"}, "git": "abc1234", "device": "cpu",
        "history": [
            {"epoch": e, "train_loss": 2.3 - 0.4 * e, "val_loss": 2.2 - 0.35 * e, "val_top1": top1 * (e + 1) / epochs}
            for e in range(epochs)
        ],
    }


def add(study, state, when: datetime, **attrs) -> None:
    trial = optuna.trial.create_trial(
        state=state, value=attrs["result"]["test"]["top1"] if state == COMPLETE else None, user_attrs=attrs)
    trial.datetime_start = when - timedelta(seconds=30)
    trial.datetime_complete = when
    study.add_trial(trial)


def train_attrs(variant: str, seed: int, overrides: dict, result: dict | None = None, error: str | None = None,
                classes: int = 10):
    """The user attrs the driver writes, with the resolved config's model geometry and class count."""
    attrs = {"kind": "train", "cell": f"{variant}|seed={seed}", "variant": variant, "seed": seed,
             "overrides": overrides, "run_dir": f"runs/{variant}-s{seed}",
             "config": {"model": {"num_classes": classes, "img_size": 32, "window_size": 4}, "seed": seed}}
    if result is not None:
        attrs["result"] = result
    if error is not None:
        attrs["error"] = error
    return attrs


def journal(path):
    return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path)))


def new_study(folder, name: str, spec: dict, cells: list[str] | None = None):
    folder.mkdir(parents=True, exist_ok=True)
    study = optuna.create_study(study_name=name, storage=journal(folder / "study.log"), direction="maximize")
    study.set_user_attr("spec", {"name": name, **spec})
    if cells is not None:
        study.set_user_attr("cells", cells)
    return study


def md_table(markdown: str, heading: str) -> pd.DataFrame:
    """The first pipe table after ``heading`` as strings (``\\|`` inside a cell is a pipe)."""
    body = markdown.split(heading, 1)[1].splitlines()
    start = next(i for i, ln in enumerate(body) if ln.startswith("|"))
    block = []
    for ln in body[start:]:
        if not ln.startswith("|"):
            break
        block.append(ln)
    cells = [[c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", ln.strip()[1:-1])] for ln in block]
    return pd.DataFrame(cells[2:], columns=cells[0])


# -- known answers: per-seed results with a resolved gain, one in the noise, a contradiction, a tie --------

BASE = [70.0, 72.0, 69.0, 71.0]
KNOWN = {  # per-seed test top-1
    "base ≥ 2×": BASE,
    "big ± é": [b + 5 + e for b, e in zip(BASE, (0.1, -0.2, 0.15, -0.05))],  # +5, resolved
    "noisy_Δ % & #": [b + e for b, e in zip(BASE, (1.5, -2.0, 2.5, -1.0))],  # +0.25 in noise: not resolved
    "contra": [b - 4 + e for b, e in zip(BASE, (0.1, 0.0, -0.1, 0.05))],  # -4, resolved, paper says +1.2
    "same": [b + e for b, e in zip(BASE, (0.3, -0.2, 0.4, -0.1))],  # paper: no difference
}
PAPER = {"table": "Swin V1 Table 4 (≥ 300 epochs, ± 0.1 %, é)", "model": "Swin-T", "dataset": "ImageNet-1K",
         "rows": {"base ≥ 2×": {"top1": 81.3, "top5": 95.6}, "big ± é": {"top1": 82.0, "top5": 95.9},
                  "noisy_Δ % & #": {"top1": 80.0},
                  "contra": {"top1": 82.5}, "same": {"top1": 81.3}}}


def make_known_study(tmp_path, classes: int = 10, columns=None):
    folder = tmp_path / "known"
    spec = {"variants": {v: {} for v in KNOWN}, "seeds": [0, 1, 2, 3], "baseline": "base ≥ 2×",
            "metrics": ["test.top1", "test.top5"], "paper": PAPER, "alpha": 0.05}
    if columns is not None:
        spec["report"] = {"columns": columns}
    study = new_study(folder, "known", spec)
    for i, (variant, values) in enumerate(KNOWN.items()):
        for seed, top1 in enumerate(values):
            add(study, COMPLETE, T0 + timedelta(minutes=4 * i + seed),
                **train_attrs(variant, seed, {}, record(top1, seed), classes=classes))
    return folder
