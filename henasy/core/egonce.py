"""EgoNCE: contrastive loss with noun/verb-aware positives (HENASY paper §3, Eq. 1; EgoVLP's EgoNCE).

For L2-normalised video embeddings v̂ (B̃, D) and text embeddings t̂ (B̃, D), with s_ij = v̂_i·t̂_j:

    L_v2t = −1/B̃ Σ_i log( Σ_{p∈P_i} exp(s_ip/τ) / Σ_j exp(s_ij/τ) )
    L_t2v = the same on sᵀ,   L_ego = L_v2t + L_t2v        (both directions summed, as in the paper)

Positives P_i (EgoVLP ``model/loss.py``): the pair itself (diagonal) OR every pair whose
narrations share ≥ 1 verb class AND ≥ 1 noun class (multi-hot tag vectors). Without tags the mask is the
diagonal and the loss is plain symmetric InfoNCE (summed, not averaged like LaViLa's ``CLIPLoss``).

Hard negatives (EgoVLP "scene-aware negative sampling"): the caller appends each sample's negative clip
and its narration as extra rows with their own tags, so B̃ = 2B; every appended row is scored against the
whole extended batch, exactly as EgoVLP does (the denominator of Eq. 1 then holds all B̃ texts, not only
the sample's own n′). Nothing special happens here. The HENASY and HelpingHands paper presets draw the negative
from the same 600-s segment, as HelpingHands does (henasy/training/config.py ``HARD_NEGATIVE_SEC``).

Under DistributedDataParallel the embeddings and tags of all processes are gathered first, so B̃ is the
global batch (LaViLa and EgoVLP do the same); the gradient equals that of one process holding the whole batch.

τ defaults to 0.07, LaViLa's frozen temperature (models we train start from LaViLa); EgoVLP used 0.05.
The embeddings are used as given: normalise them before calling.
"""

from __future__ import annotations

import torch

from henasy.core.distributed import gather_optional, gather_with_grad

DEFAULT_TEMPERATURE = 0.07


def _shares_a_class(tags: torch.Tensor) -> torch.Tensor:
    """(B̃, C) multi-hot tags → (B̃, B̃) bool: rows i, j have at least one class in common."""
    hot = (tags > 0).float()  # (B̃, C)
    return (hot @ hot.T) > 0  # (B̃, B̃)


def egonce_positive_mask(
    size: int,
    verb_tags: torch.Tensor | None = None,
    noun_tags: torch.Tensor | None = None,
    *,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """(size, size) bool mask of positives: diagonal OR (shares a verb AND shares a noun) — EgoVLP §3.2.

    A tag tensor that is ``None`` imposes no condition; when both are ``None`` only the diagonal is positive.
    """
    for name, tags in (("verb_tags", verb_tags), ("noun_tags", noun_tags)):
        if tags is not None and (tags.dim() != 2 or tags.shape[0] != size):
            raise ValueError(
                f"{name} must be a (B, classes) multi-hot tensor with B={size}, got {tuple(tags.shape)}"
            )
    if device is None:
        device = next((t.device for t in (verb_tags, noun_tags) if t is not None), None)
    diagonal = torch.eye(size, dtype=torch.bool, device=device)
    if verb_tags is None and noun_tags is None:
        return diagonal
    shared = torch.ones(size, size, dtype=torch.bool, device=device)
    for tags in (verb_tags, noun_tags):
        if tags is not None:
            shared &= _shares_a_class(tags.to(device))
    return diagonal | shared


def _multi_positive_nce(logits: torch.Tensor, positives: torch.Tensor) -> torch.Tensor:
    """−mean_i log(Σ_{p∈P_i} exp(logits_ip) / Σ_j exp(logits_ij)) — one direction of Eq. 1."""
    positive_logits = logits.masked_fill(~positives, float("-inf"))  # (B̃, B̃)
    return (torch.logsumexp(logits, dim=1) - torch.logsumexp(positive_logits, dim=1)).mean()


def egonce_directions(
    video: torch.Tensor,
    text: torch.Tensor,
    verb_tags: torch.Tensor | None = None,
    noun_tags: torch.Tensor | None = None,
    temperature: float | torch.Tensor = DEFAULT_TEMPERATURE,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(L_v2t, L_t2v) of Eq. 1 for L2-normalised ``video`` and ``text`` embeddings (B̃, D)."""
    if video.dim() != 2 or video.shape != text.shape:
        raise ValueError(
            f"video and text embeddings must both be (B, D) with the same shape, "
            f"got {tuple(video.shape)} and {tuple(text.shape)}"
        )
    # under DDP the loss runs over the global batch, as in LaViLa / EgoVLP (see henasy.core.distributed)
    video, text = gather_with_grad(video), gather_with_grad(text)  # (B̃_global, D)
    verb_tags, noun_tags = gather_optional(verb_tags), gather_optional(noun_tags)
    positives = egonce_positive_mask(video.shape[0], verb_tags, noun_tags, device=video.device)  # (B̃, B̃)
    logits = video @ text.T / temperature  # (B̃, B̃): rows are videos, columns texts
    return _multi_positive_nce(logits, positives), _multi_positive_nce(logits.T, positives.T)


def egonce_loss(
    video: torch.Tensor,
    text: torch.Tensor,
    verb_tags: torch.Tensor | None = None,
    noun_tags: torch.Tensor | None = None,
    temperature: float | torch.Tensor = DEFAULT_TEMPERATURE,
) -> torch.Tensor:
    """L_ego = L_v2t + L_t2v (paper Eq. 1, both directions summed); scalar tensor."""
    v2t, t2v = egonce_directions(video, text, verb_tags, noun_tags, temperature)
    return v2t + t2v
