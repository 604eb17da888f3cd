"""Readers for semantic-segmentation data: images with label maps of class indices, in published layouts.

Every reader returns ``SegData``: per split a ``SegSplit`` of uint8 RGB images and uint8 label maps, each pair at
the image's own (possibly rectangular) size, plus the class names. Label values are mapped once, at read time,
to training labels ``0 .. K-1`` and ``IGNORE_INDEX`` (255) for pixels that are not scored. Layouts:

- **CamVid** (``read_camvid``), as published with SegNet: ``root/{train,val,test}/*.png`` and the label maps of
  the same names in ``root/{train,val,test}annot/`` (``root`` or its ``camvid/`` subfolder; val and test are
  optional). Label maps are 8-bit PNGs of class indices 0..10 (``CAMVID_CLASSES``); the void label (11 as
  published, configurable) becomes ``IGNORE_INDEX``.
- **ADE20K** (``read_ade20k``), as the SceneParsing release: ``root/images/{training,validation}/*.jpg`` and
  ``root/annotations/{training,validation}/*.png`` with the same stems (``root`` or its ``ADEChallengeData2016/``
  subfolder; validation optional), read as train and val. Label 0 ("other") becomes ``IGNORE_INDEX`` and 1..150
  shift down by one, as ADE20K is scored (mmseg's ``reduce_zero_label``). The class count is the largest label
  in the data unless given; names come from ``objectInfo150.txt`` / ``.csv`` when present.
- **Cityscapes** (``scan_cityscapes``), fine annotations: ``root/leftImg8bit/{train,val}/<city>/*_leftImg8bit.png``
  and ``root/gtFine/{train,val}/<city>/*_gtFine_labelTrainIds.png`` (``root`` or its ``cityscapes/`` subfolder).
  The ``labelTrainIds`` maps are what the official ``cityscapesscripts`` (``createTrainIdLabelImgs``) write from
  the released ``*_gtFine_labelIds.png``: the 19 scored classes as 0..18 and 255 for the rest. The test split's
  labels are not public, so it is not read.

Checks, all before any pixel is decoded (``scan_camvid``, ``scan_ade20k``, ``scan``): every folder exists and
holds images, every image has its label map and every label map its image, every label map is an 8-bit
single-channel PNG of its image's size (read from the file headers). Then the label maps are decoded and every
value checked (a value that is neither a class nor the void label names the file and the value) before any image
is decoded. Problems raise ``DataError`` with one line.

Decoded splits go through the data layer's one decode cache (``swin_lit.data.cache``): one uncompressed ``.npz``
per split, keyed by the format's label coding, the size limit and every file's path, size and mtime. Which layout
a ``data.source`` names, and how its label values are coded, is its reader's (``swin_lit.data.sources``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from swin_lit.data import cache
from swin_lit.data.formats import IMAGE_EXTENSIONS, DataError

IGNORE_INDEX = 255  # training label of pixels that are not scored (loss and metrics skip it)
CACHE_VERSION = 1
CAMVID_CLASSES = ("sky", "building", "pole", "road", "pavement", "tree", "sign-symbol", "fence", "car",
                  "pedestrian", "bicyclist")
CAMVID_VOID = 11
CAMVID_SPLITS = ("train", "val", "test")
ADE20K_SPLITS = {"train": "training", "val": "validation"}
CITYSCAPES_CLASSES = ("road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign",
                      "vegetation", "terrain", "sky", "person", "rider", "car", "truck", "bus", "train", "motorcycle",
                      "bicycle")
CITYSCAPES_SPLITS = ("train", "val")
CITYSCAPES_IMAGE, CITYSCAPES_LABEL = "_leftImg8bit.png", "_gtFine_labelTrainIds.png"
LABEL_MODES = ("L", "P")  # 8-bit single-channel PNGs (grey or palette indices)


# -- label coding --------------------------------------------------------------------------------

@dataclass(frozen=True)
class LabelCoding:
    """How a format's raw label values become training labels: ``void`` -> IGNORE_INDEX, every other value v
    -> v - ``shift``, which must lie in [0, ``num_classes``) (any value up to 254 when ``num_classes`` is None:
    the class count then comes from the data)."""

    void: int
    shift: int = 0
    num_classes: int | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.void <= 255:
            raise DataError(f"void label must be in [0, 255] (8-bit label maps), got {self.void}")
        if self.num_classes is not None and not 1 <= self.num_classes < IGNORE_INDEX:
            raise DataError(f"num_classes must be in [1, {IGNORE_INDEX - 1}], got {self.num_classes}")

    def table(self) -> np.ndarray:
        """int16 (256,): the training label of each raw value, -1 where the value is not allowed."""
        mapped = np.arange(256, dtype=np.int16) - self.shift
        top = IGNORE_INDEX if self.num_classes is None else self.num_classes
        table = np.where((mapped >= 0) & (mapped < top), mapped, -1).astype(np.int16)
        table[self.void] = IGNORE_INDEX
        return table

    def describe(self) -> str:
        """The allowed raw values, e.g. 'classes 0..10, void 11'."""
        top = min((IGNORE_INDEX if self.num_classes is None else self.num_classes) - 1 + self.shift, 255)
        return f"classes {self.shift}..{top}, void {self.void}"


# -- splits ---------------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class SegSplit:
    """Images and label maps of one split, packed: the pixels of all images one after another.

    ``pixels`` uint8 (sum of H*W*3,), ``label_pixels`` uint8 (sum of H*W,), ``shapes`` int64 (N, 2) of (H, W),
    ``names`` the file stems. ``image(i)`` (H, W, 3) and ``label(i)`` (H, W) are views; ``stacked()`` gives
    (N, H, W, 3) and (N, H, W) views when all images share one size (CamVid).
    """

    pixels: np.ndarray
    label_pixels: np.ndarray
    shapes: np.ndarray
    names: tuple[str, ...]

    def __post_init__(self) -> None:
        areas = self.shapes.prod(1) if len(self.shapes) else np.zeros(0, dtype=np.int64)
        object.__setattr__(self, "_offsets", np.concatenate([[0], np.cumsum(areas)]).astype(np.int64))

    def __len__(self) -> int:
        return len(self.shapes)

    def image(self, i: int) -> np.ndarray:
        h, w = self.shapes[i]
        start, stop = self._offsets[i], self._offsets[i + 1]
        return self.pixels[3 * start : 3 * stop].reshape(h, w, 3)

    def label(self, i: int) -> np.ndarray:
        h, w = self.shapes[i]
        return self.label_pixels[self._offsets[i] : self._offsets[i + 1]].reshape(h, w)

    @property
    def size(self) -> tuple[int, int] | None:
        """The (H, W) every image has, or None when sizes differ."""
        if len(self.shapes) and (self.shapes == self.shapes[0]).all():
            return int(self.shapes[0, 0]), int(self.shapes[0, 1])
        return None

    def stacked(self) -> tuple[np.ndarray, np.ndarray]:
        """Images (N, H, W, 3) and label maps (N, H, W), as views; only when all images share one size."""
        if self.size is None:
            raise DataError("images of this split differ in size; read them one by one with image(i) / label(i)")
        n, (h, w) = len(self), self.size
        return self.pixels.reshape(n, h, w, 3), self.label_pixels.reshape(n, h, w)

    def class_counts(self, num_classes: int) -> np.ndarray:
        """Pixels per training label, int64 (num_classes,) (ignored pixels not counted)."""
        counts = np.bincount(self.label_pixels, minlength=256)
        return counts[:num_classes].astype(np.int64)


@dataclass(frozen=True)
class SegData:
    """The splits present on disk (``val``/``test`` None when the layout has none) and the class names."""

    train: SegSplit
    val: SegSplit | None
    test: SegSplit | None
    class_names: tuple[str, ...]
    ignore_index: int = IGNORE_INDEX

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


# -- scanning (no decoding) -----------------------------------------------------------------------

@dataclass(frozen=True)
class SegTree:
    """A validated layout: per split, (image path, label path) pairs sorted by name; plus the label coding."""

    root: Path
    pairs: dict[str, list[tuple[str, str]]]
    coding: LabelCoding
    format: str


def _files(folder: Path, extensions: tuple[str, ...]) -> dict[str, str]:
    """stem -> path of the visible files of ``folder`` with one of ``extensions``; DataError when none."""
    if not folder.is_dir():
        raise DataError(f"folder {folder} does not exist")
    with os.scandir(folder) as entries:
        files = {os.path.splitext(e.name)[0]: e.path for e in entries
                 if e.is_file() and not e.name.startswith(".") and e.name.lower().endswith(extensions)}
    if not files:
        raise DataError(f"folder {folder} is empty: expected {' / '.join(extensions)} files")
    return files


def _check_label_mode(path: str, mode: str) -> None:
    if mode not in LABEL_MODES:
        raise DataError(f"label map {path} has mode {mode}: expected an 8-bit single-channel PNG of class indices "
                        f"(mode {' or '.join(LABEL_MODES)})")


def _header(path: str) -> tuple[tuple[int, int], str]:
    """(width, height) and mode from the file header, without decoding the pixels."""
    try:
        with Image.open(path) as im:
            return im.size, im.mode
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise DataError(f"cannot read image {path}: {err}") from None


def pair_folders(image_dir: Path, label_dir: Path, headers: bool = True) -> list[tuple[str, str]]:
    """(image, label map) paths matched by file stem (label maps are PNGs), sorted by stem. Every image needs
    its label map and every label map its image; with ``headers`` (read from each file, no pixel decoded) of the
    same width and height, 8-bit single-channel."""
    images = _files(image_dir, IMAGE_EXTENSIONS)
    labels = _files(label_dir, (".png",))
    return _paired(images, labels, image_dir, label_dir, headers)


def _paired(images: dict[str, str], labels: dict[str, str], image_dir: Path, label_dir: Path,
            headers: bool) -> list[tuple[str, str]]:
    for stem, path in sorted(images.items()):
        if stem not in labels:
            raise DataError(f"image {path} has no label map {label_dir / (stem + '.png')}")
    for stem, path in sorted(labels.items()):
        if stem not in images:
            raise DataError(f"label map {path} has no image in {image_dir}")
    pairs = [(images[s], labels[s]) for s in sorted(images)]
    for image, label in pairs if headers else ():
        (image_size, _), (label_size, mode) = _header(image), _header(label)
        _check_label_mode(label, mode)
        if image_size != label_size:
            raise DataError(f"label map {label} is {label_size[0]}x{label_size[1]} but its image {image} is "
                            f"{image_size[0]}x{image_size[1]} (width x height)")
    return pairs


def root_or_sub(root: str | Path, sub: str, marker: str) -> Path:
    """``root``, or its release subfolder ``sub`` when ``marker`` lies there and not in ``root``."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"data folder {root} does not exist")
    if not (root / marker).is_dir() and (root / sub / marker).is_dir():
        return root / sub
    return root


