"""Ego4D episodic-memory writers: NLQ v1 json, canonical MQ moments json, and the converted MQ clip file.

Formats: NLQ ``{version, date, description, manifest, videos: [{video_uid, split,
clips: [{clip_uid, video_start_sec, video_end_sec, video_start_frame, video_end_frame, clip_start_sec,
clip_end_sec, clip_start_frame, clip_end_frame, source_clip_uid, annotations: [{annotation_uid,
language_queries: [{clip_start_sec, clip_end_sec, video_start_sec, video_end_sec, video_start_frame,
video_end_frame, template, query, slot_x, verb_x, raw_tags}]}]}]}]}``; moments the same videos → clips
nesting with ``annotations: [{annotator_uid, labels: [{label, start_time, end_time, video_start_time,
video_end_time, video_start_frame, video_end_frame, primary}]}]`` (label times in clip seconds); and
``clip_annotations.json`` as written by the official ``MQ/Convert_annotation.py``: keyed by clip_uid,
``{video_id, clip_id, parent_start_sec, parent_end_sec, parent_start_frm, parent_end_frm, v_duration,
annotations (primary labels only), subset}`` (+ ``fps``), clips without primary labels dropped.
Each video contributes one long clip that starts a few seconds into the video, so clip and video times
differ. Frame numbers use the synthetic videos' fps.
"""

from __future__ import annotations

import math

import numpy as np

from henasy.synth.formats import seconds
from henasy.synth.language import nlq_query
from henasy.synth.scene import VideoScript, random_uid
from henasy.synth.world import VERBS

MAX_QUERIES_PER_ANNOTATION = 5
SECONDARY_LABEL = "handle_an_object"  # a non-primary label the converter must drop


def _header(kind: str) -> dict:
    return {
        "version": "v1",
        "date": "synthetic",
        "description": f"Synthetic Ego4D {kind} annotations (henasy-bench generator)",
        "manifest": "synthetic",
    }


def _clip_window(script: VideoScript, rng: np.random.Generator) -> tuple[int, int]:
    """A clip [start, end] in whole seconds: from a few seconds in to the video's end."""
    end = int(math.floor(script.duration))
    start = int(rng.integers(0, max(1, int(0.2 * end)) + 1))
    return start, end


def _clip_fields(script: VideoScript, start: int, end: int, rng: np.random.Generator) -> dict:
    fps = script.fps
    return {
        "clip_uid": random_uid(rng),
        "source_clip_uid": random_uid(rng),
        "video_start_sec": float(start),
        "video_end_sec": float(end),
        "video_start_frame": start * fps,
        "video_end_frame": end * fps,
        "clip_start_sec": 0.0,
        "clip_end_sec": float(end - start),
        "clip_start_frame": 0,
        "clip_end_frame": (end - start) * fps,
    }


def nlq_json(scripts: list[VideoScript], split: str, rng: np.random.Generator, max_queries: int) -> dict:
    """NLQ annotations: one clip per video, queries about single-step actions unique in the clip."""
    videos = []
    for script in scripts:
        start, end = _clip_window(script, rng)
        clip = _clip_fields(script, start, end, rng)
        inside = [a for a in script.actions if len(a.steps) == 1 and a.start >= start and a.end <= end]
        keys = [(a.steps[0].verb, script.entity(a.steps[0].entity).noun) for a in inside]
        verbs = [k[0] for k in keys]
        candidates = [a for a, k in zip(inside, keys) if keys.count(k) == 1]
        chosen = sorted(rng.permutation(len(candidates))[:max_queries].tolist())
        queries = []
        for i in chosen:
            action = candidates[i]
            step = action.steps[0]
            template, text, slot, verb = nlq_query(script, step, verb_unique=verbs.count(step.verb) == 1)
            queries.append(
                {
                    "clip_start_sec": seconds(action.start - start),
                    "clip_end_sec": seconds(action.end - start),
                    "video_start_sec": seconds(action.start),
                    "video_end_sec": seconds(action.end),
                    "video_start_frame": int(round(action.start * script.fps)),
                    "video_end_frame": int(round(action.end * script.fps)),
                    "template": template,
                    "query": text,
                    "slot_x": slot,
                    "verb_x": verb,
                    "raw_tags": [template, text, slot, verb],
                }
            )
        clip["annotations"] = [
            {
                "annotation_uid": random_uid(rng),
                "language_queries": queries[i : i + MAX_QUERIES_PER_ANNOTATION],
            }
            for i in range(0, len(queries), MAX_QUERIES_PER_ANNOTATION)
        ]
        videos.append({"video_uid": script.uid, "split": split, "clips": [clip]})
    return {**_header("NLQ"), "videos": videos}


def moments_json(scripts: list[VideoScript], split: str, rng: np.random.Generator) -> dict:
    """Canonical MQ annotations: every step inside the clip is a primary moment of its verb's class."""
    videos = []
    for script in scripts:
        start, end = _clip_window(script, rng)
        clip = _clip_fields(script, start, end, rng)
        labels = []
        for action in script.actions:
            if action.start < start or action.end > end:
                continue
            for step in action.steps:
                label = {
                    "label": VERBS[step.verb].moment,
                    "start_time": seconds(action.start - start),
                    "end_time": seconds(action.end - start),
                    "video_start_time": seconds(action.start),
                    "video_end_time": seconds(action.end),
                    "video_start_frame": int(round(action.start * script.fps)),
                    "video_end_frame": int(round(action.end * script.fps)),
                    "primary": True,
                }
                labels.append(label)
                if rng.random() < 0.15:
                    labels.append({**label, "label": SECONDARY_LABEL, "primary": False})
        clip["annotations"] = [{"annotator_uid": random_uid(rng), "labels": labels}]
        videos.append({"video_uid": script.uid, "split": split, "clips": [clip]})
    return {**_header("moments"), "videos": videos}


def convert_moments(moments: list[dict], durations: dict[str, float], fps: int) -> dict:
    """``clip_annotations.json`` from canonical moments files (the official converter's output layout)."""
    out: dict[str, dict] = {}
    for data in moments:
        for video in data["videos"]:
            for clip in video["clips"]:
                primary = [lab for ann in clip["annotations"] for lab in ann["labels"] if lab["primary"]]
                if not primary:
                    continue
                out[clip["clip_uid"]] = {
                    "video_id": video["video_uid"],
                    "clip_id": clip["clip_uid"],
                    "parent_start_sec": clip["video_start_sec"],
                    "parent_end_sec": clip["video_end_sec"],
                    "parent_start_frm": clip["video_start_frame"],
                    "parent_end_frm": clip["video_end_frame"],
                    "v_duration": durations[video["video_uid"]],
                    "fps": float(fps),
                    "annotations": primary,
                    "subset": video["split"],
                }
    return out
