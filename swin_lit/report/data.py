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

    @property
    def metrics(self) -> list[str]:
        """The spec's metrics, else the usual test metrics found in the runs."""
        wanted = list(self.spec.get("metrics") or [])
        if not wanted:
            wanted = [c for c in ("test.top1", "test.top5", "test.loss", "test.ece") if c in self.runs.columns]
        return wanted

    @property
    def factors(self) -> dict[str, list]:
        return dict(self.spec.get("factors") or {})


# -- opening the storage -----------------------------------------------------------------------------------


def resolve_storage(source: str | Path):
    """(storage, study folder or None) for a study folder, storage URL or storage file; StorageError otherwise."""
    opened = contract.open_storage(source)
    return opened.storage, opened.folder


def open_study(source: str | Path, study: str | None = None):
    """(optuna.Study, study folder or None). ``study`` picks one when the storage holds several."""
    import optuna

    opened = contract.open_storage(source)
    name = contract.pick_study(opened, study)
    return optuna.load_study(study_name=name, storage=opened.storage), opened.folder


# -- the spec ----------------------------------------------------------------------------------------------


def _key(value: Any) -> str:
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
    by_factors = {tuple(_key(ov.get(k)) for k in factor_keys): name for name, ov in plan} if factor_keys else {}
    names = [name for name, _ in plan]
    overrides_of = {name: ov for name, ov in plan}

    def variant_of(user_attrs: dict) -> str | None:
        name = user_attrs.get("variant")
        if name in overrides_of or not factor_keys:
            return name
        ov = user_attrs.get("overrides") or {}
        return by_factors.get(tuple(_key(ov.get(k)) for k in factor_keys), name)

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
        baseline = by_factors.get(tuple(_key(v) for v in _parse_factorial(baseline, factor_keys)), baseline)
    if baseline is None or baseline not in overrides_of:
        baseline = names[0] if names else None
    if baseline in names:
        names.remove(baseline)
        names.insert(0, baseline)

    seen_seeds = sorted({int(t.user_attrs["seed"]) for t in train if t.user_attrs.get("seed") is not None})
    seeds = [int(s) for s in spec.get("seeds") or []] or seen_seeds

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
    return StudyData(
        name=optuna_study.study_name, spec=spec, folder=folder, variants=names, variant_overrides=overrides_of,
        baseline=baseline, seeds=seeds, planned=planned, runs=runs, cells=cells,
        transfer=_transfer_frame(transfer, variant_of), histories=histories, environment=environment,
    )


def _parse_factorial(name: str, keys: list[str]) -> list:
    """Factor values out of a name like ``"model.shift=none,model.norm=pre"`` (strings, YAML-typed)."""
    import yaml

    parts = dict(p.split("=", 1) for p in name.split(",") if "=" in p)
    return [yaml.safe_load(parts[k]) if k in parts else None for k in keys]


TRANSFER_COLUMNS = ["variant", "seed", "method", "img_size", "window_size", "finetune_epochs",
                    "top1", "top5", "loss", "top1_ft", "top5_ft", "run_dir", "trial", "cell"]


def _transfer_frame(trials: list, variant_of) -> pd.DataFrame:
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
            **{k: _num(r.get(k)) for k in ("top1", "top5", "loss", "top1_ft", "top5_ft")},
            "run_dir": a.get("run_dir"), "trial": t.number, "cell": a.get("cell"),
        })
    return pd.DataFrame(rows, columns=TRANSFER_COLUMNS)


def _num(value) -> float:
    if value is None:
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan
