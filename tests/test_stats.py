"""swin_lit.stats, swin_lit.seeds and swin_lit.contrasts against scipy and hand computations: paired and Welch
comparisons, Holm, verdicts, the detectable effect (checked by simulation), factorial contrasts, the two-stage
adaptive-seed decision and test, the exact sign-flip test, Benjamini-Hochberg, simultaneous intervals,
equivalence (TOST), power wording and bimodality.
(The reproduction verdicts live in swin_lit/report/reproduction.py and are tested with the report.)"""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats as sp

from swin_lit import stats
from swin_lit.contrasts import Term, estimate_term, factorial_terms, simple_effect_terms
from swin_lit.domain.sections import SeedRule
from swin_lit.seeds import seed_decision, stein_test
from swin_lit.typed import ConfigError, from_dict


def test_paired_comparison_matches_scipy():
    a = {0: 71.0, 1: 72.5, 2: 70.2, 3: 69.9}
    b = {0: 68.1, 1: 69.4, 2: 68.8}  # seed 3 missing: three pairs
    c = stats.compare(a, b)
    d = np.array([71.0 - 68.1, 72.5 - 69.4, 70.2 - 68.8])
    half = sp.t.ppf(0.975, 2) * d.std(ddof=1) / math.sqrt(3)
    assert c.test == "paired" and c.n == 3 and c.seeds == (0, 1, 2) and (c.n_a, c.n_b) == (4, 3)
    assert c.estimate == pytest.approx(d.mean())
    assert (c.low, c.high) == (pytest.approx(d.mean() - half), pytest.approx(d.mean() + half))
    assert c.p == pytest.approx(sp.ttest_rel([71.0, 72.5, 70.2], [68.1, 69.4, 68.8]).pvalue)
    assert c.half_width == pytest.approx(half)


def test_welch_only_without_two_shared_seeds():
    a = {2: 60.0, 3: 61.5, 4: 59.0}
    b = {0: 70.0, 1: 71.0, 2: 69.5}  # one shared seed
    c = stats.compare(a, b)
    x, y = np.array(list(a.values())), np.array(list(b.values()))
    va, vb = x.var(ddof=1) / 3, y.var(ddof=1) / 3
    df = (va + vb) ** 2 / (va**2 / 2 + vb**2 / 2)
    half = sp.t.ppf(0.975, df) * math.sqrt(va + vb)
    assert c.test == "welch" and c.df == pytest.approx(df)
    assert c.estimate == pytest.approx(x.mean() - y.mean())
    assert c.low == pytest.approx(x.mean() - y.mean() - half)
    assert c.p == pytest.approx(sp.ttest_ind(x, y, equal_var=False).pvalue)
    none = stats.compare({0: 1.0}, {0: 2.0, 1: 3.0})
    assert none.test == "none" and math.isnan(none.p) and none.half_width == math.inf


def test_no_spread_means_no_test():
    """Equal differences on every seed (possible with 2 seeds and accuracies in 0.1% steps): the t statistic is
    undefined, so no p-value (not p = 0) and no verdict."""
    c = stats.compare({0: 71.0, 1: 72.0}, {0: 70.0, 1: 71.0})
    assert c.test == "paired" and c.estimate == pytest.approx(1.0) and math.isnan(c.p) and c.half_width == 0
    [t] = stats.adjust_family([c], 0.05, True)
    assert t.verdict == "not resolved" and math.isnan(t.detectable) and t.m == 0


def test_holm_by_hand():
    # sorted 0.01, 0.03, 0.04, 0.5 -> 4 x 0.01, 3 x 0.03, max(0.09, 2 x 0.04), 0.5
    assert stats.holm([0.04, 0.01, 0.5, 0.03]) == pytest.approx([0.09, 0.04, 0.5, 0.09])
    out = stats.holm([0.2, math.nan, 0.6])  # NaN is no test: m = 2
    assert out[0] == pytest.approx(0.4) and math.isnan(out[1]) and out[2] == pytest.approx(0.6)
    assert stats.holm([0.9, 0.8]) == [1.0, 1.0]  # capped at 1


def test_verdicts_follow_direction_and_adjusted_p():
    assert stats.verdict(-2.0, 0.01, 0.05, higher_is_better=True) == "worse"
    assert stats.verdict(-2.0, 0.01, 0.05, higher_is_better=False) == "better"
    assert stats.verdict(+2.0, 0.06, 0.05, higher_is_better=True) == "not resolved"
    assert stats.verdict(+2.0, math.nan, 0.05, higher_is_better=True) == "not resolved"


