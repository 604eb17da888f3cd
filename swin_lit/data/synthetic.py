"""Synthetic "relation scenes": an embedded 8-class image task that needs no download.

Each image shows two *key* objects, a large filled **disc** and a small filled **square**, on a dark colour
gradient, together with up to four *distractors* (a ring, a diamond and two thin bars, each present
with probability 0.7) whose colours come from the same palette, plus Gaussian pixel noise and a random
global brightness gain. The class is a pair of relations between the two key objects, which are
always at least 0.32 image widths apart (so at 32 px they usually fall in different attention windows).

Classes (direction = where the disc's centre is relative to the square's, within +-34 degrees of the
axis; colour = whether the two key objects were given the same palette colour, before a small
per-object jitter):

- 0 ``right-same``, 1 ``left-same``, 2 ``above-same``, 3 ``below-same``: same colour;
- 4 ``right-diff``, 5 ``left-diff``, 6 ``above-diff``, 7 ``below-diff``: different colours.

Solving it needs local shape recognition (disc vs diamond vs ring, square vs bar), binding each key
object to its colour and position, and a comparison across the image: the kind of long-range relation
that window size, shifted windows, merging and relative position bias affect. A random horizontal flip
swaps left and right, so flips must stay off for this task.

A scene is a set of parameters in continuous [0, 1] image coordinates (``Scenes``), drawn by a
counter-based hash of ``(seed, split, index)``, so every image is deterministic, independent of the
batch it is drawn in, and the train/val/test splits are different scene streams. ``render_scenes``
rasterises a batch of scenes at any resolution with one broadcast signed-distance evaluation per
object and a one-pixel analytic anti-aliasing ramp: rendering at 32, 48 or 64 px shows the same scene
with more pixels. Labels cycle through the classes with the index (``label = index % 8``), so every
contiguous range of indices is balanced. Only the pixel noise depends on the resolution.
"""

from __future__ import annotations

import functools
import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from swin_lit.data.classes import (
    DENSE_CLASS_NAMES,
    DIRECTIONS,  # noqa: F401 - re-exported; the names are readable without torch
)
from swin_lit.data.classes import SYNTHETIC_CLASS_NAMES as CLASS_NAMES

NUM_CLASSES = len(CLASS_NAMES)

# Object slots, drawn in this order (keys last, on top). Kinds select the signed distance function.
SLOT_KINDS = ("ring", "diamond", "box", "box", "disc", "box")
DISC, SQUARE = 4, 5
NUM_DISTRACTORS = 4
DISTRACTOR_PRESENCE = 0.7  # probability that each distractor is drawn

PALETTE = torch.tensor(
    [
        [0.90, 0.15, 0.10],  # red
        [0.90, 0.85, 0.15],  # yellow
        [0.15, 0.75, 0.25],  # green
        [0.20, 0.35, 0.95],  # blue
        [0.70, 0.25, 0.85],  # purple
    ]
)
COLOUR_JITTER = 0.06  # uniform +- per channel, per object
RING_HALF_WIDTH = 0.022
# The disc is clearly larger than the square: with equal sizes a tiny Swin at patch 4 could not tell the two
# key objects apart and stayed near chance on the direction half of the label (measured 17% vs 38% top-1).
DISC_RADIUS = (0.12, 0.16)  # key disc radius range (image widths)
SQUARE_HALF = (0.045, 0.065)  # key square half-side range
MIN_DISTANCE, MAX_DISTANCE = 0.32, 0.60  # between the key objects' centres
ANGLE_SPREAD = 0.6  # radians either side of the class direction
KEY_MARGIN = 0.14  # key centres stay this far from the border
NOISE_BANK = 64  # pixel-noise fields per (seed, resolution); each image adds one

_SPLIT_IDS = {"train": 1, "val": 2, "test": 3}
_GOLDEN = 0x9E3779B97F4A7C15
_DRAWS = 64  # uniform numbers per scene


