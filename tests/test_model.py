"""The switchable Swin model: reference anchors, fused == explicit, the shifted-window invariant checked
against a brute-force construction, gradients, init, config errors, odd sizes, window clipping, transfer."""

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

import swin_lit.models.attention as attention_module
from swin_lit.models import ConfigError, SwinConfig, SwinTransformer, preset
from swin_lit.models.blocks import SwinBlock
from swin_lit.models.flops import count_params
from swin_lit.models.position import cpb_coordinates
from swin_lit.models.transfer import transfer, transfer_config
from swin_lit.models.windows import attention_mask, region_labels, relative_position_index, window_partition

SHIFTS = ("cyclic", "none")
NORMS = ("pre", "res_post")
ATTENTIONS = ("dot", "cosine")
POSITIONS = ("none", "abs", "table", "abs+table", "cpb_linear", "cpb_log")
ALL_SWITCHES = list(itertools.product(SHIFTS, NORMS, ATTENTIONS, POSITIONS))

# img 24 / patch 2 -> 12x12 tokens, window 5: stage 1 padded to 15x15, stage 2 (6x6) padded to 10x10;
# both stages shift by 2. Small enough for 48 switch combinations in float64.
TINY = dict(img_size=24, patch_size=2, window_size=5, embed_dim=8, depths=(2, 2), num_heads=(2, 4), num_classes=5,
            drop_path_rate=0.0)


def tiny(**switches) -> SwinConfig:
    return SwinConfig.from_dict({**TINY, **switches})


