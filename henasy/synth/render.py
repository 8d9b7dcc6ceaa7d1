"""Drawing frames and per-frame instance label maps from tracks (vectorised over a batch of frames).

Each entity is a shape evaluated in its own rotated, scaled frame (u, v in units of its radius) over a
per-frame square box around its centre; the open state lifts the top half (v < 0) by 0.6·open, the cut
state moves the left/right halves apart by ±0.35·split, and the texture (stripes, dots, checker) is
evaluated in the piece's own frame, so it turns and splits with the object. Hands are a skin-coloured
palm disc on a capsule-shaped arm (sleeve-coloured near the body) coming from below the bottom edge, drawn
last. The label map holds the id of the top-most instance per pixel (entities 1..E, hands ``HAND_IDS``).
"""

from __future__ import annotations

import numpy as np

from henasy.synth.motion import Tracks, hand_base
from henasy.synth.scene import Geometry, VideoScript
from henasy.synth.world import HAND_IDS, NOUNS, Noun

SHAPE_EXTENT = 1.42  # max |(u, v)| of any shape


def shape_mask(shape: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Membership of points (u, v) (units of the radius, v pointing down) in a unit shape."""
    au, av = np.abs(u), np.abs(v)
    if shape == "disc":
        return u * u + v * v <= 1.0
    if shape == "ring":
        r2 = u * u + v * v
        return (r2 <= 1.0) & (r2 >= 0.25)
    if shape == "square":
        return (au <= 0.82) & (av <= 0.82)
    if shape == "bar":
        return (au <= 1.35) & (av <= 0.32)
    if shape == "oval":
        return (u / 1.15) ** 2 + (v / 0.7) ** 2 <= 1.0
    if shape == "triangle":
        return (v <= 0.75) & (v >= -0.95 + 1.7 * au)
    if shape == "diamond":
        return au / 0.85 + av <= 1.0
    if shape == "cross":
        return ((au <= 0.3) & (av <= 1.0)) | ((av <= 0.3) & (au <= 1.0))
    raise ValueError(f"unknown shape {shape!r}")


def texture_mask(texture: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Where the texture's secondary colour shows, in the object's own frame."""
    if texture == "solid":
        return np.zeros(u.shape, dtype=bool)
    if texture == "stripes":
        return np.floor((v + 4.0) * 2.8).astype(np.int64) % 2 == 1
    if texture == "dots":
        fu, fv = (u * 2.2) % 1.0 - 0.5, (v * 2.2) % 1.0 - 0.5
        return fu * fu + fv * fv < 0.09
    if texture == "checker":
        return (
            np.floor((u + 4.0) * 2.2).astype(np.int64) + np.floor((v + 4.0) * 2.2).astype(np.int64)
        ) % 2 == 1
    raise ValueError(f"unknown texture {texture!r}")


def noun_colours(noun: Noun) -> tuple[np.ndarray, np.ndarray]:
    """Base and texture colours (float RGB): the pattern darkens light colours and lightens dark ones."""
    base = np.asarray(noun.rgb, dtype=np.float64)
    lum = 0.299 * base[0] + 0.587 * base[1] + 0.114 * base[2]
    second = base * 0.55 if lum > 90 else np.minimum(base + 110.0, 255.0)
    return base, second


def _stamp(
    frames: np.ndarray, labels: np.ndarray, x0: np.ndarray, y0: np.ndarray, inside: np.ndarray
) -> tuple[np.ndarray, ...]:
    """Pixel indices (b, y, x) and box indices (i, j) of ``inside`` (B, h, w) boxes at (x0, y0) in the frame."""
    _, H, W = labels.shape
    h, w = inside.shape[1:]
    ys = y0[:, None] + np.arange(h)[None, :]  # (B, h)
    xs = x0[:, None] + np.arange(w)[None, :]  # (B, w)
    ok = inside & ((ys >= 0) & (ys < H))[:, :, None] & ((xs >= 0) & (xs < W))[:, None, :]
    b, i, j = np.nonzero(ok)
    return b, ys[b, i], xs[b, j], i, j


def draw_entity(
    frames: np.ndarray,
    labels: np.ndarray,
    tracks: Tracks,
    k: int,
    frame_ids: np.ndarray,
    noun: Noun,
    label: int,
) -> None:
    """Draw entity k on ``frames``/``labels`` (B, H, W[, 3]) for the video frames ``frame_ids`` (B,)."""
    cx, cy = tracks.x[k, frame_ids], tracks.y[k, frame_ids]  # (B,)
    rad, ang = tracks.radius[k, frame_ids], tracks.angle[k, frame_ids]
    opn, spl = tracks.opened[k, frame_ids], tracks.split[k, frame_ids]
    half = int(np.ceil((rad * (SHAPE_EXTENT + 0.6 * opn + 0.4 * spl)).max())) + 1
    n = 2 * half + 1
    x0 = np.floor(cx).astype(np.int64) - half
    y0 = np.floor(cy).astype(np.int64) - half
    grid = np.arange(n, dtype=np.float64) + 0.5
    dx = (x0 - cx)[:, None, None] + grid[None, None, :]  # (B, 1, n)
    dy = (y0 - cy)[:, None, None] + grid[None, :, None]  # (B, n, 1)
    c, s, inv = np.cos(ang)[:, None, None], np.sin(ang)[:, None, None], 1.0 / rad[:, None, None]
    u = (c * dx + s * dy) * inv  # (B, n, n)
    v = (c * dy - s * dx) * inv
    if opn.max() > 0 or spl.max() > 0:
        inside = np.zeros(u.shape, dtype=bool)
        tu, tv = np.zeros_like(u), np.zeros_like(v)
        for top in (False, True):
            sv = (-0.6 * opn if top else np.zeros_like(opn))[:, None, None]
            for left in (False, True):
                su = ((-0.35 if left else 0.35) * spl)[:, None, None]
                u0, v0 = u - su, v - sv
                piece = shape_mask(noun.shape, u0, v0) & ((v0 < 0) if top else (v0 >= 0))
                piece &= (u0 < 0) if left else (u0 >= 0)
                inside |= piece
                tu, tv = np.where(piece, u0, tu), np.where(piece, v0, tv)
    else:
        inside, tu, tv = shape_mask(noun.shape, u, v), u, v
    b, yy, xx, i, j = _stamp(frames, labels, x0, y0, inside)
    pu, pv = tu[b, i, j], tv[b, i, j]
    base, second = noun_colours(noun)
    colour = np.where(texture_mask(noun.texture, pu, pv)[:, None], second, base)
    shade = np.clip(1.0 - 0.12 * pv, 0.85, 1.15)[:, None]
    frames[b, yy, xx] = np.clip(colour * shade, 0, 255).astype(np.uint8)
    labels[b, yy, xx] = label


def draw_hand(
    frames: np.ndarray,
    labels: np.ndarray,
    tracks: Tracks,
    side: int,
    frame_ids: np.ndarray,
    geo: Geometry,
    skin: tuple[int, int, int],
    sleeve: tuple[int, int, int],
) -> None:
    """Draw the left (0) or right (1) hand: a palm disc on an arm capsule from below the frame."""
    H, W = geo.height, geo.width
    hx, hy = tracks.hand_x[side, frame_ids], tracks.hand_y[side, frame_ids]  # (B,)
    palm, arm = 0.06 * W, 0.045 * W
    visible = hy - palm < H
    if not visible.any():
        return
    bx, by = hand_base(geo, side)
    lo_x = np.floor(np.minimum(hx, bx) - palm - 1).astype(np.int64)
    hi_x = np.ceil(np.maximum(hx, bx) + palm + 1).astype(np.int64)
    lo_x, hi_x = np.clip(lo_x, -1, W), np.clip(hi_x, -1, W + 1)
    lo_y = np.clip(np.floor(hy - palm - 1).astype(np.int64), -1, H)
    w = int((hi_x - lo_x)[visible].max()) + 1
    h = int((H - lo_y)[visible].max()) + 1
    gx = (lo_x[:, None, None] + np.arange(w)[None, None, :] + 0.5).astype(np.float64)  # (B, 1, w)
    gy = (lo_y[:, None, None] + np.arange(h)[None, :, None] + 0.5).astype(np.float64)  # (B, h, 1)
    px, py = gx - hx[:, None, None], gy - hy[:, None, None]
    in_palm = px * px + py * py <= palm * palm
    ax, ay = bx - hx, by - hy  # (B,) arm direction, from the palm towards the body
    length2 = (ax * ax + ay * ay)[:, None, None]
    t = np.clip((px * ax[:, None, None] + py * ay[:, None, None]) / length2, 0.0, 1.0)
    ex, ey = px - t * ax[:, None, None], py - t * ay[:, None, None]
    in_arm = ex * ex + ey * ey <= arm * arm
    inside = (in_palm | in_arm) & visible[:, None, None]
    b, yy, xx, i, j = _stamp(frames, labels, lo_x, lo_y, inside)
    on_sleeve = ~in_palm[b, i, j] & (t[b, i, j] > 0.35)
    shade = 1.0 + 0.1 * (ey[b, i, j] / arm)
    colour = np.where(on_sleeve[:, None], np.asarray(sleeve, np.float64), np.asarray(skin, np.float64))
    frames[b, yy, xx] = np.clip(colour * shade[:, None], 0, 255).astype(np.uint8)
    labels[b, yy, xx] = HAND_IDS["left" if side == 0 else "right"]


def render_batch(
    script: VideoScript, tracks: Tracks, geo: Geometry, canvas: np.ndarray, frame_ids: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Frames (B, H, W, 3) uint8 and label maps (B, H, W) uint8 of the video frames ``frame_ids``."""
    H, W = geo.height, geo.width
    B = len(frame_ids)
    frames = np.empty((B, H, W, 3), dtype=np.uint8)
    for n, f in enumerate(frame_ids):
        vx, vy = tracks.view[f]
        frames[n] = canvas[vy : vy + H, vx : vx + W]
    labels = np.zeros((B, H, W), dtype=np.uint8)
    order = np.argsort(tracks.depth[:, frame_ids].mean(axis=1), kind="stable")
    for k in order:
        entity = script.entities[k]
        draw_entity(frames, labels, tracks, int(k), frame_ids, NOUNS[entity.noun], entity.entity_id)
    for side in (0, 1):
        draw_hand(frames, labels, tracks, side, frame_ids, geo, script.skin, script.sleeve)
    return frames, labels


def render_video(
    script: VideoScript, tracks: Tracks, geo: Geometry, canvas: np.ndarray, batch: int = 64
) -> tuple[np.ndarray, np.ndarray]:
    """All frames (T, H, W, 3) uint8 and label maps (T, H, W) uint8 of a video."""
    T = script.num_frames
    frames = np.empty((T, geo.height, geo.width, 3), dtype=np.uint8)
    labels = np.empty((T, geo.height, geo.width), dtype=np.uint8)
    for a in range(0, T, batch):
        ids = np.arange(a, min(a + batch, T))
        frames[a : a + len(ids)], labels[a : a + len(ids)] = render_batch(script, tracks, geo, canvas, ids)
    return frames, labels
