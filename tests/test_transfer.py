"""``swin-lit transfer``: a trained run moved to larger images/windows, evaluated and fine-tuned."""

import json

import pytest
from helpers.training import TINY, StopAt

from swin_lit.cli import main
from swin_lit.config import load_config
from swin_lit.train.runs import load_trained_model, train
from swin_lit.train.transfer import finetune_config, transfer_cell

# 16 px, patch 2: 8x8 tokens in windows of 4 -> targets 24:6 (12x12 tokens) and 32:8.
CPB = TINY + ["model.relative=cpb_log", "model.norm=res_post", "model.attention=cosine"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    run_dir, _ = train(load_config(None, CPB), out)
    return run_dir


def test_transfer_command_evaluates_every_method_and_target(trained, capsys):
    assert main(["transfer", str(trained), "--to", "24:6", "--to", "32:8"]) == 0
    rows = json.loads((trained / "transfer.json").read_text())["rows"]
    assert sorted((r["img_size"], r["method"]) for r in rows) == [
        (24, "extrapolate"), (24, "renormalize"), (32, "extrapolate"), (32, "renormalize")]
    assert all(0 <= r["top1"] <= 100 and r["top1_ft"] is None for r in rows)


def test_extrapolate_and_renormalize_differ_beyond_the_training_window(trained):
    ext = transfer_cell(trained, 32, 8, "extrapolate")
    ren = transfer_cell(trained, 32, 8, "renormalize")
    assert ext["loss"] != ren["loss"]


@pytest.mark.parametrize("args,named", [
    (["--to", "30:6"], "30:6"),  # 15x15 tokens: a window of 6 does not tile them
    (["--to", "33:6"], "33"),  # the patch (2) does not divide the image
    (["--to", "24:6", "--method", "bicubic"], "bicubic"),  # a table method on a CPB run
    (["--to", "24"], "IMG:WINDOW"),
])
def test_bad_targets_fail_before_any_work(trained, capsys, args, named):
    assert main(["transfer", str(trained), *args]) == 2
    assert named in capsys.readouterr().err


def test_a_run_without_a_finished_checkpoint_is_refused(tmp_path, capsys):
    (tmp_path / "run").mkdir()
    assert main(["transfer", str(tmp_path / "run"), "--to", "24:6"]) == 2
    assert "not a run folder" in capsys.readouterr().err


def test_finetuning_resumes_after_a_stop(trained, tmp_path):
    cfg = load_config(None, CPB)
    moved = cfg.model.replace(img_size=24, window_size=6, pretrained_window_sizes=(4, 4))
    ft = finetune_config(cfg, trained, moved, epochs=2, lr=2e-4)
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(ft, tmp_path / "a", callbacks=[StopAt(9)])
    _, resumed = train(ft, tmp_path / "a")
    _, reference = train(ft, tmp_path / "b")
    assert resumed["history"] == reference["history"] and resumed["test"] == reference["test"]


def test_finetuning_starts_from_the_trained_weights(trained, tmp_path):
    """One fine-tuning step at a tiny learning rate stays next to the transferred weights."""
    import torch

    from swin_lit.models.transfer import transfer

    cfg = load_config(None, CPB)
    moved = transfer(load_trained_model(trained), 24, 6, "extrapolate")
    ft = finetune_config(cfg, trained, moved.cfg, epochs=1, lr=1e-9)
    ft_dir, _ = train(ft, tmp_path)
    tuned = load_trained_model(ft_dir, which="last")
    for (name, a), b in zip(moved.state_dict().items(), tuned.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-5), name
