"""EK100-CLS zero-shot action recognition, LaViLa's protocol (``eval_zeroshot.py --dataset ek100_cls``).

Protocol:

* Classes = every distinct ``verb_class:noun_class`` pair occurring in ``EPIC_100_train.csv`` ∪
  ``EPIC_100_validation.csv``, **sorted as strings** (so ``"10:3"`` comes before ``"2:1"``).
* A class's texts = the **unique narrations** observed for that pair (not templated class names), each
  optionally wrapped in templates (``template="none"``: ``'{}'``; ``"lavila"``: ``'#C C {}'``, ``'#C {}'``,
  LaViLa's ``--cls-use-template``). Class embedding = mean of the L2-normalised text embeddings of all
  (narration × template) texts, re-normalised.
* Each validation clip (frames ``[round(fps·start), ceil(fps·stop))``, segment midpoints) is scored by the
  cosine with every class embedding; action top-1 / top-5 (percent, float32 logits;
  ``benchmarks.metrics.topk_accuracy``) against its own pair's class. Action only, as the zero-shot script.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from benchmarks.context import Benchmark, EvalContext, Option
from benchmarks.metrics import topk_accuracy
from benchmarks.record import BenchResult
from henasy.core.records import Stratum, fixed_breakdown
from henasy.data.batching import ClipRef
from henasy.data.ek100 import ek100_video_relpath, load_epic_annotations
from henasy.data.video import SingleFileSource

VERSION = "ek100_cls/1"
TEMPLATES = {"none": ("{}",), "lavila": ("#C C {}", "#C {}")}
OPTIONS: dict[str, Option] = {
    "template": Option("none", "'none' ('{}') or 'lavila' ('#C C {}', '#C {}')", choices=tuple(TEMPLATES)),
}


@dataclass(frozen=True)
class ActionClasses:
    keys: list[str]  # "verb:noun", sorted as strings; index = class id
    texts: list[list[str]]  # unique narrations of each class, in first-seen order

    def index(self) -> dict[str, int]:
        return {k: i for i, k in enumerate(self.keys)}


def build_action_classes(rows: Iterable[tuple[int, int, str]]) -> ActionClasses:
    """LaViLa's action classes from ``(verb_class, noun_class, narration)`` rows of train ∪ validation."""
    texts: dict[str, dict[str, None]] = {}
    for verb, noun, narration in rows:
        texts.setdefault(f"{int(verb)}:{int(noun)}", {})[str(narration)] = None
    keys = sorted(texts)  # string order, as LaViLa's sorted(set(...)) of "verb:noun" strings
    return ActionClasses(keys, [list(texts[k]) for k in keys])


def class_embeddings(
    classes: ActionClasses, embed_texts: Callable[[Sequence[str]], np.ndarray], templates: Sequence[str]
) -> np.ndarray:
    """(C, D) class embeddings: mean of L2-normalised embeddings of every narration × template, re-normalised."""
    flat, owner = [], []
    for c, narrations in enumerate(classes.texts):
        for narration in narrations:
            for template in templates:
                flat.append(template.format(narration))
                owner.append(c)
    embeds = embed_texts(flat).astype(np.float32)  # (M, D)
    embeds /= np.linalg.norm(embeds, axis=1, keepdims=True).clip(min=1e-12)
    sums = np.zeros((len(classes.keys), embeds.shape[1]), dtype=np.float64)  # (C, D)
    np.add.at(sums, np.asarray(owner), embeds)
    means = sums / np.bincount(owner, minlength=len(classes.keys))[:, None]
    return (means / np.linalg.norm(means, axis=1, keepdims=True).clip(min=1e-12)).astype(np.float32)


def run(ctx: EvalContext) -> BenchResult:
    """Action top-1 / top-5 (percent) on the EPIC-KITCHENS-100 validation csv."""
    layout = ctx.layout
    train = load_epic_annotations(layout.epic_csv("train"))
    val = load_epic_annotations(layout.epic_csv("validation"))
    rows = [
        (v, n, t)
        for df in (train, val)
        for v, n, t in zip(df["verb_class"], df["noun_class"], df["narration"])
    ]
    classes = build_action_classes(rows)
    templates = TEMPLATES[ctx.options["template"]]
    weights = class_embeddings(classes, lambda t: ctx.embed_texts(t, "ek100_cls: class texts"), templates)
    taken = val.iloc[: len(val) if ctx.limit is None else ctx.limit]
    index = classes.index()
    clips = [
        ClipRef(ek100_video_relpath(r.participant_id, r.video_id), float(r.start_sec), float(r.stop_sec))
        for r in taken.itertuples()
    ]
    source = SingleFileSource(layout.ek100_videos)
    videos, read = ctx.embed_clips_kept(clips, source, "ek100_cls: clips", frame_rule="ceil")  # (N, D), (N,)
    kept, videos = (
        taken.iloc[np.flatnonzero(read)],
        videos[read],
    )  # --on-missing skip: unread clips leave the metrics
    target = np.array([index[f"{v}:{n}"] for v, n in zip(kept["verb_class"], kept["noun_class"])])
    logits = videos @ weights.T  # (N, C) float32 cosine
    ks = (1, 5) if len(classes.keys) >= 5 else (1, len(classes.keys))
    accuracy = topk_accuracy(logits, target, ks=ks)
    order = np.argsort(-logits, axis=1, kind="stable")[:, :5]  # (N, ≤5) equal scores → lower class first
    per_item = {
        "narration_id": kept["narration_id"].tolist(),
        "target": target.tolist(),
        "predicted": order[:, 0].tolist(),
        "correct_top1": (order[:, 0] == target).astype(int).tolist(),
        "correct_top5": (order == target[:, None]).any(axis=1).astype(int).tolist(),
    }
    protocol = {
        "version": VERSION,
        "units": "percent",
        "classes": "verb_class:noun_class pairs of EPIC_100_train.csv ∪ EPIC_100_validation.csv, sorted as "
        "strings",
        "num_classes": len(classes.keys),
        "class_texts": "unique narrations of the pair",
        "class_embedding": "mean of L2-normalised text embeddings (narrations × templates), re-normalised",
        "template": ctx.options["template"],
        "templates": list(templates),
        "similarity": "cosine, float32",
        "tie_rule": "equal scores rank by lower class index",
        "frames": ctx.frames_protocol("ceil"),
    }
    metrics = {"top1": accuracy["top1"], "top5": accuracy[f"top{ks[1]}"]}
    skipped = ctx.note_skipped(
        protocol,
        len(taken) - len(kept),
        "clips whose video is missing/unreadable are left out of the metrics",
    )
    return BenchResult(
        protocol, "EPIC_100_validation", metrics, len(kept), len(val), per_item, skipped=skipped
    )


# Per-item outcomes: 0/1 top-k hits per narration.
BREAKDOWN = fixed_breakdown(
    {
        "top1": (Stratum("narration_id", "correct_top1"),),
        "top5": (Stratum("narration_id", "correct_top5"),),
    }
)
BENCHMARK = Benchmark("ek100_cls", run, OPTIONS, breakdown=BREAKDOWN, skip_aware=True)
