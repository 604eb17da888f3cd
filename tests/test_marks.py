"""The embedded anchor marks (swin_lit.data.marks): the layout rules that make each switch necessary, recomputed
from the rendered pixels, determinism, resolution freedom, and the data module reading it."""

import numpy as np
import pytest
import torch

from swin_lit.config import load_config
from swin_lit.data import DataConfig, SwinDataModule
from swin_lit.data.classes import MARKS_CLASS_NAMES, MARKS_DENSE_CLASS_NAMES
from swin_lit.data.marks import ANCHOR_RGB, MARK_RGB, AnchorMarks, render
from swin_lit.data.seg_datamodule import SegDataModule
from swin_lit.typed import ConfigError


def _cells(images: torch.Tensor) -> torch.Tensor:
    """Mean colour of each of the 8x8 cells, (B, 8, 8, 3) in [0, 1]."""
    b, c, s, _ = images.shape
    cell = s // 8
    return images.float().div(255).reshape(b, c, 8, cell, 8, cell).mean((3, 5)).permute(0, 2, 3, 1)


def _find(cells: torch.Tensor, palette: torch.Tensor) -> list[tuple[int, int, int]]:
    """(palette index, x, y) of every cell within 0.1 of a palette colour (the noise averages out per cell)."""
    dist = (cells[:, :, None, :] - palette[None, None]).abs().amax(-1)  # (8, 8, P)
    ys, xs, ps = torch.nonzero(dist < 0.1, as_tuple=True)
    return [(int(p), int(x), int(y)) for p, x, y in zip(ps, xs, ys)]


def test_every_scene_follows_the_layout_and_its_label():
    ds = AnchorMarks(240, 32, seed=3, split="train", noise=0.0)
    images, labels = ds.render_all()
    assert labels.tolist() == [i % 12 for i in range(240)]
    for img, label in zip(_cells(images), labels.tolist()):
        (anchor, ax, ay), = _find(img, ANCHOR_RGB)
        marks = _find(img, MARK_RGB)
        assert len(marks) == 2
        (h, hx, hy), = [m for m in marks if m[2] == ay]  # the horizontal neighbour shares the anchor's row
        (v, vx, vy), = [m for m in marks if m[1] == ax]
        assert 2 <= ax <= 5 and 2 <= ay <= 5, "the anchor lies in the cells the centre shifted window covers"
        assert abs(hx - ax) == 2 and (hx < 4) != (ax < 4), "across the vertical centre line: another plain window"
        assert abs(vy - ay) == 2 and (vy < 4) != (ay < 4)
        assert h != v, "the decoy has another colour"
        assert label == anchor * 4 + h and MARKS_CLASS_NAMES[label].split(":") == [
            ("white", "black", "cyan")[anchor], ("red", "green", "blue", "yellow")[h]]


