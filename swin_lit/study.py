"""The study contract: what ``swin-lit ablate`` writes into an Optuna study and what readers rely on.

Writer (``swin_lit.ablate``) and reader (``swin_lit.report``) both import this module, which imports
neither torch nor the CLI nor the driver's worker machinery. It holds:

- **Where**: a study folder ``results/<study>/`` holds the storage (``study.log``, an Optuna journal file;
  or ``study.db``, SQLite) and ``runs/`` (one run folder per cell, named ``<name>-<config hash>``); any
  SQLAlchemy URL (PostgreSQL) can hold the study instead. ``open_storage`` is the one opener of all three.
- **Cells**: one cell = one Optuna trial. ``kind`` ``train`` (a variant x a seed, in ``mode: search`` also a
  search index) or ``transfer`` (a trained cell moved to a larger image and window with one method).
  A cell's **params** are the study's switches, one Optuna param each, plus ``seed``
  (``Spec.param_distributions``); a cell's id (``swin_lit.domain.cell.CellId``) is derived from its params
  (``Spec.cell_id``) and also kept as the ``cell`` user attr. Seeds are listed in the spec, or adaptive
  (``seeds: {start, max, step, precision}``, Stein's two-stage rule, ``swin_lit.domain.sections.SeedRule``;
  ``step`` unused): then which seeds every variant gets is ``seed_decision`` on the stored trials, and the
  ``seed`` param's range is 0 .. max-1 from the first trial on. Factor values that Optuna cannot store as a
  choice (lists such as depths) are stored as their JSON text (``swin_lit.domain.spec.encode``). The spec
  itself is stored as a plain dict and read back with ``Spec.from_stored``.
- **States**: ``cell_status`` turns a cell's trials into one of ``STATUSES``; ``DONE`` says which need no
  more work. Several trials of one cell are normal (a retry after a failure, a re-queue after a dead worker,
  a duplicate from racing planners given up as PRUNED with ``error: duplicate``); the newest COMPLETE trial
  with a result counts (``counted_trial``).
- **Results**: a finished train cell's ``result`` attr read back as a ``swin_lit.domain.result.Result``
  (``result_of``); which metrics are minimised is ``swin_lit.domain.metrics``.

Trial user attrs a reader can rely on (written by the driver)::

    kind        "train" | "transfer"
    cell        the cell id, e.g. "model.shift=none|seed=1"
                (search: "<variant>|trial=3|seed=0"; transfer: "<train cell>|to=64:8|method=bicubic")
    variant     variant name (a row of the tables)
    seed        int (also the ``seed`` param)
    overrides   {dotted config key: value} applied to the spec's base config
    config      the cell's resolved run config (before search values)
    run_dir     the run folder, relative to the study folder ("runs/<name>-<hash>")
    worker      {"host", "pid", ...} of the worker that claimed the trial (written once per claim)
    result      the result record (``swin_lit.record``; read back as ``swin_lit.domain.result.Result``) of a
                finished train cell, or a transfer record (``TransferRecord``):
                {"top1", "top5", "loss", "top1_ft", "top5_ft", "ft_run_dir"} (segmentation: miou / aacc for
                top1 / top5)
    error       one-line reason (failed, pruned and given-up trials); a FAIL trial without it was failed by
                Optuna's own heartbeat check (RDB storages): its worker died
    transfer cells also: source_cell, method, img_size, window_size, finetune_epochs, finetune_lr
    search cells also: search_index

Each epoch's validation value of the objective (``intermediate_metric``) is the trial's intermediate value
(step = epoch), so optuna-dashboard draws the learning curves. Study user attrs: ``spec`` (the ablation spec
as a plain dict) and ``cells`` (the planned cell ids, in plan order; adaptive seeds: the cells of the first
``start`` seeds, the cells of later seeds are planned when ``seed_decision`` asks for them).

Liveness is not part of the permanent record: RDB storages use Optuna's heartbeat table; the journal file
has a lease file per running trial in ``<journal>.leases/`` (see ``swin_lit.ablate.store``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from swin_lit.domain.metrics import SPLIT_METRICS
from swin_lit.domain.result import RecordError, Result
from swin_lit.domain.spec import TRAIN, TRANSFER, Spec
from swin_lit.errors import StorageError, one_line

JOURNAL_FILE = "study.log"
SQLITE_FILE = "study.db"
RUNS_DIR = "runs"
LOGS_DIR = "logs"
LEASES_SUFFIX = ".leases"  # <journal>.leases/: one lease file per running trial (journal storages only)

KINDS = (TRAIN, TRANSFER)

# The spec's own derivations (variants, a cell's params and id) are ``swin_lit.domain.spec.Spec``'s; a cell id is
# ``swin_lit.domain.cell.CellId``; metric facts are ``swin_lit.domain.metrics``.


# -- trial states and cell status ---------------------------------------------------------------------------

FINISHED, PRUNED, RUNNING, WAITING, FAILED, MISSING = "finished", "pruned", "running", "waiting", "failed", "missing"
STATUSES = (FINISHED, PRUNED, RUNNING, WAITING, FAILED, MISSING)
DONE = (FINISHED, PRUNED)  # nothing left to do (a pruned search trial is a finished trial without a result)

DUPLICATE = "duplicate"  # ``error`` of a trial given up because another trial owns its cell
DIED = "worker died"
INTERRUPTED = "interrupted"
AUTO_RETRY = (DIED, INTERRUPTED)  # failures that are the machine's fault, not the cell's: re-queued by themselves
MAX_DEATHS = 3  # a cell whose worker died this often is left FAILED (a retry needs --retry-failed)


def state_name(trial) -> str:
    return trial.state.name  # COMPLETE, PRUNED, RUNNING, WAITING, FAIL


def cell_of(trial) -> str | None:
    return trial.user_attrs.get("cell")


def kind_of(trial) -> str:
    return trial.user_attrs.get("kind") or TRAIN


def is_duplicate(trial) -> bool:
    return state_name(trial) == "PRUNED" and str(trial.user_attrs.get("error", "")).startswith(DUPLICATE)


def error_of(trial) -> str | None:
    """Why a trial did not finish; a FAIL without an ``error`` attr was failed by Optuna's heartbeat check."""
    error = trial.user_attrs.get("error")
    if error is None and state_name(trial) == "FAIL":
        return DIED
    return error


