"""Tests for ``henasy/model/network.py`` and ``henasy/model/grouping.py``: TAG (Eq. 4, 11, 12), DST with group tokens,
saliency (Eq. 13), the Table 4 switches, frozen encoders, checkpoints and the paper preset on meta."""

from __future__ import annotations

import os

import pytest
import torch

from baselines.lavila import DividedAttention, lavila_tiny
from henasy.core.errors import BenchError, CheckpointError
from henasy.core.factory import build_on_meta, create_model, parameter_counts
from henasy.core.interface import VideoTextModel
from henasy.model.decoder import (
    AveragePoolDecoder,
    CrossAttentionLayer,
    EntityAwareDecoder,
    SelfAttentionDecoder,
)
from henasy.model.grouping import (
    GroupDividedAttention,
    GroupSpaceTimeBlock,
    TemporalAwareGrouping,
    normalized_entropy,
    saliency_maps,
    straight_through_one_hot,
)
from henasy.model.network import HenasyModel, henasy_tiny, noun_text

os.environ.setdefault("HF_HUB_OFFLINE", "1")
T = 4  # frames of the tiny preset


@pytest.fixture(scope="module")
def tiny() -> HenasyModel:
    torch.manual_seed(0)
    return henasy_tiny().eval()


@pytest.fixture(scope="module")
def clip() -> torch.Tensor:
    return torch.randn(2, 3, T, 64, 64, generator=torch.Generator().manual_seed(1))


# ------------------------------------------------------------------------------------------------- TAG
def test_tag_keeps_time_axis_and_assigns_each_token_to_one_group() -> None:
    torch.manual_seed(0)
    tag = TemporalAwareGrouping(8)
    groups, inputs = torch.randn(2, 3, 8), torch.randn(2, T * 5, 8)
    for training in (True, False):
        tag.train(training)
        out = tag(groups, inputs, T)
        assert out.tokens.shape == (2, T * 3, 8)  # (B, T·Q, D): the time axis survives
        assert out.assignment.shape == out.similarity.shape == (2, T, 3, 5)
        assert set(out.assignment.unique().tolist()) <= {0.0, 1.0}
        assert torch.equal(out.assignment.sum(dim=2), torch.ones(2, T, 5))  # exactly one group per token
        assert torch.allclose(out.similarity.sum(dim=2), torch.ones(2, T, 5), atol=1e-6)
    tag.eval()
    assert torch.equal(tag(groups, inputs, T).tokens, tag(groups, inputs, T).tokens)  # eval: deterministic


def test_tag_gumbel_noise_only_in_training() -> None:
    torch.manual_seed(0)
    tag = TemporalAwareGrouping(8)
    groups, inputs = torch.randn(1, 4, 8) * 1e-3, torch.randn(1, T * 6, 8) * 1e-3  # near-uniform logits
    eval_assign = tag.eval()(groups, inputs, T).assignment
    tag.train()
    assert any(not torch.equal(tag(groups, inputs, T).assignment, eval_assign) for _ in range(5))
    tag.gumbel = False
    assert torch.equal(tag(groups, inputs, T).assignment, eval_assign)


def test_tag_merge_matches_hand_computed_eq4(monkeypatch: pytest.MonkeyPatch) -> None:
    tag = TemporalAwareGrouping(2).eval()
    # frame 0: tokens 0, 1 → group 0, token 2 → group 1; frame 1: every token → group 1 (group 0 empty)
    logits = torch.tensor([[[[5.0, 5.0, 0.0], [0.0, 0.0, 5.0]], [[0.0, 0.0, 0.0], [5.0, 5.0, 5.0]]]])
    monkeypatch.setattr(tag, "logits", lambda g, f: logits)
    groups = torch.tensor([[[10.0, 0.0], [0.0, 10.0]]])  # (1, Q=2, D=2)
    inputs = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [5.0, 6.0], [1.0, 1.0], [2.0, 2.0], [6.0, 0.0]]])
    out = tag(groups, inputs, num_frames=2).tokens.reshape(2, 2, 2)  # (T, Q, D)
    assert torch.allclose(out[0, 0], torch.tensor([10.0 + 2.0, 0.0 + 3.0]))  # g0 + mean(tokens 0, 1)
    assert torch.allclose(out[0, 1], torch.tensor([5.0, 16.0]))  # g1 + token 2
    assert torch.allclose(out[1, 0], torch.tensor([10.0, 0.0]))  # empty group keeps its token
    assert torch.allclose(out[1, 1], torch.tensor([3.0, 11.0]))  # g1 + mean(all three)


