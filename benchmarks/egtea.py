"""EGTEA Gaze+ zero-shot action recognition: LaViLa's split-1 protocol or HelpingHands' 3-split protocol.

Both score each test clip by the cosine between its video embedding and the text
embedding of every class of ``action_idx.txt`` (class text = the line's words, ``_`` → space, lower-cased;
no template), computed per *view*, then take the **max over views** (LaViLa ``eval_zeroshot.py`` /
HelpingHands ``test_egtea.py``; the softmax LaViLa applies after it does not change the ranking).
A view is ``clip_length`` frames with stride ``clip_stride`` (frame ids ``start + stride·i``) starting at
``np.linspace(0, len - clip_length·stride, num_clips, dtype=int)``; a video shorter than
``clip_length·stride`` frames is read whole, zero-padded (black frames before normalisation) to that length,
subsampled by the stride and repeated for every clip. Each view is resized (short side) and cut into
``num_crops`` crops (1: centre; 3: both ends and centre of the long side).

* ``protocol="lavila"`` (default): ``test_split1.txt``, **16 frames**, 10 clips × 3 crops, stride 2, max over
  the 30 views (facebookresearch/LaViLa @ 8002b5a, docs/MODEL_ZOO, zero-shot EGTEA command
  ``eval_zeroshot.py --dataset egtea --clip-length 16 --clip-stride 2 --num-crops 3 --num-clips 10``: the
  protocol behind LaViLa's EGTEA mean accuracy 28.9, the number HENASY Table 1 prints for LaViLa).
* ``protocol="helpinghands"``: ``test_split{1,2,3}.txt``, 16 frames (HelpingHands README command,
  ``--num_frames 16``), 10 clips × 1 crop, stride 2; each metric is the mean of the three splits' values
  (per-split values are reported too).
* ``protocol="single_view"``: ``test_split1.txt``, the model's own ``num_frames`` (4 for every paper preset),
  1 clip × 1 crop (centre), stride 2: what ``eval_zeroshot.py --dataset egtea --clip-length 4 --clip-stride 2``
  does without the multi-view flags (one view from frame 0). Cheap; not the protocol of any published number.

Options ``frames``, ``num_clips``, ``num_crops``, ``clip_stride`` override the protocol's values.

**Clip length ≠ the model's ``num_frames``.** LaViLa evaluates its 4-frame checkpoints at 16 frames by
building the model for 16 frames and inflating ``visual.temporal_embed`` bilinearly when it loads
(``eval_zeroshot.py`` → ``inflate_positional_embeds(..., load_temporal_fix='bilinear')``); HelpingHands'
``test_egtea.py`` does the same for its decoder's ``temporal_embed``. ``model_at_frames`` does this to the
evaluated model: a copy whose every ``temporal_embed`` parameter sized for the model's ``num_frames`` is
resized by ``baselines.lavila.fit_temporal_embed`` (the same bilinear resize LaViLa checkpoints get here) and
whose ``num_frames`` attributes are updated; the record lists the resized parameters. A model with no such
parameter cannot change its clip length here: build it for that length (``--set model.num_frames=N``).

Metrics: top-1 and mean class accuracy (percent, sklearn confusion-matrix semantics:
``benchmarks.metrics.mean_class_accuracy``). The record's protocol holds ``clip_length``, ``num_clips``,
``num_crops``, ``clip_stride``, ``view_pooling``, ``views`` (a one-line summary) and ``model_num_frames``.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from baselines.lavila import fit_temporal_embed
from benchmarks.context import Benchmark, EvalContext, Option, positive
from benchmarks.metrics import mean_class_accuracy, topk_accuracy
from benchmarks.record import BenchResult
from henasy.core.errors import BenchError
from henasy.core.records import Stratum
from henasy.data.egtea import EgteaClip, egtea_clip_relpath, load_action_index, load_split
from henasy.data.video import ClipLoader, SingleFileSource

VERSION = "egtea/2"  # 2: LaViLa's 16-frame clip length by default, frames option, single_view protocol
# frames None: the model's own num_frames
PROTOCOLS: dict[str, dict[str, Any]] = {
    "lavila": {"splits": ("test_split1",), "frames": 16, "num_clips": 10, "num_crops": 3, "clip_stride": 2},
    "helpinghands": {
        "splits": ("test_split1", "test_split2", "test_split3"),
        "frames": 16,
        "num_clips": 10,
        "num_crops": 1,
        "clip_stride": 2,
    },
    "single_view": {
        "splits": ("test_split1",),
        "frames": None,
        "num_clips": 1,
        "num_crops": 1,
        "clip_stride": 2,
    },
}
OPTIONS: dict[str, Option] = {
    "protocol": Option(
        "lavila",
        "'lavila' (split 1, 16 frames x 10 clips x 3 crops), 'helpinghands' (splits 1-3, 16 frames x 10 clips) "
        "or 'single_view' (split 1, the model's frames, 1 clip x 1 crop)",
        choices=tuple(PROTOCOLS),
    ),
    "frames": Option(
        None, "a positive int: frames per view (default: the protocol's)", kind=int, check=positive
    ),
    "num_clips": Option(None, "a positive int (default: the protocol's)", kind=int, check=positive),
    "num_crops": Option(None, "1 or 3 (default: the protocol's)", choices=(None, 1, 3)),
    "clip_stride": Option(None, "a positive int (default: the protocol's)", kind=int, check=positive),
    "view_pooling": Option("max", "'max' (official) or 'mean' over the views", choices=("max", "mean")),
}


def resolve_views(options: Mapping[str, Any], model_frames: int) -> dict[str, Any]:
    """The protocol's splits and view settings with the ``frames`` / ``num_*`` / ``clip_stride`` options applied."""
    base = PROTOCOLS[options["protocol"]]
    frames = options.get("frames") or base["frames"] or int(model_frames)
    return {
        "splits": base["splits"],
        "clip_length": int(frames),
        "num_clips": int(options.get("num_clips") or base["num_clips"]),
        "num_crops": int(options.get("num_crops") or base["num_crops"]),
        "clip_stride": int(options.get("clip_stride") or base["clip_stride"]),
    }


