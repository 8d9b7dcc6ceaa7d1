"""``bench compare A B``: metric differences with paired bootstrap CIs, or (``--cost``) the Table 5 costs.

Thin wrapper over ``reports.records`` / ``reports.compare_models`` / ``reports.bootstrap`` (metrics) and
``reports.cost`` (parameters, FLOPs on the meta device, latency, peak memory), rendered by
``reports.render_compare``. Heavy imports (torch, mlflow, numpy) happen in ``run``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from henasy.commands.options import add_device_option, add_format_option, add_tracking_uri_option

NAME = "compare"
HELP = "compare models: metric Δ with bootstrap CIs, or --cost (params, GFLOPs, latency, memory)"
DESCRIPTION = (
    "Compare two models' benchmark results (paired bootstrap 95 % confidence intervals over "
    "items), or with --cost measure the cost of two or more models beside the paper's Table 5."
)
EPILOG = """examples:
  bench compare henasy helpinghands --cost                Table 5 on this machine's CPU, beside the paper's values
  bench compare henasy helpinghands --cost --device cuda  the same on a GPU (CUDA allocator peaks, synchronised timing)
  bench compare henasy_tiny helpinghands_tiny --cost --format json
  bench compare henasy_tiny lavila_tiny                   per-benchmark Δ with 95 % paired bootstrap CIs (MLflow)
  bench compare henasy helpinghands --records runs/a/ runs/b/result.json
                                                          the same from result records (run dirs or JSON files)

  Without --cost, each model's record per benchmark is the latest FINISHED MLflow run tagged bench.model=NAME
  (NAME may also be an MLflow run id), or the files given with --records (one per model, in order). Items are
  paired by id; Δ = A − B in the paper's units; "real?" says whether the 95 % interval excludes 0.
  --cost builds each model at its registered preset (batch 1, its own frames × size, e.g. 4 × 224 × 224),
  counts FLOPs with FlopCounterMode on the meta device, times encode_video (median of --runs after --warmup)
  and measures peak inference / training-step memory (CUDA allocator on GPU, process RSS on CPU). Results
  are merged into ./bench_reports/cost.json (--save) for `bench table --id 5`.
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    """MODEL..., format, and the option groups of the cost and the metric comparisons."""
    p.add_argument(
        "models", nargs="+", metavar="MODEL", help="registered model names (see `bench list models`)"
    )
    add_format_option(p, "output format (default: md)", choices=("md", "json"), default="md")
    cost = p.add_argument_group("cost (--cost)")
    cost.add_argument("--cost", action="store_true", help="measure params, GFLOPs, latency and memory")
    add_device_option(cost, "cpu (default) or cuda[:N]")
    cost.add_argument(
        "--dtype", choices=["float32", "bfloat16", "float16"], default="float32", help="default float32"
    )
    cost.add_argument("--runs", type=int, metavar="N", help="timed runs (default: 3 on CPU, 20 on GPU)")
    cost.add_argument(
        "--warmup", type=int, metavar="N", help="untimed warm-up runs (default: 1 on CPU, 5 on GPU)"
    )
    cost.add_argument(
        "--train-batch", type=int, default=1, metavar="N", help="batch of the training-step memory probe"
    )
    cost.add_argument("--no-train", action="store_true", help="skip the training-step memory probe")
    cost.add_argument(
        "--save", metavar="PATH", help="cost file to merge results into (default: ./bench_reports/cost.json)"
    )
    cost.add_argument("--no-save", action="store_true", help="do not write the cost file")
    metrics = p.add_argument_group("metrics (default)")
    metrics.add_argument(
        "--records",
        nargs="+",
        metavar="PATH",
        help="result records per model (file or run dir), in model order; a record's model.id must match",
    )
    metrics.add_argument("--sweep", metavar="NAME", help="only MLflow runs tagged bench.sweep=NAME")
    add_tracking_uri_option(metrics)
    metrics.add_argument("--benchmarks", nargs="+", metavar="NAME", help="only these benchmarks")
    metrics.add_argument(
        "--n-boot", type=int, default=10_000, metavar="N", help="bootstrap resamples (default 10000)"
    )
    metrics.add_argument("--confidence", type=float, default=0.95, help="interval level (default 0.95)")
    metrics.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")


