"""Preflight of a dataset root (``bench data check``): do the annotation files of a benchmark parse, and do
the videos they name exist?

Each benchmark's needs are declared here, in ``NEEDS`` (keyed by benchmark name), because the protocol
modules (``benchmarks/<name>.py``) declare nothing of the kind: a declaration lists the annotation files the
protocol reads, parses them **with the loaders the protocol itself calls** (``henasy.data.<dataset>``), and
yields the videos it would decode, with the video source the protocol builds (``henasy.data.video``:
``AutoSource`` over the Ego4D chunk folder — LaViLa ``<uid>.mp4/<start_sec>.mp4`` or EgoVLP ``<uid>/<k>.mp4``
— and ``SingleFileSource`` for EPIC ``<participant>/<video_id>.MP4`` and EGTEA clips). A change to what a
protocol reads must be mirrored in its declaration.

``training`` (``TRAINING``) is declared the same way for EgoClip pretraining (``henasy/training/run.py``):
the two taxonomies, ``egoclip.csv`` and the chunk folders of the videos it names.

A video is *present* when its source finds it (a single file, or a chunk folder with at least one chunk
file). With ``decode=True`` each present video is also opened with decord (``ClipLoader.video_info``): its
first annotated frame is read and its length must reach the end of every annotated window, with the same
1-s tolerance the clip loader applies before it clamps (henasy/data/video.py).

Nothing is written under the data root: ``write_missing_lists`` puts ``<benchmark>_missing.txt`` in a folder
of the caller's choice (``bench data check --out``, default ``./bench_check``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from henasy.core.errors import BenchError, VideoReadError
from henasy.data.layout import DatasetLayout
from henasy.data.video import AutoSource, SingleFileSource, VideoSource

MISSING_SHOWN = 3  # paths printed per benchmark in the text report; the full list goes to a file
END_TOLERANCE_SEC = 1.0  # henasy/data/video.py: a clip may end up to 1 s past the video before it is refused


@dataclass
class VideoNeed:
    """One video a benchmark decodes, with the windows (seconds) it reads from it."""

    source: VideoSource
    video_id: str
    windows: list[tuple[float, float]] = field(default_factory=list)


class _Needs:
    """What one declaration collects: annotation errors and the videos of the files that parsed."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.videos: dict[tuple[int, str], VideoNeed] = {}
        self.missing_files: list[Path] = []  # non-video files the protocol reads lazily (grounding masks)

    def parse(self, loader: Callable, *args: object) -> object | None:
        """``loader(*args)``, or None with its message recorded (a malformed file names itself and its line)."""
        try:
            return loader(*args)
        except BenchError as err:
            self.errors.append(str(err))
        except Exception as err:  # noqa: BLE001 - a preflight reports every failure instead of stopping
            self.errors.append(f"{args[0] if args else loader.__name__}: {type(err).__name__}: {err}")
        return None

    def video(self, source: VideoSource, video_id: str, start: float, end: float) -> None:
        key = (id(source), video_id)
        need = self.videos.setdefault(key, VideoNeed(source, video_id))
        need.windows.append((float(start), float(end)))


# ------------------------------------------------------------------------------------------ declarations
# One function per benchmark: the files and loaders of benchmarks/<name>.py ``run``, and its video source.


def _egomcq(layout: DatasetLayout, n: _Needs) -> None:
    from henasy.data.egomcq import load_egomcq

    items = n.parse(load_egomcq, layout.egomcq_json) or []
    source = AutoSource(layout.ego4d_videos)
    for item in items:  # benchmarks/egomcq.py embeds the 5 choices of every item
        for c in item.choices:
            n.video(source, c.video_uid, c.clip_start, c.clip_end)


def _ek100_rows(layout: DatasetLayout, n: _Needs, csv: Path, loaded: object | None) -> None:
    from henasy.data.ek100 import ek100_video_relpath, load_epic_annotations

    rows = loaded if loaded is not None else n.parse(load_epic_annotations, csv)
    if rows is None:
        return
    source = SingleFileSource(layout.ek100_videos)
    for r in rows.itertuples():
        n.video(source, ek100_video_relpath(r.participant_id, r.video_id), r.start_sec, r.stop_sec)


def _ek100_mir(layout: DatasetLayout, n: _Needs) -> None:
    from henasy.data.ek100 import load_ek100_retrieval

    data = n.parse(load_ek100_retrieval, layout.root)  # retrieval csv + sentence csv + relevancy pkl
    pkl = layout.ek100_relevancy_pkl
    if data is None and not pkl.exists() and str(pkl) in n.errors[-1]:  # as benchmarks/ek100_mir.py _load
        n.errors[-1] += f"; build it with `bench data relevancy --data {layout.root}`"
    # the videos of the retrieval csv are listed even when the pkl or the sentence csv is the problem
    if data is None:
        before = len(n.errors)
        _ek100_rows(layout, n, layout.ek100_retrieval_csv, None)
        del n.errors[before:]  # already reported by load_ek100_retrieval
    else:
        _ek100_rows(layout, n, layout.ek100_retrieval_csv, data.videos)


