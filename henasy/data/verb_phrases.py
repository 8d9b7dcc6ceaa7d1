"""Verb phrases per narration: ``verb_phrases.json`` → ``{clip_text: [phrase, ...]}``.

HENASY's verb–entities contrastive loss (VEC, paper §3.3) aligns entity tokens with verb phrases that an
LLM extracts from each narration. The file maps a narration ``clip_text`` to its list of verb phrases,
the format such an LLM pass writes (henasy/data/layout.py); the synthetic generator writes ground truth in it.
"""

from __future__ import annotations

from pathlib import Path

from henasy.data.parsing import read_json


def load_verb_phrases(path: str | Path) -> dict[str, list[str]]:
    """Read ``verb_phrases.json``; every value must be a list of non-empty strings."""
    root = read_json(path, "verb_phrases.json")
    out: dict[str, list[str]] = {}
    for text, node in root.items():
        out[text] = [e.as_str(nonempty=True) for e in node.elements()]
    return out
