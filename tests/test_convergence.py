"""The report's convergence check (swin_lit.report.convergence): the window, the per-seed trend recomputed by
hand, and each verdict."""

from types import SimpleNamespace

import pytest

from swin_lit.report.convergence import convergence, convergence_line, convergence_table


def _data(curves: dict[str, dict[int, list[float]]], objective="test.top1"):
    histories = {(v, seed): [{"epoch": e, "val_top1": y, "val_loss": 1.0} for e, y in enumerate(ys)]
                 for v, seeds in curves.items() for seed, ys in seeds.items()}
    return SimpleNamespace(name="s", objective=objective, variants=list(curves), histories=histories, alpha=0.05)


def test_the_window_is_the_last_fifth_and_the_trend_is_recomputed_by_hand():
    # 10 epochs: k = 2, window epochs 7..9. Seed 0 ends 10, 12, 11: slope sum((x-8)(y-11)) / sum((x-8)^2) = 1/2,
    # times k = 1.0. Seed 1 ends 10, 10, 12: slope 2/2 = 1, movement 2. Mean 1.5.
    data = _data({"a": {0: [0] * 7 + [10, 12, 11], 1: [0] * 7 + [10, 10, 12]}})
    row = convergence(data).iloc[0]
    assert (row.epochs, row.from_epoch, row.seeds) == (10, 7, 2)
    assert row.start == pytest.approx(10.0) and row.end == pytest.approx(11.5)
    assert row.movement == pytest.approx(1.5)
    assert row["range"] == pytest.approx(1.5)  # the mean curve 10, 11, 11.5
    # t-interval over the two seeds' movements 1 and 2: mean 1.5, sd 0.7071, se 0.5, t(0.975, 1) = 12.706
    assert (row.high - row.low) / 2 == pytest.approx(12.706 * 0.5, rel=1e-3)
    assert row.verdict == "within noise"


def test_verdicts_settled_still_moving_and_too_few_epochs():
    data = _data({
        "flat": {s: [50, 60, 70, 70.2, 70.1, 70.3] for s in range(3)},  # k = 2: 70.2, 70.1, 70.3: trend 0.1
        "rising": {0: [1, 2, 3, 4, 5, 6], 1: [1, 2, 3, 4, 5, 6.5], 2: [1, 2, 3, 4, 5.2, 6.4]},
        "falling": {s: [9, 8, 7, 6, 5, 4] for s in range(3)},  # every seed the same: no t-test, still moving
        "short": {0: [1.0], 1: [2.0]},
    })
    frame = convergence(data).set_index("variant")
    assert frame.loc["flat", "verdict"] == "settled" and frame.loc["flat", "movement"] == pytest.approx(0.1)
    assert frame.loc["rising", "verdict"] == "still moving (up)"
    assert frame.loc["falling", "verdict"] == "still moving (down)"
    assert frame.loc["falling", "movement"] == pytest.approx(-2)
    assert frame.loc["short", "verdict"] == "too few epochs"
    line = convergence_line(frame.reset_index())
    assert line.startswith("**Convergence**: 1 of 3 variants settled") and "still moving: rising" in line
    table = convergence_table(data, frame.reset_index())
    assert [r[0] for r in table.rows] == ["flat", "rising", "falling", "short"] and table.rows[0][-1] == "settled"


def test_a_loss_objective_gets_numbers_without_a_verdict():
    data = _data({"a": {0: [3, 2, 1, 1, 1]}}, objective="test.loss")
    row = convergence(data).iloc[0]
    assert row.key == "val_loss" and row.verdict == "no verdict (not a percent metric)"
    assert convergence_line(convergence(data)) is None
