"""The report's convergence check on the comparison (swin_lit.report.convergence): the per-seed paired Δ curve's
trend over a window of at least five epochs, recomputed by hand, each verdict (settled by TOST against the margin,
still moving, not judged, too short to judge), and the note on an annealed learning rate."""

from types import SimpleNamespace

import numpy as np
import pytest
from scipy import stats as sp

from swin_lit.domain.spec import Spec
from swin_lit.report.convergence import (
    anneal_note,
    converged,
    convergence,
    convergence_line,
    convergence_table,
    window_length,
)


def _data(curves: dict[str, dict[int, list[float]]], objective="test.top1", spec=None, optim=None):
    """``curves``: variant -> seed -> the validation value per epoch; the first variant is the baseline."""
    key = "val_loss" if objective == "test.loss" else "val_top1"
    histories = {(v, seed): [{"epoch": e, key: y} for e, y in enumerate(ys)]
                 for v, seeds in curves.items() for seed, ys in seeds.items()}
    return SimpleNamespace(name="s", objective=objective, variants=list(curves), baseline=next(iter(curves)),
                           histories=histories, alpha=0.05, spec=Spec.from_stored(spec),
                           run_config={"optim": optim or {}})


def test_window_is_at_least_five_epochs():
    assert [window_length(e) for e in (5, 10, 25, 26, 50)] == [5, 5, 5, 6, 10]


def test_the_paired_delta_trend_is_recomputed_by_hand():
    # 10 epochs: window = max(5, 10/5) = 5 epochs, 5..9. The baseline is flat at 50, so Δ = variant - 50.
    # Seed 0: Δ 1, 2, 3, 4, 5 over the window: slope 1, movement 1 x 4 = 4.
    # Seed 1: Δ 0, 0, 0, 0, 1: slope sum((x - 7)(y - 0.2)) / sum((x - 7)^2) = 2 / 10 = 0.2, movement 0.8.
    base = {s: [50.0] * 10 for s in (0, 1)}
    var = {0: [50.0] * 5 + [51, 52, 53, 54, 55], 1: [50.0] * 5 + [50, 50, 50, 50, 51]}
    row = convergence(_data({"base": base, "v": var})).iloc[0]
    assert (row.epochs, row.from_epoch, row.seeds) == (10, 5, 2)
    assert row.start == pytest.approx(0.5) and row.end == pytest.approx(3.0)  # mean Δ at epochs 5 and 9
    moves = np.array([4.0, 0.8])
    se = moves.std(ddof=1) / np.sqrt(2)
    assert row.movement == pytest.approx(2.4)
    assert (row.high - row.low) / 2 == pytest.approx(sp.t.ppf(0.975, 1) * se)
    assert row.p == pytest.approx(2 * sp.t.sf(2.4 / se, 1))
    tost = max(sp.t.sf((2.4 + 1) / se, 1), sp.t.cdf((2.4 - 1) / se, 1))  # margin 1 point
    assert row.tost_p == pytest.approx(tost)
    assert row.verdict == "not judged"  # neither within ±1 nor resolved from 0 with 2 seeds


def test_each_variant_still_climbing_while_the_comparison_is_flat_is_settled():
    """Both curves rise by ~2 points over the window, their difference does not move: settled."""
    rng = np.random.default_rng(0)
    base, var = {}, {}
    for s in range(4):
        climb = np.linspace(40, 60, 14) + rng.normal(0, 0.05, 14)
        base[s] = list(climb)
        var[s] = list(climb + 3 + rng.normal(0, 0.05, 14))
    row = convergence(_data({"base": base, "v": var})).iloc[0]
    assert row.verdict == "settled" and row.tost_p <= 0.05 and abs(row.movement) < 0.3


def test_verdicts_still_moving_too_short_and_no_margin():
    base = {s: [50.0] * 12 for s in range(3)}
    rising = {s: [50.0 + e * (1 + 0.01 * s) for e in range(12)] for s in range(3)}  # Δ rises ~1 per epoch
    short = {s: [50.0] * 4 for s in range(3)}
    frame = convergence(_data({"base": base, "rising": rising, "short": {**short}})).set_index("variant")
    assert frame.loc["rising", "verdict"] == "still moving (up)" and frame.loc["rising", "movement"] == pytest.approx(
        4 * np.mean([1, 1.01, 1.02]))
    assert frame.loc["short", "verdict"] == "too short to judge"
    assert converged(frame.reset_index(), "rising") is False and converged(frame.reset_index(), "short") is None
    line = convergence_line(frame.reset_index())
    assert line.startswith("**Convergence of the comparisons**: 0 of 1 paired Δ curves settled")
    assert "still moving: rising +4.04" in line
    table = convergence_table(_data({"base": base, "rising": rising}), frame.reset_index())
    assert [r[0] for r in table.rows] == ["rising", "short"] and table.rows[0][-1] == "still moving (up)"
    # a loss has no margin of its own: numbers without a verdict; the spec's margin gives one
    loss = {"base": {0: [3, 2, 1, 1, 1, 1]}, "v": {0: [3, 2, 1.05, 1.05, 1.05, 1.05]}}  # one seed: movement 0.04
    assert convergence(_data(loss, "test.loss")).iloc[0].verdict.startswith("no verdict")
    assert convergence(_data(loss, "test.loss", spec={"margin": 0.1})).iloc[0].verdict == "settled"


def test_annealed_schedule_is_noted():
    flat = {"base": {0: [1.0] * 6}, "v": {0: [1.0] * 6}}
    note = anneal_note(_data(flat, optim={"schedule": "cosine", "lr": 0.004, "min_lr": 1e-5}))
    assert note.startswith("The cosine schedule anneals the learning rate from 0.004 to 1e-05")
    assert anneal_note(_data(flat, optim={"schedule": "cosine", "lr": 0.004, "min_lr": 1e-3})) is None
    assert anneal_note(_data(flat, optim={"schedule": "constant", "lr": 0.004, "min_lr": 0.0})) is None
