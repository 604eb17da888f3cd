"""The scorecard: what the stored studies say about the papers' claims, in three sections that are never pooled.

A claim is one of a study's comparisons with the paper's Δ between the same rows (``paper:`` or
``transfer.paper:`` in its spec). Everything is recomputed from the studies' storages by the same code as the
reports (``swin_lit.report.build.make_report``).

- **One row per distinct measurement.** Two studies that ran the same cells (the same config hash and seed for
  every run on both sides of the comparison, e.g. ``quick`` and ``swin_v1_table4``) share one row, which lists
  both studies; nothing is counted twice.
- **Mechanism checks** (studies on an embedded task built to need the switches, ``reproduction.kind_of``): the
  verdict of the study's report, behaves as designed / does not / not resolved / untestable; no paper Δ, no
  reproduction count.
- **Reproductions on natural data**: per claim the paper's Δ and its size relative to the paper's number, ours
  with the unadjusted 95% interval and the simultaneous one of the study's Holm family (both clipped to what the
  metric allows), the p-value and the Benjamini-Hochberg q across the family of every testable reproduction here
  (the rows neither within the paper's noise nor untestable), and the scale gap. Verdicts
  (``reproduction.reproduction_verdict``): agrees / contradicts at q <= alpha, else smaller than the paper's /
  consistent with both from the unadjusted interval; untestable and within-noise rows are not tests.
- **Exploratory**: rows where the paper's Δ is within its own test-set noise (no ordering to check), whatever
  the data; shown with our numbers, no verdict counted.

The spec's ``counterpart:`` blocks (a dense study's effect minus a classification study's, in different units
on different data) are not scored: such a claim needs one study with task x switch on the same images.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path

from swin_lit import stats
from swin_lit.data.sources import embedded
from swin_lit.errors import BadInput
from swin_lit.report import captions
from swin_lit.report import reproduction as rp
from swin_lit.report.fmt import clip_difference, format_p, num, short_label
from swin_lit.report.setting import scale_gap
from swin_lit.study import JOURNAL_FILE, SQLITE_FILE

BEGIN, END = "<!-- scorecard:begin -->", "<!-- scorecard:end -->"
EXPLORATORY = "exploratory"
DATA_NAMES = {"synthetic": "embedded scenes", "marks": "embedded anchor marks", "cifar": "CIFAR",
              "folder": "image folders", "idx": "IDX", "camvid": "CamVid", "ade20k": "ADE20K"}


@dataclass(frozen=True)
class Row:
    """One distinct measurement with the paper's Δ beside it."""

    section: str  # rp.MECHANISM, rp.REPRODUCTION or EXPLORATORY
    studies: tuple[str, ...]
    links: tuple[str, ...]
    claim: str
    metric: str
    source: str
    paper_delta: float
    paper_base: float
    noise: float  # the paper's own 95% half-width (NaN: unknown)
    estimate: float
    low: float  # unadjusted 95%, clipped
    high: float
    sim_low: float  # simultaneous over the study's Holm family, clipped
    sim_high: float
    p: float
    setting: str  # data set, model size, seeds
    gap: str  # scale gap to the paper
    study_verdict: str  # the verdict of the study's report
    untestable: str | None
    key: tuple = ()
    q: float = math.nan  # Benjamini-Hochberg, reproductions only
    verdict: str = ""

    @property
    def relative(self) -> float:
        return 100 * self.paper_delta / self.paper_base if self.paper_base else math.nan

    @property
    def within_noise(self) -> bool:
        return self.paper_delta == 0 or (math.isfinite(self.noise) and abs(self.paper_delta) <= self.noise)


@dataclass
class Scorecard:
    rows: list[Row] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    alpha: float = 0.05
    changed: frozenset = frozenset()  # studies whose spec was changed after results were seen

    def section(self, name: str) -> list[Row]:
        return [r for r in self.rows if r.section == name]


