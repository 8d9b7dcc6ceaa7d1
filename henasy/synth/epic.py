"""EPIC-KITCHENS-100 annotation writers: action csvs, class csvs, retrieval sentences and relevancy.

Formats (epic-kitchens-100-annotations README): the action csvs have the 15 columns
``narration_id participant_id video_id narration_timestamp start_timestamp stop_timestamp start_frame
stop_frame narration verb verb_class noun noun_class all_nouns all_noun_classes`` (narration timestamps
``HH:MM:SS.fff``, start/stop ``HH:MM:SS.ff``, frames at the video's fps, string-encoded lists); the class
csvs have ``id,key,instances,category``; the retrieval test csv repeats the validation rows; the sentence
csv lists each unique narration once with the id of its first clip; the relevancy pkl is a pickled float64
array (clips × sentences) built with the JPoSE rule
``rel = 0.5·[same verb class] + 0.5·|N_i ∩ N_j| / |N_i ∪ N_j|`` over the ``all_noun_classes`` sets
(mwray/Joint-Part-of-Speech-Embeddings @ a2a29f0 : src/scripts/create_relevancy_files.py; built by
henasy/data/relevancy.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from henasy.data.relevancy import relevancy_matrix as jpose_relevancy
from henasy.synth.formats import hms, py_list, write_csv, write_pickle
from henasy.synth.language import epic_narration, step_nouns
from henasy.synth.scene import VideoScript
from henasy.synth.world import NOUNS, VERBS, World

EPIC_COLUMNS = (
    "narration_id",
    "participant_id",
    "video_id",
    "narration_timestamp",
    "start_timestamp",
    "stop_timestamp",
    "start_frame",
    "stop_frame",
    "narration",
    "verb",
    "verb_class",
    "noun",
    "noun_class",
    "all_nouns",
    "all_noun_classes",
)


@dataclass(frozen=True)
class EpicRow:
    narration_id: str
    participant_id: str
    video_id: str
    narration_sec: float
    start_sec: float
    stop_sec: float
    fps: int
    narration: str
    verb: str  # the verb instance used (``pick-up``)
    verb_class: int
    nouns: tuple[str, ...]
    noun_classes: tuple[int, ...]
    held_out: bool

    def cells(self) -> list:
        return [
            self.narration_id,
            self.participant_id,
            self.video_id,
            hms(self.narration_sec, 3),
            hms(self.start_sec, 2),
            hms(self.stop_sec, 2),
            int(round(round(self.start_sec, 2) * self.fps)),
            int(round(round(self.stop_sec, 2) * self.fps)),
            self.narration,
            self.verb,
            self.verb_class,
            self.nouns[0],
            self.noun_classes[0],
            py_list(self.nouns),
            py_list(self.noun_classes),
        ]


def epic_rows(script: VideoScript, participant_id: str, world: World) -> list[EpicRow]:
    """One row per action of an EPIC script (EPIC scripts have single-step actions)."""
    rows = []
    for action in script.actions:
        step = action.steps[0]
        nouns = step_nouns(script, step)
        rows.append(
            EpicRow(
                narration_id=f"{script.uid}_{action.index}",
                participant_id=participant_id,
                video_id=script.uid,
                narration_sec=action.narration_time,
                start_sec=action.start,
                stop_sec=action.end,
                fps=script.fps,
                narration=epic_narration(script, step),
                verb=VERBS[step.verb].forms[step.form].instance,
                verb_class=step.verb,
                nouns=tuple(NOUNS[n].name for n in nouns),
                noun_classes=tuple(nouns),
                held_out=world.is_held_out(nouns[0], step.verb),
            )
        )
    return rows


def write_action_csv(path: str | Path, rows: list[EpicRow]) -> Path:
    return write_csv(path, EPIC_COLUMNS, (r.cells() for r in rows))


def write_class_csvs(folder: str | Path) -> None:
    """``EPIC_100_verb_classes.csv`` and ``EPIC_100_noun_classes.csv`` (id = row order)."""
    folder = Path(folder)
    write_csv(
        folder / "EPIC_100_verb_classes.csv",
        ("id", "key", "instances", "category"),
        ([i, v.name, py_list(f.instance for f in v.forms), v.category] for i, v in enumerate(VERBS)),
    )
    write_csv(
        folder / "EPIC_100_noun_classes.csv",
        ("id", "key", "instances", "category"),
        ([i, n.name, py_list(n.synonyms), n.category] for i, n in enumerate(NOUNS)),
    )


def unique_sentences(rows: list[EpicRow]) -> list[EpicRow]:
    """The first row of each distinct narration, in row order (the sentence csv)."""
    seen: set[str] = set()
    out = []
    for r in rows:
        if r.narration not in seen:
            seen.add(r.narration)
            out.append(r)
    return out


def relevancy_matrix(videos: list[EpicRow], sentences: list[EpicRow]) -> np.ndarray:
    """JPoSE relevancy (len(videos), len(sentences)) float64 (one builder for synthetic and real data: henasy/data/relevancy.py)."""
    return jpose_relevancy(
        [r.verb_class for r in videos],
        [r.noun_classes for r in videos],
        [r.verb_class for r in sentences],
        [r.noun_classes for r in sentences],
    )


def write_retrieval(folder: str | Path, val_rows: list[EpicRow]) -> None:
    """``retrieval_annotations/``: test csv (= validation rows), sentence csv, relevancy pkl."""
    folder = Path(folder)
    write_action_csv(folder / "EPIC_100_retrieval_test.csv", val_rows)
    sentences = unique_sentences(val_rows)
    write_csv(
        folder / "EPIC_100_retrieval_test_sentence.csv",
        ("narration_id", "narration"),
        ([r.narration_id, r.narration] for r in sentences),
    )
    write_pickle(
        folder / "relevancy" / "caption_relevancy_EPIC_100_retrieval_test.pkl",
        relevancy_matrix(val_rows, sentences),
    )
