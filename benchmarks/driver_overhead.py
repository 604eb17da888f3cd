"""Driver overhead of ``swin-lit ablate``: the study's wall time vs the training time of its cells.

    python benchmarks/driver_overhead.py ablations/quick.yaml [--workers N] [--out DIR]

Runs the spec into a fresh study folder (default: a temporary one) and prints the wall time of the whole
command, the sum of the cells' ``wall_time_s`` (training + evaluation inside ``train``), the ideal wall
time with N workers (that sum / N, perfectly packed) and the overhead: (wall - ideal) / wall. The overhead
holds process start-up (imports, ~7 s per process), planning, claiming, heartbeats (lease writes), forking,
the learning-curve relay, the progress polling and the end-of-study idle time of workers that ran out of
cells.

    python benchmarks/driver_overhead.py --study results/quick --wall 512

analyses an existing study instead (wall time of the run as you measured it).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def cell_times(study_folder: Path, name: str | None) -> list[float]:
    import optuna

    from swin_lit import study as contract

    storage = contract.open_storage(study_folder).storage
    names = optuna.get_all_study_names(storage)
    study = optuna.load_study(study_name=name or names[0], storage=storage)
    return [t.user_attrs["result"]["wall_time_s"] for t in study.get_trials(deepcopy=False)
            if t.state.name == "COMPLETE" and isinstance(t.user_attrs.get("result"), dict)]


def report(wall: float, times: list[float], workers: int) -> None:
    total = sum(times)
    ideal = total / workers
    mean = total / len(times)
    print(f"cells: {len(times)} (training+eval {min(times):.1f}-{max(times):.1f} s each, mean {mean:.1f} s)")
    print(f"workers: {workers}")
    print(f"wall time of the study:            {wall:8.1f} s")
    print(f"sum of cell times:                 {total:8.1f} s")
    print(f"ideal wall time (sum / workers):   {ideal:8.1f} s")
    share = 100 * (wall - ideal) / wall
    print(f"driver overhead (wall - ideal):    {wall - ideal:8.1f} s = {share:.1f}% of the wall time")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("spec", nargs="?", help="spec to run (omit with --study)")
    p.add_argument("--workers", type=int, default=None)
    p.add_argument("--out", default=None, help="study folder for the run (default: a fresh temporary folder)")
    p.add_argument("--study", default=None, help="analyse this existing study folder instead of running")
    p.add_argument("--wall", type=float, default=None, help="with --study: the measured wall time in seconds")
    args = p.parse_args()
    from swin_lit.ablate.command import default_workers

    workers = args.workers or default_workers()
    if args.study:
        if args.wall is None:
            p.error("--study needs --wall (the wall time you measured)")
        report(args.wall, cell_times(Path(args.study), None), workers)
        return 0
    if not args.spec:
        p.error("give a spec to run, or --study")
    out = Path(args.out or tempfile.mkdtemp(prefix="driver-overhead-"))
    cmd = [sys.executable, "-m", "swin_lit.cli", "ablate", args.spec, "--out", str(out), "--workers", str(workers),
           "--no-report", "--no-progress"]
    start = time.perf_counter()
    code = subprocess.run(cmd, env={**os.environ}).returncode
    wall = time.perf_counter() - start
    if code != 0:
        print(f"ablate exited with {code}", file=sys.stderr)
    report(wall, cell_times(out, None), workers)
    return code


if __name__ == "__main__":
    sys.exit(main())
