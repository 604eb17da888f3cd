"""The official classification recipe as per-sample transforms on image files (Pillow + numpy + torch).

``ClassificationTransform.train(path_or_file, rng)`` is the Swin training pipeline (reference 5.1, timm's
``create_transform`` as the official code calls it), in this order:

1. RandomResizedCrop over the full-resolution image: area fraction uniform in ``scale`` (0.08-1), aspect ratio
   log-uniform in ``ratio`` (3/4-4/3), side lengths rounded, up to 10 tries, then torchvision's central fallback
   (the whole image, or its centre clamped to the ratio range); bicubic resize of the box to ``size``;
2. horizontal flip with probability ``hflip`` (0.5);
3. RandAugment ``rand-m9-mstd0.5-inc1`` (``RandAugment``): two ops drawn uniformly with replacement from the
   increasing-severity set, each applied with probability 0.5 at magnitude N(9, 0.5) clipped to [0, 10];
4. to a float tensor in [0, 1], normalised with the ImageNet mean and std;
5. random erasing (probability 0.25, one box of 2%-1/3 of the area with log-uniform aspect 0.3-3.3, up to 10
   tries, filled with per-pixel standard normal values: timm's 'pixel' mode).

``eval(path_or_file)``: the shorter side resized to ``int(size * 256 / 224)`` (bicubic, the longer side
``int(new_short * long / short)`` as torchvision computes it), then the centre ``size`` x ``size`` crop (offsets
``int(round((side - size) / 2))``), normalised.

Fast decoding: the crop box is drawn from the size in the file's header (``Image.open`` reads nothing else).
Where the box is at least twice the output on both sides and the file is a JPEG, it is decoded at 1/2, 1/4 or
1/8 scale by the JPEG decoder itself (``Image.draft``, DCT scaling: the largest factor that keeps the box at
least the output size) and the box is mapped into the reduced image (fractional coordinates, ``resize(box=)``);
the output equals the full decode within interpolation error (tests/test_transforms.py bounds it). The eval
transform does the same with the resize's factor.

Every random draw comes from the generator passed in (a ``torch.Generator`` or a ``numpy.random.Generator``):
the same generator state gives the same tensor, whatever process computes it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch
from PIL import Image, ImageEnhance, ImageOps

from swin_lit.errors import DataError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
BICUBIC = Image.Resampling.BICUBIC
Source = str | Path | IO[bytes]
Box = tuple[int, int, int, int]  # (left, top, width, height) in full-image pixels
CROP_TRIES = 10
ERASE_TRIES = 10
DCT_SCALES = (8, 4, 2)  # libjpeg's reduced-size decodes used here (1/8, 1/4, 1/2)


# -- random draws ---------------------------------------------------------------------------------

class Draws:
    """Scalar and tensor draws from one generator, torch or numpy (every draw of a transform goes through it)."""

    def __init__(self, rng: torch.Generator | np.random.Generator) -> None:
        if isinstance(rng, torch.Generator):
            self._torch, self._np = rng, None
        elif isinstance(rng, np.random.Generator):
            self._torch, self._np = None, rng
        else:
            raise TypeError(f"rng must be a torch.Generator or numpy.random.Generator, got {type(rng).__name__}")

    def random(self) -> float:
        """Uniform in [0, 1)."""
        if self._np is not None:
            return float(self._np.random())
        return float(torch.rand((), generator=self._torch, dtype=torch.float64))

    def uniform(self, lo: float, hi: float) -> float:
        return lo + (hi - lo) * self.random()

    def integer(self, lo: int, hi: int) -> int:
        """Uniform integer in [lo, hi], both ends included."""
        if self._np is not None:
            return int(self._np.integers(lo, hi + 1))
        return int(torch.randint(lo, hi + 1, (), generator=self._torch))

    def gauss(self, mean: float, std: float) -> float:
        if self._np is not None:
            return float(self._np.normal(mean, std))
        return mean + std * float(torch.randn((), generator=self._torch, dtype=torch.float64))

    def normal(self, shape: tuple[int, ...]) -> torch.Tensor:
        """Standard normal float32 tensor."""
        if self._np is not None:
            return torch.from_numpy(self._np.standard_normal(shape, dtype=np.float32))
        return torch.randn(shape, generator=self._torch)


def _draws(rng: torch.Generator | np.random.Generator | Draws) -> Draws:
    return rng if isinstance(rng, Draws) else Draws(rng)


# -- geometry -------------------------------------------------------------------------------------

def random_resized_crop_box(width: int, height: int, rng, scale: tuple[float, float] = (0.08, 1.0),
                            ratio: tuple[float, float] = (3 / 4, 4 / 3)) -> Box:
    """torchvision's ``RandomResizedCrop.get_params``: (left, top, w, h) of the crop in a width x height image."""
    draws = _draws(rng)
    area = width * height
    log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
    for _ in range(CROP_TRIES):
        target = area * draws.uniform(*scale)
        aspect = math.exp(draws.uniform(log_lo, log_hi))
        w = int(round(math.sqrt(target * aspect)))
        h = int(round(math.sqrt(target / aspect)))
        if 0 < w <= width and 0 < h <= height:
            top = draws.integer(0, height - h)
            left = draws.integer(0, width - w)
            return left, top, w, h
    in_ratio = width / height  # central fallback
    if in_ratio < min(ratio):
        w, h = width, int(round(width / min(ratio)))
    elif in_ratio > max(ratio):
        w, h = int(round(height * max(ratio))), height
    else:
        w, h = width, height
    return (width - w) // 2, (height - h) // 2, w, h


