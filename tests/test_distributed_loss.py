"""EgoNCE under DDP (henasy/core/distributed.py): two gloo processes holding uneven shards of a batch
give the loss and the parameter gradients of one process holding the whole batch."""

from __future__ import annotations

import socket
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from henasy.core.distributed import distributed_world, gather_with_grad
from henasy.core.egonce import egonce_loss

ROWS = 8
SHARDS = (range(0, 5), range(5, 8))  # uneven on purpose: skipped clips make shards differ


class PairEncoder(nn.Module):
    """Linear stand-ins for the video and text towers."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.video = nn.Linear(6, 4)
        self.text = nn.Linear(5, 4)

    def forward(self, video: torch.Tensor, text: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return F.normalize(self.video(video), dim=-1), F.normalize(self.text(text), dim=-1)  # (B, 4) each


def batch() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    nouns = torch.zeros(ROWS, 3)
    nouns[torch.arange(ROWS), torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])] = 1
    verbs = torch.zeros(ROWS, 2)
    verbs[torch.arange(ROWS), torch.tensor([0, 0, 1, 0, 1, 1, 1, 0])] = 1  # rows 0/3 and 1/7 share both
    return {
        "video": torch.randn(ROWS, 6, generator=g),
        "text": torch.randn(ROWS, 5, generator=g),
        "verb_tags": verbs,
        "noun_tags": nouns,
    }


def loss_and_grads(model: nn.Module, rows: range) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    b = {k: v[rows.start : rows.stop] for k, v in batch().items()}
    video, text = model(b["video"], b["text"])
    loss = egonce_loss(video, text, b["verb_tags"], b["noun_tags"], temperature=0.1)
    loss.backward()
    inner = model.module if isinstance(model, DistributedDataParallel) else model
    return loss.detach(), {k: p.grad.clone() for k, p in inner.named_parameters()}


def _worker(rank: int, port: int, out: str) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        torch.set_num_threads(1)
        assert distributed_world() == 2
        gathered = gather_with_grad(torch.full((len(SHARDS[rank]), 2), float(rank)))
        assert gathered.tolist() == [[0.0, 0.0]] * 5 + [[1.0, 1.0]] * 3  # rank order, padding removed
        loss, grads = loss_and_grads(DistributedDataParallel(PairEncoder()), SHARDS[rank])
        torch.save({"loss": loss, "grads": grads}, Path(out) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_match_one_process_holding_the_whole_batch(tmp_path: Path) -> None:
    mp.spawn(_worker, args=(_free_port(), str(tmp_path)), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]
    assert distributed_world() == 1  # no process group here: the plain loss
    full_loss, full_grads = loss_and_grads(PairEncoder(), range(ROWS))
    local_loss, _ = loss_and_grads(PairEncoder(), SHARDS[0])
    for r in ranks:
        torch.testing.assert_close(r["loss"], full_loss)
        for key, grad in full_grads.items():
            torch.testing.assert_close(r["grads"][key], grad, rtol=1e-5, atol=1e-6)
    # the check can fail: a shard's own loss (no gathering) is a different number
    assert not torch.isclose(local_loss, full_loss)
