"""Pixel transforms of the clip loader: short-side resize, centre (or 3-way) crop, mean/std normalisation.

Mirrors LaViLa's eval/train video transform: ``Permute([3, 0, 1, 2])`` →
``Resize(size)`` (short side) → ``CenterCrop(size)`` → ``NormalizeVideo(mean, std)`` with mean/std on the
0–255 scale (OpenAI CLIP's for CLIP-initialised models), giving float32 (C, T, H, W). The resize here is
antialiased bilinear. ``CropGeometry`` is shared with ``handobj`` so boxes follow the pixels exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

CLIP_MEAN = (122.7709383, 116.7460125, 104.09373615)  # OpenAI CLIP, 0–255 scale
CLIP_STD = (68.5005327, 66.6321579, 70.32316305)


@dataclass(frozen=True)
class CropGeometry:
    """Where a (height, width) frame lands after the short-side resize to ``size`` and a ``size`` crop."""

    height: int  # source frame
    width: int
    resized_height: int
    resized_width: int
    top: int  # crop offset in the resized frame
    left: int
    size: int

    def box_to_crop(self, boxes: np.ndarray) -> np.ndarray:
        """(N, 4) x1 y1 x2 y2 in source pixels → (N, 4) in [0, 1] of the crop (clipped to the crop)."""
        sx = self.resized_width / self.width
        sy = self.resized_height / self.height
        out = np.empty((len(boxes), 4), dtype=np.float32)
        out[:, 0] = (boxes[:, 0] * sx - self.left) / self.size
        out[:, 2] = (boxes[:, 2] * sx - self.left) / self.size
        out[:, 1] = (boxes[:, 1] * sy - self.top) / self.size
        out[:, 3] = (boxes[:, 3] * sy - self.top) / self.size
        return np.clip(out, 0.0, 1.0)


def crop_geometry(height: int, width: int, size: int, *, position: str = "center") -> CropGeometry:
    """Short side → ``size`` (long side ``int(size·long/short)``, torchvision's rule), then a square crop.

    ``position`` is ``center``, or ``start``/``end`` along the long side (the 3-crop evaluation views).
    Centre offsets use torchvision's ``int(round((resized - size) / 2))``.
    """
    if height <= 0 or width <= 0:
        raise ValueError(f"frame size must be positive, got {height}x{width}")
    if height <= width:
        rh, rw = size, int(size * width / height)
    else:
        rh, rw = int(size * height / width), size
    top_c, left_c = int(round((rh - size) / 2.0)), int(round((rw - size) / 2.0))
    if position == "center":
        top, left = top_c, left_c
    elif position in ("start", "end"):
        far = position == "end"
        top = (rh - size if far else 0) if rh > rw else top_c
        left = (rw - size if far else 0) if rw >= rh else left_c
    else:
        raise ValueError(f"unknown crop position {position!r}")
    return CropGeometry(height, width, rh, rw, top, left, size)


class ClipTransform:
    """uint8 frames (T, H, W, C) → normalised float32 (C, T, size, size) (or several crops of it)."""

    def __init__(
        self,
        size: int,
        mean: tuple[float, float, float] = CLIP_MEAN,
        std: tuple[float, float, float] = CLIP_STD,
    ) -> None:
        self.size = int(size)
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)

    def _resized(self, frames: np.ndarray | torch.Tensor) -> tuple[torch.Tensor, CropGeometry]:
        x = torch.as_tensor(np.asarray(frames)) if not isinstance(frames, torch.Tensor) else frames
        if x.ndim != 4 or x.shape[-1] != 3:
            raise ValueError(f"expected frames (T, H, W, 3), got {tuple(x.shape)}")
        geo = crop_geometry(int(x.shape[1]), int(x.shape[2]), self.size)
        # (T, C, H, W), made contiguous while still uint8: the antialiased resize is about twice as fast on a
        # contiguous tensor as on the channels-last view of (T, H, W, C), with bit-identical values
        x = x.permute(0, 3, 1, 2).contiguous().float()
        if (geo.resized_height, geo.resized_width) != (geo.height, geo.width):
            x = F.interpolate(
                x,
                size=(geo.resized_height, geo.resized_width),
                mode="bilinear",
                align_corners=False,
                antialias=True,
            )
        return x, geo

    def _finish(self, x: torch.Tensor, top: int, left: int) -> torch.Tensor:
        x = x[:, :, top : top + self.size, left : left + self.size]  # (T, C, size, size)
        x = x.permute(1, 0, 2, 3).contiguous()  # (C, T, size, size), a new tensor: normalised in place
        mean = torch.tensor(self.mean, dtype=x.dtype).view(3, 1, 1, 1)
        std = torch.tensor(self.std, dtype=x.dtype).view(3, 1, 1, 1)
        return x.sub_(mean).div_(std)  # the same float32 operations as (x - mean) / std

    def __call__(self, frames: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Centre crop: (T, H, W, 3) uint8 → (C, T, size, size) float32."""
        x, geo = self._resized(frames)
        return self._finish(x, geo.top, geo.left)

    def crops(self, frames: np.ndarray | torch.Tensor, num_crops: int = 3) -> list[torch.Tensor]:
        """``num_crops`` views along the long side (1: centre; 3: start, centre, end), each (C, T, size, size)."""
        x, geo = self._resized(frames)
        positions = {1: ["center"], 3: ["start", "center", "end"]}.get(num_crops)
        if positions is None:
            raise ValueError(f"num_crops must be 1 or 3, got {num_crops}")
        views = []
        for pos in positions:
            g = crop_geometry(geo.height, geo.width, self.size, position=pos)
            views.append(self._finish(x, g.top, g.left))
        return views
