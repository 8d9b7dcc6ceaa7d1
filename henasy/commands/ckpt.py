"""``bench ckpt check MODEL PATH``: does a checkpoint file fit a registered model, key by key?

Builds the model on the meta device, reads the file with ``torch.load(weights_only=True)`` and loads it
(the model's own ``load_checkpoint`` when it has one, e.g. LaViLa's temporal inflation and EgoVLP renaming;
otherwise a plain key/shape check). Prints missing / unexpected keys and shape mismatches and exits with
status 1 when any of them is non-empty (2 when the file cannot be read at all).
"""

from __future__ import annotations

import argparse
import json

from henasy.commands.options import (
    add_command_parser,
    add_format_option,
    add_frames_option,
    add_model_argument,
)

NAME = "ckpt"
HELP = "inspect checkpoints against registered models"
DESCRIPTION = "Checkpoint utilities. `check` loads PATH into MODEL and lists mismatched keys."
EPILOG = """examples:
  bench ckpt check lavila clip_openai_timesformer_base.narrator_rephraser.ep_0005.md5sum_d73a9c.pth
  bench ckpt check lavila ckpt.pth --frames 16      4-frame checkpoint inflated to 16 frames
  bench ckpt check lavila_tiny runs/x/last.pth --format json

exit status: 0 = every key matches, 1 = missing/unexpected keys or shape mismatches, 2 = unreadable file
"""


CHECK_HELP = "load PATH into MODEL and list missing / unexpected keys and shape mismatches"
CHECK_DESCRIPTION = (
    "Load PATH into MODEL (built on the meta device) and list missing / unexpected keys and "
    "shape mismatches; exit 1 when any list is non-empty."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The ``check`` action (required) and its arguments."""
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    check = add_command_parser(
        actions, "check", help=CHECK_HELP, description=CHECK_DESCRIPTION, epilog=EPILOG
    )
    add_model_argument(check)
    check.add_argument("path", help="checkpoint file (.pth/.pt written by torch.save)")
    add_frames_option(check)
    add_format_option(check)


def run(args: argparse.Namespace) -> int:
    """Load the checkpoint and report; 0 when everything matches, 1 otherwise."""
    from henasy.core.factory import build_on_meta, load_weights

    model = build_on_meta(args.model, args.frames)
    report = load_weights(model, args.path, strict=False)
    if args.format == "json":
        print(json.dumps({"model": args.model, "path": args.path, **report.to_dict()}, indent=2))
    else:
        total = len(model.state_dict())
        print(f"{args.path} → {args.model}: {report.loaded} tensors loaded, model has {total}")
        print(f"missing keys ({len(report.missing)}):" + "".join(f"\n  {k}" for k in report.missing))
        print(f"unexpected keys ({len(report.unexpected)}):" + "".join(f"\n  {k}" for k in report.unexpected))
        if report.mismatched:
            print(f"shape mismatches ({len(report.mismatched)}):")
            for key, want, got in report.mismatched:
                print(f"  {key}: model {list(want)}, checkpoint {list(got)}")
        for key, why in report.not_loadable.items():
            print(f"not loadable: {key} ({why})")
        for note in report.notes:
            print(f"note: {note}")
        print("OK: all keys match" if report.ok else "MISMATCH")
    return 0 if report.ok else 1
