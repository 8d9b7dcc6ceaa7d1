"""Verb phrases of narrations for HENASY's verb–entities contrastive loss (VEC, paper §4.4, Appendix C).

The paper asks Llama-2 for "action verb phrases, which are always starting by a verb-ing" of each
narration. Two sources are offered here:

(a) a precomputed JSON file ``{narration: [phrase, ...]}`` — the format such an LLM pass writes and the one
    of ``ego4d/verb_phrases.json`` (read by ``henasy.data.verb_phrases.load_verb_phrases``);
(b) ``extract_verb_phrases``, a rule-based extractor for Ego4D-style narrations, the default:
    ``#C C picks up the knife from the table`` → ``["picking up the knife from the table"]``.

Rules of (b): the ``#C``/``#O`` markers and the subject that follows them (``C``, ``man X``, ``the woman``)
are dropped, ``#unsure`` (and any other ``#tag``) tokens are removed; the remainder is split into actions
at ``and`` / ``,`` / ``then`` when the next word is a third-person verb; in each action the verb is turned
into its -ing form (third person → base form → gerund with English spelling rules: silent-e drop
``take → taking``, ``-ie → -ying``, final-consonant doubling of stressed CVC endings ``cut → cutting``,
``begin → beginning``, ``-c → -cking``); phrasal-verb particles stay where they are (``picks up the cup`` →
``picking up the cup``, ``puts the cup down`` → ``putting the cup down``); ``is``/``are`` + -ing keeps the
-ing verb; a leading ``-ly`` adverb is dropped. The rest of the words are kept verbatim.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

# Common Ego4D narration verbs (base forms) that decide whether a word after "and"/"," starts an action.
KNOWN_VERBS = frozenset(
    """
    adjust arrange attach begin bend bite blow break bring brush buy carry catch check chop clean clear climb close
    collect cook count cover crack cross cut dance dig dip drag draw dress drink drive drop dry dust eat
    empty enter examine fetch fill fix flip fold follow fry get give go grab grate grind hammer hand hang
    have help hit hold hook keep insert inspect iron jump kick knead knock lay lean leave let lift light load look loosen lower
    make mark measure mix move nod open operate pack paint pass peel pick place plant play plug point pour
    press pull pump push put raise reach read release remove rinse roll rotate rub scoop scrape scratch
    screw scroll scrub search see separate serve set sew shake shift shut sit slice slide smell smooth
    sort spin split spray spread sprinkle squeeze squat stand start step stick stir stop store straighten
    stretch strike sweep swing switch take talk tap taste tear throw tie tilt toss touch transfer trim try
    turn twist type unfold unlock unplug untie unwrap use wait walk wash watch wear weigh wipe wrap write zip
    """.split()
)
THIRD_PERSON_IRREGULAR = {"has": "have", "does": "do", "goes": "go", "is": "be", "undoes": "undo"}
IE_VERBS = frozenset({"tie", "die", "lie", "untie", "vie"})  # ties → tie (not "ty")
OE_KEEP_E = frozenset({"hoes", "shoes", "toes", "tiptoes"})  # hoes → hoe (goes → go is irregular above)
DOUBLE_FINAL = frozenset(  # multi-syllable verbs stressed on the last syllable: begin → beginning
    "admit begin commit compel control equip forget occur omit patrol permit prefer refer regret submit "
    "transfer upset unwrap unplug unzip rebut".split()
)
C_TO_CK = frozenset({"panic", "picnic", "mimic", "traffic"})  # panic → panicking
SUBJECT_WORDS = frozenset(
    "the a an another one man woman lady boy girl person child kid baby guy men women people someone "
    "somebody friend worker player cook chef".split()
)
SPLIT_WORDS = ("and", "then", ",")
FOLLOWERS = frozenset(  # words that typically follow a verb (object determiners, particles, prepositions)
    "the a an his her its their my your some it them him up down on off in out into onto to from with at "
    "over around back away".split()
)
VOWELS = set("aeiou")
_TAG_RE = re.compile(r"#\w+")


def base_form(verb: str) -> str:
    """Third-person singular → base form: ``takes → take``, ``carries → carry``, ``pushes → push``."""
    word = verb.lower()
    if word in THIRD_PERSON_IRREGULAR:
        return THIRD_PERSON_IRREGULAR[word]
    if not word.endswith("s") or word.endswith("ss") or len(word) < 3:
        return word
    if word.endswith("ies"):
        return word[:-1] if word[:-1] in IE_VERBS else word[:-3] + "y"
    if word.endswith("oes"):
        return word[:-1] if word in OE_KEEP_E else word[:-2]
    if word.endswith(("sses", "shes", "ches", "xes", "zzes")):
        return word[:-2]
    return word[:-1]


def _syllables(word: str) -> int:
    """Vowel groups in ``word`` ("qu" counts as a consonant; a final silent e is ignored by callers)."""
    return len(re.findall(r"[aeiouy]+", word.replace("qu", "q")))


def _ends_cvc(word: str) -> bool:
    """Consonant–single vowel–consonant ending (not w, x, y), "qu" treated as one consonant."""
    w = word.replace("qu", "q")
    return (
        len(w) >= 3
        and w[-1] not in VOWELS
        and w[-1] not in "wxy"
        and w[-2] in VOWELS
        and (w[-3] not in VOWELS)
    )


def gerund(base: str) -> str:
    """Base form → -ing form with English spelling rules (``take → taking``, ``cut → cutting``, ``tie → tying``)."""
    word = base.lower()
    if word in ("be", "see", "flee", "free", "agree"):
        return word + "ing"
    if word.endswith("ie"):
        return word[:-2] + "ying"
    if word.endswith("e") and not word.endswith(("ee", "ye", "oe")) and len(word) > 2:
        return word[:-1] + "ing"
    if word in C_TO_CK:
        return word + "king"
    if _ends_cvc(word):
        stem = word[2:] if word.startswith(("un", "re")) and _syllables(word[2:]) == 1 else word
        if word in DOUBLE_FINAL or (_syllables(stem) == 1 and _ends_cvc(stem)):
            return word + word[-1] + "ing"
    return word + "ing"


def looks_like_verb(word: str, following: str | None) -> bool:
    """Is ``word`` (the token after "and"/","/"then") a third-person verb that starts a new action?"""
    w = word.lower()
    if w in THIRD_PERSON_IRREGULAR:
        return True
    if not w.endswith("s") or w.endswith("ss") or len(w) < 3:
        return False
    if base_form(w) in KNOWN_VERBS:
        return True
    return following is not None and (following.lower() in FOLLOWERS or following.lower().endswith("ing"))


def _strip_subject(tokens: list[str]) -> list[str]:
    """Drop the subject at the start: ``C``, ``man X``, ``the woman Y`` … (single letters in any case)."""
    i = 0
    while i < len(tokens) - 1 and (
        (len(tokens[i]) == 1 and tokens[i].isalpha()) or tokens[i].lower() in SUBJECT_WORDS
    ):
        i += 1
    return tokens[i:]


def _split_actions(tokens: list[str]) -> list[list[str]]:
    """Split at "and" / "," / "then" (or "and then") when the next word is a third-person verb."""
    actions, current, i = [], [], 0
    while i < len(tokens):
        j = i
        while j < len(tokens) and tokens[j].lower() in SPLIT_WORDS:
            j += 1
        if j > i and current and j < len(tokens):
            following = tokens[j + 1] if j + 1 < len(tokens) else None
            if looks_like_verb(tokens[j], following):
                actions.append(current)
                current, i = [], j
                continue
        current.append(tokens[i])
        i += 1
    if current:
        actions.append(current)
    return actions


def _phrase(action: list[str]) -> str | None:
    """One action's tokens → its -ing phrase (None when nothing is left)."""
    words = [w for w in action if w != ","]
    if len(words) > 1 and words[0].lower().endswith("ly") and words[0].lower() not in KNOWN_VERBS:
        words = words[1:]  # "carefully cuts" → "cuts"
    if not words:
        return None
    head = words[0].lower()
    if head in ("is", "are") and len(words) > 1 and words[1].lower().endswith("ing"):
        words = words[1:]
    elif not head.endswith("ing"):
        words = [gerund(base_form(head)), *words[1:]]
    else:
        words = [head, *words[1:]]
    return " ".join(words).strip(" .,;:")


