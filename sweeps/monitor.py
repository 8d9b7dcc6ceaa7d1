"""Following a sweep: per-row state from the manifest + run directories + scheduler, and the live display.

A row is *finished* when its run directory holds a complete result record; otherwise its job's scheduler
state (``sweeps.executors``) and the job's own ``state.json`` say whether it is pending, waiting for a local
slot, training (step / total), evaluating (which benchmark), requeued or failed. A job that ended without a
result is failed; if it died without a word (SIGKILL, ``scancel``, OOM) its MLflow run still says RUNNING,
so ``reconcile`` sets it FAILED (mlflow #10510) and notes why in ``state.json``.

A run that needs a stage is *blocked* (not failed) when that stage failed or is blocked itself: its local job
ended saying so (``state.json`` phase ``blocked``), or its SLURM job pends on a dependency that can never be
met (``DependencyNeverSatisfied``) — or, in any case, when the stage's own row is failed or blocked. A rerun
of the sweep submits the stage again and the blocked runs after it.
"""

from __future__ import annotations

import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sweeps import executors, records

FINISHED, FAILED, RUNNING, PENDING, TODO = "finished", "failed", "running", "pending", "todo"
BLOCKED = "blocked"  # a stage it needs failed (or is blocked): it cannot start until a rerun
TERMINAL = (FINISHED, FAILED, TODO, BLOCKED)
NEVER_SATISFIED = "DependencyNeverSatisfied"  # SLURM's reason for a job whose afterok can no longer hold


@dataclass
class RowStatus:
    """What one sweep row is doing now."""

    run_id: str
    label: str
    state: str  # finished | failed | running | pending | todo
    detail: str = ""  # "training 40/120", "waiting for a slot", "evaluating egomcq", scheduler state...
    job_id: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    error: str = ""  # tail of the error of a failed job


def job_states(manifest: dict[str, Any], handles: dict[str, Any] | None = None) -> dict[str, tuple[str, str]]:
    """run_id → (harness job state, scheduler detail) for every run that has a job."""
    handles = handles or {}
    out: dict[str, tuple[str, str]] = {}
    slurm_ids: dict[str, str] = {}
    for run_id, entry in manifest["runs"].items():
        job_id, kind = entry.get("job_id"), entry.get("executor")
        if not job_id:
            continue
        if kind == "slurm":
            slurm_ids[str(job_id)] = run_id
        elif kind == "local":
            handle = handles.get(run_id)
            process = getattr(handle, "_process", None)
            if process is not None:
                out[run_id] = (executors.RUNNING if process.poll() is None else executors.ENDED, "")
            else:
                out[run_id] = (executors.local_state(str(job_id)), "")
        else:  # debug jobs live and die with the process that ran them
            out[run_id] = (executors.ENDED, "")
    for job_id, (state, raw) in executors.slurm_states(list(slurm_ids)).items():
        out[slurm_ids[job_id]] = (state, raw)
    for run_id in slurm_ids.values():
        out.setdefault(run_id, (executors.UNKNOWN, ""))
    return out


def row_status(run_id: str, entry: dict[str, Any], job: tuple[str, str] | None) -> RowStatus:
    """Combine the result file, the job state and ``state.json`` into one ``RowStatus``."""
    run_dir = Path(entry["run_dir"])
    label = entry.get("label", run_id)
    record = records.read_result(run_dir)
    state, raw = job or (executors.UNKNOWN, "")
    phase = records.read_state(run_dir)
    job_id = entry.get("job_id")
    if records.is_complete(record, run_id, entry.get("benchmarks", [])):
        if state == executors.RUNNING and phase.get("phase") != "finished":  # result written, MLflow next
            return RowStatus(run_id, label, RUNNING, "recording the result", job_id)
        return RowStatus(run_id, label, FINISHED, "", job_id, dict(record.get("metrics", {})))  # type: ignore[union-attr]
    if not job_id:
        return RowStatus(run_id, label, TODO, "not submitted")
    if state == executors.ENDED and phase.get("phase") == BLOCKED:
        return RowStatus(run_id, label, BLOCKED, str(phase.get("detail") or "a stage failed"), job_id)
    if state == executors.PENDING and NEVER_SATISFIED in raw:
        return RowStatus(run_id, label, BLOCKED, "a stage it needs failed (DependencyNeverSatisfied)", job_id)
    if state == executors.ENDED:
        error = records.error_tail(run_dir) or executors.job_log_tail(
            entry.get("submitit_folder", ""), str(job_id)
        )
        detail = phase.get("error") or (raw and f"job {raw.lower()}") or "job ended without a result"
        return RowStatus(run_id, label, FAILED, str(detail), job_id, error=error)
    if state == executors.PENDING:
        if "(Dependency)" in raw and entry.get("stages"):
            return RowStatus(run_id, label, PENDING, "waiting for its stage(s) (afterok)", job_id)
        word, _, reason = (raw or "pending").partition(" ")
        return RowStatus(
            run_id, label, PENDING, f"{word.lower()} {reason}".strip() + _phase_hint(phase), job_id
        )
    if state == executors.RUNNING:
        if phase.get("phase") == "waiting" and phase.get("stage"):  # a local job waiting for its stage
            return RowStatus(run_id, label, PENDING, _describe(phase), job_id)
        return RowStatus(run_id, label, RUNNING, _describe(phase), job_id)
    return RowStatus(run_id, label, PENDING, "submitted", job_id)


