"""Readers for real image data in ordinary on-disk formats.

Every reader returns ``RealData``: uint8 images (N, H, W, C) and int64 labels (N,) per split, plus the
class names. Supported layouts:

- **image folders** (``read_folder``): ``root/train/<class>/*.png|jpg|jpeg|bmp|webp`` with optional
  ``root/val/`` and ``root/test/`` using (a subset of) the train class names, or a bare
  ``root/<class>/...`` read as train only. With ``data.loader: memory`` images are decoded once with Pillow
  (RGB; non-square images centre-cropped, then bicubic-resized to the requested size) into an uncompressed
  ``.npz`` cache outside the data folder (``default_cache_dir``), keyed by the file list, sizes, mtimes and
  target size (the data layer's one decode cache, ``swin_lit.data.cache``), and reused on later runs;
  ``data.loader: stream`` reads them file by file (``swin_lit.data.stream``).
- **CIFAR-10/100 python pickles** (``read_cifar``): ``data_batch_1..5``, ``test_batch``, ``batches.meta``
  (CIFAR-10) or ``train``, ``test``, ``meta`` with fine labels (CIFAR-100), in ``root`` or in its
  ``cifar-10-batches-py`` / ``cifar-100-python`` subfolder. Images are 32 x 32 RGB.
- **IDX files** (``read_idx``): MNIST / Fashion-MNIST ``train-images-idx3-ubyte.gz``,
  ``train-labels-idx1-ubyte.gz``, ``t10k-images-idx3-ubyte.gz``, ``t10k-labels-idx1-ubyte.gz`` (or the
  same names without ``.gz``). Images are 28 x 28 grey (C = 1).

Problems with the data raise ``DataError`` with a one-line message that names the folder or file. Which reader a
``data.source`` names is ``swin_lit.data.sources``'s registry.
"""

from __future__ import annotations

import gzip
import os
import pickle
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from swin_lit.data import cache
from swin_lit.data.cache import PARALLEL_MIN_FILES, default_cache_dir, user_cache_dir  # noqa: F401  (re-exported)
from swin_lit.errors import DataError  # re-exported: swin_lit.data.DataError, swin_lit.data.formats.DataError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
SPLIT_NAMES = ("train", "val", "test")
CACHE_VERSION = 1
FASHION_CLASSES = ("t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag",
                   "ankle-boot")


@dataclass(frozen=True)
class Split:
    """One split: ``images`` uint8 (N, H, W, C), ``labels`` int64 (N,)."""

    images: np.ndarray
    labels: np.ndarray


@dataclass(frozen=True)
class RealData:
    """The splits present on disk (``val``/``test`` are None when the data has none) and class names."""

    train: Split
    val: Split | None
    test: Split | None
    class_names: tuple[str, ...]


# -- image folders ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class FolderTree:
    """A validated image-folder tree: image files per split, as (path, class index) lists."""

    root: Path
    class_names: tuple[str, ...]
    files: dict[str, list[tuple[str, int]]]


def _visible_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _image_files(class_dir: Path) -> list[str]:
    with os.scandir(class_dir) as entries:
        files = [e.path for e in entries
                 if e.is_file() and not e.name.startswith(".") and e.name.lower().endswith(IMAGE_EXTENSIONS)]
    if not files:
        raise DataError(f"class folder {class_dir} has no images ({', '.join(IMAGE_EXTENSIONS)})")
    return sorted(files)


def _split_dirs(root: Path) -> dict[str, Path]:
    if not root.is_dir():
        raise DataError(f"data folder {root} does not exist")
    splits = {name: root / name for name in SPLIT_NAMES if (root / name).is_dir()}
    if not splits:
        return {"train": root}
    if "train" not in splits:
        raise DataError(f"data folder {root} has {'/, '.join(splits)}/ but no train/ folder")
    return splits


def scan_folder(root: str | Path) -> FolderTree:
    """Validate an image-folder tree without decoding anything (see the module docstring for layouts)."""
    root = Path(root).expanduser()
    splits = _split_dirs(root)
    train_classes = _visible_dirs(splits["train"])
    if not train_classes:
        raise DataError(f"data folder {splits['train']} is empty: expected class folders <class>/*.png")
    names = tuple(d.name for d in train_classes)
    index = {name: i for i, name in enumerate(names)}
    files = {}
    for split, folder in splits.items():
        class_dirs = train_classes if split == "train" else _visible_dirs(folder)
        unknown = [d.name for d in class_dirs if d.name not in index]
        if unknown:
            raise DataError(f"{folder} has class folders that are not in train: {', '.join(unknown)}")
        if not class_dirs:
            raise DataError(f"data folder {folder} is empty: expected class folders <class>/*.png")
        files[split] = [(path, index[d.name]) for d in class_dirs for path in _image_files(d)]
    return FolderTree(root, names, files)


