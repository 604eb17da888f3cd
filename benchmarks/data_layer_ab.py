"""Old vs new data layer, side by side in one run: the same DataModule work timed with two copies of ``swin_lit``.

Each case builds a DataModule, sets it up and iterates its training loader (one epoch) and its val loader. A round
runs every case ``--inner`` times (the fastest kept) in one fresh Python process whose ``PYTHONPATH`` puts one copy
of the package first (imports are done before the clock starts; every run has a cold decode cache). The copies
alternate (old then new, new then old, ...) for ``--repeats`` rounds, so drift of a shared machine hits both alike;
the ratio new / old is reported per round, with its median and spread (min..max). Every child also hashes every
batch it served: the two copies must serve byte-identical batches, or the run fails.

Cases (each small enough for a 2-core machine):
- ``synthetic``: the embedded relation scenes, classification, memory (render, statistics, batches);
- ``folder-memory``: a generated folder of PNGs decoded into the decode cache (cold: a fresh cache each round),
  classification, memory;
- ``folder-stream``: the same folder streamed (listing, per-sample decode and the official transforms);
- ``seg-synthetic``: the scenes with label maps, segmentation, memory.

    git archive main swin_lit | tar -x -C /tmp/swin-lit-main      # the old copy (main), outside any worktree
    python benchmarks/data_layer_ab.py --old /tmp/swin-lit-main --new . --repeats 5
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CASES = ("synthetic", "folder-memory", "folder-stream", "seg-synthetic")


def make_folder(root: Path, classes: int = 4, per_class: int = 150, size: tuple[int, int] = (72, 56)) -> None:
    """``root/train/<class>/*.png``: smooth random images (deterministic), non-square so the crop path runs."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for c in range(classes):
        folder = root / "train" / f"class{c}"
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            small = rng.integers(0, 256, (size[1] // 8, size[0] // 8, 3), dtype=np.uint8)
            Image.fromarray(small).resize(size, Image.Resampling.BILINEAR).save(folder / f"{i:03d}.png")


def child(cases: list[str], folder: str, cache_dir: str, inner: int = 1) -> dict:
    """Run the cases with whichever ``swin_lit`` is first on the path (imports done before any clock starts):
    per case, seconds to set up and in all (the fastest of ``inner`` runs, each with a cold decode cache), the
    batches served and a hash of every batch."""
    runs = [_child(cases, folder, f"{cache_dir}/{i}") for i in range(inner)]
    out = {}
    for case in cases:
        best = min((r[case] for r in runs), key=lambda r: r["total_s"])
        if len({r[case]["sha1"] for r in runs}) != 1:
            best = {**best, "sha1": "differs between runs"}
        out[case] = best
    return out


def _child(cases: list[str], folder: str, cache_dir: str) -> dict:
    import torch

    from swin_lit.data.config import DataConfig
    from swin_lit.data.datamodule import SwinDataModule
    from swin_lit.data.seg_datamodule import SegDataModule

    torch.set_num_threads(1)
    out = {}
    for case in cases:
        start = time.perf_counter()
        if case == "seg-synthetic":
            cfg = DataConfig(source="synthetic", train_size=1024, val_size=256, test_size=64, batch_size=32,
                             eval_batch_size=64)
            dm = SegDataModule(cfg, img_size=32, seed=1)
        elif case == "synthetic":
            cfg = DataConfig(source="synthetic", train_size=4096, val_size=512, test_size=64, batch_size=64)
            dm = SwinDataModule(cfg, img_size=32, in_chans=3, seed=1)
        else:
            loader = "memory" if case == "folder-memory" else "stream"
            cfg = DataConfig(source="folder", root=folder, loader=loader, cache_dir=f"{cache_dir}/{case}",
                             batch_size=32, eval_batch_size=64, hflip=True)
            dm = SwinDataModule(cfg, img_size=32, in_chans=3, seed=1)
        dm.prepare_data()
        dm.setup("fit")
        setup = time.perf_counter() - start
        digest = hashlib.sha1()
        batches = 0
        for loader in (dm.train_dataloader(), dm.val_dataloader()):
            for x, y in loader:
                digest.update(x.numpy().tobytes())
                digest.update(y.numpy().tobytes())
                batches += 1
        out[case] = {"setup_s": setup, "total_s": time.perf_counter() - start, "batches": batches,
                     "sha1": digest.hexdigest()}
    return out


def run_child(package: Path, cases: list[str], folder: Path, cache_dir: Path, inner: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(package.resolve()), "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, __file__, "--child", *cases, "--folder", str(folder), "--cache-dir",
                          str(cache_dir), "--inner", str(inner)], env=env, capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--old", type=Path, help="the folder holding the old swin_lit package")
    p.add_argument("--new", type=Path, default=Path("."), help="the folder holding the new swin_lit package")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--inner", type=int, default=3, help="runs per process, the fastest kept (default 3)")
    p.add_argument("--cases", nargs="+", default=list(CASES), choices=CASES)
    p.add_argument("--child", nargs="+", choices=CASES, help=argparse.SUPPRESS)
    p.add_argument("--folder", help=argparse.SUPPRESS)
    p.add_argument("--cache-dir", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.folder, args.cache_dir, args.inner)))
        return 0
    if args.old is None:
        p.error("--old is required")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        folder = tmp / "images"
        make_folder(folder)
        os.environ["XDG_CACHE_HOME"] = str(tmp / "user-cache")
        print("| case | old total s (median) | new total s (median) | new / old per round: median (min..max) | "
              "setup new / old | batches | identical |")
        print("|---|---|---|---|---|---|---|")
        rounds = []  # per round: {"old": {case: ...}, "new": {case: ...}}
        for r in range(args.repeats):
            pair = {}
            for name, package in (("old", args.old), ("new", args.new)) if r % 2 == 0 else \
                    (("new", args.new), ("old", args.old)):
                pair[name] = run_child(package, args.cases, folder, tmp / f"cache-{name}-{r}", args.inner)
            rounds.append(pair)
        failed = False
        for case in args.cases:
            runs = [(p["old"][case], p["new"][case]) for p in rounds]
            same = all(o["sha1"] == n["sha1"] for o, n in runs) and len({o["sha1"] for o, _ in runs}) == 1
            ratios = [n["total_s"] / o["total_s"] for o, n in runs]
            setup = [n["setup_s"] / o["setup_s"] for o, n in runs]
            old = statistics.median(o["total_s"] for o, _ in runs)
            new = statistics.median(n["total_s"] for _, n in runs)
            print(f"| {case} | {old:.3f} | {new:.3f} | {statistics.median(ratios):.3f} ({min(ratios):.3f}.."
                  f"{max(ratios):.3f}) | {statistics.median(setup):.3f} | {runs[0][1]['batches']} | "
                  f"{'yes' if same else 'NO'} |", flush=True)
            failed |= not same
        if failed:
            print("the two copies served different batches", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
