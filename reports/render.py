"""Render a filled table (``reports.collect.TableData``) as Markdown, LaTeX (booktabs), CSV, JSON or HTML.

Every format carries the same cells: for each row the measured value with its 95 % confidence interval
(``value ± half-width``; ``reports.intervals``), the paper's value (its printed text), the difference
measured − paper (line ``Δ paper``) and the difference from the table's reference row with its paired
interval (line ``Δ ref``), in the paper's units; an empty measured cell shows its status (``not run``,
``failed``, ``partial`` …) and the reasons are listed under the table. Bold marks only what the intervals
support: a ``Δ ref`` whose interval excludes 0, and a measured value that is significantly better than every
other measured row of its column (following the column's ``better`` direction, lm-eval's ↑/↓ arrows). The
paper's values are never bold (the paper's own bold marks its best numbers without intervals).

JSON (``--format json``): ``{"id", "title", "columns", "headers", "units", "reference_row", "intervals",
"rows": [{"label", "paper", "measured", "ci95", "diff", "vs_reference", "significant_best", "status",
"reasons", "ci_notes", "paper_row", "reference", "source"}], "notes"}`` with ``null`` for an empty cell;
``ci95`` holds ``[low, high]`` per column (null: no interval, ``ci_notes`` says why); ``vs_reference`` is
``{"row", "diff", "ci95", "significant"}`` (null for the reference row itself); a reference-only row has
``measured`` all null.

LaTeX (booktabs) compiles as-is: one caption without a "Table N:" prefix (LaTeX numbers it), ``$-$`` for a
minus sign, loss names as math (``L_ego`` → ``$\\mathcal{L}_{ego}$``, as the paper writes them).
"""

from __future__ import annotations

import csv
import html
import io
import json
import re
from dataclasses import dataclass
from typing import Any

from reports.collect import RowData, TableData
from reports.intervals import confidence_text
from reports.spec import ColumnSpec

FORMATS = ("md", "latex", "csv", "json", "html")
EXTENSIONS = {"md": "md", "latex": "tex", "csv": "csv", "json": "json", "html": "html"}
ARROWS = {"higher": " ↑", "lower": " ↓", "none": ""}
TICK = {True: "✓", False: "✗"}
CONFIDENCE_TEXT = confidence_text()  # "95 %": the level reports.intervals computes


# -------------------------------------------------------------------------------------------- cell text
def format_value(value: Any, precision: int) -> str:
    if isinstance(value, bool):
        return TICK[value]
    return f"{value:.{precision}f}"


def format_diff(value: float, precision: int) -> str:
    """Signed difference at ``precision`` decimals; one that rounds to zero prints as +0.0 (never -0.0)."""
    if round(value, precision) == 0:
        value = 0.0
    return f"{value:+.{precision}f}"


def ci_half_width(ci: tuple[float, float] | None, precision: int) -> str:
    """``± h`` with h = half the interval's width (percentile intervals may be slightly asymmetric)."""
    return "" if ci is None else f"± {(ci[1] - ci[0]) / 2:.{precision}f}"


def format_interval(ci: tuple[float, float] | None, precision: int) -> str:
    return "" if ci is None else f"[{format_diff(ci[0], precision)}, {format_diff(ci[1], precision)}]"


@dataclass(frozen=True)
class CellText:
    """One printed cell: the number (or status), what follows it (± h, [lo, hi]) and whether it is bold."""

    main: str
    extra: str = ""
    bold: bool = False
    status: bool = False  # main is a status word (not run, failed …), shown in italics

    @property
    def text(self) -> str:
        return f"{self.main} {self.extra}" if self.extra else self.main


def _lines(table: TableData, row: RowData) -> list[str]:
    """Which lines a row gets: measured / paper / Δ paper / Δ ref (a reference row, --paper-only: paper only)."""
    if table.paper_only or row.spec.reference:
        return ["paper"]
    lines = ["measured", "paper"]
    if any(row.diff(i) is not None for i in range(len(row.measured))):
        lines.append("Δ paper")
    if row.vs_reference is not None and any(d is not None for d in row.vs_reference.diff):
        lines.append("Δ ref")
    return lines


