"""Ego4D episodic-memory metrics: NLQ recall@K/mIoU, MQ detection mAP and MQ retrieval recall.

Semantics follow the official Ego4D episodic-memory code (re-derived, no code taken from it):
``NLQ/VSLNet/utils/evaluate_ego4d_nlq.py`` (NLQ), ``MQ/Evaluation/ego4d/eval_detection.py`` with
``MQ/Evaluation/utils.py`` (MQ detection, ActivityNet-style) and
``MQ/Evaluation/ego4d/get_retrieval_performance.py`` (MQ retrieval). All values are fractions in [0, 1].

Temporal IoU: intersection = max(0, min(e) − max(s)). The official NLQ and MQ-retrieval code divide by
the hull max(e) − min(s), the MQ-detection code by len_a + len_b − intersection; the two agree whenever
the intersection is positive and give 0 otherwise, so one helper serves all three. One documented
deviation: where the official formula is 0/0 (a zero-length window on a zero-length ground truth at the
same instant) the official result is NaN; here the IoU is 0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from benchmarks._metrics_checks import field, json_list, json_object, number, window
from henasy.core.errors import BenchError


def _interval_iou(predicted: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """tIoU of every predicted window with every ground-truth window: (P, 2), (G, 2) → (P, G)."""
    left = np.maximum(predicted[:, None, 0], truth[None, :, 0])  # (P, G)
    right = np.minimum(predicted[:, None, 1], truth[None, :, 1])  # (P, G)
    intersection = np.maximum(right - left, 0.0)  # (P, G)
    hull = np.maximum(predicted[:, None, 1], truth[None, :, 1]) - np.minimum(
        predicted[:, None, 0], truth[None, :, 0]
    )  # (P, G)
    iou = np.zeros_like(intersection)
    np.divide(intersection, hull, out=iou, where=intersection > 0)
    return iou


# ----------------------------------------------------------------------------------------------- NLQ
def _nlq_ground_truth(ground_truth: Any) -> dict[tuple[str, str], Sequence[Any]]:
    """(clip_uid, annotation_uid) → that annotation's ``language_queries`` list (v1 ``nlq_*.json``)."""
    index: dict[tuple[str, str], Sequence[Any]] = {}
    videos = json_list("ground_truth['videos']", field("ground_truth", ground_truth, "videos"))
    for v, video in enumerate(videos):
        clips = json_list(f"videos[{v}]['clips']", field(f"videos[{v}]", video, "clips"))
        for c, clip in enumerate(clips):
            where = f"videos[{v}]['clips'][{c}]"
            clip_uid = field(where, clip, "clip_uid")
            annotations = json_list(f"{where}['annotations']", field(where, clip, "annotations"))
            for a, annotation in enumerate(annotations):
                at = f"{where}['annotations'][{a}]"
                queries = json_list(f"{at}['language_queries']", field(at, annotation, "language_queries"))
                # A repeated (clip, annotation) pair: the later one wins, as in the official dict.
                index[(clip_uid, field(at, annotation, "annotation_uid"))] = queries
    return index


