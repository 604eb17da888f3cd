"""The official dense (segmentation) backbone: its geometry as two switches (``pad_keys``, ``small_maps``),
``official.build_backbone`` and mmseg / mmdet checkpoints, parity with ../shared/fixtures_dense, and the geometry
module that validates a config without torch."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from swin_lit.models import ConfigError, SwinConfig, official
from swin_lit.models.flops import count_params, flops_breakdown
from swin_lit.models.geometry import padded_grid, stage_geometries
from swin_lit.models.head_config import HeadConfig
from swin_lit.models.position import RELATIVE_BIASES
from swin_lit.models.segmenter import SwinSegmenter, backbone_config
from swin_lit.models.swin import SwinTransformer
from swin_lit.models.windows import REGION_MASK, attention_mask, sliding_neighbours

ROOT = Path(__file__).resolve().parents[1]
TOL = 1e-8


def dense_fixture_path() -> Path | None:
    """$SWIN_LIT_DENSE_FIXTURES, else ../shared/fixtures_dense beside the repo."""
    env = os.environ.get("SWIN_LIT_DENSE_FIXTURES")
    for folder in ([Path(env)] if env else []) + [ROOT.parent / "shared" / "fixtures_dense"]:
        if (folder / "v1_seg_backbone.pt").is_file():
            return folder / "v1_seg_backbone.pt"
    return None


@pytest.fixture(scope="module")
def seg_fixture() -> dict:
    path = dense_fixture_path()
    if path is None:
        pytest.skip("dense fixture not found: set SWIN_LIT_DENSE_FIXTURES or place ../shared/fixtures_dense "
                    "(v1_seg_backbone.pt) beside the repo")
    return torch.load(path, weights_only=True)


def _loaded_backbone(fx: dict, fused: bool = True) -> SwinTransformer:
    model = official.build_backbone("v1", **fx["config"]).double().eval()
    for module in model.modules():
        if hasattr(module, "fused"):
            module.fused = fused
    with pytest.warns(UserWarning, match="2 key\\(s\\) outside the backbone skipped: decode_head.conv_seg.bias, "
                                         "decode_head.conv_seg.weight"):
        official.load_state_dict(model, fx["state_dict"])
    return model


# -- parity with the official segmentation backbone ----------------------------------------------------------------
@pytest.mark.parametrize("fused", [True, False])
def test_official_seg_backbone_parity(seg_fixture, fused):
    """Every stage map of the fixture needs padding (16x24, 8x12, 4x6, 2x3 against window 7), two are smaller
    than the window: the four outputs equal the official ones in float64."""
    fx = seg_fixture
    model = _loaded_backbone(fx, fused)
    assert (model.cfg.small_maps, model.cfg.pad_keys) == ("pad", "attend")
    with torch.no_grad():
        outs = model.forward_intermediates(fx["input"], (0, 1, 2, 3))
    assert len(outs) == len(fx["outputs"]) == 4
    for i, (ours, theirs) in enumerate(zip(outs, fx["outputs"])):
        assert ours.shape == theirs.shape, i
        err = (ours - theirs).abs().max().item()
        assert err < TOL, f"stage {i}: max abs error {err:.3g}"


def test_either_classification_behaviour_misses_the_official_outputs(seg_fixture):
    """Masking the padded keys moves every stage away from the official outputs; clipping the small maps (same
    weights: built at 224 px, where no stage is clipped, the tables are cut to the clipped window at this input)
    moves the two stages smaller than the window and keeps the others."""
    fx = seg_fixture
    dense = _loaded_backbone(fx)
    errors = {}
    for name, switch in (("mask", dict(pad_keys="mask")), ("clip", dict(small_maps="clip", img_size=224))):
        other = SwinTransformer(dense.cfg.replace(**switch)).double().eval()
        other.norm = torch.nn.Identity()
        other.load_state_dict(dense.state_dict())
        with torch.no_grad():
            outs = other.forward_intermediates(fx["input"], (0, 1, 2, 3))
        errors[name] = [(o - t).abs().max().item() for o, t in zip(outs, fx["outputs"])]
    assert min(errors["mask"]) > 1e-2, errors
    assert max(errors["clip"][:2]) < TOL and min(errors["clip"][2:]) > 1e-2, errors


def test_mmseg_checkpoint_layouts(seg_fixture):
    """Bare or under ``state_dict`` (with mmcv's ``meta``); the backbone keys without their prefix, the head's
    listed; a model with a final norm (which mmseg checkpoints lack) is told what is missing."""
    fx = seg_fixture
    model = official.build_backbone("v1", **fx["config"]).double()
    with pytest.warns(UserWarning, match="decode_head.conv_seg.weight"):
        official.load_state_dict(model, {"meta": {"iter": 1}, "state_dict": fx["state_dict"]})
    sd, skipped = official.backbone_state(fx["state_dict"])
    assert skipped == ["decode_head.conv_seg.bias", "decode_head.conv_seg.weight"]
    assert "norm0.weight" in sd and "norm.weight" not in sd and not any(k.startswith("backbone.") for k in sd)
    with_final_norm = SwinTransformer(model.cfg).double()
    with pytest.warns(UserWarning), pytest.raises(KeyError, match="missing keys: norm.bias, norm.weight"):
        official.load_state_dict(with_final_norm, fx["state_dict"])


def test_mmseg_absolute_embedding_is_nchw():
    """The dense backbones store ``absolute_pos_embed`` as (1, C, Wh, Ww); it loads into the (1, Wh*Ww, C) layout."""
    model = official.build_backbone("v1", pretrain_img_size=32, embed_dim=8, depths=[2, 2], num_heads=[1, 2],
                                    window_size=4, ape=True, out_indices=(0, 1))
    ours = model.state_dict()
    embed = ours["absolute_pos_embed"].reshape(1, 8, 8, 8).permute(0, 3, 1, 2)  # (1, C, 8, 8)
    sd = {f"backbone.{k}": v for k, v in ours.items() if k != "absolute_pos_embed"}
    sd["backbone.absolute_pos_embed"] = embed
    sd["neck.lateral.weight"] = torch.zeros(1)
    fresh = official.build_backbone("v1", pretrain_img_size=32, embed_dim=8, depths=[2, 2], num_heads=[1, 2],
                                    window_size=4, ape=True, out_indices=(0, 1))
    with pytest.warns(UserWarning, match="1 key\\(s\\) outside the backbone skipped: neck.lateral.weight"):
        official.load_state_dict(fresh, sd)
    assert torch.equal(fresh.absolute_pos_embed, model.absolute_pos_embed)


def test_build_backbone_arguments():
    model = official.build_backbone("v1")  # the official defaults: Swin-T, window 7, every stage out
    cfg = model.cfg
    assert (cfg.embed_dim, cfg.depths, cfg.num_heads, cfg.window_size) == (96, (2, 2, 6, 2), (3, 6, 12, 24), 7)
    assert (cfg.out_indices, cfg.num_classes, cfg.drop_path_rate, cfg.img_size) == ((0, 1, 2, 3), 0, 0.2, 224)
    assert isinstance(model.norm, torch.nn.Identity) and "norm.weight" not in model.state_dict()
    assert count_params(cfg) - 2 * cfg.num_features == sum(p.numel() for p in model.parameters())
    v2 = official.build_backbone("v2", pretrain_img_size=64, window_size=8, embed_dim=16, depths=[2, 2],
                                 num_heads=[1, 2], out_indices=[1], pretrained_window_sizes=[4, 4])
    assert (v2.cfg.attention, v2.cfg.relative, v2.cfg.out_indices, v2.cfg.pad_keys) == ("cosine", "cpb_log", (1,),
                                                                                          "attend")
    with pytest.raises(ConfigError, match="num_classes: not an official segmentation backbone argument; allowed: "):
        official.build_backbone("v1", num_classes=10)
    with pytest.raises(ConfigError, match="qk_scale: only None"):
        official.build_backbone("v1", qk_scale=0.1)
    with pytest.raises(ConfigError, match="frozen_stages: only -1"):
        official.build_backbone("v1", frozen_stages=1)
    with pytest.raises(ConfigError, match="kind: got 'v3'"):
        official.build_backbone("v3")


# -- the two switches ----------------------------------------------------------------------------------------------
BASE = dict(patch_size=4, window_size=4, embed_dim=8, depths=(2, 2, 2), num_heads=(1, 2, 4), num_classes=0,
            out_indices=(0, 1, 2), drop_path_rate=0.0, img_size=64)


def _outputs(x: torch.Tensor, reference: SwinTransformer, **switches) -> list[torch.Tensor]:
    """forward_intermediates of a model with ``reference``'s weights and ``switches``."""
    model = SwinTransformer(reference.cfg.replace(**switches)).double().eval()
    model.load_state_dict(reference.state_dict())
    with torch.no_grad():
        return model.forward_intermediates(x, (0, 1, 2))


@pytest.fixture(scope="module")
def reference() -> SwinTransformer:
    torch.manual_seed(0)
    model = SwinTransformer(SwinConfig(**BASE)).double()
    with torch.no_grad():  # every bias away from zero, so that padded (zero) tokens have non-trivial keys
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model


def test_hand_checked_geometry_of_each_switch_value():
    """A 10 x 14 grid, window 4: stage maps 10x14, 5x7, 3x4. ``clip`` shrinks the window of the 3 x 4 map to 3
    and drops its shift; ``pad`` keeps window 4 and shift 2 and pads it to 4 x 4."""
    clip = stage_geometries((10, 14), 4, 8, (1, 2, 4), small_maps="clip")
    pad = stage_geometries((10, 14), 4, 8, (1, 2, 4), small_maps="pad", pad_keys="attend")
    assert [(g.resolution, g.window, g.shift, g.padded) for g in clip] == [
        ((10, 14), 4, 2, (12, 16)), ((5, 7), 4, 2, (8, 8)), ((3, 4), 3, 0, (3, 6))]
    assert [(g.resolution, g.window, g.shift, g.padded) for g in pad] == [
        ((10, 14), 4, 2, (12, 16)), ((5, 7), 4, 2, (8, 8)), ((3, 4), 4, 2, (4, 4))]
    assert all(g.mask_padding for g in clip) and not any(g.mask_padding for g in pad)
    assert padded_grid((3, 4), 4, 2, "cyclic") == (0, 0, 4, 4)
    with pytest.raises(ValueError, match="small_maps must be one of"):
        stage_geometries((8, 8), 4, 8, (1,), small_maps="crop")


def test_padded_keys_masked_or_attended_in_the_masks():
    """A 5 x 6 map, window 4 -> padded to 8 x 8, four windows. ``mask``: -inf on the padded keys (counted by hand
    below); ``attend``: no mask at all in a regular block, and only the region mask (0 / -100, built on the
    padded 8 x 8) in a shifted one, equal to the masked one wherever that is finite."""
    masked = attention_mask((5, 6), 4, 0, "cyclic", mask_padding=True)
    # padded keys per window (of 16): rows 0-3 x cols 0-3: none; rows 0-3 x cols 4-7: 4 rows x 2 cols = 8;
    # rows 4-7 x cols 0-3: 3 rows x 4 = 12; rows 4-7 x cols 4-7: 16 - 1 x 2 = 14
    assert [(w[0] == float("-inf")).sum().item() for w in masked] == [0, 8, 12, 14]
    assert attention_mask((5, 6), 4, 0, "cyclic", mask_padding=False) is None
    shifted_masked = attention_mask((5, 6), 4, 2, "cyclic", mask_padding=True)
    shifted_attend = attention_mask((5, 6), 4, 2, "cyclic", mask_padding=False)
    assert set(shifted_attend.unique().tolist()) == {0.0, REGION_MASK}
    finite = torch.isfinite(shifted_masked)
    assert not finite.all() and torch.equal(shifted_masked[finite], shifted_attend[finite])
    assert attention_mask((8, 8), 4, 0, "cyclic", mask_padding=True) is None  # tiled: nothing to mask
    # sliding neighbourhoods: the zero padding beyond the map masked, or attended (no mask)
    assert sliding_neighbours((3, 3), 3, mask_padding=True)[1] is not None
    assert sliding_neighbours((3, 3), 3, mask_padding=False)[1] is None


@pytest.mark.parametrize("small_maps", ["clip", "pad"])
def test_padded_keys_attended_vs_masked_differ_where_maps_need_padding(reference, small_maps):
    x = torch.randn(2, 3, 40, 56, dtype=torch.float64)  # maps 10x14, 5x7, 3x4: each needs padding
    masked = _outputs(x, reference, pad_keys="mask", small_maps=small_maps)
    attended = _outputs(x, reference, pad_keys="attend", small_maps=small_maps)
    for i, (a, b) in enumerate(zip(masked, attended)):
        assert (a - b).abs().max().item() > 1e-3, f"stage {i}"


@pytest.mark.parametrize("pad_keys", ["mask", "attend"])
def test_small_map_clipped_vs_padded_to_one_window_differ(reference, pad_keys):
    x = torch.randn(2, 3, 40, 56, dtype=torch.float64)
    clipped = _outputs(x, reference, small_maps="clip", pad_keys=pad_keys)
    padded = _outputs(x, reference, small_maps="pad", pad_keys=pad_keys)
    assert torch.equal(clipped[0], padded[0]) and torch.equal(clipped[1], padded[1])  # maps larger than the window
    assert (clipped[2] - padded[2]).abs().max().item() > 1e-3  # the 3 x 4 map: window 3 unshifted vs 4 shifted


def test_maps_the_window_tiles_give_one_model(reference):
    """Window 2 on a 128 x 96 input: maps 32x24, 16x12, 8x6, each tiled by the window and larger than it. All four
    combinations of the switches compute the same model, bit for bit."""
    cfg = reference.cfg.replace(window_size=2)
    ref = SwinTransformer(cfg).double()
    x = torch.randn(2, 3, 128, 96, dtype=torch.float64)
    outs = [_outputs(x, ref, pad_keys=k, small_maps=s) for k in ("mask", "attend") for s in ("clip", "pad")]
    for other in outs[1:]:
        for a, b in zip(outs[0], other):
            assert torch.equal(a, b)


def test_segmenter_keeps_the_configured_behaviour():
    """The segmenter's default is the config's (``mask`` / ``clip``); the official dense geometry is one switch."""
    head = HeadConfig(kind="linear")
    plain = SwinSegmenter(SwinConfig(**BASE), head, 3)
    dense = SwinSegmenter(SwinConfig(**BASE, pad_keys="attend", small_maps="pad"), head, 3)
    assert (plain.backbone.cfg.pad_keys, plain.backbone.cfg.small_maps) == ("mask", "clip")
    assert (dense.backbone.cfg.pad_keys, dense.backbone.cfg.small_maps) == ("attend", "pad")
    assert backbone_config(SwinConfig(**BASE, pad_keys="attend")).pad_keys == "attend"
    dense.load_state_dict(plain.state_dict())
    x = torch.randn(1, 3, 40, 56)  # stage maps 10x14, 5x7, 3x4: padded, and the last one small
    with torch.no_grad():
        a, b = plain.eval()(x), dense.eval()(x)
    assert a.shape == b.shape == (1, 3, 40, 56) and torch.isfinite(b).all()
    assert (a - b).abs().max().item() > 1e-4


def test_switches_are_strict():
    with pytest.raises(ConfigError, match="pad_keys: got 'ignore'; allowed values are 'mask', 'attend'"):
        SwinConfig.from_dict({**BASE, "pad_keys": "ignore"})
    with pytest.raises(ConfigError, match="small_maps: got 'crop'; allowed values are 'clip', 'pad'"):
        SwinConfig.from_dict({**BASE, "small_maps": "crop"})


def test_flops_count_the_padded_small_map():
    """Stage 2 of a 10 x 14 grid is 3 x 4: ``pad`` computes one 4 x 4 window (16 tokens), ``clip`` 2 windows of
    3 x 3 (18 tokens)."""
    base = {**BASE, "img_size": (40, 56)}
    clip, pad = SwinConfig(**base), SwinConfig(**base, small_maps="pad")
    C = 32
    for cfg, tokens, M in ((clip, 18, 3), (pad, 16, 4)):
        block = flops_breakdown(cfg).stages[2].blocks[0]
        assert (block.qkv, block.attn_qk, block.proj) == (tokens * C * 3 * C, tokens * M * M * C, tokens * C * C)


# -- stored runs keep their behaviour --------------------------------------------------------------------------
def test_stored_dense_study_configs_rebuild_the_earlier_behaviour_and_hash():
    """A committed study's stored config has neither key: it rebuilds ``mask`` / ``clip`` and its run hash is
    still its run folder's name; a config that sets the official behaviour hashes differently."""
    from swin_lit.config import RunConfig, stored_config
    from swin_lit.typed import from_dict

    log = ROOT / "results" / "camvid_table4" / "study.log"
    for line in log.read_text().splitlines():
        attrs = json.loads(line).get("user_attrs") or {}
        if "config" in attrs:
            break
    stored = attrs["config"]
    assert "pad_keys" not in stored["model"] and "small_maps" not in stored["model"]
    cfg = stored_config(stored)
    assert (cfg.model.pad_keys, cfg.model.small_maps) == ("mask", "clip")
    assert attrs["run_dir"].endswith(cfg.hash())
    dense = from_dict(RunConfig, {**stored, "model": {**stored["model"], "pad_keys": "attend"}})
    assert dense.hash() != cfg.hash()


# -- the geometry module and the registry, without torch -------------------------------------------------------
def test_config_validates_without_torch():
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "from swin_lit.models import SwinConfig, ConfigError\n"
        "cfg = SwinConfig(relative='cpb_log', pretrained_window_sizes=(4, 4, 4, 4), small_maps='pad')\n"
        "print([g.window for g in cfg.stages((10, 14))])\n"
        "try:\n    SwinConfig(relative='bogus')\nexcept ConfigError as e:\n    print(e)\n"
        "assert not any(m == 'torch' or m.startswith('torch.') for m in sys.modules if sys.modules[m] is not None)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        "[7, 7, 7, 7]", "relative: got 'bogus'; allowed values are 'none', 'table', 'cpb_log', 'cpb_linear'"]


def test_built_in_kind_facts_match_the_classes():
    """The facts a config validates with before torch is imported are the registered classes' own."""
    facts = RELATIVE_BIASES.facts
    assert set(facts) == set(RELATIVE_BIASES.builtin)
    for name, cls in RELATIVE_BIASES.items():
        own = {"normalised": cls.normalised, "transfer_methods": cls.transfer_methods}
        assert facts.get(name, own) == own
    assert RELATIVE_BIASES.having("normalised") == ("cpb_log", "cpb_linear")


def _module_imports(path: Path) -> set[str]:
    """swin_lit.models.* modules imported at module level (not inside functions) by one file."""
    found = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("swin_lit.models"):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("swin_lit.models")}
    return found


