"""EPIC-KITCHENS-100 multi-instance retrieval metrics (mAP and nDCG), vectorised over queries.

Semantics follow the official code that every EK100-MIR number is computed with: JPoSE
``src/evaluation/mAP.py`` / ``nDCG.py``, copied into LaViLa ``lavila/utils/evaluation_ek100mir.py`` and
EgoVLP / HelpingHands ``utils/mAP.py`` (formulas re-derived here, no code taken from them):

* mAP: an item is relevant iff its relevancy is exactly 1; the precision at a relevant rank k is the
  cumulative sum of the *graded* relevancies of ranks 1..k divided by k (partial matches ranked above it
  add to the numerator); AP = sum of those precisions / number of relevant items.
* nDCG: K = number of items with relevancy > 0; DCG = sum over ranks r = 1..K of rel_(r) / log2(r + 1)
  (linear gains); IDCG = the same with the items ranked by relevancy itself; nDCG = DCG / IDCG.

Rows of the matrices are videos (video→text queries); text→video uses the transposes. The real test
matrix is 9,668 × 3,842, so queries are processed in blocks of rows (``_BLOCK_ELEMENTS`` entries each),
one sort per block shared by mAP and nDCG.

EK100-CLS verb / noun scores from action scores (``ek100_cls_marginals``): sums of action probabilities per
verb and per noun, as LaViLa ``lavila/utils/evaluation_ek100cls.py`` (``get_marginal_indexes``,
``marginalize``) computes them.
"""

from __future__ import annotations

import math

import numpy as np

from benchmarks._metrics_checks import float_matrix
from henasy.core.errors import BenchError

# Entries per block of queries: a few float64 temporaries of this size are alive at once (2 MB each),
# small enough to stay in cache (measured faster than larger blocks on the 9,668 × 3,842 matrix).
_BLOCK_ELEMENTS = 1 << 18


def _descending_order(scores: np.ndarray) -> np.ndarray:
    """Column order of each row by descending score, equal scores by lower column index: (b, n) → (b, n).

    Equals ``np.argsort(-scores, axis=1, kind="stable")`` but runs the much faster unstable (SIMD)
    sort and then re-orders only the runs of tied scores, which are few in real similarity matrices.
    """
    negated = -scores  # (b, n)
    order = np.argsort(negated, axis=1)  # (b, n) unstable: ties in arbitrary order
    ranked_scores = np.take_along_axis(negated, order, axis=1)  # (b, n) ascending
    tie_with_next = ranked_scores[:, 1:] == ranked_scores[:, :-1]  # (b, n-1)
    if tie_with_next.any():
        tie_with_previous = np.zeros(order.shape, dtype=bool)  # (b, n)
        tie_with_previous[:, 1:] = tie_with_next
        in_run = tie_with_previous.copy()
        in_run[:, :-1] |= tie_with_next
        rows, cols = np.nonzero(in_run)  # row-major, so each run is contiguous and runs are in order
        run_id = np.cumsum(~tie_with_previous[rows, cols])  # a new run starts where no tie with previous
        columns = order[rows, cols]
        order[rows, cols] = columns[np.lexsort((columns, run_id))]  # ascending column within each run
    return order


