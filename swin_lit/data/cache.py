"""The one decode cache and the one decode pool of the data layer (no torch).

Every reader that decodes files ahead of training (image folders at the model's size, segmentation layouts with
their label maps) and the stream's listing keep their results here, the same way:

- **where**: ``cache_folder(root, cache_dir)``: ``data.cache_dir``, else a subfolder of the user cache
  (``$XDG_CACHE_HOME/swin-lit`` or ``~/.cache/swin-lit``) named after the data folder and keyed by its resolved
  path; never inside the data folder (which may be read-only or shared).
- **key**: ``files_key(header, root, files)``: a hash of a header (format, version, coding, size ...) and every
  file's path relative to ``root``, its extra fields (a label), size and mtime: any change to the tree gives a
  new key, so a stale entry is never read.
- **format**: one uncompressed ``.npz`` per entry, written atomically (``save``: a temporary file renamed into
  place); ``load`` returns None for a missing, truncated or foreign file; an unwritable cache only costs the work
  next time.
- **decoding**: ``parallel_for`` runs a decode over many files in a thread pool (Pillow releases the GIL while
  decoding), in order, from ``PARALLEL_MIN_FILES`` files on; shorter lists decode in the calling thread.
"""

from __future__ import annotations

import hashlib
import os
import zlib
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

PARALLEL_MIN_FILES = 2000  # decode with a thread pool from this many files on


def user_cache_dir() -> Path:
    """swin-lit's user cache folder: ``$XDG_CACHE_HOME/swin-lit``, else ``~/.cache/swin-lit``."""
    base = os.environ.get("XDG_CACHE_HOME")
    return (Path(base) if base else Path.home() / ".cache") / "swin-lit"


def default_cache_dir(root: Path) -> Path:
    """The cache folder of data folder ``root``: a subfolder of ``user_cache_dir()`` named after the folder and
    keyed by its resolved path. Never inside the data folder (which may be read-only or shared)."""
    resolved = Path(root).expanduser().resolve()
    key = hashlib.sha1(str(resolved).encode()).hexdigest()[:12]
    return user_cache_dir() / f"{resolved.name or 'root'}-{key}"


def cache_folder(root: Path, cache_dir: str | Path | None) -> Path:
    """``cache_dir`` when given (``data.cache_dir``), else the data folder's default cache folder."""
    return Path(cache_dir).expanduser() if cache_dir else default_cache_dir(root)


def files_key(header: str, root: Path, files: Iterable[tuple[str, tuple]]) -> str:
    """Hash of ``header`` and, per (path under ``root``, extra fields), the relative path, the fields, the file's
    size and mtime (20 hex digits)."""
    digest = hashlib.sha1(header.encode())
    skip = len(str(root)) + 1
    for path, extra in files:
        st = os.stat(path)
        fields = (path[skip:], *map(str, extra), str(st.st_size), str(st.st_mtime_ns))
        digest.update(("\0".join(fields) + "\n").encode())
    return digest.hexdigest()[:20]


def load(path: Path, read: Callable[[np.lib.npyio.NpzFile], object]) -> object | None:
    """``read(npz)`` of the cached entry at ``path``, or None when it is missing or unreadable."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            return read(npz)
    except (OSError, KeyError, ValueError, EOFError, zlib.error):
        return None


def save(path: Path, **arrays: np.ndarray) -> None:
    """Write ``arrays`` as the entry at ``path``, atomically; an unwritable cache is ignored (it only costs the
    work next time)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except OSError:
        pass


def parallel_for(n: int, work: Callable[[int], None], workers: int | None = None) -> None:
    """``work(i)`` for i in 0..n-1: in this thread for short lists, else in a thread pool over contiguous ranges
    (about eight per thread). ``work`` writes its result itself (into a preallocated array or list slot), so the
    results land in order without a second copy; the first exception raised is re-raised."""
    workers = workers or os.cpu_count() or 1
    if n < PARALLEL_MIN_FILES or workers < 2:
        for i in range(n):
            work(i)
        return

    def run(start: int, stop: int) -> None:
        for i in range(start, stop):
            work(i)

    step = -(-n // (workers * 8))
    with ThreadPoolExecutor(workers) as pool:
        for future in [pool.submit(run, i, min(i + step, n)) for i in range(0, n, step)]:
            future.result()


def parallel_map(fn: Callable[[str], np.ndarray], paths: list[str], workers: int | None = None) -> list[np.ndarray]:
    """``[fn(p) for p in paths]`` through ``parallel_for``."""
    out: list = [None] * len(paths)

    def work(i: int) -> None:
        out[i] = fn(paths[i])

    parallel_for(len(paths), work, workers)
    return out
