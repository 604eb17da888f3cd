"""The run config: YAML files -> one typed, validated ``RunConfig``.

A run config has four sections, each owned by the part of the package that uses it:
``model`` (``swin_lit.models.config.SwinConfig``), ``data`` (``swin_lit.data.config.DataConfig``),
``optim`` and ``trainer`` (below), plus ``name`` and ``seed``.

YAML composition: a file may name ``defaults`` (a mapping of section -> file under ``configs/<section>/``),
whose contents fill that section; then the file's own keys are merged on top; then ``--set key=value``
overrides (dotted keys, YAML values) on top of that. Unknown keys, wrong types and impossible
combinations raise ``ConfigError`` naming the key.

``model.num_classes`` left out (or null) is the number of classes in the configured data (read from folder
names or metadata, no image decoded); the resolved config, and so the run hash, holds that number. An
explicit value that differs from the data is an error when the run starts, naming both numbers.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from swin_lit.data.config import DataConfig
from swin_lit.domain.task import TASKS, get_task
from swin_lit.models.config import SwinConfig
from swin_lit.models.head_config import HeadConfig
from swin_lit.typed import ConfigError, fail, from_dict, to_dict

CONFIG_ROOT = Path(__file__).resolve().parents[1] / "configs"


@dataclass(frozen=True)
class OptimConfig:
    """AdamW with linear warmup then cosine (the official classification recipe) or poly (the segmentation one)
    decay, stepped per optimizer step (with gradient accumulation: once per ``trainer.accumulate_grad_batches``
    batches; ``swin_lit.train.schedule``).

    Warmup: ``warmup_epochs`` (fractions allowed) or ``warmup_steps`` (optimizer steps, as recipes that count
    iterations give it); exactly one of them, the other null.

    ``lr_scale: linear``: ``lr``, ``warmup_lr`` and ``min_lr`` are given per ``base_batch`` images and the run
    multiplies all three by the total batch / ``base_batch``, the total batch being ``data.batch_size`` x
    ``trainer.devices`` x ``trainer.num_nodes`` x ``trainer.accumulate_grad_batches`` (the official code's rule,
    base 512). ``RunConfig.effective_optim()`` gives the values the run uses."""

    lr: float = 1e-3
    weight_decay: float = 0.05
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    warmup_epochs: float | None = 1.0
    warmup_steps: int | None = None  # optimizer steps; set warmup_epochs: null to use it
    warmup_lr: float = 1e-6
    min_lr: float = 1e-5
    lr_scale: Literal["none", "linear"] = "none"  # linear: lr, warmup_lr, min_lr are per base_batch images
    base_batch: int = 512
    schedule: Literal["cosine", "poly"] = "cosine"  # after warmup, down to min_lr; poly: power 1 (mmseg's)
    grad_clip: float = 5.0  # max global grad norm; 0 disables
    label_smoothing: float = 0.1
    mixup_alpha: float = 0.0  # 0 disables; official 0.8
    cutmix_alpha: float = 0.0  # 0 disables; official 1.0
    mix_prob: float = 1.0
    randaugment_ops: int = 0  # RandAugment ops per image; 0 disables (official rand-m9: 2 ops)
    randaugment_magnitude: int = 9  # 0..10
    random_erasing: float = 0.0  # probability per image; official 0.25

    def __post_init__(self) -> None:
        if self.lr <= 0:
            fail("lr", f"must be > 0, got {self.lr}")
        non_negative = ("weight_decay", "warmup_epochs", "warmup_steps", "warmup_lr", "min_lr", "grad_clip",
                        "mixup_alpha", "cutmix_alpha")
        for name in non_negative:
            if getattr(self, name) is not None and getattr(self, name) < 0:
                fail(name, f"must be >= 0, got {getattr(self, name)}")
        if self.warmup_epochs is None and self.warmup_steps is None:
            fail("warmup_epochs", "give the warmup in epochs (warmup_epochs) or in optimizer steps (warmup_steps); "
                                  "both are null")
        if self.warmup_epochs is not None and self.warmup_steps is not None:
            fail("warmup_steps", f"the warmup is given twice (warmup_epochs {self.warmup_epochs:g}, warmup_steps "
                                 f"{self.warmup_steps}); keep one and set the other null, e.g. warmup_epochs: null")
        if self.base_batch < 1:
            fail("base_batch", f"must be >= 1, got {self.base_batch}")
        for name in ("label_smoothing", "mix_prob", "random_erasing"):
            if not 0 <= getattr(self, name) <= 1:
                fail(name, f"must be in [0, 1], got {getattr(self, name)}")
        if self.randaugment_ops < 0:
            fail("randaugment_ops", f"must be >= 0, got {self.randaugment_ops}")
        if not 0 <= self.randaugment_magnitude <= 10:
            fail("randaugment_magnitude", f"must be in [0, 10], got {self.randaugment_magnitude}")


@dataclass(frozen=True)
class TrainerConfig:
    """What Lightning's Trainer gets. ``precision: auto`` is 32-true on CPU and bf16-mixed on GPU.

    The run's length: ``max_epochs``, or, where ``max_steps`` > 0, that many optimizer steps over as many epochs as
    they take (``max_epochs`` is then not used). ``accumulate_grad_batches``: batches whose gradients add up to one
    optimizer step (the total batch is data.batch_size x devices x num_nodes x accumulate_grad_batches)."""

    max_epochs: int = 10
    max_steps: int = 0  # optimizer steps; 0: the run lasts max_epochs
    accumulate_grad_batches: int = 1
    accelerator: Literal["auto", "cpu", "gpu", "cuda", "mps"] = "auto"
    devices: int | str = 1
    num_nodes: int = 1
    strategy: str = "auto"
    precision: Literal["auto", "32-true", "bf16-mixed", "16-mixed", "64-true"] = "auto"
    compile: bool | Literal["auto"] = "auto"  # torch.compile the model: always, never, or where it pays back
    deterministic: bool = True
    threads: int = 0  # torch intra-op threads; 0 = leave torch's default (all cores)
    limit_train_batches: float = 1.0
    limit_val_batches: float = 1.0
    checkpoint_every_n_steps: int = 50  # mid-epoch checkpoints (last.ckpt) so a stopped run resumes
    log_every_n_steps: int = 10
    progress: bool = True
    # segmentation evaluation: each image whole at its own size, or sliding crops of the model's img_size every
    # slide_stride x crop pixels (overlaps averaged)
    inference: Literal["whole", "slide"] = "whole"
    slide_stride: float = 2 / 3

    def __post_init__(self) -> None:
        if self.max_epochs < 1:
            fail("max_epochs", f"must be >= 1, got {self.max_epochs}")
        if self.num_nodes < 1:
            fail("num_nodes", f"must be >= 1, got {self.num_nodes}")
        if self.max_steps < 0:
            fail("max_steps", f"must be >= 0 (0: the run lasts max_epochs), got {self.max_steps}")
        if self.accumulate_grad_batches < 1:
            fail("accumulate_grad_batches", f"must be >= 1, got {self.accumulate_grad_batches}")
        if self.threads < 0:
            fail("threads", f"must be >= 0, got {self.threads}")
        for name in ("limit_train_batches", "limit_val_batches"):
            if not 0 < getattr(self, name) <= 1 and not (getattr(self, name) > 1 and getattr(self, name).is_integer()):
                fail(name, f"must be a fraction in (0, 1] or a whole number of batches, got {getattr(self, name)}")
        if self.checkpoint_every_n_steps < 0:
            fail("checkpoint_every_n_steps", f"must be >= 0, got {self.checkpoint_every_n_steps}")
        if not 0 < self.slide_stride <= 1:
            fail("slide_stride", f"is a fraction of the crop in (0, 1], got {self.slide_stride}")


# Fields that change how a run is watched, not what it computes: left out of the run hash.
NON_RESULT_FIELDS = {("trainer", "progress"), ("trainer", "log_every_n_steps"), ("trainer", "checkpoint_every_n_steps")}
# Keys added after runs existed, with the value that reproduces those runs: hashed only where they differ.
OPTIM_TRAINER_ADDED_LATER = (("optim", "warmup_steps", None), ("optim", "lr_scale", "none"),
                             ("trainer", "max_steps", 0), ("trainer", "accumulate_grad_batches", 1))



@dataclass(frozen=True)
class RunConfig:
    """``task: classification`` trains ``model`` as a classifier; ``task: segmentation`` uses it as the backbone of
    ``head`` (``swin_lit.models.segmenter``; ``head`` defaults to UPerNet at the recipe's widths). ``task`` is any
    registered task (``swin_lit.domain.task``); its implementation (``swin_lit.tasks``) checks the rest."""

    name: str = "swin"
    seed: int = 0
    task: str = "classification"  # a registered task: classification, segmentation
    model: SwinConfig = field(default_factory=SwinConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    # Start from the weights of a trained run folder (fine-tuning at another image/window size): the
    # weights are carried over with the official recipe (V1 tables resized bicubically, CPB as is).
    init_from: str | None = None
    head: HeadConfig | None = None

    def __post_init__(self) -> None:
        if not self.name or any(c in self.name for c in "/\\ "):
            fail("name", f"must be a non-empty name without slashes or spaces, got {self.name!r}")
        if self.optim.lr_scale == "linear" and self.total_batch() is None:
            fail("trainer.devices", f"optim.lr_scale 'linear' scales by the total batch, which needs the number of "
                                    f"devices per node as a whole number >= 1, got {self.trainer.devices!r}")
        get_task(self.task).impl().check_config(self)

    def total_batch(self) -> int | None:
        """Images per optimizer step over all processes: data.batch_size x devices x num_nodes x
        accumulate_grad_batches; None where ``trainer.devices`` is not a count (``auto``, a device list)."""
        t = self.trainer
        devices = t.devices
        if isinstance(devices, str):
            devices = int(devices) if devices.strip().isdigit() else None
        if devices is None or devices < 1:
            return None
        return self.data.batch_size * devices * t.num_nodes * t.accumulate_grad_batches

    def effective_optim(self) -> OptimConfig:
        """``optim`` with the learning rates the run uses: under ``lr_scale: linear``, lr, warmup_lr and min_lr
        times total batch / base_batch (then ``lr_scale: none``); otherwise ``optim`` itself."""
        o = self.optim
        if o.lr_scale == "none":
            return o
        factor = self.total_batch() / o.base_batch
        return dataclasses.replace(o, lr=o.lr * factor, warmup_lr=o.warmup_lr * factor, min_lr=o.min_lr * factor,
                                   lr_scale="none")

    def to_dict(self) -> dict:
        return to_dict(self)

    def hash(self) -> str:
        """Stable short hash of everything that determines the run's result."""
        d = self.to_dict()
        for section, key in NON_RESULT_FIELDS:
            d[section].pop(key, None)
        # Compiled and eager runs compute the same model (to rounding), like any thread count: one run. Hashed as
        # the value every run had before ``auto`` existed, so that those run folders keep their names.
        d["trainer"]["compile"] = False
        # Model switches added later hash only when they differ from the behaviour every earlier run had.
        for key, before in SwinConfig.ADDED_LATER.items():
            if d["model"].get(key) == before:
                del d["model"][key]
        # The in-memory loader and failing on bad data are what every run did before ``data.loader`` and
        # ``data.on_error`` existed: hashed as absent, so that those run folders keep their names too.
        for key, before in (("loader", "memory"), ("on_error", "fail")):
            if d["data"].get(key) == before:
                d["data"].pop(key)
        # Likewise the schedule keys added with iteration-based schedules, at the behaviour every earlier run had;
        # under max_steps, max_epochs is not used and is left out.
        for section, key, before in OPTIM_TRAINER_ADDED_LATER:
            if d[section].get(key) == before:
                d[section].pop(key)
        if d["optim"].get("lr_scale", "none") == "none":
            d["optim"].pop("base_batch", None)
        if d["trainer"].get("max_steps", 0):
            d["trainer"].pop("max_epochs", None)
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:10]

    def run_id(self) -> str:
        return f"{self.name}-{self.hash()}"


