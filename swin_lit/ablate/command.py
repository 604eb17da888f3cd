"""``swin-lit ablate``: run an ablation spec (variants x seeds) as one Optuna study.

The spec is validated and every cell's config resolved before anything runs. The cells are planned into
the study (one WAITING trial per cell that has none; each trial's params are the study's switches plus
``seed``; adaptive seeds: the cells of the seeds the rule asks for, re-evaluated as results come in, see
``swin_lit.ablate.store``), then workers claim and run them: ``--workers`` processes on this machine (each imports torch
once and forks a child per cell), or with ``--launcher slurm`` a SLURM job array of ``--jobs`` workers
submitted through submitit, each running the same worker loop against the shared ``--storage``. Running
the same command again resumes: done cells are kept, cells whose worker died are re-queued and resume from
their checkpoints, failed cells stay failed unless ``--retry-failed``. Several machines can work on one
study by giving each the same ``--storage`` URL (PostgreSQL) or a journal file on a shared filesystem.
Open the study in Optuna's own tools: ``optuna-dashboard OUT/study.log`` (or the URL).
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import time
from pathlib import Path

from swin_lit import study as contract
from swin_lit.errors import BadInput

EXAMPLES = """examples:
  swin-lit ablate ablations/quick.yaml                        # run the grid; results/quick/ holds the study
  swin-lit ablate ablations/quick.yaml --dry-run              # list cells, run folders and states
                                                              # (adaptive seeds: widths, what would be queued)
  swin-lit ablate ablations/quick.yaml --dry-run --sd 0.5     # and seeds, compute, power at a paired SD of 0.5
  swin-lit ablate ablations/quick.yaml --retry-failed         # run failed cells again
  swin-lit ablate ablations/factorial.yaml --storage postgresql+psycopg2://user@db/ablate   # many machines
  swin-lit ablate ablations/factorial.yaml --storage postgresql+psycopg2://user@db/ablate \\
      --launcher slurm --jobs 16 --slurm partition=gpu --slurm time=240 --slurm cpus=8 --slurm gpus=1
  optuna-dashboard results/quick/study.log                    # params, learning curves, importances