def _phase_hint(phase: dict[str, Any]) -> str:
    return " (requeued)" if phase.get("phase") == "requeued" else ""


def _describe(phase: dict[str, Any]) -> str:
    name = phase.get("phase", "starting")
    if name == "training":
        loss = phase.get("loss")
        text = f"training {phase.get('step', 0)}/{phase.get('total_steps', '?')}"
        return text + (f" loss {loss:.3f}" if isinstance(loss, (int, float)) else "")
    if name == "evaluating":
        return f"evaluating {phase.get('benchmark', '')}"
    if name == "waiting":
        return str(phase.get("detail") or "waiting for a slot")
    return str(name)


def statuses(
    manifest: dict[str, Any], handles: dict[str, Any] | None = None, run_ids: list[str] | None = None
) -> list[RowStatus]:
    """Every row's status, in spec order (stages first); runs after a failed or blocked stage are blocked."""
    jobs = job_states(manifest, handles)
    entries = manifest["runs"]
    order = run_ids or sorted(entries, key=lambda r: entries[r].get("index", 0))
    rows = [row_status(r, entries[r], jobs.get(r)) for r in order if r in entries]
    return block_after_failed_stages(rows, entries, {r: jobs.get(r) for r in entries})


def block_after_failed_stages(
    rows: list[RowStatus], entries: dict[str, Any], jobs: dict[str, tuple[str, str] | None]
) -> list[RowStatus]:
    """Rows not finished whose stage (by its manifest entry) is failed or blocked become blocked."""
    known = {row.run_id: row for row in rows}

    def stage_state(run_id: str, seen: tuple[str, ...] = ()) -> str:
        if run_id not in known and run_id in entries and run_id not in seen:
            known[run_id] = row_status(run_id, entries[run_id], jobs.get(run_id))
        row = known.get(run_id)
        if row is None:
            return TODO
        if row.state not in (FINISHED, FAILED, BLOCKED):
            for dep in entries.get(run_id, {}).get("stages") or []:
                if stage_state(dep, (*seen, run_id)) in (FAILED, BLOCKED):
                    return BLOCKED
        return row.state

    out = []
    for row in rows:
        if row.state not in (FINISHED, BLOCKED):
            for dep in entries.get(row.run_id, {}).get("stages") or []:
                state = stage_state(dep)
                if state in (FAILED, BLOCKED):
                    label = entries.get(dep, {}).get("label", dep)
                    row = RowStatus(row.run_id, row.label, BLOCKED, f"{label} [{dep}] {state}", row.job_id)
                    break
        out.append(row)
    return out


def reconcile(manifest: dict[str, Any], rows: list[RowStatus], *, force: bool = False) -> int:
    """Set the MLflow runs of jobs that died silently FAILED; returns how many runs changed.

    A job that fails by itself records ``failed`` in ``state.json`` and ends its MLflow run; only rows whose
    job ended in another phase (killed, cancelled, out of memory) are handled, once. ``force`` (``bench
    sync``) checks every failed row's MLflow run again.
    """
    from sweeps.tracking import mark_failed

    uri = manifest.get("tracking_uri")
    changed = 0
    for row in rows:
        if row.state != FAILED:
            continue
        run_dir = Path(manifest["runs"][row.run_id]["run_dir"])
        died_silently = records.read_state(run_dir).get("phase") not in ("failed", "finished")
        if not (died_silently or force):
            continue
        reason = row.detail or "job ended without a result (killed?)"
        if died_silently:
            records.write_state(run_dir, "failed", job_id=row.job_id, error=reason)
        if uri and mark_failed(uri, run_dir, reason):
            changed += 1
    return changed


