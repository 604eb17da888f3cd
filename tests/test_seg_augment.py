"""Segmentation augmentation: label values never invented, image and labels moved together (checked with labels
derived from the image content), padding with the ignore label, determinism per (seed, epoch, index)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from swin_lit.data.seg_augment import (
    AugmentedPairs,
    SegAugment,
    SegAugmentConfig,
    SegmentationPairs,
    photometric,
    random_crop,
    resize_pair,
    resized_size,
    sample_generator,
)
from swin_lit.data.segmentation import IGNORE_INDEX, SegSplit
from swin_lit.typed import ConfigError, from_dict

PALETTE = torch.tensor([[200, 10, 10], [10, 200, 10], [10, 10, 200], [200, 200, 10], [120, 120, 120]],
                       dtype=torch.uint8)
GEOMETRIC_ONLY = dict(brightness=0.0, contrast=0.0, saturation=0.0)


def _blocks(h: int = 48, w: int = 64, block: int = 8, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A piecewise-constant image of block x block squares in palette colours, and its labels (the colour index),
    with one block void."""
    gen = torch.Generator().manual_seed(seed)
    cells = torch.randint(len(PALETTE), (h // block, w // block), generator=gen)
    label = cells.repeat_interleave(block, 0).repeat_interleave(block, 1)
    image = PALETTE[label].permute(2, 0, 1).contiguous()  # (3, H, W)
    label = label.to(torch.uint8)
    label[:block, :block] = IGNORE_INDEX
    return image, label


def _labels_from_image(image: torch.Tensor) -> torch.Tensor:
    """The palette index of each pixel whose colour is exactly a palette colour, else -1."""
    match = (image.permute(1, 2, 0)[:, :, None, :] == PALETTE[None, None]).all(-1)  # (H, W, P)
    return torch.where(match.any(-1), match.int().argmax(-1), -1)


def _noise_pair(h: int = 30, w: int = 44, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A random image and labels that are a pointwise function of it (red // 32), so any misalignment shows."""
    image = torch.randint(256, (3, h, w), generator=torch.Generator().manual_seed(seed), dtype=torch.uint8)
    return image, image[0] // 32


def test_config_is_strict():
    cfg = from_dict(SegAugmentConfig, {"crop": [64, 96], "ratio_range": [0.5, 2], "cat_max_ratio": 0.75})
    assert cfg.crop == (64, 96) and cfg.ratio_range == (0.5, 2.0)
    for data, match in [({"crop": [0, 8]}, r"^aug\.crop:"), ({"ratio_range": [2.0, 1.0]}, r"^aug\.ratio_range:"),
                        ({"hflip": 1.5}, r"^aug\.hflip:"), ({"scale": [100, 200]}, r"^aug\.scale: .*long >= short"),
                        ({"cat_max_ratio": 0}, r"^aug\.cat_max_ratio:"), ({"contrast": 1.0}, r"^aug\.contrast:"),
                        ({"interpolation": "area"}, r"^aug\.interpolation:"), ({"flip": 0.5}, r"^aug\.flip: unknown")]:
        with pytest.raises(ConfigError, match=match):
            from_dict(SegAugmentConfig, data, prefix="aug")


def test_labels_only_take_input_values_or_ignore():
    image, label = _blocks()
    present = set(label.unique().tolist())
    augment = SegAugment(SegAugmentConfig(crop=(40, 40), ratio_range=(0.3, 2.5), cat_max_ratio=0.75))
    seen = set()
    for seed in range(40):
        out_image, out_label = augment(image, label, sample_generator(seed, 0, 0))
        assert out_image.shape == (3, 40, 40) and out_label.shape == (40, 40)
        assert out_image.dtype == out_label.dtype == torch.uint8
        values = set(out_label.unique().tolist())
        assert values <= present | {IGNORE_INDEX}
        seen |= values
    assert len(seen) == len(present)  # the check saw every class, not a degenerate stream


def test_resize_keeps_image_and_labels_aligned():
    image, label = _blocks()
    for ratio in (0.5, 0.75, 1.37, 2.0):
        size = resized_size(48, 64, ratio, None)
        out_image, out_label = resize_pair(image, label, size)
        derived = _labels_from_image(out_image)
        exact = derived >= 0  # block interiors keep their exact colour under bilinear resizing
        scored = exact & (out_label != IGNORE_INDEX)
        assert scored.float().mean() > 0.4
        assert torch.equal(derived[scored], out_label[scored].long())


def test_resized_size_fits_mmseg_scale():
    assert resized_size(40, 60, 1.0, (120, 60)) == (60, 90)  # min(120/60, 60/40) = 1.5
    assert resized_size(40, 60, 0.5, (120, 60)) == (30, 45)
    assert resized_size(40, 60, 1.5, None) == (60, 90)


def test_crop_and_flip_keep_alignment_and_pad_with_ignore():
    image, label = _noise_pair()
    cfg = SegAugmentConfig(crop=(36, 36), ratio_range=(1.0, 1.0), **GEOMETRIC_ONLY)
    flips = 0
    for seed in range(30):
        out_image, out_label = SegAugment(cfg)(image, label, sample_generator(seed, 0, 0))
        padded = out_label == IGNORE_INDEX  # the image is 30 high: the 36-high crop is padded at the bottom
        assert padded[30:].all() and not padded[:30].any() and (out_image[:, 30:] == 0).all()
        assert torch.equal(out_label[:30], out_image[0, :30] // 32)  # labels still the image's own
        window = out_image[:, :30]
        starts = [s for s in range(44 - 36 + 1) if torch.equal(window, image[..., s : s + 36])]
        mirrored = [s for s in range(44 - 36 + 1) if torch.equal(window, image[..., s : s + 36].flip(-1))]
        assert len(starts) + len(mirrored) == 1  # exactly one crop of the input, maybe mirrored
        flips += bool(mirrored)
    assert 5 < flips < 25


def test_padding_comes_last_and_stays_black_and_ignored():
    image, label = _noise_pair(20, 30)
    augment = SegAugment(SegAugmentConfig(crop=(40, 40), ratio_range=(1.0, 1.0), brightness=60.0))
    lifted = 0
    for seed in range(12):
        out_image, out_label = augment(image, label, sample_generator(seed, 0, 0))
        assert (out_image[:, 20:] == 0).all() and (out_image[:, :, 30:] == 0).all()  # jitter never reaches it
        assert (out_label[20:] == IGNORE_INDEX).all() and (out_label[:, 30:] == IGNORE_INDEX).all()
        assert (out_label[:20, :30] != IGNORE_INDEX).all()
        lifted += not torch.equal(out_image[:, :20, :30].sort(-1).values, image.sort(-1).values)
    assert lifted > 3  # the jitter did run on the image part


def test_flip_flips_both():
    image, label = _noise_pair(16, 20)
    cfg = SegAugmentConfig(crop=(16, 20), ratio_range=(1.0, 1.0), hflip=1.0, **GEOMETRIC_ONLY)
    out_image, out_label = SegAugment(cfg)(image, label, sample_generator(0, 0, 0))
    assert torch.equal(out_image, image.flip(-1)) and torch.equal(out_label, label.flip(-1))


def test_cat_max_ratio_prefers_mixed_crops():
    label = torch.zeros(64, 64, dtype=torch.uint8)
    label[20:44, 20:44] = 1
    image = label.expand(3, -1, -1).clone()

    def mixed(ratio: float) -> int:
        count = 0
        for seed in range(60):
            _, out = random_crop(image, label, (16, 16), sample_generator(seed, 0, 0), ratio)
            share = (out == 1).float().mean()
            count += bool(0.25 < share < 0.75)
        return count

    assert mixed(0.75) > mixed(1.0) + 10


def test_photometric_changes_colours_only_within_range():
    image, _ = _noise_pair()
    outs = [photometric(image, sample_generator(s, 0, 0), 32.0, 0.5, 0.5) for s in range(20)]
    assert all(o.dtype == torch.uint8 and o.shape == image.shape for o in outs)
    changed = [not torch.equal(o, image) for o in outs]
    assert 10 < sum(changed) < 20  # each part applies with probability 0.5: some images are left alone
    assert torch.equal(photometric(image, sample_generator(0, 0, 0), 0.0, 0.0, 0.0), image)


def test_deterministic_per_seed_epoch_and_index_and_independent_of_the_batch():
    image, label = _blocks(seed=1)
    split = SegSplit(np.concatenate([image.permute(1, 2, 0).numpy().reshape(-1)] * 3),
                     np.concatenate([label.numpy().reshape(-1)] * 3), np.array([[48, 64]] * 3), ("a", "b", "c"))
    pairs = SegmentationPairs(split)
    first_image, first_label = pairs[0]
    assert torch.equal(first_image, image) and torch.equal(first_label, label)
    augment = SegAugment(SegAugmentConfig(crop=(32, 32)))
    data = AugmentedPairs(pairs, augment, seed=7)
    images, labels = data.__getitems__([(0, 2), (0, 0), (1, 2)])
    assert images.shape == (3, 3, 32, 32) and labels.shape == (3, 32, 32)
    alone_image, alone_label = AugmentedPairs(pairs, augment, seed=7)[(0, 2)]
    assert torch.equal(images[0], alone_image) and torch.equal(labels[0], alone_label)
    assert torch.equal(data[2][0], alone_image)  # a bare index is epoch 0
    assert not torch.equal(images[0], images[1])  # same pixels, another index: other draws
    assert not torch.equal(images[0], images[2])  # another epoch: other draws
    other = AugmentedPairs(pairs, augment, seed=8)[(0, 2)][0]
    assert not torch.equal(other, alone_image)


class RenderedPairs(torch.utils.data.Dataset):
    """A procedural pair dataset: each index renders its own blocks image and labels (like an embedded task)."""

    def __len__(self) -> int:
        return 5

    def __getitem__(self, index: int):
        return _blocks(24, 40, seed=index)


def test_a_procedural_pair_dataset_plugs_in():
    data = AugmentedPairs(RenderedPairs(), SegAugment(SegAugmentConfig(crop=(16, 32), **GEOMETRIC_ONLY)), seed=0)
    images, labels = data.__getitems__([(3, i) for i in range(5)])
    assert images.shape == (5, 3, 16, 32) and labels.shape == (5, 16, 32)
    for image, label in zip(images, labels):
        derived = _labels_from_image(image)
        scored = (derived >= 0) & (label != IGNORE_INDEX)
        assert scored.float().mean() > 0.4 and torch.equal(derived[scored], label[scored].long())
    again = data[(3, 2)]
    assert torch.equal(again[0], images[2]) and torch.equal(again[1], labels[2])


# -- from files (reduced-scale decode) ----------------------------------------------------------------------

def _pair_files(tmp_path, width: int, height: int, fmt: str = "JPEG", seed: int = 0):
    """A photo-like image file and an ADE20K-coded label map (0 = other, 1..5 classes) of its size."""
    from PIL import Image

    from swin_lit.data.photos import photo_like

    array = photo_like(width, height, seed)
    image_path = tmp_path / f"img{seed}.{'jpg' if fmt == 'JPEG' else 'png'}"
    Image.fromarray(array).save(image_path, fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    raw = (array[..., 0] // 43).astype(np.uint8)  # 0..5, aligned with the picture
    label_path = tmp_path / f"lab{seed}.png"
    Image.fromarray(raw).save(label_path)
    return str(image_path), str(label_path), raw


ADE = dict(void=0, shift=1)  # reduce_zero_label


def _whole(image_path: str, label_path: str, coding):
    from swin_lit.data.segmentation import decode_label, decode_rgb

    return (torch.from_numpy(decode_rgb(image_path).copy()).permute(2, 0, 1).contiguous(),
            torch.from_numpy(decode_label(label_path, coding)))


def test_from_files_makes_the_same_draws_as_decoding_whole(tmp_path):
    from swin_lit.data.segmentation import LabelCoding

    coding = LabelCoding(**ADE)
    image_path, label_path, raw = _pair_files(tmp_path, 1024, 768)
    augment = SegAugment(SegAugmentConfig(crop=(128, 128), scale=(2048, 512), ratio_range=(0.1, 0.6),
                                          cat_max_ratio=0.75))
    reduced = 0
    for seed in range(6):
        size = augment.draw_size(768, 1024, sample_generator(seed, 0, 0))
        reduced += max(768 / size[0], 1024 / size[1]) >= 2  # the image was decoded at 1/2 or less
        image, label = augment.from_files(image_path, label_path, coding, sample_generator(seed, 0, 0))
        whole_image, whole_label = augment(*_whole(image_path, label_path, coding), sample_generator(seed, 0, 0))
        assert torch.equal(label, whole_label)  # same draws: same resize, crop, flip; labels decoded whole
        diff = (image.float() - whole_image.float()).abs()
        assert image.shape == (3, 128, 128) and image.dtype == torch.uint8
        assert diff.mean() < 8 and diff.max() < 100, (seed, float(diff.mean()), float(diff.max()))  # aliasing only
    assert reduced >= 4
    # reduce_zero_label: raw 0 -> ignored, 1..5 -> 0..4; never a value outside that
    assert set(torch.unique(label).tolist()) <= {0, 1, 2, 3, 4, IGNORE_INDEX}
    assert 0 in raw


def test_from_files_without_reduction_equals_decoding_whole(tmp_path):
    from swin_lit.data.segmentation import LabelCoding

    coding = LabelCoding(**ADE)
    image_path, label_path, _ = _pair_files(tmp_path, 160, 120, fmt="PNG")
    augment = SegAugment(SegAugmentConfig(crop=(64, 64), ratio_range=(0.3, 1.5)))
    for seed in range(4):
        a = augment.from_files(image_path, label_path, coding, sample_generator(seed, 1, 2))
        b = augment(*_whole(image_path, label_path, coding), sample_generator(seed, 1, 2))
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_from_files_names_a_mismatched_pair(tmp_path):
    from PIL import Image

    from swin_lit.data.segmentation import LabelCoding
    from swin_lit.errors import DataError

    image_path, _, _ = _pair_files(tmp_path, 160, 120)
    small = tmp_path / "small.png"
    Image.fromarray(np.zeros((60, 80), np.uint8)).save(small)
    with pytest.raises(DataError, match="small.png is 80x60 but its image .*img0.jpg is 160x120"):
        SegAugment(SegAugmentConfig(crop=(32, 32))).from_files(image_path, str(small), LabelCoding(**ADE),
                                                               sample_generator(0, 0, 0))


def test_eval_resize_is_the_keep_ratio_fit_into_the_scale(tmp_path):
    from swin_lit.data.seg_augment import eval_resize_from_files
    from swin_lit.data.segmentation import LabelCoding

    coding = LabelCoding(**ADE)
    image_path, label_path, raw = _pair_files(tmp_path, 1200, 300)
    image, label = eval_resize_from_files(image_path, label_path, coding)
    # mmseg's rescale: factor min(2048 / 1200, 512 / 300) = 1.7067 -> (512, 2048): int(x * f + 0.5)
    assert image.shape == (3, 512, 2048) and label.shape == (512, 2048)
    image_path, label_path, raw = _pair_files(tmp_path, 2400, 1000, seed=1)
    image, label = eval_resize_from_files(image_path, label_path, coding, scale=(512, 128))
    # factor min(512 / 2400, 128 / 1000) = 0.128 -> (128, 307); decoded at 1/4 (2400 / 307 = 7.8, 1000 / 128 = 7.8)
    assert image.shape == (3, 128, 307) and label.shape == (128, 307)
    whole = resize_pair(*_whole(image_path, label_path, coding), (128, 307))
    assert torch.equal(label, whole[1])
    assert (image.float() - whole[0].float()).abs().mean() < 8
