"""A stored study's spec changed after a result was seen (seeds extended, budget changed) is recorded in the
storage (``spec_history``); a change before any result is not."""

from __future__ import annotations

from helpers.studies import write_spec
from optuna.trial import TrialState

from swin_lit.ablate import store
from swin_lit.ablate.spec import load_plan

SEEDS = {"start": 3, "max": 5, "step": 1, "precision": 1.0}


def open_study(tmp_path, seeds: dict, now=lambda: 0.0, **fields):
    plan = load_plan(write_spec(tmp_path, "hist", variants={"a": {}, "b": {}}, seeds=seeds, **fields))
    opened = store.open_storage(tmp_path / "hist" / "study.log")
    return store.create_study(opened, "hist", "maximize", plan.spec.to_plain(), plan.cell_ids, now=now), plan


def test_a_spec_change_after_a_result_is_recorded(tmp_path):
    ref, plan = open_study(tmp_path, SEEDS)
    ref, _ = open_study(tmp_path, {**SEEDS, "max": 6})  # no result yet: not a second look
    assert store.SPEC_HISTORY not in ref.study.user_attrs
    store.plan_study(ref, plan.cells_of)
    for _ in range(2):  # two cells finish
        trial = store.claim(ref)
        assert store.finish(ref, trial, TrialState.COMPLETE, 50.0,
                            attrs={"result": {"test": {"top1": 50.0, "loss": 1.0}}})
    ref, _ = open_study(tmp_path, {**SEEDS, "max": 8}, now=lambda: 86400.0 * 365)
    history = ref.study.user_attrs[store.SPEC_HISTORY]
    assert history == [{"changed_at": "1971-01-01T00:00:00Z", "finished_cells": 2, "changes": {"seeds.max": [6, 8]}}]
    assert ref.study.user_attrs["spec"]["seeds"]["max"] == 8
    ref, _ = open_study(tmp_path, {**SEEDS, "max": 8})  # the same spec again: nothing new
    assert len(ref.study.user_attrs[store.SPEC_HISTORY]) == 1
    reopened = store.find_study(store.open_storage(tmp_path / "hist" / "study.log"), "hist")
    assert reopened.study.user_attrs[store.SPEC_HISTORY] == history  # in the storage, for any reader


def test_spec_changes_lists_every_changed_leaf():
    old = {"seeds": {"start": 3, "max": 5}, "budget": {"trainer.max_epochs": 14}, "alpha": 0.05}
    new = {"seeds": {"start": 3, "max": 8}, "budget": {"trainer.max_epochs": 20, "data.limit_train": 4000},
           "alpha": 0.05}
    assert store.spec_changes(old, new) == {"budget.data.limit_train": [None, 4000],
                                            "budget.trainer.max_epochs": [14, 20], "seeds.max": [5, 8]}
    assert store.spec_changes({"seeds": [0, 1, 2]}, {"seeds": [0, 1, 2, 3]}) == {"seeds": [[0, 1, 2], [0, 1, 2, 3]]}


def test_a_field_added_with_its_default_is_not_a_change(tmp_path):
    """A newer version stores a new spec field with its default (``margin: None``): the same spec, no history."""
    ref, plan = open_study(tmp_path, SEEDS)
    store.plan_study(ref, plan.cells_of)
    trial = store.claim(ref)
    assert store.finish(ref, trial, TrialState.COMPLETE, 50.0, attrs={"result": {"test": {"top1": 50.0}}})
    older = {k: v for k, v in ref.study.user_attrs["spec"].items() if k != "margin"}
    ref.study.set_user_attr("spec", older)  # as a study stored before the field existed holds it
    ref, _ = open_study(tmp_path, SEEDS)
    assert store.SPEC_HISTORY not in ref.study.user_attrs
    assert "margin" in ref.study.user_attrs["spec"]  # the stored form is brought up to date
    ref, _ = open_study(tmp_path, SEEDS, margin=0.5)  # a real change after a result: recorded
    assert ref.study.user_attrs[store.SPEC_HISTORY][0]["changes"] == {"margin": [None, 0.5]}
