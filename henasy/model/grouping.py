"""HENASY's grouping machinery: temporal-aware grouping (TAG), DST blocks with group tokens, saliency maps.

Paper: HENASY (NeurIPS 2024) §4.2 (Eq. 3–4), Appendix A (DST), Appendix B.1 (Eq. 11–12), B.2 (Eq. 13).
No official code exists; the nearest public template is GroupViT's
``AssignAttention`` (Gumbel-softmax over groups + hard straight-through assignment), read for facts only.

- ``TemporalAwareGrouping``: Eq. 11 similarity of every input token of every frame to Q group tokens
  (softmax over groups, Gumbel noise γ in training only — at eval the assignment is the deterministic
  argmax of the noise-free softmax), Eq. 12 hard one-hot assignment with the straight-through trick, Eq. 4
  per-frame merge ``o_{t,q} = g_q + Σ_j Ã_{t,q,j} i_{t,j} / Σ_j Ã_{t,q,j}`` that keeps the time axis:
  (B, T·I, D) → (B, T·Q, D), frame-major. With ``block="groupvit"`` (the default) the merge is built as
  GroupViT's ``GroupingBlock`` builds it (NVlabs/GroupViT @ 1757819 : models/group_vit.py, ``AssignAttention``
  + ``GroupingBlock.forward``), which App. B.1 says Eq. 11 follows: the merged tokens pass through a value
  projection W_v before the average and an output projection W_o after it, and the merged group gets a
  pre-norm channel MLP: ``o = g_q + W_o(Σ_j Ã i_{t,j} W_v / Σ_j Ã)``, ``o ← o + MLP(LN(o))``. Initialisation
  (``merge_init``): ``"identity"`` (this module's default) starts W_v = W_o = I and the MLP's last layer at
  zero, so a fresh block computes exactly Eq. 4; ``"groupvit"`` (what ``HenasyModel`` uses, ``tag_merge_init``)
  keeps GroupViT's trunc-normal(0.02) init of v_proj / proj / mlp_channels (NVlabs/GroupViT @ 1757819 :
  models/group_vit.py, ``GroupViT._init_weights``), so a fresh merge is g_q plus a small learned term. Why the
  model uses it: while Eq. 11's logits are near zero (as in GroupViT at init) the Gumbel-hard assignment is a
  random partition each step; with W_v = W_o = I that random patch mean enters every segment token at full
  scale and the segments the entity grouping sees change identity every step, whereas GroupViT's init lets
  the group token carry the segment's identity until the assignment sharpens (measured in the
  ``henasy.model.network`` docstring, "TAG merge init").
  Parameters per block at width D (hidden 4D): LN×2 + W_q, W_i (Eq. 11) = 2·2D + 2(D² + D);
  W_v, W_o = 2(D² + D); LN + MLP = 2D + (4D² + 4D) + (4D² + D). At D = 768: 1,184,256 + 1,181,184 +
  4,723,968 = 7,089,408 (``block="plain"``, Eq. 4 alone: 1,184,256). Left out of GroupViT's block: its
  token-mixing MLP over group tokens (HENASY introduces a fresh set of entity group tokens, §4.2) and its
  pre-assignment cross-attention block (the S2 DST blocks already let the group tokens attend to the
  segments); with them the paper preset would overshoot the 291 M of Table 5.
- ``GroupDividedAttention`` / ``GroupSpaceTimeBlock``: LaViLa's Frozen-in-Time divided space-time block
  (``baselines.lavila.SpaceTimeBlock``, reused with its parameters and residual) generalised from one CLS
  token to ``num_global`` leading tokens. Decision (the paper only writes ``DST([g; s])``): the group tokens
  play TimeSformer's CLS role — their queries attend to every token (all groups, all frames) in both the
  time and the space attention, and every frame token sees all group tokens' keys/values next to its own
  time (same slot, every frame) or space (same frame) group. With ``num_global = 1`` this is exactly
  LaViLa's ``DividedAttention``; with ``0`` (S3 blocks over entity tokens) only the grouped attention runs.
- ``normalized_entropy``: how far Eq. 11's softmax is from uniform (a logged training diagnostic).
- ``saliency_maps``: Eq. 13, ``M_t = (A_t^boot)ᵀ (A_t^entity)ᵀ`` (K × E per frame), softmax over the K patches.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from timm.layers import Mlp, trunc_normal_
from torch import nn

from baselines.lavila import DividedAttention, SpaceTimeBlock

TAG_BLOCKS = ("groupvit", "plain")  # TAG merge as GroupViT's GroupingBlock builds it | Eq. 4 alone
MERGE_INITS = ("identity", "groupvit")  # fresh groupvit block = Eq. 4 | GroupViT's trunc-normal(0.02) init


@dataclass
class GroupingResult:
    """What one TAG call produces (B batch, T frames, Q groups, I input tokens per frame, D width)."""

    tokens: torch.Tensor  # (B, T·Q, D) merged tokens, frame-major (Eq. 4, reshaped)
    similarity: torch.Tensor  # (B, T, Q, I) noise-free softmax over groups (Eq. 11 without γ): saliency input
    assignment: torch.Tensor  # (B, T, Q, I) Ã of Eq. 12: one-hot forward, soft gradient


def gumbel_noise(like: torch.Tensor) -> torch.Tensor:
    """Samples of Gumbel(0, 1) shaped like ``like``: −log(E), E ~ Exponential(1)."""
    return -torch.empty_like(like).exponential_().log()


def straight_through_one_hot(probs: torch.Tensor, dim: int) -> torch.Tensor:
    """Eq. 12: one-hot(argmax probs) + probs − sg(probs), written so the forward value is exactly one-hot."""
    index = probs.argmax(dim=dim, keepdim=True)
    hard = torch.zeros_like(probs).scatter_(dim, index, 1.0)
    return hard + (probs - probs.detach())


class TemporalAwareGrouping(nn.Module):
    """TAG(g_q, i) (paper §4.2 Eq. 4, App. B.1 Eq. 11–12): per-frame hard grouping that keeps the time axis.

    Similarity (Eq. 11): ``A_{t,q,j} = softmax_q(W_q LN(g_q) · W_i LN(i_{t,j}) · D^-1/2 + γ_q)``. Following
    GroupViT ([12], which Eq. 11 says it follows) the dot product is scaled by D^-1/2 and both sides are
    layer-normalised before the projections; the merge of Eq. 4 uses the raw tokens. γ ~ Gumbel(0, 1) is
    added only in training (``gumbel`` and ``self.training``); evaluation is deterministic (argmax of the
    noise-free softmax). The denominator Σ_j Ã of Eq. 4 is zero for a group that no token chose: such a
    group outputs its group token alone (the sum is replaced by 1 there, so its gradient still reaches the
    similarity through the numerator). ``block``: ``"groupvit"`` adds GroupViT's value / output projections
    and channel MLP around the Eq. 4 merge (module docstring), ``"plain"`` is Eq. 4 alone. ``merge_init``
    (``"groupvit"`` block only): ``"identity"`` = a fresh block computes Eq. 4, ``"groupvit"`` = GroupViT's
    trunc-normal(0.02) init of those layers (module docstring: why HENASY uses it).
    """

    def __init__(
        self,
        dim: int,
        *,
        gumbel: bool = True,
        block: str = "groupvit",
        mlp_ratio: float = 4.0,
        merge_init: str = "identity",
    ) -> None:
        super().__init__()
        if block not in TAG_BLOCKS:
            raise ValueError(f"TAG block must be one of {list(TAG_BLOCKS)}, got {block!r}")
        if merge_init not in MERGE_INITS:
            raise ValueError(f"TAG merge_init must be one of {list(MERGE_INITS)}, got {merge_init!r}")
        self.gumbel = gumbel
        self.block = block
        self.merge_init = merge_init
        self.norm_groups = nn.LayerNorm(dim)
        self.norm_inputs = nn.LayerNorm(dim)
        self.group_proj = nn.Linear(dim, dim)  # W_q
        self.input_proj = nn.Linear(dim, dim)  # W_i
        self.scale = dim**-0.5
        if block == "groupvit":  # GroupViT GroupingBlock: AssignAttention's v_proj / proj, then mlp_channels
            self.value_proj = nn.Linear(dim, dim)  # W_v
            self.out_proj = nn.Linear(dim, dim)  # W_o
            self.norm_mlp = nn.LayerNorm(dim)
            self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.reset_merge()

    def reset_merge(self) -> None:
        """Initialise the ``groupvit`` merge layers per ``merge_init`` (module docstring).

        ``"identity"``: W_v = W_o = identity, MLP output layer = 0, so the block computes exactly Eq. 4.
        ``"groupvit"``: W_v, W_o, MLP fc1/fc2 ~ trunc-normal(0.02), biases 0 (GroupViT ``_init_weights``).
        """
        if self.block != "groupvit":
            return
        if self.merge_init == "groupvit":
            with torch.no_grad():
                for layer in (self.value_proj, self.out_proj, self.mlp.fc1, self.mlp.fc2):
                    trunc_normal_(layer.weight, std=0.02)  # as GroupViT._init_weights
                    layer.bias.zero_()
            return
        with torch.no_grad():
            for layer in (self.value_proj, self.out_proj):
                layer.weight.copy_(torch.eye(layer.weight.shape[0], dtype=layer.weight.dtype))
                layer.bias.zero_()
            self.mlp.fc2.weight.zero_()
            self.mlp.fc2.bias.zero_()

    def logits(self, groups: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        """(B, Q, D) group tokens, (B, T, I, D) inputs → (B, T, Q, I) scaled dot products of Eq. 11."""
        q = self.group_proj(self.norm_groups(groups))  # (B, Q, D)
        k = self.input_proj(self.norm_inputs(frames))  # (B, T, I, D)
        return torch.einsum("bqd,btid->btqi", q, k) * self.scale

    def forward(self, groups: torch.Tensor, inputs: torch.Tensor, num_frames: int) -> GroupingResult:
        """(B, Q, D) groups, (B, T·I, D) frame-major inputs → ``GroupingResult`` with tokens (B, T·Q, D)."""
        b, length, dim = inputs.shape
        if length % num_frames:
            raise ValueError(f"{length} input tokens do not split into {num_frames} frames")
        frames = inputs.reshape(b, num_frames, length // num_frames, dim)  # (B, T, I, D)
        logits = self.logits(groups, frames)  # (B, T, Q, I)
        similarity = logits.softmax(dim=2)  # Eq. 11 without γ (what saliency maps use)
        if self.training and self.gumbel:
            noisy = (logits + gumbel_noise(logits)).softmax(dim=2)  # Eq. 11 with γ
        else:
            noisy = similarity
        assignment = straight_through_one_hot(noisy, dim=2)  # Eq. 12, (B, T, Q, I)
        counts = assignment.detach().sum(
            dim=-1, keepdim=True
        )  # (B, T, Q, 1): tokens per group (forward value)
        denominator = torch.where(counts > 0, assignment.sum(dim=-1, keepdim=True), torch.ones_like(counts))
        values = self.value_proj(frames) if self.block == "groupvit" else frames  # (B, T, I, D): W_v i or i
        merged = torch.einsum("btqi,btid->btqd", assignment, values) / denominator  # (B, T, Q, D)
        if self.block == "groupvit":
            merged = self.out_proj(merged)  # W_o (GroupViT AssignAttention.proj)
        tokens = groups.unsqueeze(1) + merged  # Eq. 4: (g_q) + mean of the assigned tokens, (B, T, Q, D)
        if self.block == "groupvit":
            tokens = tokens + self.mlp(self.norm_mlp(tokens))  # GroupViT mlp_channels after the merge
        return GroupingResult(tokens.reshape(b, -1, dim), similarity, assignment)


class GroupDividedAttention(DividedAttention):
    """LaViLa's divided attention (Appendix A) with ``num_global`` leading "CLS-like" tokens instead of one.

    Tokens are [globals (C); frame tokens (T·N, frame-major)]. A global query attends to every token; a frame
    token's query attends to its time group (slot n in every frame) or space group (every token of frame t)
    plus all C global keys/values. Same parameters as ``DividedAttention`` (``qkv``, ``proj``); its ``forward``
    is ``DividedAttention.forward`` with ``num_global`` passed by the caller.
    """


class GroupSpaceTimeBlock(SpaceTimeBlock):
    """A DST block (Appendix A) over [group tokens; frame tokens]: LaViLa's ``SpaceTimeBlock`` with its
    Frozen-in-Time residual and zero-initialised time attention, attention generalised to ``num_global``."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, **kwargs: object) -> None:
        super().__init__(dim, num_heads, mlp_ratio, **kwargs)  # type: ignore[arg-type]
        qkv_bias = self.attn.qkv.bias is not None
        self.attn = GroupDividedAttention(dim, num_heads, qkv_bias)
        self.timeattn = GroupDividedAttention(dim, num_heads, qkv_bias)
        self.timeattn.zero_init()  # as LaViLa's time_init='zeros': the block starts as a space-only block

    def forward(self, x: torch.Tensor, num_frames: int, num_global: int = 0) -> torch.Tensor:
        """(B, C+T·N, D) → (B, C+T·N, D) with C = ``num_global`` leading group tokens (none by default)."""
        return super().forward(x, num_frames, num_global)


