"""The switchable Swin model: reference anchors, fused == explicit, shifted windows (cyclic and pad) and sliding
windows checked against dense masked attention, pad == cyclic,
gradients for every switch combination, init, config errors, odd and rectangular sizes, window clipping,
any input size, multi-scale features, transfer."""

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

import swin_lit.models.attention as attention_module
from swin_lit.models import ConfigError, SwinConfig, SwinTransformer, preset
from swin_lit.models.flops import count_params
from swin_lit.models.official import load_pretrained
from swin_lit.models.position import cpb_coordinates
from swin_lit.models.transfer import transfer, transfer_config
from swin_lit.models.windows import (
    attention_mask,
    from_windows,
    region_labels,
    relative_position_index,
    sliding_relative_index,
    to_windows,
)

SHIFTS = ("cyclic", "none", "pad")
NORMS = ("pre", "res_post")
ATTENTIONS = ("dot", "cosine")
ABSOLUTES = ("none", "learned")
RELATIVES = ("none", "table", "cpb_linear", "cpb_log")
# every partitioned combination, and every sliding one (sliding windows have no shift)
ALL_SWITCHES = [dict(zip(("shift", "norm", "attention", "absolute", "relative"), c))
                for c in itertools.product(SHIFTS, NORMS, ATTENTIONS, ABSOLUTES, RELATIVES)]
ALL_SWITCHES += [dict(windows="sliding", shift="none", norm=n, attention=a, absolute=p, relative=r)
                 for n, a, p, r in itertools.product(NORMS, ATTENTIONS, ABSOLUTES, RELATIVES)]
