"""Every benchmark metric of henasy-bench, with the exact semantics of the official evaluation code.

Published numbers are comparable only when the metric behaves exactly as the official one, so each
function here documents the official source it mirrors, its units (percent or fraction), its tie rule
and its NaN rule (facts observed by running the official code).
Pure numpy; no code is copied from the official repositories.

=========================  ===========  ==============================================================
function                   units        official source
=========================  ===========  ==============================================================
``egomcq_accuracy``        percent      LaViLa ``evaluation_egomcq.py`` / EgoVLP ``model/metric.py``
``ek100_mir_metrics``      fraction     JPoSE ``mAP.py`` / ``nDCG.py`` (LaViLa ``evaluation_ek100mir.py``)
``topk_accuracy``          percent      LaViLa ``lavila/utils/evaluation.accuracy``
``mean_class_accuracy``    percent      LaViLa ``get_mean_accuracy`` on sklearn ``confusion_matrix``
``ek100_cls_marginals``    scores       LaViLa ``evaluation_ek100cls.marginalize`` (verb/noun from action)
``nlq_recall``             fraction     Ego4D ``NLQ/VSLNet/utils/evaluate_ego4d_nlq.py``
``mq_detection_map``       fraction     Ego4D ``MQ/Evaluation/ego4d/eval_detection.py``
``mq_retrieval_recall``    fraction     Ego4D ``MQ/Evaluation/ego4d/get_retrieval_performance.py``
=========================  ===========  ==============================================================

Bad input (wrong shapes, NaN scores, unknown ids in a prediction file) raises ``henasy.core.errors.BenchError``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from benchmarks._metrics_checks import float_matrix, int_vector
from benchmarks._metrics_ego4d import mq_detection_map, mq_retrieval_recall, nlq_recall
from benchmarks._metrics_ek100 import (
    ek100_cls_marginals,
    ek100_marginal_indexes,
    ek100_marginalize,
    ek100_mir_metrics,
    ek100_mir_per_query,
)
from henasy.core.errors import BenchError

__all__ = [
    "egomcq_accuracy",
    "ek100_cls_marginals",
    "ek100_marginal_indexes",
    "ek100_marginalize",
    "ek100_mir_metrics",
    "ek100_mir_per_query",
    "mean_class_accuracy",
    "mq_detection_map",
    "mq_retrieval_recall",
    "nlq_recall",
    "topk_accuracy",
]

# EgoMCQ ``types`` values in egomcq.json (EgoVLP loader; showlab/EgoVLP#19).
EGOMCQ_TYPES = {1: "inter", 2: "intra"}


def egomcq_accuracy(similarity: np.ndarray, answer: np.ndarray, types: np.ndarray) -> dict[str, float]:
    """EgoMCQ accuracy (percent) per question type: ``{"inter": …, "intra": …}``.

    ``similarity`` is (N, 5): the score of each of the five options for each question; ``answer`` (N,)
    the index of the correct option; ``types`` (N,) the egomcq.json ``types`` value, **1 = inter-video,
    2 = intra-video**. The official code (EgoVLP, LaViLa, HelpingHands) names its outputs by position,
    zipping the sorted types with ``["Intra-video", "Inter-video"]``, so it prints the two swapped (the
    ~90 % number it calls "Intra" is inter-video); this function reports by type value.

    * Accuracy of a type = 100 × mean over its questions of [argmax_j similarity[i, j] == answer[i]].
    * Ties: the first maximal option wins (``np.argmax``, as ``torch.argmax`` in the official code).
    * A type with no question has value NaN (both keys are always present).
    * Types other than 1 and 2, answers outside 0..M-1, or non-finite scores raise ``BenchError``.
    """
    scores = float_matrix("similarity", similarity)
    n, n_options = scores.shape
    answers = int_vector("answer", answer, n, 0, n_options)
    kinds = int_vector("types", types, n, 1, 3)
    correct = np.argmax(scores, axis=1) == answers  # (N,) first maximal option on ties
    result = {}
    for value, name in EGOMCQ_TYPES.items():
        chosen = kinds == value
        result[name] = float(100.0 * correct[chosen].mean()) if chosen.any() else float("nan")
    return result


def _target_rank(logits: np.ndarray, target: np.ndarray) -> np.ndarray:
    """0-based rank of each target class under descending score, equal scores by lower class index."""
    target_score = np.take_along_axis(logits, target[:, None], axis=1)  # (N, 1)
    above = (logits > target_score).sum(axis=1)  # (N,)
    tied_before = ((logits == target_score) & (np.arange(logits.shape[1]) < target[:, None])).sum(axis=1)
    return above + tied_before


def topk_accuracy(logits: np.ndarray, target: np.ndarray, ks: Sequence[int] = (1, 5)) -> dict[str, float]:
    """Top-k accuracy (percent) for each k: ``{"top1": …, "top5": …}`` (keys ``f"top{k}"``).

    A sample is correct at k iff its target class is among the k highest ``logits`` of its row
    (LaViLa ``evaluation.accuracy`` via ``torch.topk``). Ties: classes are ranked by descending score
    with equal scores ordered by lower class index (``torch.topk`` leaves the tie order unspecified).
    Scores are compared in the dtype given (the official runs use float32 logits; pass float32 to
    reproduce float32 ties). ``k`` larger than the number of classes raises ``BenchError`` (as
    ``torch.topk`` does); so do targets outside 0..C-1 and non-finite logits.
    """
    scores = float_matrix("logits", logits)
    n, n_classes = scores.shape
    targets = int_vector("target", target, n, 0, n_classes)
    ks = [int(k) for k in ks]
    if not ks or min(ks) < 1 or max(ks) > n_classes:
        raise BenchError(
            f"topk_accuracy: every k must be in 1..{n_classes} (the number of classes), got {ks}"
        )
    rank = _target_rank(scores, targets)  # (N,)
    return {f"top{k}": float(100.0 * np.mean(rank < k)) for k in ks}


def mean_class_accuracy(logits: np.ndarray, target: np.ndarray) -> float:
    """Mean class accuracy (percent) with the official confusion-matrix semantics.

    Mirrors LaViLa ``get_mean_accuracy(confusion_matrix(target, argmax(logits)))`` where sklearn's
    ``confusion_matrix`` is called **without** ``labels=``: its classes are the union of the classes that
    occur as a target or as a prediction. Each such class contributes recall = correct / support; a
    class that is predicted but never a target (support 0) contributes 0; a class that is neither a
    target nor predicted is left out of the mean. Predictions = ``np.argmax`` (first maximal class on
    ties). Targets outside 0..C-1 or non-finite logits raise ``BenchError``.
    """
    scores = float_matrix("logits", logits)
    n, n_classes = scores.shape
    targets = int_vector("target", target, n, 0, n_classes)
    predicted = np.argmax(scores, axis=1)  # (N,)
    support = np.bincount(targets, minlength=n_classes)  # (C,)
    correct = np.bincount(targets[predicted == targets], minlength=n_classes)  # (C,)
    present = (support > 0) | (np.bincount(predicted, minlength=n_classes) > 0)  # sklearn's label union
    recall = np.divide(correct, support, out=np.zeros(n_classes), where=support > 0)  # (C,)
    return float(100.0 * recall[present].mean())
