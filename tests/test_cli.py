"""Tests of the ``bench`` entry point: help, listing, error handling, and that it starts without torch."""

from __future__ import annotations

import subprocess
import sys

import pytest

from henasy.cli import main


def test_help_lists_subcommands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for command in (
        "list",
        "data",
        "info",
        "ckpt",
        "train",
        "eval",
        "ground",
        "sweep",
        "status",
        "sync",
        "table",
        "compare",
    ):
        assert command in out
    assert "examples:" in out


def test_list_prints_every_registry(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for kind in ("models:", "benchmarks:", "sweeps:", "tables:"):
        assert kind in out
    assert "lavila_tiny" in out


def test_list_one_kind(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", "models"]) == 0
    out = capsys.readouterr().out
    assert "models:" in out and "benchmarks:" not in out


def test_cli_help_and_list_do_not_import_torch() -> None:
    code = (
        "import sys\n"
        "from henasy.cli import main\n"
        "main(['list'])\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "assert 'torch' not in sys.modules, 'bench list / --help imported torch'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
