"""The per-sample classification recipe (swin_lit.data.transforms) against its definitions, and the batch mix."""

from __future__ import annotations

import io
import math
import pickle
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from swin_lit.data import transforms as T
from swin_lit.data.photos import photo_jpeg, photo_like
from swin_lit.errors import DataError
from swin_lit.train import augment

STD255 = torch.tensor(T.IMAGENET_STD).view(3, 1, 1) * 255
MEAN255 = torch.tensor(T.IMAGENET_MEAN).view(3, 1, 1) * 255


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """A normalised (3, H, W) tensor back to uint8 (H, W, 3)."""
    return (x * STD255 + MEAN255).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()


def png_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def large_jpeg() -> bytes:
    return photo_jpeg(1200, 900, seed=3)


# -- RandomResizedCrop ---------------------------------------------------------------------------

def test_crop_box_bounds_and_distribution_over_many_draws():
    width, height = 500, 375
    rng = gen(0)
    boxes = np.array([T.random_resized_crop_box(width, height, rng) for _ in range(3000)], dtype=np.float64)
    left, top, w, h = boxes.T
    assert (left >= 0).all() and (top >= 0).all() and (left + w <= width).all() and (top + h <= height).all()
    fraction = w * h / (width * height)
    # sides are rounded to whole pixels: the area and log-ratio bounds hold up to that rounding
    assert fraction.min() >= 0.08 * 0.97 and fraction.max() <= 1.0
    log_ratio = np.log(w / h)
    slack = 1.0 / h.min() + 1.0 / w.min()
    assert log_ratio.min() >= math.log(3 / 4) - slack and log_ratio.max() <= math.log(4 / 3) + slack
    # tries that do not fit are redrawn, so large areas are under-represented: the mean lies below 0.54
    assert 0.35 < fraction.mean() < 0.54
    assert abs(log_ratio.mean()) < 0.03  # symmetric in log ratio


def test_crop_box_without_rejections_is_uniform_in_area_and_log_ratio():
    """With scale up to 0.3 on a square image no try is rejected: area ~ U(0.08, 0.3), log ratio ~ U(+-log 4/3)."""
    rng = np.random.default_rng(1)
    boxes = np.array([T.random_resized_crop_box(1000, 1000, rng, scale=(0.08, 0.3)) for _ in range(4000)], float)
    fraction = boxes[:, 2] * boxes[:, 3] / 1e6
    log_ratio = np.log(boxes[:, 2] / boxes[:, 3])
    assert abs(fraction.mean() - 0.19) < 0.005 and abs(fraction.std() - 0.22 / math.sqrt(12)) < 0.005
    half = math.log(4 / 3)
    assert abs(log_ratio.mean()) < 0.01 and abs(log_ratio.std() - 2 * half / math.sqrt(12)) < 0.01
    # the position is uniform over the free range: the centre's mean is the image centre
    assert abs((boxes[:, 0] + boxes[:, 2] / 2).mean() - 500) < 10


def test_crop_box_central_fallback_as_torchvision_defines_it():
    # scale 1 on a 5:1 image: no try fits, the fallback is the centre clamped to the ratio 4/3
    assert T.random_resized_crop_box(1000, 200, gen(0), scale=(1.0, 1.0)) == (366, 0, 267, 200)
    # a 1:5 image: clamped to 3/4 (height = round(200 / 0.75) = 267)
    assert T.random_resized_crop_box(200, 1000, gen(0), scale=(1.0, 1.0)) == (0, 366, 200, 267)
    # an aspect inside the range (400 / 350 = 1.14): the whole image (the only box of area 1 that fits, too)
    assert T.random_resized_crop_box(400, 350, gen(0), scale=(1.0, 1.0), ratio=(1.1, 1.2)) == (0, 0, 400, 350)
    # below the range: full width, height round(400 / 1.2) = 333, centred ((350 - 333) // 2 = 8)
    assert T.random_resized_crop_box(400, 350, gen(0), scale=(1.0, 1.0), ratio=(1.2, 1.2)) == (0, 8, 400, 333)


