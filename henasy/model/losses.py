"""HENASY's multi-grained losses (paper §4.4): NEC (Eq. 7), VEC (Eq. 8), projection loss (Eq. 9), total (Eq. 10).

No official code exists; the nearest public analogues, read for facts only, are
HelpingHands' Hungarian noun-matching contrastive loss (NEC) and BoxInst's projection term (Eq. 9).
Every function takes L2-normalised embeddings (cosine similarities, as in EgoNCE) and returns
``(loss, count)`` where ``count`` is the number of pairs / phrases / boxes the term averaged over; a term
with nothing to average over is an exact 0 (the caller reports the count, so "no inputs" is visible).

- ``nec_loss`` (Eq. 7): for each clip, its narration's nouns (multi-hot tags over the taxonomy) are matched
  one-to-one to entities by Hungarian matching on cosine similarity (``scipy.optimize.linear_sum_assignment``,
  maximising the total; with more nouns than entities only E nouns are matched); each matched entity is
  contrasted against every noun of the taxonomy (cross-entropy over the vocabulary, τ).
- ``vec_loss`` (Eq. 8): for each verb phrase a_p, entity weights s_j = softmax_j(a_p·e_j / τ_w), the
  weighted average e^avg = Σ_j s_j e_j (L2-normalised), then InfoNCE of e^avg against every verb phrase of
  the batch (EgoNCE batch formation: the hard-negative clips' phrases are in the batch too); phrases with
  the same text are positives of each other (EgoNCE's multi-positive numerator), since their embeddings are
  equal. Weight temperature (a stated choice): τ_w = τ, the one temperature of Eq. 1, 7 and 8 (0.07, LaViLa's
  frozen value). §4.4 writes the weights as a plain ratio a·e_j / Σ_k a·e_k yet calls them
  "Softmax-normalized" and says they "prioritize the most relevant entity-verb alignments"; the ratio is
  undefined for cosines that sum to ~0, and a softmax of cosines in [−1, 1] at τ_w = 1 cannot select: a
  perfectly matching entity among E = 8 orthogonal ones gets e / (e + 7) = 0.28 against 1/8 for uniform
  weights, so e^avg stays near the mean entity and VEC acts as a video-level contrast. At τ_w = τ the same
  entity gets e^(1/τ) / (e^(1/τ) + 7) ≈ 1 − 4e−6. A fixed value (not learnt) keeps the weights from
  collapsing to uniform through training; ``weight_temperature`` overrides it.
- ``projection_loss`` (Eq. 9, BoxInst's projection term): per frame, boxes are matched to entity masks by
  Hungarian matching on IoU; for each match, dice(max_y m, max_y b̂) + dice(max_x m, max_x b̂) with
  dice = 1 − 2Σpg / (Σp² + Σg² + ε), ε = 1e-5; mean over boxes. The masks m must be per-pixel probabilities
  in [0, 1] (as BoxInst's sigmoid masks are) for the tightest box around m to be able to equal b̂: the model
  passes each entity's Eq. 13 saliency map min–max rescaled per frame to [0, 1] by default
  (``HenasyConfig.proj_mask="rescaled_saliency"``; ``"assignment"`` passes M_t itself; see
  henasy/model/network.py), not the raw softmax over patches, whose values sum to 1 per frame.
- ``total_loss`` (Eq. 10): L_ego + λ1 L_NEC + λ2 L_VEC + λ3 L_proj.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment

DICE_EPS = 1e-5  # BoxInst / AdelaiDet compute_project_term
DEFAULT_LOSS_WEIGHTS = {"nec": 0.5, "vec": 0.5, "proj": 1.0}  # paper §5.1: λ1, λ2, λ3


def hungarian_max(score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of the one-to-one assignment with the largest total ``score`` (R, C)."""
    rows, cols = linear_sum_assignment(np.asarray(score, dtype=np.float64), maximize=True)
    return rows, cols


def _zero(like: torch.Tensor) -> torch.Tensor:
    return like.new_zeros(())


# ---------------------------------------------------------------------------------------------------- NEC
def match_nouns(similarity: np.ndarray, noun_tags: np.ndarray) -> list[tuple[int, int, int]]:
    """(row, entity, noun) triples: per row, its tagged nouns matched one-to-one to entities (Hungarian).

    ``similarity`` (B, E, V) entity–noun cosines, ``noun_tags`` (B, V) multi-hot.
    """
    triples = []
    for row in range(similarity.shape[0]):
        nouns = np.flatnonzero(noun_tags[row] > 0)
        if nouns.size == 0:
            continue
        entities, picked = hungarian_max(similarity[row][:, nouns])  # (E, N_row) → matched pairs
        triples += [(row, int(e), int(nouns[n])) for e, n in zip(entities, picked)]
    return triples


