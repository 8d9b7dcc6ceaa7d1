"""Synthetic ``lavila_rephrased.pth``: paraphrases of the EgoClip training narrations in HelpingHands' format.

HelpingHands reads LaViLa-rephrased narrations as extra EgoNCE positives (henasy/data/rephrased.py has the
format: ``{video_uid: {str(int(clip_start // 600)): {round(start, 1): [(caption, ...), ...]}}}``, first caption
= the EgoClip narration). A paraphrase here re-words the narration (``language.ego4d_narration`` with ``variant`` k) with another surface form of each verb
(``takes`` → ``picks up``) and another synonym of each noun (``cup`` → ``mug``), as a rephraser would.

So that the reader's whole path runs on synthetic data, the file also has what the real one has: start keys
that differ from the EgoClip ``clip_start`` by up to 0.3 s (LaViLa's and EgoClip's times differ; the reader
searches ±0.5 s) and, for every ``MISMATCH_EVERY``-th clip, a first caption that is not the narration (the
reader then keeps the narration alone).
"""

from __future__ import annotations

from pathlib import Path

from henasy.core.atomic import atomic_torch_save
from henasy.synth import ego4d
from henasy.synth.language import ego4d_narration
from henasy.synth.scene import Action, VideoScript
from henasy.synth.world import World

CHUNK_SEC = 600  # HelpingHands' 600-s chunk ids (henasy/data/rephrased.py CHUNK_SEC)
PARAPHRASES = 3  # LaViLa's rephraser file keeps its top 3 (ego4d_train.rephraser.no_punkt_top3.pkl)
START_SHIFTS = (0.0, 0.2, -0.3)  # key offsets from clip_start, cycled over clips
MISMATCH_EVERY = 7  # every 7th clip: first caption ≠ narration


def captions_of(script: VideoScript, action: Action) -> list[str]:
    """The narration then up to ``PARAPHRASES`` distinct paraphrases of it."""
    out = [ego4d_narration(script, action)]
    for k in range(1, 2 * PARAPHRASES + 1):
        text = ego4d_narration(script, action, variant=k)
        if text not in out:
            out.append(text)
        if len(out) > PARAPHRASES:
            break
    return out


def rephrased_table(scripts: list[VideoScript], world: World) -> dict[str, dict[str, dict[float, list]]]:
    """``{video_uid: {chunk id: {start key: [(caption, rank), ...]}}}`` over the EgoClip clips of ``scripts``."""
    table: dict[str, dict[str, dict[float, list]]] = {}
    counter = 0
    for script in scripts:
        for clip in ego4d.narration_clips(script, world):
            captions = captions_of(script, clip.action)
            if counter % MISMATCH_EVERY == MISMATCH_EVERY - 1 and len(captions) > 1:
                captions = [captions[1], captions[0], *captions[2:]]  # misaligned: narration not first
            start = max(clip.clip_start, 0.0)
            chunk = table.setdefault(script.uid, {}).setdefault(str(int(start // CHUNK_SEC)), {})
            key = round(start + START_SHIFTS[counter % len(START_SHIFTS)], 1)
            if key in chunk or key < 0:
                key = round(start, 1)
            chunk[key] = [(text, float(rank)) for rank, text in enumerate(captions)]
            counter += 1
    return table


def write_rephrased(path: str | Path, scripts: list[VideoScript], world: World) -> Path:
    """Write ``lavila_rephrased.pth`` (``torch.save``, plain Python types only) atomically."""
    return atomic_torch_save(path, rephrased_table(scripts, world))
