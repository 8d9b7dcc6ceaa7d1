"""Ego4D-side annotation writers: EgoClip csv, narration taxonomies, EgoMCQ, verb phrases.

Formats: ``egoclip.csv`` is tab-separated with columns ``clip_idx video_uid
video_dur narration_source narration_ind narration_time clip_start clip_end clip_text tag_verb
tag_noun`` (tags are string-encoded lists of taxonomy row indices); the taxonomies have columns
``label,group`` with Ego4D-style labels (``take_(pick_up,_grab)``) and a string-encoded synonym list;
``egomcq.json`` is keyed ``"0".."N-1"`` → ``{answer, query, choices: {"0".."4"}, types}`` with type 1 =
inter-video (the 5 choices come from 5 different videos) and 2 = intra-video (all from the query's
video), built only from videos that are not in the EgoClip training csv.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from henasy.synth.formats import py_list, seconds, write_csv, write_json
from henasy.synth.language import action_classes, ego4d_narration, verb_phrases
from henasy.synth.scene import Action, VideoScript
from henasy.synth.world import NOUNS, VERBS, World, taxonomy_label

EGOCLIP_COLUMNS = (
    "clip_idx",
    "video_uid",
    "video_dur",
    "narration_source",
    "narration_ind",
    "narration_time",
    "clip_start",
    "clip_end",
    "clip_text",
    "tag_verb",
    "tag_noun",
)
NARRATION_SOURCE = "narration_pass_1"
MCQ_CHOICES = 5


@dataclass(frozen=True)
class NarrationClip:
    """One narrated clip of an Ego4D video (a row of egoclip.csv, or an EgoMCQ clip)."""

    video_uid: str
    video_dur: float
    narration_ind: int
    narration_time: float
    clip_start: float
    clip_end: float
    clip_text: str
    tag_verb: tuple[int, ...]
    tag_noun: tuple[int, ...]
    phrases: tuple[str, ...]
    held_out: bool  # contains a held-out noun×verb pair
    action: Action

    def as_dict(self) -> dict:
        """The clip dict of egomcq.json (egoclip fields; tags string-encoded as in the csv)."""
        return {
            "video_uid": self.video_uid,
            "video_dur": self.video_dur,
            "narration_source": NARRATION_SOURCE,
            "narration_ind": self.narration_ind,
            "narration_time": self.narration_time,
            "clip_start": self.clip_start,
            "clip_end": self.clip_end,
            "clip_text": self.clip_text,
            "tag_verb": py_list(self.tag_verb),
            "tag_noun": py_list(self.tag_noun),
        }


def narration_clips(script: VideoScript, world: World) -> list[NarrationClip]:
    """Every action of an Ego4D script as a narrated clip (clip window = the action's span)."""
    out = []
    for action in script.actions:
        verbs, nouns = action_classes(script, action)
        held = any(world.is_held_out(script.entity(s.entity).noun, s.verb) for s in action.steps)
        out.append(
            NarrationClip(
                video_uid=script.uid,
                video_dur=float(script.duration),
                narration_ind=action.index,
                narration_time=seconds(action.narration_time),
                clip_start=seconds(action.start),
                clip_end=seconds(action.end),
                clip_text=ego4d_narration(script, action),
                tag_verb=tuple(verbs),
                tag_noun=tuple(nouns),
                phrases=tuple(verb_phrases(script, action)),
                held_out=held,
                action=action,
            )
        )
    return out


def write_egoclip(path: str | Path, clips: list[NarrationClip]) -> Path:
    """``egoclip.csv``: one row per training clip, tab-separated."""
    rows = (
        [
            i,
            c.video_uid,
            repr(c.video_dur),
            NARRATION_SOURCE,
            c.narration_ind,
            repr(c.narration_time),
            repr(c.clip_start),
            repr(c.clip_end),
            c.clip_text,
            py_list(c.tag_verb),
            py_list(c.tag_noun),
        ]
        for i, c in enumerate(clips)
    )
    return write_csv(path, EGOCLIP_COLUMNS, rows, delimiter="\t")


def write_taxonomies(folder: str | Path) -> None:
    """``narration_noun_taxonomy.csv`` and ``narration_verb_taxonomy.csv`` (row order = tag index)."""
    folder = Path(folder)
    write_csv(
        folder / "narration_noun_taxonomy.csv",
        ("label", "group"),
        ([taxonomy_label(n.name, n.synonyms), py_list(n.synonyms)] for n in NOUNS),
    )
    write_csv(
        folder / "narration_verb_taxonomy.csv",
        ("label", "group"),
        ([taxonomy_label(v.name, v.synonyms), py_list(v.synonyms)] for v in VERBS),
    )


def write_verb_phrases(path: str | Path, clips: list[NarrationClip]) -> Path:
    """``verb_phrases.json``: narration text → its verb phrases (ground truth of the synthetic world)."""
    return write_json(path, {c.clip_text: list(c.phrases) for c in clips})


def _distinct_text(
    candidates: list[NarrationClip], texts: set[str], rng: np.random.Generator
) -> NarrationClip | None:
    pool = [c for c in candidates if c.clip_text not in texts]
    return pool[int(rng.integers(len(pool)))] if pool else None


def build_egomcq(clips: list[NarrationClip], num_items: int, rng: np.random.Generator) -> dict:
    """EgoMCQ items over evaluation clips: alternating inter-video (type 1) and intra-video (type 2).

    Queries with a held-out composition come first (so every held-out pair is asked about), then the
    others in a random order; the 5 choices always have 5 different narrations.
    """
    by_video: dict[str, list[NarrationClip]] = {}
    for c in clips:
        by_video.setdefault(c.video_uid, []).append(c)
    videos = sorted(by_video)
    order = [clips[i] for i in rng.permutation(len(clips))]
    order = [c for c in order if c.held_out] + [c for c in order if not c.held_out]
    items: dict[str, dict] = {}
    for query in order:
        if len(items) >= num_items:
            break
        mcq_type = 1 if len(items) % 2 == 0 else 2
        texts, choices = {query.clip_text}, [query]
        if mcq_type == 1:
            others = [v for v in videos if v != query.video_uid]
            if len(others) < MCQ_CHOICES - 1:
                continue
            for v in rng.permutation(others).tolist():
                pick = _distinct_text(by_video[v], texts, rng)
                if pick is not None:
                    choices.append(pick)
                    texts.add(pick.clip_text)
                if len(choices) == MCQ_CHOICES:
                    break
        else:
            for _ in range(MCQ_CHOICES - 1):
                pick = _distinct_text(by_video[query.video_uid], texts, rng)
                if pick is None:
                    break
                choices.append(pick)
                texts.add(pick.clip_text)
        if len(choices) < MCQ_CHOICES:
            continue
        answer = int(rng.integers(MCQ_CHOICES))
        choices[0], choices[answer] = choices[answer], choices[0]
        items[str(len(items))] = {
            "answer": answer,
            "query": query.as_dict(),
            "choices": {str(j): c.as_dict() for j, c in enumerate(choices)},
            "types": mcq_type,
        }
    return items
