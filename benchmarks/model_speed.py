"""Training and eval throughput of every path for all 16 switch combinations, and the floor; and (``--windows``)
the window computations of Swin V1 Table 5 side by side.

    python benchmarks/model_speed.py                 # full run (12-16 min on 2 cores)
    python benchmarks/model_speed.py --quick         # smoke run
    python benchmarks/model_speed.py --no-compile    # eager paths only
    python benchmarks/model_speed.py --window 8 --only cyclic-pre-dot-table cyclic-res_post-cosine-cpb_log
    python benchmarks/model_speed.py --profile cyclic-res_post-cosine-cpb_log   # top ops of one combination
    python benchmarks/model_speed.py --windows       # Table 5: cyclic vs pad vs no shift vs sliding (see below)
    python benchmarks/model_speed.py --windows --quick

Paths, all with the same weights:
  fused     the default model (``fused=True``: SDPA where it pays, see swin_lit/models/kernels.py), eager;
  compiled  the same model under ``torch.compile`` (inductor; ``trainer.compile: true`` in a run config);
  explicit  the reference path (``fused=False``: softmax written out), eager: the denominator of every ratio.
  floor     only the model's nn.Linear layers and its fused attention kernel calls, at the shapes the model runs
            (forward; training adds their backward, the attention's without the bias gradient). No path that does
            this work can beat floor / explicit: that is the ceiling shown next to each ratio.

Config (CIFAR-size): img 32, patch 2, window 4, embed 48, depths 2-2-2, heads 3-6-12, 10 classes, fp32.
shift {cyclic, none} x norm {pre, res_post} x attention {dot, cosine} x relative {table, cpb_log}.

Timing on this VM is noisy (+-25%), so every repeat visits all combinations, and within a combination the
paths alternate (the order reverses every repeat). A repeat's figure is the median
step time of its steps; the table shows the median over repeats. FLOP/s come from the analytic count
(swin_lit.models.flops: MACs x 2; training = 3 x forward) and are compared with the best fp32 matmul
(2048^2 and 4096^2) measured in the same run.

Writes results/benchmarks/model_speed.{md,json} (or --out DIR).

``--windows``: the default model (V1 switches, fused path, eager) with its shifted windows computed four ways,
the same weights in all four: ``cyclic`` (roll + region mask), ``pad`` (the naive way the paper times: the window
grid offset by the shift, border windows padded and masked, more windows), ``none`` (regular windows only, the
paper's "w/o shifting") and ``sliding`` (each token's own M x M neighbourhood, gathered: the paper's naive
sliding window). Two configs: the CIFAR-size one above, and a Swin-T-shaped one at 224 px / window 7 (embed 96,
heads 3-6-12-24, depths 2-2-2-2 instead of 2-2-6-2 to keep the run short; every stage keeps one regular and one
shifted block). Training batch 64 / eval 256 (CIFAR-size), 8 / 16 (224). Variants interleave within each repeat
(the order reverses every repeat); a cell is the median over repeats of each repeat's median step time. Printed
beside the paper's Table 5 (Swin-T on a V100, inference: cyclic 755, padding 670, w/o shifting 770, sliding
window naive 183 img/s; cyclic 13% (T) / 18% (S, B) faster than padding). Defaults: 4 repeats of 3 training
steps and 3 eval batches per variant. Expected run time on a quiet 2-core CPU: about 10 minutes, estimated from
the analytic FLOPs (6.1 GFLOP per 224 image forward) at the ~50 GFLOP/s training throughput this machine reaches
on Swin (shared/reference/machine.md), with sliding windows assumed 3-4x slower; not yet timed on a quiet
machine. ``--quick`` (1 repeat of 1 step, batches 32/64 and 2/4) took 5 min here under heavy load (load
average 6-8 on 2 cores), most of it the 224 model.
Writes results/benchmarks/model_speed_windows.{md,json} (``--quick``: model_speed_windows_quick.*).
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
from swin_lit.models.attention import WindowAttention
from swin_lit.models.flops import batch_flops
from swin_lit.models.kernels import merge_bias_and_mask

BASE = dict(img_size=32, patch_size=2, window_size=4, embed_dim=48, depths=(2, 2, 2), num_heads=(3, 6, 12),
            num_classes=10)
AXES = dict(shift=("cyclic", "none"), norm=("pre", "res_post"), attention=("dot", "cosine"),
            relative=("table", "cpb_log"))
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

    def __init__(self, cfg: SwinConfig, state: dict | None, batch: int, eval_batch: int,
                 compiled: bool = False) -> None:
        self.model = SwinTransformer(cfg)
        if state is not None:
            self.model.load_state_dict(state)
        self.forward = torch.compile(self.model) if compiled else self.model
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=1e-4, weight_decay=0.05)
        gen = torch.Generator().manual_seed(0)
        self.x = torch.randn(batch, 3, cfg.img_size, cfg.img_size, generator=gen)
        self.y = torch.randint(0, cfg.num_classes, (batch,), generator=gen)
        self.xe = torch.randn(eval_batch, 3, cfg.img_size, cfg.img_size, generator=gen)

    def step(self) -> None:
        self.opt.zero_grad(set_to_none=True)
        F.cross_entropy(self.forward(self.x), self.y).backward()
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
                self.forward(self.xe)
                times.append(time.perf_counter() - t)
        return statistics.median(times)


class Floor:
    """Work that every path must do, at the shapes the model runs: its nn.Linear layers and the fused attention
    kernel of each window attention call (with the merged bias + mask, detached). ``evaluate`` times their
    forwards; ``train`` their forwards and backwards (linear: input, weight and bias gradients; attention: q, k
    and v gradients only, so less than any real path, which also needs the bias gradient)."""

    def __init__(self, model: torch.nn.Module, x: torch.Tensor, xe: torch.Tensor) -> None:
        self.train_work = self._record(model, x)
        self.eval_work = self._record(model, xe)

    @staticmethod
    def _record(model, x) -> tuple[list, list]:
        gen = torch.Generator().manual_seed(1)
        linears, attentions = [], []

        def linear_hook(m, inputs, out):
            linears.append((torch.randn(inputs[0].shape, generator=gen), m.weight.detach().clone(),
                            None if m.bias is None else m.bias.detach().clone()))

        def attention_hook(m, inputs, out):
            tokens, layout = inputs
            windows = tokens.shape[0] * layout.gather.numel() // layout.window**2  # B * nW
            N = layout.window**2
            bias = None
            if m.relative_bias is not None:
                bias = m.relative_bias(layout.window, layout.bias_constants, layout.relative_index).detach()
            qkv = [torch.randn(windows, m.heads, N, m.head_dim, generator=gen) for _ in range(3)]
            attentions.append((qkv, merge_bias_and_mask(bias, layout.mask, windows)))

        hooks = [m.register_forward_hook(linear_hook) for m in model.modules() if isinstance(m, torch.nn.Linear)]
        hooks += [m.register_forward_hook(attention_hook) for m in model.modules() if isinstance(m, WindowAttention)]
        with torch.no_grad():
            model(x)
        for h in hooks:
            h.remove()
        return linears, attentions

    def train(self, steps: int) -> float:
        linears, attentions = self.train_work
        for x, w, b in linears:
            for leaf in (x, w, b):
                if leaf is not None:
                    leaf.requires_grad_()
        for qkv, _ in attentions:
            for tensor in qkv:
                tensor.requires_grad_()
        grads = [torch.ones(*x.shape[:-1], w.shape[0]) for x, w, _ in linears]
        grads += [torch.ones_like(qkv[0]) for qkv, _ in attentions]
        times = []
        for _ in range(steps):
            t = time.perf_counter()
            outs = [F.linear(x, w, b) for x, w, b in linears]
            outs += [F.scaled_dot_product_attention(*qkv, attn_mask=mask) for qkv, mask in attentions]
            torch.autograd.backward(outs, grads)
            times.append(time.perf_counter() - t)
            for x, w, b in linears:
                x.grad = w.grad = None
                if b is not None:
                    b.grad = None
            for qkv, _ in attentions:
                for tensor in qkv:
                    tensor.grad = None
        return statistics.median(times)

    def evaluate(self, iters: int) -> float:
        linears, attentions = self.eval_work
        times = []
        with torch.inference_mode():
            for _ in range(iters):
                t = time.perf_counter()
                for x, w, b in linears:
                    F.linear(x, w, b)
                for qkv, mask in attentions:
                    F.scaled_dot_product_attention(*qkv, attn_mask=mask)
                times.append(time.perf_counter() - t)
        return statistics.median(times)


def run(args) -> dict:
    torch.manual_seed(0)
    torch._dynamo.config.recompile_limit = 64  # one compiled model per combination and mode, all in this process
    torch._dynamo.config.fail_on_recompile_limit_hit = True  # never time a silent eager fallback as "compiled"
    combos = combinations() if not args.only else args.only
    paths = ("fused", "compiled", "explicit", "floor") if args.compile else ("fused", "explicit", "floor")
    runners, compile_s, max_diff = {}, {}, {}
    for i, combo in enumerate(combos):
        fused = Runner(config(combo, True), None, args.batch, args.eval_batch)
        state = fused.model.state_dict()
        rs = {"fused": fused, "explicit": Runner(config(combo, False), state, args.batch, args.eval_batch),
              "floor": Floor(fused.model, fused.x, fused.xe)}
        if args.compile:
            rs["compiled"] = Runner(config(combo, True), state, args.batch, args.eval_batch, compiled=True)
            t = time.perf_counter()
            rs["compiled"].evaluate(1)  # compiles the eval graph, before any step changes the weights
            with torch.inference_mode():
                max_diff[combo] = (rs["compiled"].forward(fused.xe) - fused.model.eval()(fused.xe)).abs().max().item()
            rs["compiled"].train(1)  # compiles the training graph
            compile_s[combo] = time.perf_counter() - t
        for r in rs.values():  # warm-up: allocator, oneDNN primitives
            r.train(args.warmup)
            r.evaluate(1)
        runners[combo] = rs
        print(f"  built {i + 1}/{len(combos)} {combo}", file=sys.stderr, flush=True)
    peaks = [matmul_peak()]
    samples = {c: {p: {"train": [], "eval": []} for p in paths} for c in combos}
    for rep in range(args.repeats):
        order = paths if rep % 2 == 0 else paths[::-1]
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
        flops = {"train": 3 * 2 * batch_flops(cfg, args.batch), "eval": 2 * batch_flops(cfg, args.eval_batch)}
        images = {"train": args.batch, "eval": args.eval_batch}
        row = {"combo": combo, **dict(zip(AXES, combo.split("-")))}
        for path in paths:
            for kind in ("train", "eval"):
                t = statistics.median(samples[combo][path][kind])
                row[f"{path}_{kind}_ips"] = images[kind] / t
                row[f"{path}_{kind}_spread"] = _spread(samples[combo][path][kind])
                if path != "floor":
                    row[f"{path}_{kind}_mfu"] = flops[kind] / t / peak
        for kind in ("train", "eval"):
            base = row[f"explicit_{kind}_ips"]
            for path in paths:
                if path != "explicit":
                    name = "ceiling" if path == "floor" else path
                    row[f"{name}_{kind}_ratio"] = row[f"{path}_{kind}_ips"] / base
        if args.compile:
            row["compile_s"] = compile_s[combo]
            row["compiled_max_abs_diff"] = max_diff[combo]
        rows.append(row)

    by = {r["combo"]: r for r in rows}
    summary = {}
    if V1 in by and V2 in by:
        for path in (p for p in paths if p != "floor"):
            for kind in ("train", "eval"):
                summary[f"v2_over_v1_{path}_{kind}"] = by[V2][f"{path}_{kind}_ips"] / by[V1][f"{path}_{kind}_ips"]
    for key in rows[0]:
        if key.endswith("_ratio") or key == "compile_s":
            summary[f"median_{key}"] = statistics.median(r[key] for r in rows)
    return {
        "config": {**BASE, "batch": args.batch, "eval_batch": args.eval_batch, "dtype": "float32",
                   "drop_path_rate": SwinConfig().drop_path_rate},
        "method": {"repeats": args.repeats, "steps": args.steps, "eval_iters": args.eval_iters,
                   "warmup": args.warmup, "threads": torch.get_num_threads(), "paths": list(paths),
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
    c, paths = res["config"], res["method"]["paths"]
    timed = [p for p in paths if p != "floor"]
    lines = [
        "# Model speed: fused, compiled and explicit paths, and the floor",
        "",
        f"img {c['img_size']}, patch {c['patch_size']}, window {c['window_size']}, embed {c['embed_dim']}, "
        f"depths {'-'.join(map(str, c['depths']))}, heads {'-'.join(map(str, c['num_heads']))}, "
        f"{c['num_classes']} classes, fp32, drop_path {c['drop_path_rate']}; training batch {c['batch']} "
        f"(forward + backward + AdamW), eval batch {c['eval_batch']} (inference_mode); "
        f"{res['method']['threads']} threads, torch {res['machine']['torch']}.",
        f"Median over {res['method']['repeats']} interleaved repeats of {res['method']['steps']} train steps / "
        f"{res['method']['eval_iters']} eval batches. Matmul peak (best fp32 2048^2/4096^2 in this run): "
        f"{res['matmul_peak_gflops']:.0f} GFLOP/s. MFU = analytic FLOPs (2 x MACs; training 3 x forward) "
        "/ time / peak. Ratios are img/s over the explicit path's in the same run; the ceiling is the floor's "
        "(the nn.Linear layers and the fused attention kernel alone) img/s over explicit: no path that does that "
        "work can beat it.",
    ]
    for kind, title in (("train", "Training"), ("eval", "Eval")):
        head = " | ".join(f"{p} img/s" for p in timed)
        ratios = " | ".join(f"{p} ratio" for p in timed if p != "explicit")
        mfu = " / ".join(timed)
        lines += ["", f"## {title}", "",
                  f"| shift | norm | attention | relative | {head} | {ratios} | ceiling | MFU {mfu} |",
                  "|---|---|---|---|" + "---:|" * (2 * len(timed) + 1)]
        for r in res["rows"]:
            cells = [f"{r[f'{p}_{kind}_ips']:.0f}" for p in timed]
            cells += [f"{r[f'{p}_{kind}_ratio']:.2f}" for p in timed if p != "explicit"]
            cells.append(f"{r[f'ceiling_{kind}_ratio']:.2f}")
            cells.append(" / ".join(f"{100 * r[f'{p}_{kind}_mfu']:.0f}%" for p in timed))
            lines.append(f"| {r['shift']} | {r['norm']} | {r['attention']} | {r['relative']} | " + " | ".join(cells)
                         + " |")
    s, t = res["summary"], res["targets"]
    lines += ["", "## Summary", "", "| summary | value | target |", "|---|---:|---:|"]
    for kind, name in (("train", "training"), ("eval", "eval")):
        for p in timed:
            if p != "explicit":
                lines.append(f"| median {p}/explicit, {name} | {s[f'median_{p}_{kind}_ratio']:.2f} "
                             f"| >= {t[f'{kind}_ratio']} |")
        lines.append(f"| median ceiling (floor/explicit), {name} | {s[f'median_ceiling_{kind}_ratio']:.2f} | |")
    for p in timed:
        for kind in ("train", "eval"):
            key = f"v2_over_v1_{p}_{kind}"
            if key in s:
                lines.append(f"| V2 ({V2}) / V1 ({V1}), {p}, {kind} | {s[key]:.2f} | >= {t['v2_over_v1']} |")
    if "median_compile_s" in s:
        worst = max(res["rows"], key=lambda r: r["compiled_max_abs_diff"])
        lines += ["", f"Compile (first training step + first eval batch): median {s['median_compile_s']:.0f} s per "
                  f"combination (inductor's cache may shorten it on a re-run); max |compiled - fused| eval logit "
                  f"difference {worst['compiled_max_abs_diff']:.1e}."]
    lines += ["", "Per-cell noise (spread = (max - min) / median of the per-repeat step times) is in the json."]
    return "\n".join(lines) + "\n"


# -- Swin V1 Table 5: the window computations --------------------------------------------------------------

WINDOW_VARIANTS = {  # name -> config fields; "paper" = the Table 5 row (Swin-T, V100, inference img/s)
    "cyclic": dict(shift="cyclic", windows="partition"),
    "pad": dict(shift="pad", windows="partition"),
    "none": dict(shift="none", windows="partition"),
    "sliding": dict(shift="none", windows="sliding"),
}
PAPER_TABLE5 = {"cyclic": ("shifted window (cyclic)", 755), "pad": ("shifted window (padding)", 670),
                "none": ("window (w/o shifting)", 770), "sliding": ("sliding window (naive)", 183)}
WINDOW_CONFIGS = {  # name -> (config, train batch, eval batch, quick train batch, quick eval batch)
    "cifar": (BASE, 64, 256, 32, 64),
    "224": (dict(img_size=224, patch_size=4, window_size=7, embed_dim=96, depths=(2, 2, 2, 2),
                 num_heads=(3, 6, 12, 24), num_classes=1000), 8, 16, 2, 4),
}


def run_windows(args) -> dict:
    """Train / eval img/s of the four window computations at both configs, interleaved, same weights."""
    torch.manual_seed(0)
    runners = {}
    for name, (base, batch, eval_batch, qbatch, qeval) in WINDOW_CONFIGS.items():
        if args.quick:
            batch, eval_batch = qbatch, qeval
        state = None
        for variant, switches in WINDOW_VARIANTS.items():
            cfg = SwinConfig.from_dict({**base, **switches})
            r = Runner(cfg, state, batch, eval_batch)
            state = r.model.state_dict() if state is None else state  # every variant: the same weights
            r.train(args.warmup)
            r.evaluate(1)
            runners[name, variant] = r
            print(f"  built {name} {variant}", file=sys.stderr, flush=True)
    samples = {key: {"train": [], "eval": []} for key in runners}
    variants = list(WINDOW_VARIANTS)
    for rep in range(args.repeats):
        order = variants if rep % 2 == 0 else variants[::-1]
        for name in WINDOW_CONFIGS:
            for variant in order:
                r = runners[name, variant]
                samples[name, variant]["train"].append(r.train(args.steps))
                samples[name, variant]["eval"].append(r.evaluate(args.eval_iters))
        print(f"  repeat {rep + 1}/{args.repeats} done", file=sys.stderr, flush=True)
    rows = []
    for (name, variant), r in runners.items():
        cfg = r.model.cfg
        row = {"config": name, "variant": variant, "train_batch": r.x.shape[0], "eval_batch": r.xe.shape[0],
               "fwd_gflop_per_image": 2 * batch_flops(cfg, 1) / 1e9, "paper_row": PAPER_TABLE5[variant][0],
               "paper_img_s": PAPER_TABLE5[variant][1]}
        for kind, images in (("train", r.x.shape[0]), ("eval", r.xe.shape[0])):
            row[f"{kind}_ips"] = images / statistics.median(samples[name, variant][kind])
            row[f"{kind}_spread"] = _spread(samples[name, variant][kind])
        rows.append(row)
    by = {(r["config"], r["variant"]): r for r in rows}
    ratios = {}
    for name in WINDOW_CONFIGS:
        for other in ("pad", "none", "sliding"):
            for kind in ("train", "eval"):
                ratios[f"{name}_cyclic_over_{other}_{kind}"] = (by[name, "cyclic"][f"{kind}_ips"]
                                                                 / by[name, other][f"{kind}_ips"])
    return {
        "configs": {name: base for name, (base, *_) in WINDOW_CONFIGS.items()},
        "method": {"repeats": args.repeats, "steps": args.steps, "eval_iters": args.eval_iters, "warmup": args.warmup,
                   "threads": torch.get_num_threads(), "path": "fused (default), eager", "quick": args.quick,
                   "statistic": "median over repeats of the per-repeat median step time"},
        "machine": {"torch": torch.__version__, "cpu_capability": torch.backends.cpu.get_cpu_capability(),
                    "platform": platform.platform(), "cpus": os.cpu_count()},
        "rows": rows,
        "ratios": ratios,
        "paper": {"cyclic_over_pad": {"T": 755 / 670, "S": 437 / 371, "B": 278 / 236},
                  "cyclic_over_sliding_naive": {"T": 755 / 183, "S": 437 / 109, "B": 278 / 77},
                  "cyclic_over_none": {"T": 755 / 770}},
    }


def markdown_windows(res: dict) -> str:
    m = res["method"]
    lines = [
        "# Model speed: the window computations of Swin V1 Table 5",
        "",
        "The default model (V1 switches, fused path, eager, fp32) with its shifted windows computed four ways, the "
        "same weights in all four: `cyclic` (roll + region mask), `pad` (window grid offset by the shift, border "
        "windows padded and masked), `none` (no shifted windows) and `sliding` (each token's own M x M "
        "neighbourhood). Training = forward + backward + AdamW; eval = `inference_mode`. "
        f"{m['threads']} threads, torch {res['machine']['torch']}; median over {m['repeats']} interleaved repeats of "
        f"{m['steps']} train steps / {m['eval_iters']} eval batches" + (" (QUICK smoke run: not a measurement)."
                                                                          if m["quick"] else "."),
        "The paper's figures are Swin-T inference on one V100 (Table 5); compare ratios, not absolute img/s.",
    ]
    for name, (base, *_) in WINDOW_CONFIGS.items():
        rows = [r for r in res["rows"] if r["config"] == name]
        cyclic = next(r for r in rows if r["variant"] == "cyclic")
        lines += ["", f"## {name}: img {base['img_size']}, patch {base['patch_size']}, window {base['window_size']}, "
                  f"embed {base['embed_dim']}, depths {'-'.join(map(str, base['depths']))}, heads "
                  f"{'-'.join(map(str, base['num_heads']))}; batch {rows[0]['train_batch']} train / "
                  f"{rows[0]['eval_batch']} eval", "",
                  "| variant | GFLOP/img | train img/s | eval img/s | cyclic / this, train | cyclic / this, eval | "
                  "paper row | paper img/s | paper cyclic / this |",
                  "|---|---:|---:|---:|---:|---:|---|---:|---:|"]
        for r in rows:
            lines.append(f"| {r['variant']} | {r['fwd_gflop_per_image']:.3f} | {r['train_ips']:.3g} | "
                         f"{r['eval_ips']:.3g} | {cyclic['train_ips'] / r['train_ips']:.2f} | "
                         f"{cyclic['eval_ips'] / r['eval_ips']:.2f} | {r['paper_row']} | {r['paper_img_s']} | "
                         f"{755 / r['paper_img_s']:.2f} |")
    q = res["ratios"]
    lines += ["", "## Ratios beside the paper's", "",
              "| ratio | paper (Swin-T / S / B) | CIFAR-size train | CIFAR-size eval | 224 train | 224 eval |",
              "|---|---|---:|---:|---:|---:|"]
    paper = {"pad": "1.13 / 1.18 / 1.18 (13% / 18% / 18% faster)", "sliding": "4.1 / 4.0 / 3.6",
             "none": "0.98 (770 vs 755)"}
    for other in ("pad", "sliding", "none"):
        cells = [f"{q[f'{name}_cyclic_over_{other}_{kind}']:.2f}" for name in WINDOW_CONFIGS
                 for kind in ("train", "eval")]
        lines.append(f"| cyclic / {other} | {paper[other]} | " + " | ".join(cells) + " |")
    lines += ["", "Per-cell noise (spread = (max - min) / median of the per-repeat step times) is in the json."]
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
    p.add_argument("--no-compile", dest="compile", action="store_false", help="leave out the compiled path")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    p.add_argument("--repeats", type=int, default=None)
    p.add_argument("--steps", type=int, default=None, help="timed training steps per repeat")
    p.add_argument("--eval-iters", type=int, default=None)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--window", type=int, default=4, help="window size (default 4: the issue's config; 8 shows "
                   "N = 64 tokens per window, where the fused kernel pays)")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--eval-batch", type=int, default=256)
    p.add_argument("--only", nargs="*", default=None, help="combinations to run (shift-norm-attention-relative)")
    p.add_argument("--out", type=Path, default=Path("results/benchmarks"))
    p.add_argument("--profile", metavar="COMBO", help="profile training of one combination instead")
    p.add_argument("--explicit", action="store_true", help="with --profile: the explicit path")
    p.add_argument("--windows", action="store_true", help="Swin V1 Table 5 instead: cyclic vs pad vs no shift vs "
                   "sliding windows at the CIFAR-size config and at 224 px / window 7")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads or os.cpu_count() or 1)
    BASE["window_size"] = args.window
    if args.profile:
        text = profile(args.profile, not args.explicit, args.batch, args.steps or 5, 25)
        print(text)
        args.out.mkdir(parents=True, exist_ok=True)
        name = f"model_speed_profile_{args.profile}_{'explicit' if args.explicit else 'fused'}.txt"
        (args.out / name).write_text(text)
        return 0
    if args.windows:
        defaults = (1, 1, 1) if args.quick else (4, 3, 3)
        args.repeats, args.steps = args.repeats or defaults[0], args.steps or defaults[1]
        args.eval_iters = args.eval_iters or defaults[2]
        args.warmup = 1 if args.quick else args.warmup
        t0 = time.time()
        res = run_windows(args)
        res["method"]["wall_s"] = time.time() - t0
        md = markdown_windows(res)
        print(md)
        args.out.mkdir(parents=True, exist_ok=True)
        stem = "model_speed_windows_quick" if args.quick else "model_speed_windows"
        (args.out / f"{stem}.md").write_text(md)
        (args.out / f"{stem}.json").write_text(json.dumps(res, indent=2))
        print(f"wrote {args.out / stem}.{{md,json}} in {res['method']['wall_s']:.0f} s", file=sys.stderr)
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
    stem = ("model_speed_quick" if args.quick else "model_speed") + ("" if args.window == 4 else f"_w{args.window}")
    (args.out / f"{stem}.md").write_text(md)
    (args.out / f"{stem}.json").write_text(json.dumps(res, indent=2))
    print(f"wrote {args.out / stem}.{{md,json}} in {res['method']['wall_s']:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
