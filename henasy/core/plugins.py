"""User code imported before a ``bench`` command runs: ``--include PATH`` and ``BENCH_INCLUDE``.

Each item is a Python file (``path/to/my_model.py``) or an importable module name (``my_pkg.models``). It is
imported once per process and is expected to call the public registration API (``henasy.core.registry``:
``MODELS.add`` / ``@MODELS.register`` / ``BENCHMARKS.add`` of ``henasy.core.catalog``). ``BENCH_INCLUDE`` holds
items separated by ``os.pathsep`` (``:`` on Linux); they are imported before the ``--include`` ones.
Registry entries an item adds remember it as their origin (shown when a name clashes).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import sys
import traceback
from collections.abc import Iterable
from pathlib import Path

from henasy.core.errors import BenchError

ENV_VAR = "BENCH_INCLUDE"

_INCLUDED: dict[str, str] = {}  # item as resolved (absolute file or module name) → module name


def include_items(cli_items: Iterable[str] | None = None, environ: dict[str, str] | None = None) -> list[str]:
    """The items to import: those of ``BENCH_INCLUDE`` first, then ``cli_items`` (empty entries dropped)."""
    env = os.environ if environ is None else environ
    from_env = [item for item in env.get(ENV_VAR, "").split(os.pathsep) if item.strip()]
    return [*from_env, *(cli_items or [])]


def load_includes(items: Iterable[str], *, source: str = "--include") -> list[str]:
    """Import each item (file or module name) once; the module names, in order.

    Raises ``BenchError`` naming the item (and the file and line of the failure when it is the item's own
    code) when it does not exist or fails to import.
    """
    from henasy.core.catalog import REGISTRIES

    loaded = []
    for item in items:
        key, is_file = _resolve(item, source)
        if key in _INCLUDED:
            loaded.append(_INCLUDED[key])
            continue
        before = {kind: set(registry.names()) for kind, registry in REGISTRIES.items()}
        module_name = _import_file(Path(key), item, source) if is_file else _import_module(key, source)
        _INCLUDED[key] = module_name
        for kind, registry in REGISTRIES.items():
            for entry in registry:
                if entry.name not in before[kind] and not entry.origin:
                    entry.origin = f"{source} {item}"
        loaded.append(module_name)
        if source == "--include":
            _export(key)
    return loaded


def _export(item: str) -> None:
    """Add ``item`` to ``BENCH_INCLUDE`` of this process, so that the processes it starts (local sweep jobs;
    SLURM jobs, which inherit the submitting environment) register the same models and benchmarks."""
    current = [i for i in os.environ.get(ENV_VAR, "").split(os.pathsep) if i.strip()]
    if item not in current:
        os.environ[ENV_VAR] = os.pathsep.join([*current, item])


def _resolve(item: str, source: str) -> tuple[str, bool]:
    """(absolute file path, True) for a file, (module name, False) for a dotted module name."""
    path = Path(item).expanduser()
    if item.endswith(".py") or os.sep in item or path.exists():
        if not path.is_file():
            raise BenchError(
                f"{source} {item}: no such file; give a Python file (my_model.py) or a module name "
                "(my_pkg.models)"
            )
        return str(path.resolve()), True
    return item, False


def _import_file(path: Path, item: str, source: str) -> str:
    """Import the Python file ``path`` as a module named after it (its folder goes on ``sys.path``)."""
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:8]
    module_name = f"bench_include_{path.stem}_{digest}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise BenchError(f"{source} {item}: not an importable Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses and pickling look the module up by name
    if str(path.parent) not in sys.path:
        sys.path.append(str(path.parent))  # sibling modules of the file import as they would as a script
    try:
        spec.loader.exec_module(module)
    except Exception as err:  # noqa: BLE001 - any failure of user code is reported as a bad --include
        del sys.modules[module_name]
        raise BenchError(f"{source} {item}: {_where(err, path)}{type(err).__name__}: {err}") from err
    return module_name


def _import_module(name: str, source: str) -> str:
    try:
        importlib.import_module(name)
    except ModuleNotFoundError as err:
        if err.name and name.startswith(err.name):
            raise BenchError(
                f"{source} {name}: no module named {err.name!r}; give a Python file (path/to/file.py) or "
                "the name of a module importable from this environment"
            ) from None
        raise BenchError(f"{source} {name}: {type(err).__name__}: {err}") from err
    except Exception as err:  # noqa: BLE001 - any failure of user code is reported as a bad --include
        raise BenchError(f"{source} {name}: {type(err).__name__}: {err}") from err
    return name


def _where(err: BaseException, path: Path) -> str:
    """``"FILE line N: "`` of the deepest traceback frame inside ``path`` (empty when there is none)."""
    frames = [f for f in traceback.extract_tb(err.__traceback__) if Path(f.filename) == path]
    return f"{path} line {frames[-1].lineno}: " if frames else ""
