"""Evaluation protocols behind the paper's numbers: EGTEA's multi-view 16-frame protocol, EK100-CLS verb/noun.

Hand-computed cases: max over views on tiny multi-view logits; the bilinear temporal_embed inflation LaViLa
uses to evaluate a 4-frame model at 16 frames (and that adapting the model in memory gives exactly what
building it for 16 frames and loading the 4-frame weights gives); verb / noun scores marginalised from tiny
action logits (LaViLa ``evaluation_ek100cls.marginalize``). Then the records on the tiny synthetic set, and
the Table 1 sweep passing the EGTEA protocol to its jobs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from bench_support import one_thread  # noqa: F401 (autouse fixture)
from torch import nn

from baselines.lavila import fit_temporal_embed
from benchmarks.egtea import PROTOCOLS, model_at_frames, pool_views, resolve_views
from benchmarks.metrics import (
    ek100_cls_marginals,
    ek100_marginal_indexes,
    ek100_marginalize,
    mean_class_accuracy,
    topk_accuracy,
)
from benchmarks.runner import evaluate, load_model
from henasy.core.errors import BenchError, DataFormatError
from henasy.core.factory import create_model


# ----------------------------------------------------------------------------------- EGTEA: views
def test_max_over_views_by_hand() -> None:
    """2 clips × 3 views × 3 classes; max over views, then argmax (LaViLa eval_zeroshot.py)."""
    view_logits = np.array(
        [
            [[0.9, 0.0, 0.0], [0.0, 0.5, 0.0], [0.0, 0.5, 0.1]],  # max [0.9, 0.5, 0.1] → 0; mean → 1
            [[0.2, 0.1, 0.3], [0.1, 0.6, 0.2], [0.0, 0.0, 0.7]],  # max [0.2, 0.6, 0.7] → 2; mean → 2
        ],
        dtype=np.float32,
    )
    pooled = pool_views(view_logits, "max")  # (2, 3)
    np.testing.assert_allclose(pooled, [[0.9, 0.5, 0.1], [0.2, 0.6, 0.7]])
    target = np.array([1, 2])
    assert topk_accuracy(pooled, target, ks=(1,))["top1"] == 50.0  # clip 0 predicted 0, clip 1 right
    # confusion-matrix classes = {0 (predicted), 1, 2 (targets)}: recalls 0, 0, 1 → 33.3
    assert mean_class_accuracy(pooled, target) == pytest.approx(100 / 3)
    mean = pool_views(view_logits, "mean")
    assert topk_accuracy(mean, target, ks=(1,))["top1"] == 100.0  # mean pooling would score both right


def test_protocol_presets_and_overrides() -> None:
    lavila = resolve_views({"protocol": "lavila"}, model_frames=4)
    assert lavila == {
        "splits": ("test_split1",),
        "clip_length": 16,
        "num_clips": 10,
        "num_crops": 3,
        "clip_stride": 2,
    }
    single = resolve_views({"protocol": "single_view"}, model_frames=4)
    assert (single["clip_length"], single["num_clips"], single["num_crops"]) == (4, 1, 1)
    hh = resolve_views({"protocol": "helpinghands", "frames": 8, "num_clips": 2}, model_frames=4)
    assert (hh["splits"], hh["clip_length"], hh["num_clips"], hh["num_crops"]) == (
        PROTOCOLS["helpinghands"]["splits"],
        8,
        2,
        1,
    )


# -------------------------------------------------------------------- EGTEA: 16 frames on a 4-frame model
def test_bilinear_temporal_inflation_by_hand() -> None:
    """[a, b] → 4 frames, align_corners=False: source positions -0.25, 0.25, 0.75, 1.25 (clamped)."""
    embed = torch.tensor([[[1.0, 10.0], [3.0, 30.0]]])  # (1, 2, D=2)
    out = fit_temporal_embed(embed, 4)
    expected = [[1.0, 10.0], [1.5, 15.0], [2.5, 25.0], [3.0, 30.0]]
    torch.testing.assert_close(out, torch.tensor([expected]))
    torch.testing.assert_close(fit_temporal_embed(out, 2), out[:, :2])  # fewer frames: truncation


def test_model_at_frames_equals_building_for_16_frames_and_loading() -> None:
    """LaViLa's way (build for 16 frames, load the 4-frame weights with inflation) = the in-memory copy."""
    model = load_model("lavila_tiny").eval()
    embed_before = model.visual.temporal_embed.detach().clone()
    with torch.no_grad():
        model.visual.temporal_embed.copy_(torch.randn_like(embed_before))  # a non-zero embed to inflate
    adapted, resized = model_at_frames(model, 16)
    assert resized == ["visual.temporal_embed"] and adapted.num_frames == 16
    assert model.num_frames == 4 and model.visual.temporal_embed.shape[1] == 4  # the original is untouched
    reference = create_model("lavila_tiny", num_frames=16)
    reference.load_checkpoint(model.state_dict())
    reference.eval()
    torch.testing.assert_close(adapted.visual.temporal_embed, reference.visual.temporal_embed)
    video = torch.randn(2, 3, 16, model.image_size, model.image_size)
    with torch.no_grad():
        torch.testing.assert_close(adapted.encode_video(video), reference.encode_video(video))
    assert model_at_frames(model, 4) == (model, [])