def eval_resize_size(width: int, height: int, short: int) -> tuple[int, int]:
    """torchvision's ``Resize(short)``: the shorter side to ``short``, the longer ``int(short * long / short_side)``."""
    if width <= height:
        return short, int(short * height / width)
    return int(short * width / height), short


def center_crop_box(width: int, height: int, size: int) -> Box:
    """torchvision's ``CenterCrop(size)`` on an image at least ``size`` on both sides."""
    return int(round((width - size) / 2.0)), int(round((height - size) / 2.0)), size, size


def dct_scale(box_w: float, box_h: float, out_w: int, out_h: int) -> int:
    """The largest JPEG DCT reduction (8, 4, 2, else 1) that keeps a box of box_w x box_h at least out_w x out_h."""
    factor = min(box_w / out_w, box_h / out_h)
    return next((s for s in DCT_SCALES if s <= factor), 1)


# -- decoding -------------------------------------------------------------------------------------

def _name(src: Source) -> str:
    return str(src) if isinstance(src, (str, Path)) else getattr(src, "name", "<file object>")


def open_image(src: Source) -> Image.Image:
    """The image's header only (size, mode, format): DataError naming the file when it is not an image."""
    try:
        return Image.open(src)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise DataError(f"cannot read image {_name(src)}: {err}") from None


