"""Box geometry, Hungarian matching and the DETR set loss used by HelpingHands (Zhang et al., ICCV 2023).

Facts from ``Chuhanxx/helping_hand_for_egocentric_videos`` @ 46a3852 (``model/box_utils.py``:
``HungarianMatcher``, ``SetCriterion.loss_boxes``, ``compute_box_loss``; ``utils/box_ops.py``), which in turn
follow DETR (Carion et al., ECCV 2020, §3.1). Own code.

- Boxes are predicted as normalised (cx, cy, w, h) and supervised in that format; the 100DOH targets arrive
  as normalised (x1, y1, x2, y2) of the input crop (``henasy.data.handobj``) with a validity mask.
- Matching cost (class term excluded, ``exclude_class=True``): ``l1_weight·‖b̂ − b‖₁ − giou_weight·GIoU(b̂, b)``,
  solved per frame as a minimum-cost assignment of each target to a distinct query (``linear_sum_assignment``).
- Loss: ``l1_weight·Σ‖b̂ − b‖₁ / n + giou_weight·Σ(1 − GIoU) / n`` over matched pairs, n = number of
  target boxes in the batch (at least 1). ``set_box_loss`` repeats it for every decoder layer given
  (DETR auxiliary losses; see ``HelpingHandsConfig.box_aux_loss`` for what the released code does).
"""

from __future__ import annotations

import itertools
import math

import torch
from scipy.optimize import linear_sum_assignment

# Up to this many injective target→query maps per frame, the assignment is solved by enumerating them all in
# one batched tensor op (hands: 2 queries × ≤2 targets = 2 maps; objects: 10 queries × ≤2 targets = 90);
# larger problems (noun matching: 12 queries × ≤4 nouns) go through scipy's Hungarian solver per row.
ENUMERATION_LIMIT = 1024


# ------------------------------------------------------------------------------------------- box geometry


def box_cxcywh_to_xyxy(boxes: torch.Tensor) -> torch.Tensor:
    """(..., 4) (cx, cy, w, h) → (x1, y1, x2, y2)."""
    cx, cy, w, h = boxes.unbind(-1)
    return torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dim=-1)


def box_xyxy_to_cxcywh(boxes: torch.Tensor) -> torch.Tensor:
    """(..., 4) (x1, y1, x2, y2) → (cx, cy, w, h)."""
    x1, y1, x2, y2 = boxes.unbind(-1)
    return torch.stack([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], dim=-1)


