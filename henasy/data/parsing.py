"""Strict parsing helpers shared by the annotation loaders (CSV/TSV tables, cells, JSON key paths).

The official readers (EgoVLP's ``pd.read_csv(..., error_bad_lines=False)`` + ``eval`` on list cells,
LaViLa's ``csv.reader`` + ``int(row[10])``) either skip bad rows silently or fail with a bare traceback.
Here every problem becomes a ``DataFormatError`` naming the file, the 1-based line, the column or the JSON
key path, and what was expected. List cells are parsed with ``ast.literal_eval`` (never ``eval``).

Cells and JSON values that become parts of file paths (video ids, clip ids, mask files) are checked to be
safe names (``path_component_column``, ``JsonNode.as_path_component``; see ``henasy.data.paths``), so an
annotation cannot make a loader open a file outside the dataset root.

Line numbers assume one record per physical line (no quoted newlines), which holds for every format here.
"""

from __future__ import annotations

import ast
import json
import math
import re
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NoReturn

import numpy as np

from henasy.core.errors import DataFormatError
from henasy.data.paths import SAFE_NAME_HELP, path_component_problem, relative_path_problem

_INT_LIST_RE = re.compile(r"^\[\s*(?:[+-]?\d+\s*(?:,\s*[+-]?\d+\s*)*,?\s*)?\]$")
_TIMESTAMP_RE = re.compile(r"^(\d+):([0-5]?\d):([0-5]?\d(?:\.\d*)?)$")
_SKIPPED_LINE_RE = re.compile(r"Skipping line (\d+)")
_BAD_LINE_RE = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")
_UNSAFE_NAME_RE = r"[/\\\x00-\x1f\x7f]|^\.\.?$"  # vectorised path_component_problem (pandas str.contains)


def require_file(path: str | Path, what: str) -> Path:
    """``path`` as a Path; a ``DataFormatError`` saying what the file is if it does not exist."""
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, f"{what} not found", expected="an existing file; check the dataset root")
    return path


# --------------------------------------------------------------------------------------------- tables


@dataclass
class Table:
    """A CSV/TSV file read as strings, with the 1-based file line of every row and any skipped lines."""

    path: Path
    frame: Any  # pandas.DataFrame of str cells, one column per header field
    lines: np.ndarray  # (N,) int64: file line of each row
    skipped_lines: list[int]  # lines dropped with bad_lines="skip"

    def __len__(self) -> int:
        return len(self.frame)

    def column(self, name: str) -> list[str]:
        """The cells of one column as Python strings."""
        return self.frame[name].astype(str).tolist()

    def fail(self, row: int, column: str | None, message: str, expected: str | None = None) -> NoReturn:
        """Raise a ``DataFormatError`` for row ``row`` (0-based) of this table."""
        raise DataFormatError(self.path, message, line=int(self.lines[row]), column=column, expected=expected)


