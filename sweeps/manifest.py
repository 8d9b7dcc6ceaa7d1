"""The sweep manifest: which job ran which run, where, and with what outcome (``<sweep_dir>/manifest.json``).

``bench status`` and ``bench sync`` reattach from this file alone (submitit #1625/#1627:
keep a work → job id map on disk, never block a shell on ``job.result()``). Every change is a
read-modify-write under an exclusive ``fcntl`` lock on ``manifest.json.lock`` and an atomic replace, so two
``bench sweep`` invocations on one folder, or a crash mid-write, never leave a torn or stale-overwritten file.
"""

from __future__ import annotations

import contextlib
import fcntl
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from henasy.core.atomic import atomic_write_json
from henasy.core.errors import BenchError
from sweeps.expand import Run
from sweeps.records import read_json

MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 1


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock on ``path`` (created if needed) for the duration of the block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def manifest_path(sweep_dir: str | Path) -> Path:
    return Path(sweep_dir) / MANIFEST_NAME


def read_manifest(sweep_dir: str | Path) -> dict[str, Any]:
    """The manifest of ``sweep_dir``; a ``BenchError`` when there is none."""
    path = manifest_path(sweep_dir)
    data = read_json(path)
    if not isinstance(data, dict) or "runs" not in data:
        raise BenchError(
            f"{path}: no sweep manifest here; run `bench sweep SPEC` first (or pass the sweep folder)"
        )
    return data


def update_manifest(
    sweep_dir: str | Path, change: Callable[[dict[str, Any]], None], **header: Any
) -> dict[str, Any]:
    """Apply ``change(manifest)`` under the lock and write the result atomically; returns the new manifest.

    A missing manifest starts from ``header`` (sweep name, spec path, scale, executor, tracking URI...).
    """
    path = manifest_path(sweep_dir)
    with file_lock(path.with_name(MANIFEST_NAME + ".lock")):
        data = read_json(path)
        if not isinstance(data, dict) or "runs" not in data:
            data = {"schema_version": MANIFEST_VERSION, "created_at": time.time(), **header, "runs": {}}
        else:
            data.update({k: v for k, v in header.items() if v is not None})
        change(data)
        data["updated_at"] = time.time()
        atomic_write_json(path, data)
    return data


def record_run(data: dict[str, Any], run: Run, run_dir: str) -> dict[str, Any]:
    """The manifest entry of ``run`` (created if new); static fields refreshed."""
    entry = data["runs"].setdefault(run.run_id, {"attempts": []})
    entry.update(
        {
            "label": run.label,
            "index": run.index,
            "table": run.table,
            "model": run.model,
            "benchmarks": list(run.benchmarks),
            "run_dir": run_dir,
            "stage": run.stage,  # the stage's name when the run is a stage
            "stages": run.stage_ids,  # run ids of the stages this run needs (bench status: blocked when one failed)
        }
    )
    return entry


def record_submission(entry: dict[str, Any], job_id: str, executor: str, folder: str) -> None:
    """Note a new job for this run (earlier attempts are kept in ``attempts``)."""
    attempt = {"job_id": job_id, "executor": executor, "folder": folder, "submitted_at": time.time()}
    entry["attempts"].append(attempt)
    entry.update({"job_id": job_id, "executor": executor, "submitit_folder": folder, "status": "submitted"})
