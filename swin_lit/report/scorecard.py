"""The scorecard: which of the papers' claims reproduce here, one row per claim a stored study tests.

A claim is a paper row's difference to its baseline row on a metric of a study's spec (``paper:``), or a
transfer method's difference at a target (``transfer.paper:``). Each row gives the paper's Δ and where it comes
from, our Δ with its 95% interval (paired by seed, as the study's report), the data set, the model size and the
seeds behind it, and the verdict of the report (``swin_lit.stats.reproduction``: agrees / contradicts / not
resolved; the Holm family is the study's). Everything is recomputed from the studies' storages by the same code
as the reports (``swin_lit.report.build.make_report``), so the scorecard cannot disagree with them.

A study whose storage holds no finished cell, or whose spec names no paper numbers, contributes no row; the
scorecard says which studies it read and which it skipped, and why.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from swin_lit import stats
from swin_lit.data.config import EMBEDDED_SOURCES
from swin_lit.errors import BadInput
from swin_lit.study import JOURNAL_FILE, SQLITE_FILE

BEGIN, END = "<!-- scorecard:begin -->", "<!-- scorecard:end -->"


@dataclass(frozen=True)
class Claim:
    study: str
    claim: str
    metric: str
    paper: str  # the paper's Δ and its source
    ours: str  # our Δ [95% interval]
    setting: str  # data set, model size, seeds
    verdict: str
    link: str


def _fmt(x: float) -> str:
    return f"{x:+.2f}" if math.isfinite(x) else "—"


DATA_NAMES = {"synthetic": "embedded scenes", "marks": "embedded anchor marks", "cifar": "CIFAR",
              "folder": "image folders", "idx": "IDX",
              "camvid": "CamVid", "ade20k": "ADE20K"}


def _data_label(report) -> str:
    """'CamVid, 0.52 M params' from the trained cells' configs and records."""
    data = report.data
    dc = data.data_config
    source = str(dc.get("source", "data not recorded"))
    label = DATA_NAMES.get(source, source)
    if source in EMBEDDED_SOURCES and dc.get("task") == "segmentation":
        label += " (dense)"
    if source == "folder" and "cifar" in str(dc.get("root") or "").lower():
        label = "CIFAR-10 (image folders)"
    params = data.runs["params"].median() if "params" in data.runs.columns and len(data.runs) else math.nan
    size = f"{params / 1e6:.2f} M params" if math.isfinite(params) else "params not recorded"
    return f"{label}, {size}"


def claims_of(report, link: str) -> list[Claim]:
    """The claims one study's report tests."""
    data = report.data
    out = []
    setting = _data_label(report)
    source = (data.paper.source if data.paper is not None else None) or "source not in the stored spec"
    for mc in report.comparisons:
        for variant, verdict in mc.reproduction.items():
            if verdict == stats.NO_ORDERING:
                continue
            c = mc.comparisons[variant]
            out.append(Claim(data.name, f"{variant} vs {data.baseline}", mc.metric,
                             f"{_fmt(mc.paper_delta[variant])} ({source})",
                             f"{_fmt(c.estimate)} [{_fmt(c.low)}, {_fmt(c.high)}]",
                             f"{setting}, n={c.n} seed pairs", verdict, link))
    tests = report.transfer_tests
    if not tests.empty:
        tp = data.transfer_paper
        tsource = (tp.source if tp is not None else None) or "source not in the stored spec"
        for _, r in tests.iterrows():
            if not r["reproduction"] or r["reproduction"] == stats.NO_ORDERING:
                continue
            ft = "with FT" if r["finetuned"] else "without FT"
            versus = "the baseline" if r["versus"] == data.baseline else f"{r['versus']} ({r['versus_method']})"
            claim = (f"{r['variant']} ({r['method']}) vs {versus} at W{int(r['window_size'])}/"
                     f"I{int(r['img_size'])} ({r['ratio']:g}x, {ft}); paper {r['paper_target']}")
            out.append(Claim(data.name, claim, f"test.{data.transfer_metric}", f"{_fmt(r['paper_delta'])} ({tsource})",
                             f"{_fmt(r['delta'])} [{_fmt(r['ci_low'])}, {_fmt(r['ci_high'])}]",
                             f"{setting}, n={int(r['n'])} seed pairs", r["reproduction"], link))
    return out


def study_folders(root: Path) -> list[Path]:
    """The folders under ``root`` (itself included) that hold a study storage."""
    found = [p.parent for p in sorted(root.rglob(JOURNAL_FILE))] + [p.parent for p in sorted(root.rglob(SQLITE_FILE))]
    return sorted(set(found))


def _objective(report):
    return next((mc for mc in report.comparisons if mc.metric == report.data.objective), None)


def _variant(data, name: str) -> str | None:
    """A study's variant called ``name`` (factorial names in any order of their parts)."""
    from swin_lit.study import find_variant

    return find_variant(list(data.variants), name, bool(data.spec.get("factors")))


def _effects(mc, variant: str, baseline: str) -> list[float]:
    """Per-seed Δ of ``variant`` to ``baseline`` (the seeds both finished)."""
    a, b = mc.values.get(variant, {}), mc.values.get(baseline, {})
    return [a[s] - b[s] for s in sorted(set(a) & set(b)) if math.isfinite(a[s]) and math.isfinite(b[s])]


