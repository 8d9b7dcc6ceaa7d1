"""The ``bench`` command line: one entry point whose subcommands live in ``henasy.commands``.

Each subcommand module is declarative: ``NAME``, ``HELP``, ``DESCRIPTION``, ``EPILOG`` (examples),
``add_arguments(parser)`` and ``run(args) -> int``; ``add_command`` builds its parser from them (a module with
nested subcommands adds them in ``add_arguments``, each with its own ``func``). Heavy imports (torch, models,
pandas) happen inside the command's ``run`` so that ``bench --help`` and ``bench list`` answer in well under a
second.
Errors caused by the user's input (``BenchError``) print one clear message and exit with status 2.
Before the command modules are imported, ``bench`` checks that its top-level packages come from this
installation, not from same-named folders first on ``sys.path`` (``henasy.core.shadowing``; for ``bench sweep``
also as the jobs it starts see them, with the working directory first).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from types import ModuleType

from henasy import __version__
from henasy.commands.options import add_command_parser
from henasy.core.errors import BenchError
from henasy.core.plugins import include_items, load_includes
from henasy.core.shadowing import check_packages

# Subcommand modules, in the order `bench --help` lists them.
COMMAND_MODULES = [
    "henasy.commands.listing",
    "henasy.commands.data",
    "henasy.commands.info",
    "henasy.commands.ckpt",
    "henasy.commands.train",
    "benchmarks.commands.eval",
    "henasy.commands.ground",
    "sweeps.commands.sweep",
    "sweeps.commands.status",
    "sweeps.commands.sync",
    "reports.commands.table",
    "reports.commands.compare",
]
# commands that start processes with the working directory first on sys.path (submitit's sweep jobs)
JOB_COMMANDS = frozenset({"sweep"})

EPILOG = """examples:
  bench sweep ablations/losses.yaml                  the paper's loss ablation (Table 3), smoke scale, local
  bench table --id 3                                 render it beside the paper's numbers
  bench compare henasy helpinghands --cost           Table 5: parameters, GFLOPs, latency, memory
  bench list models                                  what is registered
  bench --include my_model.py eval my_tiny egomcq --data data/synth   a model of your own
  bench data synth --out data/synth --size small     write the synthetic egocentric dataset
  bench info lavila                                  parameter count of the paper preset (meta device)
  bench train lavila_tiny --data data/synth --out runs/lavila_tiny
  bench eval lavila_tiny egomcq ek100_mir --data data/synth
"""


def add_command(subparsers: argparse._SubParsersAction, module: ModuleType) -> argparse.ArgumentParser:
    """Add the subcommand a declarative command module describes; its ``run`` handles the parsed args."""
    p = add_command_parser(
        subparsers, module.NAME, help=module.HELP, description=module.DESCRIPTION, epilog=module.EPILOG
    )
    p.set_defaults(func=module.run)
    module.add_arguments(p)
    return p


def build_parser() -> argparse.ArgumentParser:
    """The full ``bench`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="bench",
        description="henasy-bench: benchmarks and ablations for egocentric video-language models.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"henasy-bench {__version__}")
    parser.add_argument(
        "--include",
        action="append",
        default=[],
        metavar="PATH",
        help="import a Python file or module that registers models/benchmarks before the command runs "
        "(repeatable; also the BENCH_INCLUDE environment variable, os.pathsep-separated); see README, "
        '"Adding your own model"',
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        add_command(subparsers, importlib.import_module(module_name))
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``bench`` console script."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach the network for open_clip names
    try:
        check_packages()  # before build_parser imports benchmarks, sweeps and reports
    except BenchError as err:
        print(f"bench: error: {err}", file=sys.stderr)
        return 2
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        if args.command in JOB_COMMANDS:
            check_packages(working_dir_first=True)
        load_includes(include_items(args.include))
        return int(args.func(args) or 0)
    except BenchError as err:
        print(f"bench {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"bench {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
