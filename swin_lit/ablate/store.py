"""The study in its Optuna storage: planning cells, claiming them, liveness, stale-trial recovery.

One cell = one Optuna trial that finishes COMPLETE (value = the spec's objective, ``result`` user attr),
PRUNED (a search trial the pruner stopped) or FAIL (``error`` user attr); the contract a reader relies on is
``swin_lit.study``. The protocol, safe with any number of planners and workers on any number of machines
sharing one storage:

- Plan: for every cell with no WAITING/RUNNING/COMPLETE trial (and no FAIL trial, unless ``retry_failed``),
  add one WAITING trial carrying the cell's params (with their distributions) and user attrs
  (``Study.add_trial``). A cell that needs another first (a transfer cell needs its trained cell) is planned
  once that one is finished, by the worker that finished it or by the next planner. Racing planners may
  plan a cell twice; the duplicate rule below makes that harmless.
- Claim: ``Study.ask`` pops the lowest WAITING trial (a cell that needs another is not WAITING before that one
  finished, so the order is free); the pop is a compare-and-set in every backend (RDB:
  ``SELECT ... FOR UPDATE`` then a WAITING check; journal: the first RUNNING record wins on replay), so
  exactly one worker owns a trial. ``ask`` creates a fresh trial when the queue is empty, so a worker asks
  only when it has seen a WAITING cell trial; when a racing worker emptied the queue in between, the fresh,
  cell-less trial is told FAIL at once (``error: empty queue``) and is not a cell for any reader.
- Duplicates: after claiming, the worker looks at the cell's other trials. It runs the cell only if no
  COMPLETE trial exists and its trial has the lowest number among the cell's WAITING/RUNNING trials;
  otherwise it gives the trial up (PRUNED, ``error: duplicate``). The lowest active trial of a cell is
  a single trial at any instant and can only be claimed once, so at most one worker trains a cell, and
  a give-up never leaves the cell without a live trial (the lower one is still WAITING or RUNNING).
- Adaptive seeds (``seeds: {start, max, step, precision}``): which seeds every variant must have is a pure function of
  the stored trials (finished objective values and failures for good: ``swin_lit.study.seed_decision``), replayed
  from ``start`` seeds at every evaluation; nothing of the decision itself is stored. Acting on it is planning the
  cells of the seeds it names, by the rules above, so a cell that racing planners queue twice still runs once. The
  rule is two-stage (``domain.sections.SeedRule``): once every cell of the first ``start`` seeds is settled, the seed
  count N is fixed, so the replay only grows: a planner that read an older snapshot asks for the first stage or for N,
  never for a seed beyond N, and a planner killed mid-queueing leaves cells that the next evaluation queues. Who
  evaluates: every worker, after it records a train cell's outcome and once more before it exits for lack of work (it
  builds the next seeds' cells from each variant's stored cells, ``replan.seed_cells``), and the driver when it starts
  and after its workers exit. Workers, because one of them is there when the last cell of a step finishes: on several
  machines (a SLURM array, a shared PostgreSQL) the study goes on growing without the driver that started it, and an
  idle worker re-evaluates before leaving, so it does not exit while another is between finishing that cell and
  queueing the next step. The driver, because a study nobody works on (a restart after a kill -9 of everything, even
  mid-queueing) has no other planner.
- Liveness, kept out of the study's permanent record: on RDB storages Optuna's own heartbeat
  (``RDBStorage(heartbeat_interval=, grace_period=, heartbeat_stale_trial_callback=)``, and
  ``optuna.storages.fail_stale_trials``); Optuna's journal storage has no heartbeat, so there the driver
  keeps its own lease: one small file per running trial in ``<journal>.leases/``, overwritten atomically
  every heartbeat and removed when the trial ends. A RUNNING trial is stale when its lease (or Optuna's
  heartbeat) is older than the grace period, or at once when its worker is known dead (same host and boot,
  pid gone or reused: the ``worker`` user attr, written once per claim).
- Recovery: whoever sees a stale trial tells it FAIL; only if that succeeded (a finished trial cannot
  change again, so of racing reapers exactly one succeeds) does it add a fresh WAITING trial with the same
  params and user attrs, which resumes the run folder's checkpoint (at most ``MAX_DEATHS`` deaths per cell).
  A worker that finds its trial finished by someone else kills its child; an inter-process lock on the run
  folder makes the successor wait until the old child is gone.
- Results are written to ``result.json`` in the run folder before the trial is told COMPLETE, and a
  finished run folder returns its record without training, so a crash between the two loses nothing.

Private Optuna API still used, each with its reason at the call: ``Trial._trial_id`` for
``RDBStorage.record_heartbeat`` (Optuna records heartbeats itself only inside ``Study.optimize``; ask/tell
has no public call for it).
"""