def _decode(path: str, size: int) -> np.ndarray:
    """One image as uint8 (size, size, 3): RGB, centre-cropped to square, bicubic-resized if needed."""
    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            w, h = im.size
            if w != h:
                side = min(w, h)
                left, top = (w - side) // 2, (h - side) // 2
                im = im.crop((left, top, left + side, top + side))
            if im.size != (size, size):
                im = im.resize((size, size), Image.Resampling.BICUBIC)
            return np.asarray(im, dtype=np.uint8)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise DataError(f"cannot decode image {path}: {err}") from None


def decode_images(paths: list[str], size: int, workers: int | None = None) -> np.ndarray:
    """Decode ``paths`` into uint8 (N, size, size, 3) (``cache.parallel_for``: a thread pool for long lists)."""
    out = np.empty((len(paths), size, size, 3), dtype=np.uint8)

    def decode(i: int) -> None:
        out[i] = _decode(paths[i], size)

    cache.parallel_for(len(paths), decode, workers)
    return out


def _cache_key(root: Path, names: tuple[str, ...], files: list[tuple[str, int]], size: int) -> str:
    """The cache key of a split: the format version, resolved root, target size, classes and every file's path,
    label, size and mtime."""
    return cache.files_key(f"v{CACHE_VERSION}\0{root.resolve()}\0{size}\0{'/'.join(names)}\n", root,
                           ((path, (label,)) for path, label in files))


def read_folder(root: str | Path, img_size: int, cache_dir: str | Path | None = None) -> RealData:
    """Read an image-folder tree at ``img_size`` x ``img_size``, through the decode cache."""
    tree = scan_folder(root)
    folder = cache.cache_folder(tree.root, cache_dir)
    splits: dict[str, Split] = {}
    for name, files in tree.files.items():
        key = _cache_key(tree.root, tree.class_names, files, img_size)
        path = folder / f"{name}-{img_size}px-{key}.npz"
        split = cache.load(path, lambda npz: Split(npz["images"], npz["labels"])) if path.exists() else None
        if split is None:
            images = decode_images([p for p, _ in files], img_size)
            split = Split(images, np.array([label for _, label in files], dtype=np.int64))
            cache.save(path, images=split.images, labels=split.labels)
        splits[name] = split
    return RealData(splits["train"], splits.get("val"), splits.get("test"), tree.class_names)


# -- CIFAR pickles --------------------------------------------------------------------------------

CIFAR10_FILES = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch", "batches.meta")
CIFAR100_FILES = ("train", "test", "meta")


def cifar_layout(root: Path) -> tuple[Path, int]:
    """The folder holding the pickles and the variant (10 or 100); every expected file must exist."""
    if not root.is_dir():
        raise DataError(f"data folder {root} does not exist")
    for folder in (root, root / "cifar-10-batches-py", root / "cifar-100-python"):
        for variant, names in ((10, CIFAR10_FILES), (100, CIFAR100_FILES)):
            if any((folder / n).is_file() for n in names if n not in ("test", "test_batch")):
                missing = [n for n in names if not (folder / n).is_file()]
                if missing:
                    raise DataError(f"CIFAR-{variant} folder {folder} is missing file {missing[0]}")
                return folder, variant
    raise DataError(f"data folder {root} is not a CIFAR folder: expected data_batch_1..5, test_batch, "
                    "batches.meta (CIFAR-10) or train, test, meta (CIFAR-100)")


def _unpickle(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            data = pickle.load(f, encoding="bytes")
    except (OSError, pickle.UnpicklingError, EOFError, ValueError) as err:
        raise DataError(f"cannot read CIFAR file {path}: {err}") from None
    if not isinstance(data, dict):
        raise DataError(f"cannot read CIFAR file {path}: expected a pickled dict")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in data.items()}


def _field(data: dict, key: str, path: Path):
    if key not in data:
        raise DataError(f"CIFAR file {path} has no {key!r} entry")
    return data[key]


