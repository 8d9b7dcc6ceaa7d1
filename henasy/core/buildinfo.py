"""Which git commit the running code comes from: a git checkout, else what the wheel recorded at build time.

``package_version()`` is the installed distribution's version. ``git_commit()`` answers, in this order:

1. the code runs from a git checkout (the folder holding the ``henasy`` package is the top level of a git work
   tree: a clone, an editable install): ``HEAD``, with ``-dirty`` when tracked files have uncommitted changes;
2. the code was installed from a wheel: the commit ``setup.py`` recorded into ``henasy/_build_info.py`` when
   the wheel was built (``write_build_info``), the same ``<sha>[-dirty]`` form;
3. else ``"unknown (<why>)"``, e.g. ``unknown (installed from a wheel built outside a git checkout)``.

A checkout is recognised by ``git rev-parse --show-toplevel`` naming the package's own parent folder, so a
virtual environment that lies inside some other git repository (``site-packages`` under a user's project)
never reports that project's commit.

This module uses the standard library only: ``setup.py`` loads it by file path at build time, before the
package is installed.
"""

from __future__ import annotations

import ast
import functools
import subprocess
from importlib import metadata
from pathlib import Path

BUILD_INFO_FILE = "_build_info.py"  # henasy/_build_info.py in a built wheel (see setup.py)
UNKNOWN = "unknown"
DISTRIBUTION = "henasy-bench"
_GIT_TIMEOUT_S = 10


def package_root() -> Path:
    """The folder that holds the ``henasy`` package (a checkout's root, or ``site-packages``)."""
    return Path(__file__).resolve().parents[2]


def _git(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", "-C", str(root), *args], capture_output=True, text=True, timeout=_GIT_TIMEOUT_S
    )


def source_commit(root: Path) -> tuple[str | None, str]:
    """(``<sha>[-dirty]``, "") when ``root`` is the top level of a git work tree, else (None, why not)."""
    try:
        top = _git(root, "rev-parse", "--show-toplevel")
        if top.returncode != 0:
            return None, f"{root} is not a git checkout"
        if Path(top.stdout.strip()).resolve() != root.resolve():
            return None, f"{root} lies inside the git work tree {top.stdout.strip()} but is not its top level"
        head = _git(root, "rev-parse", "HEAD")
        if head.returncode != 0:
            return None, f"the git checkout {root} has no commit yet"
        dirty = _git(root, "status", "--porcelain", "--untracked-files=no")
    except FileNotFoundError:
        return None, "git is not installed"
    except (OSError, subprocess.SubprocessError) as err:
        return None, f"git failed ({type(err).__name__})"
    return head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else ""), ""


def build_info_source(commit: str | None, reason: str) -> str:
    """The text of ``henasy/_build_info.py``: the commit a wheel was built from, or why there is none."""
    return (
        '"""Written by setup.py when this wheel was built (henasy/core/buildinfo.py reads it)."""\n\n'
        f"GIT_COMMIT = {commit!r}\n"
        f"WHY_NO_COMMIT = {reason!r}\n"
    )


def write_build_info(source_root: Path, package_dir: Path) -> Path:
    """Write ``<package_dir>/_build_info.py`` for a wheel built from ``source_root``; returns its path.

    A source tree without git metadata (an unpacked sdist) keeps the ``_build_info.py`` it shipped with.
    """
    target = package_dir / BUILD_INFO_FILE
    commit, reason = source_commit(source_root)
    shipped = source_root / "henasy" / BUILD_INFO_FILE
    if commit is None and shipped.is_file():
        text = shipped.read_text(encoding="utf-8")
    else:
        text = build_info_source(commit, reason)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.unlink(missing_ok=True)  # an sdist's release tree hard-links its files to the source tree
    target.write_text(text, encoding="utf-8")
    return target


def _recorded() -> tuple[str | None, str] | None:
    """(commit, why none) from ``henasy/_build_info.py``; None when the package has no such file."""
    path = Path(__file__).resolve().parents[1] / BUILD_INFO_FILE
    if not path.is_file():
        return None
    names: dict[str, object] = {}
    for line in path.read_text(encoding="utf-8").splitlines():  # the two assignments build_info_source writes
        key, sep, value = line.partition(" = ")
        if sep and key in ("GIT_COMMIT", "WHY_NO_COMMIT"):
            try:
                names[key] = ast.literal_eval(value.strip())
            except (ValueError, SyntaxError):
                names[key] = None
    commit = names.get("GIT_COMMIT")
    return (str(commit) if commit else None), str(names.get("WHY_NO_COMMIT") or "")


def package_version() -> str:
    """The installed henasy-bench version (its package metadata; pyproject.toml takes it from
    ``henasy.__version__``), or ``unknown (…)`` when the code runs without being installed."""
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return f"{UNKNOWN} ({DISTRIBUTION} is not installed: pip install -e .)"


@functools.lru_cache(maxsize=1)
def git_commit() -> str:
    """The commit the running code comes from (see the module docstring); computed once per process."""
    root = package_root()
    commit, reason = source_commit(root)
    if commit:
        return commit
    recorded = _recorded()
    if recorded is None:
        return f"{UNKNOWN} ({reason}, and the installed package records no build commit)"
    commit, why = recorded
    if commit:
        return commit
    return f"{UNKNOWN} (installed from a wheel built outside a git checkout{': ' + why if why else ''})"
