"""Why the bicubic-resized V1 table collapsed at W8 in results/swin_v2_table1 (an experiment, not a guess).

The committed diagnosis is of the study as it was until 2026-12-02 (three stages, relation scenes; revision
aec563d); the script reads the current spec, the one-stage model on the anchor marks. ``w8_collapse.py`` rebuilds
the old cells and finds the cause (the first stage's window partition; the table was never used).

Trains the study's ``table (bicubic)`` cells (same spec, same configs, so the same run folders as a fresh
``swin-lit ablate``), then, for each trained model:

1. evaluates it without fine-tuning on a grid of image sizes x window sizes (the image and the window
   moved separately, where the study moves them together), so that a collapse can be pinned on the image
   size, the window, or their ratio;
2. at the trained size and each of the study's targets, evaluates it again with one stage's relative bias
   (every block of that stage) set to zero: how much the resized table matters there;
3. records each stage's geometry (token map, window, shift) and the resized tables' ranges;
4. with ``--finetune K``, fine-tunes it K epochs (the study's recipe) at the study's targets and at 64 px with
   the trained window, recording the training loss of each epoch.

    python benchmarks/bicubic_collapse.py --finetune 1    # the committed run: 3 seeds, ~35 min here
    python benchmarks/bicubic_collapse.py --seeds 0       # one seed, no fine-tuning

Output: results/swin_v2_table1/bicubic_collapse.{md,json} (tables only; what they show is in
results/benchmarks/notes.md and benchmarks/README.md).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from swin_lit.ablate.spec import load_plan  # noqa: E402
from swin_lit.models.transfer import transfer  # noqa: E402
from swin_lit.tasks.classification import TASK as CLASSIFICATION  # noqa: E402
from swin_lit.train.runs import build_datamodule, load_trained_model, train  # noqa: E402
from swin_lit.train.transfer import at_target, check_target, parse_target, transfer_cell  # noqa: E402
from swin_lit.typed import ConfigError  # noqa: E402

SPEC = ROOT / "ablations" / "swin_v2_table1.yaml"
VARIANT = "table (bicubic)"
IMAGES = (32, 48, 64, 80)
WINDOWS = (4, 6, 8, 10)
FINETUNE = ("48:6", "64:4", "64:8", "80:10")  # the study's targets and 64 px at the trained window


def test_split(cfg, moved):
    dm = build_datamodule(at_target(cfg, moved))
    dm.setup("test")
    return dm.test_dataloader()


def stage_tables(model) -> list[list[torch.Tensor]]:
    return [[block.attn.relative_bias.table for block in layer.blocks] for layer in model.layers]


def geometry(model) -> list[dict]:
    return [{"tokens": "x".join(map(str, g.resolution)), "window": g.window, "shift": g.shift}
            for g in model.cfg.stages()]


def top1(model, loader, cfg) -> float:
    """Test top-1 (%) as a classification run scores its test split."""
    return round(CLASSIFICATION.evaluate(model, loader, cfg)["top1"], 2)


def zero_stage_bias(model, stage: int) -> list[torch.Tensor]:
    """Stage ``stage``'s tables set to zero, in place; returns the old tables."""
    old = []
    for block in model.layers[stage].blocks:
        param = block.attn.relative_bias.table
        old.append(param.data.clone())
        param.data.zero_()
    return old


