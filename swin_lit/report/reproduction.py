"""The paper beside ours: is a comparison a mechanism check or a reproduction, and what is its verdict?

A paper check is one of a study's comparisons that has the paper's difference between the same rows (``paper:``
or ``transfer.paper:`` in the spec). Which kind it is follows from the data it ran on:

- **Mechanism check**: embedded data (``data.source`` marks / synthetic: ``swin_lit.data.sources.embedded``).
  Those tasks are built so that a switch is needed (``swin_lit/data/marks.py``): they check that the switch does
  what it was built to do, not the paper's number. The expected outcome is written in the spec before the run:
  the paper's ordering of the rows (documented rule: expected "worse" where the paper's Δ is below 0, "better" above).
  Verdicts: behaves as designed (the study's Holm verdict has the expected direction) / does not behave as
  designed (resolved the other way) / not resolved / untestable / no expectation (the paper's Δ within its own
  noise). No paper Δ is compared and no reproduction is counted.
- **Reproduction**: natural data (CIFAR, CamVid, image folders, ADE20K ...). Verdicts, in this order:
  ``paper's Δ within its own noise`` (|paper Δ| at most the binomial 95% half-width of the paper's number on its
  test set: no ordering to reproduce), ``untestable`` (ceiling, floor, or the comparison not converged),
  ``agrees`` / ``contradicts`` (resolved with / against the paper's sign), ``smaller than the paper's`` (not
  resolved, and the interval excludes the paper's Δ on zero's side), ``consistent with both`` (the interval holds
  0 and the paper's Δ), ``not resolved`` (what is left: the interval excludes 0 but the test did not resolve it).
  "Resolved" and the interval are the study's Holm family with its simultaneous (Bonferroni) interval in a report,
  and Benjamini-Hochberg across the scorecard's reproductions with the unadjusted interval there
  (``swin_lit.report.scorecard``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from swin_lit import stats
from swin_lit.data.sources import embedded
from swin_lit.report import captions

# reproduction verdicts
AGREES, CONTRADICTS = "agrees", "contradicts"
SMALLER = captions.SMALLER_THAN_PAPER.fill()
CONSISTENT = "consistent with both"
UNTESTABLE = "untestable"
WITHIN_NOISE = captions.PAPER_WITHIN_NOISE.fill()
NOT_RESOLVED = stats.NOT_RESOLVED
REPRODUCTION_VERDICTS = (AGREES, CONTRADICTS, SMALLER, CONSISTENT, NOT_RESOLVED, UNTESTABLE, WITHIN_NOISE)
# mechanism verdicts
AS_DESIGNED, NOT_AS_DESIGNED = "behaves as designed", captions.NOT_AS_DESIGNED.fill()
NO_EXPECTATION = captions.NO_EXPECTATION.fill()
MECHANISM_VERDICTS = (AS_DESIGNED, NOT_AS_DESIGNED, NOT_RESOLVED, UNTESTABLE, NO_EXPECTATION)

MECHANISM, REPRODUCTION = "mechanism check", "reproduction"
Z95 = 1.959963984540054  # the normal 97.5% quantile
EDGE = 0.5  # points: both means this close to the metric's top (or to chance / 0) is a ceiling (floor)


def kind_of(source: str | None) -> str:
    """"mechanism check" for an embedded task (built to need a switch), else "reproduction"."""
    return MECHANISM if embedded(source) else REPRODUCTION


def binomial_half_width(percent: float, n: int) -> float:
    """The 95% half-width, in points, of a percentage measured on ``n`` independent test items:
    1.96 sqrt(p (1 - p) / n) x 100 (ImageNet-1K val, 50,000 images at 81%: 0.34 points)."""
    if not (math.isfinite(percent) and n and n > 0):
        return math.nan
    p = min(max(percent / 100, 0.0), 1.0)
    return Z95 * math.sqrt(p * (1 - p) / n) * 100


def untestable_reason(metric_short: str, mean_a: float, mean_b: float, chance: float | None = None,
                      converged: bool | None = None) -> str | None:
    """Why a comparison of two means cannot test an ordering, else None: "ceiling" (both percent means within
    ``EDGE`` points of 100), "floor" (both within ``EDGE`` points of chance, or of 0 without one), "not
    converged" (``converged`` is False: the paired Δ still moves at the end of training)."""
    if metric_short in ("top1", "top5", "miou", "aacc") and math.isfinite(mean_a) and math.isfinite(mean_b):
        if min(mean_a, mean_b) >= 100 - EDGE:
            return "ceiling"
        floor = chance if chance is not None and metric_short == "top1" else 0.0
        if max(mean_a, mean_b) <= floor + EDGE:
            return "floor"
    if converged is False:
        return "not converged"
    return None


