"""What every benchmark protocol gets from the runner: the model, the data root, and streaming encoders.

``EvalContext`` carries the run settings (limit, batch size, workers, device, progress, options) and two
helpers every zero-shot protocol uses: ``embed_clips`` streams clips through a ``DataLoader`` with worker
processes (``henasy.data.batching.make_dataloader``: no dataset is held in memory, unreadable videos raise
with their file name) into ``model.encode_video``; ``embed_texts`` batches ``model.tokenize`` +
``model.encode_text``. Frames follow LaViLa's evaluation sampling (segment midpoints, no jitter, the model's
``num_frames`` / ``image_size`` / ``pixel_mean`` / ``pixel_std``).

Nothing is written under the data root: dataset roots are often read-only mounts shared by a group. Extracted
features and prediction files (``work_dir``) go to ``cache_dir`` when given (``bench eval --cache-dir``), else
to ``default_cache_dir()``: ``$BENCH_CACHE_DIR``, else ``$XDG_CACHE_HOME/henasy-bench``, else
``~/.cache/henasy-bench`` — a per-user cache, as torch hub and Hugging Face use. Cached features are keyed by
the resolved data root among other things (``benchmarks.features.cache_key``), so one cache folder serves
any number of data roots without collisions.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from henasy.core.errors import BenchError
from henasy.core.records import ItemBreakdown
from henasy.data.batching import ClipDataLoader, ClipDataset, ClipRef, SkipCounter, make_dataloader
from henasy.data.layout import DatasetLayout
from henasy.data.video import ClipLoader, FrameRule, VideoSource

CACHE_ENV = "BENCH_CACHE_DIR"
ON_MISSING = ("error", "skip")  # bench eval --on-missing
MAX_SKIPPED_PATHS = 100  # skipped video paths a record lists (with their total)


class EvalSkips(SkipCounter):
    """The ``SkipCounter`` of one benchmark run under ``--on-missing skip``: counts skipped clips and keeps
    every distinct unreadable video path (a record lists the first ``MAX_SKIPPED_PATHS`` and the total)."""

    def __init__(self) -> None:
        super().__init__(max_examples=5)
        self.paths: dict[str, None] = {}  # insertion-ordered set

    def add(self, item: Any) -> None:
        super().add(item)
        self.paths.setdefault(item.path, None)


def default_cache_dir() -> Path:
    """Where features and prediction files go without ``--cache-dir``: ``$BENCH_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/henasy-bench``, else ``~/.cache/henasy-bench`` (never inside the data root)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "henasy-bench"


