"""Peak resident memory and time to the first training step against the number of images, for ``data.loader:
stream`` (and, as the contrast, ``memory``), on generated ImageNet-layout folders of 500x375 JPEGs.

Each (size, loader) cell runs in its own subprocess: a short training of a tiny Swin at 224 px (the official
transforms' size) through ``swin_lit.train.runs.train``, the same number of steps for every size (so that only
the dataset's size differs), with DataLoader worker processes. The subprocess reports its own peak RSS
(``getrusage(RUSAGE_SELF)``); the peak of the proportional set size (PSS: shared pages split among the processes
that share them, so forked workers are not counted twice) summed over itself and its workers, sampled every 0.1 s
from ``/proc/<pid>/smaps_rollup``; and the seconds from the start of ``train`` to the first training batch. The
folders hold 10 classes; the val split is the same size for every cell; the 600-image training split is a
subset (hard links) of the 2,400-image one.

    python benchmarks/stream_memory.py                         # 600 and 2,400 images, writes the table
    python benchmarks/stream_memory.py --sizes 600 2400 --steps 20 --loaders stream
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from swin_lit.train.runs import cpu_model

ROOT = Path(__file__).resolve().parents[1]
CLASSES = 10
VAL_PER_CLASS = 5
DISTINCT = 60  # distinct photos, written under many names (their content does not matter to memory)
MODEL = ["model.img_size=224", "model.patch_size=4", "model.window_size=7", "model.embed_dim=16",
         "model.depths=[1, 1]", "model.num_heads=[1, 2]", "model.mlp_ratio=2.0"]


def make_folders(base: Path, sizes: list[int]) -> dict[int, Path]:
    """``base/n<size>/{train,val}/<wnid>/*.JPEG`` for each size; smaller training sets are hard links into the
    largest."""
    from swin_lit.data.photos import photo_jpeg

    photos = [photo_jpeg(500, 375, seed=i) for i in range(DISTINCT)]
    largest = max(sizes)
    folders = {}
    for size in sorted(sizes, reverse=True):
        root = base / f"n{size}"
        for c in range(CLASSES):
            wnid = f"n{c:08d}"
            for split, count in (("train", size // CLASSES), ("val", VAL_PER_CLASS)):
                folder = root / split / wnid
                folder.mkdir(parents=True)
                for i in range(count):
                    target = folder / f"{wnid}_{i}.JPEG"
                    if size == largest:
                        target.write_bytes(photos[(c * 131 + i + (split == "val") * 7) % DISTINCT])
                    else:
                        os.link(base / f"n{largest}" / split / wnid / target.name, target)
        folders[size] = root
    return folders


def _pss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def _children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return out


class PssPeak:
    """Samples the summed PSS of this process and its children every ``every`` seconds on a thread."""

    def __init__(self, every: float = 0.1) -> None:
        import threading

        self.peak_kb, self.peak_processes, self.every, self._stop = 0, 0, every, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        me = os.getpid()
        while not self._stop.is_set():
            children = _children(me)
            total = _pss_kb(me) + sum(_pss_kb(c) for c in children)
            if total > self.peak_kb:
                self.peak_kb, self.peak_processes = total, 1 + len(children)
            self._stop.wait(self.every)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak_kb / 1024


def child(args: argparse.Namespace) -> None:
    """One cell: train, then print one JSON line with the measurements."""
    import resource

    import lightning.pytorch as pl

    from swin_lit.config import load_config
    from swin_lit.train.runs import train

    started = time.perf_counter()
    first: list[float] = []

    class FirstStep(pl.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            if not first:
                first.append(time.perf_counter() - started)

    cfg = load_config(None, [*MODEL, "data.source=folder", f"data.root={args.child}", f"data.loader={args.loader}",
                             f"data.cache_dir={args.cache}", f"data.num_workers={args.workers}", "data.batch_size=16",
                             "data.eval_batch_size=25", "trainer.max_epochs=1",
                             f"trainer.limit_train_batches={args.steps}", "trainer.limit_val_batches=2",
                             "trainer.threads=1", "trainer.progress=false", "trainer.compile=false"])
    pss = PssPeak()
    train(cfg, args.runs, progress=False, callbacks=[FirstStep()])
    self_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"peak_main_mb": self_kb / 1024, "peak_pss_total_mb": pss.stop(),
                      "processes_at_pss_peak": pss.peak_processes,
                      "first_step_s": first[0] if first else None, "wall_s": time.perf_counter() - started}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[600, 2400], help="training images per cell")
    p.add_argument("--loaders", nargs="+", default=["stream", "memory"], choices=["stream", "memory"])
    p.add_argument("--steps", type=int, default=20, help="training steps per cell (batch 16)")
    p.add_argument("--workers", type=int, default=2, help="DataLoader worker processes")
    p.add_argument("--out", default=str(ROOT / "results" / "benchmarks" / "stream_memory.md"))
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--loader", help=argparse.SUPPRESS)
    p.add_argument("--cache", help=argparse.SUPPRESS)
    p.add_argument("--runs", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        return child(args)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    rows = []
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="stream_memory_") as tmp:
        t = time.perf_counter()
        folders = make_folders(Path(tmp) / "data", args.sizes)
        print(f"generated folders in {time.perf_counter() - t:.1f} s", file=sys.stderr)
        for loader in args.loaders:
            for size in args.sizes:
                cmd = [sys.executable, __file__, "--child", str(folders[size]), "--loader", loader, "--cache",
                       str(Path(tmp) / f"cache-{loader}-{size}"), "--runs", str(Path(tmp) / f"runs-{loader}-{size}"),
                       "--steps", str(args.steps), "--workers", str(args.workers)]
                done = subprocess.run(cmd, env=env, capture_output=True, text=True)
                if done.returncode:
                    sys.exit(f"cell {loader} {size} failed:\n{done.stderr[-3000:]}")
                row = {"loader": loader, "images": size, **json.loads(done.stdout.strip().splitlines()[-1])}
                print(json.dumps(row), file=sys.stderr)
                rows.append(row)
    load_after = os.getloadavg()[0]
    write_table(rows, args, load_before, load_after)


def write_table(rows: list[dict], args, load_before: float, load_after: float) -> None:
    lines = ["# Streaming data: peak resident memory against the number of images", "",
             f"`python benchmarks/stream_memory.py --sizes {' '.join(map(str, args.sizes))} --loaders "
             f"{' '.join(args.loaders)} --steps {args.steps} --workers {args.workers}`; CPU: {cpu_model()}, "
             f"{os.cpu_count()} cores, load average {load_before:.1f} before and {load_after:.1f} after (a machine "
             "shared with other work: times are noisy, memory much less so).", "",
             f"Each cell: a subprocess training a tiny Swin at 224 px for {args.steps} steps of 16 images (the same "
             f"for every size) on an ImageNet-layout folder of 500x375 JPEGs ({CLASSES} classes, "
             f"{CLASSES * VAL_PER_CLASS} val images), {args.workers} DataLoader workers, then validating and "
             "testing on the val split. Peak RSS of the training process (MB); "
             "peak PSS summed over the training process and its workers (MB; shared pages counted once); seconds from "
             "the start of training to the first training batch (listing, or decoding, included).",
             "",
             "| loader | images | peak RSS, main (MB) | peak PSS, main + workers (MB) | first step (s) | wall (s) |",
             "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['loader']} | {r['images']:,} | {r['peak_main_mb']:.0f} | {r['peak_pss_total_mb']:.0f} | "
                     f"{r['first_step_s']:.1f} | {r['wall_s']:.1f} |")
    for loader in args.loaders:
        cells = sorted((r for r in rows if r["loader"] == loader), key=lambda r: r["images"])
        if len(cells) >= 2:
            lo, hi = cells[0], cells[-1]
            lines.append("")
            lines.append(f"{loader}: from {lo['images']:,} to {hi['images']:,} images the main process's peak RSS "
                         f"changes by {hi['peak_main_mb'] - lo['peak_main_mb']:+.0f} MB and the summed PSS of it and "
                         f"its workers by {hi['peak_pss_total_mb'] - lo['peak_pss_total_mb']:+.0f} MB; the first step "
                         "comes "
                         f"{hi['first_step_s'] - lo['first_step_s']:+.1f} s later.")
    lines += ["", "Goal (issue 27): peak resident memory flat from 600 to 2,400 images, within 150 MB."]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    print(out)


if __name__ == "__main__":
    main()