Worker logs (tracebacks of failed cells): <out>/logs/ (SLURM: <out>/slurm/). Study log and reports can be
committed; <out>/runs/ is ignored (a .gitignore is written there).
"""

GITIGNORE = ("# run folders (checkpoints, TensorBoard), worker logs, leases and the compile cache stay local; commit "
             "the study log and reports\nruns/\nlogs/\nslurm/\n*.leases/\ncache/\n")

# --slurm KEY=VALUE: our key -> submitit AutoExecutor parameter (and how to read the value)
SLURM_KEYS = {
    "partition": ("slurm_partition", str), "time": ("timeout_min", int), "cpus": ("cpus_per_task", int),
    "gpus": ("gpus_per_node", int), "mem": ("mem_gb", float), "account": ("slurm_account", str),
    "qos": ("slurm_qos", str), "constraint": ("slurm_constraint", str), "parallel": ("slurm_array_parallelism", int),
    "cluster": ("cluster", str),  # slurm (default) or local: submitit's local executor, the same job code path
}


def default_workers(cpus: int | None = None) -> int:
    """One single-threaded worker per core, at most 4: on 2 cores two 1-thread workers train 1.3-1.45x
    faster in total than one 2-thread worker (measured on the 2-core development machine; docs/driver.md)."""
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
    p.add_argument("--launcher", choices=("local", "slurm"), default="local",
                   help="where the workers run: processes here (default), or a SLURM job array via submitit")
    p.add_argument("--jobs", type=int, default=None, help="--launcher slurm: workers in the job array (default 1)")
    p.add_argument("--slurm", action="append", default=[], metavar="KEY=VALUE",
                   help="--launcher slurm: job options, repeatable: " + ", ".join(SLURM_KEYS)
                        + " (time in minutes, mem in GB, cpus also sets each cell's torch threads)")
    p.add_argument("--dry-run", action="store_true",
                   help="list every cell with its state (adaptive seeds: the current 95%% half-widths against the "
                        "precision and what would be queued now); change nothing")
    p.add_argument("--sd", type=float, default=None,
                   help="with --dry-run: also print what `swin-lit power SPEC --sd S` prints (seeds, cells, compute "
                        "and power of this design at a paired per-seed SD of S on the objective)")
    p.add_argument("--retry-failed", action="store_true", help="queue the failed cells again")
    p.add_argument("--grace", type=float, default=None,
                   help="seconds without heartbeat after which a running cell's worker is presumed dead (default 60)")
    p.add_argument("--heartbeat", type=float, default=None, help="seconds between heartbeats (default 10)")
    p.add_argument("--no-report", action="store_true", help="do not build the report at the end")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def slurm_options(items: list[str]) -> dict:
    """``["partition=gpu", "time=120"]`` -> submitit parameters; BadInput naming the bad item."""
    out: dict = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or key not in SLURM_KEYS:
            raise BadInput(f"--slurm {item!r}: expected KEY=VALUE with KEY one of {', '.join(SLURM_KEYS)}")
        name, kind = SLURM_KEYS[key]
        try:
            out[name] = kind(value)
        except ValueError:
            raise BadInput(f"--slurm {item!r}: {key} must be a{'n integer' if kind is int else ' number'}") from None
    if out.get("cluster", "slurm") not in ("slurm", "local"):
        raise BadInput(f"--slurm cluster={out['cluster']}: allowed values are slurm, local")
    return out


def run(args: argparse.Namespace) -> int:
    from swin_lit.ablate.spec import load_plan

    if args.workers is not None and args.workers < 1:
        raise BadInput(f"--workers: must be >= 1, got {args.workers}")
    if args.launcher == "local" and (args.jobs is not None or args.slurm):
        raise BadInput("--jobs and --slurm are for --launcher slurm; on this machine use --workers")
    if args.launcher == "slurm" and args.workers is not None:
        raise BadInput("--workers is for --launcher local; a SLURM array runs --jobs workers of one cell each")
    if args.jobs is not None and args.jobs < 1:
        raise BadInput(f"--jobs: must be >= 1, got {args.jobs}")
    if args.sd is not None and not args.dry_run:
        raise BadInput("--sd is for --dry-run (or use: swin-lit power SPEC --sd S)")
    if args.sd is not None and not (math.isfinite(args.sd) and args.sd > 0):
        raise BadInput(f"--sd: must be a number > 0, got {args.sd}")
    slurm = slurm_options(args.slurm) if args.launcher == "slurm" else {}
    plan = load_plan(args.spec)  # ConfigError (exit 2) before anything is created
    if args.launcher == "local":  # its workers read the data here (SLURM's may see folders this node does not)
        check_data(plan)  # DataError (exit 2): a missing data folder fails here, not in every cell
    out = Path(args.out) if args.out else Path("results") / plan.spec.name
    target = args.storage or str(out / contract.JOURNAL_FILE)
    if args.dry_run:
        code = dry_run(plan, out, target)
        if args.sd is not None:
            from swin_lit.ablate import power

            seconds, source = power.cell_time(plan.spec.name, None, str(out) if (out / "runs.csv").is_file() else None)
            effects = [0.0, args.sd, 2 * args.sd, 3 * args.sd]
            print("\n" + power.render(power.power_table(plan.spec, args.sd, effects, 4000, 0, seconds, source)))
        return code
    from swin_lit.ablate import store

    grace = args.grace if args.grace is not None else store.GRACE_S
    heartbeat = args.heartbeat if args.heartbeat is not None else min(store.HEARTBEAT_S, grace / 3)
    if args.launcher == "slurm":
        launcher = SlurmLauncher(slurm, args.jobs or 1, out)  # submitit missing: BadInput before anything
    if target.startswith("sqlite") and (args.workers or default_workers()) > 1:
        print("swin-lit ablate: warning: SQLite is not safe for concurrent workers (no row locks); "
              "prefer the default journal file or PostgreSQL", file=sys.stderr)
    opened = store.open_storage(target, create=True, heartbeat=heartbeat, grace=grace)  # StorageError: exit 2
    out.mkdir(parents=True, exist_ok=True)
    ignore = out / ".gitignore"
    if not ignore.exists():
        ignore.write_text(GITIGNORE)
    ref = store.create_study(opened, plan.spec.name, plan.spec.direction(), plan.spec.to_plain(), plan.cell_ids,
                             grace)
    queued, decision = store.plan_study(ref, plan.cells_of, retry_failed=args.retry_failed)
    cells = store.active_cells(ref, plan.cells_of)[0]
    counts = store.progress_counts(ref, cells)
    pending = counts[contract.WAITING] + counts[contract.RUNNING]
    print(f"study {plan.spec.name!r}: {len(cells)} cells{seed_note(plan, decision)}; {counts['done']} done, "
          f"{counts[contract.FAILED]} failed, {pending} to run ({queued} newly queued); storage {target}",
          file=sys.stderr)
    worker_args = ["--storage", target, "--study", plan.spec.name, "--out", str(out), "--heartbeat", str(heartbeat),
                   "--grace", str(grace)]
    rule = plan.spec.rule
    steps = 0 if rule is None else 1  # the two-stage rule grows once, after its first stage
    rounds = 0
    while pending and rounds < 4 + steps:
        rounds += 1
        if args.launcher == "slurm":
            launcher.run(ref, plan, worker_args, progress=not args.no_progress)
        else:
            n = args.workers or default_workers()
            threads = max(1, (os.cpu_count() or 1) // n)  # from the asked-for workers: the same for every cell
            run_workers(ref, plan, out, worker_args, max(1, min(n, pending)), threads,
                        progress=not args.no_progress)
        # cells whose planning was lost with a worker (killed between finishing a cell and queueing the
        # cells that waited for it, or the seeds the rule asked for) are queued now; anything waiting to be
        # claimed means another round of workers: also cells another driver queued after this round's workers
        # found nothing active and left (two drivers on one adaptive study: the other one's seeds)
        queued = store.plan_study(ref, plan.cells_of)[0]
        waiting = store.progress_counts(ref, store.active_cells(ref, plan.cells_of)[0])[contract.WAITING]
        pending = max(queued, waiting)
    return summary(ref, plan, target if args.storage else out, out, not args.no_report)


def seed_note(plan, decision) -> str:
    """`` (seeds 0–2 of at most 10, adaptive)`` for adaptive seeds, else nothing."""
    if decision is None:
        return ""
    return f" (seeds {seed_span(decision.seeds)} of at most {plan.spec.rule.max}, adaptive)"


def seed_span(seeds) -> str:
    seeds = list(seeds)
    if len(seeds) > 2 and seeds == list(range(seeds[0], seeds[-1] + 1)):
        return f"{seeds[0]}–{seeds[-1]}"
    return ", ".join(map(str, seeds)) or "none"


def summary(ref, plan, source, out: Path, build: bool) -> int:
    from swin_lit.ablate import store

    cells, decision = store.active_cells(ref, plan.cells_of)
    counts = store.progress_counts(ref, cells)
    states = store.cell_statuses(ref, cells)
    failed = [(c.id, detail) for c in cells for status, detail in [states[c.id]] if status == contract.FAILED]
    blocked = [(c.id, f"not run: the cell it needs ({c.after}) {states[c.after][0]}") for c in cells
               if states[c.id][0] == contract.MISSING and c.after is not None and c.after in states]
    elsewhere = counts[contract.RUNNING] + counts[contract.WAITING]
    print(f"study {plan.spec.name!r}: {counts['done']} of {len(cells)} cells done, {len(failed)} failed"
          + (f", {len(blocked)} not run" if blocked else "")
          + (f", {elsewhere} still running elsewhere" if elsewhere else ""), file=sys.stderr)
    for cell, detail in failed + blocked:
        print(f"  failed: {cell}: {detail}", file=sys.stderr)
    if failed:
        print("  (fix the cause, then run again with --retry-failed)", file=sys.stderr)
    if decision is not None:
        print(f"seeds: {stop_line(decision, elsewhere)}", file=sys.stderr)
    if build and counts["done"]:
        report(source, plan.spec.name, out)
    return 1 if failed or blocked else 0


def stop_line(decision, elsewhere: int) -> str:
    """Why an adaptive study stopped, or that it waits (for cells running elsewhere)."""
    if decision.stopped:
        return f"the study stopped: {decision.reason}"
    where = "cells running elsewhere" if elsewhere else "cells still to run"
    return (f"the study is waiting ({where}): {decision.reason}; run the same command again to go on once they "
            f"are done")


def follow(ref, plan, alive, progress: bool) -> None:
    """Show the study's progress until ``alive()`` is False (adaptive seeds: the total grows with the seeds)."""
    from swin_lit.ablate import store

    bar = None
    try:
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=len(store.active_cells(ref, plan.cells_of)[0]), desc=plan.spec.name, unit="cell",
                       file=sys.stderr, dynamic_ncols=True)
        finished = -1
        while True:
            running = alive()
            cells = store.active_cells(ref, plan.cells_of)[0]
            counts = store.progress_counts(ref, cells)
            now = counts["done"] + counts[contract.FAILED]
            if bar is not None and (now != finished or bar.total != len(cells)):
                bar.total = len(cells)
                bar.n = now
                bar.set_postfix(running=counts[contract.RUNNING], failed=counts[contract.FAILED], refresh=False)
                bar.refresh()
            finished = now
            if not running:
                break
            time.sleep(2.0)
    finally:
        if bar is not None:
            bar.close()


