"""Rendering: a ``Table`` (heading, columns, string cells, bold cells, caption) as Markdown or ASCII LaTeX."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from swin_lit.report import captions
from swin_lit.report.fmt import DASH


@dataclass
class Table:
    """A formatted table: ``columns`` headings, ``rows`` of strings, ``bold`` (row, column) cells, an optional
    group header (``groups``: (title, span) over the columns, for LaTeX and Markdown headings alike)."""

    title: str
    caption: str
    columns: list[str]
    rows: list[list[str]]
    label: str
    bold: set[tuple[int, int]] = field(default_factory=set)
    groups: list[tuple[str, int]] | None = None
    notes: list[str] = field(default_factory=list)  # sentences printed after the table
    keys: list[str] = field(default_factory=list)  # a key per column, where the columns have keys
    brief: str = ""  # the caption in report.md, where a shared explanation precedes the table (else: caption)
    cell_width: int = 18  # LaTeX: cells longer than this many characters are stacked on lines
    rules: set[int] = field(default_factory=set)  # LaTeX: a \midrule after these rows

    def select(self, keep: list[int]) -> Table:
        """The same table with only the columns ``keep`` (indices)."""
        where = {old: new for new, old in enumerate(keep)}
        return Table(self.title, self.caption, [self.columns[i] for i in keep],
                     [[r[i] for i in keep] for r in self.rows], self.label,
                     {(r, where[c]) for r, c in self.bold if c in where}, None, list(self.notes),
                     [self.keys[i] for i in keep] if self.keys else [], self.brief, self.cell_width)



# -- rendering ---------------------------------------------------------------------------------------------


def markdown(table: Table) -> str:
    """A pipe table; bold cells in ``**``; group headings (if any) folded into the column names."""
    columns = list(table.columns)
    if table.groups:
        names, i = [], 0
        for title, span in table.groups:
            for _ in range(span):
                names.append(f"{title} {columns[i]}".strip() if title else columns[i])
                i += 1
        columns = names + columns[i:]
    def cell(r: int, c: int, s: str) -> str:
        s = s.replace("|", "\\|")  # a pipe inside a cell would end it
        return f"**{s}**" if (r, c) in table.bold and s not in (DASH, "missing", "") else s

    frame = pd.DataFrame([[cell(r, c, s) for c, s in enumerate(row)] for r, row in enumerate(table.rows)],
                         columns=_unique([c.replace("|", "\\|") for c in columns]))
    return frame.to_markdown(index=False, disable_numparse=True)


def _unique(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for n in names:
        seen[n] = seen.get(n, 0) + 1
        out.append(n if seen[n] == 1 else f"{n} ({seen[n]})")
    return out


_LATEX = {
    "\\": "\\textbackslash{}", "&": "\\&", "%": "\\%", "$": "\\$", "#": "\\#", "_": "\\_", "{": "\\{", "}": "\\}",
    "~": "\\textasciitilde{}", "^": "\\textasciicircum{}", "<": "$<$", ">": "$>$", "|": "$|$",
    "±": "$\\pm$", "×": "$\\times$", "−": "$-$", "–": "--", "—": "---", "…": "\\ldots{}", "·": "$\\cdot$",
    "≈": "$\\approx$", "≤": "$\\le$", "≥": "$\\ge$", "≠": "$\\ne$", "→": "$\\to$", "←": "$\\leftarrow$",
    "°": "$^\\circ$", "²": "$^2$", "³": "$^3$", "µ": "$\\mu$", "\u00a0": "~", "“": "``", "”": "''", "‘": "`",
    "’": "'", "ß": "\\ss{}", "æ": "\\ae{}", "Æ": "\\AE{}", "ø": "\\o{}", "Ø": "\\O{}", "ł": "\\l{}", "Ł": "\\L{}",
    "œ": "\\oe{}", "Œ": "\\OE{}", "†": "\\dag{}", "‡": "\\ddag{}", "§": "\\S{}", "¶": "\\P{}", "©": "\\copyright{}",
    "√": "$\\surd$", "∞": "$\\infty$",
    **{g: f"$\\{n}$" for g, n in zip("αβγδεζηθικλμνξπρστυφχψωΓΔΘΛΞΠΣΦΨΩ",
                                    ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota",
                                     "kappa", "lambda", "mu", "nu", "xi", "pi", "rho", "sigma", "tau", "upsilon",
                                     "phi", "chi", "psi", "omega", "Gamma", "Delta", "Theta", "Lambda", "Xi", "Pi",
                                     "Sigma", "Phi", "Psi", "Omega"])},
}
_ACCENTS = {"\u0301": "'", "\u0300": "`", "\u0302": "^", "\u0308": '"', "\u0303": "~", "\u0304": "=", "\u0307": ".",
            "\u0327": "c", "\u030c": "v", "\u0306": "u", "\u030a": "r", "\u030b": "H", "\u0328": "k"}


def latex_escape(text: str) -> str:
    """Plain text -> ASCII LaTeX for pdflatex: special characters escaped, symbols as math, accented letters
    as accent commands; any other non-ASCII character becomes a visible ``[U+XXXX]``."""
    import re
    import unicodedata

    out = []
    for ch in str(text):
        if ch in _LATEX:
            out.append(_LATEX[ch])
        elif ord(ch) < 128:
            out.append(ch)
        else:
            parts = unicodedata.normalize("NFD", ch)
            base, marks = parts[0], parts[1:]
            if ord(base) < 128 and marks and all(m in _ACCENTS for m in marks):
                piece = base if base not in "ij" else f"\\{base}"
                for m in marks:
                    piece = f"\\{_ACCENTS[m]}{{{piece}}}"
                out.append(piece)
            else:
                out.append(f"[U+{ord(ch):04X}]")
    joined = "".join(out)
    joined = re.sub(r"(?<![\w\\])-(?=[\d.])", "$-$", joined)  # a minus sign, not a hyphen
    return re.sub(r"(?<!\\)\$\$", "", joined)  # adjacent math joined: $|$$\Delta$ -> $|\Delta$


GLUE = {"±", "<", ">", "≤", "≥", "−", "=", "≈"}  # never a line break beside these
LEFT = {"/", "×"}  # nor before these


def wrap(text: str, width: int = 18) -> list[str]:
    """Lines of about ``width`` characters for a LaTeX cell: broken at spaces outside brackets (a bracketed
    interval or remark stays on one line when it fits, else breaks after its commas), never beside ``±``,
    ``<``, ``×`` and the like."""
    tokens, depth, current = [], 0, ""
    for ch in str(text):
        depth += ch in "[(" and 1 or 0
        depth -= ch in "])" and 1 or 0
        if ch == " " and depth == 0:
            tokens.append(current)
            current = ""
        else:
            current += ch
    tokens.append(current)
    glued: list[str] = []
    for tok in tokens:
        if glued and (tok in GLUE | LEFT or glued[-1].split(" ")[-1] in GLUE):
            glued[-1] += " " + tok
        else:
            glued.append(tok)
    pieces = []
    for tok in glued:  # a bracketed piece longer than a line breaks after its commas
        pieces += tok.replace(", ", ",\0").split("\0") if len(tok) > width and tok[:1] in "[(" else [tok]
    lines = [pieces[0]]
    for piece in pieces[1:]:
        if len(lines[-1]) + 1 + len(piece) > width:
            lines.append(piece)
        else:
            lines[-1] += " " + piece
    return lines


def _latex_cell(text: str, align: str, width: int) -> str:
    lines = [latex_escape(line) for line in wrap(text, width)]
    if len(lines) == 1:
        return lines[0]
    # "\\ \relax": a line starting with "[" must not read as the optional argument of "\\"
    return f"\\begin{{tabular}}[t]{{@{{}}{align}@{{}}}}" + " \\\\ \\relax ".join(lines) + "\\end{tabular}"


def latex(table: Table) -> str:
    """A booktabs ``table`` float in footnotesize; long cells stacked on lines of about ``cell_width`` characters;
    the whole scaled down to the line width only when still wider (graphicx ``\\resizebox``)."""
    import re

    def numeric(c: int) -> bool:
        cells = [row[c] for row in table.rows if row[c] and row[c] not in (DASH, "baseline")]
        return bool(cells) and all(re.match(r"[-+<\d]", x) for x in cells)

    align = ["r" if c > 0 and numeric(c) else "l" for c in range(len(table.columns))]

    def cell(r: int, c: int, s: str) -> str:
        text = _latex_cell(s, align[c], table.cell_width)
        return f"\\textbf{{{text}}}" if (r, c) in table.bold and s.strip() else text

    lines = ["\\begin{table}[htbp]", "\\centering", "\\footnotesize", "\\setlength{\\tabcolsep}{4pt}",
             f"\\caption{{{latex_escape(table.caption)}}}", f"\\label{{{_label(table.label)}}}",
             "\\resizebox{\\ifdim\\width>\\linewidth\\linewidth\\else\\width\\fi}{!}{%",
             f"\\begin{{tabular}}{{{''.join(align)}}}", "\\toprule"]
    if table.groups and any(title for title, _ in table.groups):
        heads, rules, col = [], [], 1
        for title, span in table.groups:
            heads.append(f"\\multicolumn{{{span}}}{{c}}{{{latex_escape(title)}}}" if span > 1 else latex_escape(title))
            if title:
                rules.append(f"\\cmidrule(lr){{{col}-{col + span - 1}}}")
            col += span
        lines += [" & ".join(heads) + " \\\\", " ".join(rules)]
    lines.append(" & ".join(_latex_cell(c, align[i], 12) for i, c in enumerate(table.columns)) + " \\\\")
    lines.append("\\midrule")
    for r, row in enumerate(table.rows):
        lines.append(" & ".join(cell(r, c, s) for c, s in enumerate(row)) + " \\\\")
        if r in table.rules and r < len(table.rows) - 1:
            lines.append("\\midrule")
    lines += ["\\bottomrule", "\\end{tabular}}", "\\end{table}", ""]
    return "\n".join(lines)


def _label(label: str) -> str:
    return "".join(ch if ch.isascii() and (ch.isalnum() or ch in ":-.") else "-" for ch in label)


LATEX_PREAMBLE = captions.LATEX_PREAMBLE.fill()  # what table.tex starts with
