"""The study contract: what ``swin-lit ablate`` writes into an Optuna study and what readers rely on.

Writer (``swin_lit.ablate``) and reader (``swin_lit.report``) both import this module, which imports
neither torch nor the CLI nor the driver's worker machinery. It holds:

- **Where**: a study folder ``results/<study>/`` holds the storage (``study.log``, an Optuna journal file;
  or ``study.db``, SQLite) and ``runs/`` (one run folder per cell, named ``<name>-<config hash>``); any
  SQLAlchemy URL (PostgreSQL) can hold the study instead. ``open_storage`` is the one opener of all three.
- **Cells**: one cell = one Optuna trial. ``kind`` ``train`` (a variant x a seed, in ``mode: search`` also a
  search index) or ``transfer`` (a trained cell moved to a larger image and window with one method).
  A cell's **params** are the study's switches, one Optuna param each, plus ``seed``
  (``param_distributions``); a cell's id is derived from its params (``cell_id``) and also kept as the
  ``cell`` user attr. Seeds are listed in the spec, or adaptive (``seeds: {start, max, step, precision}``,
  Stein's two-stage rule, ``swin_lit.seeds.SeedRule``; ``step`` unused): then which seeds every variant gets
  is ``seed_decision`` on the stored trials, and the ``seed`` param's range is 0 .. max-1 from the first
  trial on. Factor values that Optuna cannot store as a choice (lists
  such as depths) are stored as their JSON text (``encode``).
- **States**: ``cell_status`` turns a cell's trials into one of ``STATUSES``; ``DONE`` says which need no
  more work. Several trials of one cell are normal (a retry after a failure, a re-queue after a dead worker,
  a duplicate from racing planners given up as PRUNED with ``error: duplicate``); the newest COMPLETE trial
  with a result counts (``counted_trial``).
- **Directions**: which metrics are minimised (``MINIMIZED``, ``lower_is_better``, ``direction``).

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
    result      the result record (``swin_lit.record``) of a finished train cell, or a transfer record:
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

import itertools
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from swin_lit.errors import StorageError, one_line

JOURNAL_FILE = "study.log"
SQLITE_FILE = "study.db"
RUNS_DIR = "runs"
LOGS_DIR = "logs"
LEASES_SUFFIX = ".leases"  # <journal>.leases/: one lease file per running trial (journal storages only)

TRAIN, TRANSFER = "train", "transfer"
KINDS = (TRAIN, TRANSFER)
TRANSFER_METHODS = ("bicubic", "extrapolate", "renormalize")

# Param names besides the factor keys.
SEED, VARIANT, SEARCH_INDEX = "seed", "variant", "search_index"
METHOD, IMG_SIZE, WINDOW_SIZE = "method", "img_size", "window_size"

# -- cell identity and naming ------------------------------------------------------------------------------


def factorial_name(assignment: dict) -> str:
    """``{"model.shift": "none", "model.norm": "pre"}`` -> ``"model.shift=none,model.norm=pre"``."""
    return ",".join(f"{k}={v}" for k, v in assignment.items())


def planned_variants(spec: dict) -> list[tuple[str, dict]]:
    """(name, overrides) of every variant a plain spec plans, in spec order."""
    if spec.get("factors"):
        factors = spec["factors"]
        return [(factorial_name(dict(zip(factors, values))), dict(zip(factors, values)))
                for values in itertools.product(*factors.values())]
    return [(name, dict(overrides or {})) for name, overrides in (spec.get("variants") or {}).items()]


def train_cell_id(variant: str, seed: int, search_index: int | None = None) -> str:
    return f"{variant}|seed={seed}" if search_index is None else f"{variant}|trial={search_index}|seed={seed}"


def transfer_cell_id(source_cell: str, img_size: int, window_size: int, method: str) -> str:
    return f"{source_cell}|to={img_size}:{window_size}|method={method}"


def seed_of_cell(cell: str) -> int | None:
    for part in str(cell).split("|"):
        if part.startswith("seed="):
            try:
                return int(part[len("seed="):])
            except ValueError:
                return None
    return None


# -- params -------------------------------------------------------------------------------------------------


def encode(value: Any) -> Any:
    """A factor value as an Optuna categorical choice: scalars as they are, lists and mappings as JSON text."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return json.dumps(value, sort_keys=True)


