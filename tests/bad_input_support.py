"""Shared helpers of the bad-input corpus (tests marked ``bad_input``): run a command, judge its failure.

Every case of the corpus feeds the tool a hostile or broken input and checks that it fails with a *clear
error*: the expected exit status, no Python traceback, and a message that names the file / key / setting
at fault. A case that fails says which way in the first word of its assertion message, which
``scripts/bad_inputs.sh`` turns into one verdict line per case:

- ``WRONG``: the command did something untrue or unsafe (exit 0 on bad input, code ran, data was
  overwritten, a half-written file was left behind);
- ``UNCLEAR``: it refused, but with a traceback or a message that does not name what is wrong.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import traceback
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


@dataclass
class CliResult:
    """What one ``bench`` invocation did: exit status, captured output, and an escaped exception if any."""

    argv: list[str]
    code: int
    out: str
    err: str
    traceback: str | None = None  # set when an exception escaped the command (in-process runs)

    def describe(self) -> str:
        text = f"bench {' '.join(self.argv)} → exit {self.code}\n--- stderr ---\n{self.err[-3000:]}"
        if self.traceback:
            text += f"\n--- escaped exception ---\n{self.traceback[-3000:]}"
        return text


def run_bench(argv: Sequence[str], *, cwd: str | Path | None = None) -> CliResult:
    """Run ``bench ARGV`` in this process (fast: torch is imported once per test session).

    An exception escaping ``henasy.cli.main`` is what a user sees as a traceback; it is caught and kept in
    ``CliResult.traceback`` so that the case can be judged ``UNCLEAR`` instead of crashing the test.
    """
    from henasy.cli import main

    argv = [str(a) for a in argv]
    out, err = io.StringIO(), io.StringIO()
    old_cwd = os.getcwd()
    tb = None
    try:
        if cwd is not None:
            os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(argv)
            except SystemExit as exit_:  # argparse errors exit 2 with a usage line
                code = exit_.code if isinstance(exit_.code, int) else 1
            except Exception:  # noqa: BLE001 - judged below as a traceback
                tb = traceback.format_exc()
                code = 1
    finally:
        os.chdir(old_cwd)
    return CliResult(argv, int(code or 0), out.getvalue(), err.getvalue(), tb)


def run_bench_process(
    argv: Sequence[str],
    *,
    cwd: str | Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 300,
    stdin: str | None = None,
) -> CliResult:
    """Run ``bench ARGV`` as a separate process (for locks, signals, and anything global to a process)."""
    argv = [str(a) for a in argv]
    full_env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    proc = subprocess.run(
        [sys.executable, "-m", "henasy.cli", *argv],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        input=stdin,
    )
    tb = proc.stderr if "Traceback (most recent call last)" in proc.stderr else None
    return CliResult(argv, proc.returncode, proc.stdout, proc.stderr, tb)


def expect_clear_error(
    result: CliResult, *, mentions: Iterable[str] = (), code: int = 2, absent: Iterable[str] = ()
) -> str:
    """Assert a clear refusal: exit ``code``, no traceback, and every string in ``mentions`` in the message.

    ``absent``: strings that must not appear (for example a claim that would be untrue). Returns the
    message (stderr) for further checks.
    """
    if result.code == 0:
        raise AssertionError(f"WRONG: the bad input was accepted (exit 0)\n{result.describe()}")
    if result.traceback or "Traceback (most recent call last)" in result.err:
        raise AssertionError(f"UNCLEAR: a traceback instead of a message\n{result.describe()}")
    message = result.err + result.out
    missing = [m for m in mentions if m not in message]
    if missing:
        raise AssertionError(f"UNCLEAR: the message does not mention {missing}\n{result.describe()}")
    untrue = [m for m in absent if m in message]
    if untrue:
        raise AssertionError(f"WRONG: the message says {untrue}\n{result.describe()}")
    if result.code != code:
        raise AssertionError(f"UNCLEAR: exit status {result.code}, expected {code}\n{result.describe()}")
    return message


def expect(condition: bool, what: str) -> None:
    """Assert a safety property of a case (``WRONG: what`` when it does not hold)."""
    if not condition:
        raise AssertionError(f"WRONG: {what}")


def leftovers(folder: str | Path) -> list[str]:
    """Temporary files an interrupted atomic write would leave behind (``.NAME.*.tmp``) under ``folder``."""
    return sorted(str(p) for p in Path(folder).rglob(".*.tmp"))