def counterpart_claims(report, link: str, others: dict) -> tuple[list[Claim], str | None]:
    """The claims that one of ``report``'s effects is larger than the same change's in its ``counterpart:``
    study (``others``: study name -> (report, link)); (claims, why there are none, or None)."""
    cp = report.data.spec.get("counterpart")
    if not cp:
        return [], None
    if cp["study"] not in others:
        return [], f"its counterpart study {cp['study']!r} is not among the studies read"
    other, _ = others[cp["study"]]
    ours, theirs = _objective(report), _objective(other)
    if ours is None or theirs is None:
        return [], "no comparison on the objective in it or its counterpart"
    rows, dropped = [], []
    for mine_named, their_named in cp["rows"].items():
        mine, their = _variant(report.data, mine_named), _variant(other.data, their_named)
        if mine is None or their is None:
            dropped.append(f"{their_named!r} is not a variant of {other.data.name}" if mine is not None
                           else f"{mine_named!r} is not a variant of {report.data.name}")
            continue
        a = _effects(ours, mine, report.data.baseline)
        b = _effects(theirs, their, other.data.baseline)
        if len(a) < 2 or len(b) < 2:
            dropped.append(f"{mine} or {their}: fewer than 2 finished seed pairs")
            continue
        pa, pb = ours.paper_delta.get(mine, math.nan), theirs.paper_delta.get(their, math.nan)
        rows.append((mine, their, stats.welch(a, b), pa - pb, len(a), len(b)))
    why = "; ".join(dropped) if dropped else None
    if not rows:
        return [], why
    adjusted = stats.holm([r[2].p for r in rows])
    source = report.data.paper.source if report.data.paper is not None else "source not in the stored spec"
    other_source = other.data.paper.source if other.data.paper is not None else "source not in the stored spec"
    out = []
    for (mine, their, c, paper, na, nb), p in zip(rows, adjusted):
        claim = f"effect of {mine} here minus that of {their} in {other.data.name}"
        out.append(Claim(report.data.name, claim, f"{ours.metric} - {theirs.metric}",
                         f"{_fmt(paper)} ({source} minus {other_source})", f"{_fmt(c.estimate)} [{_fmt(c.low)}, "
                         f"{_fmt(c.high)}] (Welch)", f"{_data_label(report)} vs {_data_label(other)}, n={na} and "
                         f"{nb} seeds", stats.reproduction(paper, c, p, report.data.alpha), link))
    return out, why


def scorecard(root: str | Path) -> tuple[list[Claim], list[tuple[str, str]]]:
    """(every claim of the studies under ``root``, [(study folder, why it gave none)])."""
    from swin_lit.report.build import make_report

    root = Path(root)
    if not root.is_dir():
        raise BadInput(f"{root}: not a folder of studies (e.g. results/)")
    reports, skipped = [], []
    for folder in study_folders(root):
        try:
            reports.append((make_report(folder, out=folder), str(folder.relative_to(root) / "report.md"), folder))
        except BadInput as err:
            skipped.append((str(folder), str(err)))
    by_name = {report.data.name: (report, link) for report, link, _ in reports}
    claims = []
    for report, link, folder in reports:
        mine = claims_of(report, link)
        cross, why = counterpart_claims(report, link, by_name)
        if why is not None:
            skipped.append((str(folder), f"no counterpart rows: {why}"))
        if not mine and not cross:
            skipped.append((str(folder), "its spec names no paper numbers with an ordering"))
        claims += mine + cross
    return claims, skipped


def markdown(claims: list[Claim], skipped: list[tuple[str, str]], link_prefix: str = "") -> str:
    """The scorecard as a Markdown table, one summary line first, the skipped studies after."""
    verdicts = [c.verdict for c in claims]
    studies = len({c.study for c in claims})
    lines = [f"{stats.reproduction_summary(verdicts)} ({len(claims)} claim{'s' if len(claims) != 1 else ''} from "
             f"{studies} stud{'ies' if studies != 1 else 'y'}; generated by `swin-lit scorecard`).", ""]
    lines += ["| study | claim | metric | paper Δ (source) | ours Δ [95% CI] | data, model, seeds | verdict |",
              "|---|---|---|---|---|---|---|"]
    for c in claims:
        cells = [f"[{c.study}]({link_prefix}{c.link})", c.claim, c.metric, c.paper, c.ours, c.setting, c.verdict]
        lines.append("| " + " | ".join(s.replace("|", "\\|") for s in cells) + " |")
    if skipped:
        lines += ["", "Studies without a row: " + "; ".join(f"`{f}` ({why})" for f, why in skipped) + "."]
    return "\n".join(lines) + "\n"


def update_readme(path: Path, table: str) -> None:
    """Replace the text between the scorecard markers of a README with ``table`` (BadInput without them)."""
    text = path.read_text()
    if BEGIN not in text or END not in text:
        raise BadInput(f"{path}: no scorecard markers ({BEGIN} ... {END}) to write between")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    path.write_text(f"{head}{BEGIN}\n{table}{END}{tail}")
