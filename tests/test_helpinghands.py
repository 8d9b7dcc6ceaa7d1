"""Tests for ``baselines/helpinghands.py`` and ``baselines/box_losses.py``: HelpingHands."""

from __future__ import annotations

import math
import os

import pytest
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment

import baselines.box_losses as box_losses
from baselines.box_losses import (
    box_cxcywh_to_xyxy,
    box_xyxy_to_cxcywh,
    generalized_box_iou,
    match_min_cost,
    matched_box_loss,
    rasterize_boxes,
    set_box_loss,
)
from baselines.helpinghands import (
    DecoderLayer,
    HelpingHands,
    helpinghands_tiny,
    mean_positive_nce,
    noun_matching_loss,
    noun_text,
)
from henasy.core.catalog import MODELS
from henasy.core.errors import BenchError, CheckpointError
from henasy.core.factory import create_model
from henasy.core.interface import VideoTextModel

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def official_objdecoder_spec(
    *,
    hidden: int = 512,
    layers: int = 6,
    ffn: int = 2048,
    queries: int = 13,
    classes: int = 22048,
    frames: int = 4,
    patches: int = 256,
    feature_dim: int = 1024,
    text_dim: int = 768,
    vid_dim: int = 768,
    joint: int = 256,
) -> dict[str, tuple[int, ...]]:
    """Key names and shapes of the released ``ObjDecoder`` state_dict (model/tfm_decoder.py),
    written out by hand; defaults = ``helping-hand-ckpt-nq12.pth.tar`` (TSF-L backbone, 12 + 1 queries)."""
    spec: dict[str, tuple[int, ...]] = {
        "txt_proj.1.weight": (joint, text_dim),
        "txt_proj.1.bias": (joint,),
        "vid_proj.0.weight": (joint, vid_dim),
        "vid_proj.0.bias": (joint,),
        "transformer.pre_norm.weight": (hidden,),
        "transformer.pre_norm.bias": (hidden,),
        "transformer.decoder.norm.weight": (hidden,),
        "transformer.decoder.norm.bias": (hidden,),
        "class_embed.weight": (classes, hidden),
        "class_embed.bias": (classes,),
        "bbox_embed.layers.0.weight": (hidden, hidden),
        "bbox_embed.layers.0.bias": (hidden,),
        "bbox_embed.layers.1.weight": (hidden, hidden),
        "bbox_embed.layers.1.bias": (hidden,),
        "bbox_embed.layers.2.weight": (4, hidden),
        "bbox_embed.layers.2.bias": (4,),
        "query_embed.weight": (queries, hidden),
        "frame_index.weight": (frames, hidden),
        "frame_proj.weight": (hidden, 2 * hidden),
        "frame_proj.bias": (hidden,),
        "pos_embed": (1, patches + 1, hidden),
        "temporal_embed": (1, frames, hidden),
        "proj.weight": (hidden, feature_dim),
        "obj_proj.0.weight": (hidden, hidden),
        "obj_proj.0.bias": (hidden,),
        "obj_proj.2.weight": (joint, hidden),
        "obj_proj.2.bias": (joint,),
    }
    for i in range(layers):
        layer = f"transformer.decoder.layers.{i}."
        for attn in ("self_attn", "multihead_attn"):
            spec[layer + attn + ".in_proj_weight"] = (3 * hidden, hidden)
            spec[layer + attn + ".in_proj_bias"] = (3 * hidden,)
            spec[layer + attn + ".out_proj.weight"] = (hidden, hidden)
            spec[layer + attn + ".out_proj.bias"] = (hidden,)
        spec[layer + "linear1.weight"] = (ffn, hidden)
        spec[layer + "linear1.bias"] = (ffn,)
        spec[layer + "linear2.weight"] = (hidden, ffn)
        spec[layer + "linear2.bias"] = (hidden,)
        for norm in ("norm1", "norm2", "norm3"):
            spec[layer + norm + ".weight"] = (hidden,)
            spec[layer + norm + ".bias"] = (hidden,)
    return spec