# ---------------------------------------------------------------------------------------------- display
def format_table(rows: list[RowStatus], metrics: tuple[str, ...] = (), *, width: int | None = None) -> str:
    """The status table (label, run id, job, state, detail, then the spec's metric columns)."""
    from tabulate import tabulate

    headers = ["row", "run id", "job", "state", "detail", *metrics]
    body = []
    for row in rows:
        cells = [row.label, row.run_id, row.job_id or "-", row.state, row.detail]
        cells += [f"{row.metrics[m]:.2f}" if m in row.metrics else "" for m in metrics]
        body.append(cells)
    text = tabulate(body, headers=headers, tablefmt="simple", disable_numparse=True)
    if width:
        text = "\n".join(line[:width] for line in text.splitlines())
    return text


def counts(rows: list[RowStatus]) -> str:
    seen: dict[str, int] = {}
    for row in rows:
        seen[row.state] = seen.get(row.state, 0) + 1
    order = (FINISHED, RUNNING, PENDING, FAILED, BLOCKED, TODO)
    return ", ".join(f"{seen[s]} {s}" for s in order if s in seen)


def error_report(rows: list[RowStatus]) -> str:
    """The error tail of every failed row, then one line per blocked row."""
    parts = []
    for row in rows:
        if row.state == FAILED:
            tail = row.error or "(no error text; see the job's log under the submitit folder)"
            parts.append(f"--- {row.label} [{row.run_id}] job {row.job_id}: {row.detail}\n{tail}")
    for row in rows:
        if row.state == BLOCKED:
            parts.append(f"--- {row.label} [{row.run_id}] blocked: {row.detail} (rerun the sweep to resume)")
    return "\n".join(parts)


def record_statuses(sweep_dir: str | Path, manifest: dict[str, Any], rows: list[RowStatus]) -> None:
    """Write each row's state into its manifest entry (``status``) when it differs from ``manifest``
    (the manifest the rows were computed from, as the callers just read it)."""
    from sweeps.manifest import update_manifest

    entries = manifest["runs"]
    changed = {
        r.run_id: r.state for r in rows if r.run_id in entries and entries[r.run_id].get("status") != r.state
    }
    if changed:

        def apply(data: dict[str, Any]) -> None:
            for run_id, state in changed.items():
                data["runs"][run_id]["status"] = state

        update_manifest(sweep_dir, apply)


def follow(
    sweep_dir: str | Path,
    *,
    handles: dict[str, Any] | None = None,
    run_ids: list[str] | None = None,
    metrics: tuple[str, ...] = (),
    interval_s: float = 1.0,
    stream: Any = None,
) -> list[RowStatus]:
    """Show the live status of ``run_ids`` until none is pending/running; returns the final statuses.

    On a terminal the table is redrawn in place; otherwise one line is printed per row state change.
    """
    stream = stream or sys.stdout
    tty = hasattr(stream, "isatty") and stream.isatty()
    drawn = 0
    last: dict[str, tuple[str, str]] = {}
    from sweeps.manifest import read_manifest

    while True:
        manifest = read_manifest(sweep_dir)
        rows = statuses(manifest, handles, run_ids)
        reconcile(manifest, rows)
        record_statuses(sweep_dir, manifest, rows)
        if tty:
            width = shutil.get_terminal_size((120, 20)).columns
            text = format_table(rows, metrics, width=width) + f"\n{counts(rows)}   (Ctrl-C stops following)"
            if drawn:
                stream.write(f"\x1b[{drawn}F\x1b[J")
            stream.write(text + "\n")
            stream.flush()
            drawn = text.count("\n") + 1
        else:
            for row in rows:
                key = (
                    row.state,
                    row.detail if row.state != RUNNING or "training" not in row.detail else "training",
                )
                if last.get(row.run_id) != key:
                    last[row.run_id] = key
                    stream.write(
                        f"[{time.strftime('%H:%M:%S')}] {row.label} [{row.run_id}] {row.state}: {row.detail}\n"
                    )
            stream.flush()
        if all(row.state in TERMINAL for row in rows):
            return rows
        time.sleep(interval_s)