def nlq_recall(
    predictions: Mapping[str, Any] | Sequence[Mapping[str, Any]],
    ground_truth: Mapping[str, Any],
    thresholds: Sequence[float] = (0.3, 0.5, 0.01),
    top_k: Sequence[int] = (1, 3, 5),
) -> dict[str, float]:
    """Ego4D NLQ Recall@K at IoU > θ and mIoU (fractions), as ``evaluate_ego4d_nlq.py`` computes them.

    ``predictions`` is the parsed challenge file ``{"results": [{"clip_uid", "annotation_uid",
    "query_idx", "predicted_times": [[start, end], ...]}, ...]}`` (clip seconds, best window first) or
    its ``results`` list; ``ground_truth`` is the parsed ``nlq_*.json`` (v1: ``videos`` → ``clips``
    (``clip_uid``) → ``annotations`` (``annotation_uid``) → ``language_queries`` with
    ``clip_start_sec`` / ``clip_end_sec``); ``query_idx`` indexes that annotation's ``language_queries``.

    Returns one key ``f"R@{k}_IoU>{θ:g}"`` per (k, θ), k outer, then ``"mIoU"``.

    * Hit at θ ⇔ IoU **strictly greater** than θ (IoU exactly 0.3 is a miss at 0.3).
    * Recall averages over prediction *records*: a query without a record is ignored (the official
      script prints "Evaluated X / Y"), and a duplicated record counts twice.
    * A record with fewer than K windows uses all of them. mIoU = mean IoU of each record's first window.
    * A window with end < start has IoU 0 (as in the official formula).
    * A record naming an unknown clip/annotation, or a ``query_idx`` outside that annotation's queries
      (negative indices included; the official script would wrap them), raises ``BenchError``; so do
      an empty ``predicted_times`` and an empty prediction list.
    """
    thresholds = [float(t) for t in thresholds]
    top_k = [int(k) for k in top_k]
    if not thresholds or not top_k or min(top_k) < 1:
        raise BenchError(f"nlq_recall: need thresholds and top_k values >= 1, got {thresholds}, {top_k}")
    if isinstance(predictions, Mapping):
        predictions = field("predictions", predictions, "results")
    records = json_list("predictions['results']", predictions)
    if not records:
        raise BenchError("predictions['results'] is empty: there is nothing to evaluate")
    index = _nlq_ground_truth(ground_truth)

    hits = np.zeros((len(top_k), len(thresholds)), dtype=np.int64)  # (K, Θ) hit counts
    first_iou = np.empty(len(records))  # (R,) IoU of each record's first window
    for r, record in enumerate(records):
        where = f"predictions['results'][{r}]"
        key = (field(where, record, "clip_uid"), field(where, record, "annotation_uid"))
        if key not in index:
            raise BenchError(
                f"{where}: clip_uid {key[0]!r} with annotation_uid {key[1]!r} is not in the ground truth; "
                "check that the predictions and the nlq_*.json file are for the same split"
            )
        queries = index[key]
        query_idx = field(where, record, "query_idx")
        if isinstance(query_idx, bool) or not isinstance(query_idx, (int, np.integer)):
            raise BenchError(f"{where}['query_idx']: expected an integer, got {query_idx!r}")
        if not 0 <= query_idx < len(queries):
            raise BenchError(
                f"{where}['query_idx'] = {query_idx} but annotation {key[1]!r} of clip {key[0]!r} has "
                f"{len(queries)} language queries (valid: 0..{len(queries) - 1})"
            )
        gt_where = f"ground truth of clip {key[0]!r}, annotation {key[1]!r}, query {query_idx}"
        query = json_object(gt_where, queries[query_idx])
        start = number(f"{gt_where}['clip_start_sec']", field(gt_where, query, "clip_start_sec"))
        end = number(f"{gt_where}['clip_end_sec']", field(gt_where, query, "clip_end_sec"))
        truth = np.array([[start, end]])  # (1, 2)
        times = field(where, record, "predicted_times")
        if isinstance(times, Sequence) and len(times) == 2 and not isinstance(times[0], Sequence):
            times = [times]  # a single bare [start, end] window, as the official code accepts
        times = json_list(f"{where}['predicted_times']", times)
        if not times:
            raise BenchError(f"{where}['predicted_times'] is empty; expected a ranked list of [start, end]")
        predicted = np.array([window(f"{where}['predicted_times'][{i}]", w) for i, w in enumerate(times)])
        iou = _interval_iou(predicted, truth)[:, 0]  # (P,)
        first_iou[r] = iou[0]
        for ki, k in enumerate(top_k):
            best = iou[:k].max()
            hits[ki] += [best > t for t in thresholds]
    result = {
        f"R@{k}_IoU>{t:g}": float(hits[ki, ti] / len(records))
        for ki, k in enumerate(top_k)
        for ti, t in enumerate(thresholds)
    }
    result["mIoU"] = float(first_iou.mean())
    return result


