"""Grounding mIoU end to end on the tiny synthetic set (HENASY App. D protocol).

Real grounding models (``henasy_tiny``, ``helpinghands_tiny``, and ``lavila_tiny`` through its
dense-similarity baseline) give valid records; constant-mask stand-ins
pin the scoring rules (an empty prediction scores 0, a full one scores the GT coverage); a model without
``ground`` fails with a clear message before any video is read.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from bench_support import one_thread  # noqa: F401 (autouse fixture)

from benchmarks.grounding import gt_masks
from benchmarks.runner import evaluate, load_model
from henasy.core.errors import BenchError
from henasy.data.grounding import load_grounding, load_mask
from henasy.data.layout import DatasetLayout
from henasy.data.video import AutoSource, ClipLoader


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    """An untrained ``lavila_tiny`` (seeded), shared by the module's tests."""
    return load_model("lavila_tiny")


class NoMasks(torch.nn.Module):
    """A stand-in model with ``lavila_tiny``'s preprocessing and no ``ground`` method."""

    def __init__(self, base: torch.nn.Module) -> None:
        super().__init__()
        self.base = base
        for name in ("num_frames", "image_size", "pixel_mean", "pixel_std", "embed_dim"):
            setattr(self, name, getattr(base, name))

    def tokenize(self, texts: list[str]) -> torch.Tensor:
        return self.base.tokenize(texts)


class ConstantMasks(NoMasks):
    """A stand-in grounding model: masks filled with ``value``."""

    def __init__(self, base: torch.nn.Module, value: float) -> None:
        super().__init__(base)
        self.value = value

    def ground(self, video: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        b, _, t, h, w = video.shape
        return torch.full((b, t, h, w), self.value)


@pytest.mark.parametrize("name", ["henasy_tiny", "helpinghands_tiny", "lavila_tiny"])
def test_grounding_models_get_a_record(name: str, synth_tiny: Path) -> None:
    (rec,) = evaluate(
        load_model(name), ["grounding"], synth_tiny, model_id=name, num_workers=0, progress=False
    )
    n = len(load_grounding(DatasetLayout(synth_tiny).grounding_json))
    assert rec["n_items"] == n == len(rec["per_item"]["iou"]) and rec["partial"] is False
    ious = np.array(rec["per_item"]["iou"], dtype=float)
    assert rec["metrics"]["mIoU"] == pytest.approx(100 * np.nanmean(ious))
    assert 0 <= rec["metrics"]["mIoU_noun"] <= 100 and 0 <= rec["metrics"]["mIoU_verb_phrase"] <= 100
    assert "per-frame max normalisation" in rec["protocol"]["binarisation"]


def test_empty_masks_score_zero_and_full_masks_score_the_coverage(
    model: torch.nn.Module, synth_tiny: Path
) -> None:
    root = DatasetLayout(synth_tiny)
    (empty,) = evaluate(
        ConstantMasks(model, 0.0),
        ["grounding"],
        synth_tiny,
        model_id="zeros",
        limit=4,
        num_workers=0,
        progress=False,
    )
    assert empty["metrics"]["mIoU"] == 0.0 and empty["partial"] is True
    (full,) = evaluate(
        ConstantMasks(model, 0.3),
        ["grounding"],
        synth_tiny,
        model_id="ones",
        limit=4,
        num_workers=0,
        progress=False,
    )
    loader = ClipLoader.for_model(model)
    source = AutoSource(root.ego4d_videos)
    expected = []
    for item in load_grounding(root.grounding_json)[:4]:
        fps, ids = loader.frame_ids(source, item.video_uid, item.start_sec, item.end_sec)
        mask = load_mask(item.mask_path)
        gt = gt_masks(
            mask.labels, mask.frame_times, item.entity_ids, [i / fps for i in ids], fps, model.image_size
        )
        expected.append(gt.reshape(len(gt), -1).mean(axis=1).mean())  # IoU of a full mask = GT coverage
    assert full["metrics"]["mIoU"] == pytest.approx(100 * np.mean(expected))


def test_a_model_without_ground_is_refused_before_anything_runs(
    model: torch.nn.Module, synth_tiny: Path
) -> None:
    with pytest.raises(BenchError, match=r"'no_masks' \(NoMasks\) has no ground\(video, tokens\)"):
        evaluate(
            NoMasks(model),
            ["egomcq", "grounding"],
            synth_tiny,
            model_id="no_masks",
            num_workers=0,
            progress=False,
        )
