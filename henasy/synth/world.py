"""The synthetic world: noun and verb taxonomies, backgrounds, and the held-out test compositions.

Every noun is a distinct combination of shape × colour × texture with a kitchen-object name, so that
narrations read like Ego4D (``#C C takes the cup``) while the pixels carry exactly the information the
name implies. Verbs are motion programs (see ``motion.py``); push/pull, take/put and open/close differ
only in the direction or order of the motion, so a single frame cannot tell them apart (as in
Something-Something-style "temporal" classes). A seeded choice of noun×verb pairs and backgrounds is held
out of every training file and appears only in evaluation sets (compositional generalisation).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SHAPES = ("disc", "ring", "square", "bar", "oval", "triangle", "diamond", "cross")
TEXTURES = ("solid", "stripes", "dots", "checker")
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (214, 40, 40),
    "green": (46, 160, 67),
    "blue": (40, 90, 220),
    "yellow": (236, 204, 40),
    "orange": (240, 128, 24),
    "purple": (130, 60, 180),
    "white": (238, 238, 232),
    "brown": (122, 74, 36),
    "black": (34, 34, 38),
    "cyan": (40, 196, 206),
    "grey": (140, 140, 146),
}

# Instance ids of the hands in the label maps (entities are numbered 1, 2, ... within a video).
HAND_IDS: dict[str, int] = {"left": 100, "right": 101}


@dataclass(frozen=True)
class Noun:
    """An object class: its name, synonyms (the taxonomy group), and its appearance."""

    name: str
    synonyms: tuple[str, ...]
    shape: str
    colour: str
    texture: str
    category: str
    openable: bool = False
    cuttable: bool = False

    @property
    def rgb(self) -> tuple[int, int, int]:
        return COLOURS[self.colour]


@dataclass(frozen=True)
class VerbForm:
    """One surface form of a verb: ``takes`` / ``taking`` / EK100 instance ``take``."""

    third: str
    gerund: str
    instance: str


@dataclass(frozen=True)
class Verb:
    """An action class with its surface forms (the first is the canonical one)."""

    name: str
    forms: tuple[VerbForm, ...]
    category: str
    moment: str  # Ego4D-MQ-style moment label

    @property
    def synonyms(self) -> tuple[str, ...]:
        return tuple(f.instance.replace("-", " ") for f in self.forms)


@dataclass(frozen=True)
class Background:
    """A table-top texture: a name, a base colour and a procedural pattern kind (``background.py``)."""

    name: str
    rgb: tuple[int, int, int]
    pattern: str


def _n(name: str, shape: str, colour: str, texture: str, category: str, *syn: str, **flags: bool) -> Noun:
    return Noun(name, (name, *syn), shape, colour, texture, category, **flags)


NOUNS: tuple[Noun, ...] = (
    _n("cup", "disc", "red", "solid", "crockery", "mug"),
    _n("bowl", "ring", "white", "solid", "crockery"),
    _n("plate", "disc", "white", "dots", "crockery", "dish"),
    _n("knife", "bar", "grey", "solid", "cutlery"),
    _n("spoon", "oval", "grey", "solid", "cutlery"),
    _n("fork", "bar", "white", "stripes", "cutlery"),
    _n("bottle", "oval", "green", "solid", "container", openable=True),
    _n("jar", "square", "orange", "stripes", "container", openable=True),
    _n("box", "square", "brown", "checker", "container", "carton", openable=True),
    _n("lid", "disc", "blue", "stripes", "cookware", "cover"),
    _n("pan", "disc", "black", "solid", "cookware", "skillet"),
    _n("pot", "square", "grey", "dots", "cookware", "saucepan", openable=True),
    _n("tomato", "disc", "red", "dots", "vegetables", cuttable=True),
    _n("carrot", "triangle", "orange", "solid", "vegetables", cuttable=True),
    _n("onion", "oval", "purple", "solid", "vegetables", cuttable=True),
    _n("bread", "square", "brown", "dots", "baked goods", "loaf", cuttable=True),
    _n("sponge", "square", "yellow", "dots", "cleaning"),
    _n("towel", "square", "blue", "checker", "cleaning", "cloth"),
    _n("bag", "triangle", "green", "checker", "container", "pouch", openable=True),
    _n("phone", "bar", "black", "solid", "device", "smartphone"),
    _n("apple", "disc", "green", "solid", "fruit", cuttable=True),
    _n("lemon", "oval", "yellow", "solid", "fruit", cuttable=True),
    _n("scissors", "cross", "grey", "solid", "utensils"),
    _n("brush", "bar", "brown", "stripes", "cleaning"),
    _n("pepper", "diamond", "red", "solid", "vegetables", "capsicum", cuttable=True),
    _n("cheese", "triangle", "yellow", "solid", "dairy", cuttable=True),
    _n("container", "square", "white", "stripes", "container", "tub", openable=True),
    _n("glass", "ring", "cyan", "solid", "crockery", "tumbler"),
    _n("spatula", "bar", "orange", "solid", "cookware", "turner"),
    _n("egg", "oval", "white", "solid", "dairy"),
)


def _v(name: str, category: str, moment: str, *forms: tuple[str, str, str]) -> Verb:
    return Verb(name, tuple(VerbForm(*f) for f in forms), category, moment)


VERBS: tuple[Verb, ...] = (
    _v(
        "take",
        "retrieve",
        "take_/_pick_up_an_object",
        ("takes", "taking", "take"),
        ("picks up", "picking up", "pick-up"),
        ("grabs", "grabbing", "grab"),
    ),
    _v(
        "put",
        "leave",
        "put_/_place_an_object",
        ("puts", "putting", "put"),
        ("places", "placing", "place"),
        ("puts down", "putting down", "put-down"),
    ),
    _v("push", "move", "push_an_object_away", ("pushes", "pushing", "push")),
    _v(
        "pull",
        "move",
        "pull_an_object_closer",
        ("pulls", "pulling", "pull"),
        ("drags", "dragging", "drag"),
    ),
    _v(
        "move",
        "move",
        "move_an_object_sideways",
        ("moves", "moving", "move"),
        ("slides", "sliding", "slide"),
    ),
    _v("open", "access", "open_a_container", ("opens", "opening", "open")),
    _v(
        "close",
        "block",
        "close_a_container",
        ("closes", "closing", "close"),
        ("shuts", "shutting", "shut"),
    ),
    _v(
        "turn",
        "rotate",
        "turn_/_rotate_an_object",
        ("turns", "turning", "turn"),
        ("rotates", "rotating", "rotate"),
    ),
    _v(
        "cut",
        "divide",
        "cut_/_chop_/_slice_food",
        ("cuts", "cutting", "cut"),
        ("slices", "slicing", "slice"),
    ),
    _v("shake", "shake", "shake_an_object", ("shakes", "shaking", "shake")),
    _v(
        "wipe",
        "clean",
        "wipe_/_clean_an_object",
        ("wipes", "wiping", "wipe"),
        ("cleans", "cleaning", "clean"),
    ),
    _v(
        "squeeze",
        "press",
        "squeeze_/_press_an_object",
        ("squeezes", "squeezing", "squeeze"),
        ("presses", "pressing", "press"),
    ),
)

VERB_INDEX: dict[str, int] = {v.name: i for i, v in enumerate(VERBS)}
NOUN_INDEX: dict[str, int] = {n.name: i for i, n in enumerate(NOUNS)}

# Verbs whose held-out pairs can always be staged in an evaluation video (no precondition that another
# held-out pair could block); see scene.py.
HOLDABLE_VERBS = ("take", "push", "pull", "turn", "shake", "wipe", "squeeze")

# Pairs of verbs that differ only in the direction or order of the same motion.
MIRROR_VERBS = (("take", "put"), ("push", "pull"), ("open", "close"))

BACKGROUNDS: tuple[Background, ...] = (
    Background("wooden table", (150, 105, 65), "grain"),
    Background("marble counter", (205, 204, 198), "veins"),
    Background("tiled floor", (182, 170, 150), "tiles"),
    Background("cutting board", (96, 142, 96), "speckle"),
    Background("gingham tablecloth", (128, 146, 204), "gingham"),
    Background("steel sink", (160, 165, 172), "brushed"),
    Background("dark stone", (72, 72, 78), "speckle"),
    Background("linoleum", (212, 190, 150), "blotches"),
)


def verb_allowed(noun: Noun, verb: Verb) -> bool:
    """Affordances: only containers open/close, only food is cut."""
    if verb.name in ("open", "close"):
        return noun.openable
    if verb.name == "cut":
        return noun.cuttable
    return True


@dataclass(frozen=True)
class World:
    """The taxonomy plus this seed's held-out compositions."""

    nouns: tuple[Noun, ...]
    verbs: tuple[Verb, ...]
    backgrounds: tuple[Background, ...]
    held_out_pairs: tuple[tuple[int, int], ...]  # (noun index, verb index)
    held_out_backgrounds: tuple[int, ...]

    @property
    def train_backgrounds(self) -> tuple[int, ...]:
        return tuple(i for i in range(len(self.backgrounds)) if i not in self.held_out_backgrounds)

    def is_held_out(self, noun: int, verb: int) -> bool:
        return (noun, verb) in self.held_out_pairs

    def describe_held_out(self) -> dict:
        """JSON-ready description for ``synth_manifest.json``."""
        return {
            "noun_verb_pairs": [
                {"noun": self.nouns[n].name, "noun_index": n, "verb": self.verbs[v].name, "verb_index": v}
                for n, v in self.held_out_pairs
            ],
            "backgrounds": [self.backgrounds[b].name for b in self.held_out_backgrounds],
        }


def build_world(
    rng: np.random.Generator, num_held_out_pairs: int, num_held_out_backgrounds: int = 2
) -> World:
    """Choose the held-out noun×verb pairs (each noun at most once) and backgrounds from ``rng``."""
    holdable = [VERB_INDEX[name] for name in HOLDABLE_VERBS]
    nouns = rng.permutation(len(NOUNS))[:num_held_out_pairs]
    verbs = [holdable[i % len(holdable)] for i in rng.permutation(len(holdable))]
    pairs = tuple(sorted((int(n), int(verbs[k % len(verbs)])) for k, n in enumerate(nouns)))
    backgrounds = tuple(sorted(int(b) for b in rng.permutation(len(BACKGROUNDS))[:num_held_out_backgrounds]))
    return World(NOUNS, VERBS, BACKGROUNDS, pairs, backgrounds)


def taxonomy_label(name: str, synonyms: tuple[str, ...]) -> str:
    """Ego4D taxonomy label style: ``take_(pick_up,_grab)``, or just the name without synonyms."""
    others = [s.replace(" ", "_") for s in synonyms if s != name]
    return f"{name}_({',_'.join(others)})" if others else name
