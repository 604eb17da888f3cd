"""Ablation studies: a spec (variants x seeds) planned into one Optuna study and run by worker processes.

- ``spec``: the typed ablation spec (``ablations/*.yaml``) and the cells it plans, validated up front.
- ``store``: the Optuna storage side: planning, claiming, heartbeats, stale-trial recovery, cell states.
- ``worker``: a long-lived worker process (imports torch once, forks one child per cell).
- ``command``: ``swin-lit ablate``.
"""
