"""LaViLa dual encoder: TimeSformer video tower + CLIP text tower + bare projections (Zhao et al., CVPR 2023).

Mirrors ``facebookresearch/LaViLa`` @ 8002b5a, model ``CLIP_OPENAI_TIMESFORMER_BASE`` (``lavila/models/
models.py``, ``timesformer.py``, ``openai_model.py``; own code). HENASY (paper §4.1, Appendix A) uses this
video tower as its frozen global encoder and this text tower as its text encoder; HelpingHands builds on it.

- ``SpaceTimeTransformer`` (§2.1): Frozen-in-Time divided space-time attention, one CLS token per clip,
  tiled spatial ``pos_embed`` + repeat-interleaved ``temporal_embed``, ``ln_pre``, QuickGELU, zero-initialised
  time attention. ``forward_features(video, return_all_tokens=True)`` also returns every block's tokens.
- CLIP text transformer (§2.2): causal, EOT pooling at ``tokens.argmax(-1)``; its parameters sit at the top
  level of the dual encoder (``transformer``, ``token_embedding``, ``positional_embedding``, ``ln_final``) so
  that official checkpoints load with their own key names (§2.4).
- ``LaViLaDualEncoder`` (§2.3): ``image_projection`` / ``text_projection`` bare matrices, frozen
  ``logit_scale = log(1/0.07)``; implements ``henasy.core.interface.VideoTextModel`` with EgoNCE training.
- ``load_lavila_checkpoint`` (§2.1, §2.4): official LaViLa files (``module.`` prefix, ``args`` Namespace),
  EgoVLP files through LaViLa's renaming, bilinear inflation / truncation of ``temporal_embed``.

Differences from the official code: attention runs through ``F.scaled_dot_product_attention`` except for
the few-key time groups, where the written-out softmax is faster (``attention="auto"``; "sdpa" and
"reference" force one path, the latter is the official code's math); nothing is
downloaded (the official factory fetches OpenAI CLIP weights at construction), so fresh models get a
ViT-style random init instead of CLIP's; the text tower is batch-first.
"""

from __future__ import annotations

import math
import os
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from timm.layers import DropPath, Mlp, PatchEmbed, QuickGELU, trunc_normal_
from torch import nn

from henasy.core.checkpoints import KeyReport, extract_state_dict, load_checked, load_state_dict_file
from henasy.core.egonce import egonce_loss
from henasy.core.errors import BenchError
from henasy.core.overrides import check_options

# Pixel statistics on the 0–255 scale. LaViLa's released code normalises OPENAI-initialised models with
# mean [108.3272985, 116.7460125, 104.09373615] (train and eval alike, e.g. main_pretrain.py,
# eval_zeroshot.py); its red mean differs from OpenAI CLIP's 0.48145466·255 = 122.7709383. The released
# checkpoints were trained with LaViLa's value, so it is the default; OpenAI's is kept for reference.
LAVILA_PIXEL_MEAN = (108.3272985, 116.7460125, 104.09373615)
OPENAI_CLIP_PIXEL_MEAN = (122.7709383, 116.7460125, 104.09373615)
OPENAI_CLIP_PIXEL_STD = (68.5005327, 66.6321579, 70.32316305)
IMAGENET_PIXEL_MEAN = (123.675, 116.28, 103.53)  # EgoVLP (non-OPENAI models)
IMAGENET_PIXEL_STD = (58.395, 57.12, 57.375)

CLIP_VOCAB_SIZE = 49408  # OpenAI CLIP BPE vocabulary incl. <start_of_text>=49406, <end_of_text>=49407
ATTENTION_IMPLS = ("auto", "sdpa", "reference")
# "auto": SDPA, except for attention over at most this many keys (the time groups: T+1 keys), where the
# fused kernels waste their tiles and the explicit path is faster. scripts/bench_attention.py on an H200,
# TSF-B tower, batch 32 × 4 frames, speed-up over the explicit path: bf16 sdpa 1.05x, auto 1.36x;
# fp32 sdpa 0.90x, auto 1.01x (16 frames, batch 8, bf16: sdpa 1.36x, auto 1.39x).
AUTO_EXPLICIT_MAX_KEYS = 32
ACTIVATIONS = {"quick_gelu": QuickGELU, "gelu": nn.GELU}

# Overrides that give the EgoVLP video tower (ImageNet-initialised timm ViT: GELU, conv bias, no ln_pre,
# 16-frame temporal_embed in EgoVLP_PT_BEST) so that an EgoVLP checkpoint's visual part loads exactly.
EGOVLP_VISUAL_OVERRIDES: dict[str, Any] = {
    "ln_pre": False,
    "vision_act": "gelu",
    "num_frames": 16,
    "pixel_mean": IMAGENET_PIXEL_MEAN,
    "pixel_std": IMAGENET_PIXEL_STD,
}


# --------------------------------------------------------------------------------------------------------
# Attention


