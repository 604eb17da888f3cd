"""One run: a resolved ``RunConfig`` in, a run folder with ``result.json`` out.

Run folder ``<out>/<name>-<config hash>/``:
    config.yaml            the resolved config (what ran)
    checkpoints/last.ckpt  written every ``trainer.checkpoint_every_n_steps`` steps and at epoch ends
    checkpoints/best.ckpt  best validation score (the task's primary metric: top-1, mIoU)
    tensorboard/           event files (scalars, hparams linked to the final metrics)
    skipped.jsonl          streamed samples left out for a bad file (``data.on_error: skip``), one line each
    history.json           the learning curve so far, rewritten atomically after each validation (the
                           ablation worker reports it to Optuna as the trial's intermediate values)
    result.json            written atomically, last: its presence means the run finished

Running the same config again resumes from ``last.ckpt``; after a finished run it does nothing.
"""

from __future__ import annotations

import contextlib
import logging
import os
import platform
import subprocess
import time
import warnings
from importlib import metadata
from pathlib import Path

import yaml

from swin_lit.config import RunConfig, stored_config
from swin_lit.domain.metrics import SPLIT_METRICS
from swin_lit.domain.result import Result
from swin_lit.errors import SwinLitError, one_line
from swin_lit.record import HISTORY_FILE, RESULT_FILE, read_result, write_json_atomic
from swin_lit.tasks import implementation

DEFAULT_OUT = Path("runs")
SKIP_LOG = "skipped.jsonl"
CONFIG_FILE = "config.yaml"
PACKAGES = ("swin-lit", "torch", "lightning", "torchmetrics", "optuna", "pandas", "numpy")
log = logging.getLogger(__name__)


class DataLoaderFailure(SwinLitError):
    """A DataLoader worker process died mid-epoch (killed, out of memory): the run failed, resumable (exit 1)."""


def run_dir_for(cfg: RunConfig, out: str | os.PathLike = DEFAULT_OUT) -> Path:
    return Path(out) / cfg.run_id()


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in PACKAGES:
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return out


def git_revision() -> str:
    root = Path(__file__).resolve().parents[2]
    try:
        rev = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return f"{rev}{'-dirty' if dirty else ''}" if rev else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _quiet_lightning() -> None:
    """Silence Lightning's tips and known-harmless warnings (see machine.md: LeafSpec, litlogger)."""
    import logging

    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.pytorch.accelerators.cuda",
                 "lightning.fabric.utilities.seed", "lightning.pytorch.callbacks.model_summary"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*litlogger.*")
    warnings.filterwarnings("ignore", message=".*tensorboardX.*")
    # resuming: our sampler skips the finished batches itself; the folder holds the run's own checkpoints
    warnings.filterwarnings("ignore", message=".*your dataloader is not resumable.*")
    warnings.filterwarnings("ignore", message=".*exists and is not empty.*")
    warnings.filterwarnings("ignore", message=".*smaller than the logging interval.*")
    os.environ.setdefault("LITLOGGER_DISABLE_TIP", "1")


def build_datamodule(cfg: RunConfig):
    """The datamodule for ``cfg``'s task, checked (DataError before any work) and matched to the model."""
    return implementation(cfg.task).datamodule(cfg)


def effective_rates(cfg: RunConfig) -> str | None:
    """One line with the learning rates the run uses where ``optim.lr_scale`` scales them, else None."""
    if cfg.optim.lr_scale == "none":
        return None
    o, e = cfg.optim, cfg.effective_optim()
    return (f"optim.lr_scale linear: total batch {cfg.total_batch()} = {cfg.data.batch_size} x {cfg.trainer.devices} "
            f"devices x {cfg.trainer.num_nodes} nodes x {cfg.trainer.accumulate_grad_batches} accumulated, / base "
            f"{o.base_batch}: lr {e.lr:.6g}, warmup_lr {e.warmup_lr:.6g}, min_lr {e.min_lr:.6g}")


def precision_for(cfg: RunConfig, accelerator: str) -> str:
    if cfg.trainer.precision != "auto":
        return cfg.trainer.precision
    return "32-true" if accelerator == "cpu" else "bf16-mixed"


def train(cfg: RunConfig, out: str | os.PathLike = DEFAULT_OUT, progress: bool | None = None,
          callbacks: list | None = None, compile_cache: str | os.PathLike | None = None) -> tuple[Path, dict]:
    """Train and evaluate one config; returns (run folder, result record). Resumes an interrupted run;
    returns the existing record of a finished one without doing anything. ``compile_cache``: the inductor
    cache folder while the run compiles (a study's cells share one); None: inductor's own."""
    run_dir = run_dir_for(cfg, out)
    done = read_result(run_dir)
    if done is not None:
        return run_dir, done
    from swin_lit.train.compile import cache_at

    with cache_at(compile_cache if cfg.trainer.compile is not False else None):
        return _train(cfg, run_dir, progress, callbacks)


