"""The report warns when one study's result records mix versions and it reports a split loss: version 2 records a
mean per image over the split, version 1 the mean of batch means (``swin_lit.domain.result``)."""

from __future__ import annotations

from datetime import timedelta

from helpers.stored import COMPLETE, T0, add, new_study, record, train_attrs

from swin_lit.report.build import build_report
from swin_lit.report.data import load_study

WARNING = "**Warning: the result records mix versions**"


def study(folder, versions: dict[tuple[str, int], int | None], metrics: list[str], objective: str | None = None):
    """Two variants x two seeds; each cell's record of the given version (None: stored without the field)."""
    spec = {"variants": {"base": {}, "wide": {}}, "seeds": [0, 1], "baseline": "base", "metrics": metrics,
            "alpha": 0.05, **({"objective": objective} if objective else {})}
    s = new_study(folder, folder.name, spec)
    for i, ((variant, seed), version) in enumerate(versions.items()):
        result = record(70.0 + i, seed)
        if version is not None:
            result["version"] = version
        add(s, COMPLETE, T0 + timedelta(minutes=i), **train_attrs(variant, seed, {}, result))
    return folder


MIXED = {("base", 0): None, ("base", 1): 1, ("wide", 0): 2, ("wide", 1): 2}


def test_mixed_versions_with_a_loss_metric_warn_in_one_line(tmp_path):
    folder = study(tmp_path / "mixed", MIXED, ["test.top1", "test.loss"])
    assert load_study(folder).record_versions == {("base", 0): 1, ("base", 1): 1, ("wide", 0): 2, ("wide", 1): 2}
    md = (build_report(folder) / "report.md").read_text()
    lines = [line for line in md.splitlines() if WARNING in line]
    assert lines == [f"{WARNING} (version 1: base seed 0, base seed 1; version 2: wide seed 0, wide seed 1): their "
                     "split losses (test.loss) are not comparable (version 2: a mean per image over the split; "
                     "version 1: the mean of the batch means)."]


def test_a_loss_objective_alone_warns_too(tmp_path):
    folder = study(tmp_path / "objective", MIXED, ["test.top1"], objective="val.loss")
    md = (build_report(folder) / "report.md").read_text()
    assert WARNING in md and "split losses (test.top1" not in md and "split losses (val.loss)" in md


def test_no_warning_without_a_loss_or_with_one_version(tmp_path):
    no_loss = study(tmp_path / "noloss", MIXED, ["test.top1"])
    assert WARNING not in (build_report(no_loss) / "report.md").read_text()
    same = study(tmp_path / "same", {cell: 2 for cell in MIXED}, ["test.top1", "test.loss"])
    assert WARNING not in (build_report(same) / "report.md").read_text()
