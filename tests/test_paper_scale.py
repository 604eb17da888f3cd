"""The papers' runs as configs and cluster specs: the recipe's arithmetic in the configs, and each spec planned and
dry-run against a small generated folder in its layout, whose files the recipe's transforms read."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from swin_lit.ablate.spec import load_plan, resolve_base
from swin_lit.cli import main
from swin_lit.config import load_config
from swin_lit.data.listing import listing
from swin_lit.data.photos import photo_jpeg, photo_like
from swin_lit.data.seg_augment import SegAugment, sample_generator
from swin_lit.data.stream import coding_for
from swin_lit.data.transforms import ClassificationTransform, RandAugment

ROOT = Path(__file__).resolve().parents[1]


def _imagenet(root: Path) -> Path:
    """ImageNet layout: 3 wnid folders with 2 JPEGs each in train/ and 1 in val/ (full-size-like photos)."""
    for split, count in (("train", 2), ("val", 1)):
        for c in range(3):
            folder = root / split / f"n0000000{c}"
            folder.mkdir(parents=True)
            for i in range(count):
                photo_jpeg(400 + 40 * c, 300, seed=10 * c + i, path=folder / f"n0000000{c}_{i}.JPEG")
    return root


def _ade20k(root: Path) -> Path:
    """ADE20K layout: 3 training and 2 validation pairs, label maps 0 (other) .. 4."""
    for split, count in (("training", 3), ("validation", 2)):
        (root / "images" / split).mkdir(parents=True)
        (root / "annotations" / split).mkdir(parents=True)
        for i in range(count):
            array = photo_like(640, 480, seed=i)
            Image.fromarray(array).save(root / "images" / split / f"ADE_{split}_{i:08d}.jpg", quality=90)
            label = (array[..., 1] // 52).clip(0, 4).astype(np.uint8)
            Image.fromarray(label).save(root / "annotations" / split / f"ADE_{split}_{i:08d}.png")
    return root


def _spec_with_root(name: str, root: Path, tmp_path: Path) -> Path:
    spec = yaml.safe_load((ROOT / "ablations" / f"{name}.yaml").read_text())
    spec["base"] = str(resolve_base(spec["base"], ROOT / "ablations" / f"{name}.yaml").resolve())
    spec["budget"] = {**(spec.get("budget") or {}), "data.root": str(root)}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def test_imagenet_config_is_the_official_recipe():
    cfg = load_config(ROOT / "configs" / "imagenet_swin_t.yaml", ["data.root=/somewhere"])
    t = cfg.trainer
    assert cfg.data.batch_size * t.devices * t.num_nodes * t.accumulate_grad_batches == cfg.total_batch() == 1024
    o = cfg.optim  # the official rates per 512 images, scaled linearly by the total batch
    assert (o.lr_scale, o.base_batch, o.lr, o.warmup_lr, o.min_lr) == ("linear", 512, 5e-4, 5e-7, 5e-6)
    e = cfg.effective_optim()
    assert (e.lr, e.warmup_lr, e.min_lr) == pytest.approx((1e-3, 1e-6, 1e-5))
    # the same total batch on 4 GPUs through accumulation: the same rates; half the batch: half the rates
    four = load_config(ROOT / "configs" / "imagenet_swin_t.yaml", ["data.root=/somewhere", "trainer.devices=4",
                                                                   "trainer.accumulate_grad_batches=2"])
    assert four.total_batch() == 1024 and four.effective_optim().lr == pytest.approx(1e-3)
    half = load_config(ROOT / "configs" / "imagenet_swin_t.yaml", ["data.root=/somewhere", "trainer.devices=4"])
    assert half.effective_optim().lr == pytest.approx(5e-4)
    assert (o.weight_decay, o.warmup_epochs, o.warmup_steps, o.schedule, o.grad_clip, o.label_smoothing) == \
        (0.05, 20, None, "cosine", 5.0, 0.1)
    assert (o.mixup_alpha, o.cutmix_alpha, o.randaugment_ops, o.randaugment_magnitude, o.random_erasing) == \
        (0.8, 1.0, 2, 9, 0.25)
    assert t.max_epochs == 300 and t.max_steps == 0 and t.precision == "bf16-mixed"
    assert cfg.model.drop_path_rate == 0.2 and cfg.data.loader == "stream" and cfg.data.hflip
    assert ClassificationTransform.from_optim(o, cfg.model.img_size).randaugment == \
        RandAugment.parse("rand-m9-mstd0.5-inc1")


def test_ade20k_config_is_the_mmseg_recipe_in_iterations():
    cfg = load_config(ROOT / "configs" / "ade20k_upernet_swin_t.yaml", ["data.root=/somewhere"])
    assert cfg.total_batch() == 2 * 8 * 1 * 1 == 16
    assert cfg.trainer.max_steps == 160_000 and cfg.trainer.accumulate_grad_batches == 1
    o = cfg.optim
    assert (o.warmup_steps, o.warmup_epochs, o.lr_scale) == (1_500, None, "none")
    assert (o.lr, o.weight_decay, o.schedule, o.min_lr, o.grad_clip) == (6e-5, 0.01, "poly", 0.0, 0.0)
    assert o.warmup_lr == pytest.approx(6e-5 * 1e-6)  # mmcv's warmup ratio 1e-6
    aug = cfg.data.augment
    assert (aug.crop, aug.scale, aug.ratio_range, aug.cat_max_ratio) == ((512, 512), (2048, 512), (0.5, 2.0), 0.75)
    assert (cfg.head.kind, cfg.head.channels, cfg.head.aux_weight) == ("upernet", 512, 0.4)
    assert cfg.model.drop_path_rate == 0.3


@pytest.mark.parametrize("name,layout,cells", [
    ("swin_v1_table4_imagenet", "folder", 15),
    ("swin_v1_table4_ade20k", "ade20k", 15),
    ("swin_v2_table1_imagenet", "folder", 3),
])
def test_paper_scale_spec_plans_and_dry_runs_on_its_layout(name, layout, cells, tmp_path, capsys):
    root = (_imagenet if layout == "folder" else _ade20k)(tmp_path / "data")
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    path = _spec_with_root(name, root, tmp_path)
    plan = load_plan(path)
    train = [c for c in plan.cells if c.kind == "train"]
    assert len(train) == cells and len({c.config.run_id() for c in train}) == cells
    cfg = train[0].config
    assert cfg.data.root == str(root) and cfg.data.loader == "stream" and cfg.trainer.devices == 8
    # the stream's layout reader lists the folder; one sample of it goes through the recipe's transform
    found = listing(layout, root, cache_dir=tmp_path / "cache")
    gen = sample_generator(cfg.seed, 0, 0)
    if layout == "folder":
        assert found.class_names == ("n00000000", "n00000001", "n00000002")
        tf = ClassificationTransform.from_optim(cfg.optim, cfg.model.img_size)
        size = cfg.model.img_size
        assert tf.train(found.path("train", 0), gen).shape == (3, size, size)
        assert tf.eval(found.path("val", 0)).shape == (3, size, size)
    else:
        image_path = found.path("train", 0)
        label_path = str(found.root / found.splits["train"][1][0].decode())
        image, label = SegAugment(cfg.data.augment).from_files(image_path, label_path, coding_for("ade20k"), gen)
        assert image.shape == (3, 512, 512) and label.shape == (512, 512)
        assert set(torch.unique(label).tolist()) <= {0, 1, 2, 3, 255}  # reduce_zero_label: 0 -> 255, v -> v - 1
    out = tmp_path / "out"
    assert main(["ablate", str(path), "--out", str(out), "--dry-run"]) == 0
    text = capsys.readouterr().out
    first = [c for c in plan.cells if c.seed in plan.spec.first_seeds]
    assert text.count("missing ") == len(first) and not out.exists()
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before  # nothing written into the data folder