def test_detectable_effect_has_the_power_it_claims():
    """At the returned effect, simulated paired t-tests (n = 3 and 6) reject at alpha with 80% probability."""
    rng = np.random.default_rng(1)
    for n, alpha in ((3, 0.05), (3, 0.05 / 3), (6, 0.05)):
        sd = 1.7
        effect = stats.detectable_effect(sd / math.sqrt(n), n - 1, alpha)
        d = rng.normal(effect, sd, size=(40_000, n))
        t = d.mean(1) / (d.std(1, ddof=1) / math.sqrt(n))
        rejected = np.mean(np.abs(t) > sp.t.ppf(1 - alpha / 2, n - 1))
        assert rejected == pytest.approx(0.80, abs=0.01), (n, alpha, rejected)
    # the reference's approximation (t(1 - alpha/2) + t(power)) se understates it at df = 2, not at df = 100
    approx = sp.t.ppf(0.975, 2) + sp.t.ppf(0.8, 2)
    assert stats.detectable_effect(1.0, 2, 0.05) > approx + 0.2
    assert stats.detectable_effect(1.0, 100, 0.05) == pytest.approx(sp.t.ppf(0.975, 100) + sp.t.ppf(0.8, 100), abs=0.03)


def test_adjust_family_uses_strictest_holm_step_for_detectable_effect():
    comps = [stats.compare({0: 1.0, 1: 2.0, 2: 1.5}, {0: 0.0, 1: 0.5, 2: 0.4}),
             stats.compare({0: 0.1, 1: -0.4, 2: 0.6}, {0: 0.0, 1: 0.0, 2: 0.0})]
    tests = stats.adjust_family(comps, 0.05, True)
    assert [t.m for t in tests] == [2, 2]
    assert [t.p_adjusted for t in tests] == pytest.approx(stats.holm([c.p for c in comps]))
    assert tests[1].verdict == "not resolved"
    assert tests[1].detectable == pytest.approx(stats.detectable_effect(comps[1].se, 2, 0.025))


def test_best_row_resolved_or_tied():
    clear = {"a": {0: 80.0, 1: 81.0, 2: 80.5}, "b": {0: 70.0, 1: 71.2, 2: 70.1}, "c": {0: 60.0, 1: 61.0, 2: 60.3}}
    assert stats.best_row(clear, True, 0.05) == ("a", True, set())
    noisy = {"a": {0: 80.0, 1: 71.0, 2: 84.5}, "b": {0: 78.0, 1: 75.2, 2: 79.1}, "c": {0: 60.0, 1: 51.3, 2: 64.4}}
    best, resolved, ties = stats.best_row(noisy, True, 0.05)
    assert best == "a" and not resolved and ties == {"a", "b"}  # a (78.5) vs b (77.4): a tie; c: resolved worse


def test_factorial_terms_on_a_2x2():
    """Full-difference main effect and difference-of-differences interaction (reference section 11)."""
    levels = {"A": ["a1", "a2"], "B": ["b1", "b2"]}
    m = {("a1", "b1"): 10.0, ("a2", "b1"): 13.0, ("a1", "b2"): 12.0, ("a2", "b2"): 9.0}  # crossing
    cells = {c: {0: v, 1: v + 0.5, 2: v - 0.5} for c, v in m.items()}
    terms = {(t.kind, t.factors): t for t in factorial_terms(levels, {"A": "a1", "B": "b1"})}
    main_a = estimate_term(terms["main", ("A",)], cells)
    inter = estimate_term(terms["interaction", ("A", "B")], cells)
    assert main_a.estimate == pytest.approx(((13 - 10) + (9 - 12)) / 2)  # 0: the main effect hides everything
    assert inter.estimate == pytest.approx((9 - 12) - (13 - 10))  # -6 (the 2^k coding would say -3)
    simple = {(t.factors, t.at): estimate_term(t, cells).estimate
              for t in simple_effect_terms(levels, {"A": "a1", "B": "b1"}, "A", "B")}
    assert simple[("A",), "B=b1"] == pytest.approx(3.0) and simple[("A",), "B=b2"] == pytest.approx(-3.0)
    assert simple[("B",), "A=a1"] == pytest.approx(2.0) and simple[("B",), "A=a2"] == pytest.approx(-4.0)
    # a cell finished on fewer seeds limits the contrast to the seeds every involved cell has
    del cells["a2", "b2"][2]
    assert estimate_term(terms["interaction", ("A", "B")], cells).n == 2


