"""``bench table --id N``: one of the paper's tables with this project's measured values, the paper's and Δ.

Thin wrapper over ``reports.spec`` (table specs), ``reports.collect`` (MLflow → cells), ``reports.render``
(md / LaTeX / CSV / JSON / HTML) and ``reports.plots``. Heavy imports (mlflow, matplotlib) happen in ``run``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from henasy.commands.options import (
    add_format_option,
    add_out_option,
    add_scale_option,
    add_tracking_uri_option,
)

if TYPE_CHECKING:
    from reports.collect import TableData

NAME = "table"
HELP = "a paper table (1-6) with measured values beside the paper's, from MLflow"
DESCRIPTION = (
    "Render HENASY Table N with this project's measurements (MLflow runs of the sweep that fills "
    "it), each measured value with its 95 % bootstrap interval, the paper's numbers, the difference from the "
    "paper and from the table's reference row; --id all writes every table into ./bench_reports/."
)
EPILOG = """examples:
  bench table --id 3                                 Table 3 (loss ablation): measured ± 95 % CI, paper, Δ per row
  bench table --id 1 --paper-only --format json      the paper's numbers only, machine-readable
  bench table --id 4 --format latex > table4.tex     booktabs LaTeX, ready to paste
  bench table --id 3 --plot                          also bar charts (paper beside measured ± CI) and training
                                                     curves, PNG and PDF, into ./bench_reports/
  bench table --id 3 --sweep my/losses --scale paper fill from another sweep's runs, paper scale only
  bench table --id 5                                 cost table from bench_reports/cost.json (bench compare --cost)
  bench table --id all                               every table, every format, into ./bench_reports/

  Measured cells come from MLflow ($MLFLOW_TRACKING_URI or sqlite:///mlflow.db): for each row the latest
  FINISHED run tagged bench.table=N (or bench.sweep=NAME) whose bench.row is the row's label. An empty
  cell says why: not run, running, failed, partial (evaluated on a subset), no metric, unit mismatch.
  Units: the paper prints percentages; the benchmark records store percentages too (EK100-MIR, EgoNLQ,
  EgoMQ as 100 × the official fractions). Each column declares its record unit (reports/tables/tableN.yaml
  `unit`: percent shown as is, fraction ×100); a record whose protocol.units disagrees is refused.
  Intervals: each measured cell that is a mean over benchmark items (the per-item outcomes of the run's
  result records) shows value ± half-width of its 95 % percentile bootstrap interval (--n-boot resamples,
  items resampled identically for every row, so differences are paired). Line "Δ ref" gives each row minus
  the reference row (the spec's reference_row, else its last measured row: the full model) with the paired
  interval; bold only where an interval excludes 0. Intervals cover item sampling, not training seeds.
  JSON: {"id", "columns", "reference_row", "intervals", "rows": [{"label", "paper", "measured", "ci95",
  "diff", "vs_reference", "status", ...}]}, null = empty.
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    """--id, where the measurements come from, format, outputs."""
    p.add_argument(
        "--id", required=True, dest="table_id", metavar="N", help="table number 1-6, `all`, or a spec file"
    )
    p.add_argument(
        "--sweep", metavar="NAME", help="take runs tagged bench.sweep=NAME instead of bench.table=N"
    )
    add_scale_option(p, "only runs at this scale (default: paper, else smoke)")
    add_format_option(
        p,
        "output format (default: md; with --id all: every format)",
        choices=("md", "latex", "csv", "json", "html"),
        default=None,
    )
    p.add_argument("--paper-only", action="store_true", help="the paper's numbers only; MLflow is not read")
    p.add_argument("--plot", action="store_true", help="also write bar charts and training curves (PNG)")
    add_out_option(
        p, "directory for --id all, --plot and written tables (default: ./bench_reports)", metavar="DIR"
    )
    add_tracking_uri_option(p)
    p.add_argument(
        "--cost-file", metavar="PATH", help="Table 5 measurements (default: ./bench_reports/cost.json)"
    )
    p.add_argument(
        "--n-boot",
        type=int,
        default=10_000,
        metavar="N",
        help="bootstrap resamples of the 95 %% intervals (default 10000)",
    )
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    p.add_argument(
        "--log-run", metavar="RUN_ID", help="log the written tables and plots as artifacts of this MLflow run"
    )
    p.add_argument(
        "--strict",
        action="store_true",
        help="exit 1 when a measured cell of a row this project runs is empty",
    )


def _write_outputs(
    table: TableData, formats: list[str], out_dir: Path, plot: bool, tracking_uri: str | None
) -> list[Path]:
    """Write the table in each format (and its plots) as ``<out_dir>/table<N>.<ext>``; returns the paths."""
    from henasy.core.atomic import atomic_write_text
    from reports import plots
    from reports.collect import open_store
    from reports.render import EXTENSIONS, render

    spec = table.spec
    written = [
        atomic_write_text(out_dir / f"table{spec.id}.{EXTENSIONS[f]}", render(table, f)) for f in formats
    ]
    if plot:
        written += plots.table_bars(table, out_dir / f"table{spec.id}_bars.png")
        if not table.paper_only and spec.source == "mlflow":
            mlc, _ = open_store(tracking_uri)
            if mlc is not None:
                written += plots.training_curves(mlc, table, out_dir / f"table{spec.id}_training.png")
    return written


def _log_artifacts(run_id: str, paths: list[Path], tracking_uri: str | None) -> None:
    from henasy.core.errors import BenchError
    from reports.collect import open_store

    mlc, uri = open_store(tracking_uri)
    if mlc is None:
        raise BenchError(f"--log-run: no MLflow store at {uri}")
    try:
        mlc.get_run(run_id)
    except Exception:
        raise BenchError(f"--log-run: no MLflow run {run_id!r} in {uri}") from None
    for path in paths:
        mlc.log_artifact(run_id, str(path), "reports")
    print(f"logged {len(paths)} file(s) to MLflow run {run_id} (artifacts/reports/)", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    """Collect, render, write."""
    from henasy.core.errors import BenchError
    from reports import OUT_DIR
    from reports.collect import collect_table
    from reports.render import FORMATS, render
    from reports.spec import list_table_ids, load_table_spec

    if args.n_boot < 1:
        raise BenchError(f"--n-boot must be at least 1, got {args.n_boot}")
    ids = list_table_ids() if args.table_id == "all" else [args.table_id]
    out_dir = Path(args.out) if args.out else OUT_DIR
    tables = []
    for table_id in ids:
        spec = load_table_spec(table_id)
        cost_file = args.cost_file if spec.source == "cost" else None
        tables.append(
            collect_table(
                spec,
                tracking_uri=args.tracking_uri,
                sweep=args.sweep,
                scale=args.scale,
                paper_only=args.paper_only,
                cost_file=cost_file,
                n_boot=args.n_boot,
                seed=args.seed,
            )
        )
    written: list[Path] = []
    if args.table_id == "all":
        formats = [args.format] if args.format else list(FORMATS)
        for table in tables:
            written += _write_outputs(table, formats, out_dir, args.plot, args.tracking_uri)
        for path in written:
            print(path)
    else:
        table = tables[0]
        fmt = args.format or "md"
        sys.stdout.write(render(table, fmt))
        if args.plot or args.out or args.log_run:
            written = _write_outputs(table, [fmt], out_dir, args.plot, args.tracking_uri)
            for path in written:
                print(f"wrote {path}", file=sys.stderr)
    if args.log_run:
        _log_artifacts(args.log_run, written, args.tracking_uri)
    if args.strict:
        empty = [
            f"Table {t.spec.id} {row.spec.label}: {cell.status}"
            for t in tables
            for row in t.rows
            if not row.spec.reference
            for cell in row.measured
            if cell.status != "ok"
        ]
        if empty:
            print(
                f"bench table: --strict: {len(empty)} empty measured cell(s), e.g. {empty[0]}",
                file=sys.stderr,
            )
            return 1
    return 0
