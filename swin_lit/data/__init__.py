"""Data for swin-lit: the embedded synthetic relation task, readers for image folders, CIFAR pickles
and IDX files, and ``SwinDataModule`` that serves any of them to Lightning."""

from swin_lit.data.config import DataConfig
from swin_lit.data.formats import DataError

# Loaded on first use: the datamodule imports Lightning, which costs seconds.
_LAZY = {
    "SwinDataModule": "swin_lit.data.datamodule", "class_names": "swin_lit.data.datamodule",
    "num_classes": "swin_lit.data.datamodule", "RealData": "swin_lit.data.formats", "Split": "swin_lit.data.formats",
    "read_cifar": "swin_lit.data.formats", "read_folder": "swin_lit.data.formats", "read_idx": "swin_lit.data.formats",
    "CLASS_NAMES": "swin_lit.data.synthetic", "NUM_CLASSES": "swin_lit.data.synthetic",
    "SyntheticScenes": "swin_lit.data.synthetic", "render_scenes": "swin_lit.data.synthetic",
}

__all__ = ["DataConfig", "DataError", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'swin_lit.data' has no attribute {name!r}")
