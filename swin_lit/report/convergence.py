"""Has the training converged? The objective's validation curve over the last fifth of the epochs, per variant.

A comparison of final numbers means little when a variant is still climbing: a later epoch could reorder it. For
each variant this reads the runs' histories (the per-epoch validation value of the objective, ``val_top1`` for
``test.top1``), averages the seeds epoch by epoch, and measures how far that mean curve moves over the last fifth
of the epochs: from epoch ``E - 1 - k`` to the last epoch ``E - 1``, ``k = ceil(E / 5)``. The movement is each
seed's least-squares trend over those k + 1 epochs times k, averaged over the seeds, with its t-interval over
seeds (seeds are the independent units, as in the comparisons); not the difference of the curve's two ends, which
at a plateau carries the epoch-to-epoch jitter of a small validation split (a model guessing half of 500 images
moves one seed's top-1 by about 1.6 points per epoch). Verdicts: "settled" when the movement is under
``TOLERANCE`` points; "still moving" (up or down) when it is at least that and its t-test against 0 is resolved
(p <= alpha, or no test: a single seed, or seeds that agree exactly); otherwise "within noise": the trend is not
distinguishable from the jitter with these seeds. The tolerance applies to the percent metrics (top-1, top-5,
mIoU, pixel accuracy); other objectives get the numbers without a verdict.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from swin_lit import stats
from swin_lit import study as contract
from swin_lit.report.data import StudyData
from swin_lit.report.tables import Table, format_p, short_label

TOLERANCE = 1.0  # points of a percent metric
PERCENT_METRICS = ("top1", "top5", "miou", "aacc")


def curve_key(data: StudyData) -> str:
    """The history field of the objective's validation value (``val_top1``)."""
    return contract.intermediate_metric(data.objective).replace(".", "_")


def curves(data: StudyData, key: str) -> pd.DataFrame:
    """Long frame (variant, seed, epoch, value) of one history field over the finished runs."""
    rows = [{"variant": variant, "seed": seed, "epoch": int(p["epoch"]), "value": float(p[key])}
            for (variant, seed), history in data.histories.items() for p in history
            if p.get(key) is not None and p.get("epoch") is not None]
    return pd.DataFrame(rows, columns=["variant", "seed", "epoch", "value"])


def convergence(data: StudyData) -> pd.DataFrame:
    """One row per variant with a history: epochs, window start, the mean curve's value at the window's start
    and end, the movement (mean over seeds of trend x k) with its 95% interval and p, the mean curve's range over
    the window, and the verdict (settled / still moving / within noise / no verdict / too few epochs)."""
    key = curve_key(data)
    frame = curves(data, key)
    percent = key.split("_", 1)[-1] in PERCENT_METRICS
    out = []
    for variant in data.variants:
        runs = frame[frame["variant"] == variant]
        if runs.empty:
            continue
        mean = runs.groupby("epoch")["value"].mean().sort_index()
        epochs = int(mean.index.max()) + 1
        k = math.ceil(epochs / 5)
        start = epochs - 1 - k
        row = {"variant": variant, "key": key, "seeds": int(runs["seed"].nunique()), "epochs": epochs,
               "from_epoch": max(start, 0), "start": math.nan, "end": float(mean.iloc[-1]), "movement": math.nan,
               "low": math.nan, "high": math.nan, "p": math.nan, "range": math.nan, "verdict": "too few epochs"}
        if start >= 0 and start in mean.index:
            window = mean.loc[start:]
            per_seed = runs[runs["epoch"] >= start].pivot_table(index="epoch", columns="seed", values="value")
            per_seed = per_seed.dropna(axis=1)  # seeds with every epoch of the window
            trends = [float(np.polyfit(per_seed.index.to_numpy(float), per_seed[c].to_numpy(float), 1)[0] * k)
                      for c in per_seed.columns]
            test = stats.one_sample(trends, seeds=list(per_seed.columns))
            row.update(start=float(mean.loc[start]), movement=test.estimate, low=test.low, high=test.high,
                       p=test.p, range=float(window.max() - window.min()))
            if not percent:
                row["verdict"] = "no verdict (not a percent metric)"
            elif abs(test.estimate) < TOLERANCE:
                row["verdict"] = "settled"
            elif not math.isfinite(test.p) or test.p <= data.alpha:  # no p: one seed, or every seed the same
                row["verdict"] = f"still moving ({'up' if test.estimate > 0 else 'down'})"
            else:
                row["verdict"] = "within noise"
        out.append(row)
    return pd.DataFrame(out)


def convergence_table(data: StudyData, frame: pd.DataFrame) -> Table | None:
    if frame.empty:
        return None
    f = lambda x: "—" if not math.isfinite(x) else f"{round(x, 2) + 0.0:+.2f}"  # noqa: E731 - no "-0.00"
    g = lambda x: "—" if not math.isfinite(x) else f"{x:.2f}"  # noqa: E731
    rows = [[short_label(r.variant), str(r.seeds), f"{r.from_epoch}–{r.epochs - 1}", g(r.start), g(r.end),
             f"{f(r.movement)} [{f(r.low)}, {f(r.high)}]", format_p(r.p),
             g(r.range), r.verdict] for r in frame.itertuples()]
    key = frame["key"].iloc[0]
    caption = (f"Convergence, study {data.name}: {key} (the objective's validation value) over the last fifth of "
               f"the epochs (epochs counted from 0). start / end: the mean over seeds at the window's first and last "
               f"epoch; movement: each seed's least-squares trend over the window times its length in epochs, mean "
               f"over seeds [95% t-interval], p: its t-test against 0; range: max − min of the mean curve in the "
               f"window. Settled: |movement| < {TOLERANCE:g} point; still moving: at least that and p ≤ "
               f"{data.alpha:g}; within noise: neither.")
    return Table("Convergence", caption,
                 ["variant", "seeds", "epochs", "start", "end", "movement [95% CI]", "p", "range", "verdict"], rows,
                 f"tab:{data.name}:convergence")


def convergence_line(frame: pd.DataFrame) -> str | None:
    """'**Convergence**: 3 of 4 variants settled (...); within noise: ...; still moving: ...'."""
    judged = frame[frame["verdict"].isin(["settled", "within noise"]) | frame["verdict"].str.startswith("still")] \
        if len(frame) else frame
    if judged.empty:
        return None
    settled = int((judged["verdict"] == "settled").sum())
    text = (f"**Convergence**: {settled} of {len(judged)} variants settled (their val trend moves < {TOLERANCE:g} "
            f"point over the last fifth of the epochs)")
    for label, rows in (("within noise", judged[judged["verdict"] == "within noise"]),
                        ("still moving", judged[judged["verdict"].str.startswith("still")])):
        if len(rows):
            text += f"; {label}: " + ", ".join(f"{short_label(r.variant)} {r.movement:+.2f} [{r.low:+.2f}, "
                                               f"{r.high:+.2f}]" for r in rows.itertuples())
    if (judged["verdict"].str.startswith("still")).any():
        text += "; a longer run could change the comparisons of the variants still moving"
    return text + "."
