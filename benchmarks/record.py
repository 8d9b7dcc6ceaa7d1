"""Result records of ``benchmarks.runner.evaluate``: building, hashing weights, and atomic JSON writing.

One record per benchmark run (the shape sweeps, tables and paired bootstraps read; lm-eval's
``EvalResults`` idea, style anchors §1 and lesson 9)::

    {"schema_version", "benchmark", "protocol": {"version", ...every protocol choice}, "split",
     "metrics": {name: float, percent}, "n_items", "partial", "model": {"id", "checkpoint",
     "checkpoint_sha256"}, "wall_time_s", "data_root", "per_item": {...}, "artifacts": {...}, "env": {...}}

``partial`` is true when ``--limit`` cut the evaluated set, so a table can refuse the number. NaN values
(a metric the official formula leaves undefined) are written as JSON ``null``.
"""

from __future__ import annotations

import hashlib
import math
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from henasy.atomic import atomic_write_json

SCHEMA_VERSION = 1
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


def jsonable(value: Any) -> Any:
    """``value`` with numpy scalars/arrays turned into Python values and NaN/inf into ``None``."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer, int)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return float(value) if math.isfinite(float(value)) else None
    if isinstance(value, Path):
        return str(value)
    return value


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
    """The JSON-ready result record of one benchmark run."""
    return jsonable(
        {
            "schema_version": SCHEMA_VERSION,
            "benchmark": benchmark,
            "protocol": result.protocol,
            "split": result.split,
            "metrics": result.metrics,
            "n_items": result.n_items,
            "partial": result.n_items < result.total_items,
            "model": {"id": model_id, "checkpoint": checkpoint, "checkpoint_sha256": checkpoint_sha256},
            "wall_time_s": round(float(wall_time_s), 3),
            "data_root": str(Path(data_root).resolve()),
            "per_item": result.per_item,
            "artifacts": result.artifacts,
            "env": environment(device),
        }
    )


def write_records(path: str | Path, records: list[dict[str, Any]]) -> Path:
    """Write ``records`` as one JSON list to ``path`` atomically (NaN → null)."""
    return atomic_write_json(path, jsonable(records))
