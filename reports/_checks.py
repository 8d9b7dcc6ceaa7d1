"""Field checks for the reports' YAML files (paper numbers, table specs): errors name the file, line and key.

The YAML is parsed by ``sweeps.spec.load_yaml`` (safe tags only; mappings and sequences remember their
1-based lines as ``LineDict`` / ``LineList``); these checks turn a mistake into ``DataFormatError``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from henasy.errors import DataFormatError


class Checker:
    """Raises ``DataFormatError`` naming ``path``, the line of ``where`` (or of its ``key``) and the key."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, message: str, where: Any = None, key: Any = None, expected: str | None = None) -> None:
        from sweeps.spec import LineDict

        if isinstance(where, LineDict) and key is not None:
            line = where.line_of(key)
        else:
            line = where if isinstance(where, int) else getattr(where, "line", None)
        raise DataFormatError(
            self.path,
            message,
            line=line if isinstance(line, int) and not isinstance(line, bool) else None,
            column=None if key is None else str(key),
            expected=expected,
        )

    def mapping(self, value: Any, what: str, allowed: tuple[str, ...], where: Any = None) -> Any:
        """``value`` as a mapping whose keys are all in ``allowed``."""
        from sweeps.spec import LineDict

        if not isinstance(value, LineDict):
            self.fail(f"{what} must be a mapping, got {type(value).__name__}", where)
        for k in value:
            if k not in allowed:
                self.fail(f"unknown key {k!r} in {what}", value, k, expected="one of " + ", ".join(allowed))
        return value

    def items(self, node: Any, key: str, what: str) -> Any:
        """``node[key]`` as a non-empty list."""
        from sweeps.spec import LineList

        value = node.get(key)
        if not isinstance(value, LineList) or not value:
            self.fail(f"{what}.{key} must be a non-empty list", node, key if key in node else None)
        return value

    def strings(self, node: Any, key: str, what: str) -> tuple[str, ...]:
        """``node[key]`` as a (possibly absent) list of strings."""
        value = node.get(key)
        if value is None:
            return ()
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.fail(f"{what}.{key} must be a list of strings", node, key)
        return tuple(value)

    def text(
        self, node: Any, key: str, what: str, *, required: bool = False, empty_ok: bool = False
    ) -> str | None:
        """``node[key]`` as a string (None when absent and not ``required``)."""
        value = node.get(key)
        if value is None:
            if required:
                self.fail(f"missing required key {key!r} in {what}", node)
            return None
        if not isinstance(value, str) or not (empty_ok or value.strip()):
            self.fail(f"{what}.{key} must be a non-empty string, got {value!r}", node, key)
        return value

    def choice(
        self, node: Any, key: str, what: str, choices: tuple[str, ...], default: str | None = None
    ) -> str:
        """``node[key]`` (or ``default``) as one of ``choices``."""
        value = node.get(key, default)
        if value not in choices:
            self.fail(f"{what}.{key} is {value!r}", node, key, expected="one of " + ", ".join(choices))
        return value
