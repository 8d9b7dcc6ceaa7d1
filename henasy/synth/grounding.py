"""Entity-grounding ground truth: which clips get masks, and their noun / verb-phrase queries.

Format (henasy/data/layout.py): ``grounding/grounding_val.json`` is a list of ``{clip_id, video_uid, start_sec,
end_sec, query, query_type ("noun" | "verb_phrase"), entity_ids, mask_file}``, and
``grounding/masks/<clip_id>.npz`` holds ``labels`` uint8 (T, H, W), the instance-id map of every frame
``i`` with ``start_sec <= i / fps < end_sec``, and ``frame_times`` (T,) seconds. A noun query ("cup")
refers to the entity of that noun; a verb-phrase query ("taking the cup") refers to the acted-on entity
and the hand doing it (HENASY's verb-phrase grounding, paper §4). Only ids that actually appear in the
clip's masks are listed; a query left with none is dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from henasy.synth.ego4d import NarrationClip
from henasy.synth.motion import frame_index
from henasy.synth.scene import VideoScript
from henasy.synth.world import HAND_IDS, NOUNS


@dataclass(frozen=True)
class GroundingClip:
    clip_id: str
    clip: NarrationClip
    script: VideoScript
    start_frame: int
    end_frame: int

    @property
    def mask_file(self) -> str:
        return f"masks/{self.clip_id}.npz"


def select_clips(
    clips: list[NarrationClip], scripts: dict[str, VideoScript], num: int, rng: np.random.Generator
) -> list[GroundingClip]:
    """Up to ``num`` evaluation clips (held-out compositions first), in video/time order."""
    order = [clips[i] for i in rng.permutation(len(clips))]
    order = [c for c in order if c.held_out] + [c for c in order if not c.held_out]
    picked = sorted(order[:num], key=lambda c: (c.video_uid, c.clip_start))
    out = []
    for c in picked:
        script = scripts[c.video_uid]
        f0, f1 = frame_index(c.clip_start, script.fps), frame_index(c.clip_end, script.fps)
        f1 = min(f1, script.num_frames)
        if f1 > f0:
            out.append(GroundingClip(f"{c.video_uid}_{c.narration_ind:04d}", c, script, f0, f1))
    return out


def grounding_entries(selected: list[GroundingClip], visible: dict[str, tuple[int, ...]]) -> list[dict]:
    """The json entries of the selected clips, keeping only ids visible in each clip's masks."""
    entries = []
    for g in selected:
        seen = set(visible.get(g.clip_id, ()))
        queries: list[tuple[str, str, list[int]]] = []
        for step, phrase in zip(g.clip.action.steps, g.clip.phrases):
            for entity_id in (step.entity, step.ref):
                if entity_id:
                    noun = NOUNS[g.script.entity(entity_id).noun].name
                    queries.append((noun, "noun", [entity_id]))
            queries.append((phrase, "verb_phrase", [step.entity, HAND_IDS[step.hand]]))
        done: set[str] = set()
        for text, kind, ids in queries:
            ids = [i for i in ids if i in seen]
            if not ids or text in done:
                continue
            done.add(text)
            entries.append(
                {
                    "clip_id": g.clip_id,
                    "video_uid": g.clip.video_uid,
                    "start_sec": g.clip.clip_start,
                    "end_sec": g.clip.clip_end,
                    "query": text,
                    "query_type": kind,
                    "entity_ids": ids,
                    "mask_file": g.mask_file,
                }
            )
    return entries
