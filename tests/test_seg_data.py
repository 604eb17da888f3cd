"""Segmentation readers: CamVid and ADE20K layouts written as small real PNG / JPEG files, the label codings, the
decode cache, and one DataError line naming the file for each kind of bad input."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from swin_lit.data import DataError
from swin_lit.data import segmentation as seg
from swin_lit.data.segmentation import CAMVID_CLASSES, IGNORE_INDEX, read_ade20k, read_camvid


@pytest.fixture(autouse=True)
def _user_cache(tmp_path, monkeypatch):
    """Caches go to the user cache folder: a fresh one per test."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))

def _save_pair(image_path: Path, label_path: Path, label: np.ndarray, image_size=None, mode="L") -> None:
    """An RGB image whose red channel encodes the label (so pairs can be checked) and its 8-bit label map."""
    h, w = label.shape
    rgb = np.zeros((h, w, 3), np.uint8)
    rgb[..., 0] = label * 10
    rgb[..., 1] = np.arange(w, dtype=np.uint8)[None] * 3
    image_path.parent.mkdir(parents=True, exist_ok=True)
    label_path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(rgb)
    if image_size is not None:
        image = image.resize(image_size)
    if image_path.suffix == ".jpg":
        image.save(image_path, quality=100, subsampling=0)
    else:
        image.save(image_path)
    if mode == "P":
        lab = Image.fromarray(label, mode="L").convert("P")  # palette indices equal to the grey values
        lab.putpalette([v for i in range(256) for v in (i, 255 - i, 0)])
        lab.save(label_path)
    else:
        Image.fromarray(label).convert(mode).save(label_path)


def _label(seed: int, h: int = 6, w: int = 8, values=(0, 1, 2, 3, 10, 11)) -> np.ndarray:
    return np.random.default_rng(seed).choice(np.array(values, np.uint8), size=(h, w))


def _camvid(root: Path, counts=(3, 2, 2), size=(6, 8)) -> Path:
    for split, n in zip(("train", "val", "test"), counts):
        for i in range(n):
            _save_pair(root / split / f"f{i}.png", root / f"{split}annot" / f"f{i}.png", _label(i, *size))
    return root


def _ade20k(root: Path, sizes=((6, 8), (5, 9), (7, 4)), val=True) -> Path:
    for split, n in (("training", len(sizes)), ("validation", 2 if val else 0)):
        for i in range(n):
            label = _label(i, *sizes[i], values=(0, 1, 2, 5, 150))
            _save_pair(root / "images" / split / f"ADE_{i}.jpg", root / "annotations" / split / f"ADE_{i}.png", label)
    return root


def _raises(match: str, fn, *args, **kwargs) -> str:
    with pytest.raises(DataError, match=match) as info:
        fn(*args, **kwargs)
    assert "\n" not in str(info.value)
    return str(info.value)


# -- CamVid -----------------------------------------------------------------------------------------

def test_camvid_layout(tmp_path):
    _camvid(tmp_path / "camvid")
    data = read_camvid(tmp_path, cache_dir=tmp_path / "cache")  # found in the camvid/ subfolder
    assert data.class_names == CAMVID_CLASSES and data.num_classes == 11 and data.ignore_index == IGNORE_INDEX
    assert [len(s) for s in (data.train, data.val, data.test)] == [3, 2, 2]
    assert data.train.names == ("f0", "f1", "f2") and data.train.size == (6, 8)
    images, labels = data.train.stacked()
    assert images.shape == (3, 6, 8, 3) and labels.shape == (3, 6, 8) and labels.dtype == np.uint8
    raw = _label(1)
    expected = np.where(raw == 11, IGNORE_INDEX, raw)  # void 11 -> 255, classes unchanged
    assert np.array_equal(data.train.label(1), expected)
    assert np.array_equal(data.train.image(1)[..., 0], raw * 10)  # the pair stays together, lossless PNG
    assert data.train.class_counts(11).sum() == (labels != IGNORE_INDEX).sum()


def test_camvid_without_val_and_test(tmp_path):
    data = read_camvid(_camvid(tmp_path / "c", counts=(2, 0, 0)), cache_dir=tmp_path / "cache")
    assert len(data.train) == 2 and data.val is None and data.test is None


