"""A study's paper checks: each comparison with the paper's Δ beside it, judged as a mechanism check (embedded
data) or a reproduction (natural data) by the rules of ``swin_lit.report.reproduction``.

In a study's report "resolved" is the study's Holm verdict and the interval the simultaneous (Bonferroni) one of
its family, clipped to what the metric allows; the paper's noise is the binomial half-width of its reference
number on its test set (``swin_lit.report.setting``); untestable: ceiling or floor of both means, or the paired Δ
still moving at the end of training (the objective only, ``swin_lit.report.convergence``).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from swin_lit import stats
from swin_lit.domain.metrics import metric as metric_facts
from swin_lit.report import reproduction as rp
from swin_lit.report.compare import MetricComparison, paper_key
from swin_lit.report.convergence import converged
from swin_lit.report.data import StudyData
from swin_lit.report.fmt import clip_difference, short_metric
from swin_lit.report.setting import paper_noise


def study_kind(data: StudyData) -> str:
    return rp.kind_of(data.data_config.get("source"))


def _mean(values: dict) -> float:
    return float(np.mean(list(values.values()))) if values else math.nan


def judge(kind: str, metric: str, paper_delta: float, paper_base: float, source: str | None, verdict: str,
          higher: bool, estimate: float, interval: tuple[float, float], mean_a: float, mean_b: float,
          chance: float | None, is_converged: bool | None) -> tuple[str, float, str | None]:
    """(verdict, the paper's noise, why untestable) of one check."""
    short = short_metric(metric)
    noise = paper_noise(source, paper_base) if metric_facts(short).percent else math.nan
    why = rp.untestable_reason(short, mean_a, mean_b, chance, is_converged)
    if kind == rp.MECHANISM:
        return rp.mechanism_verdict(paper_delta, noise, verdict, higher, why), noise, why
    resolved = verdict in (stats.BETTER, stats.WORSE)
    return rp.reproduction_verdict(paper_delta, noise, estimate, *interval, resolved, why), noise, why


def comparison_checks(data: StudyData, comparisons: list[MetricComparison],
                      convergence: pd.DataFrame) -> list[rp.PaperCheck]:
    kind = study_kind(data)
    source = data.paper.source if data.paper is not None else None
    chance = 100 / data.num_classes if data.num_classes else None
    out = []
    for mc in comparisons:
        key = paper_key(data, mc.metric)
        if key is None:
            continue
        base_paper = (data.paper.rows.get(data.baseline) or {}).get(key, math.nan)
        base = mc.values.get(data.baseline, {})
        for variant, pdelta in mc.paper_delta.items():
            if not math.isfinite(pdelta):
                continue
            c = mc.comparisons[variant]
            is_conv = converged(convergence, variant) if mc.metric == data.objective else None
            verdict, noise, why = judge(kind, mc.metric, pdelta, base_paper, source, mc.verdicts[variant], mc.higher,
                                        c.estimate, mc.clipped_simultaneous[variant],
                                        _mean(mc.values.get(variant, {})), _mean(base), chance, is_conv)
            out.append(rp.PaperCheck(kind, mc.metric, variant, data.baseline, pdelta, base_paper, noise, verdict,
                                     why))
    return out


def transfer_checks(data: StudyData, tests: pd.DataFrame) -> pd.DataFrame:
    """The transfer tests with their ``reproduction`` column filled (a copy)."""
    if tests.empty:
        return tests
    kind = study_kind(data)
    tp = data.transfer_paper
    source = tp.source if tp is not None else None
    metric = f"test.{data.transfer_metric}"
    out = tests.copy()
    verdicts = []
    for _, r in tests.iterrows():
        if not np.isfinite(r["paper_delta"]):
            verdicts.append("")
            continue
        interval = clip_difference(r["sim_low"], r["sim_high"], metric, r["versus_mean"])
        verdict, _, _ = judge(kind, metric, r["paper_delta"], r["paper_base"], source, r["verdict"], True,
                              r["delta"], interval, r["mean"], r["versus_mean"], data.transfer_chance, None)
        verdicts.append(verdict)
    out["reproduction"] = verdicts
    return out


def check_lookup(checks: list[rp.PaperCheck]) -> dict[tuple[str, str], str]:
    return {(c.metric, c.variant): c.verdict for c in checks}
