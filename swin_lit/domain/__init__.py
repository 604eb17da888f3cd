"""The domain types every layer shares, importable without torch, Optuna or the CLI.

- ``metrics``: what a result path means (direction, range, unit, label): ``test.top1``, ``flops``, ...
- ``task``: a task's facts (its split metrics, its primary score, its data sources) and the registry that
  names each task's implementation (``swin_lit.tasks``), so no layer compares a task's name.
- ``cell``: a cell's id (variant x seed, a search trial, a transfer target), built and parsed in one place.
- ``spec`` (with its ``sections``): the ablation spec, written and read back (``Spec.from_stored``) as one type.
"""
