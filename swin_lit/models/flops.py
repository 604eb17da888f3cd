"""Analytic FLOPs (the papers' convention: multiply-accumulates) and parameter counts from a ``SwinConfig``.

What is counted, per image, as MACs (one multiply + one add = 1):
  - patch embedding conv:           L0 * C * in_chans * p^2
  - per block, with T the tokens its attention runs on (one query each) and K the keys per query, as the window
    kind says (``WindowKind.attention_tokens``):
      qkv   T * C * 3C            q@k^T  T * K * C           attn@v  T * K * C           proj  T * C * C
      and the similarity kind's own work on the T tokens (``Similarity.flops``; 0 for ``dot`` and ``cosine``)
    partitioned windows: T = nW * M^2, the block's PADDED window grid (the model runs qkv, attention and
    proj on the padded tokens too: bottom/right padding where the window does not tile the map, a small map
    padded to one window with ``small_maps: pad``, and the border windows of a ``shift: pad`` block), K = M^2,
    with M the stage's window of ``SwinConfig.stages`` (``geometry``); ``pad_keys`` (mask or attend) changes
    no count; sliding windows: T = L (q, k, v once per token),
    K = M^2 (every neighbourhood slot, padded border keys included);
    and on the real map L:
      mlp   2 * L * C * (mlp_ratio * C)
  - the relative-bias kind's own cost (``RelativeBias.flops``; the CPB meta-network: (2M-1)^2 * (2 * 512 +
    512 * heads)), evaluated once per block per forward (never per window), so per image it is amortised over
    the batch: ``count_flops`` is the batch-1 figure (the papers'), ``batch_flops(cfg, B)`` one forward over B.
  - patch merging reduction:        L' * 4C * 2C, L' = ceil(H/2) * ceil(W/2) (odd sides padded by one)
  - classifier head:                num_features * num_classes
Not counted (all elementwise or reductions, each O(tokens * C), together well under 1% of the total):
LayerNorms, softmax, GELU, bias additions, residual adds, the cosine normalisation and logit scale, the
relative-bias gather / 16*sigmoid, the gathers and mask add, dropout / drop path, token mean-pooling.
(The official ``flops()`` methods add the LayerNorms as H*W*C each; that changes Swin-T by 0.3%.)

For one unpadded W-MSA layer the attention part equals the paper's formula 4hwC^2 + 2M^2hwC
(``attention_layer_flops``). ``torch.utils.flop_counter.FlopCounterMode`` reports 2x these numbers for the
matmul-type ops (it counts a MAC as two FLOPs).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from swin_lit.models.config import SwinConfig
from swin_lit.models.geometry import merged_size
from swin_lit.models.position import relative_kind
from swin_lit.models.registry import SIMILARITIES, WINDOWS


def attention_layer_flops(h: int, w: int, C: int, M: int) -> int:
    """The paper's cost of one (shifted-)window MSA layer on an h x w map: 4hwC^2 + 2M^2hwC MACs."""
    return 4 * h * w * C * C + 2 * M * M * h * w * C


@dataclass
class BlockFlops:
    qkv: int
    attn_qk: int  # q @ k^T
    attn_v: int  # attn @ v
    proj: int
    mlp: int
    relative_bias: int = 0  # the relative-bias kind's own cost, once per forward
    similarity: int = 0  # the similarity kind's work beyond qkv and the two attention matmuls

    @property
    def attention(self) -> int:
        """The W-MSA layer cost (qkv + both attention matmuls + proj, + the similarity's own work), for ``dot``
        and ``cosine`` the paper's 4hwC^2 + 2M^2hwC."""
        return self.qkv + self.attn_qk + self.attn_v + self.proj + self.similarity

    @property
    def total(self) -> int:
        return self.attention + self.mlp + self.relative_bias


@dataclass
class StageFlops:
    resolution: tuple[int, int]
    padded: tuple[int, int]  # the regular blocks' padded grid
    window: int
    dim: int
    blocks: list[BlockFlops] = field(default_factory=list)
    merge: int = 0

    @property
    def total(self) -> int:
        return sum(b.total for b in self.blocks) + self.merge