def run_workers(ref, plan, out: Path, worker_args: list[str], n: int, threads: int, progress: bool = True) -> None:
    """Start ``n`` worker processes and follow the study's progress until they exit."""
    logs = out / contract.LOGS_DIR
    logs.mkdir(parents=True, exist_ok=True)
    procs = []
    stamp = time.strftime("%Y%m%d-%H%M%S")
    print(f"starting {n} worker(s) x {threads} thread(s); logs in {logs}/", file=sys.stderr)
    for i in range(n):
        cmd = [sys.executable, "-m", "swin_lit.ablate.worker", *worker_args, "--threads", str(threads),
               "--slot", str(i)]
        log = open(logs / f"worker-{stamp}-{i}.log", "a")
        procs.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                      preexec_fn=_die_with_parent))
        log.close()
    try:
        follow(ref, plan, lambda: any(p.poll() is None for p in procs), progress)
    except KeyboardInterrupt:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            p.wait()
        raise
    bad = [p.returncode for p in procs if p.returncode]
    if bad:
        print(f"swin-lit ablate: {len(bad)} worker(s) exited with errors {bad}; see {logs}/", file=sys.stderr)


class SlurmLauncher:
    """``--launcher slurm``: the workers as a job array submitted through submitit (``--slurm cluster=local``:
    submitit's local executor, real processes on this machine through the same job code path)."""

    def __init__(self, options: dict, jobs: int, out: Path) -> None:
        try:
            import submitit  # noqa: F401
        except ImportError:
            raise BadInput("--launcher slurm needs submitit: pip install 'swin-lit[slurm]'") from None
        self.options = dict(options)
        self.cluster = self.options.pop("cluster", "slurm")
        self.jobs = jobs
        self.folder = out / "slurm"
        self.threads = int(self.options.get("cpus_per_task", 1))

    def run(self, ref, plan, worker_args: list[str], progress: bool = True) -> None:
        import submitit

        from swin_lit.ablate.slurm import ArrayWorker

        executor = submitit.AutoExecutor(folder=self.folder / "%j", cluster=self.cluster)
        params = {"timeout_min": 60, "cpus_per_task": 1, "name": f"swin-lit-{plan.spec.name}",
                  "slurm_array_parallelism": self.jobs, **self.options}
        executor.update_parameters(**params)
        argv = [[*worker_args, "--threads", str(self.threads), "--slot", str(i)] for i in range(self.jobs)]
        jobs = executor.map_array(ArrayWorker(), argv)
        print(f"submitted {len(jobs)} worker job(s) ({self.cluster}): {', '.join(j.job_id for j in jobs)}; "
              f"logs in {self.folder}/", file=sys.stderr)
        try:
            follow(ref, plan, lambda: not all(j.done() for j in jobs), progress)
        except KeyboardInterrupt:
            print("swin-lit ablate: the jobs keep running; run the same command to follow the study again",
                  file=sys.stderr)
            raise
        bad = []
        for j in jobs:
            try:
                code = j.result()
            except Exception as err:  # noqa: BLE001 - a job that failed or was cancelled
                code = f"{type(err).__name__}"
            if code:
                bad.append((j.job_id, code))
        if bad:
            print(f"swin-lit ablate: {len(bad)} worker job(s) ended badly {bad}; see {self.folder}/", file=sys.stderr)


