"""Old vs new window attention, side by side in one process: the attention module of a git revision (default
``4ff1bfe``, before the similarity registry) against the working tree's, on the same weights, layout and input.

    PYTHONPATH=$PWD python benchmarks/similarity_ab.py [--old-rev REV] [--repeats 15] [--threads 1]

For each similarity (dot with the V1 table, cosine with the V2 log-CPB) it times the shifted block of Swin-T's
stage 1 (56 x 56 tokens, window 7, C 96, 3 heads) in inference (no grad) and in training (forward + backward),
alternating old and new call by call, and prints the medians and new / old. It first checks that both give
the same output bit for bit.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from swin_lit.models import SwinConfig, SwinTransformer
from swin_lit.models.attention import WindowAttention

ROOT = Path(__file__).resolve().parents[1]


def old_attention_module(rev: str):
    source = subprocess.run(["git", "show", f"{rev}:swin_lit/models/attention.py"], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp()) / "old_attention.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("old_attention", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def timed(module, x, layout, train: bool) -> float:
    start = time.perf_counter()
    if train:
        module(x, layout).sum().backward()
    else:
        with torch.no_grad():
            module(x, layout)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old-rev", default="4ff1bfe")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=4)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    old = old_attention_module(args.old_rev)
    print(f"torch {torch.__version__}, {args.threads} thread(s), batch {args.batch}, old = {args.old_rev}, "
          f"new = working tree; medians of {args.repeats} alternating calls")
    for attention, relative in (("dot", "table"), ("cosine", "cpb_log")):
        cfg = SwinConfig(attention=attention, relative=relative, norm="pre")
        model = SwinTransformer(cfg)
        layout = model.layout(cfg.grid)[0].blocks[1]  # stage 1's shifted block: region mask, 64 windows
        new: WindowAttention = model.layers[0].blocks[1].attn
        was = old.WindowAttention(96, 3, 7, similarity=attention, relative=relative)
        was.load_state_dict(new.state_dict())
        x = torch.randn(args.batch, 56 * 56, 96)
        with torch.no_grad():
            assert torch.equal(was(x, layout), new(x, layout)), "old and new differ"
        for train in (False, True):
            for module in (was, new):
                module.train(train)
                timed(module, x, layout, train)  # warm-up
            times = {"old": [], "new": []}
            for r in range(args.repeats):
                order = (("old", was), ("new", new)) if r % 2 == 0 else (("new", new), ("old", was))
                for name, module in order:
                    times[name].append(timed(module, x, layout, train))
            o, n = statistics.median(times["old"]), statistics.median(times["new"])
            print(f"{attention:6s} {'train' if train else 'eval ':5s}  old {o * 1e3:7.2f} ms  new {n * 1e3:7.2f} ms  "
                  f"new/old {n / o:.3f}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