def _block_scores(similarity: np.ndarray, relevancy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-query AP and nDCG for a block of queries: similarity/relevancy (b, n) → two (b,) arrays."""
    n = similarity.shape[1]
    ranks = np.arange(1, n + 1, dtype=np.float64)  # (n,) rank k from 1
    order = _descending_order(similarity)  # (b, n)
    ranked = np.take_along_axis(relevancy, order, axis=1)  # (b, n) graded relevancy in rank order

    # mAP (JPoSE mAP.py): relevant ⇔ rel == 1; precision@k = cumsum(graded rel)[k] / k.
    rows, cols = np.nonzero(ranked == 1.0)  # (m,) the relevant (query, rank) pairs, few per query
    precision = np.cumsum(ranked, axis=1)[rows, cols] / ranks[cols]  # (m,)
    n_exact = np.bincount(rows, minlength=len(ranked))  # (b,)
    average_precision = np.bincount(rows, weights=precision, minlength=len(ranked)) / n_exact  # 0/0 → NaN

    # nDCG (JPoSE nDCG.py): only the first K = #(rel > 0) ranks count, for DCG and IDCG alike.
    k = (relevancy > 0).sum(axis=1)  # (b,)
    width = int(k.max())  # no rank beyond the largest K contributes
    discounts = np.log2(ranks[:width] + 1.0)  # (w,) log2(k + 1)
    in_top_k = np.arange(width) < k[:, None]  # (b, w)
    dcg = (np.where(in_top_k, ranked[:, :width], 0.0) / discounts).sum(axis=1)  # (b,)
    ideal = -np.sort(-relevancy, axis=1)[:, :width]  # (b, w) relevancy in descending order
    idcg = (np.where(in_top_k, ideal, 0.0) / discounts).sum(axis=1)  # (b,)
    return average_precision, dcg / idcg  # all-zero query: 0/0 → NaN


def _one_direction(similarity: np.ndarray, relevancy: np.ndarray, transpose: bool) -> tuple[np.ndarray, ...]:
    """AP and nDCG of every query; queries are rows of the matrices, or columns when ``transpose``."""
    n_queries, n_items = similarity.shape[::-1] if transpose else similarity.shape
    block = max(1, _BLOCK_ELEMENTS // n_items)
    average_precision = np.empty(n_queries)
    ndcg = np.empty(n_queries)
    for start in range(0, n_queries, block):
        stop = min(start + block, n_queries)
        if transpose:
            sim_block = np.ascontiguousarray(similarity[:, start:stop].T)  # (b, n_items)
            rel_block = np.ascontiguousarray(relevancy[:, start:stop].T, dtype=np.float64)
        else:
            sim_block = similarity[start:stop]  # (b, n_items)
            rel_block = relevancy[start:stop].astype(np.float64, copy=False)
        average_precision[start:stop], ndcg[start:stop] = _block_scores(sim_block, rel_block)
    return average_precision, ndcg


def ek100_mir_per_query(similarity: np.ndarray, relevancy: np.ndarray) -> dict[str, np.ndarray]:
    """Per-query AP and nDCG in both directions (see :func:`ek100_mir_metrics` for the rules).

    Returns ``{"AP_v2t": (n_videos,), "nDCG_v2t": (n_videos,), "AP_t2v": (n_sentences,),
    "nDCG_t2v": (n_sentences,)}``, NaN where the official formula divides 0 by 0 (a query with no
    relevancy == 1 item has NaN AP; one with no relevancy > 0 item has NaN nDCG).
    """
    sim = float_matrix("similarity", similarity)
    rel = float_matrix("relevancy", relevancy)
    if sim.shape != rel.shape:
        raise BenchError(
            f"similarity has shape {sim.shape} but relevancy has shape {rel.shape}; both must be "
            "(n_videos, n_sentences) with the columns in the same sentence order"
        )
    with np.errstate(invalid="ignore", divide="ignore"):
        ap_v2t, ndcg_v2t = _one_direction(sim, rel, transpose=False)
        ap_t2v, ndcg_t2v = _one_direction(sim, rel, transpose=True)
    return {"AP_v2t": ap_v2t, "nDCG_v2t": ndcg_v2t, "AP_t2v": ap_t2v, "nDCG_t2v": ndcg_t2v}


def ek100_mir_metrics(
    similarity: np.ndarray, relevancy: np.ndarray, *, nan_policy: str = "propagate"
) -> dict[str, float]:
    """EK100-MIR mAP and nDCG (fractions in [0, 1]) with the official JPoSE/LaViLa semantics.

    ``similarity`` and ``relevancy`` are (n_videos, n_sentences); rows are the video→text queries and
    the transposes give the text→video queries. Returns ``mAP_v2t``, ``mAP_t2v``, ``mAP_avg``,
    ``nDCG_v2t``, ``nDCG_t2v``, ``nDCG_avg``; each ``_avg`` is the mean of the two directions.

    * mAP: relevant ⇔ ``relevancy == 1`` exactly (0.999 is not relevant); precision at each relevant
      rank k (from 1) = (sum of the graded relevancies at ranks 1..k) / k; AP = mean of those precisions
      over the relevant items; mAP = mean of AP over the queries.
    * nDCG: K = #(relevancy > 0) per query; DCG = sum_{r=1..K} rel_(r) / log2(r + 1) over the ranking
      by similarity; IDCG = the same over the relevancies sorted in descending order (independent of any
      tie rule); nDCG = mean of DCG / IDCG over the queries.
    * Ties: items are ranked by descending similarity with a stable sort, so equal scores keep column
      order (lower index ranks first), in both mAP and nDCG. The official code uses unstable numpy
      sorts with opposite tie directions for mAP and nDCG, so results there depend on the numpy version
      exactly when the similarity has ties; they are otherwise identical. The official callers rescale
      ``S = (S + 1) / 2`` first, a monotone map that only creates ties by rounding; this function ranks
      the matrix it is given, so apply the rescaling yourself only to reproduce those ties.
    * NaN: a query with no ``relevancy == 1`` item has AP = 0/0 = NaN and one with no ``relevancy > 0``
      item has nDCG = NaN. With ``nan_policy="propagate"`` (default, the official behaviour: no query is
      skipped) any such query makes the mean NaN; ``nan_policy="omit"`` averages over the other queries
      instead (NaN if none is left). Use :func:`ek100_mir_per_query` for the per-query values.

    Non-finite similarity or relevancy values, or mismatched shapes, raise ``BenchError``.
    """
    if nan_policy not in ("propagate", "omit"):
        raise BenchError(f"nan_policy must be 'propagate' or 'omit', got {nan_policy!r}")
    per_query = ek100_mir_per_query(similarity, relevancy)

    def mean(values: np.ndarray) -> float:
        if nan_policy == "propagate" or not np.isnan(values).any():
            return float(np.mean(values))
        kept = values[~np.isnan(values)]
        return float(kept.mean()) if kept.size else float("nan")

    result = {
        "mAP_v2t": mean(per_query["AP_v2t"]),
        "mAP_t2v": mean(per_query["AP_t2v"]),
        "nDCG_v2t": mean(per_query["nDCG_v2t"]),
        "nDCG_t2v": mean(per_query["nDCG_t2v"]),
    }
    result["mAP_avg"] = (result["mAP_v2t"] + result["mAP_t2v"]) / 2
    result["nDCG_avg"] = (result["nDCG_v2t"] + result["nDCG_t2v"]) / 2
    return {key: result[key] for key in ("mAP_v2t", "mAP_t2v", "mAP_avg", "nDCG_v2t", "nDCG_t2v", "nDCG_avg")}


# ------------------------------------------------------------------------------------- EK100-CLS marginals
# Rows of action probabilities per block when marginalising (float64 temporaries of block × classes).
_MARGINAL_BLOCK_ROWS = 1024


def ek100_marginal_indexes(action_parts: np.ndarray) -> list[np.ndarray]:
    """For each verb (or noun) id ``0..max(action_parts)``, the indexes of the action classes holding it.

    ``action_parts`` (C,) is the verb (or noun) class of each action class, in action-class order. Mirrors
    LaViLa ``lavila/utils/evaluation_ek100cls.get_marginal_indexes`` (from RULSTM): an id that no action class
    holds gets ``[0]``, i.e. the probability of action class 0 (an official quirk, kept).
    """
    parts = np.asarray(action_parts)
    if parts.ndim != 1 or parts.size == 0 or parts.dtype.kind not in "iu" or parts.min() < 0:
        raise BenchError(
            f"action_parts: expected a non-empty 1-D vector of non-negative class ids, got shape {parts.shape} "
            f"dtype {parts.dtype}"
        )
    groups = [np.flatnonzero(parts == v) for v in range(int(parts.max()) + 1)]
    return [g if g.size else np.zeros(1, dtype=np.int64) for g in groups]


def _membership(indexes: list[np.ndarray], n_classes: int) -> np.ndarray:
    """(C, V) float64 0/1 matrix: column v marks the action classes in ``indexes[v]`` (each checked in 0..C-1)."""
    for v, group in enumerate(indexes):
        if group.size and (group.min() < 0 or group.max() >= n_classes):
            raise BenchError(f"indexes[{v}] names an action class outside 0..{n_classes - 1}")
    member = np.zeros((n_classes, len(indexes)), dtype=np.float64)  # (C, V) one column per verb/noun
    for v, group in enumerate(indexes):
        member[group, v] = 1.0
    return member


def ek100_marginalize(probs: np.ndarray, indexes: list[np.ndarray]) -> np.ndarray:
    """(N, C) action probabilities → (N, len(indexes)): column v = sum of ``probs`` over ``indexes[v]``.

    LaViLa ``evaluation_ek100cls.marginalize`` (verb / noun scores as sums of action probabilities).
    """
    p = float_matrix("probs", probs)
    return p.astype(np.float64, copy=False) @ _membership(indexes, p.shape[1])  # (N, V)


def ek100_cls_marginals(
    logits: np.ndarray, action_verbs: np.ndarray, action_nouns: np.ndarray, temperature: float
) -> tuple[np.ndarray, np.ndarray]:
    """Verb and noun scores (N, V), (N, M) from zero-shot action scores (N, C): marginal probabilities.

    Action probabilities = ``softmax(logits / temperature)`` over the C action classes (float64, max
    subtracted), then summed per verb and per noun with :func:`ek100_marginal_indexes` /
    :func:`ek100_marginalize` (LaViLa ``main_finetune_classification.py`` marginalises the softmax of its
    action head the same way). V = max verb id + 1, M = max noun id + 1. The zero-shot LaViLa script reports
    action accuracy only, so ``temperature`` (the softmax scale of the cosines) is this protocol's choice.
    """
    scores = float_matrix("logits", logits)
    if not (isinstance(temperature, (int, float)) and temperature > 0 and math.isfinite(temperature)):
        raise BenchError(f"temperature must be a positive finite number, got {temperature!r}")
    verbs, nouns = np.asarray(action_verbs), np.asarray(action_nouns)
    if verbs.shape != (scores.shape[1],) or nouns.shape != (scores.shape[1],):
        raise BenchError(
            f"action_verbs {verbs.shape} and action_nouns {nouns.shape} must both have shape "
            f"({scores.shape[1]},): one verb and one noun class per action class (column of logits)"
        )
    verb_member = _membership(ek100_marginal_indexes(verbs), scores.shape[1])  # (C, V)
    noun_member = _membership(ek100_marginal_indexes(nouns), scores.shape[1])  # (C, M)
    verb_out = np.empty((scores.shape[0], verb_member.shape[1]), dtype=np.float64)
    noun_out = np.empty((scores.shape[0], noun_member.shape[1]), dtype=np.float64)
    for start in range(0, scores.shape[0], _MARGINAL_BLOCK_ROWS):
        block = scores[start : start + _MARGINAL_BLOCK_ROWS].astype(np.float64) / temperature  # (b, C)
        block = np.exp(block - block.max(axis=1, keepdims=True))
        block /= block.sum(axis=1, keepdims=True)  # (b, C) softmax over action classes
        block = float_matrix("probs", block)  # the finiteness check ek100_marginalize makes, once per block
        verb_out[start : start + len(block)] = block @ verb_member  # (b, V)
        noun_out[start : start + len(block)] = block @ noun_member  # (b, M)
    return verb_out, noun_out
