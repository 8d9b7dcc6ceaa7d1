"""``bench data synth``: write the deterministic synthetic egocentric dataset (``henasy.synth``);
``bench data relevancy``: build the EK100-MIR relevancy pkl of a dataset root (``henasy.data.relevancy``);
``bench data check``: preflight of a dataset root for the chosen benchmarks (``henasy.data.preflight``).

Real Ego4D / EPIC-KITCHENS-100 / EGTEA cannot be downloaded here; the generator writes real H.264 videos
and every annotation file in the official formats, in the layout the loaders read (henasy/data/layout.py).
The generator is imported only when the command runs, so ``bench data synth --help`` is instant.
"""

from __future__ import annotations

import argparse

from henasy.commands.options import add_command_parser, add_data_option, add_format_option, add_out_option

SIZE_NAMES = ("tiny", "small", "medium")  # keep in sync with henasy.synth.sizes.SIZES (checked in tests)

NAME = "data"
HELP = "dataset utilities (synthetic dataset generator, EK100-MIR relevancy builder, preflight check)"
DESCRIPTION = "Dataset utilities."
EPILOG = (
    "examples:\n  bench data synth --out data/synth --size small\n  bench data relevancy --data /datasets/ego\n"
    "  bench data check --data /datasets/ego --benchmarks ek100_mir"
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
  bench data synth --out data/real --size tiny --video-size real   456x256 at 30 fps (loader benchmarks)
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

CHECK_HELP = "check that the annotation files of benchmarks parse and that their videos exist"
CHECK_DESCRIPTION = (
    "Preflight of a dataset root before a long job: parse every annotation file the selected benchmarks read "
    "(with the benchmarks' own loaders) and look for every video they name (the layouts of "
    "henasy/data/layout.py; Ego4D chunks in the LaViLa or EgoVLP layout). Exit status 0 when every selected "
    "benchmark is ready, 1 when one is not, 2 for a usage error."
)
CHECK_EPILOG = """examples:
  bench data check --data /datasets/ego                          every benchmark and training, a line each
  bench data check --data /datasets/ego --benchmarks training    the EgoClip pretraining files and videos
  bench data check --data /datasets/ego --benchmarks ek100_mir,egtea --format json
  bench data check --data /datasets/ego --benchmarks egomcq --decode   also open each video with decord

text: one line per benchmark, "ready" or what is missing (the first few paths); JSON:
  {"benchmarks": {NAME: {"ready": bool, "annotations": "ok" | message, "videos_expected": int,
                         "videos_missing": int, "missing_list": path | null}},
   "training": {same fields}}            (when training is selected)
The full list of missing videos of a benchmark is written to <out>/<benchmark>_missing.txt (--out, default
./bench_check; never inside --data, which may be a read-only mount); a stale list of a ready benchmark is
removed. --decode also opens every present video, decodes its first annotated frame and checks that it
lasts until the end of every annotated window (slow: one open per video).
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
    s.add_argument(
        "--video-size",
        choices=("synth", "real"),
        default="synth",
        help="synth: 128x96 at 15 fps, 30-s chunks (default); real: 456x256 at 30 fps with Ego4D chunk lengths "
        "(300 s lavila, 600 s egovlp), for loader benchmarks (slower to render, larger files)",
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

    c = add_command_parser(sub, "check", help=CHECK_HELP, description=CHECK_DESCRIPTION, epilog=CHECK_EPILOG)
    add_data_option(c, "dataset root to check (layout: henasy/data/layout.py)")
    c.add_argument(
        "--benchmarks",
        metavar="A,B",
        default=None,
        help="comma-separated benchmark names, and 'training' for the EgoClip pretraining files "
        "(default: every registered benchmark and training)",
    )
    add_format_option(c)
    add_out_option(c, "folder for the <benchmark>_missing.txt lists (default: ./bench_check)", metavar="DIR")
    c.add_argument(
        "--decode",
        action="store_true",
        help="also open each video with decord and check that it covers the annotated windows",
    )
    c.set_defaults(func=run_check)


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
        video_size=args.video_size,
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


def run_check(args: argparse.Namespace) -> int:
    """Check each selected benchmark; print one line each (or JSON); 0 when all are ready, else 1."""
    import json
    from pathlib import Path

    from henasy.core.catalog import BENCHMARKS
    from henasy.core.errors import BenchError
    from henasy.data import preflight
    from henasy.data.paths import inside

    registered = BENCHMARKS.names()
    if args.benchmarks is None:
        names = [n for n in registered if n in preflight.NEEDS] + [preflight.TRAINING]
    else:
        names = [n.strip() for n in args.benchmarks.split(",") if n.strip()]
        unknown = [n for n in names if n not in registered and n != preflight.TRAINING]
        if not names or unknown:
            raise BenchError(
                f"--benchmarks: unknown benchmark(s) {unknown or args.benchmarks!r}; registered: "
                f"{', '.join(registered)} (and {preflight.TRAINING!r} for the EgoClip pretraining files)"
            )
    out = Path(args.out) if args.out is not None else Path("bench_check")
    data = Path(args.data).resolve()
    if out.resolve() == data or inside(data, out.resolve()):
        raise BenchError(
            f"--out {out} is inside the data root {args.data}; choose a folder outside it (the data root may be "
            "a read-only mount)"
        )
    results = []
    for result in preflight.check(args.data, names, decode=args.decode):
        preflight.write_missing_list(result, out)
        results.append(result)
        if args.format == "text":
            print(preflight.text_line(result), flush=True)
    if args.format == "json":
        report: dict = {"benchmarks": {r.name: r.as_json() for r in results if r.name != preflight.TRAINING}}
        report.update({r.name: r.as_json() for r in results if r.name == preflight.TRAINING})
        print(json.dumps(report, indent=2))
    return 0 if all(r.ready for r in results) else 1
