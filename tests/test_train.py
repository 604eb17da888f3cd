"""Training one variant end to end: outputs, resume, determinism, bad input."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.clock import FakeClock
from helpers.training import TINY, StopAt, Ticks
from PIL import Image

from swin_lit.cli import main
from swin_lit.config import load_config
from swin_lit.train.module import RunModule
from swin_lit.train.runs import train


def tiny_config(*extra):
    return load_config(None, TINY + list(extra))


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The record of one tiny run (seed 0) that was never stopped, trained once for the tests that compare a run
    against it, on a fake training clock that moves 1 s per training batch and 100 s per validation or test
    batch (what the resume test's ``Ticks`` do), so its training time is known exactly: 12 s for 12 batches."""
    clock = FakeClock()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(RunModule, "clock", staticmethod(clock))
        _, record = train(tiny_config(), tmp_path_factory.mktemp("uninterrupted"),
                          callbacks=[Ticks(clock, train=1.0, other=100.0)])
    return record


def test_tiny_run_end_to_end(tmp_path, capsys):
    args = ["train", "--out", str(tmp_path)] + [a for o in TINY for a in ("--set", o)]
    assert main(args) == 0
    run_dir = Path(capsys.readouterr().out.strip().splitlines()[-1])
    record = json.loads((run_dir / "result.json").read_text())
    for split in ("val", "test"):
        assert set(record[split]) == {"top1", "top5", "loss", "ece"}
        assert 0.0 <= record[split]["top1"] <= 100.0 and record[split]["top5"] >= record[split]["top1"]
    assert record["epochs"] == 2 and len(record["history"]) == 2
    assert record["params"] > 0 and record["flops"] > 0 and record["train_images_per_s"] > 0
    assert record["eval_images_per_s"] > 0  # the test loop alone, not the checkpoint load around it
    assert record["config_hash"] == tiny_config().hash() and record["seed"] == 0
    assert {"torch", "lightning"} <= set(record["versions"])
    assert (run_dir / "config.yaml").is_file()
    assert (run_dir / "checkpoints" / "best.ckpt").is_file() and (run_dir / "checkpoints" / "last.ckpt").is_file()

    # TensorBoard: scalars and the hparams linked to the final metrics (no hp_metric placeholder)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = list((run_dir / "tensorboard").rglob("events.out.tfevents.*"))
    assert events
    tags, plugins = set(), set()
    for path in events:
        acc = EventAccumulator(str(path), size_guidance={"scalars": 0})
        acc.Reload()
        tags |= set(acc.Tags()["scalars"])
        try:
            plugins |= set(acc.PluginTagToContent("hparams"))
        except KeyError:  # this event file holds no hparams
            pass
    assert {"val/top1", "val/loss", "train/loss", "hp/val_top1", "hp/test_top1"} <= tags
    assert "hp_metric" not in tags
    assert "_hparams_/session_start_info" in plugins

    # the same command again: finished, nothing done
    mtime = (run_dir / "result.json").stat().st_mtime_ns
    assert main(args) == 0
    assert "already finished" in capsys.readouterr().out
    assert (run_dir / "result.json").stat().st_mtime_ns == mtime


def test_same_config_and_seed_give_same_metrics(tmp_path, uninterrupted):
    a = uninterrupted  # the same config and seed, trained by the fixture (its fake clock changes no metric)
    _, b = train(tiny_config(), tmp_path / "b")
    assert a["val"] == b["val"] and a["test"] == b["test"] and a["history"] == b["history"]
    _, c = train(tiny_config("seed=1"), tmp_path / "c")
    assert c["history"] != a["history"]


