"""The sections of a spec (``search``, ``paper``, ``transfer`` and its ``paper``, ``report``, ``counterpart``),
their checks, and the stored forms of older swin-lit versions that ``Spec.from_stored`` converts.

Each section validates itself when a spec is written; while a stored spec is read back (``reading_stored``)
it is not judged again by today's rules. Part of ``swin_lit.domain.spec``, which re-exports what it names.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import re
from dataclasses import dataclass, field
from typing import Any

from swin_lit.domain.metrics import is_metric_path, metric_paths
from swin_lit.models.registry import TRANSFER_METHODS, transfer_methods  # torch-free: the kinds' facts
from swin_lit.typed import fail

TRAIN, TRANSFER = "train", "transfer"  # a cell's kind

# Optuna param names of a cell besides the factor keys (``Spec.cell_params``).
SEED, VARIANT, SEARCH_INDEX = "seed", "variant", "search_index"
METHOD, IMG_SIZE, WINDOW_SIZE = "method", "img_size", "window_size"

# The keys of a report's comparison columns a spec may pick for ``table.tex`` (``report.columns``); their
# headings are the report's (``swin_lit.report.columns``).
COMPARISON_COLUMN_KEYS = ("n", "mean", "delta", "simultaneous", "p", "p_holm", "sign_flip", "verdict", "paper_delta",
                          "reproduction")
DEFAULT_LATEX_COLUMNS = ("n", "mean", "delta", "simultaneous", "p_holm", "verdict", "paper_delta", "reproduction")

# Set while ``Spec.from_stored`` reads a stored spec back: it was validated when written, and is not judged
# again by today's rules (a reader must load every study a swin-lit ever stored).
_STORED = contextvars.ContextVar("stored_spec", default=False)


def checking() -> bool:
    """Whether a spec section being built is to be validated (not while reading a stored spec back)."""
    return not _STORED.get()


@contextlib.contextmanager
def reading_stored():
    """Build spec sections without their checks (``Spec.from_stored``)."""
    token = _STORED.set(True)
    try:
        yield
    finally:
        _STORED.reset(token)


def factorial_name(assignment: dict) -> str:
    """``{"model.shift": "none", "model.norm": "pre"}`` -> ``"model.shift=none,model.norm=pre"``."""
    return ",".join(f"{k}={v}" for k, v in assignment.items())


def encode(value: Any) -> Any:
    """A factor value as an Optuna categorical choice: scalars as they are, lists and mappings as JSON text."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return json.dumps(value, sort_keys=True)


def value_key(value: Any) -> str:
    """A comparable key for an override value (JSON round trips keep types, so compare their JSON)."""
    return json.dumps(value, sort_keys=True, default=str)


def parse_target(text: str) -> tuple[int, int] | None:
    """(img, window) of ``"384:12"``; None for anything else."""
    m = re.fullmatch(r"(\d+):(\d+)", str(text).strip())
    return (int(m[1]), int(m[2])) if m and int(m[1]) > 0 and int(m[2]) > 0 else None


@dataclass(frozen=True)
class SeedRule:
    """``seeds: {start, max, step, precision}`` in a spec: Stein's two-stage procedure (Stein 1945; reference
    section 11; the rule itself: ``swin_lit.seeds``). Stage 1: seeds 0 .. start-1 for every variant. Then, for
    each comparison against the baseline on the objective, s0 = the SD of its first-stage per-seed differences and
    N = max(start, ceil((t(0.975, start-1) s0 / precision)^2)), capped at ``max``; every variant runs to the
    largest N (seeds are blocks, so all variants share the seeds). Stage 2 runs those seeds and the study
    stops: N is fixed after stage 1 and never revised. The final tests (``two_stage``) take the mean over all
    N seeds with s0 and start - 1 df, which is exact at any N, also where ``max`` cut N short (the interval
    is then wider than ``precision``). ``step`` is not used by this rule: it is accepted so that specs and
    stored studies written for the earlier rule (add ``step`` seeds while a half-width is above the precision,
    which did not keep its level: see ``docs/statistics.md``) still load."""

    start: int = 3
    max: int = 10
    step: int = 2  # unused by the two-stage rule; kept so earlier specs and stored studies load
    precision: float | None = None

    def __post_init__(self) -> None:
        if self.precision is None:
            fail("precision", "is required: the 95% interval half-width to reach, in the objective's units "
                              "(e.g. 1.0 top-1 points)")
        if not self.precision > 0:
            fail("precision", f"must be > 0, got {self.precision}")
        if self.start < 2:
            fail("start", f"must be >= 2 (an interval needs 2 seeds), got {self.start}")
        if self.max < self.start:
            fail("max", f"must be >= start ({self.start}), got {self.max}")
        if self.step < 1:
            fail("step", f"must be >= 1, got {self.step}")


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
        if not checking():
            return
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
        if not checking():
            return
        _check_source(self)
        if not self.rows:
            fail("rows", "must give the paper's numbers of at least one variant: {<variant>: {top1: 81.3}}")
        for vname, numbers in self.rows.items():
            if not isinstance(numbers, dict) or not numbers or not all(_number(v) for v in numbers.values()):
                fail(f"rows.{vname}", f"must map metric names to numbers, got {numbers!r}")

    def source(self) -> str:
        """``table, model, dataset`` ("" for a stored spec that predates them)."""
        return ", ".join(str(p) for p in (self.table, self.model, self.dataset) if p)


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
        if not checking():
            return
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

    def source(self) -> str:
        """``table, model, dataset`` ("" for a stored spec that predates them)."""
        return ", ".join(str(p) for p in (self.table, self.model, self.dataset) if p)


