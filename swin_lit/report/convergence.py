"""Has the comparison converged? The trend of each per-seed paired Δ over the last epochs.

A verdict compares final numbers; a variant and its baseline can both still be climbing while their difference
is already flat (or the other way round), so convergence is judged on the comparison, not on each variant. For
every variant and every seed both it and the baseline finished, this reads the validation value of the
objective per epoch (``val_top1`` for ``test.top1``) and forms the paired Δ curve d_s(e) = variant_s(e) −
baseline_s(e). Over the window of the last ``w = max(MIN_WINDOW, ceil(E / 5))`` epochs (E epochs in all) the
movement of d_s is its least-squares slope times (w − 1), the change the trend makes across the window; the
movements are summarised over seeds (the independent units) by their mean, the 95% t-interval and two tests:

- **settled**: equivalent to no movement within ±``margin`` (two one-sided tests at α: the 90% interval of the
  movement lies inside (−margin, +margin)); ``margin`` is the spec's smallest effect of interest when it gives one,
  else ``TOLERANCE`` = 1 point of a percent metric;
- **still moving** (up / down): not settled, and the movement's t-test rejects 0 at α (or there is no test: one
  seed, or every seed moved the same);
- **not judged**: neither (the seeds disagree too much to say).

Fewer than ``MIN_WINDOW`` epochs: "too short to judge". Objectives without a margin (a loss without the spec's
margin) get the numbers without a verdict. Where the learning-rate schedule anneals to (nearly) zero over the
run (cosine or poly to a floor below 5% of the peak), a flat end can be the schedule stopping rather than the
model converging: the report says so.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from swin_lit import stats
from swin_lit import study as contract
from swin_lit.domain.metrics import metric as metric_facts
from swin_lit.report import captions
from swin_lit.report.data import StudyData
from swin_lit.report.fmt import format_p, num, short_label
from swin_lit.report.render import Table

TOLERANCE = 1.0  # points of a percent metric
MIN_WINDOW = 5  # epochs
ANNEALED = 0.05  # a schedule whose floor is below this share of the peak LR anneals to (nearly) zero
SETTLED, NOT_JUDGED, TOO_SHORT = "settled", "not judged", captions.CONVERGENCE_TOO_SHORT.fill()
NO_VERDICT = captions.CONVERGENCE_NO_VERDICT.fill()


def curve_key(data: StudyData) -> str:
    """The history field of the objective's validation value (``val_top1``)."""
    return contract.intermediate_metric(data.objective).replace(".", "_")


def curves(data: StudyData, key: str) -> pd.DataFrame:
    """Long frame (variant, seed, epoch, value) of one history field over the finished runs."""
    rows = [{"variant": variant, "seed": seed, "epoch": int(p["epoch"]), "value": float(p[key])}
            for (variant, seed), history in data.histories.items() for p in history
            if p.get(key) is not None and p.get("epoch") is not None]
    return pd.DataFrame(rows, columns=["variant", "seed", "epoch", "value"])


def margin(data: StudyData) -> float | None:
    """The equivalence margin of the movement: the spec's ``margin`` (objective units), else 1 point of a
    percent metric, else None."""
    value = getattr(getattr(data, "spec", None), "margin", None)
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    return TOLERANCE if metric_facts(curve_key(data).split("_", 1)[-1]).percent else None


def window_length(epochs: int) -> int:
    return max(MIN_WINDOW, math.ceil(epochs / 5))


def judge(movements: list[float], tolerance: float | None, alpha: float) -> tuple[stats.Comparison, float, str]:
    """(the movements' one-sample comparison, TOST p against ±tolerance, the verdict)."""
    test = stats.one_sample(movements)
    if tolerance is None:
        return test, math.nan, NO_VERDICT
    if test.test == "none" and len(movements) == 1 or test.test != "none" and not math.isfinite(test.p):
        tost = 0.0 if abs(test.estimate) < tolerance else 1.0  # one seed, or every seed moved the same
    else:
        tost = stats.equivalence(test, tolerance)
    if math.isfinite(tost) and tost <= alpha:
        return test, tost, SETTLED
    if not math.isfinite(test.p) or test.p <= alpha:
        return test, tost, f"still moving ({'up' if test.estimate > 0 else 'down'})"
    return test, tost, NOT_JUDGED


