"""Same-named folders that would be imported instead of henasy-bench's top-level packages.

henasy-bench installs five top-level import names (``TOP_LEVEL``). Python puts a folder first on ``sys.path``
for ``python -m …`` and ``python -c`` (the working directory) and for ``python script.py`` (the script's
folder); a folder or module of the same name there is imported instead of the installed package: one with an
``__init__.py`` always, one without (a namespace package: a user's ``benchmarks/`` or ``reports/`` output
folder) when henasy-bench is installed in editable mode (setuptools' editable finder comes after the path
finder). The ``bench`` console script puts its own ``bin/`` folder first, not the working directory; sweep
jobs do put it first (submitit starts them as ``python -u -m submitit.core._submit`` in the submitting
folder: submitit 1.5.4 : submitit/local/local.py and submitit/slurm/slurm.py, ``_submitit_command_str``).

``shadowed`` lists the names Python would import from elsewhere than this installation; ``check_packages``
turns them into a ``BenchError`` that names the folder and the ways on. ``bench`` checks its own process at
start and, before a sweep submits jobs, the jobs' view (the working directory first).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.machinery import ModuleSpec, PathFinder
from pathlib import Path
from types import ModuleType

from henasy.core.buildinfo import package_root
from henasy.core.errors import BenchError

TOP_LEVEL = ("henasy", "baselines", "benchmarks", "sweeps", "reports")


@dataclass(frozen=True)
class Shadow:
    """Package ``name`` would be imported from ``found`` instead of ``expected`` (this installation)."""

    name: str
    found: Path
    expected: Path


def _spec_location(spec: ModuleSpec) -> Path | None:
    """The folder of a package spec (regular or namespace) or the file of a module spec."""
    if spec.submodule_search_locations is not None:
        if spec.origin and spec.origin != "namespace":
            return Path(spec.origin).parent
        locations = list(spec.submodule_search_locations)
        return Path(locations[0]) if locations else None
    return Path(spec.origin) if spec.origin else None


def _module_location(module: ModuleType) -> Path | None:
    """Where an imported package or module was loaded from."""
    spec = getattr(module, "__spec__", None)
    return _spec_location(spec) if spec is not None else None


def shadowed(first: Sequence[str | Path] = ()) -> list[Shadow]:
    """The top-level names that resolve outside this installation, with ``first`` searched before ``sys.path``.

    Without ``first`` an already imported package is judged by where it was loaded from. A name the path
    search does not find is left to the meta-path finders (an editable install's finder): this installation.
    """
    root = package_root()  # this installation's top-level packages: a checkout, or site-packages
    search = [str(p) for p in first] + list(sys.path)
    found: list[Shadow] = []
    for name in TOP_LEVEL:
        module = None if first else sys.modules.get(name)
        if module is not None:
            location = _module_location(module)
        else:
            spec = PathFinder.find_spec(name, search)
            location = _spec_location(spec) if spec is not None else None
        expected = root / name
        if location is not None and location.resolve() != expected.resolve():
            found.append(Shadow(name, location, expected))
    return found


def check_packages(*, working_dir_first: bool = False) -> None:
    """``BenchError`` when a top-level package would come from elsewhere than this installation.

    ``working_dir_first``: judge as a process whose ``sys.path`` starts with the working directory (the
    processes a sweep starts), not only this one.
    """
    cwd = Path.cwd()
    problems = shadowed([cwd] if working_dir_first else [])
    if not problems:
        return
    lines = [
        f"{s.found} would be imported instead of henasy-bench's package {s.name!r} ({s.expected})"
        for s in problems
    ]
    if working_dir_first:
        why = (
            "the sweep's jobs start with the working directory first on sys.path (submitit runs them as "
            f"`python -m submitit.core._submit` in {cwd}). Start the sweep from another folder, or rename "
            "the folder (it is not henasy-bench's)"
        )
    else:
        why = (
            "a folder that holds it comes first on sys.path (`python -m`, `python script.py`, PYTHONPATH). "
            "Use the `bench` command (it does not put the working directory on sys.path), run from another "
            "folder, or rename the folder (it is not henasy-bench's)"
        )
    raise BenchError("; ".join(lines) + f": {why}")