def _is_target(text) -> bool:
    return isinstance(text, str) and parse_target(text) is not None


@dataclass(frozen=True)
class ReportSpec:
    """``report:``: ``columns`` of the comparison tables in ``table.tex`` (every column stays in report.md and
    cells.csv); allowed: ``COMPARISON_COLUMN_KEYS``."""

    columns: tuple[str, ...] = DEFAULT_LATEX_COLUMNS

    def __post_init__(self) -> None:
        if not checking():
            return
        if not self.columns:
            fail("columns", f"must list at least one of {', '.join(COMPARISON_COLUMN_KEYS)}")
        for i, col in enumerate(self.columns):
            if col not in COMPARISON_COLUMN_KEYS:
                fail(f"columns[{i}]", f"got {col!r}; allowed values are {', '.join(COMPARISON_COLUMN_KEYS)}")
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
        if not checking():
            return
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
        allowed = transfer_methods(relative)
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
        if not checking():
            return
        if not self.study:
            fail("study", "must name the counterpart study (its name: field)")
        if not self.rows:
            fail("rows", "must map at least one of our variants to the counterpart's variant of the same change")
        for vname, theirs in self.rows.items():
            if not isinstance(theirs, str) or not theirs:
                fail(f"rows.{vname}", f"must name the counterpart study's variant, got {theirs!r}")


def check_metric(key: str, path: Any) -> None:
    if not isinstance(path, str):
        fail(key, f"got {path!r}; expected a dotted result path such as test.top1")
    if not is_metric_path(path):
        fail(key, f"got {path!r}; allowed values are {', '.join(metric_paths())}")


def known_fields(cls, data: dict) -> dict:
    names = set(cls.__dataclass_fields__)
    return {k: v for k, v in data.items() if k in names}


def stored_paper(paper: dict) -> dict | None:
    """``paper`` as stored: the current ``{table, model, dataset, rows}`` form, or the first ``{variant: {metric:
    number}}`` form (no provenance); numbers only."""
    rows = paper["rows"] if isinstance(paper.get("rows"), dict) else paper
    out = {k: str(paper.get(k) or "") for k in ("table", "model", "dataset")} if rows is not paper else {}
    out["rows"] = {name: {k: v for k, v in numbers.items() if _number(v)}
                   for name, numbers in rows.items() if isinstance(numbers, dict)}
    return out


def _old_target(key: str) -> str | None:
    """``"384:12"`` as it is, ``"W12,I384"`` (the first form) as ``"384:12"``."""
    if parse_target(key) is not None:
        return str(key).strip()
    m = re.fullmatch(r"W(\d+),\s*I(\d+)", str(key).strip())
    return f"{m[2]}:{m[1]}" if m else None


def _old_value(value) -> float | list | None:
    """81.7, [79.4, 82.7] and [null, 47.0] as they are; the first form's strings "81.7" and "79.4/82.7"."""
    if isinstance(value, list | tuple) and len(value) == 2:
        return [None if value[0] is None else float(value[0]), float(value[1])]
    if _number(value):
        return float(value)
    try:
        nums = [float(p) for p in str(value).split("/")]
    except ValueError:
        return None
    return nums[0] if len(nums) == 1 else nums if len(nums) == 2 else None


def stored_transfer_paper(paper: dict) -> dict:
    """``transfer.paper`` as stored: the current ``{table, model, dataset, trained, rows}`` form, or the first
    ``{variant: {"W12,I384": "79.4/82.7", "W8,I256": "81.7"}}`` form, whose training size is the one column
    without a "with FT" number."""
    current = isinstance(paper.get("rows"), dict)
    rows = {}
    for name, cols in (paper["rows"] if current else paper).items():
        parsed = {}
        for key, value in (cols or {}).items():
            target, number = _old_target(key), _old_value(value)
            if target is not None and number is not None:
                parsed[target] = number
        rows[name] = parsed
    if current:
        trained = _old_target(paper.get("trained", "")) or ""
        return {**{k: str(paper.get(k) or "") for k in ("table", "model", "dataset")}, "trained": trained, "rows": rows}
    singles = {t for cols in rows.values() for t, v in cols.items() if not isinstance(v, list)}
    return {"trained": next(iter(singles)) if len(singles) == 1 else "", "rows": rows}
