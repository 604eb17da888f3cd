"""The columns of a report's per-metric comparison table (key -> heading); a spec's ``report.columns`` picks
those that ``table.tex`` shows (report.md and cells.csv keep all of them)."""

from __future__ import annotations

COMPARISON_COLUMNS = {
    "n": "n",  # finished / planned seeds
    "mean": "mean ± std",
    "delta": "Δ [95% CI]",
    "p": "p",  # paired t-test (Welch where fewer than 2 seeds are shared)
    "p_holm": "p (Holm)",
    "verdict": "verdict",
    "paper_delta": "paper Δ",
    "reproduction": "reproduction",
}
DEFAULT_LATEX_COLUMNS = ("n", "mean", "delta", "p_holm", "verdict", "paper_delta", "reproduction")