def _data_label(report) -> str:
    """'CamVid, 1.80 M params' from the trained cells' configs and records."""
    data = report.data
    dc = data.data_config
    source = str(dc.get("source", "data not recorded"))
    label = DATA_NAMES.get(source, source)
    if data.task_facts.dense and embedded(source):
        label += " (dense)"
    if source == "folder" and "cifar" in str(dc.get("root") or "").lower():
        label = "CIFAR-10 (image folders)"
    params = data.runs["params"].median() if "params" in data.runs.columns and len(data.runs) else math.nan
    size = captions.MODEL_SIZE.fill(params=num(params / 1e6, 2)) if math.isfinite(params) else "params not recorded"
    return f"{label}, {size}"


def _runs_key(data, variant: str) -> tuple:
    """The measurement behind one variant: its runs' (config hash, seed), sorted; (study, variant) where the
    hashes are not recorded or do not tell this study's variants apart."""
    def key(v: str) -> tuple | None:
        runs = data.runs[data.runs["variant"] == v] if len(data.runs) else data.runs
        if "config_hash" not in runs.columns or runs.empty or runs["config_hash"].isna().any():
            return None
        return tuple(sorted((str(h), int(s)) for h, s in zip(runs["config_hash"], runs["seed"])))

    mine = key(variant)
    others = [key(v) for v in data.variants if v != variant]
    if mine is None or mine in others:
        return ((data.name, variant),)
    return mine


def _untestable(verdict: str) -> str | None:
    if verdict.startswith(rp.UNTESTABLE + " ("):
        return verdict[len(rp.UNTESTABLE) + 2:-1]
    return None


def rows_of(report, link: str) -> list[Row]:
    """The claims one study's report tests, one row each (before deduplication and BH)."""
    data = report.data
    kind = report.kind
    label = _data_label(report)
    gap = scale_gap(data)
    out = []
    by_metric = {mc.metric: mc for mc in report.comparisons}
    source = (data.paper.source if data.paper is not None else None) or captions.NO_STORED_PAPER_SOURCE.fill()
    for check in report.checks:
        mc = by_metric[check.metric]
        c = mc.comparisons[check.variant]
        key = ("comparison", check.metric, _runs_key(data, check.variant), _runs_key(data, data.baseline))
        claim = f"{short_label(check.variant)} vs {short_label(data.baseline)}"
        out.append(Row(kind, (data.name,), (link,), claim, check.metric, source,
                       check.paper_delta, check.paper_base, check.noise, c.estimate, *mc.clipped[check.variant],
                       *mc.clipped_simultaneous[check.variant], c.p, f"{label}, n={c.n} seed pairs", gap,
                       check.verdict, check.untestable, key))
    tests = report.transfer_tests
    if not tests.empty:
        from swin_lit.report.setting import paper_noise

        tp = data.transfer_paper
        tsource = (tp.source if tp is not None else None) or captions.NO_STORED_PAPER_SOURCE.fill()
        metric = f"test.{data.transfer_metric}"
        for _, r in tests.iterrows():
            if not r["reproduction"] or not math.isfinite(r["paper_delta"]):
                continue
            ft = "with FT" if r["finetuned"] else "without FT"
            versus = ("the baseline" if r["versus"] == data.baseline
                      else f"{short_label(r['versus'])} ({r['versus_method']})")
            claim = captions.TRANSFER_CLAIM.fill(
                variant=short_label(r["variant"]), method=r["method"], versus=versus, window=int(r["window_size"]),
                img=int(r["img_size"]), ratio=captions.setting(r["ratio"]), ft=ft, target=r["paper_target"])
            key = ("transfer", metric, bool(r["finetuned"]), int(r["img_size"]), int(r["window_size"]),
                   r["method"], r["versus_method"], _runs_key(data, r["variant"]), _runs_key(data, r["versus"]))
            low, high = clip_difference(r["ci_low"], r["ci_high"], metric, r["versus_mean"])
            sim = clip_difference(r["sim_low"], r["sim_high"], metric, r["versus_mean"])
            out.append(Row(kind, (data.name,), (link,), claim, metric, tsource, r["paper_delta"], r["paper_base"],
                           paper_noise(tsource, r["paper_base"]), r["delta"], low, high, *sim, r["p"],
                           f"{label}, n={int(r['n'])} seed pairs", gap, r["reproduction"],
                           _untestable(r["reproduction"]), key))
    return out