def test_fresh_groupvit_tag_computes_eq4_and_plain_has_no_extra_layers() -> None:
    torch.manual_seed(0)
    groupvit, plain = TemporalAwareGrouping(8).eval(), TemporalAwareGrouping(8, block="plain").eval()
    shared = {k: v for k, v in groupvit.state_dict().items() if k in plain.state_dict()}
    plain.load_state_dict(shared)  # same W_q, W_i, LayerNorms
    assert set(groupvit.state_dict()) - set(plain.state_dict()) == {
        f"{m}.{p}"
        for m in ("value_proj", "out_proj", "norm_mlp", "mlp.fc1", "mlp.fc2")
        for p in ("weight", "bias")
    }
    groups, inputs = torch.randn(2, 3, 8), torch.randn(2, T * 5, 8)
    assert torch.allclose(groupvit(groups, inputs, T).tokens, plain(groups, inputs, T).tokens, atol=1e-6)
    with pytest.raises(ValueError, match="TAG block must be one of"):
        TemporalAwareGrouping(8, block="slot")


def test_tag_groupvit_block_hand_computed(monkeypatch: pytest.MonkeyPatch) -> None:
    # App. B.1 / GroupViT GroupingBlock: o = g + W_o(mean of W_v i over the group); o ← o + MLP(LN(o))
    tag = TemporalAwareGrouping(2, mlp_ratio=1.0).eval()  # MLP hidden width 2
    logits = torch.tensor([[[[5.0, 5.0], [0.0, 0.0]]]])  # (B=1, T=1, Q=2, I=2): both tokens → group 0
    monkeypatch.setattr(tag, "logits", lambda g, f: logits)
    with torch.no_grad():
        tag.value_proj.weight.copy_(torch.tensor([[2.0, 0.0], [0.0, 1.0]]))  # W_v i = (2 i_0, i_1) + (1, 0)
        tag.value_proj.bias.copy_(torch.tensor([1.0, 0.0]))
        tag.out_proj.weight.copy_(torch.tensor([[0.0, 1.0], [1.0, 0.0]]))  # W_o swaps the two channels
        tag.out_proj.bias.zero_()
        tag.mlp.fc1.weight.copy_(torch.eye(2))
        tag.mlp.fc1.bias.zero_()
        tag.mlp.fc2.weight.copy_(torch.eye(2))
        tag.mlp.fc2.bias.zero_()
    groups = torch.tensor([[[1.0, 0.0], [0.0, 0.0]]])  # (1, Q=2, D=2)
    inputs = torch.tensor([[[1.0, 2.0], [3.0, 6.0]]])  # (1, I=2, D=2)
    out = tag(groups, inputs, num_frames=1).tokens[0]  # (Q, D)
    # group 0: W_v i = (3, 2), (7, 6) → mean (5, 4) → W_o (4, 5) → + g0 = (5, 5); LN((5, 5)) = 0 → MLP adds 0
    assert torch.allclose(out[0], torch.tensor([5.0, 5.0]), atol=1e-5)
    # group 1 is empty: g1 = (0, 0) alone (W_o bias 0); LN(0) = 0, so it stays (0, 0)
    assert torch.allclose(out[1], torch.zeros(2), atol=1e-5)
    groups = torch.tensor([[[1.0, 2.0], [0.0, 0.0]]])  # g0 = (1, 2): o = (5, 7) before the MLP
    out = tag(groups, inputs, num_frames=1).tokens[0]
    gelu = torch.nn.functional.gelu(torch.tensor([-1.0, 1.0]))  # LN((5, 7)) = (−1, 1) (up to LN's ε)
    assert torch.allclose(out[0], torch.tensor([5.0, 7.0]) + gelu, atol=1e-4)