def nec_loss(
    entities: torch.Tensor,
    noun_tags: torch.Tensor,
    noun_embeds: torch.Tensor,
    temperature: float | torch.Tensor,
) -> tuple[torch.Tensor, int]:
    """Eq. 7: −1/N_n Σ_p log( exp(e_p·n_p/τ) / Σ_{j∈D} exp(e_p·n'_j/τ) ).

    ``entities`` (B, E, D) and ``noun_embeds`` (V, D) L2-normalised; ``noun_tags`` (B, V) multi-hot.
    """
    if noun_tags.shape != (entities.shape[0], noun_embeds.shape[0]):
        raise ValueError(
            f"noun_tags {tuple(noun_tags.shape)} must be (batch {entities.shape[0]}, vocabulary "
            f"{noun_embeds.shape[0]}): the taxonomy passed to bind_data and the tags must agree"
        )
    logits = torch.einsum("bed,vd->bev", entities, noun_embeds.to(entities.dtype)) / temperature  # (B, E, V)
    triples = match_nouns(logits.detach().float().cpu().numpy(), noun_tags.detach().cpu().numpy())
    if not triples:
        return _zero(entities), 0
    index = torch.as_tensor(triples, device=entities.device)  # (N_n, 3)
    chosen = logits[index[:, 0], index[:, 1]]  # (N_n, V)
    return F.cross_entropy(chosen.float(), index[:, 2]), len(triples)


# ---------------------------------------------------------------------------------------------------- VEC
def vec_weights(
    entities: torch.Tensor, phrases: torch.Tensor, weight_temperature: float | torch.Tensor
) -> torch.Tensor:
    """§4.4 (Eq. 8) s(a_p, e_j) = softmax_j(a_p·e_j / τ_w): (P, E, D) entities, (P, D) phrases → (P, E)."""
    return (torch.einsum("ped,pd->pe", entities, phrases) / weight_temperature).softmax(dim=-1)


def vec_loss(
    entities: torch.Tensor,
    phrase_embeds: torch.Tensor,
    phrase_rows: torch.Tensor,
    phrase_ids: torch.Tensor,
    temperature: float | torch.Tensor,
    weight_temperature: float | torch.Tensor | None = None,
) -> tuple[torch.Tensor, int]:
    """Eq. 8 with softmax-weighted many-to-one pooling of entities per verb phrase.

    ``entities`` (B, E, D) and ``phrase_embeds`` (P, D) L2-normalised; ``phrase_rows`` (P,) the clip each
    phrase comes from; ``phrase_ids`` (P,) equal for phrases with the same text (they are positives);
    ``weight_temperature`` τ_w of the entity weights, ``None`` = ``temperature`` (module docstring).
    """
    if phrase_embeds.shape[0] == 0:
        return _zero(entities), 0
    if weight_temperature is None:
        weight_temperature = temperature  # §4.4 / Eq. 8: one τ for the weights and the contrast
    own = entities[phrase_rows]  # (P, E, D)
    phrases = phrase_embeds.to(entities.dtype)
    weights = vec_weights(own, phrases, weight_temperature)  # s(a_p, e_j), (P, E)
    pooled = F.normalize(torch.einsum("pe,ped->pd", weights, own), dim=-1)  # e^avg_p, (P, D)
    logits = (pooled @ phrases.T / temperature).float()  # (P, P): rows e^avg_p, columns a_j
    positives = phrase_ids[:, None] == phrase_ids[None, :]  # (P, P), diagonal included
    numerator = torch.logsumexp(logits.masked_fill(~positives, float("-inf")), dim=1)
    return (torch.logsumexp(logits, dim=1) - numerator).mean(), int(phrase_embeds.shape[0])


# ----------------------------------------------------------------------------------------- projection loss
def dice_loss(pred: torch.Tensor, target: torch.Tensor, eps: float = DICE_EPS) -> torch.Tensor:
    """BoxInst dice over the last dim: 1 − 2Σpg / (Σp² + Σg² + ε), one value per leading index."""
    inter = (pred * target).sum(dim=-1)
    return 1.0 - 2.0 * inter / ((pred * pred).sum(dim=-1) + (target * target).sum(dim=-1) + eps)


