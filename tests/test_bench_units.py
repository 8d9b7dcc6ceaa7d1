"""Hand-computed cases for the protocol details that decide published numbers (no video decoding).

EK100-CLS class construction, EGTEA view sampling and max-over-views, the sliding-window feature grid, the
VSLNet span decoding, the detector's assignment / NMS / focal loss, and the grounding mask rules.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from benchmarks.context import Option, resolve_options
from benchmarks.egtea import pool_views, view_frame_ids
from benchmarks.ek100_cls import build_action_classes, class_embeddings
from benchmarks.features import WindowSpec, resample_positions
from benchmarks.grounding import binarize, gt_masks, query_iou
from benchmarks.heads.temporal_detection import (
    assign_targets,
    decode,
    detection_loss,
    level_ranges,
    nms_1d,
    segment_iou,
    sigmoid_focal_loss,
)
from benchmarks.heads.vslnet import (
    ContextQueryAttention,
    highlight_labels,
    seconds_to_span,
    span_loss,
    span_to_seconds,
    top_spans,
)
from benchmarks.record import jsonable
from henasy.core.errors import BenchError


# ------------------------------------------------------------------------------------------- EK100-CLS
def test_ek100_cls_classes_are_pairs_sorted_as_strings_with_unique_narrations() -> None:
    rows = [
        (2, 1, "cut onion"),
        (10, 3, "wash pan"),
        (2, 1, "cut onion"),  # duplicate narration: counted once
        (2, 1, "slice onion"),
        (10, 3, "rinse pan"),
        (9, 0, "open tap"),
    ]
    classes = build_action_classes(rows)
    assert classes.keys == ["10:3", "2:1", "9:0"]  # string order: "10:3" < "2:1" < "9:0"
    assert classes.texts == [["wash pan", "rinse pan"], ["cut onion", "slice onion"], ["open tap"]]


def test_ek100_cls_class_embedding_is_renormalised_mean_of_normalised_texts() -> None:
    vectors = {"a": [3.0, 0.0], "b": [0.0, 1.0], "c": [1.0, 1.0]}
    classes = build_action_classes([(0, 0, "a"), (0, 0, "b"), (1, 0, "c")])
    seen: list[str] = []

    def embed(texts: list[str]) -> np.ndarray:
        seen.extend(texts)
        return np.array([vectors[t.split()[-1]] for t in texts])

    weights = class_embeddings(classes, embed, ("{}",))
    # class "0:0": mean of (1, 0) and (0, 1) = (0.5, 0.5) → (1/√2, 1/√2); the raw (3, 0) would tilt it.
    np.testing.assert_allclose(weights[0], [1 / math.sqrt(2), 1 / math.sqrt(2)], atol=1e-6)
    np.testing.assert_allclose(weights[1], [1 / math.sqrt(2), 1 / math.sqrt(2)], atol=1e-6)
    seen.clear()
    class_embeddings(classes, embed, ("#C C {}", "#C {}"))
    assert seen[:2] == ["#C C a", "#C a"]  # every narration × every template


# ----------------------------------------------------------------------------------------------- EGTEA
def test_egtea_views_start_on_linspace_and_short_videos_are_padded() -> None:
    views = view_frame_ids(100, clip_length=4, stride=2, num_clips=3)
    assert [v[0] for v in views] == [0, 46, 92]  # linspace(0, 100 - 8, 3) as int
    assert views[1] == [46, 48, 50, 52]
    short = view_frame_ids(5, clip_length=4, stride=2, num_clips=2)
    assert short == [[0, 2, 4, 6], [0, 2, 4, 6]]  # frame 6 ≥ 5: a zero frame, repeated per clip


def test_egtea_max_over_views_differs_from_mean() -> None:
    logits = np.array([[[0.9, 0.1, 0.5], [0.0, 0.8, 0.6]]])  # (1 clip, 2 views, 3 classes)
    assert pool_views(logits, "max").argmax() == 0  # max: [0.9, 0.8, 0.6]
    assert pool_views(logits, "mean").argmax() == 2  # mean: [0.45, 0.45, 0.55]


# -------------------------------------------------------------------------------------------- features
def test_window_grid_centres_one_window_per_bin() -> None:
    spec = WindowSpec(window_sec=0.5, stride_sec=1.0)
    assert spec.num_positions(4.0) == 4 and spec.num_positions(4.1) == 5 and spec.num_positions(0.0) == 1
    windows = spec.windows(10.0, 14.0)
    np.testing.assert_allclose(windows, [[10.25, 10.75], [11.25, 11.75], [12.25, 12.75], [13.25, 13.75]])
    assert WindowSpec(2.0, 1.0).windows(0.0, 2.0)[0] == (0.0, 1.5)  # clipped at the video start


def test_resample_positions_pools_down_and_interpolates_up() -> None:
    x = np.arange(8, dtype=np.float32).reshape(4, 2)  # rows (0,1) (2,3) (4,5) (6,7)
    np.testing.assert_allclose(resample_positions(x, 2), [[1, 2], [5, 6]])
    up = resample_positions(x[:2], 4)
    np.testing.assert_allclose(up[[0, -1]], [[0, 1], [2, 3]])  # ends kept, middle interpolated
    assert resample_positions(x, 4) is x


# ---------------------------------------------------------------------------------------------- VSLNet
def test_top_spans_uses_the_upper_triangle_of_the_start_end_product() -> None:
    p_start = torch.tensor([[0.1, 0.2, 0.7]])
    p_end = torch.tensor([[0.5, 0.4, 0.1]])
    spans = top_spans(p_start.log(), p_end.log(), k=5)[0].tolist()
    # triu products: (1,1)=.08 (2,2)=.07 (0,0)=.05 (0,1)=.04 (1,2)=.02; (2,0)=.35 is below the diagonal
    assert spans == [[1, 1], [2, 2], [0, 0], [0, 1], [1, 2]]


def test_span_time_mapping_round_trips_through_bins() -> None:
    assert seconds_to_span(3.0, 7.5, num_positions=10, duration=20.0) == (1, 3)
    assert span_to_seconds(torch.tensor([[1, 3]]), 10, 20.0) == [[2.0, 8.0]]
    assert seconds_to_span(19.9, 25.0, num_positions=10, duration=20.0) == (9, 9)  # clamped to the clip


def test_highlight_labels_extend_the_span_by_a_tenth_each_side() -> None:
    labels = highlight_labels(torch.tensor([10]), torch.tensor([19]), torch.tensor([25]), 30)[0]
    assert labels.nonzero().flatten().tolist() == list(range(9, 21))  # 10..19 ± 1.0, clipped to length 25


def test_span_loss_hand_value() -> None:
    zeros = torch.zeros(1, 2)
    out = {"start": zeros, "end": zeros, "highlight": zeros}
    loss = span_loss(out, torch.tensor([0]), torch.tensor([1]), torch.ones(1, 2, dtype=torch.bool))
    assert loss.item() == pytest.approx(7 * math.log(2))  # CE ln2 + CE ln2 + 5 · mean BCE ln2


def test_context_query_attention_with_one_query_token_attends_to_it() -> None:
    torch.manual_seed(0)
    cqa = ContextQueryAttention(4)
    c, q = torch.randn(1, 5, 4), torch.randn(1, 1, 4)
    captured = {}
    cqa.out.register_forward_hook(lambda m, i, o: captured.setdefault("x", i[0]))
    cqa(c, q, torch.ones(1, 5, dtype=torch.bool), torch.ones(1, 1, dtype=torch.bool))
    a = captured["x"][..., 4:8]  # the C→Q attention block of [c, a, c⊙a, c⊙b]
    torch.testing.assert_close(a, q.expand(1, 5, 4))


# ------------------------------------------------------------------------------------------- detection
def test_level_ranges_grow_by_four() -> None:
    assert level_ranges(3) == [(0.0, 8.0), (8.0, 32.0), (32.0, math.inf)]


def test_assign_targets_puts_segments_on_their_level() -> None:
    segments = np.array([[2.0, 6.0], [0.0, 16.0]])
    targets = assign_targets(segments, np.array([1, 0]), [16, 8, 4], num_classes=2)
    cls0, reg0, pos0 = targets[0]
    assert pos0.nonzero().flatten().tolist() == [2, 3, 4, 5]  # centres 2.5 .. 5.5 inside [2, 6]
    assert cls0[pos0].argmax(1).tolist() == [1, 1, 1, 1] and reg0[2].tolist() == [2.0, 6.0]
    cls1, reg1, pos1 = targets[1]
    assert pos1.all() and cls1[:, 0].all() and reg1[0].tolist() == [0.0, 16.0]  # length 16 ∈ [8, 32)
    assert not targets[2][2].any()


def test_detection_loss_hand_value() -> None:
    targets = [assign_targets(np.array([[0.0, 1.0]]), np.array([0]), [2], num_classes=1)]
    logits = torch.zeros(1, 2, 1)  # p = 0.5 everywhere
    distances = torch.tensor([[[0.5, 0.5], [0.3, 0.3]]])  # position 0 (centre 0.5) decodes exactly [0, 1]
    loss = detection_loss([(logits, distances)], targets)
    # focal: positive 0.25·0.25·ln2 + negative 0.75·0.25·ln2; tIoU loss 0; one positive
    assert loss.item() == pytest.approx(0.25 * math.log(2))


def test_decode_maps_distances_to_segments_and_applies_nms() -> None:
    logits = torch.tensor([[[4.0], [3.0], [-9.0]]])  # (1, T=3, C=1)
    distances = torch.tensor([[[0.5, 1.5], [1.5, 0.5], [0.5, 0.5]]])  # both first two decode [0, 2]
    (found,) = decode([(logits, distances)], nms_iou=0.5, max_detections=5)
    assert [(k, s, e) for k, s, e, _ in found] == [(0, 0.0, 2.0), (0, 2.0, 3.0)]
    assert found[0][3] == pytest.approx(torch.sigmoid(torch.tensor(4.0)).item())


def test_nms_keeps_the_best_of_overlapping_segments() -> None:
    segments = np.array([[0.0, 10.0], [1.0, 10.0], [20.0, 30.0], [0.0, 4.0]])
    keep = nms_1d(segments, np.array([0.9, 0.8, 0.7, 0.6]), iou=0.5)
    assert keep.tolist() == [0, 2, 3]  # [1, 10] overlaps [0, 10] at 0.9; [0, 4] only at 0.4


def test_focal_loss_and_segment_iou_hand_values() -> None:
    loss = sigmoid_focal_loss(torch.zeros(1), torch.ones(1))
    assert loss.item() == pytest.approx(0.25 * 0.25 * math.log(2))  # α (1 − 0.5)^2 · −log 0.5
    iou = segment_iou(torch.tensor([0.0, 4.0]), torch.tensor([2.0, 6.0]))
    assert iou.item() == pytest.approx(2 / 6)


# ------------------------------------------------------------------------------------------- grounding
def test_binarize_normalises_each_frame_by_its_max() -> None:
    soft = np.array([[[0.2, 0.4], [0.1, 0.0]], [[0.0, 0.0], [0.0, 0.0]]])
    out = binarize(soft, 0.5)
    assert out[0].tolist() == [[True, True], [False, False]]  # 0.2 / 0.4 = 0.5 ≥ 0.5
    assert not out[1].any()  # an all-zero frame stays empty


def test_query_iou_skips_frames_where_both_masks_are_empty() -> None:
    pred = np.array([[[1, 1], [0, 0]], [[0, 0], [0, 0]], [[1, 0], [0, 0]]], dtype=bool)
    gt = np.array([[[1, 0], [0, 0]], [[0, 0], [0, 0]], [[0, 0], [0, 0]]], dtype=bool)
    assert query_iou(pred, gt) == pytest.approx((0.5 + 0.0) / 2)  # frame 1 skipped, frame 2 scores 0
    assert math.isnan(query_iou(pred[1:2], gt[1:2]))


def test_gt_masks_pick_sampled_frames_and_follow_the_crop() -> None:
    labels = np.zeros((4, 4, 4), dtype=np.uint8)
    labels[3, :2, :2] = 7  # entity 7 in the top-left quarter of frame 3
    labels[3, 3, 3] = 9
    times = np.arange(4) / 15.0
    out = gt_masks(labels, times, (7,), [0.0, 0.2], fps=15.0, size=2)
    assert out.shape == (2, 2, 2) and not out[0].any()
    assert out[1].tolist() == [[True, False], [False, False]]  # nearest resize 4 → 2 keeps rows/cols 0, 2
    with pytest.raises(ValueError, match="half a frame"):
        gt_masks(labels, times, (7,), [0.5], fps=15.0, size=2)


# -------------------------------------------------------------------------------------- options/records
def test_options_reject_unknown_keys_and_bad_values() -> None:
    spec = {"epochs": Option(3, "a positive int", kind=int, check=lambda v: v > 0)}
    assert resolve_options("x", spec, None) == {"epochs": 3}
    with pytest.raises(BenchError, match="unknown option"):
        resolve_options("x", spec, {"epoch": 2})
    with pytest.raises(BenchError, match="epochs=0"):
        resolve_options("x", spec, {"epochs": 0})
    with pytest.raises(BenchError, match="epochs=True"):
        resolve_options("x", spec, {"epochs": True})


def test_jsonable_turns_nan_into_null() -> None:
    out = jsonable({"a": np.float32(np.nan), "b": np.arange(2), "c": (np.int64(3), float("inf"))})
    assert out == {"a": None, "b": [0, 1], "c": [3, None]}