def _ek100_cls(layout: DatasetLayout, n: _Needs) -> None:
    from henasy.data.ek100 import load_epic_annotations

    n.parse(load_epic_annotations, layout.epic_csv("train"))  # class vocabulary only, no video
    _ek100_rows(layout, n, layout.epic_csv("validation"), None)


# benchmarks/egtea.py PROTOCOLS: 'lavila' reads test_split1, 'helpinghands' test_split1-3; the check covers both
EGTEA_SPLITS = ("test_split1", "test_split2", "test_split3")


def _egtea(layout: DatasetLayout, n: _Needs) -> None:
    from henasy.data.egtea import egtea_clip_relpath, load_action_index, load_split

    classes = n.parse(load_action_index, layout.egtea_action_idx)
    if classes is None:
        return
    source = SingleFileSource(layout.egtea_videos)
    for name in EGTEA_SPLITS:
        for clip in n.parse(load_split, layout.egtea_split(name), classes) or []:
            n.video(source, egtea_clip_relpath(clip.clip_id), 0.0, 0.0)  # whole trimmed clips


def _egonlq(layout: DatasetLayout, n: _Needs) -> None:
    from henasy.data.nlq import load_nlq

    source = AutoSource(layout.ego4d_videos)
    for split in ("train", "val"):
        nlq = n.parse(load_nlq, layout.nlq_json(split))
        for q in nlq.queries if nlq is not None else []:
            if q.window is not None:  # benchmarks/egonlq.py keeps annotated queries only
                n.video(source, q.video_uid, q.video_start_sec, q.video_end_sec)


def _egomq(layout: DatasetLayout, n: _Needs) -> None:
    from henasy.data.mq import load_clip_annotations

    clips = n.parse(load_clip_annotations, layout.mq_clip_annotations_json) or {}
    source = AutoSource(layout.ego4d_videos)
    for c in clips.values():
        # benchmarks/egomq.py: train clips, and val clips whose subset is a substring of SUBSET "validation"
        if c.segments and (c.subset == "train" or c.subset in "validation"):
            n.video(source, c.video_id, c.parent_start_sec, c.parent_end_sec)


def _grounding(layout: DatasetLayout, n: _Needs) -> None:
    from henasy.data.grounding import load_grounding

    source = AutoSource(layout.ego4d_videos)
    for it in n.parse(load_grounding, layout.grounding_json) or []:
        n.video(source, it.video_uid, it.start_sec, it.end_sec)
        if not Path(it.mask_path).is_file():
            n.missing_files.append(Path(it.mask_path))


def _training(layout: DatasetLayout, n: _Needs) -> None:
    """EgoClip pretraining (henasy/training/run.py): both taxonomies, ``egoclip.csv`` checked against their
    sizes, and the chunk folder of every video the csv names (one window per video: its first clip start to
    its last clip end, which is what presence and ``--decode`` coverage need)."""
    from henasy.data.egoclip import load_egoclip
    from henasy.data.taxonomy import load_taxonomy

    verbs = n.parse(load_taxonomy, layout.verb_taxonomy_csv)
    nouns = n.parse(load_taxonomy, layout.noun_taxonomy_csv)
    if verbs is None or nouns is None:
        return
    table = n.parse(
        lambda path: load_egoclip(path, verb_taxonomy=verbs, noun_taxonomy=nouns), layout.egoclip_csv
    )
    if table is None or len(table) == 0:
        return
    spans = table.groupby("video_uid", sort=True).agg(start=("clip_start", "min"), end=("clip_end", "max"))
    source = AutoSource(layout.ego4d_videos)
    for video_uid, start, end in zip(spans.index, spans["start"], spans["end"]):
        n.video(source, str(video_uid), max(0.0, float(start)), float(end))


TRAINING = "training"  # the pseudo-benchmark name of EgoClip pretraining in `bench data check`

NEEDS: dict[str, Callable[[DatasetLayout, _Needs], None]] = {
    "egomcq": _egomcq,
    "ek100_mir": _ek100_mir,
    "ek100_cls": _ek100_cls,
    "egtea": _egtea,
    "egonlq": _egonlq,
    "egomq": _egomq,
    "grounding": _grounding,
    TRAINING: _training,
}


# ------------------------------------------------------------------------------------------------ checks


@dataclass
class BenchmarkCheck:
    """The preflight of one benchmark (the JSON object of ``bench data check``, plus the missing paths)."""

    name: str
    annotations: str  # "ok" or the messages of the files that failed
    videos_expected: int
    missing: list[str]  # one line per missing / unreadable video: "<path>" or "<path>: <why>"
    missing_list: Path | None = None

    @property
    def ready(self) -> bool:
        return self.annotations == "ok" and not self.missing

    def as_json(self) -> dict:
        return {
            "ready": self.ready,
            "annotations": self.annotations,
            "videos_expected": self.videos_expected,
            "videos_missing": len(self.missing),
            "missing_list": None if self.missing_list is None else str(self.missing_list),
        }