def reproduction_verdict(paper_delta: float, noise: float, estimate: float, low: float, high: float,
                         resolved: bool, untestable: str | None = None) -> str:
    """The verdict of one reproduction (module docstring): ``noise`` is the paper's own 95% half-width (NaN:
    unknown, never within noise); (``low``, ``high``) the interval that goes with ``resolved``."""
    if not math.isfinite(paper_delta):
        return ""
    if paper_delta == 0 or (math.isfinite(noise) and abs(paper_delta) <= noise):
        return WITHIN_NOISE
    if untestable:
        return f"{UNTESTABLE} ({untestable})"
    if not math.isfinite(estimate):
        return NOT_RESOLVED
    if resolved and estimate != 0:
        return AGREES if (estimate > 0) == (paper_delta > 0) else CONTRADICTS
    if not (math.isfinite(low) and math.isfinite(high)):
        return NOT_RESOLVED
    if low <= 0 <= high:
        if low <= paper_delta <= high:
            return CONSISTENT
        if (paper_delta > 0 and high < paper_delta) or (paper_delta < 0 and low > paper_delta):
            return SMALLER
    return NOT_RESOLVED


def mechanism_verdict(paper_delta: float, noise: float, verdict: str, higher_is_better: bool,
                      untestable: str | None = None) -> str:
    """The verdict of one mechanism check: the expected direction is the paper's (worse where its Δ < 0 on a
    higher-is-better metric); ``verdict`` is the study's (better / worse / equivalent / not resolved)."""
    if not math.isfinite(paper_delta):
        return ""
    if paper_delta == 0 or (math.isfinite(noise) and abs(paper_delta) <= noise):
        return NO_EXPECTATION
    if untestable:
        return f"{UNTESTABLE} ({untestable})"
    if verdict not in (stats.BETTER, stats.WORSE):
        return NOT_RESOLVED
    expected = stats.BETTER if (paper_delta > 0) == higher_is_better else stats.WORSE
    return AS_DESIGNED if verdict == expected else NOT_AS_DESIGNED


def base_verdict(verdict: str) -> str:
    """"untestable (ceiling)" -> "untestable"; other verdicts unchanged."""
    return UNTESTABLE if verdict.startswith(UNTESTABLE) else verdict


def summary(verdicts: Iterable[str], kind: str) -> str:
    """One line counting the verdicts of one kind, in a fixed order: "agrees 2, contradicts 1, ... (of 9 claims)"
    (reproductions; the within-noise ones are listed apart, not counted as claims) or "behaves as designed 3 of
    4; not resolved 1" (mechanism checks)."""
    verdicts = [base_verdict(v) for v in verdicts if v]
    if kind == MECHANISM:
        counted = [v for v in verdicts if v != NO_EXPECTATION]
        parts = [f"{AS_DESIGNED} {counted.count(AS_DESIGNED)} of {len(counted)}"]
        parts += [f"{v} {counted.count(v)}" for v in (NOT_AS_DESIGNED, NOT_RESOLVED, UNTESTABLE) if counted.count(v)]
        line = "; ".join(parts)
        extra = len(verdicts) - len(counted)
    else:
        counted = [v for v in verdicts if v != WITHIN_NOISE]
        parts = [f"{v} {counted.count(v)}" for v in (AGREES, CONTRADICTS, SMALLER, CONSISTENT, NOT_RESOLVED,
                                                       UNTESTABLE) if counted.count(v)]
        line = captions.CLAIMS.fill(counts=", ".join(parts) or "none", n=len(counted),
                                    s=captions.plural(len(counted)))
        extra = len(verdicts) - len(counted)
    if extra:
        line += captions.NOT_COUNTED.fill(n=extra, s=captions.plural(extra))
    return line


@dataclass(frozen=True)
class PaperCheck:
    """One comparison with the paper's Δ beside it, as a study's report judges it."""

    kind: str  # MECHANISM / REPRODUCTION
    metric: str
    variant: str
    versus: str
    paper_delta: float
    paper_base: float  # the paper's number of the reference row (for its relative size and noise)
    noise: float  # the paper's 95% half-width on its test set (NaN: unknown)
    verdict: str
    untestable: str | None = None

    @property
    def relative(self) -> float:
        """The paper's Δ relative to its reference number (%)."""
        return 100 * self.paper_delta / self.paper_base if self.paper_base else math.nan
