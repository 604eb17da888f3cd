"""The data layer's structure: readers registered by source name (a new source is one class and one name), one
DataModule base with a subclass per task, one decode cache and pool, and the batch augmentation the data asks of
the training step."""

from __future__ import annotations

import hashlib
import os
import threading

import numpy as np
import pytest
import torch

from swin_lit.data import cache, sources
from swin_lit.data.config import DataConfig
from swin_lit.data.datamodule import STEP_AUGMENTS, SwinDataModule
from swin_lit.data.seg_datamodule import SegDataModule
from swin_lit.data.segmentation import pack_rendered
from swin_lit.domain.task import TASKS
from swin_lit.errors import ConfigError, DataError
from swin_lit.typed import from_dict


@pytest.fixture(autouse=True)
def _user_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "user-cache"))


# -- the registry ------------------------------------------------------------------------------------------------

def test_every_task_source_is_registered_and_reads_the_tasks_targets():
    for task in TASKS.values():
        for name in task.sources:
            assert task.targets in sources.reader(name).targets, (task.name, name)
    assert {t.targets for t in TASKS.values()} == {"class", "map"}


def test_config_source_checks_read_the_registry():
    assert sources.sources(embedded=True) == ("synthetic", "marks")
    assert set(sources.sources(streams=True)) == {"folder", "camvid", "ade20k", "cityscapes"}
    assert sources.embedded("marks") and not sources.embedded("folder") and not sources.embedded("voc")
    with pytest.raises(ConfigError, match=r"^data.source: got 'voc'; allowed values are 'synthetic', 'marks', "):
        from_dict(DataConfig, {"source": "voc"}, prefix="data")
    with pytest.raises(ConfigError, match=r"^data.loader: 'stream' reads folders of image files \(folder, "):
        from_dict(DataConfig, {"source": "cifar", "root": "/x", "loader": "stream"}, prefix="data")


def test_unknown_source_names_the_registered_ones():
    with pytest.raises(DataError, match="unknown data source 'voc'; known: synthetic, marks, folder"):
        sources.reader("voc")
    with pytest.raises(ValueError, match="already registered"):
        sources.register(type("Again", (sources.Reader,), {"name": "folder", "targets": ("class",)}))


def test_a_reader_that_does_not_serve_a_target_says_so():
    with pytest.raises(DataError, match="'cifar' has no label maps"):
        sources.reader("cifar").read_pairs(DataConfig(source="cifar", root="/nowhere"), (8, 8))
    with pytest.raises(DataError, match="'camvid' has no class-labelled images"):
        sources.reader("camvid").read_images(DataConfig(source="camvid", root="/nowhere"), 8)


# -- a toy source: one class and one name, served by both tasks' DataModules --------------------------------------

N_TOY = 20


def _toy_images(n: int, size: int) -> torch.Tensor:
    """uint8 (n, 3, size, size): image i is filled with the value 10 * i (so a batch names its samples)."""
    return (torch.arange(n, dtype=torch.uint8) * 10).view(n, 1, 1, 1).expand(n, 3, size, size).contiguous()


@pytest.fixture
def toy(monkeypatch):
    """A source registered in the test (train only: val is held out of it, test is val), both kinds of targets."""
    monkeypatch.setattr(sources, "READERS", dict(sources.READERS))

    @sources.register
    class Toy(sources.Reader):
        name = "toy"
        targets = ("class", "map")

        def check(self, cfg) -> None:
            if not os.path.isdir(cfg.root):
                raise DataError(f"toy folder {cfg.root} does not exist")

        def class_names(self, cfg, targets: str) -> tuple[str, ...]:
            return ("even", "odd") if targets == "class" else ("background", "thing")

        def read_images(self, cfg, img_size: int) -> sources.Loaded:
            return sources.Loaded((_toy_images(N_TOY, img_size), torch.arange(N_TOY) % 2), None, None,
                                  self.class_names(cfg, "class"))

        def read_pairs(self, cfg, img_size) -> sources.Loaded:
            images = _toy_images(N_TOY, img_size[0])
            labels = (images[:, 0] > 100).to(torch.uint8)
            return sources.Loaded(pack_rendered(images, labels), None, None, self.class_names(cfg, "map"))

    return Toy


def test_a_source_registered_in_the_test_trains_both_tasks_through_the_shared_setup(toy, tmp_path):
    cfg = DataConfig(source="toy", root=str(tmp_path), val_fraction=0.25, split_seed=3, limit_train=10,
                     batch_size=4, normalize=False)
    perm = torch.randperm(N_TOY, generator=torch.Generator().manual_seed(3))
    val_idx, train_idx = perm[:5].sort().values, perm[5:].sort().values  # val: round(20 * 0.25) = 5 held out
    limit = torch.randperm(15, generator=torch.Generator().manual_seed(3))[:10].sort().values  # limit_train 10
    train = train_idx[limit]
    order = torch.randperm(10, generator=torch.Generator().manual_seed(0))[:8]  # EpochSampler (seed 0, epoch 0)
    for dm in (SwinDataModule(cfg, img_size=4), SegDataModule(cfg, img_size=4)):
        dm.prepare_data()
        dm.setup()
        assert dm.has_test is False and dm.splits["test"] is dm.splits["val"]
        assert torch.equal(dm.holdout_indices[0], train_idx) and torch.equal(dm.holdout_indices[1], val_idx)
        assert dm.length(dm.splits["train"]) == 10 and dm.length(dm.splits["val"]) == 5
        batches = list(dm.train_dataloader())
        assert [len(b[0]) for b in batches] == [4, 4]  # 10 samples, batch 4: the partial batch dropped
        pixels = (torch.cat([b[0][:, 0, 0, 0] for b in batches]) * 255).round().long()  # normalize off: x / 255
        assert torch.equal(pixels, train[order] * 10)
        val = next(iter(dm.val_dataloader()))
        assert torch.equal((val[0][:, 0, 0, 0] * 255).round().long(), val_idx * 10)
    assert SwinDataModule(cfg, img_size=4).class_names == ("even", "odd")
    assert SegDataModule(cfg, img_size=4).class_names == ("background", "thing")


