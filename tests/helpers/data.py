"""Small data folders in the published layouts, written by the tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def camvid_folder(root: Path, n: int = 6, size=(20, 24), bad_value: int | None = None) -> Path:
    """A CamVid-layout folder (``train/``, ``trainannot/``, ... ; 11 classes, 11 is void) of ``n`` random images
    per split; ``bad_value`` puts a label value that is neither a class nor void into one training label map."""
    rng = np.random.default_rng(0)
    for split in ("train", "val", "test"):
        (root / split).mkdir(parents=True)
        (root / f"{split}annot").mkdir()
        for i in range(n):
            Image.fromarray(rng.integers(0, 255, (*size, 3), dtype=np.uint8)).save(root / split / f"{i}.png")
            label = rng.integers(0, 12, size, dtype=np.uint8)  # 11 is void
            if bad_value is not None and split == "train" and i == 2:
                label[0, 0] = bad_value
            Image.fromarray(label, mode="L").save(root / f"{split}annot" / f"{i}.png")
    return root


def imagenet_folder(root: Path, classes=("n01", "n02", "n03"), train=8, val=2, size=(50, 37), seed=0) -> Path:
    """An ImageNet-layout folder of random-noise JPEGs: train/<wnid>/<wnid>_<i>.JPEG and val/<wnid>/..."""
    rng = np.random.default_rng(seed)
    for split, n in (("train", train), ("val", val)):
        for wnid in classes:
            (root / split / wnid).mkdir(parents=True, exist_ok=True)
            for i in range(n):
                pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
                Image.fromarray(pixels).save(root / split / wnid / f"{wnid}_{i}.JPEG", quality=90)
    return root


def snapshot(root: Path) -> list[tuple[str, int, int]]:
    """Every path under ``root`` with its size and mtime: what 'nothing written into the data folder' compares."""
    return sorted((str(p.relative_to(root)), p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*"))
