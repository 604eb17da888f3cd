"""Position information: the registry of relative position bias kinds, and the absolute embedding's resize.

A relative-bias kind is one ``RelativeBias`` subclass registered under its name (the value of
``model.relative``). The class alone owns everything about the kind:

- its parameters (built for the stage's window M and its head count);
- ``offset_table(window, constants)``: one bias per relative offset (dh, dw) and head, ((2M-1)^2, heads) in
  the row-major order of ``windows.relative_position_index``; ``forward`` gathers it for the query/key pairs
  of a partitioned window ((heads, N, N)) or of a sliding neighbourhood ((heads, 1, M*M)) from an index the
  model's layout holds; ``constants(window)`` are size-only tensors it needs (CPB: the coordinates), built
  once per input size with the layout and cached there;
- ``parameter_count`` and ``flops`` (read by ``swin_lit.models.flops``);
- ``transfer_methods`` and ``moved_state`` / ``normalising_window_after``: how its state moves to another
  window (read by ``swin_lit.models.transfer`` and ``official.load_pretrained``), with a ConfigError naming
  the methods it supports otherwise;
- ``offset_image()``: what ``swin-lit viz bias`` draws;
- ``official_names``: its parameters' names in official checkpoints.

Adding a kind: subclass ``RelativeBias``, implement ``offset_table`` and ``parameter_count`` (and ``flops`` if it
computes more than a lookup), decorate with ``@RELATIVE_BIASES.register("<name>")`` (``swin_lit.models.registry``;
a built-in kind's name is also listed there, so that configs validate without torch). Config validation, FLOPs,
transfer, pictures and ``swin-lit models`` then know it (``docs/extending.md``).
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
import torch.nn as nn
import torch.nn.functional as F

from swin_lit.models.geometry import offset_range
from swin_lit.models.registry import RELATIVE_BIASES
from swin_lit.typed import ConfigError

# CPB coordinates are scaled to [-8, 8] at the normalising window (official constant).
CPB_RANGE = 8.0
# The CPB output is squashed to (0, 16) (official: 16 * sigmoid).
CPB_BIAS_MAX = 16.0
CPB_HIDDEN = 512


def relative_kind(name: str) -> type[RelativeBias] | None:
    """The class registered as ``name``; None for ``"none"``."""
    return None if name == "none" else RELATIVE_BIASES[name]


def build_relative_bias(name: str, window: int, heads: int, normalising_window: int = 0) -> RelativeBias | None:
    """The relative position bias module of kind ``name`` for one block (None for ``"none"``)."""
    kind = relative_kind(name)
    return None if kind is None else kind(window, heads, normalising_window)


class RelativeBias(nn.Module):
    """Base class of a relative position bias kind (module docstring). Built for window ``window`` (M) and
    ``heads`` heads; ``normalising_window`` (0: M) only matters to kinds with ``normalised = True``."""

    name: ClassVar[str] = ""  # set by the registry
    description: ClassVar[str] = ""  # one line: what the bias is (listings, pictures)
    transfer_methods: ClassVar[tuple[str, ...]] = ()  # supported; the first is the default (the paper's)
    normalised: ClassVar[bool] = False  # coordinates normalised by a window (reads pretrained_window_sizes)
    official_names: ClassVar[dict[str, str]] = {}  # official checkpoint name (inside ``attn.``) -> ours

    def __init__(self, window: int, heads: int, normalising_window: int = 0) -> None:
        super().__init__()
        self.window, self.heads = window, heads

    # -- what a kind writes ----------------------------------------------------------------------------
    def offset_table(self, window: int, constants: torch.Tensor | None) -> torch.Tensor:
        """((2w-1)^2, heads): the bias of every relative offset of a window of side ``window``."""
        raise NotImplementedError

    @classmethod
    def parameter_count(cls, window: int, heads: int) -> int:
        """Parameters of one module built for ``window`` and ``heads`` (``count_params`` adds these)."""
        raise NotImplementedError

    @classmethod
    def flops(cls, window: int, heads: int) -> int:
        """MACs of one ``offset_table`` at ``window``; it runs once per block per forward, whatever the batch."""
        return 0

    # -- defaults a kind may override -------------------------------------------------------------------
    def constants(self, window: int) -> torch.Tensor | None:
        """Size-only tensors ``offset_table`` needs at ``window`` (float32 on the CPU; the model moves them to
        its device and dtype and caches them per input size)."""
        return None

    def serves(self, window: int) -> bool:
        """Whether the module can give a bias at ``window`` (another input size may clip a stage's window)."""
        return window <= self.window

    def moved_state(self, state: dict[str, torch.Tensor], method: str) -> dict[str, torch.Tensor]:
        """This module's parameters from the state of a same-kind module trained at another window (names
        relative to the module), moved by ``method``. Default: carried as they are."""
        self.check_method(method)
        return state

    @classmethod
    def normalising_window_after(cls, method: str, trained_window: int) -> int:
        """Kinds with ``normalised``: the normalising window of a stage moved by ``method`` from a model whose
        coordinates were normalised by ``trained_window`` (0: the new window)."""
        return 0

    def offset_image(self) -> torch.Tensor:
        """(heads, 2M-1, 2M-1) what ``swin-lit viz bias`` draws: the bias over the offsets (rows dh, columns dw)."""
        side = 2 * self.window - 1
        constants = self.constants(self.window)
        param = next(self.parameters(), None)
        if constants is not None and param is not None:
            constants = constants.to(param)
        table = self.offset_table(self.window, constants)
        return table.reshape(side, side, -1).permute(2, 0, 1)

    # -- shared -----------------------------------------------------------------------------------------
    @classmethod
    def check_method(cls, method: str) -> None:
        if method not in cls.transfer_methods:
            supported = ", ".join(map(repr, cls.transfer_methods)) or "no method (it cannot be moved to another window)"
            raise ConfigError(f"method: {method!r} does not fit relative {cls.name!r}; it supports {supported}")

    def forward(self, window: int, constants: torch.Tensor | None, index: torch.Tensor) -> torch.Tensor:
        """(heads, *index.shape): the bias of each query/key pair, given the pairs' relative-offset indices
        ((N, N) for a partitioned window, (1, M*M) for a sliding neighbourhood)."""
        return self.offset_table(window, constants)[index].movedim(-1, 0)

    def extra_repr(self) -> str:
        return f"{self.name}, window={self.window}, heads={self.heads}"


@RELATIVE_BIASES.register("table")
class RelativePositionTable(RelativeBias):
    """Swin V1: one learnable bias per relative offset and head, a ((2M-1)^2, heads) table, trunc-normal 0.02.
    At a smaller window (a small input clips the stage) it gives the central (2w-1)^2 entries: the same
    offsets keep the same bias. Moves to another window by the official bicubic resize."""

    description = "Swin V1: one learned bias per relative offset and head"
    transfer_methods = ("bicubic",)
    official_names = {"relative_position_bias_table": "table"}

    def __init__(self, window: int, heads: int, normalising_window: int = 0) -> None:
        super().__init__(window, heads)
        self.table = nn.Parameter(torch.empty((2 * window - 1) ** 2, heads))
        nn.init.trunc_normal_(self.table, std=0.02)

    def offset_table(self, window: int, constants: torch.Tensor | None) -> torch.Tensor:
        if window == self.window:
            return self.table
        side, keep, start = 2 * self.window - 1, 2 * window - 1, self.window - window
        grid = self.table.view(side, side, self.heads)[start : start + keep, start : start + keep]
        return grid.reshape(keep * keep, self.heads)

    @classmethod
    def parameter_count(cls, window: int, heads: int) -> int:
        return (2 * window - 1) ** 2 * heads

    def moved_state(self, state: dict[str, torch.Tensor], method: str) -> dict[str, torch.Tensor]:
        self.check_method(method)
        table = state["table"]
        if table.shape[1] != self.heads:
            raise KeyError(f"table: {table.shape[1]} heads in the checkpoint, {self.heads} in the model")
        return {"table": resize_table(table, 2 * self.window - 1)}


def resize_table(table: torch.Tensor, size: int) -> torch.Tensor:
    """((2M-1)^2, heads) relative bias table -> (size^2, heads), bicubic on the (2M-1)x(2M-1) grid
    (official recipe: align_corners=False, no antialias)."""
    side = int(round(table.shape[0] ** 0.5))
    if side == size:
        return table
    heads = table.shape[1]
    grid = table.T.reshape(1, heads, side, side)
    return F.interpolate(grid, size=(size, size), mode="bicubic").reshape(heads, size * size).T


def relative_offsets(window: int) -> torch.Tensor:
    """(2M-1, 2M-1, 2) float64 table of (dh, dw) offsets, in the row-major order of the offset table
    (``geometry.offset_index``)."""
    r = offset_range(window)
    axis = torch.arange(r.start, r.stop, dtype=torch.float64)
    return torch.stack(torch.meshgrid(axis, axis, indexing="ij"), dim=-1)


def cpb_coordinates(window: int, normalising_window: int, spacing: str) -> torch.Tensor:
    """(2M-1, 2M-1, 2) float32 CPB input coordinates for a window of side M.

    Offsets are divided by (normalising_window - 1) and scaled to [-8, 8], so at the normalising window
    they span exactly [-8, 8]; a larger window than the normalising one extrapolates beyond it.
      - ``log``    (official V2): t -> sign(t) * log2(1 + |t|) / log2(8)   (range +-1.0566 at the norm. window)
      - ``linear`` (Swin V2 paper, Table 1; no public code): t is used as is (range +-8 at the norm. window).
    """
    # float32 arithmetic in the official order (divide, scale, log), so the table matches it bit for bit.
    t = relative_offsets(window).float() / max(normalising_window - 1, 1)
    t = t * CPB_RANGE
    if spacing == "log":
        t = torch.sign(t) * torch.log2(t.abs() + 1.0) / math.log2(CPB_RANGE)
    elif spacing != "linear":
        raise ValueError(f"spacing must be 'log' or 'linear', got {spacing!r}")
    return t


class ContinuousPositionBias(RelativeBias):
    """Swin V2: a small MLP (2 -> 512 -> heads) on the relative coordinates of each offset, 16 * sigmoid(output).
    Coordinates are normalised by the normalising window (``pretrained_window_sizes``, else the built window);
    at another window (another input size, or a transfer) the same normalisation is kept, so each offset keeps
    its coordinate and larger windows extrapolate. Subclasses choose the ``spacing``."""

    spacing: ClassVar[str] = ""
    transfer_methods = ("extrapolate", "renormalize")
    normalised = True
    official_names = {"cpb_mlp.": "mlp."}

    def __init__(self, window: int, heads: int, normalising_window: int = 0) -> None:
        super().__init__(window, heads)
        self.normalising_window = normalising_window or window
        self.mlp = nn.Sequential(
            nn.Linear(2, CPB_HIDDEN), nn.ReLU(inplace=True), nn.Linear(CPB_HIDDEN, heads, bias=False)
        )

    def constants(self, window: int) -> torch.Tensor:
        return cpb_coordinates(window, self.normalising_window, self.spacing).view(-1, 2)  # ((2w-1)^2, 2)

    def offset_table(self, window: int, constants: torch.Tensor | None) -> torch.Tensor:
        return CPB_BIAS_MAX * torch.sigmoid(self.mlp(constants))  # ((2w-1)^2, heads)

    def serves(self, window: int) -> bool:
        return True

    @classmethod
    def parameter_count(cls, window: int, heads: int) -> int:
        return 2 * CPB_HIDDEN + CPB_HIDDEN + CPB_HIDDEN * heads

    @classmethod
    def flops(cls, window: int, heads: int) -> int:
        return (2 * window - 1) ** 2 * (2 * CPB_HIDDEN + CPB_HIDDEN * heads)

    @classmethod
    def normalising_window_after(cls, method: str, trained_window: int) -> int:
        cls.check_method(method)
        return trained_window if method == "extrapolate" else 0

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, normalising_window={self.normalising_window}"


@RELATIVE_BIASES.register("cpb_log")
class LogSpacedCPB(ContinuousPositionBias):
    description = "Swin V2: MLP on log-spaced relative coordinates (official), 16 sigmoid"
    spacing = "log"


@RELATIVE_BIASES.register("cpb_linear")
class LinearSpacedCPB(ContinuousPositionBias):
    description = "Swin V2 Table 1: MLP on linear-spaced relative coordinates, 16 sigmoid"
    spacing = "linear"


def resize_absolute(embed: torch.Tensor, grid: tuple[int, int], new_grid: tuple[int, int]) -> torch.Tensor:
    """(1, H*W, C) absolute embedding of an H x W token grid -> (1, H'*W', C), bicubic (align_corners=False,
    the official recipe and the official dense backbones' resize)."""
    if tuple(grid) == tuple(new_grid):
        return embed
    (H, W), C = grid, embed.shape[2]
    image = embed.reshape(1, H, W, C).permute(0, 3, 1, 2)
    image = F.interpolate(image, size=tuple(new_grid), mode="bicubic")
    return image.permute(0, 2, 3, 1).reshape(1, new_grid[0] * new_grid[1], C)
