"""EPIC-KITCHENS-100 annotations: action csvs, class csvs, the retrieval sentence csv, the relevancy pkl.

Formats (epic-kitchens-100-annotations): ``EPIC_100_{train,validation}.csv`` and
``retrieval_annotations/EPIC_100_retrieval_test.csv`` have 15 columns with ``HH:MM:SS.ff`` timestamps and
string-encoded lists in ``all_nouns``/``all_noun_classes``; ``EPIC_100_{verb,noun}_classes.csv`` have
``id,key,instances,category`` (row order = class id); ``EPIC_100_retrieval_test_sentence.csv`` has
``narration_id,narration`` (one row per caption, see below); the relevancy pkl is a float array (videos × sentences) built
with the JPoSE rule. LaViLa reads the timestamps (not the frame columns) and samples frames with the
per-video fps from decord (``start = round(fps·t0)``, ``end = ceil(fps·t1)``).

Quirks of the official files (epic-kitchens/epic-kitchens-100-annotations @ ea8b404; excerpts in
``tests/fixtures/epic100``, tested by ``tests/test_real_epic.py``):

* ``narration_timestamp`` is empty for 70 validation rows (ids in
  ``EPIC_100_validation_missing_timestamp_narrations.csv``; the README says NaN): ``narration_sec`` is NaN
  there and ``narration_timestamp`` stays ``""``. ``start_timestamp``/``stop_timestamp``, which the
  benchmarks use, are never empty and stay required.
* Many clips share a narration text (9,668 rows, 3,835 distinct texts); the sentence csv lists one
  ``narration_id`` per caption (3,842 rows: 7 texts appear twice, and its last 8 rows pair 6 ids with the
  narration of a neighbouring clip). EK100-MIR embeds the narration of the row each caption id names, as
  LaViLa does (``benchmarks/ek100_mir.py``), so the sentence text column is read but not embedded.
* Columns are read by name, so extra columns are ignored: LaViLa's copies carry a ``uid`` column (LaViLa's
  reader takes columns 1-12 by position: facebookresearch/LaViLa @ 262ebc7 : lavila/data/datasets.py),
  pandas-written copies an unnamed index column.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from henasy.core.errors import DataFormatError
from henasy.data import safe_pickle
from henasy.data.layout import DatasetLayout
from henasy.data.parsing import (
    Table,
    int_column,
    list_column,
    nonempty_column,
    path_component_column,
    read_table,
    timestamp_column,
)

EPIC_COLUMNS = (
    "narration_id",
    "participant_id",
    "video_id",
    "narration_timestamp",
    "start_timestamp",
    "stop_timestamp",
    "start_frame",
    "stop_frame",
    "narration",
    "verb",
    "verb_class",
    "noun",
    "noun_class",
    "all_nouns",
    "all_noun_classes",
)
CLASS_COLUMNS = ("id", "key", "instances", "category")
SENTENCE_COLUMNS = ("narration_id", "narration")


def ek100_video_relpath(participant_id: str, video_id: str) -> str:
    """Path of a whole EPIC video under ``video_ht256px/``: ``<participant_id>/<video_id>.MP4``."""
    return f"{participant_id}/{video_id}.MP4"


def _unique(table: Table, column: str, values: list[str]) -> None:
    seen: dict[str, int] = {}
    for i, v in enumerate(values):
        if v in seen:
            table.fail(
                i,
                column,
                f"duplicate {column} {v!r} (first on line {table.lines[seen[v]]})",
                expected="unique ids",
            )
        seen[v] = i


def load_epic_annotations(path: str | Path) -> Any:
    """Read an EPIC action csv (train / validation / retrieval test) → DataFrame.

    The 15 official columns are typed (timestamps stay strings; ``*_frame``/``*_class`` int64;
    ``all_nouns`` ``list[str]``; ``all_noun_classes`` ``list[int]``) and three float64 columns are added:
    ``narration_sec`` (NaN where ``narration_timestamp`` is empty), ``start_sec``, ``stop_sec``. Checks unique
    ``narration_id``, ``stop >= start``, and that ``participant_id`` / ``video_id`` are safe file names (they build the video path ``ek100_video_relpath``).
    """
    import pandas as pd

    table = read_table(path, EPIC_COLUMNS, what="EPIC-KITCHENS annotation csv")
    ids = nonempty_column(table, "narration_id")
    _unique(table, "narration_id", ids)
    start = timestamp_column(table, "start_timestamp")  # never empty in the official files
    stop = timestamp_column(table, "stop_timestamp")
    bad = stop < start
    if bad.any():
        i = int(bad.argmax())
        table.fail(
            i,
            "stop_timestamp",
            f"stop {stop[i]:.2f} s is before start {start[i]:.2f} s",
            expected="stop >= start",
        )
    df = pd.DataFrame(
        {
            "narration_id": ids,
            "participant_id": path_component_column(table, "participant_id"),
            "video_id": path_component_column(table, "video_id"),
            "narration_timestamp": table.column("narration_timestamp"),
            "start_timestamp": table.column("start_timestamp"),
            "stop_timestamp": table.column("stop_timestamp"),
            "start_frame": int_column(table, "start_frame"),
            "stop_frame": int_column(table, "stop_frame"),
            "narration": nonempty_column(table, "narration"),
            "verb": table.column("verb"),
            "verb_class": int_column(table, "verb_class"),
            "noun": table.column("noun"),
            "noun_class": int_column(table, "noun_class"),
            "all_nouns": pd.Series(list_column(table, "all_nouns", str), dtype=object),
            "all_noun_classes": pd.Series(list_column(table, "all_noun_classes", int), dtype=object),
            "narration_sec": timestamp_column(table, "narration_timestamp", optional=True),
            "start_sec": start,
            "stop_sec": stop,
        }
    )
    df.attrs["path"] = str(table.path)
    return df


def load_epic_classes(path: str | Path) -> Any:
    """Read ``EPIC_100_{verb,noun}_classes.csv`` → DataFrame (id int64 == row index, key, instances list[str],
    category)."""
    import pandas as pd

    table = read_table(path, CLASS_COLUMNS, what="EPIC-KITCHENS class csv")
    ids = int_column(table, "id")
    for i, v in enumerate(ids):
        if v != i:
            table.fail(
                i, "id", f"class id {v} on data row {i + 1}", expected=f"ids 0, 1, 2, ... in order (here {i})"
            )
    df = pd.DataFrame(
        {
            "id": ids,
            "key": nonempty_column(table, "key"),
            "instances": pd.Series(list_column(table, "instances", str), dtype=object),
            "category": table.column("category"),
        }
    )
    df.attrs["path"] = str(table.path)
    return df


def load_retrieval_sentences(path: str | Path) -> Any:
    """Read ``EPIC_100_retrieval_test_sentence.csv`` → DataFrame (narration_id, narration), ids unique."""
    import pandas as pd

    table = read_table(path, SENTENCE_COLUMNS, what="EPIC-KITCHENS retrieval sentence csv")
    ids = nonempty_column(table, "narration_id")
    _unique(table, "narration_id", ids)
    df = pd.DataFrame({"narration_id": ids, "narration": nonempty_column(table, "narration")})
    df.attrs["path"] = str(table.path)
    df.attrs["lines"] = table.lines.tolist()
    return df


def load_relevancy(
    path: str | Path, num_videos: int | None = None, num_sentences: int | None = None
) -> np.ndarray:
    """Read the relevancy pkl → float64 (num_videos, num_sentences) array with values in [0, 1].

    The expected shape comes from the retrieval csv (rows) and the sentence csv (rows); a mismatch means the
    pkl belongs to another annotation version.
    """
    obj = safe_pickle.load(path, "relevancy pkl")
    if not isinstance(obj, np.ndarray) or obj.ndim != 2 or not np.issubdtype(obj.dtype, np.number):
        got = f"{type(obj).__name__}" + (
            f" of shape {obj.shape}, dtype {obj.dtype}" if isinstance(obj, np.ndarray) else ""
        )
        raise DataFormatError(path, f"the relevancy matrix is a {got}", expected="a 2-D float numpy array")
    expected = (
        num_videos if num_videos is not None else obj.shape[0],
        num_sentences if num_sentences is not None else obj.shape[1],
    )
    if obj.shape != expected:
        raise DataFormatError(
            path,
            f"the relevancy matrix has shape {obj.shape} but the annotation csvs give {expected} "
            "(retrieval csv rows × sentence csv rows)",
            expected="the pkl that matches these csvs (LaViLa's replica or JPoSE create_relevancy_files.py)",
        )
    rel = obj.astype(np.float64, copy=False)
    if not np.isfinite(rel).all() or rel.min(initial=0.0) < 0 or rel.max(initial=0.0) > 1:
        raise DataFormatError(
            path, "relevancy values outside [0, 1] or not finite", expected="values in [0, 1]"
        )
    return rel


@dataclass
class EK100Retrieval:
    """Everything EK100-MIR needs: clips, unique captions, relevancy, and each caption's clip row."""

    videos: Any  # DataFrame from load_epic_annotations (retrieval test csv), one row per clip
    sentences: Any  # DataFrame (narration_id, narration), one row per unique caption
    relevancy: np.ndarray  # (num_videos, num_sentences) float64
    sentence_rows: np.ndarray  # (num_sentences,) int64: row in `videos` whose narration_id names the caption