def scan_camvid(root: str | Path, void: int = CAMVID_VOID, headers: bool = True) -> SegTree:
    """Validate a CamVid folder (see the module docstring) without decoding any pixels."""
    root = root_or_sub(root, "camvid", "train")
    if not (root / "train").is_dir():
        raise DataError(f"data folder {root} is not a CamVid folder: expected train/ and trainannot/ "
                        "(and optionally val/, valannot/, test/, testannot/)")
    pairs = {}
    for split in CAMVID_SPLITS:
        images, labels = root / split, root / f"{split}annot"
        if images.is_dir() != labels.is_dir():
            have, missing = (images, labels) if images.is_dir() else (labels, images)
            raise DataError(f"CamVid folder {root} has {have.name}/ but no {missing.name}/")
        if images.is_dir():
            pairs[split] = pair_folders(images, labels, headers)
    return SegTree(root, pairs, LabelCoding(void=void, num_classes=len(CAMVID_CLASSES)), "camvid")


def scan_ade20k(root: str | Path, num_classes: int | None = None, headers: bool = True) -> SegTree:
    """Validate an ADE20K folder (see the module docstring) without decoding any pixels."""
    root = root_or_sub(root, "ADEChallengeData2016", "images")
    if not (root / "images" / "training").is_dir():
        raise DataError(f"data folder {root} is not an ADE20K folder: expected images/training/ and "
                        "annotations/training/ (and optionally images/validation/, annotations/validation/)")
    pairs = {}
    for split, folder in ADE20K_SPLITS.items():
        images, labels = root / "images" / folder, root / "annotations" / folder
        if split == "train" or images.is_dir() or labels.is_dir():
            pairs[split] = pair_folders(images, labels, headers)
    return SegTree(root, pairs, LabelCoding(void=0, shift=1, num_classes=num_classes), "ade20k")