from __future__ import annotations

import json
import os
import socket
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import FrozenTrial, TrialState

from swin_lit import study as contract
from swin_lit.domain.spec import Spec
from swin_lit.errors import StorageError
from swin_lit.record import write_json_atomic

HEARTBEAT_S = 10.0
GRACE_S = 60.0
MAX_DEATHS = contract.MAX_DEATHS  # a cell whose worker died this often is left FAILED (a retry needs --retry-failed)
EMPTY_QUEUE = "empty queue"  # ``error`` of a fresh trial that ask() made because a racing worker emptied the queue

optuna.logging.set_verbosity(optuna.logging.WARNING)

# Trial user attrs copied to a re-queued trial (the cell's identity and inputs, see swin_lit.study).
CELL_ATTRS = ("kind", "cell", "variant", "seed", "overrides", "config", "run_dir", "search_index", "source_cell",
              "method", "img_size", "window_size", "finetune_epochs", "finetune_lr")


# -- workers --------------------------------------------------------------------------------------------------


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _start_ticks(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]  # field 22: start time in clock ticks since boot


def worker_identity(pid: int | None = None) -> dict:
    pid = pid or os.getpid()
    return {"host": socket.gethostname(), "boot": _boot_id(), "pid": pid, "start": _start_ticks(pid)}


def worker_alive(ident: Any) -> bool | None:
    """True/False when the worker ran on this host since its last boot; None when we cannot tell."""
    if not isinstance(ident, dict) or ident.get("host") != socket.gethostname() or ident.get("boot") != _boot_id():
        return None
    start = _start_ticks(int(ident.get("pid", 0)))
    return start is not None and start == ident.get("start")


# -- liveness -------------------------------------------------------------------------------------------------


class Liveness:
    """How a storage tells a running trial's worker is alive (kept out of the study's permanent record)."""

    clock = staticmethod(time.time)  # wall-clock seconds of leases and ages; tests drive it with a fake

    def __init__(self, grace: float) -> None:
        self.grace = grace

    def beat(self, trial: optuna.Trial) -> None:
        """The owner is alive (called at claim and every heartbeat)."""

    def end(self, number: int) -> None:
        """The owner is done with the trial."""

    def fail_stale(self, ref: StudyRef) -> list[int]:
        """Fail the trials this storage finds stale by age; returns their numbers (re-queued already)."""
        return []

    def clean(self, ref: StudyRef) -> None:
        """Drop liveness records of trials that are no longer running."""

    def aged(self, trial: FrozenTrial, now: float) -> bool:
        """Whether the trial's sign of life is older than the grace period (as far as we can read it)."""
        return False

    def is_stale(self, trial: FrozenTrial, now: float | None = None) -> bool:
        if trial.state != TrialState.RUNNING:
            return False
        if worker_alive(trial.user_attrs.get("worker")) is False:
            return True
        return self.aged(trial, now or self.clock())