def _mix(z: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser on a uint64 array (wrapping arithmetic)."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def split_id(split: str) -> int:
    """Stream id of a split name; the standard names map to small fixed ids, others to a CRC."""
    return _SPLIT_IDS.get(split, zlib.crc32(split.encode()) + 16)


def uniforms(seed: int, split: str, indices: np.ndarray, n: int = _DRAWS) -> np.ndarray:
    """Deterministic uniforms in [0, 1), float64 (B, n): a pure function of (seed, split, index, column)."""
    with np.errstate(over="ignore"):
        base = _mix(np.array([(seed * 1_000_003 + split_id(split)) % 2**64], dtype=np.uint64))
        keys = _mix(base + np.asarray(indices, dtype=np.uint64) * np.uint64(_GOLDEN))
        cols = (np.arange(1, n + 1, dtype=np.uint64) * np.uint64(_GOLDEN))[None, :]
        bits = _mix(keys[:, None] ^ cols)
    return (bits >> np.uint64(11)).astype(np.float64) * 2.0**-53


@dataclass(frozen=True)
class Scenes:
    """A batch of B scene descriptions in [0, 1] image coordinates (x right, y down); S = 6 slots.

    ``centres`` (B, S, 2) and ``half`` (B, S, 2) half-extents (x, y; a negative extent hides the slot),
    ``colours`` (B, S, 3) in [0, 1], ``background`` (B, 3, 3) rows: base colour, x gradient, y gradient,
    ``noise`` (B,) uniforms choosing the pixel-noise field, ``labels`` (B,) int64.
    """

    centres: torch.Tensor
    half: torch.Tensor
    colours: torch.Tensor
    background: torch.Tensor
    noise: torch.Tensor
    labels: torch.Tensor


def _lerp(u: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
    return lo + (hi - lo) * u


def _key_objects(u: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Disc and square centres (B, 2, 2) and half-extents (B, 2, 2) realising each label's direction."""
    direction = labels % 4
    base_angle = torch.tensor([0.0, math.pi, -math.pi / 2, math.pi / 2])[direction]
    angle = base_angle + _lerp(u[:, 0], -ANGLE_SPREAD, ANGLE_SPREAD)
    dist = _lerp(u[:, 1], MIN_DISTANCE, MAX_DISTANCE)
    offset = torch.stack([dist * torch.cos(angle), dist * torch.sin(angle)], dim=1)  # disc - square
    lo = KEY_MARGIN - offset.clamp(max=0)
    hi = 1 - KEY_MARGIN - offset.clamp(min=0)
    square = lo + (hi - lo) * u[:, 2:4]
    centres = torch.stack([square + offset, square], dim=1)
    disc_r = _lerp(u[:, 4], *DISC_RADIUS)
    square_h = _lerp(u[:, 5], *SQUARE_HALF)
    half = torch.stack([disc_r, square_h], dim=1)[:, :, None].expand(-1, -1, 2)
    return centres, half


def _key_colours(u: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Disc and square palette colours (B, 2, 3): equal entries for 'same' classes, distinct otherwise."""
    n = len(PALETTE)
    first = (u[:, 6] * n).long().clamp(max=n - 1)
    step = 1 + (u[:, 7] * (n - 1)).long().clamp(max=n - 2)
    second = torch.where(labels < 4, first, (first + step) % n)
    return torch.stack([PALETTE[first], PALETTE[second]], dim=1)


def _distractors(u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Centres, half-extents (B, 4, 2) and palette colours (B, 4, 3) of ring, diamond, bar, bar."""
    u = u.reshape(len(u), NUM_DISTRACTORS, 6)
    centres = _lerp(u[..., 0:2], 0.08, 0.92)
    size = _lerp(u[..., 2], 0.04, 0.08)
    half = size[..., None].repeat(1, 1, 2)
    bar_long, bar_short = _lerp(u[:, 2:, 2], 0.08, 0.14), torch.full_like(u[:, 2:, 2], 0.025)
    vertical = u[:, 2:, 3] < 0.5
    half[:, 2:, 0] = torch.where(vertical, bar_short, bar_long)
    half[:, 2:, 1] = torch.where(vertical, bar_long, bar_short)
    half[u[..., 4] >= DISTRACTOR_PRESENCE] = -1.0  # absent
    n = len(PALETTE)
    colours = PALETTE[(u[..., 5] * n).long().clamp(max=n - 1)]
    return centres, half, colours


def make_scenes(seed: int, split: str, indices: Sequence[int] | np.ndarray) -> Scenes:
    """Scene descriptions for ``indices`` of stream ``(seed, split)``; labels are ``index % 8``."""
    idx = np.asarray(indices, dtype=np.int64).reshape(-1)
    u = torch.from_numpy(uniforms(seed, split, idx)).float()
    labels = torch.from_numpy(idx % NUM_CLASSES)
    key_c, key_h = _key_objects(u, labels)
    dis_c, dis_h, dis_col = _distractors(u[:, 30:30 + 6 * NUM_DISTRACTORS])
    jitter = _lerp(u[:, 8:14], -COLOUR_JITTER, COLOUR_JITTER).reshape(-1, 2, 3)
    gain = _lerp(u[:, 14], 0.75, 1.15)[:, None, None]
    colours = torch.cat([dis_col, _key_colours(u, labels) + jitter], dim=1) * gain
    background = torch.stack(
        [_lerp(u[:, 15:18], 0.05, 0.35), _lerp(u[:, 18:21], -0.15, 0.15), _lerp(u[:, 21:24], -0.15, 0.15)], dim=1
    ) * gain
    return Scenes(
        centres=torch.cat([dis_c, key_c], dim=1),
        half=torch.cat([dis_h, key_h], dim=1),
        colours=colours.clamp(0, 1),
        background=background,
        noise=u[:, 24],
        labels=labels,
    )


@functools.lru_cache(maxsize=8)
def _noise_bank(seed: int, img_size: int, sigma: float) -> torch.Tensor:
    """NOISE_BANK Gaussian fields (NOISE_BANK, 3, H, W) scaled by ``sigma``, fixed per (seed, size)."""
    gen = torch.Generator().manual_seed(seed * 7919 + img_size)
    return torch.randn(NOISE_BANK, 3, img_size, img_size, generator=gen).mul_(sigma)


def add_noise(img: torch.Tensor, noise_u: torch.Tensor, seed: int, sigma: float,
              roll_u: torch.Tensor | None = None) -> None:
    """Add to ``img`` (B, 3, H, W) one bank field per image, chosen by ``noise_u`` (B,) in [0, 1).

    ``roll_u`` (B,) in [0, 1), if given, rolls each field cyclically by its own (dy, dx): without it a pixel's
    noise is one of NOISE_BANK fixed values, which a model can learn to read as the pixel's position.
    """
    field = (noise_u * NOISE_BANK).long().clamp(max=NOISE_BANK - 1)
    noise = _noise_bank(seed, img.shape[-1], sigma).index_select(0, field)  # (B, 3, H, W)
    if roll_u is not None:
        h, w = noise.shape[-2:]
        shift = (roll_u * (h * w)).long().clamp(max=h * w - 1)  # (B,) one of the H*W offsets
        rows = (torch.arange(h)[None, :] + (shift // w)[:, None]) % h  # (B, H)
        cols = (torch.arange(w)[None, :] + (shift % w)[:, None]) % w  # (B, W)
        batch = torch.arange(len(noise))[:, None, None]
        noise = noise.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)
    img.add_(noise)


def _coverage(kind: str, dx: torch.Tensor, dy: torch.Tensor, hx: torch.Tensor, hy: torch.Tensor,
              res: int) -> torch.Tensor:
    """Anti-aliased coverage (B, 1, H, W) of one slot; dx (B, 1, 1, W), dy (B, 1, H, 1), hx/hy (B, 1, 1, 1)."""
    if kind == "disc":
        sd = torch.hypot(dx, dy).sub_(hx)
    elif kind == "ring":
        sd = torch.hypot(dx, dy).sub_(hx).abs_().sub_(RING_HALF_WIDTH)
    elif kind == "box":
        sd = torch.maximum(dx.abs() - hx, dy.abs() - hy)
    elif kind == "diamond":
        sd = (dx.abs() + dy.abs()).sub_(hx).mul_(math.sqrt(0.5))
    else:
        raise ValueError(f"unknown shape kind {kind!r}")
    return sd.mul_(-res).add_(0.5).clamp_(0.0, 1.0)


def render_scenes(scenes: Scenes, img_size: int, seed: int = 0, noise: float = 0.05) -> torch.Tensor:
    """Rasterise a batch of scenes at ``img_size`` x ``img_size``: uint8 (B, 3, H, W).

    ``seed`` selects the pixel-noise bank and ``noise`` its standard deviation (0 disables it).
    """
    res = int(img_size)
    grid = (torch.arange(res, dtype=torch.float32) + 0.5) / res
    bg = scenes.background
    img = (bg[:, 0, :, None, None] + bg[:, 1, :, None, None] * (grid - 0.5)[None, None, None, :]
           + bg[:, 2, :, None, None] * (grid - 0.5)[None, None, :, None])  # (B, 3, H, W)
    for slot, kind in enumerate(SLOT_KINDS):
        cx, cy = scenes.centres[:, slot, 0], scenes.centres[:, slot, 1]
        dx = grid[None, None, None, :] - cx[:, None, None, None]
        dy = grid[None, None, :, None] - cy[:, None, None, None]
        hx, hy = scenes.half[:, slot, 0, None, None, None], scenes.half[:, slot, 1, None, None, None]
        alpha = _coverage(kind, dx, dy, hx, hy, res)
        img.lerp_(scenes.colours[:, slot, :, None, None], alpha)
    if noise > 0:
        add_noise(img, scenes.noise, seed, noise)
    return img.mul_(255.0).add_(0.5).clamp_(0.0, 255.0).to(torch.uint8)


# Dense labels (``render_label_maps``, ``swin_lit.data.classes.DENSE_CLASS_NAMES``)
BACKGROUND, DISTRACTOR, SQUARE_CLASS, DISC_CLASSES = 0, 1, 2, 3  # disc pixels: DISC_CLASSES + the scene's label


def render_label_maps(scenes: Scenes, img_size: int) -> torch.Tensor:
    """Pixel labels of a batch of scenes at ``img_size``: uint8 (B, H, W), each pixel the class of the topmost
    object covering at least half of it (the draw order of ``render_scenes``), else background.

    The embedded dense task: background, distractor (any of the four) and square are local appearance; a disc
    pixel's class is the scene's relation (``disc-<direction>-<same|diff>``: where the disc lies relative to the
    square, and whether the two share a colour), so labelling it needs the square, 0.32-0.60 image widths away:
    usually in another attention window, so shifted windows and position bias decide whether it can be read."""
    res = int(img_size)
    grid = (torch.arange(res, dtype=torch.float32) + 0.5) / res
    labels = torch.full((len(scenes.labels), 1, res, res), BACKGROUND, dtype=torch.uint8)
    classes = [DISTRACTOR] * NUM_DISTRACTORS + [None, SQUARE_CLASS]
    for slot, kind in enumerate(SLOT_KINDS):
        cx, cy = scenes.centres[:, slot, 0], scenes.centres[:, slot, 1]
        dx = grid[None, None, None, :] - cx[:, None, None, None]
        dy = grid[None, None, :, None] - cy[:, None, None, None]
        hx, hy = scenes.half[:, slot, 0, None, None, None], scenes.half[:, slot, 1, None, None, None]
        covered = _coverage(kind, dx, dy, hx, hy, res) >= 0.5  # (B, 1, H, W)
        value = (DISC_CLASSES + scenes.labels) if classes[slot] is None else torch.full_like(scenes.labels,
                                                                                              classes[slot])
        labels = torch.where(covered, value.to(torch.uint8)[:, None, None, None], labels)
    return labels[:, 0]


class RenderedSplit(Dataset):
    """One split of an embedded task rendered on the fly: ``size`` scenes of stream ``(seed, split)`` at
    ``img_size``. Items are ``(uint8 image (3, img_size, img_size), int label)``, ``label = index % num_classes``;
    subclasses define ``num_classes``, ``class_names``, ``default_noise`` and ``render`` (a whole batch)."""

    num_classes: int
    class_names: tuple[str, ...]
    default_noise: float

    def __init__(self, size: int, img_size: int = 32, seed: int = 0, split: str = "train",
                 noise: float | None = None):
        if size < 1 or img_size < 1:
            raise ValueError(f"size and img_size must be >= 1, got {size} and {img_size}")
        self.size, self.img_size, self.seed, self.split = size, img_size, seed, split
        self.noise = self.default_noise if noise is None else noise

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        images, labels = self.render([index])
        return images[0], int(labels[0])

    def _check(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        if idx.size and (idx.min() < 0 or idx.max() >= self.size):
            raise IndexError(f"scene index out of range [0, {self.size})")
        return idx

    def labels(self, indices: Sequence[int] | np.ndarray | None = None) -> torch.Tensor:
        """Labels (B,) int64 without rendering; all of them when ``indices`` is None."""
        idx = np.arange(self.size) if indices is None else self._check(indices)
        return torch.from_numpy(idx % self.num_classes)

    def render(self, indices: Sequence[int] | np.ndarray, img_size: int | None = None
               ) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def render_all(self, img_size: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The whole split: uint8 (N, 3, S, S) and int64 (N,), rendered in cache-sized chunks."""
        size = img_size or self.img_size
        chunk = max(16, 2**19 // (size * size))
        images = torch.empty(self.size, 3, size, size, dtype=torch.uint8)
        for start in range(0, self.size, chunk):
            stop = min(start + chunk, self.size)
            images[start:stop] = self.render(np.arange(start, stop), size)[0]
        return images, self.labels()


class SyntheticScenes(RenderedSplit):
    """``size`` relation scenes of split ``split`` (train/val/test streams never coincide).

    Items are ``(uint8 image (3, img_size, img_size), int label)``; ``render`` draws a whole batch.
    """

    num_classes = NUM_CLASSES
    class_names = CLASS_NAMES
    dense_class_names = DENSE_CLASS_NAMES
    default_noise = 0.05

    def scenes(self, indices: Sequence[int] | np.ndarray) -> Scenes:
        """Resolution-free scene parameters of ``indices``."""
        return make_scenes(self.seed, self.split, self._check(indices))

    def render(self, indices: Sequence[int] | np.ndarray, img_size: int | None = None
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """Images uint8 (B, 3, S, S) at ``img_size`` (default: the dataset's) and labels int64 (B,)."""
        scenes = self.scenes(indices)
        return render_scenes(scenes, img_size or self.img_size, self.seed, self.noise), scenes.labels

    def render_dense(self, indices: Sequence[int] | np.ndarray, img_size: int | None = None
                     ) -> tuple[torch.Tensor, torch.Tensor]:
        """Images uint8 (B, 3, S, S) and their label maps uint8 (B, S, S) (``render_label_maps``)."""
        scenes = self.scenes(indices)
        size = img_size or self.img_size
        return render_scenes(scenes, size, self.seed, self.noise), render_label_maps(scenes, size)
