"""The study in its Optuna storage: planning cells, claiming them, heartbeats, stale-trial recovery.

One cell = one Optuna trial that finishes COMPLETE (value = the spec's objective, ``result`` user attr) or
FAIL (``error`` user attr). The protocol, safe with any number of planners and workers on any number of
machines sharing one storage:

- Plan: for every cell with no WAITING/RUNNING/COMPLETE trial (and no FAIL trial, unless ``retry_failed``),
  enqueue one WAITING trial carrying the cell's user attrs. Racing planners may enqueue a cell twice;
  the claim rule below makes that harmless.
- Claim: a worker flips a WAITING trial to RUNNING with ``storage.set_trial_state_values``; that call is
  a compare-and-set in both backends (RDB: ``SELECT ... FOR UPDATE`` then a WAITING check; Journal: the
  first RUNNING record in the log wins on replay and the call reports whether it was ours), so exactly
  one worker owns a trial. (``Study.ask`` would do the same pop but creates a fresh, cell-less trial when
  the queue is empty, so it is not used.)
- Duplicates: after claiming, the worker looks at the cell's other trials. It runs the cell only if no
  COMPLETE trial exists and its trial has the lowest number among the cell's WAITING/RUNNING trials;
  otherwise it gives the trial up (PRUNED, ``error: duplicate``). The lowest active trial of a cell is
  a single trial at any instant and can only be claimed once, so at most one worker trains a cell, and
  a give-up never leaves the cell without a live trial (the lower one is still WAITING or RUNNING).
- Heartbeat: the owner writes ``heartbeat`` (epoch seconds) every few seconds. A RUNNING trial is stale
  when its heartbeat is older than the grace period, or at once when its worker process is known dead
  (same host and boot, pid gone or reused). Whoever sees a stale trial marks it FAIL (``error: worker
  died``) and, only if that state change succeeded (a finished trial cannot change again, so of racing
  reapers exactly one succeeds), enqueues a fresh WAITING trial for the cell, which resumes the run
  folder's checkpoint. A worker whose heartbeat finds its trial finished by someone else kills its
  child; an inter-process lock on the run folder makes the successor wait until the old child is gone.
- Results are written to ``result.json`` in the run folder before the trial is told COMPLETE, and a
  finished run folder returns its record without training, so a crash between the two loses nothing.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import FrozenTrial, TrialState

from swin_lit.cli import BadInput

JOURNAL_FILE = "study.log"
HEARTBEAT_S = 10.0
GRACE_S = 60.0
DIED = "worker died"
INTERRUPTED = "interrupted"
AUTO_RETRY = (DIED, INTERRUPTED)  # failures that are the machine's fault, not the cell's: re-queued by themselves
DUPLICATE = "duplicate"
MAX_DEATHS = 3  # a cell whose worker died this often is left FAILED (a retry needs --retry-failed)

optuna.logging.set_verbosity(optuna.logging.WARNING)


# -- storage --------------------------------------------------------------------------------------------


def is_url(target: str) -> bool:
    return "://" in str(target)


def open_storage(target: str | Path, create: bool = True):
    """An Optuna storage for a URL (any SQLAlchemy URL) or a journal file path. With ``create`` false a
    missing journal file or database schema gives None instead of being created."""
    text = str(target)
    if is_url(text):
        if text.startswith("sqlite:///") and not create and not Path(text[len("sqlite:///"):]).is_file():
            return None
        kwargs: dict[str, Any] = {}
        if not text.startswith("sqlite"):
            kwargs["pool_pre_ping"] = True  # long trials: idle connections get dropped (optuna#5600)
        for attempt in range(6):
            try:
                return optuna.storages.RDBStorage(text, engine_kwargs=kwargs, skip_table_creation=not create)
            except Exception as err:  # noqa: BLE001 - driver errors vary by backend
                # Several machines starting at once race to create the schema: the loser retries.
                if attempt == 5 or not any(w in str(err) for w in ("UniqueViolation", "already exists", "duplicate")):
                    raise BadInput(f"cannot open storage {text}: {str(err).splitlines()[0]}") from None
                time.sleep(0.5 + attempt)
    path = Path(text)
    if not path.is_file():
        if not create:
            return None
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path)))
    except Exception as err:  # noqa: BLE001 - a corrupt or foreign file
        raise BadInput(f"cannot read {path} as an Optuna journal: {err}") from None


@dataclass
class StudyRef:
    """A study in a storage, with direct access to the storage calls the protocol needs."""

    study: optuna.Study

    @property
    def storage(self):
        return self.study._storage

    @property
    def id(self) -> int:
        return self.study._study_id

    def trials(self, states: tuple[TrialState, ...] | None = None) -> list[FrozenTrial]:
        return self.storage.get_all_trials(self.id, deepcopy=False, states=states)

    def trial(self, trial_id: int) -> FrozenTrial:
        return self.storage.get_trial(trial_id)

    def set_attr(self, trial_id: int, key: str, value: Any) -> None:
        self.storage.set_trial_user_attr(trial_id, key, value)


def find_study(storage, name: str) -> StudyRef | None:
    if storage is None:
        return None
    try:
        names = optuna.get_all_study_names(storage)
    except Exception:  # noqa: BLE001 - no schema yet (dry run against an empty database)
        return None
    if name not in names:
        return None
    return StudyRef(optuna.load_study(study_name=name, storage=storage, sampler=optuna.samplers.RandomSampler()))


def create_study(storage, name: str, direction: str, spec: dict, cells: list[str]) -> StudyRef:
    study = optuna.create_study(study_name=name, storage=storage, direction=direction, load_if_exists=True,
                                sampler=optuna.samplers.RandomSampler())
    if study.direction.name.lower() != direction:
        raise BadInput(f"study {name!r} exists with direction {study.direction.name.lower()}, but the spec's "
                       f"objective needs {direction}; use another study name or storage")
    attrs = study.user_attrs
    if attrs.get("spec") != spec:
        study.set_user_attr("spec", spec)
    if attrs.get("cells") != cells:
        study.set_user_attr("cells", cells)
    return StudyRef(study)


# -- workers and staleness ------------------------------------------------------------------------------


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


def last_sign_of_life(t: FrozenTrial) -> float:
    hb = t.user_attrs.get("heartbeat")
    if isinstance(hb, int | float):
        return float(hb)
    return t.datetime_start.timestamp() if t.datetime_start else 0.0


def is_stale(t: FrozenTrial, grace: float, now: float | None = None) -> bool:
    if t.state != TrialState.RUNNING:
        return False
    if worker_alive(t.user_attrs.get("worker")) is False:
        return True
    return (now or time.time()) - last_sign_of_life(t) > grace


def cell_trials(ref: StudyRef, kind: str | None = "train") -> dict[str, list[FrozenTrial]]:
    out: dict[str, list[FrozenTrial]] = {}
    for t in ref.trials():
        cell = t.user_attrs.get("cell")
        if cell is None or (kind is not None and t.user_attrs.get("kind", "train") != kind):
            continue
        out.setdefault(cell, []).append(t)
    for group in out.values():
        group.sort(key=lambda t: t.number)
    return out


CELL_ATTRS = ("kind", "cell", "variant", "seed", "overrides", "config", "search_index", "search_values", "retry_of",
              "source_cell", "method", "img_size", "window_size", "finetune_epochs", "finetune_lr")


def enqueue(ref: StudyRef, attrs: dict) -> None:
    ref.study.enqueue_trial(params={"cell": attrs["cell"]},
                            user_attrs={k: attrs[k] for k in CELL_ATTRS if k in attrs})


def reap_stale(ref: StudyRef, grace: float) -> list[int]:
    """Fail RUNNING trials whose worker died and enqueue a successor for each; returns their numbers."""
    reaped = []
    now = time.time()
    for t in ref.trials(states=(TrialState.RUNNING,)):
        if t.user_attrs.get("cell") is None or not is_stale(t, grace, now):
            continue
        try:
            ref.set_attr(t._trial_id, "error", DIED)
            if not ref.storage.set_trial_state_values(t._trial_id, TrialState.FAIL):
                continue
        except UpdateFinishedTrialError:
            continue  # finished meanwhile (by its worker or by another reaper)
        reaped.append(t.number)
        deaths = sum(1 for x in cell_trials(ref, kind=None).get(t.user_attrs["cell"], [])
                     if x.state == TrialState.FAIL and x.user_attrs.get("error") == DIED)
        if deaths < MAX_DEATHS:
            enqueue(ref, {**t.user_attrs, "retry_of": t.number})
    return reaped


# -- cell states ----------------------------------------------------------------------------------------


def cell_state(trials: list[FrozenTrial], grace: float = GRACE_S) -> tuple[str, str]:
    """(state, detail) of a cell from its trials: done / running / queued / failed / to do."""
    done = [t for t in trials if t.state == TrialState.COMPLETE]
    if done:
        return "done", f"trial {done[-1].number}"
    pruned = [t for t in trials if t.state == TrialState.PRUNED and t.user_attrs.get("error") != DUPLICATE]
    if pruned:
        return "done", f"pruned (trial {pruned[-1].number})"
    running = [t for t in trials if t.state == TrialState.RUNNING]
    if running:
        t = running[0]
        if is_stale(t, grace):
            return "running", f"stale: {DIED}, will be retried (trial {t.number})"
        w = t.user_attrs.get("worker") or {}
        return "running", f"trial {t.number} on {w.get('host', '?')}:{w.get('pid', '?')}"
    if any(t.state == TrialState.WAITING for t in trials):
        return "queued", ""
    failed = [t for t in trials if t.state == TrialState.FAIL]
    if failed:
        return "failed", str(failed[-1].user_attrs.get("error") or "unknown error")
    return "to do", ""


def plan_cells(ref: StudyRef, cells: list, retry_failed: bool = False, grace: float = GRACE_S) -> int:
    """Enqueue a WAITING trial for every cell that needs one; returns how many were enqueued."""
    reap_stale(ref, grace)
    by_cell = cell_trials(ref, kind=None)
    n = 0
    for cell in cells:
        trials = by_cell.get(cell.id, [])
        live = [t for t in trials if t.state in (TrialState.WAITING, TrialState.RUNNING, TrialState.COMPLETE)]
        if live or any(t.state == TrialState.PRUNED and t.user_attrs.get("error") != DUPLICATE for t in trials):
            continue
        failed = [t for t in trials if t.state == TrialState.FAIL]
        deaths = sum(1 for t in failed if t.user_attrs.get("error") in AUTO_RETRY)
        auto = failed and failed[-1].user_attrs.get("error") in AUTO_RETRY and deaths < MAX_DEATHS
        if failed and not retry_failed and not auto:
            continue
        attrs = cell.user_attrs()
        if failed and "search_values" in failed[-1].user_attrs:  # a search trial resumes its own run folder
            attrs["search_values"] = failed[-1].user_attrs["search_values"]
        enqueue(ref, attrs)
        n += 1
    return n


# -- claiming -------------------------------------------------------------------------------------------


def claim(ref: StudyRef) -> FrozenTrial | None:
    """Atomically take a WAITING cell trial (RUNNING, owned by this process): training cells first (a
    transfer cell needs its trained cell), then the lowest number."""
    waiting = ref.trials(states=(TrialState.WAITING,))
    for t in sorted(waiting, key=lambda t: (t.user_attrs.get("kind", "train") != "train", t.number)):
        if t.user_attrs.get("cell") is None:
            continue
        try:
            if not ref.storage.set_trial_state_values(t._trial_id, TrialState.RUNNING):
                continue
        except UpdateFinishedTrialError:
            continue
        ref.set_attr(t._trial_id, "worker", worker_identity())
        ref.set_attr(t._trial_id, "heartbeat", time.time())
        return ref.trial(t._trial_id)
    return None


def duplicate_of(ref: StudyRef, mine: FrozenTrial) -> str | None:
    """Why this claimed trial must not run (another trial owns the cell), or None."""
    for t in cell_trials(ref, kind=None).get(mine.user_attrs["cell"], []):
        if t.number == mine.number:
            continue
        if t.state == TrialState.COMPLETE:
            return f"{DUPLICATE} of finished trial {t.number}"
        if t.state in (TrialState.WAITING, TrialState.RUNNING) and t.number < mine.number:
            return f"{DUPLICATE} of trial {t.number}"
    return None


def give_up(ref: StudyRef, trial_id: int) -> None:
    try:
        ref.set_attr(trial_id, "error", DUPLICATE)
        ref.storage.set_trial_state_values(trial_id, TrialState.PRUNED)
    except UpdateFinishedTrialError:
        pass


def beat(ref: StudyRef, trial_id: int) -> bool:
    """Refresh the heartbeat; False when the trial was finished by someone else (we were presumed dead)."""
    try:
        ref.set_attr(trial_id, "heartbeat", time.time())
        return True
    except UpdateFinishedTrialError:
        return False


def finish(ref: StudyRef, trial_id: int, state: TrialState, value: float | None = None,
           attrs: dict | None = None) -> bool:
    """Write ``attrs`` then the final state; False when someone else finished the trial first."""
    try:
        for k, v in (attrs or {}).items():
            ref.set_attr(trial_id, k, v)
        values = [value] if value is not None and state == TrialState.COMPLETE else None
        return bool(ref.storage.set_trial_state_values(trial_id, state, values=values))
    except UpdateFinishedTrialError:
        return False


def progress_counts(ref: StudyRef, cell_ids: list[str], grace: float = GRACE_S) -> dict[str, int]:
    by_cell = cell_trials(ref, kind=None)
    counts = {"done": 0, "failed": 0, "running": 0, "queued": 0, "to do": 0}
    for c in cell_ids:
        counts[cell_state(by_cell.get(c, []), grace)[0]] += 1
    return counts
