"""Studies run by the real driver: specs, the ``swin-lit ablate`` command in a subprocess, and what it left."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from datetime import datetime
from pathlib import Path

import optuna
import pytest
import yaml

from swin_lit import study as contract

ROOT = Path(__file__).resolve().parents[2]
# About one second of training per cell on 2 cores.
BUDGET = {"trainer.max_epochs": 1, "data.train_size": 128, "data.val_size": 32, "data.test_size": 32,
          "model.embed_dim": 16, "model.depths": [2], "model.num_heads": [2], "data.batch_size": 32}


def write_spec(folder: Path, name: str, **fields) -> Path:
    spec = {"name": name, "base": str(ROOT / "configs" / "default.yaml"), "budget": dict(BUDGET), "seeds": [0]}
    spec.update(fields)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def ablate_cmd(spec: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "swin_lit.cli", "ablate", str(spec), "--out", str(out), "--no-progress",
            "--no-report", *extra]


def run_env(marker: Path) -> dict:
    return {**os.environ, "SWIN_LIT_ABLATE_MARKER": str(marker), "PYTHONUNBUFFERED": "1"}


def ablate(spec: Path, out: Path, marker: Path, *extra: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run(ablate_cmd(spec, out, *extra), env=run_env(marker), cwd=out.parent, capture_output=True,
                          text=True, timeout=timeout)


def trials(out: Path, name: str) -> list:
    storage = contract.open_storage(out / "study.log").storage
    return optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False)


def starts(marker: Path) -> Counter:
    """Training starts per run folder, as the forked children logged them."""
    if not marker.exists():
        return Counter()
    return Counter(line.split()[1] for line in marker.read_text().splitlines() if line.strip())


def worker_logs(out: Path) -> str:
    return "\n".join(p.read_text() for p in sorted((out / "logs").glob("*.log")))


def slurm_study(tmp_path: Path, name: str, *storage: str) -> tuple[Path, subprocess.CompletedProcess]:
    """``--launcher slurm`` with submitit's local executor: the job array's workers are real processes started
    by submitit, through the same job code path (pickled ArrayWorker, submitit's job runner) as on SLURM."""
    pytest.importorskip("submitit", reason="submitit is not installed (pip install -e '.[slurm]'; the test extras "
                                           "have it)")
    spec = write_spec(tmp_path, name, factors={"model.shift": ["cyclic", "none"]}, seeds=[0, 1])
    out = tmp_path / name
    r = ablate(spec, out, tmp_path / "marker", "--launcher", "slurm", "--jobs", "2", "--slurm", "cluster=local",
               "--slurm", "time=10", *storage, timeout=400)
    assert r.returncode == 0, r.stderr + "\n".join(p.read_text() for p in (out / "slurm").rglob("*.out"))
    assert "submitted 2 worker job(s) (local)" in r.stderr
    return spec, r


def age_heartbeat(storage: optuna.storages.RDBStorage, trial: optuna.Trial) -> None:
    """Move a trial's last heartbeat in Optuna's heartbeat table back to 2000-01-01, as if its worker had been
    silent for years, so that a test need not sleep through the grace period. Private: Optuna has no public call
    to read or set a heartbeat's time (its table model is the only way in)."""
    from optuna.storages._rdb.models import TrialHeartbeatModel

    table = TrialHeartbeatModel.__table__
    with storage.engine.begin() as connection:
        done = connection.execute(table.update().where(table.c.trial_id == trial._trial_id)
                                  .values(heartbeat=datetime(2000, 1, 1)))
    assert done.rowcount == 1, "the trial has no heartbeat row to age"
