"""Streaming data (``data.loader: stream``): the listing cached outside the data folder, batches that are a function
of (seed, epoch, sample index) only (workers 0/2/4, a mid-epoch resume, two DDP ranks), bad files (fail / skip),
the segmentation layouts, and ``swin-lit data check``."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers.data import imagenet_folder, snapshot
from PIL import Image

from swin_lit.data import DataError, listing
from swin_lit.data import stream as stream_mod
from swin_lit.data.config import DataConfig
from swin_lit.data.datamodule import SwinDataModule
from swin_lit.data.loaders import EpochSampler
from swin_lit.typed import ConfigError


@pytest.fixture(autouse=True)
def _user_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))


def batches(loader, epochs=(0, 1)) -> list[tuple[torch.Tensor, torch.Tensor]]:
    out = []
    for epoch in epochs:
        if loader.sampler is not None and hasattr(loader.sampler, "set_epoch"):
            loader.sampler.set_epoch(epoch)
        out.extend(loader)
    return out


def same(a, b) -> bool:
    return len(a) == len(b) and all(torch.equal(x, u) and torch.equal(y, v) for (x, y), (u, v) in zip(a, b))


def stream_module(root: Path, workers: int = 0, **kw) -> SwinDataModule:
    cfg = DataConfig(source="folder", root=str(root), batch_size=4, eval_batch_size=5, num_workers=workers,
                     hflip=True, **kw)
    dm = SwinDataModule(cfg, img_size=16, seed=3)
    dm.check()
    dm.setup()
    return dm


# -- config -----------------------------------------------------------------------------------------------------

def test_loader_defaults_and_strict_values(tmp_path):
    assert DataConfig(source="folder", root="/d").loader == "stream"
    assert DataConfig(source="ade20k", root="/d").loader == "stream"
    assert DataConfig(source="cifar", root="/d").loader == "memory"
    assert DataConfig().loader == "memory"  # the embedded task
    with pytest.raises(ConfigError, match=r"^loader: 'stream' reads folders"):
        DataConfig(source="idx", root="/d", loader="stream")
    with pytest.raises(ConfigError, match=r"^cache_dir: .* is inside the data folder"):
        DataConfig(source="folder", root=str(tmp_path), cache_dir=str(tmp_path / "cache"))
    from swin_lit.typed import from_dict

    with pytest.raises(ConfigError, match=r"^data\.loader: got 'disk'; expected 'stream' \| 'memory' \| null"):
        from_dict(DataConfig, {"source": "folder", "root": "/d", "loader": "disk"}, "data")
    with pytest.raises(ConfigError, match=r"^data.on_error: got 'ignore'; allowed values are 'fail', 'skip'"):
        from_dict(DataConfig, {"source": "folder", "root": "/d", "on_error": "ignore"}, "data")


def test_a_stored_config_without_loader_ran_in_memory(tmp_path):
    """The one converter of older stored forms (``stored_config``): a run folder's or a trial's config from before
    ``data.loader`` existed was loaded in memory, so it rebuilds (and hashes) as ``memory``; a new config that
    leaves the key out gets the source's default."""
    from swin_lit.config import config_from_dict, load_config, stored_config

    for split in ("train", "val"):
        for name in ("a", "b"):
            (tmp_path / split / name).mkdir(parents=True)
            Image.new("RGB", (8, 8)).save(tmp_path / split / name / "0.png")
    new = load_config(overrides={"data.source": "folder", "data.root": str(tmp_path)})
    assert new.data.loader == "stream"
    old = new.to_dict()
    del old["data"]["loader"]
    assert stored_config(old).data.loader == "memory"
    assert stored_config(old).hash() == config_from_dict({**old, "data": {**old["data"], "loader": "memory"}}).hash()
    assert stored_config(new.to_dict()).data.loader == "stream"  # a stored form that has the key keeps it


def test_memory_loader_and_fail_keep_the_run_hash_of_before():
    from swin_lit.config import load_config

    plain = load_config(None, [])
    assert plain.data.loader == "memory" and plain.data.on_error == "fail"
    assert plain.hash() == load_config(None, ["data.loader=memory", "data.on_error=fail"]).hash()
    assert plain.hash() != load_config(None, ["data.on_error=skip"]).hash()