class JournalLeases(Liveness):
    """Journal storages: a lease file per running trial, ``<journal>.leases/<study>-<number>.json``,
    holding the owner and the time of its last heartbeat; overwritten atomically, never appended."""

    def __init__(self, folder: Path, study: str, grace: float) -> None:
        super().__init__(grace)
        self.folder = folder
        self.study = study

    def path(self, number: int) -> Path:
        return self.folder / f"{self.study}-{number}.json"

    def beat(self, trial: optuna.Trial) -> None:
        write_json_atomic(self.path(trial.number), {"study": self.study, "trial": trial.number, "time": self.clock(),
                                                    "worker": worker_identity()})

    def end(self, number: int) -> None:
        self.path(number).unlink(missing_ok=True)

    def read(self, number: int) -> dict | None:
        try:
            return json.loads(self.path(number).read_text())
        except (OSError, ValueError):
            return None

    def aged(self, trial: FrozenTrial, now: float) -> bool:
        lease = self.read(trial.number)
        if lease is None:  # claimed a moment ago (lease not written yet), or its worker died before writing it
            started = trial.datetime_start.timestamp() if trial.datetime_start else 0.0
            return now - started > self.grace
        if worker_alive(lease.get("worker")) is False:
            return True
        return now - float(lease.get("time", 0.0)) > self.grace

    def fail_stale(self, ref: StudyRef) -> list[int]:
        now = self.clock()
        failed = [t.number for t in ref.running() if self.is_stale(t, now) and fail_and_requeue(ref.study, t)]
        for number in failed:
            self.end(number)
        return failed

    def clean(self, ref: StudyRef) -> None:
        """Remove leases of trials that are no longer running (a worker killed between tell and unlink)."""
        if not self.folder.is_dir():
            return
        running = {t.number for t in ref.trials(states=(TrialState.RUNNING,))}
        for path in self.folder.glob(f"{self.study}-*.json"):
            number = path.stem[len(self.study) + 1:]
            if number.isdigit() and int(number) not in running:
                path.unlink(missing_ok=True)


class RDBHeartbeat(Liveness):
    """RDB storages: Optuna's own heartbeat table (opened with heartbeat_interval / grace_period)."""

    def __init__(self, storage: optuna.storages.RDBStorage, grace: float) -> None:
        super().__init__(grace)
        self.storage = storage

    def beat(self, trial: optuna.Trial) -> None:
        # Private: Optuna records heartbeats itself only inside Study.optimize; ask/tell has no public call.
        self.storage.record_heartbeat(trial._trial_id)

    def fail_stale(self, ref: StudyRef) -> list[int]:
        before = {t.number for t in ref.running()}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(ref.study)  # re-queues through stale_trial_callback
        now = self.clock()
        dead = [t.number for t in ref.running() if self.is_stale(t, now) and fail_and_requeue(ref.study, t)]
        failed = {t.number for t in ref.trials(states=(TrialState.FAIL,))}
        return sorted((before & failed) | set(dead))


def stale_trial_callback(study: optuna.Study, trial: FrozenTrial) -> None:
    """``heartbeat_stale_trial_callback`` of our RDB storages: re-queue the cell of a trial Optuna failed."""
    requeue_if_allowed(study, trial)


# -- the study ------------------------------------------------------------------------------------------------


@dataclass
class StudyRef:
    """A study in its storage, with the liveness rule of that storage."""

    study: optuna.Study
    opened: contract.Opened
    liveness: Liveness

    @property
    def name(self) -> str:
        return self.study.study_name

    def trials(self, states: tuple[TrialState, ...] | None = None) -> list[FrozenTrial]:
        return self.study.get_trials(deepcopy=False, states=states)

    def running(self) -> list[FrozenTrial]:
        return [t for t in self.trials(states=(TrialState.RUNNING,)) if contract.cell_of(t) is not None]

    def by_cell(self, kind: str | None = None) -> dict[str, list[FrozenTrial]]:
        return contract.trials_by_cell(self.trials(), kind)

    def spec(self) -> Spec:
        """The spec the study stores, read back (``Spec.from_stored``)."""
        return Spec.from_stored(self.study.user_attrs.get("spec"), self.name)


