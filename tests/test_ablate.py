"""``swin-lit ablate``: spec validation, the params, the claim/liveness protocol on real storages, and
end-to-end studies with real worker processes on a real journal storage (several drivers, kill -9 and
resume, failures and retry, search, transfer), read back by Optuna's own tools (trials_dataframe,
get_param_importances, a real optuna-dashboard server)."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path

import optuna
import pytest
import yaml
from helpers.clock import FakeClock
from helpers.data import camvid_folder
from helpers.studies import (
    BUDGET,
    ablate,
    ablate_cmd,
    age_heartbeat,
    run_env,
    slurm_study,
    starts,
    trials,
    worker_logs,
    write_spec,
)
from optuna.trial import TrialState

from swin_lit import study as contract
from swin_lit.ablate import store
from swin_lit.ablate.spec import load_plan, resolve_base
from swin_lit.cli import main
from swin_lit.data.sources import embedded
from swin_lit.domain.cell import CellId
from swin_lit.domain.spec import Spec
from swin_lit.record import write_json_atomic

ROOT = Path(__file__).resolve().parents[1]


def complete_per_cell(ts) -> Counter:
    return Counter(t.user_attrs["cell"] for t in ts if t.state == TrialState.COMPLETE)


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
    ({"factors": {"trainer.compile": [True, False]}}, "factors.trainer.compile: cannot tell variants apart"),
    ({"variants": {"a": {}, "b": {"trainer.compile": True}}}, "variants.b.trainer.compile: cannot tell variants"),
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
    variant_counts = {"swin_v1_table4": 5, "swin_v2_table6": 4, "factorial": 16, "swin_v1_table4_dense": 5,
                      "camvid_table4": 5, "swin_v2_table1": 3, "swin_v2_table1_dense": 3}
    names = sorted(path.stem for path in (ROOT / "ablations").glob("*.yaml"))
    assert set(variant_counts) < set(names)
    # CamVid's base config reads its class count from ../data/camvid, relative to where swin-lit runs: run that
    # spec from a folder beside which the test writes a small CamVid
    camvid_folder(tmp_path / "data" / "camvid")
    (tmp_path / "work").mkdir()
    for name in names:
        with contextlib.chdir(tmp_path / "work" if name == "camvid_table4" else Path.cwd()):
            _plan_and_dry_run(name, variant_counts.get(name), tmp_path, capsys)
    paper = load_plan(ROOT / "ablations" / "swin_v1_table4.yaml").spec.paper
    assert paper.rows["w/o shifting"] == {"top1": 80.2}  # no top-5 on the marks: every variant scores 100
    assert paper.source() == "Swin V1 Table 4, Swin-T, ImageNet-1K"


def _plan_and_dry_run(name: str, variants: int | None, tmp_path: Path, capsys) -> None:
    """A shipped spec plans one run folder per train cell, valid Optuna params for every cell, and a dry run that
    lists the cells it would queue first and creates nothing."""
    path = ROOT / "ablations" / f"{name}.yaml"
    plan = load_plan(path)
    train = [c for c in plan.cells if c.kind == "train"]
    assert len({c.config.run_id() for c in train}) == len(train)  # one run folder per train cell
    if variants is not None:
        assert len(plan.spec.variant_list()) == variants
    # The cell identity is derived from the params, and every param has its distribution.
    stored = Spec.from_stored(plan.spec.to_plain())  # what every reader of the study reads back
    assert stored == plan.spec
    dists = stored.param_distributions()
    for cell in plan.cells:
        assert str(stored.cell_id(cell.kind, cell.params)) == cell.id
        assert CellId.parse(cell.id) == stored.cell_id(cell.kind, cell.params)
        # create_trial validates each value against its distribution (what add_trial stores)
        optuna.trial.create_trial(state=TrialState.WAITING, params=cell.params,
                                  distributions={k: dists[k] for k in cell.params})
    out = tmp_path / name
    if any(not embedded(c.config.data.source) and not Path(c.config.data.root).is_dir()
           for c in plan.cells):  # real data: the dry run checks its folder exists; point it at one
        path = _with_data_root(path, tmp_path / f"{name}-data")
    assert main(["ablate", str(path), "--out", str(out), "--dry-run"]) == 0
    text = capsys.readouterr().out
    first = [c for c in plan.cells if c.seed in plan.spec.first_seeds]  # adaptive seeds: the rule's start
    assert text.count("missing ") == len(first) and not out.exists()


def _with_data_root(spec_path: Path, root: Path) -> Path:
    """A copy of a shipped spec whose cells read ``root`` (created, empty) instead of the shared data."""
    spec = yaml.safe_load(spec_path.read_text())
    spec["base"] = str(resolve_base(spec["base"], spec_path).resolve())
    spec["budget"] = {**(spec.get("budget") or {}), "data.root": str(root)}
    root.mkdir()
    copy = root.parent / spec_path.name
    copy.write_text(yaml.safe_dump(spec, sort_keys=False))
    return copy


def test_params_are_the_switches(tmp_path):
    """One param per factor (lists such as depths as their JSON text), plus seed; named variants: variant."""
    spec = write_spec(tmp_path, "p", factors={"model.shift": ["cyclic", "none"], "model.depths": [[2], [1]]},
                      seeds=[0, 3])
    plan = load_plan(spec)
    cell = plan.cells[0]
    assert cell.params == {"model.shift": "cyclic", "model.depths": "[2]", "seed": 0}
    stored = Spec.from_stored(plan.spec.to_plain())
    dists = stored.param_distributions()
    assert dists["model.depths"].choices == ("[2]", "[1]")
    assert isinstance(dists["seed"], optuna.distributions.IntDistribution)  # seeds added later stay compatible
    assert stored.decode("model.depths", "[1]") == [1]
    named = load_plan(write_spec(tmp_path, "n", variants={"a": {}, "b": {"model.shift": "none"}}))
    assert named.cells[1].params == {"variant": "b", "seed": 0}


# -- the protocol on real storages, in-process ------------------------------------------------------------


CELL = {"kind": "train", "cell": "a|seed=0", "variant": "a", "seed": 0, "overrides": {}}
SPEC = {"name": "p", "variants": {"a": {}, "b": {}}, "seeds": [0]}
DISTS = Spec.from_stored(SPEC).param_distributions()


def _two_refs(tmp_path, target=None, grace=60.0):
    target = target or tmp_path / "study.log"
    ref1 = store.create_study(store.open_storage(target, grace=grace), "p", "maximize", SPEC, ["a|seed=0"], grace)
    ref2 = store.find_study(store.open_storage(target, grace=grace), "p", grace)  # a second "process"
    return ref1, ref2


def _queue(ref, cell="a|seed=0"):
    store.add_waiting(ref.study, {**CELL, "cell": cell, "variant": cell[0]}, {"variant": cell[0], "seed": 0}, DISTS)


def test_racing_planners_run_a_cell_once(tmp_path):
    ref1, ref2 = _two_refs(tmp_path)
    _queue(ref1)
    _queue(ref2)  # a duplicate, as two planners racing would make
    late = store.claim(ref2)
    early = store.claim(ref1)
    assert {late.number, early.number} == {0, 1}
    assert store.claim(ref1) is None and store.claim(ref2) is None  # each WAITING trial is popped once
    assert len(ref1.trials()) == 2  # and no empty trial was asked for
    runs = [t for t in (late, early) if store.duplicate_of(ref1, t) is None]
    assert [t.number for t in runs] == [0]  # the lowest active trial wins, in either order of checking
    assert late.params == {"variant": "a", "seed": 0}  # the params were there while the trial waited
    # The loser checks before the winner was claimed: it still yields to the lower WAITING trial.
    _queue(ref1, "b|seed=0")
    _queue(ref2, "b|seed=0")
    first = store.claim(ref2)
    assert first.number == 2 and store.duplicate_of(ref2, first) is None
    second = store.claim(ref1)
    assert store.duplicate_of(ref1, second).startswith("duplicate")


def test_a_claim_that_finds_the_queue_empty_leaves_no_cell(tmp_path, monkeypatch):
    """ask() makes a fresh trial when a racing worker emptied the queue: it is failed at once and no reader
    counts it as a cell."""
    ref1, ref2 = _two_refs(tmp_path)
    _queue(ref1)
    seen = ref2.trials(states=(TrialState.WAITING,))
    assert store.claim(ref1) is not None
    monkeypatch.setattr(ref2, "trials", lambda states=None: seen if states == (TrialState.WAITING,) else
                        ref2.study.get_trials(deepcopy=False, states=states))  # ref2 looked before ref1 popped
    assert store.claim(ref2) is None
    fresh = ref1.trials()[-1]
    assert fresh.state == TrialState.FAIL and fresh.user_attrs == {"error": store.EMPTY_QUEUE}
    assert list(contract.trials_by_cell(ref1.trials())) == ["a|seed=0"]


def test_stale_trial_is_failed_once_and_requeued(tmp_path):
    ref1, ref2 = _two_refs(tmp_path)
    clock = FakeClock(time.time())  # leases and their ages read this clock: the test moves time, never sleeps
    ref1.liveness.clock = ref2.liveness.clock = clock
    _queue(ref1)
    t = store.claim(ref1)
    lease = ref1.liveness.path(t.number)
    assert lease.is_file() and lease.parent == tmp_path / "study.log.leases"
    assert store.reap_stale(ref2) == []  # alive: fresh lease, our own pid
    dead = store.worker_identity()
    dead["start"] = "0"  # this pid, but another process start: the worker is gone
    t.set_user_attr("worker", dead)
    assert store.reap_stale(ref2) == [t.number]
    assert store.reap_stale(ref1) == []  # a finished trial cannot be reaped twice
    assert not store.beat(ref1, t)  # the presumed-dead owner learns it lost the cell
    states = sorted((x.number, x.state.name, contract.error_of(x)) for x in ref1.trials())
    assert states == [(0, "FAIL", "worker died"), (1, "WAITING", None)]
    retry = ref1.trials()[1]
    assert retry.params == t.params and retry.user_attrs["cell"] == "a|seed=0"
    # Optuna's retry bookkeeping, as RetryHeartbeatStaleTrialCallback.retried_trial_number / retry_history read it
    assert retry.system_attrs["failed_trial"] == 0 and retry.system_attrs["retry_history"] == [0]

    # Lease age alone (another host: liveness unknown) also makes a trial stale.
    t2 = store.claim(ref2)
    t2.set_user_attr("worker", {"host": "elsewhere", "pid": 1})
    write_json_atomic(ref2.liveness.path(t2.number), {"time": clock(), "worker": {"host": "elsewhere"}})
    ref1.liveness.grace = 2
    clock.advance(1.9)
    assert store.reap_stale(ref1) == []  # 1.9 s old: within the grace period
    clock.advance(0.2)
    assert store.reap_stale(ref1) == [t2.number]  # 2.1 s old
    # No lease at all (a worker that died between its claim and its first lease) counts from the trial's start
    # (Optuna's datetime_start, a real time: the fake clock runs ahead of it by the 2.1 s it was moved).
    t3 = store.claim(ref1)
    t3.set_user_attr("worker", {"host": "elsewhere", "pid": 1})
    ref1.liveness.end(t3.number)
    ref2.liveness.grace = 60
    assert store.reap_stale(ref2) == []
    clock.advance(120)
    assert store.reap_stale(ref2) == [t3.number]
    # Liveness never entered the study's permanent record.
    assert '"heartbeat"' not in (tmp_path / "study.log").read_text()


def test_rdb_storages_use_optunas_heartbeat(tmp_path):
    """On an RDB storage a worker that stops beating is failed by optuna.storages.fail_stale_trials (its
    heartbeat table, not the study's user attrs) and our stale-trial callback re-queues the cell."""
    url = f"sqlite:///{tmp_path / 'study.db'}"
    ref1, ref2 = _two_refs(tmp_path, url, grace=1)
    assert isinstance(ref1.liveness, store.RDBHeartbeat)
    _queue(ref1)
    t = store.claim(ref1)  # recorded its first heartbeat
    t.set_user_attr("worker", {"host": "elsewhere", "pid": 1})
    assert store.reap_stale(ref2) == []
    age_heartbeat(ref1.opened.storage, t)  # its worker silent for years, in Optuna's own heartbeat table
    assert store.reap_stale(ref2) == [t.number]
    states = sorted((x.number, x.state.name, contract.error_of(x)) for x in ref2.trials())
    assert states == [(0, "FAIL", "worker died"), (1, "WAITING", None)]
    assert all("heartbeat" not in x.user_attrs for x in ref2.trials())


def test_a_changed_grid_in_an_existing_study_is_refused(tmp_path, capsys):
    spec = write_spec(tmp_path, "g", factors={"model.shift": ["cyclic", "none"]})
    out = tmp_path / "g"
    opened = store.open_storage(out / "study.log")
    plan = load_plan(spec)
    ref = store.create_study(opened, "g", "maximize", plan.spec.to_plain(), plan.cell_ids)
    store.plan_cells(ref, plan.cells)
    spec = write_spec(tmp_path, "g", factors={"model.shift": ["cyclic"]})
    assert main(["ablate", str(spec), "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "param model.shift" in err and "another study name" in err


# -- end to end: real drivers, workers and children ---------------------------------------------------------


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    """A finished 2 x 2 grid (shift x position, one seed, two epochs), run by two drivers at once."""
    tmp_path = tmp_path_factory.mktemp("grid")
    spec = write_spec(tmp_path, "two", factors={"model.shift": ["cyclic", "none"],
                                                "model.relative": ["table", "none"]},
                      budget={**BUDGET, "trainer.max_epochs": 2})
    out, marker = tmp_path / "two", tmp_path / "marker"
    procs = [subprocess.Popen(ablate_cmd(spec, out, "--workers", "1"), env=run_env(marker), cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results
    return spec, out, marker


@pytest.mark.slow
def test_two_drivers_run_every_cell_once(grid):
    spec, out, marker = grid
    ts = trials(out, "two")
    done = complete_per_cell(ts)
    assert sorted(done) == sorted(load_plan(spec).cell_ids) and set(done.values()) == {1}
    assert len(starts(marker)) == 4 and set(starts(marker).values()) == {1}, marker.read_text()
    for t in ts:
        assert t.state == TrialState.COMPLETE or (t.state == TrialState.PRUNED and t.user_attrs["error"].startswith(
            "duplicate")) or (t.state == TrialState.FAIL and t.user_attrs == {"error": store.EMPTY_QUEUE})
    t = next(t for t in ts if t.state == TrialState.COMPLETE)
    assert t.value == t.user_attrs["result"]["test"]["top1"]
    assert (out / t.user_attrs["run_dir"] / "result.json").is_file()
    assert (out / ".gitignore").read_text().count("runs/") == 1
    assert not list((out / "study.log.leases").iterdir())  # every lease was removed with its trial
    assert '"heartbeat"' not in (out / "study.log").read_text()


@pytest.mark.slow
def test_optunas_own_tools_read_the_switches(grid):
    """The params are the switches: trials_dataframe has a column per switch, get_param_importances names
    them, and each trial carries its learning curve (val top-1 per epoch) as intermediate values."""
    spec, out, _ = grid
    study = optuna.load_study(study_name="two", storage=contract.open_storage(out).storage)
    df = study.trials_dataframe()
    assert {"params_model.shift", "params_model.relative", "params_seed", "user_attrs_result",
            "user_attrs_run_dir", "user_attrs_cell"} <= set(df.columns)
    importances = optuna.importance.get_param_importances(study)
    assert {"model.shift", "model.relative"} <= set(importances)
    for t in study.get_trials(states=(TrialState.COMPLETE,)):
        curve = [h["val_top1"] for h in t.user_attrs["result"]["history"]]
        assert [t.intermediate_values[e] for e in sorted(t.intermediate_values)] == curve and len(curve) == 2
        assert str(Spec.from_stored(load_plan(spec).spec.to_plain()).cell_id("train", t.params)) == t.user_attrs["cell"]


@pytest.mark.slow
def test_optuna_dashboard_serves_the_study(grid):
    """optuna-dashboard, a real server on loopback against the study's journal, answers its trials API with
    the params, values, intermediate values and user attrs."""
    exe = Path(sys.executable).with_name("optuna-dashboard")
    if importlib.util.find_spec("optuna_dashboard") is None or not exe.exists():
        pytest.skip("optuna-dashboard is not installed (pip install -e '.[dashboard]'; the test extras have it)")
    _, out, _ = grid
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([str(exe), str(out / "study.log"), "--host", "127.0.0.1", "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            try:
                studies = json.load(urllib.request.urlopen(f"{base}/api/studies", timeout=5))["study_summaries"]
                break
            except OSError:
                assert server.poll() is None and time.time() < deadline, server.stderr.read() if server.poll() else ""
                time.sleep(0.5)
        (entry,) = [s for s in studies if s["study_name"] == "two"]
        detail = json.load(urllib.request.urlopen(f"{base}/api/studies/{entry['study_id']}", timeout=30))
    finally:
        server.terminate()
        server.wait(timeout=30)
    done = [t for t in detail["trials"] if t["state"] == "Complete"]
    assert len(done) == 4
    stored = {t.number: t for t in trials(out, "two")}
    for t in done:
        params = {p["name"]: p["param_external_value"] for p in t["params"]}
        assert set(params) == {"model.shift", "model.relative", "seed"}
        attrs = {a["key"]: a["value"] for a in t["user_attrs"]}
        variant = f"model.shift={params['model.shift']},model.relative={params['model.relative']}"
        assert attrs["cell"] == f"{variant}|seed={params['seed']}"
        record = stored[t["number"]].user_attrs["result"]
        assert record["test"]["top1"] == t["values"][0]
        assert attrs["result"] == json.dumps(record)[:1024]  # the dashboard shows a JSON attr's first 1024 chars
        assert len(t["values"]) == 1 and [v["step"] for v in t["intermediate_values"]] == [0, 1]
    assert {p["name"] for p in detail["intersection_search_space"]} >= {"model.shift", "model.relative"}


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
    assert [p.name for p in (out / "study.log.leases").iterdir()] == [f"kill-{victim.number}.json"]

    r = ablate(spec, out, marker, "--workers", "1", "--grace", "5", "--heartbeat", "1", timeout=400)
    assert r.returncode == 0, r.stderr + worker_logs(out)
    ts = trials(out, "kill")
    done = complete_per_cell(ts)
    assert sorted(done) == sorted(load_plan(spec).cell_ids) and set(done.values()) == {1}
    after = {t.user_attrs["cell"]: t.number for t in ts if t.state == TrialState.COMPLETE}
    assert all(after[c] == n for c, n in before.items())  # finished cells were kept, not re-run
    killed = next(t for t in ts if t.number == victim.number)
    assert killed.state == TrialState.FAIL and contract.error_of(killed) == "worker died"
    counts = starts(marker)
    victim_run = Path(victim.user_attrs["run_dir"]).name
    assert counts[victim_run] == 2  # started, killed, resumed
    assert all(n == 1 for run, n in counts.items() if run != victim_run)
    cell = victim.user_attrs["cell"]
    resumed = next(t for t in ts if t.state == TrialState.COMPLETE and t.user_attrs["cell"] == cell)
    assert len(resumed.user_attrs["result"]["history"]) == 3
    assert sorted(resumed.intermediate_values) == [0, 1, 2]  # the whole curve, epochs before the kill too
    assert resumed.params == killed.params
    assert not list((out / "study.log.leases").iterdir())


def _image_folder(root: Path) -> None:
    from PIL import Image

    for k, name in enumerate(("a", "b")):
        for i in range(12):
            path = root / name / f"{i}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (8, 8), (200 * k, 10 * i, 60)).save(path)


@pytest.mark.slow
def test_failures_are_recorded_and_retried(tmp_path, capsys):
    data = tmp_path / "images"  # there but empty: the cell fails at run time, not at planning
    data.mkdir()
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
    assert "finished " in listing and "failed: " in listing and str(data) in listing

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
        assert {"variant", "seed", "search_index", "optim.lr", "optim.weight_decay"} == set(t.params)
        ran = yaml.safe_load((out / t.user_attrs["run_dir"] / "config.yaml").read_text())
        assert ran["optim"]["lr"] == t.params["optim.lr"]  # the run trained the values Optuna sampled
        assert t.intermediate_values  # the worker relayed val/top1 per epoch from the run folder
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
        assert t.params == {"variant": t.user_attrs["variant"], "seed": 0, "method": t.user_attrs["method"],
                            "img_size": 48, "window_size": 6}
        source = next(x for x in ts if x.user_attrs["cell"] == t.user_attrs["source_cell"])
        assert source.datetime_complete <= t.datetime_start  # queued once its trained cell had finished
    from swin_lit.report.build import build_report

    build_report(out, out=tmp_path / "report")
    assert "W6,I48" in (tmp_path / "report" / "report.md").read_text()


def test_transfer_target_the_model_cannot_take_fails_before_anything(tmp_path, capsys):
    spec = write_spec(tmp_path, "bad", variants={"a": {}}, budget={**BUDGET, "model.patch_size": 4},
                      transfer={"targets": ["50:5"]})
    assert main(["ablate", str(spec), "--out", str(tmp_path / "bad"), "--no-progress"]) == 2
    assert "50:5" in capsys.readouterr().err and not (tmp_path / "bad").exists()


# -- SLURM through submitit ----------------------------------------------------------------------------------


@pytest.mark.slow
def test_slurm_array_via_submitit_on_a_journal(tmp_path):
    spec, _ = slurm_study(tmp_path, "sl")
    out = tmp_path / "sl"
    done = complete_per_cell(trials(out, "sl"))
    assert sorted(done) == sorted(load_plan(spec).cell_ids) and set(done.values()) == {1}
    assert len(starts(tmp_path / "marker")) == 4 and set(starts(tmp_path / "marker").values()) == {1}
    logs = "\n".join(p.read_text() for p in (out / "slurm").rglob("*.out"))
    assert logs.count("no cell left; exiting") == 2  # both array workers ran the worker loop to its end


def test_slurm_options_are_checked_before_anything(tmp_path, capsys):
    spec = write_spec(tmp_path, "so", variants={"a": {}})
    out = tmp_path / "so"
    for extra, expected in ((["--slurm", "partion=gpu"], "--slurm 'partion=gpu': expected KEY=VALUE with KEY one"),
                            (["--slurm", "time=long"], "time must be an integer"),
                            (["--jobs", "2"], "--jobs and --slurm are for --launcher slurm"),
                            (["--launcher", "slurm", "--jobs", "0"], "--jobs: must be >= 1")):
        launcher = [] if "--launcher" in extra or "--jobs" in extra else ["--launcher", "slurm"]
        assert main(["ablate", str(spec), "--out", str(out), *launcher, *extra]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and expected in err, err
    assert not out.exists()


def test_cells_left_waiting_after_a_round_get_another_round_of_workers(tmp_path, monkeypatch, capsys):
    """A round of workers can end while cells wait to be claimed: on an adaptive study driven twice, this driver's
    workers found nothing active and left a moment before the other driver queued the next seeds. Anything
    waiting after a round means another round (up to the cap), not a driver that stops with work queued. Here
    the workers are replaced by a stand-in that claims nothing, so the cells stay waiting for every round."""
    from swin_lit.ablate import command

    rounds = []
    monkeypatch.setattr(command, "run_workers", lambda ref, plan, *args, **kw: rounds.append(len(plan.cells)))
    spec = write_spec(tmp_path, "waits", variants={"a": {}, "b": {"model.shift": "none"}})
    assert main(["ablate", str(spec), "--out", str(tmp_path / "waits"), "--no-progress", "--no-report"]) == 0
    assert rounds == [2, 2, 2, 2]  # the cap of four rounds for listed seeds, every one with both cells waiting
    assert "0 of 2 cells done, 0 failed, 2 still running elsewhere" in capsys.readouterr().err
