"""Sliding-window video features of long clips, cached on disk (the "representation" protocols, paper §5.2).

EgoNLQ and EgoMQ train downstream heads on pre-extracted features (EgoVLP / LaViLa / HelpingHands extract
``encode_video`` embeddings of short windows along each clip, ~1.87 windows/s on Ego4D).
Here a span ``[start, end]`` of a video (a clip, in parent-video seconds) is cut into
``N = ceil(duration / stride_sec)`` equal bins; feature k is ``encode_video`` of a ``window_sec`` window
centred on bin k (``num_frames`` segment-midpoint frames, LaViLa sampling, no jitter), so position k
stands for clip seconds ``[k·dur/N, (k+1)·dur/N)`` exactly, which is what the heads' time mapping assumes.

Features are cached as ``<cache>/features/<key>/<span>-<span digest>.npy`` (float32 (N, D)), ``key`` =
SHA-256 of the resolved data root, the model id, the checkpoint's SHA-256, the weights' SHA-256, the model's
frame/pixel settings and the window parameters (``meta.json`` in the folder spells them out); a second run
with the same key reuses them. The span digest (name, video, start, end) keeps two spans whose names only
differ in characters that are not safe in a file name apart, and a span whose times changed is recomputed.
Windows of the spans not in the cache stream through a DataLoader; each span is written (atomically) as
soon as its last window is embedded. ``<cache>`` is ``EvalContext.work_dir``: ``--cache-dir``, else a per-user
cache outside the data root (``benchmarks.context.default_cache_dir``); a cache folder that cannot be
written is a ``BenchError`` naming it and ``--cache-dir``.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from benchmarks.context import CACHE_ENV, EvalContext
from benchmarks.record import weights_sha256
from henasy.core.atomic import atomic_write, atomic_write_json
from henasy.core.errors import BenchError
from henasy.data.batching import ClipDataset, ClipRef
from henasy.data.paths import inside
from henasy.data.video import VideoSource

EXTRACTOR_VERSION = "sliding_window/1"
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]")


@dataclass(frozen=True)
class WindowSpec:
    """Where features are taken along a span: one ``window_sec`` window per ``stride_sec`` bin."""

    window_sec: float
    stride_sec: float

    def num_positions(self, duration: float) -> int:
        return max(1, math.ceil(duration / self.stride_sec - 1e-9))

    def windows(self, start_sec: float, end_sec: float) -> list[tuple[float, float]]:
        """(start, end) seconds of each window, centred on the N equal bins of ``[start_sec, end_sec]``."""
        duration = max(end_sec - start_sec, 0.0)
        n = self.num_positions(duration)
        half = self.window_sec / 2
        out = []
        for k in range(n):
            centre = start_sec + (k + 0.5) * duration / n
            lo = max(centre - half, 0.0)
            out.append((lo, max(centre + half, lo + 1e-3)))
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "window_sec": self.window_sec,
            "stride_sec": self.stride_sec,
            "placement": "N = ceil(duration / stride_sec) equal bins; one window centred on each bin",
        }


@dataclass(frozen=True)
class Span:
    """A stretch of a video to featurise; ``name`` (e.g. a clip uid) names its cache file."""

    name: str
    video_id: str
    start_sec: float
    end_sec: float

    @property
    def duration(self) -> float:
        return self.end_sec - self.start_sec


def cache_key(ctx: EvalContext, spec: WindowSpec) -> dict[str, Any]:
    """Everything the features depend on."""
    m = ctx.model
    return {
        "extractor": EXTRACTOR_VERSION,
        "data_root": str(Path(ctx.data_root).resolve()),
        "model_id": ctx.model_id,
        "checkpoint_sha256": ctx.checkpoint_sha256,
        "weights_sha256": weights_sha256(m),
        "num_frames": int(m.num_frames),
        "image_size": int(m.image_size),
        "pixel_mean": [float(v) for v in m.pixel_mean],
        "pixel_std": [float(v) for v in m.pixel_std],
        "embedding": "encode_video (L2-normalised)",
        **spec.as_dict(),
    }


def _unwritable(path: Path, err: OSError) -> BenchError:
    reason = err.strerror or type(err).__name__
    return BenchError(
        f"cannot write the feature cache at {path}: {reason}; choose a writable folder with --cache-dir DIR "
        f"(or set {CACHE_ENV})"
    )


class FeatureCache:
    """One folder of ``<span>-<digest>.npy`` files for one cache key."""

    def __init__(self, root: Path, key: dict[str, Any]) -> None:
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:24]
        self.key = key
        self.dir = Path(root) / "features" / digest
        meta = self.dir / "meta.json"
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            if not meta.is_file():
                atomic_write_json(meta, key)
        except OSError as err:
            raise _unwritable(self.dir, err) from None

    def path(self, span: Span) -> Path:
        """``<name with unsafe characters as _>-<digest of name, video, start, end>.npy`` in the key folder."""
        ident = json.dumps([span.name, span.video_id, span.start_sec, span.end_sec])
        digest = hashlib.sha256(ident.encode()).hexdigest()[:12]
        path = self.dir / f"{_SAFE_NAME.sub('_', span.name)[:100]}-{digest}.npy"
        if not inside(self.dir, path):  # cannot happen with _SAFE_NAME; kept as the containment contract
            raise BenchError(f"span name {span.name!r} leads outside the feature cache {self.dir}")
        return path

    def load(self, span: Span, n: int) -> np.ndarray | None:
        """Cached (n, D) features of ``span``, or None (absent or of another length)."""
        path = self.path(span)
        if not path.is_file():
            return None
        try:
            feats = np.load(path, allow_pickle=False)
        except (OSError, ValueError):
            return None  # a damaged file is recomputed
        return feats if feats.ndim == 2 and feats.shape[0] == n else None

    def save(self, span: Span, feats: np.ndarray) -> None:
        buffer = io.BytesIO()
        np.save(buffer, feats.astype(np.float32), allow_pickle=False)
        try:
            atomic_write(self.path(span), lambda f: f.write(buffer.getvalue()))
        except OSError as err:  # the previous files stay complete (atomic writes)
            raise _unwritable(self.path(span), err) from None


@dataclass
class Extraction:
    features: dict[str, np.ndarray]  # span name → (N, D) float32
    cache_dir: Path
    extracted: int  # spans computed now
    reused: int  # spans read from the cache

    def protocol(self, spec: WindowSpec) -> dict[str, Any]:
        return {
            **spec.as_dict(),
            "cache": str(self.cache_dir),
            "extracted": self.extracted,
            "reused": self.reused,
        }


def extract_features(
    ctx: EvalContext, spans: list[Span], source: VideoSource, spec: WindowSpec, desc: str
) -> Extraction:
    """(N_i, D) features of every span (unique names), from the cache or computed now."""
    cache = FeatureCache(ctx.work_dir, cache_key(ctx, spec))
    features: dict[str, np.ndarray] = {}
    todo: list[Span] = []
    for span in spans:
        cached = cache.load(span, spec.num_positions(span.duration))
        if cached is None:
            todo.append(span)
        else:
            features[span.name] = cached
    refs = []
    for i, span in enumerate(todo):
        for k, (lo, hi) in enumerate(spec.windows(span.start_sec, span.end_sec)):
            refs.append(ClipRef(span.video_id, lo, hi, {"span": i, "position": k}))
    if refs:
        pending = {i: spec.num_positions(s.duration) for i, s in enumerate(todo)}
        partial: dict[int, np.ndarray] = {}
        dataset = ClipDataset(refs, ctx.clip_loader("duration"), source)
        for batch in ctx.batches(dataset, desc):
            emb = ctx.encode_video(batch["video"]).numpy()  # (B, D)
            for row, i, k in zip(emb, batch["span"].tolist(), batch["position"].tolist()):
                if i not in partial:
                    partial[i] = np.zeros((pending[i], emb.shape[1]), dtype=np.float32)
                partial[i][k] = row
                pending[i] -= 1
                if pending[i] == 0:
                    cache.save(todo[i], partial[i])
                    features[todo[i].name] = partial.pop(i)
    return Extraction(features, cache.dir, len(todo), len(spans) - len(todo))


def resample_positions(features: np.ndarray, length: int) -> np.ndarray:
    """(N, D) → (length, D): mean over equal bins when N > length (VSLNet ``visual_feature_sampling``),
    linear interpolation when N < length, unchanged when equal."""
    n = features.shape[0]
    if n == length:
        return features
    x = torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32)).T[None]  # (1, D, N)
    if n > length:
        y = F.adaptive_avg_pool1d(x, length)
    else:
        y = F.interpolate(x, size=length, mode="linear", align_corners=False)
    return y[0].T.numpy()  # (length, D)
