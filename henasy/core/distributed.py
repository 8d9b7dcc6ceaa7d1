"""Gathering embeddings across DDP processes so a contrastive loss sees the global batch.

Under DistributedDataParallel each process holds B/W clips. LaViLa (``all_gather_batch_with_grad``) and
EgoVLP (``AllGather_multi``) gather the video and text embeddings of every process before the contrastive
loss, so Eq. 1's negatives (and EgoNCE's noun/verb positives) come from the global batch, as the paper's
"batch size" means. Without it a 2-GPU run is a different experiment from a 1-GPU run of the same total
batch. Here every process computes the loss over the gathered batch; ``gather_with_grad`` sums the
gradients that all processes computed for a process's own rows, and DDP's gradient averaging then gives
exactly the single-process full-batch gradient (checked in tests/test_distributed_loss.py).

Shards may differ in size (clips skipped by the skip policy): sizes are exchanged first and shards padded.
Outside ``torch.distributed`` (or with one process) everything here is the identity.
"""

from __future__ import annotations

import torch
import torch.distributed as dist


def distributed_world() -> int:
    """Number of processes of the default group, 1 when ``torch.distributed`` is not in use."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    return 1


class _GatherRows(torch.autograd.Function):
    """(n_r, ...) on every rank → (Σ n_r, ...) in rank order; backward sums the ranks' gradients."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        world, rank = dist.get_world_size(), dist.get_rank()
        sizes = torch.zeros(world, dtype=torch.long, device=x.device)
        sizes[rank] = x.shape[0]
        dist.all_reduce(sizes)  # (W,) rows per rank
        most = int(sizes.max())
        padded = x.new_zeros((most, *x.shape[1:]))  # (max n, ...)
        padded[: x.shape[0]] = x
        parts = [torch.empty_like(padded) for _ in range(world)]
        dist.all_gather(parts, padded.contiguous())
        ctx.sizes, ctx.rank, ctx.most = sizes.tolist(), rank, most
        return torch.cat([p[:n] for p, n in zip(parts, ctx.sizes)])  # (Σ n_r, ...)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        pieces = grad.split(ctx.sizes)
        padded = grad.new_zeros((len(ctx.sizes), ctx.most, *grad.shape[1:]))  # (W, max n, ...)
        for r, piece in enumerate(pieces):
            padded[r, : piece.shape[0]] = piece
        dist.all_reduce(padded)  # every rank's loss depends on every row: add their gradients
        return padded[ctx.rank, : ctx.sizes[ctx.rank]].contiguous()


def gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """All processes' rows of ``x`` (rank order), differentiable; ``x`` itself without distributed."""
    if distributed_world() == 1:
        return x
    return _GatherRows.apply(x)


def gather_optional(x: torch.Tensor | None) -> torch.Tensor | None:
    """``gather_with_grad`` that passes ``None`` through (optional tag tensors)."""
    return None if x is None else gather_with_grad(x)