def _die_with_parent() -> None:
    """preexec_fn of the workers: a killed driver stops its workers (SIGTERM), which hand their cells back."""
    import ctypes
    import signal

    try:
        ctypes.CDLL(None).prctl(1, int(signal.SIGTERM), 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def check_data(plan) -> None:
    """Every real data folder the plan's cells read exists (DataError, exit 2). Only that: a full layout check
    of a large tree takes seconds, and each cell's run checks its data before training anyway."""
    from swin_lit.data.sources import embedded
    from swin_lit.errors import DataError

    for root in sorted({c.config.data.root for c in plan.cells if not embedded(c.config.data.source)}):
        if not Path(root).expanduser().is_dir():
            raise DataError(f"data.root: data folder {root} does not exist")


def dry_run(plan, out: Path, target: str) -> int:
    from swin_lit.ablate import store
    from swin_lit.errors import StorageError

    try:
        opened = store.open_storage(target, create=False)
    except StorageError:
        if contract.is_url(target) and not target.startswith("sqlite"):
            raise  # an unreachable server or a missing driver is an error, not "not created yet"
        opened = None
    ref = store.find_study(opened, plan.spec.name)
    by_cell = ref.by_cell() if ref is not None else {}
    spec = plan.spec
    decision = None
    if spec.rule is not None:  # the decision on what is stored (nothing stored yet: the first seeds)
        decision = contract.seed_decision(spec, ref.trials() if ref is not None else [])
    cells = plan.cells_of(decision.seeds) if decision is not None else plan.cells
    states = store.cell_statuses(ref, cells)
    seeds = f"{len(spec.seeds)} seeds" if decision is None else f"seeds {seed_span(decision.seeds)} now"
    print(f"study {spec.name!r} ({spec.mode}, {len(cells)} cells: {len(spec.variant_list())} variants x "
          f"{seeds}) in {target}" + ("" if ref is not None else " (not created yet)"))
    print(f"base {plan.base_path}; budget: " + (", ".join(f"{k}={v}" for k, v in spec.budget.items()) or "none"))
    rows = []
    for cell in cells:
        status, detail = states[cell.id]
        trials = by_cell.get(cell.id, [])
        run_dir = next((t.user_attrs["run_dir"] for t in reversed(trials) if t.user_attrs.get("run_dir")),
                       None if spec.mode == "search" else cell.user_attrs().get("run_dir"))
        run_dir = str(out / run_dir) if run_dir is not None else "(after sampling)"
        params = ", ".join(f"{k}={v}" for k, v in cell.params.items())
        shown = status + (f": {detail}" if detail and status in (contract.FAILED, contract.RUNNING) else "")
        rows.append((shown, cell.id, run_dir, params))
    header = ("STATE", "CELL", "RUN FOLDER", "PARAMS")
    widths = [max(len(r[i]) for r in [*rows, header]) for i in range(3)]
    for r in [header, *rows]:
        print("  ".join(x.ljust(w) for x, w in zip(r[:3], widths)) + "  " + r[3])
    totals: dict[str, int] = {}
    for status, _ in states.values():
        totals[status] = totals.get(status, 0) + 1
    print("total: " + ", ".join(f"{v} {k}" for k, v in totals.items()))
    if decision is not None:
        print_seed_decision(plan, decision, ref.trials() if ref is not None else [],
                            store.cells_to_queue(by_cell, cells))
    return 0


def print_seed_decision(plan, decision, trials: list, todo: list) -> None:
    """The two-stage seed rule in a dry run: each variant's first-stage 95% half-width vs the baseline and the
    seeds N its first-stage SD asks for, the seeds it has and will get, and what a run would queue now."""
    spec, rule = plan.spec, plan.spec.rule
    baseline = spec.baseline_variant
    finished, failed = contract.seed_outcomes(trials, spec.objective)
    print(f"\nadaptive seeds (two-stage, Stein): start {rule.start}, max {rule.max}, precision {rule.precision:g} "
          f"(95% half-width of each variant - {baseline!r} on {spec.objective}; N = ceil((t s0 / precision)^2) "
          f"from the first-stage SD s0)")
    at = decision.evaluated_at
    header = ("VARIANT", f"HALF-WIDTH AT {at} SEEDS" if at else "HALF-WIDTH", "N", "FINISHED SEEDS", "SEEDS NOW")
    rows = []
    for variant in spec.variant_names():
        need = ""
        if variant == baseline:
            width = "(baseline)"
        elif variant not in decision.widths:
            width = f"- (seeds 0–{rule.start - 1} not all settled)"
        elif math.isfinite(decision.widths[variant]):
            w = decision.widths[variant]
            width = f"{w:.3g} {'<=' if w <= rule.precision else '>'} {rule.precision:g}"
        else:
            width = f"inf > {rule.precision:g} (fewer than 2 pairs)"
        if variant in decision.required:
            need = str(decision.required[variant])
        done = seed_span(sorted(finished.get(variant, {})))
        lost = sorted(s for v, s in failed if v == variant)
        rows.append((variant, width, need, done + (f" (failed: {seed_span(lost)})" if lost else ""),
                     seed_span(decision.seeds)))
    widths = [max(len(r[i]) for r in [*rows, header]) for i in range(4)]
    for r in [header, *rows]:
        print("  ".join(x.ljust(w) for x, w in zip(r[:4], widths)) + "  " + r[4])
    print(f"decision: {decision.reason}")
    if todo:
        print(f"would queue now: {len(todo)} cell(s): " + ", ".join(cell.id for cell, _ in todo))
    else:
        print("would queue now: nothing" + (" (the study stopped)" if decision.stopped else
                                            " (the cells of these seeds are queued or running)"))


def report(source, study: str, out: Path) -> None:
    from swin_lit.report.build import build_report

    try:
        folder = build_report(source, study=study, out=out)
        print(f"report: {Path(folder) / 'report.md'}", file=sys.stderr)
    except Exception as err:  # noqa: BLE001 - the study is safe in the storage; the report can be rebuilt
        print(f"(report failed: {type(err).__name__}: {err}; rebuild it with: swin-lit report {source})",
              file=sys.stderr)
