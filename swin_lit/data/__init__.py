"""Data for swin-lit: the embedded tasks, readers for image folders, CIFAR pickles, IDX files and segmentation
layouts registered by source name (``swin_lit.data.sources``), and one ``DataModule`` (``swin_lit.data.base``)
with a subclass per task (``SwinDataModule``: classes; ``SegDataModule``: label maps) that serves any of them."""

from swin_lit.data.config import DataConfig
from swin_lit.data.formats import DataError

# Loaded on first use: the datamodule imports Lightning, which costs seconds.
_LAZY = {
    "SwinDataModule": "swin_lit.data.datamodule", "SegDataModule": "swin_lit.data.seg_datamodule",
    "DataModule": "swin_lit.data.base", "READERS": "swin_lit.data.sources", "Reader": "swin_lit.data.sources",
    "register": "swin_lit.data.sources", "reader": "swin_lit.data.sources", "class_names": "swin_lit.data.classes",
    "num_classes": "swin_lit.data.classes", "RealData": "swin_lit.data.formats", "Split": "swin_lit.data.formats",
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
