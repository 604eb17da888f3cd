"""A long-lived ablation worker: ``python -m swin_lit.ablate.worker --storage S --study NAME --out DIR``.

It imports torch and Lightning once, then loops: recover stale trials, claim a WAITING cell trial (see
``swin_lit.ablate.store`` for the protocol), fork a child that trains the cell, heartbeat while it runs,
and record the outcome. The child never talks to the parent's storage connections; it writes its outcome
to a file and the result record to the run folder. A crash, an out-of-memory kill or a NaN in the child
becomes a FAILED cell with a one-line reason; the worker goes on. The child dies with its worker
(``PR_SET_PDEATHSIG``), so a killed worker leaves no training behind.

The worker exits when the study has no WAITING or RUNNING cell trial left (it keeps polling while other
workers' cells run, so it can take over a cell whose worker died).
"""

from __future__ import annotations

import argparse
import ctypes
import fcntl
import json
import math
import os
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path

from optuna.trial import TrialState

from swin_lit.ablate import store
from swin_lit.ablate.spec import apply_search_values, distribution, metric_value

PR_SET_PDEATHSIG = 1
POLL_S = 1.0


def die_with_parent(sig: int = signal.SIGKILL) -> None:
    """Linux: have the kernel send ``sig`` to this process when its parent exits."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
    except (OSError, AttributeError):
        pass


def one_line(err: BaseException) -> str:
    text = f"{type(err).__name__}: {err}".strip()
    line = " ".join(text.split())
    return line[:500]


class Stop(Exception):
    """SIGTERM / SIGINT: stop after handing the current cell back."""


class Worker:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.out = Path(args.out)
        self.runs = self.out / "runs"
        self.storage = store.open_storage(args.storage)
        ref = store.find_study(self.storage, args.study)
        if ref is None:
            raise SystemExit(f"worker: no study {args.study!r} in {args.storage}")
        self.ref = ref
        self.spec = ref.study.user_attrs.get("spec") or {}
        self.child: int | None = None
        self.stopping = False

    # -- main loop --------------------------------------------------------------------------------------
    def run(self) -> int:
        idle_since = None
        while not self.stopping:
            store.reap_stale(self.ref, self.args.grace)
            t = store.claim(self.ref)
            if t is None:
                active = [x for x in self.ref.trials(states=(TrialState.WAITING, TrialState.RUNNING))
                          if x.user_attrs.get("cell") is not None]
                if not active:
                    return 0
                idle_since = idle_since or time.time()
                time.sleep(POLL_S)
                continue
            idle_since = None
            reason = store.duplicate_of(self.ref, t)
            if reason:
                log(f"trial {t.number} ({t.user_attrs['cell']}): {reason}; giving it up")
                store.give_up(self.ref, t._trial_id)
                continue
            self.run_trial(t)
        return 0

    # -- one cell ---------------------------------------------------------------------------------------
    def run_trial(self, t) -> None:
        from swin_lit.train.runs import run_dir_for

        ref, tid = self.ref, t._trial_id
        attrs = t.user_attrs
        cell = attrs["cell"]
        if attrs.get("kind") == "transfer":
            return self.run_transfer(t)
        try:
            cfg, values = self.resolve(t)
        except Exception as err:  # noqa: BLE001 - a bad stored config: fail the cell, keep going
            store.finish(ref, tid, TrialState.FAIL, attrs={"error": one_line(err)})
            return
        self.set_params(t, values)
        run_dir = run_dir_for(cfg, self.runs)
        ref.set_attr(tid, "run_dir", os.path.relpath(run_dir, self.out))
        log(f"trial {t.number}: {cell} -> {run_dir}")
        lock = self.lock_run(run_dir, tid)
        if lock is None:
            log(f"trial {t.number}: taken over by another worker; dropping it")
            return
        outcome_fd, outcome_path = tempfile.mkstemp(prefix="swin-lit-cell-", suffix=".json")
        os.close(outcome_fd)
        try:
            status = self.fork_and_wait(lambda: self.train_job(cfg, tid), tid, outcome_path)
            if status is None:  # presumed dead by another worker, who re-queued the cell
                log(f"trial {t.number}: finished by someone else while running; child stopped")
                return
            self.record(t, run_dir, status, outcome_path)
        except Stop:
            if store.finish(ref, tid, TrialState.FAIL, attrs={"error": store.INTERRUPTED}):
                store.enqueue(ref, {**attrs, **({"search_values": values} if values else {}), "retry_of": t.number})
            self.stopping = True
        finally:
            Path(outcome_path).unlink(missing_ok=True)
            os.close(lock)

    def resolve(self, t):
        """The cell's RunConfig (search mode: with its sampled values) and the sampled values."""
        from swin_lit.config import config_from_dict

        attrs = t.user_attrs
        if self.spec.get("mode") != "search":
            return config_from_dict(attrs["config"]), None
        values = attrs.get("search_values")
        if values is None:
            values = self.sample(t)
            self.ref.set_attr(t._trial_id, "search_values", values)
        return apply_search_values(attrs["config"], values), values

    def sample(self, t) -> dict:
        import optuna

        search = self.spec["search"]
        sampler = optuna.samplers.TPESampler(seed=int(search.get("seed", 0)) + t.number)
        study = optuna.load_study(study_name=self.args.study, storage=self.storage, sampler=sampler)
        trial = optuna.Trial(study, t._trial_id)
        return {key: trial._suggest(key, distribution(rng)) for key, rng in search["params"].items()}

    def set_params(self, t, values) -> None:
        """The ``cell`` param (dashboard / trials_dataframe), and on a re-queued search trial its values."""
        from optuna.distributions import CategoricalDistribution

        cells = self.ref.study.user_attrs.get("cells") or []
        params = {}
        current = self.ref.trial(t._trial_id).params
        if t.user_attrs["cell"] in cells and "cell" not in current:
            params["cell"] = (CategoricalDistribution(cells), t.user_attrs["cell"])
        for key, value in (values or {}).items():
            if key not in current:
                params[key] = (distribution(self.spec["search"]["params"][key]), value)
        for name, (dist, value) in params.items():
            try:
                self.ref.storage.set_trial_param(t._trial_id, name, dist.to_internal_repr(value), dist)
            except (ValueError, KeyError):
                pass  # incompatible with an earlier spec's distribution: the user attrs still say it

    def lock_run(self, run_dir: Path, tid: int) -> int | None:
        """An exclusive lock on the run folder (the previous owner's child may still be stopping)."""
        locks = self.runs / ".locks"
        locks.mkdir(parents=True, exist_ok=True)
        fd = os.open(locks / f"{run_dir.name}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        last = time.time()
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return fd
            except BlockingIOError:
                pass
            if time.time() - last >= self.args.heartbeat:
                last = time.time()
                if not store.beat(self.ref, tid):
                    os.close(fd)
                    return None
            time.sleep(0.5)

    def fork_and_wait(self, job, tid: int, outcome_path: str) -> int | None:
        """Run ``job`` (-> outcome dict) in a forked child; heartbeat meanwhile. Returns the wait status,
        None if taken over."""
        sys.stdout.flush()
        sys.stderr.flush()
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:  # the child: never returns
            self.child_main(job, outcome_path, parent)
        self.child = pid
        last = time.time()
        try:
            while True:
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    return status
                if self.stopping:
                    raise Stop
                if time.time() - last >= self.args.heartbeat:
                    last = time.time()
                    if not store.beat(self.ref, tid):
                        os.kill(pid, signal.SIGKILL)
                        os.waitpid(pid, 0)
                        return None
                time.sleep(0.2)
        except BaseException:
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
            raise
        finally:
            self.child = None

    def child_main(self, job, outcome_path: str, parent: int) -> None:
        code = 0
        try:
            die_with_parent(signal.SIGKILL)
            if os.getppid() != parent:
                os._exit(1)
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # the worker decides what an interrupt means
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            import torch

            torch.set_num_threads(self.args.threads)
            outcome = job()
        except BaseException as err:  # noqa: BLE001 - everything becomes the cell's outcome
            import optuna

            if isinstance(err, optuna.TrialPruned):
                outcome = {"status": "pruned", "error": one_line(err)}
            else:
                traceback.print_exc()
                outcome = {"status": "error", "error": one_line(err)}
        try:
            with open(outcome_path, "w") as f:
                json.dump(outcome, f)
        except BaseException:  # noqa: BLE001
            code = 3
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)

    def train_job(self, cfg, tid: int) -> dict:
        """In the child: train one cell (its result record goes to the run folder)."""
        callbacks = self.pruning_callbacks(tid)
        from swin_lit.train.runs import train

        marker = os.environ.get("SWIN_LIT_ABLATE_MARKER")  # tests: count training starts
        if marker:
            with open(marker, "a") as f:
                f.write(f"{os.getpid()} {cfg.run_id()}\n")
        train(cfg, self.runs, progress=False, callbacks=callbacks)
        return {"status": "ok"}

    # -- one transfer cell ------------------------------------------------------------------------------
    def run_transfer(self, t) -> None:
        """Wait for the trained cell, then evaluate (and fine-tune) it at the target in a forked child."""
        from swin_lit.config import config_from_dict
        from swin_lit.train.runs import run_dir_for

        ref, tid, attrs = self.ref, t._trial_id, t.user_attrs
        source = self.wait_for_source(t)
        if source is None:
            return
        run_dir = run_dir_for(config_from_dict(attrs["config"]), self.runs)
        log(f"trial {t.number}: {attrs['cell']}")

        def job() -> dict:
            from swin_lit.train.transfer import transfer_cell

            record = transfer_cell(run_dir, attrs["img_size"], attrs["window_size"], attrs["method"],
                                   attrs.get("finetune_epochs", 0), attrs.get("finetune_lr", 2e-4), out=self.runs)
            return {"status": "ok", "record": record}

        outcome_fd, outcome_path = tempfile.mkstemp(prefix="swin-lit-cell-", suffix=".json")
        os.close(outcome_fd)
        try:
            status = self.fork_and_wait(job, tid, outcome_path)
            if status is None:
                return
            try:
                outcome = json.loads(Path(outcome_path).read_text())
            except (OSError, ValueError):
                outcome = {"status": "error", "error": f"transfer process ended with status {status} and no outcome"}
            record = outcome.get("record")
            if outcome["status"] != "ok" or not is_finite(record.get("top1")):
                error = outcome.get("error") or f"NaN: top1 is {record.get('top1')}"
                log(f"trial {t.number}: failed: {error}")
                store.finish(ref, tid, TrialState.FAIL, attrs={"error": error})
                return
            store.finish(ref, tid, TrialState.COMPLETE, record["top1"], attrs={"result": record,
                         "run_dir": os.path.relpath(run_dir, self.out)})
            log(f"trial {t.number}: done")
        except Stop:
            if store.finish(ref, tid, TrialState.FAIL, attrs={"error": store.INTERRUPTED}):
                store.enqueue(ref, {**attrs, "retry_of": t.number})
            self.stopping = True
        finally:
            Path(outcome_path).unlink(missing_ok=True)

    def wait_for_source(self, t):
        """The trained cell's COMPLETE trial; None (the transfer cell failed) if that cell failed."""
        ref, tid = self.ref, t._trial_id
        last = time.time()
        while True:
            trials = store.cell_trials(ref, kind=None).get(t.user_attrs["source_cell"], [])
            state, detail = store.cell_state(trials, self.args.grace)
            if state == "done":
                return next(x for x in reversed(trials) if x.state == TrialState.COMPLETE)
            if state in ("failed", "to do"):
                store.finish(ref, tid, TrialState.FAIL, attrs={"error": f"trained cell {state}: {detail}"})
                return None
            if state == "queued" or self.stopping:  # nobody trains it: hand this cell back, train that one
                if store.finish(ref, tid, TrialState.FAIL, attrs={"error": store.INTERRUPTED}):
                    store.enqueue(ref, {**t.user_attrs, "retry_of": t.number})
                return None
            if time.time() - last >= self.args.heartbeat:
                last = time.time()
                if not store.beat(ref, tid):
                    return None
            store.reap_stale(ref, self.args.grace)
            time.sleep(POLL_S)

    def pruning_callbacks(self, tid: int) -> list:
        """Search mode: report val/top1 per epoch through a fresh storage connection of the child's own."""
        search = self.spec.get("search") or {}
        if self.spec.get("mode") != "search" or not search.get("prune", True):
            return []
        import optuna
        from optuna_integration import PyTorchLightningPruningCallback

        storage = store.open_storage(self.args.storage)
        pruner = optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0)
        study = optuna.load_study(study_name=self.args.study, storage=storage,
                                  sampler=optuna.samplers.RandomSampler(), pruner=pruner)
        trial = optuna.Trial(study, tid)
        return [PyTorchLightningPruningCallback(trial, monitor=search.get("monitor", "val/top1"))]

    def record(self, t, run_dir: Path, status: int, outcome_path: str) -> None:
        from swin_lit.record import read_result

        ref, tid = self.ref, t._trial_id
        try:
            outcome = json.loads(Path(outcome_path).read_text())
        except (OSError, ValueError):
            outcome = None
        if os.WIFSIGNALED(status):
            sig = signal.Signals(os.WTERMSIG(status)).name
            hint = " (out of memory?)" if os.WTERMSIG(status) == signal.SIGKILL else ""
            error = f"training process killed by {sig}{hint}"
        elif outcome is None:
            error = f"training process exited with code {os.WEXITSTATUS(status)} and no outcome"
        elif outcome["status"] == "pruned":
            store.finish(ref, tid, TrialState.PRUNED, attrs={"error": outcome["error"]})
            log(f"trial {t.number}: pruned")
            return
        elif outcome["status"] != "ok":
            error = outcome["error"]
        else:
            error = None
        record = read_result(run_dir) if error is None else None
        if error is None and record is None:
            error = "training finished without a result record"
        value = None
        if error is None:
            for split in ("val", "test"):
                loss = metric_value(record, f"{split}.loss")
                if loss is None or not math.isfinite(loss):
                    error = f"NaN: {split} loss is {loss}"
                    break
        if error is None:
            objective = self.spec.get("objective", "test.top1")
            value = metric_value(record, objective)
            if value is None or not math.isfinite(value):
                error = f"NaN: objective {objective} is {value}"
        if error is not None:
            log(f"trial {t.number}: failed: {error}")
            store.finish(ref, tid, TrialState.FAIL, attrs={"error": error})
            return
        ok = store.finish(ref, tid, TrialState.COMPLETE, value, attrs={"result": record})
        log(f"trial {t.number}: {'done' if ok else 'done, but the trial was already finished by someone else'}"
            f" ({record.get('wall_time_s', 0):.1f} s)")


def is_finite(x) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def log(msg: str) -> None:
    print(f"[worker {os.getpid()} {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m swin_lit.ablate.worker", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--storage", required=True, help="storage URL or journal file")
    p.add_argument("--study", required=True, help="study name")
    p.add_argument("--out", required=True, help="study folder (run folders go under OUT/runs)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per cell")
    p.add_argument("--heartbeat", type=float, default=store.HEARTBEAT_S, help="seconds between heartbeats")
    p.add_argument("--grace", type=float, default=store.GRACE_S, help="heartbeat age after which a cell is stale")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    worker = Worker(args)

    def stop(signum, frame):
        worker.stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    # Import the heavy stack once; every forked child inherits it (machine.md: ~7 s per process otherwise).
    import lightning.pytorch  # noqa: F401
    import torch  # noqa: F401

    import swin_lit.train.module  # noqa: F401
    import swin_lit.train.runs  # noqa: F401

    try:
        import swin_lit.data.datamodule  # noqa: F401
    except ImportError:
        pass
    log(f"started: study {args.study!r}, {args.threads} thread(s) per cell")
    code = worker.run()
    log("no cell left; exiting" if not worker.stopping else "stopped")
    return code


if __name__ == "__main__":
    sys.exit(main())
