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

from henasy.errors import BenchError, DataFormatError
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
            raise BenchError(f"Table {self.id} of the paper has no column {key!r}; columns: {', '.join(self.keys)}")
        return self.row(label).values[self.keys.index(key)]


def parse_printed(text: str) -> PaperValue:
    """A printed cell → value: decimal → float, "-" → None, "✓"/"✗" → True/False."""
    if text == NOT_REPORTED:
        return None
    if text in TICKS:
        return TICKS[text]
    return float(text)


def decimals(text: str) -> int:
    """Digits after the decimal point of a printed number ("26.0" → 1, "530" → 0)."""
    return len(text.partition(".")[2])


def _fail(path: Path, message: str, where: Any = None, key: Any = None, expected: str | None = None) -> None:
    from sweeps.spec import LineDict, LineList

    line = None
    if isinstance(where, LineDict):
        line = where.line_of(key) if key is not None else where.line
    elif isinstance(where, LineList):
        line = where.line
    elif isinstance(where, int):
        line = where
    raise DataFormatError(path, message, line=line, column=None if key is None else str(key), expected=expected)


def _mapping(path: Path, value: Any, what: str, allowed: tuple[str, ...], parent: Any, key: Any) -> Any:
    from sweeps.spec import LineDict

    if not isinstance(value, LineDict):
        _fail(path, f"{what} must be a mapping, got {type(value).__name__}", parent, key)
    for k in value:
        if k not in allowed:
            _fail(path, f"unknown key {k!r} in {what}", value, k, expected="one of " + ", ".join(allowed))
    return value


def _strings(path: Path, node: Any, key: str, what: str) -> tuple[str, ...]:
    from sweeps.spec import LineList

    value = node.get(key)
    if value is None:
        return ()
    if not isinstance(value, LineList) or not all(isinstance(v, str) for v in value):
        _fail(path, f"{what}.{key} must be a list of strings", node, key)
    return tuple(value)


def _text(path: Path, node: Any, key: str, what: str, *, required: bool = False) -> str:
    value = node.get(key)
    if value is None:
        if required:
            _fail(path, f"missing required key {key!r} in {what}", node)
        return ""
    if not isinstance(value, str):
        _fail(path, f"{what}.{key} must be a string, got {value!r}", node, key)
    return value


def _parse_table(path: Path, table_id: str, node: Any, parent: Any) -> PaperTable:
    from sweeps.spec import LineList

    what = f"tables.{table_id}"
    node = _mapping(path, node, what, TABLE_KEYS, parent, table_id)
    settings = _strings(path, node, "settings", what)
    columns_node = node.get("columns")
    if not isinstance(columns_node, LineList) or not columns_node:
        _fail(path, f"{what}.columns must be a non-empty list", node, "columns")
    columns = []
    for i, item in enumerate(columns_node):
        cw = f"{what}.columns[{i}]"
        item = _mapping(path, item, cw, COLUMN_KEYS, columns_node.item_lines[i], None)
        columns.append(
            PaperColumn(
                key=_text(path, item, "key", cw, required=True),
                group=_text(path, item, "group", cw),
                header=_text(path, item, "header", cw, required=True),
            )
        )
    keys = [c.key for c in columns]
    if len(set(keys)) != len(keys):
        _fail(path, f"{what}.columns names a key twice", node, "columns")
    rows_node = node.get("rows")
    if not isinstance(rows_node, LineList) or not rows_node:
        _fail(path, f"{what}.rows must be a non-empty list", node, "rows")
    rows = []
    for i, item in enumerate(rows_node):
        rw = f"{what}.rows[{i}]"
        item = _mapping(path, item, rw, ROW_KEYS, rows_node.item_lines[i], None)
        label = _text(path, item, "label", rw, required=True)
        printed = item.get("values")
        if not isinstance(printed, LineList) or not all(isinstance(v, str) for v in printed):
            _fail(path, f"{rw}.values must be a list of quoted strings, as printed", item, "values")
        if len(printed) != len(columns):
            _fail(
                path,
                f"{rw} ({label!r}) has {len(printed)} values for {len(columns)} columns",
                item,
                "values",
                expected="one printed value per column",
            )
        for j, text in enumerate(printed):
            if not (text == NOT_REPORTED or text in TICKS or NUMBER.match(text)):
                _fail(
                    path,
                    f"{rw} ({label!r}) value {text!r} for column {keys[j]!r} is not a printed cell",
                    printed.item_lines[j],
                    "values",
                    expected='a decimal number such as "26.0", "-" or "✓"/"✗"',
                )
        ticks = item.get("ticks")
        if settings or ticks is not None:
            if not isinstance(ticks, str) or len(ticks) != len(settings) or set(ticks) - set(TICKS):
                _fail(
                    path,
                    f"{rw} ({label!r}) ticks {ticks!r} do not match the settings {list(settings)}",
                    item,
                    "ticks",
                    expected=f"{len(settings)} characters, each ✓ or ✗",
                )
        model = item.get("project_model")
        if model is not None and not isinstance(model, str):
            _fail(path, f"{rw}.project_model must be a model name or null", item, "project_model")
        rows.append(
            PaperRow(
                label=label,
                printed=tuple(printed),
                values=tuple(parse_printed(t) for t in printed),
                project_model=model,
                ticks=ticks,
                line=rows_node.item_lines[i],
            )
        )
    labels = [r.label for r in rows]
    if len(set(labels)) != len(labels):
        _fail(path, f"{what}.rows has a label twice", node, "rows")
    return PaperTable(
        id=table_id,
        title=_text(path, node, "title", what, required=True),
        caption=_text(path, node, "caption", what),
        columns=tuple(columns),
        rows=tuple(rows),
        settings=settings,
        notes=_strings(path, node, "notes", what),
    )


def load_paper_numbers(path: str | Path | None = None) -> dict[str, PaperTable]:
    """All tables of the paper-numbers file (default: the shipped one), keyed by table id "1".."6"."""
    from sweeps.spec import load_yaml

    path = Path(path) if path is not None else PAPER_FILE
    if not path.is_file():
        raise BenchError(f"{path}: the paper-numbers file does not exist")
    data = load_yaml(path)
    top = _mapping(path, data, "the file", ("tables",), None, None)
    tables = _mapping(path, top.get("tables"), "tables", tuple(str(i) for i in range(1, 100)), top, "tables")
    return {str(k): _parse_table(path, str(k), v, tables) for k, v in tables.items()}


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