def test_model_tag_merge_uses_groupvit_init_so_segments_keep_their_group_token() -> None:
    # GroupViT @ 1757819 : models/group_vit.py, _init_weights: Linear ~ trunc-normal(0.02), bias 0. For x with
    # i.i.d. unit entries, E‖W_o W_v x‖² = (0.02² D)² ‖x‖², so at D = 96 the merged term is ≈ 0.0384 ‖x‖
    # (identity init: exactly ‖x‖, Eq. 4), and a random Gumbel partition barely moves the segment token.
    torch.manual_seed(0)
    default, eq4 = henasy_tiny(), henasy_tiny(tag_merge_init="identity")
    for tag in (default.local_encoder.boot_grouping, default.local_encoder.entity_grouping):
        assert tag.merge_init == "groupvit"
        for layer in (tag.value_proj, tag.out_proj, tag.mlp.fc1, tag.mlp.fc2):
            assert 0.018 < layer.weight.std().item() < 0.022 and not layer.bias.any()
    tag = default.local_encoder.boot_grouping
    x = torch.randn(64, 96)  # (N, D)
    with torch.no_grad():
        ratio = (tag.out_proj(tag.value_proj(x)).norm() / x.norm()).item()
    assert ratio == pytest.approx(0.02**2 * 96, rel=0.25)
    identity = eq4.local_encoder.boot_grouping
    assert torch.equal(identity.value_proj.weight, torch.eye(96)) and not identity.mlp.fc2.weight.any()
    with pytest.raises(BenchError, match="tag_merge_init must be one of"):
        henasy_tiny(tag_merge_init="xavier")
    with pytest.raises(ValueError, match="merge_init must be one of"):
        TemporalAwareGrouping(8, merge_init="xavier")


def test_straight_through_gradients_are_nonzero() -> None:
    probs = torch.tensor([[0.2, 0.5, 0.3]], requires_grad=True)
    hard = straight_through_one_hot(probs, dim=1)
    assert torch.equal(hard, torch.tensor([[0.0, 1.0, 0.0]]))  # forward: exactly one-hot (Eq. 12)
    (hard * torch.tensor([[1.0, 2.0, 3.0]])).sum().backward()
    assert torch.equal(probs.grad, torch.tensor([[1.0, 2.0, 3.0]]))  # backward: identity (straight through)
    torch.manual_seed(0)
    tag = TemporalAwareGrouping(8).train()
    out = tag(torch.randn(2, 3, 8), torch.randn(2, T * 5, 8), T)
    (out.tokens * torch.randn_like(out.tokens)).sum().backward()
    assert tag.group_proj.weight.grad.abs().sum() > 0 and tag.input_proj.weight.grad.abs().sum() > 0


# ------------------------------------------------------------------------------------------ DST blocks
def test_group_attention_with_one_global_token_equals_lavila() -> None:
    torch.manual_seed(0)
    ours, lavila = GroupDividedAttention(16, 2), DividedAttention(16, 2)
    lavila.load_state_dict(ours.state_dict())
    x = torch.randn(2, 1 + T * 3, 16)
    for axis in ("time", "space"):
        assert torch.allclose(ours(x, axis, T, 1), lavila(x, axis, T), atol=1e-5)


def test_group_attention_routes_tokens_as_documented() -> None:
    torch.manual_seed(0)
    attn = GroupDividedAttention(16, 2)
    x = torch.randn(1, 2 + T * 3, 16)  # 2 group tokens, 3 slots per frame
    y = x.clone()
    y[:, 2 + 3 : 2 + 6] += 1.0  # change every token of frame 1
    space_x, space_y = attn(x, "space", T, 2), attn(y, "space", T, 2)
    assert torch.allclose(space_x[:, 2:5], space_y[:, 2:5])  # frame 0 does not see frame 1 in space attention
    assert not torch.allclose(space_x[:, :2], space_y[:, :2])  # group tokens see everything
    z = x.clone()
    z[:, 2::3][:, 1:] += 1.0  # change slot 0 (token 2 + 3t) of frames 1 … T−1
    time_x, time_z = attn(x, "time", T, 2), attn(z, "time", T, 2)
    changed = (time_x - time_z).abs().sum(dim=-1)[0, 2:].reshape(T, 3).sum(dim=0)  # per slot
    assert changed[0] > 0 and changed[1] == 0 and changed[2] == 0  # time attention stays within its slot
    block = GroupSpaceTimeBlock(16, 2)
    assert block(x, T, 2).shape == x.shape and block(x[:, 2:], T, 0).shape == (1, T * 3, 16)


