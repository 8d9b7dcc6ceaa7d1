"""Training callbacks: the one interface through which the trainer reports progress, and the JSONL logger.

The trainer calls every callback on rank 0 only: ``on_train_start(info)`` once (``info`` says whether the
run resumed and from which step), ``on_step(step, metrics)`` every ``trainer.log_every`` optimizer steps,
``on_epoch_end(epoch, metrics)``, ``on_checkpoint(path)`` after each ``last.pt`` write and
``on_train_end(summary)``. Trackers (the sweep capability's MLflow logger) implement the same interface.
An exception raised by a callback stops the run (tests use that to simulate a kill).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from henasy.core.atomic import atomic_write_text, explain_write_failure


class Callback:
    """Base class: every hook is a no-op; override the ones you need."""

    def on_train_start(self, info: dict[str, Any]) -> None:
        """Called before the first step; ``info`` has ``start_step``, ``total_steps``, ``resumed``, ``run_dir``."""

    def on_step(self, step: int, metrics: dict[str, float]) -> None:
        """Called after optimizer step ``step`` (1-based) with its loss terms, ``lr``, ``clips_per_s``..."""

    def on_epoch_end(self, epoch: int, metrics: dict[str, float]) -> None:
        """Called after the last step of ``epoch`` (0-based) with the epoch's mean loss terms."""

    def on_checkpoint(self, path: Path) -> None:
        """Called after ``path`` (``last.pt``) was written atomically."""

    def on_train_end(self, summary: dict[str, Any]) -> None:
        """Called once with the summary, before it is written to ``summary.json`` (keys may be added)."""


class JsonlMetrics(Callback):
    """Append one JSON line per reported step (and per epoch end) to ``<run_dir>/metrics.jsonl``.

    On resume the file is first cut back to the rows of steps the checkpoint covers, so a run killed after
    its last checkpoint does not end up with duplicated steps.
    """

    def __init__(self, run_dir: str | Path, filename: str = "metrics.jsonl") -> None:
        self.path = Path(run_dir) / filename

    def on_train_start(self, info: dict[str, Any]) -> None:
        start = int(info.get("start_step", 0))
        kept: list[str] = []
        if start > 0 and self.path.exists():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line cut short by a kill
                if int(row.get("step", 0)) <= start:
                    kept.append(line)
        atomic_write_text(self.path, "".join(f"{line}\n" for line in kept))

    def on_step(self, step: int, metrics: dict[str, float]) -> None:
        self._append({"step": step, **metrics})

    def on_epoch_end(self, epoch: int, metrics: dict[str, float]) -> None:
        self._append({"step": int(metrics.get("step", 0)), "event": "epoch_end", "epoch": epoch, **metrics})

    def _append(self, row: dict[str, Any]) -> None:
        with explain_write_failure(self.path), open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")  # a line cut short by a full disk is skipped by read_metrics


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """The rows of a ``metrics.jsonl`` file (complete lines only)."""
    rows = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows
