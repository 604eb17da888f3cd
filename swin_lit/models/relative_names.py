"""The names of the relative position bias kinds, importable without torch (config validation reads them).

``RELATIVE_BIASES`` is the registry itself (name -> ``RelativeBias`` class): ``position.register`` fills it where
each kind is defined. So that a ``SwinConfig`` validates without importing torch, the kinds the package defines
in ``position.py`` are also listed here by name with the one fact validation needs (whether their coordinates are
normalised by a window, i.e. whether ``pretrained_window_sizes`` applies); a test pins that list to the
registered classes. A kind registered later (a user's, a test's) is known once its module is imported.
"""

from __future__ import annotations

RELATIVE_BIASES: dict[str, type] = {}

# name -> normalised, for the kinds defined in swin_lit.models.position (tests/test_dense_backbone.py pins it)
BUILT_IN: dict[str, bool] = {"table": False, "cpb_linear": True, "cpb_log": True}


def known_kinds() -> dict[str, bool]:
    """Every relative-bias kind name -> whether its coordinates are window-normalised ("none" excluded)."""
    return {**BUILT_IN, **{name: bool(cls.normalised) for name, cls in RELATIVE_BIASES.items()}}


def normalised_kinds() -> list[str]:
    """Names of the kinds whose coordinates a window normalises (they read ``pretrained_window_sizes``)."""
    return [name for name, normalised in known_kinds().items() if normalised]
