"""``SwinDataModule``: every data source behind one LightningDataModule.

``data.loader: memory``: all splits live in memory as uint8 tensors (N, C, H, W). A batch is cut by fancy
indexing (the dataset's ``__getitems__``), converted to float and standardised with the train split's
per-channel mean/std, so per-batch work is one gather and one fused multiply-add. ``data.loader: stream``
(image folders): each sample is decoded from its file by the official transforms when it is drawn
(``swin_lit.data.stream``, ``swin_lit.data.transforms``), normalised with the ImageNet mean and std. The training
order is a function of the run seed and the epoch (``EpochSampler``), so a run stopped mid-epoch resumes with
exactly the batches it had left.

Splits: the embedded data (relation scenes, anchor marks) has its own train/val/test streams. Real data
without a val split gets one held out of train (``val_fraction``, seeded by ``split_seed``); real data without
a test split is tested on its val split (``has_test`` is False then).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, Sampler, get_worker_info

from swin_lit.data import formats
from swin_lit.data.config import EMBEDDED_SOURCES, DataConfig
from swin_lit.data.formats import DataError
from swin_lit.data.marks import AnchorMarks
from swin_lit.data.synthetic import SyntheticScenes
from swin_lit.data.transforms import IMAGENET_MEAN, IMAGENET_STD

EMBEDDED_TASKS = {"synthetic": SyntheticScenes, "marks": AnchorMarks}  # data.source -> its rendered task

Arrays = tuple[torch.Tensor, torch.Tensor]  # uint8 images (N, C, H, W), int64 labels (N,)


def class_names(cfg: DataConfig) -> tuple[str, ...]:
    """Class names of the configured data, without decoding images (raises DataError for bad data)."""
    from swin_lit.data.classes import class_names as names

    return names(cfg)


def num_classes(cfg: DataConfig) -> int:
    """Number of classes of the configured data (what the model's ``num_classes`` must be)."""
    return len(class_names(cfg))


def to_channels(images: torch.Tensor, in_chans: int) -> torch.Tensor:
    """uint8 (N, C, H, W) with C in {1, 3} to ``in_chans`` channels (grey repeated; RGB to luma)."""
    c = images.shape[1]
    if c == in_chans:
        return images
    if c == 1 and in_chans == 3:
        return images.expand(-1, 3, -1, -1).contiguous()
    if c == 3 and in_chans == 1:
        weights = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
        out = torch.empty(len(images), 1, *images.shape[2:], dtype=torch.uint8)
        for start in range(0, len(images), 4096):
            chunk = images[start:start + 4096].float().mul_(weights).sum(1, keepdim=True)
            out[start:start + 4096] = chunk.add_(0.5).clamp_(0, 255).to(torch.uint8)
        return out
    raise DataError(f"cannot convert {c}-channel images to in_chans {in_chans}")


def resize_images(images: torch.Tensor, size: int) -> torch.Tensor:
    """Bicubic (anti-aliased when shrinking) resize of uint8 (N, C, H, W) to (N, C, size, size)."""
    if images.shape[-2:] == (size, size):
        return images
    out = torch.empty(*images.shape[:2], size, size, dtype=torch.uint8)
    chunk = max(1, 2**21 // (images.shape[1] * max(size, images.shape[-1]) ** 2))
    for start in range(0, len(images), chunk):
        x = images[start:start + chunk].float()
        y = F.interpolate(x, size=(size, size), mode="bicubic", align_corners=False, antialias=True)
        out[start:start + chunk] = y.round_().clamp_(0, 255).to(torch.uint8)
    return out


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


@dataclass(frozen=True)
class StreamPlan:
    """What a streamed folder's splits are, for either task's DataModule, from the listing alone (no image opened):
    ``subsets`` (split name -> the listing's split and its indices, None for all of it; a val held out of train
    where the layout has none, ``data.limit_train`` applied), ``splits`` (name -> ``StreamSplit``, test = val where
    the layout has no test split), ``holdout`` (the held-out (train, val) indices, or None), and the normalisation
    (the given statistics, else the ImageNet mean and std of the official recipes, else none)."""

    subsets: dict
    has_test: bool
    splits: dict
    holdout: tuple[torch.Tensor, torch.Tensor] | None
    mean: torch.Tensor
    std: torch.Tensor

    @classmethod
    def of(cls, found, cfg: DataConfig, given_stats: tuple[torch.Tensor, torch.Tensor] | None) -> StreamPlan:
        from swin_lit.data import stream

        n_train = len(found.splits["train"][0])
        subsets: dict[str, tuple[str, np.ndarray | None]] = {"train": ("train", None)}
        held_out = None
        if "val" in found.splits:
            subsets["val"] = ("val", None)
        else:
            keep, held = held_out = holdout(n_train, cfg.val_fraction, cfg.split_seed)
            subsets["train"], subsets["val"] = ("train", keep.numpy()), ("train", held.numpy())
        has_test = "test" in found.splits
        subsets["test"] = ("test", None) if has_test else subsets["val"]
        split, train_idx = subsets["train"]
        keep = limited(len(train_idx) if train_idx is not None else n_train, cfg.limit_train, cfg.split_seed)
        if keep is not None:
            subsets["train"] = (split, keep.numpy() if train_idx is None else train_idx[keep.numpy()])
        if given_stats is not None:
            mean, std = given_stats
        elif cfg.normalize:
            mean, std = torch.tensor(IMAGENET_MEAN), torch.tensor(IMAGENET_STD)
        else:
            mean, std = torch.zeros(3), torch.ones(3)
        splits = {name: stream.StreamSplit(len(idx) if idx is not None else len(found.splits[split][0]))
                  for name, (split, idx) in subsets.items()}
        if not has_test:
            splits["test"] = splits["val"]
        return cls(subsets, has_test, splits, held_out, mean, std)


def _whole_batch(batch):
    """collate_fn for datasets whose ``__getitems__`` already returns the finished batch."""
    return batch


class ImageTensorDataset(Dataset):
    """In-memory uint8 images (N, C, H, W) and labels; items and batches come out as normalised float.

    ``(x - mean) / std`` with ``mean``/``std`` (C,) in [0, 1] units; optional random horizontal flips.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, mean: torch.Tensor, std: torch.Tensor,
                 hflip: bool = False, seed: int = 0):
        self.images, self.labels = images, labels
        self.scale = (1.0 / (255.0 * std)).view(-1, 1, 1)
        self.shift = (-mean / std).view(-1, 1, 1)
        self.hflip = hflip
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        x, y = self.__getitems__([index])
        return x[0], int(y[0])

    def __getitems__(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """A batch: float32 (B, C, H, W) and int64 (B,)."""
        idx = torch.as_tensor(indices, dtype=torch.long)
        x = self.images.index_select(0, idx).float().mul_(self.scale).add_(self.shift)
        if self.hflip:
            # In worker processes the DataLoader seeds torch's global RNG per worker (from its generator).
            gen = self.generator if get_worker_info() is None else None
            flip = torch.rand(len(idx), generator=gen) < 0.5
            x[flip] = x[flip].flip(-1)
        return x, self.labels.index_select(0, idx)


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


class SwinDataModule(pl.LightningDataModule):
    """Data for one run at ``img_size`` x ``img_size`` with ``in_chans`` (1 or 3) channels.

    ``prepare_data`` validates the source (``DataError`` on missing/empty/corrupt data) and fills the
    decode cache; ``setup`` loads all splits into memory. After setup: ``num_classes``, ``class_names``,
    ``mean``/``std`` (C,), ``splits`` (name -> uint8 images, labels), ``holdout_indices`` (train, val
    indices into the on-disk train split when val was held out, else None).
    """

    def __init__(self, cfg: DataConfig, img_size: int, in_chans: int = 3, seed: int = 0,
                 stats: tuple[torch.Tensor, torch.Tensor] | None = None, transform=None, optim=None):
        super().__init__()
        if img_size < 1:
            raise DataError(f"img_size must be >= 1, got {img_size}")
        if in_chans not in (1, 3):
            raise DataError(f"in_chans must be 1 (grey) or 3 (RGB) for image data, got {in_chans}")
        self.cfg, self.img_size, self.in_chans = cfg, img_size, in_chans
        self._given_stats = stats
        self.splits: dict[str, Arrays] = {}
        self.has_test = True
        self.holdout_indices: tuple[torch.Tensor, torch.Tensor] | None = None
        self._class_names: tuple[str, ...] | None = None
        self.mean = self.std = None
        self.seed = seed  # the run seed: training order and flips
        self.stream = cfg.loader == "stream"
        if self.stream and in_chans != 3:
            raise DataError(f"data.loader=stream reads RGB images; in_chans is {in_chans}: set data.loader=memory")
        # stream: the per-sample transform (``ClassificationTransform``; None: the recipe from ``optim``, an
        # ``OptimConfig``, whose RandAugment and random erasing then run per sample, in the official order, and not
        # in the training step), the listing, the held-out and limited subsets (indices into the on-disk splits),
        # the skip log (set by the run: its folder)
        self.transform, self.optim = transform, optim
        self.listing = None
        self._subsets: dict[str, tuple[str, np.ndarray | None]] = {}
        self.skip_log = None

    # -- validation and loading --------------------------------------------------------------------
    def check(self) -> None:
        """Fail fast, before any decoding, if the configured data is missing or malformed."""
        if self.stream:
            self._listing()
        elif self.cfg.source not in EMBEDDED_SOURCES:
            formats.check(self.cfg.source, Path(self.cfg.root))

    def _listing(self):
        if self.listing is None:
            from swin_lit.data import stream

            self.listing = stream.listing(self.cfg.source, self.cfg.root, self.cfg.cache_dir)
            self._class_names = self.listing.class_names
        return self.listing

    def prepare_data(self) -> None:
        """Validate the data and, for image folders held in memory, decode them into the cache once."""
        self.check()
        if self.cfg.source == "folder" and not self.stream:
            formats.read_folder(self.cfg.root, self.img_size, self.cfg.cache_dir)

    def setup(self, stage: str | None = None) -> None:
        """Load every split into memory (idempotent)."""
        if self.splits:
            return
        if self.stream:
            return self._setup_stream()
        splits = self._load_embedded() if self.cfg.source in EMBEDDED_SOURCES else self._load_real()
        train_x, train_y = splits["train"]
        keep = limited(len(train_y), self.cfg.limit_train, self.cfg.split_seed)
        if keep is not None:
            splits["train"] = (train_x[keep], train_y[keep])
        if self._given_stats is not None:
            self.mean, self.std = self._given_stats
        elif self.cfg.normalize:
            self.mean, self.std = channel_stats(splits["train"][0])
        else:
            self.mean, self.std = torch.zeros(self.in_chans), torch.ones(self.in_chans)
        self.splits = splits

    def _setup_stream(self) -> None:
        """The listing's splits as index subsets (no image opened); ImageNet statistics (the transforms')."""
        plan = StreamPlan.of(self._listing(), self.cfg, self._given_stats)
        self._subsets, self.has_test, self.splits = plan.subsets, plan.has_test, plan.splits
        self.mean, self.std = plan.mean, plan.std
        if plan.holdout is not None:
            self.holdout_indices = plan.holdout

    def stream_transform(self):
        """The per-sample transform of the stream: the one given, else the official recipe
        (``ClassificationTransform``) with ``optim``'s RandAugment and random erasing (none without ``optim``), the
        flip when ``data.hflip``, and this module's mean and std."""
        if self.transform is not None:
            return self.transform
        from swin_lit.data.transforms import ClassificationTransform

        kw = {"hflip": 0.5 if self.cfg.hflip else 0.0, "mean": tuple(self.mean.tolist()),
              "std": tuple(self.std.tolist())}
        if self.optim is not None:
            return ClassificationTransform.from_optim(self.optim, self.img_size, **kw)
        return ClassificationTransform(size=self.img_size, randaugment=None, random_erasing=0.0, **kw)

    def _load_embedded(self) -> dict[str, Arrays]:
        cfg = self.cfg
        train_size = min(cfg.train_size, cfg.limit_train or cfg.train_size)
        sizes = {"train": train_size, "val": cfg.val_size, "test": cfg.test_size}
        dataset = EMBEDDED_TASKS[cfg.source]
        self._class_names = dataset.class_names
        out = {}
        for split, size in sizes.items():
            images, labels = dataset(size, self.img_size, cfg.synthetic_seed, split).render_all()
            out[split] = (to_channels(images, self.in_chans), labels)
        return out

    def _load_real(self) -> dict[str, Arrays]:
        cfg = self.cfg
        data = formats.read(cfg.source, Path(cfg.root), self.img_size, cfg.cache_dir)
        self._class_names = data.class_names

        def convert(split: formats.Split) -> Arrays:
            images = torch.from_numpy(np.ascontiguousarray(split.images)).permute(0, 3, 1, 2)
            images = to_channels(resize_images(images.contiguous(), self.img_size), self.in_chans)
            return images, torch.from_numpy(split.labels)

        train = convert(data.train)
        out = {"train": train}
        if data.val is None:
            self.holdout_indices = holdout(len(train[1]), cfg.val_fraction, cfg.split_seed)
            keep, held = self.holdout_indices
            out["train"] = (train[0][keep], train[1][keep])
            out["val"] = (train[0][held], train[1][held])
        else:
            out["val"] = convert(data.val)
        self.has_test = data.test is not None
        out["test"] = convert(data.test) if data.test is not None else out["val"]
        return out

    # -- derived ------------------------------------------------------------------------------------
    @property
    def class_names(self) -> tuple[str, ...]:
        if self._class_names is None:
            self._class_names = class_names(self.cfg)
        return self._class_names

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def resolution(self, img_size: int) -> SwinDataModule:
        """The same data at another image size (synthetic: the same scenes re-rendered; real: resized),
        normalised with this module's statistics when it is set up, so inputs stay comparable."""
        stats = (self.mean, self.std) if self.splits else self._given_stats
        return SwinDataModule(self.cfg, img_size, self.in_chans, self.seed, stats=stats, optim=self.optim)

    # -- loaders -------------------------------------------------------------------------------------
    def dataset(self, split: str, train: bool = False) -> ImageTensorDataset:
        """The normalising dataset of ``split`` (train/val/test); flips only when ``train``."""
        if not self.splits:
            self.setup()
        if self.stream:
            from swin_lit.data import stream

            on_disk, indices = self._subsets[split]
            transform = self.stream_transform()
            bad = stream.BadFiles(self.cfg.on_error, self.skip_log)
            return stream.StreamImages(self.listing, on_disk, indices, transform.train if train else transform.eval,
                                       self.seed, train, bad)
        images, labels = self.splits[split]
        hflip = train and self.cfg.hflip
        return ImageTensorDataset(images, labels, self.mean, self.std, hflip, seed=self.seed + 1)

    def _loader(self, dataset: ImageTensorDataset, batch_size: int, shuffle: bool) -> DataLoader:
        workers = self.cfg.num_workers
        rank, world = replicas(self.trainer)
        sampler = None
        if shuffle or world > 1:  # (seed, epoch) keys let a stream draw each sample's randomness per epoch
            sampler = EpochSampler(len(dataset), self.seed, shuffle, rank, world, keys=self.stream and shuffle)
        return LazyDataLoader(
            dataset,
            batch_size=batch_size,
            sampler=sampler,
            # the loader draws its workers' base seed from here, not from the global RNG: creating an
            # iterator then leaves the model's random stream alone (exact mid-epoch resume)
            generator=torch.Generator().manual_seed(self.seed),
            drop_last=shuffle and len(dataset) >= batch_size,
            num_workers=workers,
            persistent_workers=workers > 0,
            pin_memory=torch.cuda.is_available(),
            collate_fn=_whole_batch,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.dataset("train", train=True), self.cfg.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.dataset("val"), self.cfg.eval_batch_size, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.dataset("test"), self.cfg.eval_batch_size, shuffle=False)
