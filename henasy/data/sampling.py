"""LaViLa's frame sampling arithmetic: which frames of a clip a model sees.

Torch-free so that the synthetic generator (which computes its 100DOH-style boxes on exactly the frames a
loader samples) and the clip loader (``henasy.data.video``) share one definition. Mirrors LaViLa's
``get_frame_ids`` and the frame ranges of its Ego4D / EK100 ``video_loader`` (LaViLa @ 8002b5a : lavila/data/datasets.py).
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np

FrameRule = Literal["duration", "ceil"]


def segment_frame_ids(
    start_frame: int,
    end_frame: int,
    num_segments: int,
    jitter: bool = False,
    rng: np.random.Generator | None = None,
) -> list[int]:
    """LaViLa ``get_frame_ids``: one frame per segment of ``[start_frame, end_frame)``.

    Segment size ``(end - start - 1) / N``; segment i spans ``s = round(size·i) + start`` to
    ``e = min(round(size·(i+1)) + start, end)`` (round half to even, like ``np.round``); the frame is
    ``(s + e) // 2``, or uniform in ``[s, e]`` with ``jitter``. E.g. (0, 30, 4) → [3, 10, 18, 25].
    """
    if num_segments <= 0:
        raise ValueError(f"num_segments must be positive, got {num_segments}")
    if end_frame <= start_frame:
        raise ValueError(f"end_frame ({end_frame}) must be greater than start_frame ({start_frame})")
    if jitter and rng is None:
        rng = np.random.default_rng()
    size = float(end_frame - start_frame - 1) / num_segments
    ids = []
    for i in range(num_segments):
        s = int(round(size * i)) + start_frame
        e = min(int(round(size * (i + 1))) + start_frame, end_frame)
        ids.append(int(rng.integers(s, e + 1)) if jitter else (s + e) // 2)
    return ids


def clip_frame_range(
    start_sec: float, end_sec: float, fps: float, num_frames: int, rule: FrameRule = "duration"
) -> tuple[int, int]:
    """Seconds → the ``[start_frame, end_frame)`` range that ``segment_frame_ids`` samples.

    ``start = round(start_sec·fps)``; ``rule="duration"`` (LaViLa Ego4D ``video_loader``):
    ``end = start + max(int((end_sec - start_sec)·fps), num_frames)``; ``rule="ceil"`` (LaViLa EK100 /
    Charades-Ego): ``end = max(ceil(end_sec·fps), start + 1)``.
    """
    start = int(round(max(start_sec, 0.0) * fps))
    if rule == "duration":
        return start, start + max(int((end_sec - max(start_sec, 0.0)) * fps), num_frames)
    if rule == "ceil":
        return start, max(int(math.ceil(end_sec * fps)), start + 1)
    raise ValueError(f"unknown frame rule {rule!r} (use 'duration' or 'ceil')")
