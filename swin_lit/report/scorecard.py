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


DATA_NAMES = {"synthetic": "embedded scenes", "cifar": "CIFAR", "folder": "image folders", "idx": "IDX",
              "camvid": "CamVid", "ade20k": "ADE20K"}


def _data_label(report) -> str:
    """'CamVid, 0.52 M params' from the trained cells' configs and records."""
    data = report.data
    dc = data.data_config
    source = str(dc.get("source", "data not recorded"))
    label = DATA_NAMES.get(source, source)
    if source == "synthetic" and dc.get("task") == "segmentation":
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
            claim = (f"{r['variant']} ({r['method']}) vs the baseline at W{int(r['window_size'])}/"
                     f"I{int(r['img_size'])} ({r['ratio']:g}x, {ft}); paper {r['paper_target']}")
            out.append(Claim(data.name, claim, "test.top1", f"{_fmt(r['paper_delta'])} ({tsource})",
                             f"{_fmt(r['delta'])} [{_fmt(r['ci_low'])}, {_fmt(r['ci_high'])}]",
                             f"{setting}, n={int(r['n'])} seed pairs", r["reproduction"], link))
    return out


def study_folders(root: Path) -> list[Path]:
    """The folders under ``root`` (itself included) that hold a study storage."""
    found = [p.parent for p in sorted(root.rglob(JOURNAL_FILE))] + [p.parent for p in sorted(root.rglob(SQLITE_FILE))]
    return sorted(set(found))


def scorecard(root: str | Path) -> tuple[list[Claim], list[tuple[str, str]]]:
    """(every claim of the studies under ``root``, [(study folder, why it gave none)])."""
    from swin_lit.report.build import make_report

    root = Path(root)
    if not root.is_dir():
        raise BadInput(f"{root}: not a folder of studies (e.g. results/)")
    claims, skipped = [], []
    for folder in study_folders(root):
        link = str(folder.relative_to(root) / "report.md")
        try:
            report = make_report(folder, out=folder)
        except BadInput as err:
            skipped.append((str(folder), str(err)))
            continue
        mine = claims_of(report, link)
        if not mine:
            skipped.append((str(folder), "its spec names no paper numbers with an ordering"))
        claims += mine
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
