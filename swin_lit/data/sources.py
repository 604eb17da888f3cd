"""The readers of the data sources, registered by name: ``data.source`` -> the ``Reader`` that checks, names the
classes of, loads or lists its data. Imports without torch (config validation reads it); each reader imports its
format module when it is used.

A reader serves one or both kinds of targets (``Task.targets`` in ``swin_lit.domain.task``): ``class`` (an image
and its class index: ``read_images``) and ``map`` (an image and its label map: ``read_pairs``). A source read
file by file (``streams``: ``data.loader: stream``, its default) also describes its folder layout for the listing
(``scan_root``, ``layout_dirs``, ``scan_listing``) and, for label maps, its label coding (``coding``).

Adding a source is one class and one name::

    @register
    class MyFolders(Reader):
        name = "myfolders"
        targets = ("class",)
        def check(self, cfg): ...              # DataError (one line) for missing or malformed data, nothing decoded
        def class_names(self, cfg, targets): ...
        def read_images(self, cfg, img_size): ...  # Loaded of (uint8 (N, C, H, W), int64 (N,)) tensors per split

``DataConfig.source`` accepts every registered name; the task facts (``swin_lit.domain.task``) say which sources a
task trains on, and a test checks that each of those reads that task's targets.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from swin_lit.errors import DataError


@dataclass(frozen=True)
class Loaded:
    """A source's splits as read into memory (``val`` / ``test`` None where the data has none) and its classes.
    Splits are (uint8 images (N, C, H, W), int64 labels (N,)) tensors for class targets, ``SegSplit`` for maps."""

    train: Any
    val: Any
    test: Any
    class_names: tuple[str, ...]


class Reader:
    """How one ``data.source`` is read (see the module docstring). Subclasses set ``name`` and ``targets`` and
    implement what they serve; the rest raises."""

    name: ClassVar[str]
    targets: ClassVar[tuple[str, ...]]  # "class" and/or "map"
    embedded: ClassVar[bool] = False  # rendered on the fly: no root, no files
    streams: ClassVar[bool] = False  # a folder layout read file by file (data.loader: stream, its default)

    def check(self, cfg) -> None:
        """Structural validation, nothing decoded (DataError, one line)."""

    def class_names(self, cfg, targets: str) -> tuple[str, ...]:
        raise NotImplementedError

    def read_images(self, cfg, img_size: int) -> Loaded:
        raise DataError(f"data.source {self.name!r} has no class-labelled images")

    def read_pairs(self, cfg, img_size: tuple[int, int]) -> Loaded:
        raise DataError(f"data.source {self.name!r} has no label maps")

    # -- streamed layouts ------------------------------------------------------------------------------
    def scan_root(self, root: Path) -> Path:
        """The folder that holds the layout: ``root`` or its release subfolder."""
        return root

    def layout_dirs(self, root: Path) -> list[Path]:
        """The folders whose mtimes key the listing."""
        raise DataError(f"data.source {self.name!r} is not streamed")

    def scan_listing(self, root: Path) -> tuple[Path, tuple[str, ...], dict[str, tuple[list[str], Any]]]:
        """(root, class names, split -> (image paths, class indices or label-map paths)), no file opened."""
        raise DataError(f"data.source {self.name!r} is not streamed")

    def coding(self, num_classes: int | None = None):
        """The label coding of its label maps (``segmentation.LabelCoding``)."""
        raise DataError(f"data.source {self.name!r} has no label maps")


READERS: dict[str, Reader] = {}


def register(cls: type[Reader]) -> type[Reader]:
    """Register a reader class under its ``name`` (a class decorator)."""
    if cls.name in READERS:
        raise ValueError(f"data source {cls.name!r} is already registered")
    READERS[cls.name] = cls()
    return cls


def embedded(name: str) -> bool:
    """Whether source ``name`` is rendered on the fly (no root, nothing to download); False for unknown names."""
    return name in READERS and READERS[name].embedded


def streams(name: str) -> bool:
    """Whether source ``name`` can be read file by file (``data.loader: stream``)."""
    return name in READERS and READERS[name].streams


def reader(name: str) -> Reader:
    """The reader of source ``name``; a DataError naming the registered ones otherwise."""
    try:
        return READERS[name]
    except KeyError:
        raise DataError(f"unknown data source {name!r}; known: {', '.join(READERS)}") from None


def sources(*, embedded: bool | None = None, streams: bool | None = None) -> tuple[str, ...]:
    """The registered source names, optionally only the embedded / streamed ones (or the others)."""
    return tuple(n for n, r in READERS.items()
                 if (embedded is None or r.embedded == embedded) and (streams is None or r.streams == streams))


# -- the embedded tasks ------------------------------------------------------------------------------------------

class Rendered(Reader):
    """An embedded task rendered on the fly (``swin_lit.data.synthetic.RenderedSplit``): train / val / test each
    its own stream of ``data.{train,val,test}_size`` scenes from ``data.synthetic_seed``."""

    targets = ("class", "map")
    embedded = True
    task: ClassVar[str]  # "module:class" of its RenderedSplit

    def rendered(self):
        import importlib

        module, attribute = self.task.split(":")
        return getattr(importlib.import_module(module), attribute)

    def _sizes(self, cfg) -> dict[str, int]:
        return {"train": min(cfg.train_size, cfg.limit_train or cfg.train_size), "val": cfg.val_size,
                "test": cfg.test_size}

    def read_images(self, cfg, img_size: int) -> Loaded:
        task = self.rendered()
        splits = {s: task(n, img_size, cfg.synthetic_seed, s).render_all() for s, n in self._sizes(cfg).items()}
        return Loaded(splits["train"], splits["val"], splits["test"], task.class_names)

    def read_pairs(self, cfg, img_size: tuple[int, int]) -> Loaded:
        import numpy as np

        from swin_lit.data.segmentation import pack_rendered

        task = self.rendered()
        splits = {s: pack_rendered(*task(n, img_size[0], cfg.synthetic_seed, s).render_dense(np.arange(n)))
                  for s, n in self._sizes(cfg).items()}
        return Loaded(splits["train"], splits["val"], splits["test"], task.dense_class_names)


@register
class Synthetic(Rendered):
    name = "synthetic"
    task = "swin_lit.data.synthetic:SyntheticScenes"

    def class_names(self, cfg, targets: str) -> tuple[str, ...]:
        from swin_lit.data.classes import DENSE_CLASS_NAMES, SYNTHETIC_CLASS_NAMES

        return DENSE_CLASS_NAMES if targets == "map" else SYNTHETIC_CLASS_NAMES


@register
class Marks(Rendered):
    name = "marks"
    task = "swin_lit.data.marks:AnchorMarks"

    def class_names(self, cfg, targets: str) -> tuple[str, ...]:
        from swin_lit.data.classes import MARKS_CLASS_NAMES, MARKS_DENSE_CLASS_NAMES

        return MARKS_DENSE_CLASS_NAMES if targets == "map" else MARKS_CLASS_NAMES


# -- class-labelled files ----------------------------------------------------------------------------------------

def _images(data) -> Loaded:
    """``formats.RealData`` (numpy (N, H, W, C)) as ``Loaded`` tensors (N, C, H, W) (views, no copy)."""
    import numpy as np
    import torch

    def convert(split):
        if split is None:
            return None
        return torch.from_numpy(np.ascontiguousarray(split.images)).permute(0, 3, 1, 2), torch.from_numpy(split.labels)

    return Loaded(convert(data.train), convert(data.val), convert(data.test), data.class_names)


@register
class Folder(Reader):
    """An image-folder tree (``swin_lit.data.formats``): ``root/{train,val,test}/<class>/*`` or ``root/<class>/``."""

    name = "folder"
    targets = ("class",)
    streams = True

    def check(self, cfg) -> None:
        from swin_lit.data import formats

        formats.scan_folder(Path(cfg.root).expanduser())

    def class_names(self, cfg, targets: str) -> tuple[str, ...]:
        from swin_lit.data import formats

        return formats.scan_folder(Path(cfg.root).expanduser()).class_names

    def read_images(self, cfg, img_size: int) -> Loaded:
        from swin_lit.data import formats

        return _images(formats.read_folder(cfg.root, img_size, cfg.cache_dir))

    def layout_dirs(self, root: Path) -> list[Path]:
        from swin_lit.data import formats

        splits = [root / s for s in formats.SPLIT_NAMES if (root / s).is_dir()] or [root]
        return [root, *splits, *(d for s in splits for d in _subdirs(s))]

    def scan_listing(self, root: Path):
        from swin_lit.data import formats

        tree = formats.scan_folder(root)
        return tree.root, tree.class_names, {s: ([p for p, _ in files], [c for _, c in files])
                                             for s, files in tree.files.items()}


@register
class Cifar(Reader):
    """CIFAR-10/100 python pickles (``swin_lit.data.formats.read_cifar``)."""

    name = "cifar"
    targets = ("class",)

    def check(self, cfg) -> None:
        from swin_lit.data import formats

        formats.cifar_layout(Path(cfg.root).expanduser())

    def class_names(self, cfg, targets: str) -> tuple[str, ...]:
        from swin_lit.data import formats

        return formats.cifar_class_names(Path(cfg.root).expanduser())

    def read_images(self, cfg, img_size: int) -> Loaded:
        from swin_lit.data import formats

        return _images(formats.read_cifar(cfg.root))


@register
class Idx(Reader):
    """MNIST / Fashion-MNIST IDX files (``swin_lit.data.formats.read_idx``)."""

    name = "idx"
    targets = ("class",)

    def check(self, cfg) -> None:
        from swin_lit.data import formats

        formats.check_idx(Path(cfg.root).expanduser())

    def class_names(self, cfg, targets: str) -> tuple[str, ...]:
        from swin_lit.data import formats

        return formats.idx_names(Path(cfg.root).expanduser())

    def read_images(self, cfg, img_size: int) -> Loaded:
        from swin_lit.data import formats

        return _images(formats.read_idx(cfg.root))


# -- segmentation layouts ----------------------------------------------------------------------------------------

def _subdirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")) if folder.is_dir() \
        else []


class Layout(Reader):
    """A published segmentation layout (``swin_lit.data.segmentation`` describes each): image and label-map files,
    held in memory (``read_pairs``: decoded once, every label value checked, through the decode cache) or streamed.
    Subclasses give the release subfolder and marker (``subfolder``), the scan and the coding."""

    targets = ("map",)
    streams = True
    subfolder: ClassVar[tuple[str, str]]  # (release subfolder, the folder that marks the layout)

    def scan(self, root: Path, headers: bool = True):
        """The validated ``SegTree`` (no pixel decoded; ``headers``: sizes and modes read from the files)."""
        raise NotImplementedError

    def names(self, root: Path, num_classes: int) -> tuple[str, ...]:
        """The names of ``num_classes`` classes."""
        raise NotImplementedError

    def check(self, cfg) -> None:
        self.scan(Path(cfg.root).expanduser())

    def class_names(self, cfg, targets: str) -> tuple[str, ...]:
        self.scan(Path(cfg.root).expanduser(), headers=False)
        return self.names(self.scan_root(Path(cfg.root).expanduser()), self.coding().num_classes)

    def read(self, root: Path, cache_dir=None, max_side: int | None = None, **options):
        """``SegData`` of the layout under ``root`` (every split decoded through the cache)."""
        from swin_lit.data import segmentation

        tree = self.scan(root, **options)
        splits = segmentation.read_tree(tree, cache_dir, max_side)
        return segmentation.seg_data(tree, splits, lambda k: self.names(tree.root, k))

    def read_pairs(self, cfg, img_size: tuple[int, int]) -> Loaded:
        data = self.read(Path(cfg.root), cfg.cache_dir)
        return Loaded(data.train, data.val, data.test, data.class_names)

    def scan_root(self, root: Path) -> Path:
        from swin_lit.data import segmentation

        return segmentation.root_or_sub(root, *self.subfolder)

    def scan_listing(self, root: Path):
        tree = self.scan(root, headers=False)
        splits = {s: ([i for i, _ in pairs], [lab for _, lab in pairs]) for s, pairs in tree.pairs.items()}
        return tree.root, self.listing_names(tree), splits

    def listing_names(self, tree) -> tuple[str, ...]:
        return self.names(tree.root, self.coding().num_classes)


@register
class CamVid(Layout):
    name = "camvid"
    subfolder = ("camvid", "train")

    def scan(self, root: Path, headers: bool = True, void: int | None = None):
        from swin_lit.data import segmentation

        return segmentation.scan_camvid(root, segmentation.CAMVID_VOID if void is None else void, headers=headers)

    def names(self, root: Path, num_classes: int) -> tuple[str, ...]:
        from swin_lit.data.segmentation import CAMVID_CLASSES

        return CAMVID_CLASSES

    def layout_dirs(self, root: Path) -> list[Path]:
        return [root, *_subdirs(root)]

    def coding(self, num_classes: int | None = None):
        from swin_lit.data import segmentation

        return segmentation.LabelCoding(void=segmentation.CAMVID_VOID, num_classes=len(segmentation.CAMVID_CLASSES))


@register
class ADE20K(Layout):
    name = "ade20k"
    subfolder = ("ADEChallengeData2016", "images")

    def scan(self, root: Path, headers: bool = True, num_classes: int | None = None):
        from swin_lit.data import segmentation

        return segmentation.scan_ade20k(root, num_classes, headers=headers)

    def names(self, root: Path, num_classes: int) -> tuple[str, ...]:
        from swin_lit.data import segmentation

        return segmentation.ade20k_names(root, num_classes)

    def class_names(self, cfg, targets: str) -> tuple[str, ...]:
        # objectInfo150 when present, else the largest label of the decoded (and cached) maps
        return self.read(Path(cfg.root), cfg.cache_dir).class_names

    def layout_dirs(self, root: Path) -> list[Path]:
        from swin_lit.data.segmentation import ADE20K_SPLITS

        return [root, *(root / a / s for a in ("images", "annotations") for s in ADE20K_SPLITS.values())]

    def listing_names(self, tree) -> tuple[str, ...]:
        """The release's 150 classes from objectInfo150 (no label map decoded); without it, the largest label of
        the training maps (decoded once, here, and cached with the listing)."""
        import numpy as np
        from PIL import Image

        names = self.names(tree.root, 150)
        if names[0] != "0":
            return names
        top = 0
        for _, label in tree.pairs["train"]:
            with Image.open(label) as im:
                top = max(top, int(np.asarray(im, dtype=np.uint8).max(initial=0)))
        if top < 1:
            raise DataError(f"data folder {tree.root} has no labelled pixels: every training label map is 0 (void)")
        return tuple(str(i) for i in range(top))  # label v -> class v - 1

    def coding(self, num_classes: int | None = None):
        from swin_lit.data import segmentation

        return segmentation.LabelCoding(void=0, shift=1, num_classes=num_classes)


@register
class Cityscapes(Layout):
    name = "cityscapes"
    subfolder = ("cityscapes", "leftImg8bit")

    def scan(self, root: Path, headers: bool = True):
        from swin_lit.data import segmentation

        return segmentation.scan_cityscapes(root, headers=headers)

    def names(self, root: Path, num_classes: int) -> tuple[str, ...]:
        from swin_lit.data.segmentation import CITYSCAPES_CLASSES

        return CITYSCAPES_CLASSES

    def layout_dirs(self, root: Path) -> list[Path]:
        from swin_lit.data.segmentation import CITYSCAPES_SPLITS

        tops = [root / a / s for a in ("leftImg8bit", "gtFine") for s in CITYSCAPES_SPLITS]
        return [root, *tops, *(d for t in tops for d in _subdirs(t))]

    def coding(self, num_classes: int | None = None):
        from swin_lit.data import segmentation

        return segmentation.LabelCoding(void=segmentation.IGNORE_INDEX,
                                        num_classes=len(segmentation.CITYSCAPES_CLASSES))