@dataclass
class EvalContext:
    """Settings and helpers shared by the protocols of one ``evaluate`` call."""

    model: Any  # follows henasy.core.interface.VideoTextModel, in eval mode on ``device``
    model_id: str
    data_root: Path
    limit: int | None = None
    batch_size: int = 16
    num_workers: int = 2
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    progress: bool = True
    options: dict[str, Any] = field(default_factory=dict)  # this benchmark's resolved options
    checkpoint_sha256: str | None = None
    cache_dir: Path | None = None  # feature cache and prediction files (None: default_cache_dir())
    # "error": a missing/unreadable video raises its VideoReadError; "skip": its clips are dropped from the
    # batches (henasy.data.batching's on_error="skip", as training's data.on_error) and counted in ``skips``
    on_missing: str = "error"
    skips: EvalSkips = field(default_factory=EvalSkips)

    @property
    def layout(self) -> DatasetLayout:
        return DatasetLayout(self.data_root)

    @property
    def work_dir(self) -> Path:
        """Root of the feature cache and of written prediction files (never inside the data root by default)."""
        return Path(self.cache_dir) if self.cache_dir is not None else default_cache_dir()

    def take(self, items: Sequence[Any]) -> list[Any]:
        """The first ``limit`` items (all without a limit)."""
        return list(items if self.limit is None else items[: self.limit])

    def clip_loader(self, frame_rule: FrameRule = "duration") -> ClipLoader:
        """LaViLa evaluation sampling for this model: segment midpoints, no jitter."""
        return ClipLoader.for_model(self.model, jitter=False, frame_rule=frame_rule)

    def frames_protocol(self, frame_rule: FrameRule | None, **extra: Any) -> dict[str, Any]:
        """The frame sampling of this model, for the protocol record."""
        m = self.model
        out: dict[str, Any] = {
            "num_frames": int(m.num_frames),
            "image_size": int(m.image_size),
            "pixel_mean": [float(v) for v in m.pixel_mean],
            "pixel_std": [float(v) for v in m.pixel_std],
            "sampling": "LaViLa get_frame_ids segment midpoints, no jitter",
            "crop": "short side resize to image_size + centre crop (antialiased bilinear)",
        }
        if frame_rule is not None:
            out["seconds_to_frames"] = {
                "duration": "LaViLa Ego4D video_loader: [round(fps*start), +max(int(fps*dur), T))",
                "ceil": "LaViLa EK100: [round(fps*start), ceil(fps*end))",
            }[frame_rule]
        out.update(extra)
        return out

    def loader(self, dataset: Any, batch_size: int | None = None) -> ClipDataLoader:
        """A streaming DataLoader over ``dataset``: ``on_error="skip"`` under ``on_missing="skip"`` (skipped
        clips counted in ``self.skips``), else ``"raise"``."""
        return make_dataloader(
            dataset,
            batch_size or self.batch_size,
            num_workers=self.num_workers,
            shuffle=False,
            on_error="skip" if self.on_missing == "skip" else "raise",
            skips=self.skips,
        )

    def bar(self, total: int, desc: str) -> Any:
        """A tqdm progress bar (disabled without ``progress``)."""
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=desc, unit="clip", disable=not self.progress, leave=False)

    def batches(self, dataset: Any, desc: str, batch_size: int | None = None) -> Iterator[dict[str, Any]]:
        """Batches of ``dataset`` with a progress bar counting items."""
        with self.bar(len(dataset), desc) as bar:
            for batch in self.loader(dataset, batch_size):
                yield batch
                bar.update(len(batch["index"]))

    @torch.inference_mode()
    def encode_video(self, video: torch.Tensor) -> torch.Tensor:
        """(B, C, T, H, W) → (B, D) float32 on the CPU."""
        return self.model.encode_video(video.to(self.device, non_blocking=True)).float().cpu()

    def embed_clips(
        self, clips: Sequence[ClipRef], source: VideoSource, desc: str, frame_rule: FrameRule = "duration"
    ) -> np.ndarray:
        """``encode_video`` of every clip, streamed in batches → float32 (N, D) in ``clips`` order."""
        dataset = ClipDataset(clips, self.clip_loader(frame_rule), source)
        return self.embed_dataset(dataset, desc)

    def embed_clips_kept(
        self, clips: Sequence[ClipRef], source: VideoSource, desc: str, frame_rule: FrameRule = "duration"
    ) -> tuple[np.ndarray, np.ndarray]:
        """``embed_clips`` that also returns which clips were read: (N, D) float32 (zero rows for skipped
        clips), (N,) bool. Every clip is read unless ``on_missing="skip"``."""
        dataset = ClipDataset(clips, self.clip_loader(frame_rule), source)
        return self.embed_dataset_kept(dataset, desc)

    def embed_dataset(self, dataset: Any, desc: str, batch_size: int | None = None) -> np.ndarray:
        """``encode_video`` of every item ``{"video", "index"}`` of ``dataset`` → float32 (N, D)."""
        return self.embed_dataset_kept(dataset, desc, batch_size)[0]

    def embed_dataset_kept(
        self, dataset: Any, desc: str, batch_size: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """``embed_dataset`` plus the (N,) bool mask of the items read (false: skipped, zero row)."""
        out: np.ndarray | None = None
        kept = np.zeros(len(dataset), dtype=bool)
        for batch in self.batches(dataset, desc, batch_size):
            emb = self.encode_video(batch["video"]).numpy()  # (B, D)
            if out is None:
                out = np.zeros((len(dataset), emb.shape[1]), dtype=np.float32)
            index = batch["index"].numpy()
            out[index] = emb
            kept[index] = True
        if out is None:
            if len(dataset) and self.skips.count:
                raise BenchError(f"{desc}: every video was missing or unreadable; {self.skips.summary()}")
            raise BenchError(f"{desc}: nothing to embed (the evaluated set is empty)")
        return out, kept

    def note_skipped(self, protocol: dict[str, Any], skipped_items: int, rule: str) -> dict[str, Any] | None:
        """``BenchResult.skipped`` of a protocol that left ``skipped_items`` out (None when none): records
        ``rule`` (what was left out of which metric) in ``protocol["skipped"]``."""
        if skipped_items <= 0:
            return None
        protocol["skipped"] = rule
        return self.skipped_summary(skipped_items)

    def skipped_summary(self, skipped_items: int) -> dict[str, Any]:
        """What a protocol puts in ``BenchResult.skipped``: items dropped, the videos behind them."""
        paths = list(self.skips.paths)
        return {
            "skipped_items": int(skipped_items),
            "skipped_videos": paths[:MAX_SKIPPED_PATHS],
            "skipped_videos_total": len(paths),
        }

    @torch.inference_mode()
    def embed_texts(self, texts: Sequence[str], desc: str = "text") -> np.ndarray:
        """``encode_text(tokenize(texts))`` in batches → float32 (N, D)."""
        if not texts:
            raise BenchError(f"{desc}: no texts to embed")
        chunks = []
        step = max(1, self.batch_size * 4)
        for i in range(0, len(texts), step):
            tokens = self.model.tokenize(list(texts[i : i + step])).to(self.device)  # (b, L)
            chunks.append(self.model.encode_text(tokens).float().cpu().numpy())  # (b, D)
        return np.concatenate(chunks)


# ---------------------------------------------------------------------------------------------- options
@dataclass(frozen=True)
class Option:
    """One protocol option of a benchmark: default, accepted values / type, and what it means."""

    default: Any
    help: str
    choices: tuple[Any, ...] | None = None
    kind: type | tuple[type, ...] | None = None  # checked with isinstance (None: any)
    check: Callable[[Any], bool] | None = None  # extra validity test (e.g. positive)


def resolve_options(
    benchmark: str, spec: Mapping[str, Option], given: Mapping[str, Any] | None
) -> dict[str, Any]:
    """Defaults of ``spec`` updated with ``given``; unknown keys and bad values raise ``BenchError``."""
    given = dict(given or {})
    unknown = sorted(set(given) - set(spec))
    if unknown:
        valid = ", ".join(f"{k} (default {v.default!r})" for k, v in spec.items()) or "none"
        raise BenchError(f"{benchmark}: unknown option(s) {unknown}; valid options: {valid}")
    out = {}
    for key, opt in spec.items():
        value = given.get(key, opt.default)
        if isinstance(value, bool) and opt.kind in (int, float, (int, float)):
            ok = False
        else:
            ok = (
                (opt.choices is None or value in opt.choices)
                and (opt.kind is None or value is None and opt.default is None or isinstance(value, opt.kind))
                and (opt.check is None or value is None or opt.check(value))
            )
        if not ok:
            allowed = f"one of {list(opt.choices)}" if opt.choices else opt.help
            raise BenchError(f"{benchmark}: option {key}={value!r} is not valid; expected {allowed}")
        out[key] = value
    return out


def positive(value: Any) -> bool:
    return value > 0


@dataclass(frozen=True)
class Benchmark:
    """A registered benchmark (``henasy.core.catalog.BENCHMARKS`` entries point at one of these)."""

    name: str
    run: Callable[[EvalContext], Any]  # EvalContext -> benchmarks.record.BenchResult
    options: Mapping[str, Option] = field(default_factory=dict)
    check_model: Callable[[Any, str], None] | None = None  # raises BenchError if the model cannot run it
    # how its metrics decompose into per-item outcomes of its record's per_item (bench compare's bootstrap);
    # None: no metric is a mean over items
    breakdown: ItemBreakdown | None = None
    # its protocol drops items whose videos are missing/unreadable under bench eval --on-missing skip
    skip_aware: bool = False
