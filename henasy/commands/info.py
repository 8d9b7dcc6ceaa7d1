"""``bench info MODEL``: parameter counts of a registered model, built on the meta device (no memory, no I/O).

The counts back the "#params" columns of the paper's tables (e.g. LaViLa TSF-B = 177.66 M; HENASY Table 5).
The model is built by ``henasy.core.factory.build_on_meta``.
"""

from __future__ import annotations

import argparse
import json

from henasy.commands.options import add_format_option, add_frames_option, add_model_argument

NAME = "info"
HELP = "parameter counts of a registered model (built on the meta device)"
DESCRIPTION = (
    "Build MODEL on the meta device and print its parameter counts: total, trainable and per "
    "top-level module (direct parameters such as projections count as their own entries)."
)
EPILOG = """examples:
  bench info lavila                      paper preset: total / trainable / per top-level module
  bench info lavila --frames 16          the same model sized for 16-frame clips
  bench info lavila_tiny --format json   machine-readable (keys params_total, params_trainable, modules)
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    """MODEL, --format, --frames."""
    add_model_argument(p)
    add_format_option(p)
    add_frames_option(p)


def run(args: argparse.Namespace) -> int:
    """Print the counts."""
    from henasy.core.factory import build_on_meta, parameter_counts

    model = build_on_meta(args.model, args.frames)
    counts = parameter_counts(model)
    frames = getattr(model, "num_frames", None)
    if args.format == "json":
        print(json.dumps({"model": args.model, "num_frames": frames, **counts}, indent=2))
        return 0
    width = max(len(n) for n in [*counts["modules"], "trainable"])
    print(f"{args.model} ({type(model).__name__}, {frames} frames)")
    print(f"  {'total':<{width}}  {counts['params_total'] / 1e6:10.2f} M  ({counts['params_total']:,})")
    print(
        f"  {'trainable':<{width}}  {counts['params_trainable'] / 1e6:10.2f} M  ({counts['params_trainable']:,})"
    )
    print("  per top-level module:")
    for name, count in counts["modules"].items():
        print(f"    {name:<{width}}  {count / 1e6:10.3f} M  ({count:,})")
    return 0
