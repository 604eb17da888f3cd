"""A long-lived ablation worker: ``python -m swin_lit.ablate.worker --storage S --study NAME --out DIR``.

It imports torch and Lightning once, then loops: recover stale trials, claim a WAITING cell trial (see
``swin_lit.ablate.store`` for the protocol), fork a child that runs the cell, keep the trial alive and
relay the run's learning curve to Optuna while the child runs, and record the outcome. One path for every
cell kind (``swin_lit.ablate.kinds``): a kind says what the child runs and how its result is read; the
outcome (exit code, signal, out-of-memory kill, NaN), the recording and the re-queue are written here once.

The child never talks to Optuna or to the parent's storage connections; it writes its outcome to a file
and its progress and result to the run folder. A crash, an out-of-memory kill or a NaN in the child
becomes a FAILED cell with a one-line reason; the worker goes on. The child dies with its worker
(``PR_SET_PDEATHSIG``), so a killed worker leaves no training behind. On SIGTERM / SIGINT (and on a SLURM
preemption, which submitit turns into SystemExit) the worker hands its cell back (FAIL ``interrupted``
plus a fresh WAITING trial that resumes the checkpoint) and stops.

Adaptive seeds: after recording a train cell's outcome, and before exiting for lack of work, the worker
evaluates the seed rule on what the study stores and queues the cells of the seeds it asks for (see
``swin_lit.ablate.store``: who evaluates the rule, and why), so the study grows with no driver around.

The worker exits when the study has no WAITING or RUNNING cell trial left and the seed rule asks for nothing
more (it keeps polling while other workers' cells run, so it can take over a cell whose worker died).
"""

from __future__ import annotations

import argparse
import ctypes
import fcntl
import json
import os
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path

from optuna.trial import TrialState

from swin_lit import study as contract
from swin_lit.ablate import store
from swin_lit.ablate.kinds import KINDS, CellFailed, Context, Job
from swin_lit.domain.spec import search_distribution
from swin_lit.errors import one_line

PR_SET_PDEATHSIG = 1
POLL_S = 1.0
RELAY_S = 1.0  # how often the learning curve is read from the run folder


