"""Does ``trainer.compile: true`` pay back its compile time on a real run? Eager vs compiled, side by side.

    python benchmarks/compile_payback.py                 # 1 epoch each, ABBA order (about 10 minutes on 2 cores)
    python benchmarks/compile_payback.py --epochs 2 --rounds 1

The same ``swin-lit train`` config as ``train_cifar.py`` (small Swin, shared CIFAR-10 JPEG tree) is run with
``trainer.compile`` false and true, in the order eager, compiled, compiled, eager, ... so that drift of this
shared VM hits both alike. Each run starts in a fresh folder; the decoded-image cache is built before the first
timed run. Inductor's compile cache starts empty (a fresh TORCHINDUCTOR_CACHE_DIR), so the first compiled run
pays the whole compile ("cold") and later ones reuse it ("warm"), as later seeds of one architecture do in an
ablation grid on one machine. Reported per run: the whole run's wall time (compile, training, validation,
test), the training-loop images/s (includes the compile of the first steps) and test top-1.
Writes results/benchmarks/compile_payback.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_cifar import ROOT, cifar_overrides, unpack  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=2, help="eager/compiled pairs, order alternating (ABBA)")
    parser.add_argument("--out", default=str(Path(tempfile.gettempdir()) / "swin_lit_compile_payback"))
    args = parser.parse_args()
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="inductor-cold-")  # before torch is imported

    from swin_lit.config import load_config
    from swin_lit.train.runs import build_datamodule, train

    root = unpack()
    sets = cifar_overrides(root, args.epochs)
    build_datamodule(load_config(None, sets)).setup("fit")  # the decode cache, outside the timed runs
    runs = []
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for i in range(args.rounds):
        order = ("eager", "compiled") if i % 2 == 0 else ("compiled", "eager")
        for kind in order:
            cfg = load_config(None, sets + [f"trainer.compile={'true' if kind == 'compiled' else 'false'}"])
            label = kind
            if kind == "compiled":
                label += " (cold cache)" if not any(r["kind"] == "compiled" for r in runs) else " (warm cache)"
            start = time.perf_counter()
            _, record = train(cfg, Path(args.out) / f"{stamp}-{i}-{kind}", progress=False)
            runs.append({"kind": kind, "label": label, "command_wall_s": time.perf_counter() - start,
                         "train_images_per_s": record["train_images_per_s"], "train_time_s": record["train_time_s"],
                         "test_top1": record["test"]["top1"]})
            print(runs[-1], flush=True)

    result = {"config": sets, "epochs": args.epochs, "rounds": args.rounds, "runs": runs}
    out = ROOT / "results" / "benchmarks"
    out.mkdir(parents=True, exist_ok=True)
    (out / "compile_payback.json").write_text(json.dumps(result, indent=2))
    md = [
        "# torch.compile on a real run: eager vs compiled, side by side",
        "",
        f"Command: `python benchmarks/compile_payback.py --epochs {args.epochs} --rounds {args.rounds}` "
        f"(the small Swin of train_cifar.py on the shared CIFAR-10: {args.epochs} epoch(s) of 45,000 training images, "
        "batch 128, validation on 5,000, test on 10,000). Runs in the order they ran; the compile cache starts empty.",
        "",
        "| run | whole run wall (s) | training loop (s) | training img/s (incl. compile) | test top-1 |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in runs:
        md.append(f"| {r['label']} | {r['command_wall_s']:.0f} | {r['train_time_s']:.0f} | "
                  f"{r['train_images_per_s']:.0f} | {r['test_top1']:.2f} |")
    (out / "compile_payback.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
