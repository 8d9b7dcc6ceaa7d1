"""HENASY (Phan et al., NeurIPS 2024): LaViLa dual encoder + local entity encoder + entity-aware decoder.

First implementation (no official code exists); every component follows the paper:
§4.1 global encoder (LaViLa TSF-B, frozen), §4.2 local entity encoder (bootstrapping stage Eq. 2, TAG
Eq. 3–4 / 11–12 in ``henasy.model.grouping``, entity grouping stage of DST blocks, temporal average pooling),
§4.3 entity-aware decoder (Eq. 5–6, ``henasy.model.decoder``), §4.4 losses (``henasy.model.losses``), App. B.2
saliency maps (Eq. 13).
``HenasyModel`` subclasses ``baselines.lavila.LaViLaDualEncoder``: the global encoder is its ``visual``
tower and the text encoder its CLIP text tower, with LaViLa's parameter names, so LaViLa checkpoints load
into them unchanged (§5.1: both initialised from LaViLa and frozen).

Decisions where the paper leaves a choice open (each also commented where it is implemented):

- Width. §5.1 says D = 512, but the 291 M of Table 5 is only reached with the local encoder at the
  backbone width 768 (at 512 this implementation has 231.1 M). We default to ``width = None`` → the global
  encoder's width (768 for TSF-B): the bootstrapping cross-attention, TAG over patch tokens and the decoder
  then read the global patch tokens without extra 768→512 projections. ``width=512`` is supported (linear
  patch projections appear).
- Size. The paper preset has 291,358,465 parameters (291.4 M; Table 5: 291 M), module by module at
  D = 768, hidden 4D, G = 64, E = 8 (``bench info henasy``; tests/test_henasy_model.py checks the total):
  frozen LaViLa TSF-B dual encoder 177,662,977 (vision 114,169,344; text 63,297,025 incl. its projection and logit scale;
  ``image_projection`` 196,608, unused); local encoder 85,137,408 = group tokens (64 + 8)·768 = 55,296
  + 6 bootstrapping layers × 2,365,440 (2 LN + q, k, v, out: 2·2D + 4(D² + D)) = 14,192,640
  + 2 TAG blocks × 7,089,408 (GroupViT's grouping block, arithmetic in henasy/model/grouping.py) = 14,178,816
  + (3 + 3) DST blocks × 9,451,776 (3 LN + space and time attention 2·4(D² + D) + MLP 8D² + 5D) = 56,710,656;
  decoder 3 × 9,453,312 (cross-attention 2 LN + 4(D² + D), self-attention 2 LN + 4(D² + D), MLP 8D² + 5D) = 28,359,936;
  ``entity_norm`` 1,536 + ``entity_projection`` 768·256 = 196,608. ``tag_block="plain"`` (Eq. 4 without
  GroupViT's value/output projections and channel MLP, the preset before issue 15) has 279.5 M;
  ``boot_mlp=True`` 319.7 M. Ablation sizes: ``bootstrap=False`` 333.9 M, ``decoder='self_attention'``
  284.3 M, ``decoder='avg_pool'`` 263.0 M; ``width=512, heads=8`` 231.1 M.
- Bootstrapping layer (Eq. 2): ``g ← g + CrossAtt(LN(g), LN(z^l))`` — Eq. 2 writes a cross-attention only,
  while Eq. 5 spells out its MLP where it has one; ``boot_mlp=True`` adds a pre-norm MLP per layer.
  z^l is the patch tokens (CLS dropped) *entering* global block l (z^0 = embedded patches after ``ln_pre``),
  so the S1 layers read z^0 … z^{S1−1} and the TAG of Eq. 3 groups z^{S1} (the output of block S1).
- ``bootstrap=False`` ("w/o bootstrap", Table 4): §5.4 "directly processing video patch tokens", the
  GroupViT-style option §4.2 contrasts with: the G group tokens and the embedded input patch tokens z^0 go
  through S1 trainable DST blocks of the local encoder ([g; z] with g as CLS-like tokens), then TAG groups the
  patch tokens this stage produced. The global encoder still feeds the decoder. (This stage has DST blocks
  instead of cross-attention layers, so the variant has more trainable parameters.)
- Group tokens in DST blocks: CLS-like, attending to all tokens (``henasy.model.grouping`` docstring). No
  GroupViT-style token-mixing MLP or group projector: the paper introduces a fresh set of entity group
  tokens for the second stage and never mentions them.
- TAG merge init, ``tag_merge_init``. Default ``"groupvit"``: the W_v, W_o and channel-MLP layers of both TAG
  blocks keep GroupViT's trunc-normal(0.02) init (NVlabs/GroupViT @ 1757819 : models/group_vit.py,
  ``GroupViT._init_weights``); ``"identity"`` starts them so that a fresh block is exactly Eq. 4. Why: Eq. 11's
  logits start near zero (≈0.04 at D = 96, ≈0.3 at D = 768, as GroupViT's), far below the Gumbel noise, so
  the training-time hard assignment is a random partition of each frame's patches every step. With the
  identity init that random patch mean enters each segment token at full scale, the segments the entity
  grouping sees change identity every step, and the Eq. 13 maps the projection loss trains are noise. With
  GroupViT's init the merged term starts at ≈0.02²·D of the patch mean (0.04 at D = 96), so a segment is
  its group token until W_v/W_o grow with the assignment. Measured on henasy_tiny, 60 steps of
  ``bench train`` on the tiny synthetic set, logged ``proj`` slope per 60 steps: identity −0.026 ± 0.020,
  GroupViT init −0.091 ± 0.023 (the same as identity init without Gumbel noise, −0.083 ± 0.025). Scaling
  Eq. 11's logits up instead (no D^-1/2 as Eq. 11 is printed, ×4, or orthogonal W_q/W_i) did not speed the
  fall on a fixed batch: larger logits only saturate the noise-free softmax that Eq. 13 differentiates.
- Embeddings: entity tokens are layer-normalised and projected to the joint space by a bare matrix
  (``entity_projection``, like LaViLa's ``image_projection``); the video embedding is the projection of
  their mean (Eq. 6), i.e. the mean of the projected entity embeddings, L2-normalised. When a LaViLa
  checkpoint is loaded and the widths match, ``entity_norm``/``entity_projection`` start from LaViLa's
  ``visual.norm``/``image_projection``, which the frozen text side was trained against
  (``init_projection_from_lavila``). NEC, VEC and grounding use the final (decoded) entity embeddings.
- ``decoder``: ``"entity_aware"`` (Eq. 5), ``"self_attention"`` ("w/ SA dec.": the same number of
  self-attention + MLP blocks over [patch tokens; entity tokens], same width), ``"avg_pool"`` ("w/ avg.
  pool": no decoder, Eq. 6 on the local encoder's entities).
- Saliency (Eq. 13) uses TAG's noise-free similarities.
- Projection loss masks (Eq. 9), ``proj_mask``. Default ``"rescaled_saliency"``: each entity's Eq. 13
  saliency map min–max rescaled per frame to [0, 1] on the patch grid (the soft mask ``ground`` returns,
  before its upsampling), then bilinearly upsampled to the frame. Why: Eq. 9 is BoxInst's projection
  term, whose intent (§4.4) is that "the smallest box encompassing m_j matches b_j"; against binary box
  profiles that needs masks that can reach 1 inside the box and 0 outside. The raw saliency cannot: a
  softmax over K patches sums to 1 per frame and peaks at most at e / (e + K − 1) (0.014 at K = 196,
  0.15 at K = 16), so its dice stays near 2 even for a perfect assignment (tests/test_henasy_losses.py
  computes it) and the term gave no box supervision (the logged ``proj`` sat at 1.756 through a 60-step
  henasy_tiny run). ``"assignment"`` (M_t itself, the probability that a patch belongs to the entity, in
  [0, 1]) can reach 0 but only once TAG's softmaxes are sharp; while they are near uniform (normalised
  entropy ≈ 0.9999 for the first hundreds of steps) M_t ≈ 1/E everywhere and the term stayed flat too
  (1.25–1.27 over 17 steps of henasy_tiny). The rescaled map is scale-free, so the box shapes the masks from
  the first step, and it is exactly what the grounding evaluation thresholds. ``"saliency"`` and
  ``"assignment"`` remain selectable.
- VEC (Eq. 8) weights ``s(a_i, e_j) = softmax_j(a_i·e_j / τ_w)`` with ``vec_weight_temperature`` None → τ_w = τ
  (the contrastive temperature, 0.07): reasons in henasy/model/losses.py.
- The global encoder runs once per clip: ``global_patch_layers`` walks LaViLa's ``layer_tokens`` once so that
  the patch embedding z^0 read by the local encoder is the one the blocks consume (issue 17).
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from timm.layers import trunc_normal_
from torch import nn

from baselines.lavila import PAPER_CONFIG as LAVILA_PAPER_CONFIG
from baselines.lavila import TINY_CONFIG as LAVILA_TINY_CONFIG
from baselines.lavila import LaViLaConfig, LaViLaDualEncoder, load_lavila_checkpoint, rescale_per_frame
from henasy.core.checkpoints import KeyReport, extract_state_dict, load_checked, load_state_dict_file
from henasy.core.egonce import egonce_loss
from henasy.core.errors import BenchError, CheckpointError
from henasy.core.overrides import check_options
from henasy.data.taxonomy import noun_text
from henasy.model.decoder import (
    AveragePoolDecoder,
    CrossAttentionLayer,
    EntityAwareDecoder,
    MultiHeadAttention,
    SelfAttentionDecoder,
)
from henasy.model.grouping import (
    MERGE_INITS,
    TAG_BLOCKS,
    GroupSpaceTimeBlock,
    TemporalAwareGrouping,
    assignment_probabilities,
    normalized_entropy,
    saliency_maps,
    to_grid,
)
from henasy.model.losses import DEFAULT_LOSS_WEIGHTS, nec_loss, projection_loss, total_loss, vec_loss
from henasy.model.verb_phrases import VerbPhraseSource

DECODERS = ("entity_aware", "self_attention", "avg_pool")
PROJ_MASKS = ("rescaled_saliency", "assignment", "saliency")  # Eq. 9 masks (module docstring)
HENASY_PREFIXES = ("local_encoder.", "decoder.", "entity_norm.", "entity_projection")


# ------------------------------------------------------------------------------------------------- config
@dataclass(frozen=True)
class HenasyConfig:
    """HENASY architecture, losses and initialisation; defaults = the paper (§5.1) except ``width`` (above)."""

    lavila: LaViLaConfig = LAVILA_PAPER_CONFIG  # global + text encoder (TSF-B, CLIP text, 4 frames, 224 px)
    width: int | None = None  # local encoder / decoder width D; None = the global encoder's width (768)
    heads: int = 12
    mlp_ratio: float = 4.0
    num_group_tokens: int = 64  # G (bootstrapping stage)
    num_entities: int = 8  # E (entity grouping stage)
    boot_depth: int = 6  # S1 cross-attention layers (or DST blocks when bootstrap=False)
    group_depth: int = 3  # S2 DST blocks over [entity group tokens; segment tokens]
    entity_depth: int = 3  # S3 DST blocks over entity tokens
    decoder_depth: int = 3  # hybrid-attention blocks
    decoder: str = "entity_aware"  # "entity_aware" | "self_attention" | "avg_pool" (Table 4)
    bootstrap: bool = True  # False = "w/o bootstrap" (Table 4)
    boot_mlp: bool = False  # add an MLP to each bootstrapping cross-attention layer
    # Gumbel noise in TAG during training (Eq. 11); False departs from the paper (see README, "Does training work?")
    gumbel: bool = True
    # TAG block: as GroupViT's GroupingBlock (App. B.1 follows [12]) | "plain" (Eq. 4 alone)
    tag_block: str = "groupvit"
    # init of the groupvit TAG merge layers: GroupViT's trunc-normal(0.02) | "identity" (fresh block = Eq. 4)
    tag_merge_init: str = "groupvit"
    freeze_global: bool = True  # §5.1: global and text encoders frozen
    freeze_text: bool = True
    use_nec: bool = True  # Table 3 switches; EgoNCE is always on
    use_vec: bool = True
    use_proj: bool = True
    loss_weights: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_LOSS_WEIGHTS))  # λ1–λ3
    # Eq. 9 masks: Eq. 13 saliency min–max rescaled per frame (what grounding reads) | "assignment" | "saliency"
    proj_mask: str = "rescaled_saliency"
    vec_weight_temperature: float | None = None  # τ_w of VEC's entity weights (Eq. 8); None = contrastive τ
    init_projection_from_lavila: bool = True

    def __post_init__(self) -> None:
        weights = {**DEFAULT_LOSS_WEIGHTS, **dict(self.loss_weights)}
        object.__setattr__(self, "loss_weights", weights)
        problems = []
        counts = ("heads", "num_group_tokens", "num_entities", "decoder_depth")
        problems += [f"{k} must be a positive integer" for k in counts if getattr(self, k) < 1]
        depths = ("boot_depth", "group_depth", "entity_depth")
        problems += [f"{k} must be ≥ 0" for k in depths if getattr(self, k) < 0]
        if self.width is not None and (self.width < 1 or self.width % max(self.heads, 1)):
            problems.append(f"width {self.width} must be a positive multiple of heads {self.heads}")
        if self.width is None and self.lavila.vision_width % max(self.heads, 1):
            problems.append(f"vision_width {self.lavila.vision_width} is not divisible by heads {self.heads}")
        if self.bootstrap and self.boot_depth > self.lavila.vision_depth:
            problems.append(
                f"boot_depth {self.boot_depth} > vision_depth {self.lavila.vision_depth}: bootstrapping layer l "
                "reads global layer l, and TAG reads layer boot_depth"
            )
        if self.decoder not in DECODERS:
            problems.append(f"decoder must be one of {list(DECODERS)}, got {self.decoder!r}")
        if self.tag_block not in TAG_BLOCKS:
            problems.append(f"tag_block must be one of {list(TAG_BLOCKS)}, got {self.tag_block!r}")
        if self.tag_merge_init not in MERGE_INITS:
            problems.append(f"tag_merge_init must be one of {list(MERGE_INITS)}, got {self.tag_merge_init!r}")
        if self.proj_mask not in PROJ_MASKS:
            problems.append(f"proj_mask must be one of {list(PROJ_MASKS)}, got {self.proj_mask!r}")
        unknown = sorted(set(weights) - set(DEFAULT_LOSS_WEIGHTS))
        if unknown:
            problems.append(
                f"loss_weights has unknown terms {unknown}; terms: {sorted(DEFAULT_LOSS_WEIGHTS)}"
            )
        if any(not isinstance(v, (int, float)) or v < 0 for v in weights.values()):
            problems.append(f"loss_weights must be non-negative numbers, got {weights}")
        if self.vec_weight_temperature is not None and not self.vec_weight_temperature > 0:
            problems.append("vec_weight_temperature must be > 0 (or null: the contrastive temperature τ)")
        if problems:
            raise BenchError("invalid HENASY configuration: " + "; ".join(problems))

    @property
    def local_width(self) -> int:
        return self.width or self.lavila.vision_width


# ------------------------------------------------------------------------------------------ local encoder
@dataclass
class LocalEncoderOutput:
    entities: torch.Tensor  # (B, E, D) after temporal average pooling
    frame_entities: torch.Tensor  # (B, T·E, D) per-frame entity tokens after the S3 blocks
    boot_similarity: torch.Tensor  # (B, T, G, K) A^boot
    entity_similarity: torch.Tensor  # (B, T, E, G) A^entity


def _init_new_weights(module: nn.Module) -> None:
    """ViT-style init of freshly added layers; DST time attention re-zeroed (LaViLa time_init='zeros')."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    for m in module.modules():
        if isinstance(m, GroupSpaceTimeBlock):
            m.timeattn.zero_init()
        elif isinstance(m, TemporalAwareGrouping):
            m.reset_merge()  # its merge_init: GroupViT's init, or identity = exactly Eq. 4 (grouping.py)


