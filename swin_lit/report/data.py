"""Read a study back from its storage: the finished runs, the planned cells, failures and transfer rows.

Sources, in the order they are tried:
  - a study folder (``results/<study>/``) holding ``study.log`` (Optuna JournalFileBackend) or ``study.db`` (sqlite);
  - a storage URL (``sqlite:///...``, ``postgresql://...``, any SQLAlchemy URL);
  - a path to a journal log file or to an sqlite file.

Counting rules, naming, states and the storage opener are the study contract (``swin_lit.study``): only
COMPLETE trials with a ``result`` user attr count; when several trials exist for one cell (a retried
failure, a re-queue after a dead worker, a duplicate), the newest COMPLETE one (latest ``datetime_complete``,
then highest trial number) wins, duplicates given up by the driver are ignored, and a cell's status is
``swin_lit.study.cell_status``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from swin_lit import study as contract
from swin_lit.domain.cell import CellId
from swin_lit.domain.metrics import metric
from swin_lit.domain.result import TransferRecord, transfer_task
from swin_lit.domain.sections import SeedRule
from swin_lit.domain.spec import DEFAULT_LATEX_COLUMNS, Spec, parse_target
from swin_lit.domain.task import TASKS, Task, get_task
from swin_lit.report import captions
from swin_lit.seeds import SeedDecision

# Result fields that are not per-run metrics: kept out of the flattened columns.
NON_METRIC_FIELDS = ("history",)


@dataclass
class StudyData:
    """Everything a report needs, read once from the storage."""

    name: str
    spec: Spec  # the stored spec, read back (``Spec.from_stored``)
    folder: Path | None  # the study folder, when the source was one (relative run dirs resolve against it)
    variants: list[str]  # table rows in spec order, baseline first; variants seen only in trials at the end
    variant_overrides: dict[str, dict]  # variant -> its overrides (factor values for factorial specs)
    baseline: str | None
    seeds: list[int]
    planned: list[tuple[str, int]]  # planned (variant, seed) train cells
    runs: pd.DataFrame  # one row per finished train cell
    cells: pd.DataFrame  # one row per planned or attempted (variant, seed): status, attempts, error
    transfer: pd.DataFrame  # one row per finished transfer cell
    histories: dict[tuple[str, int], list[dict]] = field(default_factory=dict)
    environment: dict[str, Any] = field(default_factory=dict)
    transfer_cells: pd.DataFrame = field(default_factory=pd.DataFrame)  # every transfer cell with its status
    num_classes: int | None = None  # from the trained cells' configs (model.num_classes), else the spec's budget
    num_classes_source: str = "not recorded"
    trained_geometry: dict[str, tuple[int, int]] = field(default_factory=dict)  # variant -> (img_size, window)
    seed_decision: SeedDecision | None = None  # adaptive seeds: the rule's decision on the stored values
    paper: PaperNumbers | None = None
    transfer_paper: TransferPaperNumbers | None = None
    data_config: dict[str, Any] = field(default_factory=dict)  # the trained cells' data section and task
    run_config: dict[str, Any] = field(default_factory=dict)  # the first trained cell's resolved config
    spec_history: list[dict] = field(default_factory=list)  # spec changes after a result was seen (the driver's)
    stored_spec: dict = field(default_factory=dict)  # the ``spec`` user attr as stored (shown in report.md)
    task: str = field(default_factory=lambda: next(iter(TASKS)))  # the trained cells' task (``_study_task``)
    record_versions: dict[tuple[str, int], int] = field(default_factory=dict)  # finished cell -> record version

    @property
    def task_facts(self) -> Task:
        return get_task(self.task)

    @property
    def metrics(self) -> list[str]:
        """The spec's metrics, else the usual test metrics found in the runs."""
        wanted = list(self.spec.metrics)
        if not wanted:
            wanted = [c for c in ("test.top1", "test.top5", "test.miou", "test.aacc", "test.loss", "test.ece")
                      if c in self.runs.columns]
        return wanted

    @property
    def transfer_metric(self) -> str:
        """The transfer records' main score: the task's primary score (``top1``; a segmentation study's
        ``miou``), which names ``transfer``'s columns."""
        return self.task_facts.primary

    @property
    def transfer_label(self) -> str:
        """How the tables name it: ``top-1`` or ``mIoU``."""
        return metric(self.transfer_metric).label

    @property
    def transfer_chance(self) -> float | None:
        """The transfer score's chance level (%): 100 / classes for top-1; None for mIoU, which has no such
        single number, and where the class count is not known."""
        return 100 / self.num_classes if self.num_classes and self.transfer_metric == "top1" else None

    @property
    def factors(self) -> dict[str, list]:
        return dict(self.spec.factors or {})

    @property
    def alpha(self) -> float:
        return float(self.spec.alpha or 0.05)

    @property
    def objective(self) -> str:
        return str(self.spec.objective or "test.top1")

    @property
    def latex_columns(self) -> tuple[str, ...]:
        return tuple(self.spec.report.columns) or DEFAULT_LATEX_COLUMNS

    @property
    def seed_rule(self) -> SeedRule | None:
        return self.spec.rule

    @property
    def first_stage(self) -> int | None:
        """Adaptive seeds (Stein's two-stage rule): the first-stage seed count, whose SD every paired test and
        interval of the study uses (``swin_lit.stats.compare(..., first_stage=)``); None for listed seeds."""
        rule = self.seed_rule
        return rule.start if rule is not None else None


