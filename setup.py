"""Build hook (everything else is in pyproject.toml): record the git commit a wheel is built from.

``build_py`` writes ``henasy/_build_info.py`` into the build tree (never into the source tree), and ``sdist``
into the release tree, so that a wheel built from the sdist keeps the commit. At run time
``henasy/core/buildinfo.py`` reads it when the code is not in a git checkout (runs installed from a wheel).
The writer is loaded by file path: the package is not importable while it is being built.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist

ROOT = Path(__file__).resolve().parent


def _buildinfo():  # noqa: ANN202 - the module loaded from henasy/core/buildinfo.py
    spec = importlib.util.spec_from_file_location(
        "_henasy_buildinfo", ROOT / "henasy" / "core" / "buildinfo.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class BuildPyWithCommit(build_py):
    """``build_py`` that adds ``henasy/_build_info.py`` (the source commit) to the wheel."""

    def run(self) -> None:
        super().run()
        _buildinfo().write_build_info(ROOT, Path(self.build_lib) / "henasy")


class SdistWithCommit(sdist):
    """``sdist`` that ships ``henasy/_build_info.py``, so a wheel built from the sdist names the commit."""

    def make_release_tree(self, base_dir: str, files: list[str]) -> None:
        super().make_release_tree(base_dir, files)
        _buildinfo().write_build_info(ROOT, Path(base_dir) / "henasy")


setup(cmdclass={"build_py": BuildPyWithCommit, "sdist": SdistWithCommit})
