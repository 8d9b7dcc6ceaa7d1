"""EgoClip pretraining annotations: ``egoclip.csv`` → a validated pandas DataFrame.

Format (EgoVLP): tab-separated, columns ``clip_idx video_uid video_dur
narration_source narration_ind narration_time clip_start clip_end clip_text tag_verb tag_noun``;
``tag_verb``/``tag_noun`` are string-encoded Python lists of narration-taxonomy indices (EgoVLP parses them
with ``eval``; here ``ast.literal_eval``) that become the 118-verb / 582-noun multi-hot targets of EgoNCE.

Clip bounds are used as EgoVLP reads them (``egovlp_clip_bounds``): a negative ``clip_start``/``clip_end``
is read as 0, and a row whose ``clip_end`` is before its ``clip_start`` is kept with its bounds put in order
(EgoVLP keeps such rows too; it has no check). The rows concerned are listed by file line in ``df.attrs``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from henasy.data.parsing import (
    Table,
    float_column,
    int_column,
    list_column,
    nonempty_column,
    path_component_column,
    read_table,
)
from henasy.data.taxonomy import Taxonomy

EGOCLIP_COLUMNS = (
    "clip_idx",
    "video_uid",
    "video_dur",
    "narration_source",
    "narration_ind",
    "narration_time",
    "clip_start",
    "clip_end",
    "clip_text",
    "tag_verb",
    "tag_noun",
)


def _check_tag_range(table: Table, column: str, tags: Sequence[list[int]], size: int, source: str) -> None:
    for i, row in enumerate(tags):
        for t in row:
            if not 0 <= t < size:
                table.fail(
                    i,
                    column,
                    f"tag index {t} is outside the {source} ({size} classes)",
                    expected=f"indices in [0, {size - 1}]",
                )


def egovlp_clip_bounds(start: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(clip_start, clip_end)`` (seconds, (N,) float64 each) as the videos are read: clamped at 0, in order.

    EgoVLP reads ``max(float(clip_start), 0)`` and ``max(float(clip_end), 0)`` (showlab/EgoVLP @ 928406c :
    data_loader/EgoClip_EgoMCQ_dataset.py, ``_get_video_path``; the same for EgoMCQ clips) and has no check on
    their order; here a reversed pair is swapped, so the window keeps its centre and length instead of
    sampling no frame (EgoVLP's ``sample_frames_start_end`` draws from an empty range for it).
    """
    start = np.maximum(np.asarray(start, dtype=np.float64), 0.0)
    end = np.maximum(np.asarray(end, dtype=np.float64), 0.0)
    return np.minimum(start, end), np.maximum(start, end)


def load_egoclip(
    path: str | Path,
    *,
    num_verbs: int | None = None,
    num_nouns: int | None = None,
    verb_taxonomy: Taxonomy | None = None,
    noun_taxonomy: Taxonomy | None = None,
    bad_lines: Literal["raise", "skip"] = "raise",
) -> Any:
    """Read ``egoclip.csv`` → DataFrame with the 11 official columns, typed.

    ``clip_idx``/``narration_ind`` int64; ``video_dur``/``narration_time``/``clip_start``/``clip_end`` float64;
    ``video_uid``/``narration_source``/``clip_text`` str; ``tag_verb``/``tag_noun`` ``list[int]`` per row.
    Tag indices are checked against the taxonomy sizes when given (``num_*`` or ``*_taxonomy``);
    ``video_uid`` must be a safe file name (it names the video's files). ``clip_start``/``clip_end`` are the
    bounds as read (``egovlp_clip_bounds``: >= 0 and in order). ``df.attrs`` holds ``path``, ``skipped_lines``
    (non-empty only with ``bad_lines="skip"``, EgoVLP's ``error_bad_lines=False`` behaviour), and the file
    lines whose bounds were negative (``negative_bound_lines``) or reversed (``reversed_bound_lines``).
    """
    import pandas as pd

    table = read_table(path, EGOCLIP_COLUMNS, sep="\t", what="egoclip.csv", bad_lines=bad_lines)
    raw_start = float_column(table, "clip_start")
    raw_end = float_column(table, "clip_end")
    # negative → 0, reversed → swapped (showlab/EgoVLP @ 928406c : data_loader/EgoClip_EgoMCQ_dataset.py)
    start, end = egovlp_clip_bounds(raw_start, raw_end)
    negative = (raw_start < 0) | (raw_end < 0)
    reversed_ = raw_end < raw_start
    tag_verb = list_column(table, "tag_verb", int)
    tag_noun = list_column(table, "tag_noun", int)
    verb_size = len(verb_taxonomy) if verb_taxonomy is not None else num_verbs
    noun_size = len(noun_taxonomy) if noun_taxonomy is not None else num_nouns
    if verb_size is not None:
        _check_tag_range(table, "tag_verb", tag_verb, verb_size, "verb taxonomy")
    if noun_size is not None:
        _check_tag_range(table, "tag_noun", tag_noun, noun_size, "noun taxonomy")
    df = pd.DataFrame(
        {
            "clip_idx": int_column(table, "clip_idx"),
            "video_uid": path_component_column(table, "video_uid"),
            "video_dur": float_column(table, "video_dur"),
            "narration_source": table.column("narration_source"),
            "narration_ind": int_column(table, "narration_ind"),
            "narration_time": float_column(table, "narration_time"),
            "clip_start": start,
            "clip_end": end,
            "clip_text": nonempty_column(table, "clip_text"),
            "tag_verb": pd.Series(tag_verb, dtype=object),
            "tag_noun": pd.Series(tag_noun, dtype=object),
        }
    )
    df.attrs["path"] = str(table.path)
    df.attrs["skipped_lines"] = list(table.skipped_lines)
    df.attrs["negative_bound_lines"] = table.lines[negative].tolist()  # clip_start or clip_end < 0, read as 0
    df.attrs["reversed_bound_lines"] = table.lines[reversed_].tolist()  # clip_end < clip_start, swapped
    return df