def perturb_(model: torch.nn.Module, scale: float = 0.2) -> torch.nn.Module:
    """Move every parameter off its init (zero-init post norms, zero biases), as the official fixtures do."""
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(scale * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    return model


def _switch_id(s):
    return "-".join(s)


# ---------------------------------------------------------------------------------------------------------------
# Reference anchors (swin_reference.md 1.9, 1.12, 2.3)


def test_relative_position_index_window2():
    assert relative_position_index(2).tolist() == [[4, 3, 1, 0], [5, 4, 2, 1], [7, 6, 4, 3], [8, 7, 5, 4]]


def test_relative_position_index_window7():
    idx = relative_position_index(7)
    assert idx.shape == (49, 49)
    assert (idx.min().item(), idx.max().item()) == (0, 168)
    assert (idx.diagonal() == 84).all()
    assert idx[0, :8].tolist() == [84, 83, 82, 81, 80, 79, 78, 71]


def _masked_per_window(res, window, shift):
    mask = attention_mask(res, res, window, shift)
    return (mask == -100.0).flatten(1).sum(1).tolist()


def test_shift_mask_counts():
    assert _masked_per_window(4, 2, 1) == [0, 8, 8, 12]
    assert _masked_per_window(8, 4, 2) == [0, 128, 128, 192]
    counts = _masked_per_window(56, 7, 3)
    assert len(counts) == 64
    assert (counts.count(0), counts.count(1176), counts.count(1776)) == (49, 14, 1)
    assert counts[-1] == 1776  # the bottom-right window holds all four corner regions
    assert attention_mask(8, 8, 4, 0) is None  # regular windows of a tiled map need no mask


def test_region_labels_4x4():
    assert region_labels(4, 2, 1).tolist() == [[0, 0, 1, 2], [0, 0, 1, 2], [3, 3, 4, 5], [6, 6, 7, 8]]


def _axis(coords, window):
    """CPB coordinate of offsets 0..M-1 along the h axis (dw = 0)."""
    return coords[window - 1:, window - 1, 0].tolist()


def test_log_cpb_coordinates():
    w8 = [0, 0.366512, 0.572069, 0.715614, 0.826016, 0.915745, 0.991335, 1.056642]
    assert _axis(cpb_coordinates(8, 8, "log"), 8) == pytest.approx(w8, abs=2e-6)
    w7 = [0, 0.407464, 0.624823, 0.773976, 0.887655, 0.979533, 1.056642]
    assert _axis(cpb_coordinates(7, 7, "log"), 7) == pytest.approx(w7, abs=2e-6)
    assert cpb_coordinates(8, 8, "log").abs().max().item() == pytest.approx(math.log2(9) / 3, abs=1e-6)
    for window, pretrained, top in [(16, 8, 1.393777), (24, 8, 1.590025), (16, 12, 1.191330), (24, 12, 1.382633)]:
        coords = cpb_coordinates(window, pretrained, "log")
        assert coords.max().item() == pytest.approx(top, abs=2e-6), (window, pretrained)
        assert coords.min().item() == pytest.approx(-top, abs=2e-6)
    assert cpb_coordinates(8, 8, "linear").abs().max().item() == pytest.approx(8.0)


def test_drop_path_schedule_swin_t():
    # Swin-T depths and rate (0.2) on a small width: the schedule depends only on those
    model = SwinTransformer(preset("swin_t", embed_dim=24, img_size=32, num_classes=2))
    rates = [b.drop_path.p for s in model.layers for b in s.blocks]
    assert len(rates) == 12
    assert rates[0] == 0.0 and rates[1] == pytest.approx(0.018182, abs=1e-6)
    ends = [s.blocks[-1].drop_path.p for s in model.layers]
    assert ends == pytest.approx([0.018182, 0.054545, 0.163636, 0.2], abs=1e-6)


# ---------------------------------------------------------------------------------------------------------------
# Fused (SDPA) path == explicit softmax path


@pytest.mark.parametrize("switches", ALL_SWITCHES, ids=_switch_id)
def test_fused_equals_explicit(switches):
    shift, norm, attention, position = switches
    cfg = tiny(shift=shift, norm=norm, attention=attention, position=position)
    fused = perturb_(SwinTransformer(cfg).double()).train()  # train mode: all dropouts are 0 in TINY
    explicit = SwinTransformer(cfg.replace(fused=False)).double().train()
    explicit.load_state_dict(fused.state_dict())
    x = torch.randn(2, 3, 24, 24, dtype=torch.float64)
    target = torch.randn(2, 5, dtype=torch.float64)
    outs = []
    for model in (fused, explicit):
        y = model(x)
        ((y - target) ** 2).sum().backward()
        outs.append((y.detach(), {n: p.grad for n, p in model.named_parameters()}))
    (y1, g1), (y2, g2) = outs
    torch.testing.assert_close(y1, y2, rtol=1e-10, atol=1e-10)
    assert g1.keys() == g2.keys()
    for name in g1:
        torch.testing.assert_close(g1[name], g2[name], rtol=1e-9, atol=1e-10, msg=name)


# ---------------------------------------------------------------------------------------------------------------
# Shift + mask == attention restricted to the sub-windows, against a brute-force construction


def _block(res, window, shift, attention, position, heads=2, dim=8):
    cfg = SwinConfig(img_size=res, patch_size=1, window_size=window, embed_dim=dim, depths=(2,), num_heads=(heads,),
                     attention=attention, position=position, norm="pre", drop_path_rate=0.0)
    g = cfg.stages()[0]
    assert g.window == window and g.shift == (window // 2)
    block = SwinBlock(g, shift, cfg, drop_path=0.0, normalising_window=0)
    return perturb_(block.double()).eval(), g


def _offset_bias(block, window):
    """((2M-1)^2, heads) bias per relative offset, straight from the parameters."""
    pb = block.attn.position_bias
    if pb is None:
        return None
    if hasattr(pb, "table"):
        return pb.table
    return 16.0 * torch.sigmoid(pb.mlp(pb.coords.to(torch.float64)))


def brute_force_window_attention(block, x, res, window, shift):
    """Each token attends to exactly the real tokens in its own shifted-window cell, written with loops.

    The shifted grid cuts each axis at shift + k * window; a token at coordinate t is in cell (t - shift) // window
    (floor division: the first `shift` rows form their own cell). No roll, no mask, no padding: keys outside the
    cell, and padded positions (which do not exist here), are simply never gathered.
    """
    attn = block.attn
    B, L, C = x.shape
    heads, d = attn.heads, attn.head_dim
    W = attn.qkv.weight
    if attn.similarity == "dot":
        b = attn.qkv.bias
    else:
        b = torch.cat((attn.q_bias, torch.zeros_like(attn.q_bias), attn.v_bias))
    qkv = x @ W.T + b
    q, k, v = qkv[..., :C], qkv[..., C:2 * C], qkv[..., 2 * C:]
    table = _offset_bias(block, window)
    rows = torch.arange(L) // res
    cols = torch.arange(L) % res
    cell_r = torch.div(rows - shift, window, rounding_mode="floor")
    cell_c = torch.div(cols - shift, window, rounding_mode="floor")
    out = torch.zeros(B, L, C, dtype=x.dtype)
    for i in range(L):
        keys = [j for j in range(L) if cell_r[j] == cell_r[i] and cell_c[j] == cell_c[i]]
        assert 1 <= len(keys) <= window * window
        for h in range(heads):
            sl = slice(h * d, (h + 1) * d)
            qi, kj, vj = q[:, i, sl], k[:, keys, sl], v[:, keys, sl]  # (B, d), (B, n, d), (B, n, d)
            if attn.similarity == "dot":
                logits = (kj @ qi.unsqueeze(-1)).squeeze(-1) * d**-0.5
            else:
                scale = torch.clamp(attn.logit_scale[h, 0, 0], max=math.log(100)).exp()
                logits = (F.normalize(kj, dim=-1) @ F.normalize(qi, dim=-1).unsqueeze(-1)).squeeze(-1) * scale
            if table is not None:
                offsets = [(rows[i] - rows[j] + window - 1) * (2 * window - 1) + (cols[i] - cols[j] + window - 1)
                           for j in keys]
                logits = logits + table[torch.stack(offsets), h]
            out[:, i, sl] = (logits.softmax(-1).unsqueeze(-1) * vj).sum(1)
    return attn.proj(out)


# (6, 4): the wrapped rows only meet padded rows (the padding mask alone separates them);
# (7, 4): real rows 0-1 wrap onto real row 6, so the -100 region mask and the -inf padding mask both matter.
@pytest.mark.parametrize("res,window", [(8, 4), (6, 4), (7, 4)], ids=["tiled", "padded", "padded-wrap"])
@pytest.mark.parametrize("attention,position", [("dot", "table"), ("cosine", "cpb_log"), ("dot", "none")])
@pytest.mark.parametrize("shifted", [True, False], ids=["shift", "noshift"])
def test_shifted_window_attention_equals_brute_force(res, window, attention, position, shifted):
    shift = window // 2 if shifted else 0
    block, g = _block(res, window, shift, attention, position)
    assert g.padded == -(-res // window) * window
    x = torch.randn(2, res * res, 8, dtype=torch.float64)
    with torch.no_grad():
        ours = block.window_attention(x)
        theirs = brute_force_window_attention(block, x, res, window, shift)
    # the official -100 region mask is soft: masked keys keep a weight of about e^-100 relative (~1e-44)
    torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("shift", [0, 2])
def test_padded_tokens_are_never_keys(shift):
    """Redo the block's window attention with garbage (not zeros) in the padded positions: same output."""
    res, window = 6, 4
    block, g = _block(res, window, shift, "dot", "table")
    P = g.padded
    x = torch.randn(2, res * res, 8, dtype=torch.float64)
    grid = torch.randn(2, P, P, 8, dtype=torch.float64) * 50  # garbage everywhere ...
    grid[:, :res, :res] = x.view(2, res, res, 8)  # ... except the real map
    rolled = torch.roll(grid, (-shift, -shift), dims=(1, 2))
    with torch.no_grad():
        windows = block.attn(window_partition(rolled, window), block.attn_mask)
    nw = P // window
    out = windows.view(2, nw, nw, window, window, 8).permute(0, 1, 3, 2, 4, 5).reshape(2, P, P, 8)
    out = torch.roll(out, (shift, shift), dims=(1, 2))[:, :res, :res].reshape(2, res * res, 8)
    with torch.no_grad():
        torch.testing.assert_close(out, block.window_attention(x), rtol=1e-10, atol=1e-10)
    # and the padding mask is -inf (hard), the region mask -100 (soft, official)
    assert torch.isinf(block.attn_mask).any()


# ---------------------------------------------------------------------------------------------------------------
# Gradients and init


def _grads(model, x):
    model.zero_grad()
    model(x).square().sum().backward()
    return {n: p.grad for n, p in model.named_parameters()}


@pytest.mark.parametrize("switches", ALL_SWITCHES, ids=_switch_id)
def test_every_parameter_gets_a_gradient(switches):
    shift, norm, attention, position = switches
    model = SwinTransformer(tiny(shift=shift, norm=norm, attention=attention, position=position)).train()
    x = torch.randn(2, 3, 24, 24)
    grads = _grads(model, x)
    for name, g in grads.items():
        assert g is not None, f"{name}: no gradient at init"
        assert torch.isfinite(g).all(), f"{name}: non-finite gradient at init"
    if norm == "res_post":
        # zero-init post norms cut the branches at init: everything inside a block gets exactly zero gradient
        assert (grads["layers.0.blocks.0.attn.qkv.weight"] == 0).all()
        assert (grads["layers.0.blocks.0.norm1.weight"] != 0).any()
    perturb_(model)
    grads = _grads(model, x)
    for name, g in grads.items():
        assert g is not None and torch.isfinite(g).all(), name
        assert (g != 0).any(), f"{name}: all-zero gradient after perturbing"


def test_res_post_blocks_are_identity_at_init():
    model = SwinTransformer(preset("swinv2_t", img_size=64, window_size=8, num_classes=3)).eval()
    for stage in model.layers:
        for block in stage.blocks:
            x = torch.randn(2, block.resolution**2, block.norm1.normalized_shape[0])
            with torch.no_grad():
                assert torch.equal(block(x), x)


def test_dot_attention_ignores_a_key_bias():
    """Informative: with dot-product softmax a key bias adds q.b_k to every logit of a row (softmax-invariant),
    which is why V2 drops it; with cosine attention it would change the normalised keys."""
    block, _ = _block(8, 4, 2, "dot", "table")
    x = torch.randn(2, 64, 8, dtype=torch.float64)
    with torch.no_grad():
        before = block.window_attention(x)
        block.attn.qkv.bias[8:16] += 3.0 * torch.randn(8, dtype=torch.float64)
        after = block.window_attention(x)
    torch.testing.assert_close(before, after, rtol=1e-10, atol=1e-10)
    q, k = torch.randn(2, 5, 4, dtype=torch.float64), torch.randn(2, 5, 4, dtype=torch.float64)
    b = torch.randn(4, dtype=torch.float64)
    cos = F.normalize(q, dim=-1) @ F.normalize(k, dim=-1).transpose(1, 2)
    cos_b = F.normalize(q, dim=-1) @ F.normalize(k + b, dim=-1).transpose(1, 2)
    assert (cos.softmax(-1) - cos_b.softmax(-1)).abs().max() > 1e-3


def test_cosine_logits_are_bounded_by_the_clamped_scale(monkeypatch):
    cfg = tiny(attention="cosine", position="cpb_log", fused=False)
    model = SwinTransformer(cfg).eval()
    with torch.no_grad():
        for m in model.modules():
            if hasattr(m, "logit_scale"):
                m.logit_scale.fill_(50.0)  # exp(50): far past the clamp at 100
    seen = []
    real = attention_module.explicit_attention

    def spy(q, k, v, *args, **kwargs):  # cosine: q arrives normalised and pre-scaled, the kernel scale is 1
        seen.append((q.norm(dim=-1), q @ k.transpose(-2, -1)))
        return real(q, k, v, *args, **kwargs)

    monkeypatch.setattr(attention_module, "explicit_attention", spy)
    with torch.no_grad():
        model(torch.randn(2, 3, 24, 24))
        biases = [m.attn.position_bias() for s in model.layers for m in s.blocks]
    assert len(seen) == len(biases) == 4
    for (qnorm, logits), bias in zip(seen, biases):
        # scale clamped at 100: every query has norm 100, except padded tokens (zero vectors, outputs discarded)
        assert ((qnorm - 100.0).abs() < 1e-3).logical_or(qnorm == 0).all() and qnorm.max() > 99.99
        assert logits.abs().max() <= 100.0 + 1e-3
        assert bias.min() >= 0.0 and bias.max() <= 16.0  # 16 * sigmoid
        assert (logits + bias).max() <= 116.0 + 1e-3 and (logits + bias).min() >= -100.0 - 1e-3


# ---------------------------------------------------------------------------------------------------------------
# Parameter counts


PARAMS = {
    "swin_t": 28_288_354, "swin_s": 49_606_258, "swin_b": 87_768_224, "swin_l": 196_532_476,
    "swinv2_t": 28_347_154, "swinv2_s": 49_728_418, "swinv2_b": 87_918_816,
}


@pytest.mark.parametrize("name", PARAMS)
def test_preset_parameter_counts(name):
    cfg = preset(name)
    assert count_params(cfg) == PARAMS[name]
    with torch.device("meta"):  # built without memory or init cost
        model = SwinTransformer(cfg)
    assert sum(p.numel() for p in model.parameters()) == PARAMS[name]


# ---------------------------------------------------------------------------------------------------------------
# Config errors at construction


@pytest.mark.parametrize(
    "data,needles",
    [
        (dict(embed_dim=10), ["num_heads[0]", "3 heads", "dim 10"]),
        (dict(img_size=30, patch_size=4), ["img_size", "patch_size 4", "28", "32"]),
        (dict(shift="diagonal"), ["shift", "'diagonal'", "'cyclic'", "'none'"]),
        (dict(norm="post"), ["norm", "'pre'", "'res_post'"]),
        (dict(position="rope"), ["position", "'table'", "'cpb_log'"]),
        (dict(windw_size=7), ["windw_size", "unknown key", "window_size"]),
        (dict(window_size="7"), ["window_size", "integer"]),
        (dict(depths=2), ["depths", "list"]),
        (dict(fused="yes"), ["fused", "true or false"]),
        (dict(pretrained_window_sizes=[8, 8, 8, 8]), ["pretrained_window_sizes", "cpb", "'table'"]),
        (dict(num_heads=[3, 6]), ["num_heads", "one entry per stage"]),
        (dict(drop_path_rate=1.5), ["drop_path_rate", "[0, 1)"]),
    ],
    ids=lambda v: next(iter(v)) if isinstance(v, dict) else None,
)
def test_bad_config_fails_with_the_field_named(data, needles):
    with pytest.raises(ConfigError) as err:
        SwinConfig.from_dict(data)
    message = str(err.value)
    assert message.startswith(needles[0]), message
    for needle in needles:
        assert needle in message, message


# ---------------------------------------------------------------------------------------------------------------
# Sizes the window does not tile, odd maps, window clipping


@pytest.mark.parametrize("switches", [dict(), dict(norm="res_post", attention="cosine", position="cpb_log")])
def test_non_divisible_sizes_build_and_train(switches):
    # 28/2 = 14 tokens, window 4: stage maps 14 (pad 16), 7 (odd: pad 8, merge pads to 8), 4
    cfg = SwinConfig.from_dict(dict(img_size=28, patch_size=2, window_size=4, embed_dim=8, depths=(2, 2, 2),
                                    num_heads=(1, 2, 4), num_classes=3, **switches))
    geo = cfg.stages()
    assert [(g.resolution, g.window, g.shift, g.padded) for g in geo] == [(14, 4, 2, 16), (7, 4, 2, 8), (4, 4, 0, 4)]
    model = SwinTransformer(cfg)
    x = torch.randn(2, 3, 28, 28)
    stages = model.forward_stages(x)
    assert [tuple(s.shape) for s in stages] == [(2, 49, 16), (2, 16, 32), (2, 16, 32)]
    y = model(x)
    assert y.shape == (2, 3)
    y.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_window_clipped_to_small_maps_without_shift():
    cfg = SwinConfig(img_size=32, patch_size=2, window_size=7, embed_dim=8, depths=(2, 2, 2), num_heads=(1, 2, 4))
    geo = cfg.stages()
    assert [(g.resolution, g.window, g.shift, g.padded) for g in geo] == [(16, 7, 3, 21), (8, 7, 3, 14), (4, 4, 0, 4)]
    # equality also clips (official `<=`): 8x8 map with window 8
    eq = SwinConfig(img_size=32, patch_size=4, window_size=8, embed_dim=8, depths=(2,), num_heads=(1,))
    assert (eq.stages()[0].window, eq.stages()[0].shift) == (8, 0)
    model = SwinTransformer(cfg)
    last = model.layers[-1]
    for block in last.blocks:
        assert block.window == 4 and block.shift == 0 and block.attn_mask is None
        assert block.attn.position_bias.table.shape == (7 * 7, 4)
    assert model.layers[0].blocks[1].shift == 3 and model.layers[0].blocks[1].attn_mask is not None


# ---------------------------------------------------------------------------------------------------------------
# Transfer to the same size is the identity


@pytest.mark.parametrize("switches,methods", [
    (dict(position="table"), ["bicubic"]),
    (dict(position="abs+table"), ["bicubic"]),
    (dict(norm="res_post", attention="cosine", position="cpb_log"), ["extrapolate", "renormalize"]),
])
def test_transfer_to_the_same_size_is_identity(switches, methods):
    cfg = SwinConfig.from_dict(dict(img_size=32, patch_size=2, window_size=4, embed_dim=8, depths=(2, 2),
                                    num_heads=(1, 2), num_classes=3, **switches))
    model = perturb_(SwinTransformer(cfg).double()).eval()
    x = torch.randn(2, 3, 32, 32, dtype=torch.float64)
    with torch.no_grad():
        expected = model(x)
        for method in methods:
            moved = transfer(model, img_size=32, window_size=4, method=method).eval()
            torch.testing.assert_close(moved(x), expected, rtol=1e-12, atol=1e-12, msg=method)


def test_transfer_method_must_fit_the_position():
    table = SwinConfig(img_size=32, patch_size=2, window_size=4, embed_dim=8, depths=(2, 2), num_heads=(1, 2))
    with pytest.raises(ConfigError, match="'extrapolate'.*'table'"):
        transfer_config(table, 64, 8, "extrapolate")
    cpb = table.replace(position="cpb_log")
    with pytest.raises(ConfigError, match="'bicubic'.*'cpb_log'"):
        transfer_config(cpb, 64, 8, "bicubic")
    with pytest.raises(ConfigError, match="method.*'nearest'"):
        transfer_config(cpb, 64, 8, "nearest")


def test_unit_normalize_matches_f_normalize_and_its_gradient():
    from swin_lit.models.kernels import unit_normalize

    x = torch.randn(4, 5, 2, 3, 8, dtype=torch.float64, requires_grad=True)
    assert torch.allclose(unit_normalize(x), torch.nn.functional.normalize(x, dim=-1), atol=1e-15)
    assert torch.autograd.gradcheck(unit_normalize, (x,))
