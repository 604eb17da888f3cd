"""The learning-rate schedule per optimizer step (warmup in epochs or steps, cosine / poly), gradient accumulation,
max_steps and the official linear lr scaling: numbers recomputed by hand, a real run that logs its rates, the
typed keys' errors, and run hashes that did not move."""

from __future__ import annotations

import json
from pathlib import Path

import lightning.pytorch as pl
import pytest
from helpers.training import TINY

from swin_lit.config import OptimConfig, load_config
from swin_lit.errors import ConfigError
from swin_lit.train import schedule
from swin_lit.train.runs import train

# lr 1e-3, warmup_lr 1e-6, min_lr 1e-5, 3 warmup steps of 10. Warmup: 1e-6 + 999e-6 * k / 3. After it, with
# progress p = (k - 3) / 7: cosine 1e-5 + 990e-6 * (1 + cos(pi p)) / 2, poly 1e-5 + 990e-6 * (1 - p).
# cos(pi/7) = 0.9009688679, cos(2pi/7) = 0.6234898019, cos(3pi/7) = 0.2225209340, cos(4pi/7) = -cos(3pi/7), ...
WARMUP = [1e-6, 3.34e-4, 6.67e-4]
COSINE = WARMUP + [1e-3, 9.5097959e-4, 8.1362745e-4, 6.1514786e-4, 3.9485214e-4, 1.9637255e-4, 5.902041e-5]
POLY = WARMUP + [1e-3, 8.5857143e-4, 7.1714286e-4, 5.7571429e-4, 4.3428571e-4, 2.9285714e-4, 1.5142857e-4]


def optim(**kw) -> OptimConfig:
    return OptimConfig(**{"lr": 1e-3, "warmup_lr": 1e-6, "min_lr": 1e-5, **kw})


@pytest.mark.parametrize("kind,expected", [("cosine", COSINE), ("poly", POLY)])
def test_lr_per_optimizer_step_by_hand(kind, expected):
    o = optim(schedule=kind, warmup_epochs=None, warmup_steps=3)
    warmup = schedule.warmup_steps(o, steps_per_epoch=5, total=10)
    assert warmup == 3
    got = [schedule.lr_at(o, k, warmup, 10) for k in range(10)]
    assert got == pytest.approx(expected, rel=1e-5)
    assert schedule.lr_at(o, 10, warmup, 10) == pytest.approx(1e-5)  # the floor at the end, and past it
    assert schedule.lr_at(o, 12, warmup, 10) == pytest.approx(1e-5)


def test_warmup_in_epochs_counts_optimizer_steps():
    # 7 batches an epoch with accumulation 2: 4 optimizer steps (the last one after a single batch)
    assert schedule.steps_per_epoch(7, 2) == 4 and schedule.steps_per_epoch(6, 2) == 3
    assert schedule.steps_per_epoch(6, 1) == 6 and schedule.steps_per_epoch(float("inf"), 2) is None
    assert schedule.warmup_steps(optim(warmup_epochs=1.5), steps_per_epoch=4, total=100) == 6
    assert schedule.warmup_steps(optim(warmup_epochs=5), steps_per_epoch=4, total=10) == 9  # at most total - 1
    assert schedule.warmup_steps(optim(warmup_epochs=None, warmup_steps=0), steps_per_epoch=4, total=10) == 0


def test_official_linear_scaling_by_hand():
    cfg = load_config(None, ["optim.lr_scale=linear", "optim.lr=5e-4", "optim.warmup_lr=5e-7", "optim.min_lr=5e-6",
                             "data.batch_size=64", "trainer.devices=8", "trainer.num_nodes=2",
                             "trainer.accumulate_grad_batches=2"])
    assert cfg.total_batch() == 64 * 8 * 2 * 2 == 2048
    e = cfg.effective_optim()  # x 2048 / 512 = 4
    assert (e.lr, e.warmup_lr, e.min_lr) == pytest.approx((2e-3, 2e-6, 2e-5))
    assert e.lr_scale == "none" and e.weight_decay == cfg.optim.weight_decay
    assert cfg.optim.lr == 5e-4  # the config keeps the per-512 rates it was given
    base256 = load_config(None, ["optim.lr_scale=linear", "optim.base_batch=256", "data.batch_size=64"])
    assert base256.effective_optim().lr == pytest.approx(base256.optim.lr * 64 / 256)
    plain = load_config(None, ["data.batch_size=64", "trainer.devices=8"])
    assert plain.effective_optim() is plain.optim  # lr_scale none: the rates as given


@pytest.mark.parametrize("overrides,key", [
    (["optim.warmup_steps=100"], "optim.warmup_steps: the warmup is given twice"),
    (["optim.warmup_epochs=null"], "optim.warmup_epochs: give the warmup"),
    (["optim.warmup_epochs=null", "optim.warmup_steps=-1"], "optim.warmup_steps: must be >= 0"),
    (["optim.lr_scale=sqrt"], "optim.lr_scale: got 'sqrt'; allowed values are 'none', 'linear'"),
    (["optim.base_batch=0"], "optim.base_batch: must be >= 1"),
    (["trainer.accumulate_grad_batches=0"], "trainer.accumulate_grad_batches: must be >= 1"),
    (["trainer.accumulate_grad_batches=1.5"], "trainer.accumulate_grad_batches"),
    (["trainer.max_steps=-5"], "trainer.max_steps: must be >= 0"),
    (["optim.lr_scale=linear", "trainer.devices=auto"], "trainer.devices: optim.lr_scale 'linear'"),
    (["optim.warmup_stepz=3"], "optim.warmup_stepz"),
])
def test_bad_schedule_keys_fail_naming_the_key(overrides, key):
    with pytest.raises(ConfigError) as err:
        load_config(None, overrides)
    assert str(err.value).startswith(key)