def decode(spec: dict, key: str, stored: Any) -> Any:
    """The spec's factor value whose encoding is ``stored`` (the value itself when the spec lacks it)."""
    for value in (spec.get("factors") or {}).get(key, []):
        if encode(value) == stored and type(encode(value)) is type(stored):
            return value
    return stored


def seed_rule(spec: dict):
    """The adaptive-seed rule (``swin_lit.seeds.SeedRule``) of a plain spec whose ``seeds`` is
    ``{start, max, step, precision}``, else None (listed seeds)."""
    seeds = spec.get("seeds")
    if not isinstance(seeds, dict):
        return None
    from swin_lit.seeds import SeedRule
    from swin_lit.typed import from_dict

    return from_dict(SeedRule, seeds, prefix="seeds")


def _seed_range(spec: dict) -> tuple[int, int]:
    """The ``seed`` param's range: the listed seeds, or 0 .. max-1 for adaptive seeds (the whole range the rule
    may reach, so trials from before and after the seeds grew hold one distribution)."""
    rule = seed_rule(spec)
    if rule is not None:
        return 0, rule.max - 1
    seeds = [int(s) for s in spec.get("seeds") or [0]]
    return min(seeds), max(seeds)


def param_distributions(spec: dict) -> dict:
    """Every param a cell of this spec can have, with its Optuna distribution.

    Categorical choices come from the spec (factor values, variant names); a study keeps them for life
    (Optuna refuses another set of choices for a param name). ``seed``, ``search_index``, ``img_size`` and
    ``window_size`` are integer ranges, which Optuna lets grow (seeds added later keep old trials valid).
    """
    from optuna.distributions import CategoricalDistribution, IntDistribution

    out: dict = {}
    if spec.get("factors"):
        for key, values in spec["factors"].items():
            out[key] = CategoricalDistribution([encode(v) for v in values])
    else:
        out[VARIANT] = CategoricalDistribution(list((spec.get("variants") or {}).keys()))
    out[SEED] = IntDistribution(*_seed_range(spec))
    search = spec.get("search") if spec.get("mode") == "search" else None
    if search:
        n = int(search.get("trials", 1))
        out[SEARCH_INDEX] = IntDistribution(0, max(n - 1, 0))
        for key, rng in (search.get("params") or {}).items():
            out[key] = search_distribution(rng)
    transfer = spec.get("transfer")
    if transfer:
        targets = [tuple(int(p) for p in str(t).split(":")) for t in transfer.get("targets") or []]
        out[METHOD] = CategoricalDistribution(list(TRANSFER_METHODS))
        out[IMG_SIZE] = IntDistribution(min(t[0] for t in targets), max(t[0] for t in targets))
        out[WINDOW_SIZE] = IntDistribution(min(t[1] for t in targets), max(t[1] for t in targets))
    return out


def search_distribution(rng: dict):
    """The Optuna distribution of a ``search.params`` range ({low, high, log?, step?} or {choices})."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if "choices" in rng:
        return CategoricalDistribution(rng["choices"])
    is_int = all(isinstance(rng[b], int) for b in ("low", "high")) and isinstance(rng.get("step", 1), int)
    if is_int and not rng.get("log"):
        return IntDistribution(rng["low"], rng["high"], step=rng.get("step", 1))
    if is_int:
        return IntDistribution(rng["low"], rng["high"], log=True)
    return FloatDistribution(float(rng["low"]), float(rng["high"]), log=bool(rng.get("log", False)),
                             step=rng.get("step"))


def cell_params(spec: dict, overrides: dict, variant: str, seed: int, search_index: int | None = None,
                transfer: dict | None = None) -> dict:
    """The params of one cell (search values are added by the sampler when the cell is claimed)."""
    if spec.get("factors"):
        params = {key: encode(overrides[key]) for key in spec["factors"]}
    else:
        params = {VARIANT: variant}
    params[SEED] = int(seed)
    if search_index is not None:
        params[SEARCH_INDEX] = int(search_index)
    if transfer is not None:
        params.update({METHOD: transfer["method"], IMG_SIZE: int(transfer["img_size"]),
                       WINDOW_SIZE: int(transfer["window_size"])})
    return params


def find_variant(names: list[str], name: str, factorial: bool) -> str | None:
    """The variant of ``names`` called ``name``; factorial names match in any order of their ``key=value``
    parts."""
    if name in names:
        return name
    if factorial:
        parts = sorted(p.strip() for p in str(name).split(","))
        for n in names:
            if sorted(n.split(",")) == parts:
                return n
    return None


def baseline_variant(spec: dict) -> str | None:
    """The spec's baseline among its planned variants, else the first variant."""
    names = [n for n, _ in planned_variants(spec)]
    found = find_variant(names, spec["baseline"], bool(spec.get("factors"))) if spec.get("baseline") else None
    return found or (names[0] if names else None)


