"""Shared pytest fixtures: tiny synthetic datasets generated once per test session.

``synth_tiny`` is the tiny synthetic dataset (seed 0, LaViLa chunk layout ``<uid>.mp4/<start_sec>.mp4``);
``synth_tiny_egovlp`` is the same dataset with EgoVLP chunks ``<uid>/<k>.mp4``. Both are read-only for
tests: copy a file before modifying it.
"""

from __future__ import annotations

from pathlib import Path

import pytest


def _tiny(tmp_path_factory: pytest.TempPathFactory, name: str, layout: str) -> Path:
    from henasy.synth import generate

    out = tmp_path_factory.mktemp(name)
    generate(out, seed=0, size="tiny", layout=layout, progress=False)
    return out


@pytest.fixture(scope="session")
def synth_tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Root of the tiny synthetic dataset (seed 0, LaViLa video layout)."""
    return _tiny(tmp_path_factory, "synth_tiny", "lavila")


@pytest.fixture(scope="session")
def synth_tiny_egovlp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Root of the tiny synthetic dataset (seed 0) with EgoVLP-layout video chunks."""
    return _tiny(tmp_path_factory, "synth_tiny_egovlp", "egovlp")


def pytest_sessionstart(session: pytest.Session) -> None:
    """Under CI (HENASY_REQUIRE_SLURM=1, set by .ci/run) a missing SLURM cluster is an error, not a skip."""
    import os

    if os.environ.get("HENASY_REQUIRE_SLURM") != "1":
        return
    from sweeps.executors import slurm_problem

    problem = slurm_problem()
    if problem:
        pytest.exit(
            f"HENASY_REQUIRE_SLURM=1 but SLURM is not usable: {problem} (scripts/slurm_local.sh start)",
            returncode=1,
        )
