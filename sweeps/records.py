"""Files of one run directory: the result record, per-benchmark records, the live state and the error tail.

``<run_dir>/result.json`` is the run's source of truth (anchors-style.md lesson 6: files, not pickles): it is
written atomically once training and every requested benchmark are done, and a run is *finished* exactly
when it holds a complete record for the same run id and benchmarks. ``eval/<benchmark>.json`` keep each
benchmark's records as they finish (evaluation resumes at benchmark granularity), ``state.json`` says what
the job is doing now (for ``bench status``), ``error.txt`` keeps the traceback of a failed attempt.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from henasy.atomic import atomic_write_json, atomic_write_text

SCHEMA_VERSION = 1
RESULT_NAME = "result.json"
STATE_NAME = "state.json"
ERROR_NAME = "error.txt"
EVAL_DIR = "eval"
RUN_NAME = "run.json"  # the resolved Run (written by the driver at submission)


def read_json(path: Path) -> Any:
    """Parsed JSON of ``path``, or None when it is missing or cut short."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def read_result(run_dir: str | Path) -> dict[str, Any] | None:
    """The result record of ``run_dir`` (None if there is none or it is unreadable)."""
    data = read_json(Path(run_dir) / RESULT_NAME)
    return data if isinstance(data, dict) else None


def is_complete(record: dict[str, Any] | None, run_id: str, benchmarks: list[str] | tuple[str, ...]) -> bool:
    """True when ``record`` is a complete result of run ``run_id`` with a record for every benchmark."""
    if not record or record.get("complete") is not True or record.get("run_id") != run_id:
        return False
    done = {r.get("benchmark") for r in record.get("records", []) if isinstance(r, dict)}
    return set(benchmarks) <= done


def run_finished(run_dir: str | Path, run_id: str, benchmarks: list[str] | tuple[str, ...]) -> bool:
    """Whether ``run_dir`` holds a complete result for this run (the rerun skip rule)."""
    return is_complete(read_result(run_dir), run_id, benchmarks)


def write_result(run_dir: str | Path, record: dict[str, Any]) -> Path:
    """Write the result record atomically."""
    return atomic_write_json(Path(run_dir) / RESULT_NAME, record)


def flat_metrics(records: list[dict[str, Any]]) -> dict[str, float]:
    """``{"<benchmark>.<metric>": value}`` over result records (the names specs and MLflow use)."""
    out: dict[str, float] = {}
    for record in records:
        for name, value in (record.get("metrics") or {}).items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                out[f"{record.get('benchmark')}.{name}"] = float(value)
    return out


TRAIN_SUMMARY_KEYS = ("first_loss", "final_loss")  # results only; timings stay in the record's "train"


def train_metrics(train: dict[str, Any] | None) -> dict[str, float]:
    """``train.final_loss`` etc. from a training summary (usable as a search objective)."""
    out = {}
    for key in TRAIN_SUMMARY_KEYS:
        value = (train or {}).get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out[f"train.{key}"] = float(value)
    return out


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
