"""The package's shape, pinned: no module-level import cycle, no file over 600 lines, and the layers' rules
(the model package knows nothing of training, the driver or the report; the domain layer nothing of torch;
the driver nothing of attention; library code never imports the CLI), read from the source's syntax trees."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "swin_lit"


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


MODULES = _modules()


def _imports(name: str, top_level: bool) -> set[str]:
    """The modules ``name`` imports: at module level only (``top_level``), or anywhere (inside functions too).
    ``from swin_lit.x import y`` counts ``swin_lit.x.y`` where ``y`` is a module, else ``swin_lit.x`` (a module's
    parent package is imported before it anyway: not an edge of its own)."""
    path = MODULES[name]
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level else ast.walk(tree)
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the module's package
                package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
                base = ".".join(package[:len(package) - node.level + 1] + ([base] if base else []))
            submodules = {f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in MODULES}
            found |= submodules
            if len(submodules) < len(node.names):
                found.add(base)
    return found


def _under(imported: set[str], prefixes: tuple[str, ...]) -> list[str]:
    return sorted(i for i in imported if any(i == p or i.startswith(p + ".") for p in prefixes))


def test_the_import_reader_sees_each_form():
    assert "swin_lit.domain.task" in _imports("swin_lit.domain.result", top_level=True)
    assert "swin_lit.data.sources" in _imports("swin_lit.data.config", top_level=True)  # from a package, a module
    assert "swin_lit.data" not in _imports("swin_lit.data.config", top_level=True)
    assert "swin_lit.models.swin" in _imports("swin_lit.models", top_level=False)  # inside a function
    assert "swin_lit.models.swin" not in _imports("swin_lit.models", top_level=True)


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` (module -> the modules it imports), or None."""
    state: dict[str, int] = {}

    def visit(m: str, path: list[str]) -> list[str] | None:
        state[m] = 1
        for d in sorted(graph[m]):
            if state.get(d) == 1:
                return [*path, m, d]
            if d not in state and (found := visit(d, [*path, m])):
                return found
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state and (found := visit(m, [])):
            return found
    return None


def test_the_cycle_finder_finds_one():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_no_module_level_import_cycle():
    graph = {m: {d for d in _imports(m, top_level=True) if d in MODULES and d != m} for m in MODULES}
    assert _cycle(graph) is None


def test_no_file_over_600_lines():
    long = {str(p.relative_to(ROOT)): n for p in MODULES.values() if (n := len(p.read_text().splitlines())) > 600}
    assert long == {}


LIBRARY_ONLY = ("swin_lit.train", "swin_lit.ablate", "swin_lit.report", "swin_lit.study", "swin_lit.tasks",
                "swin_lit.data", "swin_lit.cli", "optuna", "lightning")


@pytest.mark.parametrize("layer, forbidden", [
    ("swin_lit.models", LIBRARY_ONLY),  # the model package: plain torch, no training, driver or report
    ("swin_lit.domain", ("torch", "lightning", "torchmetrics", "swin_lit.train", "swin_lit.ablate",
                         "swin_lit.report", "swin_lit.study", "swin_lit.tasks", "swin_lit.data", "swin_lit.cli",
                         "swin_lit.config", "swin_lit.models.swin", "swin_lit.models.attention")),
    ("swin_lit.ablate", ("torch", "swin_lit.models.attention", "swin_lit.models.blocks", "swin_lit.models.windows",
                         "swin_lit.models.position", "swin_lit.models.placement", "swin_lit.models.swin")),
    ("swin_lit.report", ("lightning", "swin_lit.ablate.worker", "swin_lit.ablate.kinds")),  # reads storages

])
def test_a_layer_imports_nothing_it_must_not_know(layer, forbidden):
    """Anywhere in the layer's modules, inside functions too (a lazy import still couples the layers); the
    driver's worker process sets torch's thread count, its one torch import, allowed by name below. (The report
    draws a trained model's predictions and masks with torch; it reads results from the storage only.)"""
    allowed = {("swin_lit.ablate.worker", "torch")}
    bad = {m: found for m in MODULES if m == layer or m.startswith(layer + ".")
           if (found := [i for i in _under(_imports(m, top_level=False), forbidden) if (m, i) not in allowed])}
    assert bad == {}


def test_library_code_does_not_import_the_cli():
    """Only the CLI's own modules (``cli.py`` and the ``command`` modules it registers) import it."""
    bad = [m for m in MODULES if not (m == "swin_lit.cli" or m.endswith("command"))
           and _under(_imports(m, top_level=False), ("swin_lit.cli",))]
    assert bad == []


def test_the_readme_is_a_front_door():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 250
