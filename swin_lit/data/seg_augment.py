"""Training augmentation for (image, label map) pairs, and the datasets that serve pairs to it.

A *pair dataset* is any ``Dataset`` whose items are ``(uint8 image (3, H, W), uint8 label map (H, W))`` torch
tensors at the sample's own size, with ``IGNORE_INDEX`` (255) for unscored pixels: ``SegmentationPairs`` serves
a decoded ``SegSplit`` (CamVid, ADE20K) this way, and a procedural dataset that renders such pairs plugs in the
same way. ``AugmentedPairs`` wraps a pair dataset with ``SegAugment`` and returns finished uint8 batches.

``SegAugment`` follows the Swin segmentation recipe (mmseg 0.x, reference 10.2), per sample, in this order:

1. random resize by a ratio drawn uniformly from ``ratio_range``, of the image's own size or (``scale`` set) of
   mmseg's keep-ratio fit into ``scale`` = (long side, short side); image bilinear (or bicubic), labels nearest;
2. random crop to ``crop`` (H, W), the whole side where the image is smaller; with ``cat_max_ratio`` < 1, up
   to 10 redraws until no class covers that share of the crop's labelled pixels and at least two classes are
   present (mmseg's rule);
3. horizontal flip with probability ``hflip`` (image and labels together);
4. photometric jitter, each part with probability 0.5: brightness (add a uniform delta in +-``brightness``, 0-255
   units, as mmseg), contrast (scale around the image's mean grey by a factor in 1 +- ``contrast``), saturation
   (scale away from each pixel's luma by a factor in 1 +- ``saturation``); clipped to 0..255 after each. Unlike
   mmseg there is no hue jitter and the order is fixed;
5. padding bottom/right up to ``crop`` where the crop was smaller: the image with 0, the labels with
   IGNORE_INDEX. (mmseg pads after normalising, so its padding is the mean colour; here it is black.)

``SegAugment.from_files(image_path, label_path, coding, gen)`` is the same augmentation of a pair of files, with
the same draws: the resize is drawn from the label map's header size before anything is decoded, and a JPEG image
is decoded at reduced scale (DCT scaling 1/2, 1/4, 1/8) where the resize shrinks it at least that much
(``swin_lit.data.transforms``); ``eval_resize_from_files`` is mmseg's test transform (keep-ratio fit into
(2048, 512)) of a pair of files.

Randomness comes from a ``torch.Generator`` per sample, seeded from (run seed, epoch, index) by
``sample_generator``: a sample's augmentation does not depend on the batch it is drawn in, on worker processes,
or on where a run was resumed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from swin_lit.data.seg_config import SegAugmentConfig
from swin_lit.data.segmentation import IGNORE_INDEX, LabelCoding, SegSplit, decode_label
from swin_lit.data.transforms import dct_scale, decode_reduced, open_image
from swin_lit.errors import DataError

Pair = tuple[torch.Tensor, torch.Tensor]  # uint8 image (3, H, W), uint8 label map (H, W)
CROP_TRIES = 10  # mmseg's redraws for cat_max_ratio
LUMA = (0.299, 0.587, 0.114)


def sample_generator(seed: int, epoch: int, index: int) -> torch.Generator:
    """A generator that is a pure function of (seed, epoch, index) (well mixed by numpy's SeedSequence)."""
    state = np.random.SeedSequence([seed, epoch, index]).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator().manual_seed(int(state))


def _uniform(gen: torch.Generator, lo: float, hi: float) -> float:
    return lo + (hi - lo) * float(torch.rand((), generator=gen))


# -- geometric ------------------------------------------------------------------------------------

def resized_size(height: int, width: int, ratio: float, scale: tuple[int, int] | None) -> tuple[int, int]:
    """(H', W') after scaling by ``ratio`` the image's own size, or its keep-ratio fit into ``scale`` (mmseg:
    the largest size with long side <= long * ratio and short side <= short * ratio)."""
    if scale is None:
        factor = ratio
    else:
        long, short = scale
        factor = min(long * ratio / max(height, width), short * ratio / min(height, width))
    return max(1, int(height * factor + 0.5)), max(1, int(width * factor + 0.5))


def resize_pair(image: torch.Tensor, label: torch.Tensor, size: tuple[int, int],
                interpolation: str = "bilinear") -> Pair:
    """Resize a pair to ``size`` (H, W): the image bilinear/bicubic, the labels nearest (pixel-centre aligned, so
    the label set never grows). Both stay uint8 (torch's uint8 kernels; a float round trip costs ~10x more).
    Each is resized from its own size (an image decoded at reduced scale needs less resizing than its labels)."""
    size = tuple(size)
    if tuple(image.shape[-2:]) != size:
        image = F.interpolate(image[None], size=size, mode=interpolation, align_corners=False)[0]
    if tuple(label.shape) != size:
        label = F.interpolate(label[None, None], size=size, mode="nearest-exact")[0, 0]
    return image, label


def _crop_box(height: int, width: int, crop: tuple[int, int], gen: torch.Generator) -> tuple[int, int]:
    top = int(torch.randint(max(height - crop[0], 0) + 1, (), generator=gen))
    left = int(torch.randint(max(width - crop[1], 0) + 1, (), generator=gen))
    return top, left


def _balanced(label: torch.Tensor, cat_max_ratio: float) -> bool:
    """mmseg's test: at least two classes present and none above ``cat_max_ratio`` of the labelled pixels."""
    counts = torch.bincount(label.reshape(-1).long(), minlength=256)[:IGNORE_INDEX]
    counts = counts[counts > 0]
    return len(counts) > 1 and float(counts.max()) / float(counts.sum()) < cat_max_ratio


def random_crop(image: torch.Tensor, label: torch.Tensor, crop: tuple[int, int], gen: torch.Generator,
                cat_max_ratio: float = 1.0) -> Pair:
    """A random ``crop`` (H, W) of the pair (views; a side smaller than the crop is kept whole)."""
    H, W = label.shape
    top, left = _crop_box(H, W, crop, gen)
    if cat_max_ratio < 1.0:
        for _ in range(CROP_TRIES):
            if _balanced(label[top : top + crop[0], left : left + crop[1]], cat_max_ratio):
                break
            top, left = _crop_box(H, W, crop, gen)
    return image[:, top : top + crop[0], left : left + crop[1]], label[top : top + crop[0], left : left + crop[1]]


def pad_pair(image: torch.Tensor, label: torch.Tensor, size: tuple[int, int]) -> Pair:
    """Pad a pair bottom/right up to ``size`` (H, W): the image with 0, the labels with IGNORE_INDEX."""
    pad_h, pad_w = max(size[0] - label.shape[0], 0), max(size[1] - label.shape[1], 0)
    if not (pad_h or pad_w):
        return image, label
    return (F.pad(image, (0, pad_w, 0, pad_h), value=0),
            F.pad(label, (0, pad_w, 0, pad_h), value=IGNORE_INDEX))


# -- photometric ----------------------------------------------------------------------------------

def photometric(image: torch.Tensor, gen: torch.Generator, brightness: float, contrast: float,
                saturation: float) -> torch.Tensor:
    """Brightness, contrast and saturation jitter of a uint8 (3, H, W) image, each with probability 0.5."""
    draws = torch.rand(6, generator=gen).tolist()  # (apply, amount) for each of the three
    x = image.float()
    if brightness > 0 and draws[0] < 0.5:
        x = (x + (2 * draws[1] - 1) * brightness).clamp_(0, 255)
    luma = torch.tensor(LUMA).view(3, 1, 1)
    if contrast > 0 and draws[2] < 0.5:
        mean = (x * luma).sum(0).mean()
        x = ((x - mean) * (1 + (2 * draws[3] - 1) * contrast) + mean).clamp_(0, 255)
    if saturation > 0 and draws[4] < 0.5:
        grey = (x * luma).sum(0, keepdim=True)
        x = ((x - grey) * (1 + (2 * draws[5] - 1) * saturation) + grey).clamp_(0, 255)
    return x.round_().to(torch.uint8)


class SegAugment:
    """The training augmentation of one pair: resize, crop, flip, photometric jitter, pad."""

    def __init__(self, cfg: SegAugmentConfig) -> None:
        self.cfg = cfg

    def __call__(self, image: torch.Tensor, label: torch.Tensor, gen: torch.Generator) -> Pair:
        """uint8 (3, H, W) and (H, W) -> uint8 (3, crop_h, crop_w) and (crop_h, crop_w)."""
        return self.finish(image, label, self.draw_size(*label.shape, gen), gen)

    def draw_size(self, height: int, width: int, gen: torch.Generator) -> tuple[int, int]:
        """Step 1's draw: the (H', W') a height x width pair is resized to (the generator's first draw)."""
        return resized_size(height, width, _uniform(gen, *self.cfg.ratio_range), self.cfg.scale)

    def from_files(self, image_path: str, label_path: str, coding: LabelCoding, gen: torch.Generator) -> Pair:
        """The same augmentation of a pair of files, with the same draws as decoding them whole and calling this
        object: the resize is drawn from the label map's header size, then the image (a JPEG) is decoded at the
        largest DCT reduction (1/2, 1/4, 1/8) that keeps it at least the resized size, and resized from there.
        Labels are decoded whole (PNG) and mapped with ``coding``; DataError names a bad file, or a pair whose
        sizes differ."""
        with open_image(label_path) as header:
            width, height = header.size
        size = self.draw_size(height, width, gen)
        with open_image(image_path) as im:
            if im.size != (width, height):
                raise DataError(f"label map {label_path} is {width}x{height} but its image {image_path} is "
                                f"{im.width}x{im.height} (width x height)")
            scale = dct_scale(width, height, size[1], size[0]) if im.format == "JPEG" else 1
            decoded, _, _ = decode_reduced(im, scale, image_path)
            image = torch.from_numpy(np.asarray(decoded, dtype=np.uint8).copy()).permute(2, 0, 1)
        label = torch.from_numpy(decode_label(label_path, coding))
        return self.finish(image, label, size, gen)

    def finish(self, image: torch.Tensor, label: torch.Tensor, size: tuple[int, int], gen: torch.Generator) -> Pair:
        """Steps 1-5 with the resize drawn: the pair (each at any size) resized to ``size``, then crop, flip,
        photometric jitter and pad."""
        cfg = self.cfg
        image, label = resize_pair(image, label, size, cfg.interpolation)
        image, label = random_crop(image, label, cfg.crop, gen, cfg.cat_max_ratio)
        if float(torch.rand((), generator=gen)) < cfg.hflip:
            image, label = image.flip(-1), label.flip(-1)
        image = photometric(image, gen, cfg.brightness, cfg.contrast, cfg.saturation)
        image, label = pad_pair(image, label, cfg.crop)
        return image.contiguous(), label.clone(memory_format=torch.contiguous_format)  # never a view of the data


def eval_resize_from_files(image_path: str, label_path: str, coding: LabelCoding,
                           scale: tuple[int, int] = (2048, 512), interpolation: str = "bilinear") -> Pair:
    """mmseg's test transform of a pair of files: the keep-ratio fit into ``scale`` = (long side, short side)
    (``resized_size`` at ratio 1), the image bilinear from a reduced-scale decode where the fit shrinks it at least
    twice, the labels nearest to the same size (mmseg scores at the label map's own size instead: the model here
    scores logits of the image's size). uint8 (3, H', W') and (H', W')."""
    with open_image(image_path) as im:
        width, height = im.size
        size = resized_size(height, width, 1.0, scale)
        factor = dct_scale(width, height, size[1], size[0]) if im.format == "JPEG" else 1
        decoded, _, _ = decode_reduced(im, factor, image_path)
        image = torch.from_numpy(np.asarray(decoded, dtype=np.uint8).copy()).permute(2, 0, 1)
    label = torch.from_numpy(decode_label(label_path, coding))
    if tuple(label.shape) != (height, width):
        raise DataError(f"label map {label_path} is {label.shape[1]}x{label.shape[0]} but its image {image_path} is "
                        f"{width}x{height} (width x height)")
    image, label = resize_pair(image, label, size, interpolation)
    return image.contiguous(), label.clone(memory_format=torch.contiguous_format)


# -- datasets -------------------------------------------------------------------------------------

class SegmentationPairs(Dataset):
    """A decoded ``SegSplit`` as a pair dataset: items are (uint8 (3, H, W), uint8 (H, W)) views, no copies."""

    def __init__(self, split: SegSplit) -> None:
        self.split = split

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, index: int) -> Pair:
        image = torch.from_numpy(self.split.image(index)).permute(2, 0, 1)  # (H, W, 3) -> (3, H, W)
        return image, torch.from_numpy(self.split.label(index))


def _key(key: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(key, (tuple, list)):
        epoch, index = key
        return int(epoch), int(index)
    return 0, int(key)


class AugmentedPairs(Dataset):
    """A pair dataset with ``SegAugment`` applied; items and batches are uint8 crops.

    Keys are sample indices or ``(epoch, index)`` pairs (a sampler that yields pairs gives every epoch fresh,
    reproducible draws); each sample's generator is ``sample_generator(seed, epoch, index)``.
    """

    def __init__(self, pairs: Dataset, augment: SegAugment, seed: int) -> None:
        self.pairs, self.augment, self.seed = pairs, augment, seed

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, key: int | Sequence[int]) -> Pair:
        epoch, index = _key(key)
        image, label = self.pairs[index]
        return self.augment(image, label, sample_generator(self.seed, epoch, index))

    def __getitems__(self, keys: Sequence) -> Pair:
        """A batch: uint8 images (B, 3, crop_h, crop_w) and label maps (B, crop_h, crop_w)."""
        images, labels = zip(*(self[k] for k in keys))
        return torch.stack(images), torch.stack(labels)
