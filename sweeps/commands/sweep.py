"""``bench sweep SPEC``: run an ablation / table spec (or its Optuna search) as submitit jobs.

Thin wrapper over ``sweeps.launch`` (plan → data → submit → manifest), ``sweeps.monitor`` (live display)
and ``sweeps.optuna_search`` (specs with a ``search:`` section). Heavy imports happen inside ``run``.
"""

from __future__ import annotations

import argparse

from henasy.commands.options import (
    add_data_option,
    add_out_option,
    add_repeatable_option,
    add_scale_option,
    add_set_option,
    add_tracking_uri_option,
)

NAME = "sweep"
HELP = "run an ablation/table spec as jobs (local, SLURM or in-process), tracked in MLflow"
DESCRIPTION = (
    "Expand SPEC into runs (deterministic ids), submit the unfinished ones as checkpointable "
    "submitit jobs (train → evaluate → record → MLflow), write a manifest and follow them."
)
EPILOG = """examples:
  bench sweep ablations/losses.yaml                      Table 3 at smoke scale, locally (data generated once)
  bench sweep ablations/losses.yaml --dry-run            the expanded runs and what would be submitted
  bench sweep ablations/losses --executor slurm --detach submit to SLURM and return; follow with bench status
  bench sweep ablations/architecture.yaml --scale paper --data /datasets/ego --executor slurm \\
        --partition gpu --time 2880                      Table 4 with the paper presets on real data
  bench sweep search/loss_weights.yaml --trials 16       Optuna search over λ1, λ2, λ3 (resumable)
  bench sweep my_spec.yaml --set trainer.max_steps=20 --only "L_ego"
  bench sweep ablations/losses.yaml --scale paper --data DIR --executor slurm \\
        --set model.lavila_checkpoint=/ckpt/lavila_TSF_B.pth   an official backbone instead of the pretrain stage

  SPEC is a file, or a name under sweeps/ (see `bench list sweeps`). Runs go to runs/<spec>/<scale>/<run id>/
  (--out to change), the manifest to runs/<spec>/<scale>/manifest.json, MLflow to $MLFLOW_TRACKING_URI or
  sqlite:///mlflow.db. Rerunning submits only rows without a complete result (--force redoes them); jobs
  resume from their last checkpoint after a kill, preemption or time-out (SLURM requeues them itself).
  Specs with stages (e.g. pretrain → rows) submit everything at once: on SLURM rows wait with afterok, locally
  their jobs wait for the stage; a failed stage leaves them blocked until a rerun.
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    """SPEC, scale and data, executor, overrides, row selection, tracking and resources."""
    p.add_argument("spec", help="spec file or name under sweeps/, e.g. ablations/losses.yaml")
    add_scale_option(
        p, "smoke (default): tiny presets on synthetic data; paper: paper presets", default="smoke"
    )
    add_data_option(
        p, "dataset root (default at smoke scale: ./data/synth-small-seed0, generated once)", required=False
    )
    p.add_argument(
        "--executor",
        choices=["local", "slurm", "debug"],
        default="local",
        help="where jobs run (default: local)",
    )
    p.add_argument(
        "--max-parallel",
        type=int,
        metavar="N",
        help="jobs at once (local default: CPUs // CPUs per job; SLURM: array limit)",
    )
    add_out_option(p, "sweep folder (default: runs/<spec>/<scale>)", metavar="DIR")
    add_set_option(p, "override a config key for every row (YAML value); repeatable")
    add_repeatable_option(
        p, "--only", "only", "LABEL", "run only this row (label as in the spec); repeatable"
    )
    p.add_argument("--dry-run", action="store_true", help="print the runs as a table and submit nothing")
    p.add_argument(
        "--detach",
        action="store_true",
        help="return right after submitting (follow with `bench status SPEC`)",
    )
    p.add_argument("--force", action="store_true", help="redo rows that already have a complete result")
    add_tracking_uri_option(p, "MLflow tracking URI (default: $MLFLOW_TRACKING_URI or sqlite:///mlflow.db)")
    p.add_argument(
        "--no-tracking", action="store_true", help="do not log to MLflow (result records are still written)"
    )
    p.add_argument(
        "--no-data-check",
        action="store_true",
        help="submit without the preflight of --data (`bench data check` of the rows' benchmarks)",
    )
    p.add_argument(
        "--trials",
        type=int,
        metavar="N",
        help="Optuna specs: total number of trials (default: the spec's n_trials)",
    )
    res = p.add_argument_group("resources (override the spec's resources for this scale)")
    res.add_argument("--partition", help="SLURM partition")
    res.add_argument(
        "--time", dest="timeout_min", type=int, metavar="MIN", help="time limit per job, minutes"
    )
    res.add_argument("--gpus", dest="gpus_per_node", type=int, metavar="N", help="GPUs per node")
    res.add_argument("--cpus", dest="cpus_per_task", type=int, metavar="N", help="CPUs per task")
    res.add_argument("--mem", dest="mem_gb", type=float, metavar="GB", help="memory per node, GB")
    res.add_argument("--nodes", type=int, metavar="N", help="nodes per job (DDP across nodes)")
    res.add_argument("--tasks-per-node", type=int, metavar="N", help="processes per node (DDP)")


def options_from_args(args: argparse.Namespace) -> object:
    """The ``SweepOptions`` of parsed arguments."""
    from henasy.core.overrides import parse
    from sweeps.launch import SweepOptions

    resources = {
        k: getattr(args, k)
        for k in (
            "partition",
            "timeout_min",
            "gpus_per_node",
            "cpus_per_task",
            "mem_gb",
            "nodes",
            "tasks_per_node",
        )
    }
    return SweepOptions(
        spec=args.spec,
        scale=args.scale,
        data=args.data,
        executor=args.executor,
        max_parallel=args.max_parallel,
        out=args.out,
        overrides=parse(args.overrides),
        resources=resources,
        force=args.force,
        only=list(args.only),
        tracking_uri=args.tracking_uri,
        tracking=not args.no_tracking,
        check_data=not args.no_data_check,
    )


def run(args: argparse.Namespace) -> int:
    """Plan, submit, follow; exit 1 when a row failed."""
    import sys

    from sweeps import launch, manifest, monitor
    from sweeps.spec import load_spec

    opts = options_from_args(args)
    spec = load_spec(args.spec)
    if spec.search is not None:
        from sweeps.optuna_search import run_search

        return run_search(spec, opts, trials=args.trials, dry_run=args.dry_run, detach=args.detach)
    plan = launch.plan_sweep(opts, spec)
    stages = f" ({len(plan.stages)} stage(s) first)" if plan.stages else ""
    head = f"sweep {spec.name} (table {spec.table or '-'}), scale {plan.scale}, {len(plan.runs)} runs{stages}, data {plan.data_root}"
    if args.dry_run:
        print(head)
        if plan.stages:
            print(launch.stages_text(plan))
        print(launch.plan_table(plan))
        print(
            f"every row checked: model options (built on the meta device), benchmarks, config keys and types"
            f"{', dataset folder' if args.data else ''}"
        )
        print(
            f"would submit {len(plan.to_submit)} job(s) to the {plan.executor} executor; sweep folder {plan.sweep_dir}"
        )
        return 0
    print(head, flush=True)
    handles = launch.launch(plan, progress=sys.stderr.isatty())
    skipped = {d: sum(1 for v in plan.decisions.values() if v == d) for d in (launch.FINISHED, launch.ACTIVE)}
    print(
        f"submitted {len(handles)} job(s) to the {plan.executor} executor"
        f" ({skipped[launch.FINISHED]} finished row(s) skipped, {skipped[launch.ACTIVE]} still running);"
        f" manifest {manifest.manifest_path(plan.sweep_dir)}",
        flush=True,
    )
    if plan.executor == "debug":
        launch.run_debug_jobs(handles)
    elif args.detach:
        print(
            f"detached; follow with: bench status {spec.name} --scale {plan.scale}"
            + (f" --out {args.out}" if args.out else "")
        )
        return 0
    run_ids = [r.run_id for r in plan.runs]
    try:
        rows = monitor.follow(
            plan.sweep_dir,
            handles=handles,
            run_ids=run_ids,
            metrics=spec.metrics,
        )
    except KeyboardInterrupt:
        print(
            "\nstopped following. Local jobs stop with this terminal's Ctrl-C (SLURM jobs go on); "
            f"rerun `bench sweep {args.spec}` to resume from the checkpoints, or use --detach.",
        )
        return 130
    if not sys.stdout.isatty():  # on a terminal the live table already shows the final state
        print()
        print(monitor.format_table(rows, spec.metrics))
        print(monitor.counts(rows))
    report = monitor.error_report(rows)
    if report:
        print("\nfailed rows:\n" + report)
        return 1
    return 0
