"""Ego4D Natural Language Queries (NLQ v1 and v2): ``nlq_{train,val}.json`` → a flat list of queries.

Format: ``videos[] → clips[] → annotations[] → language_queries[]``; a clip has
``clip_uid``, ``video_start_sec``/``video_end_sec`` (its span in the parent video); a query has
``clip_start_sec``/``clip_end_sec`` (the answer window, in clip seconds), ``query``, ``template``, ....
As in the official ``prepare_ego4d_dataset.py``, queries without a ``query`` text are skipped, and
``query_idx`` is the query's position in ``language_queries`` (counting skipped ones), which the official
evaluator uses with ``clip_uid`` and ``annotation_uid`` to identify a prediction. ``clip_uid`` and
``video_uid`` name feature-cache files and videos, so they must be safe file names (``henasy.data.paths``).

What the official files contain, and how it is read:

- v1 and v2 share the layout (the top-level ``version`` string is kept in ``NLQSet.version``; v1 files say
  "1"); v2 queries may carry extra keys (``answer``) and
  texts still prefixed with the annotation form's field label (``"Query Text:Did I leave the door open?"``):
  the ``Query Text:`` prefix is removed from ``query`` (counted in ``NLQSet.num_prefixed``).
- a query without a ``query`` key, or with a null or empty one, is skipped (v1 val has one, train five).
- ``template`` and the ``slot_*``/``verb_*`` fields may be null; ``template`` becomes None.
- answer windows may have zero length (v1: 342 of 3,875 val queries) and may end up to ~0.6 s after the
  clip's ``video_end_sec - video_start_sec``: both are kept as given (the benchmark clamps positions).
- ``nlq_test_unannotated.json`` (``annotated=False``) has queries with only a ``query`` key, empty query
  texts and annotations with an empty ``language_queries`` list.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from henasy.data.parsing import JsonNode, read_json


@dataclass(frozen=True)
class NLQClip:
    clip_uid: str
    video_uid: str
    video_start_sec: float  # clip start in the parent video
    video_end_sec: float


@dataclass(frozen=True)
class NLQQuery:
    clip_uid: str
    annotation_uid: str
    query_idx: int  # index in the annotation's language_queries (official prediction key)
    query: str
    template: str | None
    window: (
        tuple[float, float] | None
    )  # (clip_start_sec, clip_end_sec) answer in clip seconds; None if unannotated
    video_uid: str
    video_start_sec: float
    video_end_sec: float


# v2 texts that kept the annotation form's label (mamadhs74/ego4d-nlq @ e2ea253 : data/nlq_val_samples.json)
QUERY_TEXT_PREFIX = "Query Text:"


@dataclass
class NLQSet:
    path: Path
    queries: list[NLQQuery]
    clips: dict[str, NLQClip] = field(default_factory=dict)  # every clip, with or without queries
    num_skipped: int = 0  # queries without a query text (skipped as in the official code)
    version: str | None = None  # the file's top-level "version" ("1" in v1 files), None when absent
    num_prefixed: int = 0  # v2 query texts whose "Query Text:" prefix was removed


def _window(node: JsonNode) -> tuple[float, float]:
    start = node["clip_start_sec"].as_float()
    end = node["clip_end_sec"].as_float()
    if end < start:
        node.fail(
            f"clip_end_sec {end} is before clip_start_sec {start}", expected="clip_end_sec >= clip_start_sec"
        )
    return start, end


def load_nlq(path: str | Path, *, annotated: bool = True) -> NLQSet:
    """Read an NLQ v1 or v2 json. ``annotated=False`` (test_unannotated) makes answer windows optional."""
    root = read_json(path, "NLQ annotation json")
    version = root.get("version")
    out = NLQSet(path=root.path, queries=[], version=str(version.value) if version is not None else None)
    for video in root["videos"].elements():
        video_uid = video["video_uid"].as_path_component()
        for clip in video["clips"].elements():
            clip_uid = clip["clip_uid"].as_path_component()
            meta = NLQClip(
                clip_uid, video_uid, clip["video_start_sec"].as_float(), clip["video_end_sec"].as_float()
            )
            if meta.video_end_sec < meta.video_start_sec:
                clip.fail(
                    "video_end_sec is before video_start_sec", expected="video_end_sec >= video_start_sec"
                )
            out.clips[clip_uid] = meta
            for ann in clip["annotations"].elements():
                annotation_uid = ann["annotation_uid"].as_str(nonempty=True)
                for idx, q in enumerate(ann["language_queries"].elements()):
                    # missing / null / empty query → skipped, idx still counts it
                    # (EGO4D/episodic-memory @ 5275b95 : NLQ/VSLNet/utils/prepare_ego4d_dataset.py)
                    node = q.get("query")
                    text = node.as_str() if node is not None else ""
                    if text.startswith(QUERY_TEXT_PREFIX):
                        text = text[len(QUERY_TEXT_PREFIX) :]
                        out.num_prefixed += 1
                    if not text.strip():
                        out.num_skipped += 1
                        continue
                    window = _window(q) if annotated or q.has("clip_start_sec") else None
                    template = q.get("template")
                    out.queries.append(
                        NLQQuery(
                            clip_uid=clip_uid,
                            annotation_uid=annotation_uid,
                            query_idx=idx,
                            query=text,
                            template=template.as_str() if template is not None else None,
                            window=window,
                            video_uid=video_uid,
                            video_start_sec=meta.video_start_sec,
                            video_end_sec=meta.video_end_sec,
                        )
                    )
    return out
