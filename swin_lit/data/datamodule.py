"""``SwinDataModule``: images and their class labels, from any classification source, behind one
LightningDataModule (``swin_lit.data.base.DataModule`` does the setup, splits, statistics and loaders).

``data.loader: memory``: all splits live in memory as uint8 tensors (N, C, H, W) at the model's size and channel
count. A batch is cut by fancy indexing (the dataset's ``__getitems__``), converted to float and standardised with
the train split's per-channel mean/std, so per-batch work is one gather and one fused multiply-add; the training
step then applies RandAugment and random erasing to the batch (``step_augments``). ``data.loader: stream`` (image
folders): each sample is decoded from its file by the official transforms when it is drawn (``swin_lit.data.stream``,
``swin_lit.data.transforms``), RandAugment and erasing included, normalised with the ImageNet mean and std.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset, get_worker_info

from swin_lit.data.base import DataModule
from swin_lit.data.config import DataConfig
from swin_lit.data.formats import DataError
from swin_lit.data.loaders import (
    channel_stats,
)
from swin_lit.data.sources import Loaded

Arrays = tuple[torch.Tensor, torch.Tensor]  # uint8 images (N, C, H, W), int64 labels (N,)
# The batch augmentations of a classification recipe (``optim.randaugment_ops``, ``optim.random_erasing``); data
# held in memory leaves them to the training step, a stream's per-sample transform applies them itself.
STEP_AUGMENTS = ("randaugment", "random_erasing")


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


class SwinDataModule(DataModule):
    """Classification data for one run at ``img_size`` x ``img_size`` with ``in_chans`` (1 or 3) channels.

    ``prepare_data`` validates the source (``DataError`` on missing/empty/corrupt data) and fills the decode cache;
    ``setup`` loads all splits into memory. After setup: ``num_classes``, ``class_names``, ``mean``/``std`` (C,),
    ``splits`` (name -> uint8 images, labels), ``holdout_indices`` (train, val indices into the on-disk train
    split when val was held out, else None). A stream's per-sample transform is ``transform`` when given, else the
    recipe from ``optim`` (an ``OptimConfig``: its RandAugment and random erasing then run per sample, in the
    official order, and not in the training step).
    """

    targets = "class"

    def __init__(self, cfg: DataConfig, img_size: int, in_chans: int = 3, seed: int = 0,
                 stats: tuple[torch.Tensor, torch.Tensor] | None = None, transform=None, optim=None):
        if img_size < 1:
            raise DataError(f"img_size must be >= 1, got {img_size}")
        if in_chans not in (1, 3):
            raise DataError(f"in_chans must be 1 (grey) or 3 (RGB) for image data, got {in_chans}")
        super().__init__(cfg, seed, stats, transform)
        self.img_size, self.in_chans, self.channels = img_size, in_chans, in_chans
        if self.stream and in_chans != 3:
            raise DataError(f"data.loader=stream reads RGB images; in_chans is {in_chans}: set data.loader=memory")
        self.optim = optim

    @staticmethod
    def step_augments(cfg: DataConfig) -> tuple[str, ...]:
        """The batch augmentations (of ``STEP_AUGMENTS``) the training step applies to this data's batches: all of
        them for data held in memory, none for a stream (its per-sample transform applied them)."""
        return () if cfg.loader == "stream" else STEP_AUGMENTS

    # -- the task's part of setup ----------------------------------------------------------------------
    def read(self) -> Loaded:
        """Every split at the model's size and channel count (real images bicubic-resized)."""
        data = self.reader.read_images(self.cfg, self.img_size)

        def convert(split: Arrays | None) -> Arrays | None:
            if split is None:
                return None
            images, labels = split
            return to_channels(resize_images(images.contiguous(), self.img_size), self.in_chans), labels

        return Loaded(convert(data.train), convert(data.val), convert(data.test), data.class_names)

    def length(self, split: Arrays) -> int:
        return len(split[1])

    def subset(self, split: Arrays, indices: torch.Tensor) -> Arrays:
        return split[0][indices], split[1][indices]

    def split_stats(self, split: Arrays) -> tuple[torch.Tensor, torch.Tensor]:
        return channel_stats(split[0])

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

    def memory_dataset(self, split: str, train: bool) -> ImageTensorDataset:
        """The normalising dataset of ``split``; flips only when ``train``."""
        images, labels = self.splits[split]
        return ImageTensorDataset(images, labels, self.mean, self.std, train and self.cfg.hflip, seed=self.seed + 1)

    def stream_dataset(self, on_disk: str, indices: np.ndarray | None, train: bool, bad) -> Dataset:
        from swin_lit.data import stream

        transform = self.stream_transform()
        return stream.StreamImages(self.listing, on_disk, indices, transform.train if train else transform.eval,
                                   self.seed, train, bad)

    def resolution(self, img_size: int) -> SwinDataModule:
        """The same data at another image size (synthetic: the same scenes re-rendered; real: resized),
        normalised with this module's statistics when it is set up, so inputs stay comparable."""
        stats = (self.mean, self.std) if self.splits else self._given_stats
        return SwinDataModule(self.cfg, img_size, self.in_chans, self.seed, stats=stats, optim=self.optim)


