"""Argument builders shared by the ``bench`` subcommands (command-line code only; imports nothing heavy).

``add_command_parser`` makes one (sub)command parser in the house style (raw-text description and epilog,
so the examples keep their alignment); the ``add_*_option`` functions add an option that several commands
share, with the same flag, destination, metavar and action everywhere; only the help text is the caller's.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from henasy.core import SCALES

MODEL_HELP = "registered model name (see `bench list models`)"
TRACKING_URI_HELP = "MLflow store (default: $MLFLOW_TRACKING_URI or sqlite:///mlflow.db)"
FORMAT_HELP = "output format (default: text)"

# Options go on a parser or on one of its argument groups (``parser.add_argument_group(...)``).
Options = argparse.ArgumentParser | argparse._ArgumentGroup


def add_command_parser(
    subparsers: argparse._SubParsersAction, name: str, *, help: str, description: str, epilog: str
) -> argparse.ArgumentParser:
    """Add the parser of the (sub)command ``name`` (RawDescriptionHelpFormatter) and return it."""
    return subparsers.add_parser(
        name,
        help=help,
        description=description,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def add_model_argument(p: Options, help: str = MODEL_HELP) -> None:
    """The positional ``model``: a registered model name."""
    p.add_argument("model", help=help)


def add_repeatable_option(p: Options, flag: str, dest: str, metavar: str, help: str) -> None:
    """``flag VALUE`` that may be given several times, collected into the list ``args.<dest>`` (default [])."""
    p.add_argument(flag, dest=dest, action="append", default=[], metavar=metavar, help=help)


def add_set_option(p: Options, help: str, *, metavar: str = "KEY=VALUE") -> None:
    """``--set KEY=VALUE`` (repeatable) into ``args.overrides``; ``help`` gives the keys and an example."""
    add_repeatable_option(p, "--set", "overrides", metavar, help)


def add_tracking_uri_option(p: Options, help: str = TRACKING_URI_HELP) -> None:
    """``--tracking-uri URI``: the MLflow store (``None`` when not given)."""
    p.add_argument("--tracking-uri", metavar="URI", help=help)


def add_scale_option(p: Options, help: str, default: str | None = None) -> None:
    """``--scale smoke|synth|paper`` (synth: the longer synthetic study of the sweep specs)."""
    p.add_argument("--scale", choices=list(SCALES), default=default, help=help)


def add_format_option(
    p: Options,
    help: str = FORMAT_HELP,
    choices: Sequence[str] = ("text", "json"),
    default: str | None = "text",
) -> None:
    """``--format``: the output format."""
    p.add_argument("--format", choices=list(choices), default=default, help=help)


def add_data_option(p: Options, help: str, *, required: bool = True) -> None:
    """``--data DIR``: a dataset root (layout: henasy/data/layout.py)."""
    p.add_argument("--data", required=required, metavar="DIR", help=help)


def add_out_option(p: Options, help: str, *, metavar: str | None = None, required: bool = False) -> None:
    """``--out``: where the command writes (a file or a folder, as ``metavar`` says)."""
    p.add_argument("--out", required=required, metavar=metavar, help=help)


def add_device_option(p: Options, help: str) -> None:
    """``--device`` (default ``cpu``): the torch device."""
    p.add_argument("--device", default="cpu", help=help)


def add_frames_option(p: Options) -> None:
    """``--frames N``: build the model for N-frame clips."""
    p.add_argument("--frames", type=int, metavar="N", help="build the model for N-frame clips (num_frames=N)")
