"""Visual grounding mIoU (HENASY Appendix D, Table 6): predicted masks of a noun / verb-phrase query vs GT.

For each query of ``grounding/grounding_val.json`` the clip is loaded as the model expects (segment
midpoints of ``[start_sec, end_sec]``, LaViLa sampling, no jitter) and ``model.ground(video, tokens)`` gives
soft masks (T, S, S) in [0, 1] on the model's input crop. Ground truth: at each sampled frame (matched to
the ``frame_times`` of ``masks/<clip_id>.npz`` within half a frame) the union of the query's
``entity_ids`` in the instance-id map, carried into the crop with the same short-side resize (nearest) and
centre crop as the pixels.

* **Binarisation**: per frame, the soft mask is divided by its maximum (per-frame max normalisation; an
  all-zero frame stays empty) and thresholded at ``>= threshold`` (0.5). HelpingHands' rasterised boxes
  are already {0, 1} and pass through unchanged; HENASY's min–max-scaled saliency keeps its ranking, and
  so does LaViLa's min–max-scaled patch–query similarity (a baseline this project adds, not the paper's).
* **IoU**: per frame |P ∩ G| / |P ∪ G|; frames where both masks are empty are skipped (undefined), a
  frame with an empty GT and a non-empty prediction scores 0. A query's IoU is the mean over its scored
  frames; **mIoU = mean over queries** (a query with no scored frame is left out and counted), also per
  query type (``mIoU_noun``, ``mIoU_verb_phrase``). Percent.

A model without ``ground`` cannot be evaluated: ``check_model`` raises before any video is read.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from benchmarks.context import Benchmark, EvalContext, Option
from benchmarks.record import BenchResult
from henasy.core.errors import BenchError, DataFormatError
from henasy.core.records import Stratum, fixed_breakdown
from henasy.data.grounding import GroundingItem, load_grounding, load_mask
from henasy.data.transforms import crop_geometry
from henasy.data.video import AutoSource, ClipLoader

VERSION = "grounding/1"
OPTIONS: dict[str, Option] = {
    "threshold": Option(0.5, "binarisation threshold in (0, 1] after per-frame max normalisation",
                        kind=(int, float), check=lambda v: 0 < v <= 1),
}  # fmt: skip


def check_model(model: Any, model_id: str) -> None:
    """Raise a ``BenchError`` when the model has no ``ground(video, tokens)`` method."""
    if not callable(getattr(model, "ground", None)):
        raise BenchError(
            f"grounding: model {model_id!r} ({type(model).__name__}) has no ground(video, tokens) method, so it "
            "predicts no masks to score; use a model with grounding masks (henasy, helpinghands, lavila and their "
            "_tiny presets) or leave 'grounding' out of the benchmarks"
        )


def gt_masks(
    labels: np.ndarray,
    frame_times: np.ndarray,
    entity_ids: tuple[int, ...],
    times: list[float],
    fps: float,
    size: int,
) -> np.ndarray:
    """GT of the sampled frames in crop space: (T_all, H, W) ids → (T, size, size) bool.

    ``times`` are the sampled frames' times (seconds of the parent video); each must match one of
    ``frame_times`` within half a frame (else ``ValueError``).
    """
    rows = []
    for t in times:
        j = int(np.argmin(np.abs(frame_times - t)))
        if abs(frame_times[j] - t) > 0.5 / fps:
            raise ValueError(
                f"no mask frame within half a frame of {t:.3f} s (nearest {frame_times[j]:.3f} s)"
            )
        rows.append(j)
    binary = np.isin(labels[rows], np.asarray(entity_ids, dtype=labels.dtype))  # (T, H, W)
    geo = crop_geometry(labels.shape[1], labels.shape[2], size)
    x = torch.from_numpy(binary.astype(np.float32))[:, None]  # (T, 1, H, W)
    x = F.interpolate(x, size=(geo.resized_height, geo.resized_width), mode="nearest")[:, 0]
    return (x[:, geo.top : geo.top + size, geo.left : geo.left + size] > 0.5).numpy()


def binarize(masks: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """Soft masks (..., H, W) → bool: divided by each frame's max, then ``>= threshold``; all-zero frames empty."""
    peak = masks.reshape(*masks.shape[:-2], -1).max(axis=-1)[..., None, None]  # (..., 1, 1)
    scaled = np.divide(masks, peak, out=np.zeros_like(masks, dtype=np.float64), where=peak > 0)
    return scaled >= threshold