def normalized_entropy(similarity: torch.Tensor, dim: int = 2) -> torch.Tensor:
    """Mean entropy of Eq. 11's softmax over groups divided by log(Q): 1 = uniform, 0 = one-hot.

    A training diagnostic, not a loss: while it stays near 1 the Gumbel noise of Eq. 11 (std ≈ 1.28) decides
    the training-time assignment, whereas evaluation takes the noise-free argmax, so a near-uniform softmax
    trains on random groups and evaluates on whichever group wins by a hair (measured on henasy_tiny after
    548 steps: entropy 0.99, and at eval 86 % of a frame's patches fell into one of 8 groups).
    """
    groups = similarity.shape[dim]
    if groups < 2:
        return similarity.new_zeros(())
    p = similarity.float().clamp_min(1e-12)
    return -(p * p.log()).sum(dim).mean() / torch.log(torch.tensor(float(groups)))


def assignment_probabilities(boot_similarity: torch.Tensor, entity_similarity: torch.Tensor) -> torch.Tensor:
    """Eq. 13 before the softmax: M_t = (A_t^boot)ᵀ (A_t^entity)ᵀ, (B, T, G, K) × (B, T, E, G) → (B, T, K, E).

    M[b, t, k, e] = Σ_g P(patch k → segment g) · P(segment g → entity e): the probability that patch k of
    frame t belongs to entity e (it sums to 1 over entities). Computed in fp32 even under autocast: the
    saliency softmax of these values in [0, 1] is flat, and bf16 rounding would erase its contrast.
    """
    with torch.autocast(boot_similarity.device.type, enabled=False):
        return torch.einsum("btgk,bteg->btke", boot_similarity.float(), entity_similarity.float())