def extract_verb_phrases(narration: str) -> list[str]:
    """Rule-based verb phrases of an Ego4D narration (module docstring): ``#C C picks up the knife and
    cuts the onion`` → ``["picking up the knife", "cutting the onion"]``."""
    text = narration.strip()
    starts_with_marker = bool(re.match(r"\s*#[CcOo]\b", text))
    text = _TAG_RE.sub(" ", text)  # #C, #O, #unsure, #summary … markers
    text = text.replace(",", " , ").rstrip(" .;:!?")
    tokens = text.split()
    if starts_with_marker or (tokens and len(tokens[0]) == 1 and tokens[0].isupper()):
        tokens = _strip_subject(tokens)
    phrases = [_phrase(action) for action in _split_actions(tokens)]
    return [p for p in phrases if p]


@dataclass
class VerbPhraseSource:
    """Narration → verb phrases: a precomputed mapping (``verb_phrases.json``) and/or the rule-based extractor.

    With a mapping, narrations it lacks fall back to the extractor when ``fallback`` (counted in ``misses``);
    without fallback they raise ``KeyError`` naming the narration. Without a mapping every narration goes
    through the extractor.
    """

    mapping: Mapping[str, list[str]] | None = None
    fallback: bool = True
    extractor: Callable[[str], list[str]] = extract_verb_phrases
    lookups: int = 0
    misses: int = 0
    _seen_misses: list[str] = field(default_factory=list, repr=False)

    @property
    def kind(self) -> str:
        return "rules" if self.mapping is None else "json" + ("+rules" if self.fallback else "")

    def __call__(self, narration: str) -> list[str]:
        self.lookups += 1
        if self.mapping is None:
            return self.extractor(narration)
        found = self.mapping.get(narration)
        if found is None:
            found = self.mapping.get(narration.strip())
        if found is not None:
            return list(found)
        self.misses += 1
        if len(self._seen_misses) < 5:
            self._seen_misses.append(narration)
        if not self.fallback:
            raise KeyError(f"narration {narration!r} is not in the verb-phrase file and fallback is off")
        return self.extractor(narration)