# ----------------------------------------------------------------------------------------- saliency
def test_normalized_entropy_hand_computed() -> None:
    # (B=1, T=1, Q=4, I=3) softmax over groups: uniform column → 1, one-hot → 0, two halves → log 2 / log 4
    sim = torch.tensor([[0.25, 1.0, 0.5], [0.25, 0.0, 0.5], [0.25, 0.0, 0.0], [0.25, 0.0, 0.0]])[None, None]
    assert normalized_entropy(sim, dim=2).item() == pytest.approx((1.0 + 0.0 + 0.5) / 3)
    assert normalized_entropy(torch.ones(1, 1, 1, 5), dim=2).item() == 0.0  # one group: nothing to choose


def test_saliency_maps_hand_computed_and_sum_to_one() -> None:
    a_boot = torch.tensor([[0.9, 0.1, 0.5, 0.0], [0.1, 0.9, 0.5, 1.0]]).reshape(1, 1, 2, 4)  # (B, T, G, K)
    a_entity = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]]).reshape(1, 1, 3, 2)  # (B, T, E, G)
    maps = saliency_maps(a_boot, a_entity, grid=(2, 2))  # (B, E, T, 2, 2)
    m = a_boot[0, 0].T @ a_entity[0, 0].T  # Eq. 13: (K, E)
    expected = m.softmax(dim=0).T.reshape(3, 2, 2)
    assert torch.allclose(maps[0, :, 0], expected)
    assert torch.allclose(maps.sum(dim=(-1, -2)), torch.ones(1, 3, 1))


def test_model_saliency_sums_to_one_over_patches(tiny: HenasyModel, clip: torch.Tensor) -> None:
    with torch.no_grad():
        local = tiny.forward_entities(clip).local
        grid = tiny.mask_grid(local)  # (B, E, T, h, w)
        assert grid.shape == (2, 4, T, 4, 4)
        assert torch.allclose(grid.sum(dim=(-1, -2)), torch.ones(2, 4, T), atol=1e-5)
        probs = tiny.mask_grid(local, "assignment")
        assert torch.allclose(probs.sum(dim=1), torch.ones(2, T, 4, 4), atol=1e-5)  # patches → entities
        assert tiny.entity_masks(clip).shape == (2, 4, T, 64, 64)


# ------------------------------------------------------------------------------------------- interface
def test_interface_and_embeddings(tiny: HenasyModel, clip: torch.Tensor) -> None:
    assert isinstance(tiny, VideoTextModel)
    with torch.no_grad():
        out = tiny.forward_entities(clip)
        assert out.entities.shape == (2, 4, 96) and out.entity_embeds.shape == (2, 4, 64)
        assert torch.allclose(out.video_embed.norm(dim=-1), torch.ones(2), atol=1e-5)
        mean_projected = (tiny.entity_norm(out.entities) @ tiny.entity_projection).mean(dim=1)
        assert torch.allclose(
            out.video_embed, torch.nn.functional.normalize(mean_projected, dim=-1), atol=1e-5
        )
        assert torch.allclose(tiny.encode_video(clip), out.video_embed)
        assert tiny.encode_video(clip[:, :, :2]).shape == (
            2,
            64,
        )  # fewer frames work (no temporal embeddings)
        text = tiny.encode_text(tiny.tokenize(["#C C takes the cup", "the cup"]))
        assert text.shape == (2, 64)


def test_ground_returns_the_best_entitys_masks(tiny: HenasyModel, clip: torch.Tensor) -> None:
    with torch.no_grad():
        details = tiny.ground_details(clip, tiny.tokenize(["the cup", "picking up the knife"]))
        assert torch.equal(details.entity, details.scores.argmax(dim=1))
        assert details.masks.shape == (2, T, 64, 64)
        assert details.masks.min() >= 0 and details.masks.max() <= 1
        assert torch.allclose(details.masks.flatten(2).amax(-1), torch.ones(2, T), atol=1e-4)
        saliency = tiny.entity_masks(clip)[torch.arange(2), details.entity]  # (B, T, H, W)
        low = saliency.flatten(2).amin(-1)[..., None, None]
        high = saliency.flatten(2).amax(-1)[..., None, None]
        assert torch.allclose(details.masks, (saliency - low) / (high - low), atol=1e-4)  # per-frame min–max