# -- YAML composition --------------------------------------------------------------------------------

def deep_merge(base: dict, top: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def read_yaml(path: str | Path, what: str = "config file") -> dict:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{what} not found: {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({err})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return data


def compose(path: str | Path) -> dict:
    """A config file with its ``defaults`` resolved, as a plain dict (not yet validated)."""
    path = Path(path)
    data = read_yaml(path)
    defaults = data.pop("defaults", {}) or {}
    if not isinstance(defaults, dict):
        raise ConfigError(f"{path}: defaults must map a section to a file name, e.g. {{model: tiny}}")
    merged: dict = {}
    for section, name in defaults.items():
        if section not in ("model", "data", "optim", "trainer"):
            raise ConfigError(f"defaults.{section}: unknown section; allowed: model, data, optim, trainer")
        candidates = [path.parent / section / f"{name}.yaml", path.parent.parent / section / f"{name}.yaml",
                      CONFIG_ROOT / section / f"{name}.yaml"]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            raise ConfigError(f"defaults.{section}: no file {section}/{name}.yaml next to {path} or in {CONFIG_ROOT}")
        merged[section] = deep_merge(merged.get(section, {}), read_yaml(found))
    return deep_merge(merged, data)


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"model.shift=none"`` -> (["model", "shift"], "none"); the value is parsed as YAML."""
    if "=" not in text:
        raise ConfigError(f"override {text!r}: expected key=value, e.g. model.shift=none")
    key, raw = text.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key.strip().split("."), value


def apply_overrides(data: dict, overrides: dict[str, Any] | list[str]) -> dict:
    """Set dotted keys (from ``--set`` strings or a {dotted key: value} mapping)."""
    out = copy.deepcopy(data)
    items = [parse_override(o) for o in overrides] if isinstance(overrides, list) else [
        (k.split("."), v) for k, v in overrides.items()]
    for keys, value in items:
        node = out
        for k in keys[:-1]:
            if not isinstance(node.setdefault(k, {}), dict):
                raise ConfigError(f"{'.'.join(keys)}: {k} is not a section")
            node = node[k]
        node[keys[-1]] = value
    return out


def with_data_classes(data: dict) -> dict:
    """``data`` with ``model.num_classes`` set to the number of classes of its data when it is absent or null
    (DataError for data that cannot be read; ConfigError for a bad data section)."""
    model = data.get("model")
    if isinstance(model, dict) and model.get("num_classes") is not None:
        return data
    if model is not None and not isinstance(model, dict):
        return data  # from_dict names the bad section
    section = data.get("data") if data.get("data") is not None else {}
    dcfg = from_dict(DataConfig, section, prefix="data")
    task = data.get("task", RunConfig.task)
    if task not in TASKS or dcfg.source not in TASKS[task].sources:
        return data  # RunConfig names the bad task or the source that does not fit it
    out = copy.deepcopy(data)
    out["model"] = {**(out.get("model") or {}), "num_classes": _data_classes(dcfg, task)}
    return out


@functools.lru_cache(maxsize=64)
def _data_classes(cfg: DataConfig, task: str) -> int:
    """Number of classes of the configured data (folder names / metadata only; cached: planning resolves often)."""
    return len(get_task(task).impl().class_names(cfg))


def load_config(path: str | Path | None = None, overrides: dict | list | None = None) -> RunConfig:
    """YAML file (or the built-in default) + overrides -> validated ``RunConfig``."""
    data = compose(path if path is not None else CONFIG_ROOT / "default.yaml")
    if overrides:
        data = apply_overrides(data, overrides)
    return config_from_dict(data)


def config_from_dict(data: dict) -> RunConfig:
    if not isinstance(data, dict):
        return from_dict(RunConfig, data)
    return from_dict(RunConfig, with_data_classes(data))


def stored_config(data: dict) -> RunConfig:
    """A resolved config as a run folder (``config.yaml``) or a study's trial (``config`` user attr) stores it: the
    one converter of older stored forms. A key added later and absent from the stored form gets the value every
    run had before it existed: ``data.loader`` was ``memory`` (a new config leaves it out to get the source's
    default, ``stream`` for folders); every other later key's default already is the earlier behaviour."""
    if isinstance(data, dict) and isinstance(data.get("data"), dict) and "loader" not in data["data"]:
        data = {**data, "data": {**data["data"], "loader": "memory"}}
    return config_from_dict(data)
