"""Sampling a video's script: its entities on the table and the consecutive actions performed on them.

A video is a script of actions on 2–5 entities; each action has one step (or two, done by both hands at
once: ``#C C takes the cup and pushes the knife``). The sampler tracks each entity's state (where it is,
held near the camera or on the table, open, cut) so that every step is physically consistent (put only
what was taken, close only what is open, ...). Training scripts never use a held-out noun×verb pair;
evaluation scripts are made to contain the pairs they are given. All randomness comes from the ``rng``
passed in (one ``numpy.random.Generator`` per video, derived from the dataset seed).
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field, replace

import numpy as np

from henasy.synth.world import NOUNS, VERB_INDEX, VERBS, World, verb_allowed


@dataclass(frozen=True)
class Geometry:
    """Frame size and the stage laid out around it (pixels; the canvas is larger than the frame)."""

    width: int
    height: int

    @property
    def margin_x(self) -> int:
        return round(0.25 * self.width)

    @property
    def margin_y(self) -> int:
        return round(0.25 * self.height)

    @property
    def canvas_shape(self) -> tuple[int, int]:
        return self.height + 2 * self.margin_y, self.width + 2 * self.margin_x

    @property
    def radius(self) -> float:
        return 0.072 * self.width

    @property
    def table_box(self) -> tuple[float, float, float, float]:
        """Where entities rest, canvas coordinates (x0, y0, x1, y1)."""
        w, h, mx, my = self.width, self.height, self.margin_x, self.margin_y
        return mx + 0.18 * w, my + 0.24 * h, mx + 0.82 * w, my + 0.68 * h

    def slot_xy(self, slot: str) -> tuple[float, float]:
        """Screen position of an object held in the ``left``/``right`` slot."""
        return (0.28 if slot == "left" else 0.72) * self.width, 0.9 * self.height


@dataclass(frozen=True)
class Entity:
    entity_id: int  # 1-based instance id (the value in the label maps)
    noun: int
    x: float  # initial canvas position, pixels
    y: float
    radius: float
    angle: float


@dataclass(frozen=True)
class Step:
    """One verb applied by one hand to one entity."""

    verb: int
    entity: int  # entity id
    hand: str  # "left" | "right"
    form: int  # index of the verb's surface form used in the narration
    ref: int = 0  # entity id named as the place ("next to the plate"), 0 if none
    target: tuple[float, float] = (0.0, 0.0)  # canvas target (put/move/push/pull) or screen slot (take)
    turn: float = 0.0  # radians (turn)


@dataclass(frozen=True)
class Action:
    """A narrated action: one or two simultaneous steps over [start, end] seconds."""

    index: int
    steps: tuple[Step, ...]
    start: float
    end: float
    narration_time: float
    article: str  # "the" | "a"


@dataclass(frozen=True)
class VideoScript:
    uid: str
    dataset: str  # "ego4d" | "ek100" | "egtea"
    split: str  # "train" | "eval"
    background: int
    skin: tuple[int, int, int]
    sleeve: tuple[int, int, int]
    entities: tuple[Entity, ...]
    actions: tuple[Action, ...]
    num_frames: int
    fps: int
    render_seed: tuple[int, ...]  # SeedSequence entropy of the renderer's own stream

    @property
    def duration(self) -> float:
        return self.num_frames / self.fps

    def entity(self, entity_id: int) -> Entity:
        return self.entities[entity_id - 1]


@dataclass
class _State:
    x: float
    y: float
    near: str | None = None  # slot name while held
    opened: bool = False
    cut: bool = False


@dataclass
class ScriptParams:
    """What a dataset asks of one video's script."""

    num_actions: int
    num_entities: tuple[int, int] = (2, 5)  # inclusive range
    double_prob: float = 0.0  # probability that an action has two steps (Ego4D only)
    duration: tuple[float, float] = (1.4, 2.8)  # seconds of one action
    gap: tuple[float, float] = (0.15, 0.6)  # seconds between actions
    decimals: int = 3  # rounding of the action times
    forced: tuple[tuple[int, int], ...] = ()  # (noun, verb) pairs this script must contain
    allow_held_out: bool = False
    backgrounds: tuple[int, ...] = field(default_factory=tuple)