# -------------------------------------------------------------------------------------------- switches
def test_decoder_and_bootstrap_switches_change_the_architecture() -> None:
    torch.manual_seed(0)
    ea = henasy_tiny()
    sa = henasy_tiny(decoder="self_attention")
    pool = henasy_tiny(decoder="avg_pool")
    no_boot = henasy_tiny(bootstrap=False)
    assert isinstance(ea.decoder, EntityAwareDecoder) and isinstance(sa.decoder, SelfAttentionDecoder)
    assert isinstance(pool.decoder, AveragePoolDecoder) and not list(pool.decoder.parameters())
    assert all(isinstance(m, CrossAttentionLayer) for m in ea.local_encoder.bootstrap)
    assert all(isinstance(m, GroupSpaceTimeBlock) for m in no_boot.local_encoder.bootstrap)
    assert ea.local_encoder.layers_needed == 3 and no_boot.local_encoder.layers_needed == 1
    assert not any(isinstance(m, CrossAttentionLayer) for m in sa.decoder.modules())
    with pytest.raises(BenchError, match="decoder must be one of"):
        henasy_tiny(decoder="transformer")
    with pytest.raises(BenchError, match="boot_depth 3 > vision_depth 2"):
        henasy_tiny(boot_depth=3)
    with pytest.raises(BenchError, match="unknown HENASY option"):
        henasy_tiny(num_entity=3)


def _embedding_after_changing_block(model: HenasyModel, block: int, video: torch.Tensor) -> tuple:
    model.eval()
    with torch.no_grad():
        before = model.encode_video(video)
        for p in model.visual.blocks[block].mlp.parameters():
            p.add_(0.5)
        return before, model.encode_video(video)


def test_switches_read_the_documented_global_layers(clip: torch.Tensor) -> None:
    torch.manual_seed(0)
    # avg. pool + bootstrap over layer 0 only (S1 = 1): the last global block is never read
    before, after = _embedding_after_changing_block(henasy_tiny(decoder="avg_pool", boot_depth=1), 1, clip)
    assert torch.allclose(before, after)
    # the entity-aware decoder reads the last global layer
    before, after = _embedding_after_changing_block(henasy_tiny(boot_depth=1), 1, clip)
    assert not torch.allclose(before, after)
    # w/o bootstrap + avg. pool: only the embedded input patches z^0 are read
    before, after = _embedding_after_changing_block(henasy_tiny(bootstrap=False, decoder="avg_pool"), 0, clip)
    assert torch.allclose(before, after)


# ---------------------------------------------------------------------------------------- frozen parts
def test_frozen_encoders_get_no_gradient_and_stay_in_eval(clip: torch.Tensor) -> None:
    torch.manual_seed(0)
    model = henasy_tiny(use_nec=False, use_vec=False, use_proj=False).train()
    assert not model.visual.training and not model.transformer.training and model.local_encoder.training
    texts = ["#C C takes the cup", "#C C cuts the onion"]
    losses = model.training_losses({"video": clip, "text": model.tokenize(texts)})
    assert set(losses) == {"loss", "egonce", "boot_entropy", "entity_entropy"}
    losses["loss"].backward()
    frozen = [*model.visual.parameters(), *model.transformer.parameters(), model.token_embedding.weight]
    frozen += [model.image_projection, model.text_projection, model.positional_embedding]
    assert all(p.grad is None for p in frozen)
    assert model.local_encoder.boot_tokens.grad.abs().sum() > 0
    assert all(p.grad is not None for p in model.decoder.parameters())
    assert model.entity_projection.grad.abs().sum() > 0


