"""``bench data synth``: write the deterministic synthetic egocentric dataset (``henasy.synth``);
``bench data relevancy``: build the EK100-MIR relevancy pkl of a dataset root (``henasy.data.relevancy``).

Real Ego4D / EPIC-KITCHENS-100 / EGTEA cannot be downloaded here; the generator writes real H.264 videos
and every annotation file in the official formats, in the layout the loaders read (henasy/data/layout.py).
The generator is imported only when the command runs, so ``bench data synth --help`` is instant.
"""

from __future__ import annotations

import argparse

from henasy.commands.options import add_command_parser, add_data_option, add_out_option

SIZE_NAMES = ("tiny", "small", "medium")  # keep in sync with henasy.synth.sizes.SIZES (checked in tests)

NAME = "data"
HELP = "dataset utilities (synthetic dataset generator, EK100-MIR relevancy builder)"
DESCRIPTION = "Dataset utilities."
EPILOG = (
    "examples:\n  bench data synth --out data/synth --size small\n  bench data relevancy --data /datasets/ego"
)

SYNTH_HELP = "write the deterministic synthetic egocentric dataset"
SYNTH_DESCRIPTION = (
    "Write a deterministic synthetic egocentric dataset: real H.264 videos of hands acting on objects "
    "with Ego4D-style narrations, and every annotation file in the official formats."
)
SYNTH_EPILOG = """examples:
  bench data synth --out data/synth                         small dataset (2,200 EgoClip clips), seed 0
  bench data synth --out data/synth_tiny --size tiny        a few short videos (what the tests use)
  bench data synth --out data/s1 --seed 1 --layout egovlp   another seed, EgoVLP chunk layout <uid>/<k>.mp4
  bench data synth --out data/synth --force                 replace a previous synthetic dataset there
                                                            (only one with our synth_manifest.json)

what is written under --out (official file names and formats):
  ego4d/    egoclip.csv, narration_{noun,verb}_taxonomy.csv, egomcq.json, verb_phrases.json,
            video_chunks/ (30-s chunks), hand_object/ (100DOH boxes), nlq/, mq/
  ek100/    EPIC_100_{train,validation}.csv, class csvs, retrieval_annotations/, video_ht256px/
  egtea/    action_idx.txt, {train,test}_split*.txt, cropped_clips/
  grounding/ grounding_val.json, masks/<clip_id>.npz
  synth_manifest.json   seed, size, fps, chunk_sec, layout, held-out compositions

The same --seed gives byte-identical files; held-out noun x verb pairs and backgrounds (listed in the
manifest) never occur in egoclip.csv, EPIC_100_train.csv or the EGTEA train split.
"""

RELEVANCY_HELP = "build the EK100-MIR relevancy pkl from the retrieval csvs (JPoSE rule)"
RELEVANCY_DESCRIPTION = (
    "Build ek100/retrieval_annotations/relevancy/caption_relevancy_EPIC_100_retrieval_test.pkl under --data "
    "from EPIC_100_retrieval_test.csv and EPIC_100_retrieval_test_sentence.csv by the JPoSE rule: "
    "relevancy(clip i, caption j) = (verb IoU + noun IoU) / 2 over the verb class and the set of "
    "all_noun_classes; a caption takes the classes of the clip its narration_id names."
)
RELEVANCY_EPILOG = """examples:
  bench data relevancy --data /datasets/ego            write the pkl next to the official retrieval csvs
  bench data relevancy --data /datasets/ego --force    replace an existing pkl

reads   <data>/ek100/retrieval_annotations/EPIC_100_retrieval_test.csv
        <data>/ek100/retrieval_annotations/EPIC_100_retrieval_test_sentence.csv
writes  <data>/ek100/retrieval_annotations/relevancy/caption_relevancy_EPIC_100_retrieval_test.pkl
        (float64 clips x captions; 9,668 x 3,842 for the official files, a few seconds)
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The ``synth`` and ``relevancy`` subcommands (``bench data`` alone prints its help)."""
    p.set_defaults(data_parser=p)
    sub = p.add_subparsers(dest="data_command", metavar="SUBCOMMAND")
    s = add_command_parser(sub, "synth", help=SYNTH_HELP, description=SYNTH_DESCRIPTION, epilog=SYNTH_EPILOG)
    add_out_option(s, "output folder (must be empty or absent unless --force)", required=True)
    s.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    s.add_argument("--size", choices=SIZE_NAMES, default="small", help="dataset size (default: small)")
    s.add_argument(
        "--layout",
        choices=("lavila", "egovlp"),
        default="lavila",
        help="Ego4D chunk layout: lavila <uid>.mp4/<start_sec>.mp4 (default) or egovlp <uid>/<k>.mp4",
    )
    s.add_argument("--workers", type=int, default=None, help="render processes (default: automatic)")
    s.add_argument(
        "--force",
        action="store_true",
        help="replace a previous synthetic dataset in --out (recognised by its synth_manifest.json; any "
        "other non-empty folder is refused)",
    )
    s.add_argument("--no-progress", action="store_true", help="do not print the progress bar")
    s.set_defaults(func=run_synth)

    r = add_command_parser(
        sub, "relevancy", help=RELEVANCY_HELP, description=RELEVANCY_DESCRIPTION, epilog=RELEVANCY_EPILOG
    )
    add_data_option(r, "dataset root holding ek100/retrieval_annotations/ (layout: henasy/data/layout.py)")
    r.add_argument("--force", action="store_true", help="replace an existing relevancy pkl")
    r.set_defaults(func=run_relevancy)


def run(args: argparse.Namespace) -> int:
    """``bench data`` without a subcommand: print its help."""
    args.data_parser.print_help()
    return 0


def run_synth(args: argparse.Namespace) -> int:
    """Generate the dataset and print a summary."""
    from henasy.core.errors import BenchError
    from henasy.synth import generate

    if args.workers is not None and args.workers < 1:
        raise BenchError(f"--workers must be at least 1, got {args.workers}")
    summary = generate(
        args.out,
        seed=args.seed,
        size=args.size,
        layout=args.layout,
        workers=args.workers,
        force=args.force,
        progress=not args.no_progress,
    )
    print(
        f"wrote {summary['out']}: {summary['videos']} videos ({summary['frames']} frames), "
        f"{summary['egoclip_train_clips']} EgoClip training clips, {summary['egomcq_items']} EgoMCQ items, "
        f"{summary['ek100_validation_rows']} EK100-MIR clips, {summary['grounding_queries']} grounding queries "
        f"in {summary['wall_s']:.1f} s ({summary['workers']} worker(s))"
    )
    return 0


def run_relevancy(args: argparse.Namespace) -> int:
    """Build the relevancy pkl and print its path, shape and time."""
    from henasy.data.relevancy import build_ek100_relevancy

    built = build_ek100_relevancy(args.data, force=args.force)
    print(f"wrote {built.path}: {built.shape[0]} x {built.shape[1]} relevancy in {built.seconds:.1f} s")
    return 0