def test_train_output_is_the_bicubic_resize_of_the_drawn_box():
    array = photo_like(160, 120, seed=5)
    tf = T.ClassificationTransform(size=32, hflip=0.0, randaugment=None, random_erasing=0.0)
    out = tf.train(io.BytesIO(png_bytes(array)), gen(4))
    left, top, w, h = T.random_resized_crop_box(160, 120, gen(4))
    expected = Image.fromarray(array).crop((left, top, left + w, top + h)).resize((32, 32), Image.Resampling.BICUBIC)
    assert out.shape == (3, 32, 32) and out.dtype == torch.float32
    np.testing.assert_array_equal(to_uint8(out), np.asarray(expected))


# -- eval ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("width,height", [(301, 200), (200, 333), (256, 256)])
def test_eval_is_resize_shorter_side_then_centre_crop(width, height):
    array = photo_like(width, height, seed=width)
    out = T.ClassificationTransform(size=224).eval(io.BytesIO(png_bytes(array)))
    short = int(224 * 256 / 224)
    assert short == 256
    if width <= height:
        new = (short, int(short * height / width))
    else:
        new = (int(short * width / height), short)
    resized = Image.fromarray(array).resize(new, Image.Resampling.BICUBIC)
    left, top = int(round((new[0] - 224) / 2.0)), int(round((new[1] - 224) / 2.0))  # round half to even
    expected = np.asarray(resized.crop((left, top, left + 224, top + 224)), dtype=np.float32)
    by_hand = (torch.from_numpy(expected).permute(2, 0, 1) / 255 - torch.tensor(T.IMAGENET_MEAN).view(3, 1, 1)) \
        / torch.tensor(T.IMAGENET_STD).view(3, 1, 1)
    assert out.shape == (3, 224, 224)
    assert float((out - by_hand).abs().max()) < 1e-5


def test_eval_centre_offset_rounds_half_to_even():
    assert T.eval_resize_size(301, 200, 256) == (385, 256)
    assert T.center_crop_box(385, 256, 224) == (80, 16, 224, 224)  # (385 - 224) / 2 = 80.5 -> 80
    assert T.center_crop_box(387, 256, 224) == (82, 16, 224, 224)  # 81.5 -> 82


# -- flip ----------------------------------------------------------------------------------------

def test_flip_mirrors_the_same_crop_and_happens_half_the_time():
    data = png_bytes(photo_like(64, 48, seed=2))
    plain = T.ClassificationTransform(size=32, hflip=0.0, randaugment=None, random_erasing=0.0)
    always = T.ClassificationTransform(size=32, hflip=1.0, randaugment=None, random_erasing=0.0)
    half = T.ClassificationTransform(size=32, hflip=0.5, randaugment=None, random_erasing=0.0)
    flips = 0
    for seed in range(200):
        base = plain.train(io.BytesIO(data), gen(seed))
        assert torch.equal(always.train(io.BytesIO(data), gen(seed)), base.flip(-1))
        out = half.train(io.BytesIO(data), gen(seed))
        flipped = torch.equal(out, base.flip(-1))
        assert flipped or torch.equal(out, base)
        flips += flipped
    assert 70 <= flips <= 130  # Binomial(200, 0.5): +-4.2 sd


# -- random erasing ------------------------------------------------------------------------------

def test_erase_box_area_and_aspect_bounds():
    rng = gen(11)
    boxes = [T.erase_box(224, 224, rng) for _ in range(3000)]
    assert all(b is not None for b in boxes)  # a 1/3 box always fits in a square image within 10 tries
    left, top, w, h = np.array(boxes, dtype=np.float64).T
    assert (left >= 0).all() and (top >= 0).all() and (left + w <= 224).all() and (top + h <= 224).all()
    fraction = w * h / 224**2
    aspect = h / w
    assert fraction.min() >= 0.02 * 0.9 and fraction.max() <= (1 / 3) * 1.05
    assert aspect.min() >= 0.3 * 0.9 and aspect.max() <= (1 / 0.3) * 1.1
    assert abs(np.log(aspect).mean()) < 0.05  # log-uniform, symmetric around 1
    # rejections (w or h not strictly inside) only trim the large, elongated boxes: the mean stays near 0.177
    assert 0.15 < fraction.mean() < 0.18


