"""Tests for ``henasy/model/losses.py`` (NEC Eq. 7, VEC Eq. 8, projection Eq. 9, total Eq. 10) on hand-computed
cases, and for where each loss's gradient goes in the HENASY model (local encoder / decoder, never the
frozen global and text encoders)."""

from __future__ import annotations

import math
import os

import pytest
import torch

from henasy.model.grouping import saliency_maps
from henasy.model.losses import (
    box_coverage,
    box_masks,
    dice_loss,
    match_boxes,
    nec_loss,
    projection_loss,
    total_loss,
    vec_loss,
    vec_weights,
)
from henasy.model.network import HenasyModel, henasy_tiny

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _ce(logits: list[float], target: int) -> float:
    return -logits[target] + math.log(sum(math.exp(v) for v in logits))


# ---------------------------------------------------------------------------------------------- NEC
def test_nec_hand_computed_with_hungarian_matching() -> None:
    entities = torch.tensor([[[1.0, 0.0], [0.6, 0.8]]])  # (B=1, E=2, D=2)
    nouns = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.9, -0.55]])  # (V=3, D)
    tags = torch.tensor([[1.0, 0.0, 1.0]])  # the narration mentions nouns 0 and 2
    # both nouns prefer entity 0 (1.0 and 0.9); the best one-to-one total is n0→e1 (0.6) + n2→e0 (0.9) = 1.5
    loss, pairs = nec_loss(entities, tags, nouns, temperature=0.5)
    expected = (_ce([1.2, 1.6, 0.2], 0) + _ce([2.0, 0.0, 1.8], 2)) / 2  # e1·n'/τ and e0·n'/τ
    assert pairs == 2
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_nec_matches_at_most_e_nouns_and_checks_shapes() -> None:
    entities = torch.nn.functional.normalize(torch.randn(2, 2, 4), dim=-1)
    nouns = torch.nn.functional.normalize(torch.randn(5, 4), dim=-1)
    tags = torch.tensor([[1.0, 1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0, 0.0]])
    assert nec_loss(entities, tags, nouns, 0.07)[1] == 2  # 3 nouns, 2 entities; the empty row adds none
    loss, pairs = nec_loss(entities, torch.zeros(2, 5), nouns, 0.07)
    assert pairs == 0 and loss.item() == 0.0
    with pytest.raises(ValueError, match="bind_data"):
        nec_loss(entities, torch.zeros(2, 4), nouns, 0.07)


# ---------------------------------------------------------------------------------------------- VEC
def _pooled(e: list[list[float]], a: list[float], tau_w: float) -> list[float]:
    sims = [sum(x * y for x, y in zip(ej, a)) / tau_w for ej in e]
    w = [math.exp(s) / sum(math.exp(t) for t in sims) for s in sims]  # softmax over entities at τ_w
    v = [sum(w[j] * e[j][d] for j in range(len(e))) for d in range(len(a))]
    n = math.sqrt(sum(x * x for x in v))
    return [x / n for x in v]


def test_vec_hand_computed_softmax_weighting() -> None:
    e = [[1.0, 0.0], [0.0, 1.0]]
    a = [[0.6, 0.8], [1.0, 0.0]]
    loss, count = vec_loss(
        torch.tensor([e]), torch.tensor(a), torch.tensor([0, 0]), torch.tensor([0, 1]), temperature=0.5
    )
    terms = []
    for p in range(2):
        pooled = _pooled(e, a[p], tau_w=0.5)  # default τ_w = the contrastive τ
        logits = [sum(x * y for x, y in zip(pooled, aj)) / 0.5 for aj in a]
        terms.append(_ce(logits, p))
    assert count == 2
    assert loss.item() == pytest.approx(sum(terms) / 2, rel=1e-5)


def test_vec_identical_phrases_are_positives() -> None:
    e = torch.tensor([[[1.0, 0.0], [0.0, 1.0]], [[0.8, 0.6], [0.6, -0.8]]])
    a = torch.tensor([[0.6, 0.8], [0.6, 0.8], [1.0, 0.0]])  # phrases 0 and 1 share their text
    loss, _ = vec_loss(e, a, torch.tensor([0, 1, 1]), torch.tensor([0, 0, 1]), temperature=1.0)
    terms = []
    for p, row, positives in ((0, 0, (0, 1)), (1, 1, (0, 1)), (2, 1, (2,))):
        pooled = _pooled(e[row].tolist(), a[p].tolist(), tau_w=1.0)
        logits = [sum(x * y for x, y in zip(pooled, aj)) for aj in a.tolist()]
        all_ = math.log(sum(math.exp(v) for v in logits))
        terms.append(all_ - math.log(sum(math.exp(logits[j]) for j in positives)))
    assert loss.item() == pytest.approx(sum(terms) / 3, rel=1e-5)
    zero, count = vec_loss(e, torch.zeros(0, 2), torch.zeros(0, dtype=torch.long), torch.zeros(0), 1.0)
    assert count == 0 and zero.item() == 0.0


