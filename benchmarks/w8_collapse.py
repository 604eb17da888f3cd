"""The W8 collapse of the old swin_v2_table1 study, pinned down (an experiment, not a guess).

Until 2026-12-02 (revision aec563d) swin_v2_table1 trained a three-stage tiny Swin with the V2 block
(res-post-norm + cosine) on the relation scenes at 32 px / window 4 and moved it to 48/6, 64/8 and 80/10. The
bicubic-table row fine-tuned to 27-28% top-1 at W6 and W10 but stayed at chance at W8/I64 (15.3%, training loss
above ln 8); ``bicubic_collapse.py`` ruled out the table resize but left the cause open. This script rebuilds that
study's cells from ``configs/default.yaml`` and the old spec's budget (below) and measures, per seed:

1. each variant's test top-1 and loss as trained, and again with every block's relative bias removed: does the
   model use its bias at all?
2. a fine-tuning probe: ``--steps`` steps of the study's fine-tuning optimiser (``finetune_config``'s optim: AdamW,
   lr 2e-4 held constant, weight decay 1e-8, the run's grad clip and label smoothing) on the target's training
   images, reporting the mean training loss of the first and the last fifth of the steps. First at the study's
   targets (and 64/4), for the table model and the log-CPB model; then, for the table model at 64/8, with its
   tables as resized, zeroed, or the trained table kept at the centre offsets (zero beyond); then at each target of
   ``STAGE0`` with stage 0's window and shift forced, stages 1 and 2 by the official rule (the geometry patched in
   ``SwinConfig.stages`` for the probe only).
3. with ``--finetune``, the study's real one-epoch fine-tuning (``transfer_cell``) of the table model at the study's
   targets and 64/4, as an anchor for the probe.

    python benchmarks/w8_collapse.py --finetune     # the committed run: 3 seeds, 22 min on 2 cores
    python benchmarks/w8_collapse.py --seeds 0 --finetune

Output: results/benchmarks/w8_collapse.{md,json}; what they show is in results/benchmarks/notes.md.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from swin_lit.config import load_config  # noqa: E402
from swin_lit.models.config import SwinConfig  # noqa: E402
from swin_lit.models.registry import transfer_methods  # noqa: E402
from swin_lit.models.transfer import transfer  # noqa: E402
from swin_lit.tasks.classification import TASK as CLASSIFICATION  # noqa: E402
from swin_lit.train.runs import build_datamodule, load_trained_model, train  # noqa: E402
from swin_lit.train.transfer import (  # noqa: E402
    check_target,
    finetune_config,
    parse_target,
    transfer_cell,
)

OLD_BUDGET = [  # ablations/swin_v2_table1.yaml at revision aec563d, over configs/default.yaml
    "model.patch_size=4", "model.depths=[2,2,2]", "model.num_heads=[2,4,8]", "model.norm=res_post",
    "model.attention=cosine", "data.train_size=8000", "data.val_size=500", "data.test_size=1000",
    "trainer.max_epochs=10"]
VARIANTS = {"table (bicubic)": "table", "log-spaced CPB": "cpb_log"}
TARGETS = ("48:6", "64:4", "64:8", "80:10")
# (target, stage 0's window, stage 0's shift): every shift of window 8 at 64 px, then other targets. The rule in
# results/benchmarks/notes.md (the fine-tuning stalls where no stage-0 window boundary cuts a stage-2 token) was
# read off the 64 px rows and the default geometries; 80:10 at 10/0 and 20/0, 96:12 at 12/0, 12/2, 12/4 and
# 128:8 at 8/2 were predicted by it before they were first run (seed 0). 32:8 (the trained image, one window in
# stage 0) is the exception seen.
STAGE0 = (("64:8", 4, 2), ("64:8", 8, 0), ("64:8", 8, 1), ("64:8", 8, 2), ("64:8", 8, 3), ("64:8", 8, 4),
          ("64:8", 8, 5), ("64:8", 8, 6), ("64:8", 8, 7), ("64:8", 16, 0), ("80:10", 10, 0), ("80:10", 20, 0),
          ("96:12", 12, 0), ("96:12", 12, 2), ("96:12", 12, 4), ("128:8", 8, 2), ("128:8", 8, 4), ("32:8", 8, 0))
MERGES_TO_STAGE2 = 2  # a stage-2 token covers 2^2 x 2^2 stage-0 tokens
FT_LR = 2e-4  # the old spec's transfer.finetune_lr


@contextlib.contextmanager
def stage0_forced(window: int, shift: int):
    """Models built inside use this window and shift in stage 0; the other stages keep the official rule."""
    rule = SwinConfig.stages

    def stages(self, grid=None):
        first, *rest = rule(self, grid)
        return [dataclasses.replace(first, window=window, shift=shift), *rest]

    SwinConfig.stages = stages
    try:
        yield
    finally:
        SwinConfig.stages = rule


def cuts_stage2_tokens(tokens: int, window: int, shift: int) -> bool:
    """Whether some window boundary of stage 0 (plain or shifted blocks) falls inside a stage-2 token's span."""
    if window >= tokens:
        return False  # one window: no boundary inside the map
    edges = {k * window for k in range(tokens // window)} | {(k * window + shift) % tokens
                                                              for k in range(tokens // window)}
    return any(edge % 2**MERGES_TO_STAGE2 for edge in edges)


def relative_tables(model) -> list[torch.Tensor]:
    return [block.attn.relative_bias.table for layer in model.layers for block in layer.blocks]


def centred(new: torch.Tensor, old: torch.Tensor) -> torch.Tensor:
    """``old`` ((2m-1)^2, heads) at the centre offsets of a ((2M-1)^2, heads) table, zero beyond (M >= m)."""
    n, o = round(new.shape[0] ** 0.5), round(old.shape[0] ** 0.5)
    grid = new.new_zeros(n, n, new.shape[1])
    a = (n - o) // 2
    grid[a:a + o, a:a + o] = old.view(o, o, -1)
    return grid.view(n * n, -1)


def probe(model, loader, steps: int, optim) -> dict:
    """``steps`` steps of the fine-tuning optimiser (``optim``: the fine-tuning run's optim config, constant lr);
    mean training loss of the first and last fifth."""
    torch.manual_seed(0)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=optim.lr, weight_decay=optim.weight_decay)
    losses, batches = [], iter(loader)
    for _ in range(steps):
        x, y = next(batches)
        loss = F.cross_entropy(model(x), y, label_smoothing=optim.label_smoothing)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), optim.grad_clip)
        opt.step()
        losses.append(loss.item())
    k = max(steps // 5, 1)
    return {"first": round(sum(losses[:k]) / k, 3), "last": round(sum(losses[-k:]) / k, 3)}


def at(cfg, run_dir, target: str, method: str):
    """The fine-tuning run's config at ``target`` (its optim section is what the probe uses) and its training
    images."""
    img, window = parse_target(target)
    ft_cfg = finetune_config(cfg, run_dir, check_target(cfg.model, img, window, method, cfg.task), 1, FT_LR)
    dm = build_datamodule(ft_cfg)
    dm.setup("fit")
    return ft_cfg.optim, dm.train_dataloader()


def run_seed(seed: int, out: str, steps: int, finetune: bool) -> dict:
    result = {"variants": {}}
    trained = {}
    for name, relative in VARIANTS.items():
        overrides = [*OLD_BUDGET, f"model.relative={relative}", f"seed={seed}"]
        cfg = load_config(ROOT / "configs" / "default.yaml", overrides)
        run_dir, _ = train(cfg, out, progress=False)
        model = load_trained_model(run_dir)
        dm = build_datamodule(cfg)
        dm.setup("test")
        with_bias = CLASSIFICATION.evaluate(model, dm.test_dataloader(), cfg)
        without = load_trained_model(run_dir)
        for layer in without.layers:
            for block in layer.blocks:
                block.attn.relative_bias = None  # the attention adds no relative bias
        without_bias = CLASSIFICATION.evaluate(without, dm.test_dataloader(), cfg)
        trained[name] = (cfg, run_dir, model)
        method = transfer_methods(relative)[0]
        row = {"top1": round(with_bias["top1"], 2), "loss": round(with_bias["loss"], 3),
               "top1 without bias": round(without_bias["top1"], 2), "loss without bias": round(without_bias["loss"], 3),
               "probe": {}}
        for target in TARGETS:
            optim, loader = at(cfg, run_dir, target, method)
            row["probe"][target] = probe(transfer(model, *parse_target(target), method), loader, steps, optim)
        result["variants"][name] = row
        print(json.dumps({"seed": seed, name: row}), flush=True)

    cfg, run_dir, model = trained["table (bicubic)"]
    optim, loader = at(cfg, run_dir, "64:8", "bicubic")
    tables = {}
    for mode in ("resized", "zero", "centred"):
        moved = transfer(model, 64, 8, "bicubic")
        with torch.no_grad():
            for new, old in zip(relative_tables(moved), relative_tables(model)):
                if mode == "zero":
                    new.zero_()
                elif mode == "centred":
                    new.copy_(centred(new, old))
        tables[mode] = probe(moved, loader, steps, optim)
    result["tables at 64:8"] = tables
    stage0 = {}
    for target, window, shift in STAGE0:
        optim, loader = at(cfg, run_dir, target, "bicubic")
        with stage0_forced(window, shift):
            moved = transfer(model, *parse_target(target), "bicubic")
            stages = moved.cfg.stages()
            stage0[f"{target} {window}/{shift}"] = {
                "stages": [f"{g.window}/{g.shift}" for g in stages],
                "cuts": cuts_stage2_tokens(stages[0].resolution[0], window, shift),
                **probe(moved, loader, steps, optim)}
    result["stage 0 forced"] = stage0
    print(json.dumps({"seed": seed, "tables": tables, "stage 0": stage0}), flush=True)
    if finetune:
        result["finetune"] = {}
        for target in TARGETS:
            record = transfer_cell(run_dir, *parse_target(target), "bicubic", finetune_epochs=1, finetune_lr=FT_LR,
                                   out=out)
            result["finetune"][target] = {"before": round(record["top1"], 2), "after": round(record["top1_ft"], 2)}
    return result


def _mean(values) -> str:
    values = list(values)
    mean = sum(values) / len(values)
    if len(values) == 1:
        return f"{mean:.3f}" if mean < 10 else f"{mean:.1f}"
    std = (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5
    return f"{mean:.3f} ± {std:.3f}" if mean < 10 else f"{mean:.1f} ± {std:.1f}"


def markdown(results: dict) -> str:
    seeds = results["seeds"]
    runs = list(seeds.values())
    lines = ["# The W8 collapse of the old swin_v2_table1 study (benchmarks/w8_collapse.py)", "",
             f"Seeds {', '.join(seeds)}; mean ± sample std over seeds; {results['seconds']} s in all. Model and data: "
             "the study until revision aec563d (three-stage tiny Swin, V2 block, relation scenes, 32 px / window 4). "
             f"Probe: {results['steps']} steps of the study's fine-tuning optimiser at the target; loss = mean "
             "training loss of the first / last fifth of the steps (chance: ln 8 = 2.079).", "",
             "## As trained, with and without the relative bias (test top-1 %, loss)", "",
             "| variant | top-1 | loss | top-1 without bias | loss without bias |", "|---|---|---|---|---|"]
    for name in VARIANTS:
        cells = [_mean(r["variants"][name][k] for r in runs)
                 for k in ("top1", "loss", "top1 without bias", "loss without bias")]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "## Fine-tuning probe at the study's targets (training loss, first → last fifth)", "",
              "| target | " + " | ".join(VARIANTS) + " |", "|---" * (len(VARIANTS) + 1) + "|"]
    for target in TARGETS:
        cells = [f"{_mean(r['variants'][n]['probe'][target]['first'] for r in runs)} → "
                 f"{_mean(r['variants'][n]['probe'][target]['last'] for r in runs)}" for n in VARIANTS]
        lines.append(f"| {target} | " + " | ".join(cells) + " |")
    lines += ["", "## The table model at 64/8 with its tables replaced", "", "| tables | first fifth | last fifth |",
              "|---|---|---|"]
    for mode in runs[0]["tables at 64:8"]:
        lines.append(f"| {mode} | {_mean(r['tables at 64:8'][mode]['first'] for r in runs)} | "
                     f"{_mean(r['tables at 64:8'][mode]['last'] for r in runs)} |")
    lines += ["", "## The table model with stage 0's window / shift forced (stages 1, 2 by the official rule)", "",
              "cuts: whether some stage-0 window boundary (plain or shifted blocks) falls inside a stage-2 token "
              f"(a {2**MERGES_TO_STAGE2}x{2**MERGES_TO_STAGE2} block of stage-0 tokens).", "",
              "| target | stage 0 window / shift | stages (window / shift) | cuts | first fifth | last fifth |",
              "|---|---|---|---|---|---|"]
    for key, row in runs[0]["stage 0 forced"].items():
        first = _mean(r["stage 0 forced"][key]["first"] for r in runs)
        last = _mean(r["stage 0 forced"][key]["last"] for r in runs)
        target, forced = key.split(" ")
        cuts = "yes" if row["cuts"] else "no"
        lines.append(f"| {target} | {forced} | {', '.join(row['stages'])} | {cuts} | {first} | {last} |")
    if "finetune" in runs[0]:
        lines += ["", "## The study's one-epoch fine-tuning of the table model (test top-1 %)", "",
                  "| target | before | after |", "|---|---|---|"]
        for target in TARGETS:
            lines.append(f"| {target} | {_mean(r['finetune'][target]['before'] for r in runs)} | "
                         f"{_mean(r['finetune'][target]['after'] for r in runs)} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--steps", type=int, default=100, help="probe steps (default %(default)s; an epoch is 125)")
    p.add_argument("--finetune", action="store_true", help="also the study's real one-epoch fine-tuning")
    p.add_argument("--out", default=str(ROOT / "runs" / "w8_collapse"), help="run folders (default %(default)s)")
    p.add_argument("--report", default=str(ROOT / "results" / "benchmarks" / "w8_collapse"))
    a = p.parse_args()
    t0 = time.time()
    results = {"steps": a.steps, "seeds": {str(s): run_seed(s, a.out, a.steps, a.finetune) for s in a.seeds}}
    results["seconds"] = round(time.time() - t0, 1)
    Path(a.report).parent.mkdir(parents=True, exist_ok=True)
    Path(a.report + ".json").write_text(json.dumps(results, indent=1) + "\n")
    Path(a.report + ".md").write_text(markdown(results) + "\n")
    print(markdown(results))


if __name__ == "__main__":
    main()
