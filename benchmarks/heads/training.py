"""The small training loop shared by the downstream heads (VSLNet for NLQ, the detector for MQ).

AdamW over ``epochs`` passes of shuffled mini-batches, seeded so a head trained twice on the same features
gives the same predictions; the head ends in eval mode. ``loss_fn(head, items)`` computes the loss of one
mini-batch of the protocol's training items (lists of Python objects the protocol collates itself).

On the CPU the heads run with one intra-op thread (``one_cpu_thread``): their ops are small, and on a
loaded 2-core machine two threads made a VSLNet step 15x slower (1.3 s vs 0.085 s, hidden 128).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn


@contextlib.contextmanager
def one_cpu_thread(module: nn.Module) -> Iterator[None]:
    """Run the block with one torch intra-op thread when ``module`` lives on the CPU (restored after)."""
    on_cpu = all(p.device.type == "cpu" for p in module.parameters())
    before = torch.get_num_threads()
    if on_cpu:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if on_cpu:
            torch.set_num_threads(before)


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
    head.train()
    with one_cpu_thread(head):
        history = _epochs(head, items, loss_fn, optimizer, rng, epochs, batch_size, progress)
    head.eval()
    return history


def _epochs(
    head: nn.Module,
    items: Sequence[Any],
    loss_fn: Callable[[nn.Module, list[Any]], torch.Tensor],
    optimizer: torch.optim.Optimizer,
    rng: np.random.Generator,
    epochs: int,
    batch_size: int,
    progress: Any,
) -> list[float]:
    history = []
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
    return history