def _cell(table: TableData, r: int, row: RowData, kind: str, i: int) -> CellText:
    col = table.spec.columns[i]
    if kind == "measured":
        cell = row.measured[i]
        if cell.status != "ok":
            return CellText(cell.status, status=True)
        best = bool(table.significant_best) and r in table.significant_best[i]
        return CellText(
            format_value(cell.value, col.precision), ci_half_width(row.ci[i], col.precision), best
        )
    if kind == "paper":
        return CellText(row.printed[i])
    if kind == "Δ paper":
        d = row.diff(i)
        return CellText("" if d is None else format_diff(d, col.precision))
    comparison = row.vs_reference
    d = comparison.diff[i]
    if d is None:
        return CellText("")
    significant = comparison.significant[i]
    return CellText(
        format_diff(d, col.precision), format_interval(comparison.ci[i], col.precision), bool(significant)
    )


def cell_texts(table: TableData) -> list[tuple[RowData, str, list[CellText]]]:
    """Every printed line of the table: (row, line kind, one ``CellText`` per column)."""
    out = []
    for r, row in enumerate(table.rows):
        for kind in _lines(table, row):
            out.append((row, kind, [_cell(table, r, row, kind, i) for i in range(len(table.spec.columns))]))
    return out


def _reference_label(table: TableData) -> str | None:
    """The label of the table's reference row (the row every Δ ref is taken against), None without one."""
    return table.rows[table.reference].spec.label if table.reference is not None else None


def footnotes(table: TableData) -> list[str]:
    """Notes on where values came from and why cells are empty (one line per row and distinct reason)."""
    notes = list(table.notes)
    for row in table.rows:
        if row.run is not None and row.source.get("run_id"):
            src = row.source
            notes.append(
                f"{row.spec.label}: MLflow run {src['run_id'][:8]} ({src['status']}, scale {src['scale'] or '?'}, "
                f"model {src['model'] or '?'}, commit {str(src['git_commit'])[:10] or '?'})"
            )
        elif row.source.get("device"):
            src = row.source
            notes.append(
                f"{row.spec.label}: {src['model']} on {src['device']}, {src.get('dtype')}, torch {src.get('torch')}"
            )
        seen: set[tuple[str, str]] = set()
        for i, cell in enumerate(row.measured):
            if cell.status in ("ok", "reference", "paper only") or not cell.reason:
                continue
            key = (cell.status, cell.reason)
            if key in seen:
                continue
            seen.add(key)
            same = [c for c in row.measured if (c.status, c.reason) == key]
            where = "" if len(same) == len(row.measured) else f" [{table.spec.columns[i].metric}]"
            notes.append(f"{row.spec.label}{where}: {cell.status}: {cell.reason}")
    if table.intervals is not None:
        ref = _reference_label(table)
        notes.append(table.intervals.footnote(ref))
        for row in table.rows:
            seen_ci: set[str] = set()
            for i, cell in enumerate(row.measured):
                why = row.item_notes[i]
                if cell.status == "ok" and row.ci[i] is None and why and why not in seen_ci:
                    seen_ci.add(why)
                    notes.append(f"{row.spec.label} [{table.spec.columns[i].metric}]: no interval: {why}")
            if row.vs_reference is not None:
                notes.extend(f"{row.spec.label}: Δ ref {n}" for n in row.vs_reference.notes)
    units = sorted({c.metric.split(".")[0] for c in table.spec.columns if c.unit == "fraction"})
    if units and not table.paper_only:
        notes.append(f"{', '.join(units)} records are fractions, shown ×100 as the paper prints percentages")
    notes.extend(f"paper: {n}" for n in table.spec.paper.notes)
    return notes


def _header(col: ColumnSpec) -> str:
    return f"{col.title}{ARROWS[col.better]}"


