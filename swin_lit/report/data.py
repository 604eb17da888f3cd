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

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from swin_lit import study as contract
from swin_lit.seeds import SeedDecision, SeedRule
from swin_lit.study import JOURNAL_FILE, SQLITE_FILE, factorial_name, planned_variants  # noqa: F401 - re-exported

# Result fields that are not per-run metrics: kept out of the flattened columns.
NON_METRIC_FIELDS = ("history",)


@dataclass
class StudyData:
    """Everything a report needs, read once from the storage."""

    name: str
    spec: dict
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

    @property
    def metrics(self) -> list[str]:
        """The spec's metrics, else the usual test metrics found in the runs."""
        wanted = list(self.spec.get("metrics") or [])
        if not wanted:
            wanted = [c for c in ("test.top1", "test.top5", "test.miou", "test.aacc", "test.loss", "test.ece")
                      if c in self.runs.columns]
        return wanted

    @property
    def task(self) -> str:
        """The trained cells' task (their configs, else their records' ``task`` field), else classification."""
        if self.data_config.get("task"):
            return str(self.data_config["task"])
        if "task" in self.runs.columns and (self.runs["task"] == "segmentation").any():
            return "segmentation"
        return "classification"

    @property
    def transfer_metric(self) -> str:
        """The transfer records' main score: ``top1``, or a segmentation study's ``miou`` (as ``transfer``'s
        columns say, which ``load_study`` chose from the trained cells' task or the records)."""
        return "miou" if "miou" in self.transfer.columns else "top1"

    @property
    def transfer_label(self) -> str:
        """How the tables name it: ``top-1`` or ``mIoU``."""
        return {"top1": "top-1", "miou": "mIoU"}[self.transfer_metric]

    @property
    def transfer_chance(self) -> float | None:
        """The transfer score's chance level (%): 100 / classes for top-1; None for mIoU, which has no such
        single number, and where the class count is not known."""
        return 100 / self.num_classes if self.num_classes and self.transfer_metric == "top1" else None

    @property
    def factors(self) -> dict[str, list]:
        return dict(self.spec.get("factors") or {})

    @property
    def alpha(self) -> float:
        return float(self.spec.get("alpha") or 0.05)

    @property
    def objective(self) -> str:
        return str(self.spec.get("objective") or "test.top1")

    @property
    def latex_columns(self) -> tuple[str, ...]:
        from swin_lit.report.columns import DEFAULT_LATEX_COLUMNS

        return tuple(((self.spec.get("report") or {}).get("columns")) or DEFAULT_LATEX_COLUMNS)

    @property
    def seed_rule(self) -> SeedRule | None:
        return seed_rule(self.spec)

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


def seed_rule(spec: dict) -> SeedRule | None:
    """The adaptive-seed rule of a stored spec (``seeds: {start, max, step, precision}``), else None."""
    return contract.seed_rule(spec)


def paper_numbers(spec: dict, match) -> PaperNumbers | None:
    """Normalise the spec's ``paper`` section: the current ``{table, model, dataset, rows}`` form, or the older
    ``{variant: {metric: number}}`` form (no provenance). ``match`` maps a spec variant name to ours."""
    paper = spec.get("paper")
    if not isinstance(paper, dict) or not paper:
        return None
    if isinstance(paper.get("rows"), dict):
        source = ", ".join(str(paper[k]) for k in ("table", "model", "dataset") if paper.get(k))
        rows = paper["rows"]
    else:
        source, rows = None, paper
    out = {}
    for name, numbers in rows.items():
        if isinstance(numbers, dict):
            out[match(name)] = {k: float(v) for k, v in numbers.items() if isinstance(v, int | float)}
    return PaperNumbers(source or None, out)


def _paper_target(key: str) -> tuple[int, int] | None:
    """(img, window) of "384:12" (current form) or "W12,I384" (older form)."""
    import re

    key = str(key).strip()
    if m := re.fullmatch(r"(\d+):(\d+)", key):
        return int(m[1]), int(m[2])
    if m := re.fullmatch(r"W(\d+),\s*I(\d+)", key):
        return int(m[2]), int(m[1])
    return None


def _paper_value(value) -> tuple[float | None, float | None] | None:
    """(without FT or None, with FT or None) of 81.7, [79.4, 82.7], [null, 47.0] (a fine-tuned number only) or
    the older strings "81.7" and "79.4/82.7"."""
    if isinstance(value, list | tuple) and len(value) == 2:
        return None if value[0] is None else float(value[0]), float(value[1])
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value), None
    parts = str(value).split("/")
    try:
        nums = [float(p) for p in parts]
    except ValueError:
        return None
    return (nums[0], None) if len(nums) == 1 else (nums[0], nums[1]) if len(nums) == 2 else None


