"""The Setting section of a report: what was trained, on how much data, for how long, on what, and how noisy its
test set is, beside the paper's setting.

Ours comes from the stored records and resolved configs (params and FLOPs per image, epochs, training images per
epoch, training time and device, test-set size); what is not stored says "not recorded". Images per epoch are
the configured training-set size on the embedded tasks and, for data read from files, the measured training
throughput x training time / epochs (the folder's size is not stored). The paper's setting is from the reference
(``swin_reference.md``: Swin-T in Table 1(a) of Swin V1, 29 M parameters and 4.5 GFLOPs at 224 px, 300 epochs of
ImageNet-1K's 1.28 M training images, recipe section 5.1; ADE20K UperNet, 160k iterations of batch 16 at 512 x
512, section 10.2; test sets ImageNet-1K val 50,000 images, ADE20K val 2,000 images).

The binomial half-width of a test set (``reproduction.binomial_half_width``) treats its images as independent
items scored right or wrong: exact for top-1; for mIoU an assumption (the 2,000 ADE20K val images as the units at
p = the mIoU), which the report states.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from swin_lit.data.sources import embedded
from swin_lit.report import captions
from swin_lit.report.data import StudyData
from swin_lit.report.fmt import num, short_metric, significant
from swin_lit.report.reproduction import binomial_half_width


@dataclass(frozen=True)
class PaperSetting:
    dataset: str
    model: str
    params_m: float | None  # millions
    gflops: float | None
    schedule: str
    images_seen: float  # training images x epochs (or crops x iterations)
    test_images: int
    test_split: str
    assumption: str = ""  # how the binomial noise is read for this metric


PAPER_SETTINGS = {
    "ImageNet-1K": PaperSetting("ImageNet-1K", "Swin-T", 29, 4.5, captions.IMAGENET_SCHEDULE.fill(),
                                300 * 1.28e6, 50_000, "val"),
    "ADE20K": PaperSetting("ADE20K", captions.ADE20K_MODEL.fill(), 29, None, captions.ADE20K_SCHEDULE.fill(),
                           160_000 * 16, 2_000, "val", captions.ADE20K_ASSUMPTION.fill()),
}


def paper_setting(source: str | None) -> PaperSetting | None:
    """The paper's setting named by a spec's paper source ("Swin V1 Table 4, Swin-T, ImageNet-1K")."""
    for name, setting in PAPER_SETTINGS.items():
        if source and name.lower() in source.lower():
            return setting
    return None


def paper_noise(source: str | None, percent: float) -> float:
    """The paper's 95% half-width (points) of a number ``percent`` on its test set; NaN when unknown."""
    setting = paper_setting(source)
    return binomial_half_width(percent, setting.test_images) if setting else math.nan


def _median(data: StudyData, column: str) -> float:
    if column not in data.runs.columns or data.runs.empty:
        return math.nan
    values = data.runs[column].apply(lambda x: float(x) if isinstance(x, int | float) else math.nan).dropna()
    return float(values.median()) if len(values) else math.nan


def _sum(data: StudyData, column: str) -> float:
    if column not in data.runs.columns or data.runs.empty:
        return math.nan
    values = data.runs[column].apply(lambda x: float(x) if isinstance(x, int | float) else math.nan).dropna()
    return float(values.sum()) if len(values) else math.nan


@dataclass(frozen=True)
class OurSetting:
    params: float  # per run, median
    flops: float  # multiply-adds per image
    epochs: float
    images_per_epoch: float
    images_measured: bool  # from throughput x time (files) rather than the configured size (embedded)
    train_hours: float  # summed over the finished runs
    runs: int
    devices: dict[str, int]
    test_images: int | None
    schedule: str  # the LR schedule and its floor

    @property
    def images_seen(self) -> float:
        return self.epochs * self.images_per_epoch


def our_setting(data: StudyData) -> OurSetting:
    dc, config = data.data_config, data.run_config
    epochs = _median(data, "epochs")
    trainer, optim = config.get("trainer") or {}, config.get("optim") or {}
    if not math.isfinite(epochs) and isinstance(trainer.get("max_epochs"), int):
        epochs = float(trainer["max_epochs"])
    is_embedded = embedded(str(dc.get("source")))
    images, measured = math.nan, False
    if is_embedded and isinstance(dc.get("train_size"), int):
        images = float(dc["train_size"])
    else:
        rate, seconds = data.runs.get("train_images_per_s"), data.runs.get("train_time_s")
        if rate is not None and seconds is not None and math.isfinite(epochs) and epochs > 0:
            seen = (pd_num(rate) * pd_num(seconds)).dropna()
            if len(seen):
                images, measured = float(seen.median()) / epochs, True
    test = int(dc["test_size"]) if is_embedded and isinstance(dc.get("test_size"), int) else None
    seconds = _sum(data, "train_time_s")
    schedule = ""
    if optim.get("schedule"):
        floor = optim.get("min_lr")
        schedule = captions.LR_SCHEDULE.fill(schedule=optim["schedule"], floor=captions.LR_FLOOR.fill(
            floor=captions.setting(floor)) if floor is not None else "")
    return OurSetting(_median(data, "params"), _median(data, "flops"), epochs, images, measured,
                      seconds / 3600 if math.isfinite(seconds) else math.nan, len(data.runs),
                      dict(data.environment.get("device") or {}), test, schedule)