def divided_groups(z: torch.Tensor, frames: int, patches: int, axis: str) -> torch.Tensor:
    """(B, h, T·N, d) → (B, h·G, S, d): the groups divided space-time attention attends within — one per frame
    (``axis="space"``: G = T, S = N) or one per patch position (``axis="time"``: G = N, S = T)."""
    b, h = z.shape[:2]
    z = z.reshape(b, h, frames, patches, -1)  # (B, h, T, N, d)
    if axis == "time":
        z = z.transpose(2, 3)  # (B, h, N, T, d)
    groups, size = (patches, frames) if axis == "time" else (frames, patches)
    return z.reshape(b, h * groups, size, -1)


def attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, impl: str = "auto", causal: bool = False
) -> torch.Tensor:
    """softmax(q·kᵀ/√d)·v over the last two dims of (..., L, d) tensors.

    ``impl``: "sdpa" (``F.scaled_dot_product_attention``), "reference" (the softmax written out, as in the
    official code) or "auto" (SDPA unless there are at most ``AUTO_EXPLICIT_MAX_KEYS`` keys).
    """
    if impl == "auto":
        impl = "reference" if k.shape[-2] <= AUTO_EXPLICIT_MAX_KEYS else "sdpa"
    if impl == "sdpa":
        return F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    scores = (q * q.shape[-1] ** -0.5) @ k.transpose(-2, -1)  # (..., Lq, Lk)
    if causal:
        future = torch.ones(scores.shape[-2:], dtype=torch.bool, device=scores.device).triu(1)
        scores = scores.masked_fill(future, float("-inf"))
    return scores.softmax(dim=-1) @ v  # (..., Lq, d)


