"""One training run of the old and the new code side by side: the same config, alternating, in fresh processes.

    python benchmarks/train_ab.py --old /path/to/old/checkout --new . --repeats 4

Each repeat runs ``swin-lit train`` once per tree (the order alternates), each into its own empty output folder,
with ``PYTHONPATH`` pointing at that tree, and reads the run's ``result.json``: training images per second (the
training loop only), evaluation images per second, and the whole process's wall time. Prints each repeat and the
median of the new / old ratios with their range, and whether both trees gave the same test top-1 (one machine,
one seed: they should, where the computation did not change) and the test loss of each (result version 2 averages
the loss per image over the split, version 1 averaged the batch means: equal where every batch is full).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SETTINGS = ["--config", "configs/marks.yaml", "--set", "trainer.max_epochs=3", "--set", "data.train_size=2000",
            "--set", "data.val_size=500", "--set", "data.test_size=1000", "--set", "trainer.threads=1",
            "--set", "trainer.progress=false"]


def run(tree: Path, out: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree.resolve())}
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "swin_lit.cli", "train", *SETTINGS, "--out", str(out)], cwd=tree,
                   env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    (result,) = out.glob("*/result.json")
    record = json.loads(result.read_text())
    return {"train": record["train_images_per_s"], "eval": record["eval_images_per_s"],
            "wall": time.perf_counter() - started, "test": record["test"]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--old", type=Path, required=True)
    p.add_argument("--new", type=Path, default=Path("."))
    p.add_argument("--repeats", type=int, default=4)
    args = p.parse_args()
    ratios: dict[str, list[float]] = {"train": [], "eval": [], "wall": []}
    same = True
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeats):
            order = [("old", args.old), ("new", args.new)]
            if i % 2:
                order.reverse()
            got = {name: run(tree, Path(tmp) / f"{name}{i}") for name, tree in order}
            same &= got["old"]["test"]["top1"] == got["new"]["test"]["top1"]
            for key in ratios:
                ratios[key].append(got["new"][key] / got["old"][key])
            print(f"repeat {i} ({order[0][0]} first): " + "; ".join(
                f"{n} train {g['train']:.0f} img/s, eval {g['eval']:.0f} img/s, wall {g['wall']:.1f} s"
                for n, g in got.items()), flush=True)
    for key, values in ratios.items():
        print(f"new / old {key}: median {statistics.median(values):.3f} (range {min(values):.3f}-{max(values):.3f})")
    print(f"same test top-1 in every repeat: {same}; test loss old {got['old']['test']['loss']!r}, "
          f"new {got['new']['test']['loss']!r}")


if __name__ == "__main__":
    main()