# -- the adaptive-seed decision ----------------------------------------------------------------------------

RULE = SeedRule(start=3, max=10, step=2, precision=1.0)


def values(rng, effects: dict[str, float], noise: float, seeds) -> dict[str, dict[int, float]]:
    """Per-seed values: a shared per-seed offset (the block) plus each variant's effect plus its own noise."""
    block = {s: float(rng.normal(0, 3)) for s in seeds}
    return {v: {s: 50 + block[s] + e + float(rng.normal(0, noise)) for s in seeds} for v, e in effects.items()}


def stein_n(diffs, precision=1.0, lo=3, hi=10) -> int:
    """Stein's N by hand: max(start, ceil((t(0.975, n0-1) s0 / precision)^2)) capped at max."""
    s0 = np.std(diffs, ddof=1)
    return int(min(hi, max(lo, math.ceil((sp.t.ppf(0.975, len(diffs) - 1) * s0 / precision) ** 2))))


def test_seed_decision_stops_when_precision_is_reached():
    rng = np.random.default_rng(0)
    stored = values(rng, {"base": 0, "a": 2.0, "b": -1.0}, 0.2, range(3))
    d = seed_decision(RULE, "base", ["base", "a", "b"], stored)
    assert d.state == "precision reached" and d.stopped and d.seeds == (0, 1, 2) and d.evaluated_at == 3
    for v in ("a", "b"):  # the widths are the paired 95% half-widths of the first stage, recomputed here
        diffs = np.array([stored[v][s] - stored["base"][s] for s in range(3)])
        assert d.widths[v] == pytest.approx(sp.t.ppf(0.975, 2) * diffs.std(ddof=1) / math.sqrt(3))
        assert d.sd[v] == pytest.approx(diffs.std(ddof=1)) and d.required[v] == 3 == stein_n(diffs)
    assert max(d.widths.values()) <= 1.0 and "precision reached" in d.reason


def test_seed_decision_fixes_n_from_the_first_stage_and_never_revises_it():
    """b's first-stage differences 1.5, 2, 2.5 (s0 0.5): N = ceil((4.303 * 0.5 / 1)^2) = ceil(4.63) = 5; c's
    are constant (N = start = 3): every variant gets seeds 0-4, whatever seeds 3-4 then show."""
    block = [0.0, 3.0, -2.0, 1.0, 4.0, -1.0, 2.0]
    stored = {"base": {s: 50 + block[s] for s in range(3)},
              "b": {s: 50 + block[s] + [1.5, 2.0, 2.5][s] for s in range(3)},
              "c": {s: 51 + block[s] for s in range(3)}}
    d = seed_decision(RULE, "base", ["base", "b", "c"], stored)
    assert d.state == "waiting" and d.seeds == (0, 1, 2, 3, 4) and d.required == {"b": 5, "c": 3}
    assert d.required["b"] == stein_n([1.5, 2.0, 2.5])
    assert set(d.pending) == {(v, s) for v in ("base", "b", "c") for s in (3, 4)}
    assert "ask for 5 seeds" in d.reason and "waiting for 6 cells of seeds 0–4" in d.reason
    for wild in (0.0, 40.0):  # seeds 3-4 with any values (here wildly spread): the study stops at 5 seeds
        done = {v: {**vals, 3: vals[0] + wild, 4: vals[1] - wild} for v, vals in stored.items()}
        d = seed_decision(RULE, "base", ["base", "b", "c"], done)
        assert d.state == "precision reached" and d.seeds == tuple(range(5)) and d.evaluated_at == 3


def test_seed_decision_caps_n_at_max():
    rng = np.random.default_rng(1)
    stored = values(rng, {"base": 0, "a": 0.5}, 4.0, range(3))  # per-seed noise far above the precision
    d = seed_decision(RULE, "base", ["base", "a"], stored)
    assert d.state == "waiting" and d.seeds == tuple(range(10)) and d.evaluated_at == 3  # N capped at max 10
    assert "1 comparison capped at max 10" in d.reason
    stored = values(rng, {"base": 0, "a": 0.5}, 4.0, range(10))
    diffs = [stored["a"][s] - stored["base"][s] for s in range(3)]
    assert stein_n(diffs, hi=10**6) > 10
    d = seed_decision(RULE, "base", ["base", "a"], stored)
    assert d.state == "max reached" and d.seeds == tuple(range(10)) and d.required == {"a": 10}
    assert "max reached: 10 seeds; 1 planned 95% half-width" in d.reason