def variant_of_params(spec: dict, params: dict) -> str:
    if spec.get("factors"):
        return factorial_name({key: decode(spec, key, params[key]) for key in spec["factors"]})
    return params[VARIANT]


def cell_id(spec: dict, kind: str, params: dict) -> str:
    """The cell id, derived from a trial's params (``cell`` user attr holds the same)."""
    train = train_cell_id(variant_of_params(spec, params), int(params[SEED]),
                          params.get(SEARCH_INDEX) if spec.get("mode") == "search" else None)
    if kind == TRANSFER:
        return transfer_cell_id(train, int(params[IMG_SIZE]), int(params[WINDOW_SIZE]), params[METHOD])
    return train


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
            value = metric_value(counted_trial(group).user_attrs["result"], objective)
            if value is not None and math.isfinite(value):
                finished.setdefault(variant, {})[seed] = value
            else:  # a record without the objective: there is nothing to wait for
                failed.append((variant, seed))
        elif status == PRUNED or (status == FAILED and settle_failures and not retried_by_itself(group)):
            failed.append((variant, seed))
    return finished, failed


def seed_decision(spec: dict, trials, baseline: str | None = None,
                  variant_of: Callable[[dict], str | None] | None = None, settle_failures: bool = True):
    """The adaptive-seed rule's decision (``swin_lit.seeds.seed_decision``, two-stage: N fixed from the
    first ``start`` seeds) on a study's stored trials, or None for listed seeds: which seeds every variant
    must have now, and whether the study stopped. The driver, its
    workers and the report all decide through this function, so each reaches the same answer from the same
    stored values. ``baseline`` defaults to ``baseline_variant(spec)``."""
    rule = seed_rule(spec)
    if rule is None:
        return None
    from swin_lit.seeds import seed_decision as decide

    objective = str(spec.get("objective") or "test.top1")
    finished, failed = seed_outcomes(trials, objective, variant_of, settle_failures)
    variants = [n for n, _ in planned_variants(spec)]
    return decide(rule, baseline or baseline_variant(spec), variants, finished, failed, metric=objective)


# -- metric directions -------------------------------------------------------------------------------------

# Dotted result paths a spec may name in ``metrics`` / ``objective`` (see swin_lit.record).
SPLIT_METRICS = ("top1", "top5", "loss", "ece", "miou", "aacc")
TASK_METRICS = {"classification": ("top1", "top5", "loss", "ece"), "segmentation": ("miou", "aacc", "loss")}
SCALAR_RESULTS = ("params", "flops", "train_images_per_s", "eval_images_per_s", "wall_time_s", "train_time_s",
                  "epochs", "params_backbone", "params_head", "flops_backbone", "flops_head")
MINIMIZED = ("loss", "ece", "params", "flops", "wall_time_s", "train_time_s", "params_backbone", "params_head",
             "flops_backbone", "flops_head")  # last part of a metric path


def lower_is_better(metric: str) -> bool:
    """``test.loss`` / ``loss`` / ``flops`` -> True; ``test.top1`` -> False."""
    return str(metric).split(".")[-1] in MINIMIZED


def direction(metric: str) -> str:
    return "minimize" if lower_is_better(metric) else "maximize"


def intermediate_metric(objective: str) -> str:
    """The per-epoch validation value reported for an objective: ``val.<metric>`` for a split metric
    (``test.top1`` -> ``val.top1``), else ``val.top1``."""
    parts = str(objective).split(".")
    if len(parts) == 2 and parts[1] in SPLIT_METRICS:
        return f"val.{parts[1]}"
    return "val.top1"


def metric_value(record: dict, path: str) -> float | None:
    """A dotted path of a result record as a number, or None."""
    node: Any = record
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return float(node) if isinstance(node, int | float) and not isinstance(node, bool) else None


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
