"""``DataConfig``: where the images come from and how they are batched.

The image size and channel count are not data settings: they belong to the model config and are
passed to ``SwinDataModule(cfg, img_size, in_chans)``, which renders, decodes or resizes the data to
match. The number of classes is derived from the data (see ``swin_lit.data.num_classes``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from swin_lit.data import sources
from swin_lit.data.seg_config import SegAugmentConfig
from swin_lit.typed import fail


@dataclass(frozen=True)
class DataConfig:
    """Data source, splits and batching.

    - ``source``: ``synthetic`` (embedded relation scenes, no files), ``marks`` (embedded anchor marks, no
      files: the task where shift and relative bias each matter, ``swin_lit.data.marks``), ``folder`` (image-folder tree
      ``root/train/<class>/*.png`` with optional ``val/`` and ``test/``, or bare ``root/<class>/``),
      ``cifar`` (CIFAR-10/100 python pickle folder), ``idx`` (MNIST / Fashion-MNIST ``.gz`` IDX files);
      for ``task: segmentation``: ``synthetic`` (the scenes with label maps), ``marks`` (the marks with label
      maps, ``swin_lit.data.marks.render_label_maps``), ``camvid``, ``ade20k``, ``cityscapes`` (their
      published layouts, ``swin_lit.data.segmentation``).
    - ``root``: data folder; required for every source except the embedded ``synthetic`` and ``marks``.
    - ``loader``: ``stream`` decodes each sample from its file in the DataLoader workers when it is drawn
      (``swin_lit.data.stream``: memory and start-up flat in the number of images; the official recipes on the
      full-size images); ``memory`` decodes every image once at the model's size and holds the splits in memory.
      Default (null): ``stream`` for the folder sources (``folder``, ``camvid``, ``ade20k``, ``cityscapes``),
      ``memory`` for the rest; CIFAR pickles, IDX files and the embedded tasks are ``memory`` only.
    - ``on_error``: a sample whose file cannot be read while streaming: ``fail`` stops the run with an error
      naming the file (the last checkpoint is kept: the same command resumes), ``skip`` leaves the sample out of
      its batch and counts it (``data_skipped`` in result.json).
    - ``cache_dir``: where file listings and decoded splits are cached (default: the user cache folder,
      ``$XDG_CACHE_HOME/swin-lit`` or ``~/.cache/swin-lit``, one subfolder per data folder). Never inside
      ``root``: nothing is ever written into the data folder.
    - ``batch_size`` / ``eval_batch_size``: training and val/test batch sizes.
    - ``num_workers``: DataLoader worker processes (0: load in the training process).
    - ``val_fraction`` / ``split_seed``: held-out share of train used as val when the data has no
      val split (real data only; synthetic data has its own val split). Deterministic per seed.
    - ``train_size`` / ``val_size`` / ``test_size`` / ``synthetic_seed``: embedded split sizes and seed.
    - ``normalize``: standardise with the train split's per-channel mean/std (else scale to [0, 1]).
    - ``hflip``: random horizontal flips for training. It changes left/right relations, so it breaks
      the synthetic task's labels and is off by default.
    - ``limit_train``: train on N of the training samples (quick runs): a fixed random subset drawn with
      ``split_seed``, the same for every run seed, so that a study's variants see the same images.
    - ``augment``: segmentation training augmentation (random resize, crop, flip, photometric jitter;
      ``swin_lit.data.seg_augment``); its ``crop`` must be the model's ``img_size``. None: the images as they are
      (the embedded scenes, rendered at ``img_size``; their labels break under flips).
    """

    source: str = "synthetic"  # a registered reader (swin_lit.data.sources); which a task trains on: Task.sources
    root: str | None = None
    loader: Literal["stream", "memory"] | None = None
    on_error: Literal["fail", "skip"] = "fail"
    cache_dir: str | None = None
    batch_size: int = 64
    eval_batch_size: int = 256
    num_workers: int = 0
    val_fraction: float = 0.1
    split_seed: int = 0
    train_size: int = 10000
    val_size: int = 1000
    test_size: int = 2000
    synthetic_seed: int = 0
    normalize: bool = True
    hflip: bool = False
    limit_train: int | None = None
    augment: SegAugmentConfig | None = None

    def __post_init__(self) -> None:
        known = sources.sources()  # read when validated, so a source registered later counts
        if self.source not in known:
            fail("source", f"got {self.source!r}; allowed values are {', '.join(map(repr, known))}")
        embedded = sources.embedded(self.source)
        if not embedded and not self.root:
            fail("root", f"is required for source {self.source!r} (the data folder)")
        if embedded and self.root is not None:
            fail("root", f"is not used by source {self.source!r}; remove it or pick source folder, cifar or idx")
        for name in ("batch_size", "eval_batch_size", "train_size", "val_size", "test_size"):
            if getattr(self, name) < 1:
                fail(name, f"must be >= 1, got {getattr(self, name)}")
        if self.num_workers < 0:
            fail("num_workers", f"must be >= 0, got {self.num_workers}")
        if not 0.0 < self.val_fraction < 1.0:
            fail("val_fraction", f"must be in (0, 1), got {self.val_fraction}")
        if self.limit_train is not None and self.limit_train < 1:
            fail("limit_train", f"must be >= 1 or null, got {self.limit_train}")
        if self.loader is None:  # the resolved config (and so the run hash) shows the loader that ran
            object.__setattr__(self, "loader", "stream" if sources.streams(self.source) else "memory")
        if self.loader == "stream" and not sources.streams(self.source):
            streamed = ", ".join(sources.sources(streams=True))
            fail("loader", f"'stream' reads folders of image files ({streamed}); source "
                           f"{self.source!r} is held in memory: set data.loader=memory or leave it out")
        if self.cache_dir is not None and self.root is not None and _inside(self.cache_dir, self.root):
            fail("cache_dir", f"{self.cache_dir} is inside the data folder {self.root}: nothing is written into "
                              "the data folder; leave it out (user cache folder) or pick a folder outside it")


def _inside(path: str, root: str) -> bool:
    """Whether ``path`` is ``root`` or lies under it (both resolved; neither needs to exist)."""
    p, r = Path(path).expanduser().resolve(), Path(root).expanduser().resolve()
    return p == r or r in p.parents
