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

    python benchmarks/compile_payback.py --study --epochs 4   # the study view (about an hour on 2 cores)

The study view: one CIFAR-10 cell at 3 seeds, as an ablation grid runs it, once with ``trainer.compile: false``
and once with ``auto``, runs interleaved (eager 0, auto 0, auto 1, eager 1, eager 2, auto 2), one fresh inductor
cache for all of auto's runs (a study's cache). ``auto`` decides per run (``swin_lit.train.compile``): at 4 epochs
the first seed's 25 TMAC of training repay a cold compile, and the later seeds find the architecture in the
cache. Reported: each run's path, compile seconds and wall time, and the total of auto over eager (target 0.85).
Writes results/benchmarks/compile_payback_study.{md,json}.
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
    parser.add_argument("--study", action="store_true", help="3 seeds of one cell, eager vs trainer.compile: auto")
    parser.add_argument("--seeds", type=int, default=3, help="--study: seeds of the cell")
    args = parser.parse_args()
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="inductor-cold-")  # before torch is imported
    if args.study:
        return study_view(args)

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
    write("compile_payback", result, md)


def write(name: str, result: dict, md: list[str]) -> None:
    """results/benchmarks/<name>.json and .md; the table printed."""
    out = ROOT / "results" / "benchmarks"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(result, indent=2))
    (out / f"{name}.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


def study_view(args) -> None:
    from swin_lit.config import load_config
    from swin_lit.train.runs import build_datamodule, train

    root = unpack()
    sets = cifar_overrides(root, args.epochs)
    build_datamodule(load_config(None, sets)).setup("fit")  # the decode cache, outside the timed runs
    cache = Path(os.environ["TORCHINDUCTOR_CACHE_DIR"])
    stamp = time.strftime("%Y%m%d-%H%M%S")
    runs = []
    for seed in range(args.seeds):
        for kind in (("eager", "auto") if seed % 2 == 0 else ("auto", "eager")):
            setting = "false" if kind == "eager" else "auto"
            cfg = load_config(None, sets + [f"trainer.compile={setting}", f"seed={seed}"])
            start = time.perf_counter()
            _, record = train(cfg, Path(args.out) / f"{stamp}-seed{seed}-{kind}", progress=False,
                              compile_cache=cache if kind == "auto" else None)
            runs.append({"kind": kind, "seed": seed, "command_wall_s": time.perf_counter() - start,
                         "path": record["compile"]["path"], "reason": record["compile"]["reason"],
                         "compile_s": record["compile"]["compile_s"], "train_time_s": record["train_time_s"],
                         "train_images_per_s": record["train_images_per_s"], "test_top1": record["test"]["top1"]})
            print(runs[-1], flush=True)
    total = {kind: sum(r["command_wall_s"] for r in runs if r["kind"] == kind) for kind in ("eager", "auto")}
    ratio = total["auto"] / total["eager"]
    result = {"config": sets, "epochs": args.epochs, "seeds": args.seeds, "runs": runs, "total_wall_s": total,
              "auto_over_eager": ratio}
    md = [
        "# trainer.compile: auto in a study: one cell at 3 seeds, eager vs auto, side by side",
        "",
        f"Command: `python benchmarks/compile_payback.py --study --epochs {args.epochs} --seeds {args.seeds}` (the "
        f"small Swin of train_cifar.py on the shared CIFAR-10, {args.epochs} epoch(s) of 45,000 training images, "
        "batch 128). Runs in the order they ran; auto's runs share one inductor cache that starts empty.",
        "",
        "| seed | run | path | why | compile (s) | whole run wall (s) | training loop (s) | test top-1 |",
        "|---:|---|---|---|---:|---:|---:|---:|",
    ]
    for r in runs:
        compile_s = f"{r['compile_s']:.0f}" if r["compile_s"] is not None else "-"
        md.append(f"| {r['seed']} | {r['kind']} | {r['path']} | {r['reason']} | {compile_s} | "
                  f"{r['command_wall_s']:.0f} | {r['train_time_s']:.0f} | {r['test_top1']:.2f} |")
    md += ["", f"Total wall time: eager {total['eager']:.0f} s, auto {total['auto']:.0f} s; auto / eager "
               f"**{ratio:.2f}** (target 0.85)."]
    write("compile_payback_study", result, md)


if __name__ == "__main__":
    main()