def test_camvid_configurable_void(tmp_path):
    root = tmp_path / "c"
    _save_pair(root / "train" / "a.png", root / "trainannot" / "a.png", np.array([[0, 10, 255]], np.uint8))
    data = read_camvid(root, cache_dir=tmp_path / "cache", void=255)
    assert data.train.label(0).tolist() == [[0, 10, IGNORE_INDEX]]
    _raises(r"a\.png has value 255 that is neither a class nor the void label \(classes 0\.\.10, void 11\)",
            read_camvid, root, cache_dir=tmp_path / "cache")


def test_palette_label_maps_are_read_as_indices(tmp_path):
    root = tmp_path / "c"
    _save_pair(root / "train" / "a.png", root / "trainannot" / "a.png", _label(3), mode="P")
    assert Image.open(root / "trainannot" / "a.png").mode == "P"
    data = read_camvid(root, cache_dir=tmp_path / "cache")
    raw = _label(3)
    assert np.array_equal(data.train.label(0), np.where(raw == 11, IGNORE_INDEX, raw))


# -- ADE20K -----------------------------------------------------------------------------------------

def test_ade20k_layout_rectangular_sizes_and_shifted_labels(tmp_path):
    root = _ade20k(tmp_path / "ADEChallengeData2016")
    data = read_ade20k(tmp_path, cache_dir=tmp_path / "cache")
    assert data.test is None and len(data.train) == 3 and len(data.val) == 2
    assert data.num_classes == 150 and data.class_names[:2] == ("0", "1")  # the largest label, 150, is class 149
    assert data.train.size is None and data.train.shapes.tolist() == [[6, 8], [5, 9], [7, 4]]
    raw = _label(1, 5, 9, values=(0, 1, 2, 5, 150))
    assert np.array_equal(data.train.label(1), np.where(raw == 0, IGNORE_INDEX, raw.astype(np.int64) - 1))
    assert data.train.image(1).shape == (5, 9, 3) and data.train.image(2).shape == (7, 4, 3)
    red = data.train.image(1)[..., 0].astype(int)
    assert np.abs(red - raw.astype(int) * 10 % 256).max() < 40  # JPEG: the pair's image, within lossy noise
    _raises("stacked|differ in size", data.train.stacked)
    assert root.is_dir()


def test_ade20k_class_count_from_data_or_given(tmp_path):
    root = tmp_path / "ade"
    _save_pair(root / "images" / "training" / "a.jpg", root / "annotations" / "training" / "a.png",
               np.array([[0, 1, 4]], np.uint8))
    assert read_ade20k(root, cache_dir=tmp_path / "c1").num_classes == 4
    assert read_ade20k(root, cache_dir=tmp_path / "c2", num_classes=150).num_classes == 150
    _raises(r"a\.png has value 4 that is neither a class nor the void label \(classes 1\.\.3, void 0\)",
            read_ade20k, root, cache_dir=tmp_path / "c3", num_classes=3)


def test_ade20k_names_from_object_info(tmp_path):
    root = _ade20k(tmp_path / "ade", sizes=((4, 4),), val=False)
    (root / "objectInfo150.txt").write_text("Idx\tRatio\tTrain\tVal\tName\n" + "".join(
        f"{i + 1}\t0.1\t10\t2\t{'wall' if i == 0 else 'building, edifice' if i == 1 else f'thing{i}'}\n"
        for i in range(150)))
    data = read_ade20k(root, cache_dir=tmp_path / "cache")
    assert data.val is None and data.class_names[:3] == ("wall", "building", "thing2") and data.num_classes == 150


def test_max_side_shrinks_pairs_keeping_the_ratio(tmp_path):
    root = tmp_path / "c"
    label = np.repeat(np.repeat(_label(5, 4, 6), 10, 0), 10, 1)  # 40 x 60 in 10 x 10 blocks
    _save_pair(root / "train" / "a.png", root / "trainannot" / "a.png", label)
    data = read_camvid(root, cache_dir=tmp_path / "cache", max_side=30)
    small = data.train.label(0)
    assert small.shape == (20, 30) and data.train.image(0).shape == (20, 30, 3)
    assert set(np.unique(small)) <= set(np.unique(np.where(label == 11, IGNORE_INDEX, label)))


# -- cache ------------------------------------------------------------------------------------------