def box_masks(boxes: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(N, 4) x1y1x2y2 in [0, 1] → (N, H, W) {0, 1}: pixels whose centre lies inside the box."""
    ys = (torch.arange(height, device=boxes.device, dtype=boxes.dtype) + 0.5) / height  # (H,)
    xs = (torch.arange(width, device=boxes.device, dtype=boxes.dtype) + 0.5) / width  # (W,)
    inside_y = (ys[None] >= boxes[:, 1:2]) & (ys[None] <= boxes[:, 3:4])  # (N, H)
    inside_x = (xs[None] >= boxes[:, 0:1]) & (xs[None] <= boxes[:, 2:3])  # (N, W)
    return (inside_y[:, :, None] & inside_x[:, None, :]).to(boxes.dtype)


def box_coverage(boxes: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(N, 4) boxes in [0, 1] → (N, h, w) fraction of each grid cell the box covers (for IoU matching)."""
    edges_y = torch.linspace(0, 1, height + 1, device=boxes.device, dtype=boxes.dtype)
    edges_x = torch.linspace(0, 1, width + 1, device=boxes.device, dtype=boxes.dtype)

    def overlap(lo: torch.Tensor, hi: torch.Tensor, edges: torch.Tensor) -> torch.Tensor:  # → (N, cells)
        cell = edges[1] - edges[0]
        return (torch.minimum(hi, edges[None, 1:]) - torch.maximum(lo, edges[None, :-1])).clamp(min=0) / cell

    cov_y = overlap(boxes[:, 1:2], boxes[:, 3:4], edges_y)  # (N, h)
    cov_x = overlap(boxes[:, 0:1], boxes[:, 2:3], edges_x)  # (N, w)
    return cov_y[:, :, None] * cov_x[:, None, :]


def soft_iou(masks: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """Masks (B, E, T, h, w) in [0, 1], box coverage (B, T, N, h, w) → (B, T, N, E) IoU Σmb / (Σm + Σb − Σmb)."""
    inter = torch.einsum("bethw,btnhw->btne", masks, boxes)
    union = masks.sum(dim=(3, 4)).transpose(1, 2)[:, :, None] + boxes.sum(dim=(3, 4))[..., None] - inter
    return inter / union.clamp(min=1e-6)


def match_boxes(
    masks: torch.Tensor, boxes: torch.Tensor, valid: torch.Tensor
) -> list[tuple[int, int, int, int]]:
    """(row, frame, box, entity) quadruples: per row and frame, valid boxes ↔ entity masks by Hungarian on IoU.

    ``masks`` (B, E, T, h, w) ≥ 0, ``boxes`` (B, T, N, 4), ``valid`` (B, T, N). The IoU is computed on the
    patch grid between each mask divided by its peak (so that the scale of a softmax map does not matter)
    and the fraction of each cell the box covers.
    """
    b, e, t, h, w = masks.shape
    peak = masks / masks.flatten(3).amax(dim=-1)[..., None, None].clamp(min=1e-12)  # (B, E, T, h, w)
    coverage = box_coverage(boxes.reshape(-1, 4), h, w).reshape(*boxes.shape[:3], h, w)  # (B, T, N, h, w)
    iou = soft_iou(peak.float(), coverage.float())  # (B, T, N, E)
    iou_np, valid_np = iou.detach().cpu().numpy(), valid.detach().cpu().numpy()
    out = []
    for i in range(b):
        for f in range(t):
            slots = np.flatnonzero(valid_np[i, f])
            if slots.size:
                picked, entities = hungarian_max(iou_np[i, f, slots])
                out += [(i, f, int(slots[p]), int(en)) for p, en in zip(picked, entities)]
    return out


def projection_loss(
    masks: torch.Tensor,
    boxes: torch.Tensor,
    valid: torch.Tensor,
    size: tuple[int, int],
) -> tuple[torch.Tensor, int]:
    """Eq. 9: 1/N_b Σ_j dice(max_y m_j, max_y b̂_j) + dice(max_x m_j, max_x b̂_j).

    ``masks`` (B, E, T, h, w) entity maps in [0, 1] on the patch grid; matched maps are bilinearly upsampled
    to the frame ``size = (H, W)``, where the boxes (B, T, N, 4, x1y1x2y2 in [0, 1]) are rasterised.
    """
    quads = match_boxes(masks, boxes, valid)
    if not quads:
        return _zero(masks), 0
    index = torch.as_tensor(quads, device=masks.device)  # (N_b, 4): row, frame, box, entity
    chosen = masks[index[:, 0], index[:, 3], index[:, 1]]  # (N_b, h, w)
    pred = F.interpolate(chosen[:, None].float(), size=tuple(size), mode="bilinear", align_corners=False)[
        :, 0
    ]
    target = box_masks(boxes[index[:, 0], index[:, 1], index[:, 2]].float(), *size)  # (N_b, H, W)
    along_y = dice_loss(pred.amax(dim=1), target.amax(dim=1))  # max over y → profile along x, (N_b,)
    along_x = dice_loss(pred.amax(dim=2), target.amax(dim=2))  # max over x → profile along y
    return (along_y + along_x).mean(), len(quads)


# -------------------------------------------------------------------------------------------------- total
def total_loss(terms: Mapping[str, torch.Tensor], weights: Mapping[str, float]) -> torch.Tensor:
    """Eq. 10: L_ego (already v2t + t2v) + Σ_k λ_k L_k over the terms present in ``terms``."""
    total = terms["egonce"]
    for name, value in terms.items():
        if name != "egonce":
            total = total + float(weights[name]) * value
    return total
