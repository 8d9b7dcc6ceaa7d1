"""Ego4D narration taxonomies: ``narration_{noun,verb}_taxonomy.csv`` → labels and synonym groups.

Format (Ego4D ``v1/annotations``, used by EgoVLP/HelpingHands for the EgoClip ``tag_verb``/``tag_noun``
indices): columns ``label,group``; the row order is the class index (118 verbs,
582 nouns in Ego4D v1) and ``group`` is a string-encoded list of synonyms (e.g. verb 93 =
``take_(pick,_grab,_get)``). HelpingHands matches caption words against these synonym groups.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from henasy.data.parsing import list_column, nonempty_column, read_table

TAXONOMY_COLUMNS = ("label", "group")


def noun_text(label: str) -> str:
    """Taxonomy label → embedded noun text: ``bag_(pouch,_sack)`` → ``bag``, ``tap_water`` → ``tap water``.

    The one definition HENASY (NEC's noun vocabulary) and HelpingHands (its noun features) both use. Of the
    two copies this replaced, HENASY's was kept: the part before the synonym list with ``_`` as spaces,
    falling back to the label itself when that is empty. HelpingHands' copy also lower-cased the text, a
    no-op on Ego4D's labels (all lower case in ``narration_noun_taxonomy.csv``, the format read above).
    """
    return label.split("_(")[0].replace("_", " ").strip() or label


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
