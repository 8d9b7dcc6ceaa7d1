"""Text of the synthetic annotations: Ego4D narrations, their verb phrases, EPIC narrations, NLQ queries.

Ego4D narrations are written from the camera wearer's view, ``#C C <verb> <det> <noun>`` (e.g.
``#C C picks up the cup``, ``#C C puts a knife next to the plate``, two actions joined with ``and``); the
verb phrases are the gerund forms HENASY's VEC loss aligns with entities (``taking the cup``); EPIC-100
narrations are imperative and article-free (``take cup``, ``put knife next to plate``), with the parsed
verb instance (``pick-up``) and noun list in the csv columns.
"""

from __future__ import annotations

from henasy.synth.scene import Action, Step, VideoScript
from henasy.synth.world import NOUNS, VERBS


def _noun(script: VideoScript, entity_id: int, variant: int = 0) -> str:
    """The entity's noun name; variant k > 0: the k-th synonym after it, cyclically (paraphrases)."""
    noun = NOUNS[script.entity(entity_id).noun]
    if not variant:
        return noun.name
    names = noun.synonyms  # the taxonomy group, the name among them
    return names[(names.index(noun.name) + variant) % len(names)]


def _place(script: VideoScript, step: Step, article: str = "the", variant: int = 0) -> str:
    if not step.ref:
        return ""
    return f" next to {article} {_noun(script, step.ref, variant)}".replace("  ", " ")


def ego4d_narration(script: VideoScript, action: Action, variant: int = 0) -> str:
    """``#C C takes the cup`` / ``#C C takes the cup and pushes a knife``.

    ``variant`` k > 0 re-words it as a paraphrase (henasy/synth/rephrase.py): each verb's k-th next surface form
    (``takes`` → ``picks up``) and each noun's k-th next synonym (``cup`` → ``mug``).
    """
    parts = []
    for step in action.steps:
        forms = VERBS[step.verb].forms
        form = forms[(step.form + variant) % len(forms)]
        noun = _noun(script, step.entity, variant)
        parts.append(f"{form.third} {action.article} {noun}{_place(script, step, variant=variant)}")
    return "#C C " + " and ".join(parts)


def verb_phrases(script: VideoScript, action: Action) -> list[str]:
    """One gerund phrase per step: ``["taking the cup", "pushing a knife"]``."""
    out = []
    for step in action.steps:
        form = VERBS[step.verb].forms[step.form]
        out.append(f"{form.gerund} {action.article} {_noun(script, step.entity)}{_place(script, step)}")
    return out


def epic_narration(script: VideoScript, step: Step) -> str:
    """``take cup`` / ``put knife next to plate`` (imperative, no articles)."""
    form = VERBS[step.verb].forms[step.form]
    verb = form.instance.replace("-", " ")
    place = f" next to {_noun(script, step.ref)}" if step.ref else ""
    return f"{verb} {_noun(script, step.entity)}{place}"


def step_nouns(script: VideoScript, step: Step) -> list[int]:
    """Noun indices a step mentions: the object, then the reference place if any."""
    nouns = [script.entity(step.entity).noun]
    if step.ref:
        nouns.append(script.entity(step.ref).noun)
    return nouns


def action_classes(script: VideoScript, action: Action) -> tuple[list[int], list[int]]:
    """Ego4D ``tag_verb`` / ``tag_noun`` of a narration: verb and noun taxonomy indices in mention order."""
    verbs, nouns = [], []
    for step in action.steps:
        if step.verb not in verbs:
            verbs.append(step.verb)
        for n in step_nouns(script, step):
            if n not in nouns:
                nouns.append(n)
    return verbs, nouns


def egtea_class_text(verb: int, noun: int) -> str:
    """EGTEA ``action_idx.txt`` class words: ``Take cup`` (spaces in a noun become ``_``)."""
    return f"{VERBS[verb].name.capitalize()} {NOUNS[noun].name.replace(' ', '_')}"


# Ego4D NLQ v1 templates used here (a subset of the 13 official ones).
NLQ_PUT = "Place: Where did I put X?"
NLQ_WHAT = "Objects: What X did I Y?"
NLQ_STATE = "Objects: State of an object"


def nlq_query(script: VideoScript, step: Step, *, verb_unique: bool) -> tuple[str, str, str, str]:
    """(template, query, slot_x, verb_x) asking for the moment of ``step``."""
    verb = VERBS[step.verb]
    noun = _noun(script, step.entity)
    if verb.name == "put":
        return NLQ_PUT, f"Where did I put the {noun}?", noun, "put"
    if verb_unique:
        return NLQ_WHAT, f"What object did I {verb.name}?", "object", verb.name
    return NLQ_STATE, f"Did I {verb.name} the {noun}?", noun, verb.name