class LocalEntityEncoder(nn.Module):
    """§4.2: bootstrapping stage (Eq. 2) + TAG (Eq. 3) → segments; entity grouping stage → E entity tokens."""

    def __init__(self, cfg: HenasyConfig) -> None:
        super().__init__()
        dim, heads, vision = cfg.local_width, cfg.heads, cfg.lavila.vision_width
        self.cfg = cfg
        self.boot_tokens = nn.Parameter(torch.zeros(1, cfg.num_group_tokens, dim))  # g_boot^0, (1, G, D)
        if cfg.bootstrap:  # Eq. 2: cross-attention to the global encoder's layer-l patch tokens
            mlp = cfg.mlp_ratio if cfg.boot_mlp else 0.0
            self.bootstrap = nn.ModuleList(
                CrossAttentionLayer(dim, heads, vision, mlp) for _ in range(cfg.boot_depth)
            )
        else:  # "w/o bootstrap": GroupViT-style DST blocks over [g; z^0] (module docstring)
            self.bootstrap = nn.ModuleList(
                GroupSpaceTimeBlock(dim, heads, cfg.mlp_ratio) for _ in range(cfg.boot_depth)
            )
        self.patch_proj = nn.Linear(vision, dim) if vision != dim else nn.Identity()  # only when D ≠ 768
        tag = {
            "gumbel": cfg.gumbel,
            "block": cfg.tag_block,
            "mlp_ratio": cfg.mlp_ratio,
            "merge_init": cfg.tag_merge_init,
        }
        self.boot_grouping = TemporalAwareGrouping(dim, **tag)  # Eq. 3
        self.entity_tokens = nn.Parameter(torch.zeros(1, cfg.num_entities, dim))  # g_entity, (1, E, D)
        self.group_blocks = nn.ModuleList(
            GroupSpaceTimeBlock(dim, heads, cfg.mlp_ratio) for _ in range(cfg.group_depth)
        )
        self.entity_grouping = TemporalAwareGrouping(dim, **tag)  # ê = TAG(g_entity, s), §4.2
        self.entity_blocks = nn.ModuleList(
            GroupSpaceTimeBlock(dim, heads, cfg.mlp_ratio) for _ in range(cfg.entity_depth)
        )
        _init_new_weights(self)
        trunc_normal_(self.boot_tokens, std=0.02)
        trunc_normal_(self.entity_tokens, std=0.02)

    @property
    def layers_needed(self) -> int:
        """How many global layers z^0 … z^{n−1} the encoder reads."""
        return self.cfg.boot_depth + 1 if self.cfg.bootstrap else 1

    def forward(self, patch_layers: list[torch.Tensor], num_frames: int) -> LocalEncoderOutput:
        """``patch_layers[l]`` = z^l (B, T·K, Dv), patch tokens entering global block l → entities (B, E, D)."""
        b, t = patch_layers[0].shape[0], num_frames
        groups = self.boot_tokens.expand(b, -1, -1)  # (B, G, D)
        if self.cfg.bootstrap:
            for layer, patches in zip(self.bootstrap, patch_layers):
                groups = layer(groups, patches)  # Eq. 2, l = 0 … S1−1
            tokens = self.patch_proj(patch_layers[self.cfg.boot_depth])  # z^{S1}, (B, T·K, D)
        else:
            x = torch.cat([groups, self.patch_proj(patch_layers[0])], dim=1)  # [g; z^0], (B, G + T·K, D)
            for block in self.bootstrap:
                x = block(x, t, groups.shape[1])
            groups, tokens = x[:, : groups.shape[1]], x[:, groups.shape[1] :]
        boot = self.boot_grouping(groups, tokens, t)  # Eq. 3: segments s, (B, T·G, D)
        entity_groups = self.entity_tokens.expand(b, -1, -1)  # (B, E, D)
        e = entity_groups.shape[1]
        x = torch.cat([entity_groups, boot.tokens], dim=1)  # [g_entity; s], (B, E + T·G, D)
        for block in self.group_blocks:
            x = block(x, t, e)  # S2 DST blocks
        grouped = self.entity_grouping(x[:, :e], x[:, e:], t)  # ê = TAG(g_entity, s), (B, T·E, D)
        frame_entities = grouped.tokens
        for block in self.entity_blocks:
            frame_entities = block(frame_entities, t, 0)  # S3 DST blocks over entity tokens
        entities = frame_entities.reshape(b, t, e, -1).mean(dim=1)  # temporal average pooling, (B, E, D)
        return LocalEncoderOutput(entities, frame_entities, boot.similarity, grouped.similarity)