def has_result(trial) -> bool:
    return state_name(trial) == "COMPLETE" and isinstance(trial.user_attrs.get("result"), dict)


def _newest_first(trial) -> tuple:
    return (trial.datetime_complete or datetime.min, trial.number)


def counted_trial(trials: list):
    """The trial whose result counts for a cell: the newest COMPLETE one with a result, or None."""
    done = [t for t in trials if has_result(t)]
    return max(done, key=_newest_first) if done else None


def trials_by_cell(trials, kind: str | None = None) -> dict[str, list]:
    """{cell id: its trials in number order}; trials without a cell (not ours) are left out."""
    out: dict[str, list] = {}
    for t in trials:
        cell = cell_of(t)
        if cell is None or (kind is not None and kind_of(t) != kind):
            continue
        out.setdefault(cell, []).append(t)
    for group in out.values():
        group.sort(key=lambda t: t.number)
    return out


def cell_status(trials: list, stale: Callable[[Any], bool] | None = None) -> tuple[str, str]:
    """(status, detail) of one cell from its trials; ``stale(trial)`` tells a RUNNING trial whose worker died."""
    trials = [t for t in trials if not is_duplicate(t)]
    done = counted_trial(trials)
    if done is not None:
        return FINISHED, f"trial {done.number}"
    by_state: dict[str, list] = {}
    for t in trials:
        by_state.setdefault(state_name(t), []).append(t)
    if "PRUNED" in by_state:
        t = by_state["PRUNED"][-1]
        return PRUNED, f"trial {t.number}: {t.user_attrs.get('error') or 'pruned'}"
    if "RUNNING" in by_state:
        t = by_state["RUNNING"][0]
        if stale is not None and stale(t):
            return RUNNING, f"stale: {DIED}, will be retried (trial {t.number})"
        w = t.user_attrs.get("worker") or {}
        return RUNNING, f"trial {t.number} on {w.get('host', '?')}:{w.get('pid', '?')}"
    if "WAITING" in by_state:
        return WAITING, ""
    failed = by_state.get("FAIL", []) + by_state.get("COMPLETE", [])  # COMPLETE without a result: failed
    if failed:
        t = max(failed, key=lambda x: x.number)
        if state_name(t) == "COMPLETE":
            return FAILED, "completed without a result record"
        return FAILED, str(error_of(t) or "unknown error")
    return MISSING, ""


def deaths(trials: list) -> int:
    """How often a cell's worker died (its FAIL trials whose error is ``DIED``)."""
    return sum(1 for t in trials if state_name(t) == "FAIL" and error_of(t) == DIED)


def retried_by_itself(trials: list) -> bool:
    """Whether a failed cell is re-queued without ``--retry-failed``: its newest FAIL trial is the machine's
    fault (``AUTO_RETRY``) and its worker died fewer than ``MAX_DEATHS`` times."""
    failed = [t for t in trials if state_name(t) == "FAIL"]
    return bool(failed) and error_of(failed[-1]) in AUTO_RETRY and deaths(trials) < MAX_DEATHS


