"""``bench list [models|benchmarks|sweeps|tables]``: what is registered, one line each."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``list`` subcommand."""
    p = subparsers.add_parser(
        "list",
        help="list registered models, benchmarks, sweeps and tables",
        description="List what is registered, with a one-line description each.",
        epilog="examples:\n  bench list\n  bench list models",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "kind", nargs="?", choices=["models", "benchmarks", "sweeps", "tables"], help="only this registry"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the registries."""
    from henasy.catalog import REGISTRIES

    kinds = [args.kind] if args.kind else list(REGISTRIES)
    for kind in kinds:
        registry = REGISTRIES[kind]
        print(f"{kind}:")
        if not len(registry):
            print("  (none registered yet)")
        width = max((len(e.name) for e in registry), default=0)
        for entry in registry:
            print(f"  {entry.name:<{width}}  {entry.description}")
    return 0