def die_with_parent(sig: int = signal.SIGKILL) -> None:
    """Linux: have the kernel send ``sig`` to this process when its parent exits."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
    except (OSError, AttributeError):
        pass


def error_line(err: BaseException) -> str:
    return one_line(f"{type(err).__name__}: {err}")[:500]


class Stop(Exception):
    """SIGTERM / SIGINT: stop after handing the current cell back."""


class TakenOver(Exception):
    """Our trial was finished by someone else (we were presumed dead): drop it."""


class Pruned(Exception):
    """The pruner stopped the trial at this step."""


class Worker:
    def __init__(self, args: argparse.Namespace) -> None:
        import optuna

        self.args = args
        self.out = Path(args.out)
        self.runs = self.out / contract.RUNS_DIR
        opened = store.open_storage(args.storage, create=False, heartbeat=args.heartbeat, grace=args.grace)
        ref = store.find_study(opened, args.study, args.grace)
        if ref is None:
            raise SystemExit(f"worker: no study {args.study!r} in {args.storage}")
        spec = ref.spec()
        search = spec.search if spec.mode == "search" else None
        self.fixed: dict | None = None
        if search is not None:  # sampled by Optuna (TPE) when a cell is claimed; pruned on its learning curve
            sampler = optuna.samplers.TPESampler(seed=search.seed + args.slot)
            pruner = (optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0) if search.prune
                      else optuna.pruners.NopPruner())
            ref = store.find_study(opened, args.study, args.grace, sampler=sampler, pruner=pruner)
            self.fixed = {key: search_distribution(rng) for key, rng in search.params.items()}
        self.ref = ref
        self.spec = spec
        self.rule = spec.rule  # adaptive seeds: None for listed seeds
        self.ctx = Context(self.out, self.runs, spec)
        self.child: int | None = None
        self.stopping = False

    # -- main loop --------------------------------------------------------------------------------------
    def run(self) -> int:
        while not self.stopping:
            store.reap_stale(self.ref)
            trial = store.claim(self.ref, self.fixed)
            if trial is None:
                active = [t for t in self.ref.trials(states=(TrialState.WAITING, TrialState.RUNNING))
                          if contract.cell_of(t) is not None]
                if not active:
                    if self.plan_seeds("no cell left"):
                        continue  # the rule asked for more seeds (their planner may have died mid-queueing)
                    return 0
                time.sleep(POLL_S)
                continue
            reason = store.duplicate_of(self.ref, trial)
            if reason:
                log(f"trial {trial.number} ({contract.cell_of(trial)}): {reason}; giving it up")
                store.give_up(self.ref, trial, reason)
                continue
            self.run_cell(trial)
        return 0

    # -- one cell, any kind -----------------------------------------------------------------------------
    def run_cell(self, trial) -> None:
        ref = self.ref
        kind = KINDS.get(contract.kind_of(trial))
        try:
            if kind is None:
                raise ValueError(f"unknown cell kind {contract.kind_of(trial)!r}; known: {', '.join(KINDS)}")
            job = kind.prepare(self.ctx, trial)
        except Exception as err:  # noqa: BLE001 - a bad stored cell: fail it, keep going
            store.finish(ref, trial, TrialState.FAIL, attrs={"error": error_line(err)})
            ref.liveness.end(trial.number)
            return
        if job.run_dir is not None and "run_dir" not in trial.user_attrs:  # search cells: known once sampled
            trial.set_user_attr("run_dir", os.path.relpath(job.run_dir, self.out))
        log(f"trial {trial.number}: {job.cell} -> {job.run_dir}")
        outcome_fd, outcome_path = tempfile.mkstemp(prefix="swin-lit-cell-", suffix=".json")
        os.close(outcome_fd)
        lock = None
        try:
            lock = self.lock(job, trial)
            status = self.fork_and_wait(kind, job, trial, outcome_path)
            self.record(kind, job, trial, status, outcome_path)
        except TakenOver:
            log(f"trial {trial.number}: finished by someone else while running; child stopped")
        except Pruned as err:
            store.finish(ref, trial, TrialState.PRUNED, attrs={"error": str(err)})
            log(f"trial {trial.number}: {err}")
        except (Stop, SystemExit, KeyboardInterrupt) as err:
            store.hand_back(ref, trial)
            self.stopping = True
            if not isinstance(err, Stop):
                raise
        finally:
            Path(outcome_path).unlink(missing_ok=True)
            ref.liveness.end(trial.number)
            if lock is not None:
                os.close(lock)

    def lock(self, job: Job, trial) -> int:
        """An exclusive lock on the cell's run folder (the previous owner's child may still be stopping)."""
        locks = self.runs / ".locks"
        locks.mkdir(parents=True, exist_ok=True)
        fd = os.open(locks / f"{job.lock}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        last = time.time()
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return fd
            except BlockingIOError:
                pass
            if self.stopping:
                os.close(fd)
                raise Stop
            if time.time() - last >= self.args.heartbeat:
                last = time.time()
                if not store.beat(self.ref, trial):
                    os.close(fd)
                    raise TakenOver
            time.sleep(0.5)

    def fork_and_wait(self, kind, job: Job, trial, outcome_path: str) -> int:
        """Run the kind's job in a forked child; keep the trial alive and relay its learning curve meanwhile.
        Returns the child's wait status."""
        sys.stdout.flush()
        sys.stderr.flush()
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:  # the child: never returns
            self.child_main(kind, job, outcome_path, parent)
        self.child = pid
        last_beat = last_relay = time.time()
        reported: set[int] = set()
        try:
            while True:
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    self.relay(kind, job, trial, reported)
                    return status
                if self.stopping:
                    raise Stop
                now = time.time()
                if now - last_beat >= self.args.heartbeat:
                    last_beat = now
                    if not store.beat(self.ref, trial):
                        raise TakenOver
                if now - last_relay >= RELAY_S:
                    last_relay = now
                    self.relay(kind, job, trial, reported, prune=True)
                time.sleep(0.2)
        except BaseException:
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except (ChildProcessError, ProcessLookupError):
                pass
            raise
        finally:
            self.child = None

    def relay(self, kind, job: Job, trial, reported: set[int], prune: bool = False) -> None:
        """Report the run's new per-epoch values as the trial's intermediate values (step = epoch)."""
        from optuna.exceptions import UpdateFinishedTrialError

        new = {step: v for step, v in kind.progress(job).items() if step not in reported}
        for step in sorted(new):
            try:
                trial.report(new[step], step)
            except UpdateFinishedTrialError:
                raise TakenOver from None
            reported.add(step)
        if prune and new and trial.should_prune():
            step = max(new)
            raise Pruned(f"pruned at epoch {step} ({new[step]:.4g})")

    def child_main(self, kind, job: Job, outcome_path: str, parent: int) -> None:
        code = 0
        try:
            die_with_parent(signal.SIGKILL)
            if os.getppid() != parent:
                os._exit(1)
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # the worker decides what an interrupt means
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            if hasattr(signal, "SIGUSR2"):
                signal.signal(signal.SIGUSR2, signal.SIG_IGN)  # submitit's preemption signal is the worker's
            import torch

            torch.set_num_threads(self.args.threads)
            outcome = {"status": "ok", "returned": kind.run(job)}
        except BaseException as err:  # noqa: BLE001 - everything becomes the cell's outcome
            traceback.print_exc()
            outcome = {"status": "error", "error": error_line(err)}
        try:
            with open(outcome_path, "w") as f:
                json.dump(outcome, f)
        except BaseException:  # noqa: BLE001
            code = 3
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)

    def record(self, kind, job: Job, trial, status: int, outcome_path: str) -> None:
        """The child's outcome -> the trial's final state; the cells that waited for this one are planned."""
        ref = self.ref
        try:
            outcome = json.loads(Path(outcome_path).read_text())
        except (OSError, ValueError):
            outcome = None
        value = record = None
        if os.WIFSIGNALED(status):
            sig = signal.Signals(os.WTERMSIG(status)).name
            hint = " (out of memory?)" if os.WTERMSIG(status) == signal.SIGKILL else ""
            error = f"{kind.name} process killed by {sig}{hint}"
        elif outcome is None:
            error = f"{kind.name} process exited with code {os.WEXITSTATUS(status)} and no outcome"
        elif outcome["status"] != "ok":
            error = outcome["error"]
        else:
            try:
                value, record = kind.result(job, outcome.get("returned"), self.spec.objective)
                error = None
            except CellFailed as err:
                error = str(err)
        if error is not None:
            log(f"trial {trial.number}: failed: {error}")
            if store.finish(ref, trial, TrialState.FAIL, attrs={"error": error}) and kind.name == contract.TRAIN:
                self.plan_seeds(f"trial {trial.number}")  # a failed cell is settled: the rule may go on
            return
        ok = store.finish(ref, trial, TrialState.COMPLETE, value, attrs={"result": record})
        took = f" ({record['wall_time_s']:.1f} s)" if isinstance(record.get("wall_time_s"), int | float) else ""
        log(f"trial {trial.number}: {'done' if ok else 'done, but the trial was already finished by someone else'}"
            + took)
        if ok:
            self.plan_followups(trial)
            if kind.name == contract.TRAIN:
                self.plan_seeds(f"trial {trial.number}")

    def plan_followups(self, trial) -> None:
        from swin_lit.ablate.replan import followups

        cells = followups(self.spec, dict(trial.user_attrs))
        if cells:
            n = store.plan_cells(self.ref, cells)
            log(f"trial {trial.number}: {n} cell(s) that waited for it queued")


    def plan_seeds(self, why: str) -> int:
        """Adaptive seeds: evaluate the rule on what the study stores and queue the cells of the seeds it asks
        for (and the transfer cells of finished ones); returns how many were queued (0 for listed seeds)."""
        if self.rule is None:
            return 0
        from swin_lit.ablate.replan import seed_cells

        templates: dict[str, dict] = {}  # each variant's lowest stored train cell: its config at another seed
        for t in self.ref.trials():
            attrs = t.user_attrs
            if contract.kind_of(t) == contract.TRAIN and contract.cell_of(t) and isinstance(attrs.get("config"), dict):
                templates.setdefault(attrs["variant"], dict(attrs))
        n, decision = store.plan_study(self.ref, lambda seeds: seed_cells(self.spec, templates, seeds))
        if n:
            log(f"{why}: seeds: {decision.reason}; {n} cell(s) queued")
        return n


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
    p.add_argument("--slot", type=int, default=0, help="this worker's index (seeds the search sampler)")
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

    import swin_lit.data.datamodule  # noqa: F401
    import swin_lit.train.module  # noqa: F401
    import swin_lit.train.runs  # noqa: F401
    log(f"started: study {args.study!r}, {args.threads} thread(s) per cell")
    code = worker.run()
    log("no cell left; exiting" if not worker.stopping else "stopped")
    return code


if __name__ == "__main__":
    sys.exit(main())
