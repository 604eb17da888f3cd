"""The ablation spec (``ablations/*.yaml``): one type for the writer and every reader.

A spec names a base run config, a budget (overrides applied to every cell), the variants (a full factorial
over ``factors`` or explicitly named ``variants``), the seeds (a list, or adaptive: ``sections.SeedRule``),
the metrics and objective, and optional sections (``search``, ``transfer``, ``paper``, ``report``,
``counterpart``). ``swin_lit.ablate.spec`` reads a spec file into a ``Spec`` and resolves its cells' configs;
the study stores ``Spec.to_plain()`` as its ``spec`` user attr, and every reader (the driver's workers, the
report, the scorecard) reads it back with ``Spec.from_stored``, the one converter of older stored forms.

The spec also owns what derives from it alone: its variants and baseline, the Optuna params of a cell
(``cell_params``, ``param_distributions``; Optuna is imported only there) and a cell's id from its params
(``cell_id``, a ``swin_lit.domain.cell.CellId``). Importable without torch and without Optuna.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, Literal

from swin_lit.domain.cell import CellId, Target
from swin_lit.domain.metrics import direction as metric_direction
from swin_lit.domain.sections import (
    COMPARISON_COLUMN_KEYS,
    DEFAULT_LATEX_COLUMNS,
    IMG_SIZE,
    METHOD,
    SAME_RUN,
    SEARCH_INDEX,
    SEED,
    TRAIN,
    TRANSFER,
    TRANSFER_METHODS,
    VARIANT,
    WINDOW_SIZE,
    CounterpartSpec,
    PaperSpec,
    ReportSpec,
    SearchSpec,
    SeedRule,
    TransferPaper,
    TransferSpec,
    check_metric,
    check_range,
    checking,
    encode,
    factorial_name,
    known_fields,
    parse_target,
    reading_stored,
    search_distribution,
    stored_paper,
    stored_transfer_paper,
    value_key,
)
from swin_lit.typed import fail, from_dict, to_dict

__all__ = ["COMPARISON_COLUMN_KEYS", "DEFAULT_LATEX_COLUMNS", "IMG_SIZE", "METHOD", "SEARCH_INDEX", "SEED", "TRAIN",
           "TRANSFER", "TRANSFER_METHODS", "VARIANT", "WINDOW_SIZE", "CounterpartSpec", "PaperSpec", "ReportSpec",
           "SearchSpec", "Spec", "TransferPaper", "TransferSpec", "check_metric", "check_range", "encode",
           "factorial_name", "parse_target", "search_distribution", "value_key"]


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
        if not checking():
            return
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
                stored = [repr(encode(v)) for v in values]  # as the study's param choices hold them
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

    # -- variants ---------------------------------------------------------------------------------------
    def variant_list(self) -> list[tuple[str, dict]]:
        """(name, overrides) of every variant, in spec order."""
        if self.factors:
            out = []
            for values in itertools.product(*self.factors.values()):
                assignment = dict(zip(self.factors.keys(), values))
                out.append((factorial_name(assignment), assignment))
            return out
        return [(name, dict(ov or {})) for name, ov in (self.variants or {}).items()]

    def variant_names(self) -> list[str]:
        return [name for name, _ in self.variant_list()]

    def _by_values(self) -> dict[tuple, str]:
        keys = list(self.factors or {})
        return {tuple(value_key(ov.get(k)) for k in keys): name for name, ov in self.variant_list()}

    def variant_of_overrides(self, overrides: dict) -> str | None:
        """The factorial variant whose factor values ``overrides`` holds (compared as JSON); None otherwise."""
        if not self.factors:
            return None
        return self._by_values().get(tuple(value_key((overrides or {}).get(k)) for k in self.factors))

    def find_variant(self, name: str) -> str | None:
        """The variant called ``name``; a factorial name also matches in any order of its ``key=value`` parts
        and by its values (YAML-typed: ``model.window_size=7`` is the factor value 7)."""
        names = self.variant_names()
        if name in names:
            return name
        if not self.factors:
            return None
        parts = sorted(p.strip() for p in str(name).split(","))
        for n in names:
            if sorted(n.split(",")) == parts:
                return n
        import yaml

        given = dict(p.split("=", 1) for p in str(name).split(",") if "=" in p)
        values = [yaml.safe_load(given[k]) if k in given else None for k in self.factors]
        return self._by_values().get(tuple(value_key(v) for v in values))

    @property
    def baseline_variant(self) -> str | None:
        """The baseline among the variants, else the first variant (None: a stored spec without variants)."""
        names = self.variant_names()
        found = self.find_variant(self.baseline) if self.baseline is not None else None
        return found or (names[0] if names else None)

    # -- seeds ----------------------------------------------------------------------------------------
    @property
    def rule(self) -> SeedRule | None:
        """The adaptive-seed rule, or None for listed seeds."""
        return self.seeds if isinstance(self.seeds, SeedRule) else None

    @property
    def first_seeds(self) -> tuple[int, ...]:
        """The seeds planned before any result is stored: the listed ones, or the rule's first ``start``."""
        return tuple(range(self.rule.start)) if self.rule is not None else tuple(self.seeds)

    @property
    def seed_range(self) -> tuple[int, int]:
        """The ``seed`` param's range: the listed seeds, or 0 .. max-1 for adaptive seeds (the whole range the rule
        may reach, so trials from before and after the seeds grew hold one distribution)."""
        if self.rule is not None:
            return 0, self.rule.max - 1
        seeds = [int(s) for s in self.seeds] or [0]
        return min(seeds), max(seeds)

    def direction(self) -> str:
        return metric_direction(self.objective)

    # -- a cell's Optuna params and id ----------------------------------------------------------------
    def param_distributions(self) -> dict:
        """Every param a cell of this spec can have, with its Optuna distribution (imports Optuna).

        Categorical choices come from the spec (factor values, variant names); a study keeps them for life
        (Optuna refuses another set of choices for a param name). ``seed``, ``search_index``, ``img_size`` and
        ``window_size`` are integer ranges, which Optuna lets grow (seeds added later keep old trials valid).
        """
        from optuna.distributions import CategoricalDistribution, IntDistribution

        out: dict = {}
        if self.factors:
            for key, values in self.factors.items():
                out[key] = CategoricalDistribution([encode(v) for v in values])
        else:
            out[VARIANT] = CategoricalDistribution(list((self.variants or {}).keys()))
        out[SEED] = IntDistribution(*self.seed_range)
        if self.mode == "search" and self.search is not None:
            out[SEARCH_INDEX] = IntDistribution(0, max(self.search.trials - 1, 0))
            for key, rng in self.search.params.items():
                out[key] = search_distribution(rng)
        if self.transfer is not None:
            targets = [parse_target(t) for t in self.transfer.targets]
            out[METHOD] = CategoricalDistribution(list(TRANSFER_METHODS))
            out[IMG_SIZE] = IntDistribution(min(t[0] for t in targets), max(t[0] for t in targets))
            out[WINDOW_SIZE] = IntDistribution(min(t[1] for t in targets), max(t[1] for t in targets))
        return out

    def cell_params(self, overrides: dict, variant: str, seed: int, search_index: int | None = None,
                    transfer: dict | None = None) -> dict:
        """The params of one cell (search values are added by the sampler when the cell is claimed)."""
        if self.factors:
            params = {key: encode(overrides[key]) for key in self.factors}
        else:
            params = {VARIANT: variant}
        params[SEED] = int(seed)
        if search_index is not None:
            params[SEARCH_INDEX] = int(search_index)
        if transfer is not None:
            params.update({METHOD: transfer["method"], IMG_SIZE: int(transfer["img_size"]),
                           WINDOW_SIZE: int(transfer["window_size"])})
        return params

    def decode(self, key: str, stored: Any) -> Any:
        """The factor value whose encoding is ``stored`` (the value itself when the spec lacks it)."""
        for value in (self.factors or {}).get(key, []):
            if encode(value) == stored and type(encode(value)) is type(stored):
                return value
        return stored

    def variant_of_params(self, params: dict) -> str:
        if self.factors:
            return factorial_name({key: self.decode(key, params[key]) for key in self.factors})
        return params[VARIANT]

    def cell_id(self, kind: str, params: dict) -> CellId:
        """The id of the cell whose trial holds ``params`` (its ``cell`` user attr holds the same text)."""
        search = params.get(SEARCH_INDEX) if self.mode == "search" else None
        target = Target(int(params[IMG_SIZE]), int(params[WINDOW_SIZE]), params[METHOD]) if kind == TRANSFER else None
        return CellId(self.variant_of_params(params), int(params[SEED]), search, target)

    # -- storage --------------------------------------------------------------------------------------
    def to_plain(self) -> dict:
        """The spec as a plain dict (the study's ``spec`` user attr)."""
        return to_dict(self)

    @classmethod
    def from_stored(cls, plain: dict | None, name: str = "") -> Spec:
        """A study's stored ``spec`` user attr as a ``Spec``: the one converter at the storage boundary.

        Reads every form a swin-lit ever stored, without judging it by today's rules (it was validated when
        written): a field added later takes its default; a key no longer known is left out (the stored dict
        itself stays the record); ``paper`` in its first form (``{variant: {metric: number}}``, no provenance)
        and ``transfer.paper`` in its first form (``{variant: {"W12,I384": "79.4/82.7"}}``) are converted.
        A stored spec without ``seeds`` or ``metrics`` (storages written by hand) plans no seeds and names no
        metrics: readers take them from the trials. ``name`` names a spec stored without one."""
        data = known_fields(cls, dict(plain or {}))
        data.setdefault("name", name)
        data.setdefault("seeds", [])
        data.setdefault("metrics", [])
        if isinstance(data.get("paper"), dict):
            data["paper"] = stored_paper(data["paper"])
        if isinstance(data.get("transfer"), dict):
            transfer = known_fields(TransferSpec, data["transfer"])
            if isinstance(transfer.get("paper"), dict):
                transfer["paper"] = stored_transfer_paper(transfer["paper"])
            data["transfer"] = transfer
        for section, section_cls in (("search", SearchSpec), ("report", ReportSpec), ("counterpart", CounterpartSpec)):
            if isinstance(data.get(section), dict):
                data[section] = known_fields(section_cls, data[section])
        if not data.get("paper"):
            data["paper"] = None
        with reading_stored():
            return from_dict(cls, data)