# ----------------------------------------------------------------------------------------- checkpoints
def test_lavila_checkpoint_initialises_encoders_and_projection() -> None:
    torch.manual_seed(3)
    lavila = lavila_tiny()
    state = {f"module.{k}": v for k, v in lavila.state_dict().items()}
    model = henasy_tiny()
    report = model.load_checkpoint({"state_dict": state})
    assert report.ok
    assert torch.equal(model.visual.blocks[0].attn.qkv.weight, lavila.visual.blocks[0].attn.qkv.weight)
    assert torch.equal(model.entity_projection, lavila.image_projection)
    assert torch.equal(model.entity_norm.weight, lavila.visual.norm.weight)
    assert model.entity_projection.requires_grad and not model.image_projection.requires_grad
    del state["module.visual.norm.bias"]
    with pytest.raises(CheckpointError, match="visual.norm.bias"):
        henasy_tiny().load_checkpoint({"state_dict": state})


def test_henasy_checkpoint_round_trip(tmp_path) -> None:
    torch.manual_seed(4)
    model = henasy_tiny()
    path = tmp_path / "henasy.pt"
    torch.save({"model": model.state_dict()}, path)  # trainer's last.pt keeps it under "model"
    other = create_model("henasy_tiny", lavila_checkpoint=str(path))  # the alias of backbone_checkpoint
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), other.state_dict().values()))
    with pytest.raises(CheckpointError):
        henasy_tiny(num_entities=3).load_checkpoint(path)


def test_patch_embedding_is_computed_once_and_layers_match_lavila(
    tiny: HenasyModel, clip: torch.Tensor, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []
    embed = tiny.visual.embed_patches
    monkeypatch.setattr(tiny.visual, "embed_patches", lambda v: calls.append(1) or embed(v))
    with torch.no_grad():
        layers, last = tiny.global_patch_layers(clip)
        assert len(calls) == 1  # issue 17: one patch embedding per forward (§4.1 z^0 feeds both encoders)
        _, per_block = tiny.visual.forward_features(clip, return_all_tokens=True)  # LaViLa's own loop
        first = tiny.visual.ln_pre(embed(clip))
    reference = [first, *per_block][: tiny.local_encoder.layers_needed]
    assert all(torch.equal(a, b[:, 1:]) for a, b in zip(layers, reference, strict=True))
    assert torch.equal(last, per_block[-1][:, 1:])


# -------------------------------------------------------------------------------------------- presets
def test_paper_preset_builds_on_meta_with_its_breakdown() -> None:
    model = build_on_meta("henasy")
    counts = parameter_counts(model)
    assert abs(counts["params_total"] - 291e6) < 2e6  # the paper's 291 M (Table 5)
    tag = sum(p.numel() for p in model.local_encoder.boot_grouping.parameters())
    d = 768  # module docstring of henasy/model/grouping.py: per TAG block at width D
    assert (
        tag
        == (4 * d + 2 * (d * d + d)) + 2 * (d * d + d) + (2 * d + 4 * d * d + 4 * d + 4 * d * d + d)
        == 7_089_408
    )
    plain = parameter_counts(create_model("henasy", meta=True, tag_block="plain"))["params_total"]
    assert counts["params_total"] - plain == 2 * (tag - 1_184_256)  # two TAG blocks, GroupViT's extra layers
    modules = counts["modules"]
    assert {"visual", "transformer", "local_encoder", "decoder", "entity_projection"} <= set(modules)
    trainable = (
        modules["local_encoder"] + modules["decoder"] + modules["entity_norm"] + modules["entity_projection"]
    )
    assert counts["params_trainable"] == trainable  # the global and text encoders are frozen (§5.1)
    cfg = model.config
    assert (cfg.num_group_tokens, cfg.num_entities, cfg.boot_depth, cfg.group_depth, cfg.entity_depth) == (
        64,
        8,
        6,
        3,
        3,
    )
    assert cfg.decoder_depth == 3 and model.num_frames == 4 and model.image_size == 224
    assert len(model.local_encoder.bootstrap) == 6 and len(model.decoder.blocks) == 3
    assert build_on_meta("henasy", frames=16).num_frames == 16


def test_noun_text_reads_taxonomy_labels() -> None:
    assert noun_text("bag_(pouch,_sack)") == "bag"
    assert noun_text("tap_water") == "tap water"
    assert noun_text("cup") == "cup"