SKINS = ((224, 172, 140), (198, 134, 96), (141, 85, 54), (240, 196, 170), (176, 112, 78))
SLEEVES = ((40, 52, 90), (60, 60, 64), (150, 40, 44), (36, 96, 70), (200, 200, 196), (96, 70, 120))


def random_uid(rng: np.random.Generator) -> str:
    """An Ego4D-style video/clip uid (a version-4 UUID drawn from ``rng``)."""
    return str(uuid.UUID(bytes=rng.bytes(16), version=4))


class _Sampler:
    def __init__(self, world: World, geo: Geometry, params: ScriptParams, rng: np.random.Generator) -> None:
        self.world, self.geo, self.params, self.rng = world, geo, params, rng
        self.states: list[_State] = []
        self.nouns: list[int] = []
        self.radius = 0.0

    # ------------------------------------------------------------------ placement
    def _free_spot(
        self, exclude: int = -1, near_xy: tuple[float, float] | None = None
    ) -> tuple[float, float]:
        x0, y0, x1, y1 = self.geo.table_box
        spacing = 2.3 * self.radius
        best, best_d = (0.5 * (x0 + x1), 0.5 * (y0 + y1)), -1.0
        for _ in range(30):
            if near_xy is None:
                x, y = self.rng.uniform(x0, x1), self.rng.uniform(y0, y1)
            else:
                side = self.rng.choice([-1.0, 1.0])
                x = float(np.clip(near_xy[0] + side * spacing, x0, x1))
                y = float(np.clip(near_xy[1] + self.rng.uniform(-0.3, 0.3) * self.radius, y0, y1))
            others = [(s.x, s.y) for i, s in enumerate(self.states) if i != exclude and s.near is None]
            d = min((math.hypot(x - a, y - b) for a, b in others), default=1e9)
            if d >= spacing:
                return float(x), float(y)
            if d > best_d:
                best, best_d = (float(x), float(y)), d
        return best

    def entities(self) -> list[Entity]:
        lo, hi = self.params.num_entities
        count = int(self.rng.integers(lo, hi + 1))
        forced_nouns = list(dict.fromkeys(n for n, _ in self.params.forced))
        count = max(count, len(forced_nouns))
        pool = [n for n in self.rng.permutation(len(NOUNS)).tolist() if n not in forced_nouns]
        self.nouns = (forced_nouns + pool)[:count]
        self.nouns = [self.nouns[i] for i in self.rng.permutation(count)]
        self.radius = self.geo.radius * 1.1
        out = []
        for k, noun in enumerate(self.nouns):
            x, y = self._free_spot(exclude=k)
            self.states.append(_State(x, y))
            radius = self.geo.radius * float(self.rng.uniform(0.9, 1.1))
            angle = float(self.rng.choice([0.0, 0.0, 0.5 * math.pi, 0.25 * math.pi]))
            out.append(Entity(k + 1, noun, x, y, radius, angle))
        return out

    # ------------------------------------------------------------------ validity
    def _hand_for(self, k: int) -> str:
        s = self.states[k]
        if s.near is not None:
            return s.near
        return "left" if s.x - self.geo.margin_x < 0.5 * self.geo.width else "right"

    def _free_slot(self, k: int, taken: set[str]) -> str | None:
        used = {s.near for s in self.states if s.near is not None} | taken
        first = self._hand_for(k)
        for slot in (first, "right" if first == "left" else "left"):
            if slot not in used:
                return slot
        return None

    def _push_distance(self) -> float:
        return 0.15 * self.geo.height

    def valid(self, k: int, verb: int, taken: set[str] = frozenset()) -> bool:
        s, noun, name = self.states[k], NOUNS[self.nouns[k]], VERBS[verb].name
        if not verb_allowed(noun, VERBS[verb]):
            return False
        _, y0, _, y1 = self.geo.table_box
        if name == "take":
            return s.near is None and self._free_slot(k, set(taken)) is not None
        if name == "put":
            return s.near is not None
        if name in ("move", "wipe"):
            return s.near is None
        if name == "push":
            return s.near is None and s.y - self._push_distance() >= y0
        if name == "pull":
            return s.near is None and s.y + self._push_distance() <= y1
        if name == "open":
            return not s.opened and not s.cut
        if name == "close":
            return s.opened
        if name == "cut":
            return not s.cut and not s.opened
        return True  # turn, shake, squeeze

    def allowed(self, k: int, verb: int) -> bool:
        return self.params.allow_held_out or not self.world.is_held_out(self.nouns[k], verb)

    # ------------------------------------------------------------------ steps
    def _form(self, verb: int) -> int:
        n = len(VERBS[verb].forms)
        return 0 if n == 1 or self.rng.random() < 0.6 else int(self.rng.integers(1, n))

    def make_step(self, k: int, verb: int, taken: set[str]) -> Step:
        """Build the step and apply it to the state."""
        s, name, geo = self.states[k], VERBS[verb].name, self.geo
        hand, ref, target, turn = self._hand_for(k), 0, (0.0, 0.0), 0.0
        others = [i for i, o in enumerate(self.states) if i != k and o.near is None]
        x0, _, x1, _ = geo.table_box
        if name == "take":
            slot = self._free_slot(k, taken)
            assert slot is not None
            hand, target, s.near = slot, geo.slot_xy(slot), slot
        elif name == "put":
            if others and self.rng.random() < 0.4:
                j = int(self.rng.choice(others))
                ref = j + 1
                target = self._free_spot(exclude=k, near_xy=(self.states[j].x, self.states[j].y))
            else:
                target = self._free_spot(exclude=k)
            s.near = None
            s.x, s.y = target
        elif name in ("push", "pull"):
            d = self._push_distance() * (-1.0 if name == "push" else 1.0)
            s.y += d
            target = (s.x, s.y)
        elif name == "move":
            if others and self.rng.random() < 0.4:
                j = int(self.rng.choice(others))
                ref = j + 1
                target = self._free_spot(exclude=k, near_xy=(self.states[j].x, self.states[j].y))
            else:
                dx = float(self.rng.uniform(0.18, 0.26)) * geo.width
                room_right = x1 - s.x
                sign = 1.0 if room_right >= dx and (s.x - x0 < dx or self.rng.random() < 0.5) else -1.0
                target = (float(np.clip(s.x + sign * dx, x0, x1)), s.y)
            s.x, s.y = target
        elif name == "open":
            s.opened = True
        elif name == "close":
            s.opened = False
        elif name == "cut":
            s.cut = True
        elif name == "turn":
            turn = float(self.rng.choice([-0.5, 0.5])) * math.pi
        return Step(
            verb=verb, entity=k + 1, hand=hand, form=self._form(verb), ref=ref, target=target, turn=turn
        )

    def _random_pair(self, taken: set[str], exclude: int = -1) -> tuple[int, int] | None:
        verbs = [
            v
            for v in range(len(VERBS))
            if any(
                k != exclude and self.valid(k, v, taken) and self.allowed(k, v)
                for k in range(len(self.states))
            )
        ]
        if not verbs:
            return None
        v = int(self.rng.choice(verbs))
        ks = [
            k
            for k in range(len(self.states))
            if k != exclude and self.valid(k, v, taken) and self.allowed(k, v)
        ]
        return int(self.rng.choice(ks)), v

    def _forced_pair(self, pending: list[tuple[int, int]]) -> tuple[int, int] | None:
        """A pending forced pair if it can run now, else a step that unblocks it (put / mirror motion)."""
        for noun, verb in pending:
            k = self.nouns.index(noun)
            if self.valid(k, verb):
                return k, verb
        for noun, verb in pending:
            k = self.nouns.index(noun)
            if self.states[k].near is not None:
                return k, VERB_INDEX["put"]
            if VERBS[verb].name == "take":  # both slots are busy: put one of the held objects down
                held = [j for j, st in enumerate(self.states) if st.near is not None]
                if held:
                    return held[0], VERB_INDEX["put"]
            mirror = {"push": "pull", "pull": "push"}.get(VERBS[verb].name)
            if mirror is not None and self.valid(k, VERB_INDEX[mirror]):
                return k, VERB_INDEX[mirror]
        return None

    def actions(self) -> list[tuple[Step, ...]]:
        pending = list(self.params.forced)
        out: list[tuple[Step, ...]] = []
        n = self.params.num_actions
        while len(out) < n or pending:
            left = n - len(out)
            pair = None
            if pending and (left <= 2 * len(pending) or self.rng.random() < 0.35):
                pair = self._forced_pair(pending)
            if pair is None:
                pair = self._random_pair(set())
            if pair is None:  # nothing is possible (cannot happen: turn is always valid)
                break
            steps = [self.make_step(pair[0], pair[1], set())]
            if (noun_verb := (self.nouns[pair[0]], pair[1])) in pending:
                pending.remove(noun_verb)
            if len(self.states) > 1 and self.rng.random() < self.params.double_prob:
                taken = {steps[0].hand}
                second = self._random_pair(taken, exclude=pair[0])
                if second is not None:
                    step2 = self.make_step(second[0], second[1], taken)
                    if step2.hand == steps[0].hand:
                        step2 = replace(step2, hand="right" if step2.hand == "left" else "left")
                    steps.append(step2)
                    if (noun_verb := (self.nouns[second[0]], second[1])) in pending:
                        pending.remove(noun_verb)
            out.append(tuple(steps))
            if len(out) > n + 4 * len(self.params.forced) + 8:
                break  # safety net; forced pairs resolve within two steps each
        if pending:
            names = [(NOUNS[a].name, VERBS[b].name) for a, b in pending]
            raise RuntimeError(f"internal error: could not stage the held-out pairs {names} in a script")
        return out


