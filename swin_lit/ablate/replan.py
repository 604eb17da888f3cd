"""The cells a worker rebuilds from what a study stores, without the spec file or its base config: the transfer
cells that follow a finished train cell (``followups``), the next seeds of every variant from one stored cell each
(``seed_cells``, the adaptive-seed rule's planning), and a search trial's config (``apply_search_values``). Each
gives the cells ``spec.load_plan`` plans from the spec file; stored configs are read through
``config.stored_config``, the one converter of older stored forms."""

from __future__ import annotations

import copy
from collections.abc import Iterable

from swin_lit.ablate.spec import Cell, transfer_cells
from swin_lit.config import RunConfig, apply_overrides, stored_config
from swin_lit.domain.cell import CellId
from swin_lit.domain.spec import TRAIN, Spec


def followups(spec: Spec, source_attrs: dict) -> list[Cell]:
    """The cells that wait for a finished train cell (its transfer cells), from the study's stored spec and
    the finished trial's user attrs: the same cells ``load_plan`` plans for it."""
    if spec.transfer is None or source_attrs.get("kind", TRAIN) != TRAIN:
        return []
    source = Cell(source_attrs["cell"], source_attrs["variant"], int(source_attrs["seed"]),
                  dict(source_attrs.get("overrides") or {}), stored_config(source_attrs["config"]))
    return transfer_cells(spec, [source])


def seed_cells(spec: Spec, templates: dict[str, dict], seeds: Iterable[int]) -> list[Cell]:
    """The train cells of every variant in ``templates`` at ``seeds``, and the transfer cells that follow them,
    built from what the study stores: ``templates`` maps a variant to the user attrs of one of its stored train
    trials, whose resolved config is the variant's config at another seed. The run config's ``seed`` is the
    only field that differs between a variant's seeds (``load_plan`` resolves base + budget + overrides +
    seed), so these are the cells ``load_plan`` plans. Workers plan a study's next seeds this way: they hold
    the stored spec, not the spec file or its base config."""
    out = []
    for variant, attrs in templates.items():
        overrides = dict(attrs.get("overrides") or {})
        for seed in seeds:
            cfg = stored_config({**attrs["config"], "seed": int(seed)})
            out.append(Cell(str(CellId(variant, int(seed))), variant, int(seed), copy.deepcopy(overrides), cfg,
                            params=spec.cell_params(overrides, variant, seed)))
    if spec.transfer is not None:
        out += transfer_cells(spec, out)
    return out


def apply_search_values(config: dict, values: dict) -> RunConfig:
    """A cell's resolved config with the sampled search values on top."""
    clean = {k: (int(v) if isinstance(v, float) and v.is_integer() and k.endswith(("_size", "epochs")) else v)
             for k, v in values.items()}
    return stored_config(apply_overrides(config, clean))