def model_at_frames(model: nn.Module, frames: int) -> tuple[nn.Module, list[str]]:
    """``model`` for ``frames``-frame clips, as LaViLa evaluates a 4-frame checkpoint at 16 frames.

    Same model when ``frames`` is its ``num_frames``. Otherwise a deep copy (``model`` is left as it is) where
    every ``temporal_embed`` parameter (1, T, D) with T = ``model.num_frames`` is resized to ``frames`` by
    ``baselines.lavila.fit_temporal_embed`` (bilinear up, truncation down: LaViLa ``inflate_positional_embeds``
    with ``load_temporal_fix='bilinear'``; HelpingHands ``test_egtea.py`` also resizes its decoder's) and every
    integer ``num_frames`` attribute equal to T is set to ``frames``. Returns the copy and the names of the
    resized parameters; ``BenchError`` when the model has none (it cannot change its clip length this way).
    """
    old = int(model.num_frames)
    if frames == old:
        return model, []
    adapted = copy.deepcopy(model)
    resized = []
    for name, module in adapted.named_modules():
        embed = module._parameters.get("temporal_embed")
        if embed is not None and embed.dim() == 3 and embed.shape[1] == old:
            fitted = fit_temporal_embed(embed.detach(), frames)  # (1, frames, D)
            module.temporal_embed = nn.Parameter(fitted, requires_grad=embed.requires_grad)
            resized.append(f"{name}.temporal_embed" if name else "temporal_embed")
        value = getattr(module, "num_frames", None)
        if isinstance(value, int) and not isinstance(value, bool) and value == old:
            module.num_frames = frames
    if not resized:
        raise BenchError(
            f"egtea: the model ({type(model).__name__}, {old} frames) has no temporal_embed parameter sized for "
            f"{old} frames, so it cannot be evaluated at {frames} frames here; build it for {frames}-frame clips "
            f"(bench eval --set model.num_frames={frames}) or set the egtea option frames={old}"
        )
    return adapted, resized


def view_frame_ids(num_video_frames: int, clip_length: int, stride: int, num_clips: int) -> list[list[int]]:
    """Frame ids of each temporal view (LaViLa's egtea branch); ids ≥ the video length stand for zero frames."""
    span = clip_length * stride
    if num_video_frames < span:
        ids = list(range(0, span, stride))  # frames past the end are the zero padding
        return [ids for _ in range(num_clips)]
    starts = np.linspace(0, num_video_frames - span, num_clips, dtype=int)
    return [list(range(int(s), int(s) + span, stride)) for s in starts]


