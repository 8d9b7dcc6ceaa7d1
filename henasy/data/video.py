"""The clip loader: LaViLa's segment-midpoint frame sampling on decord, over chunked or whole videos.

Frame sampling mirrors LaViLa ``lavila/data/datasets.py``: ``get_frame_ids`` splits
``[start_frame, end_frame)`` into N segments of ``(end - start - 1) / N`` frames with rounded bounds and takes
the midpoint ``(s + e) // 2`` (a random frame in ``[s, e]`` with jitter, for training); ``video_loader``
turns seconds into frames with the per-video fps read from decord. Three video layouts (henasy/data/layout.py):

* LaViLa chunks ``<root>/<uid>.mp4/<start_sec>.mp4`` — chunk starts come from the file names, so any chunk
  length works (LaViLa uses 300 s);
* EgoVLP chunks ``<root>/<uid>/<k>.mp4`` — chunk k starts at ``k · chunk_sec`` (``EgovlpChunkSource``: 600 s
  by default, as EgoVLP's ``video_chunk.py``; ``chunk_sec=None``, the ``AutoSource`` default, measures chunk 0);
* single files ``<root>/<relpath>`` — EPIC ``<participant>/<video_id>.MP4``, EGTEA clips.

A video is treated as one frame sequence: chunk k begins at global frame ``round(start_sec_k · fps)``, so a
clip whose frames cross a chunk boundary reads from both chunks. **Frame indices past the end of the
video (or past the end of a chunk, up to 1 s before the next chunk begins) are clamped to the last
available frame**; a clip that starts more than 1 s after the video ends, frames in a gap of more than
1 s between chunks or before the first chunk (a missing chunk file) raise ``VideoReadError``. A missing or corrupt file raises
``VideoReadError`` naming the file. Video ids come from annotation files: every source checks that the path
it builds from an id stays inside its root (``henasy.data.paths.inside``, lexical, so symlinked dataset
folders keep working) and raises ``VideoReadError`` otherwise.

decord is imported lazily (on the first read). No import-order issue with torch was found (decord 0.6 +
torch 2.14, both orders, also in forked DataLoader workers). The fork hazard is real, though: destroying in
a forked worker a reader created by the parent hangs forever, so readers are cached per process and only
free their decoder in the process that opened them (``_open_reader``).
"""

from __future__ import annotations

import bisect
import math
import os
import re
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from henasy.core.errors import VideoReadError
from henasy.data.paths import inside
from henasy.data.sampling import FrameRule, clip_frame_range, segment_frame_ids
from henasy.data.transforms import CLIP_MEAN, CLIP_STD, ClipTransform

_NUMBER_RE = re.compile(r"^\d+(?:\.\d+)?$")
_INT_RE = re.compile(r"^\d+$")


# --------------------------------------------------------------------------------------------- layouts


@dataclass(frozen=True)
class Chunk:
    start_sec: float  # where the file begins in the video's timeline
    path: Path


class VideoSource:
    """Maps a video id to its file(s): a list of chunks sorted by start time."""

    root: Path

    def chunks(self, video_id: str) -> list[Chunk]:
        raise NotImplementedError

    def contained(self, video_id: str, relpath: str) -> Path:
        """``root / relpath``, refused unless it stays inside ``root`` (``relpath`` is built from ``video_id``)."""
        path = self.root / relpath
        if not inside(self.root, path):
            raise VideoReadError(
                path,
                f"video id {video_id!r} leads outside the video folder {self.root}; a video id must not be an "
                "absolute path or climb out with '..': check the annotation file that names this video",
            )
        return path


