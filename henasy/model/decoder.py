"""HENASY's attention layers and entity-aware decoder (paper §4.3, Eq. 5–6; Table 4 decoder ablations).

- ``MultiHeadAttention``: softmax(QKᵀ/√d)V with separate q/k/v projections (keys may be wider: the global
  encoder's 768-d patch tokens), routed through ``baselines.lavila.attention`` ("sdpa" or "reference").
- ``CrossAttentionLayer``: pre-norm residual cross-attention ``q + CrossAtt(LN(q), LN(z))`` with an optional
  MLP; it is both the bootstrapping layer of Eq. 2 and the first step of Eq. 5.
- ``EntityAwareDecoder`` (Eq. 5): blocks of cross-attention (entities → last-layer global patch tokens),
  self-attention over entities, MLP. Table 4 variants: ``SelfAttentionDecoder`` ("w/ SA dec.": the same
  number of self-attention + MLP blocks over [patch tokens; entity tokens], same width) and
  ``AveragePoolDecoder`` ("w/ avg. pool": no decoder). Eq. 6 (average of the entity tokens) is applied by
  the model after the decoder.
"""

from __future__ import annotations

import torch
from timm.layers import Mlp
from torch import nn

from baselines.lavila import attention


class MultiHeadAttention(nn.Module):
    """softmax(QKᵀ/√d)V with separate q / k / v projections (keys may have another width ``kv_dim``)."""

    def __init__(self, dim: int, heads: int, kv_dim: int | None = None) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"width {dim} is not divisible by {heads} heads")
        kv_dim = kv_dim or dim
        self.heads = heads
        self.q, self.k, self.v = nn.Linear(dim, dim), nn.Linear(kv_dim, dim), nn.Linear(kv_dim, dim)
        self.proj = nn.Linear(dim, dim)
        self.impl = "sdpa"

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """(B, Lq, D) queries, (B, Lk, Dk) context → (B, Lq, D)."""
        b, lq, dim = x.shape

        def heads(z: torch.Tensor) -> torch.Tensor:  # (B, L, D) → (B, h, L, d)
            return z.reshape(b, z.shape[1], self.heads, -1).transpose(1, 2)

        out = attention(heads(self.q(x)), heads(self.k(context)), heads(self.v(context)), impl=self.impl)
        return self.proj(out.transpose(1, 2).reshape(b, lq, dim))


class CrossAttentionLayer(nn.Module):
    """Eq. 2 (bootstrapping) and the first step of Eq. 5: q ← q + CrossAtt(LN(q), LN(z)) [+ MLP(LN(q))]."""

    def __init__(self, dim: int, heads: int, kv_dim: int, mlp_ratio: float = 0.0) -> None:
        super().__init__()
        self.norm_q, self.norm_kv = nn.LayerNorm(dim), nn.LayerNorm(kv_dim)
        self.attn = MultiHeadAttention(dim, heads, kv_dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio)) if mlp_ratio > 0 else None
        self.norm_mlp = nn.LayerNorm(dim) if mlp_ratio > 0 else None

    def forward(self, queries: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """(B, Q, D), (B, L, Dk) → (B, Q, D)."""
        x = queries + self.attn(self.norm_q(queries), self.norm_kv(context))
        if self.mlp is not None:
            x = x + self.mlp(self.norm_mlp(x))
        return x


class SelfAttentionBlock(nn.Module):
    """Pre-norm transformer block: x + SelfAtt(LN(x)); x + MLP(LN(x))."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.norm_attn, self.attn = nn.LayerNorm(dim), MultiHeadAttention(dim, heads)
        self.norm_mlp, self.mlp = nn.LayerNorm(dim), Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, L, D) → (B, L, D)."""
        y = self.norm_attn(x)
        x = x + self.attn(y, y)
        return x + self.mlp(self.norm_mlp(x))


class EntityAwareBlock(nn.Module):
    """Hybrid-attention block of the entity-aware decoder (Eq. 5): ê = CrossAtt(e, z); e' = MLP(SelfAtt(ê))."""

    def __init__(self, dim: int, heads: int, kv_dim: int, mlp_ratio: float) -> None:
        super().__init__()
        self.cross = CrossAttentionLayer(dim, heads, kv_dim)  # entities → global patch tokens
        self.self_block = SelfAttentionBlock(dim, heads, mlp_ratio)  # entities ↔ entities, then MLP

    def forward(self, entities: torch.Tensor, patches: torch.Tensor) -> torch.Tensor:
        """(B, E, D) entities, (B, T·K, Dv) patch tokens → (B, E, D)."""
        return self.self_block(self.cross(entities, patches))


class EntityAwareDecoder(nn.Module):
    """§4.3, Eq. 5: a stack of hybrid-attention blocks over the global encoder's last-layer patch tokens."""

    def __init__(self, dim: int, heads: int, kv_dim: int, mlp_ratio: float, depth: int) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(EntityAwareBlock(dim, heads, kv_dim, mlp_ratio) for _ in range(depth))

    def forward(self, entities: torch.Tensor, patches: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            entities = block(entities, patches)
        return entities


class SelfAttentionDecoder(nn.Module):
    """Table 4 "w/ SA dec.": self-attention blocks over [patch tokens; entity tokens]; returns the entities."""

    def __init__(self, dim: int, heads: int, kv_dim: int, mlp_ratio: float, depth: int) -> None:
        super().__init__()
        self.patch_proj = nn.Linear(kv_dim, dim) if kv_dim != dim else nn.Identity()
        self.blocks = nn.ModuleList(SelfAttentionBlock(dim, heads, mlp_ratio) for _ in range(depth))

    def forward(self, entities: torch.Tensor, patches: torch.Tensor) -> torch.Tensor:
        x = torch.cat([self.patch_proj(patches), entities], dim=1)  # (B, T·K + E, D)
        for block in self.blocks:
            x = block(x)
        return x[:, -entities.shape[1] :]


class AveragePoolDecoder(nn.Module):
    """Table 4 "w/ avg. pool": no decoder; Eq. 6 pools the local encoder's entity tokens directly."""

    def forward(self, entities: torch.Tensor, patches: torch.Tensor | None) -> torch.Tensor:
        return entities