def test_no_module_level_import_cycle_in_models():
    folder = ROOT / "swin_lit" / "models"
    graph = {f"swin_lit.models.{p.stem}": _module_imports(p) for p in folder.glob("*.py") if p.stem != "__init__"}
    graph = {m: {d for d in deps if d in graph} for m, deps in graph.items()}
    state: dict[str, int] = {}

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for d in sorted(graph[m]):
            assert state.get(d) != 1, "import cycle: " + " -> ".join(path + [m, d])
            if d not in state:
                visit(d, path + [m])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [])
    assert not graph["swin_lit.models.geometry"] and not graph["swin_lit.models.registry"]
    assert "swin_lit.models.geometry" in graph["swin_lit.models.config"] & graph["swin_lit.models.windows"] \
        & graph["swin_lit.models.position"] & graph["swin_lit.models.flops"]


def test_models_command_shows_the_dense_geometry(capsys):
    """``swin-lit models``: at 224 px Swin-T's last map is 7 x 7, so ``clip`` does not shift it and ``pad`` does."""
    from swin_lit.cli import main

    assert main(["models", "--preset", "swin_t", "--set", "small_maps=pad", "--set", "pad_keys=attend"]) == 0
    out = capsys.readouterr().out
    assert "small_maps=pad pad_keys=attend" in out
    assert out.splitlines()[7].split()[:4] == ["3", "7x7", "7", "3"]  # stage, tokens, window, shift
    assert main(["models", "--preset", "swin_t"]) == 0
    assert capsys.readouterr().out.splitlines()[7].split()[:4] == ["3", "7x7", "7", "0"]