def transfer_paper_numbers(spec: dict, match) -> TransferPaperNumbers | None:
    """Normalise ``transfer.paper``: the current ``{table, model, dataset, trained, rows}`` form, or the older
    ``{variant: {"W12,I384": "79.4/82.7", "W8,I256": "81.7"}}`` form, whose training size is the one column
    without a "with FT" number."""
    paper = (spec.get("transfer") or {}).get("paper")
    if not isinstance(paper, dict) or not paper:
        return None
    if isinstance(paper.get("rows"), dict):
        source = ", ".join(str(paper[k]) for k in ("table", "model", "dataset") if paper.get(k)) or None
        trained = _paper_target(paper.get("trained", ""))
        rows = paper["rows"]
    else:
        source, trained, rows = None, None, paper
    out: dict[str, dict] = {}
    for name, cols in rows.items():
        parsed = {}
        for key, value in (cols or {}).items():
            target, numbers = _paper_target(key), _paper_value(value)
            if target is not None and numbers is not None:
                parsed[target] = numbers
        out[match(name)] = parsed
    if trained is None:
        singles = {t for cols in out.values() for t, (_, ft) in cols.items() if ft is None}
        trained = next(iter(singles)) if len(singles) == 1 else None
    return TransferPaperNumbers(source, trained, out)


# -- opening the storage -----------------------------------------------------------------------------------


def open_study(source: str | Path, study: str | None = None):
    """(optuna.Study, study folder or None). ``study`` picks one when the storage holds several."""
    import optuna

    opened = contract.open_storage(source)
    name = contract.pick_study(opened, study)
    return optuna.load_study(study_name=name, storage=opened.storage), opened.folder


# -- the spec ----------------------------------------------------------------------------------------------


def value_key(value: Any) -> str:
    """A comparable key for an override value (JSON round trips keep types, so compare their JSON)."""
    return json.dumps(value, sort_keys=True, default=str)


