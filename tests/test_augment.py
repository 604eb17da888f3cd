"""Batch augmentation in plain torch: seeded, shape-preserving, targets that stay distributions."""

import pytest
import torch
from helpers.training import TINY

from swin_lit.config import OptimConfig, load_config
from swin_lit.train import augment
from swin_lit.train.runs import train


def batch():
    return torch.randn(16, 3, 16, 16, generator=torch.Generator().manual_seed(0))


def test_rand_augment_is_seeded_and_keeps_shape():
    x = batch()
    a = augment.rand_augment(x, 2, 9, torch.Generator().manual_seed(1))
    b = augment.rand_augment(x, 2, 9, torch.Generator().manual_seed(1))
    c = augment.rand_augment(x, 2, 9, torch.Generator().manual_seed(2))
    assert a.shape == x.shape and torch.isfinite(a).all()
    assert torch.equal(a, b) and not torch.equal(a, c) and not torch.equal(a, x)


def test_random_erasing_replaces_one_box_per_chosen_image():
    x = torch.zeros(64, 3, 16, 16)
    out = augment.random_erasing(x, 0.5, torch.Generator().manual_seed(0))
    erased = (out != 0).flatten(1).any(1)
    assert 10 < erased.sum() < 54  # about half the images
    area = (out[erased] != 0).float().mean(dim=(1, 2, 3))
    assert (area > 0.01).all() and (area < 0.5).all()


@pytest.mark.parametrize("mixup,cutmix", [(0.8, 0.0), (0.0, 1.0), (0.8, 1.0)])
def test_mix_targets_stay_distributions(mixup, cutmix):
    y = torch.arange(16) % 4
    targets = augment.soft_targets(y, 4, 0.1)
    assert torch.allclose(targets.sum(1), torch.ones(16)) and targets.max() == pytest.approx(0.925)
    cfg = OptimConfig(mixup_alpha=mixup, cutmix_alpha=cutmix)
    x, mixed = augment.mix(batch(), targets, cfg, torch.Generator().manual_seed(3))
    assert x.shape == (16, 3, 16, 16) and torch.allclose(mixed.sum(1), torch.ones(16))
    assert not torch.equal(mixed, targets)


def test_a_run_with_every_augmentation_trains(tmp_path):
    cfg = load_config(None, TINY + ["trainer.max_epochs=1", "optim.mixup_alpha=0.8", "optim.cutmix_alpha=1.0",
                                    "optim.randaugment_ops=2", "optim.random_erasing=0.25"])
    _, record = train(cfg, tmp_path)
    assert record["epochs"] == 1 and record["history"][0]["train_loss"] > 0
