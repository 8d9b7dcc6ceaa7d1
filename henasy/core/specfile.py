"""Spec files: strict YAML loading with line numbers, and the checker that turns a mistake into a clear error.

Every human-edited YAML file of the project (sweep specs under ``sweeps/``, table specs under
``reports/tables/``, ``reports/paper_numbers.yaml``) is read by ``load_yaml`` and validated with
``SpecChecker``; the schemas themselves live next to their files (``sweeps.spec``, ``reports.spec``,
``reports.paper_numbers``).

Loading uses a subclass of ``yaml.SafeLoader`` (safe tags only) that records the line of every key, so an
error names the file, the 1-based line, the key and the allowed keys (``henasy.core.errors.DataFormatError``).
Hostile files are refused before they are built into Python objects: a file that is not UTF-8 (the byte
offset is named), larger than ``MAX_YAML_BYTES``, with control characters, or whose aliases would expand it
to more than ``MAX_YAML_NODES`` values (a "billion laughs" alias bomb) or into a cycle.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, NoReturn

import yaml

from henasy.core.errors import BenchError, DataFormatError

MAX_YAML_BYTES = 4 * 2**20  # the shipped specs are < 4 KiB, reports/paper_numbers.yaml < 10 KiB
MAX_YAML_NODES = 100_000  # values of the document with every alias expanded (the shipped files: < 1,000)


# ------------------------------------------------------------------------------------------ YAML loading
class LineDict(dict):
    """A YAML mapping that remembers its own line and the line of each key (1-based)."""

    line: int = 0
    key_lines: dict[Any, int]

    def line_of(self, key: Any) -> int:
        return self.key_lines.get(key, self.line)


class LineList(list):
    """A YAML sequence that remembers its own line and the line of each item (1-based)."""

    line: int = 0
    item_lines: list[int]


class _LineLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` (safe tags only) that keeps node line numbers and refuses duplicate keys."""


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> LineDict:
    loader.flatten_mapping(node)
    out = LineDict()
    out.line = node.start_mark.line + 1
    out.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        if not isinstance(key, (str, int, float, bool)):
            raise DataFormatError(loader.name, "mapping keys must be plain scalars", line=line)
        if key in out:
            raise DataFormatError(
                loader.name,
                f"duplicate key {key!r} (first on line {out.key_lines[key]})",
                line=line,
                column=str(key),
            )
        out[key] = loader.construct_object(value_node, deep=True)
        out.key_lines[key] = line
    return out


def _construct_sequence(loader: _LineLoader, node: yaml.SequenceNode) -> LineList:
    out = LineList(loader.construct_object(child, deep=True) for child in node.value)
    out.line = node.start_mark.line + 1
    out.item_lines = [child.start_mark.line + 1 for child in node.value]
    return out


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


def load_yaml(path: str | Path) -> Any:
    """Parse ``path`` with safe tags only; mappings/sequences carry line numbers (``LineDict``/``LineList``).

    Refused with a ``BenchError`` naming the file (and line or byte offset): a folder or special file, a file
    over ``MAX_YAML_BYTES``, bytes that are not UTF-8, invalid YAML, and aliases that expand the document
    past ``MAX_YAML_NODES`` values or into a cycle (checked on the node graph, before anything is built).
    """
    path = Path(path)
    text = read_text(path)
    loader = None
    try:
        loader = _LineLoader(text)  # the reader checks for non-printable characters here
        loader.name = str(path)
        node = loader.get_single_node()
        if node is None:
            return None
        _check_expansion(path, node)
        return loader.construct_document(node)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = mark.line + 1 if mark is not None else None
        raise DataFormatError(path, f"not valid YAML: {err.problem or err}", line=line) from None
    except yaml.reader.ReaderError as err:
        line = text.count("\n", 0, max(err.position, 0)) + 1
        raise DataFormatError(
            path,
            f"character #x{err.character:04x} (at character {err.position}) is not allowed in YAML: {err.reason}",
            line=line,
            expected="printable text; remove the control character",
        ) from None
    except yaml.YAMLError as err:
        raise DataFormatError(path, f"not valid YAML: {err}") from None
    except RecursionError:
        raise DataFormatError(path, "not a usable YAML file: it is nested too deeply") from None
    finally:
        if loader is not None:
            loader.dispose()


def read_text(path: Path) -> str:
    """The UTF-8 text of ``path``; a clear ``BenchError`` for anything that is not a readable text file."""
    try:
        if path.is_dir():
            raise BenchError(f"{path}: is a folder, not a YAML file")
        if path.exists() and not path.is_file():
            raise BenchError(f"{path}: not a regular file (a device, pipe or socket); give a YAML file")
        with path.open("rb") as handle:
            data = handle.read(MAX_YAML_BYTES + 1)
    except OSError as err:
        raise BenchError(f"{path}: cannot read this YAML file ({err.strerror or err})") from None
    if len(data) > MAX_YAML_BYTES:
        raise BenchError(f"{path}: larger than {MAX_YAML_BYTES // 2**20} MiB; not a sweep or table spec")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise DataFormatError(
            path,
            f"not UTF-8 text: byte 0x{data[err.start]:02x} at byte offset {err.start} cannot be decoded",
            line=data.count(b"\n", 0, err.start) + 1,
            expected="a UTF-8 file; re-save it as UTF-8",
        ) from None


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _check_expansion(path: Path, root: yaml.Node) -> None:
    """Refuse a node graph whose aliases expand past ``MAX_YAML_NODES`` values or form a cycle.

    An alias reuses its anchor's node, so the composed graph stays small while the document it stands for
    (what every later copy or traversal walks) can be exponential: the "billion laughs" attack. The expanded
    size is counted bottom-up over the graph (each node once), iteratively so deep nesting cannot overflow.
    """
    sizes: dict[int, int] = {}
    path_ids: set[int] = set()  # the nodes between the root and the current one (a revisit = a cycle)
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        if finished:
            path_ids.discard(key)
            sizes[key] = 1 + sum(sizes[id(child)] for child in _children(node))
            if sizes[key] > MAX_YAML_NODES:
                raise DataFormatError(
                    path,
                    f"the aliases here expand the document to more than {MAX_YAML_NODES} values "
                    "(a YAML alias bomb?)",
                    line=node.start_mark.line + 1,
                    expected="the values written out, or far fewer nested aliases",
                )
            continue
        if key in sizes:
            continue
        if key in path_ids:
            raise DataFormatError(
                path,
                "an alias refers to a collection that contains it (a recursive structure)",
                line=node.start_mark.line + 1,
            )
        path_ids.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in _children(node) if id(child) not in sizes)


