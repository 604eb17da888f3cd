"""Data throughput: synthetic batch rendering, and image-folder decode / cache load on CIFAR-10 JPEGs.

    python benchmarks/data_speed.py [--threads N] [--cifar-tar PATH]

The CIFAR-10 part unpacks ``/work/shared/data/cifar10-jpeg.tar.gz`` (60,000 32x32 JPEGs) into a temporary
folder, decodes it once into a fresh cache and loads it again from the cache; it is skipped with a
message when the archive is absent. Timings on a shared machine vary; the best of several repeats is
printed for rendering.
"""

from __future__ import annotations

import argparse
import statistics
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from swin_lit.data import DataConfig, SwinDataModule, SyntheticScenes, read_folder

CIFAR_TAR = Path("/work/shared/data/cifar10-jpeg.tar.gz")


def render_speed(img_size: int, batch: int, repeats: int = 10) -> tuple[float, float]:
    """Best and median images/s of ``SyntheticScenes.render`` on fresh batches of ``batch`` scenes."""
    ds = SyntheticScenes(batch * (repeats + 1), img_size)
    ds.render(np.arange(batch))  # warm-up (noise bank, allocator)
    rates = []
    for r in range(1, repeats + 1):
        start = time.perf_counter()
        ds.render(np.arange(r * batch, (r + 1) * batch))
        rates.append(batch / (time.perf_counter() - start))
    return max(rates), statistics.median(rates)


def synthetic_report() -> None:
    print(f"synthetic rendering (torch threads: {torch.get_num_threads()})")
    for img_size, batch in ((32, 512), (64, 128)):
        best, median = render_speed(img_size, batch)
        print(f"  {img_size:3d} px, batch {batch:4d}: best {best:9,.0f} img/s, median {median:9,.0f} img/s")
    start = time.perf_counter()
    dm = SwinDataModule(DataConfig(), img_size=32)
    dm.setup()
    total = sum(len(y) for _, y in dm.splits.values())
    print(f"  datamodule setup (default sizes, {total:,} images at 32 px): {time.perf_counter() - start:.2f} s")
    start = time.perf_counter()
    n = sum(len(y) for _, y in dm.train_dataloader())
    print(f"  one training epoch of batches ({n:,} images): {time.perf_counter() - start:.2f} s")


def folder_report(tar_path: Path) -> None:
    if not tar_path.is_file():
        print(f"image folders: skipped, {tar_path} is absent")
        return
    with tempfile.TemporaryDirectory(prefix="swin_lit_bench_") as tmp:
        root, cache = Path(tmp) / "cifar10", Path(tmp) / "cache"
        start = time.perf_counter()
        with tarfile.open(tar_path) as tar:
            tar.extractall(root, filter="data")
        print(f"image folders ({tar_path.name}, unpacked in {time.perf_counter() - start:.1f} s)")
        for label in ("decode + write cache", "load from cache"):
            start = time.perf_counter()
            data = read_folder(root, 32, cache_dir=cache)
            seconds = time.perf_counter() - start
            n = len(data.train.labels) + (len(data.test.labels) if data.test else 0)
            print(f"  {label:22s}: {seconds:6.2f} s, {n / seconds:9,.0f} img/s ({n:,} images)")
        start = time.perf_counter()
        dm = SwinDataModule(DataConfig(source="folder", root=str(root), cache_dir=str(cache)), img_size=32)
        dm.prepare_data()
        dm.setup()
        print(f"  datamodule prepare+setup from cache (with held-out val): {time.perf_counter() - start:.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    parser.add_argument("--cifar-tar", type=Path, default=CIFAR_TAR)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    synthetic_report()
    folder_report(args.cifar_tar)


if __name__ == "__main__":
    main()
