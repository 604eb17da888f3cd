"""Mask and position-bias figures: the data come from the model's own window code; files are real PNGs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers.pictures import assert_drawn

from swin_lit.cli import main
from swin_lit.models import build
from swin_lit.models.windows import attention_mask
from swin_lit.report.viz import bias_tables, draw_mask, draw_position_bias, mask_data

TINY = dict(img_size=32, patch_size=2, window_size=4, embed_dim=16, depths=(2, 2), num_heads=(2, 4), num_classes=10)


def test_mask_data_follows_the_model_mask():
    d = mask_data(8, 4)
    assert d["shift"] == 2 and d["padded"] == 8
    assert len(np.unique(d["labels"])) == 9
    masks = d["masks"]
    assert masks.shape == (4, 16, 16)
    assert np.array_equal(masks, attention_mask(8, 4, 2).numpy() == 0)
    assert masks[0].all()  # the top-left window holds one region only
    assert (~masks[3]).sum() == 16 * 16 - 4 * 4 * 4  # the corner window: 4 regions of 4 tokens


def test_draw_mask_png(tmp_path):
    path = draw_mask(8, 4, tmp_path / "mask.png")
    w, h = assert_drawn(path)
    assert 1000 <= w <= 1300 and 900 <= h <= 1000
    assert assert_drawn(draw_mask(14, 7, tmp_path / "m7.png", shift=3))[0] > 300  # 4 windows, odd shift
    assert assert_drawn(draw_mask(6, 4, tmp_path / "pad.png"))[0] > 300  # padded map
    with pytest.raises(ValueError, match="shift"):
        mask_data(8, 4, shift=4)


def test_viz_mask_cli(tmp_path, capsys):
    out = tmp_path / "fig.png"
    assert main(["viz", "mask", "--size", "16", "--window", "4", "--out", str(out)]) == 0
    assert assert_drawn(out)[0] > 300 and str(out) in capsys.readouterr().out
    assert main(["viz", "mask", "--size", "8", "--window", "4", "--shift", "5", "--out", str(out)]) == 2
    assert main(["viz", "bias", str(tmp_path / "no-run")]) == 2


@pytest.mark.parametrize("relative", ["table", "cpb_log", "none"])
def test_draw_position_bias(tmp_path, relative):
    model = build(dict(TINY, relative=relative))
    path = draw_position_bias(model, tmp_path / f"{relative}.png", title=f"tiny {relative}")
    w, h = assert_drawn(path)
    assert w > 300 and h > 200
    tables = bias_tables(model)
    labels = [label for label, _ in tables]
    assert labels == ["stage 1 block 1", "stage 1 block 2", "stage 2 block 1", "stage 2 block 2"]
    if relative == "none":
        assert all(t is None for _, t in tables)
        return
    block = model.layers[1].blocks[0]
    layout = model.layout(model.cfg.grid)[1].blocks[0]
    table = tables[2][1]
    assert table.shape == (4, 7, 7)  # heads, 2M-1, 2M-1
    # (heads, N, N) the model adds to the logits
    full = block.attn.relative_bias(layout.window, layout.bias_constants, layout.relative_index).detach()
    # query (0, 0) vs key (3, 3): offset (dh, dw) = (-3, -3), the grid's top-left corner
    assert torch.allclose(torch.from_numpy(table[:, 0, 0]), full[:, 0, 15])
    # query (3, 0) vs key (0, 2): offset (3, -2)
    assert torch.allclose(torch.from_numpy(table[:, 6, 1]), full[:, 12, 2])


def test_viz_bias_cli_with_a_loaded_run(tmp_path, monkeypatch, capsys):
    """The command draws what ``load_trained_model`` returns (stubbed here; the loader lives in swin_lit.train)."""
    import sys
    import types

    calls = []

    def load_trained_model(run_dir, which="best"):
        calls.append((run_dir, which))
        return build(dict(TINY, relative="table"))

    stub = types.SimpleNamespace(load_trained_model=load_trained_model)
    monkeypatch.setitem(sys.modules, "swin_lit.train.runs", stub)
    run = tmp_path / "run"
    run.mkdir()
    assert main(["viz", "bias", str(run), "--out", str(tmp_path / "figs")]) == 0
    assert calls == [(run, "best")]
    assert assert_drawn(tmp_path / "figs" / "position_bias.png")[0] > 300
    assert "position_bias.png" in capsys.readouterr().out
