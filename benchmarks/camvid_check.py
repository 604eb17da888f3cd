"""The CamVid reader on the real shared data: split sizes, classes, label values, decode and cache times, and the
training augmentation's throughput.

    python benchmarks/camvid_check.py [--tar PATH] [--crop H W]

Unpacks ``/work/shared/data/camvid-240x180.tar.gz`` into a temporary folder, reads it into a fresh cache, reads it
again from the cache, and checks what the data README states: 367 / 101 / 233 images of 240x180, 11 classes, label
11 void (read as 255). Exits 1 when a check fails. Timings on a shared machine vary.
"""

from __future__ import annotations

import argparse
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from swin_lit.data.seg_augment import AugmentedPairs, SegAugment, SegAugmentConfig, SegmentationPairs
from swin_lit.data.segmentation import CAMVID_CLASSES, IGNORE_INDEX, read_camvid

CAMVID_TAR = Path("/work/shared/data/camvid-240x180.tar.gz")
EXPECTED = {"train": 367, "val": 101, "test": 233}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tar", type=Path, default=CAMVID_TAR)
    parser.add_argument("--crop", type=int, nargs=2, default=(128, 128), metavar=("H", "W"))
    args = parser.parse_args()
    if not args.tar.is_file():
        print(f"{args.tar} is absent", file=sys.stderr)
        return 1
    failures = []
    with tempfile.TemporaryDirectory(prefix="swin_lit_camvid_") as tmp:
        with tarfile.open(args.tar) as tar:
            tar.extractall(tmp, filter="data")
        cache = Path(tmp) / "cache"
        start = time.perf_counter()
        data = read_camvid(tmp, cache_dir=cache)
        decode = time.perf_counter() - start
        start = time.perf_counter()
        again = read_camvid(tmp, cache_dir=cache)
        cached = time.perf_counter() - start
        print(f"decode into the cache {decode:.2f} s, load from the cache {cached:.2f} s")
        if not np.array_equal(again.train.label_pixels, data.train.label_pixels):
            failures.append("the cache gives other labels")
        if data.class_names != CAMVID_CLASSES:
            failures.append(f"classes {data.class_names}")
        for name, n in EXPECTED.items():
            split = getattr(data, name)
            values = np.unique(split.label_pixels)
            shares = split.class_counts(data.num_classes) / split.label_pixels.size
            void = float((split.label_pixels == IGNORE_INDEX).mean())
            print(f"{name:5s} {len(split):4d} images of {split.size[1]}x{split.size[0]} (WxH), label values "
                  f"{values.tolist()}, void {void:.1%}")
            print("      pixel shares: " + ", ".join(f"{c} {s:.1%}" for c, s in zip(data.class_names, shares)))
            if len(split) != n or split.size != (180, 240):
                failures.append(f"{name}: {len(split)} images of {split.size}, expected {n} of (180, 240)")
            if not set(values.tolist()) <= set(range(11)) | {IGNORE_INDEX}:
                failures.append(f"{name}: label values {values.tolist()}")
        augment = AugmentedPairs(SegmentationPairs(data.train), SegAugment(SegAugmentConfig(crop=tuple(args.crop))),
                                 seed=0)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # as in a DataLoader worker; small per-sample ops suffer from thread hand-offs
        start = time.perf_counter()
        images, labels = augment.__getitems__(list(range(len(data.train))))
        rate = len(images) / (time.perf_counter() - start)
        torch.set_num_threads(threads)
        print(f"augmentation (resize 0.5-2, crop {args.crop[0]}x{args.crop[1]}, flip, photometric; 1 thread): "
              f"{rate:,.0f} pairs/s, batch {tuple(images.shape)} + {tuple(labels.shape)}")
    for failure in failures:
        print(f"FAILED: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