def deduplicate(rows: list[Row]) -> list[Row]:
    """One row per measurement key, in first-seen order; the studies that share it listed together."""
    merged: dict[tuple, Row] = {}
    for row in rows:
        if row.key in merged:
            first = merged[row.key]
            merged[row.key] = replace(first, studies=first.studies + row.studies, links=first.links + row.links)
        else:
            merged[row.key] = row
    return list(merged.values())


def judge(rows: list[Row], alpha: float) -> list[Row]:
    """Sections and verdicts: within-noise rows are exploratory; mechanism checks keep their study's verdict;
    reproductions get BH q across the testable ones and the reproduction verdict from it."""
    out = []
    for row in rows:
        if row.within_noise:
            out.append(replace(row, section=EXPLORATORY, verdict=""))
        elif row.section == rp.MECHANISM:
            out.append(replace(row, verdict=row.study_verdict))
        else:
            out.append(row)
    testable = [i for i, r in enumerate(out) if r.section == rp.REPRODUCTION and not r.untestable]
    qs = stats.benjamini_hochberg([out[i].p for i in testable])
    for i, q in zip(testable, qs):
        r = out[i]
        resolved = math.isfinite(q) and q <= alpha
        verdict = rp.reproduction_verdict(r.paper_delta, r.noise, r.estimate, r.low, r.high, resolved)
        out[i] = replace(r, q=q, verdict=verdict)
    for i, r in enumerate(out):
        if r.section == rp.REPRODUCTION and r.untestable:
            out[i] = replace(r, verdict=f"{rp.UNTESTABLE} ({r.untestable})")
    return out


def study_folders(root: Path) -> list[Path]:
    """The folders under ``root`` (itself included) that hold a study storage."""
    found = [p.parent for p in sorted(root.rglob(JOURNAL_FILE))] + [p.parent for p in sorted(root.rglob(SQLITE_FILE))]
    return sorted(set(found))


def scorecard(root: str | Path, alpha: float = 0.05) -> Scorecard:
    """Every claim of the studies under ``root``, deduplicated, in its section, with its verdict."""
    from swin_lit.report.build import make_report

    root = Path(root)
    if not root.is_dir():
        raise BadInput(captions.NOT_A_FOLDER.fill(root=str(root)))
    card = Scorecard(alpha=alpha)
    rows = []
    for folder in study_folders(root):
        try:
            report = make_report(folder, out=folder)
        except BadInput as err:
            card.skipped.append((str(folder), str(err)))
            continue
        if report.data.spec_history:
            card.changed = card.changed | {report.data.name}
        mine = rows_of(report, str(folder.relative_to(root) / "report.md"))
        if not mine:
            card.skipped.append((str(folder), captions.NO_PAPER_NUMBERS.fill()))
        if report.data.spec.counterpart is not None:
            card.skipped.append((str(folder), captions.COUNTERPART_NOT_SCORED.fill()))
        rows += mine
    card.rows = judge(deduplicate(rows), alpha)
    return card


# -- Markdown ------------------------------------------------------------------------------------------------


def _studies(row: Row, prefix: str, changed: frozenset = frozenset()) -> str:
    """Links to the studies of a row; "†" marks a study whose spec was changed after results were seen."""
    return ", ".join(f"[{s}]({prefix}{link})" + (" †" if s in changed else "")
                     for s, link in zip(row.studies, row.links))


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|")


def _table(columns: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    return out + ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]


def _ours(row: Row) -> str:
    interval = f" [{num(row.low, 2, sign=True)}, {num(row.high, 2, sign=True)}]" if math.isfinite(row.low) else ""
    return f"{num(row.estimate, 2, sign=True)}{interval}"


def _sim(row: Row) -> str:
    return f"[{num(row.sim_low, 2, sign=True)}, {num(row.sim_high, 2, sign=True)}]" if math.isfinite(
        row.sim_low) else "—"


def _paper(row: Row) -> str:
    rel = f" ({num(row.relative, 1, sign=True)}% of {num(row.paper_base, 1)})" if math.isfinite(row.relative) else ""
    return f"{num(row.paper_delta, 2, sign=True)}{rel}"


def _count_studies(rows: list[Row]) -> int:
    return len({s for r in rows for s in r.studies})


