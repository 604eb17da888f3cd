"""Decode heads: config strictness, every level used, and the analytic parameter / FLOP counts against the built
modules and torch's flop counter at non-recipe widths and with the auxiliary head. What every head kind keeps
(output shapes on odd pyramids, per-image outputs, counts at the recipe widths) is the contract in
``test_registry_kinds.py``."""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from swin_lit.models.head_config import HeadConfig
from swin_lit.models.head_flops import (
    aux_head_flops,
    aux_head_params,
    head_flops,
    head_flops_breakdown,
    head_params,
    pyramid_sizes,
)
from swin_lit.models.heads import build_aux_head, build_head
from swin_lit.typed import ConfigError, from_dict

SWIN_T = (96, 192, 384, 768)
SMALL = (8, 16, 32, 64)


def _features(channels, sizes, batch=2):
    return [torch.randn(batch, c, h, w) for c, (h, w) in zip(channels, sizes)]


def _numel(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# -- config -----------------------------------------------------------------------------------------

def test_config_resolves_the_recipe_per_head():
    upernet = HeadConfig()
    assert (upernet.channels, upernet.pool_scales, upernet.scale_channels, upernet.dropout) == (512, (1, 2, 3, 6),
                                                                                                None, 0.1)
    fpn = HeadConfig(kind="fpn")
    assert (fpn.channels, fpn.scale_channels, fpn.pool_scales) == (256, 128, None)
    aux = HeadConfig(aux_weight=0.4)
    assert aux.aux and aux.aux_channels == 256 and not upernet.aux
    assert from_dict(HeadConfig, aux.to_dict()) == aux  # the resolved config round-trips


@pytest.mark.parametrize("data, match", [
    ({"kind": "fpn", "pool_scales": [1, 2]}, r"^head\.pool_scales: only applies to head 'upernet'"),
    ({"kind": "upernet", "scale_channels": 64}, r"^head\.scale_channels: only applies to head 'fpn'"),
    ({"kind": "linear", "channels": 64}, r"^head\.channels: only applies to head 'upernet' and 'fpn'.*'linear'$"),
    ({"kind": "linear", "pool_scales": [1]}, r"^head\.pool_scales: only applies to head 'upernet'"),
    ({"aux_channels": 128}, r"^head\.aux_channels: needs the auxiliary head"),
    ({"kind": "psp"}, r"^head\.kind: .*'upernet', 'fpn'"),
    ({"channels": 0}, r"^head\.channels: must be >= 1"),
    ({"pool_scales": [1, 1]}, r"^head\.pool_scales: has repeated bins"),
    ({"pool_scales": []}, r"^head\.pool_scales: must be a non-empty list"),
    ({"dropout": 1.0}, r"^head\.dropout: must be in \[0, 1\)"),
    ({"aux_weight": -0.1}, r"^head\.aux_weight: must be >= 0"),
    ({"width": 64}, r"^head\.width: unknown key; allowed keys are kind, channels"),
])
def test_config_errors_name_the_key(data, match):
    with pytest.raises(ConfigError, match=match):
        from_dict(HeadConfig, data, prefix="head")


# -- modules --------------------------------------------------------------------------------------

HEADS = [HeadConfig(kind="upernet", channels=16), HeadConfig(kind="fpn", channels=16, scale_channels=12),
         HeadConfig(kind="linear")]


def test_pyramid_sizes_pad_to_the_patch_then_ceil_halve():
    assert pyramid_sizes(45, 70, 4, 4) == [(12, 18), (6, 9), (3, 5), (2, 3)]
    assert pyramid_sizes(512, 512, 4, 4) == [(128, 128), (64, 64), (32, 32), (16, 16)]


@pytest.mark.parametrize("cfg", HEADS, ids=lambda c: c.kind)
def test_every_level_reaches_the_logits(cfg):
    head = build_head(cfg, SMALL, num_classes=3).eval()
    feats = [f.requires_grad_() for f in _features(SMALL, pyramid_sizes(45, 70, 4, 4))]
    head(feats).square().sum().backward()
    assert all(f.grad is not None and f.grad.abs().sum() > 0 for f in feats)


def test_head_works_with_fewer_levels():
    for cfg in HEADS:
        out = build_head(cfg, (8, 16, 32), 4)(_features((8, 16, 32), [(10, 14), (5, 7), (3, 4)]))
        assert out.shape == (2, 4, 10, 14)


# -- counts ---------------------------------------------------------------------------------------

def test_recipe_widths_match_the_built_modules():
    aux = HeadConfig(aux_weight=0.4)
    assert head_params(aux, SWIN_T, 150) == _numel(build_head(aux, SWIN_T, 150))
    assert aux_head_params(aux, SWIN_T, 150) == _numel(build_aux_head(aux, SWIN_T, 150))
    assert build_aux_head(HeadConfig(), SWIN_T, 150) is None and aux_head_params(HeadConfig(), SWIN_T, 150) == 0
    assert build_aux_head(aux, SWIN_T, 150).conv[0].in_channels == 384  # stage 3, as in the recipe


def _counted_macs(module, inputs) -> int:
    with FlopCounterMode(display=False) as counter:
        module(inputs)
    return counter.get_total_flops() // 2  # torch counts a multiply-add as 2 FLOPs


@pytest.mark.parametrize("cfg", [
    HeadConfig(kind="upernet", channels=16, aux_weight=0.4, aux_channels=8),
    HeadConfig(kind="upernet", channels=12, pool_scales=(1, 3, 8), aux_weight=1.0),  # 8 bins > the 2x3 map
    HeadConfig(kind="fpn", channels=16, scale_channels=12, aux_weight=0.4, aux_channels=8),
    HeadConfig(kind="linear", aux_weight=0.4, aux_channels=8),
], ids=["upernet", "upernet-bins", "fpn", "linear"])
@pytest.mark.parametrize("image", [(45, 70), (64, 64)])
def test_analytic_counts_equal_the_modules_and_the_flop_counter(cfg, image):
    sizes = pyramid_sizes(*image, 4, 4)
    head, aux = build_head(cfg, SMALL, 5).eval(), build_aux_head(cfg, SMALL, 5).eval()
    assert head_params(cfg, SMALL, 5) == _numel(head)
    assert aux_head_params(cfg, SMALL, 5) == _numel(aux)
    feats = _features(SMALL, sizes, batch=1)
    assert head_flops(cfg, SMALL, 5, sizes) == _counted_macs(head, feats)
    assert aux_head_flops(cfg, SMALL, 5, sizes) == _counted_macs(aux, feats[2])


def test_flops_breakdown_by_hand():
    # fpn, two levels of 4x4 and 2x2, 3 and 5 input channels, width 2, towers 1, 2 classes
    cfg = HeadConfig(kind="fpn", channels=2, scale_channels=1, dropout=0.0)
    parts = head_flops_breakdown(cfg, (3, 5), 2, [(4, 4), (2, 2)])
    assert parts == {
        "laterals": 16 * 3 * 2 + 4 * 5 * 2,
        "fpn_convs": 16 * 2 * 2 * 9 + 4 * 2 * 2 * 9,
        "towers": 16 * 2 * 1 * 9 + 4 * 2 * 1 * 9,  # level 1: one conv at 2x2, then upsampled to 4x4
        "classifier": 16 * 1 * 2,
    }


def test_linear_head_is_a_per_pixel_linear_map_of_the_upsampled_levels():
    cfg = HeadConfig(kind="linear", dropout=0.0)
    assert head_flops_breakdown(cfg, (3, 5), 2, [(4, 4), (2, 2)]) == {"classifier": 16 * (3 + 5) * 2}
    head = build_head(cfg, (3, 5), 2).eval()
    feats = _features((3, 5), [(4, 4), (2, 2)], batch=1)
    x = torch.cat([feats[0], torch.nn.functional.interpolate(feats[1], size=(4, 4), mode="bilinear")], dim=1)
    bn, conv = head.norm, head.classifier[1]
    x = (x - bn.running_mean[:, None, None]) / (bn.running_var[:, None, None] + bn.eps).sqrt()
    expected = torch.einsum("kc,bchw->bkhw", conv.weight[:, :, 0, 0], x) + conv.bias[:, None, None]
    torch.testing.assert_close(head(feats), expected)
    # no spatial mixing: changing one token of the first level changes the logits at that pixel only
    moved = [feats[0].clone(), feats[1]]
    moved[0][0, :, 1, 2] += 5.0
    changed = (head(moved) - head(feats)).abs().sum(1)[0] > 0
    assert changed.nonzero().tolist() == [[1, 2]]