@pytest.mark.parametrize("stop_at", [6, 9])  # the last batch of epoch 0 (before its validation); mid epoch 1
def test_resume_after_a_stop_equals_the_uninterrupted_run(tmp_path, stop_at, monkeypatch, uninterrupted):
    # The training clock is a fake that moves 1 s per training batch and 100 s per validation or test batch, so the
    # training time a run reports is known exactly: 1 s per training batch that counts, nothing for validation,
    # testing or the time the run was down.
    clock = FakeClock()
    monkeypatch.setattr(RunModule, "clock", staticmethod(clock))
    ticks = Ticks(clock, train=1.0, other=100.0)
    cfg = tiny_config()  # 6 batches per epoch, last.ckpt every 2 steps
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(cfg, tmp_path, callbacks=[ticks, StopAt(stop_at)])
    run_dir = tmp_path / cfg.run_id()
    assert not (run_dir / "result.json").exists()
    import torch

    saved = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)
    assert saved["global_step"] == {6: 4, 9: 8}[stop_at]  # never a checkpoint between a last batch and its val
    # The training time up to the checkpoint: its batches, 1 s each (validation's 100 s ticks left out).
    assert saved["swin_lit"]["train_seconds"] == saved["global_step"]
    clock.advance(10_000)  # the run is down: this must not count as training time
    _, record = train(cfg, tmp_path, callbacks=[ticks])
    assert record["epochs"] == 2 and [h["epoch"] for h in record["history"]] == [0, 1]
    assert (run_dir / "result.json").is_file()
    # exactly the run that was never stopped (the fixture's, on its own fake clock): same batches, same random draws
    assert record["history"] == uninterrupted["history"]
    assert record["val"] == uninterrupted["val"] and record["test"] == uninterrupted["test"]
    # Throughput counts only the training that ran, summed over both processes: the same 12 batches of 32
    # images as the run that was never stopped. The steps after the last checkpoint ran twice but count once
    # (the checkpoint's count and time restart from there), so both runs report 12 s of training.
    assert record["train_time_s"] == uninterrupted["train_time_s"] == 12.0
    assert record["train_images_per_s"] == uninterrupted["train_images_per_s"] == 12 * 32 / 12.0


