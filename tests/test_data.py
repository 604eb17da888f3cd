"""Tests of swin_lit.data: synthetic scenes, on-disk formats, the decode cache and the datamodule.

Every real-format test writes its own tiny files into ``tmp_path``; nothing is downloaded.
"""

from __future__ import annotations

import gzip
import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from swin_lit.data import (
    CLASS_NAMES,
    DataConfig,
    DataError,
    SwinDataModule,
    SyntheticScenes,
    formats,
    num_classes,
    read_cifar,
    read_folder,
    read_idx,
)
from swin_lit.data.synthetic import DISC, SQUARE, make_scenes
from swin_lit.typed import ConfigError, from_dict

# -- synthetic scenes -------------------------------------------------------------------------------



@pytest.fixture(autouse=True)
def _user_cache(tmp_path, monkeypatch):
    """Caches go to the user cache folder: a fresh one per test."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))

def test_synthetic_is_deterministic_per_index_and_batch_independent():
    ds = SyntheticScenes(100, 32, seed=3)
    batch, labels = ds.render([5, 17, 3])
    again, _ = SyntheticScenes(100, 32, seed=3).render([17])
    assert batch.dtype == torch.uint8 and batch.shape == (3, 3, 32, 32)
    assert torch.equal(batch[1], again[0])
    image, label = ds[17]
    assert torch.equal(image, batch[1]) and label == int(labels[1])
    other, _ = SyntheticScenes(100, 32, seed=4).render([17])
    assert not torch.equal(other[0], batch[1])


def test_same_scene_at_two_resolutions():
    ds = SyntheticScenes(64, 32, noise=0.0)
    small, labels_small = ds.render(range(64), 32)
    large, labels_large = ds.render(range(64), 64)
    assert large.shape == (64, 3, 64, 64) and torch.equal(labels_small, labels_large)
    diff = (F.avg_pool2d(large.float(), 2) - small.float()).abs().mean()
    between_scenes = (small[1:].float() - small[:-1].float()).abs().mean()
    assert diff < 2.0 and between_scenes > 10 * diff


def test_splits_are_disjoint():
    images = {split: SyntheticScenes(300, 16, split=split).render(range(300))[0] for split in ("train", "val", "test")}
    seen = {bytes(img.numpy()) for img in images["train"]}
    for split in ("val", "test"):
        assert not seen & {bytes(img.numpy()) for img in images[split]}
    assert not torch.equal(make_scenes(0, "train", [0]).centres, make_scenes(0, "val", [0]).centres)


def test_labels_balanced_and_match_the_scene():
    scenes = make_scenes(0, "train", np.arange(800))
    counts = torch.bincount(scenes.labels, minlength=len(CLASS_NAMES))
    assert counts.tolist() == [100] * len(CLASS_NAMES)
    offset = scenes.centres[:, DISC] - scenes.centres[:, SQUARE]  # disc minus square, y down
    direction = torch.stack([offset[:, 0], -offset[:, 0], -offset[:, 1], offset[:, 1]], dim=1).argmax(1)
    assert torch.equal(direction, scenes.labels % 4)
    assert (offset.norm(dim=1) >= 0.32 - 1e-6).all()
    colour_gap = (scenes.colours[:, DISC] - scenes.colours[:, SQUARE]).abs().amax(1)
    same = scenes.labels < 4
    assert colour_gap[same].max() < colour_gap[~same].min() + 0.2
    assert colour_gap[same].mean() < 0.5 * colour_gap[~same].mean()


# -- helpers writing tiny data sets -----------------------------------------------------------------


def _write_image(path: Path, colour: tuple[int, int, int], size: tuple[int, int] = (8, 8)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)


def _image_tree(root: Path, splits=("train", "test"), classes=("cat", "dog")) -> Path:
    colours = {"cat": (200, 30, 30), "dog": (30, 30, 200)}
    for split in splits:
        for name in classes:
            for i, ext in enumerate(("png", "jpg", "bmp")):
                _write_image(root / split / name / f"{i}.{ext}", colours.get(name, (90, 90, 90)))
    return root


def _write_cifar10(root: Path, per_batch: int = 4) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8)
        with open(root / name, "wb") as f:
            pickle.dump({b"data": data, b"labels": list(rng.integers(0, 10, per_batch))}, f)
    with open(root / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": [f"c{i}".encode() for i in range(10)]}, f)
    return root


def _write_idx(path: Path, array: np.ndarray) -> None:
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def _write_mnist(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 30), ("t10k", 10)):
        _write_idx(root / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, size=(n, 28, 28)))
        _write_idx(root / f"{prefix}-labels-idx1-ubyte.gz", np.arange(n) % 10)
    return root


# -- formats ----------------------------------------------------------------------------------------


def test_image_folder_with_splits(tmp_path):
    root = _image_tree(tmp_path / "imgs", splits=("train", "val", "test"))
    data = read_folder(root, 16)
    assert data.class_names == ("cat", "dog")
    assert data.train.images.shape == (6, 16, 16, 3) and data.train.images.dtype == np.uint8
    assert data.train.labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert data.val is not None and data.test is not None and len(data.test.labels) == 6
    cat = data.train.images[0].reshape(-1, 3).mean(0)
    assert cat[0] > 150 and cat[2] < 80  # red stays red after decode + bicubic resize


def test_bare_image_folder_is_train_only(tmp_path):
    root = tmp_path / "bare"
    for name in ("a", "b", "c"):
        for i in range(2):
            _write_image(root / name / f"{i}.png", (i * 100, 50, 50), size=(12, 8))  # non-square: centre crop
    data = read_folder(root, 8)
    assert data.class_names == ("a", "b", "c") and data.val is None and data.test is None
    assert data.train.images.shape == (6, 8, 8, 3)


def test_folder_cache_is_reused_and_invalidated(tmp_path, monkeypatch):
    root = _image_tree(tmp_path / "imgs")
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    first = read_folder(root, 8)
    assert list((tmp_path / "xdg" / "swin-lit").glob("*/*.npz"))  # the user cache folder, keyed by the data folder
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before  # nothing written into the data folder
    calls = []
    real_decode = formats._decode
    monkeypatch.setattr(formats, "_decode", lambda path, size: calls.append(path) or real_decode(path, size))
    second = read_folder(root, 8)
    assert calls == [] and np.array_equal(first.train.images, second.train.images)
    read_folder(root, 12)  # another size is another cache entry
    assert len(calls) == 12
    calls.clear()
    touched = root / "train" / "cat" / "0.png"
    os.utime(touched, ns=(1, 1))
    read_folder(root, 8)
    assert len(calls) == 6  # the train split changed; test comes from the cache


def test_explicit_cache_dir(tmp_path):
    root = _image_tree(tmp_path / "imgs")
    read_folder(root, 8, cache_dir=tmp_path / "cache")
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 2


def test_cifar10_pickles(tmp_path):
    root = _write_cifar10(tmp_path / "cifar")
    data = read_cifar(root)
    assert data.train.images.shape == (20, 32, 32, 3) and data.test.images.shape == (4, 32, 32, 3)
    assert data.class_names == tuple(f"c{i}" for i in range(10))
    with open(root / "data_batch_1", "rb") as f:
        raw = pickle.load(f)[b"data"][0]
    assert data.train.images[0, 1, 2, 0] == raw[32 + 2] and data.train.images[0, 1, 2, 2] == raw[2048 + 32 + 2]


def test_cifar100_pickles(tmp_path):
    root = tmp_path / "cifar-100-python"
    root.mkdir()
    for name, n in (("train", 6), ("test", 3)):
        with open(root / name, "wb") as f:
            pickle.dump({"data": np.zeros((n, 3072), np.uint8), "fine_labels": list(range(n))}, f)
    with open(root / "meta", "wb") as f:
        pickle.dump({"fine_label_names": [f"f{i}" for i in range(100)]}, f)
    data = read_cifar(tmp_path)  # the standard subfolder is found from its parent
    assert data.train.labels.tolist() == list(range(6)) and len(data.class_names) == 100


def test_idx_files_and_grey_to_rgb(tmp_path):
    root = _write_mnist(tmp_path / "mnist")
    data = read_idx(root)
    assert data.train.images.shape == (30, 28, 28, 1) and data.test.labels.tolist() == list(range(10))
    dm = SwinDataModule(DataConfig(source="idx", root=str(root), batch_size=8), img_size=16, in_chans=3)
    dm.prepare_data()
    dm.setup()
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (8, 3, 16, 16) and torch.equal(x[:, 0], x[:, 1])
    assert dm.num_classes == 10 == num_classes(dm.cfg)


# -- errors -----------------------------------------------------------------------------------------


def _raises(match: str, fn, *args):
    with pytest.raises(DataError, match=match) as info:
        fn(*args)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("source", ["folder", "cifar", "idx"])
def test_missing_root(tmp_path, source):
    dm = SwinDataModule(DataConfig(source=source, root=str(tmp_path / "nowhere")), 32)
    _raises("nowhere.*does not exist", dm.prepare_data)


def test_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    _raises("empty", read_folder, tmp_path / "empty", 8)


def test_class_folder_without_images(tmp_path):
    root = _image_tree(tmp_path / "imgs")
    (root / "train" / "zebra").mkdir()
    (root / "train" / "zebra" / "notes.txt").write_text("no images here")
    _raises("zebra", SwinDataModule(DataConfig(source="folder", root=str(root)), 8).check)


def test_corrupt_image(tmp_path):
    root = _image_tree(tmp_path / "imgs")
    (root / "train" / "dog" / "broken.png").write_bytes(b"not a png at all")
    _raises("broken.png", read_folder, root, 8)


def test_eval_class_not_in_train(tmp_path):
    root = _image_tree(tmp_path / "imgs")
    _write_image(root / "test" / "bird" / "0.png", (0, 200, 0))
    _raises("bird", read_folder, root, 8)


def test_eval_split_without_train(tmp_path):
    root = _image_tree(tmp_path / "imgs", splits=("val",))
    _raises("no train/", read_folder, root, 8)


def test_cifar_missing_file(tmp_path):
    root = _write_cifar10(tmp_path / "cifar")
    (root / "data_batch_3").unlink()
    _raises("data_batch_3", read_cifar, root)


def test_not_a_cifar_folder(tmp_path):
    (tmp_path / "x").mkdir()
    _raises("not a CIFAR folder", read_cifar, tmp_path / "x")


def test_idx_missing_file(tmp_path):
    root = _write_mnist(tmp_path / "mnist")
    (root / "t10k-labels-idx1-ubyte.gz").unlink()
    _raises("t10k-labels-idx1-ubyte", read_idx, root)


def test_config_errors_name_the_key():
    with pytest.raises(ConfigError, match=r"^data\.root:"):
        from_dict(DataConfig, {"source": "cifar"}, prefix="data")
    with pytest.raises(ConfigError, match=r"^data\.source:.*'synthetic', 'marks', 'folder'"):
        from_dict(DataConfig, {"source": "imagenet"}, prefix="data")
    with pytest.raises(ConfigError, match=r"^data\.val_fraction:"):
        from_dict(DataConfig, {"val_fraction": 1.5}, prefix="data")


# -- datamodule -------------------------------------------------------------------------------------

SMALL = dict(train_size=256, val_size=64, test_size=64, batch_size=32, eval_batch_size=50)


def test_synthetic_datamodule_end_to_end():
    dm = SwinDataModule(DataConfig(**SMALL), img_size=32, in_chans=3)
    assert dm.num_classes == 8 == num_classes(dm.cfg)
    dm.prepare_data()
    dm.setup("fit")
    batches = list(dm.train_dataloader())
    assert len(batches) == 8
    x, y = batches[0]
    assert x.shape == (32, 3, 32, 32) and x.dtype == torch.float32 and y.dtype == torch.int64
    everything = torch.cat([b[0] for b in batches])
    assert everything.mean((0, 2, 3)).abs().max() < 0.05
    assert (everything.std((0, 2, 3)) - 1).abs().max() < 0.05
    assert [len(b[1]) for b in dm.val_dataloader()] == [50, 14]
    assert next(iter(dm.test_dataloader()))[0].shape == (50, 3, 32, 32)


def test_shuffle_is_seeded():
    def first_epoch(seed: int) -> list[torch.Tensor]:
        dm = SwinDataModule(DataConfig(**SMALL), img_size=16, seed=seed)
        dm.setup()
        return [y for _, y in dm.train_dataloader()]

    a, b, c = first_epoch(1), first_epoch(1), first_epoch(2)
    assert all(torch.equal(u, v) for u, v in zip(a, b))
    assert not all(torch.equal(u, v) for u, v in zip(a, c))


def test_training_order_is_a_function_of_seed_and_epoch_and_resumes_mid_epoch():
    dm = SwinDataModule(DataConfig(**SMALL), img_size=16, seed=3)
    dm.setup()
    loader = dm.train_dataloader()
    epochs = []
    for epoch in (0, 1):
        loader.sampler.set_epoch(epoch)
        epochs.append([y for _, y in loader])
    assert not all(torch.equal(u, v) for u, v in zip(*epochs))
    # resuming epoch 1 after 2 batches yields exactly the batches that were left
    loader.sampler.set_epoch(1)
    loader.sampler.skip_batches(2, dm.cfg.batch_size)
    rest = [y for _, y in loader]
    assert len(rest) == len(epochs[1]) - 2 and all(torch.equal(u, v) for u, v in zip(rest, epochs[1][2:]))
    assert len([y for _, y in loader]) == len(epochs[1])  # the skip applies once


def test_resolution_gives_the_same_scenes_and_stats():
    dm = SwinDataModule(DataConfig(**SMALL), img_size=32)
    dm.setup()
    big = dm.resolution(64)
    big.setup()
    assert big.splits["val"][0].shape == (64, 3, 64, 64)
    assert torch.equal(big.mean, dm.mean) and torch.equal(big.std, dm.std)
    down = F.avg_pool2d(big.splits["val"][0].float(), 2)
    small = dm.splits["val"][0].float()
    same_scene = (down - small).abs().mean()  # only the pixel noise differs
    other_scene = (down - small.roll(1, 0)).abs().mean()
    assert same_scene < 0.5 * other_scene


def test_grey_limit_train_and_flips():
    dm = SwinDataModule(DataConfig(**SMALL, limit_train=40, hflip=True), img_size=16, in_chans=1)
    dm.setup()
    assert dm.splits["train"][0].shape == (40, 1, 16, 16)
    plain = dm.dataset("train").__getitems__(list(range(40)))[0]
    flipped = dm.dataset("train", train=True).__getitems__(list(range(40)))[0]
    same = (flipped == plain).flatten(1).all(1)
    mirrored = (flipped == plain.flip(-1)).flatten(1).all(1)
    assert (same | mirrored).all() and same.any() and mirrored.any()


def test_held_out_val_split(tmp_path):
    root = tmp_path / "bare"
    for name in ("a", "b"):
        for i in range(10):
            _write_image(root / name / f"{i}.png", (i * 20, 0, 0))
    cfg = DataConfig(source="folder", root=str(root), loader="memory", val_fraction=0.25, split_seed=7)
    dm = SwinDataModule(cfg, img_size=8)
    dm.prepare_data()
    dm.setup()
    train, val = dm.holdout_indices
    assert len(val) == 5 and len(train) == 15
    assert sorted(torch.cat([train, val]).tolist()) == list(range(20))
    again = SwinDataModule(cfg, img_size=8)
    again.setup()
    assert all(torch.equal(u, v) for u, v in zip(dm.holdout_indices, again.holdout_indices))
    other = SwinDataModule(DataConfig(source="folder", root=str(root), loader="memory", val_fraction=0.25,
                                      split_seed=8), 8)
    other.setup()
    assert not torch.equal(other.holdout_indices[1], val)
    assert not dm.has_test and dm.splits["test"] is dm.splits["val"]
    assert len(dm.splits["train"][1]) == 15


def test_limit_train_draws_from_every_class(tmp_path):
    # Folders are read class by class; the first 10 samples would all be class "a".
    root = tmp_path / "ordered"
    for name, shade in (("a", 0), ("b", 100), ("c", 200)):
        for i in range(10):
            _write_image(root / "train" / name / f"{i}.png", (shade, i, 0))
            _write_image(root / "test" / name / f"{i}.png", (shade, i, 0))
    cfg = DataConfig(source="folder", root=str(root), loader="memory", val_fraction=0.1, limit_train=10)
    dm = SwinDataModule(cfg, img_size=8)
    dm.prepare_data()
    dm.setup()
    labels = dm.splits["train"][1]
    assert len(labels) == 10 and set(labels.tolist()) == {0, 1, 2}
    again = SwinDataModule(cfg, img_size=8)
    again.setup()
    assert torch.equal(again.splits["train"][0], dm.splits["train"][0])  # the same subset every time
