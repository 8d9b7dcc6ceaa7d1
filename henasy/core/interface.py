"""The contract between models, the trainer and benchmarks.

Every registered model (LaViLa, HelpingHands, HENASY, at any preset) is a ``torch.nn.Module`` with this
interface. Benchmarks only call ``tokenize`` / ``encode_video`` / ``encode_text`` (and ``entity_masks``
for grounding when present); the trainer only calls ``training_losses``. Preprocessing constants travel
with the model so the clip loader produces exactly what it expects.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import torch


@runtime_checkable
class VideoTextModel(Protocol):
    """What every registered model offers to the trainer and to every benchmark."""

    num_frames: int  # frames per clip the model was built for (T)
    image_size: int  # square crop side in pixels (H = W)
    embed_dim: int  # size of the joint embedding space
    pixel_mean: tuple[float, float, float]  # per-channel mean on the 0–255 scale
    pixel_std: tuple[float, float, float]  # per-channel std on the 0–255 scale

    def tokenize(self, texts: list[str]) -> torch.Tensor:
        """Token ids, (B, L) long."""
        ...

    def encode_video(self, video: torch.Tensor) -> torch.Tensor:
        """(B, C, T, H, W) normalised pixels → (B, D) L2-normalised embeddings."""
        ...

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, L) token ids → (B, D) L2-normalised embeddings."""
        ...

    def training_losses(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Loss terms for one training batch; key ``"loss"`` is the total that is back-propagated."""
        ...


def interface_members() -> list[str]:
    """The attributes and methods ``VideoTextModel`` requires, in declaration order."""
    methods = [n for n, v in vars(VideoTextModel).items() if callable(v) and not n.startswith("_")]
    return [*VideoTextModel.__annotations__, *methods]


def missing_members(model: object) -> list[str]:
    """The ``VideoTextModel`` members ``model`` lacks (a method must also be callable); empty when it fits."""
    methods = {n for n, v in vars(VideoTextModel).items() if callable(v) and not n.startswith("_")}
    missing = []
    for member in interface_members():
        value = getattr(model, member, None)
        if value is None or (member in methods and not callable(value)):
            missing.append(member)
    return missing