def _city_files(folder: Path, suffix: str) -> dict[str, str]:
    """'<city>/<stem>' -> path of ``folder/<city>/*<suffix>``."""
    if not folder.is_dir():
        raise DataError(f"folder {folder} does not exist")
    files = {}
    for city in _visible_subdirs(folder):
        with os.scandir(city) as entries:
            files.update({f"{city.name}/{e.name[:-len(suffix)]}": e.path for e in entries
                          if e.is_file() and e.name.endswith(suffix)})
    return files


def _visible_subdirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def scan_cityscapes(root: str | Path, headers: bool = True) -> SegTree:
    """Validate a Cityscapes folder (see the module docstring) without decoding any pixels."""
    root = root_or_sub(root, "cityscapes", "leftImg8bit")
    if not (root / "leftImg8bit" / "train").is_dir():
        raise DataError(f"data folder {root} is not a Cityscapes folder: expected leftImg8bit/train/<city>/ and "
                        "gtFine/train/<city>/ (and optionally the val/ folders)")
    pairs = {}
    for split in CITYSCAPES_SPLITS:
        image_dir, label_dir = root / "leftImg8bit" / split, root / "gtFine" / split
        if split == "train" or image_dir.is_dir():
            labels = _city_files(label_dir, CITYSCAPES_LABEL) if label_dir.is_dir() else {}
            if not labels:
                raise DataError(f"Cityscapes folder {label_dir} has no <city>/*{CITYSCAPES_LABEL} label maps: write "
                                "them from the released *_gtFine_labelIds.png with cityscapesscripts' "
                                "createTrainIdLabelImgs")
            images = _city_files(image_dir, CITYSCAPES_IMAGE)
            if not images:
                raise DataError(f"Cityscapes folder {image_dir} has no <city>/*{CITYSCAPES_IMAGE} images")
            pairs[split] = _paired(images, labels, image_dir, label_dir, headers)
    return SegTree(root, pairs, LabelCoding(void=IGNORE_INDEX, num_classes=len(CITYSCAPES_CLASSES)), "cityscapes")


