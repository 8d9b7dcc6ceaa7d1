"""EgoMCQ zero-shot: pick, among 5 clips, the one that matches a narration (EgoVLP's benchmark, paper §5.2).

Protocol: each ``egomcq.json`` item has a text query and 5 candidate clips; the
prediction is the argmax over candidates of the similarity between the query's ``encode_text`` and each
clip's ``encode_video``; accuracy is reported per ``types`` value, **1 = inter-video, 2 = intra-video**
(the official code prints the two labels swapped; ``benchmarks.metrics.egomcq_accuracy``).

Similarity: **cosine** (EgoVLP / HelpingHands ``sim_matrix``). Every model here returns L2-normalised
embeddings, so the dot product is the cosine; LaViLa's ``validate_mcq`` ranks by the dot product of the
*unnormalised* video embedding, which normalised embeddings cannot reproduce (recorded in the protocol).
Frames: LaViLa Ego4D ``video_loader`` (segment midpoints of ``[round(fps·start), +max(int(fps·dur), T))``,
no jitter). Clips shared by several items are embedded once.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from benchmarks.context import Benchmark, EvalContext, Option
from benchmarks.metrics import egomcq_accuracy
from benchmarks.record import BenchResult
from henasy.core.records import Stratum, fixed_breakdown
from henasy.data.batching import ClipRef
from henasy.data.egomcq import load_egomcq
from henasy.data.video import AutoSource

VERSION = "egomcq/1"
OPTIONS: dict[str, Option] = {}


def run(ctx: EvalContext) -> BenchResult:
    """Score every (or the first ``limit``) EgoMCQ item; metrics ``inter`` / ``intra`` in percent."""
    all_items = load_egomcq(ctx.layout.egomcq_json)
    taken = ctx.take(all_items)
    clip_index: dict[tuple[str, float, float], int] = {}
    refs: list[ClipRef] = []
    option_rows = np.zeros((len(taken), len(taken[0].choices) if taken else 0), dtype=np.int64)  # (N, 5)
    for i, item in enumerate(taken):
        for j, c in enumerate(item.choices):
            key = (c.video_uid, c.clip_start, c.clip_end)
            if key not in clip_index:
                clip_index[key] = len(refs)
                refs.append(ClipRef(c.video_uid, c.clip_start, c.clip_end))
            option_rows[i, j] = clip_index[key]
    source = AutoSource(ctx.layout.ego4d_videos)
    videos, read = ctx.embed_clips_kept(refs, source, "egomcq: clips")  # (M, D), (M,)
    # --on-missing skip: an item is scored only when all its candidate clips were read
    ok = read[option_rows].all(axis=1) if len(taken) else np.zeros(0, dtype=bool)  # (N,)
    items = [it for it, keep in zip(taken, ok) if keep]
    option_rows = option_rows[ok]
    texts = ctx.embed_texts([it.query.clip_text for it in items], "egomcq: queries")  # (N, D)
    similarity = np.einsum("nd,nkd->nk", texts, videos[option_rows])  # (N, 5) cosine
    answers = np.array([it.answer for it in items])
    types = np.array([it.type for it in items])
    accuracy = egomcq_accuracy(similarity, answers, types)
    predicted = similarity.argmax(axis=1)  # first maximal option, as the metric
    per_item: dict[str, Any] = {
        "item_id": [it.key for it in items],
        "type": types.tolist(),
        "answer": answers.tolist(),
        "predicted": predicted.tolist(),
        "correct": (predicted == answers).astype(int).tolist(),
    }
    protocol = {
        "version": VERSION,
        "units": "percent",
        "similarity": "cosine (L2-normalised encode_video / encode_text; LaViLa validate_mcq uses the "
        "unnormalised video embedding's dot product)",
        "types": {"1": "inter", "2": "intra"},
        "tie_rule": "first maximal option",
        "frames": ctx.frames_protocol("duration"),
        "clips_embedded": len(refs),
    }
    metrics = {"inter": accuracy["inter"], "intra": accuracy["intra"]}
    skipped = ctx.note_skipped(
        protocol,
        len(taken) - len(items),
        "items with a missing/unreadable candidate video are left out of the metrics",
    )
    return BenchResult(
        protocol, "egomcq.json", metrics, len(items), len(all_items), per_item, skipped=skipped
    )


# Per-item outcomes of the record: accuracy per question type over the 0/1 "correct" list.
BREAKDOWN = fixed_breakdown(
    {
        "inter": (Stratum("item_id", "correct", where=("type", 1)),),
        "intra": (Stratum("item_id", "correct", where=("type", 2)),),
    }
)
BENCHMARK = Benchmark("egomcq", run, OPTIONS, breakdown=BREAKDOWN, skip_aware=True)
