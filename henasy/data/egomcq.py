"""EgoMCQ: ``egomcq.json`` → a list of typed multiple-choice items.

Format (EgoVLP): a dict keyed ``"0".."N-1"``; each item has ``answer`` (index of the
correct choice), ``query`` (a clip dict), ``choices`` (``"0".."4"`` → clip dicts) and ``types``
(**1 = inter-video, 2 = intra-video**). Clip dicts carry ``video_uid``, ``clip_start``, ``clip_end``,
``clip_text`` (+ ``tag_verb``/``tag_noun`` and extras, kept optional). Times may be numbers or numeric
strings (LaViLa wraps them in ``float()``); they are read as EgoVLP reads them (``egovlp_clip_bounds``:
negative → 0, a reversed pair in order), the same rule as for ``egoclip.csv``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from henasy.data.egoclip import egovlp_clip_bounds
from henasy.data.parsing import JsonNode, read_json

INTER_VIDEO = 1
INTRA_VIDEO = 2
MCQ_TYPE_NAMES = {INTER_VIDEO: "inter-video", INTRA_VIDEO: "intra-video"}


@dataclass(frozen=True)
class MCQClip:
    """One clip of an EgoMCQ item (the query or a choice)."""

    video_uid: str
    clip_start: float
    clip_end: float
    clip_text: str
    tag_verb: tuple[int, ...] | None = None
    tag_noun: tuple[int, ...] | None = None


@dataclass(frozen=True)
class MCQItem:
    """One EgoMCQ question: pick, among ``choices``, the clip that matches ``query.clip_text``."""

    key: str  # the item's key in egomcq.json ("0".."N-1")
    answer: int  # index into choices
    query: MCQClip
    choices: tuple[MCQClip, ...]
    type: int  # 1 = inter-video, 2 = intra-video


def _clip(node: JsonNode) -> MCQClip:
    # negative → 0, reversed → swapped (showlab/EgoVLP @ 928406c : data_loader/EgoClip_EgoMCQ_dataset.py)
    bounds = egovlp_clip_bounds(
        node["clip_start"].as_float(allow_string=True), node["clip_end"].as_float(allow_string=True)
    )
    start, end = float(bounds[0]), float(bounds[1])
    tags = {}
    for name in ("tag_verb", "tag_noun"):
        child = node.get(name)
        tags[name] = tuple(child.as_int_list(allow_string=True)) if child is not None else None
    return MCQClip(
        video_uid=node["video_uid"].as_path_component(),
        clip_start=start,
        clip_end=end,
        clip_text=node["clip_text"].as_str(nonempty=True),
        **tags,
    )


def load_egomcq(path: str | Path) -> list[MCQItem]:
    """Read ``egomcq.json`` → items in key order (``"0"``, ``"1"``, ...)."""
    root = read_json(path, "egomcq.json")
    items = []
    for key, node in root.items():
        choices_node = node["choices"]
        choice_keys = sorted(
            choices_node.as_dict(), key=lambda k: (not k.isdigit(), int(k) if k.isdigit() else 0)
        )
        if choice_keys != [str(i) for i in range(len(choice_keys))] or not choice_keys:
            choices_node.fail(f"choice keys are {choice_keys}", expected='keys "0", "1", ... without gaps')
        choices = tuple(_clip(choices_node[k]) for k in choice_keys)
        answer = node["answer"].as_int(allow_string=True)
        if not 0 <= answer < len(choices):
            node["answer"].fail(f"answer {answer} is not a choice index", expected=f"0..{len(choices) - 1}")
        mcq_type = node["types"].as_int(allow_string=True)
        if mcq_type not in MCQ_TYPE_NAMES:
            node["types"].fail(f"unknown type {mcq_type}", expected="1 (inter-video) or 2 (intra-video)")
        items.append(
            MCQItem(key=key, answer=answer, query=_clip(node["query"]), choices=choices, type=mcq_type)
        )
    items.sort(key=lambda it: (not it.key.isdigit(), int(it.key) if it.key.isdigit() else 0, it.key))
    return items
