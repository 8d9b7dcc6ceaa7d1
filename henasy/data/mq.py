"""Ego4D Moment Queries: canonical ``moments_{train,val}.json`` and the evaluator's ``clip_annotations.json``.

Formats (official ``MQ/Convert_annotation.py``): the canonical file is
``videos[] → {video_uid, split, clips[] → {clip_uid, video_start_sec, video_end_sec,
annotations[] → {labels[] → {label, start_time, end_time, primary, ...}}}}`` with times in clip seconds.
The converted ``clip_annotations.json`` that ``Evaluation/ego4d/eval_detection.py`` reads is keyed by
clip_uid: ``{video_id, clip_id, parent_start_sec, parent_end_sec, v_duration, subset, annotations:
[primary labels {label, start_time, end_time, ...}]}``. Clip and video ids name feature-cache files and
videos, so they must be safe file names (``henasy.data.paths``).

What the official files and converter produce, and how it is read: the converter reads ``annotations`` only
for videos whose ``split`` is not ``test``, so clips of ``moments_test_unannotated.json`` may have no
``annotations`` key (read as no labels); ``clip_annotations.json`` keeps those test clips with
``"subset": "test"`` and an empty ``annotations`` list, and copies each primary label dict whole (its
``video_start_time``/``video_end_time``/``video_*_frame``/``primary`` keys are accepted). A label of zero
length is kept; one whose ``end_time`` is before its ``start_time`` is an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from henasy.data.parsing import JsonNode, read_json
from henasy.data.paths import SAFE_NAME_HELP, path_component_problem


@dataclass(frozen=True)
class MQSegment:
    label: str
    start_time: float  # clip seconds
    end_time: float
    primary: bool = True


@dataclass(frozen=True)
class MQClip:
    """One clip of a canonical moments file, with every label of every annotator."""

    clip_uid: str
    video_uid: str
    split: str | None
    video_start_sec: float
    video_end_sec: float
    segments: tuple[MQSegment, ...]

    def primary(self) -> list[MQSegment]:
        """The primary labels (the only ones the official converter keeps)."""
        return [s for s in self.segments if s.primary]


@dataclass(frozen=True)
class MQClipAnnotation:
    """One clip of ``clip_annotations.json`` (the official evaluator's ground truth)."""

    clip_id: str
    video_id: str
    subset: str
    parent_start_sec: float
    parent_end_sec: float
    v_duration: float | None
    fps: float | None
    segments: tuple[MQSegment, ...]


def _segment(node: JsonNode, *, primary_required: bool) -> MQSegment:
    start = node["start_time"].as_float()
    end = node["end_time"].as_float()
    if end < start:
        node.fail(f"end_time {end} is before start_time {start}", expected="end_time >= start_time")
    primary = node["primary"].as_bool() if primary_required or node.has("primary") else True
    return MQSegment(node["label"].as_str(nonempty=True), start, end, primary)


def _key_name(node: JsonNode, key: str) -> str:
    """A clip_uid key used as the clip id (a feature-cache file name): it must be a safe file name."""
    problem = path_component_problem(key)
    if problem is not None:
        node.fail(f"the clip key cannot be used as a file name: {problem}", expected=SAFE_NAME_HELP)
    return key


def load_moments(path: str | Path) -> list[MQClip]:
    """Read a canonical ``moments_<split>.json`` → clips (all labels, with their ``primary`` flag)."""
    root = read_json(path, "MQ moments json")
    clips = []
    for video in root["videos"].elements():
        video_uid = video["video_uid"].as_path_component()
        split = video["split"].as_str() if video.has("split") else None
        for clip in video["clips"].elements():
            # no "annotations" in test clips (EGO4D/episodic-memory @ 5275b95 : MQ/Convert_annotation.py)
            annotations = clip["annotations"].elements() if clip.has("annotations") else iter(())
            segments = [
                _segment(label, primary_required=True)
                for ann in annotations
                for label in ann["labels"].elements()
            ]
            clips.append(
                MQClip(
                    clip_uid=clip["clip_uid"].as_path_component(),
                    video_uid=video_uid,
                    split=split,
                    video_start_sec=clip["video_start_sec"].as_float(),
                    video_end_sec=clip["video_end_sec"].as_float(),
                    segments=tuple(segments),
                )
            )
    return clips


def load_clip_annotations(path: str | Path) -> dict[str, MQClipAnnotation]:
    """Read ``clip_annotations.json`` → clip_uid → annotation (labels as given; ``primary`` defaults to true)."""
    root = read_json(path, "MQ clip_annotations.json")
    out = {}
    for clip_uid, node in root.items():
        out[clip_uid] = MQClipAnnotation(
            clip_id=node["clip_id"].as_path_component() if node.has("clip_id") else _key_name(node, clip_uid),
            video_id=node["video_id"].as_path_component(),
            subset=node["subset"].as_str(nonempty=True),
            parent_start_sec=node["parent_start_sec"].as_float(),
            parent_end_sec=node["parent_end_sec"].as_float(),
            v_duration=node["v_duration"].as_float() if node.has("v_duration") else None,
            fps=node["fps"].as_float() if node.has("fps") else None,
            segments=tuple(_segment(s, primary_required=False) for s in node["annotations"].elements()),
        )
    return out
