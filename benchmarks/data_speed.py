"""Data throughput per worker process: decode plus the whole official train transform, reduced-scale vs plain.

    python benchmarks/data_speed.py [--small 300] [--large 150] [--repeats 3] [--out results/benchmarks/data_speed.md]
    python benchmarks/data_speed.py --part synthetic     # the embedded scenes' rendering speed

Generates full-size photo-like JPEGs (``swin_lit.data.photos``: gradients, blobs and texture at 1-32 px, quality
90) of two kinds, 500x375 (the typical ImageNet photo) and 1600x1200, into a temporary folder, then times
``ClassificationTransform.train`` (RandomResizedCrop to 224, flip, RandAugment rand-m9-mstd0.5-inc1, normalise,
random erasing 0.25) over every file, in one process with one torch thread (a DataLoader worker's setting):

- ``plain``: the full decode, crop, bicubic resize, same rest (``reduced=False``);
- ``reduced``: the crop box drawn from the header size and the JPEG decoded at 1/2, 1/4 or 1/8 scale where the
  box is at least that many times the output (the default).

Both see the same files with the same per-sample generators (so the same boxes and ops), in interleaved repeats
(the order alternates); the figures are medians over repeats and their ratio is taken per repeat. The table goes
to ``--out`` with the CPU model and library versions, and the number of worker processes that would feed a
training speed of ``--train-rate`` images/s (647: Swin-T on one RTX 3090 with AMP).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import PIL
import torch
from PIL import Image, features

from swin_lit.data.photos import photo_like
from swin_lit.data.seg_augment import sample_generator
from swin_lit.data.transforms import ClassificationTransform, dct_scale, random_resized_crop_box

KINDS = ((500, 375), (1600, 1200))
BASES = 8  # distinct generated pictures per kind; every file is a shifted / mirrored crop of one


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        return next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name"))
    except (OSError, subprocess.CalledProcessError, StopIteration):
        return platform.processor() or "unknown"


def write_jpegs(folder: Path, width: int, height: int, count: int) -> list[Path]:
    """``count`` distinct JPEGs of width x height: crops of ``BASES`` generated pictures at shifted offsets."""
    margin = 64
    bases = [photo_like(width + margin, height + margin, seed=b) for b in range(BASES)]
    paths = []
    for i in range(count):
        dx, dy = (i * 7) % margin, (i * 13) % margin
        array = bases[i % BASES][dy : dy + height, dx : dx + width]
        if (i // BASES) % 2:
            array = array[:, ::-1]
        path = folder / f"{width}x{height}_{i:04d}.JPEG"
        Image.fromarray(np.ascontiguousarray(array)).save(path, "JPEG", quality=90)
        paths.append(path)
    return paths


def one_pass(transform: ClassificationTransform, paths: list[Path], repeat: int) -> float:
    """Images/s of the train transform over every file (sample i's generator: (0, repeat, i))."""
    start = time.perf_counter()
    for i, path in enumerate(paths):
        transform.train(path, sample_generator(0, repeat, i))
    return len(paths) / (time.perf_counter() - start)


def scale_shares(paths: list[Path], repeats: int, size: int = 224) -> dict[int, float]:
    """The share of samples decoded at 1/1, 1/2, 1/4 and 1/8 (from the boxes the generators draw)."""
    counts = dict.fromkeys((1, 2, 4, 8), 0)
    for repeat in range(repeats):
        for i, path in enumerate(paths):
            with Image.open(path) as im:
                box = random_resized_crop_box(*im.size, sample_generator(0, repeat, i))
            counts[dct_scale(box[2], box[3], size, size)] += 1
    total = sum(counts.values())
    return {s: c / total for s, c in counts.items()}


def decode_report(args: argparse.Namespace) -> None:
    torch.set_num_threads(1)
    args.load_before = os.getloadavg()[0]
    # "plain, again": a second, identical plain pipeline, the A/A control: its ratio to "plain" is what the
    # measurement itself varies by (order, allocator, the machine), the floor under which a ratio says nothing
    variants = {"plain": ClassificationTransform(reduced=False), "reduced": ClassificationTransform(),
                "plain, again": ClassificationTransform(reduced=False)}
    rows = []
    with tempfile.TemporaryDirectory(prefix="swin_lit_data_speed_") as tmp:
        for (width, height), count in zip(KINDS, (args.small, args.large)):
            start = time.perf_counter()
            paths = write_jpegs(Path(tmp), width, height, count)
            mean_kb = statistics.mean(p.stat().st_size for p in paths) / 1024
            print(f"{count} JPEGs of {width}x{height} (mean {mean_kb:.0f} kB) in {time.perf_counter() - start:.1f} s")
            for variant in variants.values():  # warm-up (allocator, caches): a few files, not timed
                one_pass(variant, paths[:8], repeat=99)
            rates: dict[str, list[float]] = {name: [] for name in variants}
            for repeat in range(args.repeats):
                order = list(variants) if repeat % 2 == 0 else list(variants)[::-1]
                for name in order:
                    rates[name].append(one_pass(variants[name], paths, repeat))
                print(f"  repeat {repeat}: " + ", ".join(f"{n} {rates[n][-1]:.1f} img/s" for n in variants))
            ratios = [r / p for r, p in zip(rates["reduced"], rates["plain"])]
            controls = [a / p for a, p in zip(rates["plain, again"], rates["plain"])]
            rows.append(dict(kind=f"{width}x{height}", files=count, mean_kb=mean_kb,
                             plain=statistics.median(rates["plain"]), reduced=statistics.median(rates["reduced"]),
                             ratio=statistics.median(ratios), ratio_min=min(ratios), ratio_max=max(ratios),
                             control=statistics.median(controls), control_min=min(controls),
                             control_max=max(controls),
                             plain_all=rates["plain"], reduced_all=rates["reduced"],
                             shares=scale_shares(paths, args.repeats)))
    args.load_after = os.getloadavg()[0]
    write_report(rows, args)


def write_report(rows: list[dict], args: argparse.Namespace) -> None:
    cpu = cpu_model()
    lines = [
        "# Data speed: decode + the whole train transform, per worker process",
        "",
        f"CPU: {cpu} (`lscpu` model name), one process, one torch thread; absolute figures depend on what else "
        "the machine runs: compare the ratios, measured side by side in one run. 1-minute load average "
        f"{args.load_before:.1f} before, {args.load_after:.1f} after (the CPU has {os.cpu_count()} cores).",
        f"Pillow {PIL.__version__} (libjpeg-turbo {features.version('libjpeg_turbo')}), torch {torch.__version__}, "
        f"numpy {np.__version__}, Python {platform.python_version()}.",
        "",
        f"`python benchmarks/data_speed.py --small {args.small} --large {args.large} --repeats {args.repeats}`: "
        "generated photo-like JPEGs (quality 90), `ClassificationTransform.train` to 224 (RandomResizedCrop, flip, "
        "RandAugment rand-m9-mstd0.5-inc1, normalise, random erasing 0.25) over every file; `plain` decodes the "
        "whole JPEG, `reduced` decodes at 1/2, 1/4 or 1/8 where the crop box is at least that many times 224 on "
        "both sides. Same files, same per-sample generators (same boxes and ops) for both; "
        f"{args.repeats} interleaved repeats, medians (ratio: median of the per-repeat ratios, range in brackets). "
        "A/A: a second, identical plain pipeline timed the same way, over the first: the spread a ratio of two "
        "identical pipelines shows here, below which a ratio says nothing.",
        "",
        "| photos | files | mean size | plain img/s | reduced img/s | reduced / plain | A/A (plain / plain) "
        "| decoded at 1/1 : 1/2 : 1/4 : 1/8 |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        shares = " : ".join(f"{100 * r['shares'][s]:.0f}%" for s in (1, 2, 4, 8))
        lines.append(f"| {r['kind']} | {r['files']} | {r['mean_kb']:.0f} kB | {r['plain']:.1f} | {r['reduced']:.1f} "
                     f"| {r['ratio']:.2f}x ({r['ratio_min']:.2f}-{r['ratio_max']:.2f}) "
                     f"| {r['control']:.2f}x ({r['control_min']:.2f}-{r['control_max']:.2f}) | {shares} |")
    lines += ["", f"Worker processes to feed {args.train_rate:g} img/s of training (Swin-T 224 on one RTX 3090 "
              "with AMP, the published figure), from the reduced-scale rates above, one core each:", ""]
    for r in rows:
        lines.append(f"- {r['kind']} photos: {args.train_rate:g} / {r['reduced']:.1f} = "
                     f"{args.train_rate / r['reduced']:.1f} -> **{math.ceil(args.train_rate / r['reduced'])} workers** "
                     f"(plain decoding: {math.ceil(args.train_rate / r['plain'])})")
    lines += ["", "Per-repeat img/s (plain / reduced):", ""]
    for r in rows:
        pairs = ", ".join(f"{p:.1f} / {q:.1f}" for p, q in zip(r["plain_all"], r["reduced_all"]))
        lines.append(f"- {r['kind']}: {pairs}")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
        out.with_suffix(".json").write_text(json.dumps(dict(cpu=cpu, train_rate=args.train_rate, rows=rows),
                                                       indent=1) + "\n")


def synthetic_report() -> None:
    """The embedded scenes' rendering speed (in-memory data; no files)."""
    from swin_lit.data import SyntheticScenes

    print(f"synthetic rendering (torch threads: {torch.get_num_threads()})")
    for img_size, batch in ((32, 512), (64, 128)):
        ds = SyntheticScenes(batch * 11, img_size)
        ds.render(np.arange(batch))  # warm-up
        rates = []
        for r in range(1, 11):
            start = time.perf_counter()
            ds.render(np.arange(r * batch, (r + 1) * batch))
            rates.append(batch / (time.perf_counter() - start))
        print(f"  {img_size:3d} px, batch {batch:4d}: best {max(rates):9,.0f} img/s, "
              f"median {statistics.median(rates):9,.0f} img/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("decode", "synthetic"), default="decode")
    parser.add_argument("--small", type=int, default=300, help="500x375 files")
    parser.add_argument("--large", type=int, default=150, help="1600x1200 files")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--train-rate", type=float, default=647.0, help="training img/s to feed")
    parser.add_argument("--out", default="results/benchmarks/data_speed.md", help="'' to print only")
    parser.add_argument("--threads", type=int, default=None, help="torch threads for --part synthetic")
    args = parser.parse_args()
    if args.part == "synthetic":
        if args.threads:
            torch.set_num_threads(args.threads)
        synthetic_report()
    else:
        decode_report(args)


if __name__ == "__main__":
    main()
