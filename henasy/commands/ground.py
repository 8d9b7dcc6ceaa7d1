"""``bench ground MODEL``: ground a text query in a video clip and write an overlay PNG or GIF.

HENASY's vision-language grounding (paper §5.3, Fig. 4; ``henasy.grounding``): the query (a noun such as
"the red cube" or a verb phrase such as "picking up the knife") is matched against the model's entity
embeddings and the best entity's per-frame saliency masks are drawn over the clip's frames. HelpingHands
draws its rasterised boxes; LaViLa its per-patch query similarity (a baseline, ``LaViLaDualEncoder.ground``).
"""

from __future__ import annotations

import argparse
import json

from henasy.commands.options import add_device_option, add_format_option, add_model_argument, add_out_option

NAME = "ground"
HELP = "ground a text query in a clip (entity masks per frame) and write an overlay PNG/GIF"
DESCRIPTION = (
    "Score MODEL's entities against QUERY on one clip, take the best entity's per-frame masks "
    "and write them over the frames as a PNG (frames side by side) or an animated GIF."
)
EPILOG = """examples:
  bench ground henasy_tiny --video data/synth/ego4d/video_chunks/abc.mp4/0.mp4 --start 2 --end 4 \\
      --query "the red cup" --ckpt runs/henasy_tiny/last.pt --out cup.png
  bench ground henasy --video 0a1b2c3d --data-root /datasets/ego --start 31.2 --end 33.0 \\
      --query "picking up the knife" --ckpt henasy.pth --out knife.gif
  bench ground henasy --video clip.mp4 --start 0 --end 2 --query "the phone" --out p.png --format json

--video is an mp4 file (seconds of that file) or, with --data-root, an Ego4D video_uid under
<data-root>/ego4d/video_chunks. The PNG shows the frames side by side (top) and the same frames with the
matched entity's mask blended in red (bottom); the GIF animates [frame | overlay] pairs. Both carry the
query, every entity's score (the matched one marked) and a colour legend, with frames enlarged to at least
224 px (integer factor, nearest neighbour). Without --ckpt the
model keeps its initial weights (masks are then meaningless). A checkpoint is a HENASY or LaViLa
state_dict file or a `bench train` last.pt.
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    """MODEL, the clip, the query, the checkpoint and the overlay file."""
    add_model_argument(p, "registered model with entity masks, e.g. henasy or henasy_tiny")
    p.add_argument("--video", required=True, help="mp4 file, or a video_uid together with --data-root")
    p.add_argument("--start", type=float, required=True, metavar="SEC", help="clip start (seconds)")
    p.add_argument("--end", type=float, required=True, metavar="SEC", help="clip end (seconds)")
    p.add_argument("--query", required=True, help='text query: a noun ("the red cube") or a verb phrase')
    p.add_argument("--ckpt", metavar="PATH", help="checkpoint to load (HENASY/LaViLa state_dict or last.pt)")
    p.add_argument("--data-root", metavar="DIR", help="dataset root, when --video is a video_uid")
    add_out_option(
        p, "output image: .png or .gif (missing folders are created)", metavar="FILE", required=True
    )
    p.add_argument("--alpha", type=float, default=0.6, help="mask opacity in the overlay (default 0.6)")
    add_device_option(p, "torch device (default: cpu)")
    add_format_option(p, "report format (default: text)")


def run(args: argparse.Namespace) -> int:
    """Build the model, load the clip and checkpoint, ground the query, write the overlay."""
    from henasy.core.errors import BenchError
    from henasy.core.factory import create_model
    from henasy.grounding import (
        OVERLAY_SUFFIXES,
        check_interval,
        check_out_file,
        check_query,
        ground_query,
        load_clip,
        write_overlay,
    )

    if not args.out.lower().endswith(OVERLAY_SUFFIXES):
        raise BenchError(f"--out {args.out}: use a .png or .gif file name")
    check_out_file(args.out)  # before the model is built: nothing is spent on a run that cannot write
    check_interval(args.start, args.end)
    check_query(args.query)
    if not 0.0 <= args.alpha <= 1.0:
        raise BenchError(f"--alpha must be in [0, 1], got {args.alpha}")
    model = create_model(args.model, checkpoint=args.ckpt or None, device=args.device)
    if not hasattr(model, "ground"):
        raise BenchError(f"model {args.model!r} has no `ground` method; use henasy, helpinghands or lavila")
    clip = load_clip(model, args.video, args.start, args.end, args.data_root)
    result = ground_query(model, clip, args.query)
    path = write_overlay(
        args.out,
        result.frames,
        result.masks,
        alpha=args.alpha,
        query=args.query,
        scores=result.scores,
        entity=result.entity,
        model=args.model,
    )
    report = {
        "model": args.model,
        "query": args.query,
        "entity": result.entity,
        "scores": [round(s, 4) for s in result.scores],
        "frames": int(result.masks.shape[0]),
        "mask_mean": round(float(result.masks.mean()), 4),
        "out": str(path),
    }
    if args.format == "json":
        print(json.dumps(report, indent=2))
    else:
        scores = ", ".join(f"{s:+.3f}" for s in report["scores"])
        print(f"query {args.query!r} → entity {result.entity} (scores: {scores})")
        print(f"wrote {path} ({report['frames']} frames, mean mask {report['mask_mean']})")
    return 0
