"""Training from a streamed ImageNet-layout folder of full-size JPEGs: nothing written into the data folder, a bad
file skipped and counted in result.json or failing the run with its name (and the same command resuming), and a
DataLoader worker killed mid-epoch failing the run cleanly (and the same command resuming where it stopped, with
the result of an uninterrupted run)."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
from helpers.data import imagenet_folder, snapshot

from swin_lit.config import load_config
from swin_lit.data import DataError, listing
from swin_lit.data.datamodule import SwinDataModule
from swin_lit.data.loaders import EpochSampler
from swin_lit.train.runs import DataLoaderFailure, train

TINY = ["model.img_size=16", "model.embed_dim=16", "model.depths=[2, 2]", "model.num_heads=[2, 4]",
        "model.mlp_ratio=2.0", "data.source=folder", "data.batch_size=4", "data.eval_batch_size=8",
        "trainer.max_epochs=1", "trainer.checkpoint_every_n_steps=1", "trainer.threads=1", "trainer.progress=false"]
BATCH = 4


@pytest.fixture(autouse=True)
def _user_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))


def config(root: Path, *extra):
    return load_config(None, [*TINY, f"data.root={root}", *extra])


def drawn_at(root: Path, batch: int, epoch: int = 0) -> Path:
    """The training file the run draws first in ``batch`` of ``epoch`` (run seed 0)."""
    found = listing.listing("folder", root)
    sampler = EpochSampler(len(found.splits["train"][0]), seed=0)
    sampler.set_epoch(epoch)
    index = sampler.order()[batch * BATCH].item()
    return Path(found.path("train", index))


def test_full_size_jpegs_train_with_nothing_written_and_a_bad_file_skipped_and_counted(tmp_path):
    root = imagenet_folder(tmp_path / "imagenet", train=8, val=2, size=(500, 375))
    bad = drawn_at(root, 2)
    bad.write_bytes(bad.read_bytes()[:500])  # truncated mid-scan
    before = snapshot(root)
    cfg = config(root, "data.on_error=skip")
    assert cfg.data.loader == "stream" and cfg.model.num_classes == 3
    run_dir, record = train(cfg, tmp_path / "runs")
    assert snapshot(root) == before  # file list, sizes and mtimes
    assert list((tmp_path / "xdg" / "swin-lit").glob("imagenet-*/listing-folder-*.npz"))
    assert record["data_skipped"] == {"count": 1, "files": [str(bad)]}
    assert json.loads((run_dir / "result.json").read_text())["data_skipped"]["count"] == 1
    assert record["epochs"] == 1 and 0 <= record["val"]["top1"] <= 100


def test_a_bad_file_fails_the_run_naming_it_and_the_same_command_resumes(tmp_path):
    root = imagenet_folder(tmp_path / "imagenet", train=8, val=2)
    bad = drawn_at(root, 5)
    good = bad.read_bytes()
    bad.write_bytes(b"\xff\xd8 not a jpeg")
    cfg = config(root, "data.num_workers=1")
    with pytest.raises(DataError) as caught:
        train(cfg, tmp_path / "runs")
    message = str(caught.value)
    assert len(message.splitlines()) == 1 and str(bad) in message and "the same command resumes" in message
    run_dir = tmp_path / "runs" / cfg.run_id()
    assert (run_dir / "checkpoints" / "last.ckpt").is_file() and not (run_dir / "result.json").exists()
    bad.write_bytes(good)  # fixed in place: the listing is unchanged
    again, record = train(cfg, tmp_path / "runs")
    assert again == run_dir and record["epochs"] == 1 and "data_skipped" not in record


class _KillOnce:
    """A transform whose worker process kills itself (SIGKILL) when it draws ``target`` the second time (in the
    second epoch), once."""

    def __init__(self, inner, target: str, marker: Path) -> None:
        self.inner, self.target, self.marker = inner, target, marker
        self.eval = inner.eval

    def train(self, path, rng):
        seen = self.marker.with_suffix(".seen")
        if path == self.target and not self.marker.exists():
            if seen.exists():
                self.marker.touch()
                os.kill(os.getpid(), signal.SIGKILL)
            seen.touch()
        return self.inner.train(path, rng)


def test_a_killed_dataloader_worker_fails_the_run_cleanly_and_the_same_command_resumes(tmp_path, monkeypatch):
    root = imagenet_folder(tmp_path / "imagenet", train=8, val=2)
    target = str(drawn_at(root, 4, epoch=1))
    real = SwinDataModule.stream_transform
    monkeypatch.setattr(SwinDataModule, "stream_transform",
                        lambda self: _KillOnce(real(self), target, tmp_path / "killed"))
    cfg = config(root, "data.num_workers=1", "trainer.max_epochs=2")
    with pytest.raises(DataLoaderFailure, match=r"DataLoader worker .*the same command resumes"):
        train(cfg, tmp_path / "runs")
    run_dir = tmp_path / "runs" / cfg.run_id()
    assert (tmp_path / "killed").exists() and (run_dir / "checkpoints" / "last.ckpt").is_file()
    again, record = train(cfg, tmp_path / "runs")
    assert again == run_dir and (run_dir / "result.json").is_file() and record["epochs"] == 2
    monkeypatch.undo()
    _, uninterrupted = train(cfg, tmp_path / "uninterrupted")  # the resumed run trained on exactly its batches
    assert record["history"] == uninterrupted["history"] and record["val"] == uninterrupted["val"]


def test_a_stream_applies_randaugment_and_erasing_per_sample_and_the_step_does_not(tmp_path, monkeypatch):
    import torch

    from swin_lit.train import augment
    from swin_lit.train.module import SwinClassifier
    from swin_lit.train.runs import build_datamodule

    root = imagenet_folder(tmp_path / "imagenet", train=2, val=1)
    cfg = config(root, "optim.randaugment_ops=2", "optim.random_erasing=0.25")
    dm = build_datamodule(cfg)
    dm.setup()
    transform = dm.stream_transform()
    assert transform.randaugment.num_ops == 2 and transform.randaugment.magnitude == 9
    assert transform.random_erasing == 0.25 and transform.hflip == 0.0
    x, y = dm.dataset("train", train=True).__getitems__([(0, 0), (0, 1)])
    plain = load_config(None, [*TINY, f"data.root={root}"])
    px, _ = build_datamodule(plain).dataset("train", train=True).__getitems__([(0, 0), (0, 1)])
    assert x.shape == px.shape and not torch.equal(x, px)  # the same crops, then RandAugment / erasing

    def twice(*args, **kwargs):
        raise AssertionError("the training step applied an augmentation the stream already applied")

    monkeypatch.setattr(augment, "rand_augment", twice)
    monkeypatch.setattr(augment, "random_erasing", twice)
    loss = SwinClassifier(cfg).training_step((x, y), 0)
    assert torch.isfinite(loss)
    memory = load_config(None, [*TINY, f"data.root={root}", "data.loader=memory", "optim.randaugment_ops=2"])
    with pytest.raises(AssertionError, match="applied an augmentation"):
        SwinClassifier(memory).training_step((x, y), 0)
