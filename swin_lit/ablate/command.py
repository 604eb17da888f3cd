"""``swin-lit ablate``: run an ablation spec (variants x seeds) as one Optuna study.

The spec is validated and every cell's config resolved before anything runs. The cells are planned into
the study (one WAITING trial per cell that has none), then ``--workers`` worker processes claim and train
them (each imports torch once and forks a child per cell). Running the same command again resumes: done
cells are kept, cells whose worker died are re-queued and resume from their checkpoints, failed cells stay
failed unless ``--retry-failed``. Several machines can work on one study by giving each the same
``--storage`` URL (PostgreSQL) or a journal file on a shared filesystem.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

EXAMPLES = """examples:
  swin-lit ablate ablations/quick.yaml                        # run the grid; results/quick/ holds the study
  swin-lit ablate ablations/quick.yaml --dry-run              # list cells, run folders and states
  swin-lit ablate ablations/quick.yaml --retry-failed         # run failed cells again
  swin-lit ablate ablations/factorial.yaml --storage postgresql+psycopg2://user@db/ablate   # many machines

Worker logs (tracebacks of failed cells): <out>/logs/. Study log and reports can be committed; <out>/runs/ is
ignored (a .gitignore is written there).
"""

GITIGNORE = ("# run folders (checkpoints, TensorBoard) and worker logs stay local; commit the study log and reports\n"
             "runs/\nlogs/\n")


def default_workers(cpus: int | None = None) -> int:
    """One single-threaded worker per core, at most 4: on 2 cores two 1-thread workers train 1.3-1.45x
    faster in total than one 2-thread worker (machine.md; measured again for this driver, see README)."""
    cpus = cpus or os.cpu_count() or 1
    return max(1, min(cpus, 4))


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ablate", help="run an ablation spec (variants x seeds) as an Optuna study",
                       description=__doc__, epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("spec", help="ablation spec, e.g. ablations/quick.yaml")
    p.add_argument("--workers", type=int, default=None,
                   help="worker processes on this machine (default: one per core, at most 4; "
                        "each gets cores/workers torch threads)")
    p.add_argument("--storage", default=None,
                   help="Optuna storage: a URL (postgresql+psycopg2://user@host/db, any SQLAlchemy URL) or a journal "
                        "file (default: OUT/study.log)")
    p.add_argument("--out", default=None, help="study folder (default: results/<spec name>); run folders in OUT/runs")
    p.add_argument("--dry-run", action="store_true", help="list every cell with its state; change nothing")
    p.add_argument("--retry-failed", action="store_true", help="queue the failed cells again")
    p.add_argument("--grace", type=float, default=None,
                   help="seconds without heartbeat after which a running cell's worker is presumed dead (default 60)")
    p.add_argument("--heartbeat", type=float, default=None, help="seconds between heartbeats (default 10)")
    p.add_argument("--no-report", action="store_true", help="do not build the report at the end")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from swin_lit.ablate.spec import load_plan
    from swin_lit.cli import BadInput

    plan = load_plan(args.spec)  # ConfigError (exit 2) before anything is created
    out = Path(args.out) if args.out else Path("results") / plan.spec.name
    target = args.storage or str(out / "study.log")
    if args.workers is not None and args.workers < 1:
        raise BadInput(f"--workers: must be >= 1, got {args.workers}")
    if args.dry_run:
        return dry_run(plan, out, target)
    from swin_lit.ablate import store

    grace = args.grace if args.grace is not None else store.GRACE_S
    heartbeat = args.heartbeat if args.heartbeat is not None else min(store.HEARTBEAT_S, grace / 3)
    if target.startswith("sqlite") and (args.workers or default_workers()) > 1:
        print("swin-lit ablate: warning: SQLite is not safe for concurrent workers (no row locks); "
              "prefer the default journal file or PostgreSQL", file=sys.stderr)
    out.mkdir(parents=True, exist_ok=True)
    ignore = out / ".gitignore"
    if not ignore.exists():
        ignore.write_text(GITIGNORE)
    storage = store.open_storage(target)
    ref = store.create_study(storage, plan.spec.name, plan.spec.direction(), plan.spec.to_plain(), plan.cell_ids)
    queued = store.plan_cells(ref, plan.cells, retry_failed=args.retry_failed, grace=grace)
    counts = store.progress_counts(ref, plan.cell_ids, grace)
    pending = counts["queued"] + counts["running"]
    print(f"study {plan.spec.name!r}: {len(plan.cells)} cells; {counts['done']} done, {counts['failed']} failed, "
          f"{pending} to run ({queued} newly queued); storage {target}", file=sys.stderr)
    if pending:
        n = args.workers or default_workers()
        threads = max(1, (os.cpu_count() or 1) // n)  # from the asked-for workers: the same for every cell
        n = max(1, min(n, pending))
        run_workers(ref, plan, out, target, n, threads, heartbeat, grace, progress=not args.no_progress)
    counts = store.progress_counts(ref, plan.cell_ids, grace)
    failed = [(c, detail) for c, (state, detail) in cell_states(ref, plan, grace).items() if state == "failed"]
    print(f"study {plan.spec.name!r}: {counts['done']} of {len(plan.cells)} cells done, {counts['failed']} failed"
          + (f", {counts['running'] + counts['queued']} still running elsewhere" if counts["running"] + counts["queued"]
             else ""), file=sys.stderr)
    for cell, detail in failed:
        print(f"  failed: {cell}: {detail}", file=sys.stderr)
    if failed:
        print("  (fix the cause, then run again with --retry-failed)", file=sys.stderr)
    if not args.no_report and counts["done"]:
        report(target if args.storage else out, plan.spec.name, out)
    return 1 if failed else 0


def cell_states(ref, plan, grace: float) -> dict[str, tuple[str, str]]:
    from swin_lit.ablate import store

    by_cell = store.cell_trials(ref, kind=None) if ref is not None else {}
    return {c.id: store.cell_state(by_cell.get(c.id, []), grace) for c in plan.cells}


def run_workers(ref, plan, out: Path, target: str, n: int, threads: int, heartbeat: float, grace: float,
                progress: bool = True) -> None:
    """Start ``n`` worker processes and follow the study's progress until they exit."""
    from swin_lit.ablate import store

    logs = out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "swin_lit.ablate.worker", "--storage", target, "--study", plan.spec.name,
           "--out", str(out), "--threads", str(threads), "--heartbeat", str(heartbeat), "--grace", str(grace)]
    procs = []
    stamp = time.strftime("%Y%m%d-%H%M%S")
    print(f"starting {n} worker(s) x {threads} thread(s); logs in {logs}/", file=sys.stderr)
    for i in range(n):
        log = open(logs / f"worker-{stamp}-{i}.log", "a")
        procs.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                      preexec_fn=_die_with_parent))
        log.close()
    bar = None
    try:
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=len(plan.cells), desc=plan.spec.name, unit="cell", file=sys.stderr, dynamic_ncols=True)
        finished = -1
        while True:
            alive = [p for p in procs if p.poll() is None]
            counts = store.progress_counts(ref, plan.cell_ids, grace)
            now = counts["done"] + counts["failed"]
            if bar is not None and now != finished:
                bar.n = now
                bar.set_postfix(running=counts["running"], failed=counts["failed"], refresh=False)
                bar.refresh()
            finished = now
            if not alive:
                break
            time.sleep(2.0)
    except KeyboardInterrupt:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            p.wait()
        raise
    finally:
        if bar is not None:
            bar.close()
    bad = [p.returncode for p in procs if p.returncode]
    if bad:
        print(f"swin-lit ablate: {len(bad)} worker(s) exited with errors {bad}; see {logs}/", file=sys.stderr)