def plain(value: Any) -> Any:
    """LineDict/LineList → dict/list (recursively)."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


# ------------------------------------------------------------------------------------------- checking
def did_you_mean(name: Any, choices: Any) -> str:
    """`` Did you mean 'x'?`` for the closest of ``choices`` to ``name`` (empty when none is close)."""
    close = difflib.get_close_matches(str(name), [str(c) for c in choices], n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


class SpecChecker:
    """Field checks that raise ``DataFormatError`` naming ``path``, the line of ``where`` (or of its ``key``).

    ``where`` is a ``LineDict`` (with ``key``: the line of that key, else the mapping's own line), a
    ``LineList`` (its line) or a 1-based line number.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = path

    def fail(self, message: str, where: Any = None, key: Any = None, expected: str | None = None) -> NoReturn:
        """Raise ``DataFormatError`` for ``message`` at ``where`` / ``key``."""
        line = None
        if isinstance(where, LineDict):
            line = where.line_of(key) if key is not None else where.line
        elif isinstance(where, (LineList, int)) and not isinstance(where, bool):
            line = where if isinstance(where, int) else where.line
        raise DataFormatError(
            self.path, message, line=line, column=None if key is None else str(key), expected=expected
        )

    def mapping(
        self,
        value: Any,
        what: str,
        allowed: tuple[str, ...] | None,
        *,
        parent: Any = None,
        key: Any = None,
        required: bool = False,
    ) -> LineDict:
        """``value`` as a mapping whose keys are all in ``allowed`` (None: any key).

        An absent value (None) is an empty mapping unless ``required``; errors about ``value`` itself are
        placed at ``parent``/``key`` (``parent`` may also be a line number).
        """
        if value is None and not required:
            value = LineDict()
            value.line, value.key_lines = (parent.line_of(key) if isinstance(parent, LineDict) else 0), {}
        if not isinstance(value, LineDict):
            self.fail(f"{what} must be a mapping, got {type(value).__name__}", parent, key)
        if allowed is not None:
            for k in value:
                if k not in allowed:
                    self.fail(
                        f"unknown key {k!r} in {what}{did_you_mean(k, allowed)}",
                        value,
                        k,
                        expected="one of " + ", ".join(allowed),
                    )
        return value

    def typed(
        self, parent: LineDict, key: str, types: tuple[type, ...], what: str, *, optional: bool = True
    ) -> Any:
        """``parent[key]`` as one of ``types`` (a bool only where ``bool`` is listed); None when absent."""
        value = parent.get(key)
        if value is None:
            if not optional and key not in parent:
                self.fail(f"missing required key {key!r} in {what}", parent)
            return None
        if (isinstance(value, bool) and bool not in types) or not isinstance(value, types):
            self.fail(
                f"{what}.{key} must be {'/'.join(t.__name__ for t in types)}, got {value!r}", parent, key
            )
        return value

    def positive_int(self, parent: LineDict, key: str, what: str, *, minimum: int = 1) -> int | None:
        """``parent[key]`` as an int >= ``minimum`` (None when absent)."""
        value = self.typed(parent, key, (int,), what)
        if value is not None and value < minimum:
            self.fail(f"{what}.{key} must be >= {minimum}, got {value}", parent, key)
        return value

    def items(self, node: LineDict, key: str, what: str) -> LineList:
        """``node[key]`` as a non-empty list."""
        value = node.get(key)
        if not isinstance(value, LineList) or not value:
            self.fail(f"{what}.{key} must be a non-empty list", node, key if key in node else None)
        return value

    def strings(self, node: LineDict, key: str, what: str) -> tuple[str, ...]:
        """``node[key]`` as a (possibly absent) list of strings."""
        value = node.get(key)
        if value is None:
            return ()
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.fail(f"{what}.{key} must be a list of strings", node, key)
        return tuple(value)

    def text(
        self, node: LineDict, key: str, what: str, *, required: bool = False, empty_ok: bool = False
    ) -> str | None:
        """``node[key]`` as a non-empty string (None when absent and not ``required``)."""
        value = node.get(key)
        if value is None:
            if required:
                self.fail(f"missing required key {key!r} in {what}", node)
            return None
        if not isinstance(value, str) or not (empty_ok or value.strip()):
            self.fail(f"{what}.{key} must be a non-empty string, got {value!r}", node, key)
        return value

    def choice(
        self, node: LineDict, key: str, what: str, choices: tuple[str, ...], default: str | None = None
    ) -> str:
        """``node[key]`` (or ``default``) as one of ``choices``."""
        value = node.get(key, default)
        if value not in choices:
            self.fail(
                f"{what}.{key} is {value!r}{did_you_mean(value, choices)}",
                node,
                key,
                expected="one of " + ", ".join(choices),
            )
        return value
