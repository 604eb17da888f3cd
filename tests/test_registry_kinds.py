"""Every design-switch registry (``swin_lit.models.registry``): a new kind is one class and one name.

Part 1 registers a toy kind of each registry HERE, in the test only (a bilinear attention similarity, a
separable relative bias, a finest-level dense head, a post-norm placement, a shift by a third of the window,
MaxViT's grid windows), and each one builds, trains a step, counts its parameters and FLOPs (checked against the
built module and torch's FLOP counter) and draws (the first three are also listed by ``swin-lit models``), with
no file of the package edited; a fixture unregisters it afterwards.

Part 2 is the contract every registered kind keeps, parametrised over the registries' names (so a kind added
to the package is checked by the same tests): similarities, relative biases, dense heads, norm placements, shift
kinds and window kinds (each through the built model: its blocks' output and norms, its layouts' windows and
masks).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from matplotlib.colors import to_rgb
from PIL import Image
from torch.utils.flop_counter import FlopCounterMode

from swin_lit.cli import main
from swin_lit.models import ConfigError, SwinConfig, SwinTransformer
from swin_lit.models.attention import Similarity
from swin_lit.models.flops import batch_flops, count_flops, count_params, flops_breakdown
from swin_lit.models.head_config import HeadConfig
from swin_lit.models.head_flops import conv_params, head_flops, head_params, pixels, pyramid_sizes
from swin_lit.models.head_kinds import HeadKind
from swin_lit.models.heads import build_head
from swin_lit.models.placement import CyclicShift, NormPlacement, ShiftKind
from swin_lit.models.position import RelativeBias
from swin_lit.models.registry import (
    HEADS,
    NORM_PLACEMENTS,
    RELATIVE_BIASES,
    SHIFTS,
    SIMILARITIES,
    WINDOWS,
    Registry,
)
from swin_lit.models.segmenter import SwinSegmenter, segmenter_flops, segmenter_params
from swin_lit.models.transfer import transfer_config
from swin_lit.models.window_kinds import Partition, WindowKind, WindowTensors
from swin_lit.models.windows import REGION_MASK, relative_position_index, window_partition
from swin_lit.report.viz import (
    MASKED,
    attention_weights,
    bias_tables,
    draw_attention,
    draw_head_reach,
    draw_mask,
    draw_position_bias,
    mask_data,
)

CFG = dict(img_size=32, patch_size=2, window_size=4, embed_dim=16, depths=(2, 2, 2), num_heads=(2, 4, 8),
           num_classes=5, drop_path_rate=0.0)
SMALL = (8, 16, 32, 64)


def numel(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def counted_macs(fn, *args) -> int:
    with FlopCounterMode(display=False) as counter:
        fn(*args)
    return counter.get_total_flops() // 2  # torch counts a multiply-add as 2 FLOPs


def picture(path) -> np.ndarray:
    """The PNG as an (H, W, 3) array; it must not be blank."""
    image = np.asarray(Image.open(path).convert("RGB"), dtype=float)
    assert image.shape[0] > 150 and image.shape[1] > 150, image.shape
    assert (image.std(axis=(0, 1)) > 10).any(), f"{path} is blank"
    return image


def train_step(model: nn.Module, x: torch.Tensor, target: torch.Tensor, parameter: nn.Parameter) -> None:
    """One AdamW step; ``parameter`` (the kind's own) gets a gradient and moves."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    F.cross_entropy(model.train()(x), target).backward()
    assert parameter.grad is not None and parameter.grad.abs().sum() > 0
    before = parameter.detach().clone()
    optimizer.step()
    assert not torch.equal(before, parameter)


# ================================================================================================================
# Part 1: a toy kind of each registry, registered here
# ================================================================================================================

class Bilinear(Similarity):
    """logits = (q W_h) k^T / sqrt(d): a learned d x d form per head (identity at init: the dot product)."""

    description = "toy: q W_h k^T / sqrt(d), one learned d x d matrix per head"

    @classmethod
    def make_parameters(cls, dim, heads, qkv_bias):
        d = dim // heads
        return {"qkv": nn.Linear(dim, 3 * dim, bias=qkv_bias),
                "bilinear": nn.Parameter(torch.eye(d).repeat(heads, 1, 1) + 0.01 * torch.randn(heads, d, d))}

    @classmethod
    def project(cls, attn, x):
        Bx, N, _ = x.shape
        q, k, v = attn.qkv(x).view(Bx, N, 3, attn.heads, attn.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        return q @ attn.bilinear, k, v, attn.head_dim**-0.5  # (Bx, h, N, d) @ (h, d, d)

    @classmethod
    def parameter_count(cls, dim, heads, qkv_bias):
        return 3 * dim * dim + (3 * dim if qkv_bias else 0) + dim * (dim // heads)

    @classmethod
    def flops(cls, tokens, dim, heads):
        return tokens * dim * (dim // heads)  # q W_h: d x d per token and head


class Separable(RelativeBias):
    """bias(dh, dw) = rows[dh] + cols[dw], per head: 2 (2M-1) parameters per head instead of (2M-1)^2."""

    description = "toy: one bias per vertical plus one per horizontal offset"

    def __init__(self, window: int, heads: int, normalising_window: int = 0) -> None:
        super().__init__(window, heads)
        self.rows = nn.Parameter(0.02 * torch.randn(2 * window - 1, heads))
        self.cols = nn.Parameter(0.02 * torch.randn(2 * window - 1, heads))

    def offset_table(self, window, constants):
        start, keep = self.window - window, 2 * window - 1
        rows, cols = self.rows[start : start + keep], self.cols[start : start + keep]
        return (rows[:, None] + cols[None, :]).reshape(keep * keep, self.heads)

    @classmethod
    def parameter_count(cls, window, heads):
        return 2 * (2 * window - 1) * heads


class FinestConv(HeadKind):
    """A 3x3 conv + ReLU on the finest level only, then a 1x1 classifier; reads the shared ``channels`` option."""

    description = "toy: 3x3 conv on the finest level, 1x1 classifier"
    options = {"channels": 24}

    @classmethod
    def build(cls, cfg, in_channels, num_classes):
        class Head(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv = nn.Conv2d(in_channels[0], cfg.channels, 3, padding=1)
                self.classifier = nn.Conv2d(cfg.channels, num_classes, 1)

            def forward(self, features):
                return self.classifier(F.relu(self.conv(features[0])))

        return Head()

    @classmethod
    def parameter_count(cls, cfg, in_channels, num_classes):
        return conv_params(in_channels[0], cfg.channels, 3) + conv_params(cfg.channels, num_classes, 1)

    @classmethod
    def flops_breakdown(cls, cfg, in_channels, num_classes, sizes):
        return {"conv": pixels(sizes[0]) * in_channels[0] * cfg.channels * 9,
                "classifier": pixels(sizes[0]) * cfg.channels * num_classes}


class PostNorm(NormPlacement):
    """The original Transformer's post-norm: x = LN(x + drop_path(f(x))); patch merging reduces first."""

    description = "toy: LN(x + f(x)), the norm after the residual sum"
    merge_order = "reduce_first"

    @staticmethod
    def residual(x, branch, norm, drop_path):
        return norm(x + drop_path(branch(x)))


class ThirdShift(CyclicShift):
    """Cyclic shifted windows (roll + region mask) shifted by a third of the window instead of a half."""

    description = "toy: cyclic shift by M // 3"

    @classmethod
    def stage_shift(cls, window):
        return window // 3


class GridWindows(Partition):
    """MaxViT's grid attention (Tu et al. 2022): the padded Hp x Wp map cut into an M x M grid of cells of
    (Hp/M) x (Wp/M) tokens, and window (a, b) made of the token at (a, b) in every cell: slot (i, j) holds the
    token (i Hp/M + a, j Wp/M + b). Sparse windows spanning the whole map, one relative offset per cell step; the
    attention, its FLOPs and its pictures are the partitioned kind's (inherited). No shift."""

    description = "toy: MaxViT grid windows, M x M tokens strided across the map"
    shifts = False

    @classmethod
    def layout(cls, geometry, shift):
        (H, W), M = geometry.resolution, geometry.window
        Hp, Wp = geometry.padded
        rows, cols = torch.arange(Hp)[:, None], torch.arange(Wp)[None, :]
        real = (rows < H) & (cols < W)  # (Hp, Wp)

        def grouped(t):  # (Hp, Wp) -> (nW, N): [a, b] <- t[i * Hp/M + a, j * Wp/M + b] for slot (i, j)
            return t.view(M, Hp // M, M, Wp // M).permute(1, 3, 0, 2).reshape(-1, M * M)

        gather = grouped(torch.where(real, rows * W + cols, H * W)).flatten()
        scatter = torch.zeros(H * W + 1, dtype=torch.long).scatter_(0, gather, torch.arange(gather.numel()))[:-1]
        mask = None
        if geometry.mask_padding and not real.all():
            keys = grouped(real)  # (nW, N)
            mask = torch.zeros(keys.shape[0], M * M, M * M).masked_fill(~keys[:, None, :], float("-inf"))
        return WindowTensors(gather, scatter, mask, relative_position_index(M))


def _registered(registry: Registry, name: str, cls: type):
    registry.register(name)(cls)
    yield cls
    registry.unregister(name)
    assert name not in registry


@pytest.fixture
def bilinear():
    yield from _registered(SIMILARITIES, "bilinear", Bilinear)


@pytest.fixture
def separable():
    yield from _registered(RELATIVE_BIASES, "separable", Separable)


@pytest.fixture
def finest():
    yield from _registered(HEADS, "finest", FinestConv)


@pytest.fixture
def post():
    yield from _registered(NORM_PLACEMENTS, "post", PostNorm)


@pytest.fixture
def third():
    yield from _registered(SHIFTS, "third", ThirdShift)


@pytest.fixture
def grid():
    yield from _registered(WINDOWS, "grid", GridWindows)


# -- attention similarity --------------------------------------------------------------------------------------

def test_an_unregistered_kind_is_a_config_error_naming_the_registered_ones():
    with pytest.raises(ConfigError, match=r"^norm: got 'post'; allowed values are 'pre', 'res_post'$"):
        SwinConfig(**CFG, norm="post")
    with pytest.raises(ConfigError, match=r"^shift: got 'third'; allowed values are 'cyclic', 'none', 'pad'$"):
        SwinConfig(**CFG, shift="third")
    with pytest.raises(ConfigError, match=r"^attention: got 'bilinear'; allowed values are 'dot', 'cosine'$"):
        SwinConfig(**CFG, attention="bilinear")
    with pytest.raises(ConfigError, match=r"^relative: got 'separable'; allowed values are 'none', 'table'"):
        SwinConfig(**CFG, relative="separable")
    with pytest.raises(ConfigError, match=r"^kind: got 'finest'; allowed values are 'upernet', 'fpn', 'linear'$"):
        HeadConfig(kind="finest")
    with pytest.raises(ConfigError, match=r"^windows: got 'grid'; allowed values are 'partition', 'sliding'$"):
        SwinConfig(**CFG, windows="grid", shift="none")


@pytest.mark.parametrize("switches", [dict(), dict(windows="sliding", shift="none"), dict(shift="pad")],
                         ids=["partition", "sliding", "pad"])
def test_a_registered_similarity_builds_trains_and_counts(bilinear, switches):
    cfg = SwinConfig(**CFG, attention="bilinear", **switches)
    model = SwinTransformer(cfg)
    assert count_params(cfg) == numel(model)
    assert model.layers[1].blocks[0].attn.bilinear.shape == (4, 8, 8)  # under the name the kind gave it
    # its own FLOPs: q W_h, d^2 MACs per token and head, on the tokens each block's attention runs on
    bd = flops_breakdown(cfg)
    for stage, g in zip(bd.stages, cfg.stages()):
        for block in stage.blocks:
            tokens = block.qkv // (3 * g.dim * g.dim)
            assert block.similarity == tokens * g.heads * (g.dim // g.heads) ** 2 > 0
    explicit = SwinTransformer(cfg.replace(fused=False)).eval()
    with torch.no_grad():
        assert counted_macs(explicit, torch.randn(2, 3, 32, 32)) == batch_flops(cfg, 2)
    x, y = torch.randn(4, 3, 32, 32), torch.randint(0, 5, (4,))
    train_step(model, x, y, model.layers[0].blocks[1].attn.bilinear)
    with torch.no_grad():  # with identity forms it is the dot product: a "dot" model with the same weights
        for stage in model.layers:
            for block in stage.blocks:
                block.attn.bilinear.copy_(torch.eye(block.attn.head_dim))
        dot = SwinTransformer(cfg.replace(attention="dot"))
        dot.load_state_dict({k: v for k, v in model.state_dict().items() if not k.endswith("bilinear")})
        torch.testing.assert_close(model.eval()(x), dot.eval()(x), rtol=1e-5, atol=1e-5)


def test_a_registered_similarity_draws(bilinear, tmp_path):
    model = SwinTransformer(SwinConfig(**CFG, attention="bilinear"))
    x = torch.randn(2, 3, 32, 32)
    weights = attention_weights(model, x)
    assert [label for label, _ in weights][:2] == ["stage 1 block 1", "stage 1 block 2"]
    first = weights[0][1]
    assert first.shape == (2, 16, 16)  # heads, queries, keys of a 4 x 4 window
    np.testing.assert_allclose(first.sum(-1), 1.0, rtol=1e-5)
    assert model.training  # drawing leaves the model as it was
    picture(draw_attention(model, x, tmp_path / "attention.png"))


# -- relative position bias ------------------------------------------------------------------------------------

@pytest.mark.parametrize("switches", [dict(), dict(windows="sliding", shift="none"), dict(shift="pad")],
                         ids=["partition", "sliding", "pad"])
def test_a_registered_relative_bias_builds_trains_and_counts(separable, switches):
    cfg = SwinConfig(**CFG, relative="separable", **switches)
    model = SwinTransformer(cfg)
    assert count_params(cfg) == numel(model)
    assert sum(isinstance(m, Separable) for m in model.modules()) == 6
    assert "layers.0.blocks.0.attn.relative_bias.rows" in model.no_weight_decay()  # like every relative bias
    assert count_flops(cfg) > 0 and flops_breakdown(cfg).by_part()["relative_bias"] == 0
    train_step(model, torch.randn(4, 3, 32, 32), torch.randint(0, 5, (4,)),
               model.layers[0].blocks[1].attn.relative_bias.rows)
    with torch.no_grad():  # and at another input size: the same kind serves the clipped windows
        assert model.eval()(torch.randn(1, 3, 16, 16)).shape == (1, 5)


def test_a_registered_relative_bias_draws(separable, tmp_path):
    model = SwinTransformer(SwinConfig(**CFG, relative="separable"))
    tables = bias_tables(model)
    assert len(tables) == 6 and tables[0][1].shape == (2, 7, 7)
    module = model.layers[0].blocks[0].attn.relative_bias
    expected = (module.rows[:, None] + module.cols[None, :]).permute(2, 0, 1)
    assert torch.allclose(torch.from_numpy(tables[0][1]), expected.detach())
    picture(draw_position_bias(model, tmp_path / "separable.png"))


def test_a_relative_bias_without_transfer_methods_refuses_clearly(separable):
    cfg = SwinConfig(**CFG, relative="separable")
    with pytest.raises(ConfigError, match="'bicubic' does not fit relative 'separable'"):
        transfer_config(cfg, 64, 8, "bicubic")
    with pytest.raises(ConfigError, match="pretrained_window_sizes: only applies to .*'cpb_log'.*'separable'"):
        cfg.replace(pretrained_window_sizes=[4, 4, 4])


# -- dense head ------------------------------------------------------------------------------------------------

def test_a_registered_head_validates_its_options(finest):
    assert HeadConfig(kind="finest").channels == 24  # its recipe value
    assert HeadConfig(kind="finest", channels=8).channels == 8
    with pytest.raises(ConfigError, match=r"^pool_scales: only applies to head 'upernet' \(pyramid pooling\); "
                                          r"remove it for head 'finest'$"):
        HeadConfig(kind="finest", pool_scales=(1, 2))
    with pytest.raises(ConfigError, match=r"^channels: must be >= 1, got 0$"):
        HeadConfig(kind="finest", channels=0)
    # the kinds that read an option are named from the registry, the toy among them
    with pytest.raises(ConfigError, match=r"^channels: only applies to head 'upernet' and 'fpn' and 'finest'"):
        HeadConfig(kind="linear", channels=8)


def test_a_registered_head_builds_trains_and_counts(finest):
    head = HeadConfig(kind="finest", channels=8, aux_weight=0.4, aux_channels=4)
    cfg = SwinConfig(**{**CFG, "num_classes": 0})
    model = SwinSegmenter(cfg, head, 3)
    assert segmenter_params(cfg, head, 3)["total"] == numel(model)
    assert head_params(head, [16, 32, 64], 3) == numel(model.decode_head)
    sizes = pyramid_sizes(32, 40, 2, 3)
    features = [torch.randn(1, c, *hw) for c, hw in zip((16, 32, 64), sizes)]
    assert head_flops(head, (16, 32, 64), 3, sizes) == counted_macs(model.decode_head, features)
    assert segmenter_flops(cfg, head, 3, (32, 40))["head"] == head_flops(head, (16, 32, 64), 3, sizes)
    x, y = torch.randn(2, 3, 32, 40), torch.randint(0, 3, (2, 32, 40))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    logits, aux = model.train()(x, aux=True)
    assert logits.shape == aux.shape == (2, 3, 32, 40)
    (F.cross_entropy(logits, y) + 0.4 * F.cross_entropy(aux, y)).backward()
    conv = model.decode_head.conv.weight
    assert conv.grad.abs().sum() > 0
    before = conv.detach().clone()
    optimizer.step()
    assert not torch.equal(before, conv)


def test_a_registered_head_draws(finest, tmp_path):
    head = HeadConfig(kind="finest", channels=8)
    sizes = pyramid_sizes(40, 40, 4, 4)  # 10x10, 5x5, 3x3, 2x2
    path = draw_head_reach(head, SMALL, sizes, 3, tmp_path / "reach.png")
    picture(path)
    from swin_lit.report.viz import head_reach

    reach = head_reach(build_head(head, SMALL, 3), SMALL, sizes)
    assert [r.shape for r in reach] == sizes
    assert (reach[0] > 0).sum() == 9 and (reach[0][4:7, 4:7] > 0).all()  # its 3x3 conv around the centre pixel
    assert all(not r.any() for r in reach[1:])  # it reads no other level


def test_registered_kinds_are_listed(bilinear, separable, finest, post, third, grid, capsys):
    assert main(["models"]) == 0
    listing = capsys.readouterr().out
    for kind in (Bilinear, Separable, FinestConv, PostNorm, ThirdShift, GridWindows):
        assert kind.name in listing and kind.description in listing
    for registry in (SIMILARITIES, RELATIVE_BIASES, HEADS, NORM_PLACEMENTS, SHIFTS, WINDOWS):  # every kind of every one
        for name in registry.names():
            assert any(line.split()[:1] == [name] for line in listing.splitlines()), (registry, name)
    def table(key: str) -> dict[str, list[str]]:  # the rows of the table whose first heading is ``key``
        lines = listing.split(f"\n{key} ", 1)[1].split("\n\n", 1)[0].splitlines()[2:]
        return {line.split()[0]: line.split() for line in lines if not line.startswith("(")}

    rows = {**table("norm"), **table("shift")}
    assert set(rows) == {*NORM_PLACEMENTS.names(), *SHIFTS.names()}
    assert rows["post"][-1] == "reduce_first" and rows["pre"][-1] == "norm_first"  # merge: auto of each placement
    # each shift kind's shifted block on a 56 x 56 map in 7 x 7 windows: shift, windows, grid offset, roll, regions
    assert rows["third"][-6:] == ["2", "8x8", "0,0", "2", "9", "regions"]  # 7 // 3, cyclic's roll and regions
    assert rows["cyclic"][-6:] == ["3", "8x8", "0,0", "3", "9", "regions"]
    assert rows["pad"][-5:] == ["3", "9x9", "4,4", "0", "-"]  # ceil((56 + 4) / 7) = 9 windows a side, offset 7 - 3
    assert rows["none"][-5:] == ["0", "8x8", "0,0", "0", "-"]
    # the similarity's qkv parameters at C=96, 3 heads, and the head's count on Swin-T's pyramid
    assert f"{Bilinear.parameter_count(96, 3, True):,}" in listing
    finest_row = next(line for line in listing.splitlines() if line.startswith("finest"))
    assert "channels=24" in finest_row and f"{(96 * 24 * 9 + 24 + 24 * 150 + 150) / 1e6:.2f}M" in finest_row


def test_a_new_registry_is_listed_with_no_edit_of_the_command(monkeypatch, capsys):
    """``swin-lit models`` reads the registries module: a registry added there (here: in the test) gets a table
    of its kinds' names and descriptions."""
    from swin_lit.models import registry as registries

    pools = Registry("pool", "token pooling", "swin_lit.models.no_such_module", ())

    @pools.register("toy_max")
    class ToyMax:
        description = "toy: max over each 2 x 2 patch"

    monkeypatch.setattr(registries, "POOLS", pools, raising=False)
    assert main(["models"]) == 0
    listing = capsys.readouterr().out
    assert "what it is (token pooling)" in listing
    assert any(line.split()[:1] == ["toy_max"] and line.endswith(ToyMax.description) for line in listing.splitlines())


# -- norm placement --------------------------------------------------------------------------------------------

def test_a_registered_norm_placement_builds_trains_counts_and_draws(post, tmp_path):
    cfg = SwinConfig(**CFG, norm="post")
    assert cfg.merge_order == "reduce_first"  # merge: auto follows the placement
    model = SwinTransformer(cfg)
    assert model.layers[0].downsample.norm.normalized_shape == (32,)  # LN(2C) after the reduction
    assert count_params(cfg) == numel(model)
    explicit = SwinTransformer(cfg.replace(fused=False)).eval()
    x, y = torch.randn(4, 3, 32, 32), torch.randint(0, 5, (4,))
    with torch.no_grad():
        assert counted_macs(explicit, x[:2]) == batch_flops(cfg, 2)
        # the block is the placement's order, by hand: y = LN1(x + attn(x)); out = LN2(y + mlp(y))
        block, layout = explicit.layers[0].blocks[1], explicit.layout(cfg.grid)[0].blocks[1]
        for norm in (block.norm1, block.norm2):
            norm.weight.normal_()
            norm.bias.normal_()
        t = torch.randn(2, 256, 16)
        mid = F.layer_norm(t + block.attn(t, layout), (16,), block.norm1.weight, block.norm1.bias)
        out = F.layer_norm(mid + block.mlp(mid), (16,), block.norm2.weight, block.norm2.bias)
        assert torch.equal(block(t, layout), out)
    train_step(model, x, y, model.layers[1].blocks[0].norm2.weight)
    weights = attention_weights(model, x)
    assert len(weights) == 6 and weights[0][1].shape == (2, 16, 16)
    np.testing.assert_allclose(weights[0][1].sum(-1), 1.0, rtol=1e-5)
    picture(draw_attention(model, x, tmp_path / "post.png"))


# -- shift kind ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("switches", [dict(), dict(small_maps="pad", pad_keys="attend")], ids=["classify", "dense"])
def test_a_registered_shift_kind_builds_trains_and_counts(third, switches):
    # window 6 on a 16 x 16 map: padded to 18 x 18, odd blocks rolled by 2 (a third), 9 regions per shifted map
    cfg = SwinConfig(**{**CFG, "window_size": 6}, shift="third", **switches)
    stages = cfg.stages()
    expected = [2, 2, 2] if switches else [2, 2, 0]  # clip: the 4 x 4 map takes a 4 x 4 window and never shifts
    assert [g.shift for g in stages] == expected
    model = SwinTransformer(cfg)
    assert count_params(cfg) == numel(model)
    x, y = torch.randn(4, 3, 32, 32), torch.randint(0, 5, (4,))
    explicit = SwinTransformer(cfg.replace(fused=False)).eval()
    with torch.no_grad():
        assert counted_macs(explicit, x[:2]) == batch_flops(cfg, 2)
    # the first stage's shifted block: tokens rolled up/left by 2 inside the 18 x 18 padded grid
    layout = model.layout(cfg.grid)[0].blocks[1]
    rows, cols = torch.arange(18)[:, None], torch.arange(18)[None, :]
    token = torch.where((rows < 16) & (cols < 16), rows * 16 + cols, 256).roll((-2, -2), dims=(0, 1))
    assert torch.equal(layout.gather, window_partition(token[None, :, :, None], 6).flatten())
    # the last (bottom-right) window: the map's rows/columns 14-15, its padding 16-17, and wrapped round from
    # the top left, its rows/columns 0-1; the wrapped tokens and the others do not see each other
    window = token[12:, 12:]  # (6, 6) token of each slot, 256: padding
    assert window[0, 0] == 14 * 16 + 14 and window[4, 4] == 0
    real = (window < 256).flatten()
    assert real.sum() == 16
    mask = layout.mask[-1]  # (36, 36): query slot x key slot
    assert mask[0, 1] == 0 and mask[0, 4 * 6 + 4] == REGION_MASK  # (14, 14) sees (14, 15), not (0, 0)
    padding_key = mask[0, 2 * 6 + 2]  # the padding token (16, 16), in (14, 14)'s region
    assert padding_key == (0.0 if switches.get("pad_keys") == "attend" else float("-inf"))
    train_step(model, x, y, model.layers[0].blocks[1].attn.qkv.weight)


def test_a_registered_shift_kind_draws(third, tmp_path):
    cfg = SwinConfig(**{**CFG, "window_size": 6}, shift="third")
    model = SwinTransformer(cfg)
    data = mask_data(16, 6, kind="third")  # the picture's masks are the model's shifted block's, at its shift
    assert data["shift"] == ThirdShift.stage_shift(6) == 2 and data["roll"] == 2
    assert np.array_equal(data["masks"], model.layout(cfg.grid)[0].blocks[1].mask.numpy() == 0)
    picture(draw_attention(model, torch.randn(1, 3, 32, 32), tmp_path / "third_attention.png"))
    # its own mask, not the cyclic one: on a 12 x 12 map in 6 x 6 windows, rolled by 2 instead of 3, its 4 windows
    # mask 0 + 576 + 576 + 896 pairs (regions of 4 + 2 rows/columns) where cyclic's mask 0 + 648 + 648 + 972
    masked = {name: int((~mask_data(12, 6, kind=name)["masks"]).sum()) for name in ("third", "cyclic")}
    assert masked == {"third": 576 + 576 + 896, "cyclic": 648 + 648 + 972}
    dark = {}
    for name in masked:  # the same panels in both pictures: the masked cells' pixels go as the masked pairs
        pixels = picture(draw_mask(12, 6, tmp_path / f"{name}.png", kind=name)).astype(int).reshape(-1, 3)
        dark[name] = int((pixels == np.round(255 * np.array(to_rgb(MASKED)))).all(1).sum())
    assert dark["cyclic"] / dark["third"] == pytest.approx(masked["cyclic"] / masked["third"], rel=0.02)


# -- window kind -----------------------------------------------------------------------------------------------

def test_a_registered_window_kind_validates_with_its_facts(grid):
    with pytest.raises(ConfigError, match=r"^shift: 'cyclic' does not go with windows: grid \(a window kind whose "
                                          r"windows take no shift\); use shift: none$"):
        SwinConfig(**CFG, windows="grid")  # its ``shifts`` fact is False: the default cyclic shift is refused
    cfg = SwinConfig(**CFG, windows="grid", shift="none")
    assert [g.windows for g in cfg.stages()] == ["grid"] * 3
    assert WINDOWS.having("shifts") == ("partition",) and WINDOWS.having("partitions") == ("partition", "grid")


def test_a_registered_window_kind_is_grid_attention():
    """On a 10 x 14 map, window 4 (padded to 12 x 16: cells of 3 x 4 tokens): one block's attention, in double,
    equals dense attention in which a token meets exactly the real tokens at the same place in every cell, with the
    relative bias of their offset in cells (computed here from the kind's definition, not from its layout)."""
    WINDOWS.register("grid")(GridWindows)
    try:
        cfg = SwinConfig(img_size=(10, 14), patch_size=1, window_size=4, embed_dim=8, depths=(1,), num_heads=(2,),
                         windows="grid", shift="none", drop_path_rate=0.0)
        model = SwinTransformer(cfg).double().eval()
    finally:
        WINDOWS.unregister("grid")
    attn, layout = model.layers[0].blocks[0].attn, model.layout(cfg.grid)[0].blocks[0]
    assert layout.gather.numel() == 12 * 16 and layout.mask.shape == (12, 16, 16)
    # window (1, 2) of the 3 x 4 windows: rows 1, 4, 7 and the padding row 10, columns 2, 6, 10 and the padding
    # column 14 (140: a padding token), slots row-major
    assert layout.gather.view(12, 16)[1 * 4 + 2].tolist() == [r * 14 + c if r < 10 and c < 14 else 140
                                                              for r in (1, 4, 7, 10) for c in (2, 6, 10, 14)]
    with torch.no_grad():
        attn.relative_bias.table.normal_()
        x = torch.randn(2, 140, 8, dtype=torch.float64)
        q, k, v, scale = attn.project(x)  # (2, h, 140, d)
        rows, cols = torch.arange(140) // 14, torch.arange(140) % 14
        cell_row, cell_col = rows // 3, cols // 4  # which cell: rows of 3, columns of 4 tokens
        same = (rows[:, None] % 3 == rows[None, :] % 3) & (cols[:, None] % 4 == cols[None, :] % 4)
        table = attn.relative_bias.table  # ((2M-1)^2, h), offsets in cells
        bias = table[(cell_row[:, None] - cell_row[None, :] + 3) * 7 + cell_col[:, None] - cell_col[None, :] + 3]
        logits = scale * q @ k.transpose(-1, -2) + bias.permute(2, 0, 1)
        weights = logits.masked_fill(~same, float("-inf")).softmax(-1)
        expected = attn.proj((weights @ v).transpose(1, 2).reshape(2, 140, 8))
        torch.testing.assert_close(attn(x, layout), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("switches", [dict(), dict(small_maps="pad", pad_keys="attend", img_size=(28, 44))],
                         ids=["classify", "dense"])
def test_a_registered_window_kind_builds_trains_and_counts(grid, switches):
    cfg = SwinConfig(**{**CFG, **switches}, windows="grid", shift="none")
    model = SwinTransformer(cfg)
    assert count_params(cfg) == numel(model)  # the kind has no parameters: the partitioned model's count
    assert count_params(cfg) == count_params(cfg.replace(windows="partition"))
    # FLOPs: every slot of the padded grid a query of M^2 keys, as for partitioned windows (inherited), and torch's
    # counter agrees on the model
    for stage, g in zip(flops_breakdown(cfg).stages, cfg.stages()):
        Hp, Wp = g.padded
        assert [b.attn_qk for b in stage.blocks] == [Hp * Wp * g.window**2 * g.dim] * 2
    explicit = SwinTransformer(cfg.replace(fused=False)).eval()
    x = torch.randn(4, 3, *cfg.image_size)
    with torch.no_grad():
        assert counted_macs(explicit, x[:2]) == batch_flops(cfg, 2)
        fused = SwinTransformer(cfg).eval()
        fused.load_state_dict(explicit.state_dict())
        torch.testing.assert_close(fused(x), explicit(x), rtol=1e-5, atol=1e-5)
    train_step(model, x, torch.randint(0, 5, (4,)), model.layers[0].blocks[1].attn.qkv.weight)
    with torch.no_grad():  # another input size: the layout is rebuilt for it
        assert torch.isfinite(model.eval()(torch.randn(1, 3, 24, 40))).all()


def test_a_registered_window_kind_draws(grid, tmp_path):
    model = SwinTransformer(SwinConfig(**CFG, windows="grid", shift="none"))
    x = torch.randn(2, 3, 32, 32)
    weights = attention_weights(model, x)
    first = weights[0][1]
    assert first.shape == (2, 16, 16)  # heads, the 16 tokens of the first grid window (every 4th row and column)
    np.testing.assert_allclose(first.sum(-1), 1.0, rtol=1e-5)
    picture(draw_attention(model, x, tmp_path / "grid.png"))


# -- the registry itself ---------------------------------------------------------------------------------------

def test_registry_rules(separable):
    with pytest.raises(ValueError, match="identifier name other than 'none'"):
        RELATIVE_BIASES.register("none")(Separable)

    class Clash(Separable):
        pass

    with pytest.raises(ValueError, match="'separable' is already registered"):
        RELATIVE_BIASES.register("separable")(Clash)
    assert RELATIVE_BIASES.register("separable")(Separable) is Separable  # the same class again is harmless
    with pytest.raises(ValueError, match="built in"):
        RELATIVE_BIASES.unregister("table")
    with pytest.raises(ValueError, match="identifier"):
        SHIFTS.register("two words")(ShiftKind)
    assert RELATIVE_BIASES.names() == ("table", "cpb_log", "cpb_linear", "separable")
    assert RELATIVE_BIASES.allowed()[0] == "none" and "none" not in RELATIVE_BIASES.names()


def test_names_and_validation_need_no_torch():
    """Config validation reads only the registries' names (and the head kinds, torch-free): run with torch
    blocked from importing."""
    code = textwrap.dedent("""
        import sys
        sys.modules["torch"] = None  # any "import torch" now fails
        from swin_lit.models.registry import HEADS, NORM_PLACEMENTS, SHIFTS, SIMILARITIES, WINDOWS
        from swin_lit.models.head_config import HeadConfig
        from swin_lit.models.head_flops import head_params
        SIMILARITIES.check("cosine")
        assert HeadConfig(kind="fpn").scale_channels == 128
        assert head_params(HeadConfig(kind="linear"), (8, 16), 3) == 2 * 24 + 24 * 3 + 3
        assert NORM_PLACEMENTS["res_post"].merge_order == "reduce_first"
        assert SHIFTS["pad"].grid((8, 8), 4, 2) == (2, 2, 12, 12)
        from swin_lit.models.config import SwinConfig
        sliding = SwinConfig(windows="sliding", shift="none").stages()[0]
        assert not WINDOWS.fact(sliding.windows, "partitions")  # the window kinds' facts
        for bad in (lambda: SIMILARITIES.check("euclid"), lambda: SwinConfig(windows="sliding")):
            try:
                bad()
            except Exception as err:
                print(err)
        assert not any(m == "torch" or m.startswith("torch.") for m in sys.modules if sys.modules[m] is not None)
        """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == [
        "attention: got 'euclid'; allowed values are 'dot', 'cosine'",
        "shift: 'cyclic' does not go with windows: sliding (a window kind whose windows take no shift); "
        "use shift: none"]


# ================================================================================================================
# Part 2: the contract of every registered kind
# ================================================================================================================

@pytest.mark.parametrize("name", SIMILARITIES.names())
@pytest.mark.parametrize("windows", WINDOWS.names())
def test_similarity_contract(name, windows):
    """Parameters counted = built; FLOPs = torch's counter on the reference path; the fused kernel = the
    reference one; the drawn weights are each window's softmax rows (masked keys 0)."""
    kind = SIMILARITIES[name]
    assert issubclass(kind, Similarity) and kind.name == name and kind.description
    shift = "cyclic" if WINDOWS.fact(windows, "shifts") else "none"
    cfg = SwinConfig(**CFG, attention=name, windows=windows, shift=shift)
    model = SwinTransformer(cfg).double().eval()
    assert count_params(cfg) == numel(model)
    attn = model.layers[0].blocks[0].attn
    assert kind.parameter_count(16, 2, True) == numel(attn) - numel(attn.proj) - numel(attn.relative_bias)
    x = torch.randn(2, 3, 32, 32, dtype=torch.float64)
    with torch.no_grad():
        fused = model(x)
        for m in model.modules():
            if hasattr(m, "fused"):
                m.fused = False
        assert counted_macs(model, x) == batch_flops(cfg, 2)
        torch.testing.assert_close(model(x), fused, rtol=1e-10, atol=1e-10)
    weights = attention_weights(model, x)
    for _, w in weights:
        np.testing.assert_allclose(w.sum(-1), 1.0, rtol=1e-6)  # drawn as float32
    if windows == "sliding":  # the corner token's neighbourhood reaches beyond the map: those keys get nothing
        corner = weights[0][1][:, 0].reshape(2, 4, 4)
        assert (corner[:, :1] == 0).all() and (corner[:, :, :1] == 0).all() and (corner[:, 1:, 1:] > 0).all()


@pytest.mark.parametrize("name", RELATIVE_BIASES.names())
def test_relative_bias_contract(name):
    """Parameters counted = built; FLOPs of one offset table = torch's counter; the gathered bias is the offset
    table read at each pair's index; the drawn image is that table on the (2M-1)^2 offset grid."""
    kind = RELATIVE_BIASES[name]
    assert issubclass(kind, RelativeBias) and kind.name == name and kind.description
    module = kind(4, 3)
    assert kind.parameter_count(4, 3) == numel(module)
    constants = module.constants(4)
    with torch.no_grad():
        assert counted_macs(module.offset_table, 4, constants) == kind.flops(4, 3)
        table = module.offset_table(4, constants)
        assert table.shape == (49, 3)
        index = torch.randint(0, 49, (16, 16))
        torch.testing.assert_close(module(4, constants, index), table[index].permute(2, 0, 1))
        torch.testing.assert_close(module.offset_image(), table.T.reshape(3, 7, 7))
    for method in kind.transfer_methods:
        kind.check_method(method)
    with pytest.raises(ConfigError, match=f"does not fit relative '{name}'"):
        kind.check_method("no-such-method")


@pytest.mark.parametrize("name", HEADS.names())
@pytest.mark.parametrize("image", [(45, 70), (8, 8)], ids=["odd-rect", "tiny"])
def test_head_contract(name, image):
    """Its recipe options resolved; parameters counted = built; FLOPs = torch's counter; logits at the first
    level's size on any pyramid, one image's logits independent of the others in the batch (eval)."""
    kind = HEADS[name]
    assert issubclass(kind, HeadKind) and kind.name == name and kind.description
    cfg = HeadConfig(kind=name)
    assert all(getattr(cfg, option) == recipe for option, recipe in kind.options.items())
    head = build_head(cfg, SMALL, 5).eval()
    assert head_params(cfg, SMALL, 5) == kind.parameter_count(cfg, SMALL, 5) == numel(head)
    sizes = pyramid_sizes(*image, patch_size=4, levels=4)
    features = [torch.randn(3, c, *hw) for c, hw in zip(SMALL, sizes)]
    with torch.no_grad():
        assert counted_macs(head, [f[:1] for f in features]) == head_flops(cfg, SMALL, 5, sizes)
        both = head(features)
        assert both.shape == (3, 5, *sizes[0])
        torch.testing.assert_close(both[1:2], head([f[1:2] for f in features]), rtol=1e-5, atol=1e-6)


# the built-in placements' formulas as the papers write them (a kind added to the package adds its own here)
PLACEMENT_FORMULAS = {
    "pre": lambda x, f, norm: x + f(norm(x)),  # Swin V1
    "res_post": lambda x, f, norm: x + norm(f(x)),  # Swin V2
}


@pytest.mark.parametrize("name", NORM_PLACEMENTS.names())
def test_norm_placement_contract(name):
    """Through the built model: ``merge: auto`` is the kind's merge order; every block's norms start as the kind's
    ``init_norms`` leaves fresh ones; the block's output is the paper's formula (exactly) and depends on both
    norms; gradients reach both."""
    kind = NORM_PLACEMENTS[name]
    assert issubclass(kind, NormPlacement) and kind.name == name and kind.description
    cfg = SwinConfig(**CFG, norm=name)
    assert kind.merge_order in ("norm_first", "reduce_first") and cfg.merge_order == kind.merge_order
    model = SwinTransformer(cfg).eval()
    merged = model.layers[0].downsample.norm.normalized_shape[0]
    assert merged == (64 if kind.merge_order == "norm_first" else 32)
    reference, reference2 = nn.LayerNorm(16), nn.LayerNorm(16)
    kind.init_norms(reference, reference2)
    for block in model.layers[0].blocks:
        for ours, theirs in ((block.norm1, reference), (block.norm2, reference2)):
            assert torch.equal(ours.weight, theirs.weight) and torch.equal(ours.bias, theirs.bias)
    block, layout = model.layers[0].blocks[1], model.layout(cfg.grid)[0].blocks[1]
    x = torch.randn(2, 256, 16)
    with torch.no_grad():
        for norm in (block.norm1, block.norm2):  # away from the init, so the order shows
            norm.weight.normal_()
            norm.bias.normal_()
        y = block(x, layout)
        assert y.shape == x.shape
        assert name in PLACEMENT_FORMULAS or name not in NORM_PLACEMENTS.builtin
        if name in PLACEMENT_FORMULAS:
            formula = PLACEMENT_FORMULAS[name]
            mid = formula(x, lambda t: block.attn(t, layout), block.norm1)
            assert torch.equal(y, formula(mid, block.mlp, block.norm2))
        for norm in (block.norm1, block.norm2):
            norm.bias.add_(1.0)
            assert not torch.allclose(block(x, layout), y)
            norm.bias.sub_(1.0)
    block(x, layout).square().sum().backward()
    assert block.norm1.weight.grad.abs().sum() > 0 and block.norm2.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("name", SHIFTS.names())
@pytest.mark.parametrize("size,window", [((8, 8), 4), ((7, 10), 4), ((10, 6), 3)], ids=["tiled", "rect", "odd"])
def test_shift_kind_contract(name, size, window):
    """Through the built model's layouts: the stage shift is the kind's; regular blocks are the same for every
    kind; each block's windows are the kind's padded grid rolled by its roll, every real token in exactly one
    window slot; its mask is the kind's region labels plus the padding; and no window lets two tokens more than
    M - 1 apart (on the map) see each other: a shift never joins the two ends of the map."""
    kind = SHIFTS[name]
    assert issubclass(kind, ShiftKind) and kind.name == name and kind.description
    H, W = size
    cfg = SwinConfig(img_size=size, patch_size=1, window_size=window, embed_dim=8, depths=(2,), num_heads=(2,),
                     shift=name, drop_path_rate=0.0)
    model = SwinTransformer(cfg)
    shift = kind.stage_shift(window)
    assert 0 <= shift < window and cfg.stages()[0].shift == shift
    assert kind.grid(size, window, 0) == (0, 0, -(-H // window) * window, -(-W // window) * window)
    assert kind.roll(0) == 0 and kind.region_labels(kind.grid(size, window, 0)[2:], window, 0) is None
    layouts = model.layout(cfg.grid)[0].blocks
    for s, layout in zip((0, shift), layouts):
        top, left, Hp, Wp = kind.grid(size, window, s)
        assert Hp % window == Wp % window == 0 and 0 <= top and top + H <= Hp and 0 <= left and left + W <= Wp
        rows, cols = torch.arange(Hp)[:, None] - top, torch.arange(Wp)[None, :] - left
        token = torch.where((rows >= 0) & (rows < H) & (cols >= 0) & (cols < W), rows * W + cols, H * W)
        token = torch.roll(token, (-kind.roll(s),) * 2, dims=(0, 1))
        slots = window_partition(token[None, :, :, None], window).squeeze(-1)  # (nW, N)
        assert torch.equal(layout.gather, slots.flatten())
        assert torch.equal(torch.bincount(slots.flatten(), minlength=H * W + 1)[:-1], torch.ones(H * W).long())
        labels = kind.region_labels((Hp, Wp), window, s)
        if labels is None:
            labels = torch.zeros(Hp, Wp, dtype=torch.long)
        labels = window_partition(labels[None, :, :, None], window).squeeze(-1)
        expected = (labels[:, None, :] != labels[:, :, None]).float() * REGION_MASK
        expected = expected.masked_fill((slots == H * W)[:, None, :], float("-inf"))
        mask = layout.mask if layout.mask is not None else torch.zeros_like(expected)
        assert torch.equal(mask, expected)
        # which real pairs may attend: never two tokens M or more apart along a side of the map
        real = slots < H * W
        q, k = slots[:, :, None], slots[:, None, :]
        together = (mask == 0) & real[:, :, None] & real[:, None, :]
        assert ((q // W - k // W).abs()[together] < window).all() and ((q % W - k % W).abs()[together] < window).all()
        assert together.diagonal(dim1=1, dim2=2)[real].all()  # every real token sees itself
    with torch.no_grad():
        assert torch.isfinite(model.eval()(torch.randn(1, 3, H, W))).all()


@pytest.mark.parametrize("name", WINDOWS.names())
@pytest.mark.parametrize("size,window", [((8, 8), 4), ((7, 10), 4), ((10, 6), 3)], ids=["tiled", "rect", "odd"])
def test_window_kind_contract(name, size, window):
    """Its torch-free facts are the class's and validation follows ``shifts``; through the built model (double,
    both shift positions where the kind shifts): parameters counted = built; FLOPs = torch's counter on the
    reference path; fused = reference; one image's output independent of the others in the batch; every layout
    index in range and every query with a key; a kind that ``partitions`` puts each real token in exactly one
    window slot (``scatter`` the inverse of ``gather``); the drawn weights are softmax rows; and the model runs
    at another input size."""
    kind = WINDOWS[name]
    assert issubclass(kind, WindowKind) and kind.name == name and kind.description
    if name in WINDOWS.builtin:  # the facts validation reads without torch are the class's own
        assert WINDOWS.facts[name] == {"shifts": kind.shifts, "partitions": kind.partitions}
    H, W = size
    base = dict(img_size=size, patch_size=1, window_size=window, embed_dim=8, depths=(2,), num_heads=(2,),
                windows=name, drop_path_rate=0.0)
    if not kind.shifts:
        with pytest.raises(ConfigError, match=rf"^shift: 'cyclic' does not go with windows: {name} .*use shift: none"):
            SwinConfig(**base, shift="cyclic")
    cfg = SwinConfig(**base, shift="cyclic" if kind.shifts else "none")
    model = SwinTransformer(cfg.replace(fused=False)).double().eval()
    assert count_params(cfg) == numel(model)
    x = torch.randn(3, 3, H, W, dtype=torch.float64)
    with torch.no_grad():
        assert counted_macs(model, x[:1]) == count_flops(cfg)
        reference = model(x)
        for m in model.modules():
            if hasattr(m, "fused"):
                m.fused = True
        torch.testing.assert_close(model(x), reference, rtol=1e-10, atol=1e-10)
        torch.testing.assert_close(model(x[1:2]), reference[1:2], rtol=1e-10, atol=1e-10)
    layouts = model.layout(cfg.grid)[0].blocks
    assert [b.window for b in layouts] == [window] * 2
    for block, layout in zip(model.layers[0].blocks, layouts):
        gather = layout.gather
        assert gather.dtype == torch.long and 0 <= gather.min() and gather.max() <= H * W
        assert 0 <= layout.relative_index.min() and layout.relative_index.max() < (2 * window - 1) ** 2
        if layout.mask is not None:
            assert torch.isfinite(layout.mask).any(-1).all()  # no query without a key
        if kind.partitions:
            assert torch.equal(torch.bincount(gather, minlength=H * W + 1)[:-1], torch.ones(H * W).long())
            assert torch.equal(gather[layout.scatter], torch.arange(H * W))
            _, _, Hp, Wp = cfg.stages()[0].grid(block.shift)
            assert gather.numel() == Hp * Wp
    for _, weights in attention_weights(model, x):
        np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=1e-6)
    with torch.no_grad():
        assert torch.isfinite(model(torch.randn(1, 3, W + 1, H + 2, dtype=torch.float64))).all()
