"""EK100-MIR zero-shot: multi-instance video↔text retrieval on EPIC-KITCHENS-100 (paper §5.2, Table 1).

Protocol (LaViLa ``eval_zeroshot.py --dataset ek100_mir``):

* videos = rows of ``EPIC_100_retrieval_test.csv`` (frames: ``[round(fps·start), ceil(fps·stop))``,
  segment midpoints, per-video fps from decord); captions = rows of ``EPIC_100_retrieval_test_sentence.csv``.
* **Sentence-column ordering as the official code**: LaViLa embeds the narration of every retrieval-csv row,
  builds S = V·Tᵀ over rows, then keeps the columns ``indexes = [video_id.index(t) for t in text_id]``, i.e.
  column j is the embedding of the narration of the row whose ``narration_id`` is caption j's. Here only
  those rows' narrations are embedded (same matrix, fewer text passes).
* S (cosine of L2-normalised float32 embeddings) is rescaled ``S = (S + 1) / 2`` in float32, which can only
  create ties, then scored with the JPoSE mAP / nDCG (``benchmarks.metrics.ek100_mir_metrics``): V→T over
  rows, T→V over columns, and their averages. Relevancy: the test pkl.

Metrics are percent (×100 of the official fractions). With ``limit`` the first N clips are kept, with the
captions whose row is among them; queries left without a relevant item are then omitted from the means.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmarks.context import Benchmark, EvalContext, Option
from benchmarks.metrics import ek100_mir_metrics, ek100_mir_per_query
from benchmarks.record import BenchResult
from henasy.core.errors import BenchError, DataFormatError
from henasy.core.records import Stratum, fixed_breakdown
from henasy.data.batching import ClipRef
from henasy.data.ek100 import EK100Retrieval, ek100_video_relpath, load_ek100_retrieval
from henasy.data.video import SingleFileSource

VERSION = "ek100_mir/1"
OPTIONS: dict[str, Option] = {}


def sentence_similarity(video_embeds: np.ndarray, row_text_embeds: np.ndarray) -> np.ndarray:
    """LaViLa's rescaled similarity: (N_v, D), (N_s, D) caption-column embeddings → (N_v, N_s) float32 (S+1)/2."""
    sim = video_embeds.astype(np.float32) @ row_text_embeds.astype(np.float32).T  # (N_v, N_s)
    return (sim + np.float32(1.0)) / np.float32(2.0)


def _load(ctx: EvalContext) -> EK100Retrieval:
    """The retrieval files; a missing relevancy pkl (distributed separately) says how to build it."""
    pkl = ctx.layout.ek100_relevancy_pkl
    try:
        return load_ek100_retrieval(ctx.data_root)
    except DataFormatError as err:
        if Path(err.path) != pkl or pkl.exists():
            raise
        raise DataFormatError(
            pkl,
            "relevancy pkl not found",
            expected="the JPoSE relevancy of the retrieval csvs; build it with "
            f"`bench data relevancy --data {ctx.data_root}`",
        ) from None


