"""Harness overhead per sweep job, submit → result record, with a no-op job (no training, no evaluation).

The no-op ``SweepJob`` does everything but the work: state file, result record, MLflow run (params, tags,
status). Baseline: the same job called in this process. Then N jobs through the ``local`` executor and, when
a SLURM cluster answers (``scripts/slurm_local.sh start``), through ``slurm`` (one job array), each timed from
the submit call to its ``result.json`` on disk. Prints seconds per job and the ratios to the baseline.

    .venv/bin/python scripts/bench_sweep_overhead.py [--jobs 4] [--no-tracking]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

SPEC = """
name: overhead/noop
base:
  model: lavila_tiny
  benchmarks: []
scales:
  smoke:
    resources: {{cpus_per_task: 1, timeout_min: 10, mem_gb: 1}}
rows:
{rows}
"""


def run_jobs(folder: Path, executor: str, jobs: int, tracking: bool, tag: str) -> list[float]:
    """Submit ``jobs`` no-op jobs; return each one's submit → result seconds."""
    from sweeps import launch, records

    rows = "\n".join(
        f"  - label: job{i}\n    overrides: {{trainer.seed: {1000 * len(tag) + i}}}" for i in range(jobs)
    )
    spec_path = folder / f"{tag}.yaml"
    spec_path.write_text(SPEC.format(rows=rows))
    # planning checks that a training row's dataset has an egoclip.csv; a no-op job reads nothing from it
    egoclip = folder / "ego4d" / "egoclip.csv"
    egoclip.parent.mkdir(parents=True, exist_ok=True)
    egoclip.touch()
    opts = launch.SweepOptions(
        spec=str(spec_path),
        data=str(folder),
        executor=executor,
        max_parallel=jobs,
        out=str(folder / "runs" / tag),
        tracking=tracking,
        tracking_uri=f"sqlite:///{folder / 'mlflow.db'}",
        check_data=False,  # no data preflight: the jobs are no-ops
    )
    plan = launch.plan_sweep(opts)
    commit = launch.prepare(plan, progress=False)
    contexts = [launch.job_context(plan, run, commit, noop=True) for run in plan.runs]
    start = time.perf_counter()
    handles = launch.submit_runs(plan, plan.runs, contexts, name=f"overhead-{tag}")
    if executor == "debug":  # in-process and sequential: time each job on its own
        durations = []
        for handle in handles.values():
            begin = time.perf_counter()
            handle.exception()
            durations.append(time.perf_counter() - begin)
        return durations
    done: dict[str, float] = {}
    deadline = start + 600
    while len(done) < len(plan.runs) and time.perf_counter() < deadline:
        for run in plan.runs:
            if run.run_id not in done and records.run_finished(plan.run_dir(run), run.run_id, ()):
                done[run.run_id] = time.perf_counter() - start
        time.sleep(0.02)
    if len(done) < len(plan.runs):
        raise SystemExit(f"{executor}: only {len(done)} of {len(plan.runs)} no-op jobs finished within 600 s")
    return sorted(done.values())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=4, help="no-op jobs per executor (default 4)")
    parser.add_argument("--no-tracking", action="store_true", help="leave MLflow out")
    args = parser.parse_args()
    from sweeps.executors import slurm_problem

    tracking = not args.no_tracking
    with tempfile.TemporaryDirectory(prefix="sweep-overhead-", ignore_cleanup_errors=True) as tmp:
        folder = Path(tmp)
        os.chdir(folder)
        run_jobs(folder, "debug", 1, tracking, "warmup")  # imports, MLflow schema: not part of any number
        baseline = run_jobs(folder, "debug", args.jobs, tracking, "inproc")
        base = statistics.median(baseline)
        print(f"in-process no-op job (baseline):     {base:7.3f} s per job")
        results = {"local": run_jobs(folder, "local", args.jobs, tracking, "local")}
        problem = slurm_problem()
        if problem is None:
            results["slurm"] = run_jobs(folder, "slurm", args.jobs, tracking, "slurm")
        for name, times in results.items():
            median = statistics.median(times)
            print(
                f"{name:5s} executor, submit → result:    {median:7.3f} s median per job, {max(times):7.3f} s for all "
                f"{len(times)} ({median / base:6.1f}x the in-process job)"
            )
        if "slurm" in results:
            ratio = statistics.median(results["slurm"]) / statistics.median(results["local"])
            print(f"slurm / local: {ratio:.2f}x")
        else:
            print(f"slurm executor: not measured ({problem}); start one with scripts/slurm_local.sh start")


if __name__ == "__main__":
    main()