def test_cache_is_reused_and_invalidated(tmp_path, monkeypatch):
    root = _camvid(tmp_path / "c")
    listed = sorted(p.relative_to(root) for p in root.rglob("*"))
    first = read_camvid(root)
    assert len(list((tmp_path / "xdg" / "swin-lit").glob("c-*/camvid-*.npz"))) == 3  # the user cache folder
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == listed  # nothing written into the data folder
    calls = []
    real = seg.decode_rgb
    monkeypatch.setattr(seg, "decode_rgb", lambda path, max_side=None: calls.append(path) or real(path, max_side))
    second = read_camvid(root)
    assert calls == [] and np.array_equal(first.train.pixels, second.train.pixels)
    assert second.train.names == first.train.names and np.array_equal(second.val.label_pixels, first.val.label_pixels)
    os.utime(root / "valannot" / "f0.png", ns=(1, 1))  # a label map changed: val is decoded again, alone
    read_camvid(root)
    assert sorted(Path(p).name for p in calls) == ["f0.png", "f1.png"]
    calls.clear()
    read_camvid(root, max_side=4)  # another size limit is another cache entry
    assert len(calls) == 7


# -- bad input --------------------------------------------------------------------------------------

def test_missing_and_empty_folders(tmp_path):
    _raises("nowhere does not exist", read_camvid, tmp_path / "nowhere")
    (tmp_path / "x").mkdir()
    _raises("not a CamVid folder", read_camvid, tmp_path / "x")
    _raises("not an ADE20K folder", read_ade20k, tmp_path / "x")
    root = _camvid(tmp_path / "c", counts=(2, 0, 0))
    (root / "val").mkdir()
    _raises(r"has val/ but no valannot/", seg.scan_camvid, root)
    (root / "valannot").mkdir()
    _raises(r"folder .*val is empty", seg.scan_camvid, root)
    ade = _ade20k(tmp_path / "ade", val=False)
    (ade / "annotations" / "validation").mkdir(parents=True)
    _raises(r"images/validation does not exist", seg.scan_ade20k, ade)


def test_image_without_label_map(tmp_path):
    root = _camvid(tmp_path / "c")
    (root / "testannot" / "f1.png").unlink()
    message = _raises(r"image .*test/f1\.png has no label map .*testannot/f1\.png", read_camvid, root)
    assert "f1.png" in message


def test_label_map_without_image(tmp_path):
    root = _ade20k(tmp_path / "ade")
    (root / "images" / "validation" / "ADE_1.jpg").unlink()
    _raises(r"label map .*validation/ADE_1\.png has no image", read_ade20k, root)


def test_label_map_of_another_size(tmp_path):
    root = _camvid(tmp_path / "c")
    _save_pair(root / "val" / "odd.png", root / "valannot" / "odd.png", _label(9), image_size=(9, 6))
    _raises(r"label map .*valannot/odd\.png is 8x6 but its image .*val/odd\.png is 9x6", seg.scan_camvid, root)


def test_label_value_outside_the_classes_names_file_and_value(tmp_path, monkeypatch):
    root = _camvid(tmp_path / "c")
    _save_pair(root / "train" / "bad.png", root / "trainannot" / "bad.png", np.array([[3, 12, 40]], np.uint8))
    decoded = []
    monkeypatch.setattr(seg, "decode_rgb", lambda *a: decoded.append(a) or np.zeros((1, 1, 3), np.uint8))
    _raises(r"label map .*trainannot/bad\.png has value 12 \(and 1 more\) that is neither a class nor the void",
            read_camvid, root)
    assert decoded == []  # found before any image was decoded
    assert not list((root / ".swin_lit_cache").glob("*.npz"))


def test_label_map_that_is_not_single_channel(tmp_path):
    root = tmp_path / "c"
    _save_pair(root / "train" / "a.png", root / "trainannot" / "a.png", _label(0), mode="RGB")
    _raises(r"label map .*a\.png has mode RGB: expected an 8-bit single-channel PNG", seg.scan_camvid, root)


def test_corrupt_files(tmp_path):
    root = _camvid(tmp_path / "c")
    (root / "test" / "f0.png").write_bytes(b"not a png")
    _raises(r"cannot read image .*test/f0\.png", read_camvid, root)


def test_every_void_map_has_no_classes(tmp_path):
    root = tmp_path / "ade"
    _save_pair(root / "images" / "training" / "a.jpg", root / "annotations" / "training" / "a.png",
               np.zeros((3, 3), np.uint8))
    _raises("no labelled pixels", read_ade20k, root)


def test_format_dispatch(tmp_path):
    root = _camvid(tmp_path / "c", counts=(1, 0, 0))
    assert seg.scan("camvid", root).format == "camvid"
    assert seg.read("camvid", root, void=11).num_classes == 11
    with pytest.raises(ValueError, match="unknown segmentation format 'voc'"):
        seg.read("voc", root)
