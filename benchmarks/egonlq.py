"""EgoNLQ with pre-extracted features: a VSLNet-style head trained on the model's features (paper §5.2, Table 2).

Protocol ("visual & textual representation", HENASY §5.2 following LaViLa / HelpingHands):

1. video features: sliding-window ``encode_video`` along every NLQ clip of ``nlq_train.json`` and
   ``nlq_val.json`` (``benchmarks.features``: cached, one window per ``stride_sec`` bin);
2. query features: the **pooled** ``encode_text`` embedding of the query (one token; the interface has no
   token-level text features, and pooled keeps the protocol identical for every model);
3. ``benchmarks.heads.vslnet.VSLNetHead`` is trained on the train queries (clips longer than
   ``max_pos_len`` positions are mean-pooled down to it, as VSLNet's feature sampling), then predicts the
   top-5 windows of each val query from the upper-triangular start × end product;
4. the predictions are written in the official challenge layout (``{"version", "challenge", "results":
   [{"clip_uid", "annotation_uid", "query_idx", "predicted_times"}]}``), read back, and scored against
   ``nlq_val.json`` by ``benchmarks.metrics.nlq_recall`` (IoU strictly above θ, over prediction records).

Metrics (percent): ``r{k}_iou{θ}`` for k ∈ {1, 3, 5}, θ ∈ {0.3, 0.5, 0.01}, and ``mIoU`` (top-1).
``limit`` keeps the first N val queries; the head always trains on every train query.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import torch

from benchmarks._metrics_ego4d import _interval_iou
from benchmarks.context import Benchmark, EvalContext, Option, positive
from benchmarks.features import Span, WindowSpec, extract_features, resample_positions
from benchmarks.heads.training import train_head
from benchmarks.heads.vslnet import VSLNetHead, seconds_to_span, span_loss, span_to_seconds, top_spans
from benchmarks.metrics import nlq_recall
from benchmarks.record import BenchResult
from henasy.core.atomic import atomic_write_json
from henasy.core.errors import BenchError
from henasy.core.records import Stratum, fixed_breakdown
from henasy.data.nlq import NLQQuery, load_nlq
from henasy.data.video import AutoSource

VERSION = "egonlq/1"
THRESHOLDS = (0.3, 0.5, 0.01)
TOP_K = (1, 3, 5)
WINDOW_SEC = 16 / 30  # EgoVLP features: 16-frame windows of 30-fps video, ~1.87 features/s
OPTIONS: dict[str, Option] = {
    "window_sec": Option(WINDOW_SEC, "window length in seconds (> 0)", kind=(int, float), check=positive),
    "stride_sec": Option(WINDOW_SEC, "seconds between features (> 0)", kind=(int, float), check=positive),
    "epochs": Option(30, "training epochs of the head (>= 1)", kind=int, check=positive),
    "lr": Option(1e-3, "AdamW learning rate (> 0)", kind=(int, float), check=positive),
    "batch_size": Option(16, "queries per training step (>= 1)", kind=int, check=positive),
    "hidden": Option(
        128, "head width (VSLNet dim; a multiple of 4)", kind=int, check=lambda v: v > 0 and v % 4 == 0
    ),
    "max_pos_len": Option(
        128, "max feature positions per clip (VSLNet max_pos_len)", kind=int, check=positive
    ),
    "seed": Option(0, "seed of the head's initialisation and batch order", kind=int),
}


def _metric_name(key: str) -> str:
    """``"R@1_IoU>0.3"`` → ``"r1_iou0.3"`` (the names the sweep tables use)."""
    if key == "mIoU":
        return key
    rank, iou = key.split("_IoU>")
    return f"r{rank[2:]}_iou{iou}"


def _batch(items: list[dict[str, Any]], device: torch.device) -> tuple[torch.Tensor, ...]:
    """Pad clip features to the longest: video (B, N, D), mask (B, N), query (B, 1, D), query mask (B, 1)."""
    n = max(len(it["video"]) for it in items)
    dim = items[0]["video"].shape[1]
    video = torch.zeros(len(items), n, dim)
    mask = torch.zeros(len(items), n, dtype=torch.bool)
    for i, it in enumerate(items):
        video[i, : len(it["video"])] = torch.from_numpy(it["video"])
        mask[i, : len(it["video"])] = True
    query = torch.from_numpy(np.stack([it["query"] for it in items]))[:, None]  # (B, 1, D)
    q_mask = torch.ones(len(items), 1, dtype=torch.bool)
    return video.to(device), mask.to(device), query.to(device), q_mask.to(device)


def _items(
    queries: list[NLQQuery], feats: dict[str, np.ndarray], texts: np.ndarray, max_len: int
) -> list[dict]:
    items = []
    for q, text in zip(queries, texts):
        video = resample_positions(feats[q.clip_uid], min(max_len, len(feats[q.clip_uid])))
        duration = q.video_end_sec - q.video_start_sec
        span = seconds_to_span(*q.window, len(video), duration) if q.window is not None else (0, 0)
        items.append({"video": video, "query": text, "span": span, "duration": duration})
    return items


def run(ctx: EvalContext) -> BenchResult:
    """Train the head on nlq_train, predict nlq_val, score with the official NLQ metric."""
    opts = ctx.options
    layout = ctx.layout
    train_set = load_nlq(layout.nlq_json("train"))
    val_set = load_nlq(layout.nlq_json("val"))
    train_queries = [q for q in train_set.queries if q.window is not None]
    all_val = [q for q in val_set.queries if q.window is not None]
    val_queries = ctx.take(all_val)
    if not train_queries or not val_queries:
        raise BenchError(
            f"egonlq: need annotated queries in both {layout.nlq_json('train')} ({len(train_queries)}) and "
            f"{layout.nlq_json('val')} ({len(val_queries)})"
        )
    spans = {
        q.clip_uid: Span(q.clip_uid, q.video_uid, q.video_start_sec, q.video_end_sec)
        for q in train_queries + val_queries
    }
    spec = WindowSpec(float(opts["window_sec"]), float(opts["stride_sec"]))
    extraction = extract_features(
        ctx, list(spans.values()), AutoSource(layout.ego4d_videos), spec, "egonlq: windows"
    )
    texts = ctx.embed_texts([q.query for q in train_queries + val_queries], "egonlq: queries")
    train_items = _items(train_queries, extraction.features, texts[: len(train_queries)], opts["max_pos_len"])
    val_items = _items(val_queries, extraction.features, texts[len(train_queries) :], opts["max_pos_len"])

    def loss_fn(head: VSLNetHead, batch: list[dict]) -> torch.Tensor:
        video, mask, query, q_mask = _batch(batch, ctx.device)
        spans_t = torch.tensor([it["span"] for it in batch], device=ctx.device)  # (B, 2)
        return span_loss(head(video, mask, query, q_mask), spans_t[:, 0], spans_t[:, 1], mask)

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(opts["seed"])
        dim = texts.shape[1]
        head = VSLNetHead(dim, dim, hidden=opts["hidden"], max_len=opts["max_pos_len"]).to(ctx.device)
        with ctx.bar(opts["epochs"], "egonlq: head epochs") as bar:
            history = train_head(
                head, train_items, loss_fn, epochs=opts["epochs"], lr=opts["lr"],
                batch_size=opts["batch_size"], seed=opts["seed"], progress=bar,
            )  # fmt: skip
    results = []
    with torch.inference_mode():
        for start in range(0, len(val_items), 64):
            chunk = val_items[start : start + 64]
            out = head(*_batch(chunk, ctx.device))
            spans_k = top_spans(out["start"], out["end"], k=max(TOP_K)).cpu()  # (b, 5, 2)
            for q, it, sp in zip(val_queries[start : start + 64], chunk, spans_k):
                results.append(
                    {
                        "clip_uid": q.clip_uid,
                        "annotation_uid": q.annotation_uid,
                        "query_idx": q.query_idx,
                        "predicted_times": span_to_seconds(sp, len(it["video"]), it["duration"]),
                    }
                )
    folder = ctx.work_dir / "predictions" / extraction.cache_dir.name
    path = atomic_write_json(
        folder / f"nlq_val_predictions_seed{opts['seed']}.json",
        {"version": "1.0", "challenge": "ego4d_nlq_challenge", "results": results},
    )
    predictions = json.loads(path.read_text(encoding="utf-8"))
    ground_truth = json.loads(layout.nlq_json("val").read_text(encoding="utf-8"))
    scores = nlq_recall(predictions, ground_truth, thresholds=THRESHOLDS, top_k=TOP_K)
    metrics = {_metric_name(k): 100.0 * v for k, v in scores.items()}
    per_item = _per_item(val_queries, results)
    protocol = {
        "version": VERSION,
        "units": "percent (100 x the official fractions)",
        "features": extraction.protocol(spec),
        "frames": ctx.frames_protocol("duration"),
        "text_features": "pooled encode_text (one query token)",
        "head": "VSLNet-style (benchmarks/heads/vslnet.py): conv+attention encoder, context-query attention, "
        "query-guided highlighting (extend 0.1, lambda 5), conditioned start/end predictor",
        "train_split": "nlq_train",
        "train_queries": len(train_queries),
        "epochs": opts["epochs"],
        "lr": opts["lr"],
        "batch_size": opts["batch_size"],
        "hidden": opts["hidden"],
        "max_pos_len": opts["max_pos_len"],
        "seed": opts["seed"],
        "final_train_loss": history[-1],
        "decoding": "top-5 cells of the upper-triangular start x end softmax product, no NMS",
        "metric": "Recall@K at IoU > theta over prediction records; mIoU of the top-1 window",
    }
    return BenchResult(
        protocol, "nlq_val", metrics, len(val_queries), len(all_val), per_item, {"predictions": str(path)}
    )


def _per_item(queries: list[NLQQuery], results: list[dict]) -> dict[str, Any]:
    """Top-1 IoU and R@{1,5} hits at IoU > {0.3, 0.5} of every evaluated query."""
    out: dict[str, Any] = {"query_id": [], "top1_iou": []}
    hits: dict[str, list[int]] = {f"r{k}_iou{t:g}": [] for k in (1, 5) for t in (0.3, 0.5)}
    for q, r in zip(queries, results):
        iou = _interval_iou(np.array(r["predicted_times"]), np.array([q.window]))[:, 0]  # (k,)
        out["query_id"].append(f"{q.clip_uid}/{q.annotation_uid}/{q.query_idx}")
        out["top1_iou"].append(float(iou[0]))
        for k in (1, 5):
            for t in (0.3, 0.5):
                hits[f"r{k}_iou{t:g}"].append(int(iou[:k].max() > t))
    return {**out, **hits}


# Per-item outcomes: per-query recall hits and the top-1 IoU (mIoU).
BREAKDOWN = fixed_breakdown(
    {
        **{f"r{k}_iou{t}": (Stratum("query_id", f"r{k}_iou{t}"),) for k in (1, 5) for t in ("0.3", "0.5")},
        "mIoU": (Stratum("query_id", "top1_iou"),),
    }
)
BENCHMARK = Benchmark("egonlq", run, OPTIONS, breakdown=BREAKDOWN)