def read_table(
    path: str | Path,
    required: Sequence[str],
    *,
    sep: str = ",",
    what: str = "table",
    bad_lines: Literal["raise", "skip"] = "raise",
    header: Sequence[str] | None = None,
) -> Table:
    """Read a delimited text file as strings and check that every ``required`` column is present.

    ``header`` gives column names for a file without a header line. With ``bad_lines="skip"`` rows with
    too many fields are dropped and listed in ``Table.skipped_lines`` (EgoVLP reads egoclip.csv with
    ``error_bad_lines=False``); the default raises. Fully blank lines are ignored.
    """
    import pandas as pd

    path = require_file(path, what)
    kwargs: dict[str, Any] = dict(
        sep=sep, dtype=str, keep_default_na=False, na_filter=False, skip_blank_lines=False, engine="c"
    )
    if header is not None:
        kwargs.update(header=None, names=list(header))
    skipped: list[int] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            frame = pd.read_csv(path, on_bad_lines="warn" if bad_lines == "skip" else "error", **kwargs)
        for w in caught:
            skipped += [int(n) for n in _SKIPPED_LINE_RE.findall(str(w.message))]
    except pd.errors.EmptyDataError:
        raise DataFormatError(
            path, "the file is empty", expected=f"a header line with {list(required)}"
        ) from None
    except pd.errors.ParserError as exc:
        m = _BAD_LINE_RE.search(str(exc))
        if m:
            raise DataFormatError(
                path,
                f"a row has {m.group(3)} fields but the header has {m.group(1)}",
                line=int(m.group(2)),
                expected=f"{sep!r}-separated rows with {m.group(1)} fields (a stray separator in a text cell?)",
            ) from None
        raise DataFormatError(path, f"cannot parse the file: {exc}") from None
    except UnicodeDecodeError as exc:
        raise DataFormatError(path, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None

    found = [str(c) for c in frame.columns]
    missing = [c for c in required if c not in found]
    if missing:
        raise DataFormatError(
            path,
            f"missing column(s) {missing}; columns found: {found}",
            line=1,
            expected=f"columns {list(required)} separated by {sep!r}",
        )
    first_line = 1 if header is not None else 2
    skipped_set = set(skipped)
    lines, line = [], first_line
    for _ in range(len(frame)):
        while line in skipped_set:
            line += 1
        lines.append(line)
        line += 1
    line_arr = np.asarray(lines, dtype=np.int64)
    if len(frame):
        blank = (frame.astype(str) == "").all(axis=1).to_numpy()
        if blank.any():
            frame = frame.loc[~blank].reset_index(drop=True)
            line_arr = line_arr[~blank]
    return Table(path=path, frame=frame, lines=line_arr, skipped_lines=sorted(skipped))


# --------------------------------------------------------------------------------------------- cells


def _cell_error(path: Path | str, line: int | None, column: str | None, text: str, expected: str) -> NoReturn:
    shown = text if len(text) <= 60 else text[:57] + "..."
    raise DataFormatError(path, f"cannot parse {shown!r}", line=line, column=column, expected=expected)


def parse_int(text: str, *, path: Path | str, line: int | None = None, column: str | None = None) -> int:
    """An integer cell such as ``"12"`` (surrounding spaces allowed)."""
    s = text.strip()
    if re.fullmatch(r"[+-]?\d+", s):
        return int(s)
    _cell_error(path, line, column, text, "an integer")


def parse_float(text: str, *, path: Path | str, line: int | None = None, column: str | None = None) -> float:
    """A finite real number cell such as ``"12.5"``."""
    try:
        value = float(text.strip())
    except ValueError:
        _cell_error(path, line, column, text, "a number")
    if not math.isfinite(value):
        _cell_error(path, line, column, text, "a finite number")
    return value


def parse_timestamp(
    text: str, *, path: Path | str, line: int | None = None, column: str | None = None
) -> float:
    """An EPIC-KITCHENS ``HH:MM:SS.ff`` timestamp → seconds (``"00:01:02.50"`` → 62.5)."""
    m = _TIMESTAMP_RE.match(text.strip())
    if not m:
        _cell_error(path, line, column, text, "a timestamp HH:MM:SS.ff such as 00:01:02.50")
    return int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3))


def parse_literal_list(
    text: str,
    item_type: type,
    *,
    path: Path | str,
    line: int | None = None,
    column: str | None = None,
) -> list[Any]:
    """A string-encoded Python list such as ``"[3, 7]"`` or ``"['pan', 'lid']"`` (``ast.literal_eval``)."""
    s = text.strip()
    if item_type is int and _INT_LIST_RE.match(s):  # fast path for the millions of EgoClip tag cells
        inner = s[1:-1].strip().rstrip(",")
        return [int(v) for v in inner.split(",")] if inner else []
    expected = (
        f"a Python list of {item_type.__name__} such as {'[3, 7]' if item_type is int else repr(['a', 'b'])}"
    )
    try:
        value = ast.literal_eval(s)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        _cell_error(path, line, column, text, expected)
    if isinstance(value, tuple):
        value = list(value)
    if not isinstance(value, list) or not all(_is_type(v, item_type) for v in value):
        _cell_error(path, line, column, text, expected)
    return value


def _is_type(value: Any, item_type: type) -> bool:
    if item_type is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if item_type is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, item_type)


def int_column(table: Table, column: str) -> np.ndarray:
    """Column ``column`` parsed as integers → (N,) int64 (vectorised; errors name the first bad row)."""
    cells = table.frame[column].astype(str).str.strip()
    ok = cells.str.fullmatch(r"[+-]?\d+").to_numpy(dtype=bool, na_value=False)
    if not ok.all():
        i = int(np.flatnonzero(~ok)[0])
        parse_int(str(cells.iloc[i]), path=table.path, line=int(table.lines[i]), column=column)
    return cells.astype(np.int64).to_numpy() if len(cells) else np.zeros(0, dtype=np.int64)


