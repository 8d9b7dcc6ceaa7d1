"""A compact VSLNet-style span predictor for Ego4D NLQ on pre-extracted video features.

Re-implemented from the VSLNet paper (Zhang et al., ACL 2020, "Span-based Localizing Network for Natural
Language Video Localization") and the Ego4D NLQ baseline's behaviour (``NLQ/VSLNet``), not ported:

* feature encoder (§3.2): linear projection + learned positions + depthwise-separable conv + self-attention;
* context–query attention (§3.3): trilinear similarity, C→Q and Q→C attention, fused ``[c, a, c⊙a, c⊙b]``;
* query-guided highlighting (§3.4, "QGH"): a per-position foreground score that re-weights the features,
  trained with BCE on the answer span extended by 10 % of its length on each side (``extend = 0.1``);
* conditioned span predictor (§3.2): start encoder, end encoder fed with the start features, start / end
  logits; loss = CE(start) + CE(end) + λ·highlight (λ = 5, VSLNet's ``highlight_lambda``).
* inference (Ego4D VSLNet ``extract_index``): ``P = p_start ⊗ p_end`` restricted to the upper triangle
  (start ≤ end), top-k cells of the flattened matrix, no NMS; position k covers clip seconds
  ``[k·dur/N, (k+1)·dur/N)``.

The query may be one pooled vector (``Lq = 1``) or token features with a mask.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

NEG_INF = -1e30
EXTEND = 0.1  # VSLNet highlight extension (fraction of the span length, each side)
HIGHLIGHT_LAMBDA = 5.0


def masked_fill_logits(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Logits with masked-out positions (mask False) set to −1e30 (VSLNet ``mask_logits``)."""
    return logits.masked_fill(~mask, NEG_INF)


class FeatureEncoder(nn.Module):
    """VSLNet §3.2 encoder block: positions + depthwise-separable conv + self-attention, each residual."""

    def __init__(self, dim: int, max_len: int, heads: int = 4, kernel: int = 7, dropout: float = 0.1) -> None:
        super().__init__()
        self.pos = nn.Embedding(max_len, dim)
        self.norm_conv = nn.LayerNorm(dim)
        self.depthwise = nn.Conv1d(dim, dim, kernel, padding=kernel // 2, groups=dim)
        self.pointwise = nn.Conv1d(dim, dim, 1)
        self.norm_attn = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.norm_ffn = nn.LayerNorm(dim)
        self.ffn = nn.Sequential(nn.Linear(dim, dim), nn.GELU(), nn.Linear(dim, dim))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, N, H), mask (B, N) bool → (B, N, H)."""
        x = x + self.pos(torch.arange(x.shape[1], device=x.device))[None]  # (B, N, H)
        y = self.norm_conv(x).transpose(1, 2)  # (B, H, N)
        x = x + self.dropout(F.gelu(self.pointwise(self.depthwise(y))).transpose(1, 2))
        y = self.norm_attn(x)
        attn, _ = self.attn(y, y, y, key_padding_mask=~mask, need_weights=False)
        x = x + self.dropout(attn)
        x = x + self.dropout(self.ffn(self.norm_ffn(x)))
        return x * mask[..., None]


class ContextQueryAttention(nn.Module):
    """VSLNet §3.3: S_ij = w·[c_i, q_j, c_i⊙q_j]; A = softmax_j(S)·Q, B = softmax_j(S)·softmax_i(S)ᵀ·C."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.w_c = nn.Linear(dim, 1, bias=False)
        self.w_q = nn.Linear(dim, 1, bias=False)
        self.w_cq = nn.Parameter(torch.empty(dim).uniform_(-1 / math.sqrt(dim), 1 / math.sqrt(dim)))
        self.out = nn.Linear(4 * dim, dim)

    def forward(
        self, context: torch.Tensor, query: torch.Tensor, c_mask: torch.Tensor, q_mask: torch.Tensor
    ) -> torch.Tensor:
        """context (B, N, H), query (B, L, H), masks (B, N) / (B, L) → fused (B, N, H)."""
        score = (
            self.w_c(context)  # (B, N, 1)
            + self.w_q(query).transpose(1, 2)  # (B, 1, L)
            + torch.einsum("bnh,blh->bnl", context * self.w_cq, query)  # (B, N, L)
        )
        s_q = torch.softmax(masked_fill_logits(score, q_mask[:, None, :]), dim=2)  # (B, N, L) over query
        s_c = torch.softmax(masked_fill_logits(score, c_mask[:, :, None]), dim=1)  # (B, N, L) over context
        a = s_q @ query  # (B, N, H) context-to-query
        b = s_q @ (s_c.transpose(1, 2) @ context)  # (B, N, H) query-to-context
        return self.out(torch.cat([context, a, context * a, context * b], dim=-1))  # (B, N, H)