def open_storage(target: str | Path, create: bool = True, heartbeat: float = HEARTBEAT_S,
                 grace: float = GRACE_S) -> contract.Opened:
    """The study storage for a URL or journal file, with Optuna's heartbeat on RDB storages."""
    beat = (max(1, round(heartbeat)), max(1, round(grace)))
    return contract.open_storage(target, create=create, heartbeat=beat, stale_callback=stale_trial_callback)


def _liveness(opened: contract.Opened, name: str, grace: float) -> Liveness:
    if isinstance(opened.storage, optuna.storages.RDBStorage):
        return RDBHeartbeat(opened.storage, grace)
    return JournalLeases(opened.leases, name, grace)


def _ref(opened: contract.Opened, study: optuna.Study, grace: float) -> StudyRef:
    return StudyRef(study, opened, _liveness(opened, study.study_name, grace))


def find_study(opened: contract.Opened | None, name: str, grace: float = GRACE_S,
               sampler: optuna.samplers.BaseSampler | None = None,
               pruner: optuna.pruners.BasePruner | None = None) -> StudyRef | None:
    if opened is None:
        return None
    try:
        names = optuna.get_all_study_names(opened.storage)
    except Exception:  # noqa: BLE001 - no schema yet (dry run against an empty database)
        return None
    if name not in names:
        return None
    study = optuna.load_study(study_name=name, storage=opened.storage,
                              sampler=sampler or optuna.samplers.RandomSampler(),
                              pruner=pruner or optuna.pruners.NopPruner())
    return _ref(opened, study, grace)


def create_study(opened: contract.Opened, name: str, direction: str, spec: dict, cells: list[str],
                 grace: float = GRACE_S, now: Callable[[], float] = time.time) -> StudyRef:
    """Create the study, or open it and store the spec it now runs. A changed spec of a study that already
    holds a finished train cell (seeds extended, budget changed, a re-run after a result was seen) is
    appended to the study's ``spec_history`` user attr (``spec_changes``), so a reader can list it."""
    study = optuna.create_study(study_name=name, storage=opened.storage, direction=direction, load_if_exists=True,
                                sampler=optuna.samplers.RandomSampler(), pruner=optuna.pruners.NopPruner())
    if study.direction.name.lower() != direction:
        raise StorageError(f"study {name!r} exists with direction {study.direction.name.lower()}, but the spec's "
                           f"objective needs {direction}; use another study name or storage")
    ref = _ref(opened, study, grace)
    check_distributions(ref, spec)
    attrs = study.user_attrs
    if attrs.get("spec") != spec:
        if attrs.get("spec") is not None:
            record_spec_change(ref, attrs, spec, now)
        study.set_user_attr("spec", spec)
    if attrs.get("cells") != cells:
        study.set_user_attr("cells", cells)
    return ref


SPEC_HISTORY = "spec_history"


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flat(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: value}


def spec_changes(old: dict, new: dict) -> dict[str, list]:
    """{dotted key: [old value, new value]} of every leaf that differs (None where absent), e.g.
    ``{"seeds.max": [5, 8], "budget.trainer.max_epochs": [14, 20]}``."""
    a, b = _flat(old), _flat(new)
    return {k: [a.get(k), b.get(k)] for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)}


def record_spec_change(ref: StudyRef, attrs: dict, spec: dict, now: Callable[[], float] = time.time) -> None:
    """Append {"changed_at" (UTC, ISO), "finished_cells" (train cells finished before the change), "changes"}
    to the study's ``spec_history`` when a result had been seen; a change before any result is not a second
    look and is not recorded."""
    changes = spec_changes(attrs["spec"], spec)
    if not changes:  # only the stored form changed (a field added with its default): the same spec
        return
    seen = sum(1 for t in ref.trials() if t.state == TrialState.COMPLETE and contract.kind_of(t) == contract.TRAIN)
    if not seen:
        return
    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now()))
    entry = {"changed_at": when, "finished_cells": seen, "changes": changes}
    ref.study.set_user_attr(SPEC_HISTORY, [*attrs.get(SPEC_HISTORY, []), entry])