def test_model_at_frames_resizes_the_helpinghands_decoder_too() -> None:
    """HelpingHands test_egtea.py inflates the decoder's temporal_embed as well as the backbone's."""
    model = load_model("helpinghands_tiny").eval()
    adapted, resized = model_at_frames(model, 8)
    assert sorted(resized) == ["backbone.visual.temporal_embed", "decoder.temporal_embed"]
    with torch.no_grad():
        out = adapted.encode_video(torch.randn(1, 3, 8, model.image_size, model.image_size))
    assert out.shape == (1, model.embed_dim) and torch.isfinite(out).all()


def test_model_without_a_temporal_embed_is_refused() -> None:
    class Frameless(nn.Module):
        num_frames = 4

        def __init__(self) -> None:
            super().__init__()
            self.proj = nn.Linear(2, 2)

    with pytest.raises(BenchError, match=r"--set model.num_frames=16"):
        model_at_frames(Frameless(), 16)


# ------------------------------------------------------------------------------- EK100-CLS: marginals
def test_marginal_indexes_follow_lavila() -> None:
    groups = ek100_marginal_indexes(np.array([0, 0, 2]))  # verb 1 is in no action class
    assert [g.tolist() for g in groups] == [[0, 1], [0], [2]]  # LaViLa: an absent id gets [0]
    probs = np.array([[0.2, 0.3, 0.5]])
    np.testing.assert_allclose(ek100_marginalize(probs, groups), [[0.5, 0.2, 0.5]])


def test_verb_noun_marginals_by_hand() -> None:
    """Actions (verb, noun): (0, 0), (0, 1), (1, 0). Logits log([.3, .3, .4]) at τ = 1 are those
    probabilities: verbs [0.6, 0.4], nouns [0.7, 0.3]. The top action (1, 0) is not the top verb."""
    verbs, nouns = np.array([0, 0, 1]), np.array([0, 1, 0])
    logits = np.log(np.array([[0.3, 0.3, 0.4]], dtype=np.float32))
    verb, noun = ek100_cls_marginals(logits, verbs, nouns, temperature=1.0)
    np.testing.assert_allclose(verb, [[0.6, 0.4]], rtol=1e-6)
    np.testing.assert_allclose(noun, [[0.7, 0.3]], rtol=1e-6)
    assert topk_accuracy(logits, np.array([2]), ks=(1,))["top1"] == 100.0  # action (1, 0) right
    assert topk_accuracy(verb, np.array([1]), ks=(1,))["top1"] == 0.0  # verb 0 wins by 0.6 > 0.4
    assert topk_accuracy(noun, np.array([0]), ks=(1,))["top1"] == 100.0
    # τ = 1/4: probabilities ∝ [.3⁴, .3⁴, .4⁴] = [.0081, .0081, .0256] → verb 1 = .0256 / .0418
    verb, _ = ek100_cls_marginals(logits, verbs, nouns, temperature=0.25)
    np.testing.assert_allclose(verb, [[0.0162 / 0.0418, 0.0256 / 0.0418]], rtol=1e-6)
    with pytest.raises(BenchError, match="temperature"):
        ek100_cls_marginals(logits, verbs, nouns, temperature=0.0)
    with pytest.raises(BenchError, match="one verb and one noun class per action"):
        ek100_cls_marginals(logits, verbs[:2], nouns, temperature=1.0)


# -------------------------------------------------------------------------- records on the tiny set
@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    return load_model("lavila_tiny")