# -- listing ----------------------------------------------------------------------------------------------------

def test_listing_is_cached_outside_the_data_folder_and_follows_changes(tmp_path, monkeypatch):
    root = imagenet_folder(tmp_path / "imagenet")
    before = snapshot(root)
    found = listing.listing("folder", root)
    assert found.class_names == ("n01", "n02", "n03") and len(found.splits["train"][0]) == 24
    assert found.path("train", 0) == str(root / "train" / "n01" / "n01_0.JPEG") and found.splits["train"][1][8] == 1
    cached = list((tmp_path / "xdg" / "swin-lit").glob("imagenet-*/listing-folder-*.npz"))
    assert len(cached) == 1 and snapshot(root) == before
    scans = []
    real = listing._scan
    monkeypatch.setattr(listing, "_scan", lambda fmt, r: scans.append(r) or real(fmt, r))
    again = listing.listing("folder", root)
    assert scans == [] and np.array_equal(again.splits["train"][0], found.splits["train"][0])
    Image.new("RGB", (9, 9)).save(root / "train" / "n02" / "n02_extra.JPEG")  # the class folder's mtime moves
    grown = listing.listing("folder", root)
    assert len(scans) == 1 and len(grown.splits["train"][0]) == 25


# -- determinism ------------------------------------------------------------------------------------------------

def test_batches_are_identical_with_0_2_and_4_workers(tmp_path):
    root = imagenet_folder(tmp_path / "imagenet")
    reference = stream_module(root, 0)
    train, val = batches(reference.train_dataloader()), batches(reference.val_dataloader(), (0,))
    assert len(train) == 12 and train[0][0].shape == (4, 3, 16, 16) and train[0][0].dtype == torch.float32
    assert not torch.equal(train[0][0], train[6][0])  # epoch 1 draws anew
    assert [int(y) for _, ys in val for y in ys] == [0, 0, 1, 1, 2, 2]
    for workers in (2, 4):
        dm = stream_module(root, workers)
        assert same(batches(dm.train_dataloader()), train), workers
        assert same(batches(dm.val_dataloader(), (0,)), val), workers


def test_a_sample_is_a_function_of_seed_epoch_and_index(tmp_path):
    root = imagenet_folder(tmp_path / "imagenet")
    ds = stream_module(root).dataset("train", train=True)
    alone = ds.__getitems__([(1, 5)])[0][0]
    in_batch = ds.__getitems__([(1, 7), (0, 2), (1, 5)])[0][2]
    assert torch.equal(alone, in_batch)
    assert not torch.equal(alone, ds.__getitems__([(0, 5)])[0][0])


def test_mid_epoch_resume_skips_the_consumed_batches_exactly(tmp_path):
    root = imagenet_folder(tmp_path / "imagenet")
    full = batches(stream_module(root, 2).train_dataloader(), (1,))
    loader = stream_module(root, 2).train_dataloader()
    loader.sampler.set_epoch(1)
    loader.sampler.skip_batches(2, 4)
    assert same(list(loader), full[2:])
    assert same(list(loader), full)  # the skip is used once