# ------------------------------------------------------------------------------------------------ MQ
MQ_RETRIEVAL_TIOUS = (0.3, 0.5, 0.7)
MQ_RETRIEVAL_RANKS = (1, 2, 3, 4, 5)


def _mq_ground_truth(ground_truth: Any, subset: str) -> dict[str, dict[Any, list[tuple[float, float]]]]:
    """clip uid → label → GT windows (file order) for the clips whose ``subset`` is a substring of ``subset``."""
    clips = json_object("ground_truth", ground_truth)
    selected: dict[str, dict[Any, list[tuple[float, float]]]] = {}
    for clip_key, clip in clips.items():
        where = f"ground_truth[{clip_key!r}]"
        clip_subset = field(where, clip, "subset")
        if not isinstance(clip_subset, str):
            raise BenchError(f"{where}['subset']: expected a string such as 'val', got {clip_subset!r}")
        if clip_subset not in subset:  # the official substring test: 'val' in 'validation'
            continue
        clip_id = clip.get("clip_id", clip_key)
        if clip_id != clip_key:
            raise BenchError(f"{where}['clip_id'] = {clip_id!r} differs from its key {clip_key!r}")
        by_label: dict[Any, list[tuple[float, float]]] = {}
        annotations = json_list(f"{where}['annotations']", field(where, clip, "annotations"))
        for a, annotation in enumerate(annotations):
            at = f"{where}['annotations'][{a}]"
            label = field(at, annotation, "label")
            start = number(f"{at}['start_time']", field(at, annotation, "start_time"))
            end = number(f"{at}['end_time']", field(at, annotation, "end_time"))
            by_label.setdefault(label, []).append((start, end))
        selected[clip_key] = by_label
    if not any(selected.values()):
        raise BenchError(
            f"ground_truth has no annotated clip whose 'subset' is a substring of {subset!r} "
            f"(subsets present: {sorted({str(c.get('subset')) for c in clips.values() if isinstance(c, Mapping)})})"
        )
    return selected


def _mq_predictions(predictions: Any) -> dict[str, list[tuple[Any, float, float, float]]]:
    """clip id → [(label, start, end, score)] in file order, from ``{"results": {clip: [...]}}``."""
    results = json_object("predictions['results']", field("predictions", predictions, "results"))
    parsed: dict[str, list[tuple[Any, float, float, float]]] = {}
    for clip_id, items in results.items():
        where = f"predictions['results'][{clip_id!r}]"
        rows = []
        for i, item in enumerate(json_list(where, items)):
            at = f"{where}[{i}]"
            start, end = window(f"{at}['segment']", field(at, item, "segment"))
            rows.append(
                (field(at, item, "label"), start, end, number(f"{at}['score']", field(at, item, "score")))
            )
        parsed[clip_id] = rows
    return parsed


def _interpolated_ap(tp: np.ndarray, fp: np.ndarray, n_positive: int) -> float:
    """VOC-2011 all-point interpolated AP from per-prediction TP/FP flags in ranked order (1-D)."""
    tp_cum = np.cumsum(tp)
    fp_cum = np.cumsum(fp)
    precision = np.concatenate([[0.0], tp_cum / (tp_cum + fp_cum), [0.0]])
    recall = np.concatenate([[0.0], tp_cum / n_positive, [1.0]])
    precision = np.maximum.accumulate(precision[::-1])[::-1]  # monotone envelope from the right
    steps = np.flatnonzero(recall[1:] != recall[:-1]) + 1
    return float(np.sum((recall[steps] - recall[steps - 1]) * precision[steps]))


