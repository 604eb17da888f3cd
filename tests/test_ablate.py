"""``swin-lit ablate``: spec validation, the claim/heartbeat protocol, and end-to-end studies with real
worker processes on a real journal storage (several drivers, kill -9 and resume, failures and retry)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from swin_lit.ablate import store
from swin_lit.ablate.spec import load_plan
from swin_lit.cli import main

ROOT = Path(__file__).resolve().parents[1]
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
    storage = store.open_storage(out / "study.log", create=False)
    return optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False)


def complete_per_cell(ts) -> Counter:
    return Counter(t.user_attrs["cell"] for t in ts if t.state == TrialState.COMPLETE)


def starts(marker: Path) -> Counter:
    """Training starts per run folder, as the forked children logged them."""
    if not marker.exists():
        return Counter()
    return Counter(line.split()[1] for line in marker.read_text().splitlines() if line.strip())


def worker_logs(out: Path) -> str:
    return "\n".join(p.read_text() for p in sorted((out / "logs").glob("*.log")))


# -- validation before anything runs ----------------------------------------------------------------------


@pytest.mark.parametrize("fields, expected", [
    ({"factors": {"model.shift": ["cyclic", "diagonal"]}},
     "factors.model.shift: got 'diagonal'; allowed values are 'cyclic', 'none'"),
    ({"factors": {"model.shfit": ["cyclic"]}}, "factors.model.shfit: unknown key"),
    ({"variants": {"a": {}, "b": {"model.relative": "rope"}}}, "variants.b.model.relative: got 'rope'"),
    ({"variants": {"a": {}}, "sedes": [0]}, "sedes: unknown key; allowed keys are name, base"),
    ({"variants": {"a": {}}, "budget": {"trainer.max_epochs": 0}}, "budget.trainer.max_epochs: must be >= 1"),
    ({"variants": {"a": {}}, "baseline": "b"}, "baseline: got 'b'; allowed values are 'a'"),
    ({"variants": {"a": {}}, "objective": "test.acc"}, "objective: got 'test.acc'"),
    ({"variants": {"a": {}}, "factors": {"model.shift": ["none"]}}, "exactly one of factors"),
])
def test_bad_spec_fails_before_anything(tmp_path, capsys, fields, expected):
    spec = write_spec(tmp_path, "bad", **fields)
    out = tmp_path / "out"
    assert main(["ablate", str(spec), "--out", str(out)]) == 2
    assert expected in capsys.readouterr().err
    assert not out.exists()


def test_bad_spec_exit_code_in_a_real_process(tmp_path):
    spec = write_spec(tmp_path, "bad", factors={"model.shift": ["cyclic", "diagonal"]})
    r = ablate(spec, tmp_path / "out", tmp_path / "marker")
    assert r.returncode == 2
    assert "factors.model.shift: got 'diagonal'" in r.stderr
    assert not (tmp_path / "out").exists()


def test_shipped_specs_plan_and_dry_run(tmp_path, capsys):
    expected = {"quick": None, "swin_v1_table4": 5, "swin_v2_table6": 4, "factorial": 16}
    for name, variants in expected.items():
        plan = load_plan(ROOT / "ablations" / f"{name}.yaml")
        assert len({c.config.run_id() for c in plan.cells}) == len(plan.cells)  # one run folder per cell
        if variants is not None:
            assert len(plan.spec.variant_list()) == variants
        out = tmp_path / name
        assert main(["ablate", str(ROOT / "ablations" / f"{name}.yaml"), "--out", str(out), "--dry-run"]) == 0
        text = capsys.readouterr().out
        assert text.count("to do ") == len(plan.cells) and not out.exists()
    paper = load_plan(ROOT / "ablations" / "swin_v1_table4.yaml").spec.paper
    assert paper.rows["w/o shifting"] == {"top1": 80.2, "top5": 95.1}
    assert paper.source() == "Swin V1 Table 4, Swin-T, ImageNet-1K"


# -- the protocol on a real journal storage, in-process ---------------------------------------------------


def _two_refs(tmp_path, cells=("a|seed=0",)):
    path = tmp_path / "study.log"
    ref1 = store.create_study(store.open_storage(path), "p", "maximize", {"name": "p"}, list(cells))
    ref2 = store.find_study(store.open_storage(path), "p")  # a second "process": its own storage object
    return ref1, ref2


def test_racing_planners_run_a_cell_once(tmp_path):
    ref1, ref2 = _two_refs(tmp_path)
    attrs = {"kind": "train", "cell": "a|seed=0", "variant": "a", "seed": 0, "overrides": {}}
    store.enqueue(ref1, attrs)
    store.enqueue(ref2, attrs)  # a duplicate, as two planners racing would make
    late = store.claim(ref2)
    early = store.claim(ref1)
    assert {late.number, early.number} == {0, 1}
    assert store.claim(ref1) is None and store.claim(ref2) is None  # each WAITING trial is popped once
    runs = [t for t in (late, early) if store.duplicate_of(ref1, t) is None]
    assert [t.number for t in runs] == [0]  # the lowest active trial wins, in either order of checking
    # The loser checks before the winner was claimed: it still yields to the lower WAITING trial.
    store.enqueue(ref1, {**attrs, "cell": "b|seed=0"})
    store.enqueue(ref2, {**attrs, "cell": "b|seed=0"})
    waiting = sorted(ref1.trials(states=(TrialState.WAITING,)), key=lambda t: t.number)
    assert ref2.storage.set_trial_state_values(waiting[1]._trial_id, TrialState.RUNNING)
    assert store.duplicate_of(ref2, ref2.trial(waiting[1]._trial_id)).startswith("duplicate")


def test_stale_trial_is_failed_once_and_requeued(tmp_path):
    ref1, ref2 = _two_refs(tmp_path)
    store.enqueue(ref1, {"kind": "train", "cell": "a|seed=0", "variant": "a", "seed": 0, "overrides": {}})
    t = store.claim(ref1)
    assert store.reap_stale(ref2, grace=60) == []  # alive: fresh heartbeat, our own pid
    dead = store.worker_identity()
    dead["start"] = "0"  # this pid, but another process start: the worker is gone
    ref1.set_attr(t._trial_id, "worker", dead)
    assert store.reap_stale(ref2, grace=60) == [t.number]
    assert store.reap_stale(ref1, grace=60) == []  # a finished trial cannot be reaped twice
    assert not store.beat(ref1, t._trial_id)  # the presumed-dead owner learns it lost the cell
    states = sorted((x.number, x.state.name, x.user_attrs.get("error")) for x in ref1.trials())
    assert states == [(0, "FAIL", "worker died"), (1, "WAITING", None)]
    # Heartbeat age alone (another host: liveness unknown) also makes a trial stale.
    t2 = store.claim(ref2)
    ref2.set_attr(t2._trial_id, "worker", {"host": "elsewhere", "pid": 1})
    ref2.set_attr(t2._trial_id, "heartbeat", time.time() - 5)
    assert store.reap_stale(ref1, grace=60) == []
    assert store.reap_stale(ref1, grace=2) == [t2.number]


# -- end to end: real drivers, workers and children ---------------------------------------------------------


@pytest.mark.slow
def test_two_drivers_run_every_cell_once(tmp_path):
    spec = write_spec(tmp_path, "two", factors={"model.shift": ["cyclic", "none"]}, seeds=[0, 1])
    out, marker = tmp_path / "two", tmp_path / "marker"
    procs = [subprocess.Popen(ablate_cmd(spec, out, "--workers", "1"), env=run_env(marker), cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [p.communicate(timeout=240) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results
    ts = trials(out, "two")
    done = complete_per_cell(ts)
    assert sorted(done) == sorted(load_plan(spec).cell_ids) and set(done.values()) == {1}
    assert len(starts(marker)) == 4 and set(starts(marker).values()) == {1}, marker.read_text()
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in ts)
    assert all(t.user_attrs.get("error") == "duplicate" for t in ts if t.state == TrialState.PRUNED)
    t = next(t for t in ts if t.state == TrialState.COMPLETE)
    assert t.value == t.user_attrs["result"]["test"]["top1"] and t.params["cell"] == t.user_attrs["cell"]
    assert (out / t.user_attrs["run_dir"] / "result.json").is_file()
    assert (out / ".gitignore").read_text().count("runs/") == 1
    df = optuna.load_study(study_name="two", storage=store.open_storage(out / "study.log")).trials_dataframe()
    assert {"params_cell", "user_attrs_result", "user_attrs_run_dir"} <= set(df.columns)


@pytest.mark.slow
def test_kill_9_mid_cell_then_resume(tmp_path):
    budget = {**BUDGET, "trainer.max_epochs": 3, "data.train_size": 512, "trainer.checkpoint_every_n_steps": 2}
    spec = write_spec(tmp_path, "kill", variants={"a": {}, "b": {"model.shift": "none"}}, budget=budget)
    out, marker = tmp_path / "kill", tmp_path / "marker"
    cmd = ablate_cmd(spec, out, "--workers", "1", "--grace", "5", "--heartbeat", "1")
    proc = subprocess.Popen(cmd, env=run_env(marker), cwd=tmp_path, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 120
    victim = None
    try:
        while time.time() < deadline and victim is None:
            time.sleep(0.5)
            if not (out / "study.log").exists():
                continue
            ts = trials(out, "kill")
            done = [t for t in ts if t.state == TrialState.COMPLETE]
            running = [t for t in ts if t.state == TrialState.RUNNING and t.user_attrs.get("run_dir")]
            if done and running:  # one cell finished, the next one is training
                run_dir = out / running[0].user_attrs["run_dir"]
                if (run_dir / "checkpoints" / "last.ckpt").is_file():
                    victim = running[0]
        assert victim is not None, "no cell reached a checkpoint in time"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    time.sleep(0.5)
    pids = [int(line.split()[0]) for line in marker.read_text().splitlines()]
    for pid in pids:  # no orphan training survives its worker
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()
    before = {t.user_attrs["cell"]: t.number for t in trials(out, "kill") if t.state == TrialState.COMPLETE}

    r = ablate(spec, out, marker, "--workers", "1", "--grace", "5", "--heartbeat", "1")
    assert r.returncode == 0, r.stderr + worker_logs(out)
    ts = trials(out, "kill")
    done = complete_per_cell(ts)
    assert sorted(done) == sorted(load_plan(spec).cell_ids) and set(done.values()) == {1}
    after = {t.user_attrs["cell"]: t.number for t in ts if t.state == TrialState.COMPLETE}
    assert all(after[c] == n for c, n in before.items())  # finished cells were kept, not re-run
    killed = next(t for t in ts if t.number == victim.number)
    assert killed.state == TrialState.FAIL and killed.user_attrs["error"] == "worker died"
    counts = starts(marker)
    victim_run = Path(victim.user_attrs["run_dir"]).name
    assert counts[victim_run] == 2  # started, killed, resumed
    assert all(n == 1 for run, n in counts.items() if run != victim_run)
    cell = victim.user_attrs["cell"]
    resumed = next(t for t in ts if t.state == TrialState.COMPLETE and t.user_attrs["cell"] == cell)
    assert len(resumed.user_attrs["result"]["history"]) == 3


def _image_folder(root: Path) -> None:
    from PIL import Image

    for k, name in enumerate(("a", "b")):
        for i in range(12):
            path = root / name / f"{i}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (8, 8), (200 * k, 10 * i, 60)).save(path)


@pytest.mark.slow
def test_failures_are_recorded_and_retried(tmp_path, capsys):
    data = tmp_path / "images"  # does not exist yet: the cell fails at run time, not at planning
    variants = {
        "ok": {},
        "folder": {"data.source": "folder", "data.root": str(data), "model.num_classes": 2},
        "nan": {"optim.lr": 1.0e+30, "optim.grad_clip": 0.0, "optim.warmup_epochs": 0.0},
    }
    spec = write_spec(tmp_path, "fail", variants=variants)
    out, marker = tmp_path / "fail", tmp_path / "marker"
    r = ablate(spec, out, marker)
    assert r.returncode == 1, r.stderr + worker_logs(out)
    assert "failed: folder|seed=0" in r.stderr and "--retry-failed" in r.stderr
    by_cell = {t.user_attrs["cell"]: t for t in trials(out, "fail")}
    assert by_cell["ok|seed=0"].state == TrialState.COMPLETE
    assert by_cell["folder|seed=0"].state == TrialState.FAIL
    assert str(data) in by_cell["folder|seed=0"].user_attrs["error"]
    assert by_cell["nan|seed=0"].state == TrialState.FAIL
    nan_error = by_cell["nan|seed=0"].user_attrs["error"]
    assert "NaN" in nan_error or "non-finite" in nan_error, nan_error
    assert all("\n" not in t.user_attrs["error"] for t in by_cell.values() if t.state == TrialState.FAIL)

    assert main(["ablate", str(spec), "--out", str(out), "--dry-run"]) == 0
    listing = capsys.readouterr().out
    assert "done " in listing and "failed: " in listing and str(data) in listing

    r = ablate(spec, out, marker)  # without --retry-failed: nothing to do
    assert r.returncode == 1 and len(trials(out, "fail")) == 3
    _image_folder(data)  # fix the cause
    r = ablate(spec, out, marker, "--retry-failed")
    assert r.returncode == 1  # the NaN cell fails again
    ts = trials(out, "fail")
    assert complete_per_cell(ts) == Counter({"ok|seed=0": 1, "folder|seed=0": 1})
    assert starts(marker)[by_cell["ok|seed=0"].user_attrs["run_dir"].split("/")[-1]] == 1


@pytest.mark.slow
def test_search_mode_samples_and_prunes(tmp_path):
    search = {"params": {"optim.lr": {"low": 1e-4, "high": 1e-2, "log": True},
                         "optim.weight_decay": {"low": 0.01, "high": 0.1}},
              "trials": 3, "per_variant": True}
    spec = write_spec(tmp_path, "search", variants={"v1": {}}, mode="search", search=search,
                      budget={**BUDGET, "trainer.max_epochs": 2})
    out, marker = tmp_path / "search", tmp_path / "marker"
    r = ablate(spec, out, marker, "--workers", "1")
    assert r.returncode == 0, r.stderr + worker_logs(out)
    ts = trials(out, "search")
    assert len(ts) == 3 and all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in ts)
    lrs = {t.params["optim.lr"] for t in ts}
    assert len(lrs) == 3 and all(1e-4 <= lr <= 1e-2 for lr in lrs)
    for t in ts:
        assert t.user_attrs["search_values"]["optim.lr"] == t.params["optim.lr"]
        assert t.intermediate_values  # the child reported val/top1 per epoch through its own connection
    assert len({t.user_attrs["run_dir"] for t in ts}) == 3


# -- window transfer cells (Swin V2 Table 1) ----------------------------------------------------------------


def test_transfer_cells_run_after_their_trained_cell(tmp_path):
    spec = write_spec(tmp_path, "tr", variants={"table": {"model.relative": "table"},
                                                 "log": {"model.relative": "cpb_log"}},
                      budget={**BUDGET, "model.patch_size": 4},
                      transfer={"targets": ["48:6"], "finetune_epochs": 1})
    out = tmp_path / "tr"
    proc = ablate(spec, out, tmp_path / "marker")
    assert proc.returncode == 0, proc.stderr[-3000:] + worker_logs(out)
    ts = trials(out, "tr")
    done = [t for t in ts if t.state == TrialState.COMPLETE and t.user_attrs["kind"] == "transfer"]
    assert sorted((t.user_attrs["variant"], t.user_attrs["method"]) for t in done) == [
        ("log", "extrapolate"), ("table", "bicubic")]
    for t in done:
        r = t.user_attrs["result"]
        assert 0 <= r["top1"] <= 100 and 0 <= r["top1_ft"] <= 100 and t.value == r["top1"]
        assert (t.user_attrs["img_size"], t.user_attrs["window_size"], t.user_attrs["finetune_epochs"]) == (48, 6, 1)
    from swin_lit.report.build import build_report

    build_report(out, out=tmp_path / "report")
    assert "W6,I48" in (tmp_path / "report" / "report.md").read_text()


def test_transfer_target_the_model_cannot_take_fails_before_anything(tmp_path, capsys):
    spec = write_spec(tmp_path, "bad", variants={"a": {}}, budget={**BUDGET, "model.patch_size": 4},
                      transfer={"targets": ["50:5"]})
    assert main(["ablate", str(spec), "--out", str(tmp_path / "bad"), "--no-progress"]) == 2
    assert "50:5" in capsys.readouterr().err and not (tmp_path / "bad").exists()
