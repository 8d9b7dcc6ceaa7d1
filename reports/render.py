"""Render a filled table (``reports.collect.TableData``) as Markdown, LaTeX (booktabs), CSV, JSON or HTML.

Every format carries the same cells: for each row the measured value, the paper's value (its printed text)
and the difference measured − paper, in the paper's units; an empty measured cell shows its status
(``not run``, ``failed``, ``partial`` …) and the reasons are listed under the table. The best value of each
column is marked (bold) separately among the measured and among the paper values, following the column's
``better`` direction (lm-eval's ↑/↓ header arrows).

JSON (``--format json``): ``{"id", "title", "columns", "headers", "units", "rows": [{"label", "paper",
"measured", "diff", "status", "reasons", "paper_row", "reference", "source"}], "notes"}`` with ``null`` for
an empty cell; a reference-only row has ``measured`` all null.
"""

from __future__ import annotations

import csv
import html
import io
import json
from typing import Any

from reports.collect import RowData, TableData
from reports.spec import ColumnSpec

FORMATS = ("md", "latex", "csv", "json", "html")
EXTENSIONS = {"md": "md", "latex": "tex", "csv": "csv", "json": "json", "html": "html"}
ARROWS = {"higher": " ↑", "lower": " ↓", "none": ""}
TICK = {True: "✓", False: "✗"}


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


def _best(values: list[Any], better: str) -> set[int]:
    """Indices holding the best number of a column (ties all marked); none for better = none."""
    numbers = {i: v for i, v in enumerate(values) if isinstance(v, (int, float)) and not isinstance(v, bool)}
    if better == "none" or len(numbers) < 2:
        return set()
    if len(set(numbers.values())) == 1:
        return set()  # all equal: nothing stands out
    target = max(numbers.values()) if better == "higher" else min(numbers.values())
    return {i for i, v in numbers.items() if v == target}


def best_marks(table: TableData) -> tuple[list[set[int]], list[set[int]]]:
    """(per column: rows with the best measured value, rows with the best paper value)."""
    measured, paper = [], []
    for i, col in enumerate(table.spec.columns):
        measured.append(_best([r.measured[i].value for r in table.rows], col.better))
        paper.append(_best([r.paper[i] for r in table.rows], col.better))
    return measured, paper


def _lines(table: TableData, row: RowData) -> list[str]:
    """Which lines a row gets: measured / paper / Δ (a reference row, or --paper-only: paper only)."""
    if table.paper_only or row.spec.reference:
        return ["paper"]
    has_diff = any(row.diff(i) is not None for i in range(len(row.measured)))
    return ["measured", "paper", "Δ"] if has_diff else ["measured", "paper"]


def cell_texts(table: TableData) -> list[tuple[RowData, str, list[tuple[str, bool]]]]:
    """Every printed line of the table: (row, line kind, [(text, is_best)] per column)."""
    best_m, best_p = best_marks(table)
    out = []
    for r, row in enumerate(table.rows):
        for kind in _lines(table, row):
            cells = []
            for i, col in enumerate(table.spec.columns):
                if kind == "measured":
                    cell = row.measured[i]
                    text = format_value(cell.value, col.precision) if cell.status == "ok" else cell.status
                    cells.append((text, cell.status == "ok" and r in best_m[i]))
                elif kind == "paper":
                    cells.append((row.printed[i], r in best_p[i]))
                else:
                    d = row.diff(i)
                    cells.append(("" if d is None else format_diff(d, col.precision), False))
            out.append((row, kind, cells))
    return out


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
    units = sorted({c.metric.split(".")[0] for c in table.spec.columns if c.unit == "fraction"})
    if units and not table.paper_only:
        notes.append(f"{', '.join(units)} records are fractions, shown ×100 as the paper prints percentages")
    notes.extend(f"paper: {n}" for n in table.spec.paper.notes)
    return notes


def _header(col: ColumnSpec) -> str:
    return f"{col.title}{ARROWS[col.better]}"


def _caption(table: TableData) -> str:
    spec = table.spec
    what = "paper values" if table.paper_only else "measured vs paper, Δ = measured − paper"
    return f"Table {spec.id}: {spec.title} ({what})"


# ------------------------------------------------------------------------------------------------ formats
def to_markdown(table: TableData) -> str:
    cols = table.spec.columns
    lines = [f"**{_caption(table)}**", ""]
    lines.append("| Row | | " + " | ".join(_header(c) for c in cols) + " |")
    lines.append("|---|---|" + "---:|" * len(cols))
    for row, kind, cells in cell_texts(table):
        label = row.spec.label if kind == _lines(table, row)[0] else ""
        texts = [
            f"**{t}**" if best else (f"_{t}_" if kind == "measured" and t in _STATUSES else t)
            for t, best in cells
        ]
        lines.append(f"| {label} | {kind} | " + " | ".join(texts) + " |")
    notes = footnotes(table)
    if notes:
        lines.append("")
        lines.extend(f"- {n}" for n in notes)
    return "\n".join(lines) + "\n"


_STATUSES = {
    "not run",
    "running",
    "failed",
    "partial",
    "no metric",
    "nan",
    "unit mismatch",
    "not measured",
    "not declared",
}

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
    "−": "-",
}


def latex_escape(text: str) -> str:
    return "".join(_LATEX_ESCAPES.get(ch, ch) for ch in text)


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
        f"\\caption{{{latex_escape(_caption(table))}}}",
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
        for text, best in cells:
            t = latex_escape(text)
            if kind == "measured" and text in _STATUSES:
                t = f"\\emph{{{t}}}"
            texts.append(f"\\textbf{{{t}}}" if best else t)
        lines.append(f"{label} & {latex_escape(kind)} & " + " & ".join(texts) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}", "\\end{table}"]
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
    "run_id",
    "scale",
)


def to_csv(table: TableData) -> str:
    """Long format: one line per (row, column) cell, values in printed units."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in table.rows:
        for i, col in enumerate(table.spec.columns):
            cell = row.measured[i]
            d = row.diff(i)
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
                    "run_id": row.source.get("run_id", ""),
                    "scale": row.source.get("scale", ""),
                }
            )
    return buf.getvalue()


def _json_number(value: Any) -> Any:
    if value is None or isinstance(value, bool):
        return value
    return round(float(value), 10)


def to_json_obj(table: TableData) -> dict[str, Any]:
    """The machine-readable table (see the module docstring)."""
    spec = table.spec
    rows = []
    for row in table.rows:
        diffs = [row.diff(i) for i in range(len(spec.columns))]
        rows.append(
            {
                "label": row.spec.label,
                "paper_row": row.spec.paper_row,
                "reference": row.spec.reference,
                "paper": [_json_number(v) for v in row.paper],
                "measured": [_json_number(c.value) for c in row.measured],
                "diff": [_json_number(d) for d in diffs],
                "status": [c.status for c in row.measured],
                "reasons": [c.reason for c in row.measured],
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
        "rows": rows,
        "notes": footnotes(table),
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
        for i, (text, best) in enumerate(cells):
            t = f"<b>{esc(text)}</b>" if best else esc(text)
            reason = row.measured[i].reason if kind == "measured" else ""
            title = f' title="{esc(reason)}"' if reason else ""
            tds.append(f'<td class="{kind if kind != "Δ" else "diff"}"{title}>{t}</td>')
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