def _class_ap(
    truth: dict[str, np.ndarray], preds: list[tuple[str, float, float, float]], thresholds: np.ndarray
) -> np.ndarray:
    """AP at every threshold for one class: truth = clip → (G, 2) windows; preds in file order."""
    if not preds:
        return np.zeros(len(thresholds))  # a class with no prediction has AP 0
    n_positive = sum(len(w) for w in truth.values())
    scores = np.array([p[3] for p in preds])
    # Descending score; equal scores keep file order (the official unstable sort leaves them arbitrary).
    order = np.argsort(-scores, kind="stable")
    locked = {clip: np.zeros((len(thresholds), len(w)), dtype=bool) for clip, w in truth.items()}
    tp = np.zeros((len(thresholds), len(preds)))  # (Θ, P) in ranked order
    for rank, p in enumerate(order):
        clip, start, end, _ = preds[p]
        if clip not in truth:
            continue  # no GT of this class in this clip (or clip outside the subset): FP at every θ
        tiou = _interval_iou(np.array([[start, end]]), truth[clip])[0]  # (G,)
        # Highest tIoU first; equal tIoUs keep GT file order.
        candidates = np.argsort(-tiou, kind="stable")
        for t, threshold in enumerate(thresholds):
            free = candidates[~locked[clip][t, candidates]]
            if free.size and tiou[free[0]] >= threshold:  # match needs tIoU >= θ
                tp[t, rank] = 1.0
                locked[clip][t, free[0]] = True
    return np.array([_interpolated_ap(tp[t], 1.0 - tp[t], n_positive) for t in range(len(thresholds))])


def mq_detection_map(
    ground_truth: Mapping[str, Any],
    predictions: Mapping[str, Any],
    subset: str = "validation",
    tiou_thresholds: Sequence[float] = (0.1, 0.2, 0.3, 0.4, 0.5),
) -> dict[str, float]:
    """Ego4D MQ detection mAP (fractions), ActivityNet-style as ``MQ/Evaluation/ego4d/eval_detection.py``.

    ``ground_truth`` is the parsed ``clip_annotations.json`` written by ``MQ/Convert_annotation.py``:
    a JSON object keyed by clip uid, each value ``{"video_id", "clip_id" (= the key), "parent_start_sec",
    "parent_end_sec", "parent_start_frm", "parent_end_frm", "v_duration", "subset": "train" | "val" |
    "test", "annotations": [{"label": str, "start_time": s, "end_time": s, ...}]}`` with times in clip
    seconds (the converter keeps each primary label dict as is, so annotations also carry
    ``video_start_time``, ``video_end_time``, ``video_start_frame``, ``video_end_frame``, ``primary``).
    Only the key, ``subset``, ``annotations[*].label/start_time/end_time`` and (retrieval) ``clip_id``
    are read; ``clip_id``, when present, must equal the key. ``predictions`` is the parsed official
    prediction file ``{"results": {clip_id: [{"label", "segment": [start, end], "score"}, ...]}}``
    (the official reader also demands ``version`` and ``external_data`` keys; they are not needed here).

    Returns ``{"mAP@0.1": …, …, "average_mAP": …}`` (keys ``f"mAP@{θ:g}"``).

    * Subset: a clip is evaluated iff its ``subset`` value is a substring of ``subset`` (official test
      ``v['subset'] in subset``, so ``"val"`` clips are selected by ``"validation"``).
    * Classes = the labels of the subset's GT instances; predictions with any other label are dropped.
      mAP@θ = mean of AP over those classes; a class with no prediction has AP 0. average_mAP = mean
      of mAP@θ over the thresholds.
    * Per class, predictions are ranked by descending score; each is matched to the highest-tIoU GT of
      its class in the same clip not yet matched at that θ; a match needs tIoU **≥** θ; otherwise it is
      a false positive, as is every prediction on a clip outside the subset or without GT of its class.
    * Ties: equal scores keep file order (clips in ``results`` order, then list order), and equal tIoUs
      keep GT file order, both earlier first. The official code breaks both with numpy's unstable
      ``argsort()[::-1]``, whose order among equals depends on the numpy version and CPU (numpy < 2 on
      at most 16 items gives later-first), so official results are only defined up to such ties.
    * AP = VOC-2011 all-point interpolated precision/recall area (``MQ/Evaluation/utils.py``).
    """
    thresholds = np.array([float(t) for t in tiou_thresholds])
    if thresholds.size == 0:
        raise BenchError("mq_detection_map: tiou_thresholds is empty")
    truth = _mq_ground_truth(ground_truth, subset)
    by_class: dict[Any, dict[str, np.ndarray]] = {}
    for clip_id, labels in truth.items():
        for label, windows in labels.items():
            by_class.setdefault(label, {})[clip_id] = np.array(windows)  # (G, 2)
    class_preds: dict[Any, list[tuple[str, float, float, float]]] = {label: [] for label in by_class}
    for clip_id, rows in _mq_predictions(predictions).items():
        for label, start, end, score in rows:
            if label in class_preds:  # labels absent from the GT subset are dropped
                class_preds[label].append((clip_id, start, end, score))
    ap = np.stack([_class_ap(by_class[c], class_preds[c], thresholds) for c in by_class], axis=1)  # (Θ, C)
    per_threshold = ap.mean(axis=1)  # (Θ,)
    result = {f"mAP@{t:g}": float(m) for t, m in zip(thresholds, per_threshold)}
    result["average_mAP"] = float(per_threshold.mean())
    return result