def saliency_maps(
    boot_similarity: torch.Tensor,
    entity_similarity: torch.Tensor,
    grid: tuple[int, int],
    size: tuple[int, int] | None = None,
) -> torch.Tensor:
    """Eq. 13 saliency maps: softmax over the K patches of M_t, one map per entity per frame.

    Returns (B, E, T, h, w) on the patch grid ``grid = (h, w)`` (each map sums to 1 over its h·w patches), or
    bilinearly upsampled to ``size = (H, W)`` when given (then (B, E, T, H, W)).
    """
    probs = assignment_probabilities(boot_similarity, entity_similarity)  # (B, T, K, E)
    maps = probs.softmax(dim=2).permute(0, 3, 1, 2)  # (B, E, T, K)
    return to_grid(maps, grid, size)


def to_grid(maps: torch.Tensor, grid: tuple[int, int], size: tuple[int, int] | None = None) -> torch.Tensor:
    """(B, E, T, K) per-patch values → (B, E, T, h, w), or bilinearly resized to (B, E, T, H, W)."""
    b, e, t, k = maps.shape
    h, w = grid
    if h * w != k:
        raise ValueError(f"{k} patches do not form a {h}x{w} grid")
    maps = maps.reshape(b, e, t, h, w)
    if size is None or tuple(size) == (h, w):
        return maps
    flat = F.interpolate(
        maps.reshape(b * e * t, 1, h, w), size=tuple(size), mode="bilinear", align_corners=False
    )
    return flat.reshape(b, e, t, *size)
