"""``trainer.compile: auto``: the payback rule, recomputed by hand; warm caches; the setting's bad values."""

import pytest

from swin_lit.config import load_config
from swin_lit.models.flops import count_flops
from swin_lit.train import compile as compiling
from swin_lit.typed import ConfigError

SMALL = ["model.img_size=32", "model.patch_size=2", "model.embed_dim=48", "model.depths=[2, 2, 2]",
         "model.num_heads=[3, 6, 12]", "model.window_size=4", "model.mlp_ratio=4.0", "model.num_classes=10",
         "data.batch_size=128"]
MACS = 46_352_256  # the compile_payback benchmark's model, per image


def key(cfg, device="cpu (x86_64, 2 cores)"):
    return compiling.architecture_key(cfg, device, "32-true")


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "inductor"))


def test_planned_images_by_hand():
    cfg = load_config(None, SMALL + ["trainer.max_epochs=3"])
    assert compiling.planned_images(cfg, 45_000) == 3 * 351 * 128  # 351 full batches; the short last one is dropped
    cfg = load_config(None, SMALL + ["trainer.max_epochs=2", "trainer.limit_train_batches=10"])
    assert compiling.planned_images(cfg, 45_000) == 2 * 10 * 128
    cfg = load_config(None, SMALL + ["trainer.max_epochs=1", "trainer.limit_train_batches=0.5"])
    assert compiling.planned_images(cfg, 1000) == 3 * 128  # 7 full batches, int(3.5) of them as Lightning counts
    assert compiling.planned_images(cfg, 100) == 100  # fewer samples than a batch: one short batch


def test_planned_images_under_max_steps_by_hand():
    """trainer.max_steps > 0: the run is that many optimizer steps (max_epochs unused), each accumulate_grad_batches
    batches, an epoch ceil(batches / accumulation) steps whose last one takes what is left of the epoch."""
    steps = SMALL + ["trainer.max_epochs=100"]  # never read under max_steps
    cfg = load_config(None, steps + ["trainer.max_steps=500"])
    assert compiling.planned_images(cfg, 45_000) == 500 * 128  # 351 steps a epoch: one epoch + 149 steps
    # accumulation 4: an epoch is ceil(351 / 4) = 88 steps, its last one 3 batches; 500 = 5 x 88 + 60
    cfg = load_config(None, steps + ["trainer.max_steps=500", "trainer.accumulate_grad_batches=4"])
    assert compiling.planned_images(cfg, 45_000) == 5 * 351 * 128 + 60 * 4 * 128 == 255_360
    # 10 batches an epoch, accumulation 4: 3 steps (4 + 4 + 2 batches); 7 steps = 2 epochs + one step of 4
    cfg = load_config(None, steps + ["trainer.max_steps=7", "trainer.accumulate_grad_batches=4",
                                     "trainer.limit_train_batches=10"])
    assert compiling.planned_images(cfg, 45_000) == 2 * 10 * 128 + 4 * 128 == 3_072
    cfg = load_config(None, steps + ["trainer.max_steps=3", "trainer.accumulate_grad_batches=2"])
    assert compiling.planned_images(cfg, 100) == 3 * 100  # one short batch an epoch: one step each


def test_auto_decides_on_max_steps_not_max_epochs():
    # 500 steps of 128 images: 3 * 46.35e6 MACs * 64,000 = 8.9 TMAC, eager though 100 epochs would be 625 TMAC
    cfg = load_config(None, SMALL + ["trainer.max_epochs=100", "trainer.max_steps=500"])
    short = compiling.plan(cfg, MACS, 45_000, key(cfg))
    assert not short.compiled and short.work_tmac == pytest.approx(3 * MACS * 500 * 128 / 1e12)
    assert short.reason == "auto: 8.9 TMAC of training < 20 (cold cache)"
    # 2,000 steps at one epoch's worth of max_epochs: 3 * 46.35e6 * 256,000 = 35.6 TMAC, where 1 epoch is 6.2
    cfg = load_config(None, SMALL + ["trainer.max_epochs=1", "trainer.max_steps=2000"])
    long = compiling.plan(cfg, MACS, 45_000, key(cfg))
    assert long.compiled and long.reason == "auto: 35.6 TMAC of training >= 20 (cold cache)"


def test_auto_compiles_where_the_work_repays_a_cold_compile():
    assert count_flops(load_config(None, SMALL).model) == MACS
    # 3 epochs of 45,000 images: 3 * 46.35e6 MACs * 134,784 images = 18.7 TMAC, under the cold threshold of 20
    cfg = load_config(None, SMALL + ["trainer.max_epochs=3"])
    three = compiling.plan(cfg, MACS, 45_000, key(cfg))
    assert not three.compiled and three.work_tmac == pytest.approx(3 * MACS * 3 * 351 * 128 / 1e12)
    assert three.reason == "auto: 18.7 TMAC of training < 20 (cold cache)"
    cfg = load_config(None, SMALL + ["trainer.max_epochs=4"])
    four = compiling.plan(cfg, MACS, 45_000, key(cfg))
    assert four.compiled and four.reason == "auto: 25.0 TMAC of training >= 20 (cold cache)"
    rec = four.record(51.5)
    assert rec["path"] == "compiled" and rec["compile_s"] == 51.5 and rec["work_tmac"] == four.work_tmac


def test_a_warm_cache_lowers_the_threshold_for_that_architecture_only():
    one_epoch = load_config(None, SMALL + ["trainer.max_epochs=1"])  # 6.2 TMAC: between the thresholds
    assert not compiling.plan(one_epoch, MACS, 45_000, key(one_epoch)).compiled
    compiling.mark_compiled(key(load_config(None, SMALL + ["trainer.max_epochs=9", "seed=3"])), 40.0)
    warm = compiling.plan(one_epoch, MACS, 45_000, key(one_epoch))  # other seed and budget, same shapes: warm
    assert warm.compiled and warm.warm and warm.reason.endswith(">= 2 (warm cache)")
    other = load_config(None, SMALL + ["trainer.max_epochs=1", "model.shift=none"])
    assert not compiling.plan(other, MACS, 45_000, key(other)).warm  # another architecture is still cold
    bigger_batch = load_config(None, SMALL + ["trainer.max_epochs=1", "data.batch_size=64"])
    assert not compiling.plan(bigger_batch, MACS, 45_000, key(bigger_batch)).warm  # other shapes: other graphs
    assert not compiling.plan(one_epoch, MACS, 45_000, key(one_epoch, "NVIDIA H200")).warm  # another device


def test_forced_settings_the_cache_context_and_bad_values(tmp_path):
    import os

    for value, compiled in (("true", True), ("false", False)):
        cfg = load_config(None, SMALL + [f"trainer.compile={value}", "trainer.max_epochs=100"])
        p = compiling.plan(cfg, MACS, 45_000, key(cfg))
        assert p.compiled is compiled and p.reason == f"trainer.compile: {value}"
    before = os.environ["TORCHINDUCTOR_CACHE_DIR"]
    with compiling.cache_at(tmp_path / "study" / "cache"):
        assert compiling.inductor_cache() == (tmp_path / "study" / "cache").resolve()
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == before  # restored after the run
    with pytest.raises(ConfigError, match="trainer.compile.*'maybe'"):
        load_config(None, ["trainer.compile=maybe"])