def _caption(table: TableData, numbered: bool = True) -> str:
    """The caption; ``numbered=False`` for LaTeX, whose \\caption numbers the table itself."""
    spec = table.spec
    if table.paper_only:
        what = "paper values"
    else:
        what = f"measured ± {CONFIDENCE_TEXT} CI vs paper; Δ paper = measured − paper"
        ref = _reference_label(table)
        if ref is not None:
            what += f"; Δ ref = row − {ref}"
    text = f"{spec.title} ({what})"
    return f"Table {spec.id}: {text}" if numbered else text


# ------------------------------------------------------------------------------------------------ formats
def to_markdown(table: TableData) -> str:
    cols = table.spec.columns
    lines = [f"**{_caption(table)}**", ""]
    lines.append("| Row | | " + " | ".join(_header(c) for c in cols) + " |")
    lines.append("|---|---|" + "---:|" * len(cols))
    for row, kind, cells in cell_texts(table):
        label = row.spec.label if kind == _lines(table, row)[0] else ""
        texts = [f"**{c.text}**" if c.bold else (f"_{c.text}_" if c.status else c.text) for c in cells]
        lines.append(f"| {label} | {kind} | " + " | ".join(texts) + " |")
    notes = footnotes(table)
    if notes:
        lines.append("")
        lines.extend(f"- {n}" for n in notes)
    return "\n".join(lines) + "\n"


_LATEX_ESCAPES = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "Δ": r"$\Delta$",
    "↑": r"$\uparrow$",
    "↓": r"$\downarrow$",
    "✓": r"\checkmark",
    "✗": r"$\times$",
    "×": r"$\times$",
    "−": "$-$",
    "±": r"$\pm$",
}
_LOSS_NAME = re.compile(r"\bL_([A-Za-z]+)\b")  # L_ego, L_NEC, L_VEC, L_proj (paper Eq. 10)
_NEGATIVE = re.compile(r"(?<![\w.])-(?=\d)")  # a minus sign before a number, not a hyphen inside a word


def latex_escape(text: str) -> str:
    """Escape LaTeX specials; loss names become math (``$\\mathcal{L}_{ego}$``), a number's minus ``$-$``."""
    parts = []
    last = 0
    for match in _LOSS_NAME.finditer(text):
        parts.append(_escape_plain(text[last : match.start()]))
        parts.append(f"$\\mathcal{{L}}_{{{match.group(1)}}}$")
        last = match.end()
    parts.append(_escape_plain(text[last:]))
    return "".join(parts).replace("$ + $", " + ")  # "L_ego + L_NEC": one formula, math spacing


def _escape_plain(text: str) -> str:
    return "".join(_LATEX_ESCAPES.get(ch, ch) for ch in _NEGATIVE.sub("−", text))


def _groups(cols: tuple[ColumnSpec, ...]) -> list[tuple[str, int, int]]:
    """Runs of consecutive columns sharing a spanning group: (group, first, last) 0-based."""
    out: list[tuple[str, int, int]] = []
    for i, col in enumerate(cols):
        if out and out[-1][0] == col.group:
            out[-1] = (col.group, out[-1][1], i)
        else:
            out.append((col.group, i, i))
    return out