@dataclass
class PaperNumbers:
    """The spec's paper rows: {variant: {metric key: number}} and where they come from (None: the stored spec
    predates the provenance fields and does not say)."""

    source: str | None
    rows: dict[str, dict[str, float]]


@dataclass
class TransferPaperNumbers:
    """The spec's paper transfer rows: {variant: {(img, window): (without FT or None, with FT or None)}}, the
    paper's training (img, window) and the source."""

    source: str | None
    trained: tuple[int, int] | None
    rows: dict[str, dict[tuple[int, int], tuple[float | None, float | None]]]


def paper_numbers(spec: Spec, match) -> PaperNumbers | None:
    """The spec's ``paper`` section (older stored forms are converted by ``Spec.from_stored``); ``match`` maps a
    spec variant name to ours."""
    if spec.paper is None:
        return None
    rows = {match(name): {k: float(v) for k, v in numbers.items()} for name, numbers in spec.paper.rows.items()}
    return PaperNumbers(spec.paper.source() or None, rows)


def _paper_value(value) -> tuple[float | None, float | None]:
    """(without FT or None, with FT or None) of 81.7, [79.4, 82.7] or [null, 47.0] (a fine-tuned number only)."""
    if isinstance(value, list | tuple):
        return None if value[0] is None else float(value[0]), float(value[1])
    return float(value), None


def transfer_paper_numbers(spec: Spec, match) -> TransferPaperNumbers | None:
    """The spec's ``transfer.paper`` section (older stored forms are converted by ``Spec.from_stored``)."""
    paper = spec.transfer.paper if spec.transfer is not None else None
    if paper is None:
        return None
    rows = {match(name): {parse_target(key): _paper_value(value) for key, value in cols.items()}
            for name, cols in paper.rows.items()}
    return TransferPaperNumbers(paper.source() or None, parse_target(paper.trained), rows)


# -- opening the storage -----------------------------------------------------------------------------------


def open_study(source: str | Path, study: str | None = None):
    """(optuna.Study, study folder or None). ``study`` picks one when the storage holds several."""
    import optuna

    opened = contract.open_storage(source)
    name = contract.pick_study(opened, study)
    return optuna.load_study(study_name=name, storage=opened.storage), opened.folder


# -- flattening results ------------------------------------------------------------------------------------


