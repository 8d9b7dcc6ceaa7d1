"""The EgoClip training dataset: clip frames + narration + EgoNCE tag vectors (+ a hard negative, + boxes).

Mirrors EgoVLP's ``data_loader/EgoClip_EgoMCQ_dataset.py``: every item carries the
multi-hot verb/noun tag vectors EgoNCE uses to find extra positives; with ``hard_negative_sec=N`` (EgoVLP's
``neg_param``) each item also carries a clip from the same ``video_uid + "_" + str(int(narration_time // N))``
segment ("scene-aware negative sampling"; HENASY and HelpingHands train with N = 600, as HelpingHands samples
them: henasy/training/config.py ``HARD_NEGATIVE_SEC``). HelpingHands' 100DOH hand/object boxes are attached
when a ``hand_object`` folder is given (``handobj.HandObjectStore``); its caption noun lists with
``noun_list="helpinghands"`` (``caption_nouns``) and its LaViLa-rephrased caption positives when a
``rephrased`` table is given (``rephrased``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from torch.utils.data import Dataset

from henasy.data.caption_nouns import MAX_CAPTION_NOUNS, caption_noun_classes, multi_hot
from henasy.data.egoclip import load_egoclip
from henasy.data.handobj import HandObjectStore
from henasy.data.layout import DatasetLayout
from henasy.data.rephrased import RephrasedCaptions
from henasy.data.taxonomy import Taxonomy
from henasy.data.video import AutoSource, ClipLoader, VideoSource


@dataclass(frozen=True)
class EgoClipPaths:
    """Where the EgoClip annotations, videos and (optionally) hand/object boxes are."""

    csv: Path
    videos: Path
    hand_object: Path | None = None

    @classmethod
    def from_root(cls, root: str | Path, *, boxes: bool = False) -> EgoClipPaths:
        """The layout-contract paths under a dataset root (``<root>/ego4d/...``)."""
        layout = DatasetLayout(root)
        return cls(layout.egoclip_csv, layout.ego4d_videos, layout.hand_object if boxes else None)


def hard_negative_table(
    video_uid: np.ndarray, narration_time: np.ndarray, segment_sec: float
) -> dict[str, np.ndarray]:
    """Precomputed indices for drawing a same-segment (or same-video) clip for every row."""
    import pandas as pd

    seg_keys = [f"{v}_{int(t // segment_sec)}" for v, t in zip(video_uid, narration_time)]
    seg_code = pd.factorize(pd.Series(seg_keys))[0]
    vid_code = pd.factorize(pd.Series(video_uid))[0]
    seg_order = np.lexsort((narration_time, seg_code))  # rows grouped by segment, in time order
    vid_order = np.lexsort((narration_time, vid_code))
    seg_count = np.bincount(seg_code)
    seg_first = np.concatenate([[0], np.cumsum(seg_count)[:-1]])
    seg_pos = np.empty_like(seg_order)
    seg_pos[seg_order] = np.arange(len(seg_order))
    vid_pos = np.empty_like(vid_order)
    vid_pos[vid_order] = np.arange(len(vid_order))
    return {
        "seg_code": seg_code,
        "vid_code": vid_code,
        "seg_order": seg_order,
        "seg_first": seg_first,
        "seg_count": seg_count,
        "seg_pos": seg_pos,
        "vid_order": vid_order,
        "vid_pos": vid_pos,
        "time": np.asarray(narration_time, dtype=np.float64),
    }


def draw_hard_negative(table: dict[str, np.ndarray], row: int, rng: np.random.Generator) -> int:
    """Row of a negative for ``row``: a uniformly drawn *other* clip of its segment; if the segment has no
    other clip, the temporally nearest clip of the same video (the earlier one on a tie); if the video has
    no other clip, a uniformly drawn other clip of the dataset; the row itself only for a 1-row dataset."""
    c = table["seg_code"][row]
    n = int(table["seg_count"][c])
    if n > 1:
        k = int(rng.integers(0, n - 1))
        own = int(table["seg_pos"][row] - table["seg_first"][c])
        k = k + 1 if k >= own else k
        return int(table["seg_order"][table["seg_first"][c] + k])
    order, pos, vid, t = table["vid_order"], int(table["vid_pos"][row]), table["vid_code"], table["time"]
    best, best_dt = -1, np.inf
    for p in (pos - 1, pos + 1):
        if 0 <= p < len(order) and vid[order[p]] == vid[row]:
            dt = abs(t[order[p]] - t[row])
            if dt < best_dt:
                best, best_dt = int(order[p]), dt
    if best >= 0:
        return best
    total = len(order)
    if total == 1:
        return row
    k = int(rng.integers(0, total - 1))
    return k + 1 if k >= row else k


class EgoClipDataset(Dataset):
    """EgoClip rows → training items.

    Item keys: ``video`` float32 (C, T, H, W); ``text`` (clip_text); ``verb_tags`` float32 (num_verbs,) and
    ``noun_tags`` float32 (num_nouns,) multi-hot; ``video_uid``; ``clip_start``/``clip_end`` (s); ``index``
    (row of egoclip.csv); with boxes also ``boxes`` (4, 4, 4) float32 and ``box_mask`` (4, 4) bool (see
    ``handobj``; the 4 box frames are the un-jittered segment midpoints); with ``noun_list="helpinghands"``
    also ``caption_noun_tags`` float32 (num_nouns,) multi-hot of the caption's ≤ ``max_nouns`` nouns
    (``caption_nouns``, needs ``noun_taxonomy``); with ``rephrased`` also ``rephrased_texts`` (1–5 captions,
    the narration first); with ``hard_negative_sec`` the same fields again prefixed ``neg_`` for the
    negative clip.

    Videos are read from ``source`` (default ``AutoSource(paths.videos, chunk_sec)``: LaViLa or EgoVLP
    layout per video; ``chunk_sec`` is the EgoVLP chunk length, None = measured on chunk 0).
    Frame jitter (``clip_loader.jitter``) and the negative draw use a generator seeded by
    ``(seed, epoch, index)``: deterministic for a given seed, index and ``set_epoch`` value, whichever worker
    loads the item.
    """

    def __init__(
        self,
        root_or_paths: str | Path | EgoClipPaths,
        clip_loader: ClipLoader,
        num_verbs: int,
        num_nouns: int,
        hard_negative_sec: float | None = None,
        seed: int = 0,
        *,
        hand_object: bool | str | Path = False,
        source: VideoSource | None = None,
        chunk_sec: float | None = None,
        indices: np.ndarray | list[int] | None = None,
        metadata: Any = None,
        bad_lines: Literal["raise", "skip"] = "raise",
        noun_list: Literal["tags", "helpinghands"] = "tags",
        noun_taxonomy: Taxonomy | None = None,
        max_nouns: int = MAX_CAPTION_NOUNS,
        rephrased: RephrasedCaptions | None = None,
    ) -> None:
        if noun_list not in ("tags", "helpinghands"):
            raise ValueError(f"noun_list must be 'tags' or 'helpinghands', got {noun_list!r}")
        if noun_list == "helpinghands" and noun_taxonomy is None:
            raise ValueError("noun_list='helpinghands' needs the noun taxonomy (its synonym groups)")
        paths = (
            root_or_paths
            if isinstance(root_or_paths, EgoClipPaths)
            else EgoClipPaths.from_root(root_or_paths)
        )
        if hand_object is True:
            hand_folder = paths.hand_object or DatasetLayout(paths.csv.parent.parent).hand_object
        elif hand_object:
            hand_folder = Path(hand_object)
        else:
            hand_folder = paths.hand_object
        self.paths = paths
        self.meta = (
            metadata
            if metadata is not None
            else load_egoclip(paths.csv, num_verbs=num_verbs, num_nouns=num_nouns, bad_lines=bad_lines)
        )
        self.loader = clip_loader
        self.source = source if source is not None else AutoSource(paths.videos, chunk_sec=chunk_sec)
        self.num_verbs, self.num_nouns = int(num_verbs), int(num_nouns)
        self.seed, self.epoch = int(seed), 0
        self.boxes = HandObjectStore(hand_folder, clip_loader.size) if hand_folder is not None else None
        self.rows = np.arange(len(self.meta)) if indices is None else np.asarray(indices, dtype=np.int64)
        # plain arrays: cheap to index and to copy into worker processes
        self._uid = self.meta["video_uid"].to_numpy(dtype=object)
        self._text = self.meta["clip_text"].to_numpy(dtype=object)
        self._start = self.meta["clip_start"].to_numpy(dtype=np.float64)
        self._end = self.meta["clip_end"].to_numpy(dtype=np.float64)
        self._verbs = self.meta["tag_verb"].to_numpy(dtype=object)
        self._nouns = self.meta["tag_noun"].to_numpy(dtype=object)
        self.noun_list, self.max_nouns, self.rephrased = noun_list, int(max_nouns), rephrased
        self._groups = [list(g) for g in noun_taxonomy.groups] if noun_taxonomy is not None else None
        if self._groups is not None and len(self._groups) != self.num_nouns:
            raise ValueError(
                f"the noun taxonomy has {len(self._groups)} classes but num_nouns is {self.num_nouns}"
            )
        self.hard_negative_sec = hard_negative_sec
        self._neg = None
        if hard_negative_sec is not None:
            if hard_negative_sec <= 0:
                raise ValueError(f"hard_negative_sec must be positive, got {hard_negative_sec}")
            times = self.meta["narration_time"].to_numpy(dtype=np.float64)
            self._neg = hard_negative_table(self._uid, times, float(hard_negative_sec))

    def set_epoch(self, epoch: int) -> None:
        """Changes the jitter / negative draws (call before creating the epoch's DataLoader iterator)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.rows)

    def _fields(self, row: int, rng: np.random.Generator) -> dict[str, Any]:
        uid = str(self._uid[row])
        start, end = float(self._start[row]), float(self._end[row])
        text = str(self._text[row])
        item: dict[str, Any] = {
            "video": self.loader.load(self.source, uid, start, end, rng=rng),
            "text": text,
            "verb_tags": multi_hot(self._verbs[row], self.num_verbs),
            "noun_tags": multi_hot(self._nouns[row], self.num_nouns),
            "video_uid": uid,
            "clip_start": start,
            "clip_end": end,
            "index": int(row),
        }
        if self._groups is not None and self.noun_list == "helpinghands":
            classes = caption_noun_classes(text, self._nouns[row], self._groups, max_nouns=self.max_nouns)
            item["caption_noun_tags"] = multi_hot(classes, self.num_nouns)
        if self.rephrased is not None:
            item["rephrased_texts"] = self.rephrased.captions(uid, start, text)
        if self.boxes is not None:
            found = self.boxes.get(uid, start)
            item["boxes"], item["box_mask"] = found.boxes, found.mask
        return item

    def __getitem__(self, i: int) -> dict[str, Any]:
        row = int(self.rows[i])
        rng = np.random.default_rng((self.seed, self.epoch, row))
        item = self._fields(row, rng)
        if self._neg is not None:
            neg_row = draw_hard_negative(self._neg, row, rng)
            item.update({f"neg_{k}": v for k, v in self._fields(neg_row, rng).items()})
        return item