@dataclass
class FlopsBreakdown:
    patch_embed: int
    stages: list[StageFlops]
    head: int

    @property
    def total(self) -> int:
        return self.patch_embed + sum(s.total for s in self.stages) + self.head

    def by_part(self) -> dict[str, int]:
        """Totals per kind of op over the whole model."""
        parts = dict(patch_embed=self.patch_embed, qkv=0, attn_qk=0, attn_v=0, proj=0, similarity=0, mlp=0,
                     relative_bias=0, merge=0, head=self.head)
        for s in self.stages:
            parts["merge"] += s.merge
            for b in s.blocks:
                for name in ("qkv", "attn_qk", "attn_v", "proj", "similarity", "mlp", "relative_bias"):
                    parts[name] += getattr(b, name)
        return parts


def flops_breakdown(cfg: SwinConfig) -> FlopsBreakdown:
    """Per-stage, per-block, per-part MACs for one image (see the module docstring for what counts)."""
    H0, W0 = cfg.grid
    patch_embed = H0 * W0 * cfg.embed_dim * cfg.in_chans * cfg.patch_size**2
    kind = relative_kind(cfg.relative)
    similarity = SIMILARITIES[cfg.attention]
    stages = []
    geometry = cfg.stages()
    for i, (g, depth) in enumerate(zip(geometry, cfg.depths)):
        C, M = g.dim, g.window
        L = g.resolution[0] * g.resolution[1]
        hidden = int(C * cfg.mlp_ratio)
        bias = kind.flops(M, g.heads) if kind is not None else 0
        windows = WINDOWS[g.windows]
        stage = StageFlops(g.resolution, g.padded, M, C)
        for b in range(depth):
            tokens, keys = windows.attention_tokens(g, g.block_shift(b))
            stage.blocks.append(BlockFlops(
                qkv=tokens * C * 3 * C, attn_qk=tokens * keys * C, attn_v=tokens * keys * C, proj=tokens * C * C,
                mlp=2 * L * C * hidden, relative_bias=bias, similarity=similarity.flops(tokens, C, g.heads),
            ))
        if i < len(geometry) - 1:
            Hm, Wm = merged_size(g.resolution)
            stage.merge = Hm * Wm * 4 * C * 2 * C
        stages.append(stage)
    head = cfg.num_features * cfg.num_classes
    return FlopsBreakdown(patch_embed, stages, head)


def count_flops(cfg: SwinConfig) -> int:
    """Forward MACs per image in the papers' convention ("FLOPs" in the Swin tables)."""
    return flops_breakdown(cfg).total


def batch_flops(cfg: SwinConfig, batch: int) -> int:
    """MACs of one forward over ``batch`` images: the relative bias (the CPB meta-network) runs once per block per
    forward, whatever the batch, so it is not multiplied by the batch (``count_flops`` is the batch-1 figure)."""
    bd = flops_breakdown(cfg)
    once = bd.by_part()["relative_bias"]
    return batch * (bd.total - once) + once


def count_params(cfg: SwinConfig) -> int:
    """Trainable parameters of ``SwinTransformer(cfg)``, computed without building it."""
    C0 = cfg.embed_dim
    n = cfg.in_chans * cfg.patch_size**2 * C0 + C0  # conv weight + bias
    if cfg.patch_norm:
        n += 2 * C0
    if cfg.absolute == "learned":
        n += cfg.grid[0] * cfg.grid[1] * C0
    kind = relative_kind(cfg.relative)
    similarity = SIMILARITIES[cfg.attention]
    geometry = cfg.stages()
    for i, (g, depth) in enumerate(zip(geometry, cfg.depths)):
        C, M, h = g.dim, g.window, g.heads
        hidden = int(C * cfg.mlp_ratio)
        block = 2 * 2 * C  # norm1, norm2
        block += similarity.parameter_count(C, h, cfg.qkv_bias)  # qkv (and the kind's biases and scales)
        block += C * C + C  # proj
        block += C * hidden + hidden + hidden * C + C  # mlp
        if kind is not None:
            block += kind.parameter_count(M, h)
        n += depth * block
        if i < len(geometry) - 1:
            n += 4 * C * 2 * C + 2 * (4 * C if cfg.merge_order == "norm_first" else 2 * C)
        if i in cfg.out_indices:
            n += 2 * C  # the stage's output norm
    n += 2 * cfg.num_features + cfg.num_features * cfg.num_classes + cfg.num_classes
    return n
