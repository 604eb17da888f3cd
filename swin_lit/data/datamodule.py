"""``SwinDataModule``: every data source behind one LightningDataModule.

All splits live in memory as uint8 tensors (N, C, H, W). A batch is cut by fancy indexing (the dataset's
``__getitems__``), converted to float and standardised with the train split's per-channel mean/std,
so per-batch work is one gather and one fused multiply-add. The training order is a function of the run
seed and the epoch (``EpochSampler``), so a run stopped mid-epoch resumes with exactly the batches it had
left.

Splits: the embedded data (relation scenes, anchor marks) has its own train/val/test streams. Real data
without a val split gets one held out of train (``val_fraction``, seeded by ``split_seed``); real data without
a test split is tested on its val split (``has_test`` is False then).
"""

from __future__ import annotations

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


class EpochSampler(Sampler[int]):
    """A shuffled order that depends only on (seed, epoch). Lightning calls ``set_epoch`` at each epoch
    start; ``skip_batches`` drops the batches a resumed run has already trained on (once)."""

    def __init__(self, n: int, seed: int) -> None:
        self.n, self.seed, self.epoch, self.skip = n, seed, 0, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def skip_batches(self, batches: int, batch_size: int) -> None:
        self.skip = batches * batch_size

    def __len__(self) -> int:
        return self.n - self.skip

    def __iter__(self):
        order = torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed * 100_003 + self.epoch))
        skip, self.skip = self.skip, 0
        return iter(order[skip:].tolist())


class SwinDataModule(pl.LightningDataModule):
    """Data for one run at ``img_size`` x ``img_size`` with ``in_chans`` (1 or 3) channels.

    ``prepare_data`` validates the source (``DataError`` on missing/empty/corrupt data) and fills the
    decode cache; ``setup`` loads all splits into memory. After setup: ``num_classes``, ``class_names``,
    ``mean``/``std`` (C,), ``splits`` (name -> uint8 images, labels), ``holdout_indices`` (train, val
    indices into the on-disk train split when val was held out, else None).
    """

    def __init__(self, cfg: DataConfig, img_size: int, in_chans: int = 3, seed: int = 0,
                 stats: tuple[torch.Tensor, torch.Tensor] | None = None):
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

    # -- validation and loading --------------------------------------------------------------------
    def check(self) -> None:
        """Fail fast, before any decoding, if the configured data is missing or malformed."""
        if self.cfg.source not in EMBEDDED_SOURCES:
            formats.check(self.cfg.source, Path(self.cfg.root))

    def prepare_data(self) -> None:
        """Validate the data and, for image folders, decode it into the cache once."""
        self.check()
        if self.cfg.source == "folder":
            formats.read_folder(self.cfg.root, self.img_size, self.cfg.cache_dir)

    def setup(self, stage: str | None = None) -> None:
        """Load every split into memory (idempotent)."""
        if self.splits:
            return
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
        return SwinDataModule(self.cfg, img_size, self.in_chans, self.seed, stats=stats)

    # -- loaders -------------------------------------------------------------------------------------
    def dataset(self, split: str, train: bool = False) -> ImageTensorDataset:
        """The normalising dataset of ``split`` (train/val/test); flips only when ``train``."""
        if not self.splits:
            self.setup()
        images, labels = self.splits[split]
        hflip = train and self.cfg.hflip
        return ImageTensorDataset(images, labels, self.mean, self.std, hflip, seed=self.seed + 1)

    def _loader(self, dataset: ImageTensorDataset, batch_size: int, shuffle: bool) -> DataLoader:
        workers = self.cfg.num_workers
        return DataLoader(
            dataset,
            batch_size=batch_size,
            sampler=EpochSampler(len(dataset), self.seed) if shuffle else None,
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