def test_vec_weights_select_the_matching_entity() -> None:
    # §4.4 "prioritize the most relevant entity": E = 8 orthonormal entities, the phrase equals entity 3
    e = torch.eye(8)[None]  # (P=1, E=8, D=8)
    a = torch.eye(8)[3:4]  # (P=1, D)
    plain = vec_weights(e, a, 1.0)[0]  # τ_w = 1: cosines 1 vs 0 → e / (e + 7)
    assert plain[3].item() == pytest.approx(math.e / (math.e + 7), rel=1e-6) and plain[3].item() < 0.3
    sharp = vec_weights(e, a, 0.07)[0]  # τ_w = τ (the default): e^(1/τ) / (e^(1/τ) + 7)
    assert sharp[3].item() == pytest.approx(1 / (1 + 7 * math.exp(-1 / 0.07)), rel=1e-6) and sharp[3] > 0.9999
    # through vec_loss with the default weights e^avg ≈ entity 3, so the logits are e_3·a_j / τ
    phrases = torch.eye(8)[[3, 5]]  # a_0 = e_3, a_1 = e_5, both from clip 0
    loss, _ = vec_loss(e, phrases, torch.tensor([0, 0]), torch.tensor([0, 1]), temperature=0.07)
    expected = (_ce([1 / 0.07, 0.0], 0) + _ce([0.0, 1 / 0.07], 1)) / 2
    assert loss.item() == pytest.approx(expected, abs=1e-3)
    blurred, _ = vec_loss(
        e, phrases, torch.tensor([0, 0]), torch.tensor([0, 1]), 0.07, weight_temperature=1.0
    )
    assert blurred.item() > loss.item()  # τ_w = 1 pools a blurred entity: a lower positive logit


# ------------------------------------------------------------------------------------------ projection
def test_raw_saliency_cannot_fit_a_box_but_the_rescaled_map_can() -> None:
    # a perfect assignment on a 14×14 grid (K = 196): the 4×4 patches of the box belong to entity 0 only
    boot = torch.zeros(1, 1, 2, 196)  # (B, T, G=2, K): segment 0 = the box's patches, segment 1 = the rest
    inside = torch.zeros(14, 14, dtype=torch.bool)
    inside[2:6, 3:7] = True
    boot[0, 0, 0, inside.flatten()] = 1.0
    boot[0, 0, 1, ~inside.flatten()] = 1.0
    entity = torch.eye(2).reshape(1, 1, 2, 2)  # (B, T, E=2, G): segment g → entity g
    boxes = torch.tensor([3 / 14, 2 / 14, 7 / 14, 6 / 14]).view(1, 1, 1, 4)
    valid = torch.ones(1, 1, 1, dtype=torch.bool)
    saliency = saliency_maps(boot, entity, grid=(14, 14))  # (B, E, T, 14, 14), softmax over patches (Eq. 13)
    loss, count = projection_loss(saliency, boxes, valid, size=(14, 14))
    hi, lo = math.e / (16 * math.e + 180), 1 / (16 * math.e + 180)  # softmax values inside / outside the box
    per_axis = 1 - 2 * 4 * hi / (
        4 * hi**2 + 10 * lo**2 + 4 + 1e-5
    )  # profile [hi ×4, lo ×10] vs [1 ×4, 0 ×10]
    assert count == 1 and loss.item() == pytest.approx(2 * per_axis, rel=1e-5) and loss.item() > 1.9
    low = saliency.flatten(3).amin(-1)[..., None, None]
    high = saliency.flatten(3).amax(-1)[..., None, None]
    rescaled = (saliency - low) / (high - low)  # what proj_mask="rescaled_saliency" feeds Eq. 9
    assert projection_loss(rescaled, boxes, valid, size=(14, 14))[0].item() == pytest.approx(0.0, abs=1e-5)