def flatten(record: dict, prefix: str = "") -> dict[str, Any]:
    """Nested dict -> {dotted key: scalar}; lists (the history) are left out."""
    out: dict[str, Any] = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if key in NON_METRIC_FIELDS and not prefix:
            continue
        if isinstance(value, dict):
            out.update(flatten(value, f"{name}."))
        elif isinstance(value, list | tuple):
            continue
        else:
            out[name] = value
    return out


# -- loading -----------------------------------------------------------------------------------------------


def load_study(source: str | Path, study: str | None = None) -> StudyData:
    """Read one study into a ``StudyData`` (StorageError, a BadInput, when there is no such study)."""
    optuna_study, folder = open_study(source, study)
    attrs = optuna_study.user_attrs
    stored = dict(attrs.get("spec") or {})
    spec = Spec.from_stored(stored, optuna_study.study_name)
    trials = optuna_study.get_trials(deepcopy=False)
    variants = _Variants(spec)
    train = [t for t in trials if contract.kind_of(t) == contract.TRAIN and variants.of(t.user_attrs)
             and not contract.is_duplicate(t)]
    transfer = [t for t in trials if contract.kind_of(t) == contract.TRANSFER and not contract.is_duplicate(t)]
    for t in train:  # variants seen only in trials go after the planned ones
        variants.add(variants.of(t.user_attrs), t.user_attrs.get("overrides"))
    baseline = _baseline(spec, variants)
    seeds, planned = _planned_cells(spec, variants, train, attrs.get("cells") or [])
    if baseline is None and variants.names:
        baseline = variants.names[0]
    finished = _finished_cells(train, variants)
    decision = None
    if spec.rule is not None and spec.variant_list():  # the driver's decision, from the same stored trials
        decision = contract.seed_decision(spec, train, baseline, variants.of)
        seeds = list(decision.seeds)
        planned = [(name, s) for name in spec.variant_names() for s in seeds]
    num_classes, num_classes_source, geometry = _trained_facts(train, variants.of, spec)
    facts = _data_facts(train)
    task = _study_task(facts, finished.tasks, [t.user_attrs.get("result") or {} for t in transfer])
    return StudyData(
        name=optuna_study.study_name, spec=spec, folder=folder, variants=variants.names,
        variant_overrides=variants.overrides, baseline=baseline, seeds=seeds, planned=planned,
        runs=_runs_frame(finished.rows, variants), cells=_cells_frame(finished.cell_rows, planned, variants),
        transfer=_transfer_frame(transfer, variants.of, get_task(task)), histories=finished.histories,
        environment=_environment(finished, source, optuna_study.study_name),
        transfer_cells=_transfer_cells(transfer, attrs.get("cells") or [], variants.of, variants.match),
        num_classes=num_classes, num_classes_source=num_classes_source, trained_geometry=geometry,
        seed_decision=decision, paper=paper_numbers(spec, variants.match),
        transfer_paper=transfer_paper_numbers(spec, variants.match),
        spec_history=[h for h in attrs.get("spec_history") or [] if isinstance(h, dict)],
        data_config=facts, run_config=next((dict(t.user_attrs["config"]) for t in train
                                            if isinstance(t.user_attrs.get("config"), dict)), {}),
        stored_spec=stored, task=task, record_versions=finished.record_versions,
    )


class _Variants:
    """The table's variants: the spec's, in spec order, then those seen only in trials; how a trial's variant
    (or a paper row's name) is recognised when its name differs from ours (a factorial name in another order
    of its parts, or the same factor values)."""

    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        plan = spec.variant_list()
        self.names = [name for name, _ in plan]
        self.overrides = {name: ov for name, ov in plan}

    def of(self, user_attrs: dict) -> str | None:
        """A trial's variant: its ``variant`` attr, or the spec's variant of its factor values."""
        name = user_attrs.get("variant")
        if name in self.overrides or not self.spec.factors:
            return name
        return self.spec.variant_of_overrides(user_attrs.get("overrides") or {}) or name

    def match(self, name: str) -> str:
        """A variant name of the spec's paper sections -> ours."""
        if name in self.overrides or not self.spec.factors:
            return name
        return self.spec.find_variant(name) or name

    def add(self, name: str, overrides: dict | None) -> None:
        if name not in self.overrides:
            self.names.append(name)
            self.overrides[name] = dict(overrides or {})

    def order(self, column: pd.Series) -> pd.Series:
        """A sort key putting a frame's ``variant`` column in table order."""
        rank = {name: i for i, name in enumerate(self.names)}
        return column.map(rank) if column.name == "variant" else column


