"""The EPIC-KITCHENS-100 MIR relevancy matrix (JPoSE rule), for any verb / noun vocabulary.

relevancy(video i, sentence j) = (verb IoU + noun IoU) / 2, where the verb IoU is 1 when the two verb classes
are equal and 0 otherwise (a single class: |∩| / |∪| = 1/1 or 0/2) and the noun IoU is
|N_i ∩ N_j| / |N_i ∪ N_j| over the *sets* of ``all_noun_classes``. A sentence takes the classes of the
retrieval-csv row its ``narration_id`` names: JPoSE builds the sentence table from the first row of each
narration and then appends one sentence per action class still missing (whose ``narration`` text is carried
over from the previous sentence, hence the 7 repeated narrations of the official sentence csv), so the id,
not the text, identifies the classes.
Rule: mwray/Joint-Part-of-Speech-Embeddings @ a2a29f0 : src/scripts/create_relevancy_files.py
Sentence table: mwray/Joint-Part-of-Speech-Embeddings @ a2a29f0 : src/scripts/create_sentence_df.py
Both noun sets empty (0/0, NaN in JPoSE; no official row has an empty ``all_noun_classes``): noun IoU 0.
"""

from __future__ import annotations

import pickle
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from henasy.core.atomic import atomic_write_bytes
from henasy.core.errors import BenchError
from henasy.data.layout import DatasetLayout

# Protocol 4: numpy arrays pickle through ``numpy.core.multiarray._reconstruct``, which the restricted
# reader accepts (henasy/data/safe_pickle.py); the protocol of the synthetic files (henasy/synth/formats.py).
PICKLE_PROTOCOL = 4


def _noun_sets(nouns: Sequence[Sequence[int]]) -> tuple[np.ndarray, list[frozenset[int]]]:
    """Index of each row's noun set into the list of distinct sets (first-seen order)."""
    index: dict[frozenset[int], int] = {}
    rows = np.empty(len(nouns), dtype=np.int64)
    for i, classes in enumerate(nouns):
        key = frozenset(int(c) for c in classes)
        rows[i] = index.setdefault(key, len(index))
    return rows, list(index)


def _multi_hot(sets: list[frozenset[int]], size: int) -> np.ndarray:
    """(len(sets), size) float64 0/1 matrix."""
    out = np.zeros((len(sets), size), dtype=np.float64)
    for i, s in enumerate(sets):
        out[i, list(s)] = 1.0
    return out


def relevancy_matrix(
    video_verbs: Sequence[int],
    video_nouns: Sequence[Sequence[int]],
    sentence_verbs: Sequence[int],
    sentence_nouns: Sequence[Sequence[int]],
) -> np.ndarray:
    """JPoSE relevancy (num_videos, num_sentences) float64 in [0, 1], for class ids of any range.

    ``*_verbs``: one verb class per row; ``*_nouns``: the ``all_noun_classes`` list of each row (duplicates
    count once). Noun IoUs are computed once per pair of distinct noun sets (integer counts through a
    multi-hot matmul, exact in float64) and gathered, so the 9,668 × 3,842 official matrix takes seconds.
    """
    vv = np.asarray(video_verbs, dtype=np.int64).reshape(-1)  # (V,)
    sv = np.asarray(sentence_verbs, dtype=np.int64).reshape(-1)  # (S,)
    if len(vv) != len(video_nouns) or len(sv) != len(sentence_nouns):
        raise ValueError("one verb class and one noun list per row")
    v_idx, v_sets = _noun_sets(video_nouns)
    s_idx, s_sets = _noun_sets(sentence_nouns)
    classes = [c for s in v_sets + s_sets for c in s]
    if (vv < 0).any() or (sv < 0).any() or (classes and min(classes) < 0):
        raise ValueError("class ids must be >= 0")
    size = max(classes, default=-1) + 1
    hv, hs = _multi_hot(v_sets, size), _multi_hot(s_sets, size)  # (Uv, K), (Us, K)
    inter = hv @ hs.T  # (Uv, Us) exact integer counts
    union = hv.sum(1)[:, None] + hs.sum(1)[None, :] - inter
    noun_iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    rel = np.ascontiguousarray(noun_iou[:, s_idx][v_idx])  # (V, S), C order (the pickled bytes are stable)
    rel += vv[:, None] == sv[None, :]
    rel /= 2
    return rel


@dataclass(frozen=True)
class RelevancyBuild:
    path: Path
    shape: tuple[int, int]
    seconds: float  # reading the csvs + computing + writing


def ek100_relevancy(root: str | Path) -> np.ndarray:
    """The relevancy of the EK100-MIR test files under ``root`` (retrieval csv rows × sentence csv rows)."""
    from henasy.data.ek100 import load_retrieval_captions

    videos, _, rows = load_retrieval_captions(root)
    verbs = videos["verb_class"].to_numpy()
    nouns = list(videos["all_noun_classes"])
    return relevancy_matrix(verbs, nouns, verbs[rows], [nouns[r] for r in rows])


def write_relevancy(path: str | Path, rel: np.ndarray) -> Path:
    """Pickle ``rel`` (float64) atomically at ``path`` (folders created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_bytes(path, pickle.dumps(np.asarray(rel, dtype=np.float64), protocol=PICKLE_PROTOCOL))


def build_ek100_relevancy(root: str | Path, *, force: bool = False) -> RelevancyBuild:
    """Write ``caption_relevancy_EPIC_100_retrieval_test.pkl`` at its official path under ``root``."""
    t0 = time.perf_counter()
    path = DatasetLayout(root).ek100_relevancy_pkl
    if path.exists() and not force:
        raise BenchError(f"{path} already exists; pass --force to replace it")
    rel = ek100_relevancy(root)
    write_relevancy(path, rel)
    return RelevancyBuild(path, (int(rel.shape[0]), int(rel.shape[1])), time.perf_counter() - t0)
