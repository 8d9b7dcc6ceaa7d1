"""HelpingHands: an object-aware decoder on a frozen LaViLa dual encoder (Zhang et al., ICCV 2023).

Mirrors ``Chuhanxx/helping_hand_for_egocentric_videos`` @ 46a3852 (``model/tfm_decoder.py`` ``ObjDecoder`` /
``Cross_Attention`` / ``TransformerDecoderLayer``, ``model/loss.py``, ``model/box_utils.py``, ``run/train.py``);
Own code; parameter names are
the official ones, so the released ``ObjDecoder`` ``state_dict`` loads into ``HelpingHands.decoder``.

- Frozen backbone (§2.5): LaViLa's video tower gives the final-``norm``-ed patch tokens (B, T, N, D) and its
  text tower the EOT feature before projection; neither gets gradients and both stay in eval mode.
- ``ObjectDecoder`` = ``ObjDecoder``: memory = ``transformer.pre_norm(proj(tokens))`` with learned 3D
  positional terms (``pos_embed`` tiled over frames + ``temporal_embed`` per frame, added to the keys);
  DETR pre-norm decoder (self-attn → cross-attn → ReLU FFN, dropout 0.1, 6 layers, width 512, 8 heads,
  final LayerNorm, every layer's normalised output kept) over 13 learned queries (0–1 hands, 2–11
  objects, 12 video) decoded from zero targets. Per-frame boxes: each query is concatenated with a
  ``frame_index`` embedding and mapped by ``frame_proj``, then ``bbox_embed`` (3-layer MLP, sigmoid, cxcywh).
  ``class_embed`` (22048-way) and ``vid_proj`` exist only so checkpoints load: the official losses never
  use them, so they are frozen here and not computed.
- Embeddings: video = ``obj_proj`` of the video query; text = ``txt_proj`` (ReLU + Linear) of the EOT
  feature; object/noun embeddings = ``obj_proj`` of the other queries.
- Losses (§3.3): EgoNCE variant (τ 0.07, mean log-softmax over the positive set) + DETR box loss (hands vs
  queries 0–1, objects vs 2–11, per frame; L1 ×5, GIoU ×2) + 0.5 × noun matching contrastive loss.
  The EgoNCE texts are each clip's LaViLa-rephrased captions when the batch has them (``rephrased_text``,
  henasy/data/rephrased.py: up to 5 per clip, every one a positive of its clip, ``run/train.py``); the noun
  targets are the caption noun lists (``caption_noun_tags``, henasy/data/caption_nouns.py, HH
  ``extract_noun``) when the batch has them, else the tagged nouns without the excluded ones.

Inference is one parallel pass (``autoregressive = False``), see ``HelpingHands.autoregressive``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment
from timm.layers import trunc_normal_
from torch import nn

from baselines.box_losses import box_cxcywh_to_xyxy, rasterize_boxes, set_box_loss
from baselines.lavila import (
    PAPER_CONFIG,
    TINY_CONFIG,
    LaViLaConfig,
    LaViLaDualEncoder,
    load_lavila_checkpoint,
)
from henasy.core.checkpoints import KeyReport, extract_state_dict, load_checked, load_state_dict_file
from henasy.core.distributed import gather_optional, gather_with_grad
from henasy.core.egonce import egonce_positive_mask
from henasy.core.errors import BenchError, CheckpointError
from henasy.core.overrides import check_options
from henasy.data.caption_nouns import CAPTION_EXCLUDED_WORDS
from henasy.data.taxonomy import noun_text

# LaViLa TSF-L (``CLIP_OPENAI_TIMESFORMER_LARGE``, LaViLa @ 8002b5a : lavila/models/models.py): ViT-L/14 video tower, 768-wide text tower.
TSF_LARGE_CONFIG = replace(
    PAPER_CONFIG,
    patch_size=14,
    vision_width=1024,
    vision_depth=24,
    vision_heads=16,
    text_width=768,
    text_heads=12,
)

# Noun classes zeroed in the EgoNCE tags (``run/train.py`` ``prepare_data``: indices 102, 504, 364, 321, 556,
# "hand/person and background nouns like floor, ground"), matched here by name: the official caption-word
# exclusions (``extract_noun``, henasy/data/caption_nouns.py CAPTION_EXCLUDED_WORDS) plus "floor". Without
# caption noun lists in the batch, the noun targets are the tagged nouns minus these classes.
EXCLUDED_NOUNS = (*CAPTION_EXCLUDED_WORDS, "floor")


@dataclass(frozen=True)
class HelpingHandsConfig:
    """Architecture and loss settings; defaults = the official ``run/train.py`` on a TSF-B backbone (§2.5, §2.6).

    Field names avoid ``LaViLaConfig``'s, so a preset's keyword overrides can be routed to either.
    """

    backbone: LaViLaConfig = PAPER_CONFIG  # frozen LaViLa dual encoder (num_frames is shared by the decoder)
    hidden_dim: int = 512  # Cross_Attention d_model
    num_heads: int = 8
    num_layers: int = 6  # decoder layers
    ffn_dim: int = 2048
    dropout: float = 0.1
    num_hand_queries: int = 2  # queries 0..1
    num_object_queries: int = 10  # queries 2..11; one more (the last) is the video query
    num_classes: int = 22047  # "not used": class_embed has num_classes + 1 outputs
    joint_dim: int = 256  # obj_proj / txt_proj / vid_proj output
    vid_proj_dim: int = 768  # input width of the unused vid_proj (hard-coded 768 in ``init_proj_layers``)
    loss_temperature: float = (
        0.07  # EgoNCE variant and noun matching (HH ``EgoNCE``, ``WordContrastiveLoss``)
    )
    l1_weight: float = 5.0  # HungarianMatcher cost_bbox and loss weight
    giou_weight: float = 2.0  # HungarianMatcher cost_giou and loss weight
    box_loss_scale: float = 0.75  # ``compute_box_loss`` divides each box term by len(weight_dict) / 3 = 4/3
    # DETR auxiliary losses on every decoder layer. The released code asks for them (aux_loss=True) but its
    # ``box_utils.split_detr_out`` replaces ``aux_outputs`` by an empty list before ``SetCriterion`` sees
    # them, so it only supervises the last layer: set False to reproduce that.
    box_aux_loss: bool = True
    noun_loss_weight: float = 0.5  # total = EgoNCE + box + 0.5 × word loss (run/train.py)
    noun_threshold: float = 0.6  # other nouns with cosine > 0.6 to the target are not negatives
    max_nouns: int = 4  # ground-truth nouns per caption (``extract_noun`` max_n_words)
    excluded_nouns: tuple[str, ...] = EXCLUDED_NOUNS

    @property
    def num_queries(self) -> int:
        """All queries: hands + objects + the video query (13 for the released model)."""
        return self.num_hand_queries + self.num_object_queries + 1

    def __post_init__(self) -> None:
        problems = []
        for name in ("hidden_dim", "num_heads", "num_layers", "ffn_dim", "num_classes", "joint_dim"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be a positive integer")
        if self.num_heads >= 1 and self.hidden_dim % self.num_heads:
            problems.append(f"hidden_dim {self.hidden_dim} is not divisible by num_heads {self.num_heads}")
        if self.num_hand_queries < 0 or self.num_object_queries < 0:
            problems.append("num_hand_queries and num_object_queries must be >= 0")
        if not 0.0 <= self.dropout < 1.0:
            problems.append(f"dropout must be in [0, 1), got {self.dropout}")
        if not self.loss_temperature > 0:
            problems.append(f"loss_temperature must be > 0, got {self.loss_temperature}")
        if not isinstance(self.backbone, LaViLaConfig):
            problems.append("backbone must be a LaViLaConfig")
        if problems:
            raise BenchError("invalid HelpingHands configuration: " + "; ".join(problems))


# --------------------------------------------------------------------------------------------------------
# Decoder (model/tfm_decoder.py)


class DecoderLayer(nn.Module):
    """DETR pre-norm decoder layer (``TransformerDecoderLayer.forward_pre``, ``sa_first=True``; §2.5).

    t += self_attn(q = k = norm1(t) + query_pos, v = norm1(t)); t += multihead_attn(norm2(t) + query_pos,
    memory + pos, memory); t += linear2(relu(linear1(norm3(t)))); dropout after each sub-layer.
    """

    def __init__(self, dim: int, heads: int, ffn_dim: int, dropout: float) -> None:
        super().__init__()
        self.multihead_attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.self_attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.linear1 = nn.Linear(dim, ffn_dim)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(ffn_dim, dim)
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.norm3 = nn.LayerNorm(dim)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.dropout3 = nn.Dropout(dropout)

    def forward(
        self, tgt: torch.Tensor, memory: torch.Tensor, pos: torch.Tensor, query_pos: torch.Tensor
    ) -> torch.Tensor:
        """tgt (B, Q, C), memory (B, S, C), pos (1, S, C), query_pos (1, Q, C) → (B, Q, C)."""
        x = self.norm1(tgt)
        q = x + query_pos
        tgt = tgt + self.dropout1(self.self_attn(q, q, x, need_weights=False)[0])
        x = self.norm2(tgt)
        x = self.multihead_attn(x + query_pos, memory + pos, memory, need_weights=False)[0]
        tgt = tgt + self.dropout2(x)
        x = self.linear2(self.dropout(F.relu(self.linear1(self.norm3(tgt)))))
        return tgt + self.dropout3(x)


class DecoderStack(nn.Module):
    """``TransformerDecoder`` with ``return_intermediate=True``: every layer's output after the shared ``norm``."""

    def __init__(self, dim: int, heads: int, ffn_dim: int, dropout: float, depth: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(DecoderLayer(dim, heads, ffn_dim, dropout) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)

    def forward(
        self, tgt: torch.Tensor, memory: torch.Tensor, pos: torch.Tensor, query_pos: torch.Tensor
    ) -> torch.Tensor:
        """→ (L, B, Q, C): norm(output of layer l) for l = 1..L."""
        outputs = []
        for layer in self.layers:
            tgt = layer(tgt, memory, pos, query_pos)
            outputs.append(self.norm(tgt))
        return torch.stack(outputs)


class QueryDecoder(nn.Module):
    """``Cross_Attention(normalize_before=True, return_intermediate_dec=True)``: ``pre_norm`` on the memory,
    zero targets, learned query positions (§2.5). Xavier-uniform init of every matrix (``_reset_parameters``)."""

    def __init__(self, dim: int, heads: int, ffn_dim: int, dropout: float, depth: int) -> None:
        super().__init__()
        self.pre_norm = nn.LayerNorm(dim)
        self.decoder = DecoderStack(dim, heads, ffn_dim, dropout, depth)
        for param in self.parameters():
            if param.dim() > 1:
                nn.init.xavier_uniform_(param)

    def forward(self, memory: torch.Tensor, pos: torch.Tensor, query_pos: torch.Tensor) -> torch.Tensor:
        """memory (B, S, C), pos (1, S, C), query_pos (Q, C) → (L, B, Q, C)."""
        memory = self.pre_norm(memory)
        tgt = memory.new_zeros(memory.shape[0], *query_pos.shape)  # (B, Q, C)
        return self.decoder(tgt, memory, pos, query_pos[None])


class BoxMLP(nn.Module):
    """DETR ``MLP(hidden, hidden, 4, 3)``: Linear–ReLU–Linear–ReLU–Linear (``bbox_embed``)."""

    def __init__(self, dim: int, out_dim: int = 4, depth: int = 3) -> None:
        super().__init__()
        sizes = [dim] * depth + [out_dim]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(..., C) → (..., out_dim) logits."""
        for i, layer in enumerate(self.layers):
            x = layer(x) if i == len(self.layers) - 1 else F.relu(layer(x))
        return x


class ObjectDecoder(nn.Module):
    """The official ``ObjDecoder`` (``pred_traj=True``, ``self_attn=False``) with its parameter names (§2.5).

    ``feature_dim``: backbone video width (1024 for TSF-L, 768 for TSF-B); ``text_dim``: backbone text width
    (input of ``txt_proj``; 768 in the release, whose code hard-codes it); ``patches_per_frame``: N.
    """

    def __init__(
        self, cfg: HelpingHandsConfig, feature_dim: int, text_dim: int, patches_per_frame: int
    ) -> None:
        super().__init__()
        dim, frames = cfg.hidden_dim, cfg.backbone.num_frames
        self.num_frames, self.patches_per_frame = frames, patches_per_frame
        self.txt_proj = nn.Sequential(nn.ReLU(), nn.Linear(text_dim, cfg.joint_dim))
        self.vid_proj = nn.Sequential(nn.Linear(cfg.vid_proj_dim, cfg.joint_dim))  # unused (as released)
        self.transformer = QueryDecoder(dim, cfg.num_heads, cfg.ffn_dim, cfg.dropout, cfg.num_layers)
        self.class_embed = nn.Linear(dim, cfg.num_classes + 1)  # unused (as released)
        self.bbox_embed = BoxMLP(dim)
        self.query_embed = nn.Embedding(cfg.num_queries, dim)
        self.frame_index = nn.Embedding(frames, dim)
        self.frame_proj = nn.Linear(2 * dim, dim)
        self.pos_embed = nn.Parameter(torch.zeros(1, patches_per_frame + 1, dim))  # [0] unused, as released
        self.temporal_embed = nn.Parameter(torch.zeros(1, frames, dim))
        self.proj = nn.Linear(feature_dim, dim, bias=False)
        self.obj_proj = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, cfg.joint_dim))
        trunc_normal_(self.pos_embed, std=0.02)
        trunc_normal_(self.temporal_embed, std=0.02)
        for unused in (self.class_embed, self.vid_proj):  # never in a loss: frozen, like AdamW leaves them
            unused.requires_grad_(False)

    def memory_pos_embed(self) -> torch.Tensor:
        """3D positional terms of the memory (``construct_3d_pos_embed``): (1, T·N, C), frame-major."""
        spatial = self.pos_embed[:, 1:].repeat(1, self.num_frames, 1)  # (1, T·N, C)
        temporal = self.temporal_embed.repeat_interleave(self.patches_per_frame, dim=1)  # (1, T·N, C)
        return spatial + temporal

    def decode(self, tokens: torch.Tensor) -> torch.Tensor:
        """Patch tokens (B, T, N, D) → every decoder layer's query states (L, B, Q, C)."""
        b, t, n, _ = tokens.shape
        if (t, n) != (self.num_frames, self.patches_per_frame):
            raise ValueError(
                f"decoder built for {self.num_frames} frames × {self.patches_per_frame} patches, "
                f"got tokens {tuple(tokens.shape)}"
            )
        memory = self.proj(tokens).flatten(1, 2)  # (B, T·N, C)
        return self.transformer(memory, self.memory_pos_embed(), self.query_embed.weight)

    def boxes(self, states: torch.Tensor) -> torch.Tensor:
        """Query states (..., Q, C) → per-frame boxes (..., T, Q, 4), normalised cxcywh (trajectory head)."""
        frames = self.frame_index.weight  # (T, C)
        expanded = states.unsqueeze(-3).expand(*states.shape[:-2], frames.shape[0], *states.shape[-2:])
        index = frames[:, None, :].expand_as(expanded)  # (..., T, Q, C)
        conditioned = self.frame_proj(torch.cat([expanded, index], dim=-1))  # (..., T, Q, C)
        return self.bbox_embed(conditioned).sigmoid()


# --------------------------------------------------------------------------------------------------------
# Losses (model/loss.py)


def mean_positive_nce(logits: torch.Tensor, positives: torch.Tensor) -> torch.Tensor:
    """HH ``EgoNCE`` (§3.3): −mean_i (1/|P_i|) Σ_{p∈P_i} log softmax(logits_i)_p − (the same over columns).

    ``logits`` (M, B̃): M text rows (with rephrased captions, several per clip) against B̃ videos; ``positives``
    (M, B̃) bool. Every row and every column needs at least one positive.
    """
    pos = positives.to(logits.dtype)
    rows = (logits.log_softmax(dim=1) * pos).sum(1) / pos.sum(1)
    cols = (logits.T.log_softmax(dim=1) * pos.T).sum(1) / pos.sum(0)
    return -rows.mean() - cols.mean()


def noun_matching_loss(
    noun_embeds: torch.Tensor,
    query_embeds: torch.Tensor,
    targets: torch.Tensor,
    *,
    temperature: float = 0.07,
    threshold: float = 0.6,
) -> torch.Tensor:
    """HH ``WordContrastiveLoss`` (§3.3): Hungarian-match each caption noun to a query, then contrast.

    ``noun_embeds`` (V, E) vocabulary embeddings; ``query_embeds`` (B, K, E); ``targets`` (B, G) noun indices,
    −1 = none. Per clip, nouns are assigned to distinct queries minimising −cos; each matched query is
    classified over the vocabulary with logits cos/τ, where other nouns whose cosine to the target exceeds
    ``threshold`` get logit −1/τ (not treated as negatives). Mean cross-entropy over matched nouns.
    """
    nouns = F.normalize(noun_embeds, dim=-1)  # (V, E)
    queries = F.normalize(query_embeds, dim=-1)  # (B, K, E)
    valid = targets >= 0  # (B, G)
    if not valid.any():
        return query_embeds.sum() * 0.0
    picked = nouns[targets.clamp(min=0)]  # (B, G, E)
    cost = -(queries @ picked.transpose(1, 2)).detach().float().cpu()  # (B, K, G)
    rows, cols, chosen = [], [], []
    for b in range(targets.shape[0]):
        g = valid[b].nonzero().flatten().cpu()
        if len(g):
            q, t = linear_sum_assignment(cost[b][:, g].numpy())
            rows += [b] * len(q)
            cols += g[torch.as_tensor(t)].tolist()
            chosen += q.tolist()
    rows_t = torch.tensor(rows, device=queries.device)
    matched = queries[rows_t, torch.tensor(chosen, device=queries.device)]  # (M, E)
    labels = targets.to(queries.device)[rows_t, torch.tensor(cols, device=queries.device)]  # (M,)
    similar = nouns @ nouns.T  # (V, V)
    similar.fill_diagonal_(0.0)
    logits = (matched @ nouns.T).masked_fill(similar[labels] > threshold, -1.0)  # (M, V)
    return F.cross_entropy(logits / temperature, labels)


# --------------------------------------------------------------------------------------------------------
# Model


class HelpingHands(nn.Module):
    """Frozen LaViLa + object-aware decoder; follows ``henasy.core.interface.VideoTextModel`` and grounds nouns."""

    # Inference is a single parallel pass, not autoregressive: ``Cross_Attention.forward`` decodes all 13
    # queries at once from zero targets with no causal mask (``tgt_mask=None``), ``TransformerDecoder.forward``
    # loops over layers only, and ``run/test_EgoMCQ.py`` ``evaluate_egomcq`` scores a clip with one
    # ``model(video_grid)`` call (model/tfm_decoder.py @ 46a3852). HENASY's Table 5 marks HelpingHands as
    # autoregressive; the cost table reports both that claim and this fact.
    autoregressive = False
    # EgoNCE with LaViLa-rephrased caption positives (run/train.py prepare_data): the trainer attaches
    # ``rephrased_text`` / ``rephrased_valid`` when data.rephrased_captions finds the file.
    uses_rephrased_captions = True

    def __init__(self, config: HelpingHandsConfig | None = None) -> None:
        super().__init__()
        cfg = config or HelpingHandsConfig()
        self.config = cfg
        bb = cfg.backbone
        self.num_frames, self.image_size, self.embed_dim = bb.num_frames, bb.image_size, cfg.joint_dim
        self.pixel_mean, self.pixel_std = tuple(bb.pixel_mean), tuple(bb.pixel_std)
        self.backbone = LaViLaDualEncoder(bb)
        self.backbone.requires_grad_(False)
        self.backbone.eval()
        self.decoder = ObjectDecoder(
            cfg, bb.vision_width, bb.text_width, self.backbone.visual.patches_per_frame
        )
        self.hands = slice(0, cfg.num_hand_queries)
        self.objects = slice(cfg.num_hand_queries, cfg.num_hand_queries + cfg.num_object_queries)
        self.noun_names: list[str] = []
        self.register_buffer("noun_features", torch.zeros(0, bb.text_width), persistent=False)  # (V, W)
        self.register_buffer("noun_excluded", torch.zeros(0, dtype=torch.bool), persistent=False)  # (V,)

    def train(self, mode: bool = True) -> HelpingHands:
        """Train the decoder; the frozen backbone always stays in eval mode."""
        super().train(mode)
        self.backbone.eval()
        return self

    # -- frozen backbone ----------------------------------------------------------------------------------
    @torch.no_grad()
    def patch_tokens(self, video: torch.Tensor) -> torch.Tensor:
        """(B, C, T, H, W) → final-``norm``-ed patch tokens (B, T, N, D) of the frozen video tower
        (HH ``return_feature_map=True``). Walks ``layer_tokens`` keeping only the last block's tokens:
        ``forward_features(return_all_tokens=True)`` would keep every block's tokens alive at once."""
        visual = self.backbone.visual
        b, t = video.shape[0], video.shape[2]
        x = deque(visual.layer_tokens(video), maxlen=1)[0]  # last block's output, (B, 1+T·N, D)
        tokens = visual.norm(x[:, 1:])  # (B, T·N, D)
        return tokens.reshape(b, t, -1, tokens.shape[-1])

    @torch.no_grad()
    def text_features(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, L) ids → EOT feature of the frozen text tower before projection (B, W)."""
        return self.backbone.encode_text_features(tokens)

    # -- interface ----------------------------------------------------------------------------------------
    def tokenize(self, texts: list[str]) -> torch.Tensor:
        """CLIP BPE ids (B, context_length), as the LaViLa backbone."""
        return self.backbone.tokenize(texts)

    def query_states(self, video: torch.Tensor) -> torch.Tensor:
        """(B, C, T, H, W) → every decoder layer's query states (L, B, Q, C)."""
        return self.decoder.decode(self.patch_tokens(video))

    def encode_video(self, video: torch.Tensor) -> torch.Tensor:
        """(B, C, T, H, W) → (B, joint_dim) L2-normalised ``obj_proj`` of the video (last) query."""
        return F.normalize(self.decoder.obj_proj(self.query_states(video)[-1, :, -1]), dim=-1)

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, L) ids → (B, joint_dim) L2-normalised ``txt_proj`` of the EOT feature."""
        return F.normalize(self.decoder.txt_proj(self.text_features(tokens)), dim=-1)

    # -- grounding ----------------------------------------------------------------------------------------
    def predict_boxes(self, video: torch.Tensor) -> torch.Tensor:
        """(B, C, T, H, W) → last-layer boxes of every query (B, Q, T, 4), normalised x1y1x2y2 of the crop."""
        boxes = self.decoder.boxes(self.query_states(video)[-1])  # (B, T, Q, 4) cxcywh
        return box_cxcywh_to_xyxy(boxes).transpose(1, 2).clamp(0.0, 1.0)

    def ground(
        self, video: torch.Tensor, tokens: torch.Tensor, size: tuple[int, int] | None = None
    ) -> torch.Tensor:
        """Masks (B, T, H, W) in {0, 1} for text queries (B, L): the per-frame box of the query whose
        ``obj_proj`` embedding has the highest cosine with the query's ``txt_proj`` embedding, rasterised.

        Candidates are the queries the noun loss aligns with nouns (all but the video query: hands and
        objects). Noun and verb-phrase queries are answered the same way (HENASY's protocol for
        HelpingHands). ``size`` = (H, W) of the masks; default: the video's.
        """
        states = self.query_states(video)[-1]  # (B, Q, C)
        candidates = F.normalize(self.decoder.obj_proj(states[:, :-1]), dim=-1)  # (B, Q-1, E)
        best = torch.einsum("bqe,be->bq", candidates, self.encode_text(tokens)).argmax(dim=1)  # (B,)
        boxes = self.decoder.boxes(states)  # (B, T, Q, 4) cxcywh
        chosen = boxes[torch.arange(boxes.shape[0], device=boxes.device), :, best]  # (B, T, 4)
        height, width = size if size is not None else video.shape[-2:]
        return rasterize_boxes(box_cxcywh_to_xyxy(chosen).clamp(0.0, 1.0), int(height), int(width))

    # -- data binding -------------------------------------------------------------------------------------
    def bind_data(self, noun_names: list[str], verb_phrases: dict | None = None) -> None:
        """Receive the noun vocabulary (taxonomy labels in tag-index order) once before training.

        Caches the frozen text tower's EOT features of every noun (HH ``noun_dict_lavila_embeds.pth``: LaViLa
        text features before projection) and which nouns are hand/person/background words (left out of the
        EgoNCE tags and of the noun targets). ``verb_phrases`` is accepted for the shared hook; HelpingHands
        has no verb-phrase loss.
        """
        del verb_phrases
        names = [noun_text(str(n)) for n in noun_names]
        self.noun_names = list(noun_names)
        device = self.noun_features.device
        excluded = torch.tensor([n in self.config.excluded_nouns for n in names], dtype=torch.bool)
        self.noun_excluded = excluded.to(device)
        if device.type == "meta" or not names:
            self.noun_features = torch.zeros(len(names), self.backbone.config.text_width, device=device)
            return
        features = [
            self.text_features(self.tokenize(names[i : i + 256]).to(device))
            for i in range(0, len(names), 256)
        ]
        self.noun_features = torch.cat(features).float()  # (V, W)

    # -- training -----------------------------------------------------------------------------------------
    def training_losses(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """HH objective (§3.3): EgoNCE variant + box loss + 0.5 × noun matching; each term also reported.

        ``batch``: ``video`` (B̃, C, T, H, W), ``text`` (B̃, L) ids; optional ``rephrased_text`` (B̃, R, L) ids with
        ``rephrased_valid`` (B̃, R) bool (each clip's captions, the narration first; they replace ``text`` in
        EgoNCE); optional ``verb_tags``/``noun_tags`` multi-hot (B̃, ·) and ``caption_noun_tags`` (B̃, V) (the
        noun targets; default: ``noun_tags``); ``boxes`` (B', T, 4, 4) normalised x1y1x2y2 (rows 0–1 hands,
        2–3 objects) with ``box_valid`` (or ``box_mask``) (B', T, 4), tensors or per-clip lists, for the first
        B' ≤ B̃ clips. The box term needs ``boxes``; the noun term needs ``bind_data`` and noun tags.
        """
        missing = [key for key in ("video", "text") if key not in batch]
        if missing:
            raise ValueError(f"training batch lacks {missing}; it has keys {sorted(batch)}")
        states = self.query_states(batch["video"])  # (L, B̃, Q, C)
        video = F.normalize(self.decoder.obj_proj(states[-1, :, -1]), dim=-1)  # (B̃, E)
        text, valid = self._caption_embeddings(batch)  # (B̃·R, E), (B̃·R,) bool
        verbs, nouns = batch.get("verb_tags"), batch.get("noun_tags")
        if nouns is not None and len(self.noun_excluded) == nouns.shape[-1]:
            nouns = nouns.masked_fill(self.noun_excluded.to(nouns.device), 0)  # run/train.py prepare_data
        video, text = gather_with_grad(video), gather_with_grad(text)  # global batch under DDP
        valid = gather_with_grad(valid.to(torch.uint8)).bool()  # as uint8: every backend gathers it
        verbs, nouns = gather_optional(verbs), gather_optional(nouns)
        positives = egonce_positive_mask(video.shape[0], verbs, nouns, device=video.device)  # (B̃, B̃)
        # text row r belongs to clip r // R: its positives are that clip's (HH EgoNCE multi_pad_mask branch)
        owner = torch.arange(video.shape[0], device=video.device).repeat_interleave(
            text.shape[0] // video.shape[0]
        )
        valid = valid.to(video.device)
        logits = text[valid] @ video.T / self.config.loss_temperature  # (M, B̃)
        nce = mean_positive_nce(logits, positives[owner[valid]])
        out = {"egonce": nce.detach()}
        if "rephrased_text" in batch:  # how many positive captions a clip had on average (1 = narration only)
            out["captions_per_clip"] = valid.float().sum() / video.shape[0]
        loss = nce
        box = self._box_loss(states, batch)
        if box is not None:
            loss = loss + box
            out["box"] = box.detach()
        caption_nouns = batch.get("caption_noun_tags")
        if caption_nouns is not None:  # HH extract_noun lists, built by the data pipeline (caption_nouns.py)
            noun = self._noun_loss(states[-1], caption_nouns, exclude=False)
        else:
            noun = self._noun_loss(states[-1], batch.get("noun_tags"))
        if noun is not None:
            loss = loss + self.config.noun_loss_weight * noun
            out["noun"] = noun.detach()
        out["loss"] = loss
        return out

    def _caption_embeddings(self, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        """EgoNCE text embeddings (B̃·R, E) and which rows are captions (B̃·R,) bool; R = 1 without rephrasings.

        Padding rows are zero and marked invalid (HH masks them with −inf and drops them, ``EgoNCE``); only the
        valid captions go through the text tower.
        """
        captions = batch.get("rephrased_text")
        if captions is None:
            text = self.encode_text(batch["text"])  # (B̃, E)
            return text, torch.ones(text.shape[0], dtype=torch.bool, device=text.device)
        valid = batch.get("rephrased_valid")
        if valid is None or captions.dim() != 3 or tuple(valid.shape) != tuple(captions.shape[:2]):
            raise ValueError(
                "batch['rephrased_text'] must be (B, R, L) token ids with batch['rephrased_valid'] (B, R); got "
                f"{tuple(captions.shape)} and {None if valid is None else tuple(valid.shape)}"
            )
        if captions.shape[0] != batch["video"].shape[0] or not bool(valid[:, 0].all()):
            raise ValueError("every clip needs its narration as rephrased caption 0 (rephrased_valid[:, 0])")
        valid = valid.to(captions.device).bool().flatten()  # (B̃·R,)
        encoded = self.encode_text(captions.flatten(0, 1)[valid])  # (M, E)
        text = encoded.new_zeros(valid.shape[0], encoded.shape[-1])
        text[valid] = encoded
        return text, valid

    def _box_loss(self, states: torch.Tensor, batch: dict[str, Any]) -> torch.Tensor | None:
        """Hands vs queries 0–1 and objects vs 2–11, per frame; every layer when ``box_aux_loss`` (§3.3)."""
        boxes = batch.get("boxes")
        valid = batch.get("box_valid", batch.get("box_mask"))
        if boxes is None:
            return None
        if valid is None:
            raise ValueError("batch has 'boxes' but no 'box_valid' (or 'box_mask') validity mask")
        if isinstance(boxes, (list, tuple)):
            boxes, valid = torch.stack(list(boxes)), torch.stack(list(valid))
        boxes, valid = boxes.to(states.device, torch.float32), valid.to(states.device).bool()
        n, frames = boxes.shape[:2]
        if boxes.shape[2:] != (4, 4) or valid.shape != boxes.shape[:3] or frames != self.num_frames:
            raise ValueError(
                f"boxes must be (B, {self.num_frames} frames, 4 boxes, 4) with box_valid (B, T, 4); got "
                f"{tuple(boxes.shape)} and {tuple(valid.shape)}"
            )
        if n > states.shape[1]:
            raise ValueError(f"{n} clips of boxes for a batch of {states.shape[1]} clips")
        layers = states[:, :n] if self.config.box_aux_loss else states[-1:, :n]  # (L', n, Q, C)
        pred = self.decoder.boxes(layers).flatten(1, 2).float()  # (L', n·T, Q, 4), fp32 for L1/GIoU
        targets, valid = boxes.flatten(0, 1), valid.flatten(0, 1)  # (n·T, 4, 4), (n·T, 4)
        weights = {"l1_weight": self.config.l1_weight, "giou_weight": self.config.giou_weight}
        hands = set_box_loss(pred[:, :, self.hands], targets[:, :2], valid[:, :2], **weights)
        objects = set_box_loss(pred[:, :, self.objects], targets[:, 2:], valid[:, 2:], **weights)
        return self.config.box_loss_scale * (hands + objects)

    def noun_targets(self, noun_tags: torch.Tensor, *, exclude: bool = True) -> torch.Tensor:
        """(B, V) multi-hot tags → (B, max_nouns) vocabulary indices (ascending, −1 padded); with ``exclude``
        without the excluded hand/person/background nouns (HH ``extract_noun`` keeps up to 4 nouns per
        caption; caption noun lists from the data pipeline are already built that way: ``exclude=False``)."""
        tags = noun_tags > 0  # (B, V)
        if exclude:
            tags = tags & ~self.noun_excluded.to(noun_tags.device)
        order = torch.arange(tags.shape[1], device=tags.device).expand_as(tags)
        ranked = torch.where(tags, order, tags.shape[1]).sort(dim=1).values[:, : self.config.max_nouns]
        return ranked.masked_fill(ranked >= tags.shape[1], -1)

    def _noun_loss(
        self, last: torch.Tensor, noun_tags: torch.Tensor | None, *, exclude: bool = True
    ) -> torch.Tensor | None:
        """HH word contrastive loss on the last layer's hand + object queries (§3.3)."""
        if noun_tags is None or len(self.noun_features) == 0:
            return None
        if noun_tags.shape[-1] != len(self.noun_features):
            raise ValueError(
                f"noun_tags have {noun_tags.shape[-1]} classes but bind_data gave {len(self.noun_features)} nouns"
            )
        vocab = self.decoder.txt_proj(self.noun_features.to(last.dtype))  # (V, E)
        queries = self.decoder.obj_proj(last[:, :-1])  # (B̃, Q-1, E)
        return noun_matching_loss(
            vocab,
            queries,
            self.noun_targets(noun_tags.to(last.device), exclude=exclude),
            temperature=self.config.loss_temperature,
            threshold=self.config.noun_threshold,
        )

    # -- checkpoints --------------------------------------------------------------------------------------
    def load_checkpoint(self, source: str | Path | Mapping[str, Any], strict: bool = True) -> KeyReport:
        """Load an official HH decoder checkpoint (``{"epoch", "state_dict": ObjDecoder, "best_acc",
        "optimizer", "iteration"}``) into ``decoder``, a LaViLa checkpoint into ``backbone``, or a whole-model
        state_dict (``backbone.*`` + ``decoder.*``, e.g. a trainer checkpoint) into the model."""
        if isinstance(source, (str, Path)):
            name, state = str(source), load_state_dict_file(source)
        else:
            name, state = "state_dict", extract_state_dict(source, source="state_dict")
        if any(k.startswith(("backbone.", "decoder.")) for k in state):
            return load_checked(self, state, strict=strict, source=name)
        if "query_embed.weight" in state:
            report = KeyReport(notes=["HelpingHands ObjDecoder checkpoint → decoder (backbone unchanged)"])
            return load_checked(self.decoder, state, strict=strict, report=report, source=name)
        if any(k.startswith("visual.") for k in state):
            return load_lavila_checkpoint(self.backbone, state, strict=strict)
        raise CheckpointError(
            f"{name}: neither a HelpingHands decoder checkpoint (no 'query_embed.weight'), a LaViLa checkpoint "
            "(no 'visual.*' keys) nor a whole HelpingHands state_dict ('backbone.*' / 'decoder.*')"
        )

    def load_backbone_checkpoint(
        self, source: str | Path | Mapping[str, Any], strict: bool = True
    ) -> KeyReport:
        """The frozen LaViLa backbone from a LaViLa checkpoint: what ``henasy.core.factory.create_model(...,
        backbone_checkpoint=PATH)`` (``model.lavila_checkpoint``) calls."""
        return load_lavila_checkpoint(self.backbone, source, strict=strict)


# --------------------------------------------------------------------------------------------------------
# Presets (registered in henasy.core.catalog.MODELS)

TINY = HelpingHandsConfig(  # trains on the CPU in seconds; same query roles, losses and code paths
    backbone=TINY_CONFIG,
    hidden_dim=64,
    num_heads=4,
    num_layers=2,
    ffn_dim=128,
    num_classes=7,
    joint_dim=64,
    vid_proj_dim=96,
)


def build_helpinghands(base: HelpingHandsConfig, **overrides: Any) -> HelpingHands:
    """``HelpingHands`` from ``base`` with keyword overrides of ``HelpingHandsConfig`` or (for the backbone)
    ``LaViLaConfig`` fields, e.g. ``num_frames``. Unknown keys raise ``BenchError``. Weights (an official
    decoder or whole-model checkpoint, the LaViLa backbone) are loaded by ``henasy.core.factory.create_model``."""
    own = {f.name for f in fields(HelpingHandsConfig)} - {"backbone"}
    backbone_keys = {f.name for f in fields(LaViLaConfig)}
    check_options("HelpingHands", overrides, {"valid options": own | backbone_keys})
    backbone = replace(base.backbone, **{k: v for k, v in overrides.items() if k in backbone_keys})
    config = replace(base, backbone=backbone, **{k: v for k, v in overrides.items() if k in own})
    return HelpingHands(config)


def helpinghands_tsf_base(**overrides: Any) -> HelpingHands:
    """HENASY's comparison setting: HH decoder on a frozen LaViLa TSF-B (4 frames, 224 px), 216.5 M parameters."""
    return build_helpinghands(HelpingHandsConfig(), **overrides)


def helpinghands_tsfl(**overrides: Any) -> HelpingHands:
    """The public release: HH decoder (1024-d input, 256 patches/frame) on a frozen LaViLa TSF-L."""
    return build_helpinghands(HelpingHandsConfig(backbone=TSF_LARGE_CONFIG), **overrides)


def helpinghands_tiny(**overrides: Any) -> HelpingHands:
    """Tiny preset on ``lavila_tiny`` (64 px, width 96; decoder width 64, 2 layers) for CPU tests."""
    return build_helpinghands(TINY, **overrides)
