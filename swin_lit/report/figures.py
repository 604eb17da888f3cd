"""Report figures (matplotlib, Agg): per-metric points with error bars, learning curves, transfer curves.

All figures are ``FIGSIZE`` inches at ``DPI`` (960 x 600 pixels), saved without tight cropping so their
size is fixed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from swin_lit.report.data import StudyData
from swin_lit.report.tables import higher_is_better, paper_keys

FIGSIZE = (6.4, 4.0)
DPI = 150


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def short_label(variant: str) -> str:
    """``"model.shift=none,model.norm=pre"`` -> ``"shift=none, norm=pre"``; other names unchanged."""
    if "=" not in variant:
        return variant
    parts = []
    for part in variant.split(","):
        key, _, value = part.partition("=")
        parts.append(f"{key.rsplit('.', 1)[-1]}={value}" if value else part)
    return ", ".join(parts)


def metric_figure(data: StudyData, metric: str, path: Path) -> Path:
    """One row per variant: each seed as a dot, the mean ± std as a bar; the paper's number as a cross."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=FIGSIZE, dpi=DPI, layout="constrained")
    variants = data.variants
    y = np.arange(len(variants))[::-1]  # baseline on top
    paper_key = paper_keys(data).get(metric)
    paper = data.spec.get("paper") or {}
    labels, paper_labelled = [], False
    for yi, variant in zip(y, variants):
        values = data.runs.loc[data.runs["variant"] == variant, metric] if metric in data.runs else pd.Series([])
        values = pd.to_numeric(values, errors="coerce").dropna()
        colour = "C3" if variant == data.baseline else "C0"
        if len(values):
            ax.scatter(values, np.full(len(values), yi), s=12, color=colour, alpha=0.45, zorder=2)
            std = values.std(ddof=1) if len(values) > 1 else 0.0
            ax.errorbar(values.mean(), yi, xerr=std, fmt="o", color=colour, capsize=4, markersize=6, zorder=3)
        else:
            ax.text(0.01, yi, "  missing", transform=ax.get_yaxis_transform(), va="center", color="0.4",
                    fontsize=8, style="italic")
        if paper_key and (paper.get(variant) or {}).get(paper_key) is not None:
            ax.scatter([paper[variant][paper_key]], [yi], marker="x", color="k", s=40, zorder=4,
                       label=None if paper_labelled else "paper")
            paper_labelled = True
        labels.append(f"{short_label(variant)} (n={len(values)})")
    ax.set_yticks(y, labels, fontsize=8)
    ax.set_ylim(-0.7, len(variants) - 0.3)
    better = "higher" if higher_is_better(metric) else "lower"
    ax.set_xlabel(f"{metric} ({better} is better)")
    ax.set_title(f"{data.name}: {metric}, mean ± std over seeds (dots: seeds)", fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    if paper_labelled:
        ax.legend(fontsize=8, loc="best")
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def learning_curves(data: StudyData, path: Path, key: str = "val_top1") -> Path | None:
    """Validation top-1 vs epoch per variant: mean over seeds as a line, min-max over seeds as a band."""
    frames = []
    for (variant, seed), history in data.histories.items():
        for point in history:
            if point.get(key) is not None and point.get("epoch") is not None:
                frames.append({"variant": variant, "seed": seed, "epoch": point["epoch"], key: point[key]})
    if not frames:
        return None
    curves = pd.DataFrame(frames)
    plt = _plt()
    fig, ax = plt.subplots(figsize=FIGSIZE, dpi=DPI, layout="constrained")
    for i, variant in enumerate(v for v in data.variants if v in set(curves["variant"])):
        g = curves[curves["variant"] == variant].groupby("epoch")[key]
        stats = g.agg(["mean", "min", "max", "count"])
        colour = f"C{i % 10}"
        n = curves.loc[curves["variant"] == variant, "seed"].nunique()
        ax.plot(stats.index, stats["mean"], color=colour, lw=1.6, label=f"{short_label(variant)} (n={n})")
        ax.fill_between(stats.index, stats["min"], stats["max"], color=colour, alpha=0.18, lw=0)
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel(key.replace("_", " "))
    ax.set_title(f"{data.name}: {key.replace('_', ' ')} per epoch (line: mean, band: min–max over seeds)",
                 fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def transfer_figure(data: StudyData, path: Path) -> Path | None:
    """Top-1 vs target window per (variant, method): solid without fine-tuning, dashed with."""
    from swin_lit.report.tables import transfer_summary

    summary = transfer_summary(data)
    if summary.empty:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=FIGSIZE, dpi=DPI, layout="constrained")
    for i, ((variant, method), g) in enumerate(summary.groupby(["variant", "method"], sort=False)):
        g = g.sort_values(["window_size", "img_size"])
        colour = f"C{i % 10}"
        label = f"{short_label(variant)} / {method}"
        ax.errorbar(g["window_size"], g["top1 mean"], yerr=g["top1 std"].fillna(0), color=colour, marker="o",
                    capsize=3, lw=1.5, label=label)
        ft = g.dropna(subset=["top1_ft mean"])
        if len(ft):
            ax.errorbar(ft["window_size"], ft["top1_ft mean"], yerr=ft["top1_ft std"].fillna(0), color=colour,
                        marker="s", ls="--", capsize=3, lw=1.2, label=f"{label} + FT")
    windows = sorted(set(summary["window_size"].astype(int)))
    images = {w: sorted(set(summary.loc[summary["window_size"] == w, "img_size"].astype(int))) for w in windows}
    ax.set_xticks(windows, [f"W{w}, I{images[w][0]}" if len(images[w]) == 1 else f"W{w}" for w in windows])
    ax.set_xlabel("target window size")
    ax.set_ylabel("top-1 (%)")
    ax.set_title(f"{data.name}: transfer to larger windows (mean ± std over seeds)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def figure_name(metric: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in metric) + ".png"


def draw_all(data: StudyData, folder: Path) -> list[Path]:
    """Every figure of a report into ``folder`` (created); returns the files written."""
    folder.mkdir(parents=True, exist_ok=True)
    written = [metric_figure(data, m, folder / figure_name(m)) for m in data.metrics]
    extras = (learning_curves(data, folder / "learning_curves.png"), transfer_figure(data, folder / "transfer.png"))
    for extra in extras:
        if extra is not None:
            written.append(extra)
    return written