def _baseline(spec: Spec, variants: _Variants) -> str | None:
    """The spec's baseline (recognised as ``_Variants.match`` does), else the first variant; moved to the front."""
    baseline = spec.baseline
    if baseline is not None and baseline not in variants.overrides:
        baseline = variants.match(baseline)
    if baseline is None or baseline not in variants.overrides:
        baseline = variants.names[0] if variants.names else None
    if baseline in variants.names:
        variants.names.remove(baseline)
        variants.names.insert(0, baseline)
    return baseline


def _planned_cells(spec: Spec, variants: _Variants, train: list, cell_ids: list) -> tuple[list[int],
                                                                                        list[tuple[str, int]]]:
    """(seeds, planned (variant, seed) train cells): the spec's variants x its seeds (the listed ones, the rule's
    first ones, else the seeds seen in the trials); a stored spec without variants: the study's ``cells`` attr,
    each id mapped through the trials that hold it, else parsed."""
    if spec.rule is not None:  # the rule's first seeds here; its decision on the stored values in load_study
        seeds = list(range(spec.rule.start))
    else:
        seeds = [int(s) for s in spec.seeds] or sorted(
            {int(t.user_attrs["seed"]) for t in train if t.user_attrs.get("seed") is not None})
    if spec.variant_list():
        return seeds, [(name, s) for name in spec.variant_names() for s in seeds]
    id_to_cell = {t.user_attrs.get("cell"): (variants.of(t.user_attrs), t.user_attrs.get("seed")) for t in train}
    planned = []
    for text in cell_ids:
        cell = CellId.try_parse(text)
        if cell is not None and cell.is_transfer:
            continue
        if text in id_to_cell:
            variant, seed = id_to_cell[text]
        else:
            variant, seed = (cell.variant, cell.seed) if cell is not None else (str(text), None)
            variants.add(variant, {})
        planned.append((variant, int(seed) if seed is not None else None))
    return seeds, planned


@dataclass
class _Finished:
    """What the train trials hold: one row per finished cell (its counted trial's record), one status row per
    attempted cell, the learning curves and the records' provenance."""

    rows: list[dict] = field(default_factory=list)
    cell_rows: list[dict] = field(default_factory=list)
    histories: dict[tuple[str, int], list[dict]] = field(default_factory=dict)
    versions: dict[str, set] = field(default_factory=dict)
    devices: dict[str, int] = field(default_factory=dict)
    gits: dict[str, int] = field(default_factory=dict)
    tasks: list[str] = field(default_factory=list)  # the records' tasks (``Result.task``)
    record_versions: dict[tuple[str, int], int] = field(default_factory=dict)  # cell -> its ``Result.version``


