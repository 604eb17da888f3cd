"""Ablation studies: a spec (variants x seeds) planned into one Optuna study and run by worker processes.

- ``spec``: the typed ablation spec (``ablations/*.yaml``) and the cells it plans, validated up front.
- ``store``: the Optuna storage side: planning, claiming, liveness (Optuna's heartbeat on RDB storages,
  lease files beside a journal), stale-trial recovery, cell states.
- ``kinds``: what a cell of each kind runs (train, transfer) and how its result is read.
- ``worker``: a long-lived worker process (imports torch once, forks one child per cell): one path for
  every cell kind.
- ``slurm``: the worker as a SLURM array job (submitit).
- ``command``: ``swin-lit ablate``.

What the study holds and what readers may rely on is ``swin_lit.study`` (the contract).
"""
