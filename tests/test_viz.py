"""Mask and position-bias figures: the data come from the model's own window code; files are real PNGs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers.pictures import assert_drawn

from swin_lit.cli import main
from swin_lit.models import build
from swin_lit.models.registry import SHIFTS
from swin_lit.models.windows import attention_mask
from swin_lit.report.viz import MASKED, bias_tables, draw_mask, draw_position_bias, mask_data

TINY = dict(img_size=32, patch_size=2, window_size=4, embed_dim=16, depths=(2, 2), num_heads=(2, 4), num_classes=10)


def test_mask_data_follows_the_model_mask():
    d = mask_data(8, 4)
    assert d["kind"] == "cyclic" and d["shift"] == 2 and d["padded"] == (8, 8) and d["roll"] == 2
    assert len(np.unique(d["labels"])) == 9
    masks = d["masks"]
    assert masks.shape == (4, 16, 16)
    assert np.array_equal(masks, attention_mask(8, 4, 2).numpy() == 0)
    assert masks[0].all()  # the top-left window holds one region only
    assert (~masks[3]).sum() == 16 * 16 - 4 * 4 * 4  # the corner window: 4 regions of 4 tokens
    # the slots as the partition reads them: the map rolled up and left by 2 (token 2 * 8 + 2 in the corner)
    assert d["tokens"][0, 0] == 18 and d["tokens"][-1, -1] == 8 + 1
    pad = mask_data(8, 4, kind="pad")  # offset grid: 2 rows/columns of padding at the top/left, 12 x 12
    assert pad["padded"] == (12, 12) and pad["offset"] == (2, 2) and pad["labels"] is None
    assert pad["tokens"][2, 2] == 0 and pad["tokens"][0, 0] == 64  # 64: padding
    assert np.array_equal(pad["masks"], attention_mask(8, 4, 2, "pad").numpy() == 0)
    none = mask_data(8, 4, kind="none")
    assert none["shift"] == 0 and none["labels"] is None and none["masks"].all()


@pytest.mark.parametrize("name", SHIFTS.names())
@pytest.mark.parametrize("size,window", [(8, 4), (10, 4), (9, 3)], ids=["tiled", "padded", "odd"])
def test_every_shift_kinds_mask_data_are_the_models(name, size, window):
    """The picture's data are the built model's shifted block (its windows and mask), for every registered kind."""
    cfg = dict(img_size=size, patch_size=1, window_size=window, embed_dim=8, depths=(2,), num_heads=(2,),
               shift=name, drop_path_rate=0.0)
    model = build(cfg)
    layout = model.layout(model.cfg.grid)[0].blocks[1]
    d = mask_data(size, window, kind=name)
    assert d["shift"] == model.cfg.stages()[0].shift
    assert np.array_equal(d["tokens"], window_partition_inverse(layout.gather, d["padded"], window))
    expected = np.ones_like(d["masks"]) if layout.mask is None else layout.mask.numpy() == 0
    assert np.array_equal(d["masks"], expected)  # drawn: test_the_mask_picture_draws_the_kinds_regions_and_masks


def window_partition_inverse(gather, padded, window):
    """(nW * N,) window slots -> (Hp, Wp) grid, by hand."""
    Hp, Wp = padded
    grid = np.zeros((Hp, Wp), dtype=np.int64)
    for slot, token in enumerate(gather.tolist()):
        w, i = divmod(slot, window * window)
        r, c = divmod(w, Wp // window)
        grid[r * window + i // window, c * window + i % window] = token
    return grid


def colour_counts(path, colours) -> list[int]:
    """How many pixels of the PNG are exactly each colour (matplotlib colour specs)."""
    from matplotlib.colors import to_rgb
    from PIL import Image

    pixels = np.asarray(Image.open(path).convert("RGB")).reshape(-1, 3).astype(int)
    return [int((pixels == np.round(255 * np.array(to_rgb(c)))).all(1).sum()) for c in colours]


def test_the_mask_picture_draws_the_kinds_regions_and_masks(tmp_path):
    """Pixels: the cyclic shift's 9 region colours all drawn, its masked pairs dark; ``pad`` draws no region
    colour but its masked padding keys; ``none`` draws neither (an 8 x 8 map in 4 x 4 windows needs no mask)."""
    import matplotlib

    # the regions' colours but tab10's grey (region 7), which anti-aliased black text also gives here and there
    regions = [c for i, c in enumerate(matplotlib.colormaps["tab10"].colors[:9]) if i != 7]
    counts = {kind: colour_counts(draw_mask(8, 4, tmp_path / f"{kind}.png", kind=kind), [*regions, MASKED])
              for kind in ("cyclic", "pad", "none")}
    assert all(n > 1000 for n in counts["cyclic"])  # every region and the masked pairs
    assert max(counts["pad"][:8]) < 20 and counts["pad"][8] > 10_000
    # no region, nothing masked (dark grey also edges the black text: a few hundred pixels against ~50,000)
    assert max(counts["none"][:8]) < 20 and counts["none"][8] < 0.02 * counts["cyclic"][8]


def test_draw_mask_png(tmp_path):
    path = draw_mask(8, 4, tmp_path / "mask.png")
    w, h = assert_drawn(path)
    assert 1000 <= w <= 1300 and 900 <= h <= 1000
    assert assert_drawn(draw_mask(14, 7, tmp_path / "m7.png", shift=3))[0] > 300  # 4 windows, odd shift
    assert assert_drawn(draw_mask(6, 4, tmp_path / "pad.png"))[0] > 300  # padded map
    with pytest.raises(ValueError, match="shift"):
        mask_data(8, 4, shift=4)
    with pytest.raises(ValueError, match="shift kind 'none' has no shifted blocks"):
        mask_data(8, 4, shift=2, kind="none")
    with pytest.raises(ValueError, match="shift: got 'diagonal'; allowed values are 'cyclic', 'none', 'pad'"):
        mask_data(8, 4, kind="diagonal")


def test_viz_mask_cli(tmp_path, capsys, monkeypatch):
    out = tmp_path / "fig.png"
    assert main(["viz", "mask", "--size", "16", "--window", "4", "--out", str(out)]) == 0
    assert assert_drawn(out)[0] > 300 and str(out) in capsys.readouterr().out
    assert main(["viz", "mask", "--size", "8", "--window", "4", "--shift", "5", "--out", str(out)]) == 2
    assert main(["viz", "mask", "--size", "8", "--window", "4", "--kind", "diagonal"]) == 2
    assert "--kind: got 'diagonal'" in capsys.readouterr().err
    monkeypatch.chdir(tmp_path)  # the default name says the kind and the shift it took
    assert main(["viz", "mask", "--size", "8", "--window", "4", "--kind", "pad"]) == 0
    assert_drawn(tmp_path / "mask_pad_H8_M4_S2.png")
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
