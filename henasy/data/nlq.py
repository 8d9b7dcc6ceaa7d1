"""Ego4D Natural Language Queries (NLQ v1): ``nlq_{train,val}.json`` → a flat list of queries.

Format: ``videos[] → clips[] → annotations[] → language_queries[]``; a clip has
``clip_uid``, ``video_start_sec``/``video_end_sec`` (its span in the parent video); a query has
``clip_start_sec``/``clip_end_sec`` (the answer window, in clip seconds), ``query``, ``template``, ....
As in the official ``prepare_ego4d_dataset.py``, queries without a ``query`` text are skipped, and
``query_idx`` is the query's position in ``language_queries`` (counting skipped ones), which the official
evaluator uses with ``clip_uid`` and ``annotation_uid`` to identify a prediction. ``clip_uid`` and
``video_uid`` name feature-cache files and videos, so they must be safe file names (``henasy.data.paths``).
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


@dataclass
class NLQSet:
    path: Path
    queries: list[NLQQuery]
    clips: dict[str, NLQClip] = field(default_factory=dict)  # every clip, with or without queries
    num_skipped: int = 0  # queries without a query text (skipped as in the official code)


def _window(node: JsonNode) -> tuple[float, float]:
    start = node["clip_start_sec"].as_float()
    end = node["clip_end_sec"].as_float()
    if end < start:
        node.fail(
            f"clip_end_sec {end} is before clip_start_sec {start}", expected="clip_end_sec >= clip_start_sec"
        )
    return start, end


def load_nlq(path: str | Path, *, annotated: bool = True) -> NLQSet:
    """Read an NLQ v1 json. ``annotated=False`` (test_unannotated) makes answer windows optional."""
    root = read_json(path, "NLQ annotation json")
    out = NLQSet(path=root.path, queries=[])
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
                    text = q.get("query")
                    if text is None or not text.as_str().strip():
                        out.num_skipped += 1
                        continue
                    window = _window(q) if annotated or q.has("clip_start_sec") else None
                    template = q.get("template")
                    out.queries.append(
                        NLQQuery(
                            clip_uid=clip_uid,
                            annotation_uid=annotation_uid,
                            query_idx=idx,
                            query=text.as_str(),
                            template=template.as_str() if template is not None else None,
                            window=window,
                            video_uid=video_uid,
                            video_start_sec=meta.video_start_sec,
                            video_end_sec=meta.video_end_sec,
                        )
                    )
    return out