def _cifar_split(paths: list[Path], label_key: str) -> Split:
    images, labels = [], []
    for path in paths:
        data = _unpickle(path)
        raw = np.asarray(_field(data, "data", path), dtype=np.uint8)
        if raw.ndim != 2 or raw.shape[1] != 3 * 32 * 32:
            raise DataError(f"CIFAR file {path}: 'data' must be N x 3072 uint8, got shape {raw.shape}")
        images.append(raw.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
        labels.append(np.asarray(_field(data, label_key, path), dtype=np.int64))
        if len(labels[-1]) != len(raw):
            raise DataError(f"CIFAR file {path}: {len(raw)} images but {len(labels[-1])} labels")
    return Split(np.ascontiguousarray(np.concatenate(images)), np.concatenate(labels))


def _names(raw) -> tuple[str, ...]:
    return tuple(n.decode() if isinstance(n, bytes) else str(n) for n in raw)


def read_cifar(root: str | Path) -> RealData:
    """Read a CIFAR-10 or CIFAR-100 (fine labels) python-pickle folder: 32 x 32 RGB."""
    folder, variant = cifar_layout(Path(root).expanduser())
    if variant == 10:
        train = _cifar_split([folder / f"data_batch_{i}" for i in range(1, 6)], "labels")
        test = _cifar_split([folder / "test_batch"], "labels")
        meta_path, names_key = folder / "batches.meta", "label_names"
    else:
        train = _cifar_split([folder / "train"], "fine_labels")
        test = _cifar_split([folder / "test"], "fine_labels")
        meta_path, names_key = folder / "meta", "fine_label_names"
    return RealData(train, None, test, _names(_field(_unpickle(meta_path), names_key, meta_path)))


# -- IDX (MNIST, Fashion-MNIST) ---------------------------------------------------------------------

IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def _idx_path(root: Path, name: str) -> Path:
    for candidate in (root / f"{name}.gz", root / name):
        if candidate.is_file():
            return candidate
    raise DataError(f"IDX folder {root} is missing file {name}.gz")


def _read_idx_file(path: Path, ndim: int) -> np.ndarray:
    """An unsigned-byte IDX array with ``ndim`` dimensions (1: labels, 3: images)."""
    opener: Callable = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
        zero, dtype, dims = struct.unpack(">HBB", raw[:4])
        shape = struct.unpack(f">{dims}I", raw[4:4 + 4 * dims])
    except (OSError, EOFError, struct.error) as err:
        raise DataError(f"cannot read IDX file {path}: {err}") from None
    if zero != 0 or dtype != 0x08 or dims != ndim:
        raise DataError(f"IDX file {path}: expected unsigned bytes with {ndim} dimensions")
    body = raw[4 + 4 * dims:]
    if len(body) != int(np.prod(shape)):
        raise DataError(f"IDX file {path}: {len(body)} bytes of data, header says shape {shape}")
    return np.frombuffer(body, dtype=np.uint8).reshape(shape).copy()


def _idx_split(root: Path, split: str) -> Split:
    image_path, label_path = (_idx_path(root, n) for n in IDX_FILES[split])
    images = _read_idx_file(image_path, 3)[..., None]
    labels = _read_idx_file(label_path, 1).astype(np.int64)
    if len(images) != len(labels):
        raise DataError(f"IDX files {image_path.name} and {label_path.name} differ in length")
    return Split(images, labels)


def idx_class_names(root: Path, num_classes: int) -> tuple[str, ...]:
    """Fashion-MNIST names when the folder path mentions 'fashion' (and there are 10), else digits."""
    if num_classes == len(FASHION_CLASSES) and "fashion" in str(root).lower():
        return FASHION_CLASSES
    return tuple(str(i) for i in range(num_classes))


def check_idx(root: Path) -> None:
    if not root.is_dir():
        raise DataError(f"data folder {root} does not exist")
    for names in IDX_FILES.values():
        for name in names:
            _idx_path(root, name)


def read_idx(root: str | Path) -> RealData:
    """Read MNIST-style IDX files: 28 x 28 grey images (C = 1)."""
    root = Path(root).expanduser()
    check_idx(root)
    train, test = _idx_split(root, "train"), _idx_split(root, "test")
    num_classes = int(max(train.labels.max(initial=0), test.labels.max(initial=0))) + 1
    return RealData(train, None, test, idx_class_names(root, num_classes))


def cifar_class_names(root: Path) -> tuple[str, ...]:
    """The class names of a CIFAR folder, from its meta file only."""
    folder, variant = cifar_layout(root)
    meta_path, key = (folder / "batches.meta", "label_names") if variant == 10 else (folder / "meta",
                                                                                      "fine_label_names")
    return _names(_field(_unpickle(meta_path), key, meta_path))


def idx_names(root: Path) -> tuple[str, ...]:
    """The class names of an IDX folder, from its label files only."""
    check_idx(root)
    labels = [_read_idx_file(_idx_path(root, names[1]), 1) for names in IDX_FILES.values()]
    return idx_class_names(root, int(max(lab.max(initial=0) for lab in labels)) + 1)


# -- by source name (the registry's readers, swin_lit.data.sources) ------------------------------------

def check(source: str, root: str | Path) -> None:
    """Cheap structural validation (no decoding) of a real data source; raises DataError."""
    from swin_lit.data.sources import reader

    reader(source).check(_Root(root))


def class_names(source: str, root: str | Path) -> tuple[str, ...]:
    """Class names of a real data source, reading only folder names, CIFAR meta or IDX labels."""
    from swin_lit.data.sources import reader

    return reader(source).class_names(_Root(root), "class")


@dataclass(frozen=True)
class _Root:
    """The part of a DataConfig a reader's check and class names read."""

    root: str | Path
    cache_dir: str | None = None
