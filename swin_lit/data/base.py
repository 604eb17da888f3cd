"""``DataModule``: what every task's data shares, behind one LightningDataModule.

A task's DataModule (``SwinDataModule``: images and class labels; ``SegDataModule``: images and label maps) is a
subclass that gives only what differs: how its splits are read into memory (``read``), cut (``subset``) and
measured (``split_stats``), and the datasets that serve them (``memory_dataset``, ``stream_dataset``). This class
does the rest, the same way for both:

- **sources**: ``data.source`` names a reader (``swin_lit.data.sources``) that checks, names the classes of and
  reads the data; ``data.loader: stream`` serves a folder layout from its listing (``swin_lit.data.listing``), each
  sample decoded when it is drawn (``swin_lit.data.stream``); ``memory`` holds the decoded splits.
- **splits**: the embedded data has its own train / val / test; real data without a val split gets one held out
  of train (``val_fraction``, seeded by ``split_seed``; ``holdout_indices``), real data without a test split is
  tested on its val split (``has_test`` False); ``limit_train`` keeps a fixed random subset of train.
- **statistics**: the given ones (``stats``: another resolution's), else the train split's per-channel mean and
  std (memory) or the ImageNet ones of the official recipes (stream), else none (``normalize: false``).
- **loaders**: ``EpochSampler`` (the order a function of (seed, epoch); each rank's share; (epoch, index) keys for
  per-sample draws; a resumed run's skip) in a ``LazyDataLoader``; the skip log of unreadable files
  (``skip_log``, set by the run).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from swin_lit.data.config import DataConfig
from swin_lit.data.loaders import EpochSampler, LazyDataLoader, holdout, limited, replicas, whole_batch
from swin_lit.data.sources import Loaded, reader
from swin_lit.data.transforms import IMAGENET_MEAN, IMAGENET_STD


@dataclass(frozen=True)
class StreamPlan:
    """What a streamed folder's splits are, from the listing alone (no image opened): ``subsets`` (split name ->
    the listing's split and its indices, None for all of it; a val held out of train where the layout has none,
    ``data.limit_train`` applied), ``splits`` (name -> ``StreamSplit``, test = val where the layout has no test
    split), ``holdout`` (the held-out (train, val) indices, or None), and the normalisation (the given statistics,
    else the ImageNet mean and std of the official recipes, else none)."""

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


class DataModule(pl.LightningDataModule):
    """The data of one run (see the module docstring). After ``setup``: ``splits`` (name -> the task's split),
    ``class_names``, ``num_classes``, ``mean`` / ``std`` (C,), ``has_test``, ``holdout_indices``."""

    targets: ClassVar[str]  # the kind of targets its samples carry (``Task.targets``): what it reads from a source

    def __init__(self, cfg: DataConfig, seed: int = 0, stats: tuple[torch.Tensor, torch.Tensor] | None = None,
                 transform=None) -> None:
        super().__init__()
        self.cfg, self.seed = cfg, seed  # the run seed: training order and per-sample draws
        self.reader = reader(cfg.source)
        self._given_stats = stats
        self.splits: dict = {}
        self.has_test = True
        self.holdout_indices: tuple[torch.Tensor, torch.Tensor] | None = None
        self._class_names: tuple[str, ...] | None = None
        self._loaded: Loaded | None = None  # read (and checked) ahead of setup
        self.mean = self.std = None
        self.stream = cfg.loader == "stream"
        self.transform = transform  # stream: the per-sample transform (None: the task's recipe)
        self.listing = None
        self._subsets: dict[str, tuple[str, np.ndarray | None]] = {}
        self.skip_log = None  # stream: where skipped files are recorded (set by the run: its folder)

    # -- what a task's DataModule gives ------------------------------------------------------------------
    channels: int = 3  # of the images it serves

    def read(self) -> Loaded:
        """Every split in memory, as the task serves it."""
        raise NotImplementedError

    def length(self, split) -> int:
        """The number of samples of a split in memory."""
        return len(split)

    def subset(self, split, indices: torch.Tensor):
        """The samples of ``split`` at ``indices``."""
        raise NotImplementedError

    def split_stats(self, split) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-channel mean and std (C,) in [0, 1] units of a split in memory."""
        raise NotImplementedError

    def memory_dataset(self, split: str, train: bool) -> Dataset:
        raise NotImplementedError

    def stream_dataset(self, on_disk: str, indices: np.ndarray | None, train: bool, bad) -> Dataset:
        raise NotImplementedError

    def keyed(self, dataset: Dataset, train: bool) -> bool:
        """Whether the training sampler hands ``dataset`` (epoch, index) keys (per-sample random draws)."""
        return train and self.stream

    def eval_batch_size(self, split: str) -> int:
        return self.cfg.eval_batch_size

    # -- validation and loading ----------------------------------------------------------------------
    def check(self) -> None:
        """Fail fast (DataError, one line), before any decoding, if the configured data is missing or malformed;
        a stream reads its listing (file names only; ``swin-lit data check`` reads every file)."""
        if self.stream:
            self._listing()
        else:
            self.reader.check(self.cfg)

    def _listing(self):
        if self.listing is None:
            from swin_lit.data import stream

            self.listing = stream.listing(self.cfg.source, self.cfg.root, self.cfg.cache_dir)
            self._class_names = self.listing.class_names
        return self.listing

    def prepare_data(self) -> None:
        """Validate the data and, for files held in memory, decode them (through the decode cache) once."""
        self.check()
        if not self.stream and not self.reader.embedded and self._loaded is None:
            self._loaded = self.read()

    def setup(self, stage: str | None = None) -> None:
        """The splits: held in memory, or a stream's index subsets of its listing (idempotent)."""
        if self.splits:
            return
        if self.stream:
            plan = StreamPlan.of(self._listing(), self.cfg, self._given_stats)
            self._subsets, self.has_test, self.splits = plan.subsets, plan.has_test, plan.splits
            self.mean, self.std, self.holdout_indices = plan.mean, plan.std, plan.holdout
            return
        cfg = self.cfg
        loaded, self._loaded = self._loaded or self.read(), None
        self._class_names = loaded.class_names
        splits = {"train": loaded.train}
        if loaded.val is None:
            keep, held = self.holdout_indices = holdout(self.length(loaded.train), cfg.val_fraction, cfg.split_seed)
            splits["train"], splits["val"] = self.subset(loaded.train, keep), self.subset(loaded.train, held)
        else:
            splits["val"] = loaded.val
        self.has_test = loaded.test is not None
        splits["test"] = loaded.test if loaded.test is not None else splits["val"]
        keep = limited(self.length(splits["train"]), cfg.limit_train, cfg.split_seed)
        if keep is not None:
            splits["train"] = self.subset(splits["train"], keep)
        if self._given_stats is not None:
            self.mean, self.std = self._given_stats
        elif cfg.normalize:
            self.mean, self.std = self.split_stats(splits["train"])
        else:
            self.mean, self.std = torch.zeros(self.channels), torch.ones(self.channels)
        self.splits = splits

    # -- derived ------------------------------------------------------------------------------------
    @property
    def class_names(self) -> tuple[str, ...]:
        if self._class_names is None:
            if self.stream:
                self._listing()  # the listing's names (ADE20K: objectInfo150, no label map decoded)
            else:
                self._class_names = self.reader.class_names(self.cfg, self.targets)
        return self._class_names

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    # -- loaders -------------------------------------------------------------------------------------
    def dataset(self, split: str, train: bool = False) -> Dataset:
        """The dataset of ``split`` (train/val/test) whose batches come out normalised; augmented when ``train``."""
        if not self.splits:
            self.setup()
        if self.stream:
            from swin_lit.data import stream

            on_disk, indices = self._subsets[split]
            return self.stream_dataset(on_disk, indices, train, stream.BadFiles(self.cfg.on_error, self.skip_log))
        return self.memory_dataset(split, train)

    def loader(self, dataset: Dataset, batch_size: int, train: bool) -> DataLoader:
        workers = self.cfg.num_workers
        rank, world = replicas(self.trainer)
        sampler = None
        if train or world > 1:
            sampler = EpochSampler(len(dataset), self.seed, train, rank, world, keys=self.keyed(dataset, train))
        return LazyDataLoader(
            dataset,
            batch_size=batch_size,
            sampler=sampler,
            # the loader draws its workers' base seed from here, not from the global RNG: creating an
            # iterator then leaves the model's random stream alone (exact mid-epoch resume)
            generator=torch.Generator().manual_seed(self.seed),
            drop_last=train and len(dataset) >= batch_size,
            num_workers=workers,
            persistent_workers=workers > 0,
            pin_memory=torch.cuda.is_available(),
            collate_fn=whole_batch,
        )


    def train_dataloader(self) -> DataLoader:
        return self.loader(self.dataset("train", train=True), self.cfg.batch_size, train=True)

    def val_dataloader(self) -> DataLoader:
        return self.loader(self.dataset("val"), self.eval_batch_size("val"), train=False)

    def test_dataloader(self) -> DataLoader:
        return self.loader(self.dataset("test"), self.eval_batch_size("test"), train=False)
