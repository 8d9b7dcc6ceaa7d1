"""Tests of ``benchmarks.metrics`` on hand-computed cases (arithmetic in the comments) and, for EK100-MIR,
against the per-query loop reference of ``scripts/bench_ek100_metrics.py``."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest

from benchmarks import _metrics_ek100
from benchmarks.metrics import (
    egomcq_accuracy,
    ek100_mir_metrics,
    ek100_mir_per_query,
    mean_class_accuracy,
    mq_detection_map,
    mq_retrieval_recall,
    nlq_recall,
    topk_accuracy,
)
from henasy.core.errors import BenchError


def _bench_script():
    path = Path(__file__).resolve().parents[1] / "scripts" / "bench_ek100_metrics.py"
    spec = importlib.util.spec_from_file_location("bench_ek100_metrics", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --------------------------------------------------------------------------------------------- EgoMCQ
def test_egomcq_reports_by_type_value_and_breaks_ties_to_first_option():
    similarity = [
        [0.1, 0.9, 0.2, 0.3, 0.4],  # type 1, answer 1: argmax 1 → correct
        [0.5, 0.5, 0.0, 0.0, 0.0],  # type 1, answer 1: tie 0/1 → first maximal option 0 → wrong
        [0.5, 0.5, 0.0, 0.0, 0.0],  # type 2, answer 0: tie → 0 → correct
        [0.0, 0.0, 0.0, 0.0, 1.0],  # type 2, answer 2: argmax 4 → wrong
        [0.0, 0.0, 1.0, 0.0, 0.0],  # type 2, answer 2: correct
    ]
    result = egomcq_accuracy(similarity, [1, 1, 0, 2, 2], [1, 1, 2, 2, 2])
    assert result["inter"] == pytest.approx(100 * 1 / 2)  # type 1 = inter: 1 of 2
    assert result["intra"] == pytest.approx(100 * 2 / 3)  # type 2 = intra: 2 of 3


def test_egomcq_type_without_items_is_nan():
    result = egomcq_accuracy([[1, 0, 0, 0, 0], [0, 1, 0, 0, 0]], [0, 0], [2, 2])
    assert math.isnan(result["inter"])
    assert result["intra"] == pytest.approx(50.0)


@pytest.mark.parametrize(
    ("answer", "types", "message"),
    [([0, 5], [1, 2], "answer"), ([0, 1], [1, 3], "types"), ([0], [1], "answer")],
)
def test_egomcq_rejects_bad_input(answer, types, message):
    with pytest.raises(BenchError, match=message):
        egomcq_accuracy(np.eye(5)[:2], answer, types)


# ------------------------------------------------------------------------------------------ EK100-MIR
# Rows = videos (V→T queries), columns = sentences.
EK_SIM = np.array([[0.9, 0.5, 0.7], [0.2, 0.8, 0.8]])
EK_REL = np.array([[0.5, 1.0, 1.0], [0.5, 0.0, 1.0]])
L3 = math.log2(3)
# V→T row 0: rank by score → cols 0, 2, 1 → ranked rel [0.5, 1, 1], cumsum [0.5, 1.5, 2.5]
#   AP = (1.5/2 + 2.5/3) / 2; K = 3: DCG = 0.5/1 + 1/log2 3 + 1/2, IDCG (rel sorted 1, 1, 0.5) = 1 + 1/log2 3 + 0.5/2
AP_V0, NDCG_V0 = (1.5 / 2 + 2.5 / 3) / 2, (0.5 + 1 / L3 + 0.5) / (1 + 1 / L3 + 0.25)
# V→T row 1: cols 1 and 2 tie at 0.8 → lower index first → order 1, 2, 0 → ranked rel [0, 1, 0.5]
#   AP = (cumsum 1 at rank 2) / 2 = 0.5 (the other tie order would give 1.0); K = 2: DCG = 0 + 1/log2 3,
#   IDCG (1, 0.5) = 1 + 0.5/log2 3
AP_V1, NDCG_V1 = 0.5, (1 / L3) / (1 + 0.5 / L3)
# T→V col 0: rel [0.5, 0.5] has no rel == 1 → AP NaN; K = 2 and DCG = IDCG → nDCG 1
# T→V col 1: scores [0.5, 0.8] → videos 1, 0 → ranked rel [0, 1] → AP = 1/2; K = 1: DCG = 0 → nDCG 0
# T→V col 2: scores [0.7, 0.8] → ranked rel [1, 1] → AP = (1/1 + 2/2)/2 = 1; nDCG = 1
AP_T, NDCG_T = [math.nan, 0.5, 1.0], [1.0, 0.0, 1.0]


def test_ek100_hand_computed_per_query():
    per_query = ek100_mir_per_query(EK_SIM, EK_REL)
    np.testing.assert_allclose(per_query["AP_v2t"], [AP_V0, AP_V1])
    np.testing.assert_allclose(per_query["nDCG_v2t"], [NDCG_V0, NDCG_V1])
    np.testing.assert_allclose(per_query["AP_t2v"], AP_T)  # NaN compared as equal
    np.testing.assert_allclose(per_query["nDCG_t2v"], NDCG_T)


def test_ek100_nan_propagates_by_default_and_can_be_omitted():
    official = ek100_mir_metrics(EK_SIM, EK_REL)
    assert official["mAP_v2t"] == pytest.approx((AP_V0 + AP_V1) / 2)
    assert math.isnan(official["mAP_t2v"]) and math.isnan(official["mAP_avg"])
    ndcg_v2t, ndcg_t2v = (NDCG_V0 + NDCG_V1) / 2, sum(NDCG_T) / 3
    assert official["nDCG_v2t"] == pytest.approx(ndcg_v2t)
    assert official["nDCG_t2v"] == pytest.approx(ndcg_t2v)
    assert official["nDCG_avg"] == pytest.approx((ndcg_v2t + ndcg_t2v) / 2)
    omitted = ek100_mir_metrics(EK_SIM, EK_REL, nan_policy="omit")
    assert omitted["mAP_t2v"] == pytest.approx((0.5 + 1.0) / 2)  # the NaN column is skipped
    assert omitted["mAP_avg"] == pytest.approx(((AP_V0 + AP_V1) / 2 + 0.75) / 2)
    assert list(official) == ["mAP_v2t", "mAP_t2v", "mAP_avg", "nDCG_v2t", "nDCG_t2v", "nDCG_avg"]


def test_ek100_relevant_means_exactly_one_and_zero_rows_give_nan_ndcg():
    similarity = np.array([[0.9, 0.1], [0.3, 0.4]], dtype=np.float32)
    relevancy = np.array([[0.999, 1.0], [0.0, 0.0]])
    per_query = ek100_mir_per_query(similarity, relevancy)
    # Row 0: ranked rel [0.999, 1]; only the second is relevant: AP = (0.999 + 1) / 2.
    assert per_query["AP_v2t"][0] == pytest.approx(1.999 / 2)
    # Row 1: no rel == 1 → AP 0/0 = NaN; no rel > 0 → K = 0, DCG = IDCG = 0 → nDCG NaN.
    assert math.isnan(per_query["AP_v2t"][1]) and math.isnan(per_query["nDCG_v2t"][1])


def test_ek100_vectorised_matches_loop_reference_with_ties_nan_rows_and_blocks(monkeypatch):
    script = _bench_script()
    rng = np.random.default_rng(0)
    # 23 videos < 40 sentences: some sentences have no relevancy-1 video (NaN T→V AP rows).
    similarity, relevancy = script.jpose_like_problem(23, 40, rng, n_verbs=4, n_nouns=6, dim=8)
    similarity = np.round(similarity, 1)  # many ties
    assert np.isnan(script.loop_reference_per_query(similarity, relevancy)["AP_t2v"]).any()
    for block_elements in (37, 1 << 18):  # uneven blocks of one or more queries, and one block
        monkeypatch.setattr(_metrics_ek100, "_BLOCK_ELEMENTS", block_elements)
        fast = ek100_mir_per_query(similarity, relevancy)
        slow = script.loop_reference_per_query(similarity, relevancy)
        for key in slow:
            np.testing.assert_allclose(fast[key], slow[key], rtol=1e-12, atol=0, err_msg=key)
    similarity, relevancy = script.jpose_like_problem(60, 25, rng, n_verbs=5, n_nouns=8, dim=8)
    similarity = np.round(similarity.astype(np.float64), 2)
    fast, slow = (
        ek100_mir_metrics(similarity, relevancy),
        script.loop_reference_metrics(similarity, relevancy),
    )
    assert not any(math.isnan(v) for v in fast.values())
    for key in slow:
        assert fast[key] == pytest.approx(slow[key], rel=1e-12), key


def test_ek100_descending_order_equals_stable_argsort():
    rng = np.random.default_rng(1)
    scores = rng.integers(0, 4, size=(30, 50)).astype(np.float32)  # mostly ties
    scores[0, :2] = [-0.0, 0.0]  # equal under ==, so a tie
    expected = np.argsort(-scores, axis=1, kind="stable")
    np.testing.assert_array_equal(_metrics_ek100._descending_order(scores), expected)


@pytest.mark.parametrize(
    ("similarity", "relevancy", "kwargs", "message"),
    [
        (np.zeros((2, 3)), np.zeros((3, 2)), {}, "shape"),
        (np.array([[0.1, np.nan]]), np.ones((1, 2)), {}, "non-finite"),
        (np.zeros((2, 2)), np.ones((2, 2)), {"nan_policy": "skip"}, "nan_policy"),
    ],
)
def test_ek100_rejects_bad_input(similarity, relevancy, kwargs, message):
    with pytest.raises(BenchError, match=message):
        ek100_mir_metrics(similarity, relevancy, **kwargs)


# ------------------------------------------------------------------------------------- classification
def test_topk_accuracy_with_ties_ranked_by_lower_class_index():
    logits = np.array(
        [
            [0.1, 0.5, 0.5, 0.2],  # target 2 ties with class 1, which ranks first → rank 1
            [0.1, 0.5, 0.5, 0.2],  # target 1 → rank 0
            [0.9, 0.1, 0.3, 0.2],  # target 3: 0.9 and 0.3 above → rank 2
            [0.0, 0.0, 0.0, 0.0],  # target 3: three tied classes with lower index → rank 3
        ],
        dtype=np.float32,
    )
    result = topk_accuracy(logits, [2, 1, 3, 3], ks=(1, 2, 3, 4))
    # correct at k ⇔ rank < k: ranks [1, 0, 2, 3]
    assert result == pytest.approx({"top1": 25.0, "top2": 50.0, "top3": 75.0, "top4": 100.0})
    assert list(topk_accuracy(logits, [0, 0, 0, 0], ks=(1,))) == ["top1"]


def test_topk_accuracy_rejects_k_beyond_classes_and_bad_targets():
    with pytest.raises(BenchError, match="k must be"):
        topk_accuracy(np.zeros((2, 3)), [0, 1])  # default ks=(1, 5) but only 3 classes
    with pytest.raises(BenchError, match="target"):
        topk_accuracy(np.zeros((2, 3)), [0, 3], ks=(1,))


def test_mean_class_accuracy_uses_union_of_targets_and_predictions():
    target = np.array([0, 0, 1, 1, 2])
    predicted = np.array([0, 1, 1, 1, 3])
    logits = np.eye(5)[predicted]  # 5 classes; class 4 is neither a target nor predicted
    # classes {0, 1, 2, 3}: recall 1/2, 2/2, 0/1, and class 3 (predicted, support 0) → 0; class 4 left out
    assert mean_class_accuracy(logits, target) == pytest.approx(100 * (0.5 + 1 + 0 + 0) / 4)


def test_mean_class_accuracy_argmax_tie_goes_to_first_class():
    logits = np.array([[0.5, 0.5, 0.0], [0.0, 0.5, 0.5]])  # predictions 0 and 1
    # targets [1, 1]: classes {0, 1}: class 0 predicted with support 0 → 0; class 1 recall 1/2
    assert mean_class_accuracy(logits, [1, 1]) == pytest.approx(100 * (0 + 0.5) / 2)


# ----------------------------------------------------------------------------------------------- NLQ
NLQ_GT = {
    "videos": [
        {
            "video_uid": "v1",
            "clips": [
                {
                    "clip_uid": "c1",
                    "annotations": [
                        {
                            "annotation_uid": "a1",
                            "language_queries": [
                                {"clip_start_sec": 10.0, "clip_end_sec": 20.0, "query": "q0"},
                                {"clip_start_sec": 0.0, "clip_end_sec": 5.0, "query": "q1"},
                            ],
                        }
                    ],
                },
                {
                    "clip_uid": "c2",
                    "annotations": [
                        {
                            "annotation_uid": "a2",
                            "language_queries": [{"clip_start_sec": 3, "clip_end_sec": 7}],
                        }
                    ],
                },
            ],
        }
    ]
}


def _nlq_record(clip, annotation, query_idx, times):
    return {"clip_uid": clip, "annotation_uid": annotation, "query_idx": query_idx, "predicted_times": times}


def test_nlq_recall_strict_threshold_few_windows_and_duplicates():
    records = [
        # GT [10, 20]: IoU [3/10 = 0.3 exactly, 8/10, 0] → a miss at 0.3 for R@1 (strict >)
        _nlq_record("c1", "a1", 0, [[10, 13], [12, 20], [0, 1]]),
        # GT [0, 5]: one window only, IoU 1 → used for every K
        _nlq_record("c1", "a1", 1, [[0, 5]]),
        _nlq_record("c1", "a1", 1, [[0, 5]]),  # duplicated record → counted twice
    ]  # clip c2 has no record → ignored (denominator 3, not 4)
    result = nlq_recall({"results": records}, NLQ_GT)
    expected = {
        "R@1_IoU>0.3": 2 / 3,  # record 1 misses (0.3 is not > 0.3)
        "R@1_IoU>0.5": 2 / 3,
        "R@1_IoU>0.01": 3 / 3,
        "R@3_IoU>0.3": 3 / 3,  # record 1 hits with its second window (0.8)
        "R@3_IoU>0.5": 3 / 3,
        "R@3_IoU>0.01": 3 / 3,
        "R@5_IoU>0.3": 3 / 3,
        "R@5_IoU>0.5": 3 / 3,
        "R@5_IoU>0.01": 3 / 3,
        "mIoU": (0.3 + 1 + 1) / 3,  # top-1 IoU only
    }
    assert result == pytest.approx(expected)
    assert list(result) == list(expected)
    assert nlq_recall(records, NLQ_GT) == result  # the bare results list is accepted too


def test_nlq_recall_iou_uses_hull_union():
    # GT [3, 7], prediction [5, 9]: intersection 2, union max(e) − min(s) = 6 → IoU 1/3
    result = nlq_recall([_nlq_record("c2", "a2", 0, [[5, 9]])], NLQ_GT, thresholds=(0.3, 0.34), top_k=(1,))
    assert result == pytest.approx({"R@1_IoU>0.3": 1.0, "R@1_IoU>0.34": 0.0, "mIoU": 1 / 3})


@pytest.mark.parametrize(
    ("record", "message"),
    [
        (_nlq_record("nope", "a1", 0, [[0, 1]]), "clip_uid 'nope'"),
        (_nlq_record("c1", "a2", 0, [[0, 1]]), "annotation_uid 'a2'"),
        (_nlq_record("c1", "a1", 2, [[0, 1]]), "has 2 language queries"),
        (_nlq_record("c1", "a1", -1, [[0, 1]]), "has 2 language queries"),
        (_nlq_record("c1", "a1", 0, []), "empty"),
        ({"clip_uid": "c1", "annotation_uid": "a1", "predicted_times": [[0, 1]]}, "query_idx"),
    ],
)
def test_nlq_recall_rejects_unknown_or_malformed_records(record, message):
    with pytest.raises(BenchError, match=message):
        nlq_recall({"results": [record]}, NLQ_GT)


# ------------------------------------------------------------------------------------------------ MQ
def _gt_clip(clip_id, subset, annotations):
    return {
        "video_id": "v",
        "clip_id": clip_id,
        "subset": subset,
        "annotations": [{"label": label, "start_time": s, "end_time": e} for label, s, e in annotations],
    }


MQ_DET_GT = {
    "A": _gt_clip("A", "val", [("x", 0, 10), ("x", 20, 30), ("y", 5, 15)]),
    "B": _gt_clip("B", "val", [("x", 0, 10), ("w", 50, 60)]),  # class w: no prediction at all → AP 0
    "C": _gt_clip("C", "train", [("z", 0, 10)]),
}
MQ_DET_PRED = {
    "results": {
        "A": [
            {"label": "x", "segment": [0, 10], "score": 0.5},  # p1: duplicate on x[0, 10]
            {"label": "x", "segment": [20, 24], "score": 0.9},  # p2: tIoU 4/10 = 0.4 with x[20, 30]
            {"label": "x", "segment": [0, 10], "score": 0.8},  # p3: tIoU 1 with x[0, 10]
            {"label": "y", "segment": [40, 50], "score": 0.3},  # p4: tIoU 0 with y
            {"label": "z", "segment": [0, 10], "score": 0.95},  # p5: z is not a 'val' class → dropped
        ],
        "B": [{"label": "x", "segment": [0, 5], "score": 0.7}],  # p6: tIoU 0.5 with B's x
        "C": [{"label": "z", "segment": [0, 10], "score": 0.1}],  # p8: tIoU 1 (only in 'train')
        "D": [{"label": "x", "segment": [0, 10], "score": 0.85}],  # p7: clip without GT → FP
    }
}


def test_mq_detection_map_hand_computed():
    result = mq_detection_map(MQ_DET_GT, MQ_DET_PRED, subset="validation")  # 'val' in 'validation'
    # Class x (3 GT), ranked by score: p2 .9, p7 .85, p3 .8, p6 .7, p1 .5 (not file order).
    # θ ≤ 0.4: TP FP TP TP FP (p2 tIoU 0.4 ≥ 0.4; p6 0.5; p1's GT already taken)
    #   precision [1, 1/2, 2/3, 3/4, 3/5], recall [1/3, 1/3, 2/3, 1, 1]
    #   interpolated AP = 1/3·1 + 1/3·max(2/3, 3/4, 3/5) + 1/3·3/4 = 2.5/3
    # θ = 0.5: FP FP TP TP FP (p2 0.4 < 0.5, p6 0.5 ≥ 0.5): precision [0, 0, 1/3, 1/2, 2/5],
    #   recall [0, 0, 1/3, 2/3, 2/3] → AP = 1/3·1/2 + 1/3·1/2 = 1/3
    # Class y (p4 FP) → AP 0; class w (no prediction) → AP 0; mAP@θ = AP_x / 3.
    low, high = 2.5 / 3 / 3, 1 / 3 / 3
    expected = {"mAP@0.1": low, "mAP@0.2": low, "mAP@0.3": low, "mAP@0.4": low, "mAP@0.5": high}
    expected["average_mAP"] = (4 * low + high) / 5
    assert result == pytest.approx(expected)
    assert list(result) == list(expected)


def test_mq_detection_map_predictions_outside_subset_are_false_positives():
    # subset 'training' selects 'train' (substring): class z only; p5 (clip A, not in the subset) ranks
    # first and is a FP, p8 is a TP: precision [0, 1/2], recall [0, 1] → AP = 1/2 at every θ.
    result = mq_detection_map(MQ_DET_GT, MQ_DET_PRED, subset="training", tiou_thresholds=(0.5, 0.95))
    assert result == pytest.approx({"mAP@0.5": 0.5, "mAP@0.95": 0.5, "average_mAP": 0.5})


def test_mq_detection_map_equal_scores_keep_file_order():
    gt = {"A": _gt_clip("A", "val", [("x", 0, 10)])}
    pred = {
        "results": {
            "A": [
                {"label": "x", "segment": [50, 60], "score": 0.5},  # FP, first in the file → ranked first
                {"label": "x", "segment": [0, 10], "score": 0.5},  # TP, same score
            ]
        }
    }
    # ranked FP, TP: precision [0, 1/2], recall [0, 1] → AP = 1/2 (the reverse order would give 1)
    assert mq_detection_map(gt, pred, tiou_thresholds=(0.5,))["mAP@0.5"] == pytest.approx(0.5)


MQ_RET_GT = {
    "A": _gt_clip("A", "val", [("x", 0, 10), ("x", 20, 30), ("y", 40, 50)]),
    "B": _gt_clip("B", "val", [("x", 0, 10)]),
    "C": _gt_clip("C", "train", [("x", 0, 10)]),  # not in the subset: may be missing from predictions
}
MQ_RET_PRED = {
    "results": {
        "A": [
            {"label": "x", "segment": [100, 110], "score": 0.9},  # q1: misses both
            {"label": "x", "segment": [0, 10], "score": 0.1},  # q2: IoU 1 with x[0, 10]
            {"label": "x", "segment": [20, 26], "score": 0.8},  # q3: IoU 0.6 with x[20, 30]
            {"label": "x", "segment": [20, 30], "score": 0.2},  # q4: IoU 1 with x[20, 30]
            {"label": "y", "segment": [40, 47], "score": 0.5},  # IoU 7/10 = 0.7 exactly
        ],
        "B": [],  # B's x is never found
    }
}


def test_mq_retrieval_recall_uses_file_order_and_strict_threshold():
    result = mq_retrieval_recall(MQ_RET_GT, MQ_RET_PRED)
    # 4 GT instances: A-x ×2, A-y, B-x.
    # A-x, n = 2, r = 1 → first 2 in file order (q1, q2): x[0, 10] found at every t, x[20, 30] not
    #   (by score the first 2 would be q1, q3 and find x[20, 30] at 0.3/0.5 instead).
    # A-x, r ≥ 2 → first 4 (all): both found at every t.
    # A-y: IoU 0.7 → found at 0.3 and 0.5, not at 0.7 (strict >). B-x: never.
    expected = {}
    for t, a_y in ((0.3, 1), (0.5, 1), (0.7, 0)):
        for r in range(1, 6):
            a_x = 1 if r == 1 else 2
            expected[f"R{r}@{t:g}"] = (a_x + a_y) / 4
    assert result == pytest.approx(expected)
    assert list(result) == list(expected)


def test_mq_retrieval_recall_missing_subset_clip_is_an_error():
    predictions = {"results": {"A": MQ_RET_PRED["results"]["A"]}}
    with pytest.raises(BenchError, match="no entry for clip 'B'"):
        mq_retrieval_recall(MQ_RET_GT, predictions)


@pytest.mark.parametrize(
    ("ground_truth", "predictions", "message"),
    [
        ({"A": {"annotations": []}}, {"results": {}}, "subset"),
        ({"A": _gt_clip("A", "train", [("x", 0, 1)])}, {"results": {}}, "no annotated clip"),
        ({"A": _gt_clip("A", "val", [("x", 0, 1)])}, {"A": []}, "results"),
        (
            {"A": _gt_clip("A", "val", [("x", 0, 1)])},
            {"results": {"A": [{"label": "x", "segment": [0], "score": 1}]}},
            "segment",
        ),
        ({"A": _gt_clip("B", "val", [("x", 0, 1)])}, {"results": {"A": []}}, "clip_id"),
    ],
)
def test_mq_metrics_reject_malformed_files(ground_truth, predictions, message):
    for metric in (mq_detection_map, mq_retrieval_recall):
        with pytest.raises(BenchError, match=message):
            metric(ground_truth, predictions)
