"""Vision-language grounding with HENASY: text query → matching entity → its per-frame masks, and overlays.

Paper §5.3 ("Vision-Language Grounding", Fig. 4) and Appendix D: a noun query ("the red cube") or a verb
phrase ("picking up the knife") is embedded by the text encoder and compared with every entity embedding
in the joint space; the best-scoring entity's saliency maps (Appendix B.2, Eq. 13) are the grounding masks,
one per frame. ``write_overlay`` renders them for a person: a PNG strip with the clip's frames side by side
(top row: frames, bottom row: frames with the mask blended in red) or an animated GIF of the same pairs,
each under a header with the query and every entity's score (the matched one marked) and above a colour
legend of the mask; frames are enlarged by an integer factor (nearest neighbour: the model's pixels, not
invented ones) to at least ``MIN_FRAME_PX`` so a 64 px model input stays readable.
"""

from __future__ import annotations

import functools
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
MIN_FRAME_PX = 224  # the shorter side of each drawn frame is at least this (ImageNet-size thumbnails)
TEXT_COLOR = (20, 20, 20)
MATCH_COLOR = (200, 20, 20)


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


def upscale_factor(height: int, width: int, minimum: int = MIN_FRAME_PX) -> int:
    """The smallest integer factor that brings the shorter side of a frame to at least ``minimum`` pixels."""
    return max(1, math.ceil(minimum / max(1, min(height, width))))


def enlarge(frames: np.ndarray, masks: np.ndarray, factor: int) -> tuple[np.ndarray, np.ndarray]:
    """Frames (T, H, W, 3) and masks (T, H, W) repeated ``factor`` times along H and W (nearest neighbour)."""
    if factor == 1:
        return frames, masks
    big = frames.repeat(factor, axis=1).repeat(factor, axis=2)  # (T, H·f, W·f, 3)
    return big, masks.repeat(factor, axis=1).repeat(factor, axis=2)  # (T, H·f, W·f)


def overlay_sheet(frames: np.ndarray, masks: np.ndarray, alpha: float = 0.6, gap: int = 4) -> np.ndarray:
    """The bare strip: frames side by side on top, the same frames with the mask blended in below."""
    top, bottom = _row(frames, gap), _row(overlay(frames, masks, alpha), gap)
    spacer = np.full((gap, top.shape[1], 3), 255, dtype=np.uint8)
    return np.concatenate([top, spacer, bottom], axis=0)


@functools.cache
def _font(size: int) -> Any:
    """The bundled font at ``size`` px, loaded once (a GIF frames every frame with the same fonts)."""
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)  # Pillow ≥ 10.1: a scalable bundled font
    except TypeError:  # older Pillow: the fixed bitmap font
        return ImageFont.load_default()


def score_lines(query: str, scores: list[float], entity: int | None, model: str | None = None) -> list[str]:
    """The header text: the query (and model), the matched entity, then every entity's query–entity score."""
    first = f'query: "{query}"' + (f"    model: {model}" if model else "")
    if not scores:
        return [first, "no entity scores: the mask is the per-patch query similarity"]
    lines = [first]
    if entity is not None and 0 <= entity < len(scores):
        lines.append(f"matched: entity {entity} (cosine score {scores[entity]:+.3f}, the highest)")
    current = "cosine score per entity: "
    for k, score in enumerate(scores):  # wrapped after ~90 characters (the bundled font has ASCII glyphs)
        part = f"e{k} {score:+.3f}" + ("*" if k == entity else "")
        if len(current) + len(part) > 90 and current.strip():
            lines.append(current.rstrip())
            current = "  "
        current += part + "   "
    lines.append(current.rstrip() + ("   (* matched)" if entity is not None else ""))
    return lines