def test_ddp_sampler_shares_are_disjoint_and_cover_each_sample_once():
    for n, world in ((24, 2), (25, 2), (10, 4)):
        shares = [EpochSampler(n, seed=5, rank=r, world=world) for r in range(world)]
        for s in shares:
            s.set_epoch(3)
        orders = [list(s) for s in shares]
        assert len({len(o) for o in orders}) == 1 and len(orders[0]) == -(-n // world)
        flat = [i for o in orders for i in o]
        assert set(flat) == set(range(n)) and len(flat) - n == -n % world  # padding repeats at most world - 1
        if n % world == 0:
            assert sorted(flat) == list(range(n))
        assert sorted(set(flat)) == sorted(EpochSampler(n, seed=5).order().tolist())


def _ddp_rank(rank: int, world: int, root: str, init: str, out: str) -> None:
    torch.set_num_threads(1)  # a forked child: no OpenMP pool inherited from the parent (not fork-safe)
    os.environ["XDG_CACHE_HOME"] = str(Path(out).parent / "xdg")
    torch.distributed.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    try:
        dm = stream_module(Path(root), workers=0)
        loader = dm.train_dataloader()
        loader.sampler.set_epoch(2)
        keys = list(loader.sampler)
        got = list(loader)
        torch.save({"keys": keys, "batches": got}, f"{out}.{rank}")
        torch.distributed.barrier()
    finally:
        torch.distributed.destroy_process_group()


def test_ddp_two_processes_get_disjoint_shares_and_the_same_samples(tmp_path):
    import torch.multiprocessing as mp

    root = imagenet_folder(tmp_path / "imagenet", train=7)  # 21 images: one padded sample
    out = tmp_path / "ranks"
    # Two real processes in one gloo process group. Forked, not spawned: a spawned rank re-imports torch, lightning
    # and this module (seconds per rank); the ranks' samplers and loaders are built after the fork all the same.
    mp.start_processes(_ddp_rank, args=(2, str(root), f"file://{tmp_path / 'rendezvous'}", str(out)), nprocs=2,
                       join=True, start_method="fork")
    ranks = [torch.load(f"{out}.{r}", weights_only=False) for r in range(2)]
    indices = [[i for _, i in r["keys"]] for r in ranks]
    assert len(indices[0]) == len(indices[1]) == 11
    assert set(indices[0]) | set(indices[1]) == set(range(21)) and len(set(indices[0]) & set(indices[1])) <= 1
    ds = stream_module(root).dataset("train", train=True)
    for r in ranks:  # each rank's batches are the samples a single process computes for the same keys
        assert len(r["batches"]) == 2  # drop_last: 11 // 4
        for b, (x, y) in enumerate(r["batches"]):
            ex, ey = ds.__getitems__(r["keys"][4 * b : 4 * b + 4])
            assert torch.equal(x, ex) and torch.equal(y, ey)


# -- bad files ---------------------------------------------------------------------------------------------------

def test_bad_file_fails_naming_it_or_is_skipped_and_logged(tmp_path):
    root = imagenet_folder(tmp_path / "imagenet")
    bad = root / "train" / "n02" / "n02_3.JPEG"
    bad.write_bytes(bad.read_bytes()[:200])  # truncated
    ds = stream_module(root).dataset("train", train=True)
    index = [i for i in range(len(ds)) if ds.path(i) == str(bad)][0]
    with pytest.raises(DataError, match=f"{bad}.*data.on_error=skip"):
        ds.__getitems__([(0, index)])
    log = tmp_path / "run" / "skipped.jsonl"
    log.parent.mkdir()
    dm = stream_module(root, 2, on_error="skip")
    dm.skip_log = log
    got = batches(dm.train_dataloader())
    assert sum(len(y) for _, y in got) == 12 * 4 - 2  # drawn once an epoch, left out of its batch each time
    assert stream_mod.skipped(log) == {"count": 2, "files": [str(bad)]}
    with open(log, "a") as f:  # a resume replays the same draw: counted once
        f.write(log.read_text().splitlines()[0] + "\n")
    assert stream_mod.skipped(log)["count"] == 2


# -- segmentation layouts ------------------------------------------------------------------------------------

def _ade20k(root: Path, sizes=((20, 24), (18, 30), (24, 20), (20, 20)), val=2) -> Path:
    rng = np.random.default_rng(1)
    for split, count in (("training", len(sizes)), ("validation", val)):
        for i in range(count):
            h, w = sizes[i % len(sizes)]
            for sub in ("images", "annotations"):
                (root / sub / split).mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(root / "images" / split / f"{i}.jpg")
            label = rng.integers(0, 5, (h, w), dtype=np.uint8)
            Image.fromarray(label, mode="L").save(root / "annotations" / split / f"{i}.png")
    return root


def seg_module(root: Path, workers: int = 0, **kw):
    from swin_lit.data.seg_config import SegAugmentConfig
    from swin_lit.data.seg_datamodule import SegDataModule

    kw.setdefault("augment", SegAugmentConfig(crop=(16, 16), cat_max_ratio=0.75))
    cfg = DataConfig(source="ade20k", root=str(root), batch_size=2, num_workers=workers, **kw)
    dm = SegDataModule(cfg, 16, seed=2)
    dm.check()
    dm.setup()
    return dm


def test_ade20k_streams_with_identical_batches_and_reduced_zero_label(tmp_path):
    root = _ade20k(tmp_path / "ade")
    before = snapshot(root)
    dm = seg_module(root)
    assert dm.class_names == ("0", "1", "2", "3")  # labels 1..4 -> classes 0..3 (no objectInfo150)
    train = batches(dm.train_dataloader())
    assert len(train) == 4 and train[0][0].shape == (2, 3, 16, 16) and train[0][1].dtype == torch.int64
    assert same(batches(seg_module(root, 2).train_dataloader()), train)
    image, label = next(iter(dm.val_dataloader()))
    raw = torch.from_numpy(np.array(Image.open(root / "annotations" / "validation" / "0.png"))).long()
    assert image.shape == (1, 3, 20, 24) and torch.equal(label[0], torch.where(raw == 0, 255, raw - 1))
    from swin_lit.data.seg_config import SegAugmentConfig

    fitted = seg_module(root, augment=SegAugmentConfig(crop=(16, 16), scale=(40, 16)))  # mmseg's test resize
    image, label = next(iter(fitted.val_dataloader()))  # 24x20 fit into long <= 40, short <= 16: x0.8
    assert image.shape == (1, 3, 16, 19) and label.shape == (1, 16, 19)
    assert snapshot(root) == before


def test_cityscapes_layout_lists_train_ids(tmp_path):
    root = tmp_path / "cityscapes"
    for split in ("train", "val"):
        for city in ("aachen", "bonn"):
            (root / "leftImg8bit" / split / city).mkdir(parents=True)
            (root / "gtFine" / split / city).mkdir(parents=True)
            stem = f"{city}_000000_000019"
            Image.new("RGB", (16, 8)).save(root / "leftImg8bit" / split / city / f"{stem}_leftImg8bit.png")
            Image.new("L", (16, 8), 18).save(root / "gtFine" / split / city / f"{stem}_gtFine_labelTrainIds.png")
            Image.new("L", (16, 8), 7).save(root / "gtFine" / split / city / f"{stem}_gtFine_labelIds.png")
    found = listing.listing("cityscapes", root)
    assert len(found.class_names) == 19 and found.class_names[-1] == "bicycle"
    assert [p.decode() for p in found.splits["val"][1]] == [
        "gtFine/val/aachen/aachen_000000_000019_gtFine_labelTrainIds.png",
        "gtFine/val/bonn/bonn_000000_000019_gtFine_labelTrainIds.png"]
    for path in (root / "gtFine" / "train").rglob("*labelTrainIds.png"):
        path.unlink()
    with pytest.raises(DataError, match="createTrainIdLabelImgs"):
        listing.listing("cityscapes", root, cache_dir=tmp_path / "other")


# -- swin-lit data check -------------------------------------------------------------------------------------

def test_data_check_reports_each_problem_naming_the_file(tmp_path, capsys):
    from swin_lit.cli import main

    clean = imagenet_folder(tmp_path / "imagenet", train=2, val=1)
    assert main(["data", "check", str(clean), "--no-progress"]) == 0
    broken = clean / "val" / "n03" / "n03_0.JPEG"
    broken.write_bytes(broken.read_bytes()[:300])
    capsys.readouterr()
    assert main(["data", "check", str(clean), "--no-progress"]) == 1
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and out[0].startswith(f"{broken}: unreadable image")

    ade = _ade20k(tmp_path / "ade")
    Image.new("L", (5, 5), 1).save(ade / "annotations" / "training" / "1.png")  # another size than its image
    Image.fromarray(np.full((20, 20), 200, dtype=np.uint8), mode="L").save(ade / "annotations" / "training" / "3.png")
    (ade / "images" / "validation" / "1.jpg").write_bytes(b"not a jpeg")
    capsys.readouterr()
    assert main(["data", "check", str(ade), "--no-progress"]) == 1
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 3
    assert out[0].startswith(f"{ade / 'annotations' / 'training' / '1.png'}: label map of another size: 5x5")
    assert out[1].startswith(f"{ade / 'annotations' / 'training' / '3.png'}: label value out of range: 200")
    assert out[2].startswith(f"{ade / 'images' / 'validation' / '1.jpg'}: unreadable image")

    assert main(["data", "check", str(tmp_path / "missing"), "--no-progress"]) == 2
    assert "does not exist" in capsys.readouterr().err