def test_projection_loss_falls_on_a_fixed_batch_with_default_settings() -> None:
    # Eq. 9 with the default masks (per-frame rescaled Eq. 13 saliency) and Gumbel noise on, as trained
    torch.manual_seed(0)
    m = henasy_tiny(use_nec=False, use_vec=False)  # EgoNCE + L_proj, default proj_mask
    m.bind_data(NOUNS, None)
    m.train()
    batch = _batch(m)
    opt = torch.optim.AdamW([p for p in m.parameters() if p.requires_grad], lr=3e-4)  # the smoke preset's lr
    values = []
    for _ in range(12):
        out = m.training_losses(batch)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        values.append(out["proj"].item())
    # measured (last-3 mean / first): 0.827 here; seeds 0–4: 0.77–0.83. With tag_merge_init="identity" (the
    # Gumbel's random partition at full scale in every segment token) 0.87–0.94, failing on 3 of 5 seeds;
    # proj_mask="saliency" gave 1.7519 at all 15 steps
    assert sum(values[-3:]) / 3 < 0.9 * values[0], values


def test_dice_and_box_rasterisation_hand_computed() -> None:
    p, g = torch.tensor([1.0, 0.5, 0.0]), torch.tensor([1.0, 1.0, 0.0])
    assert dice_loss(p, g).item() == pytest.approx(1 - 2 * 1.5 / (1.25 + 2 + 1e-5), rel=1e-6)
    mask = box_masks(torch.tensor([[0.25, 0.0, 0.75, 0.5]]), 4, 4)[0]
    expected = torch.zeros(4, 4)
    expected[0:2, 1:3] = 1
    assert torch.equal(mask, expected)
    cover = box_coverage(torch.tensor([[0.125, 0.0, 0.5, 0.5]]), 4, 4)[0]
    assert torch.allclose(cover[0], torch.tensor([0.5, 1.0, 0.0, 0.0]))
    assert torch.allclose(cover[2], torch.zeros(4))


def test_projection_loss_hand_computed_and_matched_by_iou() -> None:
    masks = torch.zeros(1, 2, 1, 4, 4)  # (B, E, T, h, w)
    masks[0, 1, 0, :2, :2] = 0.5  # entity 1 covers the box's cells at half strength
    masks[0, 0, 0, 2:, 2:] = 1.0  # entity 0 is elsewhere
    boxes = torch.tensor([0.0, 0.0, 0.5, 0.5]).view(1, 1, 1, 4)
    valid = torch.ones(1, 1, 1, dtype=torch.bool)
    loss, count = projection_loss(masks, boxes, valid, size=(4, 4))
    # matched to entity 1: each axis profile p = [.5, .5, 0, 0] vs g = [1, 1, 0, 0] → dice 1 − 2/(0.5 + 2)
    assert count == 1
    assert loss.item() == pytest.approx(2 * (1 - 2 * 1.0 / (0.5 + 2 + 1e-5)), rel=1e-5)
    masks[0, 1, 0, :2, :2] = 1.0
    assert projection_loss(masks, boxes, valid, size=(4, 4))[0].item() == pytest.approx(0.0, abs=1e-4)
    assert projection_loss(masks, boxes, torch.zeros_like(valid), size=(4, 4))[1] == 0


def test_box_matching_is_one_to_one() -> None:
    masks = torch.zeros(1, 3, 1, 4, 4)
    masks[0, 0, 0] = 1.0  # entity 0 overlaps both boxes
    masks[0, 1, 0, :2, :2] = 1.0
    boxes = torch.tensor([[0.0, 0.0, 0.5, 0.5], [0.0, 0.0, 1.0, 1.0]]).view(1, 1, 2, 4)
    quads = match_boxes(masks, boxes, torch.ones(1, 1, 2, dtype=torch.bool))
    assert sorted((box, entity) for _, _, box, entity in quads) == [(0, 1), (1, 0)]


def test_total_loss_weights_each_term() -> None:
    terms = {
        "egonce": torch.tensor(2.0),
        "nec": torch.tensor(1.0),
        "vec": torch.tensor(4.0),
        "proj": torch.tensor(3.0),
    }
    weights = {"nec": 0.5, "vec": 0.5, "proj": 1.0}
    assert total_loss(terms, weights).item() == pytest.approx(2 + 0.5 + 2 + 3)


