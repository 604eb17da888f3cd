"""``swin-lit power SPEC --sd S``: how many seeds, cells and compute a spec's question needs, before any run.

Simulates the spec's own design with the package's own decision code: its seeds (listed, or the two-stage
adaptive rule: ``swin_lit.seeds.stein_seeds``), its tests (the paired t-test on listed seeds, Stein's
two-stage test on adaptive ones: ``swin_lit.seeds.stein_test``) and its Holm family (every variant against the baseline
on the objective, at the spec's alpha: ``stats.holm_reject``). Each simulated study draws per-seed values with
seeds as blocks: baseline ~ N(0, S^2/2), each variant ~ N(its effect, S^2/2), so every paired difference has
SD S (and two variants' differences to the shared baseline correlate 0.5, as in a real study). For each
``--effect D`` one comparison has true difference D and the others none; printed per effect:

- resolved: the share of studies whose Holm family rejects that comparison in the direction of D (at D = 0
  in either direction: its false-positive rate), with its Monte Carlo standard error;
- familywise false positive: the share of studies with any rejection among the comparisons without effect;
- seeds per variant (mean and largest), train cells and compute (cells x the cell time: ``--cell-time``,
  else the median ``wall_time_s`` of an earlier study's ``runs.csv``, ``--study`` or ``results/<name>``;
  "unknown" without either);
- the effect the design detects with 80% power (the D where "resolved" reaches 0.8, found by bisection on
  the same simulated noise).

Not modelled: failed cells, non-normal or bimodal outcomes (seeds that do not learn), transfer cells.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from swin_lit import stats
from swin_lit.domain.sections import SeedRule
from swin_lit.errors import BadInput
from swin_lit.seeds import stein_seeds, stein_test

EXAMPLES = """examples:
  swin-lit power ablations/cifar10_shift_position.yaml --sd 1.0                  # effects 0 and 1, 2, 3 SDs
  swin-lit power ablations/cifar10_shift_position.yaml --sd 1.0 --effect 0 --studies 4000 --json
  swin-lit power ablations/quick.yaml --sd 0.5 --effect 0 --effect 1 --cell-time 20
"""

TARGET = stats.POWER


@dataclass(frozen=True)
class Design:
    """What is simulated: ``variants`` trained (baseline included), ``family`` comparisons vs the baseline,
    the seed rule (adaptive) or the listed seed count, alpha."""

    variants: int
    family: int
    alpha: float
    rule: SeedRule | None = None
    seeds: int = 0

    @property
    def max_seeds(self) -> int:
        return self.rule.max if self.rule is not None else self.seeds


@dataclass(frozen=True)
class Noise:
    """Standard-normal per-seed draws of one simulation, shared by every effect (common random numbers):
    ``base`` (studies, 1, seeds) and ``own`` (studies, family, seeds)."""

    base: np.ndarray
    own: np.ndarray

    @classmethod
    def draw(cls, design: Design, studies: int, seed: int) -> Noise:
        rng = np.random.default_rng(seed)
        return cls(rng.standard_normal((studies, 1, design.max_seeds)),
                   rng.standard_normal((studies, design.family, design.max_seeds)))


def simulate(design: Design, noise: Noise, sd: float, effect: float) -> tuple[np.ndarray, np.ndarray]:
    """(seeds per study (studies,), rejection sign per study and comparison (studies, family): +1 / -1 where
    Holm rejects with that sign, 0 elsewhere) with comparison 0's true difference ``effect``."""
    scale = sd / math.sqrt(2)
    shift = np.zeros((1, design.family, 1))
    shift[0, 0, 0] = effect
    diffs = shift + scale * (noise.own - noise.base)  # (studies, family, seeds): paired differences, SD sd
    if design.rule is not None:
        start = design.rule.start
        sd0 = diffs[:, :, :start].std(axis=2, ddof=1)
        n = stein_seeds(sd0, start, design.rule).max(axis=1)  # every variant runs to the largest N
        df = start - 1
    else:
        n = np.full(len(diffs), design.seeds)
        sd0 = diffs.std(axis=2, ddof=1)
        df = design.seeds - 1
    used = np.arange(design.max_seeds) < n[:, None, None]
    mean = (diffs * used).sum(axis=2) / n[:, None]
    p = stein_test(mean, sd0, n[:, None], df)[2]
    reject = stats.holm_reject(p, design.alpha)
    return n, np.where(reject, np.sign(mean), 0.0)


