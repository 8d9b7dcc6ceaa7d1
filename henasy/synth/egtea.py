"""EGTEA Gaze+ writers: trimmed action clips with official-looking ids, ``action_idx.txt`` and split files.

Formats (LaViLa egtea loader): ``action_idx.txt`` lines ``<Verb noun words> <id>``
(1-based ids; class text = the words, ``_`` → space, lower-cased; class index = line order);
``verb_idx.txt`` / ``noun_idx.txt`` likewise; split lines ``<clip_id> <action_id> <verb_id> <noun_id>``;
clip ids look like ``OP01-R01-PastaSalad-1002316-1004005-F024051-F024101`` (session, start/end in ms,
start/end frame), stored at ``cropped_clips/<session>/<clip_id>.mp4``. A clip file holds the frames
``[start_frame, end_frame)`` of its session (end exclusive) counted from the session's recording offset.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from henasy.synth.formats import write_lines
from henasy.synth.language import egtea_class_text
from henasy.synth.motion import frame_index
from henasy.synth.scene import VideoScript
from henasy.synth.world import NOUNS, VERBS, World

RECIPES = (
    "BaconAndEggs",
    "Cheeseburger",
    "ContinentalBreakfast",
    "GreekSalad",
    "PastaSalad",
    "Pizza",
    "TurkeySandwich",
)


def session_name(index: int) -> str:
    """``OP01-R05-PastaSalad``-style session names (subjects OP01.., then P01..; recipes R01..R07)."""
    subject = f"OP{index // 7 + 1:02d}" if index < 42 else f"P{index // 7 - 5:02d}"
    recipe = index % 7
    return f"{subject}-R{recipe + 1:02d}-{RECIPES[recipe]}"


@dataclass(frozen=True)
class EgteaClip:
    clip_id: str
    session: str
    start_frame: int  # frame range in the rendered session video, end exclusive
    end_frame: int
    verb: int
    noun: int
    held_out: bool


def session_clips(script: VideoScript, offset_sec: int, world: World) -> list[EgteaClip]:
    """One trimmed clip per action of a session script."""
    fps, out = script.fps, []
    for action in script.actions:
        step = action.steps[0]
        f0, f1 = frame_index(action.start, fps), frame_index(action.end, fps)
        start_ms = offset_sec * 1000 + int(round(action.start * 1000))
        end_ms = offset_sec * 1000 + int(round(action.end * 1000))
        base = offset_sec * fps
        clip_id = f"{script.uid}-{start_ms}-{end_ms}-F{base + f0:06d}-F{base + f1:06d}"
        noun = script.entity(step.entity).noun
        out.append(
            EgteaClip(clip_id, script.uid, f0, f1, step.verb, noun, world.is_held_out(noun, step.verb))
        )
    return out


def clip_relpath(clip_id: str) -> str:
    return f"{'-'.join(clip_id.split('-')[:3])}/{clip_id}.mp4"


def write_egtea(
    folder: str | Path, train: list[EgteaClip], test: list[EgteaClip], rng: np.random.Generator
) -> dict:
    """Class index files and splits; returns the split sizes.

    ``test_split1`` holds every evaluation clip; ``test_split2``/``test_split3`` are two seeded subsets of
    about two thirds of them that keep every held-out clip (the real dataset's three splits are three
    partitions; here only split 1 has a training counterpart).
    """
    folder = Path(folder)
    actions = sorted({(c.verb, c.noun) for c in train + test})
    action_id = {pair: i + 1 for i, pair in enumerate(actions)}
    write_lines(
        folder / "action_idx.txt", (f"{egtea_class_text(v, n)} {action_id[(v, n)]}" for v, n in actions)
    )
    write_lines(folder / "verb_idx.txt", (f"{v.name.capitalize()} {i + 1}" for i, v in enumerate(VERBS)))
    write_lines(folder / "noun_idx.txt", (f"{n.name.replace(' ', '_')} {i + 1}" for i, n in enumerate(NOUNS)))

    def line(c: EgteaClip) -> str:
        return f"{c.clip_id} {action_id[(c.verb, c.noun)]} {c.verb + 1} {c.noun + 1}"

    write_lines(folder / "train_split1.txt", (line(c) for c in train))
    write_lines(folder / "test_split1.txt", (line(c) for c in test))
    sizes = {"train_split1": len(train), "test_split1": len(test)}
    for k in (2, 3):
        keep = rng.random(len(test)) < 2 / 3
        subset = [c for c, kept in zip(test, keep) if kept or c.held_out]
        write_lines(folder / f"test_split{k}.txt", (line(c) for c in subset))
        sizes[f"test_split{k}"] = len(subset)
    return sizes