# -- decoding -------------------------------------------------------------------------------------

def _open(path: str):
    try:
        return Image.open(path)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise DataError(f"cannot read image {path}: {err}") from None


def _fit(size: tuple[int, int], max_side: int | None) -> tuple[int, int]:
    """(width, height) scaled to keep the aspect ratio with the longer side at most ``max_side``."""
    w, h = size
    if max_side is None or max(w, h) <= max_side:
        return w, h
    scale = max_side / max(w, h)
    return max(1, round(w * scale)), max(1, round(h * scale))


def decode_label(path: str, coding: LabelCoding, max_side: int | None = None) -> np.ndarray:
    """One label map as training labels uint8 (H, W); DataError naming the file and the first bad value."""
    table = coding.table()
    with _open(path) as im:
        _check_label_mode(path, im.mode)
        try:
            target = _fit(im.size, max_side)
            if target != im.size:
                im = im.resize(target, Image.Resampling.NEAREST)
            raw = np.asarray(im, dtype=np.uint8)
        except (OSError, SyntaxError, ValueError) as err:
            raise DataError(f"cannot decode label map {path}: {err}") from None
    mapped = table[raw]
    if (mapped < 0).any():
        bad = np.unique(raw[mapped < 0])
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        raise DataError(f"label map {path} has value {bad[0]}{more} that is neither a class nor the void label "
                        f"({coding.describe()})")
    return mapped.astype(np.uint8)