def test_new_keys_at_their_old_behaviour_keep_the_run_hash():
    base = load_config(None)
    assert base.hash() == "f905ad4d55"  # configs/default.yaml's hash before these keys existed
    same = load_config(None, ["trainer.accumulate_grad_batches=1", "trainer.max_steps=0", "optim.lr_scale=none",
                              "optim.base_batch=256"])  # base_batch does nothing without lr_scale
    assert same.hash() == base.hash()
    changed = [["trainer.accumulate_grad_batches=2"], ["trainer.max_steps=100"], ["optim.lr_scale=linear"],
               ["optim.warmup_epochs=null", "optim.warmup_steps=10"]]
    hashes = {load_config(None, o).hash() for o in changed}
    assert base.hash() not in hashes and len(hashes) == len(changed)
    # under max_steps the run's length is in steps; max_epochs is not used and does not split runs
    assert load_config(None, ["trainer.max_steps=100", "trainer.max_epochs=3"]).hash() == \
        load_config(None, ["trainer.max_steps=100", "trainer.max_epochs=30"]).hash()


class Rates(pl.Callback):
    """The lr of every optimizer step (read just before it is taken) and the batches trained."""

    def __init__(self) -> None:
        self.lrs: list[float] = []
        self.batches = 0

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        self.lrs.append(optimizer.param_groups[0]["lr"])

    def on_train_batch_end(self, *args):
        self.batches += 1


def test_accumulation_and_max_steps_in_a_real_run(tmp_path):
    # 192 images / batch 32 = 6 batches an epoch, accumulated 2 by 2: 3 optimizer steps an epoch; max_steps 10
    # stops in the 4th epoch after 20 batches. Total batch 32 x 1 x 1 x 2 = 64 = 2 x base_batch 32: every rate x 2.
    cfg = load_config(None, TINY + ["trainer.accumulate_grad_batches=2", "trainer.max_steps=10",
                                    "optim.warmup_epochs=null", "optim.warmup_steps=3", "optim.lr=1e-3",
                                    "optim.warmup_lr=1e-6", "optim.min_lr=1e-5", "optim.schedule=cosine",
                                    "optim.lr_scale=linear", "optim.base_batch=32", "trainer.devices=1"])
    rates = Rates()
    run_dir, record = train(cfg, tmp_path, progress=False, callbacks=[rates])
    assert rates.batches == 20 and len(rates.lrs) == 10
    assert rates.lrs == pytest.approx([2 * lr for lr in COSINE], rel=1e-5)
    assert record["epochs"] == 4 and len(record["history"]) == 4
    assert record["total_batch"] == 64
    assert record["optim_effective"] == pytest.approx({"lr": 2e-3, "warmup_lr": 2e-6, "min_lr": 2e-5})
    header = (Path(run_dir) / "config.yaml").read_text().splitlines()[0]
    assert header.startswith("# optim.lr_scale linear: total batch 64 = 32 x 1 devices x 1 nodes x 2 accumulated")
    assert "lr 0.002, warmup_lr 2e-06, min_lr 2e-05" in header
    assert json.loads((Path(run_dir) / "result.json").read_text())["optim_effective"]["lr"] == pytest.approx(2e-3)


def test_warmup_epochs_with_accumulation_in_a_real_run(tmp_path):
    # 2 epochs of 6 batches accumulated 2 by 2: 6 optimizer steps, warmup 1 epoch = 3 of them, poly to min_lr
    cfg = load_config(None, TINY + ["trainer.accumulate_grad_batches=2", "optim.warmup_epochs=1",
                                    "optim.lr=1e-3", "optim.warmup_lr=1e-6", "optim.min_lr=1e-5",
                                    "optim.schedule=poly"])
    rates = Rates()
    train(cfg, tmp_path, progress=False, callbacks=[rates])
    # after the warmup, p = (k - 3) / 3: 1e-5 + 990e-6 * (1 - p)
    assert rates.batches == 12
    assert rates.lrs == pytest.approx(WARMUP + [1e-3, 6.7e-4, 3.4e-4], rel=1e-5)


def test_a_finetune_takes_its_lr_as_given_over_epochs(tmp_path):
    from swin_lit.train.transfer import finetune_config

    cfg = load_config(None, ["optim.lr_scale=linear", "trainer.devices=8", "trainer.max_steps=1000",
                             "optim.warmup_epochs=null", "optim.warmup_steps=100"])
    ft = finetune_config(cfg, tmp_path, cfg.model, epochs=3, lr=4e-5)
    e = ft.effective_optim()
    assert (e.lr, e.warmup_epochs, e.warmup_steps) == (4e-5, 0.0, None)  # not x total batch / 512
    assert e.min_lr == pytest.approx(4e-6)
    assert (ft.trainer.max_epochs, ft.trainer.max_steps) == (3, 0)
