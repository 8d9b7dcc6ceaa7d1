"""``bench list [models|benchmarks|sweeps|tables]``: what is registered, one line each."""

from __future__ import annotations

import argparse

NAME = "list"
HELP = "list registered models, benchmarks, sweeps and tables"
DESCRIPTION = "List what is registered, with a one-line description each."
EPILOG = "examples:\n  bench list\n  bench list models"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The optional registry name."""
    p.add_argument(
        "kind", nargs="?", choices=["models", "benchmarks", "sweeps", "tables"], help="only this registry"
    )


def run(args: argparse.Namespace) -> int:
    """Print the registries (models, benchmarks) and the spec folders (sweeps, tables)."""
    from henasy.core.catalog import REGISTRIES

    kinds = [args.kind] if args.kind else [*REGISTRIES, "sweeps", "tables"]
    for kind in kinds:
        if kind == "sweeps":
            rows = _sweeps()
        elif kind == "tables":
            rows = _tables()
        else:
            rows = [(entry.name, entry.description) for entry in REGISTRIES[kind]]
        print(f"{kind}:")
        if not rows:
            print("  (none registered yet)")
        width = max((len(name) for name, _ in rows), default=0)
        for name, description in rows:
            print(f"  {name:<{width}}  {description}")
    return 0


def _sweeps() -> list[tuple[str, str]]:
    """(name, description) of every spec file under ``sweeps/`` (the folder is the list)."""
    from sweeps.spec import shipped_specs

    return [(s.name, s.description) for s in shipped_specs().values()]


def _tables() -> list[tuple[str, str]]:
    """(name, description) of every table spec under ``reports/tables/`` (the folder is the list)."""
    from henasy.core.errors import BenchError
    from reports.spec import list_table_ids, load_table_spec

    rows = []
    for table_id in list_table_ids():
        try:
            spec = load_table_spec(table_id)
        except BenchError as err:
            rows.append((f"table{table_id}", f"(invalid spec: {err})"))
            continue
        filled = f"filled by sweep {spec.sweep}" if spec.sweep else "filled by `bench compare A B --cost`"
        rows.append((f"table{table_id}", f"HENASY Table {spec.id}: {spec.title} ({filled})"))
    return rows
