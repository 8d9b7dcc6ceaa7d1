"""Helpers shared by the sweep tests (local executor and SLURM): polling and the uninterrupted reference run."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from henasy.cli import main


def wait_for(what: str, predicate: Callable[[], bool], limit_s: float = 150.0, every_s: float = 0.05) -> None:
    """Poll ``predicate`` until it holds; fail the test naming ``what`` after ``limit_s`` seconds."""
    deadline = time.monotonic() + limit_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(every_s)


def weights(run_dir: Path) -> dict[str, torch.Tensor]:
    """The model weights of a run's ``last.pt``."""
    return torch.load(run_dir / "last.pt", map_location="cpu", weights_only=True)["model"]


def reference_sweep(data: Sequence[str], out: Path, label: str = "long") -> int:
    """Run row ``label`` of ``spec.yaml`` uninterrupted, in-process, into ``out`` (same run id, no MLflow)."""
    return main(
        [
            "sweep",
            "spec.yaml",
            *data,
            "--only",
            label,
            "--executor",
            "debug",
            "--out",
            str(out),
            "--no-tracking",
        ]
    )
