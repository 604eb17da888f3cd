"""Read every file of a data folder once and list its problems (``swin-lit data check``): images that cannot be
decoded, label maps that cannot be decoded, are not 8-bit single-channel, differ in size from their image or hold
a value outside the layout's classes and void label. Structural problems (not a folder of the layout, an image
without its label map) are ``DataError`` (bad input), as when training."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from swin_lit.data import formats, segmentation
from swin_lit.data.sources import reader
from swin_lit.errors import DataError

BAD = (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError)


def detect(root: Path) -> str:
    """The layout of ``root`` from its folder names."""
    if not root.is_dir():
        raise DataError(f"data folder {root} does not exist")
    for layout, sub, marker in (("cityscapes", "cityscapes", "leftImg8bit"),
                                ("ade20k", "ADEChallengeData2016", "images"), ("camvid", "camvid", "trainannot")):
        if (root / marker).is_dir() or (root / sub / marker).is_dir():
            return layout
    return "folder"


def _image_problem(path: str) -> tuple[str, tuple[int, int] | None]:
    """('' or the problem, (width, height) when decoded)."""
    try:
        with Image.open(path) as im:
            im.load()  # the whole file: a truncated JPEG fails here, not at the header
            return "", im.size
    except BAD as err:
        return f"{path}: unreadable image ({err})", None


def _pair_problems(pair: tuple[str, str], table: np.ndarray, allowed: str) -> list[str]:
    image, label = pair
    problem, size = _image_problem(image)
    out = [problem] if problem else []
    try:
        with Image.open(label) as im:
            mode = im.mode
            raw = np.asarray(im)  # decodes
    except BAD as err:
        return [*out, f"{label}: unreadable label map ({err})"]
    if mode not in segmentation.LABEL_MODES:
        return [*out, f"{label}: label map of mode {mode}, not an 8-bit single-channel PNG of class indices"]
    if size is not None and (raw.shape[1], raw.shape[0]) != size:
        out.append(f"{label}: label map of another size: {raw.shape[1]}x{raw.shape[0]}, its image {image} is "
                   f"{size[0]}x{size[1]} (width x height)")
    bad = np.unique(raw[table[raw] < 0])
    if len(bad):
        values = ", ".join(str(v) for v in bad[:5]) + (f" (and {len(bad) - 5} more)" if len(bad) > 5 else "")
        out.append(f"{label}: label value out of range: {values} ({allowed})")
    return out


def check(root: Path, layout: str = "auto", num_classes: int | None = None, workers: int | None = None,
          progress: bool = True, report: Callable[[str], None] = print) -> tuple[list[str], int]:
    """Every problem of the folder, in file order (``report`` gets each line as it is found), and the number of
    files read. DataError for a folder that is not of the layout."""
    from tqdm import tqdm

    root = Path(root).expanduser()
    layout = detect(root) if layout == "auto" else layout
    source = reader(layout)
    pairs = "map" in source.targets  # images with label maps, else image files alone
    if not pairs:
        tree = formats.scan_folder(root)
        items = [path for files in tree.files.values() for path, _ in files]
        task: Callable = lambda path: [p for p in [_image_problem(path)[0]] if p]  # noqa: E731
        files = len(items)
    else:
        tree = source.scan(root, headers=False)
        # the layout's coding; ADE20K: the release's 150 classes unless told (a label above them is a problem)
        coding = source.coding(num_classes or 150)
        table, allowed = coding.table(), coding.describe()
        items = [pair for pairs in tree.pairs.values() for pair in pairs]
        task = lambda pair: _pair_problems(pair, table, allowed)  # noqa: E731
        files = 2 * len(items)
    problems: list[str] = []
    bar = tqdm(total=len(items), desc=f"data check ({layout})", unit="pair" if pairs else "file",
               disable=not progress, file=sys.stderr)
    with bar, ThreadPoolExecutor(workers or os.cpu_count() or 1) as pool:  # Pillow decodes without the GIL
        for found in pool.map(task, items, chunksize=16):
            for line in found:
                problems.append(line)
                with tqdm.external_write_mode(file=sys.stderr):  # the line above the bar, not through it
                    report(line)
            bar.update()
    return problems, files
