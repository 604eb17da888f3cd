"""Analytic FLOPs (MACs) and parameter counts: paper figures, the W-MSA formula, FlopCounterMode, built models."""

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from swin_lit.models import SwinConfig, SwinTransformer, preset
from swin_lit.models.flops import (
    attention_layer_flops,
    batch_flops,
    count_flops,
    count_params,
    flops_breakdown,
)

# Swin V1 paper Table 1 (224, W7) and the official MODELHUB for V2 (256, W8 / W16), in GFLOPs (MACs).
PAPER_GFLOPS = {
    "swin_t": 4.5, "swin_s": 8.7, "swin_b": 15.4,
    "swinv2_t": 5.9, "swinv2_s": 11.5, "swinv2_b": 20.3,
    "swinv2_t_w16": 6.6, "swinv2_s_w16": 12.6, "swinv2_b_w16": 21.8,
}


@pytest.mark.parametrize("name", sorted(PAPER_GFLOPS))
def test_paper_flops(name):
    ours = count_flops(preset(name)) / 1e9
    assert abs(ours - PAPER_GFLOPS[name]) / PAPER_GFLOPS[name] < 0.02, f"{name}: {ours:.3f} G"


def test_swin_t_exact_and_cpb_is_small():
    # matmul-type MACs only; the official flops() adds the LayerNorms (~0.3%) and reports 4.49G too
    assert count_flops(preset("swin_t")) == 4_490_566_656
    bd = flops_breakdown(preset("swinv2_s_w16"))
    # the official count leaves the CPB meta-network out: without it W16 SwinV2-S is 12.64G (README: 12.6G)
    assert abs((bd.total - bd.by_part()["relative_bias"]) / 1e9 - 12.6) < 0.05


def test_attention_layer_matches_paper_formula():
    cfg = preset("swin_t")
    bd = flops_breakdown(cfg)
    for g, stage in zip(cfg.stages(), bd.stages):
        assert g.padded == g.resolution
        H, W = g.resolution
        for block in stage.blocks:
            assert block.attention == attention_layer_flops(H, W, g.dim, g.window)
            # and the rest of the block is the MLP: 2 * hw * C * 4C
            assert block.mlp == 8 * H * W * g.dim**2
    # Swin-T stage 1 by hand: 4*56*56*96^2 + 2*49*56*56*96
    assert bd.stages[0].blocks[0].attention == 4 * 3136 * 96 * 96 + 2 * 49 * 3136 * 96


def test_padded_stage_counts_padded_windows():
    cfg = SwinConfig(img_size=24, patch_size=2, window_size=5, embed_dim=8, depths=(2, 2), num_heads=(2, 4))
    g = cfg.stages()
    assert (g[0].resolution, g[0].padded, g[1].resolution, g[1].padded) == ((12, 12), (15, 15), (6, 6), (10, 10))
    bd = flops_breakdown(cfg)
    for gs, stage in zip(g, bd.stages):
        assert stage.blocks[0].attention == attention_layer_flops(*gs.padded, gs.dim, gs.window)
        assert stage.blocks[0].mlp == 8 * gs.resolution[0] * gs.resolution[1] * gs.dim**2


def test_pad_shift_counts_its_extra_windows_and_sliding_every_token():
    """Swin-T at 224 with ``shift: pad``: the shifted blocks run (h/M + 1) x (w/M + 1) windows (9x9, 5x5, 3x3 for
    stages 1-3; stage 4 is 7x7 with one window and no shift); sliding windows cost what partitioned ones do in
    MACs (M^2 keys per query, qkv once per token), the paper's point being memory access, not arithmetic."""
    cyclic, pad = preset("swin_t"), preset("swin_t", shift="pad")
    bc, bp = flops_breakdown(cyclic), flops_breakdown(pad)
    for i, windows in enumerate((9, 5, 3)):
        g = pad.stages()[i]
        assert bp.stages[i].blocks[0] == bc.stages[i].blocks[0]  # regular blocks unchanged
        assert bp.stages[i].blocks[1].attention == attention_layer_flops(7 * windows, 7 * windows, g.dim, 7)
    assert bp.stages[3].blocks[1] == bc.stages[3].blocks[1]
    assert count_flops(pad) > count_flops(cyclic)
    sliding = preset("swin_t", windows="sliding", shift="none")
    assert count_flops(sliding) == count_flops(preset("swin_t", shift="none"))
    rect = flops_breakdown(preset("swin_t", img_size=(224, 336)))  # 56 x 84 tokens: 8 x 12 windows
    assert rect.stages[0].blocks[0].attention == attention_layer_flops(56, 84, 96, 7)