class DividedAttention(nn.Module):
    """Frozen-in-Time ``VarAttention`` (LaViLa timesformer.py, paper Appendix A): attention within time or space groups.

    Tokens are [CLS; patches] with patches in frame-major order (t·N + n). The CLS query attends to all
    tokens; a patch query attends to its group — ``"time"``: the same location n in every frame,
    ``"space"``: every patch of its frame t — plus the CLS key/value copied into each group.
    """

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"width {dim} is not divisible by {num_heads} heads")
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.impl = "auto"

    @torch.no_grad()
    def zero_init(self) -> None:
        """LaViLa ``time_init='zeros'`` (LaViLa timesformer.py): qkv weight/bias = 0, proj weight = 1, proj bias = 0."""
        self.qkv.weight.zero_()
        if self.qkv.bias is not None:
            self.qkv.bias.zero_()
        self.proj.weight.fill_(1.0)
        self.proj.bias.zero_()

    def forward(self, x: torch.Tensor, axis: str, num_frames: int, num_global: int = 1) -> torch.Tensor:
        """(B, C+T·N, D) → (B, C+T·N, D), attending along ``axis`` ("time" or "space").

        C = ``num_global`` leading tokens that attend to every token and whose keys/values join every group:
        LaViLa's one CLS token by default; HENASY's ``GroupDividedAttention`` passes its group tokens (or 0).
        """
        b, length, dim = x.shape
        h, t, c = self.num_heads, num_frames, num_global
        n = (length - c) // t
        if n * t != length - c or n < 1 or axis not in ("time", "space"):
            raise ValueError(
                f"need axis 'time' or 'space' and T·N frame tokens after {c} global token(s); "
                f"got {axis!r}, {length - c}, T={t}"
            )
        q, k, v = self.qkv(x).view(b, length, 3, h, dim // h).permute(2, 0, 3, 1, 4)  # each (B, h, C+T·N, d)
        groups, size = (n, t) if axis == "time" else (t, n)
        keys, values = divided_groups(k[:, :, c:], t, n, axis), divided_groups(v[:, :, c:], t, n, axis)
        if c:  # the global keys/values join every group: (B, h·G, C+S, d)
            shared_k, shared_v = (
                z[:, :, :c].repeat_interleave(groups, dim=1) for z in (k, v)
            )  # (B, h·G, C, d)
            keys, values = torch.cat([shared_k, keys], dim=2), torch.cat([shared_v, values], dim=2)
        out = attention(
            divided_groups(q[:, :, c:], t, n, axis), keys, values, impl=self.impl
        )  # (B, h·G, S, d)
        out = out.reshape(b, h, groups, size, -1)
        if axis == "time":
            out = out.transpose(2, 3)  # (B, h, T, N, d)
        out = out.reshape(b, h, t * n, -1)  # (B, h, T·N, d)
        if c:  # the global queries see every token: (B, h, C+T·N, d)
            out = torch.cat([attention(q[:, :, :c], k, v, impl=self.impl), out], dim=2)
        return self.proj(out.transpose(1, 2).reshape(b, length, dim))


class SpaceTimeBlock(nn.Module):
    """Divided space-time block with the Frozen-in-Time residual (LaViLa timesformer.py, paper Appendix A).

    t = timeattn(norm3(x)); s = attn(norm1(x + t)); x = x + s; x = x + mlp(norm2(x)) — the time output
    reaches the residual stream only through the space attention's input.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        drop_path: float = 0.0,
        act_layer: type[nn.Module] = QuickGELU,
        time_gate: bool = False,
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = DividedAttention(dim, num_heads, qkv_bias)
        self.timeattn = DividedAttention(dim, num_heads, qkv_bias)
        self.timeattn.zero_init()  # LaViLa time_init='zeros'
        if time_gate:  # LaViLa --timesformer-gated-xattn: t is scaled by tanh(alpha), alpha initialised at 0
            self.alpha_timeattn = nn.Parameter(torch.zeros([]))
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), act_layer=act_layer)
        self.norm3 = nn.LayerNorm(dim, eps=1e-6)

    def forward(self, x: torch.Tensor, num_frames: int, num_global: int = 1) -> torch.Tensor:
        """(B, C+T·N, D) → (B, C+T·N, D) with C = ``num_global`` leading tokens (LaViLa: the CLS token)."""
        t = self.timeattn(self.norm3(x), "time", num_frames, num_global)
        if hasattr(self, "alpha_timeattn"):
            t = torch.tanh(self.alpha_timeattn) * t
        x = x + self.drop_path(self.attn(self.norm1(x + t), "space", num_frames, num_global))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class SpaceTimeTransformer(nn.Module):
    """LaViLa's TimeSformer video encoder (LaViLa timesformer.py): (B, C, T, H, W) → CLS feature (B, D)."""

    def __init__(
        self,
        *,
        image_size: int = 224,
        patch_size: int = 16,
        num_frames: int = 4,
        width: int = 768,
        depth: int = 12,
        heads: int = 12,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        drop_path_rate: float = 0.0,
        ln_pre: bool = True,
        act: str = "quick_gelu",
        time_gate: bool = False,
    ) -> None:
        super().__init__()
        self.image_size, self.num_frames, self.width = image_size, num_frames, width
        self.patches_per_frame = (image_size // patch_size) ** 2
        # CLIP-initialised towers have ln_pre and a bias-free patch conv (`bias=not ln_pre` in LaViLa)
        self.patch_embed = PatchEmbed(image_size, patch_size, 3, width, bias=not ln_pre)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, width))  # one CLS token per clip
        self.pos_embed = nn.Parameter(
            torch.zeros(1, 1 + self.patches_per_frame, width)
        )  # spatial, tiled over T
        self.temporal_embed = nn.Parameter(torch.zeros(1, num_frames, width))
        self.ln_pre = nn.LayerNorm(width) if ln_pre else nn.Identity()  # eps 1e-5 (blocks use 1e-6)
        rates = [drop_path_rate * i / max(depth - 1, 1) for i in range(depth)]  # stochastic depth decay rule
        self.blocks = nn.ModuleList(
            SpaceTimeBlock(width, heads, mlp_ratio, qkv_bias, rate, ACTIVATIONS[act], time_gate)
            for rate in rates
        )
        self.norm = nn.LayerNorm(width, eps=1e-6)
        self.init_weights()

    @torch.no_grad()
    def init_weights(self) -> None:
        """ViT-style random init (LaViLa starts from CLIP weights, which we never download); time attention
        zero-initialised as LaViLa's ``time_init='zeros'`` so a fresh block starts as a per-frame ViT block."""
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Conv2d)):
                trunc_normal_(module.weight, std=0.02)
                if module.bias is not None:
                    module.bias.zero_()
            elif isinstance(module, nn.LayerNorm):
                module.weight.fill_(1.0)
                module.bias.zero_()
        trunc_normal_(self.pos_embed, std=0.02)
        trunc_normal_(self.cls_token, std=0.02)
        self.temporal_embed.zero_()
        for block in self.blocks:
            block.timeattn.zero_init()

    def embed_patches(self, video: torch.Tensor) -> torch.Tensor:
        """(B, C, T, H, W) → [CLS; patches] (B, 1+T·N, D) with positional terms added, before ``ln_pre``.

        Patch (t, n) gets pos_embed[1+n] + temporal_embed[t]; CLS gets cls_token + pos_embed[0] only.
        """
        if video.dim() != 5:
            raise ValueError(f"video must be (B, C, T, H, W), got shape {tuple(video.shape)}")
        b, c, t, height, width = video.shape
        if t > self.num_frames or (height, width) != (self.image_size, self.image_size) or c != 3:
            raise ValueError(
                f"video (B, C, T, H, W) = {tuple(video.shape)} does not fit this encoder: needs C=3, "
                f"T ≤ {self.num_frames}, H = W = {self.image_size}"
            )
        n = self.patches_per_frame
        frames = video.transpose(1, 2).reshape(b * t, c, height, width)  # (B·T, C, H, W)
        patches = self.patch_embed(frames).reshape(b, t * n, self.width)  # (B, T·N, D), frame-major
        spatial = self.pos_embed[:, 1:].repeat(1, t, 1)  # (1, T·N, D): [p1..pN, p1..pN, ...]
        temporal = self.temporal_embed[:, :t].repeat_interleave(n, dim=1)  # (1, T·N, D): [e1 ×N, e2 ×N, ...]
        cls = (self.cls_token + self.pos_embed[:, :1]).expand(b, -1, -1)  # (B, 1, D)
        return torch.cat([cls, patches + spatial + temporal], dim=1)  # (B, 1+T·N, D)

    def layer_tokens(self, video: torch.Tensor) -> Iterator[torch.Tensor]:
        """(B, C, T, H, W) → yields z^0 = ``ln_pre(embed_patches(video))``, then each block's output, all
        (B, 1+T·N, D) before the final ``norm`` (``depth + 1`` tensors; a caller keeps only what it needs)."""
        num_frames = video.shape[2]
        x = self.ln_pre(self.embed_patches(video))  # (B, 1+T·N, D)
        yield x
        for block in self.blocks:
            x = block(x, num_frames)
            yield x

    def forward_features(
        self, video: torch.Tensor, return_all_tokens: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
        """CLS feature ``norm(x)[:, 0]`` (B, D); with ``return_all_tokens`` also the output of every block
        (list of ``depth`` tensors (B, 1+T·N, D), before the final ``norm``; block i's entry is index i)."""
        layers = self.layer_tokens(video)
        x = next(layers)  # z^0, (B, 1+T·N, D)
        per_block = []
        for x in layers:
            if return_all_tokens:
                per_block.append(x)
        cls = self.norm(x[:, 0])  # (B, D); LayerNorm is per token, so norm(x)[:, 0] == norm(x[:, 0])
        return (cls, per_block) if return_all_tokens else cls

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        """(B, C, T, H, W) → (B, D) CLS feature."""
        return self.forward_features(video)


# --------------------------------------------------------------------------------------------------------
# CLIP text tower


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention with ``nn.MultiheadAttention``'s parameter names."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        if width % heads:
            raise ValueError(f"text width {width} is not divisible by {heads} heads")
        self.heads = heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * width, width))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * width))
        self.out_proj = nn.Linear(width, width)
        self.impl = "auto"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, L, W) → (B, L, W); position i sees positions ≤ i."""
        b, length, width = x.shape
        qkv = F.linear(x, self.in_proj_weight, self.in_proj_bias)  # (B, L, 3W)
        q, k, v = qkv.view(b, length, 3, self.heads, width // self.heads).permute(
            2, 0, 3, 1, 4
        )  # (B, h, L, d)
        out = attention(q, k, v, impl=self.impl, causal=True)  # (B, h, L, d)
        return self.out_proj(out.transpose(1, 2).reshape(b, length, width))


class TextBlock(nn.Module):
    """CLIP ``ResidualAttentionBlock`` (LaViLa openai_model.py): x + attn(ln_1(x)); x + mlp(ln_2(x)), QuickGELU MLP."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(width)
        self.attn = CausalSelfAttention(width, heads)
        self.ln_2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(
            OrderedDict(
                c_fc=nn.Linear(width, 4 * width), gelu=QuickGELU(), c_proj=nn.Linear(4 * width, width)
            )
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, L, W) → (B, L, W)."""
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class TextTransformer(nn.Module):
    """CLIP's ``Transformer(width, layers, heads)``: a stack of causal ``resblocks``."""

    def __init__(self, width: int, layers: int, heads: int) -> None:
        super().__init__()
        self.width, self.layers = width, layers
        self.resblocks = nn.ModuleList(TextBlock(width, heads) for _ in range(layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, L, W) → (B, L, W)."""
        for block in self.resblocks:
            x = block(x)
        return x


@lru_cache(maxsize=1)
def _bpe() -> Any:
    """open_clip's ``SimpleTokenizer`` with its bundled BPE vocabulary (offline)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from open_clip.tokenizer import SimpleTokenizer

    return SimpleTokenizer()


def clip_tokenize(texts: list[str] | str, context_length: int = 77) -> torch.Tensor:
    """CLIP BPE token ids (B, context_length) with LaViLa's convention (its ``SimpleTokenizer.__call__``).

    Each text becomes [SOT] + BPE(lower-cased, cleaned text) + [EOT], zero-padded. Texts longer than the
    context are cut **without re-inserting EOT** (LaViLa); ``open_clip.tokenize`` instead overwrites the last
    kept token with EOT. We keep LaViLa's rule so that EOT pooling (``argmax``) of long narrations picks the
    same position as in the released checkpoints' training and evaluation; for texts that fit (nearly all
    narrations) both conventions give identical ids.
    """
    if isinstance(texts, str):
        texts = [texts]
    if not all(isinstance(t, str) for t in texts):
        raise TypeError("tokenize expects a list of strings")
    bpe = _bpe()
    ids = torch.zeros(len(texts), context_length, dtype=torch.long)
    for row, text in enumerate(texts):
        tokens = ([bpe.sot_token_id] + bpe.encode(text) + [bpe.eot_token_id])[:context_length]
        ids[row, : len(tokens)] = torch.tensor(tokens, dtype=torch.long)
    return ids


# --------------------------------------------------------------------------------------------------------
# Dual encoder


@dataclass(frozen=True)
class LaViLaConfig:
    """Architecture of a LaViLa dual encoder; defaults = ``CLIP_OPENAI_TIMESFORMER_BASE`` (lavila/models/models.py)."""

    # video tower: SpaceTimeTransformer
    image_size: int = 224  # square crop side H = W in pixels
    patch_size: int = 16  # patch side P; N = (H/P)² patches per frame
    num_frames: int = 4  # clip length T the temporal_embed is sized for (LaViLa trains with 4)
    vision_width: int = 768  # D
    vision_depth: int = 12  # divided space-time blocks
    vision_heads: int = 12
    mlp_ratio: float = 4.0
    drop_path_rate: float = 0.0
    ln_pre: bool = True  # CLIP-style: ln_pre and bias-free patch conv; False = EgoVLP tower (conv bias)
    vision_act: str = "quick_gelu"  # "quick_gelu" (CLIP init) or "gelu" (EgoVLP's ImageNet ViT)
    time_gate: bool = False  # tanh-gated time attention (`alpha_timeattn`), LaViLa --timesformer-gated-xattn
    # text tower: CLIP causal transformer
    context_length: int = 77
    vocab_size: int = CLIP_VOCAB_SIZE
    text_width: int = 512
    text_depth: int = 12
    text_heads: int = 8
    # joint space
    embed_dim: int = 256  # LaViLa --project-embed-dim
    temperature: float = 0.07  # logit_scale = log(1/temperature)
    freeze_temperature: bool = True  # LaViLa --freeze-temperature
    # preprocessing and kernels
    pixel_mean: tuple[float, float, float] = LAVILA_PIXEL_MEAN  # 0–255 scale, see LAVILA_PIXEL_MEAN
    pixel_std: tuple[float, float, float] = OPENAI_CLIP_PIXEL_STD
    attention: str = "auto"  # "sdpa" (F.scaled_dot_product_attention), "reference" (explicit softmax) or
    # "auto" (SDPA except over ≤ AUTO_EXPLICIT_MAX_KEYS keys, i.e. the short time groups)

    def __post_init__(self) -> None:
        problems = []
        positive = (
            "image_size",
            "patch_size",
            "num_frames",
            "vision_width",
            "vision_heads",
            "context_length",
        )
        positive += ("vocab_size", "text_width", "text_heads", "embed_dim")
        problems += [f"{name} must be a positive integer" for name in positive if getattr(self, name) < 1]
        if self.patch_size >= 1 and self.image_size % self.patch_size:
            problems.append(f"image_size {self.image_size} is not a multiple of patch_size {self.patch_size}")
        for width, heads in (("vision_width", "vision_heads"), ("text_width", "text_heads")):
            if getattr(self, heads) >= 1 and getattr(self, width) % getattr(self, heads):
                problems.append(
                    f"{width} {getattr(self, width)} is not divisible by {heads} {getattr(self, heads)}"
                )
        if self.vision_act not in ACTIVATIONS:
            problems.append(f"vision_act must be one of {sorted(ACTIVATIONS)}, got {self.vision_act!r}")
        if self.attention not in ATTENTION_IMPLS:
            problems.append(f"attention must be one of {list(ATTENTION_IMPLS)}, got {self.attention!r}")
        if not self.temperature > 0:
            problems.append(f"temperature must be > 0, got {self.temperature}")
        if problems:
            raise BenchError("invalid LaViLa configuration: " + "; ".join(problems))


def rescale_per_frame(maps: torch.Tensor) -> torch.Tensor:
    """(B, T, H, W) scores → [0, 1] per frame (min → 0, max → 1; a constant frame → 0): soft grounding masks."""
    low = maps.flatten(2).amin(dim=-1)[..., None, None]  # (B, T, 1, 1)
    high = maps.flatten(2).amax(dim=-1)[..., None, None]
    return ((maps - low) / (high - low).clamp(min=1e-12)).clamp(0.0, 1.0)


class LaViLaDualEncoder(nn.Module):
    """LaViLa CLIP-style dual encoder (lavila/models/models.py); follows ``henasy.core.interface.VideoTextModel``."""

    def __init__(self, config: LaViLaConfig | None = None) -> None:
        super().__init__()
        cfg = config or LaViLaConfig()
        self.config = cfg
        self.num_frames, self.image_size, self.embed_dim = cfg.num_frames, cfg.image_size, cfg.embed_dim
        self.context_length = cfg.context_length
        self.pixel_mean, self.pixel_std = tuple(cfg.pixel_mean), tuple(cfg.pixel_std)
        self.visual = SpaceTimeTransformer(
            image_size=cfg.image_size,
            patch_size=cfg.patch_size,
            num_frames=cfg.num_frames,
            width=cfg.vision_width,
            depth=cfg.vision_depth,
            heads=cfg.vision_heads,
            mlp_ratio=cfg.mlp_ratio,
            drop_path_rate=cfg.drop_path_rate,
            ln_pre=cfg.ln_pre,
            act=cfg.vision_act,
            time_gate=cfg.time_gate,
        )
        self.transformer = TextTransformer(cfg.text_width, cfg.text_depth, cfg.text_heads)
        self.token_embedding = nn.Embedding(cfg.vocab_size, cfg.text_width)
        self.positional_embedding = nn.Parameter(torch.empty(cfg.context_length, cfg.text_width))
        self.ln_final = nn.LayerNorm(cfg.text_width)
        self.image_projection = nn.Parameter(torch.empty(cfg.vision_width, cfg.embed_dim))  # x @ P, no bias
        self.text_projection = nn.Parameter(torch.empty(cfg.text_width, cfg.embed_dim))
        logit_scale = torch.tensor(math.log(1.0 / cfg.temperature))
        self.logit_scale = nn.Parameter(logit_scale, requires_grad=not cfg.freeze_temperature)
        self._init_text_and_heads()
        self.set_attention_impl(cfg.attention)

    @torch.no_grad()
    def _init_text_and_heads(self) -> None:
        """LaViLa ``CLIP.initialize_parameters`` (normal inits scaled by width and depth); biases zero."""
        width, layers = self.transformer.width, self.transformer.layers
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        nn.init.normal_(self.positional_embedding, std=0.01)
        proj_std, attn_std, fc_std = width**-0.5 * (2 * layers) ** -0.5, width**-0.5, (2 * width) ** -0.5
        for block in self.transformer.resblocks:
            nn.init.normal_(block.attn.in_proj_weight, std=attn_std)
            nn.init.normal_(block.attn.out_proj.weight, std=proj_std)
            nn.init.normal_(block.mlp.c_fc.weight, std=fc_std)
            nn.init.normal_(block.mlp.c_proj.weight, std=proj_std)
            for linear in (block.attn.out_proj, block.mlp.c_fc, block.mlp.c_proj):
                linear.bias.zero_()
        nn.init.normal_(self.image_projection, std=self.visual.width**-0.5)
        nn.init.normal_(self.text_projection, std=width**-0.5)

    def set_attention_impl(self, impl: str) -> None:
        """Route every attention layer through ``"auto"``, ``"sdpa"`` or the explicit ``"reference"`` path."""
        if impl not in ATTENTION_IMPLS:
            raise ValueError(f"attention impl must be one of {ATTENTION_IMPLS}, got {impl!r}")
        for module in self.modules():
            if isinstance(module, (DividedAttention, CausalSelfAttention)):
                module.impl = impl

    @property
    def temperature(self) -> torch.Tensor:
        """τ = 1 / exp(logit_scale) (0.07 for the frozen LaViLa temperature)."""
        return self.logit_scale.exp().reciprocal()

    # -- text ---------------------------------------------------------------------------------------------
    def tokenize(self, texts: list[str]) -> torch.Tensor:
        """CLIP BPE ids (B, context_length), LaViLa truncation (see ``clip_tokenize``)."""
        return clip_tokenize(texts, self.context_length)

    def encode_text_features(
        self, tokens: torch.Tensor, return_all_tokens: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """EOT feature before projection (B, W), pooled at ``tokens.argmax(-1)`` (EOT has the highest id);
        with ``return_all_tokens`` also every position after ``ln_final`` (B, L, W)."""
        if tokens.dim() != 2 or tokens.shape[1] > self.context_length:
            raise ValueError(f"tokens must be (B, L ≤ {self.context_length}), got {tuple(tokens.shape)}")
        length = tokens.shape[1]
        x = self.token_embedding(tokens) + self.positional_embedding[:length]  # (B, L, W)
        x = self.ln_final(self.transformer(x))  # (B, L, W)
        eot = x[torch.arange(x.shape[0], device=x.device), tokens.argmax(dim=-1)]  # (B, W)
        return (eot, x) if return_all_tokens else eot

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, L) token ids → (B, embed_dim) L2-normalised text embeddings."""
        return F.normalize(self.encode_text_features(tokens) @ self.text_projection, dim=-1)

    # -- video --------------------------------------------------------------------------------------------
    def encode_video_features(self, video: torch.Tensor) -> torch.Tensor:
        """(B, C, T, H, W) → CLS feature before projection (B, vision_width)."""
        return self.visual(video)

    def encode_video(self, video: torch.Tensor) -> torch.Tensor:
        """(B, C, T, H, W) normalised pixels → (B, embed_dim) L2-normalised video embeddings."""
        return F.normalize(self.encode_video_features(video) @ self.image_projection, dim=-1)

    def patch_scores(self, video: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """(B, C, T, H, W), (B, L) → (B, T, H/P, W/P): cosine of each projected last-block patch token with the
        query embedding (patch tokens go through the final norm and ``image_projection`` as the CLS does)."""
        b, _, t, height, width = video.shape
        _, blocks = self.visual.forward_features(video, return_all_tokens=True)
        patches = self.visual.norm(blocks[-1][:, 1:])  # (B, T·N, D), frame-major
        embeds = F.normalize(patches @ self.image_projection, dim=-1)  # (B, T·N, E)
        scores = torch.einsum("bke,be->bk", embeds, self.encode_text(tokens))  # (B, T·N)
        return scores.reshape(b, t, height // self.config.patch_size, width // self.config.patch_size)

    def ground(self, video: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """(B, C, T, H, W) video, (B, L) query ids → (B, T, H, W) soft masks in [0, 1] (the grounding benchmark).

        Not part of LaViLa or the paper, which predict no masks (decision, inferred): a dense-similarity
        baseline so dual encoders can be scored beside HENASY. ``patch_scores`` bilinearly resized to the
        input and rescaled per frame to [0, 1].
        """
        b, _, t, height, width = video.shape
        scores = self.patch_scores(video, tokens)  # (B, T, h, w)
        maps = F.interpolate(
            scores.flatten(0, 1)[:, None], size=(height, width), mode="bilinear", align_corners=False
        )  # (B·T, 1, H, W)
        return rescale_per_frame(maps.reshape(b, t, height, width))

    def forward(self, video: torch.Tensor, tokens: torch.Tensor) -> dict[str, torch.Tensor]:
        """Both embeddings (L2-normalised, LaViLa ``--norm-embed``) and the logit scale."""
        return {
            "video_embed": self.encode_video(video),
            "text_embed": self.encode_text(tokens),
            "logit_scale": self.logit_scale.exp(),
        }

    # -- training -----------------------------------------------------------------------------------------
    def training_losses(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """EgoNCE (paper Eq. 1) on ``batch["video"]`` (B, C, T, H, W) and ``batch["text"]`` (B, L) ids.

        Optional ``batch["verb_tags"]`` / ``batch["noun_tags"]`` multi-hot (B, V) / (B, N) add the pairs that
        share a verb and a noun as positives; without them the loss is symmetric InfoNCE. τ = 1/exp(logit_scale).
        """
        missing = [key for key in ("video", "text") if key not in batch]
        if missing:
            raise ValueError(f"training batch lacks {missing}; it has keys {sorted(batch)}")
        video_embed = self.encode_video(batch["video"])  # (B, E)
        text_embed = self.encode_text(batch["text"])  # (B, E)
        loss = egonce_loss(
            video_embed,
            text_embed,
            batch.get("verb_tags"),
            batch.get("noun_tags"),
            temperature=self.temperature,
        )
        return {"loss": loss, "egonce": loss.detach()}

    # -- checkpoints --------------------------------------------------------------------------------------
    def load_checkpoint(self, source: str | Path | Mapping[str, Any], strict: bool = True) -> KeyReport:
        """Load an official LaViLa (or EgoVLP) checkpoint, see ``load_lavila_checkpoint``."""
        return load_lavila_checkpoint(self, source, strict=strict)


# --------------------------------------------------------------------------------------------------------
# Checkpoints

EGOVLP_RENAMES = {  # LaViLa scripts/convert_egovlp_ckpt.py
    "video_model.": "visual.",
    "text_model.": "textual.",
    "txt_proj.": "text_projection.",
    "vid_proj.": "image_projection.",
}


def fit_temporal_embed(embed: torch.Tensor, num_frames: int) -> torch.Tensor:
    """A [1, T', D] ``temporal_embed`` resized to T frames (LaViLa ``inflate_positional_embeds``).

    T' < T: bilinear interpolation of the (T', D) grid to (T, D) (``align_corners=False``, so along D it is
    the identity); T' > T: the first T frames are kept.
    """
    have = embed.shape[1]
    if have == num_frames:
        return embed
    if have > num_frames:
        return embed[:, :num_frames].clone()
    grid = embed.float().unsqueeze(0)  # (1, 1, T', D)
    resized = F.interpolate(grid, size=(num_frames, embed.shape[2]), mode="bilinear", align_corners=False)
    return resized.squeeze(0).to(embed.dtype)  # (1, T, D)


def _from_egovlp(state_dict: dict[str, torch.Tensor], report: KeyReport) -> dict[str, torch.Tensor]:
    """EgoVLP (or LaViLa-converted EgoVLP) keys → this model's; sets aside what has no counterpart here.

    The video tower maps 1:1 (``video_model.`` → ``visual.``). EgoVLP's text tower is HF DistilBERT, which is
    not built here, and its ``txt_proj`` expects DistilBERT's 768-d features: both are reported as not
    loadable. ``vid_proj`` is ``Linear(768, 256)``: its weight, transposed, is LaViLa's bare
    ``image_projection``; its bias has no counterpart and is reported (embeddings differ by that offset).
    """
    renamed = {}
    for key, value in state_dict.items():
        for old, new in EGOVLP_RENAMES.items():
            if key.startswith(old):
                key = new + key[len(old) :]
                break
        renamed[key] = value
    converted = {}
    for key, value in renamed.items():
        if key.startswith("textual."):
            report.not_loadable[key] = (
                "EgoVLP DistilBERT text tower (not built; this model has a CLIP text tower)"
            )
        elif key.startswith("text_projection."):
            report.not_loadable[key] = "EgoVLP txt_proj expects 768-d DistilBERT features"
        elif key == "image_projection.0.weight":
            converted["image_projection"] = value.T.contiguous()  # Linear weight (E, D) → bare (D, E)
        elif key == "image_projection.0.bias":
            report.not_loadable[key] = "LaViLa's bare image_projection has no bias"
        else:
            converted[key] = value
    report.notes.append(
        "EgoVLP checkpoint: renamed video_model→visual, vid_proj→image_projection (LaViLa convert_egovlp_ckpt); "
        "the text tower keeps its initialisation; the visual tower needs EGOVLP_VISUAL_OVERRIDES "
        "(ln_pre=False, vision_act='gelu', num_frames=16)"
    )
    return converted


def is_egovlp_state_dict(state_dict: Mapping[str, torch.Tensor]) -> bool:
    """True for EgoVLP checkpoints, original (``video_model.``) or converted by LaViLa (``textual.``)."""
    return any(
        k.startswith(("video_model.", "text_model.", "textual.", "image_projection.0.")) for k in state_dict
    )


def load_lavila_checkpoint(
    model: LaViLaDualEncoder, source: str | Path | Mapping[str, Any], strict: bool = True
) -> KeyReport:
    """Load a LaViLa dual-encoder checkpoint (file path, checkpoint dict or state_dict) into ``model``.

    Official files (``{"epoch", "state_dict": {"module.…"}, "args", …}``) load with zero missing and zero
    unexpected keys into the matching preset. ``visual.temporal_embed`` is inflated (bilinear) or truncated
    to the model's frame count. EgoVLP checkpoints go through LaViLa's renaming; their visual tower and
    image projection load (with ``EGOVLP_VISUAL_OVERRIDES``), the DistilBERT text side is reported as not
    loadable and the model's text keys as missing (``strict`` then only requires the visual side).
    ``strict``: a mismatch raises ``CheckpointError`` listing the first offending keys; otherwise matching
    keys are loaded and the ``KeyReport`` says what was not. Never downloads anything.
    """
    if isinstance(source, (str, Path)):
        name, state_dict = str(source), load_state_dict_file(source)
    else:
        name, state_dict = "state_dict", extract_state_dict(source, source="state_dict")
    report = KeyReport()
    required = None
    if is_egovlp_state_dict(state_dict):
        state_dict = _from_egovlp(state_dict, report)
        required = ("visual.", "image_projection")
    embed = state_dict.get("visual.temporal_embed")
    if embed is not None and embed.dim() == 3 and embed.shape[1] != model.visual.num_frames:
        how = "bilinear inflation" if embed.shape[1] < model.visual.num_frames else "truncation"
        state_dict["visual.temporal_embed"] = fit_temporal_embed(embed, model.visual.num_frames)
        report.notes.append(
            f"visual.temporal_embed: {embed.shape[1]} → {model.visual.num_frames} frames ({how})"
        )
    return load_checked(
        model, state_dict, strict=strict, report=report, source=name, required_prefixes=required
    )


# --------------------------------------------------------------------------------------------------------
# Presets (registered in henasy.core.catalog.MODELS)

PAPER_CONFIG = LaViLaConfig()  # TSF-B + CLIP text 512/12/8, 4 frames, 224 px, 256-d heads: 177.66 M
TINY_CONFIG = LaViLaConfig(  # trains on the CPU in seconds; same tokenizer and code paths
    image_size=64,
    patch_size=16,
    vision_width=96,
    vision_depth=2,
    vision_heads=2,
    context_length=32,
    text_width=96,
    text_depth=2,
    text_heads=2,
    embed_dim=64,
)


def build_lavila(base: LaViLaConfig, **overrides: Any) -> LaViLaDualEncoder:
    """``LaViLaDualEncoder`` from ``base`` with keyword overrides; an unknown key raises ``BenchError``."""
    check_options("LaViLa", overrides, {"valid options": [f.name for f in fields(LaViLaConfig)]})
    return LaViLaDualEncoder(replace(base, **overrides))


def lavila_tsf_base(**overrides: Any) -> LaViLaDualEncoder:
    """Paper preset: LaViLa TSF-B dual encoder (4 frames, 224 px, 256-d heads), 177.7 M parameters."""
    return build_lavila(PAPER_CONFIG, **overrides)


def lavila_tiny(**overrides: Any) -> LaViLaDualEncoder:
    """Tiny preset (64 px, width 96, 2+2 layers, 32-token context) for CPU training and tests."""
    return build_lavila(TINY_CONFIG, **overrides)
