"""The relative-bias registry: a new kind is one class and one registration, here in this test file only.

The toy kind ("separable") gives each head one bias per vertical offset plus one per horizontal offset. Once
registered it builds, trains, counts its parameters and FLOPs, refuses transfers it does not support, draws,
and is listed by ``swin-lit models``, with no file of the package edited.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
from helpers.pictures import assert_drawn

from swin_lit.cli import main
from swin_lit.models import ConfigError, SwinConfig, SwinTransformer
from swin_lit.models.flops import count_flops, count_params, flops_breakdown
from swin_lit.models.position import RELATIVE_BIASES, RelativeBias, register
from swin_lit.models.transfer import transfer_config
from swin_lit.report.viz import bias_tables, draw_position_bias


class SeparableBias(RelativeBias):
    """bias(dh, dw) = rows[dh] + cols[dw], per head: 2 (2M-1) parameters per head instead of (2M-1)^2."""

    name = "separable"
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


@pytest.fixture
def separable():
    register(SeparableBias)
    yield SeparableBias
    del RELATIVE_BIASES[SeparableBias.name]


CFG = dict(img_size=32, patch_size=2, window_size=4, embed_dim=16, depths=(2, 2, 2), num_heads=(2, 4, 8),
           num_classes=5, drop_path_rate=0.0)


def test_unregistered_kind_is_a_config_error():
    with pytest.raises(ConfigError, match="relative: got 'separable'; allowed values are 'none', 'table'"):
        SwinConfig(**CFG, relative="separable")


@pytest.mark.parametrize("switches", [dict(), dict(windows="sliding", shift="none"), dict(shift="pad")],
                         ids=["partition", "sliding", "pad"])
def test_a_registered_kind_builds_trains_and_counts(separable, switches):
    cfg = SwinConfig(**CFG, relative="separable", **switches)
    model = SwinTransformer(cfg)
    assert count_params(cfg) == sum(p.numel() for p in model.parameters())
    assert sum(isinstance(m, SeparableBias) for m in model.modules()) == 6
    assert "layers.0.blocks.0.attn.relative_bias.rows" in model.no_weight_decay()  # like every relative bias
    assert count_flops(cfg) > 0 and flops_breakdown(cfg).by_part()["relative_bias"] == 0
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    x, y = torch.randn(4, 3, 32, 32), torch.randint(0, 5, (4,))
    loss = nn.functional.cross_entropy(model(x), y)
    loss.backward()
    rows = model.layers[0].blocks[1].attn.relative_bias.rows
    assert rows.grad is not None and rows.grad.abs().sum() > 0
    before = rows.detach().clone()
    optimizer.step()
    assert not torch.equal(before, rows)
    with torch.no_grad():  # and at another input size: the same kind serves the clipped windows
        assert model.eval()(torch.randn(1, 3, 16, 16)).shape == (1, 5)


def test_a_registered_kind_draws_and_is_listed(separable, tmp_path, capsys):
    model = SwinTransformer(SwinConfig(**CFG, relative="separable"))
    tables = bias_tables(model)
    assert len(tables) == 6 and tables[0][1].shape == (2, 7, 7)
    module = model.layers[0].blocks[0].attn.relative_bias
    expected = (module.rows[:, None] + module.cols[None, :]).permute(2, 0, 1)
    assert torch.allclose(torch.from_numpy(tables[0][1]), expected.detach())
    path = draw_position_bias(model, tmp_path / "separable.png")
    assert assert_drawn(path)[0] > 300
    assert main(["models"]) == 0
    listing = capsys.readouterr().out
    assert "separable" in listing and SeparableBias.description in listing


def test_a_kind_without_transfer_methods_refuses_clearly(separable):
    cfg = SwinConfig(**CFG, relative="separable")
    with pytest.raises(ConfigError, match="'bicubic' does not fit relative 'separable'"):
        transfer_config(cfg, 64, 8, "bicubic")
    with pytest.raises(ConfigError, match="pretrained_window_sizes: only applies to .*'cpb_log'.*'separable'"):
        cfg.replace(pretrained_window_sizes=[4, 4, 4])


def test_registry_rules(separable):
    class Nameless(SeparableBias):
        name = "none"

    with pytest.raises(ValueError, match="other than 'none'"):
        register(Nameless)

    class Clash(SeparableBias):
        pass

    with pytest.raises(ValueError, match="already registered"):
        register(Clash)
    assert register(SeparableBias) is SeparableBias  # registering the same class again is harmless
