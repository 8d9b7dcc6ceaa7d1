"""Procedural table-top textures (the canvas the egocentric viewport wanders over).

Each background kind of ``world.BACKGROUNDS`` is a base colour modulated by a pattern (wood grain, marble
veins, tiles, speckle, gingham, brushed steel, blotches) built from seeded value noise, plus a mild
vignette. Vectorised numpy; one canvas per video.
"""

from __future__ import annotations

import numpy as np

from henasy.synth.world import Background


def value_noise(shape: tuple[int, int], cells: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Smooth noise in [0, 1]: a random (cells+1) grid bilinearly upsampled to ``shape``."""
    h, w = shape
    grid = rng.random((cells[0] + 1, cells[1] + 1))
    ys = np.linspace(0, cells[0], h, endpoint=False)
    xs = np.linspace(0, cells[1], w, endpoint=False)
    y0, x0 = ys.astype(int), xs.astype(int)
    fy, fx = (ys - y0)[:, None], (xs - x0)[None, :]
    fy, fx = fy * fy * (3 - 2 * fy), fx * fx * (3 - 2 * fx)
    a = grid[y0][:, x0]
    b = grid[y0][:, x0 + 1]
    c = grid[y0 + 1][:, x0]
    d = grid[y0 + 1][:, x0 + 1]
    return (a * (1 - fx) + b * fx) * (1 - fy) + (c * (1 - fx) + d * fx) * fy


def _pattern(kind: str, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """(H, W) brightness multiplier around 1 for a pattern kind."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    low = value_noise(shape, (3, 4), rng)
    mid = value_noise(shape, (max(h // 10, 2), max(w // 10, 2)), rng)
    fine = rng.random(shape)
    if kind == "grain":
        rings = np.sin((yy + 9.0 * low + 3.0 * mid) * 0.55)
        return 1.0 + 0.10 * rings + 0.06 * (fine - 0.5) + 0.10 * (low - 0.5)
    if kind == "veins":
        veins = np.abs(np.sin((xx + yy * 0.6) * 0.07 + 7.0 * low))
        return 1.0 - 0.22 * (veins < 0.12) + 0.04 * (fine - 0.5)
    if kind == "tiles":
        size = max(w // 7, 8)
        grout = ((xx % size) < 2) | ((yy % size) < 2)
        tile = value_noise(shape, (h // size + 1, w // size + 1), rng)
        return np.where(grout, 0.72, 1.0 + 0.08 * (np.floor(tile * 4) / 4 - 0.5)) + 0.03 * (fine - 0.5)
    if kind == "speckle":
        return 1.0 + 0.10 * (low - 0.5) + 0.25 * ((fine > 0.93) * 1.0 - (fine < 0.05) * 1.0) * 0.6
    if kind == "gingham":
        size = max(w // 12, 6)
        band = ((xx // size) % 2) + ((yy // size) % 2)
        return 1.22 - 0.2 * band + 0.03 * (fine - 0.5)
    if kind == "brushed":
        streak = value_noise(shape, (h // 2, 3), rng)
        return 1.0 + 0.16 * (streak - 0.5) + 0.05 * (fine - 0.5)
    if kind == "blotches":
        return 1.0 + 0.18 * (mid - 0.5) + 0.08 * (low - 0.5) + 0.03 * (fine - 0.5)
    raise ValueError(f"unknown background pattern {kind!r}")


def make_canvas(background: Background, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """(H, W, 3) uint8 canvas of one background kind, with a slight per-video colour shift."""
    h, w = shape
    pattern = _pattern(background.pattern, shape, rng)
    tint = np.asarray(background.rgb, dtype=np.float64) * rng.uniform(0.92, 1.08, size=3)
    yy, xx = np.mgrid[0:h, 0:w]
    vignette = 1.0 - 0.18 * (((yy - h / 2) / h) ** 2 + ((xx - w / 2) / w) ** 2) * 2
    img = tint[None, None, :] * (pattern * vignette)[:, :, None]
    return np.clip(img, 0, 255).astype(np.uint8)