def run(ctx: EvalContext) -> BenchResult:
    """V→T / T→V mAP and nDCG (percent) over the retrieval test set."""
    data = _load(ctx)
    videos = data.videos
    n_total = len(videos)
    n = n_total if ctx.limit is None else min(ctx.limit, n_total)
    if not np.any(data.sentence_rows < n):
        raise BenchError(f"ek100_mir: none of the captions name one of the first {n} clips; raise --limit")
    clips = [
        ClipRef(ek100_video_relpath(r.participant_id, r.video_id), float(r.start_sec), float(r.stop_sec))
        for r in videos.iloc[:n].itertuples()
    ]
    source = SingleFileSource(ctx.layout.ek100_videos)
    video_embeds, read = ctx.embed_clips_kept(clips, source, "ek100_mir: clips", frame_rule="ceil")  # (n, D)
    # --on-missing skip: clips whose video could not be read leave the rows, and their captions the columns
    kept_rows = np.flatnonzero(read)  # (n',)
    video_embeds = video_embeds[kept_rows]
    rows = videos.iloc[kept_rows]
    columns = np.flatnonzero(np.isin(data.sentence_rows, kept_rows))  # captions of kept rows, csv order
    if len(columns) == 0:
        raise BenchError(f"ek100_mir: none of the captions name one of the {len(kept_rows)} clips read")
    caption_rows = data.sentence_rows[columns]  # (m,)
    narrations = [videos["narration"].iat[int(i)] for i in caption_rows]
    text_embeds = ctx.embed_texts(narrations, "ek100_mir: captions")  # (m, D)
    similarity = sentence_similarity(video_embeds, text_embeds)  # (n, m)
    relevancy = data.relevancy[kept_rows][:, columns]  # (n', m)
    skipped_rows = n - len(kept_rows)
    partial = n < n_total or skipped_rows > 0
    nan_policy = "omit" if partial else "propagate"
    fractions = ek100_mir_metrics(similarity, relevancy, nan_policy=nan_policy)
    per_query = ek100_mir_per_query(similarity, relevancy)
    metrics = {k: 100.0 * v for k, v in fractions.items()}
    per_item = {
        "video_id": rows["narration_id"].tolist(),
        "AP_v2t": per_query["AP_v2t"],
        "nDCG_v2t": per_query["nDCG_v2t"],
        "sentence_id": data.sentences["narration_id"].iloc[columns].tolist(),
        "AP_t2v": per_query["AP_t2v"],
        "nDCG_t2v": per_query["nDCG_t2v"],
    }
    protocol = {
        "version": VERSION,
        "units": "percent (100 x the JPoSE fractions)",
        "similarity": "cosine of L2-normalised embeddings, float32, rescaled S = (S + 1) / 2",
        "sentence_order": "columns in EPIC_100_retrieval_test_sentence.csv order; column j = narration of the "
        "retrieval-csv row whose narration_id is caption j's (LaViLa video_id.index(text_id))",
        "mAP": "relevant iff relevancy == 1; precision numerator = cumulative graded relevancy",
        "nDCG": "first K = #(relevancy > 0) ranks, linear gains, log2(rank + 1)",
        "tie_rule": "equal scores rank by lower index (stable), both metrics",
        "nan_policy": nan_policy,
        "relevancy": "relevancy/caption_relevancy_EPIC_100_retrieval_test.pkl",
        "relevancy_shape": list(data.relevancy.shape),
        "frames": ctx.frames_protocol("ceil"),
    }
    skipped = ctx.note_skipped(
        protocol,
        skipped_rows,
        "clips whose video is missing/unreadable are left out of the rows, and the captions naming them "
        f"out of the columns ({len(columns)} captions kept)",
    )
    split = "EPIC_100_retrieval_test"
    return BenchResult(protocol, split, metrics, len(kept_rows), n_total, per_item, skipped=skipped)


# Per-item outcomes: per-query AP / nDCG (video queries for V→T, sentence queries for T→V); the averages are
# the mean of the two directions' means.
_DIRECTIONS = {
    f"{m}_{d}": (Stratum("video_id" if d == "v2t" else "sentence_id", f"{'AP' if m == 'mAP' else m}_{d}"),)
    for m in ("mAP", "nDCG")
    for d in ("v2t", "t2v")
}
BREAKDOWN = fixed_breakdown(
    {
        **_DIRECTIONS,
        "mAP_avg": _DIRECTIONS["mAP_v2t"] + _DIRECTIONS["mAP_t2v"],
        "nDCG_avg": _DIRECTIONS["nDCG_v2t"] + _DIRECTIONS["nDCG_t2v"],
    }
)
BENCHMARK = Benchmark("ek100_mir", run, OPTIONS, breakdown=BREAKDOWN, skip_aware=True)
