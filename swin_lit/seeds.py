"""The study's stopping rule: adaptive seeds by Stein's two-stage procedure (Stein 1945; reference section 11).

Holds the rule as a spec states it (``SeedRule``: ``seeds: {start, max, step, precision}``), its vectorised
kernels (``stein_need``, ``stein_seeds``: the seed count N from the first stage's SD; ``stein_test``: the final
test with that SD) and the decision on what is stored (``seed_decision`` -> ``SeedDecision``: which seeds every
variant gets now and why). The driver plans cells from it, ``swin-lit power`` simulates it and the report states
it; the scalar final test of one comparison is ``swin_lit.stats.two_stage`` (``compare(..., first_stage=start)``).

The seed count is fixed from the first stage's SD and the final tests use that SD and its df, which keeps their
level exactly; a rule that stops when the final interval is narrow and tests with the same SD does not (it
rejected up to 8-9.6% of null studies at alpha 0.05: ``docs/statistics.md``). Pure functions of numbers (numpy
and scipy only; nothing of the report, the driver or torch).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from swin_lit.domain.sections import SeedRule
from swin_lit.stats import LEVEL, compare


def stein_need(sd0, pairs0, precision: float, level: float = LEVEL):
    """The seeds a comparison needs before any cap (vectorised): ceil((t(0.5 + level/2, pairs0 - 1) sd0 /
    precision)^2), ``pairs0`` the first-stage pairs behind ``sd0``; inf without an SD (fewer than 2 pairs)."""
    from scipy import stats as sps

    sd0, pairs0 = np.asarray(sd0, dtype=float), np.asarray(pairs0, dtype=float)
    ok = np.isfinite(sd0) & (pairs0 >= 2)
    t = sps.t.ppf(0.5 + level / 2, np.where(ok, pairs0 - 1, 1.0))
    need = np.ceil(np.round((t * np.where(ok, sd0, 0.0) / precision) ** 2, 9))  # round: no 4.0000000001 -> 5
    return np.where(ok, need, np.inf)


def stein_seeds(sd0, pairs0, rule: SeedRule, level: float = LEVEL):
    """The two-stage rule's seed count N for each comparison (vectorised): ``stein_need`` clipped to
    [start, max] (no SD: ``max``)."""
    return np.clip(stein_need(sd0, pairs0, rule.precision, level), rule.start, rule.max).astype(int)


def stein_test(mean, sd0, n, df, level: float = LEVEL):
    """Stein's final test, vectorised: (low, high, p) of the mean of ``n`` differences with the first-stage SD
    ``sd0`` and its ``df``: se = sd0 / sqrt(n), the ``level`` t-interval and the two-sided p of mean / se.
    The scalar path (``two_stage``) gives the same numbers."""
    from scipy import stats as sps

    mean, sd0, n, df = (np.asarray(x, dtype=float) for x in (mean, sd0, n, df))
    se = sd0 / np.sqrt(n)
    half = sps.t.ppf(0.5 + level / 2, df) * se
    with np.errstate(divide="ignore", invalid="ignore"):
        p = 2 * sps.t.sf(np.abs(mean) / se, df)
    return mean - half, mean + half, p


@dataclass(frozen=True)
class SeedDecision:
    """What every variant should have now and why.

    ``state``: "precision reached" (every comparison's N fits under ``max``: its planned 95% half-width
    t s0 / sqrt(N) is <= precision) / "max reached" (some N was capped at ``max``; its interval will be wider)
    -- the study stops once the cells of ``seeds`` are settled -- or "waiting" (cells of ``seeds`` are not
    settled yet: queued, running, or to be queued now). ``widths``: each variant's first-stage 95% half-width
    vs the baseline (t s0 / sqrt(n0)); ``sd``: s0; ``required``: each variant's N; ``evaluated_at``: the
    first stage's seed count once it is settled (None before). ``pending``: the (variant, seed) cells of
    ``seeds`` that are neither finished nor failed."""

    seeds: tuple[int, ...]
    state: Literal["precision reached", "max reached", "waiting"]
    reason: str
    widths: Mapping[str, float] = field(default_factory=dict)
    evaluated_at: int | None = None
    pending: tuple[tuple[str, int], ...] = ()
    sd: Mapping[str, float] = field(default_factory=dict)
    required: Mapping[str, int] = field(default_factory=dict)

    @property
    def stopped(self) -> bool:
        return self.state != "waiting"


def seed_decision(rule: SeedRule, baseline: str, variants: Sequence[str], finished: Mapping[str, Mapping[int, float]],
                  failed: Iterable[tuple[str, int]] = (), metric: str = "the objective",
                  level: float = LEVEL) -> SeedDecision:
    """The two-stage adaptive-seed rule (``SeedRule``) as a pure function of what is stored.

    ``finished``: {variant: {seed: objective value}} of the finished cells; ``failed``: (variant, seed) cells
    that failed and will not be retried (they count as settled, without a value); any other cell is unsettled.

    Stage 1: until every cell of seeds 0 .. start-1 is settled the answer is "waiting" with those seeds. Then
    each variant's first-stage differences to the baseline (paired over the settled seeds both have) give s0
    and N (``stein_seeds``); every variant gets seeds 0 .. max(N)-1, "waiting" until those cells are settled,
    then the study stops ("precision reached" or "max reached"). Only first-stage values decide: values of
    later seeds are never looked at, so the answer depends only on the stored values, never on when or by whom
    they were written (a restarted driver, or several drivers on one storage, reach the same decision), and
    the final tests (``two_stage``) keep their level exactly (``tests/test_adaptive_seeds.py`` pushes 10,000s
    of simulated null studies through this function's arithmetic). The rule never looks at the sign or size
    of an effect; stopping on significance ("until p < 0.05") is never what this does.
    """
    failed = {(v, int(s)) for v, s in failed}
    variants = list(dict.fromkeys([baseline, *variants]))

    def pending_of(seeds: tuple[int, ...]) -> tuple[tuple[str, int], ...]:
        return tuple((v, s) for v in variants for s in seeds if s not in finished.get(v, {}) and (v, s) not in failed)

    first = tuple(range(rule.start))
    pending = pending_of(first)
    if pending:
        return SeedDecision(first, "waiting", f"first stage: waiting for {_cells(len(pending))} of seeds "
                                              f"0–{rule.start - 1}", pending=pending)
    base = {s: finished.get(baseline, {}).get(s) for s in first}
    widths, sd, required, capped = {}, {}, {}, set()
    for v in variants:
        if v == baseline:
            continue
        c = compare({s: finished.get(v, {}).get(s) for s in first}, base, level)
        pairs = c.n if c.test == "paired" else 0
        sd[v] = c.se * math.sqrt(c.n) if c.test == "paired" else math.nan
        widths[v] = c.half_width if c.test == "paired" else math.inf
        required[v] = int(stein_seeds(sd[v], pairs, rule, level))
        if stein_need(sd[v], pairs, rule.precision, level) > rule.max:
            capped.add(v)
    n = max(required.values(), default=rule.start)
    widest = max(widths, key=lambda v: widths[v]) if widths else None
    tail = f" (widest first-stage half-width {_fmt(widths[widest])}: {widest})" if widest is not None else ""
    plan = (f"at {rule.start} seeds (the first stage) the first-stage SDs vs the baseline on {metric} ask for "
            f"{n} seeds{tail}")
    if capped:
        plan += f"; {len(capped)} comparison{'s' if len(capped) > 1 else ''} capped at max {rule.max}"
    seeds = tuple(range(n))
    pending = pending_of(seeds)
    if pending:
        return SeedDecision(seeds, "waiting", f"{plan}: waiting for {_cells(len(pending))} of seeds 0–{n - 1}",
                            widths, rule.start, pending, sd, required)
    if capped:
        return SeedDecision(seeds, "max reached",
                            f"max reached: {n} seeds; {len(capped)} planned 95% half-width"
                            f"{'s' if len(capped) > 1 else ''} vs the baseline on {metric} above "
                            f"{_fmt(rule.precision)} ({plan})", widths, rule.start, (), sd, required)
    return SeedDecision(seeds, "precision reached",
                        f"precision reached: every planned 95% half-width vs the baseline on {metric} is <= "
                        f"{_fmt(rule.precision)} at {n} seeds ({plan})", widths, rule.start, (), sd, required)


def _cells(k: int) -> str:
    return f"{k} cell{'s' if k > 1 else ''}"


def _fmt(x: float) -> str:
    return "inf (fewer than 2 values)" if not math.isfinite(x) else f"{x:.3g}"
