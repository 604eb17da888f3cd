"""Factorial contrasts of an ablation grid: main effects, two-way interactions and simple effects as weights
over cells (``Term``: ``factorial_terms``, ``simple_effect_terms``), applied per seed (``contrast_values``) and
summarised as one comparison with its t-interval and test (``estimate_term``, through ``swin_lit.stats``).

Effects are on the full-difference scale: a main effect is the mean over the other factors' cells of
y(a, .) - y(a0, .); an interaction the difference of differences (the 2^k effect coding reports half of it).
Seeds are blocks, so each term is a per-seed contrast over the seeds finished in every weighted cell. Pure
functions of numbers (nothing of the report, the driver or torch); the report's factorial tables are
``swin_lit.report.factorial``.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from swin_lit.stats import LEVEL, Comparison, one_sample

Cell = tuple  # one factorial cell: a level per factor, in factor order


@dataclass(frozen=True)
class Term:
    """One factorial contrast: weights over cells, applied per seed.

    ``kind``: "main", "interaction" or "simple"; ``factors``: the factor names involved; ``contrast``: the
    level difference(s) in words; ``at``: for a simple effect, the fixed level of the other factor."""

    kind: Literal["main", "interaction", "simple"]
    factors: tuple[str, ...]
    contrast: str
    weights: Mapping[Cell, float]
    at: str = ""


def _cells_with(levels: Mapping[str, Sequence], fixed: Mapping[int, object]) -> list[Cell]:
    combos = itertools.product(*levels.values())
    return [c for c in combos if all(c[i] == v for i, v in fixed.items())]


def _average_difference(levels, fixed_hi: dict, fixed_lo: dict) -> dict[Cell, float]:
    """Weights of mean(cells matching fixed_hi) - mean(cells matching fixed_lo) (the other factors averaged)."""
    hi, lo = _cells_with(levels, fixed_hi), _cells_with(levels, fixed_lo)
    w: dict[Cell, float] = {}
    for c in hi:
        w[c] = w.get(c, 0.0) + 1 / len(hi)
    for c in lo:
        w[c] = w.get(c, 0.0) - 1 / len(lo)
    return {c: x for c, x in w.items() if x != 0}


def factorial_terms(levels: Mapping[str, Sequence], reference: Mapping[str, object]) -> list[Term]:
    """Main effects and two-way interactions on the full-difference scale.

    Main effect of A (level a vs the reference a0) = mean over the other factors' cells of y(a, .) - y(a0, .);
    for a 2x2, ((m21 - m11) + (m22 - m12)) / 2. Interaction of A and B = the difference of differences
    [y(a, b) - y(a0, b)] - [y(a, b0) - y(a0, b0)] (averaged over any other factors); for a 2x2,
    (m22 - m12) - (m21 - m11). The 2^k effect coding reports half of this interaction. Higher-order
    interactions are not formed.
    """
    names = list(levels)
    terms = []
    for i, k in enumerate(names):
        for lv in levels[k]:
            if lv == reference[k]:
                continue
            terms.append(Term("main", (k,), f"{lv} − {reference[k]}", _average_difference(levels, {i: lv},
                                                                                       {i: reference[k]})))
    for (i, a), (j, b) in itertools.combinations(enumerate(names), 2):
        for la, lb in itertools.product(levels[a], levels[b]):
            if la == reference[a] or lb == reference[b]:
                continue
            at_b = _average_difference(levels, {i: la, j: lb}, {i: reference[a], j: lb})
            at_b0 = _average_difference(levels, {i: la, j: reference[b]}, {i: reference[a], j: reference[b]})
            w = dict(at_b)
            for c, x in at_b0.items():
                w[c] = w.get(c, 0.0) - x
            terms.append(Term("interaction", (a, b), f"({la} − {reference[a]}) × ({lb} − {reference[b]})",
                              {c: x for c, x in w.items() if x != 0}))
    return terms


def simple_effect_terms(levels: Mapping[str, Sequence], reference: Mapping[str, object], a: str, b: str) -> list[Term]:
    """Simple effects of A at each level of B and of B at each level of A (other factors averaged):
    for a 2x2, A at b1 is m21 - m11 and A at b2 is m22 - m12."""
    names = list(levels)
    out = []
    for this, other in ((a, b), (b, a)):
        i, j = names.index(this), names.index(other)
        for lo in levels[other]:
            for lv in levels[this]:
                if lv == reference[this]:
                    continue
                w = _average_difference(levels, {i: lv, j: lo}, {i: reference[this], j: lo})
                out.append(Term("simple", (this,), f"{lv} − {reference[this]}", w, at=f"{other}={lo}"))
    return out


def contrast_values(weights: Mapping[Cell, float], cells: Mapping[Cell, Mapping[int, float]]) -> dict[int, float]:
    """{seed: sum over cells of weight * value} over the seeds finished in every weighted cell."""
    if any(c not in cells for c in weights):
        return {}
    seeds = set.intersection(*(set(cells[c]) for c in weights)) if weights else set()
    return {s: float(sum(w * cells[c][s] for c, w in weights.items())) for s in sorted(seeds)}


def estimate_term(term: Term, cells: Mapping[Cell, Mapping[int, float]], level: float = LEVEL,
                  first_stage: int | None = None) -> Comparison:
    """The term's per-seed contrast, summarised as its mean with a t-interval over seeds and the t-test
    (``first_stage``: adaptive seeds, Stein's two-stage test)."""
    values = contrast_values(term.weights, cells)
    return one_sample(list(values.values()), level, list(values), first_stage)