def load_retrieval_captions(root: str | Path) -> tuple[Any, Any, np.ndarray]:
    """The EK100-MIR test clips and captions under ``root``, and the clip row each caption's id names.

    Returns ``(videos, sentences, sentence_rows)``: the retrieval csv (one row per clip), the sentence csv (one
    row per caption) and (num_sentences,) int64 rows of ``videos``. Captions are linked by ``narration_id``,
    not by text: the official sentence csv repeats 7 texts under other ids.
    """
    layout = DatasetLayout(root)
    videos = load_epic_annotations(layout.ek100_retrieval_csv)
    sentences = load_retrieval_sentences(layout.ek100_retrieval_sentence_csv)
    row_of = {nid: i for i, nid in enumerate(videos["narration_id"])}
    rows = []
    for j, nid in enumerate(sentences["narration_id"]):
        if nid not in row_of:
            raise DataFormatError(
                layout.ek100_retrieval_sentence_csv,
                f"narration_id {nid!r} is not in {layout.ek100_retrieval_csv.name}",
                line=sentences.attrs["lines"][j],
                column="narration_id",
                expected="every caption's narration_id to name a clip of the retrieval csv",
            )
        rows.append(row_of[nid])
    return videos, sentences, np.asarray(rows, dtype=np.int64)


def load_ek100_retrieval(root: str | Path) -> EK100Retrieval:
    """Read the EK100-MIR test files under a dataset ``root`` (``<root>/ek100/retrieval_annotations``)."""
    videos, sentences, rows = load_retrieval_captions(root)
    relevancy = load_relevancy(DatasetLayout(root).ek100_relevancy_pkl, len(videos), len(sentences))
    return EK100Retrieval(videos, sentences, relevancy, rows)
