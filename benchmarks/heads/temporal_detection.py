"""A compact multi-scale temporal action detector for Ego4D MQ, in the spirit of VSGN.

VSGN (Zhao et al., ICCV 2021, "Video Self-Stitching Graph Network for Temporal Action Localization", the
Ego4D MQ baseline) detects actions on a temporal feature pyramid with per-position classification and
boundary regression, then NMS. This re-implementation keeps that shape and drops the self-stitching and
graph layers (written from the papers, not ported):

* pyramid (VSGN §3.2): a conv stem, then ``num_levels`` levels, each a stride-2 conv of the previous one
  (level l has T / 2^l positions, position i centred at ``(i + 0.5)·2^l`` base units);
* anchor-free heads shared across levels (FCOS / AFSD style, as VSGN's boundary branch): C class logits and
  2 distances (start, end) from the position centre, ``softplus(·)·2^l``;
* assignment: a ground-truth segment of length L (base units) goes to the level whose range
  ``[lo_l, hi_l)`` holds L (ranges ``[0, 8), [8, 32), [32, ∞)`` for 3 levels: ×4 per level); every
  position of that level whose centre lies inside it is positive for its class (several overlapping
  segments: all their classes; regression towards the shortest);
* loss: sigmoid focal loss (Lin et al., ICCV 2017, α = 0.25, γ = 2) over all positions and classes,
  normalised by the number of positives, + (1 − tIoU) of the decoded segments on positives;
* inference: scores = sigmoid, the ``pre_nms`` best (position, class) pairs, per-class hard NMS at
  ``nms_iou``, the ``max_detections`` best kept, sorted by score.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

FOCAL_ALPHA = 0.25
FOCAL_GAMMA = 2.0
# level l covers segment lengths [RANGE_BASE·4^l, RANGE_BASE·4^(l+1)) (first from 0, last to ∞)
RANGE_BASE = 2.0


def level_ranges(num_levels: int) -> list[tuple[float, float]]:
    """Segment-length range (base units) of each pyramid level: [0, 8), [8, 32), [32, inf) for 3 levels."""
    bounds = [0.0] + [RANGE_BASE * 4.0**level for level in range(1, num_levels)] + [math.inf]
    return list(zip(bounds[:-1], bounds[1:]))


def sigmoid_focal_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Summed focal loss (Lin et al. 2017, Eq. 5): −α_t (1 − p_t)^γ log p_t over every element."""
    p = torch.sigmoid(logits)
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)
    alpha_t = FOCAL_ALPHA * targets + (1 - FOCAL_ALPHA) * (1 - targets)
    return (alpha_t * (1 - p_t) ** FOCAL_GAMMA * ce).sum()


def segment_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Element-wise tIoU of (..., 2) segments [start, end]."""
    inter = (torch.minimum(a[..., 1], b[..., 1]) - torch.maximum(a[..., 0], b[..., 0])).clamp(min=0)
    union = (a[..., 1] - a[..., 0]) + (b[..., 1] - b[..., 0]) - inter
    return inter / union.clamp(min=1e-6)


class TemporalDetectionHead(nn.Module):
    """Feature pyramid + shared classification / regression heads over (B, T, D) clip features."""

    def __init__(self, in_dim: int, num_classes: int, hidden: int = 128, num_levels: int = 3) -> None:
        super().__init__()
        self.num_classes, self.num_levels = num_classes, num_levels
        self.stem = nn.Sequential(
            nn.Conv1d(in_dim, hidden, 3, padding=1), nn.GroupNorm(8, hidden), nn.ReLU(),
            nn.Conv1d(hidden, hidden, 3, padding=1), nn.GroupNorm(8, hidden), nn.ReLU(),
        )  # fmt: skip
        self.down = nn.ModuleList(
            nn.Sequential(
                nn.Conv1d(hidden, hidden, 3, stride=2, padding=1), nn.GroupNorm(8, hidden), nn.ReLU()
            )
            for _ in range(num_levels - 1)
        )
        self.tower = nn.Sequential(
            nn.Conv1d(hidden, hidden, 3, padding=1), nn.GroupNorm(8, hidden), nn.ReLU()
        )
        self.cls = nn.Conv1d(hidden, num_classes, 3, padding=1)
        self.reg = nn.Conv1d(hidden, 2, 3, padding=1)
        nn.init.constant_(self.cls.bias, -math.log((1 - 0.01) / 0.01))  # prior p = 0.01 (focal loss §4.1)

    def forward(self, features: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """(B, T, D) → per level l: class logits (B, T_l, C) and distances (B, T_l, 2) in base units."""
        x = self.stem(features.transpose(1, 2))  # (B, H, T)
        outputs = []
        for level in range(self.num_levels):
            if level:
                x = self.down[level - 1](x)  # (B, H, T / 2^l)
            y = self.tower(x)
            distances = F.softplus(self.reg(y)) * 2.0**level  # (B, 2, T_l)
            outputs.append((self.cls(y).transpose(1, 2), distances.transpose(1, 2)))
        return outputs


def centres(length: int, level: int) -> torch.Tensor:
    """Centres (base units) of the positions of a level: (T_l,)."""
    stride = 2.0**level
    return (torch.arange(length, dtype=torch.float32) + 0.5) * stride


def assign_targets(
    segments: np.ndarray, labels: np.ndarray, lengths: list[int], num_classes: int
) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """One clip's GT (G, 2) base units + (G,) class ids → per level (cls (T_l, C), reg target (T_l, 2), pos (T_l,))."""
    out = []
    for level, ((lo, hi), length) in enumerate(zip(level_ranges(len(lengths)), lengths)):
        c = centres(length, level)  # (T_l,)
        cls = torch.zeros(length, num_classes)
        target = torch.zeros(length, 2)
        best = torch.full((length,), math.inf)
        for (start, end), label in zip(segments, labels):
            size = end - start
            if not lo <= size < hi:
                continue
            inside = (c >= start) & (c <= end)
            if not inside.any():  # a segment shorter than the level stride: its nearest position
                inside = torch.zeros(length, dtype=torch.bool)
                inside[min(int((start + end) / 2 / 2.0**level), length - 1)] = True
            cls[inside, int(label)] = 1.0
            shorter = inside & (size < best)
            target[shorter] = torch.tensor([start, end], dtype=torch.float32)
            best[shorter] = size
        out.append((cls, target, torch.isfinite(best)))
    return out