def decode_rgb(path: str, max_side: int | None = None) -> np.ndarray:
    """One image as uint8 (H, W, 3) RGB at its own size (bicubic-shrunk when its longer side exceeds max_side)."""
    with _open(path) as im:
        try:
            im = im.convert("RGB")
            target = _fit(im.size, max_side)
            if target != im.size:
                im = im.resize(target, Image.Resampling.BICUBIC)
            return np.asarray(im, dtype=np.uint8)
        except (OSError, SyntaxError, ValueError) as err:
            raise DataError(f"cannot decode image {path}: {err}") from None


def _cache_key(tree: SegTree, pairs: list[tuple[str, str]], max_side: int | None) -> str:
    """The cache key of a split: the cache version, format, label coding, size limit, resolved root and every
    file's relative path, size and mtime."""
    c = tree.coding
    header = (f"v{CACHE_VERSION}\0{tree.format}\0{c.void},{c.shift},{c.num_classes}\0{max_side}\0"
              f"{tree.root.resolve()}\n")
    return cache.files_key(header, tree.root, ((path, ()) for pair in pairs for path in pair))


def _read_cached(npz) -> SegSplit:
    return SegSplit(npz["pixels"], npz["label_pixels"], npz["shapes"], tuple(str(n) for n in npz["names"]))


def pack_split(images: list[np.ndarray], labels: list[np.ndarray], names: tuple[str, ...]) -> SegSplit:
    """Images (H, W, 3) and label maps (H, W), each at its own size, as one packed ``SegSplit``."""
    shapes = np.array([lab.shape for lab in labels], dtype=np.int64).reshape(-1, 2)
    return SegSplit(np.concatenate([im.reshape(-1) for im in images]),
                    np.concatenate([lab.reshape(-1) for lab in labels]), shapes, names)


def pack_rendered(images, labels) -> SegSplit:
    """Rendered uint8 images (N, 3, H, W) and label maps (N, H, W) (numpy or CPU tensors) as a ``SegSplit``
    (names: the indices)."""
    images, labels = np.asarray(images), np.asarray(labels)
    return pack_split(list(images.transpose(0, 2, 3, 1)), list(labels), tuple(str(i) for i in range(len(images))))


def read_tree(tree: SegTree, cache_dir: str | Path | None = None, max_side: int | None = None
              ) -> dict[str, SegSplit]:
    """Decode every split of a scanned layout through the cache: all label maps (decoded and checked) before
    any image. ``max_side`` shrinks pairs whose longer side exceeds it (image bicubic, labels nearest)."""
    if max_side is not None and max_side < 1:
        raise DataError(f"max_side must be >= 1 or null, got {max_side}")
    folder = cache.cache_folder(tree.root, cache_dir)
    cached, todo = {}, {}
    for name, pairs in tree.pairs.items():
        path = folder / f"{tree.format}-{name}-{_cache_key(tree, pairs, max_side)}.npz"
        split = cache.load(path, _read_cached) if path.exists() else None
        if split is None:
            todo[name] = path
        else:
            cached[name] = split
    labels = {name: cache.parallel_map(lambda p: decode_label(p, tree.coding, max_side),
                                       [lab for _, lab in tree.pairs[name]]) for name in todo}
    for name, path in todo.items():
        pairs = tree.pairs[name]
        images = cache.parallel_map(lambda p: decode_rgb(p, max_side), [im for im, _ in pairs])
        for (image_path, _), image, label in zip(pairs, images, labels[name]):
            if image.shape[:2] != label.shape:  # headers agreed; a decoder disagreeing is a corrupt file
                raise DataError(f"image {image_path} decodes to {image.shape[1]}x{image.shape[0]}, its label map to "
                                f"{label.shape[1]}x{label.shape[0]}")
        split = pack_split(images, labels[name], tuple(Path(im).stem for im, _ in pairs))
        cache.save(path, pixels=split.pixels, label_pixels=split.label_pixels, shapes=split.shapes,
                   names=np.array(split.names, dtype=str))
        cached[name] = split
    return {name: cached[name] for name in tree.pairs}


