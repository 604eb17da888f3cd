"""Statistics of ablation studies: one comparison (paired or Welch), multiplicity, verdicts and detectable
effects, and the tests beside the t-test (sign-flip, Benjamini-Hochberg, simultaneous intervals, equivalence,
bimodality). Elsewhere: the adaptive-seed rule, the study's stopping rule, is ``swin_lit.seeds``; factorial
contrasts are ``swin_lit.contrasts``; the reproduction verdicts are ``swin_lit.report.reproduction``.

Pure functions of numbers (numpy and scipy only; nothing of the report, the driver or torch), so the report and
the driver reach the same answers from the same stored values. The rules follow the reference
(``swin_reference.md`` section 11):

- Seeds are blocks (same seed: same data order, augmentation draws and init stream), so a variant is compared
  with the baseline by the per-seed differences d_s = variant_s - baseline_s over the seeds both finished:
  mean d, the 95% t-interval d +- t(0.975, n-1) s_d / sqrt(n) and the two-sided paired t-test. Welch's unequal-
  variance test is used only where the two share fewer than 2 seeds (``Comparison.test == "welch"``). The
  assumption: per-seed differences are independent and roughly normal.
- A family of tests (e.g. every comparison against the baseline on one metric) is adjusted by Holm-Bonferroni
  (Holm 1979), which controls the family-wise error rate under any dependence.
- A verdict is "better" / "worse" when the Holm-adjusted p is <= alpha (the sign and the metric's direction
  decide which), else "not resolved"; for "not resolved" the smallest effect the design could have detected is
  given (``detectable_effect``: exact noncentral-t power, 80%, at level alpha / m, the strictest Holm step),
  worded as a property of the design (``power_statement``), never as a bound on the effect.
- Adaptive seeds are Stein's two-stage procedure (the rule: ``swin_lit.seeds``): the final tests use the first
  stage's SD and its df (``two_stage``; ``compare(..., first_stage=start)``), which keeps their level exactly.
- Beside the t-test: the exact sign-flip test with its smallest attainable p (``sign_flip_test``), a rule for
  bimodal per-seed differences (``bimodal``), Bonferroni simultaneous intervals (``simultaneous_interval``),
  two one-sided tests for equivalence (``equivalence``) and Benjamini-Hochberg across many claims
  (``benjamini_hochberg``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

LEVEL = 0.95  # confidence level of every interval
POWER = 0.80  # power of the detectable effect
BETTER, WORSE, NOT_RESOLVED = "better", "worse", "not resolved"


# -- one comparison ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Comparison:
    """A - B on one metric.

    ``test``: "paired" (per-seed differences over the seeds both finished), "welch" (fewer than 2 shared
    seeds, both sides with >= 2 values) or "none" (not enough values: every number NaN).
    ``estimate`` is the mean per-seed difference (paired) or the difference of means (Welch); ``low``/``high``
    the ``level`` t-interval; ``se``/``df`` the standard error and degrees of freedom behind it and the p-value;
    ``n`` the number of pairs (paired) or of values per side (Welch: ``n_a``, ``n_b``). ``first_stage``: set
    for a study with adaptive seeds (Stein's two-stage test, ``two_stage``): the estimate is the mean of all
    ``n`` differences, but ``se`` = s0 / sqrt(n) and ``df`` = first_stage - 1 come from the SD s0 of the
    differences of the first-stage seeds, which is what keeps the test exact when n was chosen from s0.
    """

    test: Literal["paired", "welch", "none"]
    estimate: float
    low: float
    high: float
    p: float
    se: float
    df: float
    n: int
    n_a: int
    n_b: int
    seeds: tuple[int, ...] = ()  # the shared seeds a paired comparison used
    level: float = LEVEL
    first_stage: int | None = None  # two-stage (Stein): the pairs whose SD gave se and df (df = first_stage - 1)

    @property
    def half_width(self) -> float:
        """Half the interval's width (infinite when there is no interval)."""
        if not math.isfinite(self.low) or not math.isfinite(self.high):
            return math.inf
        return (self.high - self.low) / 2


NO_COMPARISON = dict(estimate=math.nan, low=math.nan, high=math.nan, p=math.nan, se=math.nan, df=math.nan)


def _t_stats(estimate: float, se: float, df: float, level: float) -> tuple[float, float, float]:
    """(low, high, two-sided p) of a t statistic estimate / se with ``df`` degrees of freedom."""
    from scipy import stats

    if se <= 1e-12 * max(1.0, abs(estimate)):  # every difference equal (up to rounding): the t-test is undefined
        return estimate, estimate, math.nan
    half = float(stats.t.ppf(0.5 + level / 2, df)) * se
    p = float(2 * stats.t.sf(abs(estimate) / se, df))
    return estimate - half, estimate + half, p


def one_sample(values: Sequence[float], level: float = LEVEL, seeds: Sequence[int] = (),
               first_stage: int | None = None) -> Comparison:
    """Mean of per-seed values (differences or contrasts) with its t-interval and the test of mean = 0.

    ``first_stage``: the study's seeds were adaptive (``SeedRule``), seeds 0 .. first_stage-1 its first
    stage: Stein's two-stage test (``two_stage``) with the SD of the values of those seeds (``seeds`` must name
    each value's seed)."""
    if first_stage is not None:
        return two_stage(dict(zip(seeds, values)), first_stage, level)
    x = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    n = len(x)
    if n < 2:
        mean = float(x.mean()) if n else math.nan
        return Comparison("none", **{**NO_COMPARISON, "estimate": mean}, n=n, n_a=n, n_b=n, seeds=tuple(seeds),
                          level=level)
    mean, sd = float(x.mean()), float(x.std(ddof=1))
    se = sd / math.sqrt(n)
    low, high, p = _t_stats(mean, se, n - 1, level)
    return Comparison("paired", mean, low, high, p, se, n - 1, n, n, n, tuple(seeds), level)


def two_stage(values: Mapping[int, float], first_stage: int, level: float = LEVEL) -> Comparison:
    """Stein's two-stage test (Stein 1945) of the mean of per-seed values {seed: value}, for a study whose
    seeds were chosen by ``SeedRule``: s0 = the SD of the values of the first-stage seeds (0 .. first_stage-1,
    n0 of them finished), estimate = the mean of every value (n), se = s0 / sqrt(n), df = n0 - 1; the
    interval estimate +- t(df) se and the two-sided p of estimate / se.

    Exact (a t distribution with n0 - 1 df under the null, normal per-seed values) whatever rule chose n from
    the first stage, because the overall mean is independent of s0 (and of every spread statistic of the first
    stage). The ordinary t-test on the final n with its own SD is not: stopping on a small SD selects small SDs.
    With fewer than 2 first-stage values there is no s0: no test (NaN)."""
    clean = {int(k): float(v) for k, v in values.items() if v is not None and math.isfinite(v)}
    seeds = tuple(sorted(clean))
    x = np.asarray([clean[k] for k in seeds], dtype=float)
    first = np.asarray([clean[k] for k in seeds if k < first_stage], dtype=float)
    n, n0 = len(x), len(first)
    if n0 < 2:
        mean = float(x.mean()) if n else math.nan
        return Comparison("none", **{**NO_COMPARISON, "estimate": mean}, n=n, n_a=n, n_b=n, seeds=seeds,
                          level=level, first_stage=n0)
    mean, sd0 = float(x.mean()), float(first.std(ddof=1))
    se = sd0 / math.sqrt(n)
    low, high, p = _t_stats(mean, se, n0 - 1, level)
    return Comparison("paired", mean, low, high, p, se, n0 - 1, n, n, n, seeds, level, first_stage=n0)


def compare(a: Mapping[int, float], b: Mapping[int, float], level: float = LEVEL,
            first_stage: int | None = None) -> Comparison:
    """A - B from per-seed values ({seed: value}; NaN or None values are left out).

    Paired over the seeds both have when there are at least 2 of them; else Welch over all values when both
    sides have at least 2; else no test (NaN). ``first_stage`` (adaptive seeds): the paired test is Stein's
    two-stage test (``two_stage``) with the first-stage SD.
    """
    a = {int(s): float(v) for s, v in a.items() if v is not None and math.isfinite(v)}
    b = {int(s): float(v) for s, v in b.items() if v is not None and math.isfinite(v)}
    shared = sorted(set(a) & set(b))
    if len(shared) >= 2:
        c = one_sample([a[s] - b[s] for s in shared], level, shared, first_stage)
        return Comparison(c.test, c.estimate, c.low, c.high, c.p, c.se, c.df, c.n, len(a), len(b), c.seeds, level,
                          c.first_stage)
    if len(a) >= 2 and len(b) >= 2:
        return welch(list(a.values()), list(b.values()), level)
    estimate = (np.mean(list(a.values())) - np.mean(list(b.values()))) if a and b else math.nan
    return Comparison("none", **{**NO_COMPARISON, "estimate": float(estimate)}, n=len(shared), n_a=len(a),
                      n_b=len(b), level=level)


def welch(a: Sequence[float], b: Sequence[float], level: float = LEVEL) -> Comparison:
    """Welch's unequal-variance comparison of mean(a) - mean(b), Welch-Satterthwaite degrees of freedom."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    va, vb = x.var(ddof=1) / len(x), y.var(ddof=1) / len(y)
    se = math.sqrt(va + vb)
    estimate = float(x.mean() - y.mean())
    if se == 0:
        df = float(len(x) + len(y) - 2)
    else:
        df = (va + vb) ** 2 / (va**2 / (len(x) - 1) + vb**2 / (len(y) - 1))
    low, high, p = _t_stats(estimate, se, df, level)
    return Comparison("welch", estimate, low, high, p, se, float(df), min(len(x), len(y)), len(x), len(y), (), level)


# -- multiplicity, verdicts, detectable effects ------------------------------------------------------------


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values, in the input order. NaN p-values are not tests: they stay NaN and do
    not count in m. Sorted ascending p_(1..m): adjusted p_(k) = max over j <= k of min(1, (m - j + 1) p_(j))."""
    index = [i for i, p in enumerate(pvalues) if p is not None and math.isfinite(p)]
    m = len(index)
    out = [math.nan] * len(pvalues)
    running = 0.0
    for rank, i in enumerate(sorted(index, key=lambda i: pvalues[i])):
        running = max(running, min(1.0, (m - rank) * float(pvalues[i])))
        out[i] = running
    return out


def family_size(pvalues: Iterable[float]) -> int:
    return sum(1 for p in pvalues if p is not None and math.isfinite(p))


def verdict(estimate: float, p_adjusted: float, alpha: float, higher_is_better: bool) -> str:
    """"better" / "worse" (A vs B, from the sign of A - B and the metric's direction) when the adjusted p is
    <= alpha, else "not resolved"."""
    if p_adjusted is None or not math.isfinite(p_adjusted) or p_adjusted > alpha or estimate == 0:
        return NOT_RESOLVED
    return BETTER if (estimate > 0) == higher_is_better else WORSE


def resolved(p_adjusted: float, alpha: float) -> bool:
    return p_adjusted is not None and math.isfinite(p_adjusted) and p_adjusted <= alpha


def power(effect: float, se: float, df: float, alpha: float) -> float:
    """Exact power of the two-sided t-test at level ``alpha`` when the true difference is ``effect``: with
    noncentrality delta = effect / se, P(|T| > t(1 - alpha/2, df)) for T ~ noncentral t(df, delta)."""
    from scipy import stats

    crit = float(stats.t.ppf(1 - alpha / 2, df))
    delta = abs(effect) / se
    upper = float(stats.nct.sf(crit, df, delta))
    lower = float(stats.nct.sf(crit, df, -delta))  # P(T < -crit) by symmetry; scipy's cdf there can be NaN
    return upper + (lower if math.isfinite(lower) else 0.0)  # the lower tail is below Phi(-delta), negligible


def detectable_effect(se: float, df: float, alpha: float, target: float = POWER) -> float:
    """The smallest |difference| the two-sided t-test at level ``alpha`` detects with probability ``target``,
    taking the observed standard error as the truth: delta * se where ``power(delta * se) == target``.

    Exact noncentral-t power (``power``), not the (t(1-alpha/2) + t(power)) se approximation of the reference,
    which is close for large df and understates the effect at df = 1-2. NaN without a standard error.
    """
    from scipy import optimize

    if not (math.isfinite(se) and math.isfinite(df)) or df <= 0:
        return math.nan
    if se == 0:
        return 0.0
    hi = 1.0
    while power(hi * se, se, df, alpha) < target:
        hi *= 2
        if hi > 1e7:
            return math.inf
    delta = optimize.brentq(lambda d: power(d * se, se, df, alpha) - target, 0.0, hi, xtol=1e-10, rtol=1e-10)
    return float(delta * se)


@dataclass(frozen=True)
class Test:
    """One comparison of a family, after the adjustment: the verdict and, when not resolved, what could have
    been detected. ``direction``: the metric's (True: higher is better); None for terms without one
    (interactions), whose verdict is "resolved" / "not resolved"."""

    comparison: Comparison
    p_adjusted: float
    verdict: str
    detectable: float  # 80%-power effect at alpha / m (NaN without a test)
    m: int  # family size


def adjust_family(comparisons: Sequence[Comparison], alpha: float, direction: bool | None) -> list[Test]:
    """Holm over one family; verdicts; the detectable effect at level alpha / m (the strictest Holm step, so an
    effect that large is resolved with >= 80% power whatever the other p-values)."""
    adjusted = holm([c.p for c in comparisons])
    m = family_size(c.p for c in comparisons)
    out = []
    for c, p in zip(comparisons, adjusted):
        if direction is None:
            v = "resolved" if resolved(p, alpha) else NOT_RESOLVED
        else:
            v = verdict(c.estimate, p, alpha, direction)
        level = alpha / max(m, 1)
        detectable = detectable_effect(c.se, c.df, level) if math.isfinite(c.p) else math.nan
        out.append(Test(c, p, v, detectable, m))
    return out


def best_row(values: Mapping[str, Mapping[int, float]], higher_is_better: bool, alpha: float,
             level: float = LEVEL) -> tuple[str | None, bool, set[str]]:
    """The row with the best mean and whether it is resolved best: (best, resolved, ties).

    The best row B is compared with every other row R (``compare(R, B)``, paired by seed where they share >= 2
    seeds); Holm over those k - 1 tests. B is *resolved best* when every adjusted p is <= alpha with R worse
    than B. ``ties``: B and every row whose comparison with B is not resolved (ties in the sense of the test);
    empty when B is resolved best. Rows without values are left out.
    """
    means = {r: float(np.mean([v for v in vals.values() if v is not None and math.isfinite(v)]))
             for r, vals in values.items()
             if any(v is not None and math.isfinite(v) for v in vals.values())}
    if not means:
        return None, False, set()
    best = (max if higher_is_better else min)(means, key=lambda r: means[r])
    others = [r for r in means if r != best]
    if not others:
        return best, False, set()
    tests = adjust_family([compare(values[r], values[best], level) for r in others], alpha, higher_is_better)
    ties = {r for r, t in zip(others, tests) if t.verdict != WORSE}
    if ties:
        return best, False, ties | {best}
    return best, True, set()


# -- exact small-sample test, many claims, simultaneous intervals, equivalence, wording ---------------------

SIGN_FLIP_EXACT_MAX = 20  # up to this many differences every sign pattern is enumerated
SIGN_FLIP_DRAWS = 100_000  # above it: a seeded Monte Carlo over this many random sign patterns
SIGN_FLIP_SEED = 0


@dataclass(frozen=True)
class SignFlip:
    """The paired sign-flip (permutation) test of mean difference = 0.

    ``p``: two-sided p-value, the share of the 2^n sign patterns of the |differences| whose |sum| is at least
    the observed |sum| (ties counted in, so the test never rejects more often than its level); ``min_p``: the
    smallest p this test can give for these |differences| whatever their signs, 2 / 2^n when none is 0
    (0.25 at n = 3, 0.0625 at n = 5, 0.0156 at n = 7): below alpha only from n = 6 at alpha 0.05;
    ``n``: the number of differences; ``exact``: every pattern enumerated (n <= 20), else a Monte Carlo over
    ``SIGN_FLIP_DRAWS`` seeded patterns with p = (1 + hits) / (1 + draws)."""

    p: float
    min_p: float
    n: int
    exact: bool = True

    def can_reject(self, alpha: float) -> bool:
        """Whether any sign pattern of these |differences| could give p <= alpha."""
        return self.min_p <= alpha


def sign_flip_test(deltas: Sequence[float]) -> SignFlip:
    """The exact paired sign-flip test of the per-seed differences (reference section 11): under the null of a
    distribution symmetric about 0, every sign pattern of the |d_i| is equally likely; the statistic is the sum
    (equivalently the mean) of the differences. Non-finite values are left out; no differences: p = NaN."""
    d = np.asarray([x for x in deltas if x is not None and math.isfinite(x)], dtype=float)
    n = len(d)
    if n == 0:
        return SignFlip(math.nan, math.nan, 0)
    a = np.abs(d)
    observed = abs(float(d.sum()))
    tol = 1e-9 * max(1.0, float(a.sum()))  # sums equal up to rounding count as ties (>=: conservative)
    zeros = int((a <= tol / max(n, 1)).sum())
    min_p = 1.0 if zeros == n else min(1.0, 2.0 ** (zeros + 1 - n))  # all-same-sign patterns (x 2^zeros)
    if n <= SIGN_FLIP_EXACT_MAX:
        sums = np.zeros(1)
        for x in a:  # every pattern's sum: 2^n values, built by doubling (8 MiB at n = 20)
            sums = np.concatenate([sums + x, sums - x])
        return SignFlip(float((np.abs(sums) >= observed - tol).mean()), min_p, n)
    rng = np.random.default_rng(SIGN_FLIP_SEED)
    hits = 0
    for start in range(0, SIGN_FLIP_DRAWS, 10_000):
        signs = rng.choice((-1.0, 1.0), size=(min(10_000, SIGN_FLIP_DRAWS - start), n))
        hits += int((np.abs(signs @ a) >= observed - tol).sum())
    return SignFlip((1 + hits) / (1 + SIGN_FLIP_DRAWS), min_p, n, exact=False)


def benjamini_hochberg(pvalues: Sequence[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values (q-values), in the input order: sorted ascending p_(1..m),
    q_(k) = min over j >= k of min(1, m p_(j) / j) (step-up, so monotone in p). Rejecting q <= alpha controls
    the false-discovery rate at alpha for independent or positively dependent tests. NaN p-values are not
    tests: they stay NaN and do not count in m."""
    index = [i for i, p in enumerate(pvalues) if p is not None and math.isfinite(p)]
    m = len(index)
    out = [math.nan] * len(pvalues)
    running = 1.0
    ranked = sorted(index, key=lambda i: pvalues[i])
    for rank in range(m, 0, -1):
        i = ranked[rank - 1]
        running = min(running, m * float(pvalues[i]) / rank)
        out[i] = min(1.0, running)
    return out


def simultaneous_interval(c: Comparison, family: int, level: float = LEVEL) -> tuple[float, float]:
    """The Bonferroni t-interval of ``c`` at confidence 1 - (1 - level) / family: the ``family`` intervals of
    a family cover their true differences together with probability >= ``level``.

    It matches Holm's verdicts at alpha = 1 - level one way: an interval that excludes 0 has a raw p below
    alpha / family, so its Holm-adjusted p (at most family x p) is <= alpha and Holm rejects. Holm can reject
    a comparison whose simultaneous interval still touches 0 (its later steps are less strict): the interval
    is then the conservative statement. (low, high) = (estimate, estimate) when every difference was equal,
    NaN without a test."""
    if family < 1:
        raise ValueError(f"family must be >= 1, got {family}")
    if c.test == "none" or not (math.isfinite(c.se) and math.isfinite(c.df)):
        return math.nan, math.nan
    low, high, _ = _t_stats(c.estimate, c.se, c.df, 1 - (1 - level) / family)
    return low, high


def equivalence(c: Comparison, margin: float, alpha: float | None = None) -> float:
    """Two one-sided tests (TOST) of |difference| < ``margin``: the larger of the one-sided t-test p-values of
    H0 difference <= -margin and H0 difference >= +margin (same estimate, standard error and df as ``c``).
    "Equivalent within +-margin" at level alpha when this p is <= alpha, which is the same as the (1 - 2 alpha)
    t-interval lying inside (-margin, +margin) (``equivalent``). ``alpha``, when given, is only checked to be
    in (0, 0.5): the p-value does not depend on it. NaN without a test; with every difference equal (se 0),
    0 inside the margin and 1 outside."""
    from scipy import stats

    if not margin > 0:
        raise ValueError(f"the equivalence margin must be > 0, got {margin}")
    if alpha is not None and not 0 < alpha < 0.5:
        raise ValueError(f"alpha must be in (0, 0.5), got {alpha}")
    if c.test == "none" or not (math.isfinite(c.se) and math.isfinite(c.df)):
        return math.nan
    if c.se <= 1e-12 * max(1.0, abs(c.estimate)):
        return 0.0 if abs(c.estimate) < margin else 1.0
    p_low = float(stats.t.sf((c.estimate + margin) / c.se, c.df))  # H0: difference <= -margin
    p_high = float(stats.t.cdf((c.estimate - margin) / c.se, c.df))  # H0: difference >= +margin
    return max(p_low, p_high)


def equivalent(c: Comparison, margin: float, alpha: float) -> bool:
    """TOST at level alpha: ``equivalence(c, margin) <= alpha``."""
    p = equivalence(c, margin, alpha)
    return math.isfinite(p) and p <= alpha


def power_statement(detectable: float, metric_range: float | None = None, unit: str = "",
                    target: float = POWER) -> str:
    """The wording of a design's detectable effect (``detectable_effect``): "this design had 80% power for
    |Δ| ≥ X" -- a property of the design, computed from an estimated SD, never a bound on the effect. Where X
    exceeds ``metric_range`` (the widest difference the metric allows, e.g. 100 points of top-1 or mIoU) the
    design could not have detected any effect the metric can show: "uninformative (...)". NaN (no test):
    "no test"."""
    pct = f"{round(100 * target)}%"
    if detectable is None or math.isnan(detectable):
        return "no test (fewer than 2 seeds)"
    if math.isinf(detectable):
        return f"uninformative (no effect had {pct} power)"
    x = f"{detectable:.3g}{unit}"
    if metric_range is not None and detectable > metric_range:
        return (f"uninformative ({pct} power only for |Δ| ≥ {x}, beyond the metric's range of "
                f"{metric_range:g}{unit})")
    return f"this design had {pct} power for |Δ| ≥ {x}"


BIMODAL_GAP = 12.0  # the largest gap must exceed this many pooled within-group SDs
BIMODAL_MIN_N = 4


def bimodal(deltas: Sequence[float]) -> bool:
    """Whether per-seed differences fall in two separated groups (e.g. seeds that learned and seeds that did
    not), where a t-test's normal model does not hold.

    Rule: sort the differences and split them at the largest gap between neighbours; bimodal when there are
    at least ``BIMODAL_MIN_N`` values and that gap exceeds ``BIMODAL_GAP`` x the pooled within-group SD
    (sum of squares about each group's mean over n - 2 df; a gap with both groups constant counts). Dense
    Table 4's "w/o shifting" (-20, -78, -79, -79, -79): gap 58, pooled SD 0.5, ratio 116: bimodal. On normal
    samples the rule fires in about 4.7% of samples at n = 4, 1.4% at n = 5, 0.4% at n = 6 and < 0.1% from
    n = 8 (simulated, ``tests/test_stats.py``)."""
    x = np.sort(np.asarray([v for v in deltas if v is not None and math.isfinite(v)], dtype=float))
    if len(x) < BIMODAL_MIN_N:
        return False
    gaps = np.diff(x)
    i = int(np.argmax(gaps))
    if gaps[i] <= 0:
        return False
    lo, hi = x[: i + 1], x[i + 1:]
    pooled = math.sqrt((((lo - lo.mean()) ** 2).sum() + ((hi - hi.mean()) ** 2).sum()) / (len(x) - 2))
    return bool(gaps[i] > BIMODAL_GAP * pooled)


def bimodal_groups(deltas: Sequence[float]) -> tuple[int, int] | None:
    """(values below, values above) the largest gap when ``bimodal``, else None: how many seeds fell in each
    mode (e.g. learned / did not)."""
    if not bimodal(deltas):
        return None
    x = np.sort(np.asarray([v for v in deltas if v is not None and math.isfinite(v)], dtype=float))
    i = int(np.argmax(np.diff(x)))
    return i + 1, len(x) - i - 1


def holm_reject(pvalues, alpha: float):
    """Holm's rejections, vectorised over leading axes: ``pvalues`` (..., m) -> bool (..., m), the same
    decisions as ``holm(p) <= alpha`` row by row (every p finite)."""
    p = np.asarray(pvalues, dtype=float)
    m = p.shape[-1]
    order = np.argsort(p, axis=-1)
    ranked = np.take_along_axis(p, order, axis=-1)
    adjusted = np.maximum.accumulate(np.minimum(1.0, (m - np.arange(m)) * ranked), axis=-1)
    out = np.empty_like(adjusted, dtype=bool)
    np.put_along_axis(out, order, adjusted <= alpha, axis=-1)
    return out