def float_column(table: Table, column: str) -> np.ndarray:
    """Column ``column`` parsed as finite floats → (N,) float64 (vectorised; errors name the first bad row)."""
    import pandas as pd

    cells = table.frame[column].astype(str)
    values = pd.to_numeric(cells.str.strip(), errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    bad = ~np.isfinite(values)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        parse_float(str(cells.iloc[i]), path=table.path, line=int(table.lines[i]), column=column)
        _cell_error(table.path, int(table.lines[i]), column, str(cells.iloc[i]), "a finite number")
    return values


def timestamp_column(table: Table, column: str, *, optional: bool = False) -> np.ndarray:
    """Column ``column`` of ``HH:MM:SS.ff`` timestamps → (N,) float64 seconds.

    With ``optional`` an empty (or blank) cell becomes NaN: EPIC-KITCHENS-100 leaves ``narration_timestamp``
    empty for the actions listed in ``EPIC_100_{train,validation}_missing_timestamp_narrations.csv``, "marked
    with NaN" (epic-kitchens/epic-kitchens-100-annotations @ ea8b404 : README.md, "Missing Narration
    Timestamps"). A non-empty cell that is not a timestamp is still an error.
    """
    out = np.empty(len(table), dtype=np.float64)
    for i, v in enumerate(table.column(column)):
        if optional and not v.strip():
            out[i] = np.nan
        else:
            out[i] = parse_timestamp(v, path=table.path, line=int(table.lines[i]), column=column)
    return out


def list_column(table: Table, column: str, item_type: type) -> list[list[Any]]:
    """Column ``column`` of string-encoded lists → list of Python lists of ``item_type``."""
    out: list[list[Any]] = []
    match = _INT_LIST_RE.match if item_type is int else None
    for i, cell in enumerate(table.column(column)):
        s = cell.strip()
        if match is not None and match(s):  # inline fast path: EgoClip has millions of tag cells
            inner = s[1:-1].strip().rstrip(",")
            out.append([int(v) for v in inner.split(",")] if inner else [])
        else:
            out.append(
                parse_literal_list(cell, item_type, path=table.path, line=int(table.lines[i]), column=column)
            )
    return out


def nonempty_column(table: Table, column: str) -> list[str]:
    """Column ``column`` as strings, none of them empty (a short row leaves trailing cells empty)."""
    values = table.column(column)
    for i, v in enumerate(values):
        if not v.strip():
            table.fail(i, column, "empty cell", expected="a non-empty value (is this row missing fields?)")
    return values


def path_component_column(table: Table, column: str) -> list[str]:
    """Column ``column`` of ids that name files or folders (``video_uid``, ...): each a safe, non-empty name.

    An id such as ``../../etc/passwd`` would make a loader open a file outside the dataset root; the error
    names the line and column (vectorised check, then ``paths.path_component_problem`` for the message).
    """
    values = nonempty_column(table, column)
    unsafe = table.frame[column].astype(str).str.contains(_UNSAFE_NAME_RE, regex=True).to_numpy(dtype=bool)
    if unsafe.any():
        i = int(np.flatnonzero(unsafe)[0])
        _unsafe_name(table.path, int(table.lines[i]), column, values[i])
    return values


def check_path_component(value: str, *, path: Path | str, line: int | None = None, column: str) -> str:
    """``value`` if it is a safe file or folder name, else a ``DataFormatError`` naming line and column."""
    if path_component_problem(value) is not None:
        _unsafe_name(path, line, column, value)
    return value


def _unsafe_name(path: Path | str, line: int | None, column: str, value: str) -> NoReturn:
    problem = path_component_problem(value) or "unsafe name"
    raise DataFormatError(
        path,
        f"{column} {_shown(value)} cannot be used as a file name: {problem}",
        line=line,
        column=column,
        expected=SAFE_NAME_HELP,
    )


def _shown(value: str) -> str:
    text = repr(value)
    return text if len(text) <= 160 else text[:157] + "..."


# --------------------------------------------------------------------------------------------- JSON


def read_json(path: str | Path, what: str = "JSON file") -> JsonNode:
    """Parse a JSON file; a syntax error names the line and column. Returns the root as a ``JsonNode``."""
    path = require_file(path, what)
    try:
        with open(path, encoding="utf-8") as f:
            value = json.load(f)
    except json.JSONDecodeError as exc:
        raise DataFormatError(
            path, f"invalid JSON: {exc.msg} (character {exc.colno})", line=exc.lineno, expected="valid JSON"
        ) from None
    except UnicodeDecodeError as exc:
        raise DataFormatError(path, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    return JsonNode(value, path)


_TYPE_NAMES = {dict: "an object", list: "a list", str: "a string", int: "an integer", float: "a number"}


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {value}"
    if isinstance(value, (dict, list)):
        return _TYPE_NAMES[type(value)]
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 40 else text[:37] + '...'}"


class JsonNode:
    """A value inside a JSON document that knows its key path, for errors such as
    ``egomcq.json: key "12" → "choices" → "3": missing "clip_start"``."""

    __slots__ = ("value", "path", "keys")

    def __init__(self, value: Any, path: str | Path, keys: tuple[str, ...] = ()) -> None:
        self.value = value
        self.path = Path(path)
        self.keys = keys

    def where(self) -> str:
        """``key "a" → "b"``, or ``top level`` for the root."""
        if not self.keys:
            return "top level"
        return "key " + " → ".join(f'"{k}"' for k in self.keys)

    def fail(self, message: str, expected: str | None = None) -> NoReturn:
        """Raise a ``DataFormatError`` at this node's key path."""
        raise DataFormatError(self.path, f"{self.where()}: {message}", expected=expected)

    def _child(self, value: Any, key: str | int) -> JsonNode:
        return JsonNode(value, self.path, self.keys + (str(key),))

    def as_dict(self) -> dict[str, Any]:
        if not isinstance(self.value, dict):
            self.fail(f"expected an object, got {_describe(self.value)}")
        return self.value

    def as_list(self) -> list[Any]:
        if not isinstance(self.value, list):
            self.fail(f"expected a list, got {_describe(self.value)}")
        return self.value

    def has(self, key: str) -> bool:
        return key in self.as_dict() and self.as_dict()[key] is not None

    def __getitem__(self, key: str) -> JsonNode:
        d = self.as_dict()
        if key not in d:
            self.fail(f'missing "{key}"')
        return self._child(d[key], key)

    def get(self, key: str) -> JsonNode | None:
        """The child ``key``, or None when it is absent or null."""
        d = self.as_dict()
        return self._child(d[key], key) if d.get(key) is not None else None

    def items(self) -> Iterator[tuple[str, JsonNode]]:
        for k, v in self.as_dict().items():
            yield k, self._child(v, k)

    def elements(self) -> Iterator[JsonNode]:
        for i, v in enumerate(self.as_list()):
            yield self._child(v, i)

    def as_str(self, *, nonempty: bool = False) -> str:
        if not isinstance(self.value, str):
            self.fail(f"expected a string, got {_describe(self.value)}")
        if nonempty and not self.value.strip():
            self.fail("empty string", expected="a non-empty string")
        return self.value

    def as_path_component(self) -> str:
        """A string that names a file or folder (``video_uid``, ``clip_uid``, ...): a safe, non-empty name."""
        value = self.as_str(nonempty=True)
        problem = path_component_problem(value)
        if problem is not None:
            self.fail(f"{_shown(value)} cannot be used as a file name: {problem}", expected=SAFE_NAME_HELP)
        return value

    def as_relative_path(self) -> str:
        """A string that names a file below the JSON file's folder (``mask_file``): safe names joined by ``/``."""
        value = self.as_str(nonempty=True)
        problem = relative_path_problem(value)
        if problem is not None:
            self.fail(
                f"{_shown(value)} must stay inside the folder of {self.path.name}: {problem}",
                expected="a relative path such as masks/<clip_id>.npz, without '..'",
            )
        return value

    def as_int(self, *, allow_string: bool = False) -> int:
        v = self.value
        if isinstance(v, float) and v.is_integer():
            return int(v)
        if allow_string and isinstance(v, str) and re.fullmatch(r"\s*[+-]?\d+\s*", v):
            return int(v)
        if not isinstance(v, int) or isinstance(v, bool):
            self.fail(f"expected an integer, got {_describe(v)}")
        return v

    def as_float(self, *, allow_string: bool = False) -> float:
        """A finite number (EgoMCQ stores some times as numeric strings: ``allow_string=True``)."""
        v = self.value
        if allow_string and isinstance(v, str):
            try:
                v = float(v)
            except ValueError:
                self.fail(f"expected a number, got {_describe(self.value)}")
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            self.fail(f"expected a number, got {_describe(v)}")
        if not math.isfinite(v):
            self.fail(f"expected a finite number, got {v}")
        return float(v)

    def as_bool(self) -> bool:
        if not isinstance(self.value, bool):
            self.fail(f"expected true/false, got {_describe(self.value)}")
        return self.value

    def as_int_list(self, *, allow_string: bool = False) -> list[int]:
        """A list of integers; with ``allow_string`` also a string-encoded list such as ``"[3, 7]"``."""
        if allow_string and isinstance(self.value, str):
            try:
                return parse_literal_list(self.value, int, path=self.path)
            except DataFormatError:
                self.fail(f"cannot parse {self.value!r}", expected="a list of integers such as [3, 7]")
        return [e.as_int() for e in self.elements()]

    def as_str_list(self) -> list[str]:
        return [e.as_str() for e in self.elements()]