# -- adaptive seeds ----------------------------------------------------------------------------------------


def seed_outcomes(trials, objective: str, variant_of: Callable[[dict], str | None] | None = None,
                  settle_failures: bool = True) -> tuple[dict[str, dict[int, float]], list[tuple[str, int]]]:
    """What the adaptive-seed rule reads from a study's trials: ({variant: {seed: objective value}} of the
    finished train cells (their counted trial's result), [(variant, seed) of the train cells settled without a
    value]). Settled without a value: pruned, or failed for good (not ``retried_by_itself``; with
    ``settle_failures`` False, as under ``--retry-failed``, no failure is). Every other cell (waiting, running,
    missing, or failed and about to be re-queued) is unsettled. ``variant_of(user_attrs)`` names a trial's
    variant (default: its ``variant`` attr)."""
    variant_of = variant_of or (lambda attrs: attrs.get("variant"))
    groups: dict[tuple[str, int], list] = {}
    for t in sorted(trials, key=lambda t: t.number):
        variant, seed = variant_of(t.user_attrs), t.user_attrs.get("seed")
        if kind_of(t) == TRAIN and cell_of(t) is not None and variant is not None and seed is not None:
            groups.setdefault((variant, int(seed)), []).append(t)
    finished: dict[str, dict[int, float]] = {}
    failed = []
    for (variant, seed), group in groups.items():
        status, _ = cell_status(group)
        if status == FINISHED:
            result = result_of(counted_trial(group))
            value = result.finite(objective) if result is not None else None
            if value is not None:
                finished.setdefault(variant, {})[seed] = value
            else:  # a record without the objective: there is nothing to wait for
                failed.append((variant, seed))
        elif status == PRUNED or (status == FAILED and settle_failures and not retried_by_itself(group)):
            failed.append((variant, seed))
    return finished, failed


def seed_decision(spec: Spec, trials, baseline: str | None = None,
                  variant_of: Callable[[dict], str | None] | None = None, settle_failures: bool = True):
    """The adaptive-seed rule's decision (``swin_lit.seeds.seed_decision``, two-stage: N fixed from the
    first ``start`` seeds) on a study's stored trials, or None for listed seeds: which seeds every variant
    must have now, and whether the study stopped. The driver, its
    workers and the report all decide through this function, so each reaches the same answer from the same
    stored values. ``baseline`` defaults to the spec's ``baseline_variant``."""
    if spec.rule is None:
        return None
    from swin_lit.seeds import seed_decision as decide

    finished, failed = seed_outcomes(trials, spec.objective, variant_of, settle_failures)
    return decide(spec.rule, baseline or spec.baseline_variant, spec.variant_names(), finished, failed,
                  metric=spec.objective)


# -- metrics -------------------------------------------------------------------------------------------------


def intermediate_metric(objective: str) -> str:
    """The per-epoch validation value reported for an objective: ``val.<metric>`` for a split metric
    (``test.top1`` -> ``val.top1``), else ``val.top1``."""
    parts = str(objective).split(".")
    if len(parts) == 2 and parts[1] in SPLIT_METRICS:
        return f"val.{parts[1]}"
    return "val.top1"


def result_of(trial) -> Result | None:
    """A train trial's stored ``result`` user attr as a ``Result`` (any stored version); None without one, or
    for a stored dict that is no result record."""
    record = trial.user_attrs.get("result")
    if not isinstance(record, dict):
        return None
    try:
        return Result.from_dict(record)
    except RecordError:
        return None


# -- run folders ----------------------------------------------------------------------------------------------


def run_dir_attr(run_id: str) -> str:
    """The ``run_dir`` user attr of a run folder inside the study folder."""
    return f"{RUNS_DIR}/{run_id}"


# -- storage ------------------------------------------------------------------------------------------------


@dataclass
class Opened:
    """An opened study storage: the Optuna storage object and where it lives."""

    storage: Any  # optuna.storages.JournalStorage | optuna.storages.RDBStorage
    target: str  # the URL or journal/sqlite file path
    folder: Path | None  # the study folder (relative run dirs resolve against it), when known
    journal: Path | None  # the journal file (leases live beside it), when the storage is one

    @property
    def leases(self) -> Path | None:
        return self.journal.with_name(self.journal.name + LEASES_SUFFIX) if self.journal is not None else None


def is_url(text: str | Path) -> bool:
    return "://" in str(text)


