"""Parity with tensors produced by the official implementation (../shared/fixtures)."""

import pytest
import torch

from swin_lit.models import official
from swin_lit.models.transfer import transfer

TOL = 1e-8


def _assert_close(actual, expected, what):
    err = (actual - expected).abs().max().item()
    assert err < TOL, f"{what}: max abs error {err:.3g}"


FIXTURES = ["v1_tiny", "v1_ape", "v1_window7", "v1_rect", "v2_tiny", "v2_ape", "v2_pretrained_window"]


@pytest.mark.parametrize("name", FIXTURES)
@pytest.mark.parametrize("fused", [True, False])
def test_logits_and_stages_match_official(official_fixture, name, fused):
    fx = official_fixture(name)
    model = official.build_model(fx["kind"], **fx["config"])
    model = model.double().eval()
    for module in model.modules():
        if hasattr(module, "fused"):
            module.fused = fused
    official.load_state_dict(model, fx["state_dict"])
    with torch.no_grad():
        stages = model.forward_stages(fx["input"])
        logits = model(fx["input"])
    assert len(stages) == len(fx["stages"])
    for i, (ours, theirs) in enumerate(zip(stages, fx["stages"])):
        _assert_close(ours, theirs, f"{name} stage {i}")
    _assert_close(logits, fx["logits"], f"{name} logits")


@pytest.mark.parametrize("name,switches", [("v1_tiny", ("none", "table")), ("v1_ape", ("learned", "table")),
                                           ("v1_rect", ("none", "table")), ("v2_tiny", ("none", "cpb_log")),
                                           ("v2_ape", ("learned", "cpb_log"))])
def test_official_arguments_map_onto_the_switches(official_fixture, name, switches):
    """``ape`` is ``absolute: learned`` for V1 and V2; ``img_size`` [H, W] stays rectangular."""
    fx = official_fixture(name)
    cfg = official.official_config(fx["kind"], **fx["config"])
    assert (cfg.absolute, cfg.relative) == switches
    assert cfg.image_size == tuple(fx["input"].shape[-2:])


def test_official_checkpoint_under_model_key(official_fixture):
    fx = official_fixture("v1_tiny")
    model = official.build_model("v1", **fx["config"]).double().eval()
    official.load_state_dict(model, {"model": fx["state_dict"]})
    with torch.no_grad():
        _assert_close(model(fx["input"]), fx["logits"], "wrapped checkpoint")


def test_timm_layout_loads(official_fixture):
    """timm keeps merging at the start of the next stage and the classifier under head.fc."""
    fx = official_fixture("v2_tiny")
    timm_sd = {}
    for key, value in fx["state_dict"].items():
        if ".downsample." in key:
            i = int(key.split(".")[1])
            key = key.replace(f"layers.{i}.downsample", f"layers.{i + 1}.downsample")
        elif key.startswith("head."):
            key = "head.fc." + key[len("head."):]
        timm_sd[key] = value
    model = official.build_model("v2", **fx["config"]).double().eval()
    official.load_state_dict(model, timm_sd)
    with torch.no_grad():
        _assert_close(model(fx["input"]), fx["logits"], "timm layout")


def test_unknown_and_missing_keys_are_listed(official_fixture):
    fx = official_fixture("v1_tiny")
    model = official.build_model("v1", **fx["config"]).double()
    sd = dict(fx["state_dict"])
    sd["layers.0.blocks.0.attn.surprise"] = torch.zeros(1)
    del sd["norm.weight"]
    with pytest.raises(KeyError) as err:
        official.load_state_dict(model, sd)
    assert "layers.0.blocks.0.attn.surprise" in str(err.value) and "norm.weight" in str(err.value)


def test_v1_transfer_equals_official_bicubic_recipe(official_fixture):
    fx = official_fixture("v1_transfer_w4_to_w8")
    source = official.build_model("v1", **fx["config"]["source"]).double().eval()
    official.load_state_dict(source, fx["state_dict"])
    # the public recipe
    target = official.build_model("v1", **fx["config"]["target"]).double().eval()
    official.load_pretrained(target, fx["state_dict"])
    # the harness' transfer of a trained model
    moved = transfer(source, img_size=fx["config"]["target"]["img_size"],
                     window_size=fx["config"]["target"]["window_size"], method="bicubic").eval()
    for key, table in fx["resized_tables"].items():
        ours = key.replace("attn.relative_position_bias_table", "attn.relative_bias.table")
        _assert_close(target.state_dict()[ours], table, key)
        _assert_close(moved.state_dict()[ours], table, key)
    with torch.no_grad():
        _assert_close(target(fx["input"]), fx["logits"], "load_pretrained logits")
        _assert_close(moved(fx["input"]), fx["logits"], "transfer logits")


@pytest.mark.parametrize("method,key", [("extrapolate", "logits_extrapolate"), ("renormalize", "logits_renormalize")])
def test_v2_transfer_matches_official(official_fixture, method, key):
    fx = official_fixture("v2_transfer_w4_to_w8")
    tgt = fx["config"]["target"]
    source = official.build_model("v2", **fx["config"]["source"]).double().eval()
    official.load_state_dict(source, fx["state_dict"])
    moved = transfer(source, img_size=tgt["img_size"], window_size=tgt["window_size"], method=method).eval()
    with torch.no_grad():
        _assert_close(moved(fx["input"]), fx[key], f"{method} logits")
    # the official recipe: a target built with (or without) pretrained windows, weights loaded as they are
    kwargs = dict(tgt) if method == "extrapolate" else {**tgt, "pretrained_window_sizes": [0, 0, 0, 0]}
    target = official.build_model("v2", **kwargs).double().eval()
    official.load_pretrained(target, fx["state_dict"])
    with torch.no_grad():
        _assert_close(target(fx["input"]), fx[key], f"load_pretrained {method}")