def _finished_cells(train: list, variants: _Variants) -> _Finished:
    """Group the train trials by (variant, seed); the newest COMPLETE trial with a result counts. A record is
    read as a ``Result``; its columns are its fields as stored (a record without a field has no column)."""
    groups: dict[tuple[str, int], list] = {}
    for t in train:
        seed = t.user_attrs.get("seed")
        groups.setdefault((variants.of(t.user_attrs), int(seed) if seed is not None else None), []).append(t)
    out = _Finished()
    for (variant, seed), group in groups.items():
        status, detail = contract.cell_status(group)
        t = contract.counted_trial(group)
        if t is not None:
            record = t.user_attrs["result"]
            result = contract.result_of(t)
            fields = (result.extra if result is not None else record)  # provenance: versions, device, git
            out.rows.append({"variant": variant, "seed": seed, **(t.user_attrs.get("overrides") or {}),
                             **flatten(record), "run_dir": t.user_attrs.get("run_dir"), "trial": t.number,
                             "state": contract.state_name(t), "cell": t.user_attrs.get("cell"),
                             "datetime_complete": t.datetime_complete})
            out.histories[(variant, seed)] = list((result.history if result is not None else record.get("history"))
                                                  or [])
            for pkg, ver in (fields.get("versions") or {}).items():
                out.versions.setdefault(pkg, set()).add(str(ver))
            if fields.get("device") is not None:
                out.devices[str(fields["device"])] = out.devices.get(str(fields["device"]), 0) + 1
            if fields.get("git") is not None:
                out.gits[str(fields["git"])] = out.gits.get(str(fields["git"]), 0) + 1
            if result is not None:
                out.tasks.append(result.task)
                out.record_versions[(variant, seed)] = result.version
        error = None if status in (contract.FINISHED, contract.WAITING, contract.RUNNING) else (detail or None)
        out.cell_rows.append({"variant": variant, "seed": seed, "status": status, "attempts": len(group),
                              "failures": sum(contract.state_name(x) == "FAIL" for x in group), "error": error})
    return out


def _runs_frame(rows: list[dict], variants: _Variants) -> pd.DataFrame:
    """One row per finished cell: variant, seed, the override keys, the record's fields, then the trial's."""
    runs = pd.DataFrame(rows)
    if runs.empty:
        return pd.DataFrame(columns=["variant", "seed", "run_dir", "trial", "state"])
    keys = list(dict.fromkeys(k for name in variants.names for k in variants.overrides.get(name, {})
                              if k in runs.columns))
    meta = ["run_dir", "trial", "state", "cell", "datetime_complete"]
    rest = [c for c in runs.columns if c not in ("variant", "seed", *keys, *meta)]
    runs = runs[["variant", "seed", *keys, *rest, *meta]]
    return runs.sort_values(["variant", "seed"], key=variants.order).reset_index(drop=True)


def _cells_frame(cell_rows: list[dict], planned: list[tuple[str, int]], variants: _Variants) -> pd.DataFrame:
    """One row per planned or attempted train cell: its status, attempts, failures and error."""
    attempted = {(r["variant"], r["seed"]) for r in cell_rows}
    missing = [{"variant": variant, "seed": seed, "status": "missing", "attempts": 0, "failures": 0, "error": None}
               for variant, seed in planned if (variant, seed) not in attempted]
    cells = pd.DataFrame([*cell_rows, *missing],
                         columns=["variant", "seed", "status", "attempts", "failures", "error"])
    if not cells.empty:
        cells = cells.sort_values(["variant", "seed"], key=variants.order).reset_index(drop=True)
    return cells


def _environment(finished: _Finished, source, study: str) -> dict[str, Any]:
    return {"versions": {pkg: sorted(v) for pkg, v in sorted(finished.versions.items())},
            "device": finished.devices, "git": finished.gits, "storage": str(source), "study": study}


def _study_task(facts: dict, record_tasks: list[str], transfer_records: list[dict]) -> str:
    """The study's task: the trained cells' configs', else their records', else the one whose score the
    transfer records hold (``transfer_task``: else the first registered task)."""
    if facts.get("task"):
        return str(facts["task"])
    if record_tasks:
        return record_tasks[0]
    return transfer_task(transfer_records).name


def _data_facts(train: list) -> dict[str, Any]:
    """The data section of the first trained cell's resolved config, with its ``task``; {} when not stored."""
    for t in train:
        config = t.user_attrs.get("config") or {}
        if isinstance(config.get("data"), dict):
            return {**config["data"], "task": config.get("task", next(iter(TASKS)))}
    return {}


