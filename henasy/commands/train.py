"""``bench train MODEL --data DIR``: train a registered model on the EgoClip set of a dataset root.

Thin wrapper over ``henasy.training.run.train_run`` (the function sweep jobs call): resolves the preset and
``--set`` overrides into a ``RunConfig`` (``henasy.core.overrides``), trains into ``--out`` and resumes from
``<out>/last.pt`` when it exists; ``--dry-run`` prints the resolved configuration instead. Several processes
(torchrun / submitit) train one model with DistributedDataParallel.
"""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

from henasy.commands.options import (
    add_data_option,
    add_format_option,
    add_model_argument,
    add_out_option,
    add_set_option,
)

if TYPE_CHECKING:
    from henasy.training.config import RunConfig

NAME = "train"
HELP = "train a registered model on the EgoClip set of a dataset root (resumable)"
DESCRIPTION = (
    "Train MODEL on <DIR>/ego4d/egoclip.csv with the shared trainer: atomic checkpoints, exact "
    "resume, mixed precision on GPU, gradient accumulation, frozen modules, DDP."
)
EPILOG = """presets:
  paper   HENASY §4: AdamW, fixed lr 3e-5, weight decay 0.01, batch 128, 5 epochs, fp16 autocast on GPU
  smoke   tiny models from scratch on synthetic data: lr 3e-4, batch 16, 4 epochs, fp32, 1 loader worker
  (default: smoke for *_tiny / *_test models, paper otherwise)

examples:
  bench train lavila_tiny --data data/synth --out runs/lavila_tiny
  bench train lavila_tiny --data data/synth --set trainer.max_steps=20 --set trainer.batch_size=8
  bench train henasy_tiny --data data/synth --dry-run --format json --set model.loss_weights.nec=0.3
  bench train lavila --data /datasets/ego --preset paper --set trainer.freeze=[visual] --out runs/lavila
  bench train lavila --data /datasets/ego --set data.hard_negative_sec=10 --set trainer.precision=bf16
  torchrun --nproc_per_node 2 -m henasy.cli train lavila --data /datasets/ego --out runs/lavila_ddp

  Under torchrun / SLURM (DDP) EgoNCE runs over the global batch: embeddings and tags are gathered across
  processes (as LaViLa and EgoVLP do), so 2 GPUs × 64 clips train like 1 GPU × 128.
  Re-running with the same --out resumes from last.pt (exact: same final weights as an uninterrupted run);
  a finished run says so and exits 0; --no-resume starts over. Keys for --set: trainer.* (epochs,
  batch_size = clips per optimizer step over all processes, lr, weight_decay, grad_accum_steps,
  clip_grad_norm, precision fp32|fp16|bf16, freeze = list of module-path prefixes, checkpoint_every,
  seed, num_workers, max_steps, ...), data.* (hard_negative_sec, limit), model.<factory argument>
  (a dotted model key sets one entry of a mapping: model.loss_weights.nec=0.3). --dry-run prints the
  resolved config (model arguments and the architecture they give, data, trainer, preset) and exits.
  Files in --out: config.json, last.pt, metrics.jsonl (one line per step), summary.json. One process
  trains into a folder at a time: a second one is refused, naming the holder's host and PID (--out/.lock).
  A non-finite loss or weight stops the run without saving it; the error names the last finite last.pt.
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    """MODEL, the data root, preset and overrides, the run folder, --dry-run."""
    add_model_argument(p)
    add_data_option(p, "dataset root (holds ego4d/egoclip.csv)")
    p.add_argument("--preset", choices=["smoke", "paper"], help="hyper-parameter preset (see below)")
    add_set_option(p, "override one config key (YAML value), e.g. --set trainer.lr=1e-4; repeatable")
    add_out_option(p, "run folder (default: runs/train/<MODEL>)", metavar="RUN_DIR")
    p.add_argument(
        "--resume",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="resume from RUN_DIR/last.pt when it exists (default: yes)",
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="print the fully resolved run configuration and exit (no data is read, nothing is written)",
    )
    add_format_option(p, "--dry-run output format (default: text)")


def resolved_config(config: RunConfig) -> dict[str, Any]:
    """``config.to_dict()`` plus ``model_config``: the architecture the factory builds from ``model_args``.

    The model is built on the ``meta`` device (no weights allocated), so every ``model.*`` option is checked
    by the factory itself, as in training.
    """
    import dataclasses

    import torch

    from henasy.training.config import to_plain
    from henasy.training.run import build_model

    with torch.device("meta"):
        model = build_model(config)
    out = config.to_dict()
    arch = getattr(model, "config", None)
    if dataclasses.is_dataclass(arch) and not isinstance(arch, type):
        out["model_config"] = to_plain(dataclasses.asdict(arch))
    return out


def dotted_lines(value: Any, prefix: str = "") -> list[str]:
    """``{"a": {"b": 1}}`` → ``["a.b = 1"]`` (lists and scalars as JSON)."""
    if isinstance(value, dict) and value:
        return [line for k, v in value.items() for line in dotted_lines(v, f"{prefix}{k}.")]
    return [f"{prefix.rstrip('.')} = {json.dumps(value, default=str)}"]


def run(args: argparse.Namespace) -> int:
    """Build the run config, train (or with --dry-run print it), and print where everything went."""
    import os
    from pathlib import Path

    from henasy.training.config import build_run_config
    from henasy.training.run import train_run

    config = build_run_config(args.model, args.data, preset=args.preset, overrides=args.overrides)
    if args.dry_run:
        resolved = resolved_config(config)
        if args.format == "json":
            print(json.dumps(resolved, indent=2, default=str))
        else:
            print("\n".join(dotted_lines(resolved)))
        return 0
    run_dir = Path(args.out) if args.out else Path("runs") / "train" / args.model
    summary = train_run(config, run_dir, resume=args.resume)
    if int(os.environ.get("RANK", "0")) != 0:  # one report per job, from rank 0
        return 0
    if summary.get("already_finished"):
        print(
            f"{run_dir}: run already finished ({summary['step']} steps); nothing to do. Use --no-resume to start over."
        )
        return 0
    first, final = summary.get("first_loss"), summary.get("final_loss")
    loss = f"loss {first:.4f} -> {final:.4f}" if first is not None and final is not None else "no steps"
    print(
        f"{run_dir}: {summary['status']} at step {summary['step']}/{summary['total_steps']} "
        f"(epoch {summary['epoch']:.2f}), {loss}, {summary['clips_per_s']:.1f} clips/s; "
        f"checkpoint {run_dir / summary['checkpoint']}, summary {run_dir / 'summary.json'}"
    )
    return 0