def query_iou(pred: np.ndarray, gt: np.ndarray) -> float:
    """Mean per-frame IoU of bool (T, H, W) masks over frames where either is non-empty (NaN if none)."""
    inter = (pred & gt).reshape(len(pred), -1).sum(axis=1)  # (T,)
    union = (pred | gt).reshape(len(pred), -1).sum(axis=1)  # (T,)
    scored = union > 0
    return float((inter[scored] / union[scored]).mean()) if scored.any() else float("nan")


class GroundingClips(Dataset):
    """Grounding queries → ``{"video": (C, T, S, S), "gt": (T, S, S) bool, "query", "index"}``."""

    def __init__(self, items: list[GroundingItem], loader: ClipLoader, source: AutoSource) -> None:
        self.items, self.loader, self.source = items, loader, source

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, Any]:
        it = self.items[index]
        fps, ids = self.loader.frame_ids(self.source, it.video_uid, it.start_sec, it.end_sec)
        frames = self.loader.read_frames(self.source, it.video_uid, ids, fps=fps)  # (T, H, W, 3)
        mask = load_mask(it.mask_path)
        if mask.labels.shape[1:] != frames.shape[1:3]:
            raise DataFormatError(
                it.mask_path,
                f"masks are {mask.labels.shape[1]}x{mask.labels.shape[2]} but the video frames are "
                f"{frames.shape[1]}x{frames.shape[2]}",
                expected="instance maps at the stored video resolution",
            )
        try:
            gt = gt_masks(
                mask.labels, mask.frame_times, it.entity_ids, [i / fps for i in ids], fps, self.loader.size
            )
        except ValueError as err:
            raise DataFormatError(
                it.mask_path, f"clip {it.clip_id}: {err}", expected="a mask for every frame of the clip"
            ) from None
        return {"video": self.loader.transform(frames), "gt": gt, "query": it.query, "index": int(index)}


def run(ctx: EvalContext) -> BenchResult:
    """mIoU (percent) of the model's grounding masks over the grounding queries."""
    all_items = load_grounding(ctx.layout.grounding_json)
    items = ctx.take(all_items)
    dataset = GroundingClips(items, ctx.clip_loader("duration"), AutoSource(ctx.layout.ego4d_videos))
    threshold = float(ctx.options["threshold"])
    ious = np.full(len(items), np.nan)
    for batch in ctx.batches(dataset, "grounding: queries"):
        with torch.inference_mode():
            tokens = ctx.model.tokenize(batch["query"]).to(ctx.device)  # (B, L)
            masks = ctx.model.ground(batch["video"].to(ctx.device), tokens)  # (B, T, S, S)
            soft = masks.float().cpu().numpy()
        gt = batch["gt"].numpy()  # (B, T, S, S)
        if soft.shape != gt.shape:
            raise BenchError(
                f"grounding: model.ground returned masks {soft.shape}, expected {gt.shape} (B, T, H, W)"
            )
        pred = binarize(soft, threshold)
        for i, pm, gm in zip(batch["index"].tolist(), pred, gt):
            ious[i] = query_iou(pm, gm)
    types = np.array([it.query_type for it in items])
    scored = ~np.isnan(ious)
    if not scored.any():
        raise BenchError(
            "grounding: no query has a frame where the ground truth or the prediction is non-empty"
        )
    metrics = {"mIoU": 100.0 * float(ious[scored].mean())}
    for kind in ("noun", "verb_phrase"):
        chosen = scored & (types == kind)
        metrics[f"mIoU_{kind}"] = 100.0 * float(ious[chosen].mean()) if chosen.any() else float("nan")
    protocol = {
        "version": VERSION,
        "units": "percent",
        "binarisation": f"per-frame max normalisation, then >= {threshold:g}",
        "gt": "union of the query's entity_ids at the sampled frames, nearest resize + centre crop to the model input",
        "iou": "per frame |P∩G|/|P∪G| (frames with both empty skipped); mean over frames per query, then over queries",
        "queries_without_scored_frames": int((~scored).sum()),
        "frames": ctx.frames_protocol("duration"),
    }
    per_item = {
        "query_id": [f"{it.clip_id}/{it.query_type}/{it.query}" for it in items],
        "query_type": types.tolist(),
        "iou": ious,
    }
    return BenchResult(protocol, "grounding_val", metrics, len(items), len(all_items), per_item)


# Per-item outcomes: per-query IoU, over all queries or one query type.
BREAKDOWN = fixed_breakdown(
    {
        "mIoU": (Stratum("query_id", "iou"),),
        "mIoU_noun": (Stratum("query_id", "iou", where=("query_type", "noun")),),
        "mIoU_verb_phrase": (Stratum("query_id", "iou", where=("query_type", "verb_phrase")),),
    }
)
BENCHMARK = Benchmark("grounding", run, OPTIONS, check_model=check_model, breakdown=BREAKDOWN)