class SingleFileSource(VideoSource):
    """One file per video: ``video_id`` is the path relative to ``root`` (``P01/P01_01.MP4``)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def chunks(self, video_id: str) -> list[Chunk]:
        return [Chunk(0.0, self.contained(video_id, video_id))]

    def __repr__(self) -> str:
        return f"SingleFileSource({str(self.root)!r})"


class _ListingCache:
    def _listing(self, key: str, compute: Any) -> list[Chunk]:
        cache = self.__dict__.setdefault("_listings", {})
        if key not in cache:
            cache[key] = compute()
        return cache[key]


class LavilaChunkSource(VideoSource, _ListingCache):
    """LaViLa layout ``<root>/<uid>.mp4/<start_sec>.mp4``; chunk starts are read from the file names."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def chunks(self, video_id: str) -> list[Chunk]:
        folder = self.contained(video_id, f"{video_id}.mp4")
        return self._listing(video_id, lambda: _list_chunks(folder, _NUMBER_RE, 1.0))

    def __repr__(self) -> str:
        return f"LavilaChunkSource({str(self.root)!r})"


class EgovlpChunkSource(VideoSource, _ListingCache):
    """EgoVLP / HelpingHands layout ``<root>/<uid>/<k>.mp4``; chunk k starts at ``k · chunk_sec``
    (``chunk_sec=None``: the frame count / fps of chunk 0)."""

    def __init__(self, root: str | Path, chunk_sec: float | None = 600.0) -> None:
        self.root = Path(root)
        self.chunk_sec = None if chunk_sec is None else float(chunk_sec)

    def chunks(self, video_id: str) -> list[Chunk]:
        folder = self.contained(video_id, video_id)
        return self._listing(video_id, lambda: _list_egovlp_chunks(folder, self.chunk_sec))

    def __repr__(self) -> str:
        return f"EgovlpChunkSource({str(self.root)!r}, chunk_sec={self.chunk_sec})"


class AutoSource(VideoSource, _ListingCache):
    """Detects the layout per video id: LaViLa chunks, else EgoVLP chunks, else a single file.

    EgoVLP chunk k starts at ``k · chunk_sec``; the default ``None`` measures the length of chunk 0 (600 s for
    EgoVLP/HelpingHands data, the generator's ``chunk_sec`` for synthetic data), so any chunk length works.
    """

    def __init__(self, root: str | Path, chunk_sec: float | None = None) -> None:
        self.root = Path(root)
        self.chunk_sec = None if chunk_sec is None else float(chunk_sec)

    def layout_of(self, video_id: str) -> str:
        """``"lavila"``, ``"egovlp"`` or ``"single"``."""
        lavila, plain = self.contained(video_id, f"{video_id}.mp4"), self.contained(video_id, video_id)
        if lavila.is_dir():
            return "lavila"
        if plain.is_dir():
            return "egovlp"
        if plain.is_file():
            return "single"
        raise VideoReadError(
            self.root / video_id,
            f"video not found: looked for LaViLa chunks {self.root / (video_id + '.mp4')}/<start_sec>.mp4, "
            f"EgoVLP chunks {self.root / video_id}/<k>.mp4 and a single file {self.root / video_id}",
        )

    def chunks(self, video_id: str) -> list[Chunk]:
        def compute() -> list[Chunk]:
            layout = self.layout_of(video_id)
            if layout == "lavila":
                return _list_chunks(self.contained(video_id, f"{video_id}.mp4"), _NUMBER_RE, 1.0)
            if layout == "egovlp":
                return _list_egovlp_chunks(self.contained(video_id, video_id), self.chunk_sec)
            return [Chunk(0.0, self.contained(video_id, video_id))]

        return self._listing(video_id, compute)

    def __repr__(self) -> str:
        return f"AutoSource({str(self.root)!r}, chunk_sec={self.chunk_sec})"


def _list_chunks(folder: Path, name_re: re.Pattern, unit_sec: float) -> list[Chunk]:
    """Chunk files ``<number>.mp4`` in ``folder``, start = number · unit_sec, sorted."""
    if not folder.is_dir():
        raise VideoReadError(folder, "video chunk folder not found")
    found = []
    for p in folder.iterdir():
        if p.suffix.lower() == ".mp4" and name_re.match(p.stem):
            found.append(Chunk(float(p.stem) * unit_sec, p))
    if not found:
        raise VideoReadError(folder, "no chunk files named <number>.mp4 in this folder")
    return sorted(found, key=lambda c: c.start_sec)


