"""``MyTinyModel``: the network of the plugin example (``my_model.py`` registers it; ``tests/test_plugins.py``
also installs it through an entry point). Nothing here imports HENASY: it is a model of "your own package".

It follows ``henasy.core.interface.VideoTextModel`` with as little as possible: the clip is mean-pooled over time
and space and projected, a caption is a bag of hashed words. It is untrained.
"""

from __future__ import annotations

import zlib
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

VOCAB, LENGTH = 512, 16  # hashed-word vocabulary, tokens per caption (0 = padding)


class MyTinyModel(nn.Module):
    """Mean-pooled RGB → linear; bag of hashed words → linear; both L2-normalised into ``embed_dim``."""

    pixel_mean = (123.675, 116.28, 103.53)  # ImageNet mean / std on the 0–255 scale
    pixel_std = (58.395, 57.12, 57.375)

    def __init__(self, num_frames: int = 2, image_size: int = 32, embed_dim: int = 16) -> None:
        super().__init__()
        self.num_frames, self.image_size, self.embed_dim = num_frames, image_size, embed_dim
        self.video_proj = nn.Linear(3, embed_dim)
        self.word_embed = nn.EmbeddingBag(VOCAB, embed_dim, mode="mean", padding_idx=0)
        self.logit_scale = nn.Parameter(torch.tensor(10.0))

    def tokenize(self, texts: list[str]) -> torch.Tensor:
        tokens = torch.zeros(len(texts), LENGTH, dtype=torch.long)  # (B, L)
        for row, text in enumerate(texts):
            ids = [1 + zlib.crc32(w.encode()) % (VOCAB - 1) for w in text.lower().split()][:LENGTH]
            tokens[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        return tokens

    def encode_video(self, video: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.video_proj(video.mean(dim=(2, 3, 4))), dim=-1)  # (B, C, T, H, W) → (B, D)

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.word_embed(tokens), dim=-1)  # (B, L) → (B, D)

    def training_losses(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        video, text = self.encode_video(batch["video"]), self.encode_text(batch["text"])
        logits = self.logit_scale * video @ text.T  # (B, B)
        target = torch.arange(len(logits), device=logits.device)
        return {"loss": (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2}
