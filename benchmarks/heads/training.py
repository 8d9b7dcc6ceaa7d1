"""The small training loop shared by the downstream heads (VSLNet for NLQ, the detector for MQ).

AdamW over ``epochs`` passes of shuffled mini-batches, seeded so a head trained twice on the same features
gives the same predictions; the head ends in eval mode. ``loss_fn(head, items)`` computes the loss of one
mini-batch of the protocol's training items (lists of Python objects the protocol collates itself).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn


def train_head(
    head: nn.Module,
    items: Sequence[Any],
    loss_fn: Callable[[nn.Module, list[Any]], torch.Tensor],
    *,
    epochs: int,
    lr: float,
    batch_size: int,
    seed: int,
    weight_decay: float = 1e-4,
    progress: Any = None,
) -> list[float]:
    """Train ``head`` in place; returns the mean loss of each epoch. ``progress``: an optional tqdm bar."""
    rng = np.random.default_rng(seed)
    optimizer = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=weight_decay)
    history = []
    head.train()
    for _ in range(epochs):
        order = rng.permutation(len(items))
        losses = []
        for start in range(0, len(order), batch_size):
            loss = loss_fn(head, [items[i] for i in order[start : start + batch_size]])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(head.parameters(), 1.0)
            optimizer.step()
            losses.append(float(loss.detach()))
        history.append(float(np.mean(losses)))
        if progress is not None:
            progress.update(1)
    head.eval()
    return history