def _list_egovlp_chunks(folder: Path, chunk_sec: float | None) -> list[Chunk]:
    chunks = _list_chunks(folder, _INT_RE, 1.0)  # start_sec = k for now
    if chunk_sec is None:
        if len(chunks) == 1:
            return chunks  # one chunk: its length does not matter
        first = next((c for c in chunks if c.start_sec == 0), None)
        if first is None:
            raise VideoReadError(
                folder / "0.mp4", "chunk 0 is missing, so the chunk length cannot be inferred"
            )
        chunk_sec = _duration_sec(first.path)
    return [Chunk(c.start_sec * chunk_sec, c.path) for c in chunks]


def _duration_sec(path: Path) -> float:
    """Frame count / fps of a video file (opens it briefly)."""
    import decord

    try:
        vr = _open_reader(path, 1)
        n, fps = len(vr), float(vr.get_avg_fps())
        del vr
    except (RuntimeError, decord.DECORDError) as exc:
        raise VideoReadError(
            path, f"cannot open the video (corrupt or not a video?): {_short(exc)}"
        ) from None
    if n <= 0 or not fps > 0:
        raise VideoReadError(path, f"the video has {n} frames at {fps} fps")
    return n / fps


def as_source(source: VideoSource | str | Path) -> VideoSource:
    """A ``VideoSource`` as is; a path → ``AutoSource(path)`` (auto-detected layout and chunk length)."""
    return source if isinstance(source, VideoSource) else AutoSource(source)


# --------------------------------------------------------------------------------------------- readers


@dataclass
class _Reader:
    reader: Any  # decord.VideoReader
    num_frames: int
    fps: float


_READER_CLASS: Any = None


def _open_reader(path: Path, num_threads: int) -> Any:
    """A decord ``VideoReader`` that only frees its native decoder in the process that opened it.

    A forked DataLoader worker inherits the parent's readers, including ones that are garbage but not yet
    collected; decord's destructor would then wait forever for decoder threads that exist only in the
    parent. Readers of this subclass skip the native free in any other process (the child's copy leaks).
    """
    global _READER_CLASS
    import decord

    if _READER_CLASS is None:

        class ProcessLocalVideoReader(decord.VideoReader):
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                self._owner_pid = os.getpid()
                super().__init__(*args, **kwargs)

            def __del__(self) -> None:
                if getattr(self, "_owner_pid", None) == os.getpid():
                    super().__del__()

        _READER_CLASS = ProcessLocalVideoReader
    return _READER_CLASS(str(path), ctx=decord.cpu(0), num_threads=num_threads)


class VideoReaderCache:
    """A small per-process LRU of open decord readers (a forked process starts a fresh one: readers are not
    fork-safe)."""

    def __init__(self, size: int = 4, num_threads: int = 1) -> None:
        self.size = int(size)
        self.num_threads = int(num_threads)
        self._pid = os.getpid()
        self._readers: OrderedDict[Path, _Reader] = OrderedDict()

    def __getstate__(self) -> dict:
        return {"size": self.size, "num_threads": self.num_threads}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["size"], state["num_threads"])

    def open(self, path: Path) -> _Reader:
        if os.getpid() != self._pid:  # forked child: the parent's readers are unusable here
            self._pid, self._readers = os.getpid(), OrderedDict()
        if path in self._readers:
            self._readers.move_to_end(path)
            return self._readers[path]
        import decord

        if not path.is_file():
            raise VideoReadError(path, "video file not found")
        try:
            vr = _open_reader(path, self.num_threads)
            n, fps = len(vr), float(vr.get_avg_fps())
        except (RuntimeError, decord.DECORDError) as exc:
            raise VideoReadError(
                path, f"cannot open the video (corrupt or not a video?): {_short(exc)}"
            ) from None
        if n <= 0 or not math.isfinite(fps) or fps <= 0:
            raise VideoReadError(path, f"the video has {n} frames at {fps} fps")
        entry = _Reader(vr, n, fps)
        self._readers[path] = entry
        while len(self._readers) > self.size:
            self._readers.popitem(last=False)
        return entry

    def get_batch(self, path: Path, local_ids: list[int]) -> np.ndarray:
        """Decode frames ``local_ids`` of ``path`` → uint8 (T, H, W, 3)."""
        import decord

        entry = self.open(path)
        try:
            return entry.reader.get_batch(local_ids).asnumpy()
        except (RuntimeError, IndexError, decord.DECORDError) as exc:
            self._readers.pop(path, None)
            raise VideoReadError(path, f"cannot decode frames {local_ids[:8]}: {_short(exc)}") from None


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


