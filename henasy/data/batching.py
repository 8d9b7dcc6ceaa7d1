"""Map-style datasets of clips, a collate function, and ``make_dataloader`` with an explicit skip policy.

LaViLa's loaders silently replace an unreadable video by frame 0 or by zeros (``video_loader``,
``video_loader_by_frames``), which hides broken data inside benchmark numbers. Here the policy is explicit:
``on_error="raise"`` (default) lets the ``VideoReadError`` naming the file propagate; ``on_error="skip"``
drops that item from its batch, and the loader's ``SkipCounter`` counts it and names the first few files.
Failures travel inside the batches as ``SkippedItem``s, so skips are counted correctly with worker processes
and errors are re-raised in the main process with their type and file name.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from henasy.core.errors import BenchError, VideoReadError
from henasy.data.video import ClipLoader, VideoSource, as_source

OnError = Literal["raise", "skip"]
SKIPPED_KEY = "_skipped"


@dataclass(frozen=True)
class SkippedItem:
    """Stands in for a dataset item that raised a ``BenchError`` (so the error crosses worker processes)."""

    index: int
    path: str
    message: str  # the full error text (names the file)
    kind: str = "video"  # "video": VideoReadError (skippable); "data": any other BenchError (always raised)
    detail: str = ""  # the VideoReadError message without the path prefix

    def error(self) -> BenchError:
        """The error to raise in the main process (a ``VideoReadError`` keeps its type and path)."""
        if self.kind == "video":
            return VideoReadError(self.path, self.detail)
        return BenchError(self.message)


@dataclass
class SkipCounter:
    """How many items were skipped, and the first ``max_examples`` of them."""

    max_examples: int = 5
    count: int = 0
    examples: list[SkippedItem] = field(default_factory=list)

    def add(self, item: SkippedItem) -> None:
        self.count += 1
        if len(self.examples) < self.max_examples:
            self.examples.append(item)

    def summary(self) -> str:
        """One line (plus one per example) for logs and result records."""
        if not self.count:
            return "no clips skipped"
        lines = [f"{self.count} clip(s) skipped because their video could not be read; first ones:"]
        lines += [f"  item {s.index}: {s.message}" for s in self.examples]
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        return {
            "skipped": self.count,
            "examples": [{"index": s.index, "path": s.path, "message": s.message} for s in self.examples],
        }


class SkipErrors(Dataset):
    """Wraps a dataset so that a ``BenchError`` raised by an item becomes a ``SkippedItem``.

    torch re-raises a worker's exception by calling its class with one message argument, which
    ``VideoReadError``/``DataFormatError`` do not accept (it would surface as a bare ``RuntimeError``);
    returning the failure as data lets ``ClipDataLoader`` apply the skip policy and re-raise the right type.
    """

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> Any:
        try:
            return self.dataset[index]
        except VideoReadError as exc:
            prefix = f"{exc.path}: "
            detail = str(exc)[len(prefix) :] if str(exc).startswith(prefix) else str(exc)
            return SkippedItem(int(index), exc.path, str(exc), "video", detail)
        except BenchError as exc:
            return SkippedItem(int(index), str(getattr(exc, "path", "")), str(exc), "data")


def collate(items: Sequence[Any]) -> dict[str, Any]:
    """Items (dicts) → a batch: tensors stacked, numbers → tensors, strings/lists/None kept as lists.

    ``SkippedItem``s are removed and listed under ``batch["_skipped"]`` (the loader consumes that key).
    """
    skipped = [it for it in items if isinstance(it, SkippedItem)]
    kept = [it for it in items if not isinstance(it, SkippedItem)]
    batch = _collate_dicts(kept) if kept else {}
    batch[SKIPPED_KEY] = skipped
    return batch


def _collate_dicts(items: list[dict[str, Any]]) -> dict[str, Any]:
    if not all(isinstance(it, dict) for it in items):
        raise TypeError("collate expects dataset items that are dicts")
    return {key: _collate_values(key, [it[key] for it in items]) for key in items[0]}


def _collate_values(key: str, values: list[Any]) -> Any:
    first = values[0]
    if isinstance(first, torch.Tensor):
        shapes = {tuple(v.shape) for v in values}
        if len(shapes) > 1:
            raise ValueError(f"cannot stack {key!r}: shapes differ {sorted(shapes)}")
        return torch.stack(values)
    if isinstance(first, np.ndarray):
        return torch.from_numpy(np.stack(values))
    if isinstance(first, bool):
        return torch.tensor(values, dtype=torch.bool)
    if isinstance(first, (int, np.integer)) and all(isinstance(v, (int, np.integer)) for v in values):
        return torch.tensor(values, dtype=torch.long)
    if isinstance(first, (float, np.floating)) and all(
        isinstance(v, (int, float, np.number)) for v in values
    ):
        return torch.tensor(values, dtype=torch.float64)
    if isinstance(first, dict):
        return _collate_dicts(values)
    return list(values)  # strings, lists, tuples, None, objects


@dataclass(frozen=True)
class ClipRef:
    """One clip to embed: a video id in a source, a time window, and anything to carry along."""

    video_id: str
    start_sec: float
    end_sec: float
    meta: dict[str, Any] = field(default_factory=dict)


class ClipDataset(Dataset):
    """Clips from one video source → items ``{"video": (C, T, H, W), "index", "video_id", "start_sec",
    "end_sec", **meta}`` (benchmarks embed these). Jitter, if the loader has it, is seeded per item."""

    def __init__(
        self, clips: Sequence[ClipRef], loader: ClipLoader, source: VideoSource | str | Path, seed: int = 0
    ) -> None:
        self.clips = list(clips)
        self.loader = loader
        self.source = as_source(source)
        self.seed = int(seed)

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, index: int) -> dict[str, Any]:
        c = self.clips[index]
        rng = np.random.default_rng((self.seed, int(index)))
        video = self.loader.load(self.source, c.video_id, c.start_sec, c.end_sec, rng=rng)
        return {
            "video": video,
            "index": int(index),
            "video_id": c.video_id,
            "start_sec": c.start_sec,
            "end_sec": c.end_sec,
            **c.meta,
        }


class ClipDataLoader:
    """Iterates batches of a ``torch.utils.data.DataLoader`` and applies the skip policy: with
    ``on_error="skip"`` unreadable videos go into ``skips``; otherwise (and for any other ``BenchError``)
    the item's error is raised in the main process."""

    def __init__(self, loader: DataLoader, skips: SkipCounter, on_error: OnError = "raise") -> None:
        if on_error not in ("raise", "skip"):
            raise BenchError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
        self.loader = loader
        self.skips = skips
        self.on_error = on_error

    @property
    def dataset(self) -> Dataset:
        return self.loader.dataset.dataset  # unwrap SkipErrors

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for batch in self.loader:
            for item in batch.pop(SKIPPED_KEY, []):
                if self.on_error == "raise" or item.kind != "video":
                    raise item.error()
                self.skips.add(item)
            if batch:  # every item of the batch skipped → nothing to yield
                yield batch


