"""Streaming data: each sample is decoded from its file, in the DataLoader worker that draws it, when it is drawn.

``data.loader: stream`` (the default for the folder sources) serves an ImageNet-layout folder (``train/<wnid>/
*.JPEG``, ``val/<wnid>/*.JPEG``: the ``folder`` source; class index from the sorted folder names) and the dense
layouts (ADE20K, Cityscapes, CamVid; ``swin_lit.data.segmentation`` describes each) without a decode pass before
training: memory and the time to the first step do not grow with the number of images.

- **Listing** (``swin_lit.data.listing``, torch-free): the layout's file names, scanned once (no file opened)
  and cached outside the data folder; paths are numpy byte strings, shared by forked workers without copying.
- **Datasets** (``StreamImages``, ``StreamPairs``): a batch is a list of keys, ``(epoch, index)`` from the
  training sampler or a bare index; each sample's random draws come from ``sample_generator(seed, epoch,
  index)`` (``swin_lit.data.seg_augment``), so a batch is the same whatever worker, rank or resume computes it.
- **Transforms**: classification ``train(path, rng) -> float (3, H, W)`` and ``eval(path) -> float (3, H, W)``
  (``swin_lit.data.transforms.ClassificationTransform``: the official recipe, normalised); segmentation
  ``train(image_path, label_path, rng) -> (image, label)`` and ``eval(image_path, label_path) -> (image, label)``
  (``SegStreamTransform``, on ``swin_lit.data.seg_augment``): the image uint8 (3, H, W) (normalised by the
  dataset) or already float, the labels (H, W) with 255 ignored. The protocols below are the contract.
- **Bad files** (``on_error``): a file that cannot be read or decoded (or a label map with a value out of range)
  raises a ``DataError`` naming it (``fail``), or is left out of its batch and recorded (``skip``): one JSON line
  per skipped draw appended to ``skip_log`` (the run folder's ``skipped.jsonl``; result.json counts it).
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from swin_lit.data import segmentation
from swin_lit.data.listing import Listing, listing  # noqa: F401  (re-exported: the stream's file lists)
from swin_lit.data.seg_augment import SegAugment, eval_resize_from_files, sample_generator
from swin_lit.data.seg_config import SegAugmentConfig
from swin_lit.errors import DataError

# What a bad file raises while it is read and decoded (Pillow: OSError for truncated or unidentified files,
# SyntaxError / ValueError for malformed headers, zlib / struct errors inside PNG chunks); DataError is a
# ValueError. Anything else (a TypeError in a transform) is a bug and is never skipped.
BAD_FILE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, zlib.error, struct.error, Image.DecompressionBombError)


# -- the transform contract -----------------------------------------------------------------------------------

class TrainTransform(Protocol):
    def __call__(self, path: str, rng: torch.Generator) -> torch.Tensor: ...


class EvalTransform(Protocol):
    def __call__(self, path: str) -> torch.Tensor: ...


class PairTrainTransform(Protocol):
    def __call__(self, image_path: str, label_path: str, rng: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        ...


class PairEvalTransform(Protocol):
    def __call__(self, image_path: str, label_path: str) -> tuple[torch.Tensor, torch.Tensor]: ...


# -- bad files ------------------------------------------------------------------------------------------------

class BadFiles:
    """What a dataset does with a sample whose file fails: ``fail`` raises a DataError naming the file; ``skip``
    appends one JSON line (file, error, epoch, index) to ``log`` (when set) and counts it in ``count`` (this
    process only: workers' counts are in the log)."""

    def __init__(self, on_error: str = "fail", log: str | Path | None = None) -> None:
        if on_error not in ("fail", "skip"):
            raise ValueError(f"on_error must be 'fail' or 'skip', got {on_error!r}")
        self.on_error, self.log, self.count = on_error, (str(log) if log else None), 0

    def __call__(self, path: str, err: BaseException, epoch: int, index: int) -> None:
        message = str(err) if isinstance(err, DataError) and path in str(err) else f"cannot read {path}: {err}"
        if self.on_error == "fail":
            raise DataError(f"{message} (data.on_error=skip leaves such samples out and counts them)") from None
        self.count += 1
        if self.log:
            line = json.dumps({"file": path, "error": message, "epoch": epoch, "index": index}) + "\n"
            fd = os.open(self.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, line.encode())  # one write of a short line under O_APPEND: whole lines from any worker
            finally:
                os.close(fd)


def skipped(log: str | Path) -> dict:
    """The skip log of a run as result.json's ``data_skipped``: ``count`` (distinct draws: a draw replayed by
    a resume counts once), ``files`` (distinct files, sorted)."""
    try:
        lines = Path(log).read_text().splitlines()
    except FileNotFoundError:
        return {"count": 0, "files": []}
    entries = [json.loads(line) for line in lines if line.strip()]
    draws = {(e["file"], e["epoch"], e["index"]) for e in entries}
    return {"count": len(draws), "files": sorted({e["file"] for e in entries})}


def _key(key) -> tuple[int, int]:
    if isinstance(key, (tuple, list)):
        return int(key[0]), int(key[1])
    return 0, int(key)


def _normalised(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """uint8 (.., 3, H, W) -> normalised float; a float tensor is taken as already normalised."""
    if x.dtype == torch.uint8:
        return x.float().mul_((1.0 / (255.0 * std)).view(3, 1, 1)).sub_((mean / std).view(3, 1, 1))
    return x


# -- datasets -------------------------------------------------------------------------------------------------

class StreamImages(Dataset):
    """One classification split of a ``Listing``: a batch of keys -> (float (B, 3, H, W), int64 (B,)), each
    sample decoded and transformed from its file (``train``: with its own generator; else ``eval``)."""

    def __init__(self, found: Listing, split: str, indices: np.ndarray | None, transform, seed: int, train: bool,
                 bad: BadFiles | None = None) -> None:
        paths, labels = found.splits[split]
        if indices is not None:
            paths, labels = paths[indices], labels[indices]
        self.root, self.paths, self.labels = str(found.root), paths, labels
        self.transform, self.seed, self.train = transform, seed, train
        self.bad = bad or BadFiles()

    def __len__(self) -> int:
        return len(self.paths)

    def path(self, index: int) -> str:
        return os.path.join(self.root, self.paths[index].decode())

    def sample(self, key) -> torch.Tensor | None:
        epoch, index = _key(key)
        path = self.path(index)
        try:
            if self.train:
                return self.transform(path, sample_generator(self.seed, epoch, index))
            return self.transform(path)
        except BAD_FILE_ERRORS as err:
            self.bad(path, err, epoch, index)
            return None

    def __getitem__(self, key) -> tuple[torch.Tensor, int]:
        x, y = self.__getitems__([key])
        return x[0], int(y[0])

    def __getitems__(self, keys: Sequence) -> tuple[torch.Tensor, torch.Tensor]:
        xs, ys = [], []
        for key in keys:  # one file each: the decode is the work, the loop is not
            x = self.sample(key)
            if x is not None:
                xs.append(x)
                ys.append(int(self.labels[_key(key)[1]]))
        if not xs:
            raise DataError(f"every sample of a batch was unreadable (the first: {self.path(_key(keys[0])[1])}); "
                            "see the skip log")
        return torch.stack(xs), torch.tensor(ys, dtype=torch.int64)


class StreamPairs(Dataset):
    """One segmentation split of a ``Listing``: a batch of keys -> (float (B, 3, H, W), int64 (B, H, W)).
    Batches of more than one need samples of one size (training crops; evaluation batches are single images)."""

    def __init__(self, found: Listing, split: str, indices: np.ndarray | None, transform, seed: int, train: bool,
                 mean: torch.Tensor, std: torch.Tensor, bad: BadFiles | None = None) -> None:
        images, labels = found.splits[split]
        if indices is not None:
            images, labels = images[indices], labels[indices]
        self.root, self.images, self.labels = str(found.root), images, labels
        self.transform, self.seed, self.train = transform, seed, train
        self.mean, self.std = mean, std
        self.bad = bad or BadFiles()

    def __len__(self) -> int:
        return len(self.images)

    def paths(self, index: int) -> tuple[str, str]:
        return (os.path.join(self.root, self.images[index].decode()),
                os.path.join(self.root, self.labels[index].decode()))

    def sample(self, key) -> tuple[torch.Tensor, torch.Tensor] | None:
        epoch, index = _key(key)
        image, label = self.paths(index)
        try:
            if self.train:
                return self.transform(image, label, sample_generator(self.seed, epoch, index))
            return self.transform(image, label)
        except BAD_FILE_ERRORS as err:
            self.bad(image if image in str(err) or label not in str(err) else label, err, epoch, index)
            return None

    def __getitem__(self, key) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = self.__getitems__([key])
        return x[0], y[0]

    def __getitems__(self, keys: Sequence) -> tuple[torch.Tensor, torch.Tensor]:
        pairs = [p for p in (self.sample(k) for k in keys) if p is not None]
        if not pairs:
            raise DataError(f"every sample of a batch was unreadable (the first: {self.paths(_key(keys[0])[1])[0]}); "
                            "see the skip log")
        images = torch.stack([_normalised(x, self.mean, self.std) for x, _ in pairs])
        return images, torch.stack([y for _, y in pairs]).long()


# -- segmentation transforms ----------------------------------------------------------------------------------

class SegStreamTransform:
    """The segmentation transforms of a pair of files (``swin_lit.data.seg_augment``): training is
    ``SegAugment.from_files`` (mmseg's recipe, ``data.augment``: the resize drawn from the header size, a JPEG
    decoded at reduced scale where the resize allows it); evaluation is mmseg's keep-ratio fit into
    ``data.augment.scale`` (``eval_resize_from_files``) where a scale is set, else the pair at its own size. Label
    values are mapped with the layout's coding (a value out of range is a DataError naming the file)."""

    def __init__(self, coding: segmentation.LabelCoding, augment: SegAugmentConfig | None = None) -> None:
        self.coding, self.cfg = coding, augment
        self.augment = SegAugment(augment) if augment is not None else None

    def decode(self, image_path: str, label_path: str) -> tuple[torch.Tensor, torch.Tensor]:
        label = segmentation.decode_label(label_path, self.coding)
        image = segmentation.decode_rgb(image_path)
        if image.shape[:2] != label.shape:
            raise DataError(f"label map {label_path} is {label.shape[1]}x{label.shape[0]} but its image {image_path} "
                            f"is {image.shape[1]}x{image.shape[0]} (width x height)")
        return torch.from_numpy(image.transpose(2, 0, 1).copy()), torch.from_numpy(label)

    def train(self, image_path: str, label_path: str, rng: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        if self.augment is None:
            return self.decode(image_path, label_path)
        return self.augment.from_files(image_path, label_path, self.coding, rng)

    def eval(self, image_path: str, label_path: str) -> tuple[torch.Tensor, torch.Tensor]:
        if self.cfg is None or self.cfg.scale is None:
            return self.decode(image_path, label_path)
        return eval_resize_from_files(image_path, label_path, self.coding, self.cfg.scale, self.cfg.interpolation)


def coding_for(fmt: str, num_classes: int | None = None) -> segmentation.LabelCoding:
    """The label coding of a dense layout (its reader's, ``swin_lit.data.sources``; ADE20K: reduce_zero_label)."""
    from swin_lit.data.sources import reader

    return reader(fmt).coding(num_classes)


@dataclass(frozen=True)
class StreamSplit:
    """What a datamodule's ``splits`` holds for a streamed split: its length; ``size`` None (images are not
    opened to learn their sizes)."""

    length: int
    size: tuple[int, int] | None = None

    def __len__(self) -> int:
        return self.length