def test_seed_decision_waits_for_running_cells_and_counts_failures_as_settled():
    rng = np.random.default_rng(2)
    stored = values(rng, {"base": 0, "a": 1.0}, 0.02, range(3))
    del stored["a"][1]  # queued or running
    d = seed_decision(RULE, "base", ["base", "a"], stored)
    assert d.state == "waiting" and d.pending == (("a", 1),) and d.seeds == (0, 1, 2) and not d.stopped
    d = seed_decision(RULE, "base", ["base", "a"], stored, failed=[("a", 1)])  # failed: settled
    assert d.state == "precision reached" and d.evaluated_at == 3  # 2 pairs left: t(0.975, 1) s0 still narrow
    d = seed_decision(RULE, "base", ["base", "a"], {"base": stored["base"], "a": {0: 50.0}},
                            failed=[("a", 1), ("a", 2)])
    assert d.required == {"a": 10} and d.state == "waiting"  # one first-stage pair: no SD, run to max


def test_seed_decision_is_a_function_of_first_stage_values_only():
    rng = np.random.default_rng(3)
    stored = values(rng, {"base": 0, "a": 3.0}, 0.3, range(5))
    first = seed_decision(RULE, "base", ["base", "a"], stored)
    mirrored = {"base": stored["base"], "a": {s: 2 * stored["base"][s] - v for s, v in stored["a"].items()}}
    assert seed_decision(RULE, "base", ["base", "a"], mirrored) == first  # the sign of the effect: no matter
    extra = {v: {**vals, 8: 99.0} for v, vals in stored.items()}  # a value beyond the current seeds: not looked at
    assert seed_decision(RULE, "base", ["base", "a"], extra).seeds == first.seeds
    # the same stored values in any order (another driver, a restart) give the same decision
    shuffled = {v: dict(reversed(list(vals.items()))) for v, vals in reversed(list(stored.items()))}
    assert seed_decision(RULE, "base", ["a", "base"], shuffled) == first


def test_two_stage_comparison_by_hand():
    """Stein's final test: the mean over all seeds, the SD of the first-stage seeds, df = n0 - 1."""
    a = {0: 3.0, 1: 5.0, 2: 4.0, 3: 10.0, 4: 4.5}
    b = {s: 0.0 for s in range(5)}
    c = stats.compare(a, b, first_stage=3)
    s0, mean = 1.0, (3 + 5 + 4 + 10 + 4.5) / 5  # SD of 3, 5, 4 is 1
    assert c.first_stage == 3 and c.df == 2 and c.n == 5 and c.seeds == tuple(range(5))
    assert c.estimate == pytest.approx(mean) and c.se == pytest.approx(s0 / math.sqrt(5))
    half = sp.t.ppf(0.975, 2) * s0 / math.sqrt(5)
    assert (c.low, c.high) == (pytest.approx(mean - half), pytest.approx(mean + half))
    assert c.p == pytest.approx(2 * sp.t.sf(mean / (s0 / math.sqrt(5)), 2))
    low, high, p = stein_test(mean, s0, 5, 2)  # the vectorised kernel gives the same numbers
    assert (low, high, p) == (pytest.approx(c.low), pytest.approx(c.high), pytest.approx(c.p))
    assert stats.compare(a, b).df == 4  # without first_stage: the ordinary paired t-test
    assert stats.compare({0: 1.0, 5: 2.0, 6: 3.0}, {0: 0.0, 5: 0.0, 6: 0.0}, first_stage=3).test == "none"
    term = Term("main", ("x",), "1 − 0", {(1,): 1.0, (0,): -1.0})
    assert estimate_term(term, {(1,): a, (0,): b}, first_stage=3) == stats.one_sample(
        [a[s] for s in range(5)], seeds=list(range(5)), first_stage=3)


