"""Train a small Swin on real CIFAR-10 for a fixed budget, and measure Lightning's overhead.

    python benchmarks/train_cifar.py                    # full run (about 10 minutes on 2 cores)
    python benchmarks/train_cifar.py --epochs 1 --overhead-steps 20

1. ``swin-lit train`` on the shared CIFAR-10 JPEG tree (unpacked to $TMPDIR/cifar10 on first use):
   epochs, wall time, train images/s and test top-1 from the run's result.json.
2. Lightning overhead: training images/s through the Trainer vs a bare PyTorch loop on the same model,
   data, batch size and optimizer, measured back to back in this process (alternating, medians).
Writes results/benchmarks/train_cifar.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ARCHIVE = ROOT.parent / "shared" / "data" / "cifar10-jpeg.tar.gz"
MODEL = ["model.img_size=32", "model.patch_size=2", "model.embed_dim=48", "model.depths=[2, 2, 2]",
         "model.num_heads=[3, 6, 12]", "model.window_size=4", "model.mlp_ratio=4.0", "model.num_classes=10"]


def unpack() -> Path:
    target = Path(os.environ.get("TMPDIR", tempfile.gettempdir())) / "cifar10"
    if not (target / "train").is_dir():
        if not ARCHIVE.is_file():
            sys.exit(f"{ARCHIVE} not found: this benchmark needs the shared CIFAR-10 archive")
        target.mkdir(parents=True, exist_ok=True)
        with tarfile.open(ARCHIVE) as tar:
            tar.extractall(target, filter="data")
    found = [p for p in target.rglob("train") if p.is_dir()]
    return found[0].parent


def cifar_overrides(root: Path, epochs: int) -> list[str]:
    """The ``--set`` overrides of this benchmark's run (also used by compile_payback.py)."""
    return MODEL + ["data.source=folder", f"data.root={root}", "data.batch_size=128", "data.val_fraction=0.1",
                    f"trainer.max_epochs={epochs}", "trainer.progress=false", "optim.lr=2e-3",
                    "optim.warmup_epochs=0.5", "name=cifar10"]


def overhead(cfg, steps: int, rounds: int) -> dict:
    """Images/s of the same training steps through Lightning and through a bare loop."""
    import lightning.pytorch as pl
    import torch

    from swin_lit.train.module import SwinClassifier
    from swin_lit.train.runs import _quiet_lightning, build_datamodule

    _quiet_lightning()
    dm = build_datamodule(cfg)
    dm.setup("fit")
    batch = cfg.data.batch_size

    def lightning_run() -> float:
        module = SwinClassifier(cfg)
        trainer = pl.Trainer(max_steps=steps, accelerator="cpu", logger=False, enable_checkpointing=False,
                             enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                             limit_val_batches=0, deterministic=True)
        start = time.perf_counter()
        trainer.fit(module, datamodule=dm)
        return steps * batch / (time.perf_counter() - start)

    def bare_run() -> float:
        module = SwinClassifier(cfg)
        model = module.model.train()
        opt = torch.optim.AdamW(model.parameters(), lr=cfg.optim.lr, weight_decay=cfg.optim.weight_decay)
        loader = dm.train_dataloader()
        start = time.perf_counter()
        done = 0
        while done < steps:
            for x, y in loader:
                loss = torch.nn.functional.cross_entropy(model(x), y, label_smoothing=cfg.optim.label_smoothing)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip)
                opt.step()
                done += 1
                if done == steps:
                    break
        return steps * batch / (time.perf_counter() - start)

    lit, bare = [], []
    for _ in range(rounds):
        bare.append(bare_run())
        lit.append(lightning_run())
    return {"steps": steps, "rounds": rounds, "lightning_images_per_s": statistics.median(lit),
            "bare_images_per_s": statistics.median(bare),
            "ratio": statistics.median(lit) / statistics.median(bare), "all_lightning": lit, "all_bare": bare}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--overhead-steps", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default=str(Path(tempfile.gettempdir()) / "swin_lit_cifar_runs"))
    args = parser.parse_args()

    from swin_lit.config import load_config
    from swin_lit.train.runs import train

    root = unpack()
    sets = cifar_overrides(root, args.epochs)
    cfg = load_config(None, sets)
    start = time.perf_counter()
    run_dir, record = train(cfg, args.out, progress=False)
    wall = time.perf_counter() - start
    result = {
        "config": sets, "run_dir": str(run_dir), "epochs": record["epochs"], "wall_time_s": record["wall_time_s"],
        "command_wall_s": wall, "train_images_per_s": record["train_images_per_s"],
        "eval_images_per_s": record["eval_images_per_s"], "test_top1": record["test"]["top1"],
        "val_top1": record["val"]["top1"], "params": record["params"], "flops": record["flops"],
        "device": record["device"], "threads": record["threads"],
    }
    result["lightning_overhead"] = overhead(cfg, args.overhead_steps, args.rounds)
    out = ROOT / "results" / "benchmarks"
    out.mkdir(parents=True, exist_ok=True)
    (out / "train_cifar.json").write_text(json.dumps(result, indent=2))
    o = result["lightning_overhead"]
    md = [
        "# Small Swin on CIFAR-10 (shared JPEG tree), fixed budget",
        "",
        f"Command: `python benchmarks/train_cifar.py --epochs {args.epochs}`; device: {result['device']}, "
        f"{result['threads']} threads.",
        "",
        "| epochs | wall time (s) | train img/s | eval img/s | val top-1 | test top-1 | params | MFLOPs |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| {result['epochs']} | {result['wall_time_s']:.0f} | {result['train_images_per_s']:.0f} | "
        f"{result['eval_images_per_s']:.0f} | {result['val_top1']:.2f} | {result['test_top1']:.2f} | "
        f"{result['params']:,} | {result['flops'] / 1e6:.1f} |",
        "",
        f"Lightning overhead ({o['steps']} steps, {o['rounds']} alternating rounds, medians): Trainer "
        f"{o['lightning_images_per_s']:.0f} img/s vs bare loop {o['bare_images_per_s']:.0f} img/s, "
        f"ratio **{o['ratio']:.2f}**.",
    ]
    (out / "train_cifar.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