def check_distributions(ref: StudyRef, spec: dict) -> None:
    """The spec's params must fit the distributions the study's trials already hold (Optuna keeps one set of
    choices per param name for the life of a study); StorageError naming the param otherwise."""
    wanted = Spec.from_stored(spec, ref.name).param_distributions()
    seen: dict[str, Any] = {}
    for t in ref.trials():
        for key, dist in t.distributions.items():
            seen.setdefault(key, dist)
    for key, dist in wanted.items():
        old = seen.get(key)
        if old is None:
            continue
        try:  # the rule Optuna applies when a param is set (public in optuna.distributions)
            optuna.distributions.check_distribution_compatibility(old, dist)
        except ValueError:
            was = list(old.choices) if hasattr(old, "choices") else type(old).__name__
            now = list(dist.choices) if hasattr(dist, "choices") else type(dist).__name__
            raise StorageError(f"param {key}: study {ref.name!r} in {ref.opened.target} was planned with {was}, the "
                               f"spec now gives {now}; Optuna keeps one set of choices per param for a study's life: "
                               "use another study name (or --out) for a changed grid") from None


# -- planning -------------------------------------------------------------------------------------------------


def add_waiting(study: optuna.Study, attrs: dict, params: dict, distributions: dict,
                system_attrs: dict | None = None) -> None:
    """Queue one WAITING trial with its params (visible to Optuna's tools while it waits) and user attrs."""
    study.add_trial(optuna.trial.create_trial(
        state=TrialState.WAITING, params=params, distributions={k: distributions[k] for k in params},
        user_attrs={k: attrs[k] for k in CELL_ATTRS if k in attrs}, system_attrs=system_attrs or {}))


deaths = contract.deaths


def requeue(study: optuna.Study, trial: FrozenTrial | optuna.Trial) -> None:
    """A fresh WAITING trial for the cell of ``trial``: same params (a search trial keeps its sampled values,
    so it resumes its own run folder) and cell attrs; Optuna's retry bookkeeping in the system attrs
    (``RetryHeartbeatStaleTrialCallback.retried_trial_number`` / ``retry_history`` read it)."""
    history = list(trial.system_attrs.get("retry_history", [])) + [trial.number]
    add_waiting(study, dict(trial.user_attrs), dict(trial.params), dict(trial.distributions),
                {"failed_trial": history[0], "retry_history": history})


def requeue_if_allowed(study: optuna.Study, trial: FrozenTrial) -> bool:
    """Re-queue the cell of a trial whose worker died, unless the cell died ``MAX_DEATHS`` times already."""
    cell = contract.cell_of(trial)
    if cell is None:
        return False
    group = contract.trials_by_cell(study.get_trials(deepcopy=False)).get(cell, [])
    if deaths(group) >= MAX_DEATHS:
        return False
    requeue(study, trial)
    return True


def tell(study: optuna.Study, trial: optuna.Trial | int, state: TrialState, value: float | None = None) -> bool:
    """Finish a RUNNING trial; False when it was finished by someone else first (no change then)."""
    try:
        study.tell(trial, value if state == TrialState.COMPLETE else None, state=state)
        return True
    except UpdateFinishedTrialError:  # finished between tell's check and its write
        return False
    except ValueError:
        number = trial if isinstance(trial, int) else trial.number
        if study.get_trials(deepcopy=False)[number].state.is_finished():
            return False  # "Cannot tell a COMPLETE trial": someone else finished it first
        raise


def fail_and_requeue(study: optuna.Study, trial: FrozenTrial) -> bool:
    """Fail a stale trial and re-queue its cell; False (nothing done) when it was finished meanwhile."""
    if not tell(study, trial.number, TrialState.FAIL):
        return False
    requeue_if_allowed(study, trial)
    return True


