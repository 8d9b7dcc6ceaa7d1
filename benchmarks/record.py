"""What a benchmark protocol returns (``BenchResult``), weight hashing, and the result record built from it.

The record itself is ``henasy.core.records.BenchmarkResult`` (its schema, version and loader live there); this
module is the benchmark side: ``make_record`` adds the model, timing, data-root and environment fields to a
protocol's ``BenchResult``. ``partial`` is true when ``--limit`` cut the evaluated set or ``--on-missing skip``
dropped items whose videos were missing/unreadable, so a table can refuse the number. NaN values (a metric
the official formula leaves undefined) are written as JSON ``null``. The record's provenance (``date``,
``git_hash``, ``henasy_bench_version`` at its top) is filled by ``BenchmarkResult`` itself when it is made.
"""

from __future__ import annotations

import hashlib
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from henasy.core.records import BenchmarkResult, ModelRef, jsonable, write_record

__all__ = [
    "BenchResult",
    "environment",
    "file_sha256",
    "jsonable",
    "make_record",
    "weights_sha256",
    "write_records",
]
_READ_BLOCK = 1 << 20


@dataclass
class BenchResult:
    """What a benchmark protocol returns; the runner adds model, timing and data-root fields."""

    protocol: dict[str, Any]  # every protocol choice, including "version"
    split: str
    metrics: dict[str, float]  # percent, as the paper's tables
    n_items: int
    total_items: int  # items in the full split (partial when n_items < total_items)
    per_item: dict[str, Any]
    artifacts: dict[str, str] = field(default_factory=dict)  # files written (official prediction files)
    # --on-missing skip: EvalContext.skipped_summary (skipped_items, skipped_videos[, _total]); None: none
    skipped: dict[str, Any] | None = None


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in 1-MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_READ_BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


def weights_sha256(model: Any) -> str:
    """Hex SHA-256 over a model's state_dict (names, dtypes, shapes and bytes, in key order).

    Two models with equal weights hash equally whatever file they came from, so the feature cache is never
    reused across different weights (e.g. an untrained model and a checkpoint).
    """
    import torch

    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        t = tensor.detach().to("cpu").contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def environment(device: str) -> dict[str, str]:
    """Versions and device that produced a record."""
    import torch

    from henasy import __version__

    return {
        "henasy_bench": __version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "device": str(device),
    }


def make_record(
    benchmark: str,
    result: BenchResult,
    *,
    model_id: str,
    checkpoint: str | None,
    checkpoint_sha256: str | None,
    wall_time_s: float,
    data_root: str | Path,
    device: str,
) -> dict[str, Any]:
    """The JSON-ready result record of one benchmark run (partial under --limit or skipped items)."""
    skipped = result.skipped or {}
    return BenchmarkResult(
        benchmark=benchmark,
        protocol=result.protocol,
        split=result.split,
        metrics=result.metrics,
        n_items=result.n_items,
        partial=result.n_items < result.total_items or bool(skipped.get("skipped_items")),
        model=ModelRef(model_id, checkpoint, checkpoint_sha256),
        wall_time_s=round(float(wall_time_s), 3),
        data_root=str(Path(data_root).resolve()),
        per_item=result.per_item,
        artifacts=result.artifacts,
        env=environment(device),
        skipped_items=int(skipped.get("skipped_items", 0)),
        skipped_videos=list(skipped.get("skipped_videos", [])),
        skipped_videos_total=int(skipped.get("skipped_videos_total", 0)),
    ).to_dict()


def write_records(path: str | Path, records: list[dict[str, Any]]) -> Path:
    """Write ``records`` as one JSON list to ``path`` atomically (NaN → null)."""
    return write_record(
        path, [BenchmarkResult.from_dict(r, f"{path}: record {i}") for i, r in enumerate(records)]
    )