def to_latex(table: TableData) -> str:
    cols = table.spec.columns
    lines = [
        "% requires \\usepackage{booktabs} (and amssymb for \\checkmark)",
        "\\begin{table}[t]",
        "\\centering",
        "\\small",
        f"\\caption{{{latex_escape(_caption(table, numbered=False))}}}",
        f"\\label{{tab:henasy-bench-{table.spec.id}}}",
        "\\begin{tabular}{ll" + "r" * len(cols) + "}",
        "\\toprule",
    ]
    groups = _groups(cols)
    if any(g for g, _, _ in groups):
        spans = []
        rules = []
        for group, first, last in groups:
            width = last - first + 1
            spans.append(
                f"\\multicolumn{{{width}}}{{c}}{{{latex_escape(group)}}}"
                if width > 1
                else latex_escape(group)
            )
            if group:
                rules.append(f"\\cmidrule(lr){{{first + 3}-{last + 3}}}")
        lines.append(" & & " + " & ".join(spans) + " \\\\")
        lines.append(" ".join(rules))
    headers = [latex_escape(c.header + ARROWS[c.better]) for c in cols]
    lines.append("Method & & " + " & ".join(headers) + " \\\\")
    lines.append("\\midrule")
    previous = None
    for row, kind, cells in cell_texts(table):
        if previous is not None and row is not previous:
            lines.append("\\addlinespace")
        previous = row
        first = kind == _lines(table, row)[0]
        label = latex_escape(row.spec.label) if first else ""
        texts = []
        for c in cells:
            t = latex_escape(c.main)
            if c.status:
                t = f"\\emph{{{t}}}"
            elif c.bold and t:
                t = f"\\textbf{{{t}}}"
            if c.extra:
                t += f"\\,{{\\scriptsize {latex_escape(c.extra)}}}"
            texts.append(t)
        lines.append(f"{label} & {latex_escape(kind)} & " + " & ".join(texts) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}"]
    if table.intervals is not None:
        ref = _reference_label(table)
        lines.append(f"\\par\\smallskip{{\\footnotesize {latex_escape(table.intervals.footnote(ref))}.}}")
    lines.append("\\end{table}")
    notes = footnotes(table)
    if notes:
        lines.append("% notes:")
        lines.extend(f"% - {n}" for n in notes)
    return "\n".join(lines) + "\n"


CSV_FIELDS = (
    "table",
    "row",
    "paper_row",
    "column",
    "metric",
    "record_unit",
    "paper",
    "measured",
    "diff",
    "status",
    "reason",
    "ci95_low",
    "ci95_high",
    "reference_row",
    "diff_vs_reference",
    "diff_vs_reference_ci95_low",
    "diff_vs_reference_ci95_high",
    "run_id",
    "scale",
)


def to_csv(table: TableData) -> str:
    """Long format: one line per (row, column) cell, values in printed units."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in table.rows:
        comparison = row.vs_reference
        for i, col in enumerate(table.spec.columns):
            cell = row.measured[i]
            d = row.diff(i)
            ci = row.ci[i] or (None, None)
            ref_diff = None if comparison is None else comparison.diff[i]
            ref_ci = (None if comparison is None else comparison.ci[i]) or (None, None)
            writer.writerow(
                {
                    "table": table.spec.id,
                    "row": row.spec.label,
                    "paper_row": row.spec.paper_row,
                    "column": col.title,
                    "metric": col.metric,
                    "record_unit": col.unit,
                    "paper": row.printed[i] if row.paper[i] is not None else "",
                    "measured": "" if cell.value is None else _json_number(cell.value),
                    "diff": "" if d is None else repr(round(d, 10)),
                    "status": cell.status,
                    "reason": cell.reason,
                    "ci95_low": _csv_number(ci[0]),
                    "ci95_high": _csv_number(ci[1]),
                    "reference_row": "" if comparison is None else comparison.reference,
                    "diff_vs_reference": _csv_number(ref_diff),
                    "diff_vs_reference_ci95_low": _csv_number(ref_ci[0]),
                    "diff_vs_reference_ci95_high": _csv_number(ref_ci[1]),
                    "run_id": row.source.get("run_id", ""),
                    "scale": row.source.get("scale", ""),
                }
            )
    return buf.getvalue()


def _csv_number(value: float | None) -> str:
    return "" if value is None else repr(round(float(value), 10))


def _json_interval(ci: tuple[float, float] | None) -> list[float] | None:
    return None if ci is None else [round(float(ci[0]), 10), round(float(ci[1]), 10)]


def _json_number(value: Any) -> Any:
    if value is None or isinstance(value, bool):
        return value
    return round(float(value), 10)


def to_json_obj(table: TableData) -> dict[str, Any]:
    """The machine-readable table (see the module docstring)."""
    spec = table.spec
    rows = []
    for r, row in enumerate(table.rows):
        diffs = [row.diff(i) for i in range(len(spec.columns))]
        rows.append(
            {
                "label": row.spec.label,
                "paper_row": row.spec.paper_row,
                "reference": row.spec.reference,
                "paper": [_json_number(v) for v in row.paper],
                "measured": [_json_number(c.value) for c in row.measured],
                "ci95": [_json_interval(ci) for ci in row.ci],
                "diff": [_json_number(d) for d in diffs],
                "vs_reference": _json_comparison(row),
                "significant_best": [r in best for best in table.significant_best]
                if table.significant_best
                else [False] * len(spec.columns),
                "status": [c.status for c in row.measured],
                "reasons": [c.reason for c in row.measured],
                "ci_notes": [
                    why if c.status == "ok" and ci is None else ""
                    for c, ci, why in zip(row.measured, row.ci, row.item_notes)
                ],
                "source": row.source,
            }
        )
    return {
        "id": int(spec.id),
        "title": spec.title,
        "paper_only": table.paper_only,
        "columns": spec.metrics,
        "headers": [c.title for c in spec.columns],
        "units": [c.unit for c in spec.columns],
        "reference_row": _reference_label(table),
        "intervals": None if table.intervals is None else table.intervals.to_json(),
        "rows": rows,
        "notes": footnotes(table),
    }


def _json_comparison(row: RowData) -> dict[str, Any] | None:
    comparison = row.vs_reference
    if comparison is None:
        return None
    return {
        "row": comparison.reference,
        "diff": [_json_number(d) for d in comparison.diff],
        "ci95": [_json_interval(ci) for ci in comparison.ci],
        "significant": comparison.significant,
        "notes": comparison.notes,
    }


def to_json(table: TableData) -> str:
    return json.dumps(to_json_obj(table), indent=2, ensure_ascii=False) + "\n"


def to_html(table: TableData) -> str:
    esc = html.escape
    cols = table.spec.columns
    out = [
        '<table class="bench-table">',
        f"<caption>{esc(_caption(table))}</caption>",
        "<thead><tr><th>Row</th><th></th>"
        + "".join(f"<th>{esc(_header(c))}</th>" for c in cols)
        + "</tr></thead>",
        "<tbody>",
    ]
    for row, kind, cells in cell_texts(table):
        label = esc(row.spec.label) if kind == _lines(table, row)[0] else ""
        tds = []
        for i, c in enumerate(cells):
            t = f"<b>{esc(c.text)}</b>" if c.bold else (f"<i>{esc(c.text)}</i>" if c.status else esc(c.text))
            reason = row.measured[i].reason if kind == "measured" else ""
            if kind == "measured" and row.ci[i] is not None:
                reason = f"{CONFIDENCE_TEXT} CI {format_interval(row.ci[i], cols[i].precision + 1)}"
            title = f' title="{esc(reason)}"' if reason else ""
            css = {"Δ paper": "diff", "Δ ref": "diff-ref"}.get(kind, kind)
            tds.append(f'<td class="{css}"{title}>{t}</td>')
        out.append(f"<tr><th>{label}</th><td>{esc(kind)}</td>{''.join(tds)}</tr>")
    out.append("</tbody>")
    out.append("</table>")
    notes = footnotes(table)
    if notes:
        out.append('<ul class="bench-notes">' + "".join(f"<li>{esc(n)}</li>" for n in notes) + "</ul>")
    return "\n".join(out) + "\n"


RENDERERS = {"md": to_markdown, "latex": to_latex, "csv": to_csv, "json": to_json, "html": to_html}


def render(table: TableData, fmt: str) -> str:
    """The table in ``fmt`` (one of ``FORMATS``)."""
    if fmt not in RENDERERS:
        raise ValueError(f"unknown format {fmt!r}; formats: {', '.join(FORMATS)}")
    return RENDERERS[fmt](table)
