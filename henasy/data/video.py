"""The clip loader: LaViLa's segment-midpoint frame sampling over chunked or whole videos (PyAV or decord).

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

Frames are decoded with PyAV in the calling thread by default (``_PyAVReader``: decord's frame numbering
and RGB conversion, without its per-frame thread hand-offs, one thread unless ``num_threads``; ``backend="decord"`` reads through decord).
decord is imported lazily (by the decord backend on its first read, and by ``_duration_sec``). No import-order issue with torch was found (decord 0.6 +
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
    reader: Any  # _PyAVReader or decord.VideoReader: both have get_batch(ids) → uint8 (N, H, W, 3) numpy
    num_frames: int
    fps: float


BACKENDS = ("pyav", "decord")

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

            def get_batch(self, indices: list[int]) -> np.ndarray:  # type: ignore[override]
                return super().get_batch(indices).asnumpy()

            @property
            def fps(self) -> float:  # as _PyAVReader.fps
                return self.get_avg_fps()

        _READER_CLASS = ProcessLocalVideoReader
    return _READER_CLASS(str(path), ctx=decord.cpu(0), num_threads=num_threads)


_INDEX_CACHE: OrderedDict[tuple[str, int, int], tuple[np.ndarray, list[int]]] = OrderedDict()
_INDEX_CACHE_SIZE = 512  # files; a 300-s chunk at 30 fps costs 72 kB


def _frame_index(path: Path, container: Any, stream: Any) -> tuple[np.ndarray, list[int]]:
    """(sorted packet timestamps (N,) int64, keyframe frame numbers) of a file's video stream.

    Reading every packet is most of the cost of opening a long chunk (53 ms for a 300-s 456×256 chunk, 2
    cores), so the index is kept per process for the last ``_INDEX_CACHE_SIZE`` files (keyed by path, size
    and modification time) and a reopened file is not read again.
    """
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key in _INDEX_CACHE:
        _INDEX_CACHE.move_to_end(key)
        return _INDEX_CACHE[key]
    pts: list[int] = []
    keys: list[int] = []
    for packet in container.demux(stream):
        if packet.size == 0:  # the demuxer's final flush packet
            continue
        if packet.pts is None:
            raise VideoReadError(path, "a video packet has no timestamp; use backend='decord'")
        pts.append(int(packet.pts))
        if packet.is_keyframe:
            keys.append(int(packet.pts))
    order = np.array(sorted(pts), dtype=np.int64)  # frame i's timestamp
    keyframes = sorted(int(np.searchsorted(order, k)) for k in keys) or [0]
    _INDEX_CACHE[key] = (order, keyframes)
    while len(_INDEX_CACHE) > _INDEX_CACHE_SIZE:
        _INDEX_CACHE.popitem(last=False)
    return order, keyframes


_INHERITED: list[Any] = []  # FFmpeg objects a forked child inherited and must not free (_PyAVReader.__del__)


class _PyAVReader:
    """Frame-accurate random access to one video file with PyAV, decoding in the calling thread.

    Why not decord here: decord's CPU decoder runs FFmpeg in a worker thread and hands every packet and
    frame across a queue, and every jump to another keyframe stops and restarts that thread; on a busy
    machine each hand-off waits for the scheduler (``scripts/bench_loader.py`` measures the difference).
    Frame numbering is decord's: frame i is the i-th packet of the video stream in presentation-time order,
    and the frames are converted with FFmpeg's RGB24 conversion, the pixel values decord returns (the
    loader benchmark checks max |Δ| = 0 against decord on every clip it reads). Frames between the ones asked
    for are decoded (they are needed to decode the next) but never converted; a frame whose keyframe lies
    past the current decoder position is reached by seeking to that keyframe.
    """

    def __init__(self, path: Path, num_threads: int = 1) -> None:
        import av

        self.path = path
        self._owner_pid = os.getpid()
        self._container = av.open(str(path))
        try:
            if not self._container.streams.video:
                raise VideoReadError(path, "the file has no video stream")
            self._stream = stream = self._container.streams.video[0]
            stream.codec_context.thread_count = max(1, int(num_threads))
            self._pts, self._keys = _frame_index(path, self._container, stream)
        except BaseException:
            self._container.close()
            raise
        rate = stream.average_rate
        self.fps = float(rate) if rate else float("nan")
        self._frames: Any = None  # the decode generator after the last seek
        self._next: int | None = None  # frame number the generator yields next (None: unknown / none)

    def __len__(self) -> int:
        return len(self._pts)

    def _seek(self, frame: int) -> None:
        """Position the decoder at keyframe ``frame``."""
        self._container.seek(int(self._pts[frame]), stream=self._stream, backward=True, any_frame=False)
        self._frames = self._container.decode(self._stream)
        self._next = None

    def get_batch(self, indices: list[int]) -> np.ndarray:
        """Frames ``indices`` (any order, repeats allowed) → uint8 (N, H, W, 3)."""
        n = len(self._pts)
        wanted = sorted(set(int(i) for i in indices))
        if wanted and not (0 <= wanted[0] and wanted[-1] < n):
            raise IndexError(f"frame ids {wanted} outside [0, {n})")
        got: dict[int, np.ndarray] = {}
        for i in wanted:
            key = int(self._keys[bisect.bisect_right(self._keys, i) - 1])
            if self._next is None or i < self._next or key > self._next:
                self._seek(key)
            for frame in self._frames:
                j = int(np.searchsorted(self._pts, frame.pts)) if frame.pts is not None else n
                if j >= n or self._pts[j] != frame.pts:
                    raise RuntimeError(f"decoded a frame with timestamp {frame.pts} that no packet has")
                self._next = j + 1
                if j == i:
                    got[i] = frame.to_ndarray(format="rgb24", threads=1)  # (H, W, 3)
                    break
                if j > i:
                    raise RuntimeError(f"seeking for frame {i} landed after it (frame {j})")
            else:
                self._next = None
                raise RuntimeError(f"the video ended before frame {i}")
        return np.stack([got[int(i)] for i in indices])  # (N, H, W, 3)

    def close(self) -> None:
        self._container.close()

    def __del__(self) -> None:
        # A forked worker inherits the parent's readers; freeing FFmpeg objects there could wait for threads
        # that exist only in the parent (swscale's slice threads did, before threads=1 above), so a child
        # keeps them alive instead (a small leak in the child, as decord readers in _open_reader).
        if getattr(self, "_owner_pid", os.getpid()) != os.getpid():
            _INHERITED.append(self.__dict__)


def _read_errors(backend: str = "pyav") -> tuple[type[BaseException], ...]:
    """The exceptions a ``backend`` reader raises for a file it cannot open or decode (decord is imported
    only for ``"decord"``)."""
    import av

    errors: tuple[type[BaseException], ...] = (
        RuntimeError,
        IndexError,
        OSError,
        ValueError,
        av.error.FFmpegError,
    )
    if backend == "decord":
        import decord

        errors += (decord.DECORDError,)
    return errors


class VideoReaderCache:
    """A small per-process LRU of open readers (a forked process starts a fresh one: readers are not
    fork-safe). ``backend`` is ``"pyav"`` (default, decodes in the calling thread, see ``_PyAVReader``) or
    ``"decord"``; both return the same frames."""

    def __init__(self, size: int = 4, num_threads: int = 1, backend: str = "pyav") -> None:
        if backend not in BACKENDS:
            raise ValueError(f"unknown video backend {backend!r} (use {' or '.join(BACKENDS)})")
        self.size = int(size)
        self.num_threads = int(num_threads)
        self.backend = backend
        self._pid = os.getpid()
        self._readers: OrderedDict[Path, _Reader] = OrderedDict()

    def __getstate__(self) -> dict:
        return {"size": self.size, "num_threads": self.num_threads, "backend": self.backend}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["size"], state["num_threads"], state.get("backend", "pyav"))

    def _open(self, path: Path) -> Any:
        if self.backend == "decord":
            return _open_reader(path, self.num_threads)
        return _PyAVReader(path, self.num_threads)

    def open(self, path: Path) -> _Reader:
        if os.getpid() != self._pid:  # forked child: the parent's readers are unusable here
            self._pid, self._readers = os.getpid(), OrderedDict()
        if path in self._readers:
            self._readers.move_to_end(path)
            return self._readers[path]
        if not path.is_file():
            raise VideoReadError(path, "video file not found")
        try:
            vr = self._open(path)
            n, fps = len(vr), float(vr.fps)
        except VideoReadError:
            raise
        except _read_errors(self.backend) as exc:  # evaluated only when a read fails
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
        entry = self.open(path)
        try:
            return entry.reader.get_batch(local_ids)
        except _read_errors(self.backend) as exc:  # evaluated only when a read fails
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
    folder (auto-detected layout). Open readers are cached per process (``cache_size``); the decoder uses
    ``num_threads`` threads per reader (1 suits DataLoader workers). ``backend="pyav"`` (default) decodes
    in the calling thread and converts only the sampled frames; ``"decord"`` reads the same frames through
    decord (``VideoReaderCache``).
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
        backend: str = "pyav",
    ) -> None:
        if frame_rule not in ("duration", "ceil"):
            raise ValueError(f"unknown frame rule {frame_rule!r} (use 'duration' or 'ceil')")
        self.num_frames = int(num_frames)
        self.size = int(size)
        self.jitter = bool(jitter)
        self.frame_rule: FrameRule = frame_rule
        self.transform = ClipTransform(size, mean, std)
        self.readers = VideoReaderCache(cache_size, num_threads, backend)
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
