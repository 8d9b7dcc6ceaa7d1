"""H.264 mp4 writing with PyAV: fixed encoder settings, one thread, atomic files, and time chunking.

Settings are fixed (libx264, yuv420p, CRF 20, ``ultrafast`` preset, no B-frames, a keyframe every second,
one encoder thread), so the same frames give byte-identical files across runs on the same PyAV/FFmpeg
build; decoders (decord, PyAV) return exactly one frame per written frame. Chunking mirrors the
preprocessing of LaViLa (``<uid>.mp4/<start_sec>.mp4``) and EgoVLP (``<uid>/<k>.mp4``): chunk k holds the
frames ``[k·chunk_sec·fps, (k+1)·chunk_sec·fps)``, so every chunk but the last has exactly
``chunk_sec·fps`` frames.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import numpy as np

from henasy.core.atomic import atomic_write

ENCODER_OPTIONS = {"crf": "20", "preset": "ultrafast", "bf": "0", "threads": "1"}


def _encode(f: BinaryIO, frames: np.ndarray, fps: int) -> None:
    import av

    with av.open(f, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = int(frames.shape[2]), int(frames.shape[1])
        stream.pix_fmt = "yuv420p"
        stream.options = {**ENCODER_OPTIONS, "g": str(fps)}
        stream.codec_context.thread_count = 1
        for frame in frames:
            for packet in stream.encode(
                av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
            ):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def write_mp4(path: str | Path, frames: np.ndarray, fps: int) -> Path:
    """Encode (T, H, W, 3) uint8 RGB frames (H, W even) to an H.264 mp4 at ``path``, atomically."""
    if frames.ndim != 4 or frames.shape[3] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"expected (T, H, W, 3) uint8 frames, got {frames.dtype} {frames.shape}")
    if len(frames) == 0:
        raise ValueError(f"{path}: no frames to write")
    return atomic_write(path, lambda f: _encode(f, frames, fps))


def chunk_path(folder: str | Path, uid: str, k: int, chunk_sec: int, layout: str) -> Path:
    """Path of chunk k of video ``uid``: LaViLa ``<uid>.mp4/<k·chunk_sec>.mp4`` or EgoVLP ``<uid>/<k>.mp4``."""
    folder = Path(folder)
    if layout == "lavila":
        return folder / f"{uid}.mp4" / f"{k * chunk_sec}.mp4"
    if layout == "egovlp":
        return folder / uid / f"{k}.mp4"
    raise ValueError(f"unknown video layout {layout!r} (use 'lavila' or 'egovlp')")


def write_chunks(frames: np.ndarray, fps: int, chunk_sec: int, path_of: Callable[[int], Path]) -> list[Path]:
    """Split a video into ``chunk_sec`` chunks and write chunk k to ``path_of(k)``."""
    per_chunk = chunk_sec * fps
    paths = []
    for k, start in enumerate(range(0, len(frames), per_chunk)):
        paths.append(write_mp4(path_of(k), frames[start : start + per_chunk], fps))
    return paths
