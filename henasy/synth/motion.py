"""From a script to per-frame tracks: camera ego-motion, every entity's pose and shape state, both hands.

Each verb is a motion program over the action's manipulation phase (the middle of the action: the hand
reaches the object during the first 30 %, manipulates it, and retracts during the last 20 %):

* take / put: the object travels between its place on the table and a slot near the camera (bottom of the
  view), growing / shrinking — the same frames in opposite order;
* push / pull: the object slides away from / towards the camera (up / down, with perspective scale);
* move: sideways slide (optionally next to another entity); turn: in-plane rotation by ±90°;
* open / close: the object's top half lifts off / comes back (a shape change); cut: it splits in two;
* shake: fast horizontal oscillation; squeeze: the object shrinks and recovers; wipe: the hand strokes it.

The camera is a smooth random walk of the viewport over the larger canvas plus a small per-frame shake.
Entities on the table live in canvas coordinates (they move against the camera); held ones live in screen
coordinates (they move with it). Hands enter from the bottom edge and live in screen coordinates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from henasy.synth.scene import Geometry, Step, VideoScript
from henasy.synth.world import VERBS

REACH, RETRACT = 0.3, 0.2  # fractions of an action spent reaching and retracting
NEAR_SCALE = 1.5  # size of a held object relative to its base size (closer to the camera)


@dataclass
class Tracks:
    """Per-frame state of a whole video; E entities, T frames, coordinates in screen pixels."""

    view: np.ndarray  # (T, 2) int viewport offset (x, y) in the canvas
    x: np.ndarray  # (E, T) entity centre
    y: np.ndarray  # (E, T)
    radius: np.ndarray  # (E, T) pixels
    angle: np.ndarray  # (E, T) radians
    opened: np.ndarray  # (E, T) 0 closed .. 1 open (top half lifted)
    split: np.ndarray  # (E, T) 0 whole .. 1 cut in two
    depth: np.ndarray  # (E, T) larger = drawn later (closer to the camera)
    hand_x: np.ndarray  # (2, T) palm centre, [left, right]
    hand_y: np.ndarray  # (2, T)
    contact: np.ndarray  # (2, T) int entity id the hand manipulates, 0 if none


def smoothstep(u: np.ndarray) -> np.ndarray:
    u = np.clip(u, 0.0, 1.0)
    return u * u * (3.0 - 2.0 * u)


def frame_index(seconds: float, fps: int) -> int:
    """First frame whose timestamp ``i / fps`` is at or after ``seconds``."""
    return int(math.ceil(seconds * fps - 1e-6))


def camera_walk(num_frames: int, geo: Geometry, rng: np.random.Generator) -> np.ndarray:
    """(T, 2) integer viewport offsets: a damped random walk around the canvas centre plus shake."""
    mx, my = geo.margin_x, geo.margin_y
    noise = rng.normal(0.0, 1.0, size=(num_frames, 2))
    shake = rng.normal(0.0, 0.45, size=(num_frames, 2))
    sigma = (0.003 * geo.width, 0.003 * geo.height)
    out = np.empty((num_frames, 2))
    px = py = vx = vy = 0.0
    for t in range(num_frames):
        vx = 0.92 * vx + sigma[0] * noise[t, 0] - 0.006 * px
        vy = 0.92 * vy + sigma[1] * noise[t, 1] - 0.006 * py
        px = min(max(px + vx, -0.6 * mx), 0.6 * mx)
        py = min(max(py + vy, -0.6 * my), 0.6 * my)
        out[t] = px, py
    view = np.rint(out + shake + (mx, my)).astype(np.int64)
    view[:, 0] = np.clip(view[:, 0], 0, 2 * mx)
    view[:, 1] = np.clip(view[:, 1], 0, 2 * my)
    return view


def _ramp(row: np.ndarray, f0: int, f1: int, a: float, b: float, e: np.ndarray) -> None:
    """row[f0:f1] goes from a to b along e (0..1); row[f1:] = b."""
    row[f0:f1] = a + (b - a) * e
    row[f1:] = b


class _Phases:
    """Frame ranges and easing of one action: reach [s, m0), manipulate [m0, m1), retract [m1, e)."""

    def __init__(self, start: float, end: float, fps: int, num_frames: int) -> None:
        dur = end - start
        self.t0, self.tm0, self.tm1, self.t1 = start, start + REACH * dur, end - RETRACT * dur, end
        clamp = lambda f: min(max(f, 0), num_frames)  # noqa: E731
        self.s, self.m0 = clamp(frame_index(start, fps)), clamp(frame_index(self.tm0, fps))
        self.m1, self.e = clamp(frame_index(self.tm1, fps)), clamp(frame_index(end, fps))
        t = np.arange(num_frames) / fps
        self.t = t
        self.ease = smoothstep((t[self.m0 : self.m1] - self.tm0) / max(self.tm1 - self.tm0, 1e-6))
        self.tau = np.clip((t[self.m0 : self.m1] - self.tm0) / max(self.tm1 - self.tm0, 1e-6), 0, 1)


def compute_tracks(script: VideoScript, geo: Geometry, rng: np.random.Generator) -> Tracks:
    """Play the script: every entity's and hand's per-frame state."""
    T, fps, E = script.num_frames, script.fps, len(script.entities)
    view = camera_walk(T, geo, rng)
    wx = np.array([[e.x] * T for e in script.entities], dtype=np.float64).reshape(E, T)
    wy = np.array([[e.y] * T for e in script.entities], dtype=np.float64).reshape(E, T)
    near = np.zeros((E, T))
    nx, ny = np.zeros((E, T)), np.zeros((E, T))
    angle = np.array([[e.angle] * T for e in script.entities], dtype=np.float64).reshape(E, T)
    opened, split = np.zeros((E, T)), np.zeros((E, T))
    shake_x, squeeze = np.zeros((E, T)), np.ones((E, T))

    phases = [_Phases(a.start, a.end, fps, T) for a in script.actions]
    for action, ph in zip(script.actions, phases):
        for step in action.steps:
            k, name = step.entity - 1, VERBS[step.verb].name
            m0, m1, e = ph.m0, ph.m1, ph.ease
            if name == "take":
                _ramp(near[k], m0, m1, 0.0, 1.0, e)
                nx[k, ph.s :], ny[k, ph.s :] = step.target
            elif name == "put":
                _ramp(near[k], m0, m1, 1.0, 0.0, e)
                wx[k, ph.s :], wy[k, ph.s :] = step.target
            elif name in ("push", "pull", "move"):
                _ramp(wx[k], m0, m1, wx[k, m0 - 1 if m0 else 0], step.target[0], e)
                _ramp(wy[k], m0, m1, wy[k, m0 - 1 if m0 else 0], step.target[1], e)
            elif name == "open":
                _ramp(opened[k], m0, m1, 0.0, 1.0, e)
            elif name == "close":
                _ramp(opened[k], m0, m1, 1.0, 0.0, e)
            elif name == "cut":
                _ramp(split[k], m0, m1, 0.0, 1.0, e)
            elif name == "turn":
                a0 = angle[k, m0 - 1 if m0 else 0]
                _ramp(angle[k], m0, m1, a0, a0 + step.turn, e)
            elif name == "shake":
                r = script.entities[k].radius
                shake_x[k, m0:m1] += (
                    0.35 * r * np.sin(2 * np.pi * 3.0 * (ph.t[m0:m1] - ph.tm0)) * np.sin(np.pi * ph.tau)
                )
            elif name == "squeeze":
                squeeze[k, m0:m1] = 1.0 - 0.3 * np.sin(np.pi * ph.tau)

    vx, vy = view[:, 0][None].astype(np.float64), view[:, 1][None].astype(np.float64)
    x = (1 - near) * (wx - vx) + near * nx + shake_x
    y = (1 - near) * (wy - vy) + near * ny
    persp = 0.82 + 0.36 * (wy - geo.margin_y) / geo.height
    base = np.array([e.radius for e in script.entities])[:, None]
    radius = base * ((1 - near) * persp + near * NEAR_SCALE) * squeeze
    depth = y + 1000.0 * near

    rest_x, rest_y, holding = _rest_tracks(geo, near, nx, x, y, radius)
    hand_x, hand_y, contact = _hand_tracks(
        script, phases, rest_x, rest_y, holding, (x, y, radius, angle, opened)
    )
    return Tracks(view, x, y, radius, angle, opened, split, depth, hand_x, hand_y, contact)


def hand_rest(geo: Geometry, side: int) -> tuple[float, float]:
    """Palm position of an idle hand (below the frame, invisible)."""
    return (0.2 if side == 0 else 0.8) * geo.width, 1.22 * geo.height


def hand_base(geo: Geometry, side: int) -> tuple[float, float]:
    """Where the arm comes from (below the bottom edge)."""
    return (0.06 if side == 0 else 0.94) * geo.width, 1.5 * geo.height


def _grasp(step: Step, ph: _Phases, k: int, x, y, radius, angle, opened) -> tuple[np.ndarray, np.ndarray]:
    """(T,) grasp point of the hand on entity k for the whole video (used over the action's frames).

    The hand holds the object by its side facing the hand's arm, so the arm (coming from below) hides
    as little of the object's shape change as possible.
    """
    name = VERBS[step.verb].name
    side = -1.0 if step.hand == "left" else 1.0
    gx, gy = x[k] + side * 0.85 * radius[k], y[k] + 0.3 * radius[k]
    if name in ("open", "close"):
        gy = y[k] - (0.2 + 0.6 * opened[k]) * radius[k]
    elif name == "cut":
        prog = np.clip((ph.t - ph.tm0) / max(ph.tm1 - ph.tm0, 1e-6), 0, 1)
        gy = y[k] + (-0.7 + 1.2 * prog) * radius[k]
    elif name == "wipe":
        gx = x[k] + radius[k] * np.sin(2 * np.pi * 2.0 * (ph.t - ph.t0))
        gy = y[k] + 0.2 * radius[k]
    elif name == "turn":
        gx = x[k] + 0.8 * radius[k] * np.cos(angle[k]) * side
        gy = y[k] + 0.5 * radius[k] * np.abs(np.sin(angle[k])) + 0.2 * radius[k]
    return gx, gy


def _rest_tracks(geo: Geometry, near, nx, x, y, radius) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(2, T) idle position of each hand and the entity id it holds: below the frame, or on the object it
    took while that object sits in the hand's slot near the camera (until it is put down)."""
    T = x.shape[1]
    rest_x, rest_y = np.zeros((2, T)), np.zeros((2, T))
    holding = np.zeros((2, T), dtype=np.int64)
    for side in (0, 1):
        rest_x[side], rest_y[side] = hand_rest(geo, side)
    for k in range(len(near)):
        held = near[k] >= 1.0
        for side, sign in ((0, -1.0), (1, 1.0)):
            mask = held & ((nx[k] < 0.5 * geo.width) == (side == 0))
            rest_x[side, mask] = x[k, mask] + sign * 0.85 * radius[k, mask]
            rest_y[side, mask] = y[k, mask] + 0.3 * radius[k, mask]
            holding[side, mask] = k + 1
    return rest_x, rest_y, holding


def _hand_tracks(script, phases, rest_x, rest_y, holding, state):
    """Hands go from their idle position to the grasp point (reach), follow it, and come back."""
    hand_x, hand_y, contact = rest_x.copy(), rest_y.copy(), holding.copy()
    for action, ph in zip(script.actions, phases):
        for step in action.steps:
            side = 0 if step.hand == "left" else 1
            gx, gy = _grasp(step, ph, step.entity - 1, *state)
            rx, ry = rest_x[side], rest_y[side]
            s, m0, m1, e, t = ph.s, ph.m0, ph.m1, ph.e, ph.t
            reach = smoothstep((t[s:m0] - ph.t0) / max(ph.tm0 - ph.t0, 1e-6))
            hand_x[side, s:m0] = rx[s:m0] + (gx[s:m0] - rx[s:m0]) * reach
            hand_y[side, s:m0] = ry[s:m0] + (gy[s:m0] - ry[s:m0]) * reach
            hand_x[side, m0:m1], hand_y[side, m0:m1] = gx[m0:m1], gy[m0:m1]
            back = smoothstep((t[m1:e] - ph.tm1) / max(ph.t1 - ph.tm1, 1e-6))
            hand_x[side, m1:e] = gx[m1:e] + (rx[m1:e] - gx[m1:e]) * back
            hand_y[side, m1:e] = gy[m1:e] + (ry[m1:e] - gy[m1:e]) * back
            contact[side, s:e] = 0
            contact[side, m0:m1] = step.entity
    return hand_x, hand_y, contact