def decode_reduced(im: Image.Image, scale: int, src: Source = "") -> tuple[Image.Image, float, float]:
    """Decode an opened image as RGB, at 1/``scale`` where the format allows it (JPEG). Returns the image and
    the factors (x, y) that map full-image coordinates into it (1.0 where it was decoded at full size)."""
    width, height = im.size
    fx = fy = 1.0
    try:
        if scale > 1:
            drafted = im.draft("RGB", (width // scale, height // scale))
            if drafted is not None:
                _, (_, _, bw, bh) = drafted
                fx, fy = bw / width, bh / height
        im.load()
        return (im if im.mode == "RGB" else im.convert("RGB")), fx, fy
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise DataError(f"cannot decode image {_name(src)}: {err}") from None


def resized_region(src: Source | Image.Image, box: Box | None, out: tuple[int, int], reduced: bool = True,
                   reducing_gap: float | None = None) -> Image.Image:
    """The ``box`` (left, top, w, h; None: whole image) of an image file resized bicubically to ``out`` (w, h),
    decoded at reduced scale where the box allows it (``reduced``)."""
    im = src if isinstance(src, Image.Image) else open_image(src)
    with im:
        if box is None:
            box = (0, 0, *im.size)
        left, top, w, h = box
        scale = dct_scale(w, h, *out) if reduced and im.format == "JPEG" else 1
        decoded, fx, fy = decode_reduced(im, scale, src if not isinstance(src, Image.Image) else "")
    # crop first (as torchvision does: the filter does not reach past the box's edges), to the whole pixels
    # that hold the box; a reduced decode leaves fractional offsets inside them for the resize
    x0, y0, x1, y1 = left * fx, top * fy, (left + w) * fx, (top + h) * fy
    ix0, iy0 = math.floor(x0), math.floor(y0)
    ix1, iy1 = min(math.ceil(x1), decoded.width), min(math.ceil(y1), decoded.height)
    cropped = decoded.crop((ix0, iy0, ix1, iy1))
    return cropped.resize(out, BICUBIC, box=(x0 - ix0, y0 - iy0, min(x1, ix1) - ix0, min(y1, iy1) - iy0),
                          reducing_gap=reducing_gap)


def to_tensor(im: Image.Image, mean: tuple[float, ...] = IMAGENET_MEAN,
              std: tuple[float, ...] = IMAGENET_STD) -> torch.Tensor:
    """RGB PIL image -> float32 (3, H, W), (x / 255 - mean) / std."""
    # CHW uint8 made contiguous before the float ops (2x faster than normalising the channels-last view)
    x = torch.from_numpy(np.array(im, dtype=np.uint8)).permute(2, 0, 1).contiguous().float()
    scale = torch.tensor([1.0 / (255.0 * s) for s in std]).view(3, 1, 1)
    shift = torch.tensor([m / s for m, s in zip(mean, std)]).view(3, 1, 1)
    return x.mul_(scale).sub_(shift)


# -- RandAugment ----------------------------------------------------------------------------------

LEVEL_MAX = 10.0


def _negate(v: float, draws: Draws) -> float:
    return -v if draws.random() > 0.5 else v


def _solarize_add(im: Image.Image, add: int, thresh: int = 128) -> Image.Image:
    lut = [min(255, i + add) if i < thresh else i for i in range(256)]
    return im.point(lut * len(im.getbands()))


def _affine(im: Image.Image, coeffs: tuple[float, ...], fill, resample) -> Image.Image:
    return im.transform(im.size, Image.Transform.AFFINE, coeffs, resample=resample, fillcolor=fill)


def _posterize(im: Image.Image, bits: int) -> Image.Image:
    """Keep the ``bits`` most significant bits (0 bits: black, as the increasing form reaches at magnitude 10)."""
    if bits >= 8:
        return im
    mask = ~(2 ** (8 - bits) - 1) & 0xFF
    return im.point([i & mask for i in range(256)] * len(im.getbands()))


# Each op: (level -> argument(s) with its random sign, (image, argument, augment) -> image). The level is the
# magnitude in [0, 10]; the argument formulas are timm's documented ones (auto_augment.py level_to_arg).
def _enhance(level: float, draws: Draws, increasing: bool) -> float:
    if increasing:
        return max(0.1, 1.0 + _negate(level / LEVEL_MAX * 0.9, draws))
    return level / LEVEL_MAX * 1.8 + 0.1


def _level_args(op: str, level: float, draws: Draws, increasing: bool, width: int, height: int):
    if op in ("AutoContrast", "Equalize", "Invert"):
        return None
    if op == "Rotate":
        return _negate(level / LEVEL_MAX * 30.0, draws)
    if op in ("ShearX", "ShearY"):
        return _negate(level / LEVEL_MAX * 0.3, draws)
    if op == "TranslateXRel":
        return _negate(level / LEVEL_MAX * 0.45, draws) * width
    if op == "TranslateYRel":
        return _negate(level / LEVEL_MAX * 0.45, draws) * height
    if op == "Posterize":
        bits = int(level / LEVEL_MAX * 4)
        return 4 - bits if increasing else bits
    if op == "Solarize":
        thresh = int(level / LEVEL_MAX * 256)
        return 256 - thresh if increasing else thresh
    if op == "SolarizeAdd":
        return int(level / LEVEL_MAX * 110)
    if op in ("Color", "Contrast", "Brightness", "Sharpness"):
        return _enhance(level, draws, increasing)
    raise KeyError(op)


_ENHANCERS = {"Color": ImageEnhance.Color, "Contrast": ImageEnhance.Contrast,
              "Brightness": ImageEnhance.Brightness, "Sharpness": ImageEnhance.Sharpness}


def _apply(op: str, im: Image.Image, arg, fill, resample) -> Image.Image:
    if op == "AutoContrast":
        return ImageOps.autocontrast(im)
    if op == "Equalize":
        return ImageOps.equalize(im)
    if op == "Invert":
        return ImageOps.invert(im)
    if op == "Rotate":
        return im.rotate(arg, resample=resample, fillcolor=fill)
    if op == "ShearX":
        return _affine(im, (1, arg, 0, 0, 1, 0), fill, resample)
    if op == "ShearY":
        return _affine(im, (1, 0, 0, arg, 1, 0), fill, resample)
    if op == "TranslateXRel":
        return _affine(im, (1, 0, arg, 0, 1, 0), fill, resample)
    if op == "TranslateYRel":
        return _affine(im, (1, 0, 0, 0, 1, arg), fill, resample)
    if op == "Posterize":
        return _posterize(im, arg)
    if op == "Solarize":
        return ImageOps.solarize(im, arg)
    if op == "SolarizeAdd":
        return _solarize_add(im, arg)
    return _ENHANCERS[op](im).enhance(arg)


# timm's _RAND_TRANSFORMS / _RAND_INCREASING_TRANSFORMS (Cutout left out there too: random erasing replaces it).
OPS = ("AutoContrast", "Equalize", "Invert", "Rotate", "Posterize", "Solarize", "SolarizeAdd", "Color",
       "Contrast", "Brightness", "Sharpness", "ShearX", "ShearY", "TranslateXRel", "TranslateYRel")


@dataclass(frozen=True)
class RandAugment:
    """timm's RandAugment on PIL images: ``num_ops`` ops drawn uniformly with replacement from ``OPS``, each
    applied with probability ``prob``, its magnitude drawn N(``magnitude``, ``magnitude_std``) and clipped to
    [0, 10] (``magnitude_std`` inf: uniform in [0, magnitude]); ``increasing`` picks the increasing-severity
    forms of Posterize, Solarize and the enhancers (severity grows with the magnitude, in both directions).
    Geometric ops fill with ``fill`` (the ImageNet mean in 0-255) and resample bicubically (the recipe's
    interpolation); translations are 0.45 x magnitude/10 of the image side."""

    num_ops: int = 2
    magnitude: float = 9.0
    magnitude_std: float = 0.5
    prob: float = 0.5
    increasing: bool = True
    fill: tuple[int, int, int] = tuple(min(255, round(255 * m)) for m in IMAGENET_MEAN)  # (124, 116, 104)

    def __post_init__(self) -> None:
        if self.num_ops < 0:
            raise ValueError(f"RandAugment num_ops must be >= 0, got {self.num_ops}")
        if not 0 <= self.magnitude <= LEVEL_MAX:
            raise ValueError(f"RandAugment magnitude must be in [0, {LEVEL_MAX:g}], got {self.magnitude}")
        if self.magnitude_std < 0 or not 0 <= self.prob <= 1:
            raise ValueError(f"RandAugment needs magnitude_std >= 0 and prob in [0, 1], got "
                             f"{self.magnitude_std}, {self.prob}")

    @classmethod
    def parse(cls, spec: str) -> RandAugment:
        """timm's config string, e.g. ``rand-m9-mstd0.5-inc1``: n (ops), m (magnitude), mstd (its std; > 100
        means uniform), inc (0/1), p (op probability), with timm's defaults for the parts left out (n 2, m 10,
        mstd 0, inc 0, p 0.5). ValueError naming an unknown part."""
        parts = spec.split("-")
        if parts[0] != "rand":
            raise ValueError(f"RandAugment spec must start with 'rand', got {spec!r}")
        kw: dict[str, Any] = dict(num_ops=2, magnitude=LEVEL_MAX, magnitude_std=0.0, prob=0.5, increasing=False)
        for part in parts[1:]:
            match = re.fullmatch(r"(mstd|inc|m|n|p)(\d+(?:\.\d+)?)", part)
            if match is None:
                raise ValueError(f"RandAugment spec {spec!r}: unknown part {part!r} (allowed: m, n, mstd, inc, p)")
            key, value = match.group(1), float(match.group(2))
            if key == "mstd":
                kw["magnitude_std"] = math.inf if value > 100 else value
            elif key == "inc":
                kw["increasing"] = bool(value)
            elif key == "m":
                kw["magnitude"] = value
            elif key == "n":
                kw["num_ops"] = int(value)
            else:
                kw["prob"] = value
        return cls(**kw)

    def __call__(self, im: Image.Image, rng, record: list | None = None) -> Image.Image:
        """Augment one RGB image. ``record``, when given, receives one ``(op, applied, magnitude, argument)``
        per drawn op (magnitude and argument None when the op was skipped)."""
        draws = _draws(rng)
        for _ in range(self.num_ops):
            op = OPS[draws.integer(0, len(OPS) - 1)]
            if self.prob < 1.0 and draws.random() > self.prob:
                if record is not None:
                    record.append((op, False, None, None))
                continue
            if math.isinf(self.magnitude_std):
                level = draws.uniform(0.0, self.magnitude)
            elif self.magnitude_std > 0:
                level = draws.gauss(self.magnitude, self.magnitude_std)
            else:
                level = self.magnitude
            level = max(0.0, min(level, LEVEL_MAX))
            arg = _level_args(op, level, draws, self.increasing, *im.size)
            im = _apply(op, im, arg, self.fill, BICUBIC)
            if record is not None:
                record.append((op, True, level, arg))
        return im


# -- random erasing -------------------------------------------------------------------------------

def erase_box(height: int, width: int, rng, area: tuple[float, float] = (0.02, 1 / 3),
              aspect: tuple[float, float] = (0.3, 1 / 0.3)) -> Box | None:
    """timm's RandomErasing box (count 1): up to 10 tries of area fraction uniform in ``area`` and aspect (h/w)
    log-uniform in ``aspect``; (left, top, w, h), or None when no try fits strictly inside the image."""
    draws = _draws(rng)
    log_lo, log_hi = math.log(aspect[0]), math.log(aspect[1])
    for _ in range(ERASE_TRIES):
        target = draws.uniform(*area) * height * width
        ratio = math.exp(draws.uniform(log_lo, log_hi))
        h = int(round(math.sqrt(target * ratio)))
        w = int(round(math.sqrt(target / ratio)))
        if w < width and h < height:
            top = draws.integer(0, height - h)
            left = draws.integer(0, width - w)
            return left, top, w, h
    return None


def random_erase(x: torch.Tensor, p: float, rng) -> torch.Tensor:
    """With probability ``p``, one ``erase_box`` of the (C, H, W) tensor filled with per-pixel N(0, 1) (in place)."""
    draws = _draws(rng)
    if p <= 0 or draws.random() > p:
        return x
    box = erase_box(x.shape[1], x.shape[2], draws)
    if box is not None:
        left, top, w, h = box
        x[:, top : top + h, left : left + w] = draws.normal((x.shape[0], h, w)).to(x.dtype)
    return x


# -- the recipe -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class ClassificationTransform:
    """The official train and eval transforms of one image file (see the module docstring)."""

    size: int = 224
    scale: tuple[float, float] = (0.08, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    hflip: float = 0.5
    randaugment: RandAugment | None = field(default_factory=RandAugment)
    random_erasing: float = 0.25
    eval_crop_pct: float = 224 / 256
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    reduced: bool = True  # decode JPEGs at reduced scale where the box allows it
    reducing_gap: float | None = None  # Pillow's two-step resize (None: one exact bicubic resize)

    def __post_init__(self) -> None:
        if isinstance(self.size, (tuple, list)):
            if len(self.size) != 2 or self.size[0] != self.size[1]:
                raise ValueError(f"classification transforms need a square size, got {list(self.size)}")
            object.__setattr__(self, "size", int(self.size[0]))
        if self.size < 1:
            raise ValueError(f"size must be >= 1, got {self.size}")
        if not (0 < self.scale[0] <= self.scale[1] and 0 < self.ratio[0] <= self.ratio[1]):
            raise ValueError(f"scale and ratio must be (low, high) with 0 < low <= high, got {self.scale}, "
                             f"{self.ratio}")
        if not (0 <= self.hflip <= 1 and 0 <= self.random_erasing <= 1 and 0 < self.eval_crop_pct <= 1):
            raise ValueError("hflip and random_erasing are probabilities and eval_crop_pct is in (0, 1]")

    @classmethod
    def from_optim(cls, optim, size: int, **kw) -> ClassificationTransform:
        """The recipe with the augmentation strengths of an ``OptimConfig``: ``randaugment_ops`` (0: none) at
        ``randaugment_magnitude`` (std 0.5, increasing set, as ``rand-m9-mstd0.5-inc1``) and ``random_erasing``."""
        ra = (RandAugment(num_ops=optim.randaugment_ops, magnitude=float(optim.randaugment_magnitude))
              if optim.randaugment_ops else None)
        return cls(size=size, randaugment=ra, random_erasing=optim.random_erasing, **kw)

    @property
    def eval_short_side(self) -> int:
        return int(self.size / self.eval_crop_pct)

    def train(self, src: Source, rng: torch.Generator | np.random.Generator) -> torch.Tensor:
        """One training sample: float32 (3, size, size)."""
        draws = Draws(rng)
        im = open_image(src)
        box = random_resized_crop_box(*im.size, draws, self.scale, self.ratio)
        out = resized_region(im, box, (self.size, self.size), self.reduced, self.reducing_gap)
        if self.hflip > 0 and draws.random() < self.hflip:
            out = out.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        if self.randaugment is not None:
            out = self.randaugment(out, draws)
        x = to_tensor(out, self.mean, self.std)
        return random_erase(x, self.random_erasing, draws)

    def eval(self, src: Source) -> torch.Tensor:
        """One evaluation sample: float32 (3, size, size), resize-shorter-side then centre crop."""
        im = open_image(src)
        with im:
            width, height = im.size  # before a draft changes it
            new_w, new_h = eval_resize_size(width, height, self.eval_short_side)
            scale = dct_scale(width, height, new_w, new_h) if self.reduced and im.format == "JPEG" else 1
            decoded, fx, fy = decode_reduced(im, scale, src)
            resized = decoded.resize((new_w, new_h), BICUBIC, box=(0, 0, width * fx, height * fy),
                                     reducing_gap=self.reducing_gap)
        left, top, w, h = center_crop_box(new_w, new_h, self.size)
        return to_tensor(resized.crop((left, top, left + w, top + h)), self.mean, self.std)
