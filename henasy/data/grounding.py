"""Entity grounding ground truth: ``grounding/grounding_val.json`` + ``masks/<clip_id>.npz``.

Format (project layout contract, ``henasy/data/layout.py``; used for HENASY's visual-grounding evaluation,
paper §4): a list of ``{clip_id, video_uid, start_sec, end_sec, query, query_type ("noun" |
"verb_phrase"), entity_ids: [int], mask_file}``; each ``.npz`` holds ``labels`` uint8 (T, H, W), an
instance-id map of every frame of the clip at the stored video resolution (0 = background), and
``frame_times`` float64 (T,) in seconds of the parent video. ``mask_file`` is relative to the json's folder and must stay inside it (no absolute paths, no ``..``;
``henasy.data.paths``).
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from henasy.core.errors import DataFormatError
from henasy.data.parsing import read_json

QUERY_TYPES = ("noun", "verb_phrase")


@dataclass(frozen=True)
class GroundingItem:
    clip_id: str
    video_uid: str
    start_sec: float
    end_sec: float
    query: str
    query_type: str  # "noun" | "verb_phrase"
    entity_ids: tuple[int, ...]  # instance ids in the mask that the query refers to
    mask_path: Path  # resolved npz path


@dataclass(frozen=True)
class GroundingMask:
    labels: np.ndarray  # (T, H, W) uint8 instance ids, 0 = background
    frame_times: np.ndarray  # (T,) float64 seconds in the parent video


def load_grounding(path: str | Path) -> list[GroundingItem]:
    """Read ``grounding_val.json`` → items (mask files resolved against the json's folder, not opened)."""
    root = read_json(path, "grounding json")
    items = []
    for node in root.elements():
        start, end = node["start_sec"].as_float(), node["end_sec"].as_float()
        if end < start:
            node.fail(f"end_sec {end} is before start_sec {start}", expected="end_sec >= start_sec")
        query_type = node["query_type"].as_str()
        if query_type not in QUERY_TYPES:
            node["query_type"].fail(f"unknown query_type {query_type!r}", expected=" or ".join(QUERY_TYPES))
        ids = node["entity_ids"].as_int_list()
        if not ids or any(not 0 < i < 256 for i in ids):
            node["entity_ids"].fail(f"entity ids {ids}", expected="a non-empty list of ids in 1..255")
        mask_file = node["mask_file"].as_relative_path()
        items.append(
            GroundingItem(
                clip_id=node["clip_id"].as_path_component(),
                video_uid=node["video_uid"].as_path_component(),
                start_sec=start,
                end_sec=end,
                query=node["query"].as_str(nonempty=True),
                query_type=query_type,
                entity_ids=tuple(ids),
                mask_path=root.path.parent / mask_file,
            )
        )
    return items


def load_mask(path: str | Path) -> GroundingMask:
    """Read one ``masks/<clip_id>.npz`` (no pickles) and check shapes and dtypes."""
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(
            path, "grounding mask file not found", expected="an existing .npz (see mask_file)"
        )
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [k for k in ("labels", "frame_times") if k not in npz.files]
            if missing:
                raise DataFormatError(
                    path,
                    f"missing array(s) {missing}; found {npz.files}",
                    expected='"labels" and "frame_times"',
                )
            labels, times = npz["labels"], npz["frame_times"]
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise DataFormatError(path, f"not a readable .npz ({type(exc).__name__}: {exc})") from None
    if labels.ndim != 3 or labels.dtype != np.uint8:
        raise DataFormatError(path, f'"labels" is {labels.dtype} {labels.shape}', expected="uint8 (T, H, W)")
    if times.shape != (labels.shape[0],) or not np.issubdtype(times.dtype, np.floating):
        raise DataFormatError(
            path,
            f'"frame_times" is {times.dtype} {times.shape} for {labels.shape[0]} frames',
            expected="float (T,)",
        )
    if len(times) > 1 and not (np.diff(times) > 0).all():
        raise DataFormatError(path, '"frame_times" is not increasing', expected="strictly increasing seconds")
    return GroundingMask(labels=labels, frame_times=times.astype(np.float64, copy=False))