def test_the_plain_windows_separate_the_marks_and_the_shifted_window_joins_them():
    # window 4 on 8x8 tokens: plain windows are the quadrants; the shifted window (shift 2) covers cells 2..5
    scene = AnchorMarks(120, 32).layout(np.arange(120))
    quadrant = lambda x, y: (x // 4, y // 4)  # noqa: E731
    for ax, ay, hx, vy in zip(*(scene[k].tolist() for k in ("ax", "ay", "hx", "vy"))):
        assert len({quadrant(ax, ay), quadrant(hx, ay), quadrant(ax, vy)}) == 3
        assert all(2 <= c <= 5 for c in (ax, ay, hx, vy))


def test_scenes_are_deterministic_resolution_free_and_split_apart():
    a = AnchorMarks(50, 32, seed=1, split="test")
    assert torch.equal(a.render([7, 3])[0], a.render_all()[0][[7, 3]])
    assert not torch.equal(a.render_all()[0], AnchorMarks(50, 32, seed=1, split="val").render_all()[0])
    scene = a.layout(np.arange(50))
    small, large = render(scene, 32, noise=0.0), render(scene, 64, noise=0.0)
    assert torch.equal(large[:, :, ::2, ::2], small), "64 px is the 32 px scene with 2x2 pixels per pixel"
    with pytest.raises(IndexError):
        a.render([50])


def test_the_noise_is_a_bank_field_rolled_per_image_so_no_pixel_has_fixed_noise_values():
    from swin_lit.data.synthetic import NOISE_BANK, _noise_bank

    ds = AnchorMarks(400, 16, seed=2)
    scene = ds.layout(np.arange(400))
    noisy, clean = render(scene, 16, seed=2), render(scene, 16, seed=2, noise=0.0)
    noise = (noisy.float() - clean.float()) / 255  # (B, 3, 16, 16), up to the uint8 rounding and clamping
    bank = _noise_bank(2, 16, ds.noise)
    field = (scene["noise"] * NOISE_BANK).long()
    shift = (scene["noise_roll"] * 256).long()
    for i in range(0, 400, 37):  # each image's noise is its field, rolled by (shift // 16, shift % 16)
        dy, dx = divmod(int(shift[i]), 16)
        want = bank[field[i]].roll((-dy, -dx), dims=(1, 2))
        ok = (noisy[i] > 0) & (noisy[i] < 255) & (clean[i] > 0) & (clean[i] < 255)  # not clamped
        assert (noise[i] - want)[ok].abs().max() < 1 / 255 + 1e-6
    # the images that share a field: their noise at one pixel takes many values, not one
    same = torch.nonzero(field == field[0]).flatten()
    assert len(same) >= 3 and noise[same, 0, 0, 0].unique().numel() == len(same)


def test_the_data_module_reads_marks_and_refuses_a_root():
    dm = SwinDataModule(DataConfig(source="marks", train_size=24, val_size=12, test_size=12), img_size=32)
    dm.setup()
    assert dm.num_classes == 12 and dm.class_names == MARKS_CLASS_NAMES
    assert dm.splits["train"][0].shape == (24, 3, 32, 32)
    with pytest.raises(ConfigError, match="root.*not used by source 'marks'"):
        DataConfig(source="marks", root="/tmp")


def test_dense_labels_mark_the_anchor_with_the_class_and_each_neighbour_with_its_side():
    ds = AnchorMarks(60, 32, seed=2, split="val", noise=0.0)
    images, maps = ds.render_dense(np.arange(60))
    assert torch.equal(images, ds.render_all()[0]), "the dense task labels the classification task's images"
    assert len(MARKS_DENSE_CLASS_NAMES) == 15 and MARKS_DENSE_CLASS_NAMES[0] == "background"
    for img, lab, label in zip(_cells(images), maps, ds.labels().tolist()):
        (_, ax, ay), = _find(img, ANCHOR_RGB)
        block = lambda x, y, lab=lab: lab[4 * y:4 * y + 4, 4 * x:4 * x + 4]  # noqa: E731 - cell (x, y)'s pixels
        assert (block(ax, ay) == 1 + label).all()
        assert MARKS_DENSE_CLASS_NAMES[1 + label] == f"anchor-{MARKS_CLASS_NAMES[label]}"
        for _, x, y in _find(img, MARK_RGB):
            side = "horizontal" if y == ay else "vertical"
            assert (block(x, y) == MARKS_DENSE_CLASS_NAMES.index(f"neighbour-{side}")).all()
        assert (lab == 0).sum() == 32 * 32 - 3 * 16, "every other pixel is background"
    # resolution-free: at 64 px every label covers the same cells, 2x2 pixels per 32-px pixel
    assert torch.equal(ds.render_dense([5], 64)[1][0], maps[5].repeat_interleave(2, 0).repeat_interleave(2, 1))


def test_the_dense_config_reads_marks_with_the_linear_head_and_refuses_augmentation():
    cfg = load_config("configs/marks_dense.yaml")
    assert (cfg.task, cfg.data.source, cfg.head.kind, cfg.model.num_classes) == ("segmentation", "marks", "linear", 15)
    dm = SegDataModule(DataConfig(source="marks", train_size=12, val_size=6, test_size=6), seed=0,
                       img_size=32)
    dm.setup()
    assert dm.class_names == MARKS_DENSE_CLASS_NAMES and dm.splits["train"].stacked()[1].max() <= 14
    with pytest.raises(ConfigError, match=r"^data\.augment: .*remove data\.augment for source 'marks'"):
        load_config("configs/marks_dense.yaml", ["data.augment.crop=[32,32]"])