def test_compiled_run_matches_the_eager_run(tmp_path, monkeypatch):
    """``trainer.compile: true`` (torch.compile, inductor) trains the same model: the same losses up to float
    rounding, and a checkpoint that loads into a plain, uncompiled model. ``auto`` leaves this tiny run eager;
    the records say which path ran, and the compiled run marks its architecture in inductor's cache."""
    import torch
    from torch._dynamo.utils import counters

    from swin_lit.train.compile import architecture_key
    from swin_lit.train.runs import _device_name, load_trained_model

    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "default-cache"))  # no marker of this machine's
    one_stage = ("model.depths=[2]", "model.num_heads=[2]")  # a plain and a shifted block: a short compile
    eager_cfg = tiny_config("trainer.max_epochs=1", *one_stage)
    assert eager_cfg.trainer.compile == "auto"
    eager_dir, eager = train(eager_cfg, tmp_path / "eager")
    assert eager["compile"]["path"] == "eager" and eager["compile"]["compile_s"] is None
    assert eager["compile"]["reason"].startswith("auto: ") and "< 20" in eager["compile"]["reason"]
    counters.clear()
    compiled_cfg = tiny_config("trainer.max_epochs=1", "trainer.compile=true", *one_stage)
    assert compiled_cfg.hash() == eager_cfg.hash()  # one experiment, two ways to compute it
    cache = tmp_path / "inductor"
    compiled_dir, compiled = train(compiled_cfg, tmp_path / "compiled", compile_cache=cache)
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(tmp_path / "default-cache")  # restored after the run
    assert counters["stats"]["unique_graphs"] >= 2  # a training and an eval graph were really compiled
    assert compiled["compile"]["path"] == "compiled" and compiled["compile"]["reason"] == "trainer.compile: true"
    assert compiled["compile"]["compile_s"] > 1.0 and not compiled["compile"]["warm"]
    marker = cache / "swin_lit_compiled" / architecture_key(compiled_cfg, _device_name("cpu"), "32-true")
    assert json.loads(marker.read_text())["compile_s"] == compiled["compile"]["compile_s"]
    assert any(p.is_file() for p in cache.rglob("*") if p.parent.name != "swin_lit_compiled")  # inductor's own files
    assert json.loads((compiled_dir / "compile.json").read_text())["compiled"]  # the plan a resume reuses
    for key in ("train_loss", "val_loss"):
        assert compiled["history"][0][key] == pytest.approx(eager["history"][0][key], rel=1e-4)
    assert compiled["test"]["loss"] == pytest.approx(eager["test"]["loss"], rel=1e-4)
    x = torch.randn(4, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(load_trained_model(compiled_dir)(x), load_trained_model(eager_dir)(x),
                                   rtol=1e-3, atol=1e-4)


def _write_png(path, size=8, value=128):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (size, size), (value, value // 2, 255 - value)).save(path)


def _folder_args(root, *extra):
    return ["train", "--out", str(root / "out"), "--set", "data.source=folder", "--set", f"data.root={root / 'data'}",
            "--set", "model.num_classes=2"] + [a for o in TINY + list(extra) for a in ("--set", o)]


@pytest.mark.parametrize("case", ["missing", "empty", "empty_class", "corrupt"])
def test_bad_data_fails_early_with_exit_2(tmp_path, capsys, case):
    data = tmp_path / "data"
    if case != "missing":
        data.mkdir()
    if case in ("empty_class", "corrupt"):
        for i in range(4):
            _write_png(data / "train" / "cat" / f"{i}.png")
        (data / "train" / "dog").mkdir(parents=True)
    if case == "corrupt":
        for i in range(4):
            _write_png(data / "train" / "dog" / f"{i}.png")
        (data / "train" / "dog" / "broken.png").write_bytes(b"not a png at all")
    assert main(_folder_args(tmp_path)) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "error" in err
    expected = {"missing": str(data), "empty": str(data), "empty_class": "dog", "corrupt": "broken.png"}[case]
    assert expected in err
    assert not list((tmp_path / "out").rglob("result.json"))


def test_image_folder_run(tmp_path):
    for split, n in (("train", 12), ("test", 4)):
        for c, value in (("cat", 40), ("dog", 220)):
            for i in range(n):
                _write_png(tmp_path / "data" / split / c / f"{i}.png", size=20, value=value)
    assert main(_folder_args(tmp_path, "data.batch_size=8")) == 0
    record = json.loads(next((tmp_path / "out").rglob("result.json")).read_text())
    assert record["test"]["top1"] >= 0


@pytest.mark.parametrize("override,named", [
    ("model.shfit=none", "model.shfit"),
    ("model.shift=diagonal", "'cyclic', 'none'"),
    ("trainer.max_epochs=two", "trainer.max_epochs"),
    ("model.num_heads=[3, 4, 8]", "num_heads[0]"),
    ("model.img_size=33", "img_size"),
])
def test_bad_config_fails_with_exit_2_naming_the_key(tmp_path, capsys, override, named):
    assert main(["train", "--out", str(tmp_path), "--set", override]) == 2
    err = capsys.readouterr().err
    assert named in err and len(err.strip().splitlines()) == 1
    assert not any(tmp_path.iterdir())


@pytest.mark.slow
def test_ddp_two_processes_on_cpu(tmp_path):
    """devices/strategy pass through to Lightning: two gloo processes train one cell."""
    cmd = [sys.executable, "-m", "swin_lit.cli", "train", "--out", str(tmp_path)]
    for o in TINY + ["trainer.devices=2", "trainer.strategy=ddp", "trainer.deterministic=false"]:
        cmd += ["--set", o]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    record = json.loads(next(tmp_path.rglob("result.json")).read_text())
    assert record["epochs"] == 2


def test_num_classes_defaults_to_the_data(tmp_path, capsys):
    """model.num_classes left out is the number of classes in the data: the resolved config shows it and the
    run hash holds it; an explicit value that differs is an error naming both numbers, before any work."""
    for c in ("cat", "dog", "owl"):
        for i in range(4):
            _write_png(tmp_path / "data" / "train" / c / f"{i}.png", size=16, value=40 * i)
    folder = ["data.source=folder", f"data.root={tmp_path / 'data'}"]
    assert load_config(None, folder).model.num_classes == 3
    assert load_config(None, folder).hash() == load_config(None, [*folder, "model.num_classes=3"]).hash()
    assert load_config(None).model.num_classes == 8  # the embedded scenes
    assert main(["train", "--print-config", *[a for o in folder for a in ("--set", o)]]) == 0
    assert "  num_classes: 3\n" in capsys.readouterr().out
    args = ["train", "--out", str(tmp_path / "out")] + [a for o in TINY + folder + ["model.num_classes=5"]
                                                         for a in ("--set", o)]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "has 5 classes but the data has 3" in err
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").rglob("result.json"))
