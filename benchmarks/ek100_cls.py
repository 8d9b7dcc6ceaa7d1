"""EK100-CLS zero-shot action recognition, LaViLa's protocol (``eval_zeroshot.py --dataset ek100_cls``).

Protocol:

* Classes = every distinct ``verb_class:noun_class`` pair occurring in ``EPIC_100_train.csv`` ∪
  ``EPIC_100_validation.csv``, **sorted as strings** (so ``"10:3"`` comes before ``"2:1"``).
* A class's texts = the **unique narrations** observed for that pair (not templated class names), each
  optionally wrapped in templates (``template="none"``: ``'{}'``; ``"lavila"``: ``'#C C {}'``, ``'#C {}'``,
  LaViLa's ``--cls-use-template``). Class embedding = mean of the L2-normalised text embeddings of all
  (narration × template) texts, re-normalised.
* Each validation clip (frames ``[round(fps·start), ceil(fps·stop))``, segment midpoints, the model's
  ``num_frames``: LaViLa's ek100_cls command takes the default ``--clip-length 4``) is scored by the cosine
  with every class embedding; action top-1 / top-5 (percent, float32 logits;
  ``benchmarks.metrics.topk_accuracy``) against its own pair's class: metrics ``top1`` / ``top5``, as the
  zero-shot script prints them (``eval_zeroshot.py`` reports action accuracy only).
* Verb and noun accuracy (metrics ``verb_top1``, ``verb_top5``, ``noun_top1``, ``noun_top5``), which the
  zero-shot script does not report: the action cosines are turned into probabilities
  ``softmax(cosine / marginal_temperature)`` over the action classes and summed per verb and per noun
  (LaViLa ``lavila/utils/evaluation_ek100cls.marginalize``, used by ``main_finetune_classification.py`` on
  its action head; ``benchmarks.metrics.ek100_cls_marginals``), then ranked against the clip's own
  ``verb_class`` / ``noun_class``. Verb ids run 0..max verb class of the action classes (97 on the real
  csvs), noun ids 0..max noun class (300). ``marginal_temperature`` defaults to 0.07, the temperature LaViLa
  trains its dual encoders with and keeps frozen (``--temperature-init 0.07 --freeze-temperature``), so the
  probabilities are the model's own retrieval softmax; it changes verb/noun numbers only, never ``top1``/``top5``.

Which accuracy HENASY's tables print: action (``top1`` / ``top5``); see the notes in
``reports/tables/table1.yaml``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from benchmarks.context import Benchmark, EvalContext, Option
from benchmarks.metrics import ek100_cls_marginals, topk_accuracy
from benchmarks.record import BenchResult
from henasy.core.records import Stratum, fixed_breakdown
from henasy.data.batching import ClipRef
from henasy.data.ek100 import ek100_video_relpath, load_epic_annotations
from henasy.data.video import SingleFileSource

VERSION = "ek100_cls/2"  # 2: verb / noun top-1 / top-5 from marginalised action probabilities
TEMPLATES = {"none": ("{}",), "lavila": ("#C C {}", "#C {}")}
OPTIONS: dict[str, Option] = {
    "template": Option("none", "'none' ('{}') or 'lavila' ('#C C {}', '#C {}')", choices=tuple(TEMPLATES)),
    "marginal_temperature": Option(
        0.07,
        "a positive number: softmax temperature of the action cosines before verb/noun marginalisation",
        kind=(int, float),
        check=lambda v: v > 0 and math.isfinite(v),
    ),
}
MARGINALS = ("verb", "noun")


@dataclass(frozen=True)
class ActionClasses:
    keys: list[str]  # "verb:noun", sorted as strings; index = class id
    texts: list[list[str]]  # unique narrations of each class, in first-seen order

    def index(self) -> dict[str, int]:
        return {k: i for i, k in enumerate(self.keys)}

    def verbs(self) -> list[int]:
        """The verb class of each action class, in class-id order."""
        return [int(k.split(":")[0]) for k in self.keys]

    def nouns(self) -> list[int]:
        """The noun class of each action class, in class-id order."""
        return [int(k.split(":")[1]) for k in self.keys]


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


def _topk_outcomes(scores: np.ndarray, target: np.ndarray, prefix: str) -> tuple[dict, dict]:
    """Top-1 / top-5 accuracy of (N, K) ``scores`` against ``target`` (N,), and the per-item outcomes.

    Metrics ``{prefix}top1`` / ``{prefix}top5`` (top-K when K < 5); per item ``{prefix}target``,
    ``{prefix}predicted``, ``correct_{prefix}top1``, ``correct_{prefix}top5``. Equal scores rank by lower index.
    """
    ks = (1, min(5, scores.shape[1]))
    accuracy = topk_accuracy(scores, target, ks=ks)
    order = np.argsort(-scores, axis=1, kind="stable")[:, :5]  # (N, ≤5) equal scores → lower class first
    metrics = {f"{prefix}top1": accuracy["top1"], f"{prefix}top5": accuracy[f"top{ks[1]}"]}
    outcomes = {
        f"{prefix}target": target.tolist(),
        f"{prefix}predicted": order[:, 0].tolist(),
        f"correct_{prefix}top1": (order[:, 0] == target).astype(int).tolist(),
        f"correct_{prefix}top5": (order == target[:, None]).any(axis=1).astype(int).tolist(),
    }
    return metrics, outcomes


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
    metrics, outcomes = _topk_outcomes(logits, target, "")
    per_item = {"narration_id": kept["narration_id"].tolist(), **outcomes}
    temperature = float(ctx.options["marginal_temperature"])
    verbs, nouns = np.array(classes.verbs()), np.array(classes.nouns())  # (C,) each
    marginal = dict(zip(MARGINALS, ek100_cls_marginals(logits, verbs, nouns, temperature)))
    for kind in MARGINALS:
        part_target = np.asarray(kept[f"{kind}_class"], dtype=np.int64)  # (N,)
        part_metrics, part_outcomes = _topk_outcomes(marginal[kind], part_target, f"{kind}_")
        metrics.update(part_metrics)
        per_item.update(part_outcomes)
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
        "metrics": {
            "top1/top5": "action (verb_class:noun_class) accuracy, as LaViLa eval_zeroshot.py prints it",
            "verb_top1/verb_top5/noun_top1/noun_top5": "verb / noun accuracy of the marginal probabilities: "
            "softmax(cosine / marginal_temperature) over the action classes summed per verb / noun (LaViLa "
            "evaluation_ek100cls.marginalize; ids no action holds get action 0's probability, as there)",
        },
        "marginal_temperature": temperature,
        "num_verbs": marginal["verb"].shape[1],
        "num_nouns": marginal["noun"].shape[1],
        "frames": ctx.frames_protocol("ceil"),
    }
    skipped = ctx.note_skipped(
        protocol,
        len(taken) - len(kept),
        "clips whose video is missing/unreadable are left out of the metrics",
    )
    return BenchResult(
        protocol, "EPIC_100_validation", metrics, len(kept), len(val), per_item, skipped=skipped
    )


# Per-item outcomes: 0/1 top-k hits per narration (action, verb, noun).
BREAKDOWN = fixed_breakdown(
    {
        "top1": (Stratum("narration_id", "correct_top1"),),
        "top5": (Stratum("narration_id", "correct_top5"),),
        **{
            f"{kind}_top{k}": (Stratum("narration_id", f"correct_{kind}_top{k}"),)
            for kind in MARGINALS
            for k in (1, 5)
        },
    }
)
BENCHMARK = Benchmark("ek100_cls", run, OPTIONS, breakdown=BREAKDOWN, skip_aware=True)
