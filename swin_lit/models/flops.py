"""Analytic FLOPs (the papers' convention: multiply-accumulates) and parameter counts from a ``SwinConfig``.

What is counted, per image, as MACs (one multiply + one add = 1):
  - patch embedding conv:           L0 * C * in_chans * p^2
  - per block, on the PADDED map of the stage (windows are padded bottom/right when the window does not
    tile the map; the model runs qkv, attention and proj on the padded tokens too):
      qkv   Lp * C * 3C            q@k^T  Lp * M^2 * C          attn@v  Lp * M^2 * C        proj  Lp * C * C
    and on the real map L:
      mlp   2 * L * C * (mlp_ratio * C)
  - the CPB meta-network (``position`` cpb_*), evaluated once per block per forward (never per window):
      (2M-1)^2 * (2 * 512 + 512 * heads)
    so per image it is amortised over the batch: ``count_flops`` is the batch-1 figure (the papers'),
    ``batch_flops(cfg, B)`` the cost of one forward over B images.
  - patch merging reduction:        L' * 4C * 2C, L' = ceil(H/2)^2 (an odd map is padded by one row/column)
  - classifier head:                num_features * num_classes
Not counted (all elementwise or reductions, each O(tokens * C), together well under 1% of the total):
LayerNorms, softmax, GELU, bias additions, residual adds, the cosine normalisation and logit scale, the
position-bias gather / 16*sigmoid, the shift roll and mask add, dropout / drop path, token mean-pooling.
(The official ``flops()`` methods add the LayerNorms as H*W*C each; that changes Swin-T by 0.3%.)

For one unpadded W-MSA layer the attention part equals the paper's formula 4hwC^2 + 2M^2hwC
(``attention_layer_flops``). ``torch.utils.flop_counter.FlopCounterMode`` reports 2x these numbers for the
matmul-type ops (it counts a MAC as two FLOPs).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from swin_lit.models.config import SwinConfig
from swin_lit.models.position import CPB_HIDDEN


def attention_layer_flops(h: int, w: int, C: int, M: int) -> int:
    """The paper's cost of one (shifted-)window MSA layer on an h x w map: 4hwC^2 + 2M^2hwC MACs."""
    return 4 * h * w * C * C + 2 * M * M * h * w * C


def _cpb_flops(window: int, heads: int) -> int:
    entries = (2 * window - 1) ** 2
    return entries * (2 * CPB_HIDDEN + CPB_HIDDEN * heads)


@dataclass
class BlockFlops:
    qkv: int
    attn_qk: int  # q @ k^T
    attn_v: int  # attn @ v
    proj: int
    mlp: int
    cpb: int = 0

    @property
    def attention(self) -> int:
        """The W-MSA layer cost (qkv + both attention matmuls + proj), the paper's 4hwC^2 + 2M^2hwC."""
        return self.qkv + self.attn_qk + self.attn_v + self.proj

    @property
    def total(self) -> int:
        return self.attention + self.mlp + self.cpb


@dataclass
class StageFlops:
    resolution: int
    padded: int
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
        parts = dict(patch_embed=self.patch_embed, qkv=0, attn_qk=0, attn_v=0, proj=0, mlp=0, cpb=0, merge=0,
                     head=self.head)
        for s in self.stages:
            parts["merge"] += s.merge
            for b in s.blocks:
                for name in ("qkv", "attn_qk", "attn_v", "proj", "mlp", "cpb"):
                    parts[name] += getattr(b, name)
        return parts


def flops_breakdown(cfg: SwinConfig) -> FlopsBreakdown:
    """Per-stage, per-block, per-part MACs for one image (see the module docstring for what counts)."""
    res0 = cfg.img_size // cfg.patch_size
    patch_embed = res0 * res0 * cfg.embed_dim * cfg.in_chans * cfg.patch_size**2
    stages = []
    geometry = cfg.stages()
    for i, (g, depth) in enumerate(zip(geometry, cfg.depths)):
        C, L, Lp, M = g.dim, g.resolution**2, g.padded**2, g.window
        hidden = int(C * cfg.mlp_ratio)
        cpb = _cpb_flops(M, g.heads) if cfg.position.startswith("cpb") else 0
        stage = StageFlops(g.resolution, g.padded, M, C)
        for _ in range(depth):
            stage.blocks.append(BlockFlops(
                qkv=Lp * C * 3 * C, attn_qk=Lp * M * M * C, attn_v=Lp * M * M * C, proj=Lp * C * C,
                mlp=2 * L * C * hidden, cpb=cpb,
            ))
        if i < len(geometry) - 1:
            half = -(-g.resolution // 2)
            stage.merge = half * half * 4 * C * 2 * C
        stages.append(stage)
    head = cfg.num_features * cfg.num_classes
    return FlopsBreakdown(patch_embed, stages, head)


def count_flops(cfg: SwinConfig) -> int:
    """Forward MACs per image in the papers' convention ("FLOPs" in the Swin tables)."""
    return flops_breakdown(cfg).total


def batch_flops(cfg: SwinConfig, batch: int) -> int:
    """MACs of one forward over ``batch`` images: the CPB meta-network runs once per block per forward,
    whatever the batch, so it is not multiplied by the batch (``count_flops`` is the batch-1 figure)."""
    bd = flops_breakdown(cfg)
    cpb = bd.by_part()["cpb"]
    return batch * (bd.total - cpb) + cpb


def count_params(cfg: SwinConfig) -> int:
    """Trainable parameters of ``SwinTransformer(cfg)``, computed without building it."""
    C0 = cfg.embed_dim
    n = cfg.in_chans * cfg.patch_size**2 * C0 + C0  # conv weight + bias
    if cfg.patch_norm:
        n += 2 * C0
    if cfg.position in ("abs", "abs+table"):
        n += (cfg.img_size // cfg.patch_size) ** 2 * C0
    geometry = cfg.stages()
    for i, (g, depth) in enumerate(zip(geometry, cfg.depths)):
        C, M, h = g.dim, g.window, g.heads
        hidden = int(C * cfg.mlp_ratio)
        block = 2 * 2 * C  # norm1, norm2
        block += 3 * C * C + (3 * C if cfg.qkv_bias and cfg.attention == "dot" else 0)
        if cfg.attention == "cosine":
            block += h + (2 * C if cfg.qkv_bias else 0)  # logit scale, q/v biases
        block += C * C + C  # proj
        block += C * hidden + hidden + hidden * C + C  # mlp
        if cfg.position in ("table", "abs+table"):
            block += (2 * M - 1) ** 2 * h
        elif cfg.position.startswith("cpb"):
            block += 2 * CPB_HIDDEN + CPB_HIDDEN + CPB_HIDDEN * h
        n += depth * block
        if i < len(geometry) - 1:
            n += 4 * C * 2 * C + 2 * (4 * C if cfg.merge_order == "norm_first" else 2 * C)
    n += 2 * cfg.num_features + cfg.num_features * cfg.num_classes + cfg.num_classes
    return n
