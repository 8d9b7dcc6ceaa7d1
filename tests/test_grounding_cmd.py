"""Tests for ``henasy/grounding.py`` and ``bench ground``: overlays a person can look at (PNG sheet, GIF),
the clip → query → entity → masks path, and clear errors on bad input."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from henasy.cli import main
from henasy.core.errors import BenchError
from henasy.grounding import (
    denormalize,
    enlarge,
    ground_query,
    load_clip,
    overlay,
    overlay_sheet,
    score_lines,
    upscale_factor,
    write_overlay,
)
from henasy.model.network import henasy_tiny

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _first_chunk(root: Path) -> Path:
    return sorted((root / "ego4d" / "video_chunks").glob("*.mp4/0.mp4"))[0]


def test_overlay_blends_hand_computed() -> None:
    frames = np.full((1, 1, 2, 3), 100, dtype=np.uint8)
    masks = np.array([[[0.0, 1.0]]], dtype=np.float32)
    out = overlay(frames, masks, alpha=0.5, color=(200, 0, 100))
    assert out[0, 0, 0].tolist() == [100, 100, 100]  # mask 0: unchanged
    assert out[0, 0, 1].tolist() == [150, 50, 100]  # mask 1: half-way to the colour
    with pytest.raises(ValueError):
        overlay(frames, np.zeros((2, 1, 2)), 0.5)


def test_denormalize_inverts_the_clip_normalisation() -> None:
    pixels = torch.randint(0, 256, (3, 2, 4, 4)).float()  # (C, T, H, W)
    mean, std = (10.0, 20.0, 30.0), (2.0, 3.0, 4.0)
    video = (pixels - torch.tensor(mean).view(3, 1, 1, 1)) / torch.tensor(std).view(3, 1, 1, 1)
    assert np.array_equal(denormalize(video, mean, std), pixels.permute(1, 2, 3, 0).numpy().astype(np.uint8))


def test_write_overlay_png_and_gif(tmp_path: Path) -> None:
    frames = np.zeros((3, 8, 10, 3), dtype=np.uint8)
    frames[:] = np.array([0, 60, 120], dtype=np.uint8)[
        :, None, None, None
    ]  # distinct frames (GIF merges equal ones)
    masks = np.zeros((3, 8, 10), dtype=np.float32)
    masks[:, 2:4, 2:4] = 1.0
    png = write_overlay(tmp_path / "raw.png", frames, masks, min_frame_px=0)  # the bare strip, as given
    with Image.open(png) as image:
        assert image.size == (3 * 10 + 2 * 4, 2 * 8 + 4)  # frames side by side, two rows
        assert np.array_equal(np.asarray(image.convert("RGB")), overlay_sheet(frames, masks))
    assert upscale_factor(8, 10) == 28  # 8 px × 28 = 224: the shorter side reaches 224 px
    png = write_overlay(tmp_path / "m.png", frames, masks)
    with Image.open(png) as image:
        assert image.size == (3 * 280 + 2 * 4, 2 * 224 + 4)  # every frame ≥ 224 px, nearest neighbour
        assert np.array_equal(np.asarray(image.convert("RGB")), overlay_sheet(*enlarge(frames, masks, 28)))
    gif = write_overlay(tmp_path / "m.gif", frames, masks)
    with Image.open(gif) as image:
        assert image.n_frames == 3 and image.size == (2 * 280 + 4, 224)
    with pytest.raises(BenchError, match=".png or .gif"):
        write_overlay(tmp_path / "m.jpg", frames, masks)


def test_annotated_overlay_has_query_scores_and_legend(tmp_path: Path) -> None:
    lines = score_lines("the red cup", [0.1, -0.2, 0.35], 2, "henasy_tiny")
    assert lines[0] == 'query: "the red cup"    model: henasy_tiny'
    assert lines[1] == "matched: entity 2 (cosine score +0.350, the highest)"
    assert "e0 +0.100" in lines[2] and "e1 -0.200" in lines[2] and "e2 +0.350*" in lines[2]
    assert score_lines("cup", [], None)[1].startswith("no entity scores")
    frames = np.full((4, 64, 64, 3), 128, dtype=np.uint8)
    masks = np.zeros((4, 64, 64), dtype=np.float32)
    png = write_overlay(
        tmp_path / "q.png", frames, masks, alpha=0.6, query="the red cup", scores=[0.1, -0.2, 0.35], entity=2
    )
    with Image.open(png) as image:
        pixels = np.asarray(image.convert("RGB"))
    strip = overlay_sheet(*enlarge(frames, masks, 4))  # 64 px → 256 px frames
    assert pixels.shape[0] > strip.shape[0] + 60 and pixels.shape[1] >= strip.shape[1]  # header and legend
    full = np.round(np.array([128, 128, 128]) * 0.4 + np.array([255, 40, 40]) * 0.6).astype(np.uint8)
    assert (pixels == full).all(axis=-1).any()  # the legend's mask = 1 end (no mask pixel is 1 here)
    assert (pixels == [200, 20, 20]).all(axis=-1).any()  # the matched-entity line in its colour
    gif = write_overlay(tmp_path / "q.gif", frames, masks, query="the red cup", scores=[0.3], entity=0)
    with Image.open(gif) as image:
        assert image.n_frames == 4 and image.size[1] > 256 + 60 and image.size[0] >= 2 * 256 + 4


def test_ground_query_on_a_synthetic_clip(synth_tiny: Path) -> None:
    torch.manual_seed(0)
    model = henasy_tiny()
    clip = load_clip(model, str(_first_chunk(synth_tiny)), 1.0, 3.0)
    assert clip.shape == (3, 4, 64, 64)
    for query in ("the red cup", "picking up the knife"):  # noun and verb-phrase queries
        result = ground_query(model, clip, query)
        assert result.masks.shape == (4, 64, 64) and result.frames.shape == (4, 64, 64, 3)
        assert 0.0 <= result.masks.min() and result.masks.max() <= 1.0
        assert result.entity == int(np.argmax(result.scores)) and len(result.scores) == 4
    with pytest.raises(BenchError, match="no such file"):
        load_clip(model, "missing.mp4", 0.0, 1.0)
    with pytest.raises(BenchError, match="--end"):
        load_clip(model, str(_first_chunk(synth_tiny)), 2.0, 1.0)


def test_bench_ground_command(synth_tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    torch.manual_seed(0)
    ckpt = tmp_path / "henasy_tiny.pt"
    torch.save({"state_dict": henasy_tiny().state_dict()}, ckpt)
    out = tmp_path / "cup.png"
    args = ["ground", "henasy_tiny", "--video", str(_first_chunk(synth_tiny)), "--start", "1", "--end", "3"]
    code = main([*args, "--query", "the red cup", "--ckpt", str(ckpt), "--out", str(out), "--format", "json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["entity"] in range(4) and report["frames"] == 4 and Path(report["out"]) == out
    with Image.open(out) as image:  # 64 px frames drawn at 256 px, under the query and scores
        assert image.size[0] >= 4 * 256 + 3 * 4 and image.size[1] > 2 * 256 + 4 + 60
    uid = _first_chunk(synth_tiny).parent.name[: -len(".mp4")]  # a video_uid under --data-root
    gif = tmp_path / "knife.gif"
    code = main(
        [
            "ground",
            "henasy_tiny",
            "--video",
            uid,
            "--data-root",
            str(synth_tiny),
            "--start",
            "1",
            "--end",
            "3",
            "--query",
            "picking up the knife",
            "--out",
            str(gif),
        ]
    )
    assert code == 0 and gif.is_file()
    assert "entity" in capsys.readouterr().out
    assert main([*args, "--query", "cup", "--out", str(tmp_path / "x.jpg")]) == 2
    lavila_png = tmp_path / "lavila.png"  # a dual encoder grounds through patch–query similarity
    assert main(["ground", "lavila_tiny", *args[2:], "--query", "cup", "--out", str(lavila_png)]) == 0
    assert lavila_png.is_file()
