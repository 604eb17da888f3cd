"""The SLURM job of ``swin-lit ablate --launcher slurm``: one ablation worker per array task.

submitit pickles an ``ArrayWorker`` and its worker arguments, and each task of the array runs the same worker
loop as a local worker (``swin_lit.ablate.worker.main``) against the shared storage, so a cluster job gets
the same guarantees: no cell twice, nothing lost. On a preemption or a time limit submitit sends the job a
signal; the worker hands its cell back (a fresh WAITING trial that resumes the run's checkpoint) and
submitit requeues the job (``checkpoint``), whose worker then goes on with the study.
"""

from __future__ import annotations

import submitit


class ArrayWorker(submitit.helpers.Checkpointable):
    """``ArrayWorker()(argv)`` runs one worker; resubmitted as is after a preemption or timeout."""

    def __call__(self, argv: list[str]) -> int:
        from swin_lit.ablate import worker

        return worker.main(list(argv))