@dataclass(frozen=True)
class VideoInfo:
    fps: float  # of the first chunk (all chunks of a video share it)
    num_frames: int  # global frame count (last chunk's first frame + its length)
    chunks: tuple[Chunk, ...]

    @property
    def duration_sec(self) -> float:
        return self.num_frames / self.fps


# --------------------------------------------------------------------------------------------- loader


class ClipLoader:
    """Loads a clip as a normalised float32 (C, T, size, size) tensor, as the model expects.

    ``load(source, video_id, start_sec, end_sec)`` samples ``num_frames`` frames with
    ``segment_frame_ids`` over ``clip_frame_range(..., rule=frame_rule)`` (jittered when ``jitter``), reads
    them across chunks, and applies ``ClipTransform(size, mean, std)``. ``source`` is a ``VideoSource`` or a
    folder (auto-detected layout). Open readers are cached per process (``cache_size``); decord uses
    ``num_threads`` threads per reader (1 suits DataLoader workers).
    """

    def __init__(
        self,
        num_frames: int,
        size: int,
        mean: tuple[float, float, float] = CLIP_MEAN,
        std: tuple[float, float, float] = CLIP_STD,
        *,
        jitter: bool = False,
        frame_rule: FrameRule = "duration",
        cache_size: int = 4,
        num_threads: int = 1,
        seed: int | None = None,
    ) -> None:
        if frame_rule not in ("duration", "ceil"):
            raise ValueError(f"unknown frame rule {frame_rule!r} (use 'duration' or 'ceil')")
        self.num_frames = int(num_frames)
        self.size = int(size)
        self.jitter = bool(jitter)
        self.frame_rule: FrameRule = frame_rule
        self.transform = ClipTransform(size, mean, std)
        self.readers = VideoReaderCache(cache_size, num_threads)
        self._rng = np.random.default_rng(seed)
        self._sources: dict[str, VideoSource] = {}  # folder → AutoSource, so listings are cached

    def _source(self, source: VideoSource | str | Path) -> VideoSource:
        if isinstance(source, VideoSource):
            return source
        key = str(source)
        if key not in self._sources:
            self._sources[key] = AutoSource(source)
        return self._sources[key]

    @classmethod
    def for_model(cls, model: Any, **kwargs: Any) -> ClipLoader:
        """A loader with the model's ``num_frames``, ``image_size``, ``pixel_mean``, ``pixel_std``."""
        return cls(
            model.num_frames, model.image_size, tuple(model.pixel_mean), tuple(model.pixel_std), **kwargs
        )

    # -- geometry of a video
    def _starts(self, chunks: list[Chunk], fps: float) -> list[int]:
        return [int(round(c.start_sec * fps)) for c in chunks]

    def _first_chunk(self, chunks: list[Chunk], start_sec: float) -> int:
        return max(0, bisect.bisect_right([c.start_sec for c in chunks], start_sec) - 1)

    def video_info(self, source: VideoSource | str | Path, video_id: str) -> VideoInfo:
        """fps and total frame count of a video (opens its first and last chunk)."""
        chunks = self._source(source).chunks(video_id)
        fps = self.readers.open(chunks[0].path).fps
        last = self.readers.open(chunks[-1].path)
        return VideoInfo(fps, self._starts(chunks, fps)[-1] + last.num_frames, tuple(chunks))

    def frame_ids(
        self,
        source: VideoSource | str | Path,
        video_id: str,
        start_sec: float,
        end_sec: float,
        *,
        rng: np.random.Generator | None = None,
    ) -> tuple[float, list[int]]:
        """(fps, global frame ids) that ``load`` would read for this clip (before clamping)."""
        chunks = self._source(source).chunks(video_id)
        fps = self.readers.open(chunks[self._first_chunk(chunks, start_sec)].path).fps
        first, end = clip_frame_range(start_sec, end_sec, fps, self.num_frames, self.frame_rule)
        ids = segment_frame_ids(
            first, end, self.num_frames, self.jitter, rng if rng is not None else self._rng
        )
        return fps, ids

    def read_frames(
        self,
        source: VideoSource | str | Path,
        video_id: str,
        frame_ids: list[int],
        *,
        fps: float | None = None,
    ) -> np.ndarray:
        """Global frame ids → uint8 (T, H, W, 3), reading each frame from the chunk that holds it."""
        if len(frame_ids) == 0:
            raise ValueError("read_frames needs at least one frame id")
        chunks = self._source(source).chunks(video_id)
        if fps is None:
            fps = self.readers.open(chunks[0].path).fps
        starts = self._starts(chunks, fps)
        plan: OrderedDict[int, list[tuple[int, int]]] = OrderedDict()  # chunk → [(position, local id)]
        for pos, g in enumerate(frame_ids):
            if int(g) < starts[0]:
                raise VideoReadError(
                    chunks[0].path.parent,
                    f"frame {g} ({g / fps:.2f} s) comes before the first chunk {chunks[0].path.name} "
                    f"(starts at {chunks[0].start_sec:g} s): is a chunk file missing?",
                )
            k = bisect.bisect_right(starts, int(g)) - 1
            n = self.readers.open(chunks[k].path).num_frames
            local = int(g) - starts[k]
            if local >= n:
                overshoot = local - (n - 1)
                if k + 1 < len(chunks) and overshoot > fps:
                    raise VideoReadError(
                        chunks[k].path,
                        f"frame {g} ({g / fps:.2f} s) falls in a {overshoot / fps:.1f}-s gap after this chunk "
                        f"({n} frames) and before {chunks[k + 1].path.name}: is a chunk file missing, or (EgoVLP "
                        "layout) is chunk_sec wrong?",
                    )
                if pos == 0 and k + 1 == len(chunks) and overshoot > fps:
                    raise VideoReadError(
                        chunks[k].path,
                        f"the clip starts at frame {g} ({g / fps:.2f} s) but the video ends at "
                        f"{(starts[k] + n) / fps:.2f} s",
                    )
                local = n - 1  # clamp past the end of the video / chunk
            plan.setdefault(k, []).append((pos, local))
        out: np.ndarray | None = None
        for k, entries in plan.items():
            frames = self.readers.get_batch(chunks[k].path, [local for _, local in entries])
            if out is None:
                out = np.empty((len(frame_ids), *frames.shape[1:]), dtype=np.uint8)
            elif frames.shape[1:] != out.shape[1:]:
                raise VideoReadError(
                    chunks[k].path,
                    f"frame size {frames.shape[1:3]} differs from the other chunks' {out.shape[1:3]}",
                )
            for (pos, _), frame in zip(entries, frames):
                out[pos] = frame
        assert out is not None
        return out

    def load(
        self,
        source: VideoSource | str | Path,
        video_id: str,
        start_sec: float,
        end_sec: float,
        *,
        rng: np.random.Generator | None = None,
    ) -> torch.Tensor:
        """One clip → float32 (C, T, size, size), normalised."""
        src = self._source(source)
        fps, ids = self.frame_ids(src, video_id, start_sec, end_sec, rng=rng)
        return self.transform(self.read_frames(src, video_id, ids, fps=fps))

    def load_frame_ids(
        self, source: VideoSource | str | Path, video_id: str, frame_ids: list[int]
    ) -> torch.Tensor:
        """Explicit global frame ids (e.g. EGTEA's strided multi-clip views) → float32 (C, T, size, size)."""
        return self.transform(self.read_frames(source, video_id, list(frame_ids)))