def _framed(
    body: np.ndarray,
    header: list[str],
    alpha: float,
    caption: str,
) -> np.ndarray:
    """``body`` (H, W, 3) under the header lines and above a caption and a legend of the mask colour
    (``OVERLAY_COLOR``, the colour ``overlay`` blends in by default)."""
    from PIL import Image, ImageDraw

    font, small = _font(15), _font(12)
    pad, line = 8, 20
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    text_w = max([probe.textlength(t, font=font) for t in header] + [probe.textlength(caption, font=small)])
    width = max(body.shape[1], 560, math.ceil(text_w))
    head_h = pad + line * (len(header) + 1)
    legend_h = 46
    canvas = Image.new("RGB", (width + 2 * pad, head_h + body.shape[0] + legend_h + pad), "white")
    draw = ImageDraw.Draw(canvas)
    for k, text in enumerate(header):
        draw.text(
            (pad, pad + k * line),
            text,
            fill=MATCH_COLOR if text.startswith("matched") else TEXT_COLOR,
            font=font,
        )
    draw.text((pad, pad + len(header) * line), caption, fill=TEXT_COLOR, font=small)
    canvas.paste(Image.fromarray(body), (pad, head_h))
    # legend: a grey patch blended towards the mask colour as the mask value goes from 0 to 1 (opacity alpha·m)
    y0, bar_w, bar_h = head_h + body.shape[0] + 8, 200, 14
    ramp = np.linspace(0.0, 1.0, bar_w, dtype=np.float32)  # (bar_w,) mask values
    grey = np.full((bar_h, bar_w, 3), 128, dtype=np.float32)
    weight = (alpha * ramp)[None, :, None]  # (1, bar_w, 1)
    bar = (grey * (1 - weight) + np.asarray(OVERLAY_COLOR, np.float32) * weight).round().astype(np.uint8)
    x0 = pad + 150
    draw.text((pad, y0), "mask (saliency):", fill=TEXT_COLOR, font=small)
    canvas.paste(Image.fromarray(bar), (x0, y0))
    draw.rectangle([x0 - 1, y0 - 1, x0 + bar_w, y0 + bar_h], outline=TEXT_COLOR)
    draw.text((x0 - 4, y0 + bar_h + 2), "0", fill=TEXT_COLOR, font=small)
    draw.text((x0 + bar_w - 4, y0 + bar_h + 2), "1", fill=TEXT_COLOR, font=small)
    draw.text((x0 + bar_w + 12, y0), f"colour opacity = {alpha:g} x mask", fill=TEXT_COLOR, font=small)
    return np.asarray(canvas)


def write_overlay(
    path: str | Path,
    frames: np.ndarray,
    masks: np.ndarray,
    *,
    alpha: float = 0.6,
    frame_ms: int = 500,
    query: str | None = None,
    scores: list[float] | None = None,
    entity: int | None = None,
    model: str | None = None,
    min_frame_px: int = MIN_FRAME_PX,
) -> Path:
    """Write a ``.png`` strip or a ``.gif`` of [frame | overlay] pairs, annotated and enlarged, atomically.

    With ``query`` the image carries a header (query, model, each entity's score with the matched
    ``entity`` marked) and a colour legend; frames are enlarged to at least ``min_frame_px`` (0: as given).
    """
    from PIL import Image

    path = check_out_file(path)
    suffix = path.suffix.lower()
    if suffix not in OVERLAY_SUFFIXES:
        raise BenchError(f"--out {path}: unknown image type {path.suffix!r}; use a .png or .gif file name")
    factor = upscale_factor(*frames.shape[1:3], minimum=min_frame_px) if min_frame_px > 0 else 1
    frames, masks = enlarge(frames, masks, factor)
    header = score_lines(query, scores or [], entity, model) if query is not None else None
    size = f"{frames.shape[2]}x{frames.shape[1]} px per frame ({factor}x the model input)"
    buffer = io.BytesIO()
    if suffix == ".png":
        image = overlay_sheet(frames, masks, alpha)
        if header is not None:
            caption = f"top: the {len(frames)} input frames; bottom: the matched mask blended in red; {size}"
            image = _framed(image, header, alpha, caption)
        Image.fromarray(image).save(buffer, format="PNG")
    else:
        blended = overlay(frames, masks, alpha)
        pairs = []
        for k, (f, b) in enumerate(zip(frames, blended)):
            image = _row(np.stack([f, b]), 4)
            if header is not None:
                caption = f"frame {k + 1}/{len(frames)}: input | matched mask in red; {size}"
                image = _framed(image, header, alpha, caption)
            pairs.append(Image.fromarray(image))
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