def test_random_erase_probability_and_per_pixel_normal_fill():
    erased, values = 0, []
    for seed in range(400):
        x = torch.full((3, 64, 64), 7.0)
        T.random_erase(x, 0.25, gen(seed))
        changed = x != 7.0
        if changed.any():
            erased += 1
            values.append(x[changed])
            rows, cols = changed.any(0).nonzero(as_tuple=True)
            box = changed[:, rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
            assert box.float().mean() > 0.99  # one rectangle, all channels
    assert 70 <= erased <= 130  # Binomial(400, 0.25): mean 100, sd 8.7
    pixels = torch.cat(values)
    assert abs(pixels.mean()) < 0.05 and abs(pixels.std() - 1) < 0.05
    x = torch.full((3, 64, 64), 7.0)
    assert torch.equal(T.random_erase(x, 0.0, gen(0)), torch.full((3, 64, 64), 7.0))


# -- RandAugment ---------------------------------------------------------------------------------

def test_randaugment_spec_parses_to_the_recipe():
    ra = T.RandAugment.parse("rand-m9-mstd0.5-inc1")
    assert ra == T.RandAugment(num_ops=2, magnitude=9.0, magnitude_std=0.5, prob=0.5, increasing=True)
    assert ra.fill == (124, 116, 104)
    assert T.RandAugment.parse("rand-n3-m5-mstd101-p1").magnitude_std == math.inf
    assert T.RandAugment.parse("rand-m7") == T.RandAugment(magnitude=7.0, magnitude_std=0.0, increasing=False)
    with pytest.raises(ValueError, match="unknown part 'x9'"):
        T.RandAugment.parse("rand-x9")
    with pytest.raises(ValueError, match="start with 'rand'"):
        T.RandAugment.parse("augmix-m5")


def test_randaugment_op_count_probability_and_magnitude_bookkeeping():
    ra = T.RandAugment.parse("rand-m9-mstd0.5-inc1")
    image = Image.fromarray(photo_like(40, 30, seed=1))
    record: list = []
    rng = gen(5)
    for _ in range(600):
        before = len(record)
        out = ra(image, rng, record)
        assert len(record) == before + 2 and out.size == image.size and out.mode == "RGB"
    applied = [r for r in record if r[1]]
    assert 0.45 < len(applied) / len(record) < 0.55  # each op with probability 0.5
    counts = {op: sum(r[0] == op for r in record) for op in T.OPS}
    assert min(counts.values()) > 1200 / 15 * 0.6  # all 15 ops drawn, uniformly
    levels = np.array([r[2] for r in applied])
    assert levels.min() >= 0 and levels.max() <= 10
    assert abs(levels.mean() - 9) < 0.06 and abs(levels.std() - 0.5) < 0.06
    for op, _, level, arg in applied:  # timm's level-to-argument formulas, increasing forms
        expected = {
            "Rotate": level * 3.0, "ShearX": level * 0.03, "ShearY": level * 0.03,
            "TranslateXRel": level * 0.045 * 40, "TranslateYRel": level * 0.045 * 30,
            "Posterize": 4 - int(level * 0.4), "Solarize": 256 - int(level * 25.6), "SolarizeAdd": int(level * 11),
        }
        if op in expected:
            assert abs(arg) == pytest.approx(expected[op])
        elif op in ("Color", "Contrast", "Brightness", "Sharpness"):
            assert abs(arg - 1) == pytest.approx(level * 0.09)
        else:
            assert arg is None
    signs = [np.sign(arg) for op, _, _, arg in applied if op == "Rotate"]
    assert 0.3 < np.mean(np.array(signs) > 0) < 0.7  # random sign


def test_randaugment_ops_do_what_they_name():
    array = photo_like(24, 16, seed=2)
    image = Image.fromarray(array)
    fill = (124, 116, 104)
    np.testing.assert_array_equal(np.asarray(T._apply("Invert", image, None, fill, T.BICUBIC)), 255 - array)
    solarized = np.asarray(T._apply("Solarize", image, 128, fill, T.BICUBIC))
    np.testing.assert_array_equal(solarized, np.where(array >= 128, 255 - array, array))
    added = np.asarray(T._apply("SolarizeAdd", image, 30, fill, T.BICUBIC))
    np.testing.assert_array_equal(added, np.where(array < 128, np.minimum(array.astype(int) + 30, 255), array))
    np.testing.assert_array_equal(np.asarray(T._apply("Posterize", image, 2, fill, T.BICUBIC)), array & 0b11000000)
    shifted = np.asarray(T._apply("TranslateXRel", image, 5, fill, T.BICUBIC))  # content moves left by 5 px
    np.testing.assert_array_equal(shifted[:, :-5], array[:, 5:])
    assert (shifted[:, -5:] == fill).all()


# -- the whole pipeline ---------------------------------------------------------------------------

def test_same_generator_state_gives_the_same_tensor(large_jpeg):
    tf = T.ClassificationTransform()
    a = tf.train(io.BytesIO(large_jpeg), gen(3))
    assert torch.equal(a, tf.train(io.BytesIO(large_jpeg), gen(3)))
    assert not torch.equal(a, tf.train(io.BytesIO(large_jpeg), gen(4)))
    b = tf.train(io.BytesIO(large_jpeg), np.random.default_rng(3))
    assert torch.equal(b, tf.train(io.BytesIO(large_jpeg), np.random.default_rng(3)))
    assert a.shape == b.shape == (3, 224, 224)
    # DataLoader workers get a pickled copy: it computes the same tensor
    assert torch.equal(pickle.loads(pickle.dumps(tf)).train(io.BytesIO(large_jpeg), gen(3)), a)
    with pytest.raises(TypeError, match="torch.Generator or numpy"):
        tf.train(io.BytesIO(large_jpeg), 3)


def test_reduced_scale_decode_matches_the_full_decode(large_jpeg, tmp_path):
    # explicit boxes at each DCT scale (0-255 units: interpolation error only)
    for box, out, scale in [((37, 21, 500, 460), (224, 224), 2), ((150, 2, 1000, 898), (224, 224), 4),
                            ((5, 3, 1100, 850), (96, 96), 8), ((0, 0, 1200, 900), (224, 168), 4)]:
        assert T.dct_scale(box[2], box[3], *out) == scale
        fast = np.asarray(T.resized_region(io.BytesIO(large_jpeg), box, out), dtype=np.float32)
        plain = np.asarray(T.resized_region(io.BytesIO(large_jpeg), box, out, reduced=False), dtype=np.float32)
        diff = np.abs(fast - plain)
        assert diff.mean() < 3.0 and diff.max() < 40, (box, diff.mean(), diff.max())
    # the whole pipeline, random boxes
    reduced = T.ClassificationTransform(randaugment=None, random_erasing=0.0)
    full = T.ClassificationTransform(randaugment=None, random_erasing=0.0, reduced=False)
    for seed in range(4):
        diff = ((reduced.train(io.BytesIO(large_jpeg), gen(seed)) - full.train(io.BytesIO(large_jpeg), gen(seed)))
                * STD255).abs()
        assert diff.mean() < 3.0 and diff.max() < 40
    diff = ((reduced.eval(io.BytesIO(large_jpeg)) - full.eval(io.BytesIO(large_jpeg))) * STD255).abs()
    assert diff.mean() < 3.0 and diff.max() < 40
    # a PNG has no reduced decode: identical either way
    path = tmp_path / "photo.png"
    path.write_bytes(png_bytes(photo_like(900, 700, seed=1)))
    assert torch.equal(reduced.train(path, gen(1)), full.train(path, gen(1)))


def test_reduced_decode_maps_the_box_into_the_drafted_image(large_jpeg):
    im = Image.open(io.BytesIO(large_jpeg))
    decoded, fx, fy = T.decode_reduced(im, 4)
    assert decoded.size == (300, 225) and fx == fy == 0.25
    assert T.dct_scale(900, 900, 224, 224) == 4 and T.dct_scale(447, 600, 224, 224) == 1
    assert T.dct_scale(1800, 2000, 224, 224) == 8


def test_grayscale_and_bad_files(tmp_path):
    grey = tmp_path / "grey.jpg"
    Image.fromarray(photo_like(300, 200)[..., 0]).save(grey, "JPEG")
    tf = T.ClassificationTransform(size=64)
    assert tf.train(grey, gen(0)).shape == (3, 64, 64) and tf.eval(grey).shape == (3, 64, 64)
    bad = tmp_path / "broken.JPEG"
    bad.write_bytes(b"not an image")
    with pytest.raises(DataError, match="broken.JPEG"):
        tf.train(bad, gen(0))
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(photo_jpeg(300, 200)[:2000])
    with pytest.raises(DataError, match="truncated.jpg"):
        tf.eval(truncated)


def test_from_optim_maps_the_augmentation_strengths():
    optim = SimpleNamespace(randaugment_ops=2, randaugment_magnitude=9, random_erasing=0.25)
    tf = T.ClassificationTransform.from_optim(optim, size=(192, 192))
    assert tf.size == 192 and tf.randaugment == T.RandAugment.parse("rand-m9-mstd0.5-inc1")
    assert tf.random_erasing == 0.25
    off = T.ClassificationTransform.from_optim(SimpleNamespace(randaugment_ops=0, randaugment_magnitude=9,
                                                               random_erasing=0.0), size=224)
    assert off.randaugment is None and off.random_erasing == 0.0
    with pytest.raises(ValueError, match="square"):
        T.ClassificationTransform(size=(224, 192))


# -- mixup / cutmix (batch level, swin_lit.train.augment) ------------------------------------------

def test_mix_switches_between_mixup_and_cutmix_half_the_time_on_the_whole_batch():
    cfg = SimpleNamespace(mixup_alpha=0.8, cutmix_alpha=1.0, mix_prob=1.0)
    x = torch.arange(4.0).view(4, 1, 1, 1).expand(4, 3, 16, 16).contiguous()  # constant images 0, 1, 2, 3
    targets = augment.soft_targets(torch.arange(4), 4, 0.1)
    rng = gen(0)
    cutmix = 0
    for _ in range(300):
        mixed, t = augment.mix(x, targets, cfg, rng)
        assert torch.allclose(t.sum(1), torch.ones(4))
        # image 0 pairs with image 3 (the flipped batch): t[0, 0] - t[0, 3] = (2 lam - 1) x 0.9 (smoothing 0.1)
        lam = (float(t[0, 0] - t[0, 3]) / 0.9 + 1) / 2
        if torch.equal(mixed, mixed.round()):  # cut and paste: every pixel an original (whole) value
            cutmix += 1
            assert float((mixed[0] == 3).float().mean()) == pytest.approx(1 - lam, abs=1e-5)
        else:  # one lambda for the whole batch
            expected = lam * torch.arange(4.0) + (1 - lam) * torch.arange(3.0, -1, -1)
            assert torch.allclose(mixed, expected.view(4, 1, 1, 1).expand_as(mixed), atol=1e-5)
    assert 115 <= cutmix <= 185  # switch probability 0.5: Binomial(300, 0.5), +-4 sd