def _is_sqlite_file(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(16).startswith(b"SQLite format 3")


def _driver_hint(url: str) -> str:
    scheme = url.split("://", 1)[0]
    if scheme.startswith("postgresql"):
        return "pip install 'swin-lit[postgres]'"
    return f"install the database driver for {scheme}"


def _open_rdb(url: str, create: bool, heartbeat: tuple[int, int] | None, stale_callback) -> Any:
    import time
    import warnings

    import optuna

    kwargs: dict[str, Any] = {}
    if not url.startswith("sqlite"):
        kwargs["pool_pre_ping"] = True  # long trials: idle connections get dropped (optuna#5600)
    beat: dict[str, Any] = {}
    if heartbeat is not None:
        beat = {"heartbeat_interval": heartbeat[0], "grace_period": heartbeat[1],
                "heartbeat_stale_trial_callback": stale_callback}
    for attempt in range(6):
        try:
            with warnings.catch_warnings():  # heartbeat_interval is marked experimental in Optuna 5
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(url, engine_kwargs=kwargs, skip_table_creation=not create, **beat)
        except ImportError as err:
            raise StorageError(f"cannot open storage {url}: its database driver is missing "
                               f"({one_line(err)}); {_driver_hint(url)}") from None
        except Exception as err:  # noqa: BLE001 - driver errors vary by backend
            # Several machines starting at once race to create the schema: the loser retries.
            text = str(err)
            if attempt == 5 or not any(w in text for w in ("UniqueViolation", "already exists", "duplicate")):
                first = text.strip().splitlines()[0] if text.strip() else type(err).__name__
                raise StorageError(f"cannot open storage {url}: {first}") from None
            time.sleep(0.5 + attempt)
    raise AssertionError("unreachable")


def open_storage(source: str | Path, create: bool = False, heartbeat: tuple[int, int] | None = None,
                 stale_callback: Callable | None = None) -> Opened:
    """Open a study storage: a storage URL (any SQLAlchemy URL), a study folder (holding ``study.log`` or
    ``study.db``) or a journal / SQLite file. With ``create`` a missing journal file (or database schema)
    is created; without, a missing one is a ``StorageError``. ``heartbeat`` = (interval, grace) seconds
    turns on Optuna's heartbeat on RDB storages, with ``stale_callback`` for each trial it fails."""
    import optuna

    text = str(source)
    if is_url(text):
        if text.startswith("sqlite:///"):
            db = Path(text[len("sqlite:///"):])
            if not create and not db.is_file():  # opening would silently create an empty database
                raise StorageError(f"no study storage at {text} (file {db} does not exist)")
            folder = db.parent if db.name == SQLITE_FILE else None
            return Opened(_open_rdb(text, create, heartbeat, stale_callback), text, folder, None)
        return Opened(_open_rdb(text, create, heartbeat, stale_callback), text, None, None)
    path = Path(text)
    folder = None
    if path.is_dir():
        folder = path
        if (path / JOURNAL_FILE).is_file():
            path = path / JOURNAL_FILE
        elif (path / SQLITE_FILE).is_file():
            path = path / SQLITE_FILE
        elif create:
            path = path / JOURNAL_FILE
        else:
            raise StorageError(f"{text} holds no study storage ({JOURNAL_FILE} or {SQLITE_FILE}); "
                               "has the study been run?")
    elif not path.is_file():
        if not create:
            raise StorageError(f"no study at {text}: not a study folder, storage file or storage URL")
        path.parent.mkdir(parents=True, exist_ok=True)
    if path.name in (JOURNAL_FILE, SQLITE_FILE):
        folder = path.parent
    if path.is_file() and _is_sqlite_file(path):
        url = f"sqlite:///{path.resolve()}"
        return Opened(_open_rdb(url, create, heartbeat, stale_callback), url, folder, None)
    try:
        storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path)))
    except Exception as err:  # noqa: BLE001 - a corrupt or foreign file
        raise StorageError(f"cannot read {path} as an Optuna journal: {one_line(err)}") from None
    return Opened(storage, str(path), folder, path)


def study_names(opened: Opened) -> list[str]:
    import optuna

    try:
        return optuna.get_all_study_names(opened.storage)
    except Exception as err:  # noqa: BLE001 - a corrupt or foreign file, an unreachable server, no schema yet
        raise StorageError(f"cannot read the studies in {opened.target}: {one_line(err)}") from None


def pick_study(opened: Opened, name: str | None = None) -> str:
    """The study to read: ``name``, or the only one the storage holds (StorageError otherwise)."""
    names = study_names(opened)
    if not names:
        raise StorageError(f"{opened.target} holds no study")
    if name is None:
        if len(names) > 1:
            raise StorageError(f"{opened.target} holds {len(names)} studies; pick one with --study: "
                               f"{', '.join(sorted(names))}")
        return names[0]
    if name not in names:
        raise StorageError(f"no study named {name!r} in {opened.target}; it holds: {', '.join(sorted(names))}")
    return name