def generalized_box_iou(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """GIoU (Rezatofighi et al., CVPR 2019, Alg. 1) of (x1, y1, x2, y2) boxes, broadcast over leading dims.

    GIoU = IoU − |C \\ (A ∪ B)| / |C| with C the smallest box enclosing A and B; in [−1, 1]. Pairwise
    (N, M) values come from ``generalized_box_iou(a[:, None], b[None])``.
    """
    area_a = (a[..., 2] - a[..., 0]).clamp(min=0) * (a[..., 3] - a[..., 1]).clamp(min=0)
    area_b = (b[..., 2] - b[..., 0]).clamp(min=0) * (b[..., 3] - b[..., 1]).clamp(min=0)
    inter_wh = (torch.minimum(a[..., 2:], b[..., 2:]) - torch.maximum(a[..., :2], b[..., :2])).clamp(min=0)
    inter = inter_wh[..., 0] * inter_wh[..., 1]
    union = area_a + area_b - inter
    iou = inter / (union + eps)
    hull_wh = (torch.maximum(a[..., 2:], b[..., 2:]) - torch.minimum(a[..., :2], b[..., :2])).clamp(min=0)
    hull = hull_wh[..., 0] * hull_wh[..., 1]
    return iou - (hull - union) / (hull + eps)


def rasterize_boxes(boxes: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(..., 4) normalised (x1, y1, x2, y2) → (..., H, W) binary float masks: 1 where the pixel centre
    ((i + 0.5) / W, (j + 0.5) / H) lies inside the box."""
    xs = (torch.arange(width, device=boxes.device, dtype=boxes.dtype) + 0.5) / width  # (W,)
    ys = (torch.arange(height, device=boxes.device, dtype=boxes.dtype) + 0.5) / height  # (H,)
    x1, y1, x2, y2 = (boxes[..., i, None] for i in range(4))  # each (..., 1)
    inside_x = (xs >= x1) & (xs <= x2)  # (..., W)
    inside_y = (ys >= y1) & (ys <= y2)  # (..., H)
    return (inside_y[..., :, None] & inside_x[..., None, :]).to(boxes.dtype)  # (..., H, W)


# ---------------------------------------------------------------------------------------------- matching


def _injective_maps(num_queries: int, num_targets: int, device: torch.device) -> torch.Tensor:
    """(P, G) every assignment of G targets to distinct queries, P = Q! / (Q − G)!."""
    maps = list(itertools.permutations(range(num_queries), num_targets))
    return torch.tensor(maps, dtype=torch.long, device=device).reshape(len(maps), num_targets)


@torch.no_grad()
def match_min_cost(cost: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Minimum-cost assignment of targets to distinct queries, independently per row (DETR Hungarian matching).

    ``cost`` (F, Q, G): cost of query q for target g; ``valid`` (F, G) bool. Returns (F, G) long: the query
    of each target (entries of invalid targets are meaningless). Needs Q ≥ G. Equivalent to scipy's
    ``linear_sum_assignment`` on the valid columns of each row (ties may be broken differently).
    """
    rows, num_queries, num_targets = cost.shape
    if num_targets > num_queries:
        raise ValueError(f"cannot assign {num_targets} targets to {num_queries} distinct queries")
    if num_targets == 0 or rows == 0:
        return torch.zeros(rows, num_targets, dtype=torch.long, device=cost.device)
    cost = cost.float().masked_fill(~valid[:, None, :], 0.0)  # invalid targets cost nothing anywhere
    if math.perm(num_queries, num_targets) <= ENUMERATION_LIMIT:
        maps = _injective_maps(num_queries, num_targets, cost.device)  # (P, G)
        picked = cost[
            :, maps, torch.arange(num_targets, device=cost.device)
        ]  # (F, P, G): cost[f, maps[p,g], g]
        best = picked.sum(-1).argmin(dim=1)  # (F,)
        return maps[best]  # (F, G)
    out = torch.zeros(rows, num_targets, dtype=torch.long)
    cost_cpu, valid_cpu = cost.cpu(), valid.cpu()
    for f in range(rows):
        cols = valid_cpu[f].nonzero().flatten()
        if len(cols):
            queries, targets = linear_sum_assignment(cost_cpu[f][:, cols].numpy())
            out[f, cols[torch.as_tensor(targets)]] = torch.as_tensor(queries, dtype=torch.long)
    return out.to(cost.device)


# ------------------------------------------------------------------------------------------------ losses


def box_match_cost(
    pred: torch.Tensor, target_xyxy: torch.Tensor, l1_weight: float, giou_weight: float
) -> torch.Tensor:
    """HH ``HungarianMatcher`` cost without the class term: (F, Q, 4) cxcywh × (F, G, 4) xyxy → (F, Q, G)."""
    target = box_xyxy_to_cxcywh(target_xyxy)
    l1 = (pred[:, :, None, :] - target[:, None, :, :]).abs().sum(-1)  # (F, Q, G)
    giou = generalized_box_iou(box_cxcywh_to_xyxy(pred)[:, :, None, :], target_xyxy[:, None, :, :])
    return l1_weight * l1 - giou_weight * giou


def matched_box_loss(
    pred: torch.Tensor,
    target_xyxy: torch.Tensor,
    valid: torch.Tensor,
    *,
    l1_weight: float = 5.0,
    giou_weight: float = 2.0,
    num_boxes: float | None = None,
) -> dict[str, torch.Tensor]:
    """DETR box loss of one decoder layer (HH ``SetCriterion.loss_boxes`` after ``HungarianMatcher``).

    ``pred`` (F, Q, 4) cxcywh in [0, 1]; ``target_xyxy`` (F, G, 4); ``valid`` (F, G) bool. Each row (one
    frame of one clip) is matched on its own. Returns ``l1`` = Σ‖b̂ − b‖₁ / n, ``giou`` = Σ(1 − GIoU) / n
    and ``loss`` = l1_weight·l1 + giou_weight·giou, with n = ``num_boxes`` or max(#valid targets, 1).
    """
    with torch.no_grad():
        queries = match_min_cost(box_match_cost(pred, target_xyxy, l1_weight, giou_weight), valid)  # (F, G)
    rows, cols = valid.nonzero(as_tuple=True)  # matched pairs: (frame, target)
    matched = pred[rows, queries[rows, cols]]  # (M, 4) cxcywh
    target = target_xyxy[rows, cols].to(pred.dtype)  # (M, 4) xyxy
    n = num_boxes if num_boxes is not None else max(float(valid.sum()), 1.0)
    l1 = (matched - box_xyxy_to_cxcywh(target)).abs().sum() / n
    giou = (1.0 - generalized_box_iou(box_cxcywh_to_xyxy(matched), target)).sum() / n
    return {"l1": l1, "giou": giou, "loss": l1_weight * l1 + giou_weight * giou}


def set_box_loss(
    pred_layers: torch.Tensor,
    target_xyxy: torch.Tensor,
    valid: torch.Tensor,
    *,
    l1_weight: float = 5.0,
    giou_weight: float = 2.0,
) -> torch.Tensor:
    """Σ over the given decoder layers of ``matched_box_loss`` (DETR §3.2 auxiliary decoding losses).

    ``pred_layers`` (L, F, Q, 4): every layer is matched to the targets on its own; n is shared.
    """
    n = max(float(valid.sum()), 1.0)
    total = pred_layers.new_zeros(())
    for pred in pred_layers:
        total = (
            total
            + matched_box_loss(
                pred, target_xyxy, valid, l1_weight=l1_weight, giou_weight=giou_weight, num_boxes=n
            )["loss"]
        )
    return total
