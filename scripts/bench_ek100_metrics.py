"""Time the vectorised EK100-MIR metrics against a straightforward per-query loop of the same formulas.

Builds a random 9,668 × 3,842 problem shaped like the EK100-MIR test set: JPoSE-style graded relevancy
(``0.5·[same verb] + 0.5·|N_v ∩ N_s| / |N_v ∪ N_s|`` over noun-class sets, JPoSE
``src/scripts/create_relevancy_files.py``) and a float32 cosine similarity rescaled ``(S + 1) / 2`` as the
official callers do (which creates ties). Runs ``benchmarks.metrics.ek100_mir_metrics`` and the loop
reference below in the same process and prints both times, their ratio and the largest absolute
difference of the six metrics.

The loop reference is also the oracle of ``tests/test_metrics.py`` (it lives here, not in the library).

Usage: .venv/bin/python scripts/bench_ek100_metrics.py [--videos 9668] [--sentences 3842] [--seed 0]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.metrics import ek100_mir_metrics  # noqa: E402


def jpose_like_problem(
    n_videos: int,
    n_sentences: int,
    rng: np.random.Generator,
    *,
    n_verbs: int = 97,
    n_nouns: int = 300,
    dim: int = 64,
) -> tuple[np.ndarray, np.ndarray]:
    """A (similarity float32, relevancy float64) pair of shape (n_videos, n_sentences).

    Sentences get a Zipf-distributed verb class and 1–3 noun classes; every video copies the classes of
    one sentence and every sentence is copied at least once (when n_videos >= n_sentences), so each
    query has a relevancy-1 item, as in EK100. Similarity = cosine of noisy
    class-based embeddings, rescaled to (S + 1) / 2 in float32.
    """
    verb_p = 1.0 / np.arange(1, n_verbs + 1)
    noun_p = 1.0 / np.arange(1, n_nouns + 1)
    verbs = rng.choice(n_verbs, size=n_sentences, p=verb_p / verb_p.sum())  # (S,)
    nouns = np.zeros((n_sentences, n_nouns), dtype=np.float32)  # (S, Nn) multi-hot
    for s, count in enumerate(rng.integers(1, 4, size=n_sentences)):
        nouns[s, rng.choice(n_nouns, size=count, replace=False, p=noun_p / noun_p.sum())] = 1.0
    source = rng.integers(0, n_sentences, n_videos)  # (V,) the sentence each video copies
    covered = min(n_sentences, n_videos)
    source[rng.permutation(n_videos)[:covered]] = np.arange(covered)  # each sentence copied at least once
    v_verbs, v_nouns = verbs[source], nouns[source]
    inter = v_nouns @ nouns.T  # (V, S)
    union = v_nouns.sum(1)[:, None] + nouns.sum(1)[None, :] - inter  # (V, S)
    relevancy = 0.5 * (v_verbs[:, None] == verbs[None, :]) + 0.5 * (inter / union).astype(np.float64)

    verb_emb = rng.standard_normal((n_verbs, dim)).astype(np.float32)
    noun_emb = rng.standard_normal((n_nouns, dim)).astype(np.float32)

    def embed(v: np.ndarray, n: np.ndarray) -> np.ndarray:
        x = verb_emb[v] + (n @ noun_emb) / n.sum(1, keepdims=True) + 1.5 * rng.standard_normal((len(v), dim))
        return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)

    similarity = embed(v_verbs, v_nouns) @ embed(verbs, nouns).T  # (V, S) float32 cosine
    return (similarity + 1) / 2, relevancy


def loop_reference_per_query(similarity: np.ndarray, relevancy: np.ndarray) -> dict[str, np.ndarray]:
    """Per-query AP and nDCG, one query at a time (same formulas and tie rule as the library)."""
    out: dict[str, np.ndarray] = {}
    for direction, sim, rel in (("v2t", similarity, relevancy), ("t2v", similarity.T, relevancy.T)):
        n_queries, n_items = sim.shape
        discount = np.log2(np.arange(1, n_items + 1) + 1.0)
        ap = np.empty(n_queries)
        ndcg = np.empty(n_queries)
        with np.errstate(invalid="ignore", divide="ignore"):
            for q in range(n_queries):
                row = rel[q].astype(np.float64)
                ranked = row[np.argsort(-sim[q], kind="stable")]  # ties: lower column index first
                hits = np.flatnonzero(ranked == 1.0)  # 0-based ranks of the relevant items
                ap[q] = np.sum(np.cumsum(ranked)[hits] / (hits + 1.0)) / np.float64(len(hits))
                k = int(np.count_nonzero(row > 0))
                ideal = np.sort(row)[::-1]
                ndcg[q] = np.sum(ranked[:k] / discount[:k]) / np.sum(ideal[:k] / discount[:k])
        out[f"AP_{direction}"] = ap
        out[f"nDCG_{direction}"] = ndcg
    return out


def loop_reference_metrics(similarity: np.ndarray, relevancy: np.ndarray) -> dict[str, float]:
    """The six EK100-MIR metrics from :func:`loop_reference_per_query` (NaN propagates)."""
    per_query = loop_reference_per_query(similarity, relevancy)
    out = {}
    for prefix, key in (("mAP", "AP"), ("nDCG", "nDCG")):
        v2t, t2v = float(np.mean(per_query[f"{key}_v2t"])), float(np.mean(per_query[f"{key}_t2v"]))
        out.update({f"{prefix}_v2t": v2t, f"{prefix}_t2v": t2v, f"{prefix}_avg": (v2t + t2v) / 2})
    return out


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--videos", type=int, default=9668)
    parser.add_argument("--sentences", type=int, default=3842)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    similarity, relevancy = jpose_like_problem(args.videos, args.sentences, np.random.default_rng(args.seed))
    n_ties = similarity.size - sum(len(np.unique(row)) for row in similarity)
    print(
        f"matrix {similarity.shape}, rel==1 per video {np.mean((relevancy == 1).sum(1)):.1f}, "
        f"rel>0 per video {np.mean((relevancy > 0).sum(1)):.1f}, tied similarity entries {n_ties}"
    )

    start = time.perf_counter()
    fast = ek100_mir_metrics(similarity, relevancy)
    fast_s = time.perf_counter() - start
    start = time.perf_counter()
    slow = loop_reference_metrics(similarity, relevancy)
    slow_s = time.perf_counter() - start

    for key in fast:
        print(f"  {key:9s} vectorised {fast[key]:.10f}  loop {slow[key]:.10f}")
    diff = max(abs(fast[key] - slow[key]) for key in fast)
    print(f"vectorised ek100_mir_metrics: {fast_s:.2f} s")
    print(f"per-query loop reference:     {slow_s:.2f} s")
    print(f"speed-up (loop / vectorised): {slow_s / fast_s:.2f}x")
    print(f"max |difference| over the six metrics: {diff:.3e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
