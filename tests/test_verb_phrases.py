"""Tests for ``henasy/model/verb_phrases.py``: the rule-based Ego4D verb-phrase extractor, the JSON source, and the
extractor's exact-match accuracy on the synthetic ground truth (``ego4d/verb_phrases.json``)."""

from __future__ import annotations

import pytest

from henasy.data.layout import DatasetLayout
from henasy.data.verb_phrases import load_verb_phrases
from henasy.model.verb_phrases import (
    VerbPhraseSource,
    base_form,
    extract_verb_phrases,
    extraction_accuracy,
    gerund,
    load_verb_phrase_source,
)


@pytest.mark.parametrize(
    ("third", "base"),
    [
        ("takes", "take"),
        ("carries", "carry"),
        ("unties", "untie"),
        ("pushes", "push"),
        ("touches", "touch"),
        ("fixes", "fix"),
        ("goes", "go"),
        ("has", "have"),
        ("closes", "close"),
        ("squeezes", "squeeze"),
        ("presses", "press"),
        ("press", "press"),
    ],
)
def test_base_form(third: str, base: str) -> None:
    assert base_form(third) == base


@pytest.mark.parametrize(
    ("base", "ing"),
    [
        ("take", "taking"),
        ("cut", "cutting"),
        ("stir", "stirring"),
        ("open", "opening"),
        ("begin", "beginning"),
        ("tie", "tying"),
        ("see", "seeing"),
        ("dye", "dyeing"),
        ("fix", "fixing"),
        ("play", "playing"),
        ("eat", "eating"),
        ("quit", "quitting"),
        ("panic", "panicking"),
        ("unzip", "unzipping"),
        ("visit", "visiting"),
    ],
)
def test_gerund_spelling_rules(base: str, ing: str) -> None:
    assert gerund(base) == ing


@pytest.mark.parametrize(
    ("narration", "phrases"),
    [
        ("#C C picks up the knife from the table", ["picking up the knife from the table"]),
        ("#C C puts the cup down.", ["putting the cup down"]),
        ("#O man X holds a phone", ["holding a phone"]),
        ("#O The woman Y picks a spoon from the tray", ["picking a spoon from the tray"]),
        ("#C C picks #unsure from the floor", ["picking from the floor"]),
        ("#C C is holding a phone", ["holding a phone"]),
        ("#C C carefully cuts the onion", ["cutting the onion"]),
        (
            "#C C puts down a knife next to the plate and takes the cup",
            ["putting down a knife next to the plate", "taking the cup"],
        ),
        ("#C C moves the tray, and picks a fork", ["moving the tray", "picking a fork"]),
        ("#C C carries the bag and then opens the door", ["carrying the bag", "opening the door"]),
        ("#C C picks the cup and plates", ["picking the cup and plates"]),  # nouns joined by "and"
        ("#C C shuts the box and drags a pen", ["shutting the box", "dragging a pen"]),
    ],
)
def test_extract_ego4d_narrations(narration: str, phrases: list[str]) -> None:
    assert extract_verb_phrases(narration) == phrases


def test_source_lookup_fallback_and_strict() -> None:
    source = VerbPhraseSource({"#C C opens the jar": ["opening the jar lid"]})
    assert source("#C C opens the jar") == ["opening the jar lid"]  # the mapping wins
    assert source("#C C takes the cup") == ["taking the cup"]  # not in the file: rules
    assert (source.lookups, source.misses, source.kind) == (2, 1, "json+rules")
    strict = VerbPhraseSource({}, fallback=False)
    with pytest.raises(KeyError, match="takes the cup"):
        strict("#C C takes the cup")
    assert VerbPhraseSource().kind == "rules"


def test_extractor_accuracy_on_synthetic_ground_truth(synth_tiny) -> None:
    path = DatasetLayout(synth_tiny).verb_phrases_json
    gold = load_verb_phrases(path)
    report = extraction_accuracy(gold)
    print(f"rule-based verb phrases: {report.correct}/{report.total} exact ({report.accuracy:.1%})")
    assert report.total > 0
    assert report.accuracy >= 0.95, report.errors
    source = load_verb_phrase_source(path)
    first = next(iter(gold))
    assert source(first) == gold[first] and source.misses == 0
