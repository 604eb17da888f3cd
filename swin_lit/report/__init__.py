"""Reports of a study: tables, factorial effects, transfer tables and figures, built from the study storage.

The only input is the Optuna storage (trials and their user attrs, see ``swin_lit.record``), never
TensorBoard files. ``build_report`` is the entry point; ``swin-lit report`` drives it.
"""

from __future__ import annotations

__all__ = ["build_report", "load_study"]


def build_report(*args, **kwargs):
    from swin_lit.report.build import build_report as _build

    return _build(*args, **kwargs)


def load_study(*args, **kwargs):
    from swin_lit.report.data import load_study as _load

    return _load(*args, **kwargs)