# fused vs explicit: every way of computing windows x similarity x relative kind (norm and absolute vary along)
KERNEL_SWITCHES = [dict(windows=w, shift=s, attention=a, relative=r, norm=("pre", "res_post")[i % 2],
                        absolute=("none", "learned")[(i // 2) % 2])
                   for i, ((w, s), a, r) in enumerate(itertools.product(
                       [("partition", "cyclic"), ("partition", "pad"), ("partition", "none"), ("sliding", "none")],
                       ATTENTIONS, RELATIVES))]

# img 24 / patch 2 -> 12x12 tokens, window 5: stage 1 padded to 15x15, stage 2 (6x6) padded to 10x10;
# both stages shift by 2. Small enough for every switch combination in float64.
REGION = -100.0  # the official region mask value

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
    return "-".join(s.values())


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
    mask = attention_mask(res, window, shift)
    return (mask == -100.0).flatten(1).sum(1).tolist()


def test_shift_mask_counts():
    assert _masked_per_window(4, 2, 1) == [0, 8, 8, 12]
    assert _masked_per_window(8, 4, 2) == [0, 128, 128, 192]
    counts = _masked_per_window(56, 7, 3)
    assert len(counts) == 64
    assert (counts.count(0), counts.count(1176), counts.count(1776)) == (49, 14, 1)
    assert counts[-1] == 1776  # the bottom-right window holds all four corner regions
    assert attention_mask(8, 4, 0) is None  # regular windows of a tiled map need no mask
    assert attention_mask((8, 12), 4, 2, "pad").shape == (3 * 4, 16, 16)  # pad: one more window per side
    assert attention_mask((8, 12), 4, 2, "pad").eq(REGION).sum() == 0  # ... and no region mask, only -inf



def test_rectangular_region_labels_and_mask():
    labels = region_labels((4, 6), 2, 1)
    assert labels.tolist() == [[0] * 4 + [1, 2], [0] * 4 + [1, 2], [3] * 4 + [4, 5], [6] * 4 + [7, 8]]
    mask = attention_mask((4, 6), 2, 1)
    assert mask.shape == (2 * 3, 4, 4)
    assert (mask == REGION).flatten(1).sum(1).tolist() == [0, 0, 8, 8, 8, 12]


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


@pytest.mark.parametrize("switches", KERNEL_SWITCHES, ids=_switch_id)
def test_fused_equals_explicit(switches):
    cfg = tiny(**switches)
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
    with torch.no_grad():  # and in eval, where the fused kernel takes the learned bias too
        torch.testing.assert_close(fused.eval()(x), explicit.eval()(x), rtol=1e-10, atol=1e-10)


# ---------------------------------------------------------------------------------------------------------------
# Shift + mask == attention restricted to the sub-windows, and sliding windows, against dense masked attention


def _block(size, window, shifted, attention, relative, shift="cyclic", windows="partition", heads=2, dim=8):
    """One perturbed float64 block of a one-stage model on a (H, W) token map (patch 1), and its layout."""
    cfg = SwinConfig(img_size=size, patch_size=1, window_size=window, embed_dim=dim, depths=(2,),
                     num_heads=(heads,), attention=attention, relative=relative, norm="pre", shift=shift,
                     windows=windows, drop_path_rate=0.0)
    g = cfg.stages()[0]
    assert g.window == window and g.shift == (window // 2 if shift != "none" else 0)
    model = perturb_(SwinTransformer(cfg).double()).eval()
    i = 1 if shifted else 0
    return model.layers[0].blocks[i], model.layout(cfg.grid)[0].blocks[i]


def _offset_bias(block, window):
    """((2M-1)^2, heads) bias per relative offset, straight from the parameters."""
    pb = block.attn.relative_bias
    if pb is None:
        return None
    if hasattr(pb, "table"):
        return pb.table
    coords = cpb_coordinates(window, window, pb.spacing).view(-1, 2).double()
    return 16.0 * torch.sigmoid(pb.mlp(coords))


def dense_reference_attention(block, x, size, window, allowed):
    """Attention of every token with every token of the map, restricted to the pairs ``allowed`` (L, L): no
    windows, no roll, no padding, no mask values; the relative bias read at each pair's offset (query - key)."""
    H, W = size
    attn = block.attn
    B, L, C = x.shape
    h, d = attn.heads, attn.head_dim
    b = attn.qkv.bias if attn.similarity.name == "dot" else torch.cat((attn.q_bias, torch.zeros_like(attn.q_bias),
                                                                   attn.v_bias))
    q, k, v = (x @ attn.qkv.weight.T + b).view(B, L, 3, h, d).permute(2, 0, 3, 1, 4)  # (B, h, L, d) each
    if attn.similarity.name == "dot":
        logits = q @ k.transpose(-2, -1) * d**-0.5
    else:
        scale = torch.clamp(attn.logit_scale, max=math.log(100)).exp()  # (h, 1, 1)
        logits = F.normalize(q, dim=-1) @ F.normalize(k, dim=-1).transpose(-2, -1) * scale
    table = _offset_bias(block, window)
    if table is not None:
        rows, cols = torch.arange(L) // W, torch.arange(L) % W
        dh, dw = rows[:, None] - rows[None, :], cols[:, None] - cols[None, :]  # (L, L) query - key
        inside = (dh.abs() < window) & (dw.abs() < window)
        index = torch.where(inside, (dh + window - 1) * (2 * window - 1) + dw + window - 1, 0)
        assert inside[allowed].all()  # every allowed pair has an offset in the table
        logits = logits + table[index].permute(2, 0, 1)
    logits = logits.masked_fill(~allowed, float("-inf"))
    out = (logits.softmax(-1) @ v).transpose(1, 2).reshape(B, L, C)
    return attn.proj(out)


def shifted_cells(size, window, shift) -> torch.Tensor:
    """(L, L) bool: the pairs in one cell of the window grid cut at shift + k * window on both axes (a token at
    coordinate t is in cell (t - shift) // window, floor division: the first ``shift`` rows form their own cell)."""
    H, W = size
    rows, cols = torch.arange(H * W) // W, torch.arange(H * W) % W
    cell = torch.div(rows - shift, window, rounding_mode="floor") * 10_000 + torch.div(cols - shift, window,
                                                                                       rounding_mode="floor")
    return cell[:, None] == cell[None, :]


def neighbourhoods(size, window) -> torch.Tensor:
    """(L, L) bool: key within key - query offsets -(M-1)//2 .. M//2 of the query on both axes."""
    H, W = size
    rows, cols = torch.arange(H * W) // W, torch.arange(H * W) % W
    dh, dw = rows[None, :] - rows[:, None], cols[None, :] - cols[:, None]
    lo, hi = -((window - 1) // 2), window // 2
    return (dh >= lo) & (dh <= hi) & (dw >= lo) & (dw <= hi)


# (8, 4): tiled; (6, 4): the wrapped rows only meet padded rows (the padding mask alone separates them);
# (7, 4): real rows 0-1 wrap onto real row 6, so the -100 region mask and the -inf padding mask both matter;
# (7, 10) and (10, 6): rectangular, each side with its own window count and padding.
@pytest.mark.parametrize("size,window", [((8, 8), 4), ((6, 6), 4), ((7, 7), 4), ((7, 10), 4), ((10, 6), 3)],
                         ids=["tiled", "padded", "padded-wrap", "rect", "rect-odd-window"])
@pytest.mark.parametrize("attention,relative", [("dot", "table"), ("cosine", "cpb_log"), ("dot", "none")])
@pytest.mark.parametrize("shift,shifted", [("cyclic", True), ("pad", True), ("cyclic", False)],
                         ids=["cyclic", "pad", "noshift"])
def test_shifted_window_attention_equals_the_dense_reference(size, window, attention, relative, shift, shifted):
    block, layout = _block(size, window, shifted, attention, relative, shift=shift)
    x = torch.randn(2, size[0] * size[1], 8, dtype=torch.float64)
    with torch.no_grad():
        ours = block.attn(x, layout)
        theirs = dense_reference_attention(block, x, size, window,
                                           shifted_cells(size, window, window // 2 if shifted else 0))
    # the official -100 region mask is soft: masked keys keep a weight of about e^-100 relative (~1e-44)
    torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("size,window", [((6, 6), 3), ((5, 7), 4), ((4, 4), 4)], ids=["odd", "even-rect", "whole"])
@pytest.mark.parametrize("attention,relative", [("dot", "table"), ("cosine", "cpb_log"), ("dot", "none")])
def test_sliding_window_attention_equals_the_dense_reference(size, window, attention, relative):
    block, layout = _block(size, window, False, attention, relative, shift="none", windows="sliding")
    x = torch.randn(2, size[0] * size[1], 8, dtype=torch.float64)
    with torch.no_grad():
        ours = block.attn(x, layout)
        theirs = dense_reference_attention(block, x, size, window, neighbourhoods(size, window))
    torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-10)


def test_sliding_relative_index_follows_the_window_convention():
    # window 2: neighbours at key - query offsets (0, 0), (0, 1), (1, 0), (1, 1): query - key 0 or -1 per axis
    assert sliding_relative_index(2).tolist() == [[4, 3, 1, 0]]
    # window 3: centred, the neighbourhood's relative offsets are the window-3 index row of the centre query
    assert sliding_relative_index(3).tolist() == [relative_position_index(3)[4].tolist()]


@pytest.mark.parametrize("shift", ["cyclic", "pad"])
@pytest.mark.parametrize("shifted", [False, True], ids=["regular", "shifted"])
def test_padded_tokens_are_never_keys(shift, shifted):
    """Redo the block's window attention with garbage (not zeros) in the padded window slots: same output."""
    size, window = (6, 5), 4
    block, layout = _block(size, window, shifted, "dot", "table", shift=shift)
    attn = block.attn
    x = torch.randn(2, 30, 8, dtype=torch.float64)
    with torch.no_grad():
        windows = to_windows(x, layout.gather, layout.scatter)  # (B, nW * N, C), zeros in the padded slots
        padded = layout.gather == 30
        assert padded.any()
        windows[:, padded] = 50 * torch.randn(2, int(padded.sum()), 8, dtype=torch.float64)
        windows = windows.view(-1, window * window, 8)
        q, k, v, scale = attn.project(windows)
        out = attn.attend(q, k, v, scale, layout).transpose(1, 2).reshape(windows.shape)
        out = from_windows(attn.proj(out).view(2, -1, 8), layout.gather, layout.scatter)
        torch.testing.assert_close(out, attn(x, layout), rtol=1e-10, atol=1e-10)
    # and the padding mask is -inf (hard), the region mask -100 (soft, official)
    assert torch.isinf(layout.mask).any()
    assert (layout.mask == REGION).any() == (shifted and shift == "cyclic")


@pytest.mark.parametrize("size", [24, 20, (24, 36)], ids=["padded", "tiled", "rect"])
@pytest.mark.parametrize("switches", [
    dict(norm="pre", attention="dot", relative="table"),
    dict(norm="res_post", attention="cosine", relative="cpb_log", absolute="learned"),
], ids=["v1", "v2"])
def test_pad_equals_cyclic(size, switches):
    """``shift: pad`` forms the same attention groups with the same relative offsets as the cyclic shift: the same
    model output (float64). The cyclic path's -100 region mask leaves masked keys a weight of ~e^-100 relative, the
    pad path's -inf none: a difference far below 1e-10 at these logit scales (cosine: scale ~10, bias < 16)."""
    cyclic = perturb_(SwinTransformer(tiny(img_size=size, shift="cyclic", **switches)).double()).eval()
    pad = SwinTransformer(cyclic.cfg.replace(shift="pad")).double().eval()
    pad.load_state_dict(cyclic.state_dict())
    H, W = cyclic.cfg.image_size
    x = torch.randn(2, 3, H, W, dtype=torch.float64)
    with torch.no_grad():
        for a, b in zip(cyclic.forward_stages(x), pad.forward_stages(x)):
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


# ---------------------------------------------------------------------------------------------------------------
# Gradients and init


def _grads(model, x):
    model.zero_grad()
    model(x).square().sum().backward()
    return {n: p.grad for n, p in model.named_parameters()}


@pytest.mark.parametrize("switches", ALL_SWITCHES, ids=_switch_id)
def test_every_parameter_gets_a_gradient(switches):
    """Every switch combination builds and takes a training step: finite gradients for every parameter, none
    all-zero once the parameters are off their init."""
    model = SwinTransformer(tiny(**switches)).train()
    x = torch.randn(2, 3, 24, 24)
    grads = _grads(model, x)
    for name, g in grads.items():
        assert g is not None, f"{name}: no gradient at init"
        assert torch.isfinite(g).all(), f"{name}: non-finite gradient at init"
    if switches["norm"] == "res_post":
        # zero-init post norms cut the branches at init: everything inside a block gets exactly zero gradient
        assert (grads["layers.0.blocks.0.attn.qkv.weight"] == 0).all()
        assert (grads["layers.0.blocks.0.norm1.weight"] != 0).any()
    perturb_(model)
    grads = _grads(model, x)
    for name, g in grads.items():
        assert g is not None and torch.isfinite(g).all(), name
        assert (g != 0).any(), f"{name}: all-zero gradient after perturbing"
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    optimizer.step()
    assert all(not torch.equal(before[n], p) for n, p in model.named_parameters())


def test_res_post_blocks_are_identity_at_init():
    model = SwinTransformer(preset("swinv2_t", img_size=64, window_size=8, num_classes=3)).eval()
    for stage, layout in zip(model.layers, model.layout(model.cfg.grid)):
        H, W = layout.resolution
        for block, block_layout in zip(stage.blocks, layout.blocks):
            x = torch.randn(2, H * W, block.norm1.normalized_shape[0])
            with torch.no_grad():
                assert torch.equal(block(x, block_layout), x)


def test_dot_attention_ignores_a_key_bias():
    """Informative: with dot-product softmax a key bias adds q.b_k to every logit of a row (softmax-invariant),
    which is why V2 drops it; with cosine attention it would change the normalised keys."""
    block, layout = _block((8, 8), 4, True, "dot", "table")
    x = torch.randn(2, 64, 8, dtype=torch.float64)
    with torch.no_grad():
        before = block.attn(x, layout)
        block.attn.qkv.bias[8:16] += 3.0 * torch.randn(8, dtype=torch.float64)
        after = block.attn(x, layout)
    torch.testing.assert_close(before, after, rtol=1e-10, atol=1e-10)
    q, k = torch.randn(2, 5, 4, dtype=torch.float64), torch.randn(2, 5, 4, dtype=torch.float64)
    b = torch.randn(4, dtype=torch.float64)
    cos = F.normalize(q, dim=-1) @ F.normalize(k, dim=-1).transpose(1, 2)
    cos_b = F.normalize(q, dim=-1) @ F.normalize(k + b, dim=-1).transpose(1, 2)
    assert (cos.softmax(-1) - cos_b.softmax(-1)).abs().max() > 1e-3


def test_cosine_logits_are_bounded_by_the_clamped_scale(monkeypatch):
    cfg = tiny(attention="cosine", relative="cpb_log", fused=False)
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
        biases = [block.attn.relative_bias(lay.window, lay.bias_constants, lay.relative_index)
                  for stage, stage_layout in zip(model.layers, model.layout(cfg.grid))
                  for block, lay in zip(stage.blocks, stage_layout.blocks)]
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


def test_output_norms_only_when_asked_for():
    cfg = preset("swin_t", out_indices=(0, 1, 2, 3))
    with torch.device("meta"):
        model = SwinTransformer(cfg)
    extra = 2 * (96 + 192 + 384 + 768)  # one LayerNorm per stage output
    assert count_params(cfg) == sum(p.numel() for p in model.parameters()) == PARAMS["swin_t"] + extra
    assert [k for k in model.state_dict() if k.startswith("norm") and k[4].isdigit()] == [
        f"norm{i}.{w}" for i in range(4) for w in ("weight", "bias")]  # the official dense backbones' names


# ---------------------------------------------------------------------------------------------------------------
# Config errors at construction


@pytest.mark.parametrize(
    "data,needles",
    [
        (dict(embed_dim=10), ["num_heads[0]", "3 heads", "dim 10"]),
        (dict(img_size=30, patch_size=4), ["img_size", "patch_size 4", "28", "32"]),
        (dict(img_size=[32, 30], patch_size=4), ["img_size", "30", "patch_size 4"]),
        (dict(img_size=[32, 32, 32]), ["img_size", "expected int | list of int, int"]),
        (dict(shift="diagonal"), ["shift", "'diagonal'", "'cyclic'", "'none'", "'pad'"]),
        (dict(windows="sliding"), ["shift", "'cyclic'", "windows: sliding", "shift: none"]),
        (dict(windows="global"), ["windows", "'partition'", "'sliding'"]),
        (dict(norm="post"), ["norm", "'pre'", "'res_post'"]),
        (dict(absolute="sine"), ["absolute", "'none'", "'learned'"]),
        (dict(relative="rope"), ["relative", "'rope'", "'none'", "'table'", "'cpb_log'", "'cpb_linear'"]),
        (dict(position="table"), ["position", "unknown key", "absolute", "relative"]),  # no alias for the old switch
        (dict(windw_size=7), ["windw_size", "unknown key", "window_size"]),
        (dict(window_size="7"), ["window_size", "integer"]),
        (dict(depths=2), ["depths", "list"]),
        (dict(fused="yes"), ["fused", "true or false"]),
        (dict(pretrained_window_sizes=[8, 8, 8, 8]), ["pretrained_window_sizes", "'cpb_log'", "'table'"]),
        (dict(num_heads=[3, 6]), ["num_heads", "one entry per stage"]),
        (dict(drop_path_rate=1.5), ["drop_path_rate", "[0, 1)"]),
        (dict(out_indices=[0, 4]), ["out_indices", "[0, 4)"]),
        (dict(out_indices=[2, 1]), ["out_indices", "increasing"]),
    ],
    ids=lambda v: "-".join(map(str, v)) if isinstance(v, dict) else None,
)
def test_bad_config_fails_with_the_field_named(data, needles):
    with pytest.raises(ConfigError) as err:
        SwinConfig.from_dict(data)
    message = str(err.value)
    assert message.startswith(needles[0]), message
    for needle in needles:
        assert needle in message, message


def test_a_square_size_has_one_spelling():
    assert SwinConfig.from_dict(dict(img_size=[64, 64])) == SwinConfig(img_size=64)
    assert SwinConfig.from_dict(dict(img_size=[64, 96])).img_size == (64, 96)


# ---------------------------------------------------------------------------------------------------------------
# Sizes the window does not tile, odd maps, rectangular maps, window clipping


def _geometry(cfg, grid=None):
    return [(g.resolution, g.window, g.shift, g.padded) for g in cfg.stages(grid)]


@pytest.mark.parametrize("switches", [dict(), dict(norm="res_post", attention="cosine", relative="cpb_log")])
def test_non_divisible_sizes_build_and_train(switches):
    # 28/2 = 14 tokens, window 4: stage maps 14 (pad 16), 7 (odd: pad 8, merge pads to 8), 4
    cfg = SwinConfig.from_dict(dict(img_size=28, patch_size=2, window_size=4, embed_dim=8, depths=(2, 2, 2),
                                    num_heads=(1, 2, 4), num_classes=3, **switches))
    assert _geometry(cfg) == [((14, 14), 4, 2, (16, 16)), ((7, 7), 4, 2, (8, 8)), ((4, 4), 4, 0, (4, 4))]
    model = SwinTransformer(cfg)
    x = torch.randn(2, 3, 28, 28)
    stages = model.forward_stages(x)
    assert [tuple(s.shape) for s in stages] == [(2, 49, 16), (2, 16, 32), (2, 16, 32)]
    y = model(x)
    assert y.shape == (2, 3)
    y.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_rectangular_geometry_follows_the_official_rule():
    """The official rule per stage (fixture v1_rect): a stage whose smaller side is <= the window uses a SQUARE
    window of that side and no shift; otherwise each side has its own window count and padding."""
    cfg = SwinConfig(img_size=(32, 64), patch_size=2, window_size=4, embed_dim=8, depths=(2, 2, 2, 2),
                     num_heads=(1, 2, 2, 4))
    assert _geometry(cfg) == [((16, 32), 4, 2, (16, 32)), ((8, 16), 4, 2, (8, 16)), ((4, 8), 4, 0, (4, 8)),
                              ((2, 4), 2, 0, (2, 4))]
    model = SwinTransformer(cfg)
    assert model.layers[3].blocks[0].attn.relative_bias.table.shape == (9, 4)
    layouts = model.layout(cfg.grid)
    assert layouts[0].blocks[1].mask.shape == (4 * 8, 16, 16)
    assert layouts[2].blocks[1].mask is None and layouts[2].blocks[1].gather.numel() == 32  # 1 x 2 windows of 16
    odd = SwinConfig(img_size=(36, 20), patch_size=2, window_size=4, embed_dim=8, depths=(2, 2, 2),
                     num_heads=(1, 2, 4))
    assert _geometry(odd) == [((18, 10), 4, 2, (20, 12)), ((9, 5), 4, 2, (12, 8)), ((5, 3), 3, 0, (6, 3))]
    x = torch.randn(2, 3, 36, 20)
    assert [tuple(s.shape) for s in SwinTransformer(odd).forward_stages(x)] == [(2, 45, 16), (2, 15, 32),
                                                                                 (2, 15, 32)]


def test_pad_shift_offsets_the_window_grid():
    cfg = SwinConfig(img_size=32, patch_size=2, window_size=4, embed_dim=8, depths=(2, 2), num_heads=(1, 2),
                     shift="pad")
    g = cfg.stages()[0]
    assert g.grid(0) == (0, 0, 16, 16) and g.grid(2) == (2, 2, 20, 20)  # 4x4 windows, 5x5 when shifted
    layout = SwinTransformer(cfg).layout(cfg.grid)[0]
    assert layout.blocks[0].gather.numel() == 16 * 16 and layout.blocks[1].gather.numel() == 20 * 20


def test_window_clipped_to_small_maps_without_shift():
    cfg = SwinConfig(img_size=32, patch_size=2, window_size=7, embed_dim=8, depths=(2, 2, 2), num_heads=(1, 2, 4))
    assert _geometry(cfg) == [((16, 16), 7, 3, (21, 21)), ((8, 8), 7, 3, (14, 14)), ((4, 4), 4, 0, (4, 4))]
    # equality also clips (official `<=`): 8x8 map with window 8
    eq = SwinConfig(img_size=32, patch_size=4, window_size=8, embed_dim=8, depths=(2,), num_heads=(1,))
    assert (eq.stages()[0].window, eq.stages()[0].shift) == (8, 0)
    model = SwinTransformer(cfg)
    layouts = model.layout(cfg.grid)
    for block, layout in zip(model.layers[-1].blocks, layouts[-1].blocks):
        assert block.window == 4 and block.shift == 0 and layout.window == 4 and layout.mask is None
        assert block.attn.relative_bias.table.shape == (7 * 7, 4)
    assert model.layers[0].blocks[1].shift == 3 and layouts[0].blocks[1].mask is not None


# ---------------------------------------------------------------------------------------------------------------
# Any input size: the per-size tensors, and one model against models built for each size


SIZES_CFG = dict(img_size=32, patch_size=2, window_size=4, embed_dim=8, depths=(2, 2, 2), num_heads=(1, 2, 4),
                 num_classes=3, drop_path_rate=0.0, out_indices=(0, 1, 2))


@pytest.mark.parametrize("switches", [dict(absolute="learned", relative="table"),
                                      dict(norm="res_post", attention="cosine", relative="cpb_log", shift="pad"),
                                      dict(windows="sliding", shift="none", absolute="learned", relative="cpb_linear")],
                         ids=["v1-ape", "v2-pad", "sliding"])
def test_one_model_runs_at_other_sizes_like_a_model_built_for_them(switches):
    """A model built at 32 px (16x16 tokens, stages 16/8/4, window 4) run at 64 px, 48 px (padded) and 32 x 64
    (rectangular) equals a model built for that size carrying the same weights (``load_pretrained``: the same
    bicubic resize of the absolute embedding). The comparison is exact because at these sizes every stage keeps
    window 4 (the smallest side of the last stage stays >= 4), so every relative bias keeps its shape and the
    built-for-size model has the same parameters; only the geometry (shift, padding, window counts) differs."""
    model = perturb_(SwinTransformer(SwinConfig.from_dict({**SIZES_CFG, **switches})).double()).eval()
    for size in (64, 48, (32, 64)):
        built = SwinTransformer(model.cfg.replace(img_size=size)).double().eval()
        load_pretrained(built, model.state_dict())
        assert [g.window for g in built.cfg.stages()] == [4, 4, 4]
        H, W = built.cfg.image_size
        x = torch.randn(2, 3, H, W, dtype=torch.float64)
        with torch.no_grad():
            torch.testing.assert_close(model(x), built(x), rtol=1e-12, atol=1e-12, msg=str(size))
            for a, b in zip(model.forward_intermediates(x, (0, 1, 2)), built.forward_intermediates(x, (0, 1, 2))):
                torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    assert set(model._layouts) == {(16, 16), (32, 32), (24, 24), (16, 32)}  # one cached layout per size met


def test_a_smaller_size_clips_windows_and_keeps_each_offsets_bias():
    """At 16 px the last stage is 2x2 and takes window 2: the table gives its central 3x3 offsets (the same
    offsets keep the same bias); CPB keeps the built normalisation (as ``pretrained_window_sizes`` does)."""
    for relative, pretrained in (("table", None), ("cpb_log", (4, 4, 4))):
        model = perturb_(SwinTransformer(SwinConfig.from_dict({**SIZES_CFG, "relative": relative})).double()).eval()
        built = SwinTransformer(model.cfg.replace(img_size=16, pretrained_window_sizes=pretrained)).double().eval()
        state = model.state_dict()
        if relative == "table":
            for key in [k for k in state if k.startswith("layers.2.") and k.endswith("relative_bias.table")]:
                state[key] = state[key].view(7, 7, 4)[2:5, 2:5].reshape(9, 4)
        built.load_state_dict(state)
        x = torch.randn(2, 3, 16, 16, dtype=torch.float64)
        with torch.no_grad():
            torch.testing.assert_close(model(x), built(x), rtol=1e-12, atol=1e-12, msg=relative)


def test_a_window_the_table_does_not_cover_is_a_clear_error():
    model = SwinTransformer(SwinConfig(img_size=16, patch_size=2, window_size=4, embed_dim=8, depths=(2, 2, 2),
                                       num_heads=(1, 2, 4)))  # last stage 2x2: a window-2 table
    with pytest.raises(ValueError, match="window of 4 .*built for window 2.*transfer"):
        model(torch.randn(1, 3, 32, 32))
    with pytest.raises(ValueError, match="patch size 2 must divide"):
        model(torch.randn(1, 3, 32, 33))


def test_layouts_are_cached_per_size_moved_with_the_model_and_never_saved():
    model = SwinTransformer(tiny(relative="cpb_log"))
    first = model.layout((12, 12))
    assert model.layout((12, 12)) is first  # built once: a dict lookup afterwards
    assert not any("gather" in k or "mask" in k or "index" in k or "coords" in k for k in model.state_dict())
    assert first[0].blocks[1].mask.dtype == torch.float32
    model.double()
    moved = model.layout((12, 12))
    assert moved[0].blocks[1].mask.dtype == torch.float64 and moved[0].blocks[0].bias_constants.dtype == torch.float64
    assert moved[0].blocks[0].gather.dtype == torch.long
    with torch.inference_mode():  # a size first met in inference mode still trains afterwards
        model(torch.randn(1, 3, 32, 32, dtype=torch.float64))
    model.train()(torch.randn(1, 3, 32, 32, dtype=torch.float64)).sum().backward()


# ---------------------------------------------------------------------------------------------------------------
# Multi-scale features for dense heads


def test_forward_intermediates_shapes_swin_t_224():
    model = SwinTransformer(preset("swin_t", out_indices=(0, 1, 2, 3))).eval()
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        maps = model.forward_intermediates(x)
        stages = model.forward_stages(x)
    assert [tuple(m.shape) for m in maps] == [(1, 96, 56, 56), (1, 192, 28, 28), (1, 384, 14, 14), (1, 768, 7, 7)]
    assert all(m.is_contiguous() for m in maps)
    # taken BEFORE the patch merging, through the stage's own norm: stage 3 (no merging) is norm3 of its output
    torch.testing.assert_close(maps[3], model.norm3(stages[3]).view(1, 7, 7, 768).permute(0, 3, 1, 2))
    torch.testing.assert_close(maps[2].flatten(2).transpose(1, 2).mean(), model.norm2(
        _stage_features(model, x, 2)).mean())


def _stage_features(model, x, index):
    """The blocks' output of stage ``index`` (before its merging), by running the stages by hand."""
    tokens, grid = model._embed(x)
    for i, (stage, layout) in enumerate(zip(model.layers, model.layout(grid))):
        features, tokens = stage(tokens, layout)
        if i == index:
            return features


def test_forward_intermediates_at_a_rectangular_size_and_errors():
    model = SwinTransformer(SwinConfig.from_dict({**SIZES_CFG, "out_indices": (0, 2)})).eval()
    x = torch.randn(2, 3, 48, 80)  # 24 x 40 tokens: 24x40, 12x20, 6x10
    with torch.no_grad():
        maps = model.forward_intermediates(x, indices=(2, 0))
    assert [tuple(m.shape) for m in maps] == [(2, 32, 6, 10), (2, 8, 24, 40)]  # in the order asked for
    with pytest.raises(ValueError, match="stage 1 has no output norm.*out_indices"):
        model.forward_intermediates(x, indices=(0, 1))
    with pytest.raises(ValueError, match="no output norm"):
        SwinTransformer(tiny()).forward_intermediates(torch.randn(1, 3, 24, 24))


# ---------------------------------------------------------------------------------------------------------------
# Transfer to the same size is the identity


@pytest.mark.parametrize("switches,methods", [
    (dict(relative="table"), ["bicubic"]),
    (dict(absolute="learned", relative="table"), ["bicubic"]),
    (dict(absolute="learned", relative="none"), ["bicubic"]),
    (dict(norm="res_post", attention="cosine", relative="cpb_log"), ["extrapolate", "renormalize"]),
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


def test_transfer_method_must_fit_the_relative_kind():
    table = SwinConfig(img_size=32, patch_size=2, window_size=4, embed_dim=8, depths=(2, 2), num_heads=(1, 2))
    with pytest.raises(ConfigError, match="'extrapolate'.*'table'"):
        transfer_config(table, 64, 8, "extrapolate")
    cpb = table.replace(relative="cpb_log")
    with pytest.raises(ConfigError, match="'bicubic'.*'cpb_log'"):
        transfer_config(cpb, 64, 8, "bicubic")
    with pytest.raises(ConfigError, match="method.*'nearest'"):
        transfer_config(cpb, 64, 8, "nearest")
    assert transfer_config(cpb, 64, 8, "extrapolate").pretrained_window_sizes == (4, 4)
    assert transfer_config(cpb, 64, 8, "renormalize").pretrained_window_sizes is None


def test_unit_normalize_matches_f_normalize_and_its_gradient():
    from swin_lit.models.kernels import unit_normalize

    x = torch.randn(4, 5, 2, 3, 8, dtype=torch.float64, requires_grad=True)
    assert torch.allclose(unit_normalize(x), torch.nn.functional.normalize(x, dim=-1), atol=1e-15)
    assert torch.autograd.gradcheck(unit_normalize, (x,))