# ------------------------------------------------------------------------------------------------- model
@dataclass
class HenasyOutput:
    entities: torch.Tensor  # (B, E, D) final entity tokens (after the decoder)
    entity_embeds: torch.Tensor  # (B, E, De) L2-normalised joint-space entity embeddings
    video_embed: torch.Tensor  # (B, De) L2-normalised video embedding (Eq. 6 + projection)
    video_features: torch.Tensor  # (B, D) mean of the normalised entity tokens, before projection
    local: LocalEncoderOutput


@dataclass
class GroundingOutput:
    masks: torch.Tensor  # (B, T, H, W) soft masks in [0, 1] of the best-matching entity
    entity: torch.Tensor  # (B,) index of that entity
    scores: torch.Tensor  # (B, E) cosine of each entity embedding with the query


class HenasyModel(LaViLaDualEncoder):
    """HENASY video-language model; follows ``henasy.core.interface.VideoTextModel`` plus ``entity_masks``/``ground``."""

    autoregressive = False  # one parallel forward pass per clip (paper Table 5: ✗)

    def __init__(self, config: HenasyConfig | None = None) -> None:
        cfg = config or HenasyConfig()
        super().__init__(cfg.lavila)
        self.config = cfg  # type: ignore[assignment]  # LaViLa's config stays available as cfg.lavila
        dim, vision = cfg.local_width, cfg.lavila.vision_width
        self.patch_grid = (cfg.lavila.image_size // cfg.lavila.patch_size,) * 2
        self.local_encoder = LocalEntityEncoder(cfg)
        if cfg.decoder == "entity_aware":
            self.decoder: nn.Module = EntityAwareDecoder(
                dim, cfg.heads, vision, cfg.mlp_ratio, cfg.decoder_depth
            )
        elif cfg.decoder == "self_attention":
            self.decoder = SelfAttentionDecoder(dim, cfg.heads, vision, cfg.mlp_ratio, cfg.decoder_depth)
        else:
            self.decoder = AveragePoolDecoder()
        _init_new_weights(self.decoder)
        self.entity_norm = nn.LayerNorm(dim)
        self.entity_projection = nn.Parameter(torch.empty(dim, cfg.lavila.embed_dim))  # x @ P, like LaViLa
        nn.init.normal_(self.entity_projection, std=dim**-0.5)
        self.register_buffer("noun_embeds", None, persistent=False)  # (V, De), set by bind_data
        self.noun_names: list[str] = []
        self.verb_phrase_source = VerbPhraseSource()  # rule-based until bind_data gives a mapping
        self._warned: set[str] = set()
        self._freeze()
        self.set_attention_impl(cfg.lavila.attention)

    # -- frozen encoders ------------------------------------------------------------------------------
    def _text_modules(self) -> list[nn.Module]:
        return [self.transformer, self.token_embedding, self.ln_final]

    def _freeze(self) -> None:
        """§5.1: global and text encoders (and their LaViLa projections) get no gradient."""
        self.image_projection.requires_grad_(
            False
        )  # LaViLa's CLS projection: unused by HENASY, kept for its keys
        if self.config.freeze_global:
            self.visual.requires_grad_(False)
        if self.config.freeze_text:
            for module in self._text_modules():
                module.requires_grad_(False)
            self.positional_embedding.requires_grad_(False)
            self.text_projection.requires_grad_(False)

    def train(self, mode: bool = True) -> HenasyModel:
        """Frozen encoders stay in eval mode whatever ``mode`` is."""
        super().train(mode)
        if self.config.freeze_global:
            self.visual.eval()
        if self.config.freeze_text:
            for module in self._text_modules():
                module.eval()
        return self

    def set_attention_impl(self, impl: str) -> None:
        """As LaViLa's, also for HENASY's own attention layers."""
        super().set_attention_impl(impl)
        for module in self.modules():
            if isinstance(module, MultiHeadAttention):
                module.impl = impl

    # -- encoders ---------------------------------------------------------------------------------------
    def _no_grad_if(self, frozen: bool) -> contextlib.AbstractContextManager:
        return torch.no_grad() if frozen else contextlib.nullcontext()

    def global_patch_layers(self, video: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Patch tokens (CLS dropped) z^0 … z^{n−1} the local encoder reads, and the last layer's (B, T·K, Dv)."""
        with self._no_grad_if(self.config.freeze_global):
            # §4.1: one walk through the global encoder's layers (LaViLa's layer_tokens, as forward_features)
            # so that the patch embedding z^0 is computed once and shared by the bootstrapping stage and the
            # global blocks; only the layers the local encoder reads and the last output are kept
            needed = []  # needed[l] = patch tokens entering block l, (B, T·K, Dv)
            for index, x in enumerate(self.visual.layer_tokens(video)):  # z^0, then each block's output
                if index < self.local_encoder.layers_needed:
                    needed.append(x[:, 1:])
            return needed, x[:, 1:]

    def encode_texts(self, texts: list[str]) -> torch.Tensor:
        """Raw strings → (N, De) L2-normalised text embeddings (no gradient when the text encoder is frozen)."""
        device = self.token_embedding.weight.device
        with self._no_grad_if(self.config.freeze_text):
            chunks = [texts[i : i + 256] for i in range(0, len(texts), 256)]
            return torch.cat([self.encode_text(self.tokenize(c).to(device)) for c in chunks])

    def forward_entities(self, video: torch.Tensor) -> HenasyOutput:
        """(B, C, T, H, W) → entity tokens, joint-space entity and video embeddings, TAG similarities."""
        num_frames = video.shape[2]
        layers, last = self.global_patch_layers(video)
        local = self.local_encoder(layers, num_frames)
        entities = self.decoder(local.entities, last)  # Eq. 5, (B, E, D)
        normed = self.entity_norm(entities)  # (B, E, D)
        projected = normed @ self.entity_projection  # (B, E, De)
        video_embed = F.normalize(projected.mean(dim=1), dim=-1)  # Eq. 6: projection of the entity average
        return HenasyOutput(entities, F.normalize(projected, dim=-1), video_embed, normed.mean(dim=1), local)

    def encode_video_features(self, video: torch.Tensor) -> torch.Tensor:
        """(B, C, T, H, W) → video feature before the projection (B, D): mean of the normalised entity tokens."""
        return self.forward_entities(video).video_features

    def encode_video(self, video: torch.Tensor) -> torch.Tensor:
        """(B, C, T, H, W) normalised pixels → (B, embed_dim) L2-normalised entity-aware video embeddings."""
        return self.forward_entities(video).video_embed

    # -- masks and grounding ------------------------------------------------------------------------------
    def mask_grid(self, local: LocalEncoderOutput, kind: str = "saliency") -> torch.Tensor:
        """(B, E, T, h, w) entity maps on the patch grid: Eq. 13 saliency, the same rescaled per frame to [0, 1]
        (``"rescaled_saliency"``, the masks ``ground`` returns) or the assignment probabilities M_t."""
        if kind in ("saliency", "rescaled_saliency"):
            maps = saliency_maps(local.boot_similarity, local.entity_similarity, self.patch_grid)
            if kind == "saliency":
                return maps
            b, e, t, h, w = maps.shape  # Eq. 9 masks in [0, 1]: per-frame min–max, as ground_details does
            return rescale_per_frame(maps.reshape(b * e, t, h, w)).reshape(b, e, t, h, w)
        probs = assignment_probabilities(local.boot_similarity, local.entity_similarity)  # (B, T, K, E)
        return to_grid(probs.permute(0, 3, 1, 2), self.patch_grid)

    def entity_masks(self, video: torch.Tensor) -> torch.Tensor:
        """(B, C, T, H, W) → (B, E, T, H, W) Eq. 13 saliency maps (softmax over patches), upsampled to H × W."""
        local = self.forward_entities(video).local
        size = tuple(video.shape[-2:])
        return saliency_maps(local.boot_similarity, local.entity_similarity, self.patch_grid, size)

    def ground_details(self, video: torch.Tensor, tokens: torch.Tensor) -> GroundingOutput:
        """Pick the entity whose joint-space embedding best matches the query; return its per-frame masks.

        Masks are the Eq. 13 saliency of that entity rescaled per frame to [0, 1] (min → 0, max → 1), a
        monotone map of the saliency, so a threshold reads as "relative saliency within the frame".
        """
        out = self.forward_entities(video)
        query = self.encode_text(tokens)  # (B, De)
        scores = torch.einsum("bed,bd->be", out.entity_embeds, query)  # (B, E)
        best = scores.argmax(dim=1)  # (B,)
        size = tuple(video.shape[-2:])
        maps = saliency_maps(out.local.boot_similarity, out.local.entity_similarity, self.patch_grid, size)
        chosen = maps[torch.arange(maps.shape[0], device=maps.device), best]  # (B, T, H, W)
        return GroundingOutput(rescale_per_frame(chosen), best, scores)

    def ground(self, video: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """(B, C, T, H, W) video, (B, L) query token ids → (B, T, H, W) soft masks in [0, 1]."""
        return self.ground_details(video, tokens).masks

    # -- data binding -----------------------------------------------------------------------------------
    def bind_data(self, noun_names: list[str], verb_phrases: Mapping[str, list[str]] | None = None) -> None:
        """Give the model the noun taxonomy (NEC's vocabulary, Eq. 7) and the verb-phrase mapping (VEC).

        ``noun_names``: taxonomy labels in class-index order (Ego4D style ``bag_(pouch,_sack)`` is read as
        "bag"); their frozen text embeddings are cached. ``verb_phrases``: narration → phrases (the
        ``verb_phrases.json`` format); ``None`` uses the rule-based extractor (narrations missing from a
        mapping fall back to it too, counted in ``verb_phrase_source.misses``).
        """
        self.noun_names = [str(n) for n in noun_names]
        self.verb_phrase_source = VerbPhraseSource(dict(verb_phrases) if verb_phrases is not None else None)
        self._encode_noun_vocabulary()

    def _encode_noun_vocabulary(self) -> None:
        if not self.noun_names:
            return
        device = self.token_embedding.weight.device
        if device.type == "meta":
            self.noun_embeds = torch.empty(len(self.noun_names), self.embed_dim, device=device)
            return
        with torch.no_grad():
            self.noun_embeds = self.encode_texts([noun_text(n) for n in self.noun_names])

    # -- training -----------------------------------------------------------------------------------------
    def _skip(self, term: str, reason: str, like: torch.Tensor) -> tuple[torch.Tensor, int]:
        """A loss term whose inputs are missing: exactly 0, count 0, and a warning (once per reason)."""
        if reason not in self._warned:
            self._warned.add(reason)
            warnings.warn(f"HENASY {term} loss is 0 for this batch: {reason}", stacklevel=3)
        return like.new_zeros(()), 0

    def _nec_term(self, out: HenasyOutput, batch: Mapping[str, Any]) -> tuple[torch.Tensor, int]:
        # NEC targets (Eq. 7): the caption's noun list as HelpingHands builds it (henasy/data/caption_nouns.py),
        # else the clip's EgoClip noun tags (batches built without the data pipeline's noun lists)
        tags = batch.get("caption_noun_tags", batch.get("noun_tags"))
        if tags is None:
            return self._skip(
                "NEC", "the batch has neither 'caption_noun_tags' nor 'noun_tags'", out.video_embed
            )
        if self.noun_embeds is None:
            return self._skip(
                "NEC", "no noun vocabulary: call model.bind_data(noun_names, ...)", out.video_embed
            )
        nouns = self.noun_embeds
        if not self.config.freeze_text:  # a trainable text tower needs fresh, differentiable noun embeddings
            nouns = self.encode_texts([noun_text(n) for n in self.noun_names])
        return nec_loss(out.entity_embeds, tags.to(out.entity_embeds.device), nouns, self.temperature)

    def _vec_term(self, out: HenasyOutput, batch: Mapping[str, Any]) -> tuple[torch.Tensor, int]:
        texts = batch.get("texts")
        if texts is None:
            return self._skip("VEC", "the batch has no 'texts' (raw narrations)", out.video_embed)
        if len(texts) > out.entity_embeds.shape[0]:
            raise ValueError(
                f"batch['texts'] has {len(texts)} narrations for {out.entity_embeds.shape[0]} clips"
            )
        phrases, rows = [], []
        for row, narration in enumerate(texts):  # rows beyond len(texts) (e.g. negatives) have no phrases
            for phrase in self.verb_phrase_source(str(narration)):
                phrases.append(phrase)
                rows.append(row)
        if not phrases:
            return out.video_embed.new_zeros(()), 0
        unique = {phrase: i for i, phrase in enumerate(dict.fromkeys(phrases))}  # same text → same id
        ids = torch.as_tensor([unique[p] for p in phrases], device=out.video_embed.device)
        embeds = self.encode_texts(list(unique))[ids]  # (P, De)
        rows_t = torch.as_tensor(rows, device=out.video_embed.device)
        weight_temperature = self.config.vec_weight_temperature  # None: VEC's weights use the contrastive τ
        return vec_loss(out.entity_embeds, embeds, rows_t, ids, self.temperature, weight_temperature)

    def _proj_term(
        self, out: HenasyOutput, batch: Mapping[str, Any], size: tuple[int, int], num_frames: int
    ) -> tuple[torch.Tensor, int]:
        boxes = batch.get("boxes")
        if boxes is None:
            return self._skip("projection", "the batch has no 'boxes'", out.video_embed)
        boxes = torch.stack(list(boxes)) if isinstance(boxes, (list, tuple)) else boxes
        valid = batch.get("box_valid", batch.get("box_mask"))
        if valid is None:  # no validity given: a box with positive area counts
            valid = (boxes[..., 2] > boxes[..., 0]) & (boxes[..., 3] > boxes[..., 1])
        valid = torch.stack(list(valid)) if isinstance(valid, (list, tuple)) else valid
        device = out.video_embed.device
        boxes, valid = boxes.to(device).float(), valid.to(device).bool()
        rows = out.entity_embeds.shape[0]
        if (
            boxes.dim() != 4
            or boxes.shape[-1] != 4
            or boxes.shape[0] > rows
            or valid.shape != boxes.shape[:3]
        ):
            raise ValueError(
                f"batch['boxes'] must be (rows ≤ {rows}, T, N, 4) with box_valid (rows, T, N); got "
                f"{tuple(boxes.shape)} and {tuple(valid.shape)}"
            )
        if boxes.shape[1] != num_frames:
            reason = f"boxes are given for {boxes.shape[1]} frames but the clip has {num_frames}"
            return self._skip("projection", reason, out.video_embed)
        masks = self.mask_grid(out.local, self.config.proj_mask)[: boxes.shape[0]]  # (R, E, T, h, w)
        return projection_loss(masks, boxes, valid, size)

    def training_losses(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Eq. 10: EgoNCE (always) + λ1 NEC + λ2 VEC + λ3 projection, each switchable (``use_*``).

        Batch: ``video`` (B̃, C, T, H, W), ``text`` (B̃, L) ids, optional ``verb_tags``/``noun_tags`` (B̃, ·)
        multi-hot, ``texts`` raw narrations (first rows), ``boxes`` (R, T, 4, 4) x1y1x2y2 in [0, 1] with
        ``box_valid`` (or ``box_mask``) (R, T, 4) for the first R rows. Returns ``loss``, each term, and
        ``nec_pairs`` / ``vec_phrases`` / ``proj_boxes`` (0 = the term had no inputs in this batch), and the
        grouping diagnostics ``boot_entropy`` / ``entity_entropy`` (1 = uniform assignment).
        """
        missing = [key for key in ("video", "text") if key not in batch]
        if missing:
            raise ValueError(f"training batch lacks {missing}; it has keys {sorted(batch)}")
        video = batch["video"]
        out = self.forward_entities(video)
        with self._no_grad_if(self.config.freeze_text):
            text = self.encode_text(batch["text"])
        tags = {k: batch.get(k) for k in ("verb_tags", "noun_tags")}
        terms = {"egonce": egonce_loss(out.video_embed, text, **tags, temperature=self.temperature)}
        counts: dict[str, int] = {}
        if self.config.use_nec:
            terms["nec"], counts["nec_pairs"] = self._nec_term(out, batch)
        if self.config.use_vec:
            terms["vec"], counts["vec_phrases"] = self._vec_term(out, batch)
        if self.config.use_proj:
            size = (video.shape[-2], video.shape[-1])
            terms["proj"], counts["proj_boxes"] = self._proj_term(out, batch, size, video.shape[2])
        result = {"loss": total_loss(terms, self.config.loss_weights)}
        result.update({name: value.detach() for name, value in terms.items()})
        result.update({name: torch.tensor(float(n), device=video.device) for name, n in counts.items()})
        # grouping sharpness, 1 = uniform (see grouping.normalized_entropy): logged, not optimised
        result["boot_entropy"] = normalized_entropy(out.local.boot_similarity.detach(), dim=2)
        result["entity_entropy"] = normalized_entropy(out.local.entity_similarity.detach(), dim=2)
        return result

    # -- checkpoints ------------------------------------------------------------------------------------
    def load_checkpoint(self, source: str | Path | Mapping[str, Any], strict: bool = True) -> KeyReport:
        """Load a HENASY checkpoint (every key) or a LaViLa/EgoVLP one (global + text encoders only).

        A LaViLa checkpoint must cover every LaViLa key of this model (``strict``); HENASY's own modules keep
        their initialisation, except ``entity_norm``/``entity_projection`` which start from LaViLa's
        ``visual.norm``/``image_projection`` when ``init_projection_from_lavila`` and the widths match.
        """
        if isinstance(source, (str, Path)):
            name, state_dict = str(source), load_state_dict_file(source)
        else:
            name, state_dict = "state_dict", extract_state_dict(source, source="state_dict")
        if any(k.startswith(HENASY_PREFIXES) for k in state_dict):
            report = load_lavila_checkpoint(
                self, state_dict, strict=strict
            )  # temporal_embed fitting + checks
        else:
            report = load_lavila_checkpoint(self, state_dict, strict=False)
            report.missing = [k for k in report.missing if not k.startswith(HENASY_PREFIXES)]
            if strict and not report.ok:
                raise CheckpointError(f"{name} does not fit HENASY's LaViLa encoders: {report.summary()}")
            report.notes.append(
                "LaViLa checkpoint: HENASY's local encoder and decoder keep their initialisation"
            )
            self._init_projection_from_lavila(report)
        self._encode_noun_vocabulary()  # the text tower may have changed
        return report

    def load_backbone_checkpoint(
        self, source: str | Path | Mapping[str, Any], strict: bool = True
    ) -> KeyReport:
        """The frozen LaViLa encoders from a LaViLa/EgoVLP checkpoint (a HENASY one loads every key): what
        ``henasy.core.factory.create_model(..., backbone_checkpoint=PATH)`` (``model.lavila_checkpoint``) calls."""
        return self.load_checkpoint(source, strict=strict)

    def _init_projection_from_lavila(self, report: KeyReport) -> None:
        if (
            not self.config.init_projection_from_lavila
            or self.entity_projection.shape != self.image_projection.shape
        ):
            return
        state = {
            "entity_projection": self.image_projection.detach().clone(),
            "entity_norm.weight": self.visual.norm.weight.detach().clone(),
            "entity_norm.bias": self.visual.norm.bias.detach().clone(),
        }
        load_checked(self, state, strict=False, source="LaViLa projection")  # keeps requires_grad
        report.notes.append("entity_norm / entity_projection initialised from visual.norm / image_projection")


# ------------------------------------------------------------------------------------------------ presets
PAPER_CONFIG = HenasyConfig()  # §5.1 (width, size: see module docstring): 291.4 M parameters
TINY_CONFIG = HenasyConfig(  # on lavila_tiny: trains on the CPU in seconds; same code paths
    lavila=LAVILA_TINY_CONFIG,
    heads=2,
    num_group_tokens=8,
    num_entities=4,
    boot_depth=2,
    group_depth=1,
    entity_depth=1,
    decoder_depth=1,
)


def build_henasy(base: HenasyConfig, **overrides: Any) -> HenasyModel:
    """``HenasyModel`` from ``base`` with keyword overrides of HENASY or LaViLa fields (e.g. ``num_frames``)."""
    lavila_keys = {f.name for f in fields(LaViLaConfig)}
    henasy_keys = {f.name for f in fields(HenasyConfig)} - {"lavila"}
    check_options("HENASY", overrides, {"HENASY options": henasy_keys, "LaViLa options": lavila_keys})
    lavila = replace(base.lavila, **{k: v for k, v in overrides.items() if k in lavila_keys})
    return HenasyModel(
        replace(base, lavila=lavila, **{k: v for k, v in overrides.items() if k in henasy_keys})
    )


def henasy_paper(**overrides: Any) -> HenasyModel:
    """Paper preset: TSF-B global encoder, G=64, E=8, S1/S2/S3 = 6/3/3, 3 decoder blocks, 4 frames, 224 px."""
    return build_henasy(PAPER_CONFIG, **overrides)


def henasy_tiny(**overrides: Any) -> HenasyModel:
    """Tiny preset on ``lavila_tiny`` (64 px, width 96, G=8, E=4, 2/1/1 stages, 1 decoder block)."""
    return build_henasy(TINY_CONFIG, **overrides)
