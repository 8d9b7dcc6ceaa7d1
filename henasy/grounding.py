"""Vision-language grounding with HENASY: text query → matching entity → its per-frame masks, and overlays.

Paper §5.3 ("Vision-Language Grounding", Fig. 4) and Appendix D: a noun query ("the red cube") or a verb
phrase ("picking up the knife") is embedded by the text encoder and compared with every entity embedding
in the joint space; the best-scoring entity's saliency maps (Appendix B.2, Eq. 13) are the grounding masks,
one per frame. ``write_overlay`` renders them for a person: a PNG with the clip's frames side by side
(top row: frames, bottom row: frames with the mask blended in red) or an animated GIF of the same pairs.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from henasy.core.atomic import atomic_write_bytes
from henasy.core.errors import BenchError

OVERLAY_COLOR = (255, 40, 40)
OVERLAY_SUFFIXES = (".png", ".gif")


@dataclass
class GroundingResult:
    query: str
    masks: np.ndarray  # (T, H, W) float32 in [0, 1]
    frames: np.ndarray  # (T, H, W, 3) uint8, the model's input crop
    entity: int | None  # index of the matched entity (None for models without entity scores)
    scores: list[float]  # query–entity cosine similarities, one per entity


def check_interval(start: float, end: float) -> None:
    """Refuse a clip interval that is not finite, starts before 0 or is empty (``--start``/``--end``)."""
    for option, value in (("--start", start), ("--end", end)):
        if not math.isfinite(value):
            raise BenchError(f"{option} {value}: give a finite time in seconds, e.g. {option} 2.5")
    if start < 0:
        raise BenchError(f"--start {start}: a clip cannot start before 0 s")
    if end <= start:
        raise BenchError(f"--end ({end}) must be greater than --start ({start})")


def check_query(query: str) -> None:
    """Refuse an empty query, or one that is not valid UTF-8 (undecodable argv bytes arrive as surrogates)."""
    if not query.strip():
        raise BenchError(
            '--query is empty: give a noun ("the red cup") or a verb phrase ("picking up the knife")'
        )
    bad = next((i for i, ch in enumerate(query) if 0xD800 <= ord(ch) <= 0xDFFF), None)
    if bad is not None:
        code = ord(query[bad])
        byte = f"byte 0x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else f"U+{code:04X}"
        raise BenchError(
            f"--query is not valid UTF-8 text ({byte} at character {bad + 1}): the shell passed bytes in "
            "another encoding (e.g. Latin-1); pass the query as UTF-8 (convert it with `iconv -t UTF-8`)"
        )


def check_out_file(path: str | Path, option: str = "--out") -> Path:
    """Refuse an output path that is a folder or lies under a file (missing folders are created on write)."""
    path = Path(path)
    if path.is_dir():
        raise BenchError(
            f"{option} {path}: is a folder; give an image file name inside it, e.g. {path / 'x.png'}"
        )
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise BenchError(f"{option} {path}: {parent} is a file, not a folder; choose another path")
            break
    return path


def denormalize(video: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> np.ndarray:
    """Normalised (C, T, H, W) clip → uint8 (T, H, W, 3) pixels (inverse of the clip loader's normalisation)."""
    m = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(3, 1, 1, 1)
    pixels = (video.detach().float().cpu() * s + m).clamp(0, 255).round().to(torch.uint8)  # (C, T, H, W)
    return pixels.permute(1, 2, 3, 0).numpy()


@torch.no_grad()
def ground_query(model: Any, video: torch.Tensor, query: str) -> GroundingResult:
    """One normalised clip (C, T, H, W) and a text query → the matched entity's masks (eval mode, no grad)."""
    if not hasattr(model, "ground"):
        raise BenchError(f"{type(model).__name__} has no `ground` method: it cannot ground text queries")
    check_query(query)
    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        clip = video.unsqueeze(0).to(device)  # (1, C, T, H, W)
        tokens = model.tokenize([query]).to(device)
        if hasattr(model, "ground_details"):
            details = model.ground_details(clip, tokens)
            masks, entity, scores = details.masks[0], int(details.entity[0]), details.scores[0].tolist()
        else:
            masks, entity, scores = model.ground(clip, tokens)[0], None, []
    finally:
        model.train(was_training)
    frames = denormalize(video, model.pixel_mean, model.pixel_std)
    return GroundingResult(query, masks.float().cpu().numpy(), frames, entity, [float(s) for s in scores])


def overlay(
    frames: np.ndarray, masks: np.ndarray, alpha: float = 0.6, color: tuple[int, int, int] = OVERLAY_COLOR
) -> np.ndarray:
    """Blend ``color`` into uint8 frames (T, H, W, 3) in proportion to masks (T, H, W) in [0, 1]."""
    if frames.shape[:3] != masks.shape:
        raise ValueError(f"frames {frames.shape} and masks {masks.shape} differ in (T, H, W)")
    weight = alpha * np.clip(masks, 0.0, 1.0)[..., None]  # (T, H, W, 1)
    blended = frames.astype(np.float32) * (1 - weight) + np.asarray(color, dtype=np.float32) * weight
    return blended.round().astype(np.uint8)


def _row(images: np.ndarray, gap: int) -> np.ndarray:
    """(T, H, W, 3) → (H, T·W + (T−1)·gap, 3), white gaps."""
    t, h, w, _ = images.shape
    out = np.full((h, t * w + (t - 1) * gap, 3), 255, dtype=np.uint8)
    for i in range(t):
        out[:, i * (w + gap) : i * (w + gap) + w] = images[i]
    return out


def overlay_sheet(frames: np.ndarray, masks: np.ndarray, alpha: float = 0.6, gap: int = 4) -> np.ndarray:
    """The PNG layout: frames side by side on top, the same frames with the mask blended in below."""
    top, bottom = _row(frames, gap), _row(overlay(frames, masks, alpha), gap)
    spacer = np.full((gap, top.shape[1], 3), 255, dtype=np.uint8)
    return np.concatenate([top, spacer, bottom], axis=0)


def write_overlay(
    path: str | Path, frames: np.ndarray, masks: np.ndarray, *, alpha: float = 0.6, frame_ms: int = 500
) -> Path:
    """Write ``.png`` (side-by-side sheet) or ``.gif`` (animated [frame | overlay] pairs) atomically."""
    from PIL import Image

    path = check_out_file(path)
    suffix = path.suffix.lower()
    if suffix not in OVERLAY_SUFFIXES:
        raise BenchError(f"--out {path}: unknown image type {path.suffix!r}; use a .png or .gif file name")
    buffer = io.BytesIO()
    if suffix == ".png":
        Image.fromarray(overlay_sheet(frames, masks, alpha)).save(buffer, format="PNG")
    else:
        blended = overlay(frames, masks, alpha)
        pairs = [Image.fromarray(_row(np.stack([f, b]), 4)) for f, b in zip(frames, blended)]
        pairs[0].save(buffer, format="GIF", save_all=True, append_images=pairs[1:], duration=frame_ms, loop=0)
    return atomic_write_bytes(path, buffer.getvalue())  # a full or read-only disk: WriteFailed names path


def load_clip(model: Any, video: str, start: float, end: float, data_root: str | None = None) -> torch.Tensor:
    """The normalised clip (C, T, H, W) the model expects, from an mp4 path or a video uid under a data root.

    ``video`` is an existing file (read whole, ``start``/``end`` in its own seconds) or, with ``data_root``,
    an Ego4D ``video_uid`` in ``<data_root>/ego4d/video_chunks`` (LaViLa or EgoVLP chunk layout).
    """
    from henasy.data.layout import DatasetLayout
    from henasy.data.video import AutoSource, ClipLoader, SingleFileSource

    check_interval(start, end)
    path = Path(video)
    if path.is_file():
        source, video_id = SingleFileSource(path.parent), path.name
    elif data_root is not None:
        folder = DatasetLayout(data_root).ego4d_videos
        if not folder.is_dir():
            raise BenchError(f"--data-root {data_root}: no video folder {folder}")
        source, video_id = AutoSource(folder), video
    else:
        raise BenchError(f"--video {video}: no such file; pass an mp4 path, or a video uid with --data-root")
    return ClipLoader.for_model(model).load(source, video_id, start, end)