def pool_views(view_logits: np.ndarray, how: str = "max") -> np.ndarray:
    """(N, V, K) per-view class scores → (N, K): max (official) or mean over the views."""
    return view_logits.max(axis=1) if how == "max" else view_logits.mean(axis=1)


class EgteaViews(Dataset):
    """EGTEA test clips → ``{"video": (V, C, T, S, S), "index"}`` with V = num_clips × num_crops views."""

    def __init__(
        self,
        clips: list[EgteaClip],
        source: SingleFileSource,
        loader: ClipLoader,
        clip_length: int,
        stride: int,
        num_clips: int,
        num_crops: int,
    ) -> None:
        self.clips, self.source, self.loader = clips, source, loader
        self.clip_length, self.stride, self.num_clips, self.num_crops = (
            clip_length,
            stride,
            num_clips,
            num_crops,
        )

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, index: int) -> dict[str, Any]:
        video_id = egtea_clip_relpath(self.clips[index].clip_id)
        total = self.loader.video_info(self.source, video_id).num_frames
        views = []
        for ids in view_frame_ids(total, self.clip_length, self.stride, self.num_clips):
            real = [i for i in ids if i < total]
            frames = self.loader.read_frames(self.source, video_id, real)  # (t, H, W, 3) uint8
            if len(real) < len(ids):  # zero padding of a short video (black before normalisation)
                pad = np.zeros((len(ids) - len(real), *frames.shape[1:]), dtype=np.uint8)
                frames = np.concatenate([frames, pad])
            views += self.loader.transform.crops(frames, self.num_crops)  # num_crops × (C, T, S, S)
        return {"video": torch.stack(views), "index": int(index)}  # (V, C, T, S, S)


