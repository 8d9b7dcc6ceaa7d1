"""A generic name → object registry with lazy ``"module:attr"`` entries, open to other packages.

Entries are declared as import strings with a one-line description, so listing what exists
(``bench list``) never imports torch models. The object is imported on first ``get``. Registering a name
twice is an error; looking up an unknown name lists the closest registered names.

Registering your own model or benchmark (the public API; ``henasy.core.catalog`` holds the registries):

- from a file or module given to ``bench --include PATH`` (or listed in the ``BENCH_INCLUDE`` environment
  variable, ``os.pathsep``-separated), imported before the command runs (``henasy.core.plugins``)::

      from henasy.core.catalog import MODELS

      @MODELS.register("my_tiny", "my tiny model")
      def my_tiny(**arch) -> nn.Module: ...            # follows henasy.core.interface.VideoTextModel

      MODELS.add("my_big", "my_pkg.models:my_big", "my big model")   # lazy: imported on first use

- from an installed package, through an entry point whose value is the ``"module:attr"`` target and whose
  name is the registered name (``pyproject.toml``)::

      [project.entry-points."henasy_bench.models"]
      my_tiny = "my_pkg.models:my_tiny"

      [project.entry-points."henasy_bench.benchmarks"]
      my_bench = "my_pkg.bench:BENCHMARK"          # a benchmarks.context.Benchmark

  Entry points are read once, on the first lookup or listing (``importlib.metadata.entry_points``); the
  target itself is imported on first ``get``. A malformed, clashing or unimportable entry point raises
  ``PluginError`` naming the entry point and its distribution.

A model target is a factory ``f(**arch) -> nn.Module`` following ``henasy.core.interface.VideoTextModel``; build
it with ``henasy.core.factory.create_model(name, checkpoint=..., **arch)``, which checks that interface.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from henasy.core.errors import BenchError

T = TypeVar("T")


class UnknownNameError(BenchError, KeyError):
    """Lookup of a name that is not registered."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class PluginError(BenchError):
    """An entry point or included registration that cannot be used (names the entry point and why)."""


@dataclass
class Entry:
    """One registered name: where to import it from, what it is, and the object once imported.

    ``origin`` says where a name registered from outside this repository came from (an entry point or an
    ``--include`` file); it is empty for the built-in entries of ``henasy.core.catalog``.
    """

    name: str
    target: str
    description: str
    tags: dict[str, Any] = field(default_factory=dict)
    loaded: Any = None
    origin: str = ""


class Registry(Generic[T]):
    """Name → object mapping whose objects are imported lazily from ``"module:attr"`` strings.

    ``entry_point_group``: an ``importlib.metadata`` entry-point group whose entries are added (once, on the
    first lookup or listing) as ``name → value`` with the distribution as their origin.
    """

    def __init__(self, kind: str, entry_point_group: str | None = None) -> None:
        self.kind = kind
        self.entry_point_group = entry_point_group
        self._entries: dict[str, Entry] = {}
        self._entry_points_read = entry_point_group is None

    def add(self, name: str, target: str, description: str, *, origin: str = "", **tags: Any) -> None:
        """Register ``name`` as the object at ``target`` (``"package.module:attribute"``)."""
        if name in self._entries:
            where = f" from {self._entries[name].origin}" if self._entries[name].origin else ""
            raise ValueError(
                f"{self.kind} {name!r} is already registered (as {self._entries[name].target}{where})"
            )
        if ":" not in target:
            raise ValueError(f"{self.kind} {name!r}: target {target!r} must look like 'module:attribute'")
        self._entries[name] = Entry(name, target, description, dict(tags), origin=origin)

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
            try:
                obj: Any = importlib.import_module(module_name)
                for part in attr.split("."):
                    obj = getattr(obj, part)
            except (ImportError, AttributeError) as err:
                if not entry.origin:
                    raise
                raise PluginError(
                    f"{self.kind} {name!r} ({entry.target}, from {entry.origin}) cannot be imported: "
                    f"{type(err).__name__}: {err}. Fix or reinstall that package, or uninstall it."
                ) from err
            entry.loaded = obj
        return entry.loaded

    def entry(self, name: str) -> Entry:
        """The registry entry for ``name``; an unknown name raises with the closest matches."""
        self.load_entry_points()
        try:
            return self._entries[name]
        except KeyError:
            close = difflib.get_close_matches(name, list(self._entries), n=3, cutoff=0.5)
            hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise UnknownNameError(
                f"unknown {self.kind} {name!r}.{hint} Registered: {', '.join(sorted(self._entries))}. "
                f"See `bench list {self.kind}s`."
            ) from None

    def load_entry_points(self, *, refresh: bool = False) -> None:
        """Add the entries of ``entry_point_group`` (once; again with ``refresh``, e.g. after an install)."""
        if self._entry_points_read and not refresh:
            return
        self._entry_points_read = True
        if self.entry_point_group is None:
            return
        group = self.entry_point_group
        for point in importlib.metadata.entry_points(group=group):
            dist = getattr(getattr(point, "dist", None), "name", None) or "an unknown distribution"
            origin = f"entry point '{point.name} = {point.value}' (group {group}, distribution {dist})"
            known = self._entries.get(point.name)
            if known is not None and known.origin == origin:
                continue  # read before (refresh)
            if ":" not in point.value:
                raise PluginError(
                    f"{origin}: the value must be a 'module:attribute' target, e.g. 'my_pkg.models:my_model'"
                )
            if known is not None:
                where = known.origin or "henasy.core.catalog"
                raise PluginError(
                    f"{origin}: {self.kind} {point.name!r} is already registered by {where}; rename the "
                    "entry point in that distribution's metadata (pyproject.toml [project.entry-points])"
                )
            self.add(point.name, point.value, f"{point.value} (from {dist})", origin=origin)

    def names(self) -> list[str]:
        """Registered names in registration order."""
        self.load_entry_points()
        return list(self._entries)

    def __contains__(self, name: object) -> bool:
        self.load_entry_points()
        return name in self._entries

    def __iter__(self) -> Iterator[Entry]:
        self.load_entry_points()
        return iter(list(self._entries.values()))

    def __len__(self) -> int:
        self.load_entry_points()
        return len(self._entries)