def resolved_share(signs: np.ndarray, effect: float) -> float:
    if effect == 0:
        return float((signs[:, 0] != 0).mean())
    return float((signs[:, 0] == math.copysign(1.0, effect)).mean())


def detectable(design: Design, noise: Noise, sd: float, target: float = TARGET) -> float:
    """The smallest effect that ``target`` of the simulated studies resolve (bisection on the same noise)."""
    def power_at(d: float) -> float:
        return resolved_share(simulate(design, noise, sd, d)[1], d)

    hi = sd
    while power_at(hi) < target:
        hi *= 2
        if hi > 1e6 * sd:
            return math.inf
    lo = 0.0
    while hi - lo > 1e-4 * hi:
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if power_at(mid) < target else (lo, mid)
    return hi


def cell_time(spec_name: str, given: float | None, study: str | None) -> tuple[float | None, str]:
    """(seconds per train cell, where it comes from)."""
    if given is not None:
        return given, "--cell-time"
    folder = Path(study) if study is not None else Path("results") / spec_name
    runs = folder / "runs.csv" if folder.is_dir() else folder
    if study is not None and not runs.is_file():
        raise BadInput(f"--study: no runs.csv in {study}")
    if not runs.is_file():
        return None, f"unknown (no --cell-time, no earlier study at {runs})"
    with open(runs, newline="") as f:
        times = [float(r["wall_time_s"]) for r in csv.DictReader(f)
                 if r.get("wall_time_s") not in (None, "") and r.get("state", "COMPLETE") == "COMPLETE"]
    times = [t for t in times if math.isfinite(t) and t > 0]
    if not times:
        return None, f"unknown ({runs} has no wall_time_s)"
    return statistics.median(times), f"median wall_time_s of {len(times)} cells in {runs}"


def design_of(spec) -> Design:
    if spec.mode != "grid":
        raise BadInput(f"{spec.name}: power simulates grid studies (seeds x variants); this spec is mode: {spec.mode}")
    variants = len(spec.variant_names())
    if variants < 2:
        raise BadInput(f"{spec.name}: one variant only; power needs a baseline and at least one other variant")
    if spec.rule is None and len(spec.seeds) < 2:
        raise BadInput(f"{spec.name}: {len(spec.seeds)} seed listed; a paired test needs at least 2")
    return Design(variants, variants - 1, spec.alpha, spec.rule, 0 if spec.rule is not None else len(spec.seeds))


def power_table(spec, sd: float, effects: list[float], studies: int, seed: int = 0,
                cell_seconds: float | None = None, cell_source: str = "unknown") -> dict:
    """The plain-data answer (what ``--json`` prints)."""
    design = design_of(spec)
    noise = Noise.draw(design, studies, seed)
    smallest = detectable(design, noise, sd)
    rows = []
    for effect in effects:
        n, signs = simulate(design, noise, sd, effect)
        r = resolved_share(signs, effect)
        nulls = signs if effect == 0 else signs[:, 1:]
        cells = design.variants * n
        row = {"effect": effect, "resolved": r, "resolved_se": math.sqrt(r * (1 - r) / studies),
               "wrong_sign": float((signs[:, 0] == -math.copysign(1.0, effect)).mean()) if effect else 0.0,
               "familywise_false_positive": float((nulls != 0).any(axis=1).mean()) if nulls.shape[1] else 0.0,
               "seeds_mean": float(n.mean()), "seeds_max": int(n.max()),
               "cells_mean": float(cells.mean()), "cells_max": int(cells.max()),
               "compute_hours_mean": None, "compute_hours_max": None, "detectable_80": smallest}
        if cell_seconds is not None:
            row["compute_hours_mean"] = float(cells.mean()) * cell_seconds / 3600
            row["compute_hours_max"] = int(cells.max()) * cell_seconds / 3600
        rows.append(row)
    rule = design.rule
    return {
        "spec": spec.name, "objective": spec.objective, "sd": sd, "studies": studies, "alpha": design.alpha,
        "family": design.family, "variants": design.variants,
        "seeds": ({"rule": "two-stage", "start": rule.start, "max": rule.max, "precision": rule.precision}
                  if rule is not None else {"rule": "listed", "count": design.seeds}),
        "cell_time_s": cell_seconds, "cell_time_source": cell_source, "detectable_80": smallest, "effects": rows,
    }