_seed_of_cell = contract.seed_of_cell


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
    spec = dict(attrs.get("spec") or {})
    trials = optuna_study.get_trials(deepcopy=False)

    # Variants of the spec, and how to recognise a trial's variant when its name differs from ours.
    plan = planned_variants(spec)
    factor_keys = list((spec.get("factors") or {}).keys())
    by_factors = {tuple(value_key(ov.get(k)) for k in factor_keys): name for name, ov in plan} if factor_keys else {}
    names = [name for name, _ in plan]
    overrides_of = {name: ov for name, ov in plan}

    def variant_of(user_attrs: dict) -> str | None:
        name = user_attrs.get("variant")
        if name in overrides_of or not factor_keys:
            return name
        ov = user_attrs.get("overrides") or {}
        return by_factors.get(tuple(value_key(ov.get(k)) for k in factor_keys), name)

    train = [t for t in trials if contract.kind_of(t) == contract.TRAIN and variant_of(t.user_attrs)
             and not contract.is_duplicate(t)]
    transfer = [t for t in trials if contract.kind_of(t) == contract.TRANSFER and not contract.is_duplicate(t)]

    for t in train:  # variants seen only in trials go after the planned ones
        v = variant_of(t.user_attrs)
        if v not in overrides_of:
            names.append(v)
            overrides_of[v] = dict(t.user_attrs.get("overrides") or {})

    baseline = spec.get("baseline")
    if baseline is not None and baseline not in overrides_of and factor_keys:
        baseline = by_factors.get(tuple(value_key(v) for v in _parse_factorial(baseline, factor_keys)), baseline)
    if baseline is None or baseline not in overrides_of:
        baseline = names[0] if names else None
    if baseline in names:
        names.remove(baseline)
        names.insert(0, baseline)

    seen_seeds = sorted({int(t.user_attrs["seed"]) for t in train if t.user_attrs.get("seed") is not None})
    rule = seed_rule(spec)
    listed = spec.get("seeds") if isinstance(spec.get("seeds"), list) else []
    seeds = [int(s) for s in listed] or seen_seeds
    if rule is not None:  # the rule's first seeds here; its decision on the stored values further down
        seeds = list(range(rule.start))

    # The planned cells: from the spec, else from the study's ``cells`` attr (ids mapped through the trials).
    if plan:
        planned = [(name, s) for name, _ in plan for s in seeds]
    else:
        id_to_cell = {t.user_attrs.get("cell"): (variant_of(t.user_attrs), t.user_attrs.get("seed")) for t in train}
        planned = []
        for cell in attrs.get("cells") or []:
            if "to=" in str(cell):  # a transfer cell
                continue
            if cell in id_to_cell:
                planned.append(id_to_cell[cell])
            else:
                seed = _seed_of_cell(str(cell))
                variant = "|".join(p for p in str(cell).split("|") if not p.startswith("seed="))
                planned.append((variant, seed))
                if variant not in overrides_of:
                    names.append(variant)
                    overrides_of[variant] = {}
    planned = [(v, int(s)) if s is not None else (v, s) for v, s in planned]
    if baseline is None and names:
        baseline = names[0]

    def match(name: str) -> str:
        """A variant name of the spec's paper sections -> ours (factorial names in any order of their parts)."""
        if name in overrides_of or not factor_keys:
            return name
        return by_factors.get(tuple(value_key(v) for v in _parse_factorial(name, factor_keys)), name)

    # One row per finished cell: the newest COMPLETE trial with a result wins.
    groups: dict[tuple[str, int], list] = {}
    for t in train:
        seed = t.user_attrs.get("seed")
        groups.setdefault((variant_of(t.user_attrs), int(seed) if seed is not None else None), []).append(t)
    rows, cell_rows, histories = [], [], {}
    versions, devices, gits = {}, {}, {}
    for (variant, seed), group in groups.items():
        status, detail = contract.cell_status(group)
        t = contract.counted_trial(group)
        if t is not None:
            result = t.user_attrs["result"]
            row = {"variant": variant, "seed": seed}
            row.update({k: v for k, v in (t.user_attrs.get("overrides") or {}).items()})
            row.update(flatten(result))
            row.update(
                run_dir=t.user_attrs.get("run_dir"), trial=t.number, state=contract.state_name(t),
                cell=t.user_attrs.get("cell"), datetime_complete=t.datetime_complete,
            )
            rows.append(row)
            histories[(variant, seed)] = list(result.get("history") or [])
            for pkg, ver in (result.get("versions") or {}).items():
                versions.setdefault(pkg, set()).add(str(ver))
            if result.get("device") is not None:
                devices[str(result["device"])] = devices.get(str(result["device"]), 0) + 1
            if result.get("git") is not None:
                gits[str(result["git"])] = gits.get(str(result["git"]), 0) + 1
        error = None if status in (contract.FINISHED, contract.WAITING, contract.RUNNING) else (detail or None)
        failures = sum(contract.state_name(x) == "FAIL" for x in group)
        cell_rows.append(
            {"variant": variant, "seed": seed, "status": status, "attempts": len(group), "failures": failures,
             "error": error}
        )
    decision = None
    if rule is not None and plan:  # the driver's decision, from the same stored trials (swin_lit.study)
        decision = contract.seed_decision(spec, train, baseline, variant_of)
        seeds = list(decision.seeds)
        planned = [(name, s) for name, _ in plan for s in seeds]
    attempted = {(r["variant"], r["seed"]) for r in cell_rows}
    for variant, seed in planned:
        if (variant, seed) not in attempted:
            cell_rows.append(
                {"variant": variant, "seed": seed, "status": "missing", "attempts": 0, "failures": 0, "error": None}
            )

    order = {name: i for i, name in enumerate(names)}
    runs = pd.DataFrame(rows)
    if runs.empty:
        runs = pd.DataFrame(columns=["variant", "seed", "run_dir", "trial", "state"])
    else:
        keys = list(dict.fromkeys(k for name in names for k in overrides_of.get(name, {}) if k in runs.columns))
        meta = ["run_dir", "trial", "state", "cell", "datetime_complete"]
        rest = [c for c in runs.columns if c not in ("variant", "seed", *keys, *meta)]
        runs = runs[["variant", "seed", *keys, *rest, *meta]]
        runs = runs.sort_values(["variant", "seed"], key=lambda c: c.map(order) if c.name == "variant" else c)
        runs = runs.reset_index(drop=True)
    cells = pd.DataFrame(cell_rows, columns=["variant", "seed", "status", "attempts", "failures", "error"])
    if not cells.empty:
        cells = cells.sort_values(["variant", "seed"], key=lambda c: c.map(order) if c.name == "variant" else c)
        cells = cells.reset_index(drop=True)

    environment = {
        "versions": {pkg: sorted(v) for pkg, v in sorted(versions.items())},
        "device": devices,
        "git": gits,
        "storage": str(source),
        "study": optuna_study.study_name,
    }
    num_classes, source, geometry = _trained_facts(train, variant_of, spec)
    facts = _data_facts(train)
    records = [t.user_attrs.get("result") or {} for t in transfer]
    task = facts.get("task") or ("segmentation" if any("miou" in r for r in records) else "classification")
    return StudyData(
        name=optuna_study.study_name, spec=spec, folder=folder, variants=names, variant_overrides=overrides_of,
        baseline=baseline, seeds=seeds, planned=planned, runs=runs, cells=cells,
        transfer=_transfer_frame(transfer, variant_of, task), histories=histories, environment=environment,
        transfer_cells=_transfer_cells(transfer, attrs.get("cells") or [], variant_of, match),
        num_classes=num_classes, num_classes_source=source, trained_geometry=geometry, seed_decision=decision,
        paper=paper_numbers(spec, match), transfer_paper=transfer_paper_numbers(spec, match),
        spec_history=[h for h in attrs.get("spec_history") or [] if isinstance(h, dict)],
        data_config=facts, run_config=next((dict(t.user_attrs["config"]) for t in train
                                            if isinstance(t.user_attrs.get("config"), dict)), {}),
    )


