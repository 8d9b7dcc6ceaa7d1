"""The paper's reference numbers: HENASY Tables 1–6 (NeurIPS 2024, §5 and Appendix D), loaded and checked.

The numbers live in ``reports/paper_numbers.yaml``, transcribed once, as printed strings ("26.0", "-",
"✓"), so that a rendered paper cell is exactly the printed text and a parsed value is exact up to float
conversion. Loading is strict: a malformed entry raises ``DataFormatError`` naming the file, line and key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from henasy.core.errors import BenchError
from henasy.core.specfile import LineList, SpecChecker, load_yaml
from reports import REPORTS_ROOT

PAPER_FILE = REPORTS_ROOT / "paper_numbers.yaml"
NOT_REPORTED = "-"  # the paper's dash
TICKS = {"✓": True, "✗": False}
NUMBER = re.compile(r"^-?\d+(\.\d+)?$")
TABLE_KEYS = ("title", "caption", "columns", "rows", "settings", "notes")
COLUMN_KEYS = ("key", "group", "header")
ROW_KEYS = ("label", "values", "project_model", "ticks")

PaperValue = float | bool | None


@dataclass(frozen=True)
class PaperColumn:
    """One printed value column: the metric key this project logs, its spanning group and header."""

    key: str
    group: str
    header: str


@dataclass(frozen=True)
class PaperRow:
    """One printed row: its label, the printed strings and their parsed values (None for "-")."""

    label: str
    printed: tuple[str, ...]
    values: tuple[PaperValue, ...]
    project_model: str | None
    ticks: str | None
    line: int


@dataclass(frozen=True)
class PaperTable:
    """One of the paper's tables as printed."""

    id: str
    title: str
    caption: str
    columns: tuple[PaperColumn, ...]
    rows: tuple[PaperRow, ...]
    settings: tuple[str, ...]
    notes: tuple[str, ...]

    @property
    def keys(self) -> list[str]:
        return [c.key for c in self.columns]

    def row(self, label: str) -> PaperRow:
        """The row printed as ``label``; an unknown label lists the table's labels."""
        for row in self.rows:
            if row.label == label:
                return row
        raise BenchError(
            f"Table {self.id} of the paper has no row {label!r}; rows: {', '.join(r.label for r in self.rows)}"
        )

    def value(self, label: str, key: str) -> PaperValue:
        """The parsed value of row ``label``, column ``key`` (None where the paper prints "-")."""
        if key not in self.keys:
            raise BenchError(
                f"Table {self.id} of the paper has no column {key!r}; columns: {', '.join(self.keys)}"
            )
        return self.row(label).values[self.keys.index(key)]


def parse_printed(text: str) -> PaperValue:
    """A printed cell → value: decimal → float, "-" → None, "✓"/"✗" → True/False."""
    if text == NOT_REPORTED:
        return None
    if text in TICKS:
        return TICKS[text]
    return float(text)


def _parse_row(
    c: SpecChecker, item: Any, what: str, columns: list[PaperColumn], settings: tuple[str, ...], line: int
) -> PaperRow:
    item = c.mapping(item, what, ROW_KEYS, parent=line, required=True)
    label = c.text(item, "label", what, required=True)
    printed = item.get("values")
    if not isinstance(printed, LineList) or not all(isinstance(v, str) for v in printed):
        c.fail(f"{what}.values must be a list of quoted strings, as printed", item, "values")
    if len(printed) != len(columns):
        c.fail(
            f"{what} ({label!r}) has {len(printed)} values for {len(columns)} columns",
            item,
            "values",
            expected="one printed value per column",
        )
    for j, text in enumerate(printed):
        if not (text == NOT_REPORTED or text in TICKS or NUMBER.match(text)):
            c.fail(
                f"{what} ({label!r}) value {text!r} for column {columns[j].key!r} is not a printed cell",
                printed.item_lines[j],
                "values",
                expected='a decimal number such as "26.0", "-" or "✓"/"✗"',
            )
    ticks = item.get("ticks")
    if settings or ticks is not None:
        if not isinstance(ticks, str) or len(ticks) != len(settings) or set(ticks) - set(TICKS):
            c.fail(
                f"{what} ({label!r}) ticks {ticks!r} do not match the settings {list(settings)}",
                item,
                "ticks",
                expected=f"{len(settings)} characters, each ✓ or ✗",
            )
    return PaperRow(
        label=label,
        printed=tuple(printed),
        values=tuple(parse_printed(t) for t in printed),
        project_model=c.text(item, "project_model", what),
        ticks=ticks,
        line=line,
    )


def _parse_table(c: SpecChecker, table_id: str, node: Any, parent: Any) -> PaperTable:
    what = f"tables.{table_id}"
    node = c.mapping(node, what, TABLE_KEYS, parent=parent, key=table_id, required=True)
    settings = c.strings(node, "settings", what)
    columns_node = c.items(node, "columns", what)
    columns = []
    for i, item in enumerate(columns_node):
        cw = f"{what}.columns[{i}]"
        item = c.mapping(item, cw, COLUMN_KEYS, parent=columns_node.item_lines[i], required=True)
        columns.append(
            PaperColumn(
                key=c.text(item, "key", cw, required=True),
                group=c.text(item, "group", cw, empty_ok=True) or "",
                header=c.text(item, "header", cw, required=True),
            )
        )
    keys = [col.key for col in columns]
    if len(set(keys)) != len(keys):
        c.fail(f"{what}.columns names a key twice", node, "columns")
    rows_node = c.items(node, "rows", what)
    rows = [
        _parse_row(c, item, f"{what}.rows[{i}]", columns, settings, rows_node.item_lines[i])
        for i, item in enumerate(rows_node)
    ]
    labels = [r.label for r in rows]
    if len(set(labels)) != len(labels):
        c.fail(f"{what}.rows has a label twice", node, "rows")
    return PaperTable(
        id=table_id,
        title=c.text(node, "title", what, required=True),
        caption=c.text(node, "caption", what, empty_ok=True) or "",
        columns=tuple(columns),
        rows=tuple(rows),
        settings=settings,
        notes=c.strings(node, "notes", what),
    )


def load_paper_numbers(path: str | Path | None = None) -> dict[str, PaperTable]:
    """All tables of the paper-numbers file (default: the shipped one), keyed by table id "1".."6"."""
    path = Path(path) if path is not None else PAPER_FILE
    if not path.is_file():
        raise BenchError(f"{path}: the paper-numbers file does not exist")
    c = SpecChecker(path)
    top = c.mapping(load_yaml(path), "the file", ("tables",), required=True)
    tables = c.mapping(
        top.get("tables"),
        "tables",
        tuple(str(i) for i in range(1, 100)),
        parent=top,
        key="tables",
        required=True,
    )
    return {str(k): _parse_table(c, str(k), v, tables) for k, v in tables.items()}


@lru_cache(maxsize=1)
def _shipped() -> dict[str, PaperTable]:
    return load_paper_numbers()


def paper_table(table_id: str | int) -> PaperTable:
    """One table of the shipped paper numbers (``"1"`` … ``"6"``)."""
    tables = _shipped()
    key = str(table_id)
    if key not in tables:
        raise BenchError(f"the paper has no Table {table_id}; tables: {', '.join(tables)}")
    return tables[key]
