"""Fused (SDPA) vs explicit attention: training and eval throughput for all 16 switch combinations.

    python benchmarks/model_speed.py                 # full run (~8-10 min on 2 cores)
    python benchmarks/model_speed.py --quick         # smoke run (~1-2 min)
    python benchmarks/model_speed.py --profile cyclic-res_post-cosine-cpb_log   # top ops of one combination

Config (CIFAR-size): img 32, patch 2, window 4, embed 48, depths 2-2-2, heads 3-6-12, 10 classes, fp32.
shift {cyclic, none} x norm {pre, res_post} x attention {dot, cosine} x position {table, cpb_log}.

Timing on this VM is noisy (+-25%), so every repeat visits all combinations, and within a combination the
fused and explicit models alternate (which goes first flips every repeat). A repeat's figure is the median
step time of its steps; the table shows the median over repeats. FLOP/s come from the analytic count
(swin_lit.models.flops: MACs x 2; training = 3 x forward) and are compared with the best fp32 matmul
(2048^2 and 4096^2) measured in the same run.

Writes results/benchmarks/model_speed.{md,json} (or --out DIR).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from swin_lit.models import SwinConfig, SwinTransformer
from swin_lit.models.flops import batch_flops

BASE = dict(img_size=32, patch_size=2, window_size=4, embed_dim=48, depths=(2, 2, 2), num_heads=(3, 6, 12),
            num_classes=10)
AXES = dict(shift=("cyclic", "none"), norm=("pre", "res_post"), attention=("dot", "cosine"),
            position=("table", "cpb_log"))
V1 = "cyclic-pre-dot-table"
V2 = "cyclic-res_post-cosine-cpb_log"


def combinations() -> list[str]:
    return ["-".join(c) for c in itertools.product(*AXES.values())]


def config(combo: str, fused: bool) -> SwinConfig:
    return SwinConfig.from_dict({**BASE, **dict(zip(AXES, combo.split("-"))), "fused": fused})


def matmul_peak(sizes=(2048, 4096), tries=(8, 4)) -> float:
    """Best fp32 matmul FLOP/s (2 n^3 per product)."""
    best = 0.0
    for n, k in zip(sizes, tries):
        a, b = torch.randn(n, n), torch.randn(n, n)
        a @ b
        for _ in range(k):
            t = time.perf_counter()
            a @ b
            best = max(best, 2 * n**3 / (time.perf_counter() - t))
    return best


class Runner:
    """One model + optimizer + fixed batch; ``train(steps)`` / ``evaluate(iters)`` return median seconds."""

    def __init__(self, cfg: SwinConfig, state: dict | None, batch: int, eval_batch: int) -> None:
        self.model = SwinTransformer(cfg)
        if state is not None:
            self.model.load_state_dict(state)
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=1e-4, weight_decay=0.05)
        gen = torch.Generator().manual_seed(0)
        self.x = torch.randn(batch, 3, cfg.img_size, cfg.img_size, generator=gen)
        self.y = torch.randint(0, cfg.num_classes, (batch,), generator=gen)
        self.xe = torch.randn(eval_batch, 3, cfg.img_size, cfg.img_size, generator=gen)

    def step(self) -> None:
        self.opt.zero_grad(set_to_none=True)
        F.cross_entropy(self.model(self.x), self.y).backward()
        self.opt.step()

    def train(self, steps: int) -> float:
        self.model.train()
        times = []
        for _ in range(steps):
            t = time.perf_counter()
            self.step()
            times.append(time.perf_counter() - t)
        return statistics.median(times)

    def evaluate(self, iters: int) -> float:
        self.model.eval()
        times = []
        with torch.inference_mode():
            for _ in range(iters):
                t = time.perf_counter()
                self.model(self.xe)
                times.append(time.perf_counter() - t)
        return statistics.median(times)


def run(args) -> dict:
    torch.manual_seed(0)
    combos = combinations() if not args.only else args.only
    runners = {}
    for combo in combos:
        fused = Runner(config(combo, True), None, args.batch, args.eval_batch)
        explicit = Runner(config(combo, False), fused.model.state_dict(), args.batch, args.eval_batch)
        runners[combo] = {"fused": fused, "explicit": explicit}
        for r in (fused, explicit):  # warm-up: allocator, oneDNN primitives
            r.train(args.warmup)
            r.evaluate(1)
    peaks = [matmul_peak()]
    samples = {c: {p: {"train": [], "eval": []} for p in ("fused", "explicit")} for c in combos}
    for rep in range(args.repeats):
        order = ("fused", "explicit") if rep % 2 == 0 else ("explicit", "fused")
        for combo in combos:
            for path in order:
                r = runners[combo][path]
                samples[combo][path]["train"].append(r.train(args.steps))
                samples[combo][path]["eval"].append(r.evaluate(args.eval_iters))
        print(f"  repeat {rep + 1}/{args.repeats} done", file=sys.stderr, flush=True)
        peaks.append(matmul_peak(tries=(3, 2)))
    peak = max(peaks)

    rows = []
    for combo in combos:
        cfg = config(combo, True)
        fwd_train = 2 * batch_flops(cfg, args.batch)  # FLOPs of one forward over the training batch
        fwd_eval = 2 * batch_flops(cfg, args.eval_batch)
        row = {"combo": combo, **dict(zip(AXES, combo.split("-")))}
        for path in ("fused", "explicit"):
            t_train = statistics.median(samples[combo][path]["train"])
            t_eval = statistics.median(samples[combo][path]["eval"])
            row[f"{path}_train_ips"] = args.batch / t_train
            row[f"{path}_eval_ips"] = args.eval_batch / t_eval
            row[f"{path}_train_mfu"] = 3 * fwd_train / t_train / peak
            row[f"{path}_eval_mfu"] = fwd_eval / t_eval / peak
            row[f"{path}_train_spread"] = _spread(samples[combo][path]["train"])
        row["train_ratio"] = row["fused_train_ips"] / row["explicit_train_ips"]
        row["eval_ratio"] = row["fused_eval_ips"] / row["explicit_eval_ips"]
        rows.append(row)

    by = {r["combo"]: r for r in rows}
    summary = {}
    if V1 in by and V2 in by:
        for path in ("fused", "explicit"):
            for kind in ("train", "eval"):
                summary[f"v2_over_v1_{path}_{kind}"] = by[V2][f"{path}_{kind}_ips"] / by[V1][f"{path}_{kind}_ips"]
    summary["median_train_ratio"] = statistics.median(r["train_ratio"] for r in rows)
    summary["median_eval_ratio"] = statistics.median(r["eval_ratio"] for r in rows)
    return {
        "config": {**BASE, "batch": args.batch, "eval_batch": args.eval_batch, "dtype": "float32",
                   "drop_path_rate": SwinConfig().drop_path_rate},
        "method": {"repeats": args.repeats, "steps": args.steps, "eval_iters": args.eval_iters,
                   "warmup": args.warmup, "threads": torch.get_num_threads(),
                   "statistic": "median over repeats of the per-repeat median step time"},
        "machine": {"torch": torch.__version__, "cpu_capability": torch.backends.cpu.get_cpu_capability(),
                    "platform": platform.platform(), "cpus": os.cpu_count()},
        "matmul_peak_gflops": peak / 1e9,
        "matmul_samples_gflops": [p / 1e9 for p in peaks],
        "fwd_gflop_per_image": {c: 2 * batch_flops(config(c, True), 1) / 1e9 for c in combos},
        "rows": rows,
        "summary": summary,
        "targets": {"train_ratio": 1.3, "eval_ratio": 2.0, "v2_over_v1": 0.9},
    }


def _spread(values: list[float]) -> float:
    """(max - min) / median of the per-repeat step times: the noise of one cell."""
    return (max(values) - min(values)) / statistics.median(values)


def markdown(res: dict) -> str:
    c = res["config"]
    lines = [
        "# Model speed: fused (SDPA) vs explicit attention",
        "",
        f"img {c['img_size']}, patch {c['patch_size']}, window {c['window_size']}, embed {c['embed_dim']}, "
        f"depths {'-'.join(map(str, c['depths']))}, heads {'-'.join(map(str, c['num_heads']))}, "
        f"{c['num_classes']} classes, fp32, drop_path {c['drop_path_rate']}; training batch {c['batch']} "
        f"(forward + backward + AdamW), eval batch {c['eval_batch']} (inference_mode); "
        f"{res['method']['threads']} threads, torch {res['machine']['torch']}.",
        f"Median over {res['method']['repeats']} interleaved repeats of {res['method']['steps']} train steps / "
        f"{res['method']['eval_iters']} eval batches. Matmul peak (best fp32 2048^2/4096^2 in this run): "
        f"{res['matmul_peak_gflops']:.0f} GFLOP/s. MFU = analytic FLOPs (2 x MACs; training 3 x forward) "
        "/ time / peak.",
        "",
        "| shift | norm | attention | position | train img/s fused | explicit | ratio | eval img/s fused | explicit "
        "| ratio | train MFU fused / expl. | eval MFU fused / expl. | train spread f / e |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in res["rows"]:
        lines.append(
            f"| {r['shift']} | {r['norm']} | {r['attention']} | {r['position']} "
            f"| {r['fused_train_ips']:.0f} | {r['explicit_train_ips']:.0f} | {r['train_ratio']:.2f} "
            f"| {r['fused_eval_ips']:.0f} | {r['explicit_eval_ips']:.0f} | {r['eval_ratio']:.2f} "
            f"| {100 * r['fused_train_mfu']:.0f}% / {100 * r['explicit_train_mfu']:.0f}% "
            f"| {100 * r['fused_eval_mfu']:.0f}% / {100 * r['explicit_eval_mfu']:.0f}% "
            f"| {100 * r['fused_train_spread']:.0f}% / {100 * r['explicit_train_spread']:.0f}% |"
        )
    s, t = res["summary"], res["targets"]
    lines += ["", "| summary | value | target |", "|---|---:|---:|",
              f"| median fused/explicit, training | {s['median_train_ratio']:.2f} | >= {t['train_ratio']} |",
              f"| median fused/explicit, eval | {s['median_eval_ratio']:.2f} | >= {t['eval_ratio']} |"]
    for path in ("fused", "explicit"):
        for kind in ("train", "eval"):
            key = f"v2_over_v1_{path}_{kind}"
            if key in s:
                lines.append(f"| V2 ({V2}) / V1 ({V1}), {path}, {kind} | {s[key]:.2f} | >= {t['v2_over_v1']} |")
    lines += ["", "Spread = (max - min) / median of the per-repeat step times of one cell."]
    return "\n".join(lines) + "\n"


def profile(combo: str, fused: bool, batch: int, steps: int, rows: int) -> str:
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    r = Runner(config(combo, fused), None, batch, batch)
    r.train(3)
    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            r.step()
    table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows)
    return f"# {combo} fused={fused}: {steps} training steps at batch {batch}\n{table}\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="fewer repeats and steps (smoke run)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    p.add_argument("--repeats", type=int, default=None)
    p.add_argument("--steps", type=int, default=None, help="timed training steps per repeat")
    p.add_argument("--eval-iters", type=int, default=None)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--eval-batch", type=int, default=256)
    p.add_argument("--only", nargs="*", default=None, help="combinations to run (shift-norm-attention-position)")
    p.add_argument("--out", type=Path, default=Path("results/benchmarks"))
    p.add_argument("--profile", metavar="COMBO", help="profile training of one combination instead")
    p.add_argument("--explicit", action="store_true", help="with --profile: the explicit path")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads or os.cpu_count() or 1)
    if args.profile:
        text = profile(args.profile, not args.explicit, args.batch, args.steps or 5, 25)
        print(text)
        args.out.mkdir(parents=True, exist_ok=True)
        name = f"model_speed_profile_{args.profile}_{'explicit' if args.explicit else 'fused'}.txt"
        (args.out / name).write_text(text)
        return 0
    defaults = (2, 2, 2) if args.quick else (5, 5, 3)
    args.repeats = args.repeats or defaults[0]
    args.steps = args.steps or defaults[1]
    args.eval_iters = args.eval_iters or defaults[2]
    if args.only:
        unknown = [c for c in args.only if c not in combinations()]
        if unknown:
            p.error(f"unknown combination {unknown[0]}; choose from {', '.join(combinations())}")
    t0 = time.time()
    res = run(args)
    res["method"]["wall_s"] = time.time() - t0
    md = markdown(res)
    print(md)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = "model_speed_quick" if args.quick else "model_speed"
    (args.out / f"{stem}.md").write_text(md)
    (args.out / f"{stem}.json").write_text(json.dumps(res, indent=2))
    print(f"wrote {args.out / stem}.{{md,json}} in {res['method']['wall_s']:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