def _save_costs(results: list[dict[str, Any]], path: Path) -> None:
    """Merge ``results`` into the cost file (an entry per model and device; newer replaces older)."""
    from henasy.core.atomic import atomic_write_json
    from henasy.core.errors import BenchError
    from reports.collect import load_cost_file

    kept: list[dict[str, Any]] = []
    if path.is_file():
        try:
            kept = load_cost_file(path)
        except BenchError as err:
            print(f"bench compare: replacing unreadable cost file ({err})", file=sys.stderr)
    new = {(r["model"], r["device"]) for r in results}
    kept = [e for e in kept if (e.get("model"), e.get("device")) not in new]
    atomic_write_json(path, kept + results)
    print(f"bench compare: cost results merged into {path}", file=sys.stderr)


def _run_cost(args: argparse.Namespace) -> int:
    from reports import OUT_DIR
    from reports.cost import measure_models
    from reports.render_compare import cost_json, cost_markdown

    results = measure_models(
        list(args.models),
        device=args.device,
        dtype=args.dtype,
        runs=args.runs,
        warmup=args.warmup,
        train_batch=args.train_batch,
        train=not args.no_train,
    )
    sys.stdout.write(cost_json(results) if args.format == "json" else cost_markdown(results))
    if not args.no_save:
        _save_costs(results, Path(args.save) if args.save else OUT_DIR / "cost.json")
    return 0


def _run_metrics(args: argparse.Namespace) -> int:
    from henasy.core.errors import BenchError
    from reports.compare_models import compare_records
    from reports.records import check_records_model, load_records, records_from_mlflow
    from reports.render_compare import comparison_json, comparison_markdown
    from reports.spec import metric_units

    if len(args.models) != 2:
        raise BenchError(
            f"comparing metrics takes exactly two models (got {len(args.models)}); --cost takes more"
        )
    name_a, name_b = args.models
    if name_a == name_b:  # e.g. trained vs untrained checkpoints of one model: columns must still differ
        name_a, name_b = f"{name_a} [A]", f"{name_b} [B]"
    sources: dict[str, Any] = {}
    if args.records:
        if len(args.records) != 2:
            raise BenchError("--records takes one path per model: --records A_PATH B_PATH")
        recs = [load_records(p) for p in args.records]
        for recs_of, path, side, name in zip(recs, args.records, "AB", args.models):
            check_records_model(recs_of, name, path, side)
        sources = {f"A ({name_a})": args.records[0], f"B ({name_b})": args.records[1]}
    else:
        from reports.collect import open_store

        mlc, uri = open_store(args.tracking_uri)
        if mlc is None:
            raise BenchError(
                f"no MLflow store at {uri}: pass --tracking-uri, or give result files with --records"
            )
        recs = []
        for side, name in zip("AB", args.models):
            found = records_from_mlflow(mlc, name, args.sweep)
            if not found:
                raise BenchError(
                    f"no FINISHED MLflow run tagged bench.model={name!r}"
                    + (f" in sweep {args.sweep!r}" if args.sweep else "")
                    + f" in {uri}; run a sweep first or pass --records"
                )
            recs.append({b: rec for b, (rec, _) in found.items()})
            runs = ", ".join(f"{b} ← run {run_id[:8]}" for b, (_, run_id) in sorted(found.items()))
            sources[f"{side} ({name})"] = runs
    rows = compare_records(
        recs[0],
        recs[1],
        benchmarks=args.benchmarks,
        units=metric_units(),
        n_boot=args.n_boot,
        confidence=args.confidence,
        seed=args.seed,
    )
    render = comparison_json if args.format == "json" else comparison_markdown
    sys.stdout.write(render(rows, name_a, name_b, sources))
    return 0


def run(args: argparse.Namespace) -> int:
    """Dispatch to the cost or the metric comparison."""
    from henasy.core.errors import BenchError

    if len(args.models) < 2:
        raise BenchError("give at least two models to compare, e.g. `bench compare henasy helpinghands`")
    return _run_cost(args) if args.cost else _run_metrics(args)