def _present(need: VideoNeed) -> str | None:
    """None when the source finds the video, else the path it looked for."""
    src = need.source
    try:
        if isinstance(src, AutoSource):
            layout = src.layout_of(need.video_id)  # raises, naming the three places it looked, when absent
            if layout == "lavila":
                src.chunks(need.video_id)  # lists <start_sec>.mp4 files; raises when there are none
            elif layout == "egovlp":  # listing only: EgoVLP chunk starts would need chunk 0 decoded
                folder = src.contained(need.video_id, need.video_id)
                if not any(p.suffix.lower() == ".mp4" and p.stem.isdigit() for p in folder.iterdir()):
                    return f"{folder}: no chunk files named <k>.mp4 in this folder"
            return None
        path = src.chunks(need.video_id)[0].path
        return None if path.is_file() else str(path)
    except VideoReadError as err:
        return err.path if "not found" in str(err) else str(err)


def _decodes(need: VideoNeed, loader: object) -> str | None:
    """None when the video opens, its first annotated frame decodes and it covers every window."""
    try:
        info = loader.video_info(need.source, need.video_id)  # type: ignore[attr-defined]
        start = min(s for s, _ in need.windows)
        end = max(e for _, e in need.windows)
        first = min(max(0, round(start * info.fps)), info.num_frames - 1)
        loader.read_frames(need.source, need.video_id, [first], fps=info.fps)  # type: ignore[attr-defined]
    except VideoReadError as err:
        return str(err)
    except Exception as err:  # noqa: BLE001 - reported per video
        return f"{need.source.root / need.video_id}: {type(err).__name__}: {err}"
    if end > info.duration_sec + END_TOLERANCE_SEC:
        where = info.chunks[-1].path if len(info.chunks) > 1 else info.chunks[0].path
        return f"{where}: the video ends at {info.duration_sec:.2f} s but an annotated window ends at {end:.2f} s"
    return None


def check_benchmark(root: str | Path, name: str, *, decode: bool = False) -> BenchmarkCheck:
    """Parse the annotation files of benchmark ``name`` under ``root`` and look for every video they name."""
    if name not in NEEDS:
        raise BenchError(
            f"benchmark {name!r} has no preflight declaration (henasy/data/preflight.py NEEDS knows "
            f"{', '.join(NEEDS)})"
        )
    needs = _Needs()
    NEEDS[name](DatasetLayout(root), needs)
    loader = None
    if decode:
        from henasy.data.video import ClipLoader

        loader = ClipLoader(num_frames=1, size=8)
    missing: list[str] = []
    for need in needs.videos.values():
        problem = _present(need)
        if problem is None and loader is not None:
            problem = _decodes(need, loader)
        if problem is not None:
            missing.append(problem)
    errors = list(needs.errors)
    if needs.missing_files:
        errors.append(
            f"{len(needs.missing_files)} annotation file(s) missing, first {needs.missing_files[0]}"
        )
    annotations = "ok" if not errors else "; ".join(errors)
    return BenchmarkCheck(name, annotations, len(needs.videos), sorted(set(missing)))


def check(root: str | Path, names: list[str], *, decode: bool = False) -> Iterator[BenchmarkCheck]:
    """``check_benchmark`` of each name, in order (a missing root is a usage error)."""
    if not Path(root).is_dir():
        raise BenchError(f"data root {root} is not a folder")
    for name in names:
        yield check_benchmark(root, name, decode=decode)


def write_missing_list(result: BenchmarkCheck, out_dir: str | Path) -> None:
    """Write ``<out_dir>/<name>_missing.txt`` (one entry a line) when videos are missing, else remove a stale one."""
    path = Path(out_dir) / f"{result.name}_missing.txt"
    if result.missing:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(f"{m}\n" for m in result.missing), encoding="utf-8")
        result.missing_list = path
    else:
        path.unlink(missing_ok=True)
        result.missing_list = None


def text_line(result: BenchmarkCheck) -> str:
    """One line of the text report."""
    if result.ready:
        return f"{result.name}: ready ({result.videos_expected} videos)"
    parts = []
    if result.annotations != "ok":
        parts.append(f"annotations: {result.annotations}")
    if result.missing:
        shown = ", ".join(result.missing[:MISSING_SHOWN])
        more = ", ..." if len(result.missing) > MISSING_SHOWN else ""
        parts.append(
            f"{len(result.missing)} of {result.videos_expected} videos missing: {shown}{more} "
            f"(full list: {result.missing_list})"
        )
    return f"{result.name}: NOT READY: " + "; ".join(parts)
