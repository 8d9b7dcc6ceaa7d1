"""A generic name → object registry with lazy ``"module:attr"`` entries.

Entries are declared as import strings with a one-line description, so listing what exists
(``bench list``) never imports torch models. The object is imported on first ``get``. Registering a name
twice is an error; looking up an unknown name lists the closest registered names.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from henasy.errors import BenchError

T = TypeVar("T")


class UnknownNameError(BenchError, KeyError):
    """Lookup of a name that is not registered."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


@dataclass
class Entry:
    """One registered name: where to import it from, what it is, and the object once imported."""

    name: str
    target: str
    description: str
    tags: dict[str, Any] = field(default_factory=dict)
    loaded: Any = None


class Registry(Generic[T]):
    """Name → object mapping whose objects are imported lazily from ``"module:attr"`` strings."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Entry] = {}

    def add(self, name: str, target: str, description: str, **tags: Any) -> None:
        """Register ``name`` as the object at ``target`` (``"package.module:attribute"``)."""
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is already registered (as {self._entries[name].target})")
        if ":" not in target:
            raise ValueError(f"{self.kind} {name!r}: target {target!r} must look like 'module:attribute'")
        self._entries[name] = Entry(name, target, description, dict(tags))

    def register(self, name: str, description: str, **tags: Any) -> Callable[[T], T]:
        """Decorator form of ``add`` for objects defined in an already-imported module."""

        def wrap(obj: T) -> T:
            self.add(name, f"{obj.__module__}:{getattr(obj, '__qualname__', name)}", description, **tags)
            self._entries[name].loaded = obj
            return obj

        return wrap

    def get(self, name: str) -> T:
        """Import (once) and return the object registered as ``name``."""
        entry = self.entry(name)
        if entry.loaded is None:
            module_name, attr = entry.target.split(":", 1)
            obj: Any = importlib.import_module(module_name)
            for part in attr.split("."):
                obj = getattr(obj, part)
            entry.loaded = obj
        return entry.loaded

    def entry(self, name: str) -> Entry:
        """The registry entry for ``name``; an unknown name raises with the closest matches."""
        try:
            return self._entries[name]
        except KeyError:
            close = difflib.get_close_matches(name, list(self._entries), n=3, cutoff=0.5)
            hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise UnknownNameError(
                f"unknown {self.kind} {name!r}.{hint} Registered: {', '.join(sorted(self._entries))}. "
                f"See `bench list {self.kind}s`."
            ) from None

    def names(self) -> list[str]:
        """Registered names in registration order."""
        return list(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[Entry]:
        return iter(self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)
