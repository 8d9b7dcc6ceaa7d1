"""EGTEA Gaze+ action classes and splits: ``action_idx.txt``, ``{train,test}_split{1,2,3}.txt``.

Formats (LaViLa ``datasets.py`` egtea branch): each ``action_idx.txt`` line is
``<Verb/Noun words> <action_id>``; the class text is every token but the last with ``_`` → space,
lower-cased, and the class index used for scoring is the line order (0-based). Split lines are
``<clip_id> <action_id> <verb_id> <noun_id> [<noun_id> ...]`` (LaViLa uses the first two); the video of a clip
is ``cropped_clips/<first three '-' fields of clip_id>/<clip_id>.mp4``.

What the official files contain (EGTEA Gaze+ ``action_annotation``, readme of Mar 6th 2018): 106 classes
with 1-based action ids in line order; class words with spaces, ``/`` and ``,`` (``Move Around pot 101``,
``Inspect/Read recipe 1``, ``Put trash,trash_container 19``); split lines with one to three noun ids (an
action on several objects: "VerbID (NounID_1, NounID_2)"), all kept in ``EgteaClip.noun_ids``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from henasy.core.errors import DataFormatError
from henasy.data.parsing import check_path_component, parse_int, require_file


@dataclass(frozen=True)
class EgteaClass:
    index: int  # 0-based line order in action_idx.txt (the label used for scoring)
    action_id: int  # the trailing integer on the line (used in the split files)
    text: str  # class text fed to the text encoder


@dataclass(frozen=True)
class EgteaClip:
    clip_id: str
    action_id: int
    class_index: int  # EgteaClass.index of action_id
    verb_id: int | None
    noun_id: int | None  # the first noun id (None when the line has none)
    noun_ids: tuple[int, ...] = ()  # every noun id on the line (an action may involve up to three objects)


def egtea_clip_relpath(clip_id: str) -> str:
    """Video of a clip under ``cropped_clips/``: ``<first three '-' fields>/<clip_id>.mp4``."""
    return f"{'-'.join(clip_id.split('-')[:3])}/{clip_id}.mp4"


def _lines(path: Path) -> list[tuple[int, str]]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DataFormatError(path, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    return [(n, line.strip()) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]


def load_action_index(path: str | Path) -> list[EgteaClass]:
    """Read ``action_idx.txt`` → classes in line order."""
    path = require_file(path, "EGTEA action_idx.txt")
    classes: list[EgteaClass] = []
    seen: dict[int, int] = {}
    for n, line in _lines(path):
        tokens = line.split()
        if len(tokens) < 2:
            raise DataFormatError(
                path, f"cannot parse {line!r}", line=n, expected="'<class words> <action_id>'"
            )
        action_id = parse_int(tokens[-1], path=path, line=n, column="action_id")
        if action_id in seen:
            raise DataFormatError(
                path,
                f"action id {action_id} also on line {seen[action_id]}",
                line=n,
                expected="unique action ids",
            )
        seen[action_id] = n
        text = " ".join(tokens[:-1]).replace("_", " ").lower()
        classes.append(EgteaClass(index=len(classes), action_id=action_id, text=text))
    if not classes:
        raise DataFormatError(path, "no classes", expected="one '<class words> <action_id>' per line")
    return classes


def load_split(path: str | Path, classes: list[EgteaClass]) -> list[EgteaClip]:
    """Read a split file (``test_split1.txt``, ...) → clips with their class index."""
    path = require_file(path, "EGTEA split file")
    index_of = {c.action_id: c.index for c in classes}
    clips = []
    for n, line in _lines(path):
        tokens = line.split()
        if len(tokens) < 2:
            raise DataFormatError(
                path, f"cannot parse {line!r}", line=n, expected="'<clip_id> <action_id> <verb_id> <noun_id>'"
            )
        action_id = parse_int(tokens[1], path=path, line=n, column="action_id")
        if action_id not in index_of:
            raise DataFormatError(
                path,
                f"action id {action_id} is not in action_idx.txt",
                line=n,
                column="action_id",
                expected=f"one of the {len(classes)} action ids of action_idx.txt",
            )
        verb = parse_int(tokens[2], path=path, line=n, column="verb_id") if len(tokens) > 2 else None
        # "VideoName ActionID VerbID (NounID_1, NounID_2)" (the annotation readme): 1-3 noun ids
        # (tavis-siebert/gaze-guided-scene @ 9c7ff08 : data/egtea_gaze/action_annotation/test_split1.txt)
        nouns = tuple(parse_int(t, path=path, line=n, column="noun_id") for t in tokens[3:])
        clip_id = check_path_component(tokens[0], path=path, line=n, column="clip_id")  # names the video file
        noun = nouns[0] if nouns else None
        clips.append(EgteaClip(clip_id, action_id, index_of[action_id], verb, noun, nouns))
    return clips