def reap_stale(ref: StudyRef) -> list[int]:
    """Fail RUNNING trials whose worker died and re-queue their cells; returns their numbers."""
    return ref.liveness.fail_stale(ref)


def cells_to_queue(by_cell: dict[str, list[FrozenTrial]], cells: list,
                   retry_failed: bool = False) -> list[tuple[Any, FrozenTrial | None]]:
    """The cells of ``cells`` that need a WAITING trial now (reads only): (cell, None) to queue the cell's own
    params, or (cell, its last FAIL trial) to re-queue that trial as it was (a search trial keeps its sampled
    values). A cell with a WAITING, RUNNING or finished trial needs none; a cell that needs another waits for
    it to finish; a failed cell is re-queued when ``retried_by_itself`` or with ``retry_failed``."""
    out = []
    for cell in cells:
        trials = by_cell.get(cell.id, [])
        status, _ = contract.cell_status(trials)
        if status in (*contract.DONE, contract.RUNNING, contract.WAITING):
            continue
        if status == contract.MISSING and cell.after is not None:
            if contract.cell_status(by_cell.get(cell.after, []))[0] != contract.FINISHED:
                continue  # planned when the cell it needs has finished
        if status == contract.FAILED:
            if not retry_failed and not contract.retried_by_itself(trials):
                continue
            failed = [t for t in trials if t.state == TrialState.FAIL]
            if failed and set(failed[-1].params) > set(cell.params):  # a search trial: its sampled values
                out.append((cell, failed[-1]))
                continue
        out.append((cell, None))
    return out


def plan_cells(ref: StudyRef, cells: list, retry_failed: bool = False) -> int:
    """Queue a WAITING trial for every cell that needs one and can run now; returns how many were queued."""
    reap_stale(ref)
    ref.liveness.clean(ref)
    dists = ref.spec().param_distributions()
    todo = cells_to_queue(ref.by_cell(), cells, retry_failed)
    for cell, last in todo:
        if last is not None:
            requeue(ref.study, last)
        else:
            add_waiting(ref.study, cell.user_attrs(), cell.params, dists)
    return len(todo)


def decide(ref: StudyRef, settle_failures: bool = True):
    """The adaptive-seed decision on the study's stored trials (``swin_lit.study.seed_decision``), or None for
    listed seeds."""
    return contract.seed_decision(ref.spec(), ref.trials(), settle_failures=settle_failures)


def active_cells(ref: StudyRef, cells_of: Callable[[list[int] | None], list],
                 retry_failed: bool = False) -> tuple[list, Any]:
    """(the cells the study holds to now, the adaptive-seed decision or None). ``cells_of(seeds)`` gives the
    cells of those seeds (None: of every seed; listed seeds). Adaptive seeds: the cells of the seeds the
    decision names; with ``retry_failed`` failures are not settled (they are about to run again, so the
    decision waits for them instead of adding seeds past them), and failed cells of seeds an earlier decision
    queued are included so they are retried too."""
    decision = decide(ref, settle_failures=not retry_failed)
    if decision is None:
        return cells_of(None), None
    seeds = set(decision.seeds)
    if retry_failed:
        seeds |= {int(t.user_attrs["seed"]) for t in ref.trials(states=(TrialState.FAIL,))
                  if contract.kind_of(t) == contract.TRAIN and t.user_attrs.get("seed") is not None}
    return cells_of(sorted(seeds)), decision


def plan_study(ref: StudyRef, cells_of: Callable[[list[int] | None], list],
               retry_failed: bool = False) -> tuple[int, Any]:
    """Plan what the study needs now, from what it stores: the cells of ``active_cells`` that need a trial.
    Returns (how many were queued, the adaptive-seed decision or None)."""
    reap_stale(ref)  # first: a dead worker's cell becomes a re-queued, unsettled cell before the decision
    cells, decision = active_cells(ref, cells_of, retry_failed)
    return plan_cells(ref, cells, retry_failed), decision


