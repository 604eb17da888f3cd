"""Anchor marks: the embedded 12-class task in which the shifted windows and the relative position bias each
matter on their own (``data.source: marks``, ``configs/marks.yaml``, the quick study's task; results/quick/notes.md
has what was measured), and its dense version (``configs/marks_dense.yaml``).

A scene is an 8x8 grid of cells on a noisy grey background. Three cells are filled:

- the **anchor**, one of three colours (white, black, cyan), in one of the four centre rows and columns
  (cells 2..5 on both axes);
- its **horizontal neighbour**, two cells to the left or right, on the far side of the image's vertical centre
  line, in one of four colours (red, green, blue, yellow);
- its **vertical neighbour**, two cells above or below, on the far side of the horizontal centre line, in one of
  the other three colours.

The class is (anchor colour, colour of the horizontal neighbour): 3 x 4 = 12 classes, ``label = index % 12``, so
that every contiguous range of indices is balanced. The vertical neighbour is the decoy: the image always holds
two neighbour colours, and only their position tells which one names the class.

Why each switch is needed, for the model of ``configs/marks.yaml`` (32 px, patch 4: 8x8 tokens, one cell per
token, window 4, a single stage whose blocks alternate plain and shifted windows):

- **Shift.** The three marks straddle the centre lines, so in the plain 4x4 windows each lies in a different
  window. The shifted windows (shift 2) cover cells 2..5 as one window, which holds all three. Without the
  shift no token ever sees both the anchor and a neighbour; the pooled features know both neighbour colours but
  not which is which, so the colour half of the label is a coin flip: at most 50% top-1.
- **Relative position.** Without it, attention inside a window does not depend on where a token is. Nothing else
  marks position: each cell is exactly one patch and the cells align with every window, there is no patch
  merging (one stage; merging concatenates neighbours in a fixed order and is itself a position code), the
  background has no gradient, and all marks lie away from the wrapped border bands whose shifted-window masks
  would tell a token where it is. The anchor then sees two neighbours it cannot tell apart: again at most 50%.
- **Both.** With the bias, the anchor can weight the horizontal offsets (+-2, 0) above the vertical (0, +-2):
  a symmetric, first-order preference (a plain training loop found it in 3-4 epochs at lr 4e-3). A task that
  needs the *direction* (left or right) asks for an antisymmetric bias, which starts at a saddle point: the
  direction probe of the previous stop sat at chance for 6 epochs before it rose.

The scene is resolution-free (cells are eighths of the image), so rendering at 64 px gives the same scene with
2x2 patches per cell, as the window-transfer studies need. The pixel noise is a field of a fixed bank per
(seed, size), rolled cyclically by an offset of its own per image. Without the roll a pixel's noise is one of
the bank's 64 values at that position, a position code the model can learn: in the quick grid with the plain
bank, ``relative: none`` (shifted windows) rose to 66% test top-1 in one of three seeds, from epoch 12 on; with
the roll that seed stays at 50%. Every image is a pure function of ``(seed, split, index)``. Horizontal flips
keep the labels (a horizontal neighbour stays horizontal).

**The dense version** (``task: segmentation``, ``render_label_maps``, ``configs/marks_dense.yaml``) labels the
same images pixel by pixel, 15 classes: background; the anchor's pixels with the scene's class
(``anchor-<anchor colour>:<horizontal neighbour colour>``, 12 classes); each neighbour's pixels with the side of
the anchor it lies on (``neighbour-horizontal`` / ``neighbour-vertical``). Every mark's label depends on another
mark in another plain window, in a known direction: the anchor needs the shift to see its neighbours and the
relative bias to tell them apart, and so does each neighbour to tell whether the anchor is beside or above it.
A dense model has no global pooling, so without the shift a token knows nothing beyond its window: the anchor
cannot even tell which two neighbour colours the image holds (1 in 4, where the pooled classifier has 1 in 2).
With a head that mixes pixels (3x3 convs at token resolution reach 2 cells) the head could read the relation
itself; the dense config uses the linear head, so that the backbone's switches are what is measured.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from swin_lit.data.classes import MARK_ANCHORS, MARK_COLOUR_NAMES, MARKS_CLASS_NAMES, MARKS_DENSE_CLASS_NAMES
from swin_lit.data.synthetic import RenderedSplit, add_noise, uniforms

NUM_CLASSES = len(MARKS_CLASS_NAMES)
GRID = 8  # cells per side
CENTRE = (2, 3, 4, 5)  # the anchor's rows and columns: those the shifted window around the centre covers
NEIGHBOUR_STEP = 2  # cells between the anchor and each neighbour, across a centre line

ANCHOR_RGB = torch.tensor([[0.95, 0.95, 0.95], [0.05, 0.05, 0.05], [0.10, 0.90, 0.90]])
MARK_RGB = torch.tensor([[0.90, 0.15, 0.10], [0.15, 0.80, 0.20], [0.20, 0.35, 0.95], [0.90, 0.85, 0.15]])
BACKGROUND = (0.25, 0.45)  # uniform grey level per image
NOISE = 0.08  # pixel noise standard deviation
DENSE_ANCHOR, DENSE_HORIZONTAL, DENSE_VERTICAL = 1, 1 + NUM_CLASSES, 2 + NUM_CLASSES  # label-map values
assert len(ANCHOR_RGB) == len(MARK_ANCHORS) and len(MARK_RGB) == len(MARK_COLOUR_NAMES)
assert len(MARKS_DENSE_CLASS_NAMES) == DENSE_VERTICAL + 1


def _across(centre_cell: torch.Tensor) -> torch.Tensor:
    """The cell NEIGHBOUR_STEP away on the far side of the centre line (cells 2, 3 -> 4, 5 and back)."""
    return torch.where(centre_cell < GRID // 2, centre_cell + NEIGHBOUR_STEP, centre_cell - NEIGHBOUR_STEP)


def layout(seed: int, split: str, indices: Sequence[int] | np.ndarray) -> dict[str, torch.Tensor]:
    """Cells and colours of ``indices`` of stream ``(seed, split)``: each value (B,) int64 or (B,) float.

    ``anchor`` (x, y) and neighbour cells, ``anchor_colour`` (0..2), ``h_colour`` / ``v_colour`` (0..3, distinct),
    ``grey`` the background level, ``noise`` / ``noise_roll`` the uniforms that pick the noise field and its
    cyclic offset, ``labels``.
    """
    idx = np.asarray(indices, dtype=np.int64).reshape(-1)
    u = torch.from_numpy(uniforms(seed, split, idx, n=6)).float()
    labels = torch.from_numpy(idx % NUM_CLASSES)
    anchor_colour, h_colour = labels // len(MARK_COLOUR_NAMES), labels % len(MARK_COLOUR_NAMES)
    pick = lambda col, n: (u[:, col] * n).long().clamp(max=n - 1)  # noqa: E731 - a uniform to 0..n-1
    ax, ay = CENTRE[0] + pick(0, len(CENTRE)), CENTRE[0] + pick(1, len(CENTRE))
    v_colour = (h_colour + 1 + pick(2, len(MARK_COLOUR_NAMES) - 1)) % len(MARK_COLOUR_NAMES)
    return {
        "ax": ax, "ay": ay, "hx": _across(ax), "vy": _across(ay),
        "anchor_colour": anchor_colour, "h_colour": h_colour, "v_colour": v_colour,
        "grey": BACKGROUND[0] + (BACKGROUND[1] - BACKGROUND[0]) * u[:, 3], "noise": u[:, 4], "noise_roll": u[:, 5],
        "labels": labels,
    }


def _cells(img_size: int) -> torch.Tensor:
    """(S,) the cell index of each pixel row / column: ``floor(8 * centre / S)``."""
    return ((torch.arange(int(img_size)) + 0.5) * GRID / int(img_size)).long()


def _inside(cell: torch.Tensor, cx: torch.Tensor, cy: torch.Tensor) -> torch.Tensor:
    """(B, S, S) bool: the pixels of cell (cx, cy) of each scene."""
    return (cell[None, :, None] == cy[:, None, None]) & (cell[None, None, :] == cx[:, None, None])


def render(scene: dict[str, torch.Tensor], img_size: int, seed: int = 0, noise: float = NOISE) -> torch.Tensor:
    """Rasterise a batch of layouts at ``img_size`` x ``img_size``: uint8 (B, 3, S, S); a pixel belongs to cell
    ``floor(8 * centre / S)``, so sizes that are multiples of 8 give whole-pixel cells."""
    size = int(img_size)
    cell = _cells(size)
    b = len(scene["labels"])
    img = scene["grey"][:, None, None, None].expand(b, 3, size, size).clone()

    def fill(cx: torch.Tensor, cy: torch.Tensor, rgb: torch.Tensor) -> None:
        img.copy_(torch.where(_inside(cell, cx, cy)[:, None], rgb[:, :, None, None], img))

    fill(scene["ax"], scene["ay"], ANCHOR_RGB[scene["anchor_colour"]])
    fill(scene["hx"], scene["ay"], MARK_RGB[scene["h_colour"]])
    fill(scene["ax"], scene["vy"], MARK_RGB[scene["v_colour"]])
    if noise > 0:
        add_noise(img, scene["noise"], seed, noise, roll_u=scene["noise_roll"])
    return img.mul_(255.0).add_(0.5).clamp_(0.0, 255.0).to(torch.uint8)


def render_label_maps(scene: dict[str, torch.Tensor], img_size: int) -> torch.Tensor:
    """Pixel labels of a batch of layouts: uint8 (B, S, S), the cells of ``render``; values index
    ``MARKS_DENSE_CLASS_NAMES`` (0 background, 1 + class for the anchor, 13 / 14 for the horizontal / vertical
    neighbour)."""
    cell = _cells(img_size)
    labels = torch.zeros(len(scene["labels"]), int(img_size), int(img_size), dtype=torch.uint8)
    marks = ((scene["ax"], scene["ay"], DENSE_ANCHOR + scene["labels"]),
             (scene["hx"], scene["ay"], torch.full_like(scene["labels"], DENSE_HORIZONTAL)),
             (scene["ax"], scene["vy"], torch.full_like(scene["labels"], DENSE_VERTICAL)))
    for cx, cy, value in marks:
        labels = torch.where(_inside(cell, cx, cy), value[:, None, None].to(torch.uint8), labels)
    return labels


class AnchorMarks(RenderedSplit):
    """``size`` anchor-mark scenes of split ``split``: items ``(uint8 image (3, S, S), int label)``; the same
    interface as ``SyntheticScenes``."""

    num_classes = NUM_CLASSES
    class_names = MARKS_CLASS_NAMES
    dense_class_names = MARKS_DENSE_CLASS_NAMES
    default_noise = NOISE

    def layout(self, indices: Sequence[int] | np.ndarray) -> dict[str, torch.Tensor]:
        """Resolution-free cells and colours of ``indices`` (``layout``)."""
        return layout(self.seed, self.split, self._check(indices))

    def render(self, indices: Sequence[int] | np.ndarray, img_size: int | None = None
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """Images uint8 (B, 3, S, S) at ``img_size`` (default: the dataset's) and labels int64 (B,)."""
        scene = self.layout(indices)
        return render(scene, img_size or self.img_size, self.seed, self.noise), scene["labels"]

    def render_dense(self, indices: Sequence[int] | np.ndarray, img_size: int | None = None
                     ) -> tuple[torch.Tensor, torch.Tensor]:
        """Images uint8 (B, 3, S, S) and their label maps uint8 (B, S, S) (``render_label_maps``)."""
        scene, size = self.layout(indices), img_size or self.img_size
        return render(scene, size, self.seed, self.noise), render_label_maps(scene, size)
