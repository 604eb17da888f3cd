"""Old vs new Swin stage, side by side in one process: the blocks, windows and geometry modules of a git revision
(default ``main``, before the norm placement and shift kind registries were wired in) against the working tree's,
on the same weights and input.

    PYTHONPATH=$PWD python benchmarks/placement_ab.py [--old-rev main] [--repeats 15] [--threads 1] [--batch 2]

The old modules are loaded from ``git show`` into a temporary package (their imports of each other redirected
there; attention and position are the working tree's, which this change does not touch). For each Swin-T stage
size (stage 1: 56 x 56 tokens, C 96, 2 blocks; stage 3: 14 x 14, C 384, 6 blocks), and a tiny stage (8 x 8, C 16)
where the per-call Python cost weighs most, and each norm placement it
first checks that the old and new layouts hold the same tensors and that both stages give the same output bit
for bit (every shift kind and both ``pad_keys``), then times the stage forward in inference (no grad) and in
training (forward + backward), alternating old and new call by call, and prints the medians and new / old. It
also times building one input size's layout (once per size, not per forward).
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
OLD = ("geometry", "windows", "blocks")  # loaded in this order, each importing the earlier ones from the package


def old_modules(rev: str) -> dict:
    """The revision's geometry, windows and blocks as modules of a temporary package ``old_models``."""
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
    assert old_geometry.__dict__ == new_geometry.__dict__, (old_geometry, new_geometry)
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


def timed(stage, x, layout, train: bool) -> float:
    start = time.perf_counter()
    if train:
        stage(x, layout)[0].sum().backward()
    else:
        with torch.no_grad():
            stage(x, layout)
    return time.perf_counter() - start


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

    # exactness first: every shift kind, both pad_keys, a map the window does not tile, both placements
    checked = 0
    for norm in ("pre", "res_post"):
        for shift in ("cyclic", "pad", "none"):
            for pad_keys in ("mask", "attend"):
                cfg = SwinConfig(img_size=(72, 100), embed_dim=32, num_heads=(2, 4, 8, 16), norm=norm, shift=shift,
                                 pad_keys=pad_keys, small_maps="pad")
                for index in range(4):
                    was, _, old_layout, new, _, new_layout = stage_pair(old, cfg, index)
                    assert same_layouts(old_layout, new_layout), (norm, shift, pad_keys, index)
                    x = torch.randn(2, old_layout.resolution[0] * old_layout.resolution[1], cfg.embed_dim * 2**index)
                    with torch.no_grad():
                        assert torch.equal(was(x, old_layout)[0], new(x, new_layout)[0]), (norm, shift, pad_keys)
                    checked += 1
    print(f"old = {args.old_rev}, new = working tree: {checked} stages (norm x shift x pad_keys x 4 stages of a "
          f"72 x 100 image) with the same layouts and the same output bit for bit")
    print(f"torch {torch.__version__}, {args.threads} thread(s), batch {args.batch}; medians of {args.repeats} "
          f"alternating calls")

    # a tiny stage first: 8 x 8 tokens, C 16, where the Python per-call cost of the block (the placement's residual
    # calls) is largest relative to the arithmetic; then Swin-T's own stages
    tiny = dict(img_size=32, window_size=4, embed_dim=16, depths=(2, 2, 2), num_heads=(2, 4, 8))
    runs = [(0, "tiny stage (8x8, C 16, 2 blocks)", tiny, 10 * args.repeats),
            (0, "stage 1 (56x56, C 96, 2 blocks)", {}, args.repeats),
            (2, "stage 3 (14x14, C 384, 6 blocks)", {}, args.repeats)]
    for index, label, sizes, repeats in runs:
        for norm in ("pre", "res_post"):
            cfg = SwinConfig(**sizes, norm=norm)  # Swin-T at 224: window 7, cyclic shift
            was, old_geometry, old_layout, new, g, new_layout = stage_pair(old, cfg, index)
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
                print(f"{label:34s} {norm:8s} {'train' if train else 'eval ':5s}  old {o * 1e3:8.3f} ms  "
                      f"new {n * 1e3:8.3f} ms  new/old {n / o:.3f}")
            builds = {"old": [], "new": []}
            for r in range(args.repeats):
                pair = (("old", was, old_geometry), ("new", new, g))
                for name, stage, geometry in pair if r % 2 == 0 else pair[::-1]:
                    start = time.perf_counter()
                    stage.layout(geometry)
                    builds[name].append(time.perf_counter() - start)
            o, n = statistics.median(builds["old"]), statistics.median(builds["new"])
            print(f"{label:34s} {norm:8s} layout build (once per size)  old {o * 1e3:6.2f} ms  new {n * 1e3:6.2f} ms  "
                  f"new/old {n / o:.3f}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
