"""``bench eval MODEL BENCHMARK... --data DIR``: run registered benchmarks and write their result records.

Thin wrapper over ``benchmarks.runner`` (the functions sweep jobs call): builds the model (``--set
model.k=v`` factory arguments), loads ``--ckpt`` (a trainer ``last.pt`` or an official checkpoint, through the
model's ``load_checkpoint`` when it has one), evaluates, prints the metrics as a table and writes the records
as one JSON list, atomically.
"""

from __future__ import annotations

import argparse

from henasy.commands.options import (
    add_data_option,
    add_device_option,
    add_model_argument,
    add_out_option,
    add_repeatable_option,
    add_set_option,
)

NAME = "eval"
HELP = "evaluate a model on registered benchmarks and write result records (JSON)"
DESCRIPTION = (
    "Run BENCHMARK... on MODEL with the official protocols and metrics, print a table of the "
    "metrics and write the result records as JSON."
)
EPILOG = """examples:
  bench eval lavila_tiny egomcq ek100_mir ek100_cls egtea --data data/synth
  bench eval lavila_tiny egomcq --data data/synth --ckpt runs/lavila_tiny/last.pt --out results/mcq.json
  bench eval henasy_tiny grounding --data data/synth --ckpt runs/henasy_tiny/last.pt
  bench eval lavila egtea --data /datasets/ego --ckpt lavila_tsf_b.pth --set model.num_frames=16 \\
      --option egtea.protocol=helpinghands --device cuda --batch-size 64 --num-workers 8
  bench eval lavila_tiny egonlq egomq --data data/synth --option egonlq.epochs=50 --cache-dir /scratch/feats
  bench eval lavila_tiny egomcq --data data/synth --limit 20          (a smoke run: records marked partial)
  bench eval lavila_tiny egomcq ek100_cls --data /datasets/ego --on-missing skip   (a partial download)

benchmarks (see `bench list benchmarks`): egomcq, ek100_mir, ek100_cls, egtea (zero-shot); egonlq, egomq
(heads trained on cached sliding-window features); grounding (models with ground(): henasy*, helpinghands*,
lavila* through dense patch-text similarity).
All metrics are percent. --option BENCH.KEY=VALUE sets a protocol option (YAML value), e.g.
egtea.protocol=lavila|helpinghands, egtea.num_clips=10, ek100_cls.template=none|lavila,
egonlq.epochs / lr / hidden / window_sec / stride_sec, egomq.epochs / num_positions / nms_iou,
grounding.threshold. A record holds every protocol choice, the split, n_items, partial, the model id,
checkpoint and its SHA-256, wall time and per-item outcomes (for paired bootstraps).
A missing or unreadable video stops the run naming it (find them all first with `bench data check --data
ROOT`); --on-missing skip (egomcq, ek100_mir, ek100_cls, egtea) drops the items that need it, computes the
metrics over the rest and records partial, skipped_items and the skipped video paths (first 100 + total).
"""


SET_EXAMPLE = "model.KEY=VALUE, e.g. --set model.num_frames=16 or --set model.loss_weights.nec=0.3"
OPTION_EXAMPLE = "BENCH.KEY=VALUE, e.g. egtea.protocol=lavila"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """MODEL, BENCHMARK..., the data root, checkpoint, overrides, protocol options and loader settings."""
    add_model_argument(p)
    p.add_argument("benchmarks", nargs="+", metavar="BENCHMARK", help="registered benchmark names")
    add_data_option(p, "dataset root (layout: henasy/data/layout.py)")
    p.add_argument("--ckpt", metavar="PATH", help="checkpoint: a `bench train` last.pt or an official file")
    p.add_argument("--limit", type=int, metavar="N", help="evaluate only the first N items (record: partial)")
    add_out_option(p, "records JSON (default: runs/eval/<MODEL>-<time>.json)", metavar="FILE")
    add_set_option(
        p,
        "model factory argument (YAML value; dotted keys set one entry of a mapping), e.g. "
        "--set model.num_frames=16 or --set model.loss_weights.nec=0.3; repeatable",
        metavar="model.KEY=VALUE",
    )
    add_repeatable_option(
        p,
        "--option",
        "options",
        "BENCH.KEY=VALUE",
        "protocol option (YAML value), e.g. --option egtea.protocol=helpinghands; repeatable",
    )
    p.add_argument("--batch-size", type=int, default=16, help="clips per forward pass (default 16)")
    p.add_argument("--num-workers", type=int, default=2, help="DataLoader worker processes (default 2)")
    add_device_option(p, "torch device, e.g. cpu, cuda, cuda:1 (default cpu)")
    p.add_argument(
        "--cache-dir",
        metavar="DIR",
        help="feature cache + prediction files of egonlq/egomq (default $BENCH_CACHE_DIR, else "
        "~/.cache/henasy-bench; nothing is written under --data)",
    )
    p.add_argument(
        "--on-missing",
        choices=("error", "skip"),
        default="error",
        help="a missing or unreadable video: 'error' (default) stops naming it; 'skip' evaluates the other "
        "items and marks the record partial with the skipped count and videos (egomcq, ek100_mir, "
        "ek100_cls, egtea)",
    )
    p.add_argument("--no-progress", action="store_true", help="do not show progress bars")


def metrics_table(records: list[dict]) -> str:
    """The records' metrics as a tabulate grid: benchmark, metric, value, n, partial, skipped items."""
    from tabulate import tabulate

    rows = []
    for rec in records:
        for i, (name, value) in enumerate(rec["metrics"].items()):
            first = i == 0
            rows.append(
                [
                    rec["benchmark"] if first else "",
                    name,
                    "n/a" if value is None else f"{value:.2f}",
                    rec["n_items"] if first else "",
                    ("yes" if rec["partial"] else "no") if first else "",
                    rec.get("skipped_items", 0) if first else "",
                ]
            )
    headers = ["benchmark", "metric", "value (%)", "n", "partial", "skipped"]
    return tabulate(rows, headers=headers, tablefmt="github")


def run(args: argparse.Namespace) -> int:
    """Build and load the model, evaluate, print the table, write the records."""
    import time
    from pathlib import Path

    from benchmarks.record import write_records
    from benchmarks.runner import benchmark_spec, check_on_missing, evaluate, load_model
    from henasy.core import overrides

    model_args = overrides.model_args(
        overrides.parse(args.overrides, "--set", SET_EXAMPLE, prefix=f"{overrides.MODEL}.")
    )
    options: dict[str, dict] = {}
    for key, value in overrides.parse(args.options, "--option", OPTION_EXAMPLE, dotted=True).items():
        bench, _, name = key.partition(".")
        options.setdefault(bench, {})[name] = value
    if args.cache_dir:
        options["cache_dir"] = args.cache_dir  # type: ignore[assignment]
    specs = [benchmark_spec(name) for name in args.benchmarks]  # unknown names fail before the model is built
    check_on_missing(args.on_missing, specs)
    model = load_model(args.model, args.ckpt, model_args)
    records = evaluate(
        model,
        list(args.benchmarks),
        args.data,
        model_id=args.model,
        checkpoint=args.ckpt,
        limit=args.limit,
        batch_size=args.batch_size,
        num_workers=args.num_workers,
        device=args.device,
        progress=not args.no_progress,
        options=options,
        on_missing=args.on_missing,
    )
    out = (
        Path(args.out)
        if args.out
        else Path("runs") / "eval" / f"{args.model}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    )
    path = write_records(out, records)
    print(metrics_table(records))
    print(f"wrote {len(records)} record(s) to {path}")
    return 0
