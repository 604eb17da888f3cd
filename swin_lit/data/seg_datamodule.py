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

import numpy as np
import torch
from torch.utils.data import Dataset

from swin_lit.data.base import DataModule
from swin_lit.data.config import DataConfig
from swin_lit.data.formats import DataError
from swin_lit.data.loaders import channel_stats
from swin_lit.data.seg_augment import AugmentedPairs, SegAugment, SegmentationPairs
from swin_lit.data.segmentation import SegSplit, pack_rendered, pack_split
from swin_lit.data.sources import Loaded

Batch = tuple[torch.Tensor, torch.Tensor]  # float32 images (B, 3, H, W), int64 labels (B, H, W)


pack = pack_rendered  # uint8 images (N, 3, H, W) and label maps (N, H, W) as a ``SegSplit``


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


class SegDataModule(DataModule):
    """Segmentation data for one run whose model is built for ``img_size`` (H, W) crops.

    After ``setup``: ``splits`` (train / val / test ``SegSplit``), ``class_names``, ``mean`` / ``std`` (3,)."""

    targets = "map"

    def __init__(self, cfg: DataConfig, img_size: int | Sequence[int], seed: int = 0,
                 stats: tuple[torch.Tensor, torch.Tensor] | None = None, transform=None) -> None:
        super().__init__(cfg, seed, stats, transform)  # transform (stream): None: ``stream.SegStreamTransform``
        self.img_size = (img_size, img_size) if isinstance(img_size, int) else tuple(int(s) for s in img_size)

    def check(self) -> None:
        """Fail fast (DataError, one line) before any training: the layout (missing folders, unpaired files,
        label maps of another size) from the file headers, then every label value, as the data is decoded into
        its cache (kept for ``setup``). A stream checks the layout only (file names; ``swin-lit data check``
        reads every file)."""
        super().check()
        if not self.stream and not self.reader.embedded and self._loaded is None:
            self._loaded = self.read()

    # -- the task's part of setup ----------------------------------------------------------------------
    def read(self) -> Loaded:
        return self.reader.read_pairs(self.cfg, self.img_size)

    def subset(self, split: SegSplit, indices: torch.Tensor) -> SegSplit:
        return subset(split, indices)

    def split_stats(self, split: SegSplit) -> tuple[torch.Tensor, torch.Tensor]:
        return split_stats(split)

    def stream_transform(self):
        """The pair transform of the stream: the one given, else decode + ``data.augment`` (mmseg's recipe)."""
        if self.transform is not None:
            return self.transform
        from swin_lit.data import stream

        return stream.SegStreamTransform(self.reader.coding(len(self.class_names)), self.cfg.augment)

    def memory_dataset(self, split: str, train: bool) -> NormalisedPairs:
        """Training batches: crops through ``SegAugment`` with ``data.augment`` (each sample's draws a function of
        (run seed, epoch, index)), else the images as they are, which must be at the model's size."""
        pairs: Dataset = SegmentationPairs(self.splits[split])
        if train and self.cfg.augment is not None:
            pairs = AugmentedPairs(pairs, SegAugment(self.cfg.augment), self.seed)
        elif train and self.splits[split].size != self.img_size:
            raise DataError(f"data.augment: the {split} images are {self.splits[split].size or 'of mixed sizes'}, "
                            f"not the model's {self.img_size}: set data.augment (its crop = model.img_size)")
        return NormalisedPairs(pairs, self.mean, self.std)

    def stream_dataset(self, on_disk: str, indices: np.ndarray | None, train: bool, bad) -> Dataset:
        from swin_lit.data import stream

        if train and self.cfg.augment is None:
            raise DataError("data.augment: a streamed segmentation split is read at its images' own sizes; set "
                            "data.augment (its crop = model.img_size)")
        transform = self.stream_transform()
        return stream.StreamPairs(self.listing, on_disk, indices, transform.train if train else transform.eval,
                                  self.seed, train, self.mean, self.std, bad)

    def keyed(self, dataset: Dataset, train: bool) -> bool:
        return train and (self.stream or isinstance(dataset.pairs, AugmentedPairs))

    def eval_batch_size(self, split: str) -> int:
        """``eval_batch_size`` where a split's images share one size, else one image a batch (a stream does not
        open its images to learn their sizes)."""
        return self.cfg.eval_batch_size if self.splits[split].size is not None else 1

    def resolution(self, img_size: int | Sequence[int]) -> SegDataModule:
        """The same data for a model built at another size (the embedded scenes re-rendered; real data as it is,
        whole images), normalised with this module's statistics so that inputs stay comparable."""
        stats = (self.mean, self.std) if self.splits else self._given_stats
        return SegDataModule(self.cfg, img_size, self.seed, stats=stats)

