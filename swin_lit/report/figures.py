"""Report figures (matplotlib, Agg): ours with 95% intervals, the paper's differences on a Δ axis of their own
marker, learning curves, transfer curves beside the paper's, and the interaction plot of a factorial.

Single-panel figures are ``FIGSIZE`` inches at ``DPI`` (960 x 600 pixels), two-panel ones ``WIDE`` (1440 x 600),
saved without tight cropping so their size is fixed.
"""

from __future__ import annotations

import math
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd

from swin_lit import stats
from swin_lit.domain.metrics import metric as metric_facts
from swin_lit.report import captions, convergence
from swin_lit.report.compare import MetricComparison, values_by_variant
from swin_lit.report.data import StudyData
from swin_lit.report.factorial import cell_values, keyed_levels
from swin_lit.report.fmt import factor_label, higher_is_better, short_label
from swin_lit.report.tables import paper_source
from swin_lit.report.transfer import transfer_columns, transfer_rows, transfer_values

FIGSIZE = (6.4, 4.0)
WIDE = (9.6, 4.0)
DPI = 150
VERDICT_COLOURS = {stats.BETTER: "C2", stats.WORSE: "C3", stats.NOT_RESOLVED: "0.45"}


def _errors(c: stats.Comparison, metric: str) -> tuple[float, float]:
    """(below, above) error-bar lengths of a mean's interval, clipped to the metric's range (top-1 0..100)."""
    low, high = metric_facts(metric).low, metric_facts(metric).high
    below = c.estimate - max(c.low, low) if np.isfinite(c.low) else 0.0
    above = min(c.high, high) - c.estimate if np.isfinite(c.high) else 0.0
    return max(below, 0.0), max(above, 0.0)


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def metric_figure(data: StudyData, mc: MetricComparison, path: Path) -> Path:
    """Left: every variant's seeds (dots) and mean with its 95% t-interval. Right: Δ vs the baseline with the
    95% interval of the paired difference, coloured by verdict; the paper's Δ vs its baseline as a marker on the
    same Δ axis (never its absolute numbers beside ours)."""
    plt = _plt()
    fig, (ax, dx) = plt.subplots(1, 2, figsize=WIDE, dpi=DPI, layout="constrained", sharey=True,
                                 gridspec_kw={"width_ratios": [1, 1]})
    variants = data.variants
    y = np.arange(len(variants))[::-1]  # baseline on top
    labels = []
    paper_labelled = False
    for yi, variant in zip(y, variants):
        values = np.array(list(mc.values.get(variant, {}).values()), dtype=float)
        colour = "C0" if variant != data.baseline else "k"
        if len(values):
            ax.scatter(values, np.full(len(values), yi), s=12, color=colour, alpha=0.4, zorder=2)
            c = stats.one_sample(values)
            below, above = _errors(c, mc.metric)
            xerr = [[below], [above]] if np.isfinite(c.low) else None
            ax.errorbar(c.estimate, yi, xerr=xerr, fmt="o", color=colour, capsize=4, markersize=6, zorder=3)
        else:
            ax.text(0.02, yi, "missing", transform=ax.get_yaxis_transform(), va="center", color="0.4", fontsize=8,
                    style="italic")
        labels.append(f"{short_label(variant)} (n={len(values)})")
        if variant == data.baseline:
            dx.text(0.02, yi, "baseline", transform=dx.get_yaxis_transform(), va="center", color="0.3", fontsize=8)
            continue
        comp, test = mc.comparisons[variant], mc.tests[variant]
        if np.isfinite(comp.estimate):
            colour = VERDICT_COLOURS.get(test.verdict, "0.45")
            xerr = [[comp.estimate - comp.low], [comp.high - comp.estimate]] if np.isfinite(comp.low) else None
            dx.errorbar(comp.estimate, yi, xerr=xerr, fmt="o", color=colour, capsize=4, markersize=6, zorder=3)
        pdelta = mc.paper_delta.get(variant, math.nan)
        if np.isfinite(pdelta):
            dx.scatter([pdelta], [yi - 0.18], marker="D", s=30, facecolor="none", edgecolor="C1", zorder=4,
                       label=None if paper_labelled else f"paper Δ ({paper_source(data)})")
            paper_labelled = True
    dx.axvline(0, color="0.3", lw=0.8, ls="--")
    ax.set_yticks(y, labels, fontsize=8)
    ax.set_ylim(-0.7, len(variants) - 0.3)
    better = "higher" if mc.higher else "lower"
    ax.set_xlabel(f"{mc.metric} ({better} is better)")
    ax.set_title(captions.FIGURE_SEEDS.fill(), fontsize=9)
    dx.set_xlabel(captions.FIGURE_DELTA_AXIS.fill(metric=mc.metric))
    dx.set_title(captions.FIGURE_DELTA_TITLE.fill(alpha=captions.setting(data.alpha)), fontsize=9)
    for axis in (ax, dx):
        axis.grid(axis="x", alpha=0.3)
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], marker="o", ls="", color=c, label=v) for v, c in VERDICT_COLOURS.items()]
    if paper_labelled:
        handles.append(Line2D([], [], marker="D", ls="", markerfacecolor="none", markeredgecolor="C1",
                              label=captions.FIGURE_PAPER_DELTA.fill()))
    dx.legend(handles=handles, fontsize=7, loc="best")
    fig.suptitle(f"{data.name}: {mc.metric}" + (f" (paper: {paper_source(data)})" if paper_labelled else ""),
                 fontsize=10)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def learning_curves(data: StudyData, path: Path, key: str = "val_top1") -> Path | None:
    """A validation metric of the runs' histories (``key``, e.g. val_top1, val_miou) vs epoch per variant: mean
    over seeds as a line, min-max over seeds as a band."""
    curves = convergence.curves(data, key).rename(columns={"value": key})
    if curves.empty:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=FIGSIZE, dpi=DPI, layout="constrained")
    for i, variant in enumerate(v for v in data.variants if v in set(curves["variant"])):
        g = curves[curves["variant"] == variant].groupby("epoch")[key]
        agg = g.agg(["mean", "min", "max", "count"])
        colour = f"C{i % 10}"
        n = curves.loc[curves["variant"] == variant, "seed"].nunique()
        ax.plot(agg.index, agg["mean"], color=colour, lw=1.6, label=f"{short_label(variant)} (n={n})")
        ax.fill_between(agg.index, agg["min"], agg["max"], color=colour, alpha=0.18, lw=0)
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel(key.replace("_", " "))
    ax.set_title(captions.FIGURE_CURVES.fill(study=data.name, key=key.replace("_", " ")),
                 fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def transfer_figure(data: StudyData, summary: pd.DataFrame, path: Path) -> Path | None:
    """Left: our test top-1 (segmentation: mIoU) vs the transfer ratio per (variant, method), mean with the 95%
    t-interval over seeds, solid without fine-tuning, dashed with, 1x = as trained, top-1's chance level dotted.
    Right: the paper's numbers on their own axis (its own data), at the same ratios."""
    if summary.empty:
        return None
    from matplotlib.lines import Line2D

    plt = _plt()
    tp = data.transfer_paper
    fig, axes = plt.subplots(1, 2 if tp is not None else 1, figsize=WIDE if tp is not None else FIGSIZE, dpi=DPI,
                             layout="constrained", squeeze=False)
    ax = axes[0][0]
    columns = [c for c in transfer_columns(data, summary) if c.ours is not None and c.ratio is not None]
    rows = transfer_rows(data, summary)
    trained = values_by_variant(data, f"test.{data.transfer_metric}")
    for i, (variant, method) in enumerate(rows):
        colour = f"C{i % 10}"
        for ft, style, marker in ((False, "-", "o"), (True, "--", "s")):
            points = [(1.0, list(trained.get(variant, {}).values()))] if not ft else []
            points += [(float(c.ratio), list(transfer_values(data, variant, method, *c.ours, ft).values()))
                       for c in columns]
            xs, ys, lo, hi = [], [], [], []
            for x, values in points:
                if not values:
                    continue
                c = stats.one_sample(values)
                xs.append(x)
                ys.append(c.estimate)
                below, above = _errors(c, f"test.{data.transfer_metric}")
                lo.append(below)
                hi.append(above)
            if xs:
                ax.errorbar(xs, ys, yerr=[lo, hi], color=colour, marker=marker, ls=style, capsize=3, lw=1.4)
    if data.transfer_chance is not None:
        ax.axhline(data.transfer_chance, color="0.4", ls=":", lw=1)
    geometry = next(iter(data.trained_geometry.values()), None)
    ticks = {1.0: f"1×\nW{geometry[1]},I{geometry[0]}" if geometry else "1×"}
    ticks.update({float(c.ratio): f"{captions.setting(float(c.ratio))}×\nW{c.ours[1]},I{c.ours[0]}" for c in columns})
    ax.set_xticks(list(ticks), list(ticks.values()), fontsize=8)
    ax.set_xlabel(captions.FIGURE_RATIO_AXIS.fill())
    ax.set_ylabel(f"test {data.transfer_label} (%)")
    ax.set_title(captions.FIGURE_TRANSFER_OURS.fill(study=data.name), fontsize=9)
    ax.grid(alpha=0.3)
    if tp is not None and tp.trained is not None:
        px = axes[0][1]
        ticks = {}
        for variant, cols in tp.rows.items():
            colour = next((f"C{i % 10}" for i, (v, _) in enumerate(rows) if v == variant), "0.3")  # its first row's
            for ft, style, marker in ((False, "-", "o"), (True, "--", "s")):
                pts = sorted((float(Fraction(w, tp.trained[1])), nums[1] if ft else nums[0], (img, w))
                             for (img, w), nums in cols.items() if (nums[1] if ft else nums[0]) is not None
                             and not (ft and (img, w) == tuple(tp.trained)))
                if pts:
                    px.plot([p[0] for p in pts], [p[1] for p in pts], color=colour, marker=marker, ls=style, lw=1.4)
                    ticks.update({p[0]: p[2] for p in pts})
        px.set_xticks(sorted(ticks), [f"{captions.setting(r)}×\nW{ticks[r][1]},I{ticks[r][0]}" for r in sorted(ticks)],
                      fontsize=8)
        px.set_xlabel(captions.FIGURE_PAPER_RATIO_AXIS.fill())
        px.set_ylabel(captions.FIGURE_PAPER_AXIS.fill(label=data.transfer_label))
        px.set_title(captions.FIGURE_PAPER_TITLE.fill(source=tp.source or captions.NO_STORED_SOURCE.fill()), fontsize=9)
        px.grid(alpha=0.3)
    spans = [list(a.get_xticks()) for a in axes[0]]
    for a in axes[0]:  # the same ratio axis in both panels
        a.set_xlim(min(min(t) for t in spans) - 0.2, max(max(t) for t in spans) + 0.2)
    handles = [Line2D([], [], color=f"C{i % 10}", lw=2, label=f"{short_label(v)} / {m}") for i, (v, m) in
               enumerate(rows)]
    handles += [Line2D([], [], color="0.2", marker="o", ls="-", label="without fine-tuning"),
                Line2D([], [], color="0.2", marker="s", ls="--", label="with fine-tuning")]
    if data.transfer_chance is not None:
        handles.append(Line2D([], [], color="0.4", ls=":", label=f"chance (1/{data.num_classes})"))
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 4), fontsize=7)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def interaction_figure(data: StudyData, metric: str, path: Path) -> Path | None:
    """Interaction plot of the first two factors: the mean of ``metric`` at each level of the second factor,
    one line per level of the first, with 95% t-intervals over seeds (other factors averaged per seed)."""

    if len(data.factors) < 2:
        return None
    cells = cell_values(data, metric)
    if not cells:
        return None
    levels, _, shown = keyed_levels(data)
    a, b = list(levels)[:2]
    names = list(levels)
    plt = _plt()
    fig, ax = plt.subplots(figsize=FIGSIZE, dpi=DPI, layout="constrained")
    xs = np.arange(len(levels[b]))
    for i, la in enumerate(levels[a]):
        ys, lo, hi = [], [], []
        for lb in levels[b]:
            chosen = [c for c in cells if c[names.index(a)] == la and c[names.index(b)] == lb]
            seeds = set.intersection(*(set(cells[c]) for c in chosen)) if chosen else set()
            c = stats.one_sample([float(np.mean([cells[x][s] for x in chosen])) for s in sorted(seeds)])
            ys.append(c.estimate)
            below, above = _errors(c, metric)
            lo.append(below)
            hi.append(above)
        ax.errorbar(xs + (i - 0.5) * 0.04, ys, yerr=[lo, hi], marker="o", capsize=4, lw=1.6, color=f"C{i}",
                    label=f"{factor_label(a)}={shown[a][la]}")
    ax.set_xticks(xs, [f"{factor_label(b)}={shown[b][lb]}" for lb in levels[b]])
    ax.set_ylabel(f"{metric} ({'higher' if higher_is_better(metric) else 'lower'} is better)")
    ax.set_title(captions.FIGURE_INTERACTION.fill(study=data.name, a=factor_label(a), b=factor_label(b), metric=metric),
                 fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def figure_name(metric: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in metric) + ".png"


def draw_all(report, folder: Path) -> list[Path]:
    """Every figure of a report (``build.Report``) into ``folder`` (created; earlier PNGs removed, except a
    prediction figure that cannot be redrawn because the run folders are not here, as in a clone of the
    repository: that one is kept and listed); returns the files of the report."""
    folder.mkdir(parents=True, exist_ok=True)
    earlier = set(folder.glob("*.png"))
    data = report.data
    written = [metric_figure(data, mc, folder / figure_name(mc.metric)) for mc in report.comparisons]
    extras = (learning_curves(data, folder / "learning_curves.png", convergence.curve_key(data)),
              interaction_figure(data, data.objective if data.objective in report.shown else report.shown[0],
                                 folder / "interaction.png") if report.shown else None,
              transfer_figure(data, report.transfer, folder / "transfer.png"))
    written += [p for p in extras if p is not None]
    if data.task_facts.dense:
        from swin_lit.report.predictions import prediction_figure

        path = folder / "predictions.png"
        drawn, why = prediction_figure(data, path)
        if drawn is not None:
            written.append(drawn)
        elif path in earlier:
            written.append(path)
            print(captions.FIGURE_KEPT.fill(why=why), file=sys.stderr)
        else:
            print(captions.FIGURE_NONE.fill(why=why), file=sys.stderr)
    for old in earlier - set(written):
        old.unlink()
    return written