def _seed_worker(worker_id: int) -> None:
    seed = torch.initial_seed() % 2**32  # distinct per worker and epoch, derived from the loader's generator
    np.random.seed(seed)
    random.seed(seed)


def make_dataloader(
    dataset: Dataset,
    batch_size: int,
    num_workers: int = 0,
    shuffle: bool = False,
    seed: int = 0,
    *,
    on_error: OnError = "raise",
    drop_last: bool = False,
    pin_memory: bool = False,
    persistent_workers: bool = False,
    prefetch_factor: int | None = None,
    collate_fn: Callable[[Sequence[Any]], dict[str, Any]] = collate,
    max_skip_examples: int = 5,
    skips: SkipCounter | None = None,
) -> ClipDataLoader:
    """A DataLoader over ``dataset`` with worker processes, a seeded shuffle and the skip policy.

    Returns a ``ClipDataLoader``: iterate it for batch dicts; ``.skips`` is the ``SkipCounter`` (``skips``
    when given, so several loaders can share one, else a new one keeping ``max_skip_examples``).
    """
    if on_error not in ("raise", "skip"):
        raise BenchError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    if batch_size <= 0:
        raise BenchError(f"batch_size must be positive, got {batch_size}")
    if num_workers < 0:
        raise BenchError(f"num_workers must be >= 0, got {num_workers}")
    generator = torch.Generator()
    generator.manual_seed(int(seed))
    extra: dict[str, Any] = {}
    if num_workers > 0:
        extra["persistent_workers"] = persistent_workers
        if prefetch_factor is not None:
            extra["prefetch_factor"] = prefetch_factor
    loader = DataLoader(
        SkipErrors(dataset),
        batch_size=batch_size,
        shuffle=shuffle,
        num_workers=num_workers,
        collate_fn=collate_fn,
        drop_last=drop_last,
        pin_memory=pin_memory,
        generator=generator,
        worker_init_fn=_seed_worker if num_workers > 0 else None,
        **extra,
    )
    counter = skips if skips is not None else SkipCounter(max_examples=max_skip_examples)
    return ClipDataLoader(loader, counter, on_error)