def sample_script(
    world: World,
    geo: Geometry,
    params: ScriptParams,
    rng: np.random.Generator,
    *,
    uid: str,
    dataset: str,
    split: str,
    fps: int,
) -> VideoScript:
    """Sample one video's entities, actions and timing."""
    sampler = _Sampler(world, geo, params, rng)
    entities = sampler.entities()
    step_lists = sampler.actions()
    dec = params.decimals
    t = round(float(rng.uniform(0.3, 0.8)), dec)
    actions = []
    for i, steps in enumerate(step_lists):
        lo, hi = params.duration
        if len(steps) > 1:
            lo, hi = max(lo, 2.0), max(hi, 3.0)
        start = t
        end = round(start + float(rng.uniform(lo, hi)), dec)
        narration = round(start + float(rng.uniform(0.35, 0.65)) * (end - start), dec)
        article = "the" if rng.random() < 0.7 else "a"
        actions.append(Action(i, steps, start, end, narration, article))
        t = round(end + float(rng.uniform(*params.gap)), dec)
    duration = math.ceil(t + float(rng.uniform(0.3, 0.8)))
    background = int(rng.choice(params.backgrounds))
    skin = SKINS[int(rng.integers(len(SKINS)))]
    sleeve = SLEEVES[int(rng.integers(len(SLEEVES)))]
    render_seed = tuple(int(x) for x in rng.integers(0, 2**31 - 1, size=2))
    return VideoScript(
        uid=uid,
        dataset=dataset,
        split=split,
        background=background,
        skin=skin,
        sleeve=sleeve,
        entities=tuple(entities),
        actions=tuple(actions),
        num_frames=int(duration * fps),
        fps=fps,
        render_seed=render_seed,
    )