TINY_SPEC = dict(
    hidden=64, layers=2, ffn=128, classes=8, patches=16, feature_dim=96, text_dim=96, vid_dim=96, joint=64
)


def official_checkpoint(spec: dict[str, tuple[int, ...]], seed: int = 0) -> dict:
    """A random-valued checkpoint in the released layout (run/train.py ``save_dict``)."""
    gen = torch.Generator().manual_seed(seed)
    state = {k: torch.randn(shape, generator=gen) for k, shape in spec.items()}
    optimizer = {"state": {}, "param_groups": [{"lr": 3e-5, "weight_decay": 1e-5, "params": [0, 1]}]}
    return {"epoch": 3, "state_dict": state, "best_acc": 0.61, "optimizer": optimizer, "iteration": 2500}


@pytest.fixture(scope="module")
def tiny() -> HelpingHands:
    torch.manual_seed(0)
    return helpinghands_tiny().eval()


def _video(model: HelpingHands, batch: int, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    size = model.image_size
    return torch.randn(batch, 3, model.num_frames, size, size, generator=gen)


# --------------------------------------------------------------------------------------------- box geometry


def test_giou_of_two_boxes_by_hand():
    a = torch.tensor([0.0, 0.0, 2.0, 2.0])
    b = torch.tensor([1.0, 1.0, 3.0, 3.0])
    # intersection 1, union 7, enclosing box 3×3 = 9: GIoU = 1/7 − (9 − 7)/9
    assert generalized_box_iou(a, b).item() == pytest.approx(1 / 7 - 2 / 9, abs=1e-6)
    assert generalized_box_iou(a, a).item() == pytest.approx(1.0, abs=1e-6)
    far = torch.tensor([3.0, 0.0, 4.0, 1.0])  # disjoint: IoU 0, hull 4×2 = 8, union 5
    assert generalized_box_iou(a, far).item() == pytest.approx(-3 / 8, abs=1e-6)
    pairwise = generalized_box_iou(torch.stack([a, b])[:, None], torch.stack([a, b, far])[None])
    assert pairwise.shape == (2, 3) and pairwise[1, 1].item() == pytest.approx(1.0, abs=1e-6)


def test_box_format_conversions_by_hand():
    xyxy = torch.tensor([[0.1, 0.2, 0.5, 0.8]])
    assert torch.allclose(box_xyxy_to_cxcywh(xyxy), torch.tensor([[0.3, 0.5, 0.4, 0.6]]))
    assert torch.allclose(box_cxcywh_to_xyxy(box_xyxy_to_cxcywh(xyxy)), xyxy)


def test_rasterize_box_by_hand():
    mask = rasterize_boxes(torch.tensor([0.25, 0.0, 0.75, 0.5]), 4, 4)  # pixel centres 0.125, 0.375, ...
    expected = torch.tensor([[0, 1, 1, 0], [0, 1, 1, 0], [0, 0, 0, 0], [0, 0, 0, 0]], dtype=torch.float32)
    assert torch.equal(mask, expected)


# ------------------------------------------------------------------------------------------------ matching


def test_hungarian_on_a_2x2_cost_by_hand():
    cost = torch.tensor([[[1.0, 2.0], [3.0, 10.0]]])  # (F=1, Q=2, G=2): greedy would give t0→q0 (total 11)
    assert match_min_cost(cost, torch.ones(1, 2, dtype=torch.bool)).tolist() == [[1, 0]]  # total 3 + 2 = 5
    only_second = torch.tensor([[False, True]])  # target 0 absent: target 1 takes its best query, q0
    assert match_min_cost(cost, only_second)[0, 1].item() == 0


def test_enumeration_and_scipy_paths_find_the_optimal_assignment(monkeypatch):
    gen = torch.Generator().manual_seed(0)
    cost = torch.rand(30, 10, 3, generator=gen)
    valid = torch.rand(30, 3, generator=gen) > 0.3
    fast = match_min_cost(cost, valid)
    monkeypatch.setattr(box_losses, "ENUMERATION_LIMIT", 0)
    slow = match_min_cost(cost, valid)
    for f in range(30):
        cols = valid[f].nonzero().flatten()
        rows, picked = linear_sum_assignment(cost[f][:, cols].numpy())
        best = cost[f][rows, cols[picked]].sum()
        for found in (fast, slow):
            q = found[f, cols]
            assert len(set(q.tolist())) == len(cols)  # distinct queries
            assert cost[f][q, cols].sum() == pytest.approx(best.item(), abs=1e-6)


# -------------------------------------------------------------------------------------------------- losses


def test_matched_box_loss_by_hand():
    pred = torch.tensor([[[0.5, 0.5, 0.2, 0.2], [0.1, 0.9, 0.05, 0.05]]])  # (F=1, Q=2, 4) cxcywh
    target = torch.tensor([[[0.45, 0.4, 0.65, 0.6]]])  # (1, G=1, 4) xyxy = cxcywh (0.55, 0.5, 0.2, 0.2)
    out = matched_box_loss(pred, target, torch.ones(1, 1, dtype=torch.bool))
    # query 0 matches; L1 = 0.05; intersection 0.15·0.2 = 0.03, union 0.05, hull 0.25·0.2 = 0.05: GIoU = 0.6
    assert out["l1"].item() == pytest.approx(0.05, abs=1e-6)
    assert out["giou"].item() == pytest.approx(0.4, abs=1e-6)
    assert out["loss"].item() == pytest.approx(5 * 0.05 + 2 * 0.4, abs=1e-5)
    layers = torch.stack([pred, pred])  # auxiliary losses: every layer matched and summed
    assert set_box_loss(layers, target, torch.ones(1, 1, dtype=torch.bool)).item() == pytest.approx(
        2.1, abs=1e-5
    )
    none = matched_box_loss(pred, target, torch.zeros(1, 1, dtype=torch.bool))
    assert none["loss"].item() == 0.0


def test_mean_positive_nce_by_hand():
    logits = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    diag = torch.eye(2, dtype=torch.bool)
    assert mean_positive_nce(logits, diag).item() == pytest.approx(2 * (math.log(1 + math.e) - 1), abs=1e-6)
    pos = torch.tensor([[True, True], [False, True]])  # row 0 has two positives: mean of their log-probs
    lp = 1 - math.log(1 + math.e)  # log p of the larger logit
    ln = -math.log(1 + math.e)  # log p of the smaller one
    rows = ((lp + ln) / 2 + lp) / 2
    cols = (lp + (ln + lp) / 2) / 2  # column 1 has positives rows 0 and 1
    assert mean_positive_nce(logits, pos).item() == pytest.approx(-rows - cols, abs=1e-6)


def test_noun_matching_loss_by_hand():
    tau = 0.5  # large enough that the loss is not lost in float32 rounding
    nouns = torch.eye(3)  # three orthogonal nouns
    queries = torch.stack([nouns[2], nouns[0]])[None]  # (B=1, K=2, E): query 1 is noun 0
    loss = noun_matching_loss(nouns, queries, torch.tensor([[0, -1]]), temperature=tau)
    expected = -math.log(math.exp(1 / tau) / (math.exp(1 / tau) + 2))  # logits (1, 0, 0) / τ
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    similar = torch.tensor([[1.0, 0.0, 0.0], [0.8, 0.6, 0.0], [0.0, 0.0, 1.0]])  # cos(n0, n1) = 0.8 > 0.6
    loss = noun_matching_loss(similar, queries, torch.tensor([[0, -1]]), temperature=tau)
    expected = -math.log(math.exp(1 / tau) / (math.exp(1 / tau) + math.exp(-1 / tau) + 1))  # n1 → −1
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_noun_text_and_noun_targets(tiny):
    assert noun_text("bag_(pouch,_sack)") == "bag" and noun_text("cutting_board") == "cutting board"
    tiny.bind_data(["cup_(mug)", "hand", "bowl", "floor", "knife", "pan", "egg"])
    assert tiny.noun_features.shape == (7, 96) and tiny.noun_excluded.tolist() == [0, 1, 0, 1, 0, 0, 0]
    tags = torch.tensor([[1, 1, 1, 1, 1, 1, 1], [0, 1, 0, 0, 0, 0, 1.0]])
    assert tiny.noun_targets(tags).tolist() == [[0, 2, 4, 5], [6, -1, -1, -1]]  # ≤ 4, hand/floor dropped


# -------------------------------------------------------------------------------------------- architecture


def test_decoder_layer_is_pre_norm_detr_order():
    """Without positional terms the HH layer is PyTorch's pre-norm decoder layer (same parameter names)."""
    torch.manual_seed(0)
    ours = DecoderLayer(32, 4, 64, dropout=0.0).eval()
    ref = torch.nn.TransformerDecoderLayer(32, 4, 64, dropout=0.0, norm_first=True, batch_first=True).eval()
    ours.load_state_dict(ref.state_dict())
    tgt, memory = torch.randn(2, 5, 32), torch.randn(2, 7, 32)
    out = ours(tgt, memory, torch.zeros(1, 7, 32), torch.zeros(1, 5, 32))
    assert torch.allclose(out, ref(tgt, memory), atol=1e-5)


def test_memory_positions_are_tiled_spatial_plus_frame_terms(tiny):
    dec = tiny.decoder
    pos = dec.memory_pos_embed()[0]  # (T·N, C), frame-major
    n = dec.patches_per_frame
    t, i = 2, 5
    assert torch.allclose(pos[t * n + i], dec.pos_embed[0, 1 + i] + dec.temporal_embed[0, t])


def test_paper_preset_has_216_5_million_parameters():
    with torch.device("meta"):
        model = MODELS.get("helpinghands")()
    total = sum(p.numel() for p in model.parameters())
    decoder = sum(p.numel() for p in model.decoder.parameters())
    assert abs(total - 216.5e6) < 2e6  # LaViLa-B 177.7 M + decoder 38.8 M
    assert abs(decoder - 38.8e6) < 0.1e6
    assert all(not p.requires_grad for p in model.backbone.parameters())
    assert (
        not model.decoder.class_embed.weight.requires_grad and model.decoder.query_embed.weight.requires_grad
    )


def test_official_decoder_checkpoint_loads_into_tsfl_preset_on_meta():
    with torch.device("meta"):
        model = MODELS.get("helpinghands_tsfl")()
    spec = official_objdecoder_spec()
    assert {k: tuple(v.shape) for k, v in model.decoder.state_dict().items()} == spec
    ckpt = official_checkpoint(spec)
    report = model.load_checkpoint(ckpt)
    assert report.ok and report.missing == [] and report.unexpected == [] and report.loaded == len(spec)
    assert torch.equal(model.decoder.query_embed.weight, ckpt["state_dict"]["query_embed.weight"])
    assert not model.decoder.class_embed.weight.requires_grad  # load keeps the frozen heads frozen


def test_official_checkpoint_files_load_with_exact_values(tmp_path):
    ckpt = official_checkpoint(official_objdecoder_spec(**TINY_SPEC), seed=1)
    hh_path = tmp_path / "helping-hand-ckpt.pth.tar"
    torch.save(ckpt, hh_path)
    lavila_state = {
        f"module.{k}": torch.randn_like(v) for k, v in helpinghands_tiny().backbone.state_dict().items()
    }
    lavila_path = tmp_path / "lavila.pth"
    torch.save({"epoch": 1, "state_dict": lavila_state}, lavila_path)
    model = create_model(  # model.lavila_checkpoint is the alias of backbone_checkpoint
        "helpinghands_tiny", checkpoint=str(hh_path), lavila_checkpoint=str(lavila_path)
    )
    for key, value in ckpt["state_dict"].items():
        assert torch.equal(model.decoder.state_dict()[key], value), key
    assert torch.equal(model.backbone.visual.pos_embed, lavila_state["module.visual.pos_embed"])
    assert all(not p.requires_grad for p in model.backbone.parameters())
    whole = helpinghands_tiny()  # a whole-model state_dict (trainer checkpoint) round-trips too
    assert whole.load_checkpoint(model.state_dict()).ok
    assert torch.equal(whole.decoder.frame_proj.weight, model.decoder.frame_proj.weight)


def test_bad_checkpoints_and_options_are_reported(tiny):
    bad = official_checkpoint(official_objdecoder_spec(**{**TINY_SPEC, "queries": 5}))
    with pytest.raises(CheckpointError, match="query_embed.weight"):
        helpinghands_tiny().load_checkpoint(bad)
    with pytest.raises(CheckpointError, match="neither"):
        tiny.load_checkpoint({"foo.weight": torch.zeros(1)})
    with pytest.raises(BenchError, match="unknown HelpingHands option"):
        helpinghands_tiny(num_querys=3)
    assert helpinghands_tiny(num_frames=2, num_layers=1).decoder.frame_index.weight.shape == (2, 64)


# ---------------------------------------------------------------------------------------- interface, grounding


def test_follows_the_interface_and_is_not_autoregressive(tiny):
    assert isinstance(tiny, VideoTextModel) and HelpingHands.autoregressive is False
    video = _video(tiny, 2)
    v = tiny.encode_video(video)
    t = tiny.encode_text(tiny.tokenize(["#C C cuts a tomato", "#C C opens a jar"]))
    assert v.shape == t.shape == (2, tiny.embed_dim)
    assert torch.allclose(v.norm(dim=-1), torch.ones(2)) and torch.allclose(t.norm(dim=-1), torch.ones(2))
    assert tiny.train().backbone.training is False  # the frozen backbone stays in eval mode
    tiny.eval()


def test_predict_boxes_and_ground(tiny):
    video = _video(tiny, 2, seed=1)
    boxes = tiny.predict_boxes(video)
    assert boxes.shape == (2, 13, tiny.num_frames, 4)
    assert (boxes >= 0).all() and (boxes <= 1).all() and (boxes[..., 2:] >= boxes[..., :2]).all()
    tokens = tiny.tokenize(["tomato", "opens the jar"])
    masks = tiny.ground(video, tokens)
    assert masks.shape == (2, tiny.num_frames, tiny.image_size, tiny.image_size)
    assert set(masks.unique().tolist()) <= {0.0, 1.0}
    # the mask is the rasterised box of the best-matching hand/object query
    states = tiny.query_states(video)[-1]
    scores = F.normalize(tiny.decoder.obj_proj(states[:, :-1]), dim=-1) @ tiny.encode_text(tokens)[0]
    best = scores[0].argmax().item()
    expected = rasterize_boxes(boxes[0, best], tiny.image_size, tiny.image_size)
    assert torch.equal(masks[0], expected)
    assert tiny.ground(video, tokens, size=(8, 12)).shape == (2, tiny.num_frames, 8, 12)


# ------------------------------------------------------------------------------------------------ training


def _batch(model: HelpingHands) -> dict:
    gen = torch.Generator().manual_seed(3)
    b, t = 4, model.num_frames
    xy = torch.rand(b, t, 4, 2, generator=gen) * 0.5
    wh = 0.1 + torch.rand(b, t, 4, 2, generator=gen) * 0.4
    texts = ["#C C cuts a tomato", "#C C opens a jar", "#C C takes a cup", "#C C washes a bowl"]
    nouns = torch.tensor(
        [[1, 0, 0, 0, 1, 0, 0], [0, 1, 0, 0, 0, 1, 0], [0, 0, 1, 0, 1, 0, 0], [0, 0, 0, 1, 0, 0, 1]]
    )
    return {
        "video": _video(model, b, seed=2),
        "text": model.tokenize(texts),
        "texts": texts,
        "verb_tags": torch.eye(4),
        "noun_tags": nouns.float(),
        "boxes": list(torch.cat([xy, xy + wh], dim=-1)),  # per-clip list, as the collate passes them
        "box_mask": list(torch.rand(b, t, 4, generator=gen) > 0.2),
    }


def test_tiny_helpinghands_loss_falls_on_a_fixed_batch():
    torch.manual_seed(0)
    model = helpinghands_tiny(dropout=0.0)
    model.bind_data(["tomato", "jar", "cup", "bowl", "knife", "lid", "sponge"])
    batch = _batch(model)
    frozen = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    params = [p for p in model.parameters() if p.requires_grad]
    assert params and all(n.startswith("decoder.") for n, p in model.named_parameters() if p.requires_grad)
    opt = torch.optim.AdamW(params, lr=2e-3)
    model.train()
    first = model.training_losses(batch)
    assert set(first) == {"loss", "egonce", "box", "noun"} and first["box"] > 0 and first["noun"] > 0
    for _ in range(25):
        out = model.training_losses(batch)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
    last = model.training_losses(batch)
    assert last["loss"] < 0.7 * first["loss"]
    assert last["box"] < first["box"] and last["noun"] < first["noun"]
    assert all(torch.equal(v, frozen[k]) for k, v in model.backbone.state_dict().items())


def test_training_losses_without_boxes_or_vocabulary_and_bad_boxes(tiny):
    batch = _batch(tiny)
    plain = {k: batch[k] for k in ("video", "text")}
    assert set(tiny.training_losses(plain)) == {"loss", "egonce"}
    first_two = {
        **plain,
        "boxes": torch.stack(batch["boxes"][:2]),
        "box_valid": torch.stack(batch["box_mask"][:2]),
    }
    assert "box" in tiny.training_losses(first_two)  # boxes for the positives only (B' < B̃)
    wrong = {**plain, "boxes": torch.zeros(4, 3, 4, 4), "box_valid": torch.ones(4, 3, 4, dtype=torch.bool)}
    with pytest.raises(ValueError, match="boxes must be"):
        tiny.training_losses(wrong)
    with pytest.raises(ValueError, match="box_valid"):
        tiny.training_losses({**plain, "boxes": torch.zeros(4, 4, 4, 4)})
    tiny.bind_data(["a", "b"])
    with pytest.raises(ValueError, match="noun_tags have 7 classes"):
        tiny.training_losses({**plain, "noun_tags": batch["noun_tags"]})


# ----------------------------------------------------------------------------- rephrased-caption positives


def test_mean_positive_nce_with_several_captions_per_clip_by_hand():
    # 3 text rows against 2 videos: texts 0 and 1 are captions of video 0 (narration + a paraphrase), text 2 of
    # video 1 (HH EgoNCE, multi_pad_mask branch: row r's positive is its own clip; columns average over the
    # clip's captions)
    logits = torch.tensor([[1.0, 0.0], [0.0, 0.0], [0.0, 1.0]])
    positives = torch.tensor([[True, False], [True, False], [False, True]])
    lp = 1 - math.log(1 + math.e)  # log-softmax of (1, 0) at the 1
    rows = (lp - math.log(2) + lp) / 3  # text → video, mean over the 3 texts
    big = math.log(math.e + 2)  # column softmax over the 3 texts: (1, 0, 0) and (0, 0, 1)
    cols = ((1 - big) + (0 - big)) / 2 / 2 + (1 - big) / 2  # video 0: mean of 2 positives; video 1: 1
    assert mean_positive_nce(logits, positives).item() == pytest.approx(-rows - cols, abs=1e-6)


def _captions(model: HelpingHands, lists: list[list[str]]) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, 5, L) ids and (B, 5) validity, as TrainCollate builds them."""
    ids = torch.zeros(len(lists), 5, model.tokenize([""]).shape[-1], dtype=torch.long)
    valid = torch.zeros(len(lists), 5, dtype=torch.bool)
    for i, captions in enumerate(lists):
        ids[i, : len(captions)] = model.tokenize(captions)
        valid[i, : len(captions)] = True
    return ids, valid


def test_rephrased_captions_are_extra_positives_of_their_clip(tiny):
    texts = ["#C C takes a cup", "#C C opens a jar", "#C C cuts a bread"]
    video = _video(tiny, 3, seed=5)
    lists = [
        [texts[0], "#C C grabs a mug", "#C C picks up a cup"],
        [texts[1]],
        [texts[2], "#C C slices a loaf"],
    ]
    ids, valid = _captions(tiny, lists)
    batch = {"video": video, "text": tiny.tokenize(texts), "rephrased_text": ids, "rephrased_valid": valid}
    with torch.no_grad():
        out = tiny.training_losses(batch)
        v = tiny.encode_video(video)  # (3, E)
        t = tiny.encode_text(tiny.tokenize([c for captions in lists for c in captions]))  # (6, E)
        owner = torch.tensor([0, 0, 0, 1, 2, 2])
        expected = mean_positive_nce(t @ v.T / 0.07, torch.eye(3, dtype=torch.bool)[owner])
        plain = tiny.training_losses({"video": video, "text": tiny.tokenize(texts)})
    assert out["egonce"].item() == pytest.approx(expected.item(), rel=1e-5)
    assert out["captions_per_clip"].item() == pytest.approx(2.0)
    assert abs(out["egonce"].item() - plain["egonce"].item()) > 1e-3  # the paraphrases change the loss
    # narration alone in every clip (the file had nothing, or its first caption did not match): plain EgoNCE
    ids, valid = _captions(tiny, [[t] for t in texts])
    with torch.no_grad():
        alone = tiny.training_losses({**batch, "rephrased_text": ids, "rephrased_valid": valid})
    assert alone["egonce"].item() == pytest.approx(plain["egonce"].item(), rel=1e-6)
    with pytest.raises(ValueError, match="narration as rephrased caption 0"):
        tiny.training_losses({**batch, "rephrased_valid": torch.zeros_like(valid)})


def test_caption_noun_lists_are_the_noun_targets_when_given(tiny):
    tiny.bind_data(["cup_(mug)", "hand", "bowl", "floor", "knife", "pan", "egg"])
    tags = torch.tensor([[1.0, 1, 0, 1, 0, 0, 0]])
    assert tiny.noun_targets(tags).tolist() == [[0, -1, -1, -1]]  # tags: hand and floor classes dropped
    # a caption noun list is used as built (HH extract_noun leaves "floor" in; it excludes words, not classes)
    assert tiny.noun_targets(tags, exclude=False).tolist() == [[0, 1, 3, -1]]
    batch = _batch(tiny)
    plain = {k: batch[k] for k in ("video", "text")}
    caption = torch.zeros(4, 7)
    caption[:, 3] = 1.0  # every clip's list: "floor" alone
    with torch.no_grad():
        by_tags = tiny.training_losses({**plain, "noun_tags": tags.expand(4, -1)})["noun"]
        by_list = tiny.training_losses(
            {**plain, "noun_tags": tags.expand(4, -1), "caption_noun_tags": caption}
        )["noun"]
        last = tiny.query_states(plain["video"])[-1]
        floor_only = tiny._noun_loss(last, caption, exclude=False)  # target: class 3 in every clip
        cup_only = tiny._noun_loss(last, tags.expand(4, -1))  # target: class 0 in every clip
    assert by_list.item() == pytest.approx(floor_only.item(), rel=1e-6)
    assert by_tags.item() == pytest.approx(cup_only.item(), rel=1e-6)