def test_a_source_registered_after_import_validates_from_a_config_file(toy, tmp_path):
    cfg = from_dict(DataConfig, {"source": "toy", "root": str(tmp_path)}, prefix="data")  # as YAML gives it
    assert cfg.source == "toy" and cfg.loader == "memory"


def test_a_registered_source_is_checked_before_any_read(toy, tmp_path):
    dm = SwinDataModule(DataConfig(source="toy", root=str(tmp_path / "missing")), img_size=4)
    with pytest.raises(DataError, match="toy folder .*missing does not exist"):
        dm.prepare_data()


# -- the one decode cache -----------------------------------------------------------------------------------------

def test_cache_keys_are_the_former_formulas_so_existing_caches_stay_valid(tmp_path):
    root = tmp_path / "data"
    (root / "a").mkdir(parents=True)
    path = root / "a" / "x.png"
    path.write_bytes(b"12345")
    st = os.stat(path)
    header = f"v1\0{root.resolve()}\0{32}\0a\n"  # formats: version, root, size, classes
    by_hand = hashlib.sha1((header + f"a/x.png\0{0}\0{5}\0{st.st_mtime_ns}\n").encode()).hexdigest()[:20]
    assert cache.files_key(header, root, [(str(path), (0,))]) == by_hand
    by_hand = hashlib.sha1((header + f"a/x.png\0{5}\0{st.st_mtime_ns}\n").encode()).hexdigest()[:20]
    assert cache.files_key(header, root, [(str(path), ())]) == by_hand  # segmentation: no extra field


def test_cache_entries_round_trip_and_a_broken_entry_reads_as_missing(tmp_path):
    path = tmp_path / "c" / "entry.npz"
    cache.save(path, a=np.arange(5), b=np.array(["x", "y"]))
    assert cache.load(path, lambda npz: (npz["a"].tolist(), npz["b"].tolist())) == ([0, 1, 2, 3, 4], ["x", "y"])
    assert [p.name for p in path.parent.iterdir()] == ["entry.npz"]  # no temporary file left
    path.write_bytes(b"not a zip")
    assert cache.load(path, lambda npz: npz["a"]) is None
    assert cache.load(tmp_path / "none.npz", lambda npz: npz["a"]) is None


def test_parallel_for_runs_every_index_once_in_a_pool_and_reraises(monkeypatch):
    monkeypatch.setattr(cache, "PARALLEL_MIN_FILES", 10)
    threads = set()
    both = threading.Barrier(2, timeout=10)  # the first two ranges (0..3, 4..7) wait for each other: two threads

    def square(i: int) -> np.ndarray:
        threads.add(threading.get_ident())
        if len(paths) == 100 and i in (0, 4):
            both.wait()
        return np.array(i * i)

    paths = list(range(100))

    out = cache.parallel_map(square, paths, workers=4)
    assert [int(v) for v in out] == [i * i for i in range(100)]
    assert len(threads) > 1 and threading.get_ident() not in threads  # the pool did the work
    threads.clear()
    paths = list(range(9))
    assert [int(v) for v in cache.parallel_map(square, paths, workers=4)] == [i * i for i in range(9)]
    assert threads == {threading.get_ident()}  # short lists: this thread

    def fail(i: int) -> None:
        if i == 57:
            raise DataError("bad file 57")

    with pytest.raises(DataError, match="bad file 57"):
        cache.parallel_for(100, fail, workers=4)


# -- the batch augmentation the data asks of the step --------------------------------------------------------------

def test_memory_data_leaves_randaugment_and_erasing_to_the_step_a_stream_does_not(tmp_path):
    assert SwinDataModule.step_augments(DataConfig()) == STEP_AUGMENTS == ("randaugment", "random_erasing")
    assert SwinDataModule.step_augments(DataConfig(source="folder", root=str(tmp_path))) == ()
    assert SwinDataModule.step_augments(DataConfig(source="folder", root=str(tmp_path), loader="memory")) \
        == STEP_AUGMENTS


def test_batch_augment_applies_only_the_asked_ops_in_the_step_order():
    from swin_lit.config import OptimConfig
    from swin_lit.train import augment

    x = torch.randn(4, 3, 8, 8)
    o = OptimConfig(randaugment_ops=2, random_erasing=1.0)
    assert augment.batch_augment(x, (), o, torch.Generator().manual_seed(0)) is x
    gen = torch.Generator().manual_seed(0)
    by_hand = augment.random_erasing(augment.rand_augment(x, 2, o.randaugment_magnitude, gen), 1.0, gen)
    assert torch.equal(augment.batch_augment(x, STEP_AUGMENTS, o, torch.Generator().manual_seed(0)), by_hand)
    gen = torch.Generator().manual_seed(0)
    assert torch.equal(augment.batch_augment(x, ("random_erasing",), o, torch.Generator().manual_seed(0)),
                       augment.random_erasing(x, 1.0, gen))
