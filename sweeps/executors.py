"""Executors: where sweep jobs run (submitit ``local``, ``slurm``, ``debug``) and how their state is read back.

- ``local`` (default): each job is a submitit local process tree that outlives ``bench sweep``; at most
  ``max_parallel`` of them work at once, bounded by a file-lock semaphore the jobs take (``sweeps.job``), so
  ``--detach`` needs no babysitting process. The default ``max_parallel`` is CPUs // CPUs per job.
- ``slurm``: one sbatch job array per submission with ``--array=...%max_parallel``; partition, time, GPUs,
  CPUs, memory from the spec's ``resources`` (or flags); ``nodes``/``tasks_per_node`` > 1 make DDP jobs (the
  job exports submitit's torch.distributed environment). USR2 before the limit → checkpoint + requeue.
- ``debug``: submitit's in-process executor (pdb-able); jobs run when their result is asked for.

Stages (``sweeps.launch``): a SLURM submission can wait for other jobs (``after``: ``--dependency=afterok:...``
through submitit's ``slurm_additional_parameters``); local jobs wait for their stages themselves
(``sweeps.job``), so their time limit grows by the stages' (``extra_timeout_min``).

State is read from the scheduler itself so that any process can reattach from the manifest (submitit
#1625/#1627): ``squeue`` for live SLURM jobs, ``sacct`` for ended ones, ``/proc`` for local job controllers.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

from henasy.core.errors import BenchError
from sweeps.spec import Resources

EXECUTORS = ("local", "slurm", "debug")
# Scheduler states → the harness's job states.
PENDING, RUNNING, ENDED, UNKNOWN = "pending", "running", "ended", "unknown"
_SLURM_STATES = {
    "PENDING": PENDING,
    "REQUEUED": PENDING,
    "REQUEUE_HOLD": PENDING,
    "REQUEUE_FED": PENDING,
    "CONFIGURING": PENDING,
    "RESIZING": PENDING,
    "SUSPENDED": PENDING,
    "RUNNING": RUNNING,
    "COMPLETING": RUNNING,
    "STAGE_OUT": RUNNING,
    "SIGNALING": RUNNING,
}


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def default_max_parallel(resources: Resources) -> int:
    """Local jobs at once: the CPUs of this machine divided by what one job uses (at least 1)."""
    per_job = max(1, resources.cpus_per_task) * max(1, resources.tasks_per_node)
    return max(1, cpu_count() // per_job)


def make_executor(
    kind: str,
    folder: str | Path,
    resources: Resources,
    *,
    max_parallel: int,
    name: str,
    waves: int = 1,
    after: list[str] | None = None,
    extra_timeout_min: int = 0,
    local_python: str | None = None,
) -> Any:
    """A configured submitit executor writing its files under ``folder``.

    ``waves``: how many rounds of ``max_parallel`` local jobs the submission holds; a local job's clock runs
    while it waits for a slot, so its time limit is stretched by that factor. ``after``: SLURM job ids that
    must succeed before these jobs start (``afterok``); ``extra_timeout_min``: added to a local job's limit.
    ``local_python``: the command local jobs start with instead of this interpreter (``sweeps.forkserver``).
    """
    import submitit

    if kind not in EXECUTORS:
        raise BenchError(f"unknown executor {kind!r}; choose one of {', '.join(EXECUTORS)}")
    extra: dict[str, Any] = {"local_python": local_python} if kind == "local" and local_python else {}
    ex = submitit.AutoExecutor(
        folder=str(folder), cluster=kind, slurm_max_num_timeout=resources.max_num_timeout, **extra
    )
    params: dict[str, Any] = {
        "name": name,
        "timeout_min": resources.timeout_min,
        "tasks_per_node": resources.tasks_per_node,
    }
    if kind == "local":
        if resources.nodes > 1:
            raise BenchError(
                "the local executor runs on one node; set resources.nodes: 1 or use --executor slurm"
            )
        params["timeout_min"] = resources.timeout_min * max(1, waves) + extra_timeout_min
        if resources.gpus_per_node:
            params["gpus_per_node"] = resources.gpus_per_node
    elif kind == "slurm":
        params.update(
            nodes=resources.nodes,
            cpus_per_task=resources.cpus_per_task,
            slurm_array_parallelism=max(1, max_parallel),
        )
        if resources.gpus_per_node:
            params["gpus_per_node"] = resources.gpus_per_node
        if resources.mem_gb is not None:
            params["mem_gb"] = resources.mem_gb
        for key in ("partition", "constraint", "account", "qos", "signal_delay_s"):
            value = getattr(resources, key)
            if value is not None:
                params[f"slurm_{key}"] = value
        additional = dict(resources.additional)
        if after:
            additional["dependency"] = "afterok:" + ":".join(after)
        if additional:
            params["slurm_additional_parameters"] = additional
    try:
        ex.update_parameters(**params)
    except (ValueError, TypeError) as err:
        raise BenchError(f"bad {kind} executor resources: {err}") from None
    return ex


def submit(executor: Any, kind: str, jobs: list[Any]) -> list[Any]:
    """Submit callables; SLURM gets one job array (its parallelism limit applies across it)."""
    if kind == "slurm" and len(jobs) > 1:
        with executor.batch():
            handles = [executor.submit(job) for job in jobs]
        return handles
    return [executor.submit(job) for job in jobs]


def cancel(kind: str, job_ids: list[str]) -> None:
    """Cancel jobs (SLURM: ``scancel``; a local job waiting for a dead stage ends by itself)."""
    if kind == "slurm" and job_ids:
        try:
            subprocess.run(["scancel", *job_ids], capture_output=True, timeout=20, check=False)
        except (OSError, subprocess.SubprocessError) as err:
            raise BenchError(f"could not cancel the jobs {', '.join(job_ids)} (scancel: {err})") from None


def with_flags(resources: Resources, **flags: Any) -> Resources:
    """``resources`` with the command-line flags that were given (None = keep the spec's value)."""
    return replace(resources, **{k: v for k, v in flags.items() if v is not None})


# ------------------------------------------------------------------------------------------ reattaching
def local_state(job_id: str) -> str:
    """A local job controller (job id = its pid): running while the pid lives and is a submitit process."""
    try:
        status = Path(f"/proc/{int(job_id)}/status").read_text()
        cmdline = Path(f"/proc/{int(job_id)}/cmdline").read_bytes()
    except (OSError, ValueError):
        return ENDED
    if any(line.startswith("State:") and "Z" in line.split()[1] for line in status.splitlines()):
        return ENDED  # a zombie: exited, not yet reaped
    return RUNNING if b"submitit" in cmdline else ENDED


def slurm_states(job_ids: list[str]) -> dict[str, tuple[str, str]]:
    """``job_id → (harness state, scheduler state)`` for SLURM jobs (array tasks as ``<array>_<task>``)."""
    wanted = {str(j) for j in job_ids}
    out: dict[str, tuple[str, str]] = {}
    if not wanted:
        return out
    try:
        text = subprocess.run(
            ["squeue", "-h", "-r", "-u", str(os.getuid()), "-o", "%i|%T|%r"],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        text = ""
    for line in text.splitlines():
        job, _, rest = line.strip().partition("|")
        state, _, reason = rest.partition("|")
        if job in wanted:
            shown = f"{state} ({reason})" if state == "PENDING" and reason not in ("", "None") else state
            out[job] = (_SLURM_STATES.get(state, ENDED if state else UNKNOWN), shown)
    missing = sorted(wanted - set(out))
    if missing:
        try:
            text = subprocess.run(
                [
                    "sacct",
                    "-n",
                    "-P",
                    "-X",
                    "-o",
                    "JobID,State",
                    "-j",
                    ",".join(sorted({m.split("_")[0] for m in missing})),
                ],
                capture_output=True,
                text=True,
                timeout=20,
                check=True,
            ).stdout
        except (OSError, subprocess.SubprocessError):
            text = ""
        for line in text.splitlines():
            job, _, state = line.strip().partition("|")
            state = state.split()[0] if state else ""
            if job in wanted and job not in out:
                out[job] = (_SLURM_STATES.get(state, ENDED if state else UNKNOWN), state)
    return out


def job_log_tail(folder: str | Path, job_id: str, lines: int = 15) -> str:
    """The last lines of a submitit job's stderr log (``<folder>/<job_id>_0_log.err``)."""
    path = Path(str(folder).replace("%j", str(job_id))) / f"{job_id}_0_log.err"
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.rstrip().splitlines()[-lines:])


def slurm_problem() -> str | None:
    """None when a SLURM controller answers ``sinfo`` with a usable node; otherwise why not."""
    try:
        out = subprocess.run(["sinfo", "-h", "-N", "-o", "%T"], capture_output=True, text=True, timeout=20)
    except FileNotFoundError:
        return "sinfo not found (no SLURM client installed)"
    except subprocess.TimeoutExpired:
        return "sinfo timed out (is slurmctld running?)"
    if out.returncode != 0:
        return (out.stderr or out.stdout).strip() or f"sinfo exited with {out.returncode}"
    states = [s.rstrip("*~#$@") for s in out.stdout.split()]
    if not any(s in ("idle", "mixed", "allocated", "completing") for s in states):
        return f"no usable node (node states: {', '.join(states) or 'none'})"
    return None
