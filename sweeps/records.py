"""Files of one run directory: where its records go, whether it is finished, the live state and the error tail.

``<run_dir>/result.json`` is the run's source of truth, a ``henasy.core.records.RunResult`` (schema and loader
there): it is written atomically once training and every requested benchmark are done, and a run is
*finished* exactly when it holds a complete record for the same run id and benchmarks. ``eval/<benchmark>.json`` keep each
benchmark's records as they finish (evaluation resumes at benchmark granularity), ``state.json`` says what
the job is doing now (for ``bench status``), ``error.txt`` keeps the traceback of a failed attempt.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from henasy.core.atomic import atomic_write_json, atomic_write_text
from henasy.core.records import EVAL_DIR, RESULT_NAME, RUN_KIND, RunResult, check_version

__all__ = ["EVAL_DIR", "RESULT_NAME"]  # the run-folder names of henasy.core.records, for the sweep's readers
STATE_NAME = "state.json"
ERROR_NAME = "error.txt"
RUN_NAME = "run.json"  # the resolved Run (written by the driver at submission)


def read_json(path: Path) -> Any:
    """Parsed JSON of ``path``, or None when it is missing or cut short."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def read_result(run_dir: str | Path) -> dict[str, Any] | None:
    """The result record of ``run_dir`` (None if there is none or it is unreadable).

    A record of a schema version this code does not read is refused (``BenchError`` naming the file), not
    taken for missing: rerunning would overwrite a newer tool's result.
    """
    path = Path(run_dir) / RESULT_NAME
    data = read_json(path)
    if not isinstance(data, dict):
        return None
    check_version(data, RUN_KIND, str(path))
    return data


def is_complete(record: dict[str, Any] | None, run_id: str, benchmarks: list[str] | tuple[str, ...]) -> bool:
    """True when ``record`` is a complete result of run ``run_id`` with a record for every benchmark."""
    if not record or record.get("complete") is not True or record.get("run_id") != run_id:
        return False
    done = {r.get("benchmark") for r in record.get("records", []) if isinstance(r, dict)}
    return set(benchmarks) <= done


def run_finished(run_dir: str | Path, run_id: str, benchmarks: list[str] | tuple[str, ...]) -> bool:
    """Whether ``run_dir`` holds a complete result for this run (the rerun skip rule)."""
    return is_complete(read_result(run_dir), run_id, benchmarks)


def write_result(run_dir: str | Path, record: RunResult | dict[str, Any]) -> Path:
    """Write the result record atomically (a dict is read as a ``RunResult`` first, so it is checked)."""
    path = Path(run_dir) / RESULT_NAME
    if not isinstance(record, RunResult):
        record = RunResult.from_dict(record, str(path))
    return atomic_write_json(path, record.to_dict())


def write_state(run_dir: str | Path, phase: str, **info: Any) -> None:
    """Record what the job is doing (``waiting``, ``training``, ``evaluating``, ``finished``, ``failed``...)."""
    atomic_write_json(
        Path(run_dir) / STATE_NAME, {"phase": phase, "updated_at": time.time(), **info}, indent=None
    )


def read_state(run_dir: str | Path) -> dict[str, Any]:
    data = read_json(Path(run_dir) / STATE_NAME)
    return data if isinstance(data, dict) else {}


def write_error(run_dir: str | Path, text: str) -> None:
    atomic_write_text(Path(run_dir) / ERROR_NAME, text)


def error_tail(run_dir: str | Path, lines: int = 15) -> str:
    """The last ``lines`` lines of the run's ``error.txt`` ('' when there is none)."""
    try:
        text = (Path(run_dir) / ERROR_NAME).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.rstrip().splitlines()[-lines:])


def eval_record_path(run_dir: str | Path, benchmark: str) -> Path:
    return Path(run_dir) / EVAL_DIR / f"{benchmark}.json"