def pd_num(series):
    import pandas as pd

    return pd.to_numeric(series, errors="coerce")


def _count(x: float) -> str:
    if not math.isfinite(x):
        return "not recorded"
    for scale, unit in ((1e9, " G"), (1e6, " M"), (1e3, " k")):
        if abs(x) >= scale:
            return f"{significant(x / scale)}{unit}"
    return num(x, 0)


def setting_lines(data: StudyData) -> list[str]:
    """The Setting section's bullet lines, ours beside the paper's."""
    ours = our_setting(data)
    source = data.paper.source if data.paper is not None else (
        data.transfer_paper.source if data.transfer_paper is not None else None)
    paper = paper_setting(source)
    images = (captions.IMAGES_PER_EPOCH.fill(
        count=_count(ours.images_per_epoch), measured=captions.IMAGES_MEASURED.fill() if ours.images_measured else "")
              if math.isfinite(ours.images_per_epoch) else captions.IMAGES_NOT_RECORDED.fill())
    epochs = captions.EPOCHS.fill(epochs=captions.setting(ours.epochs)) if math.isfinite(ours.epochs) else (
        "epochs not recorded")
    seen = captions.IMAGES_SEEN.fill(count=_count(ours.images_seen)) if math.isfinite(ours.images_seen) else ""
    flops = captions.FLOPS_PER_IMAGE.fill(flops=significant(ours.flops / 1e6)) if math.isfinite(ours.flops) else (
        "FLOPs not recorded")
    params = captions.PARAMETERS.fill(params=significant(ours.params / 1e6)) if math.isfinite(ours.params) else (
        "parameters not recorded")
    devices = ", ".join(captions.DEVICE_RUNS.fill(device=d, n=n) for d, n in ours.devices.items()) or (
        "device not recorded")
    hours = (captions.TRAIN_HOURS.fill(hours=num(ours.train_hours, 2), runs=ours.runs)
             if math.isfinite(ours.train_hours) else "compute not recorded")
    lines = [captions.MODEL_OURS.fill(params=params, flops=flops),
             captions.TRAINING_OURS.fill(epochs=epochs, images=images, seen=seen,
                                         schedule=f"; {ours.schedule}" if ours.schedule else ""),
             captions.COMPUTE_OURS.fill(hours=hours, devices=devices)]
    metric = short_metric(data.objective)
    if ours.test_images:
        base = _base_mean(data)
        noise = binomial_half_width(base, ours.test_images) if metric == "top1" else math.nan
        noise_text = captions.TEST_SET_NOISE.fill(base=num(base, 1), noise=num(noise, 2)) if math.isfinite(
            noise) else ""
        lines.append(captions.TEST_SET_OURS.fill(images=f"{ours.test_images:,}", noise=noise_text))
    else:
        lines.append(captions.TEST_SET_UNKNOWN.fill())
    if paper is not None:
        size = (captions.PAPER_PARAMETERS.fill(params=captions.setting(paper.params_m)) if paper.params_m
                else captions.PAPER_NO_PARAMETERS.fill())
        size += captions.PAPER_GFLOPS.fill(gflops=captions.setting(paper.gflops)) if paper.gflops else ""
        lines.append(captions.PAPER_SETTING.fill(
            source=source, model=paper.model, size=size, schedule=paper.schedule, dataset=paper.dataset,
            split=paper.test_split, images=f"{paper.test_images:,}",
            assumption=f" ({paper.assumption})" if paper.assumption else ""))
        if math.isfinite(ours.params) and paper.params_m:
            gap = captions.SCALE_GAP_PARAMS.fill(ratio=num(paper.params_m * 1e6 / ours.params, 0))
            if math.isfinite(ours.images_seen):
                gap += captions.SCALE_GAP_IMAGES.fill(ratio=num(paper.images_seen / ours.images_seen, 0))
            lines.append(captions.SCALE_GAP.fill(gap=gap))
    else:
        lines.append(captions.PAPER_UNKNOWN.fill())
    return lines


def scale_gap(data: StudyData) -> str:
    """"1/72 params, 1/6,900 images seen" for the scorecard; empty when either side is unknown."""
    ours = our_setting(data)
    source = data.paper.source if data.paper is not None else (
        data.transfer_paper.source if data.transfer_paper is not None else None)
    paper = paper_setting(source)
    if paper is None or not math.isfinite(ours.params) or not paper.params_m:
        return ""
    text = f"1/{num(paper.params_m * 1e6 / ours.params, 0)} params"
    if math.isfinite(ours.images_seen):
        text += f", 1/{num(paper.images_seen / ours.images_seen, 0, thousands=True)} images seen"
    return text


def _base_mean(data: StudyData) -> float:
    if data.runs.empty or data.objective not in data.runs.columns:
        return math.nan
    values = data.runs.loc[data.runs["variant"] == data.baseline, data.objective]
    values = [float(v) for v in values if isinstance(v, int | float) and math.isfinite(v)]
    return float(np.mean(values)) if values else math.nan
