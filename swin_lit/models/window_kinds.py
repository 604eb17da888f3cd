"""Registry of the window kind (``model.windows``): which keys each query meets, and how the attention runs on them.

A window kind is one ``WindowKind`` subclass registered with ``@WINDOWS.register("<name>")``. Kinds hold no state
(the attention module holds the parameters, as for the similarity kinds). A kind owns:

- ``layout(geometry, shift)``: the tensors one block runs on at one input size, built once per size
  (``Stage.layout``, cached by ``SwinTransformer.layout``), never per forward: ``gather``, ``scatter``, ``mask``
  and ``relative_index`` (``WindowTensors``: what each holds is the kind's to say);
- ``split(attn, x, layout)``: the block's tokens (B, L, C) grouped for the shared attention kernel
  (``WindowAttention.attend``): q (G, h, Nq, d), k and v (G, h, Nk, d), with the similarity kind's scale (the kind
  calls ``attn.project``, the similarity's projection); ``join(attn, out, layout, shape)``: the kernel's output
  (G, h, Nq, d) back to tokens (B, L, C), through the output projection;
- ``attention_tokens(geometry, shift)``: (T, K), the tokens the block's qkv, attention and output projection run on
  (one query each) and the keys each query meets, read by ``swin_lit.models.flops``;
- torch-free facts that validation reads before any import (for a built-in kind the registry declares them, pinned
  to the classes by a test): ``shifts``, whether its windows take the shift kind's shift (``SwinConfig`` refuses a
  shifting ``shift`` with a kind that does not); ``partitions``, whether each block's windows partition its
  padded grid of whole windows (``StageGeometry.grid``: every real token in exactly one window slot).

``docs/extending.md`` walks through adding a kind.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, NamedTuple

import torch

from swin_lit.models.registry import WINDOWS
from swin_lit.models.windows import (
    attention_mask,
    from_windows,
    relative_position_index,
    sliding_neighbours,
    sliding_relative_index,
    to_windows,
    window_order,
)

if TYPE_CHECKING:
    from swin_lit.models.attention import WindowAttention
    from swin_lit.models.geometry import StageGeometry


class WindowTensors(NamedTuple):
    """The index and mask tensors of one block at one input size (``BlockLayout`` holds them with the window and
    the relative bias's constants)."""

    gather: torch.Tensor  # long: the tokens the kind reads, in its order (index L: a zero padding token)
    scatter: torch.Tensor | None  # long: the inverse of gather, or None
    mask: torch.Tensor | None  # additive logit mask, broadcast over heads, or None
    relative_index: torch.Tensor  # long index into the (2M-1)^2 offset table of each query/key pair


class WindowKind:
    """Base class of a window kind (module docstring)."""

    name: ClassVar[str] = ""  # set by the registry
    description: ClassVar[str] = ""  # one line (listings, pictures, error messages)
    shifts: ClassVar[bool] = True  # its windows take the shift kind's shift
    partitions: ClassVar[bool] = True  # its windows partition the padded grid (every real token in one slot)

    @classmethod
    def layout(cls, geometry: StageGeometry, shift: int) -> WindowTensors:
        """The tensors of a block with ``shift`` on ``geometry`` (CPU; the model moves them)."""
        raise NotImplementedError

    @classmethod
    def split(cls, attn: WindowAttention, x: torch.Tensor, layout) -> tuple:
        """x (B, L, C) -> q (G, h, Nq, d), k and v (G, h, Nk, d) and the scale of q k^T."""
        raise NotImplementedError

    @classmethod
    def join(cls, attn: WindowAttention, out: torch.Tensor, layout, shape: torch.Size) -> torch.Tensor:
        """The kernel's output (G, h, Nq, d) -> (B, L, C) tokens (``shape``: the block input's), projected."""
        raise NotImplementedError

    @classmethod
    def attention_tokens(cls, geometry: StageGeometry, shift: int) -> tuple[int, int]:
        """(T, K): tokens of the block's qkv, attention and projection (one query each), keys per query."""
        raise NotImplementedError


@WINDOWS.register("partition")
class Partition(WindowKind):
    """Swin: the (padded) map cut into non-overlapping M x M windows, the odd blocks' windows shifted as the shift
    kind says. ``gather`` (nW * N,): the token in each window slot (padding, shift and partition as one gather,
    ``windows.window_order``), ``scatter`` (L,) its inverse, ``mask`` (nW, N, N) shift/padding mask or None,
    ``relative_index`` (N, N)."""

    description = "Swin: non-overlapping M x M windows"
    shifts = True
    partitions = True

    @classmethod
    def layout(cls, geometry, shift):
        g = geometry
        gather, scatter = window_order(g.resolution, g.window, shift, g.shift_mode)
        mask = attention_mask(g.resolution, g.window, shift, g.shift_mode, g.mask_padding)
        return WindowTensors(gather, scatter, mask, relative_position_index(g.window))

    @classmethod
    def split(cls, attn, x, layout):
        """Each window's tokens are its queries and its keys: (B * nW, h, N, d)."""
        windows = to_windows(x, layout.gather, layout.scatter).view(-1, layout.window**2, x.shape[-1])  # (B*nW, N, C)
        return attn.project(windows)

    @classmethod
    def join(cls, attn, out, layout, shape):
        B, _, C = shape
        Bw, _, N, _ = out.shape
        out = attn.proj_drop(attn.proj(out.transpose(1, 2).reshape(Bw, N, C)))  # (B * nW, N, C)
        return from_windows(out.view(B, -1, C), layout.gather, layout.scatter)  # (B, L, C)

    @classmethod
    def attention_tokens(cls, geometry, shift):
        """Every slot of the block's padded window grid (padding included: the model computes on it), M^2 keys."""
        _, _, Hp, Wp = geometry.grid(shift)
        return Hp * Wp, geometry.window**2


@WINDOWS.register("sliding")
class Sliding(WindowKind):
    """Swin V1 Tables 5 and 6: every token attends to the M x M neighbourhood around it (key - query offsets
    -(M-1)//2 .. M//2 on each side, ``geometry.neighbourhood_range``): one query per group of M*M keys. q, k and v
    are computed once per token and k, v gathered into the neighbourhoods (zero padding beyond the map, masked as
    ``pad_keys`` says). ``gather`` (L * M*M,), no ``scatter``, ``mask`` (L, 1, M*M) or None, ``relative_index``
    (1, M*M), the same for every query."""

    description = "each token's own M x M neighbourhood (Swin V1 Table 5)"
    shifts = False  # the neighbourhood is centred on its query: there is nothing to shift
    partitions = False

    @classmethod
    def layout(cls, geometry, shift):
        g = geometry
        gather, mask = sliding_neighbours(g.resolution, g.window, g.mask_padding)
        return WindowTensors(gather, None, mask, sliding_relative_index(g.window))

    @classmethod
    def split(cls, attn, x, layout):
        """q (B * L, h, 1, d), k and v (B * L, h, M*M, d)."""
        B, L, _ = x.shape
        q, k, v, scale = attn.project(x)  # (B, h, L, d)
        q = q.transpose(1, 2).reshape(B * L, attn.heads, 1, attn.head_dim)  # one query per neighbourhood
        k, v = (cls.neighbourhoods(t, layout.gather, layout.window**2) for t in (k, v))
        return q, k, v, scale

    @classmethod
    def join(cls, attn, out, layout, shape):
        return attn.proj_drop(attn.proj(out.reshape(shape)))  # (B * L, h, 1, d) -> (B, L, C)

    @classmethod
    def attention_tokens(cls, geometry, shift):
        """q, k and v once per token of the map; every neighbourhood slot a key (border padding included)."""
        H, W = geometry.resolution
        return H * W, geometry.window**2

    @staticmethod
    def neighbourhoods(t: torch.Tensor, gather: torch.Tensor, n: int) -> torch.Tensor:
        """(B, h, L, d) -> (B * L, h, n, d): each token's neighbours (index L: a zero padding token)."""
        B, h, L, d = t.shape
        t = torch.cat([t.transpose(1, 2), t.new_zeros(B, 1, h, d)], dim=1)  # (B, L + 1, h, d)
        return t.index_select(1, gather).view(B * L, n, h, d).transpose(1, 2)