class VSLNetHead(nn.Module):
    """Span predictor over N feature positions for a text query (VSLNet with QGH)."""

    def __init__(
        self, video_dim: int, query_dim: int, hidden: int = 128, max_len: int = 128, dropout: float = 0.1
    ) -> None:
        super().__init__()
        self.max_len = max_len
        self.video_proj = nn.Sequential(nn.Dropout(dropout), nn.Linear(video_dim, hidden))
        self.query_proj = nn.Sequential(nn.Dropout(dropout), nn.Linear(query_dim, hidden))
        self.encoder = FeatureEncoder(hidden, max_len, dropout=dropout)  # shared by video and query
        self.cqa = ContextQueryAttention(hidden)
        self.highlight = nn.Linear(hidden, 1)
        self.start_encoder = FeatureEncoder(hidden, max_len, dropout=dropout)
        self.end_encoder = FeatureEncoder(hidden, max_len, dropout=dropout)
        self.start_head = nn.Sequential(nn.Linear(2 * hidden, hidden), nn.GELU(), nn.Linear(hidden, 1))
        self.end_head = nn.Sequential(nn.Linear(2 * hidden, hidden), nn.GELU(), nn.Linear(hidden, 1))

    def forward(
        self, video: torch.Tensor, v_mask: torch.Tensor, query: torch.Tensor, q_mask: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """video (B, N, Dv), query (B, L, Dq), masks bool → start / end / highlight logits, each (B, N)."""
        c = self.encoder(self.video_proj(video), v_mask)  # (B, N, H)
        q = self.encoder(self.query_proj(query), q_mask)  # (B, L, H)
        fused = self.cqa(c, q, v_mask, q_mask)  # (B, N, H)
        highlight = self.highlight(fused).squeeze(-1)  # (B, N) QGH logits
        x = fused * torch.sigmoid(highlight)[..., None]  # (B, N, H)
        start = self.start_encoder(x, v_mask)  # (B, N, H)
        end = self.end_encoder(start, v_mask)  # (B, N, H)
        return {
            "start": masked_fill_logits(self.start_head(torch.cat([start, x], -1)).squeeze(-1), v_mask),
            "end": masked_fill_logits(self.end_head(torch.cat([end, x], -1)).squeeze(-1), v_mask),
            "highlight": highlight,
        }


def highlight_labels(start: torch.Tensor, end: torch.Tensor, length: torch.Tensor, n: int) -> torch.Tensor:
    """(B,) start/end indices and valid lengths → (B, N) float {0, 1} span extended by EXTEND·len each side."""
    extra = EXTEND * (end - start + 1).float()  # (B,)
    lo = (start.float() - extra).clamp(min=0)
    hi = torch.minimum(end.float() + extra, (length - 1).float())
    pos = torch.arange(n, device=start.device).float()[None]  # (1, N)
    return ((pos >= lo[:, None]) & (pos <= hi[:, None])).float()


def span_loss(
    out: dict[str, torch.Tensor], start: torch.Tensor, end: torch.Tensor, v_mask: torch.Tensor
) -> torch.Tensor:
    """VSLNet loss: CE(start) + CE(end) + λ · masked BCE(highlight)."""
    ce = F.cross_entropy(out["start"], start) + F.cross_entropy(out["end"], end)
    labels = highlight_labels(start, end, v_mask.sum(1), v_mask.shape[1])  # (B, N)
    bce = F.binary_cross_entropy_with_logits(out["highlight"], labels, reduction="none")  # (B, N)
    return ce + HIGHLIGHT_LAMBDA * (bce * v_mask).sum() / v_mask.sum()


def top_spans(start_logits: torch.Tensor, end_logits: torch.Tensor, k: int = 5) -> torch.Tensor:
    """Top-k (start, end) index pairs of the upper-triangular outer product of the softmaxes: (B, k, 2)."""
    p_start = torch.softmax(start_logits, dim=1)  # (B, N)
    p_end = torch.softmax(end_logits, dim=1)  # (B, N)
    outer = torch.triu(p_start[:, :, None] * p_end[:, None, :])  # (B, N, N), start <= end
    n = outer.shape[-1]
    flat = outer.flatten(1).topk(min(k, n * (n + 1) // 2), dim=1).indices  # (B, k)
    return torch.stack([flat // n, flat % n], dim=-1)


def span_to_seconds(spans: torch.Tensor, num_positions: int, duration: float) -> list[list[float]]:
    """(k, 2) position pairs → ``[[start_sec, end_sec], ...]``: position i covers [i·d/N, (i+1)·d/N)."""
    unit = duration / num_positions
    return [[float(s) * unit, float(e + 1) * unit] for s, e in spans.tolist()]


def seconds_to_span(start_sec: float, end_sec: float, num_positions: int, duration: float) -> tuple[int, int]:
    """Answer window (clip seconds) → (start, end) positions: the bins holding its first and last instant."""
    unit = duration / num_positions
    s = min(max(int(math.floor(start_sec / unit)), 0), num_positions - 1)
    e = min(max(int(math.ceil(end_sec / unit)) - 1, s), num_positions - 1)
    return s, e
