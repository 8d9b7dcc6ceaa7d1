"""Harness overhead per sweep job, submit → result record, with a no-op job (no training, no evaluation).

The no-op ``SweepJob`` does everything but the work: state file, result record, MLflow run (params, tags,
status). Baseline: the same job called in this process. Then N jobs through the ``local`` executor, in rounds
that alternate between jobs started by the pre-warmed fork server (``sweeps.forkserver``) and plain submitit
jobs (``HENASY_FORKSERVER=0``: a fresh interpreter per job), and, when a SLURM cluster answers
(``scripts/slurm_local.sh start``), through ``slurm`` (one job array); each job is timed from the submit call
to its ``result.json`` on disk. The fork server's own start (once per sweep; it serves later sweeps too until
idle) is timed apart, with a private server for this run. Prints seconds per job, ratios, load average.

    .venv/bin/python scripts/bench_sweep_overhead.py [--jobs 4] [--rounds 2] [--no-tracking] [--json OUT]
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

    seed0 = 1000 * (1 + len(list(folder.glob("*.yaml"))))  # distinct runs for every call
    rows = "\n".join(f"  - label: job{i}\n    overrides: {{trainer.seed: {seed0 + i}}}" for i in range(jobs))
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


def start_fork_server(folder: Path) -> dict[str, float]:
    """A private fork server (socket under ``folder / "fs"``): seconds until it listens and until it answers."""
    from sweeps import forkserver

    os.environ[forkserver.ENV_DIR] = str(folder / "fs")
    begin = time.perf_counter()
    path = forkserver.ensure_server()
    if path is None:
        raise SystemExit("the fork server did not start (see the line above)")
    listening = time.perf_counter() - begin
    forkserver.server_status(path)  # answers once its imports are done
    return {"listening_s": listening, "ready_s": time.perf_counter() - begin}


def summary(times: list[float], base: float) -> dict[str, float]:
    return {
        "median_s": statistics.median(times),
        "max_s": max(times),
        "jobs": len(times),
        "x_baseline": statistics.median(times) / base,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=4, help="no-op jobs per submission (default 4)")
    parser.add_argument(
        "--rounds", type=int, default=2, help="local submissions per mode, alternating (default 2)"
    )
    parser.add_argument("--no-tracking", action="store_true", help="leave MLflow out")
    parser.add_argument("--json", metavar="OUT", help="also write the numbers to this JSON file")
    args = parser.parse_args()
    from henasy.core.atomic import atomic_write_json
    from sweeps import forkclient, forkserver
    from sweeps.executors import cpu_count, slurm_problem

    tracking = not args.no_tracking
    out: dict[str, object] = {
        "jobs": args.jobs,
        "rounds": args.rounds,
        "tracking": tracking,
        "cpus": cpu_count(),
    }
    load = os.getloadavg()
    print(f"load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} ({cpu_count()} CPUs)")
    out["loadavg_start"] = list(load)
    json_path = Path(args.json).resolve() if args.json else None
    with tempfile.TemporaryDirectory(prefix="sweep-overhead-", ignore_cleanup_errors=True) as tmp:
        folder = Path(tmp)
        os.chdir(folder)
        try:
            run_jobs(folder, "debug", 1, tracking, "warmup")  # imports, MLflow schema: not part of any number
            baseline = run_jobs(folder, "debug", args.jobs, tracking, "inproc")
            base = statistics.median(baseline)
            out["inprocess"] = summary(baseline, base)
            print(f"in-process no-op job (baseline):     {base:7.3f} s per job")
            start = start_fork_server(folder)
            out["forkserver_start"] = start
            print(
                f"fork server start (once per sweep):  {start['listening_s']:7.3f} s to listen, "
                f"{start['ready_s']:7.3f} s until its imports are done"
            )
            times: dict[str, list[float]] = {"local+forkserver": [], "local, no forkserver": []}
            for round_ in range(args.rounds):
                modes = list(times) if round_ % 2 == 0 else list(reversed(times))
                for mode in modes:
                    os.environ[forkclient.ENV_ENABLE] = "0" if "no forkserver" in mode else "1"
                    tag = f"local{round_}-{list(times).index(mode)}"  # one job folder per round and mode
                    times[mode] += run_jobs(folder, "local", args.jobs, tracking, tag)
            os.environ.pop(forkclient.ENV_ENABLE, None)
            results = dict(times)
            problem = slurm_problem()
            if problem is None:
                results["slurm"] = run_jobs(folder, "slurm", args.jobs, tracking, "slurm")
        finally:
            forkserver.stop_servers(folder / "fs")  # this run's private server (none before it started)
        for name, values in results.items():
            stats = out[name] = summary(values, base)
            print(
                f"{name:21s} submit → result: {stats['median_s']:7.3f} s median per job, {stats['max_s']:7.3f} s "
                f"for the slowest of {stats['jobs']} ({stats['x_baseline']:6.1f}x the in-process job)"
            )
        plain_s = out["local, no forkserver"]["median_s"]
        ratio = out["local+forkserver"]["median_s"] / plain_s
        out["forkserver_vs_plain"] = ratio
        print(f"local with / without the fork server: {ratio:.2f}x")
        if "slurm" in results:
            ratio = out["slurm"]["median_s"] / plain_s
            print(f"slurm / local without the fork server: {ratio:.2f}x")
        else:
            print(f"slurm executor: not measured ({problem}); start one with scripts/slurm_local.sh start")
    load = os.getloadavg()
    print(f"load average at end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    out["loadavg_end"] = list(load)
    if json_path is not None:
        atomic_write_json(json_path, out)


if __name__ == "__main__":
    main()