def ade20k_names(root: Path, num_classes: int) -> tuple[str, ...]:
    """Names from objectInfo150.txt / .csv (header row, then 'Idx ... Name' rows, Idx 1-based; the first of
    comma- or semicolon-separated synonyms), else the class indices."""
    for candidate in (root / "objectInfo150.txt", root / "objectInfo150.csv"):
        if candidate.is_file():
            names = {}
            for line in candidate.read_text(errors="replace").splitlines()[1:]:
                cells = [c.strip() for c in (line.split("\t") if "\t" in line else line.split(","))]
                if len(cells) >= 2 and cells[0].isdigit():
                    names[int(cells[0]) - 1] = cells[-1].replace(";", ",").split(",")[0].strip().strip('"')
            if all(i in names for i in range(num_classes)):
                return tuple(names[i] for i in range(num_classes))
    return tuple(str(i) for i in range(num_classes))


def seg_data(tree: SegTree, splits: dict[str, SegSplit], names: Callable[[int], tuple[str, ...]]) -> SegData:
    """The decoded splits of a layout with its class names (the class count from the coding, else the data)."""
    if tree.coding.num_classes is not None:
        num_classes = tree.coding.num_classes
    else:
        labelled = [np.flatnonzero(s.class_counts(IGNORE_INDEX)) for s in splits.values()]
        num_classes = max(int(found.max(initial=-1)) for found in labelled) + 1
        if num_classes < 1:
            raise DataError(f"data folder {tree.root} has no labelled pixels: every label map is void")
    return SegData(splits["train"], splits.get("val"), splits.get("test"), names(num_classes))


def read_camvid(root: str | Path, cache_dir: str | Path | None = None, void: int = CAMVID_VOID,
                max_side: int | None = None) -> SegData:
    """Read a CamVid folder: train / val / test with 11 classes, ``void`` -> IGNORE_INDEX."""
    return read("camvid", root, cache_dir, max_side, void=void)


def read_ade20k(root: str | Path, cache_dir: str | Path | None = None, num_classes: int | None = None,
                max_side: int | None = None) -> SegData:
    """Read an ADE20K folder: train and val, label 0 -> IGNORE_INDEX, 1.. -> 0..; classes from the data unless
    ``num_classes`` is given (then a larger label is an error)."""
    return read("ade20k", root, cache_dir, max_side, num_classes=num_classes)


def read_cityscapes(root: str | Path, cache_dir: str | Path | None = None, max_side: int | None = None) -> SegData:
    """Read a Cityscapes folder (fine labels, train and val): 19 classes, 255 -> IGNORE_INDEX."""
    return read("cityscapes", root, cache_dir, max_side)


def _layout(fmt: str):
    from swin_lit.data.sources import READERS, Layout

    layouts = [name for name, found in READERS.items() if isinstance(found, Layout)]
    if fmt not in layouts:
        raise ValueError(f"unknown segmentation format {fmt!r}; known: {', '.join(layouts)}")
    return READERS[fmt]


def scan_root(fmt: str, root: str | Path) -> Path:
    """The folder that holds a layout: ``root`` or its release subfolder (``camvid/``, ``ADEChallengeData2016/``,
    ``cityscapes/``)."""
    return _layout(fmt).scan_root(Path(root))


def scan(fmt: str, root: str | Path, **options) -> SegTree:
    """The structural check of a segmentation format (no decoding); raises DataError."""
    return _layout(fmt).scan(root, **options)


def read(fmt: str, root: str | Path, cache_dir: str | Path | None = None, max_side: int | None = None,
         **options) -> SegData:
    """Read segmentation data of format ``fmt`` (``camvid`` with option ``void``, ``ade20k`` with option
    ``num_classes``)."""
    return _layout(fmt).read(root, cache_dir, max_side, **options)


# kept for callers of the former private names
_root_or_sub, _ade20k_names, _data = root_or_sub, ade20k_names, seg_data