# -- claiming -------------------------------------------------------------------------------------------------


def claim(ref: StudyRef, fixed_distributions: dict | None = None) -> optuna.Trial | None:
    """Take the lowest WAITING cell trial (``Study.ask``); None when there is none. ``fixed_distributions``
    (search mode) are sampled by the study's sampler unless the trial holds them already."""
    if not any(contract.cell_of(t) is not None for t in ref.trials(states=(TrialState.WAITING,))):
        return None  # ask() would create a fresh trial
    with warnings.catch_warnings():  # RDB heartbeats "are supposed to be used with Study.optimize": we beat ourselves
        warnings.filterwarnings("ignore", message=".*Heartbeat of storage is supposed to be used.*")
        trial = ref.study.ask(fixed_distributions)
    if contract.cell_of(trial) is None:  # a racing worker emptied the queue: ask() made a fresh trial
        trial.set_user_attr("error", EMPTY_QUEUE)
        tell(ref.study, trial, TrialState.FAIL)
        return None
    ref.liveness.beat(trial)
    trial.set_user_attr("worker", worker_identity())
    return trial


def still_mine(ref: StudyRef, trial: optuna.Trial) -> bool:
    """False when the trial was finished by someone else (we were presumed dead)."""
    return any(t.number == trial.number for t in ref.trials(states=(TrialState.RUNNING,)))


def beat(ref: StudyRef, trial: optuna.Trial) -> bool:
    """Refresh the trial's liveness; False when it was finished by someone else."""
    if not still_mine(ref, trial):
        return False
    ref.liveness.beat(trial)
    return True


def duplicate_of(ref: StudyRef, mine: optuna.Trial) -> str | None:
    """Why this claimed trial must not run (another trial owns the cell), or None."""
    for t in ref.by_cell().get(contract.cell_of(mine), []):
        if t.number == mine.number:
            continue
        if t.state == TrialState.COMPLETE:
            return f"{contract.DUPLICATE} of finished trial {t.number}"
        if t.state in (TrialState.WAITING, TrialState.RUNNING) and t.number < mine.number:
            return f"{contract.DUPLICATE} of trial {t.number}"
    return None


def finish(ref: StudyRef, trial: optuna.Trial, state: TrialState, value: float | None = None,
           attrs: dict | None = None) -> bool:
    """Write ``attrs`` then the final state; False when someone else finished the trial first."""
    try:
        for k, v in (attrs or {}).items():
            trial.set_user_attr(k, v)
    except UpdateFinishedTrialError:
        return False
    return tell(ref.study, trial, state, value)


def give_up(ref: StudyRef, trial: optuna.Trial, reason: str) -> None:
    finish(ref, trial, TrialState.PRUNED, attrs={"error": reason})
    ref.liveness.end(trial.number)


def hand_back(ref: StudyRef, trial: optuna.Trial) -> None:
    """The worker stops (SIGTERM, preemption): fail the trial as interrupted and re-queue its cell."""
    if finish(ref, trial, TrialState.FAIL, attrs={"error": contract.INTERRUPTED}):
        requeue(ref.study, trial)
    ref.liveness.end(trial.number)


# -- progress -------------------------------------------------------------------------------------------------


def cell_statuses(ref: StudyRef | None, cells: list) -> dict[str, tuple[str, str]]:
    by_cell = ref.by_cell() if ref is not None else {}
    stale = ref.liveness.is_stale if ref is not None else None
    return {c.id: contract.cell_status(by_cell.get(c.id, []), stale) for c in cells}


def progress_counts(ref: StudyRef, cells: list) -> dict[str, int]:
    counts = dict.fromkeys(contract.STATUSES, 0)
    for status, _ in cell_statuses(ref, cells).values():
        counts[status] += 1
    counts["done"] = counts[contract.FINISHED] + counts[contract.PRUNED]
    return counts