def _view_logits(
    ctx: EvalContext, dataset: EgteaViews, class_embeds: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per-view cosine class scores of every clip → (N, V, K) float32, and the (N,) bool mask of clips read
    (false only under ``--on-missing skip``: a missing/unreadable video, zero scores)."""
    views = dataset.num_clips * dataset.num_crops
    out = np.zeros((len(dataset), views, len(class_embeds)), dtype=np.float32)
    read = np.zeros(len(dataset), dtype=bool)
    weights = torch.from_numpy(class_embeds)  # (K, D)
    for batch in ctx.batches(dataset, "egtea: clips", batch_size=max(1, ctx.batch_size // views)):
        video = batch["video"]  # (B, V, C, T, S, S)
        flat = video.flatten(0, 1)  # (B·V, C, T, S, S)
        emb = torch.cat(
            [ctx.encode_video(flat[i : i + ctx.batch_size]) for i in range(0, len(flat), ctx.batch_size)]
        )
        logits = emb.view(video.shape[0], views, -1) @ weights.T  # (B, V, K)
        out[batch["index"].numpy()] = logits.numpy()
        read[batch["index"].numpy()] = True
    if not read.any():
        raise BenchError(f"egtea: every video was missing or unreadable; {ctx.skips.summary()}")
    return out, read


def run(ctx: EvalContext) -> BenchResult:
    """Top-1 and mean class accuracy (percent) under the chosen protocol."""
    opts = ctx.options
    views = resolve_views(opts, ctx.model.num_frames)
    num_clips, num_crops, stride = views["num_clips"], views["num_crops"], views["clip_stride"]
    clip_length = views["clip_length"]
    model_frames = int(ctx.model.num_frames)
    model, resized = model_at_frames(ctx.model, clip_length)
    if resized:  # the copy encodes the views; ctx.model stays as built for the other benchmarks
        ctx = dataclasses.replace(ctx, model=model)
    layout = ctx.layout
    classes = load_action_index(layout.egtea_action_idx)
    splits = {name: load_split(layout.egtea_split(name), classes) for name in views["splits"]}
    kept = {name: ctx.take(clips) for name, clips in splits.items()}
    unique: dict[str, EgteaClip] = {}
    for clips in kept.values():
        for clip in clips:
            unique.setdefault(clip.clip_id, clip)
    if not unique:
        raise BenchError(f"egtea: the test split(s) {list(splits)} have no clips")
    class_embeds = ctx.embed_texts([c.text for c in classes], "egtea: classes")  # (K, D)
    loader = ClipLoader.for_model(ctx.model)
    dataset = EgteaViews(
        list(unique.values()),
        SingleFileSource(layout.egtea_videos),
        loader,
        clip_length,
        stride,
        num_clips,
        num_crops,
    )
    view_logits, read = _view_logits(ctx, dataset, class_embeds)  # (U, V, K), (U,)
    pooled = pool_views(view_logits, opts["view_pooling"])  # (U, K)
    row = {clip_id: i for i, clip_id in enumerate(unique)}
    # --on-missing skip: clips whose video could not be read leave every split's metrics
    taken = kept
    kept = {name: [c for c in clips if read[row[c.clip_id]]] for name, clips in taken.items()}
    empty = [name for name, clips in kept.items() if not clips]
    if empty:
        raise BenchError(f"egtea: no clip of {empty} could be read; {ctx.skips.summary()}")
    metrics: dict[str, float] = {}
    per_item: dict[str, Any] = {}
    per_split = []
    for name, clips in kept.items():
        logits = pooled[[row[c.clip_id] for c in clips]]  # (N, K)
        target = np.array([c.class_index for c in clips])
        split_metrics = {
            "top1": topk_accuracy(logits, target, ks=(1,))["top1"],
            "mean_class_acc": mean_class_accuracy(logits, target),
        }
        per_split.append(split_metrics)
        if len(kept) > 1:
            metrics.update({f"{k}_{name}": v for k, v in split_metrics.items()})
        predicted = logits.argmax(axis=1)
        per_item[name] = {
            "clip_id": [c.clip_id for c in clips],
            "target": target.tolist(),
            "predicted": predicted.tolist(),
            "correct": (predicted == target).astype(int).tolist(),
        }
    for key in ("top1", "mean_class_acc"):
        metrics[key] = float(np.mean([m[key] for m in per_split]))
    protocol = {
        "version": VERSION,
        "units": "percent",
        "protocol": opts["protocol"],
        "splits": list(views["splits"]),
        "split_aggregation": "mean of per-split metrics" if len(kept) > 1 else "single split",
        "num_clips": num_clips,
        "num_crops": num_crops,
        "clip_length": clip_length,
        "clip_stride": stride,
        "view_pooling": opts["view_pooling"],
        "views": f"{clip_length} frames x {num_clips} clips x {num_crops} crops, stride {stride}, "
        f"{opts['view_pooling']} over {num_clips * num_crops} views",
        "model_num_frames": model_frames,
        "temporal_embed": (
            f"resized {model_frames} -> {clip_length} frames (baselines.lavila.fit_temporal_embed; LaViLa "
            f"inflate_positional_embeds bilinear): {', '.join(resized)}"
            if resized
            else "as built"
        ),
        "view_starts": "np.linspace(0, len - clip_length*stride, num_clips, dtype=int); shorter videos "
        "zero-padded then strided, repeated per clip",
        "class_text": "action_idx.txt words, '_' -> ' ', lower-cased, no template",
        "similarity": "cosine per view, float32",
        "mean_class_acc": "sklearn confusion_matrix without labels= (LaViLa get_mean_accuracy)",
        "frames": ctx.frames_protocol(None, sampling="strided views (see view_starts)"),
    }
    n_items = sum(len(c) for c in kept.values())
    total = sum(len(c) for c in splits.values())
    split = "+".join(views["splits"])
    skipped_items = sum(len(c) for c in taken.values()) - n_items
    skipped = ctx.note_skipped(
        protocol,
        skipped_items,
        "clips whose video is missing/unreadable are left out of every split's metrics",
    )
    return BenchResult(protocol, split, metrics, n_items, total, per_item, skipped=skipped)


def breakdown(per_item: Mapping[str, Any], metric: str) -> tuple[Stratum, ...]:
    """Per-item outcomes: one per_item mapping per split; ``top1`` is the mean over splits, ``top1_<split>`` one."""
    splits = [k for k, v in per_item.items() if isinstance(v, dict)]
    if metric == "top1":
        return tuple(Stratum("clip_id", "correct", within=split) for split in splits)
    if metric.startswith("top1_") and metric[len("top1_") :] in splits:
        return (Stratum("clip_id", "correct", within=metric[len("top1_") :]),)
    return ()


BENCHMARK = Benchmark("egtea", run, OPTIONS, breakdown=breakdown, skip_aware=True)