def _trained_facts(train: list, variant_of, spec: Spec) -> tuple[int | None, str, dict[str, tuple[int, int]]]:
    """(number of classes, where it was read, {variant: (img_size, window_size)}) from the trained cells'
    resolved configs (the ``config`` user attr the driver writes), else the spec's budget."""
    classes, geometry = set(), {}
    for t in train:
        model = ((t.user_attrs.get("config") or {}).get("model")) or {}
        if isinstance(model.get("num_classes"), int):
            classes.add(model["num_classes"])
        if isinstance(model.get("img_size"), int) and isinstance(model.get("window_size"), int):
            geometry.setdefault(variant_of(t.user_attrs), (model["img_size"], model["window_size"]))
    if classes:
        return min(classes), captions.CLASSES_FROM_CONFIGS.fill(), geometry
    if isinstance(spec.budget.get("model.num_classes"), int):
        return spec.budget["model.num_classes"], captions.CLASSES_FROM_BUDGET.fill(), geometry
    return None, "not recorded", geometry


# -- transfer cells ----------------------------------------------------------------------------------------


def transfer_frame_columns(task: Task) -> list[str]:
    first, second = task.primary, task.secondary
    return ["variant", "seed", "method", "img_size", "window_size", "finetune_epochs",
            first, second, "loss", f"{first}_ft", f"{second}_ft", "run_dir", "trial", "cell"]


def _transfer_frame(trials: list, variant_of, task: Task) -> pd.DataFrame:
    """One row per finished transfer cell (its counted trial's ``TransferRecord``)."""
    first, second = task.primary, task.secondary
    groups: dict[Any, list] = {}
    for t in trials:
        a = t.user_attrs
        key = a.get("cell") or (a.get("variant"), a.get("seed"), a.get("method"), a.get("img_size"),
                                a.get("window_size"), a.get("finetune_epochs"))
        groups.setdefault(key, []).append(t)
    rows = []
    for group in groups.values():
        t = contract.counted_trial(group)
        if t is None:
            continue
        a, record = t.user_attrs, TransferRecord.from_dict(t.user_attrs["result"])
        rows.append({
            "variant": variant_of(a), "seed": a.get("seed"), "method": a.get("method"),
            "img_size": a.get("img_size"), "window_size": a.get("window_size"),
            "finetune_epochs": a.get("finetune_epochs"),
            **{k: _num(record.value(k)) for k in (first, second, "loss", f"{first}_ft", f"{second}_ft")},
            "run_dir": a.get("run_dir"), "trial": t.number, "cell": a.get("cell"),
        })
    return pd.DataFrame(rows, columns=transfer_frame_columns(task))


TRANSFER_CELL_COLUMNS = ["variant", "seed", "method", "img_size", "window_size", "status", "error"]


def _transfer_cells(trials: list, planned_ids: list, variant_of, match) -> pd.DataFrame:
    """Every planned or attempted transfer cell: status (finished / failed / running / waiting / missing) and
    the newest failure's reason."""
    groups: dict[str, list] = {}
    for t in trials:
        if t.user_attrs.get("cell"):
            groups.setdefault(t.user_attrs["cell"], []).append(t)
    planned = [c for c in planned_ids if (cell := CellId.try_parse(c)) is not None and cell.is_transfer]
    rows = []
    for text in dict.fromkeys([*planned, *groups]):
        group = sorted(groups.get(text, []), key=lambda t: t.number, reverse=True)
        if group:
            a = group[0].user_attrs
            info = {"variant": variant_of(a), "seed": a.get("seed"), "method": a.get("method"),
                    "img_size": a.get("img_size"), "window_size": a.get("window_size")}
        else:
            cell = CellId.parse(text)
            info = {"variant": match(cell.variant), "seed": cell.seed, "method": cell.target.method,
                    "img_size": cell.target.img_size, "window_size": cell.target.window_size}
        status, detail = contract.cell_status(group) if group else (contract.MISSING, "")
        error = detail if status == contract.FAILED else None
        rows.append({**info, "status": status, "error": error})
    return pd.DataFrame(rows, columns=TRANSFER_CELL_COLUMNS)


def _num(value) -> float:
    return math.nan if value is None else float(value)
