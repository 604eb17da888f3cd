"""The ablation spec (``ablations/*.yaml``) and the cells it plans.

A spec names a base run config, a budget (overrides applied to every cell), the variants (a full factorial
over ``factors`` or explicitly named ``variants``) and the seeds. One cell = one variant x one seed = one
training run. Everything is validated before anything runs: every override of every cell is resolved
with the real config loader, so a wrong key or value raises ``ConfigError`` naming where it came from,
e.g. ``factors.model.shift: got 'diagonal'; allowed values are 'cyclic', 'none'``.

Seeds are a list, or adaptive (``seeds: {start, max, step, precision}``, ``swin_lit.seeds.SeedRule``: Stein's
two-stage rule, N fixed from the first ``start`` seeds' SDs; ``step`` is unused): the plan then holds the cells
of every seed up to ``max`` (all validated up front), and which of them run is decided from the stored results
while the study runs (``swin_lit.study.seed_decision``; ``Plan.cells_of``).

``mode: search`` replaces the seeds-only grid by a TPE search over ``search.params`` ranges: each cell is
one search trial of a variant (``"<variant>|trial=<k>|seed=<s>"``); its sampled values are drawn by the
worker that claims it.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from swin_lit import study as contract
from swin_lit.config import RunConfig, apply_overrides, compose, config_from_dict, read_yaml
from swin_lit.report.columns import COMPARISON_COLUMNS, DEFAULT_LATEX_COLUMNS
from swin_lit.seeds import SeedRule
from swin_lit.study import SCALAR_RESULTS, SPLIT_METRICS, TRANSFER_METHODS, factorial_name, metric_value
from swin_lit.typed import ConfigError, fail, from_dict, to_dict

__all__ = ["Cell", "Plan", "Spec", "load_plan", "factorial_name", "metric_value"]


@dataclass(frozen=True)
class SearchSpec:
    """``mode: search``: TPE over ``params`` ({key: {low, high, log?, step?}} or {key: {choices: [...]}}),
    ``trials`` per variant (or in all when ``per_variant`` is false), pruning on ``monitor``."""

    params: dict[str, Any] = field(default_factory=dict)
    trials: int = 8
    per_variant: bool = True
    prune: bool = True
    monitor: str = "val/top1"
    seed: int = 0  # sampler seed

    def __post_init__(self) -> None:
        if self.trials < 1:
            fail("trials", f"must be >= 1, got {self.trials}")
        if not self.params:
            fail("params", "must name at least one config key with a range, e.g. {optim.lr: {low: 1e-4, high: 1e-2, "
                           "log: true}}")
        for key, rng in self.params.items():
            check_range(f"params.{key}", rng)


def check_range(key: str, rng: Any) -> None:
    if not isinstance(rng, dict):
        fail(key, f"got {rng!r}; expected {{low, high, log?, step?}} or {{choices: [...]}}")
    if "choices" in rng:
        if set(rng) != {"choices"} or not isinstance(rng["choices"], list) or not rng["choices"]:
            fail(key, "choices must be the only key and a non-empty list")
        return
    unknown = set(rng) - {"low", "high", "log", "step"}
    if unknown:
        fail(f"{key}.{sorted(unknown)[0]}", "unknown key; allowed keys are low, high, log, step, choices")
    for bound in ("low", "high"):
        if bound not in rng or isinstance(rng[bound], bool) or not isinstance(rng[bound], int | float):
            fail(f"{key}.{bound}", f"must be a number, got {rng.get(bound)!r}")
    if not rng["low"] < rng["high"]:
        fail(key, f"low must be < high, got {rng['low']} and {rng['high']}")
    if not isinstance(rng.get("log", False), bool):
        fail(f"{key}.log", "must be true or false")
    if rng.get("log") and rng["low"] <= 0:
        fail(f"{key}.low", "must be > 0 with log: true")


distribution = contract.search_distribution  # the Optuna distribution of a search range


def _check_source(spec) -> None:
    for name in ("table", "model", "dataset"):
        if not str(getattr(spec, name)).strip():
            fail(name, "is required: which paper table, model and dataset the numbers come from "
                       "(e.g. table: Swin V1 Table 4, model: Swin-T, dataset: ImageNet-1K)")


def _number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass(frozen=True)
class PaperSpec:
    """``paper:``: the paper's numbers for some variants and where they come from, e.g.
    ``{table: Swin V1 Table 4, model: Swin-T, dataset: ImageNet-1K, rows: {<variant>: {top1: 81.3}}}``.
    A row's keys are metrics (``test.top1``) or their last part (``top1``). The report shows the paper's
    difference to its baseline row beside ours, never its absolute numbers on our axis."""

    table: str = ""
    model: str = ""
    dataset: str = ""
    rows: dict[str, dict] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_source(self)
        if not self.rows:
            fail("rows", "must give the paper's numbers of at least one variant: {<variant>: {top1: 81.3}}")
        for vname, numbers in self.rows.items():
            if not isinstance(numbers, dict) or not numbers or not all(_number(v) for v in numbers.values()):
                fail(f"rows.{vname}", f"must map metric names to numbers, got {numbers!r}")

    def source(self) -> str:
        return f"{self.table}, {self.model}, {self.dataset}"


@dataclass(frozen=True)
class TransferPaper:
    """``transfer.paper:``: the paper's transfer numbers, e.g. Swin V2 Table 1: ``{table, model, dataset,
    trained: "256:8", rows: {<variant>: {"256:8": 81.7, "384:12": [79.4, 82.7], ...}}}``. Keys are the
    paper's IMG:WINDOW; values top-1 without fine-tuning, or [without FT, with FT], or [null, with FT] where the
    paper has a fine-tuned number only (its ADE20K columns); ``trained`` is the IMG:WINDOW the paper trained at
    (its value there is the as-trained number)."""

    table: str = ""
    model: str = ""
    dataset: str = ""
    trained: str = ""
    rows: dict[str, dict] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_source(self)
        if not _is_target(self.trained):
            fail("trained", f"got {self.trained!r}; expected the paper's training IMG:WINDOW, e.g. 256:8")
        if not self.rows:
            fail("rows", "must give the paper's numbers of at least one variant")
        for vname, cols in self.rows.items():
            if not isinstance(cols, dict) or not cols:
                fail(f"rows.{vname}", f"must map IMG:WINDOW to numbers, got {cols!r}")
            for target, value in cols.items():
                where = f"rows.{vname}.{target}"
                if not _is_target(target):
                    fail(where, "keys must be IMG:WINDOW, e.g. 384:12")
                pair = (isinstance(value, list) and len(value) == 2 and _number(value[1])
                        and (value[0] is None or _number(value[0])))
                if not (_number(value) or pair):
                    fail(where, f"got {value!r}; expected a number (without fine-tuning), [without FT, with FT] "
                                f"or [null, with FT]")


def _is_target(text) -> bool:
    parts = str(text).split(":")
    return isinstance(text, str) and len(parts) == 2 and all(p.isdigit() and int(p) > 0 for p in parts)


@dataclass(frozen=True)
class ReportSpec:
    """``report:``: ``columns`` of the comparison tables in ``table.tex`` (every column stays in report.md and
    cells.csv); allowed: the keys of ``swin_lit.report.columns.COMPARISON_COLUMNS``."""

    columns: tuple[str, ...] = DEFAULT_LATEX_COLUMNS

    def __post_init__(self) -> None:
        if not self.columns:
            fail("columns", f"must list at least one of {', '.join(COMPARISON_COLUMNS)}")
        for i, col in enumerate(self.columns):
            if col not in COMPARISON_COLUMNS:
                fail(f"columns[{i}]", f"got {col!r}; allowed values are {', '.join(COMPARISON_COLUMNS)}")
        if len(set(self.columns)) != len(self.columns):
            fail("columns", f"lists a column twice: {list(self.columns)}")


@dataclass(frozen=True)
class TransferSpec:
    """``transfer:``: after training, move each cell's model to larger images/windows (Swin V2 Table 1).

    ``targets``: "IMG:WINDOW" strings (a segmentation study: IMG is the fine-tuning crop, IMG x IMG; its test
    images are segmented at their own size with the new window); ``methods``: transfer methods (default: the
    paper's setting of each relative-bias kind, its first method: ``bicubic`` for tables, ``extrapolate`` for
    CPB); ``finetune_epochs``: 0 evaluates without fine-tuning only; K > 0 also fine-tunes K epochs at each
    target ("without FT / with FT"); ``contrasts``: pairs ``[A, B]`` of variants to test against each other at
    every target as well (A's first method minus B's, in the target's Holm family), beside each row's test
    against the baseline, e.g. ``[[log-spaced CPB, linear-spaced CPB]]``."""

    targets: tuple[str, ...] = ()
    methods: tuple[str, ...] | None = None
    finetune_epochs: int = 0
    finetune_lr: float = 2e-4
    contrasts: tuple[tuple[str, str], ...] = ()
    paper: TransferPaper | None = None  # the paper's numbers at its own windows, aligned with ours by ratio

    def __post_init__(self) -> None:
        if not self.targets:
            fail("targets", "must list at least one IMG:WINDOW target, e.g. [48:6, 64:8]")
        for i, target in enumerate(self.targets):
            parts = target.split(":")
            if len(parts) != 2 or not all(p.isdigit() and int(p) > 0 for p in parts):
                fail(f"targets[{i}]", f"got {target!r}; expected IMG:WINDOW, e.g. 64:8")
        for i, method in enumerate(self.methods or ()):
            if method not in TRANSFER_METHODS:
                fail(f"methods[{i}]", f"got {method!r}; allowed values are "
                                      f"{', '.join(repr(m) for m in TRANSFER_METHODS)}")
        if self.finetune_epochs < 0:
            fail("finetune_epochs", f"must be >= 0, got {self.finetune_epochs}")
        if self.finetune_lr <= 0:
            fail("finetune_lr", f"must be > 0, got {self.finetune_lr}")
        for i, (a, b) in enumerate(self.contrasts):
            if a == b:
                fail(f"contrasts[{i}]", f"compares {a!r} with itself; name two different variants")

    def methods_for(self, relative: str) -> list[str]:
        from swin_lit.models.transfer import methods_for

        allowed = methods_for(relative)
        if self.methods is None:
            return [allowed[0]]
        return [m for m in self.methods if m in allowed]


SAME_RUN = ("cannot tell variants apart: compiled and eager runs compute the same model and share a run folder "
            "(set it in budget, or time the two paths with benchmarks/compile_payback.py)")


@dataclass(frozen=True)
class CounterpartSpec:
    """``counterpart:``: the same rows in another study (typically a dense study's rows in a classification
    study), for the papers' claim that an effect is larger in one task than in the other. ``study``: the other
    study's name; ``rows``: each of our variants -> the other study's variant of the same design change. Both
    studies' specs give the paper's numbers of those rows (``paper:``); the scorecard compares our row's effect
    (its per-seed Δ to our baseline, on our objective) with theirs on their objective: a Welch interval on the
    two studies' per-seed Δs (different data: no pairing), beside the paper's difference of the two Δs."""

    study: str = ""
    rows: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.study:
            fail("study", "must name the counterpart study (its name: field)")
        if not self.rows:
            fail("rows", "must map at least one of our variants to the counterpart's variant of the same change")
        for vname, theirs in self.rows.items():
            if not isinstance(theirs, str) or not theirs:
                fail(f"rows.{vname}", f"must name the counterpart study's variant, got {theirs!r}")


@dataclass(frozen=True)
class Spec:
    name: str
    base: str = "configs/default.yaml"
    description: str = ""
    budget: dict[str, Any] = field(default_factory=dict)
    factors: dict[str, Any] | None = None
    variants: dict[str, Any] | None = None
    seeds: tuple[int, ...] | SeedRule = (0,)  # a list, or {start, max, step, precision}: see swin_lit.seeds
    baseline: str | None = None
    metrics: tuple[str, ...] = ("test.top1", "test.top5", "test.loss", "test.ece")
    objective: str = "test.top1"
    alpha: float = 0.05  # family-wise error rate of each Holm family in the report
    margin: float | None = None  # smallest effect of interest on the objective (its units): equivalence verdicts
    paper: PaperSpec | None = None
    report: ReportSpec = field(default_factory=ReportSpec)
    mode: Literal["grid", "search"] = "grid"
    search: SearchSpec | None = None
    transfer: TransferSpec | None = None
    counterpart: CounterpartSpec | None = None

    def __post_init__(self) -> None:
        if not self.name or any(c in self.name for c in "/\\ |"):
            fail("name", f"must be a non-empty name without slashes, spaces or '|', got {self.name!r}")
        if (self.factors is None) == (self.variants is None):
            fail("factors", "give exactly one of factors (a full factorial) and variants (named overrides)")
        if self.factors is not None:
            if not self.factors:
                fail("factors", "must name at least one config key with a list of values")
            for key, values in self.factors.items():
                if key in ("seed", "name"):
                    fail(f"factors.{key}", "is set by the driver; list seeds under seeds")
                if key == "trainer.compile":
                    fail(f"factors.{key}", SAME_RUN)
                if not isinstance(values, list) or not values:
                    fail(f"factors.{key}", f"must be a non-empty list of values, got {values!r}")
                stored = [repr(contract.encode(v)) for v in values]  # as the study's param choices hold them
                if len(set(stored)) != len(values) or any(a == b for a, b in itertools.combinations(values, 2)):
                    fail(f"factors.{key}", f"lists a value twice: {values!r}")
        if self.variants is not None:
            if not self.variants:
                fail("variants", "must name at least one variant")
            for vname, overrides in self.variants.items():
                if not isinstance(vname, str) or not vname or "|" in vname:
                    fail(f"variants.{vname}", "variant names must be non-empty strings without '|'")
                if overrides is not None and not isinstance(overrides, dict):
                    fail(f"variants.{vname}", f"must map dotted config keys to values, got {overrides!r}")
                for key in overrides or {}:
                    if key in ("seed", "name"):
                        fail(f"variants.{vname}.{key}", "is set by the driver; list seeds under seeds")
                    if key == "trainer.compile":
                        fail(f"variants.{vname}.{key}", SAME_RUN)
        for key in self.budget:
            if key in ("seed", "name"):
                fail(f"budget.{key}", "is set by the driver; list seeds under seeds")
        if isinstance(self.seeds, SeedRule):
            if self.mode == "search":
                fail("seeds", "adaptive seeds ({start, max, step, precision}) are for mode: grid; list the seeds")
        else:
            if not self.seeds:
                fail("seeds", "must list at least one seed")
            if len(set(self.seeds)) != len(self.seeds):
                fail("seeds", f"lists a seed twice: {list(self.seeds)}")
        if not 0 < self.alpha < 1:
            fail("alpha", f"must be between 0 and 1, got {self.alpha}")
        if self.margin is not None and not self.margin > 0:
            fail("margin", f"must be a positive effect size in the objective's units, got {self.margin}")
        for i, m in enumerate(self.metrics):
            check_metric(f"metrics[{i}]", m)
        check_metric("objective", self.objective)
        if self.mode == "search" and self.search is None:
            fail("search", "mode: search needs a search section: {params: {...}, trials: N}")
        if self.mode == "grid" and self.search is not None:
            fail("search", "is only used with mode: search")
        if self.mode == "search" and self.transfer is not None:
            fail("transfer", "is only used with mode: grid")
        names = self.variant_names()
        if self.baseline is not None and self.find_variant(self.baseline) is None:
            fail("baseline", f"got {self.baseline!r}; allowed values are {', '.join(repr(n) for n in names)}")
        allowed = ", ".join(repr(n) for n in names)
        if self.paper is not None:
            for vname, numbers in self.paper.rows.items():
                if self.find_variant(vname) is None:
                    fail(f"paper.rows.{vname}", f"unknown variant; allowed values are {allowed}")
                for key in numbers:
                    if not any(key in (m, m.rsplit(".", 1)[-1]) for m in self.metrics):
                        fail(f"paper.rows.{vname}.{key}", f"matches none of the metrics ({', '.join(self.metrics)})")
            base = self.find_variant(self.baseline) if self.baseline is not None else names[0]
            if not any(self.find_variant(v) == base for v in self.paper.rows):
                fail("paper.rows", f"must give the baseline's numbers ({base!r}): the paper's differences are "
                                   f"taken against its baseline row")
        if self.transfer is not None and self.transfer.paper is not None:
            for vname in self.transfer.paper.rows:
                if self.find_variant(vname) is None:
                    fail(f"transfer.paper.rows.{vname}", f"unknown variant; allowed values are {allowed}")
        for i, pair in enumerate(self.transfer.contrasts if self.transfer is not None else ()):
            for j, vname in enumerate(pair):
                if self.find_variant(vname) is None:
                    fail(f"transfer.contrasts[{i}][{j}]", f"got {vname!r}; allowed values are {allowed}")
        if self.counterpart is not None:
            papered = {self.find_variant(v) for v in (self.paper.rows if self.paper is not None else {})}
            for vname in self.counterpart.rows:
                if self.find_variant(vname) is None:
                    fail(f"counterpart.rows.{vname}", f"unknown variant; allowed values are {allowed}")
                if self.find_variant(vname) not in papered:
                    fail(f"counterpart.rows.{vname}", "needs the paper's own number under paper.rows (the claim "
                                                     "compares the paper's two deltas)")

    # -- variants and cells ---------------------------------------------------------------------------
    def variant_list(self) -> list[tuple[str, dict]]:
        """(name, overrides) of every variant, in spec order."""
        if self.factors is not None:
            out = []
            for values in itertools.product(*self.factors.values()):
                assignment = dict(zip(self.factors.keys(), values))
                out.append((factorial_name(assignment), assignment))
            return out
        return [(name, dict(ov or {})) for name, ov in (self.variants or {}).items()]

    def variant_names(self) -> list[str]:
        return [name for name, _ in self.variant_list()]

    def find_variant(self, name: str) -> str | None:
        """The variant called ``name``; factorial names match in any order of their ``key=value`` parts."""
        return contract.find_variant(self.variant_names(), name, self.factors is not None)

    @property
    def rule(self) -> SeedRule | None:
        """The adaptive-seed rule, or None for listed seeds."""
        return self.seeds if isinstance(self.seeds, SeedRule) else None

    @property
    def first_seeds(self) -> tuple[int, ...]:
        """The seeds planned before any result is stored: the listed ones, or the rule's first ``start``."""
        return tuple(range(self.rule.start)) if self.rule is not None else tuple(self.seeds)

    def direction(self) -> str:
        return contract.direction(self.objective)

    def to_plain(self) -> dict:
        """The spec as a plain dict (the study's ``spec`` user attr)."""
        return to_dict(self)


def check_metric(key: str, path: Any) -> None:
    if not isinstance(path, str):
        fail(key, f"got {path!r}; expected a dotted result path such as test.top1")
    parts = path.split(".")
    ok = (len(parts) == 2 and parts[0] in ("val", "test") and parts[1] in SPLIT_METRICS) or (
        len(parts) == 1 and parts[0] in SCALAR_RESULTS)
    if not ok:
        allowed = [f"{s}.{m}" for s in ("val", "test") for m in SPLIT_METRICS] + list(SCALAR_RESULTS)
        fail(key, f"got {path!r}; allowed values are {', '.join(allowed)}")


@dataclass(frozen=True)
class Cell:
    """One unit of work: a variant x a seed (x a search trial index), or the transfer of such a trained
    cell to one target with one method (``kind == "transfer"``; ``config`` is then the trained cell's).
    ``params`` are its Optuna params (``swin_lit.study.cell_params``), from which its id derives."""

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


def _check_task_metrics(spec: Spec, task: str) -> None:
    """Split metrics the base config's task does not report are a ConfigError naming the spec key."""
    own = contract.TASK_METRICS[task]
    for where, metric in [("objective", spec.objective), *((f"metrics[{i}]", m) for i, m in enumerate(spec.metrics))]:
        parts = metric.split(".")
        if len(parts) == 2 and parts[1] not in own:
            example = "test.miou" if task == "segmentation" else "test.top1"
            raise ConfigError(f"{where}: {metric!r} is not reported by task {task!r} (the base config's); its split "
                              f"metrics are {', '.join(own)}, e.g. objective: {example}")


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
    plain = spec.to_plain()
    cells: list[Cell] = []
    seeds = range(spec.rule.max) if spec.rule is not None else spec.seeds  # adaptive: every seed the rule may reach
    for vname, ov in spec.variant_list():
        if spec.mode == "grid":
            for seed in seeds:
                cfg = _resolve(budgeted, {**ov, "seed": seed}, f"variant {vname!r} (seed {seed})")
                cells.append(Cell(contract.train_cell_id(vname, seed), vname, seed, copy.deepcopy(ov), cfg,
                                  params=contract.cell_params(plain, ov, vname, seed)))
    if spec.mode == "search":
        variants = spec.variant_list()
        n = spec.search.trials * (len(variants) if spec.search.per_variant else 1)
        for k in range(n):
            vname, ov = variants[k // spec.search.trials] if spec.search.per_variant else variants[k % len(variants)]
            index = k % spec.search.trials if spec.search.per_variant else k
            seed = spec.seeds[index % len(spec.seeds)]
            cfg = _resolve(budgeted, {**ov, "seed": seed}, f"variant {vname!r} (seed {seed})")
            cells.append(Cell(contract.train_cell_id(vname, seed, index), vname, seed, copy.deepcopy(ov), cfg, index,
                              params=contract.cell_params(plain, ov, vname, seed, index)))
    if spec.transfer is not None:
        cells += transfer_cells(plain, spec.transfer, cells)
    return Plan(spec, path, base_path, cells)


def transfer_cells(plain: dict, tspec: TransferSpec, trained: list[Cell]) -> list[Cell]:
    """One transfer cell per trained cell x target x method, each target checked against the model."""
    from swin_lit.train.transfer import check_target, parse_target

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
                out.append(Cell(contract.transfer_cell_id(cell.id, img, window, method), cell.variant, cell.seed,
                                cell.overrides, cell.config, kind="transfer", transfer=info,
                                params=contract.cell_params(plain, cell.overrides, cell.variant, cell.seed,
                                                            transfer=info)))
    return out
