"""The columns of a report's per-metric comparison table (key -> heading); a spec's ``report.columns`` picks
those that ``table.tex`` shows (report.md and cells.csv keep all of them)."""

from __future__ import annotations

from swin_lit.domain.spec import DEFAULT_LATEX_COLUMNS

COMPARISON_COLUMNS = {
    "n": "n",  # finished / planned seeds
    "mean": "mean ± std",
    "delta": "Δ [95% CI] unadjusted",
    "simultaneous": "simultaneous 95% CI",  # Bonferroni over the Holm family: matches the verdicts
    "p": "p",  # paired t-test (Welch where fewer than 2 seeds are shared)
    "p_holm": "p (Holm)",
    "sign_flip": "sign-flip p",  # exact paired sign-flip test, with its smallest attainable p
    "verdict": "verdict",
    "paper_delta": "paper Δ",
    "reproduction": "vs the paper",  # reproduction or mechanism-check verdict
}
__all__ = ["COMPARISON_COLUMNS", "DEFAULT_LATEX_COLUMNS"]
