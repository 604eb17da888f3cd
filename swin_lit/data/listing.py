"""The file listing of a folder layout, scanned once without opening a file and cached outside the data folder
(no torch: config resolution reads class names from it). ``swin_lit.data.stream`` serves samples from it.

The cache is one ``.npz`` per layout in the data layer's one cache (``swin_lit.data.cache``: ``data.cache_dir``,
default the user cache, never the data folder), keyed by the folder's resolved path and the mtimes of the layout's
folders (a file added, removed or renamed changes its folder's mtime, so the key). The layout itself (its
folders, its files, its class names) is the source's reader's (``swin_lit.data.sources``).
Paths are held as one numpy byte-string array per split, which forked DataLoader workers share without copying.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from swin_lit.data import cache
from swin_lit.data.sources import reader
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


def _listing_key(fmt: str, root: Path) -> str:
    digest = hashlib.sha1(f"v{LISTING_VERSION}\0{fmt}\0{root.resolve()}\n".encode())
    for folder in reader(fmt).layout_dirs(root):
        try:
            digest.update(f"{folder}\0{os.stat(folder).st_mtime_ns}\n".encode())
        except OSError:
            digest.update(f"{folder}\0missing\n".encode())
    return digest.hexdigest()[:20]


def _relative(paths: Sequence[str], root: Path) -> np.ndarray:
    skip = len(str(root)) + 1
    return np.array([p[skip:].encode() for p in paths], dtype=bytes)


def _scan(fmt: str, root: Path) -> Listing:
    layout = reader(fmt)
    root, names, found = layout.scan_listing(root)
    maps = "map" in layout.targets  # label-map paths, else class indices
    splits = {s: (_relative(paths, root), _relative(targets, root) if maps else np.array(targets, dtype=np.int64))
              for s, (paths, targets) in found.items()}
    return Listing(root, fmt, names, splits)


def listing(fmt: str, root: str | Path, cache_dir: str | Path | None = None) -> Listing:
    """The listing of a layout (``folder``, ``camvid``, ``ade20k``, ``cityscapes``) under ``root``: from the cache
    when its folders are unchanged, else scanned (DataError for a bad layout) and cached. Nothing is written into
    ``root``; an unwritable cache only costs the scan next time."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"data folder {root} does not exist")
    root = reader(fmt).scan_root(root)
    path = cache.cache_folder(root, cache_dir) / f"listing-{fmt}-{_listing_key(fmt, root)}.npz"
    found = cache.load(path, lambda npz: _read_listing(npz, fmt, root)) if path.exists() else None
    if found is not None:
        return found
    found = _scan(fmt, root)
    arrays = {"class_names": np.array(found.class_names, dtype=str), "root": np.array(str(found.root))}
    for split, (paths, targets) in found.splits.items():
        arrays[f"{split}.paths"], arrays[f"{split}.targets"] = paths, targets
    cache.save(path, **arrays)
    return found


def _read_listing(npz, fmt: str, root: Path) -> Listing:
    splits = {name[:-len(".paths")]: (npz[name], npz[name[:-len(".paths")] + ".targets"])
              for name in npz.files if name.endswith(".paths")}
    return Listing(root, fmt, tuple(str(n) for n in npz["class_names"]), splits)