def _train(cfg: RunConfig, run_dir: Path, progress: bool | None, callbacks: list | None) -> tuple[Path, dict]:
    import lightning.pytorch as pl
    import torch
    from lightning.pytorch.callbacks import ModelCheckpoint
    from lightning.pytorch.loggers import TensorBoardLogger

    from swin_lit.train.compile import compile_seconds, mark_compiled
    from swin_lit.train.module import HistoryFile, MidEpochCheckpoint

    _quiet_lightning()
    dm = build_datamodule(cfg)  # bad data fails here, before the run folder exists
    source = load_trained_model(cfg.init_from) if cfg.init_from else None  # likewise a missing checkpoint
    if cfg.trainer.threads:
        torch.set_num_threads(cfg.trainer.threads)
    run_dir.mkdir(parents=True, exist_ok=True)
    rates = effective_rates(cfg)
    header = f"# {rates}\n" if rates else ""  # the rates the run uses, where optim.lr_scale scales them
    (run_dir / CONFIG_FILE).write_text(header + yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    if rates:
        log.info("%s", rates)
    if hasattr(dm, "skip_log"):
        dm.skip_log = run_dir / SKIP_LOG  # data.on_error: skip records each sample it leaves out here
    ckpt_dir = run_dir / "checkpoints"
    last = ckpt_dir / "last.ckpt"
    resume = last if last.is_file() else None

    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    task = implementation(cfg.task)
    module = task.module(cfg)
    if source is not None and resume is None:
        from swin_lit.models.transfer import initialise_from

        initialise_from(module.model, source)
    t = cfg.trainer
    accelerator = "cpu" if t.accelerator == "auto" and not torch.cuda.is_available() else t.accelerator
    compiling, arch = _plan_compile(cfg, task, dm, run_dir, accelerator)
    compiled_before = compile_seconds()
    if compiling.compiled:
        module.model.compile()
    mode = "max" if SPLIT_METRICS[task.facts.primary].higher_is_better else "min"
    best_ckpt = ModelCheckpoint(dirpath=ckpt_dir, filename="best", monitor=task.facts.monitor, mode=mode,
                                save_top_k=1, auto_insert_metric_name=False, enable_version_counter=False)
    # last.ckpt after every epoch's validation, and every n steps inside an epoch (never on its last batch: a
    # checkpoint between the last batch and the validation would resume past that validation)
    last_ckpts = [ModelCheckpoint(dirpath=ckpt_dir, save_last=True, save_top_k=0, every_n_epochs=1,
                                  enable_version_counter=False)]
    if t.checkpoint_every_n_steps:
        last_ckpts.append(MidEpochCheckpoint(dirpath=ckpt_dir, save_last=True, save_top_k=0,
                                             every_n_train_steps=t.checkpoint_every_n_steps,
                                             enable_version_counter=False))
    show = t.progress if progress is None else progress
    trainer = pl.Trainer(
        default_root_dir=run_dir,
        max_epochs=-1 if t.max_steps else t.max_epochs,  # max_steps > 0: the run is that many optimizer steps
        max_steps=t.max_steps or -1,
        accumulate_grad_batches=t.accumulate_grad_batches,
        accelerator=accelerator,
        devices=t.devices,
        num_nodes=t.num_nodes,
        strategy=t.strategy,
        precision=precision_for(cfg, accelerator),
        deterministic=t.deterministic,
        limit_train_batches=t.limit_train_batches if t.limit_train_batches <= 1 else int(t.limit_train_batches),
        limit_val_batches=t.limit_val_batches if t.limit_val_batches <= 1 else int(t.limit_val_batches),
        logger=TensorBoardLogger(save_dir=run_dir, name="tensorboard", version="", default_hp_metric=False),
        callbacks=[best_ckpt, *last_ckpts, HistoryFile(run_dir / HISTORY_FILE), *(callbacks or [])],
        log_every_n_steps=t.log_every_n_steps,
        enable_progress_bar=show,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        use_distributed_sampler=False,  # the datamodules' samplers give each rank its (seed, epoch) share
    )
    started = time.perf_counter()
    with _data_failures(run_dir):
        trainer.fit(module, datamodule=dm, ckpt_path=resume)
    if trainer.interrupted:
        raise KeyboardInterrupt
    history, train_seconds, train_images = module.history, module.train_seconds, module.train_images
    best = best_ckpt.best_model_path or str(last)
    trainer.validate(module, datamodule=dm, ckpt_path=best, verbose=False)
    trainer.test(module, datamodule=dm, ckpt_path=best, verbose=False)
    if trainer.global_rank != 0:
        return run_dir, {}
    wall_time = time.perf_counter() - started
    sizes = task.record_sizes(cfg, module, dm)
    extra = {k: v for k, v in sizes.items() if k not in ("params", "flops")}
    compiled = compiling.record(compile_seconds() - compiled_before if compiling.compiled else None)
    extra.update({
        "optim_effective": {k: getattr(cfg.effective_optim(), k) for k in ("lr", "warmup_lr", "min_lr")},
        "total_batch": cfg.total_batch(), "versions": versions(), "git": git_revision(),
        "device": _device_name(accelerator), "threads": torch.get_num_threads(), "compile": compiled,
    })
    if cfg.data.on_error == "skip":
        from swin_lit.data.stream import skipped

        extra["data_skipped"] = skipped(run_dir / SKIP_LOG)
    result = Result(
        task=cfg.task, val=task.record_split(module.evaluated["val"], "val"),
        test=task.record_split(module.evaluated["test"], "test"), seed=cfg.seed, epochs=trainer.current_epoch,
        config_hash=cfg.hash(), params=sizes["params"], flops=sizes["flops"],
        train_images_per_s=train_images / train_seconds if train_seconds else None,
        eval_images_per_s=module.test_images / module.test_seconds if module.test_seconds else None,
        wall_time_s=wall_time, train_time_s=train_seconds, history=history, extra=extra)
    if compiling.compiled:
        mark_compiled(arch, compiled["compile_s"])
    record = result.to_dict()
    write_json_atomic(run_dir / RESULT_FILE, record)
    return run_dir, record


@contextlib.contextmanager
def _data_failures(run_dir: Path):
    """A bad file met while streaming, or a DataLoader worker that died, as one line that names the file or the
    worker and says how to resume (the run folder and its last checkpoint are kept)."""
    from swin_lit.errors import DataError

    def resume() -> str:
        if (run_dir / "checkpoints" / "last.ckpt").is_file():
            return f"the last checkpoint in {run_dir} is kept: the same command resumes"
        return "no checkpoint yet: the same command starts the run again"

    try:
        yield
    except DataError as err:
        lines = [line for line in str(err).splitlines() if line.strip()]
        cause = lines[-1].split("DataError: ", 1)[-1] if lines else str(err)  # a worker's error: its last line
        raise DataError(f"{cause}; {resume()}") from None
    except RuntimeError as err:
        if "DataLoader worker" not in str(err):
            raise
        raise DataLoaderFailure(f"{one_line(str(err))}; {resume()}") from None


def _plan_compile(cfg: RunConfig, task, dm, run_dir: Path, accelerator: str):
    """(``trainer.compile`` resolved for this run, its architecture key): planned at the run's first start
    (``swin_lit.train.compile``), the same plan on every resume; logged in one line."""
    from swin_lit.train import compile as compiling

    arch = compiling.architecture_key(cfg, _device_name(accelerator), precision_for(cfg, accelerator))
    plan = compiling.stored_plan(run_dir)
    if plan is None:
        dm.setup("fit")
        plan = compiling.plan(cfg, task.work(cfg), len(dm.dataset("train")), arch)
        compiling.store_plan(run_dir, plan)
    log.info("%s: %s", "compiled" if plan.compiled else "eager", plan.reason)
    return plan, arch


def _device_name(accelerator: str) -> str:
    import torch

    if accelerator in ("gpu", "cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"cpu ({cpu_model()}, {platform.machine()}, {os.cpu_count()} cores)"


def cpu_model() -> str:
    """The CPU's model name (Linux: /proc/cpuinfo; elsewhere what ``platform`` knows): one seed gives different
    numbers on different CPUs, so a result names the one it ran on."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def load_run_config(run_dir: str | os.PathLike) -> RunConfig:
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        from swin_lit.errors import BadInput

        raise BadInput(f"{run_dir}: not a run folder (no {CONFIG_FILE})")
    return stored_config(yaml.safe_load(path.read_text()))


def load_trained_model(run_dir: str | os.PathLike, which: str = "best"):
    """The trained model of a run folder (``which``: "best" or "last"), in eval mode: its task's network (a
    ``SwinTransformer`` for classification, a ``SwinSegmenter`` for segmentation)."""
    import torch

    from swin_lit.errors import BadInput

    cfg = load_run_config(run_dir)
    ckpt = Path(run_dir) / "checkpoints" / f"{which}.ckpt"
    if not ckpt.is_file():
        raise BadInput(f"{run_dir}: no finished checkpoint ({ckpt.name} missing)")
    state = torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
    model = implementation(cfg.task).build_model(cfg)
    model.load_state_dict({k[len("model."):]: v for k, v in state.items() if k.startswith("model.")})
    return model.eval()