def render(table: dict) -> str:
    s = table["seeds"]
    seeds = (f"two-stage seeds (start {s['start']}, max {s['max']}, precision {s['precision']:g})"
             if s["rule"] == "two-stage" else f"{s['count']} listed seeds")
    lines = [f"power of {table['spec']}: {seeds}; Holm over {table['family']} comparison"
             f"{'s' if table['family'] > 1 else ''} vs the baseline on {table['objective']} at alpha "
             f"{table['alpha']:g}; {table['studies']} simulated studies, paired differences normal with SD "
             f"{table['sd']:g}; one comparison has the effect, the others none",
             f"cell time: {table['cell_time_s']:.0f} s ({table['cell_time_source']})" if table["cell_time_s"]
             else f"cell time: {table['cell_time_source']}"]
    header = ("EFFECT", "RESOLVED", "FAMILYWISE FP", "SEEDS MEAN/MAX", "CELLS MEAN/MAX", "COMPUTE MEAN/MAX")
    rows = []
    for r in table["effects"]:
        compute = ("unknown" if r["compute_hours_mean"] is None else
                   f"{r['compute_hours_mean']:.2f} / {r['compute_hours_max']:.2f} h")
        rows.append((f"{r['effect']:g}", f"{r['resolved']:.3f} ± {r['resolved_se']:.3f}",
                     f"{r['familywise_false_positive']:.3f}", f"{r['seeds_mean']:.2f} / {r['seeds_max']}",
                     f"{r['cells_mean']:.1f} / {r['cells_max']}", compute))
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines += ["  ".join(x.ljust(w) for x, w in zip(row, widths)).rstrip() for row in [header, *rows]]
    lines.append("resolved at effect 0 is the false-positive rate (either sign); ± one Monte Carlo SE")
    lines.append(stats.power_statement(table["detectable_80"]).replace("this design had", "this design has")
                 + f" on {table['objective']} (simulated, one comparison with the effect)")
    return "\n".join(lines)


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("power", help="pre-flight: seeds, cells, compute and power of a spec's design",
                       description=__doc__, epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("spec", help="ablation spec, e.g. ablations/cifar10_shift_position.yaml")
    p.add_argument("--sd", type=float, required=True,
                   help="SD of a paired per-seed difference on the objective (its units), e.g. from an earlier study")
    p.add_argument("--effect", type=float, action="append", default=None,
                   help="true difference of one comparison, repeatable (default: 0 and 1, 2, 3 x SD)")
    p.add_argument("--studies", type=int, default=4000, help="simulated studies (default 4000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the simulation (default 0)")
    p.add_argument("--cell-time", type=float, default=None, help="seconds per train cell (default: from --study)")
    p.add_argument("--study", default=None,
                   help="earlier study folder (or its runs.csv) whose median cell time to use (default: "
                        "results/<spec name> when it exists)")
    p.add_argument("--json", action="store_true", help='print {"effects": [{"effect": D, "resolved": r, ...}]}')
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from swin_lit.ablate.spec import read_spec

    if not (math.isfinite(args.sd) and args.sd > 0):
        raise BadInput(f"--sd: must be a number > 0, got {args.sd}")
    if args.studies < 100:
        raise BadInput(f"--studies: must be >= 100, got {args.studies}")
    effects = args.effect if args.effect is not None else [0.0, args.sd, 2 * args.sd, 3 * args.sd]
    if any(not math.isfinite(e) for e in effects):
        raise BadInput(f"--effect: must be finite numbers, got {effects}")
    if args.cell_time is not None and not (math.isfinite(args.cell_time) and args.cell_time > 0):
        raise BadInput(f"--cell-time: must be seconds > 0, got {args.cell_time}")
    spec = read_spec(args.spec)
    seconds, source = cell_time(spec.name, args.cell_time, args.study)
    table = power_table(spec, args.sd, effects, args.studies, args.seed, seconds, source)
    if args.json:  # strict JSON: an effect no design reaches (inf) is null
        finite = {**table, "detectable_80": _finite(table["detectable_80"]),
                  "effects": [{**r, "detectable_80": _finite(r["detectable_80"])} for r in table["effects"]]}
        json.dump(finite, sys.stdout, indent=1, allow_nan=False)
        print()
    else:
        print(render(table))
    return 0
