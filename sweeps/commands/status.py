"""``bench status SWEEP``: reattach to a sweep from its manifest and show every row's state.

Reads ``runs/<spec>/<scale>/manifest.json`` (or the given folder), asks the scheduler about each job
(``squeue``/``sacct`` for SLURM, ``/proc`` for local jobs) and the run folders about progress, and prints
per-row state plus the error tail of failed jobs. Jobs that died silently get their MLflow run set FAILED.
"""

from __future__ import annotations

import argparse

from henasy.commands.options import add_out_option, add_scale_option

NAME = "status"
HELP = "show the per-row state of a sweep (reattaches from its manifest)"
DESCRIPTION = "Per-row state of a sweep from its manifest, the scheduler and the run folders."
EPILOG = """examples:
  bench status ablations/losses              every scale of that spec that has a manifest
  bench status ablations/losses --watch      follow until no job is pending or running
  bench status runs/ablations/losses/smoke   a sweep folder
  bench status                               one summary line per sweep under ./runs

  States: finished (complete result record), running (training step/total, evaluating <benchmark>,
  waiting for a slot), pending (queued, or requeued after preemption), failed (error tail below the table),
  todo (never submitted). Rerun `bench sweep SPEC` to submit the unfinished rows; they resume from checkpoints.
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    """SWEEP (optional), scale, folder, --watch, --lines."""
    p.add_argument(
        "sweep", nargs="?", help="spec name/path or sweep folder (default: list every sweep under ./runs)"
    )
    add_scale_option(p, "only this scale")
    add_out_option(p, "the sweep folder, if it was not the default", metavar="DIR")
    p.add_argument("--watch", action="store_true", help="follow live until no job is pending or running")
    p.add_argument(
        "--lines", type=int, default=15, metavar="N", help="error lines shown per failed row (default 15)"
    )


def run(args: argparse.Namespace) -> int:
    """Print the status of each matching sweep; exit 1 when a row failed."""
    from sweeps import launch, manifest, monitor

    dirs = launch.find_sweep_dirs(args.sweep, scale=args.scale, out=args.out)
    if args.sweep is None and not args.out:
        if not dirs:
            print("no sweeps under ./runs yet; start one with `bench sweep SPEC`")
            return 0
        for folder in dirs:
            data = manifest.read_manifest(folder)
            print(
                f"{data.get('sweep', folder.name)} [{data.get('scale', '?')}]  {monitor.counts(monitor.statuses(data))}  {folder}"
            )
        return 0
    failed = False
    for folder in dirs:
        data = manifest.read_manifest(folder)
        metrics = tuple(data.get("metrics") or ())
        print(
            f"sweep {data.get('sweep')} [{data.get('scale')}], {data.get('executor')} executor, folder {folder}"
        )
        if args.watch:
            try:
                rows = monitor.follow(folder, metrics=metrics)
            except KeyboardInterrupt:
                return 130
        else:
            rows = monitor.statuses(data)
            monitor.reconcile(data, rows)
            monitor.record_statuses(folder, data, rows)
        print(monitor.format_table(rows, metrics))
        print(monitor.counts(rows))
        for row in rows:
            if row.state == monitor.FAILED and args.lines >= 0:
                row.error = "\n".join(row.error.splitlines()[-args.lines :]) if args.lines else ""
        report = monitor.error_report(rows)
        if report:
            print("\nfailed rows:\n" + report)
            failed = True
        print()
    return 1 if failed else 0