def convergence(data: StudyData) -> pd.DataFrame:
    """One row per non-baseline variant with paired histories: epochs, the window, the mean paired Δ at the
    window's first and last epoch, the movement (mean over seeds) with its 95% interval, its t-test p, the TOST
    p against the margin, and the verdict."""
    key = curve_key(data)
    frame = curves(data, key)
    tolerance = margin(data)
    out = []
    base = frame[frame["variant"] == data.baseline].pivot_table(index="epoch", columns="seed", values="value")
    for variant in data.variants:
        if variant == data.baseline:
            continue
        mine = frame[frame["variant"] == variant].pivot_table(index="epoch", columns="seed", values="value")
        seeds = sorted(set(mine.columns) & set(base.columns))
        if not seeds:
            continue
        delta = (mine[seeds] - base[seeds]).dropna(how="all")
        epochs = int(delta.index.max()) + 1
        w = window_length(epochs)
        row = {"variant": variant, "key": key, "seeds": len(seeds), "epochs": epochs, "from_epoch": max(epochs - w, 0),
               "start": math.nan, "end": float(delta.iloc[-1].mean()), "movement": math.nan, "low": math.nan,
               "high": math.nan, "p": math.nan, "tost_p": math.nan, "margin": tolerance or math.nan,
               "verdict": TOO_SHORT}
        if epochs >= w and epochs >= MIN_WINDOW:
            window = delta.loc[epochs - w:].dropna(axis=1)  # seeds with every epoch of the window
            x = window.index.to_numpy(float)
            moves = [float(np.polyfit(x, window[s].to_numpy(float), 1)[0] * (w - 1)) for s in window.columns]
            test, tost, verdict = judge(moves, tolerance, data.alpha)
            row.update(start=float(window.iloc[0].mean()), end=float(window.iloc[-1].mean()), movement=test.estimate,
                       low=test.low, high=test.high, p=test.p, tost_p=tost, verdict=verdict, seeds=len(moves))
        out.append(row)
    return pd.DataFrame(out)


def anneal_note(data: StudyData) -> str | None:
    """A sentence where the LR schedule anneals to (nearly) zero over the run, else None."""
    optim = (getattr(data, "run_config", None) or {}).get("optim") or {}
    schedule, lr, floor = optim.get("schedule"), optim.get("lr"), optim.get("min_lr")
    if schedule not in ("cosine", "poly", "linear") or not lr or floor is None or floor > ANNEALED * lr:
        return None
    return captions.ANNEAL_NOTE.fill(schedule=schedule, lr=captions.setting(lr), floor=captions.setting(floor))


def convergence_table(data: StudyData, frame: pd.DataFrame) -> Table | None:
    if frame.empty:
        return None
    rows = [[short_label(r.variant), str(r.seeds), f"{r.from_epoch}–{r.epochs - 1}", num(r.start, 2, sign=True),
             num(r.end, 2, sign=True), f"{num(r.movement, 2, sign=True)} [{num(r.low, 2, sign=True)}, "
             f"{num(r.high, 2, sign=True)}]", format_p(r.p), format_p(r.tost_p), r.verdict]
            for r in frame.itertuples()]
    key = frame["key"].iloc[0]
    tol = frame["margin"].iloc[0]
    margin_text = f"±{captions.setting(tol)}" if math.isfinite(tol) else captions.CONVERGENCE_NO_MARGIN.fill()
    caption = captions.CONVERGENCE_CAPTION.fill(study=data.name, key=key, window=MIN_WINDOW, margin=margin_text,
                                                alpha=captions.setting(data.alpha))
    note = anneal_note(data)
    table = Table(captions.CONVERGENCE_TITLE.fill(), caption,
                  ["variant", "seeds", "epochs", "Δ start", "Δ end", "movement [95% CI]", "p", "TOST p", "verdict"],
                  rows, f"tab:{data.name}:convergence")
    if note:
        table.notes.append(note)
        table.caption += " " + note
    return table


def converged(frame: pd.DataFrame, variant: str) -> bool | None:
    """False where the variant's comparison is still moving, True where settled, None otherwise."""
    if frame.empty:
        return None
    hit = frame[frame["variant"] == variant]
    if hit.empty:
        return None
    verdict = hit["verdict"].iloc[0]
    return False if verdict.startswith("still") else True if verdict == SETTLED else None


def convergence_line(frame: pd.DataFrame, data: StudyData | None = None) -> str | None:
    """'**Convergence of the comparisons**: 3 of 4 settled (...); still moving: ...'."""
    if frame.empty:
        return None
    judged = frame[frame["verdict"].isin([SETTLED, NOT_JUDGED]) | frame["verdict"].str.startswith("still")]
    short = frame[frame["verdict"] == TOO_SHORT]
    if judged.empty:
        if len(short):
            return captions.CONVERGENCE_SHORT_LINE.fill(epochs=int(short["epochs"].max()), window=MIN_WINDOW)
        return None
    settled = int((judged["verdict"] == SETTLED).sum())
    tol = judged["margin"].iloc[0]
    text = captions.CONVERGENCE_LINE.fill(settled=settled, judged=len(judged), margin=captions.setting(tol),
                                          window=window_length(int(judged["epochs"].max())))
    for label, rows in (("not judged", judged[judged["verdict"] == NOT_JUDGED]),
                        ("still moving", judged[judged["verdict"].str.startswith("still")])):
        if len(rows):
            variants = ", ".join(f"{short_label(r.variant)} {num(r.movement, 2, sign=True)} "
                                 f"[{num(r.low, 2, sign=True)}, {num(r.high, 2, sign=True)}]"
                                 for r in rows.itertuples())
            text += captions.CONVERGENCE_GROUP.fill(label=label, variants=variants)
    if (judged["verdict"].str.startswith("still")).any():
        text += captions.CONVERGENCE_LONGER.fill()
    text += "."
    note = anneal_note(data) if data is not None else None
    return text + (f" {note}" if note else "")
