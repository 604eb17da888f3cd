"""``trainer.compile``: whether a run's model goes through ``torch.compile`` (inductor), and ``auto``'s rule.

``true`` / ``false`` force the path. ``auto`` (the default) compiles when the run's planned training work pays
back the compile: compiled training ran about 14% faster than eager in ``benchmarks/compile_payback.py``, and a
cold compile (empty inductor cache) cost about 50 s of the run, so a run pays back once eager training would
take longer than ~50 s / 0.14 ~ 360 s: about 20 TMAC of training work (3 x the forward MACs per image x the
planned images) at the 55 GMAC/s that benchmark's eager run trained at. Where inductor's cache already holds the
architecture (marked by an earlier compiled run with the same shapes, see ``mark_compiled``), the compile is
a cache lookup and the threshold is a tenth of that: in that benchmark the warm-cache run was 17 s shorter
than eager over the whole run against a 16 s faster training loop, so its compile cost no more than ~5 s,
repaid after ~36 s of eager training (~2 TMAC). Host speed moves both sides of the rule together, so the
threshold is in work, not seconds.

The plan of a run is fixed at its first start (``compile.json`` in the run folder) and reused when it resumes, so
one run does not change path halfway.

A study keeps one inductor cache for all its cells (``<study>/cache/inductor``), so that the later seeds of an
architecture start warm. ``result.json`` records the path taken, why, and the compile seconds
(``torch._dynamo``'s own accounting of the time spent compiling).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from swin_lit.config import RunConfig
from swin_lit.train.schedule import steps_per_epoch

PLAN_FILE = "compile.json"  # in the run folder: the plan of its first start
COLD_PAYBACK_TMAC = 20.0  # planned training work (tera multiply-accumulates) that repays a cold compile
WARM_PAYBACK_TMAC = 2.0  # ... and a compile from a warm inductor cache
MARKERS = "swin_lit_compiled"  # subfolder of the inductor cache: one marker file per compiled architecture


@dataclass(frozen=True)
class CompilePlan:
    """The path a run takes. ``work_tmac``: its planned training work; ``warm``: inductor's cache holds the
    architecture; ``reason``: one line for the record and the log."""

    compiled: bool
    reason: str
    work_tmac: float
    warm: bool

    def record(self, seconds: float | None) -> dict:
        return {**asdict(self), "path": "compiled" if self.compiled else "eager", "compile_s": seconds}


def training_work_tmac(forward_macs: int, images: int) -> float:
    """Forward + backward ~ 3 forwards, per planned training image."""
    return 3.0 * forward_macs * images / 1e12


def planned_images(cfg: RunConfig, train_samples: int) -> int:
    """Training images the run will see (counted as on one device: ``trainer.devices`` is not read): every epoch's
    full batches (the training loader drops a short last batch; one short batch where the data hold less than a
    batch), ``limit_train_batches`` applied as Lightning does; then x ``max_epochs``, or, where
    ``trainer.max_steps`` > 0, that many optimizer steps of ``accumulate_grad_batches`` batches each, an epoch being
    ceil(batches / accumulation) steps (Lightning steps once more on an epoch's last batch), over as many epochs
    as they take."""
    t, batch = cfg.trainer, cfg.data.batch_size
    batches = train_samples // batch if train_samples >= batch else 1
    if t.limit_train_batches > 1:
        batches = min(batches, int(t.limit_train_batches))
    else:
        batches = max(1, int(batches * t.limit_train_batches))
    per_epoch = min(batches * batch, train_samples)
    if not t.max_steps:
        return t.max_epochs * per_epoch
    steps = steps_per_epoch(batches, t.accumulate_grad_batches)
    epochs, rest = divmod(t.max_steps, steps)  # whole epochs, then ``rest`` steps of a last, partial one
    return epochs * per_epoch + rest * t.accumulate_grad_batches * batch  # rest < steps: full batches only


def architecture_key(cfg: RunConfig, device: str, precision: str) -> str:
    """What inductor's compiled graphs depend on: the network, its input shapes, the device and the numeric
    precision it runs in (resolved: ``auto`` is 32-true on CPU, bf16-mixed on GPU), torch's version."""
    import torch

    d = cfg.to_dict()
    key = {"task": cfg.task, "model": d["model"], "head": d.get("head"), "batch": cfg.data.batch_size,
           "eval_batch": cfg.data.eval_batch_size, "device": device, "precision": precision,
           "deterministic": cfg.trainer.deterministic, "torch": torch.__version__}
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def inductor_cache() -> Path:
    """The inductor cache this process compiles into (``TORCHINDUCTOR_CACHE_DIR``, else inductor's default)."""
    # private: torch has no public call for the cache folder inductor writes to when the variable is unset
    from torch._inductor.runtime.cache_dir_utils import default_cache_dir

    return Path(os.environ.get("TORCHINDUCTOR_CACHE_DIR") or default_cache_dir())


def is_warm(key: str) -> bool:
    return (inductor_cache() / MARKERS / key).is_file()


def mark_compiled(key: str, seconds: float | None) -> None:
    """Note in inductor's cache that the architecture ``key`` has been compiled there (for ``is_warm``)."""
    folder = inductor_cache() / MARKERS
    folder.mkdir(parents=True, exist_ok=True)
    (folder / key).write_text(json.dumps({"compile_s": seconds}))


def plan(cfg: RunConfig, forward_macs: int, train_samples: int, key: str) -> CompilePlan:
    """``trainer.compile`` resolved for this run (``auto``: by its planned work, see the module docstring);
    ``key``: its ``architecture_key``."""
    work = training_work_tmac(forward_macs, planned_images(cfg, train_samples))
    setting = cfg.trainer.compile
    if setting is True or setting is False:
        return CompilePlan(setting, f"trainer.compile: {str(setting).lower()}", work, False)
    warm = is_warm(key)
    threshold = WARM_PAYBACK_TMAC if warm else COLD_PAYBACK_TMAC
    cache = "warm" if warm else "cold"
    if work >= threshold:
        return CompilePlan(True, f"auto: {work:.1f} TMAC of training >= {threshold:g} ({cache} cache)", work, warm)
    return CompilePlan(False, f"auto: {work:.1f} TMAC of training < {threshold:g} ({cache} cache)", work, warm)


def stored_plan(run_dir: Path) -> CompilePlan | None:
    """The plan a run's first start wrote (None before that)."""
    path = run_dir / PLAN_FILE
    if not path.is_file():
        return None
    d = json.loads(path.read_text())
    return CompilePlan(d["compiled"], d["reason"], d["work_tmac"], d["warm"])


def store_plan(run_dir: Path, plan: CompilePlan) -> None:
    (run_dir / PLAN_FILE).write_text(json.dumps(asdict(plan)))


@contextlib.contextmanager
def cache_at(folder: str | os.PathLike | None) -> Iterator[None]:
    """Inductor's cache in ``folder`` while the block runs (a study's cells share one); None: leave it as is."""
    if folder is None:
        yield
        return
    Path(folder).mkdir(parents=True, exist_ok=True)
    before = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(Path(folder).resolve())
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("TORCHINDUCTOR_CACHE_DIR", None)
        else:
            os.environ["TORCHINDUCTOR_CACHE_DIR"] = before


def compile_seconds() -> float:
    """Seconds this process has spent compiling so far (dynamo + inductor, forward and backward graphs; take
    differences: the count runs over the whole process)."""
    # private: dynamo's own compile-time accounting; torch offers no public counter of time spent compiling
    from torch._dynamo.utils import calculate_time_spent

    return float(calculate_time_spent().get("total_wall_time", 0.0))
