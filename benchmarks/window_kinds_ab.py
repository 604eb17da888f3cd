"""Old vs new Swin stage, side by side in one process: the window kind as ``if sliding`` branches (a git revision,
default ``main``) against the working tree's ``WINDOWS`` registry (``swin_lit.models.window_kinds``), on the same
weights and input.

    PYTHONPATH=$PWD python benchmarks/window_kinds_ab.py [--old-rev main] [--repeats 15] [--threads 1] [--batch 2]

The old ``geometry``, ``windows``, ``attention`` and ``blocks`` are loaded from ``git show`` into a temporary
package (their imports of each other redirected there, the old similarity kinds registered in a registry of their
own; the rest is the working tree's). First, for both window
kinds (partitioned with every shift kind, sliding), both ``pad_keys``, both norm placements and the four stages of
a 72 x 100 image (maps the window does not tile), it checks that old and new build the same layouts and give the
same stage output and the same input gradient bit for bit. Then it times the stage forward in inference (no grad)
and in training (forward + backward) for a tiny stage (8 x 8 tokens, C 16, where the per-call Python cost weighs
most) and Swin-T's stage 1 (56 x 56, C 96, 2 blocks) and stage 3 (14 x 14, C 384, 6 blocks), partitioned (cyclic
shift) and sliding, alternating old and new call by call, and prints the median times and the median of the
per-pair new / old ratios with their interquartile range (the spread).
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

from swin_lit.models import SwinConfig
from swin_lit.models.blocks import Stage

ROOT = Path(__file__).resolve().parents[1]
OLD = ("geometry", "windows", "attention", "blocks")  # loaded in this order, each importing the earlier ones


def old_modules(rev: str) -> dict:
    """The revision's geometry, windows, attention and blocks as modules of a temporary package ``old_models``."""
    folder = Path(tempfile.mkdtemp()) / "old_models"
    folder.mkdir()
    (folder / "__init__.py").write_text("")
    sys.path.insert(0, str(folder.parent))
    modules = {}
    for name in OLD:
        source = subprocess.run(["git", "show", f"{rev}:swin_lit/models/{name}.py"], cwd=ROOT, check=True,
                                capture_output=True, text=True).stdout
        for other in OLD:
            source = source.replace(f"swin_lit.models.{other} ", f"old_models.{other} ")
        if name == "attention":  # its similarity kinds go into a registry of its own (the package's has its own)
            source = source.replace("from swin_lit.models.registry import SIMILARITIES\n",
                                    "from swin_lit.models.registry import Registry\n\n"
                                    "SIMILARITIES = Registry('attention', 'attention similarity', "
                                    "'old_models.attention', ('dot', 'cosine'))\n")
        (folder / f"{name}.py").write_text(source)
        spec = importlib.util.spec_from_file_location(f"old_models.{name}", folder / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[f"old_models.{name}"] = module
        spec.loader.exec_module(module)
        modules[name] = module
    return modules


def stage_pair(old: dict, cfg: SwinConfig, index: int):
    """(old stage, its geometry, its layout, new stage, its geometry, its layout) for stage ``index`` of ``cfg``,
    with the same weights."""
    depth = cfg.depths[index]
    new_geometry = cfg.stages()[index]
    old_geometry = old["geometry"].stage_geometries(cfg.grid, cfg.window_size, cfg.embed_dim, cfg.num_heads,
                                                    cfg.shift, cfg.windows, cfg.small_maps, cfg.pad_keys)[index]
    was_fields = {k: v for k, v in old_geometry.__dict__.items() if k != "sliding"}
    new_fields = {k: v for k, v in new_geometry.__dict__.items() if k != "windows"}
    same_kind = old_geometry.sliding == (new_geometry.windows == "sliding")
    assert was_fields == new_fields and same_kind, (old_geometry, new_geometry)
    new = Stage(new_geometry, depth, cfg, [0.0] * depth, 0, merge=False)
    was = old["blocks"].Stage(old_geometry, depth, cfg, [0.0] * depth, 0, merge=False)
    for block in new.blocks:  # as the model does after its own initialisation
        block.placement.init_norms(block.norm1, block.norm2)
    with torch.no_grad():
        for p in new.parameters():  # away from the init, so every part of the block shows
            p.normal_(0.0, 0.05)
    was.load_state_dict(new.state_dict())
    return was, old_geometry, was.layout(old_geometry), new, new_geometry, new.layout(new_geometry)


def same_layouts(a, b) -> bool:
    for x, y in zip(a.blocks, b.blocks, strict=True):
        for u, v in zip(x, y, strict=True):
            if isinstance(u, torch.Tensor) or isinstance(v, torch.Tensor):
                if u is None or v is None or not torch.equal(u, v):
                    return False
            elif u != v:
                return False
    return True


def output_and_gradient(stage, x, layout):
    x = x.clone().requires_grad_(True)
    out = stage(x, layout)[0]
    (out * torch.linspace(-1, 1, out.shape[-1])).sum().backward()
    return out.detach(), x.grad


def timed(stage, x, layout, train: bool) -> float:
    start = time.perf_counter()
    if train:
        stage(x, layout)[0].sum().backward()
    else:
        with torch.no_grad():
            stage(x, layout)
    return time.perf_counter() - start


def quartiles(values: list[float]) -> tuple[float, float, float]:
    q1, q2, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, q2, q3


WINDOW_KINDS = {"partition": dict(windows="partition", shift="cyclic"),
                "sliding": dict(windows="sliding", shift="none")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old-rev", default="main")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    old = old_modules(args.old_rev)
    assert old["blocks"].__file__ != sys.modules[Stage.__module__].__file__

    # exactness first: both window kinds (partitioned with every shift kind), both pad_keys, both placements,
    # maps the window does not tile (and a small one padded to a whole window)
    checked = 0
    switches = [dict(windows="partition", shift=s) for s in ("cyclic", "pad", "none")] + [WINDOW_KINDS["sliding"]]
    for norm in ("pre", "res_post"):
        for kind in switches:
            for pad_keys in ("mask", "attend"):
                cfg = SwinConfig(img_size=(72, 100), embed_dim=32, num_heads=(2, 4, 8, 16), norm=norm, **kind,
                                 pad_keys=pad_keys, small_maps="pad")
                for index in range(4):
                    was, _, old_layout, new, _, new_layout = stage_pair(old, cfg, index)
                    assert same_layouts(old_layout, new_layout), (norm, kind, pad_keys, index)
                    x = torch.randn(2, old_layout.resolution[0] * old_layout.resolution[1], cfg.embed_dim * 2**index)
                    for a, b in zip(output_and_gradient(was, x, old_layout), output_and_gradient(new, x, new_layout)):
                        assert torch.equal(a, b), (norm, kind, pad_keys, index)
                    checked += 1
    print(f"old = {args.old_rev}, new = working tree: {checked} stages (norm x (partition with cyclic/pad/none, "
          f"sliding) x pad_keys x 4 stages of a 72 x 100 image) with the same layouts, the same output and the same "
          f"input gradient bit for bit")
    print(f"torch {torch.__version__}, {args.threads} thread(s), batch {args.batch}; alternating calls, medians; "
          f"new/old: median of the per-pair ratios [interquartile range]")

    tiny = dict(img_size=32, window_size=4, embed_dim=16, depths=(2, 2, 2), num_heads=(2, 4, 8))
    runs = [(0, "tiny stage (8x8, C 16, 2 blocks)", tiny, 10 * args.repeats),
            (0, "stage 1 (56x56, C 96, 2 blocks)", {}, args.repeats),
            (2, "stage 3 (14x14, C 384, 6 blocks)", {}, args.repeats)]
    for index, label, sizes, repeats in runs:
        for kind, kind_switches in WINDOW_KINDS.items():
            cfg = SwinConfig(**sizes, **kind_switches)  # Swin-T at 224: window 7, pre-norm
            was, _, old_layout, new, g, new_layout = stage_pair(old, cfg, index)
            x = torch.randn(args.batch, g.resolution[0] * g.resolution[1], g.dim)
            for train in (False, True):
                for stage, layout in ((was, old_layout), (new, new_layout)):
                    stage.train(train)
                    timed(stage, x, layout, train)  # warm-up
                times = {"old": [], "new": []}
                for r in range(repeats):
                    pair = (("old", was, old_layout), ("new", new, new_layout))
                    for name, stage, layout in pair if r % 2 == 0 else pair[::-1]:
                        times[name].append(timed(stage, x, layout, train))
                o, n = statistics.median(times["old"]), statistics.median(times["new"])
                q1, q2, q3 = quartiles([b / a for a, b in zip(times["old"], times["new"])])
                print(f"{label:34s} {kind:9s} {'train' if train else 'eval ':5s}  old {o * 1e3:8.3f} ms  "
                      f"new {n * 1e3:8.3f} ms  new/old {q2:.3f} [{q1:.3f}, {q3:.3f}]")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
