"""Ego4D narration taxonomies: ``narration_{noun,verb}_taxonomy.csv`` → labels and synonym groups.

Format (Ego4D ``v1/annotations``, used by EgoVLP/HelpingHands for the EgoClip ``tag_verb``/``tag_noun``
indices, anchors-models §5.1): columns ``label,group``; the row order is the class index (118 verbs,
582 nouns in Ego4D v1) and ``group`` is a string-encoded list of synonyms (e.g. verb 93 =
``take_(pick,_grab,_get)``). HelpingHands matches caption words against these synonym groups.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from henasy.data.parsing import list_column, nonempty_column, read_table

TAXONOMY_COLUMNS = ("label", "group")


@dataclass
class Taxonomy:
    """Class labels in index order and their synonym groups (``groups[i]`` belongs to ``labels[i]``)."""

    path: Path
    labels: list[str]
    groups: list[list[str]]
    _synonyms: dict[str, int] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.labels)

    def synonym_index(self) -> dict[str, int]:
        """Lower-cased synonym (or label) → class index; the first class listing a word wins."""
        if not self._synonyms:
            for i, (label, group) in enumerate(zip(self.labels, self.groups)):
                for word in [label, *group]:
                    self._synonyms.setdefault(word.strip().lower(), i)
        return self._synonyms


def load_taxonomy(path: str | Path) -> Taxonomy:
    """Read a ``narration_{noun,verb}_taxonomy.csv`` file."""
    table = read_table(path, TAXONOMY_COLUMNS, what="taxonomy csv")
    labels = nonempty_column(table, "label")
    groups = list_column(table, "group", str)
    return Taxonomy(path=table.path, labels=labels, groups=groups)