def headlines(card: Scorecard) -> dict[str, str]:
    """Each section's headline, counted within the section only."""
    mech, repro, expl = (card.section(s) for s in (rp.MECHANISM, rp.REPRODUCTION, EXPLORATORY))
    tested = [r for r in repro if math.isfinite(r.q)]
    out = {
        rp.MECHANISM: captions.MECHANISM_HEADLINE.fill(
            summary=rp.summary([r.verdict for r in mech], rp.MECHANISM), n=len(mech), s=captions.plural(len(mech)),
            studies=_count_studies(mech), ies=captions.plural(_count_studies(mech), "ies") or "y"),
        rp.REPRODUCTION: captions.REPRODUCTION_HEADLINE.fill(
            summary=rp.summary([r.verdict for r in repro], rp.REPRODUCTION), studies=_count_studies(repro),
            ies=captions.plural(_count_studies(repro), "ies") or "y", alpha=captions.setting(card.alpha),
            tested=len(tested), s=captions.plural(len(tested))),
        EXPLORATORY: captions.EXPLORATORY_HEADLINE.fill(n=len(expl), s=captions.plural(len(expl))),
    }
    return out


def markdown(card: Scorecard, link_prefix: str = "") -> str:
    """The scorecard as Markdown: a headline and a table per section; the skipped studies after."""
    heads = headlines(card)
    total = len(card.rows)
    lines = [captions.SCORECARD_INTRO.fill(n=total, s=captions.plural(total), studies=_count_studies(card.rows)), ""]
    lines += ["## Mechanism checks", "", heads[rp.MECHANISM], ""]
    mech = card.section(rp.MECHANISM)
    if mech:
        lines += _table(["studies", "claim", "metric", captions.OURS_DELTA.fill(), "simultaneous (study's family)",
                         "data, model, seeds", "verdict"],
                        [[_studies(r, link_prefix, card.changed), r.claim, r.metric, _ours(r), _sim(r), r.setting,
                          r.verdict] for r in mech])
        lines.append("")
    lines += [captions.REPRODUCTIONS_SECTION.fill(), "", heads[rp.REPRODUCTION], ""]
    repro = card.section(rp.REPRODUCTION)
    if repro:
        lines += _table(["studies", "claim", "metric", captions.PAPER_DELTA_RELATIVE.fill(),
                         captions.OURS_DELTA_UNADJUSTED.fill(),
                         "simultaneous (study's family)", "p", "BH q", "data, model, seeds", "scale gap", "verdict"],
                        [[_studies(r, link_prefix, card.changed), r.claim, r.metric, f"{_paper(r)} [{r.source}]",
                          _ours(r), _sim(r), format_p(r.p), format_p(r.q), r.setting, r.gap or "—", r.verdict]
                         for r in repro])
        lines.append("")
    lines += ["## Exploratory", "", heads[EXPLORATORY], ""]
    expl = card.section(EXPLORATORY)
    if expl:
        lines += _table(["studies", "claim", "metric", captions.PAPER_DELTA_NOISE.fill(),
                         captions.OURS_DELTA.fill(),
                         "data, model, seeds"],
                        [[_studies(r, link_prefix, card.changed), r.claim, r.metric,
                          f"{num(r.paper_delta, 2, sign=True)} (±{num(r.noise, 2)}) [{r.source}]", _ours(r),
                          r.setting] for r in expl])
        lines.append("")
    lines += [captions.SCORECARD_NOTES.fill()]
    if card.changed:
        lines += ["", captions.SCORECARD_CHANGED.fill()]
    if card.skipped:
        lines += ["", captions.SCORECARD_SKIPPED.fill(studies="; ".join(f"`{f}` ({why})" for f, why in card.skipped))]
    return "\n".join(lines) + "\n"


def update_readme(path: Path, table: str) -> None:
    """Replace the text between the scorecard markers of a README with ``table`` (BadInput without them)."""
    text = path.read_text()
    if BEGIN not in text or END not in text:
        raise BadInput(f"{path}: no scorecard markers ({BEGIN} ... {END}) to write between")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    path.write_text(f"{head}{BEGIN}\n{table}{END}{tail}")
