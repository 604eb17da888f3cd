"""One number formatter and one verdict wording for every table, line and caption of a report."""

from __future__ import annotations

import math

import numpy as np

from swin_lit import stats
from swin_lit.domain.metrics import metric as metric_facts
from swin_lit.report import captions

DASH = "—"


# -- helpers -----------------------------------------------------------------------------------------------


def higher_is_better(metric: str) -> bool:
    """Direction of a metric (``swin_lit.domain.metrics``: loss, ECE and cost are minimised)."""
    return metric_facts(metric).higher_is_better


def short_metric(metric: str) -> str:
    return metric.rsplit(".", 1)[-1]


def short_label(variant: str) -> str:
    """``"model.shift=none,model.norm=pre"`` -> ``"shift=none, norm=pre"``; other names unchanged."""
    if "=" not in str(variant):
        return str(variant)
    parts = []
    for part in str(variant).split(","):
        key, _, value = part.partition("=")
        parts.append(f"{key.rsplit('.', 1)[-1]}={value}" if value else part)
    return ", ".join(parts)


def factor_label(key: str) -> str:
    return key.rsplit(".", 1)[-1]


def decimals(values, spreads=None) -> int:
    """Decimals for a column: 2 for values >= 1, else 4; more when needed to show a spread (std) at all."""
    finite = [abs(v) for v in values if v is not None and np.isfinite(v)]
    d = 2 if finite and max(finite) >= 1 else 4
    small = [abs(v) for v in (spreads if spreads is not None else []) if v is not None and np.isfinite(v) and v > 0]
    if small:
        d = max(d, min(5, math.ceil(-math.log10(min(small)))))
    return d


def num(value, decimals: int, sign: bool = False, thousands: bool = False) -> str:
    """The one number formatter of the reports: fixed decimals, an explicit sign where asked, a thousands
    separator where asked ("6,900"), never "-0.00", a dash for a missing value."""
    if value is None or not np.isfinite(value):
        return DASH
    value = round(float(value), decimals) + 0.0  # -0.0 -> 0.0
    return f"{value:{'+' if sign else ''}{',' if thousands else ''}.{decimals}f}"


def significant(value, digits: int = 3) -> str:
    """A size to ``digits`` significant digits ("1.28", "137"): parameter and image counts, whose scale varies;
    a dash for a missing value."""
    if value is None or not np.isfinite(value):
        return DASH
    return f"{float(value):.{digits}g}"


def format_p(p) -> str:
    if p is None or not np.isfinite(p):
        return DASH
    return "<0.001" if p < 0.001 else num(p, 3)


def pm(mean, std, d: int) -> str:
    if mean is None or not np.isfinite(mean):
        return DASH
    return num(mean, d) + (f" ± {num(std, d)}" if std is not None and np.isfinite(std) else "")


def span(low, high, d: int) -> str:
    """"[-5.36, +3.96]"; empty without an interval."""
    if low is None or high is None or not (np.isfinite(low) and np.isfinite(high)):
        return ""
    return f"[{num(low, d, sign=True)}, {num(high, d, sign=True)}]"


def interval_text(c: stats.Comparison, d: int, bounds: tuple[float, float] | None = None) -> str:
    """"-0.70 [-5.36, +3.96]" (the comparison's interval, or ``bounds``); the estimate alone without one."""
    low, high = bounds if bounds is not None else (c.low, c.high)
    text = num(c.estimate, d, sign=True)
    interval = span(low, high, d)
    return f"{text} {interval}" if interval else text


# -- the range of a metric, and the verdict in words ---------------------------------------------------------

def range_width(metric: str) -> float | None:
    """The widest difference the metric allows (100 points for top-1 or mIoU); None when unbounded."""
    return metric_facts(metric).range_width


def clip_difference(low: float, high: float, metric: str, base_mean: float) -> tuple[float, float]:
    """An interval of a mean difference (variant − baseline) clipped to what the metric allows: the variant's
    mean lies in the metric's range, so the difference lies in [lowest − baseline mean, highest − baseline
    mean]."""
    facts = metric_facts(metric)  # its range (``swin_lit.domain.metrics``)
    lo_m, hi_m = facts.low, facts.high
    if not np.isfinite(base_mean):
        return low, high
    return (max(low, lo_m - base_mean) if np.isfinite(low) else low,
            min(high, hi_m - base_mean) if np.isfinite(high) else high)


EQUIVALENT = "equivalent"


def verdict_text(verdict: str, detectable: float, metric: str, test: str = "paired",
                 margin: float | None = None, range_scale: float = 1, quantity: str = "Δ") -> str:
    """The verdict in words, the same in every table and line: better / worse / equivalent (within ±margin) /
    not resolved with what the design could detect ("this design had 80% power for |Δ| ≥ X"; "uninformative"
    where X exceeds the metric's range, times ``range_scale``: 2 for an interaction, a difference of differences,
    whose ``quantity`` is "effect"); without a test, why."""
    if verdict == EQUIVALENT:
        return captions.EQUIVALENT_WITHIN.fill(margin=captions.setting(margin)) if margin else EQUIVALENT
    if verdict != stats.NOT_RESOLVED:
        return verdict
    if detectable is None or not np.isfinite(detectable) and not (detectable == math.inf):
        return no_test(test)
    width = range_width(metric)
    width = range_scale * width if width is not None else None
    power = stats.power_statement(detectable, width).replace("|Δ|", f"|{quantity}|")
    return captions.NOT_RESOLVED_POWER.fill(power=power)


def no_test(kind: str) -> str:
    """Why a comparison has no test: "none" (fewer than 2 seeds), else no spread across the seeds."""
    return (captions.NO_TEST_FEW_SEEDS if kind == "none" else captions.NO_TEST_NO_SPREAD).fill()


def std(values) -> float:
    return float(np.std(values, ddof=1)) if len(values) > 1 else math.nan


def shorten(text: str, limit: int = 80) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"



def design_sentence() -> str:
    return captions.DESIGN.fill()


def sign_flip_text(p: float, min_p: float, modes: str = "", alpha: float = 0.05) -> str:
    """The exact sign-flip p with its smallest attainable p, and the warnings: "0.062 (min 0.062: cannot reach
    α = 0.05 at this n)", "; bimodal: 1 / 4 seeds" (seeds below / above the largest gap of the differences)."""
    if p is None or not np.isfinite(p):
        return DASH
    text = captions.SIGN_FLIP_MIN.fill(p=format_p(p), min_p=format_p(min_p))
    text += (captions.SIGN_FLIP_CANNOT.fill(alpha=captions.setting(alpha)) if np.isfinite(min_p) and min_p > alpha
             else ")")
    if modes:
        low, high = str(modes).split("/")
        text += captions.SIGN_FLIP_BIMODAL.fill(low=low, high=high)
    return text