def test_cpb_counted_once_per_block_per_forward():
    cfg = preset("swinv2_t")
    bd = flops_breakdown(cfg)
    cpb = bd.by_part()["relative_bias"]
    # 12 blocks; stages 1-3 use window 8, stage 4 (8x8 map) too: 225 coords x (2*512 + 512*heads)
    expected = sum(d * 225 * (1024 + 512 * h) for d, h in zip(cfg.depths, cfg.num_heads))
    assert cpb == expected
    assert batch_flops(cfg, 4) == 4 * (bd.total - cpb) + cpb
    assert flops_breakdown(preset("swin_t")).by_part()["relative_bias"] == 0  # a table lookup costs no MACs


CROSS_CHECK = [
    dict(relative="table"),
    dict(relative="cpb_log", attention="cosine", norm="res_post"),
    dict(relative="none", shift="none"),
    dict(absolute="learned", relative="table", fused=False),
    dict(relative="cpb_linear", attention="cosine", fused=False),
    dict(relative="table", shift="pad"),
    dict(relative="cpb_log", windows="sliding", shift="none"),
    dict(relative="table", img_size=(24, 36)),
    dict(relative="table", img_size=(16, 20)),  # stage 1 is 4 x 5: a small map, clipped to window 4, no shift
    dict(relative="table", img_size=(16, 20), small_maps="pad", pad_keys="attend"),  # padded to 5 x 5, shifted
]


@pytest.mark.parametrize("switches", CROSS_CHECK, ids=lambda s: "-".join(map(str, s.values())))
def test_matches_flop_counter_mode(switches):
    """FlopCounterMode counts 2 FLOPs per MAC for conv / (add)mm / bmm. Our count excludes exactly the ops it
    does not count (norms, softmax, GELU, elementwise), so on the explicit path the two agree exactly,
    padded windows (bottom/right and ``shift: pad``), sliding neighbourhoods, rectangular maps and the CPB MLP
    included."""
    cfg = SwinConfig.from_dict(dict(dict(img_size=24, patch_size=2, window_size=5, embed_dim=16, depths=(2, 2),
                                         num_heads=(2, 4), num_classes=10), **switches))
    model = SwinTransformer(cfg.replace(fused=False)).eval()
    x = torch.randn(3, 3, *cfg.image_size)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x)
    assert counter.get_total_flops() == 2 * batch_flops(cfg, 3)


def test_flop_counter_mode_misses_the_cpu_fused_kernel():
    """Why a FlopCounterMode figure can be low: the fused path's CPU flash kernel
    (aten._scaled_dot_product_flash_attention_for_cpu, used in eval and, via the custom autograd function in
    kernels.py, in training) has no FLOP formula in torch's counter, so the two attention matmuls (q@k^T,
    attn@v) vanish from its total; the math fallback (bmm) is counted. Our analytic count is the same either way."""
    cfg = SwinConfig(img_size=24, patch_size=2, window_size=5, embed_dim=16, depths=(2, 2), num_heads=(2, 4),
                     num_classes=10)
    model = SwinTransformer(cfg).eval()
    x = torch.randn(3, 3, 24, 24)
    parts = flops_breakdown(cfg).by_part()
    full = 2 * batch_flops(cfg, 3)
    missing = 2 * 3 * (parts["attn_qk"] + parts["attn_v"])
    for grad in (False, True):
        with FlopCounterMode(display=False) as counter, torch.set_grad_enabled(grad):
            model(x)
        assert counter.get_total_flops() in (full, full - missing), grad


SWITCHES = [
    dict(),
    dict(norm="res_post", attention="cosine", relative="cpb_log"),
    dict(absolute="learned", relative="table", qkv_bias=False, merge="reduce_first"),
    dict(absolute="learned", relative="none", attention="cosine", qkv_bias=False, mlp_ratio=2.5),
    dict(relative="none", patch_norm=False, norm="res_post"),
    dict(relative="cpb_linear", merge="norm_first", norm="res_post", depths=(1, 3, 1), num_heads=(1, 2, 4)),
    dict(absolute="learned", img_size=(28, 44), windows="sliding", shift="none", out_indices=(0, 2)),
    dict(absolute="learned", relative="cpb_log", shift="pad", out_indices=(1,)),
    dict(img_size=(20, 28), out_indices=(0, 1, 2)),  # stage 2 is 3 x 4: clipped to window 3
    dict(img_size=(20, 28), small_maps="pad", pad_keys="attend", out_indices=(0, 1, 2)),  # window 4 there
]


@pytest.mark.parametrize("switches", SWITCHES)
def test_count_params_equals_built_model(switches):
    base = dict(img_size=28, patch_size=2, window_size=4, embed_dim=8, depths=(2, 2, 2), num_heads=(1, 2, 4),
                num_classes=7)
    cfg = SwinConfig.from_dict({**base, **switches})
    model = SwinTransformer(cfg)
    assert count_params(cfg) == sum(p.numel() for p in model.parameters())