def mq_retrieval_recall(
    ground_truth: Mapping[str, Any], predictions: Mapping[str, Any], subset: str = "validation"
) -> dict[str, float]:
    """Ego4D MQ retrieval recall ``R{r}@{t}`` (fractions), as ``get_retrieval_performance.py``.

    Same inputs and subset rule as :func:`mq_detection_map`. For every clip of the subset and every
    label with n GT instances in it, a GT instance counts as found at (r, t) if any of the first r·n
    predictions of that label in that clip **in file order (not re-sorted by score)** has IoU
    **strictly greater** than t with it; a label with no prediction in the clip finds nothing. The
    recall is micro-averaged over all GT instances of the subset. r ∈ 1..5 and t ∈ {0.3, 0.5, 0.7}
    are fixed; keys ``f"R{r}@{t:g}"``, t outer. A subset clip missing from ``predictions["results"]``
    raises ``BenchError`` (the official script raises ``KeyError``); an empty list is allowed.
    """
    truth = _mq_ground_truth(ground_truth, subset)
    preds = _mq_predictions(predictions)
    found = np.zeros((len(MQ_RETRIEVAL_TIOUS), len(MQ_RETRIEVAL_RANKS)), dtype=np.int64)  # (T, R)
    total = 0
    for clip_id, labels in truth.items():
        if clip_id not in preds:
            raise BenchError(
                f"predictions['results'] has no entry for clip {clip_id!r} of the {subset!r} subset; "
                "the retrieval evaluation needs a (possibly empty) prediction list for every subset clip"
            )
        for label, windows in labels.items():
            total += len(windows)
            mine = np.array([(s, e) for lab, s, e, _ in preds[clip_id] if lab == label]).reshape(-1, 2)
            if not len(mine):
                continue
            iou = _interval_iou(mine, np.array(windows))  # (P, n) in file order
            for ti, t in enumerate(MQ_RETRIEVAL_TIOUS):
                for ri, r in enumerate(MQ_RETRIEVAL_RANKS):
                    found[ti, ri] += int((iou[: r * len(windows)] > t).any(axis=0).sum())
    return {
        f"R{r}@{t:g}": float(found[ti, ri] / total)
        for ti, t in enumerate(MQ_RETRIEVAL_TIOUS)
        for ri, r in enumerate(MQ_RETRIEVAL_RANKS)
    }
