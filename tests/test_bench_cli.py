"""``bench eval``: table + atomic JSON records, ``--limit`` → partial, ``--ckpt`` (trainer last.pt), errors."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch
from bench_support import one_thread  # noqa: F401 (autouse fixture)

from benchmarks.runner import load_model
from henasy.cli import main


def _eval(*argv: str) -> int:
    return main(["eval", *argv, "--num-workers", "0", "--no-progress"])


def test_eval_prints_a_table_and_writes_partial_records(
    synth_tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "res" / "mcq.json"
    assert _eval("lavila_tiny", "egomcq", "--data", str(synth_tiny), "--limit", "2", "--out", str(out)) == 0
    printed = capsys.readouterr().out
    assert "egomcq" in printed and "inter" in printed and "intra" in printed and str(out) in printed
    (rec,) = json.loads(out.read_text())
    assert rec["benchmark"] == "egomcq" and rec["partial"] is True and rec["n_items"] == 2
    assert not list(out.parent.glob(".*.tmp"))  # atomic write left no temporary file


def test_eval_loads_a_trainer_checkpoint(synth_tiny: Path, tmp_path: Path) -> None:
    trained = load_model("lavila_tiny")
    with torch.no_grad():
        for p in trained.parameters():
            p.add_(0.01)
    ckpt = tmp_path / "last.pt"
    torch.save(
        {"format": "henasy-train", "version": 1, "model": trained.state_dict(), "progress": {"step": 3}}, ckpt
    )
    loaded = load_model("lavila_tiny", str(ckpt))
    for key, value in trained.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[key], value)
    out = tmp_path / "r.json"
    assert (
        _eval(
            "lavila_tiny",
            "egomcq",
            "--data",
            str(synth_tiny),
            "--limit",
            "1",
            "--ckpt",
            str(ckpt),
            "--out",
            str(out),
        )
        == 0
    )
    (rec,) = json.loads(out.read_text())
    assert rec["model"]["checkpoint"] == str(ckpt)
    assert rec["model"]["checkpoint_sha256"] == hashlib.sha256(ckpt.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["lavila_tiny", "egtea", "--option", "egtea.protocol=epic"], "option protocol='epic' is not valid"),
        (["lavila_tiny", "egomcq", "--set", "trainer.lr=1"], "--set 'trainer.lr=1'"),
        (["lavila_tiny", "egomcqq"], "unknown benchmark 'egomcqq'"),
    ],
)
def test_eval_errors_exit_2_with_a_message(
    argv: list[str], message: str, synth_tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    assert _eval(*argv, "--data", str(synth_tiny), "--out", str(tmp_path / "unused.json")) == 2
    assert message in capsys.readouterr().err