# -------------------------------------------------------------------------------------- in the model
NOUNS = ["cup_(mug)", "knife", "onion", "table", "plate"]
TEXTS = ["#C C picks up the cup", "#C C cuts the onion with the knife and puts the knife on the table"]


@pytest.fixture(scope="module")
def model() -> HenasyModel:
    torch.manual_seed(0)
    m = henasy_tiny()
    m.bind_data(NOUNS, None)
    return m.train()


def _batch(m: HenasyModel) -> dict:
    torch.manual_seed(5)
    boxes = torch.tensor([0.1, 0.2, 0.6, 0.7]).repeat(2, 4, 4, 1)
    return {
        "video": torch.randn(2, 3, 4, 64, 64),
        "text": m.tokenize(TEXTS),
        "texts": TEXTS,
        "noun_tags": torch.tensor([[1.0, 0, 0, 0, 0], [0, 1.0, 1.0, 1.0, 0]]),
        "verb_tags": torch.eye(2),
        "boxes": boxes,
        "box_valid": torch.ones(2, 4, 4, dtype=torch.bool),
    }


def _grads(m: HenasyModel, loss: torch.Tensor) -> dict[str, bool]:
    m.zero_grad(set_to_none=True)
    loss.backward()

    def reached(params: list[torch.nn.Parameter]) -> bool:
        return any(p.grad is not None and p.grad.abs().sum() > 0 for p in params)

    frozen = [
        *m.visual.parameters(),
        *m.transformer.parameters(),
        m.token_embedding.weight,
        m.text_projection,
    ]
    assert all(p.grad is None for p in frozen)  # frozen encoders never get a gradient
    return {
        "local": reached(list(m.local_encoder.parameters())),
        "decoder": reached(list(m.decoder.parameters())),
    }


@pytest.mark.parametrize("term", ["nec", "vec", "proj"])
def test_each_loss_reaches_the_trainable_modules_only(model: HenasyModel, term: str) -> None:
    batch = _batch(model)
    out = model.forward_entities(batch["video"])
    if term == "nec":
        loss, n = nec_loss(out.entity_embeds, batch["noun_tags"], model.noun_embeds, model.temperature)
    elif term == "vec":
        phrases = ["picking up the cup", "cutting the onion with the knife", "putting the knife on the table"]
        loss, n = vec_loss(
            out.entity_embeds,
            model.encode_texts(phrases),
            torch.tensor([0, 1, 1]),
            torch.arange(3),
            model.temperature,
        )
    else:
        masks = model.mask_grid(out.local, model.config.proj_mask)
        loss, n = projection_loss(masks, batch["boxes"], batch["box_valid"], (64, 64))
    assert n > 0
    reached = _grads(model, loss)
    assert reached["local"]
    assert reached["decoder"] == (term != "proj")  # masks come from the local encoder's TAG similarities


def test_training_losses_weights_counts_and_missing_inputs(model: HenasyModel) -> None:
    batch = _batch(model)
    out = model.training_losses(batch)
    assert out["nec_pairs"].item() == 4 and out["vec_phrases"].item() == 3 and out["proj_boxes"].item() == 32
    expected = out["egonce"] + 0.5 * out["nec"] + 0.5 * out["vec"] + 1.0 * out["proj"]  # Eq. 10
    assert out["loss"].item() == pytest.approx(expected.item(), rel=1e-5)
    assert out["loss"].requires_grad
    bare = {k: batch[k] for k in ("video", "text")}
    with pytest.warns(UserWarning, match="loss is 0"):
        empty = model.training_losses(bare)
    for term, count in (("nec", "nec_pairs"), ("vec", "vec_phrases"), ("proj", "proj_boxes")):
        assert empty[term].item() == 0.0 and empty[count].item() == 0
    assert empty["loss"].item() == pytest.approx(empty["egonce"].item())
    as_lists = {**batch, "boxes": list(batch["boxes"]), "box_mask": list(batch.pop("box_valid"))}
    assert model.training_losses(as_lists)["proj_boxes"].item() == 32  # trainer passthrough: lists, box_mask
    only_ego = henasy_tiny(use_nec=False, use_vec=False, use_proj=False)
    assert set(only_ego.training_losses(batch)) == {"loss", "egonce", "boot_entropy", "entity_entropy"}
    for key in ("boot_entropy", "entity_entropy"):  # logged diagnostics, outside the graph
        assert 0.0 <= out[key].item() <= 1.0 and not out[key].requires_grad
