"""The cells an ablation spec (``ablations/*.yaml``) plans, with every cell's config resolved.

The spec type itself (its sections, checks, variants, a cell's params and id) is ``swin_lit.domain.spec.Spec``,
which every reader of a study shares; this module reads a spec file into it (``read_spec``) and resolves
its cells against the base config (``load_plan``).

A spec names a base run config, a budget (overrides applied to every cell), the variants (a full factorial
over ``factors`` or explicitly named ``variants``) and the seeds. One cell = one variant x one seed = one
training run. Everything is validated before anything runs: every override of every cell is resolved
with the real config loader, so a wrong key or value raises ``ConfigError`` naming where it came from,
e.g. ``factors.model.shift: got 'diagonal'; allowed values are 'cyclic', 'none'``.

Seeds are a list, or adaptive (``seeds: {start, max, step, precision}``, ``swin_lit.domain.sections.SeedRule``: Stein's
two-stage rule, N fixed from the first ``start`` seeds' SDs; ``step`` is unused): the plan then holds the cells
of every seed up to ``max`` (all validated up front), and which of them run is decided from the stored results
while the study runs (``swin_lit.study.seed_decision``; ``Plan.cells_of``).

``mode: search`` replaces the seeds-only grid by a TPE search over ``search.params`` ranges: each cell is
one search trial of a variant (its id a ``swin_lit.domain.cell.CellId`` with a search index); its sampled
values are drawn by the worker that claims it.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from swin_lit import study as contract
from swin_lit.config import RunConfig, apply_overrides, compose, config_from_dict, read_yaml
from swin_lit.domain.cell import CellId, Target
from swin_lit.domain.spec import Spec, TransferSpec
from swin_lit.domain.task import get_task
from swin_lit.typed import ConfigError, from_dict

__all__ = ["Cell", "Plan", "load_plan"]


@dataclass(frozen=True)
class Cell:
    """One unit of work: a variant x a seed (x a search trial index), or the transfer of such a trained
    cell to one target with one method (``kind == "transfer"``; ``config`` is then the trained cell's).
    ``params`` are its Optuna params (``Spec.cell_params``), from which its id derives (``Spec.cell_id``)."""

    id: str
    variant: str
    seed: int
    overrides: dict  # the variant's overrides (factor values / named overrides), as in the trial user attrs
    config: RunConfig  # base + budget + overrides + seed, resolved
    trial_index: int | None = None  # search mode only
    kind: Literal["train", "transfer"] = "train"
    transfer: dict | None = None  # source_cell, method, img_size, window_size, finetune_epochs, finetune_lr
    params: dict = field(default_factory=dict)

    @property
    def after(self) -> str | None:
        """The cell that must finish before this one can run (a transfer cell's trained cell)."""
        return self.transfer["source_cell"] if self.transfer else None

    def user_attrs(self) -> dict:
        attrs = {"kind": self.kind, "cell": self.id, "variant": self.variant, "seed": self.seed,
                 "overrides": self.overrides, "config": self.config.to_dict(), **(self.transfer or {})}
        if self.trial_index is not None:
            attrs["search_index"] = self.trial_index
        else:  # known now (search cells: once their values are sampled); transfer cells: the trained run
            attrs["run_dir"] = contract.run_dir_attr(self.config.run_id())
        return attrs


@dataclass
class Plan:
    """Every cell a spec can plan (adaptive seeds: those of seeds 0 .. max-1), resolved and validated."""

    spec: Spec
    path: Path
    base_path: Path
    cells: list[Cell]

    def cells_of(self, seeds: Iterable[int] | None) -> list[Cell]:
        """The cells of ``seeds`` (train cells and the transfer cells that follow them); None: every cell."""
        if seeds is None:
            return list(self.cells)
        wanted = {int(s) for s in seeds}
        return [c for c in self.cells if c.seed in wanted]

    @property
    def cell_ids(self) -> list[str]:
        """The ids of the cells planned before any result is stored (the study's ``cells`` attr)."""
        return [c.id for c in self.cells_of(self.spec.first_seeds)]


# -- loading -------------------------------------------------------------------------------------------


def resolve_base(base: str, spec_path: Path) -> Path:
    """The base config file: as given (relative to the working folder), else next to the spec or one up."""
    candidates = [Path(base), spec_path.parent / base, spec_path.parent.parent / base]
    for c in candidates:
        if c.is_file():
            return c
    looked = ", ".join(str(c.parent) for c in candidates)
    raise ConfigError(f"base: config file {base!r} not found (looked in {looked})")


def read_spec(path: str | Path) -> Spec:
    return from_dict(Spec, read_yaml(path, what="spec file"))


def _resolve(base: dict, overrides: dict, where: str) -> RunConfig:
    try:
        return config_from_dict(apply_overrides(base, overrides))
    except ConfigError as err:
        msg = str(err)
        raise ConfigError(f"{where}{msg}" if where.endswith(".") else f"{where}: {msg}") from None


def _check_overrides(base: dict, overrides: dict, where: str) -> None:
    """Resolve ``overrides``; on an error, name the spec key that caused it (``factors.model.shift: ...``)."""
    for key in overrides:
        if not isinstance(key, str) or not key:
            raise ConfigError(f"{where}{key!r}: override keys must be dotted config keys such as model.shift")
    try:
        config_from_dict(apply_overrides(base, overrides))
        return
    except ConfigError as err:
        whole = str(err)
    for key, value in overrides.items():  # which key is wrong on its own?
        try:
            config_from_dict(apply_overrides(base, {key: value}))
        except ConfigError as err:
            msg = str(err)
            if msg.startswith(key):  # "model.shift: got ..." -> "factors.model.shift: got ..."
                raise ConfigError(f"{where}{msg}") from None
            if msg.split(":")[0].split(".")[0] in ("model", "data", "optim", "trainer", "name", "seed", "init_from"):
                raise ConfigError(f"{where}{key}: {msg}") from None
    raise ConfigError(f"{where.rstrip('.')}: {whole}")


def _check_task_metrics(spec: Spec, task_name: str) -> None:
    """Split metrics the base config's task does not report are a ConfigError naming the spec key."""
    task = get_task(task_name)
    for where, metric in [("objective", spec.objective), *((f"metrics[{i}]", m) for i, m in enumerate(spec.metrics))]:
        parts = metric.split(".")
        if len(parts) == 2 and parts[1] not in task.metrics:
            raise ConfigError(f"{where}: {metric!r} is not reported by task {task.name!r} (the base config's); its "
                              f"split metrics are {', '.join(task.metrics)}, e.g. objective: {task.objective}")


def load_plan(path: str | Path) -> Plan:
    """Read and validate a spec and resolve every cell's config (ConfigError before anything runs)."""
    path = Path(path)
    spec = read_spec(path)
    base_path = resolve_base(spec.base, path)
    try:
        base = compose(base_path)
    except ConfigError as err:
        raise ConfigError(f"base: {err}") from None
    _resolve(base, {}, "base")
    _check_overrides(base, spec.budget, "budget.")
    budgeted = apply_overrides(base, spec.budget)
    task = _resolve(budgeted, {}, "budget").task
    _check_task_metrics(spec, task)
    if spec.factors is not None:
        for key, values in spec.factors.items():
            for v in values:
                _check_overrides(budgeted, {key: v}, "factors.")
    else:
        for vname, ov in spec.variants.items():
            _check_overrides(budgeted, ov or {}, f"variants.{vname}.")
    if spec.search is not None:
        for key, rng in spec.search.params.items():
            values = rng["choices"] if "choices" in rng else [rng["low"], rng["high"]]
            for v in values:
                _check_overrides(budgeted, {key: v}, "search.params.")
    cells: list[Cell] = []
    seeds = range(spec.rule.max) if spec.rule is not None else spec.seeds  # adaptive: every seed the rule may reach
    for vname, ov in spec.variant_list():
        if spec.mode == "grid":
            for seed in seeds:
                cfg = _resolve(budgeted, {**ov, "seed": seed}, f"variant {vname!r} (seed {seed})")
                cells.append(Cell(str(CellId(vname, seed)), vname, seed, copy.deepcopy(ov), cfg,
                                  params=spec.cell_params(ov, vname, seed)))
    if spec.mode == "search":
        variants = spec.variant_list()
        n = spec.search.trials * (len(variants) if spec.search.per_variant else 1)
        for k in range(n):
            vname, ov = variants[k // spec.search.trials] if spec.search.per_variant else variants[k % len(variants)]
            index = k % spec.search.trials if spec.search.per_variant else k
            seed = spec.seeds[index % len(spec.seeds)]
            cfg = _resolve(budgeted, {**ov, "seed": seed}, f"variant {vname!r} (seed {seed})")
            cells.append(Cell(str(CellId(vname, seed, index)), vname, seed, copy.deepcopy(ov), cfg, index,
                              params=spec.cell_params(ov, vname, seed, index)))
    if spec.transfer is not None:
        cells += transfer_cells(spec, cells)
    return Plan(spec, path, base_path, cells)


def transfer_cells(spec: Spec, trained: list[Cell]) -> list[Cell]:
    """One transfer cell per trained cell x target x method, each target checked against the model."""
    from swin_lit.train.transfer import check_target, parse_target

    tspec: TransferSpec = spec.transfer
    out = []
    for cell in trained:
        methods = tspec.methods_for(cell.config.model.relative)
        if not methods:
            raise ConfigError(f"transfer.methods: none of {list(tspec.methods)} fits variant {cell.variant!r} "
                              f"(relative {cell.config.model.relative!r})")
        for target in tspec.targets:
            img, window = parse_target(target)
            for method in methods:
                try:
                    check_target(cell.config.model, img, window, method, cell.config.task)
                except ConfigError as err:
                    raise ConfigError(f"transfer.targets: {err} (variant {cell.variant!r})") from None
                info = {"source_cell": cell.id, "method": method, "img_size": img, "window_size": window,
                        "finetune_epochs": tspec.finetune_epochs, "finetune_lr": tspec.finetune_lr}
                moved = replace(CellId.parse(cell.id), target=Target(img, window, method))
                out.append(Cell(str(moved), cell.variant, cell.seed, cell.overrides, cell.config, kind="transfer",
                                transfer=info, params=spec.cell_params(cell.overrides, cell.variant, cell.seed,
                                                                       transfer=info)))
    return out
