"""The file listing of a folder layout, scanned once without opening a file and cached outside the data folder
(no torch: config resolution reads class names from it). ``swin_lit.data.stream`` serves samples from it.

The cache is one ``.npz`` per layout under the cache folder (``data.cache_dir``, default
``formats.default_cache_dir``: the user cache, never the data folder), keyed by the folder's resolved path and
the mtimes of the layout's folders (a file added, removed or renamed changes its folder's mtime, so the key).
Paths are held as one numpy byte-string array per split, which forked DataLoader workers share without copying.
"""

from __future__ import annotations

import hashlib
import os
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from swin_lit.data import formats, segmentation
from swin_lit.errors import DataError

LISTING_VERSION = 1


# -- listings -------------------------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class Listing:
    """The files of one layout: per split ``paths`` (byte strings relative to ``root``) and ``targets`` (int64
    class indices for classification, label-map paths relative to ``root`` for segmentation)."""

    root: Path
    fmt: str
    class_names: tuple[str, ...]
    splits: dict[str, tuple[np.ndarray, np.ndarray]]

    def path(self, split: str, index: int) -> str:
        return os.path.join(self.root, self.splits[split][0][index].decode())


def _layout_dirs(fmt: str, root: Path) -> list[Path]:
    """The folders whose mtimes key the listing: every folder that holds the layout's files or their folders."""
    def subdirs(folder: Path) -> list[Path]:
        return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")) if folder.is_dir() \
            else []

    if fmt == "folder":
        splits = [root / s for s in formats.SPLIT_NAMES if (root / s).is_dir()] or [root]
        return [root, *splits, *(d for s in splits for d in subdirs(s))]
    if fmt == "camvid":
        return [root, *subdirs(root)]
    if fmt == "ade20k":
        return [root, *(root / a / s for a in ("images", "annotations") for s in segmentation.ADE20K_SPLITS.values())]
    if fmt == "cityscapes":
        tops = [root / a / s for a in ("leftImg8bit", "gtFine") for s in segmentation.CITYSCAPES_SPLITS]
        return [root, *tops, *(d for t in tops for d in subdirs(t))]
    raise ValueError(f"unknown layout {fmt!r}")


def _listing_key(fmt: str, root: Path) -> str:
    digest = hashlib.sha1(f"v{LISTING_VERSION}\0{fmt}\0{root.resolve()}\n".encode())
    for folder in _layout_dirs(fmt, root):
        try:
            digest.update(f"{folder}\0{os.stat(folder).st_mtime_ns}\n".encode())
        except OSError:
            digest.update(f"{folder}\0missing\n".encode())
    return digest.hexdigest()[:20]


def _relative(paths: Sequence[str], root: Path) -> np.ndarray:
    skip = len(str(root)) + 1
    return np.array([p[skip:].encode() for p in paths], dtype=bytes)


def _scan(fmt: str, root: Path) -> Listing:
    if fmt == "folder":
        tree = formats.scan_folder(root)
        splits = {s: (_relative([p for p, _ in files], tree.root), np.array([c for _, c in files], dtype=np.int64))
                  for s, files in tree.files.items()}
        return Listing(tree.root, fmt, tree.class_names, splits)
    tree = segmentation.scan(fmt, root, headers=False)
    splits = {s: (_relative([i for i, _ in pairs], tree.root), _relative([lab for _, lab in pairs], tree.root))
              for s, pairs in tree.pairs.items()}
    return Listing(tree.root, fmt, _pair_class_names(fmt, tree), splits)


def _pair_class_names(fmt: str, tree: segmentation.SegTree) -> tuple[str, ...]:
    if fmt == "camvid":
        return segmentation.CAMVID_CLASSES
    if fmt == "cityscapes":
        return segmentation.CITYSCAPES_CLASSES
    # ADE20K: the release's 150 classes from objectInfo150 (no label map decoded); without it, the largest label
    # of the training maps (decoded once, here, and cached with the listing).
    names = segmentation._ade20k_names(tree.root, 150)
    if names[0] != "0":
        return names
    top = 0
    for _, label in tree.pairs["train"]:
        with Image.open(label) as im:
            top = max(top, int(np.asarray(im, dtype=np.uint8).max(initial=0)))
    if top < 1:
        raise DataError(f"data folder {tree.root} has no labelled pixels: every training label map is 0 (void)")
    return tuple(str(i) for i in range(top))  # label v -> class v - 1


def listing(fmt: str, root: str | Path, cache_dir: str | Path | None = None) -> Listing:
    """The listing of a layout (``folder``, ``camvid``, ``ade20k``, ``cityscapes``) under ``root``: from the cache
    when its folders are unchanged, else scanned (DataError for a bad layout) and cached. Nothing is written into
    ``root``; an unwritable cache only costs the scan next time."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"data folder {root} does not exist")
    if fmt != "folder":
        root = segmentation.scan_root(fmt, root)
    cache = Path(cache_dir).expanduser() if cache_dir else formats.default_cache_dir(root)
    path = cache / f"listing-{fmt}-{_listing_key(fmt, root)}.npz"
    found = _load_listing(path, fmt, root)
    if found is not None:
        return found
    found = _scan(fmt, root)
    try:
        _save_listing(path, found)
    except OSError:
        pass
    return found


def _save_listing(path: Path, found: Listing) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {"class_names": np.array(found.class_names, dtype=str), "root": np.array(str(found.root))}
    for split, (paths, targets) in found.splits.items():
        arrays[f"{split}.paths"], arrays[f"{split}.targets"] = paths, targets
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)
    os.replace(tmp, path)


def _load_listing(path: Path, fmt: str, root: Path) -> Listing | None:
    try:
        with np.load(path, allow_pickle=False) as npz:
            splits = {name[:-len(".paths")]: (npz[name], npz[name[:-len(".paths")] + ".targets"])
                      for name in npz.files if name.endswith(".paths")}
            return Listing(root, fmt, tuple(str(n) for n in npz["class_names"]), splits)
    except (OSError, KeyError, ValueError, zlib.error):
        return None
