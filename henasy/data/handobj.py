"""HelpingHands' 100DOH hand/object boxes: ``hand_object/<video_uid>/<chunk>.handobj.pkl`` → box tensors.

Format: one pickle per video and 600-s chunk (``chunk = int(clip_start // 600)``), a
dict keyed by ``round(clip_start, 3)`` → ``{"info": {"height", "width"}, 0..3: {"hand_dets": (N, ≥5) |
None, "obj_dets": (N, ≥5) | None}}``; columns x1 y1 x2 y2 in pixels of the stored frame, then the score.
Frames 0..3 are the 4 segment-midpoint frames of the clip (``video.segment_frame_ids``). As HelpingHands'
loader does, the top-2 hands and top-2 objects by score are kept → (4 frames, 4 boxes, 4) with zeros
where missing; here the boxes are mapped through the same short-side resize + centre crop as the frames
(``transforms.crop_geometry``) and normalised to [0, 1] x1y1x2y2 of the crop, with a validity mask.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from henasy.core.errors import DataFormatError
from henasy.data import safe_pickle
from henasy.data.paths import SAFE_NAME_HELP, inside
from henasy.data.transforms import crop_geometry

NUM_BOX_FRAMES = 4  # frames per clip in the 100DOH files
BOXES_PER_FRAME = 4  # top-2 hands, then top-2 objects
_KEY_TOLERANCE = 1e-3 + 1e-9


@dataclass
class HandObjectBoxes:
    boxes: torch.Tensor  # (4 frames, 4 boxes, 4) float32 x1y1x2y2 in [0, 1] of the model's crop
    mask: torch.Tensor  # (4, 4) bool: True where a box exists (and overlaps the crop)
    found: bool  # False when the pickle or the clip's entry is missing (all zeros)


def handobj_relpath(video_uid: str, clip_start: float, chunk_sec: float = 600.0) -> str:
    """``<video_uid>/<int(clip_start // chunk_sec)>.handobj.pkl``."""
    return f"{video_uid}/{int(clip_start // chunk_sec)}.handobj.pkl"


def _top2(dets: Any, where: str, path: Path) -> np.ndarray:
    """(N, ≥5) detections or None → (≤2, 5) rows (x1 y1 x2 y2 score) of the highest scores."""
    if dets is None:
        return np.zeros((0, 5), dtype=np.float32)
    if not isinstance(dets, np.ndarray) or dets.ndim != 2 or dets.shape[1] < 5:
        got = f"shape {dets.shape}" if isinstance(dets, np.ndarray) else type(dets).__name__
        raise DataFormatError(path, f"{where}: detections have {got}", expected="a (N, >=5) array or None")
    d = dets[:, :5].astype(np.float32)
    order = np.argsort(-d[:, 4], kind="stable")
    return d[order[:2]]


def boxes_from_entry(entry: Any, size: int, *, path: Path, key: str) -> tuple[np.ndarray, np.ndarray]:
    """One clip's pickle entry → boxes (4, 4, 4) float32 in crop coordinates and mask (4, 4) bool."""
    where = f"key {key}"
    if not isinstance(entry, dict) or not isinstance(entry.get("info"), dict):
        raise DataFormatError(
            path, f'{where}: missing "info"', expected='{"info": {"height", "width"}, 0..3: {...}}'
        )
    try:
        height, width = int(entry["info"]["height"]), int(entry["info"]["width"])
    except (KeyError, TypeError, ValueError):
        raise DataFormatError(path, f'{where} → "info": needs integer "height" and "width"') from None
    geo = crop_geometry(height, width, size)
    boxes = np.zeros((NUM_BOX_FRAMES, BOXES_PER_FRAME, 4), dtype=np.float32)
    mask = np.zeros((NUM_BOX_FRAMES, BOXES_PER_FRAME), dtype=bool)
    for f in range(NUM_BOX_FRAMES):
        frame = entry.get(f)
        if frame is None:
            continue
        if not isinstance(frame, dict):
            raise DataFormatError(path, f"{where} → {f}: expected a dict with hand_dets/obj_dets")
        for slot, name in ((0, "hand_dets"), (2, "obj_dets")):
            top = _top2(frame.get(name), f'{where} → {f} → "{name}"', path)
            if len(top) == 0:
                continue
            crop = geo.box_to_crop(top[:, :4])  # (≤2, 4)
            valid = (crop[:, 2] > crop[:, 0]) & (crop[:, 3] > crop[:, 1])
            boxes[f, slot : slot + len(top)] = np.where(valid[:, None], crop, 0.0)
            mask[f, slot : slot + len(top)] = valid
    return boxes, mask


class HandObjectStore:
    """Looks up per-clip boxes under a ``hand_object/`` folder; keeps a few pickles in memory (LRU).

    A missing pickle or clip entry gives all-zero boxes with ``found=False`` (HelpingHands supervises
    boxes only where the detector produced them); a malformed pickle raises ``DataFormatError``, and so does a
    ``video_uid`` whose pickle path would leave ``folder`` (``henasy.data.paths.inside``).
    """

    def __init__(
        self, folder: str | Path, size: int, *, chunk_sec: float = 600.0, cache_size: int = 8
    ) -> None:
        self.folder = Path(folder)
        self.size = int(size)
        self.chunk_sec = float(chunk_sec)
        self.cache_size = int(cache_size)
        self._cache: OrderedDict[Path, dict | None] = OrderedDict()

    def __getstate__(self) -> dict:  # DataLoader workers start with an empty cache
        state = self.__dict__.copy()
        state["_cache"] = OrderedDict()
        return state

    def _file(self, path: Path) -> dict | None:
        if path in self._cache:
            self._cache.move_to_end(path)
            return self._cache[path]
        data = safe_pickle.load(path, "hand-object pickle") if path.is_file() else None
        if data is not None and not isinstance(data, dict):
            raise DataFormatError(path, f"expected a dict keyed by clip start, got {type(data).__name__}")
        self._cache[path] = data
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return data

    def get(self, video_uid: str, clip_start: float) -> HandObjectBoxes:
        """Boxes of the clip of ``video_uid`` starting at ``clip_start`` seconds."""
        path = self.folder / handobj_relpath(video_uid, clip_start, self.chunk_sec)
        if not inside(self.folder, path):  # defence in depth: egoclip.csv's loader already checks video_uid
            raise DataFormatError(
                path,
                f"video_uid {video_uid!r} leads outside the hand-object folder {self.folder}",
                expected=f"video_uid to be {SAFE_NAME_HELP}",
            )
        data = self._file(path)
        key = round(float(clip_start), 3)
        entry = None
        if data is not None:
            entry = data.get(key)
            if entry is None:  # keys written from another float representation of the same time
                near = [
                    k
                    for k in data
                    if isinstance(k, (int, float)) and math.isclose(k, key, abs_tol=_KEY_TOLERANCE)
                ]
                entry = data[near[0]] if near else None
        if entry is None:
            return HandObjectBoxes(
                torch.zeros(NUM_BOX_FRAMES, BOXES_PER_FRAME, 4),
                torch.zeros(NUM_BOX_FRAMES, BOXES_PER_FRAME, dtype=torch.bool),
                False,
            )
        boxes, mask = boxes_from_entry(entry, self.size, path=path, key=repr(key))
        return HandObjectBoxes(torch.from_numpy(boxes), torch.from_numpy(mask), True)