def _data_facts(train: list) -> dict[str, Any]:
    """The data section of the first trained cell's resolved config, with its ``task``; {} when not stored."""
    for t in train:
        config = t.user_attrs.get("config") or {}
        if isinstance(config.get("data"), dict):
            return {**config["data"], "task": config.get("task", "classification")}
    return {}


def _trained_facts(train: list, variant_of, spec: dict) -> tuple[int | None, str, dict[str, tuple[int, int]]]:
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
        return min(classes), "the trained cells' configs (model.num_classes)", geometry
    budget = spec.get("budget") or {}
    if isinstance(budget.get("model.num_classes"), int):
        return budget["model.num_classes"], "the spec's budget (model.num_classes)", geometry
    return None, "not recorded", geometry


def _parse_factorial(name: str, keys: list[str]) -> list:
    """Factor values out of a name like ``"model.shift=none,model.norm=pre"`` (strings, YAML-typed)."""
    import yaml

    parts = dict(p.split("=", 1) for p in name.split(",") if "=" in p)
    return [yaml.safe_load(parts[k]) if k in parts else None for k in keys]


def transfer_metrics(task: str) -> tuple[str, str]:
    """The two scores of a transfer record of ``task``: (top1, top5), or for segmentation (miou, aacc)."""
    return ("miou", "aacc") if task == "segmentation" else ("top1", "top5")


def transfer_frame_columns(task: str) -> list[str]:
    first, second = transfer_metrics(task)
    return ["variant", "seed", "method", "img_size", "window_size", "finetune_epochs",
            first, second, "loss", f"{first}_ft", f"{second}_ft", "run_dir", "trial", "cell"]


def _transfer_frame(trials: list, variant_of, task: str) -> pd.DataFrame:
    first, second = transfer_metrics(task)
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
        a, r = t.user_attrs, t.user_attrs["result"]
        rows.append({
            "variant": variant_of(a), "seed": a.get("seed"), "method": a.get("method"),
            "img_size": a.get("img_size"), "window_size": a.get("window_size"),
            "finetune_epochs": a.get("finetune_epochs"),
            **{k: _num(r.get(k)) for k in (first, second, "loss", f"{first}_ft", f"{second}_ft")},
            "run_dir": a.get("run_dir"), "trial": t.number, "cell": a.get("cell"),
        })
    return pd.DataFrame(rows, columns=transfer_frame_columns(task))


TRANSFER_CELL_COLUMNS = ["variant", "seed", "method", "img_size", "window_size", "status", "error"]


def _parse_transfer_cell(cell: str) -> dict | None:
    """{variant, seed, img_size, window_size, method} of "<variant>|seed=<s>|to=<img>:<window>|method=<m>"."""
    parts = str(cell).split("|")
    info: dict[str, Any] = {}
    rest = []
    for part in parts:
        key, _, value = part.partition("=")
        if key == "seed" and value.lstrip("-").isdigit():
            info["seed"] = int(value)
        elif key == "to" and _paper_target(value) is not None:
            info["img_size"], info["window_size"] = _paper_target(value)
        elif key == "method" and value:
            info["method"] = value
        else:
            rest.append(part)
    if len(info) != 4:
        return None
    info["variant"] = "|".join(rest)
    return info


def _transfer_cells(trials: list, planned_ids: list, variant_of, match) -> pd.DataFrame:
    """Every planned or attempted transfer cell: status (finished / failed / running / waiting / missing) and
    the newest failure's reason."""
    groups: dict[str, list] = {}
    for t in trials:
        if t.user_attrs.get("cell"):
            groups.setdefault(t.user_attrs["cell"], []).append(t)
    rows = []
    for cell in dict.fromkeys([*(c for c in planned_ids if "|to=" in str(c)), *groups]):
        group = sorted(groups.get(cell, []), key=lambda t: t.number, reverse=True)
        if group:
            a = group[0].user_attrs
            info = {"variant": variant_of(a), "seed": a.get("seed"), "method": a.get("method"),
                    "img_size": a.get("img_size"), "window_size": a.get("window_size")}
        else:
            info = _parse_transfer_cell(cell)
            if info is None:
                continue
            info["variant"] = match(info["variant"])
        status, detail = contract.cell_status(group) if group else (contract.MISSING, "")
        error = detail if status == contract.FAILED else None
        rows.append({**info, "status": status, "error": error})
    return pd.DataFrame(rows, columns=TRANSFER_CELL_COLUMNS)


def _num(value) -> float:
    if value is None:
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan
