"""``SegDataModule``: segmentation data (the embedded scenes with label maps, CamVid, ADE20K) behind one
LightningDataModule, batched like the classification data.

Splits are ``SegSplit`` (uint8 pixels and label maps in memory, ``swin_lit.data.segmentation``). Training batches
are crops of the model's ``img_size``: with ``data.augment`` through ``SegAugment`` (random resize, crop, flip,
photometric jitter; each sample's draws a function of (run seed, epoch, index)), otherwise the images as they are
(the embedded scenes are rendered at ``img_size``). Evaluation batches are whole images at their own size,
``eval_batch_size`` at a time where a split's images share one size, one at a time otherwise. A batch is
normalised with the train split's per-channel mean and std (``channel_stats``), as the classification data.

``data.loader: stream`` (the default for the folder layouts): no split is decoded ahead; each pair is decoded
from its files when it is drawn and augmented the same way (``swin_lit.data.stream``), normalised with the
ImageNet mean and std; evaluation batches are single whole images.

The training order is ``EpochSampler``'s (seed, epoch) permutation, handed to the dataset as (epoch, index) keys,
so a run stopped mid-epoch resumes with exactly the batches, and augmentation draws, it had left.
Real data without a val split (ADE20K) validates on a held-out share of train (``val_fraction``); real data
without a test split is tested on its val split (``has_test`` False), like the classification data.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from swin_lit.data.config import EMBEDDED_SOURCES, DataConfig
from swin_lit.data.datamodule import (
    EMBEDDED_TASKS,
    EpochSampler,
    LazyDataLoader,
    StreamPlan,
    _whole_batch,
    channel_stats,
    holdout,
    limited,
    replicas,
)
from swin_lit.data.formats import DataError
from swin_lit.data.seg_augment import AugmentedPairs, SegAugment, SegmentationPairs
from swin_lit.data.segmentation import IGNORE_INDEX, SegSplit, pack_split

Batch = tuple[torch.Tensor, torch.Tensor]  # float32 images (B, 3, H, W), int64 labels (B, H, W)


def pack(images: torch.Tensor, labels: torch.Tensor) -> SegSplit:
    """uint8 images (N, 3, H, W) and label maps (N, H, W) as a ``SegSplit`` (names: the indices)."""
    return pack_split(list(images.permute(0, 2, 3, 1).numpy()), list(labels.numpy()),
                      tuple(str(i) for i in range(len(images))))


def subset(split: SegSplit, indices: torch.Tensor) -> SegSplit:
    """The images of ``split`` at ``indices``, packed anew."""
    idx = [int(i) for i in indices]
    return pack_split([split.image(i) for i in idx], [split.label(i) for i in idx],
                      tuple(split.names[i] for i in idx))


def split_stats(split: SegSplit) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std (3,) in [0, 1] units of every pixel of a split."""
    pixels = torch.from_numpy(split.pixels).view(-1, 3).T.contiguous()  # (3, all pixels)
    return channel_stats(pixels.view(1, 3, -1, 1))


class NormalisedPairs(Dataset):
    """A pair dataset's batches as float images normalised with (mean, std) and int64 labels."""

    def __init__(self, pairs: Dataset, mean: torch.Tensor, std: torch.Tensor) -> None:
        self.pairs = pairs
        self.scale = (1.0 / (255.0 * std)).view(-1, 1, 1)
        self.shift = (-mean / std).view(-1, 1, 1)

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitems__(self, keys: Sequence) -> Batch:
        if hasattr(self.pairs, "__getitems__"):
            images, labels = self.pairs.__getitems__(keys)
        else:
            images, labels = map(torch.stack, zip(*(self.pairs[k] for k in keys)))
        return images.float().mul_(self.scale).add_(self.shift), labels.long()


class SegDataModule(pl.LightningDataModule):
    """Segmentation data for one run whose model is built for ``img_size`` (H, W) crops.

    After ``setup``: ``splits`` (train / val / test ``SegSplit``), ``class_names``, ``mean`` / ``std`` (3,)."""

    def __init__(self, cfg: DataConfig, img_size: int | Sequence[int], seed: int = 0,
                 stats: tuple[torch.Tensor, torch.Tensor] | None = None) -> None:
        super().__init__()
        self.cfg, self.seed = cfg, seed
        self.img_size = (img_size, img_size) if isinstance(img_size, int) else tuple(int(s) for s in img_size)
        self._given_stats = stats
        self.splits: dict[str, SegSplit] = {}
        self.has_test = True
        self._class_names: tuple[str, ...] | None = None
        self._read = None  # real data decoded by check()
        self.mean = self.std = None
        self.stream = cfg.loader == "stream"
        self.transform = None  # stream: the pair transform (None: ``stream.SegStreamTransform`` with data.augment)
        self.listing = None
        self._subsets: dict[str, tuple[str, np.ndarray | None]] = {}
        self.skip_log = None

    # -- validation and loading --------------------------------------------------------------------
    def check(self) -> None:
        """Fail fast (DataError, one line) before any training: the layout (missing folders, unpaired files,
        label maps of another size) from the file headers, then every label value, as the data is decoded into
        its cache (kept for ``setup``). A stream checks the layout only (file names; ``swin-lit data check``
        reads every file)."""
        if self.stream:
            self._listing()
        elif self.cfg.source not in EMBEDDED_SOURCES and self._read is None:
            from swin_lit.data import segmentation

            segmentation.scan(self.cfg.source, Path(self.cfg.root))
            self._read = segmentation.read(self.cfg.source, Path(self.cfg.root), self.cfg.cache_dir)

    def _listing(self):
        if self.listing is None:
            from swin_lit.data import stream

            self.listing = stream.listing(self.cfg.source, self.cfg.root, self.cfg.cache_dir)
            self._class_names = self.listing.class_names
        return self.listing

    def prepare_data(self) -> None:
        self.check()

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        if self.stream:
            return self._setup_stream()
        splits = self._embedded() if self.cfg.source in EMBEDDED_SOURCES else self._real()
        keep = limited(len(splits["train"]), self.cfg.limit_train, self.cfg.split_seed)
        if keep is not None:
            splits["train"] = subset(splits["train"], keep)
        if self._given_stats is not None:
            self.mean, self.std = self._given_stats
        elif self.cfg.normalize:
            self.mean, self.std = split_stats(splits["train"])
        else:
            self.mean, self.std = torch.zeros(3), torch.ones(3)
        self.splits = splits

    def _setup_stream(self) -> None:
        """The listing's splits as index subsets (no image opened); ImageNet statistics (the transforms')."""
        plan = StreamPlan.of(self._listing(), self.cfg, self._given_stats)
        self._subsets, self.has_test, self.splits = plan.subsets, plan.has_test, plan.splits
        self.mean, self.std = plan.mean, plan.std

    def stream_transform(self):
        """The pair transform of the stream: the one given, else decode + ``data.augment`` (mmseg's recipe)."""
        if self.transform is not None:
            return self.transform
        from swin_lit.data import stream

        return stream.SegStreamTransform(stream.coding_for(self.cfg.source, len(self.class_names)), self.cfg.augment)

    def _embedded(self) -> dict[str, SegSplit]:
        cfg, size = self.cfg, self.img_size[0]
        task = EMBEDDED_TASKS[cfg.source]
        self._class_names = task.dense_class_names
        sizes = {"train": min(cfg.train_size, cfg.limit_train or cfg.train_size), "val": cfg.val_size,
                 "test": cfg.test_size}
        return {split: pack(*task(n, size, cfg.synthetic_seed, split).render_dense(np.arange(n)))
                for split, n in sizes.items()}

    def _real(self) -> dict[str, SegSplit]:
        from swin_lit.data import segmentation

        cfg = self.cfg
        data = self._read if self._read is not None else segmentation.read(cfg.source, Path(cfg.root), cfg.cache_dir)
        self._class_names = data.class_names
        out = {"train": data.train}
        if data.val is None:
            keep, held = holdout(len(data.train), cfg.val_fraction, cfg.split_seed)
            out["train"], out["val"] = subset(data.train, keep), subset(data.train, held)
        else:
            out["val"] = data.val
        self.has_test = data.test is not None
        out["test"] = data.test if data.test is not None else out["val"]
        return out

    # -- derived ------------------------------------------------------------------------------------
    @property
    def class_names(self) -> tuple[str, ...]:
        if self._class_names is None:
            from swin_lit.data.classes import class_names

            self._class_names = class_names(self.cfg, "segmentation")
        return self._class_names

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def resolution(self, img_size: int | Sequence[int]) -> SegDataModule:
        """The same data for a model built at another size (the embedded scenes re-rendered; real data as it is,
        whole images), normalised with this module's statistics so that inputs stay comparable."""
        stats = (self.mean, self.std) if self.splits else self._given_stats
        return SegDataModule(self.cfg, img_size, self.seed, stats=stats)

    # -- loaders -------------------------------------------------------------------------------------
    def dataset(self, split: str, train: bool = False) -> NormalisedPairs:
        if not self.splits:
            self.setup()
        if self.stream:
            from swin_lit.data import stream

            if train and self.cfg.augment is None:
                raise DataError("data.augment: a streamed segmentation split is read at its images' own sizes; set "
                                "data.augment (its crop = model.img_size)")
            on_disk, indices = self._subsets[split]
            transform = self.stream_transform()
            return stream.StreamPairs(self.listing, on_disk, indices, transform.train if train else transform.eval,
                                      self.seed, train, self.mean, self.std,
                                      stream.BadFiles(self.cfg.on_error, self.skip_log))
        pairs: Dataset = SegmentationPairs(self.splits[split])
        if train and self.cfg.augment is not None:
            pairs = AugmentedPairs(pairs, SegAugment(self.cfg.augment), self.seed)
        elif train and self.splits[split].size != self.img_size:
            raise DataError(f"data.augment: the {split} images are {self.splits[split].size or 'of mixed sizes'}, "
                            f"not the model's {self.img_size}: set data.augment (its crop = model.img_size)")
        return NormalisedPairs(pairs, self.mean, self.std)

    def _loader(self, dataset, batch_size: int, train: bool) -> DataLoader:
        workers = self.cfg.num_workers
        rank, world = replicas(self.trainer)
        sampler = None
        if train or world > 1:
            keys = train and (self.stream or isinstance(dataset.pairs, AugmentedPairs))
            sampler = EpochSampler(len(dataset), self.seed, train, rank, world, keys=keys)
        return LazyDataLoader(dataset, batch_size=batch_size, sampler=sampler,
                          generator=torch.Generator().manual_seed(self.seed),
                          drop_last=train and len(dataset) >= batch_size, num_workers=workers,
                          persistent_workers=workers > 0, pin_memory=torch.cuda.is_available(),
                          collate_fn=_whole_batch)

    def _eval_loader(self, split: str) -> DataLoader:
        dataset = self.dataset(split)
        same_size = self.splits[split].size is not None  # a stream does not know its sizes: one image a batch
        return self._loader(dataset, self.cfg.eval_batch_size if same_size else 1, train=False)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.dataset("train", train=True), self.cfg.batch_size, train=True)

    def val_dataloader(self) -> DataLoader:
        return self._eval_loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._eval_loader("test")


__all__ = ["SegDataModule", "IGNORE_INDEX", "pack", "subset"]