def load_verb_phrase_source(path: str | Path | None, *, fallback: bool = True) -> VerbPhraseSource:
    """A source reading ``path`` (``verb_phrases.json`` format), or the rule-based extractor for ``None``."""
    if path is None:
        return VerbPhraseSource()
    from henasy.data.verb_phrases import load_verb_phrases

    return VerbPhraseSource(load_verb_phrases(path), fallback=fallback)


@dataclass
class ExtractionReport:
    """Exact-match accuracy of extracted phrase lists against ground truth."""

    correct: int
    total: int
    errors: list[tuple[str, list[str], list[str]]]  # (narration, expected, extracted), first few

    @property
    def accuracy(self) -> float:
        return self.correct / self.total if self.total else 0.0


def extraction_accuracy(
    gold: Mapping[str, list[str]],
    extractor: Callable[[str], list[str]] = extract_verb_phrases,
    keep_errors: int = 10,
) -> ExtractionReport:
    """Share of narrations whose extracted phrase list equals the ground-truth list exactly (order included)."""
    correct, errors = 0, []
    for narration, expected in gold.items():
        got = extractor(narration)
        if got == list(expected):
            correct += 1
        elif len(errors) < keep_errors:
            errors.append((narration, list(expected), got))
    return ExtractionReport(correct, len(gold), errors)