def test_ek100_cls_record_has_action_verb_and_noun(model: torch.nn.Module, synth_tiny: Path) -> None:
    (rec,) = evaluate(
        model, ["ek100_cls"], synth_tiny, model_id="lavila_tiny", limit=6, num_workers=0, progress=False
    )
    m, per, p = rec["metrics"], rec["per_item"], rec["protocol"]
    assert set(m) == {"top1", "top5", "verb_top1", "verb_top5", "noun_top1", "noun_top5"}
    for kind in ("verb", "noun"):
        assert m[f"{kind}_top1"] == pytest.approx(100 * np.mean(per[f"correct_{kind}_top1"]))
        assert m[f"{kind}_top5"] == pytest.approx(100 * np.mean(per[f"correct_{kind}_top5"]))
        assert m[f"{kind}_top5"] >= m[f"{kind}_top1"]
    assert m["top1"] == pytest.approx(100 * np.mean(per["correct_top1"]))  # top1 stays the action accuracy
    assert p["marginal_temperature"] == 0.07 and p["num_verbs"] >= 2 and "action" in p["metrics"]["top1/top5"]


def test_egtea_record_states_the_multi_view_protocol(model: torch.nn.Module, synth_tiny: Path) -> None:
    opts = {"egtea": {"num_clips": 2, "num_crops": 1}}  # LaViLa's protocol (16 frames), fewer views
    (rec,) = evaluate(
        model,
        ["egtea"],
        synth_tiny,
        model_id="lavila_tiny",
        limit=2,
        num_workers=0,
        progress=False,
        options=opts,
    )
    p = rec["protocol"]
    assert (p["protocol"], p["clip_length"], p["model_num_frames"], p["view_pooling"]) == (
        "lavila",
        16,
        4,
        "max",
    )
    assert p["views"] == "16 frames x 2 clips x 1 crops, stride 2, max over 2 views"
    assert "visual.temporal_embed" in p["temporal_embed"] and p["frames"]["num_frames"] == 16
    assert model.num_frames == 4 and model.visual.temporal_embed.shape[1] == 4  # other benchmarks unaffected
    (single,) = evaluate(
        model, ["egtea"], synth_tiny, model_id="lavila_tiny", limit=2, num_workers=0, progress=False,
        options={"egtea": {"protocol": "single_view"}},
    )  # fmt: skip
    assert single["protocol"]["views"] == "4 frames x 1 clips x 1 crops, stride 2, max over 1 views"
    assert single["protocol"]["temporal_embed"] == "as built"


# --------------------------------------------------------------------------------- the Table 1 sweep
def test_table1_sweep_runs_egtea_at_16_frames_x_10_clips_x_3_crops() -> None:
    from sweeps.expand import expand
    from sweeps.job import _options_for
    from sweeps.spec import load_spec

    spec = load_spec("tables/table1")
    paper = [r for r in expand(spec, scale="paper", data_root="/d") if r.stage is None]  # rows, not the stage
    assert paper and all("egtea" in r.benchmarks for r in paper)
    for run in paper:
        egtea = _options_for(run, "egtea")["egtea"]
        views = resolve_views({"protocol": "lavila", **egtea}, model_frames=4)
        assert (views["clip_length"], views["num_clips"], views["num_crops"]) == (16, 10, 3)
        assert egtea.get("view_pooling", "max") == "max"
        assert _options_for(run, "egomcq") is None
    smoke = [r for r in expand(spec, scale="smoke", data_root="/d") if r.stage is None][0]
    assert _options_for(smoke, "egtea")["egtea"]["frames"] == 16  # cheap (2 views), but the same clip length


def test_sweep_eval_options_are_checked_at_their_line(tmp_path: Path) -> None:
    from sweeps.expand import expand
    from sweeps.spec import load_spec

    def spec_with(options: str) -> Path:
        path = tmp_path / "spec.yaml"
        path.write_text(
            "name: test/options\nbase:\n  model: lavila_tiny\n  benchmarks: [egtea]\n"
            f"scales:\n  smoke:\n    eval: {{options: {options}}}\nrows:\n  - label: a\n"
        )
        return path

    with pytest.raises(DataFormatError, match=r"option frames=0 is not valid") as err:
        expand(load_spec(str(spec_with("{egtea: {frames: 0}}"))), scale="smoke", data_root=str(tmp_path))
    assert "line 7" in str(err.value)
    with pytest.raises(DataFormatError, match="not among the evaluated benchmarks"):
        expand(load_spec(str(spec_with("{egomcq: {x: 1}}"))), scale="smoke", data_root=str(tmp_path))
    with pytest.raises(DataFormatError, match="plain value"):
        load_spec(str(spec_with("{egtea: {frames: [16]}}")))
