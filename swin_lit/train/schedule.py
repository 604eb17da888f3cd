"""The learning-rate schedule, per optimizer step: linear warmup from ``warmup_lr`` to ``lr``, then cosine or poly
(power 1) decay from ``lr`` to ``min_lr`` over the steps left.

Steps are optimizer steps: with gradient accumulation, one step is ``accumulate_grad_batches`` batches, so the
schedule has the same shape whatever the accumulation (the official code likewise divides its iterations per epoch
by the accumulation steps). The cosine is timm's ``CosineLRScheduler`` as the official code configures it
(warmup_prefix: the cosine's t_initial is the steps after the warmup); poly decays over the same span.
"""

from __future__ import annotations

import math

from swin_lit.config import OptimConfig


def warmup_steps(optim: OptimConfig, steps_per_epoch: int, total: int) -> int:
    """Optimizer steps of warmup: ``warmup_steps``, or ``warmup_epochs`` x steps per epoch (rounded down); at most
    ``total - 1``, so that the run reaches its decay."""
    if optim.warmup_steps is not None:
        steps = optim.warmup_steps
    else:
        steps = int(optim.warmup_epochs * steps_per_epoch)
    return max(min(steps, total - 1), 0)


def lr_at(optim: OptimConfig, step: int, warmup: int, total: int) -> float:
    """The learning rate for optimizer step ``step`` (0-based) of ``total``, ``warmup`` of them warming up.
    ``optim`` holds the rates the run uses (``RunConfig.effective_optim()``)."""
    if step < warmup:
        return optim.warmup_lr + (optim.lr - optim.warmup_lr) * step / warmup
    progress = min((step - warmup) / max(total - warmup, 1), 1.0)
    if optim.schedule == "poly":
        decay = 1.0 - progress
    else:
        decay = 0.5 * (1 + math.cos(math.pi * progress))
    return optim.min_lr + (optim.lr - optim.min_lr) * decay


def steps_per_epoch(batches: float, accumulate: int) -> int | None:
    """Optimizer steps in an epoch of ``batches`` training batches: Lightning steps after every ``accumulate``
    batches and once more on an epoch's last batch (a partial accumulation); None for an epoch of unknown length."""
    if not math.isfinite(batches):
        return None
    return max(math.ceil(batches / accumulate), 1)
