"""The sampling and batching machinery every DataModule shares (both tasks, both loaders).

- ``EpochSampler``: the order of an epoch, a function of (seed, epoch) only; under DDP each rank's share; the
  (epoch, index) keys a dataset draws per-sample randomness from; the batches a resumed run skips.
- ``LazyDataLoader``: a DataLoader whose iterator (and its workers' first draws) starts at its first batch.
- ``holdout`` / ``limited``: the held-out val split and the ``limit_train`` subset, fixed by ``split_seed``.
- ``channel_stats``: exact per-channel mean and std of uint8 images.
"""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, Sampler

from swin_lit.errors import DataError


def whole_batch(batch):
    """collate_fn for datasets whose ``__getitems__`` already returns the finished batch."""
    return batch


def channel_stats(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact per-channel mean and std (C,) in [0, 1] units of uint8 (N, C, H, W), via 256-bin histograms."""
    values = torch.arange(256, dtype=torch.float64) / 255
    means, stds = [], []
    for c in range(images.shape[1]):
        hist = torch.bincount(images[:, c].reshape(-1), minlength=256).double()
        total = hist.sum()
        mean = (hist * values).sum() / total
        var = (hist * values.square()).sum() / total - mean.square()
        means.append(mean)
        stds.append(var.clamp(min=1e-12).sqrt())
    return torch.stack(means).float(), torch.stack(stds).float()


def holdout(n: int, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Deterministic disjoint (train, val) index tensors (sorted) holding out ``fraction`` of ``n``."""
    n_val = max(1, round(n * fraction))
    if n_val >= n:
        raise DataError(f"only {n} training images: too few to hold out val_fraction {fraction}")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return perm[n_val:].sort().values, perm[:n_val].sort().values


def limited(n: int, limit: int | None, seed: int) -> torch.Tensor | None:
    """Indices (sorted) of ``limit_train``'s subset of ``n`` training samples, or None to keep them all.

    A fixed random draw (``seed``: the data's ``split_seed``), not the first ``limit``: real training sets are
    stored class by class, so their head would hold only the first classes."""
    if limit is None or limit >= n:
        return None
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:limit].sort().values


class EpochSampler(Sampler):
    """The order of one epoch, a function of (seed, epoch) only: a permutation (``shuffle``) or 0..n-1.

    Lightning calls ``set_epoch`` at each epoch start; ``skip_batches`` drops the batches a resumed run has
    already trained on (once). Under DDP (``world`` > 1) the order is padded by its own head to a multiple of
    ``world`` (as torch's DistributedSampler) and rank ``rank`` takes every ``world``-th item from position
    ``rank``: the ranks' shares are disjoint and cover each sample once per epoch (the padding repeats up to
    ``world - 1``). With ``keys`` it yields (epoch, index) pairs, for datasets that draw per-sample randomness
    from them."""

    def __init__(self, n: int, seed: int, shuffle: bool = True, rank: int = 0, world: int = 1,
                 keys: bool = False) -> None:
        if not 0 <= rank < world:
            raise ValueError(f"rank must be in [0, {world}), got {rank}")
        self.n, self.seed, self.shuffle, self.rank, self.world, self.keys = n, seed, shuffle, rank, world, keys
        self.epoch, self.skip = 0, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def skip_batches(self, batches: int, batch_size: int) -> None:
        self.skip = batches * batch_size

    def __len__(self) -> int:
        return -(-self.n // self.world) - self.skip

    def order(self) -> torch.Tensor:
        """This rank's share of the epoch's order (no skip)."""
        if self.shuffle:
            order = torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed * 100_003 + self.epoch))
        else:
            order = torch.arange(self.n)
        if self.world > 1:
            pad = -self.n % self.world
            order = torch.cat([order, order.repeat(pad // max(self.n, 1) + 1)[:pad]])[self.rank :: self.world]
        return order

    def __iter__(self):
        skip, self.skip = self.skip, 0
        indices = self.order()[skip:].tolist()
        if self.keys:
            return ((self.epoch, i) for i in indices)
        return iter(indices)


class LazyDataLoader(DataLoader):
    """A DataLoader whose iterator starts at its first batch rather than when it is created.

    Lightning creates the first epoch's iterator of a fit (``FitLoop.setup_data``) before it sets the sampler's
    epoch and before ``on_train_start`` gives the sampler a resumed run's position; an iterator with worker
    processes draws its first indices from the sampler as soon as it is created, so a resume (or an epoch set
    late) would start from the wrong place. Deferring the start to the first ``next`` makes the order depend on
    (seed, epoch, position) only, with or without workers."""

    def __iter__(self):
        return _LazyIterator(super().__iter__)


class _LazyIterator:
    def __init__(self, start) -> None:
        self._start, self._iterator = start, None

    def __iter__(self):
        return self

    def __next__(self):
        if self._iterator is None:
            self._iterator = self._start()
        return next(self._iterator)

    def __getattr__(self, name: str):  # e.g. Lightning's ``_shutdown_workers`` once the iterator has started
        iterator = self.__dict__.get("_iterator")
        if iterator is None:
            raise AttributeError(name)
        return getattr(iterator, name)


def replicas(trainer=None) -> tuple[int, int]:
    """(rank, world size) of the running job: the Trainer's, else torch.distributed's, else (0, 1)."""
    if trainer is not None:
        return int(trainer.global_rank), int(trainer.world_size)
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1
