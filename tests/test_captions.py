"""Report captions from templates (``swin_lit.report.captions``): filled with exactly their fields, and the wording
of the tables' captions and lines lives there, not in the code that fills them."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from swin_lit.report import captions

REPORT = Path(captions.__file__).parent


def test_a_caption_takes_exactly_its_fields():
    brief = captions.COMPARISON_BRIEF
    assert set(brief.get_identifiers()) == {"metric", "direction", "m", "s", "alpha", "welch"}
    one = brief.fill(metric="test.top1", direction="higher", m=1, s=captions.plural(1), alpha=captions.setting(0.05),
                     welch=captions.ALL_PAIRED.fill())
    assert one == ("test.top1, higher is better. Family: the 1 comparison against the baseline on test.top1 (Holm, "
                   "α = 0.05); every comparison paired.")
    three = brief.fill(metric="test.loss", direction="lower", m=3, s=captions.plural(3), alpha="0.01",
                       welch=captions.WELCH_FOR.fill(variants="shift=none"))
    assert "the 3 comparisons against" in three and three.endswith("baseline) for shift=none.")
    with pytest.raises(KeyError, match=r"\['metric'\] do not match"):
        captions.COMPARISON_TITLE.fill(metric="test.top1")  # a field missing
    with pytest.raises(KeyError, match="do not match"):
        captions.NO_SOURCE.fill(source="x")  # a field the template does not have
    assert captions.setting(0.05) == "0.05" and captions.setting(1.0) == "1" and captions.setting(0.5) == "0.5"


def test_every_template_fills():
    templates = {name: t for name, t in vars(captions).items() if isinstance(t, captions.Caption)}
    assert len(templates) > 20
    for name, template in templates.items():
        fields = {k: f"<{k}>" for k in template.get_identifiers()}
        text = template.fill(**fields)
        assert "$" not in text and all(f"<{k}>" in text for k in fields), name


def prose(path: Path) -> list[tuple[int, str]]:
    """String literals of four words or more outside docstrings (f-string pieces included) and outside ``raise``
    statements (an error message is not report text)."""
    tree = ast.parse(path.read_text())
    docs = {id(node.body[0].value) for node in ast.walk(tree)
            if isinstance(node, ast.Module | ast.FunctionDef | ast.ClassDef) and node.body
            and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    errors = {id(inner) for node in ast.walk(tree) if isinstance(node, ast.Raise) for inner in ast.walk(node)}
    return [(node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs | errors
            and len(node.value.split()) >= 4]


# Modules whose words are not a report's captions: the templates themselves, the headings' own table, the CLI's
# --help text, and the picture modules of another area (viz).
NOT_WORDED = {"captions.py", "columns.py", "command.py", "scorecard_command.py", "viz.py", "viz_command.py"}
WORDED = sorted(p.name for p in REPORT.glob("*.py") if p.name not in NOT_WORDED)


@pytest.mark.parametrize("module", WORDED)
def test_the_wording_lives_in_the_templates(module):
    assert prose(REPORT / module) == []


def test_the_prose_check_finds_prose(tmp_path):
    assert prose(REPORT / "captions.py")  # the templates are prose
    sample = tmp_path / "sample.py"  # a sentence in code is found; a docstring and an error message are not
    sample.write_text('"""A module docstring of many words."""\n'
                      'def f(x):\n    """Its docstring has many words."""\n'
                      '    if x:\n        raise ValueError(f"the value {x} is not one we read")\n'
                      '    return f"{x}: a sentence of words in the code"\n')
    assert prose(sample) == [(6, ": a sentence of words in the code")]


def number_formats(path: Path) -> list[tuple[int, str]]:
    """The f-string format specs that format a number (``:g``, ``:.2f``, ``:,.0f``, ``:.3g``, ``:e``)."""
    tree = ast.parse(path.read_text())
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FormattedValue) and node.format_spec is not None:
            spec = "".join(p.value if isinstance(p, ast.Constant) else "{}" for p in node.format_spec.values)
            if spec and spec[-1] in "gGfFeE%":
                out.append((node.lineno, spec))
    return out


@pytest.mark.parametrize("module", sorted(p.name for p in REPORT.glob("*.py")
                                          if p.name not in ("fmt.py", "captions.py", "viz.py", "viz_command.py")))
def test_one_number_formatter(module):
    """Numbers go through ``fmt.num`` / ``fmt.significant`` / ``fmt.format_p`` and spec settings through
    ``captions.setting``: no module of the report formats a number itself."""
    assert number_formats(REPORT / module) == []


def test_the_number_format_check_finds_one(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text('x = 0.5\na = f"{x:g} and {x:.2f} and {x:,.0f} but {x!r} and {x:>8}"\n')
    assert number_formats(sample) == [(2, "g"), (2, ".2f"), (2, ",.0f")]


def test_one_verdict_wording_for_comparisons_and_effects():
    """``fmt.verdict_text`` words every verdict; an interaction (a difference of differences) may span twice the
    metric's range and is worded as an effect."""
    from swin_lit.report import fmt

    assert fmt.verdict_text("not resolved", 150.0, "test.top1") == (
        "not resolved; uninformative (80% power only for |Δ| ≥ 150, beyond the metric's range of 100)")
    assert fmt.verdict_text("not resolved", 150.0, "test.top1", range_scale=2, quantity="effect") == (
        "not resolved; this design had 80% power for |effect| ≥ 150")
    assert fmt.verdict_text("not resolved", float("nan"), "test.top1", test="none") == (
        "not resolved (too few seeds for a test)")
    assert fmt.verdict_text("not resolved", float("nan"), "test.top1") == (
        "not resolved (no spread across seeds: no t-test)")
    assert fmt.verdict_text("equivalent", 1.0, "test.top1", margin=0.5) == "equivalent (within ±0.5)"
    assert fmt.verdict_text("worse", 1.0, "test.top1") == "worse"


def test_the_number_formatter():
    from swin_lit.report import fmt

    assert fmt.num(-0.001, 2, sign=True) == "+0.00" and fmt.num(3.14159, 2) == "3.14"
    assert fmt.num(6900.4, 0, thousands=True) == "6,900" and fmt.num(float("nan"), 2) == fmt.DASH
    assert fmt.significant(1.28) == "1.28" and fmt.significant(137_000 / 1e3) == "137"
    assert fmt.format_p(0.0421) == "0.042" and fmt.format_p(0.0004) == "<0.001"