def restore(model, stage: int, old: list[torch.Tensor]) -> None:
    for block, tensor in zip(model.layers[stage].blocks, old):
        block.attn.relative_bias.table.data.copy_(tensor)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--out", default=str(ROOT / "runs" / "bicubic_collapse"), help="run folders (default %(default)s)")
    p.add_argument("--report", default=str(ROOT / "results" / "swin_v2_table1" / "bicubic_collapse"))
    p.add_argument("--finetune", type=int, default=0, metavar="EPOCHS",
                   help=f"also fine-tune each trained run at {', '.join(FINETUNE)} for EPOCHS epochs (study recipe)")
    a = p.parse_args()

    plan = load_plan(SPEC)
    cells = [c for c in plan.cells if c.kind == "train" and c.variant == VARIANT and c.seed in a.seeds]
    targets = [parse_target(text) for text in plan.spec.transfer.targets]
    results = {"spec": str(SPEC.relative_to(ROOT)), "variant": VARIANT, "seeds": {}, "geometry": {}}
    t0 = time.time()
    for cell in cells:
        run_dir, record = train(cell.config, a.out, progress=False)
        trained = load_trained_model(run_dir)
        cfg = cell.config
        seed = {"run_dir": str(run_dir), "test_top1": record["test"]["top1"], "grid": {}, "stages": {}}
        for img in IMAGES:
            for win in WINDOWS:
                try:
                    moved_cfg = check_target(cfg.model, img, win, "bicubic", cfg.task)
                except ConfigError as error:  # a size the model cannot take is reported, not fatal
                    seed["grid"][f"{img}:{win}"] = f"refused: {error}"
                    continue
                moved = transfer(trained, img, win, "bicubic").eval()
                seed["grid"][f"{img}:{win}"] = top1(moved, test_split(cfg, moved_cfg), cfg)
                results["geometry"][f"{img}:{win}"] = geometry(moved)
        for img, win in [(cfg.model.img_size, cfg.model.window_size), *targets]:
            moved_cfg = check_target(cfg.model, img, win, "bicubic", cfg.task)
            moved = transfer(trained, img, win, "bicubic").eval()
            loader = test_split(cfg, moved_cfg)
            row = {"all": seed["grid"][f"{img}:{win}"]}  # the grid holds every study size
            for stage in range(len(moved.layers)):
                old = zero_stage_bias(moved, stage)
                row[f"stage {stage} zero"] = top1(moved, loader, cfg)
                restore(moved, stage, old)
            row["table range"] = [[round(t.min().item(), 2), round(t.max().item(), 2)]
                                  for t in (tables[0] for tables in stage_tables(moved))]
            seed["stages"][f"{img}:{win}"] = row
        if a.finetune:
            seed["finetune"] = {}
            for target in FINETUNE:
                img, win = parse_target(target)
                record = transfer_cell(run_dir, img, win, "bicubic", finetune_epochs=a.finetune,
                                       finetune_lr=plan.spec.transfer.finetune_lr, out=a.out)
                history = json.loads((Path(record["ft_run_dir"]) / "history.json").read_text())["history"]
                seed["finetune"][target] = {"before": round(record["top1"], 2), "after": round(record["top1_ft"], 2),
                                            "train_loss": [round(h["train_loss"], 3) for h in history]}
        results["seeds"][str(cell.seed)] = seed
        print(json.dumps({"seed": cell.seed, "grid": seed["grid"]}), flush=True)
    results["seconds"] = round(time.time() - t0, 1)
    Path(a.report).parent.mkdir(parents=True, exist_ok=True)
    Path(a.report + ".json").write_text(json.dumps(results, indent=1) + "\n")
    Path(a.report + ".md").write_text(markdown(results) + "\n")
    print(markdown(results))


def _mean(values) -> str:
    numbers = [v for v in values if isinstance(v, (int, float))]
    if not numbers:
        return "refused"
    mean = sum(numbers) / len(numbers)
    if len(numbers) == 1:
        return f"{mean:.1f}"
    std = (sum((v - mean) ** 2 for v in numbers) / (len(numbers) - 1)) ** 0.5
    return f"{mean:.1f} ± {std:.1f}"


def markdown(results: dict) -> str:
    seeds = results["seeds"]
    lines = [f"# Bicubic table transfer, diagnosed ({results['variant']}, {results['spec']})", "",
             f"Seeds {', '.join(seeds)}; test top-1 (%) without fine-tuning, mean ± sample std over the seeds; "
             f"{results['seconds']} s in all (training of the runs not already in --out included).", "",
             "## Image size x window (rows: image px, columns: window)", "",
             "| image \\ window | " + " | ".join(map(str, WINDOWS)) + " |", "|---" * (len(WINDOWS) + 1) + "|"]
    for img in IMAGES:
        cells = [_mean(s["grid"].get(f"{img}:{w}") for s in seeds.values()) for w in WINDOWS]
        lines.append(f"| {img} | " + " | ".join(cells) + " |")
    lines += ["", "Stage geometry (tokens, window, shift) of each cell:", ""]
    for key, stages in results["geometry"].items():
        lines.append(f"- {key}: " + "; ".join(f"{g['tokens']} w{g['window']} s{g['shift']}" for g in stages))
    first = next(iter(seeds.values()))
    lines += ["", "## One stage's bias zeroed, at the trained size and the study's targets", ""]
    columns = [c for c in dict.fromkeys(k for row in first["stages"].values() for k in row) if c != "table range"]
    lines += ["| image:window | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for key in first["stages"]:
        cells = [_mean(s["stages"][key].get(c) for s in seeds.values()) for c in columns]
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    if "finetune" in first:
        lines += ["", "## Fine-tuned at the target (the study's recipe)", "",
                  "| image:window | before | after | train loss per epoch (seed " + next(iter(seeds)) + ") |",
                  "|---|---|---|---|"]
        for key, row in first["finetune"].items():
            before = _mean(s["finetune"][key]["before"] for s in seeds.values())
            after = _mean(s["finetune"][key]["after"] for s in seeds.values())
            lines.append(f"| {key} | {before} | {after} | {', '.join(map(str, row['train_loss']))} |")
    lines += ["", "Resized table range per stage (first block, seed " + next(iter(seeds)) + "):", ""]
    for key, row in first["stages"].items():
        ranges = (f"stage {i} [{lo}, {hi}]" for i, (lo, hi) in enumerate(row["table range"]))
        lines.append(f"- {key}: " + "; ".join(ranges))
    return "\n".join(lines)


if __name__ == "__main__":
    main()