@pytest.mark.parametrize("fields, message", [
    ({"start": 3, "max": 10, "step": 2}, "seeds.precision: is required"),
    ({"start": 1, "precision": 1.0}, "seeds.start: must be >= 2"),
    ({"start": 4, "max": 3, "precision": 1.0}, "seeds.max: must be >= start"),
    ({"start": 3, "step": 0, "precision": 1.0}, "seeds.step: must be >= 1"),
    ({"start": 3, "precision": -1}, "seeds.precision: must be > 0"),
    ({"start": 3, "precision": 1, "min": 2}, "seeds.min: unknown key"),
])
def test_seed_rule_is_strict(fields, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        from_dict(SeedRule, fields, prefix="seeds")


# -- sign-flip test, Benjamini-Hochberg, simultaneous intervals, equivalence, wording, bimodality --------------


def test_sign_flip_counts_sign_patterns_by_hand():
    # [1, 2, 3]: the 8 signed sums are +-6, +-4, +-2, +-0 -> |sum| >= 6 in 2 of 8 patterns.
    t = stats.sign_flip_test([1, 2, 3])
    assert (t.p, t.min_p, t.n, t.exact) == (0.25, 0.25, 3, True)
    # [1, -2, 3]: observed |sum| 2; |sums| over the 8 patterns: 6, 4, 2, 0, 0, 2, 4, 6 -> 6 of 8 are >= 2.
    assert stats.sign_flip_test([1, -2, 3]).p == 0.75
    # [1, 1, 2]: observed 4; sums 4, 2, 0, -2 (x2 each with ties): |sum| >= 4 in 2 of 8; a tie 1 vs 1 is counted in.
    assert stats.sign_flip_test([1, 1, 2]).p == 0.25
    # [2, -1, -1]: observed sum 0, and every pattern's |sum| is >= 0: p = 1.
    assert stats.sign_flip_test([2, -1, -1]).p == 1.0


def test_sign_flip_smallest_p_and_the_dense_table4_case():
    dense = [-20, -78, -79, -79, -79]  # dense Table 4 "w/o shifting": all negative, n = 5
    t = stats.sign_flip_test(dense)
    assert t.p == t.min_p == 2 / 32 and not t.can_reject(0.05)  # the t-test says p < 0.01; this cannot go below
    assert stats.sign_flip_test(list(range(1, 8))).min_p == pytest.approx(2 / 128)  # 0.0156 at n = 7
    assert stats.sign_flip_test([0.0, 1.0, 2.0]).min_p == 0.5  # a zero difference has no sign: 2 * 2 of 8
    assert math.isnan(stats.sign_flip_test([]).p)
    # brute force over every pattern with itertools on random data
    rng = np.random.default_rng(4)
    d = rng.normal(0.3, 1, size=9)
    import itertools as it

    sums = [abs(sum(s * x for s, x in zip(signs, np.abs(d)))) for signs in it.product((-1, 1), repeat=9)]
    assert stats.sign_flip_test(d).p == pytest.approx(np.mean([s >= abs(d.sum()) - 1e-9 for s in sums]))


def test_sign_flip_monte_carlo_above_20_values():
    rng = np.random.default_rng(5)
    d = rng.normal(0.0, 1.0, size=25)
    t = stats.sign_flip_test(d)
    assert not t.exact and t.min_p == pytest.approx(2 / 2**25)
    # the normal approximation of the permutation distribution: sum ~ N(0, sum d^2)
    z = abs(d.sum()) / math.sqrt((d**2).sum())
    assert t.p == pytest.approx(2 * sp.norm.sf(z), abs=0.03)
    assert stats.sign_flip_test(d) == t  # seeded


def test_benjamini_hochberg_by_hand():
    p = [0.01, 0.04, 0.03, 0.20, math.nan]
    # sorted 0.01, 0.03, 0.04, 0.20 (m = 4): m p / k = 0.04, 0.06, 0.0533, 0.20; step-up min from the top:
    # 0.20, 0.0533, 0.0533, 0.04 -> back in input order
    q = stats.benjamini_hochberg(p)
    assert q[:4] == [pytest.approx(0.04), pytest.approx(0.04 * 4 / 3), pytest.approx(0.04 * 4 / 3),
                     pytest.approx(0.20)]
    assert math.isnan(q[4])
    assert stats.benjamini_hochberg([0.5, 0.9]) == [pytest.approx(0.9), pytest.approx(0.9)]
    assert stats.benjamini_hochberg([0.6, 0.8, 0.9]) == [pytest.approx(0.9)] * 3
    assert stats.benjamini_hochberg([0.9, 0.95]) == [pytest.approx(0.95)] * 2
    assert stats.benjamini_hochberg([0.7]) == [0.7] and stats.benjamini_hochberg([]) == []
    # never below the raw p, never above Holm's
    rng = np.random.default_rng(6)
    raw = list(rng.uniform(0, 0.2, size=12))
    q, h = stats.benjamini_hochberg(raw), stats.holm(raw)
    assert all(r <= x + 1e-15 <= y + 2e-15 for r, x, y in zip(raw, q, h))


def test_simultaneous_interval_is_bonferroni_and_matches_holm():
    c = stats.one_sample([1.0, 2.0, 4.0])  # mean 7/3, s 1.5275, se 0.8819, df 2
    low, high = stats.simultaneous_interval(c, 3)
    half = sp.t.ppf(1 - 0.05 / 6, 2) * np.std([1, 2, 4], ddof=1) / math.sqrt(3)
    assert (low, high) == (pytest.approx(7 / 3 - half), pytest.approx(7 / 3 + half))
    assert stats.simultaneous_interval(c, 1) == (pytest.approx(c.low), pytest.approx(c.high))
    # an interval excluding 0 implies Holm rejects, over random families
    rng = np.random.default_rng(7)
    for _ in range(200):
        comps = [stats.one_sample(rng.normal(rng.uniform(0, 3), 1, size=4)) for _ in range(3)]
        adjusted = stats.holm([x.p for x in comps])
        for x, p in zip(comps, adjusted):
            lo, hi = stats.simultaneous_interval(x, 3)
            if lo > 0 or hi < 0:
                assert p <= 0.05
    assert all(math.isnan(v) for v in stats.simultaneous_interval(stats.one_sample([1.0]), 2))


def test_equivalence_two_one_sided_tests_by_hand():
    c = stats.one_sample([0.1, -0.2, 0.3, 0.0])  # mean 0.05, s 0.2082, se 0.1041, df 3
    se = np.std([0.1, -0.2, 0.3, 0.0], ddof=1) / 2
    p_low, p_high = sp.t.sf((0.05 + 0.5) / se, 3), sp.t.cdf((0.05 - 0.5) / se, 3)
    assert stats.equivalence(c, 0.5) == pytest.approx(max(p_low, p_high))
    assert stats.equivalence(c, 0.5) == pytest.approx(sp.t.sf(0.45 / se, 3))  # the upper side is the binding one
    # the duality: p <= alpha exactly when the 90% interval lies inside the margin
    ninety = stats.one_sample([0.1, -0.2, 0.3, 0.0], level=0.90)
    for margin in (0.2, 0.3, 0.35, 0.4, 0.6):
        inside = -margin < ninety.low and ninety.high < margin
        assert stats.equivalent(c, margin, 0.05) == inside
    assert stats.equivalence(stats.one_sample([1.0, 1.0]), 2.0) == 0.0  # no spread, inside
    with pytest.raises(ValueError, match="margin must be > 0"):
        stats.equivalence(c, 0.0)


def test_power_statement_wording():
    assert stats.power_statement(0.1619) == "this design had 80% power for |Δ| ≥ 0.162"
    assert stats.power_statement(114.9, metric_range=100, unit=" mIoU") == (
        "uninformative (80% power only for |Δ| ≥ 115 mIoU, beyond the metric's range of 100 mIoU)")
    assert stats.power_statement(12.5, metric_range=100) == "this design had 80% power for |Δ| ≥ 12.5"
    assert stats.power_statement(math.nan) == "no test (fewer than 2 seeds)"
    assert stats.power_statement(math.inf).startswith("uninformative")


def test_bimodal_dense_table4_and_normal_data():
    assert stats.bimodal([-20, -78, -79, -79, -79])
    assert stats.bimodal_groups([-20, -78, -79, -79, -79]) == (4, 1)
    assert not stats.bimodal([-1.2, -0.4, 0.3, 0.9, 1.6])
    assert not stats.bimodal([-20, -78, -79])  # too few values to tell
    assert not stats.bimodal([2.0, 2.0, 2.0, 2.0])
    assert stats.bimodal_groups([0.1, 0.2, 0.3, 0.4]) is None
    # the rule's false alarms on normal samples: 1.4% at n = 5, < 0.1% at n = 8 (the documented figures)
    rng = np.random.default_rng(8)
    for n, most in ((5, 0.02), (8, 0.003)):
        fired = np.mean([stats.bimodal(rng.normal(size=n)) for _ in range(4000)])
        assert fired <= most


def test_statistics_modules_import_without_torch():
    """stats, seeds (the stopping rule the driver, the power command and the report read) and contrasts are
    pure numpy/scipy: importing them loads neither torch nor lightning."""
    code = ("import sys, swin_lit.stats, swin_lit.seeds, swin_lit.contrasts; "
            "print(sorted(m for m in ('torch', 'lightning') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