def detection_loss(
    outputs: list[tuple[torch.Tensor, torch.Tensor]],
    targets: list[list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]],
) -> torch.Tensor:
    """Focal classification loss / #positives + mean (1 − tIoU) on positives, over levels and clips."""
    focal, iou_loss, positives = 0.0, 0.0, 0
    for level, (logits, distances) in enumerate(outputs):
        cls = torch.stack([t[level][0] for t in targets]).to(logits.device)  # (B, T_l, C)
        seg = torch.stack([t[level][1] for t in targets]).to(logits.device)  # (B, T_l, 2)
        pos = torch.stack([t[level][2] for t in targets]).to(logits.device)  # (B, T_l)
        focal = focal + sigmoid_focal_loss(logits, cls)
        if pos.any():
            c = centres(logits.shape[1], level).to(logits.device)[None].expand_as(pos)  # (B, T_l)
            pred = torch.stack([c - distances[..., 0], c + distances[..., 1]], dim=-1)  # (B, T_l, 2)
            iou_loss = iou_loss + (1 - segment_iou(pred[pos], seg[pos])).sum()
            positives += int(pos.sum())
    n = max(positives, 1)
    return (focal + iou_loss) / n


def nms_1d(segments: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Indices kept by greedy hard NMS over (P, 2) segments, best score first."""
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    while order.size:
        i = order[0]
        keep.append(int(i))
        rest = order[1:]
        inter = np.clip(
            np.minimum(segments[i, 1], segments[rest, 1]) - np.maximum(segments[i, 0], segments[rest, 0]),
            0,
            None,
        )
        union = (segments[i, 1] - segments[i, 0]) + (segments[rest, 1] - segments[rest, 0]) - inter
        overlap = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
        order = rest[overlap < iou]
    return np.asarray(keep, dtype=np.int64)


def decode(
    outputs: list[tuple[torch.Tensor, torch.Tensor]],
    *,
    pre_nms: int = 1000,
    nms_iou: float = 0.5,
    max_detections: int = 100,
) -> list[list[tuple[int, float, float, float]]]:
    """Per clip: ``[(class, start, end, score), ...]`` in base units, sorted by score, after per-class NMS."""
    batch = outputs[0][0].shape[0]
    results = []
    for b in range(batch):
        segs, scores, classes = [], [], []
        for level, (logits, distances) in enumerate(outputs):
            c = centres(logits.shape[1], level)  # (T_l,)
            d = distances[b].float().cpu()  # (T_l, 2)
            seg = torch.stack([c - d[:, 0], c + d[:, 1]], dim=-1)  # (T_l, 2)
            prob = torch.sigmoid(logits[b].float().cpu())  # (T_l, C)
            segs.append(seg[:, None, :].expand(-1, prob.shape[1], -1).reshape(-1, 2))
            scores.append(prob.reshape(-1))
            classes.append(torch.arange(prob.shape[1]).repeat(prob.shape[0]))
        seg_all, score_all, cls_all = torch.cat(segs), torch.cat(scores), torch.cat(classes)
        top = score_all.topk(min(pre_nms, len(score_all))).indices
        seg_np, score_np, cls_np = seg_all[top].numpy(), score_all[top].numpy(), cls_all[top].numpy()
        kept = []
        for k in np.unique(cls_np):
            idx = np.flatnonzero(cls_np == k)
            kept += [
                (int(k), *seg_np[i].tolist(), float(score_np[i]))
                for i in idx[nms_1d(seg_np[idx], score_np[idx], nms_iou)]
            ]
        kept.sort(key=lambda r: -r[3])
        results.append(kept[:max_detections])
    return results