def _die_with_parent() -> None:
    """preexec_fn of the workers: a killed driver stops its workers (SIGTERM), which hand their cells back."""
    import ctypes
    import signal

    try:
        ctypes.CDLL(None).prctl(1, int(signal.SIGTERM), 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def dry_run(plan, out: Path, target: str) -> int:
    from swin_lit.ablate import store
    from swin_lit.train.runs import run_dir_for

    storage = store.open_storage(target, create=False)
    ref = store.find_study(storage, plan.spec.name)
    by_cell = store.cell_trials(ref, kind=None) if ref is not None else {}
    spec = plan.spec
    print(f"study {spec.name!r} ({spec.mode}, {len(plan.cells)} cells: {len(spec.variant_list())} variants x "
          f"{len(spec.seeds)} seeds) in {target}" + ("" if ref is not None else " (not created yet)"))
    print(f"base {plan.base_path}; budget: " + (", ".join(f"{k}={v}" for k, v in spec.budget.items()) or "none"))
    rows = []
    for cell in plan.cells:
        trials = by_cell.get(cell.id, [])
        state, detail = store.cell_state(trials)
        run_dir = next((t.user_attrs["run_dir"] for t in reversed(trials) if t.user_attrs.get("run_dir")), None)
        if run_dir is not None:
            run_dir = str(out / run_dir)
        elif spec.mode == "search":
            run_dir = "(after sampling)"
        else:
            run_dir = str(run_dir_for(cell.config, out / "runs"))
        overrides = ", ".join(f"{k}={v}" for k, v in {**cell.overrides, "seed": cell.seed}.items())
        rows.append((state + (f": {detail}" if detail and state in ("failed", "running") else ""), cell.id, run_dir,
                     overrides))
    widths = [max(len(r[i]) for r in rows + [("STATE", "CELL", "RUN FOLDER", "OVERRIDES")]) for i in range(3)]
    for r in [("STATE", "CELL", "RUN FOLDER", "OVERRIDES"), *rows]:
        print("  ".join(x.ljust(w) for x, w in zip(r[:3], widths)) + "  " + r[3])
    totals: dict[str, int] = {}
    for r in rows:
        key = r[0].split(":")[0]
        totals[key] = totals.get(key, 0) + 1
    print("total: " + ", ".join(f"{v} {k}" for k, v in totals.items()))
    return 0


def report(source, study: str, out: Path) -> None:
    try:
        from swin_lit.report.build import build_report
    except ImportError as err:
        print(f"(no report: the report package is not available: {err})", file=sys.stderr)
        return
    try:
        folder = build_report(source, study=study, out=out)
        print(f"report: {Path(folder) / 'report.md'}", file=sys.stderr)
    except Exception as err:  # noqa: BLE001 - the study is safe in the storage; the report can be rebuilt
        print(f"(report failed: {type(err).__name__}: {err}; rebuild it with: swin-lit report {source})",
              file=sys.stderr)
