"""Shared pytest fixtures: tiny synthetic datasets generated once per test session.

``synth_tiny`` is the tiny synthetic dataset (seed 0, LaViLa chunk layout ``<uid>.mp4/<start_sec>.mp4``);
``synth_tiny_egovlp`` is the same dataset with EgoVLP chunks ``<uid>/<k>.mp4``. Both are read-only for
tests: copy a file before modifying it.
"""

from __future__ import annotations

from collections.abc import Iterator
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


@pytest.fixture(scope="session", autouse=True)
def _private_fork_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Local sweep jobs of the tests use fork servers (``sweeps.forkserver``) of their own, never the user's;
    they are stopped when the session ends."""
    from sweeps import forkserver

    folder = tmp_path_factory.mktemp("forkserver")
    with pytest.MonkeyPatch.context() as patch:  # restores both variables after the servers are stopped
        patch.setenv(forkserver.ENV_DIR, str(folder))
        patch.setenv(forkserver.ENV_IDLE, "120")
        yield
        forkserver.stop_servers(folder)


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


# ------------------------------------------------------------------ the bad-input corpus report
# `pytest -m bad_input --bad-input-report` (scripts/bad_inputs.sh) prints one verdict line per case of the
# corpus (tests marked `bad_input`, judged by tests/bad_input_support.py): "clear error" when the case
# passes, "WRONG" / "UNCLEAR" from the first word of a failing case's assertion message.
_BAD_INPUT_VERDICTS: list[tuple[str, str, str]] = []


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--bad-input-report",
        action="store_true",
        help="print one verdict line per test marked bad_input (clear error / UNCLEAR / WRONG)",
    )


def _verdict(report: pytest.TestReport) -> tuple[str, str]:
    if report.passed:
        return "clear error", ""
    crash = getattr(report.longrepr, "reprcrash", None)  # the exception line, not the traceback's source
    text = crash.message if crash is not None else report.longreprtext
    first = text.strip().splitlines()[0] if text.strip() else ""
    for word in ("WRONG", "UNCLEAR"):
        for prefix in (f"{word}: ", f"AssertionError: {word}: "):
            if first.startswith(prefix):
                return word, first[len(prefix) :]
    return "TEST ERROR", first


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if "bad_input" not in report.keywords:
        return
    if report.when == "call" or (report.when == "setup" and not report.passed):
        if report.skipped:
            return
        verdict, detail = _verdict(report)
        _BAD_INPUT_VERDICTS.append((report.nodeid, verdict, detail))


def pytest_terminal_summary(terminalreporter: object, exitstatus: int, config: pytest.Config) -> None:
    if not config.getoption("--bad-input-report") or not _BAD_INPUT_VERDICTS:
        return
    write = terminalreporter.write_line  # type: ignore[attr-defined]
    write("")
    write("bad-input corpus: one line per case")
    for nodeid, verdict, detail in _BAD_INPUT_VERDICTS:
        write(f"{verdict:<12} {nodeid}" + (f"  ({detail})" if detail else ""))
    counts: dict[str, int] = {}
    for _, verdict, _ in _BAD_INPUT_VERDICTS:
        counts[verdict] = counts.get(verdict, 0) + 1
    summary = ", ".join(f"{n} {v}" for v, n in sorted(counts.items()))
    write(f"{len(_BAD_INPUT_VERDICTS)} cases: {summary}")
