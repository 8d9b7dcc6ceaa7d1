"""Tests for ``baselines/lavila.py``: LaViLa TSF-B conventions, checkpoints, presets."""

from __future__ import annotations

import argparse
import math
import os

import pytest
import torch

from baselines.lavila import (
    EGOVLP_VISUAL_OVERRIDES,
    CausalSelfAttention,
    DividedAttention,
    SpaceTimeBlock,
    SpaceTimeTransformer,
    clip_tokenize,
    fit_temporal_embed,
    lavila_tiny,
    lavila_tsf_base,
    load_lavila_checkpoint,
    rescale_per_frame,
)
from henasy.core.egonce import egonce_loss
from henasy.core.errors import BenchError, CheckpointError
from henasy.core.interface import VideoTextModel

os.environ.setdefault("HF_HUB_OFFLINE", "1")

TINY_DIMS = dict(width=96, depth=2, patch=16, image=64, text_width=96, text_depth=2, context=32, embed=64)


def official_lavila_spec(
    *,
    frames: int = 4,
    width: int = 768,
    depth: int = 12,
    patch: int = 16,
    image: int = 224,
    text_width: int = 512,
    text_depth: int = 12,
    vocab: int = 49408,
    context: int = 77,
    embed: int = 256,
) -> dict[str, tuple[int, ...]]:
    """Key names and shapes of an official LaViLa TSF dual-encoder state_dict, written out from LaViLa's lavila/models/models.py
    (without the ``module.`` prefix); sizes are parameters so the same layout serves the tiny preset."""
    patches = (image // patch) ** 2
    spec: dict[str, tuple[int, ...]] = {
        "visual.cls_token": (1, 1, width),
        "visual.pos_embed": (1, 1 + patches, width),
        "visual.temporal_embed": (1, frames, width),
        "visual.patch_embed.proj.weight": (width, 3, patch, patch),
        "visual.ln_pre.weight": (width,),
        "visual.ln_pre.bias": (width,),
        "visual.norm.weight": (width,),
        "visual.norm.bias": (width,),
    }
    for i in range(depth):
        block = f"visual.blocks.{i}."
        for norm in ("norm1", "norm2", "norm3"):
            spec[block + norm + ".weight"] = (width,)
            spec[block + norm + ".bias"] = (width,)
        for attn in ("attn", "timeattn"):
            spec[block + attn + ".qkv.weight"] = (3 * width, width)
            spec[block + attn + ".qkv.bias"] = (3 * width,)
            spec[block + attn + ".proj.weight"] = (width, width)
            spec[block + attn + ".proj.bias"] = (width,)
        spec[block + "mlp.fc1.weight"] = (4 * width, width)
        spec[block + "mlp.fc1.bias"] = (4 * width,)
        spec[block + "mlp.fc2.weight"] = (width, 4 * width)
        spec[block + "mlp.fc2.bias"] = (width,)
    for i in range(text_depth):
        block = f"transformer.resblocks.{i}."
        spec[block + "attn.in_proj_weight"] = (3 * text_width, text_width)
        spec[block + "attn.in_proj_bias"] = (3 * text_width,)
        spec[block + "attn.out_proj.weight"] = (text_width, text_width)
        spec[block + "attn.out_proj.bias"] = (text_width,)
        for norm in ("ln_1", "ln_2"):
            spec[block + norm + ".weight"] = (text_width,)
            spec[block + norm + ".bias"] = (text_width,)
        spec[block + "mlp.c_fc.weight"] = (4 * text_width, text_width)
        spec[block + "mlp.c_fc.bias"] = (4 * text_width,)
        spec[block + "mlp.c_proj.weight"] = (text_width, 4 * text_width)
        spec[block + "mlp.c_proj.bias"] = (text_width,)
    spec["token_embedding.weight"] = (vocab, text_width)
    spec["positional_embedding"] = (context, text_width)
    spec["ln_final.weight"] = (text_width,)
    spec["ln_final.bias"] = (text_width,)
    spec["image_projection"] = (width, embed)
    spec["text_projection"] = (text_width, embed)
    spec["logit_scale"] = ()
    return spec


def official_checkpoint(state_dict: dict[str, torch.Tensor]) -> dict:
    """The dict layout of a released LaViLa checkpoint: module.-prefixed state_dict + args."""
    return {
        "epoch": 5,
        "state_dict": {f"module.{k}": v for k, v in state_dict.items()},
        "args": argparse.Namespace(
            model="CLIP_OPENAI_TIMESFORMER_BASE", clip_length=4, project_embed_dim=256
        ),
        "best_acc1": 0.0,
    }


def random_state_dict(spec: dict[str, tuple[int, ...]], seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return {k: torch.randn(shape, generator=generator) for k, shape in spec.items()}


@pytest.fixture(scope="module")
def paper_meta():
    """The 177 M paper preset, built once on the meta device."""
    with torch.device("meta"):
        return lavila_tsf_base()


@pytest.fixture()
def tiny():
    torch.manual_seed(0)
    return lavila_tiny()


# ---------------------------------------------------------------------------------------------- layout


def test_paper_preset_state_dict_matches_official_key_layout(paper_meta):
    spec = official_lavila_spec()
    got = {k: tuple(v.shape) for k, v in paper_meta.state_dict().items()}
    assert sorted(set(spec) - set(got)) == []
    assert sorted(set(got) - set(spec)) == []
    assert {k: v for k, v in got.items() if spec[k] != v} == {}


def test_paper_preset_parameter_count_is_177_7_million(paper_meta):
    total = sum(p.numel() for p in paper_meta.parameters())
    assert abs(total / 1e6 - 177.66) < 0.5
    # the same arithmetic from the hand-written spec (vision 114.17 M)
    assert total == sum(math.prod(s) for s in official_lavila_spec().values())
    assert abs(sum(p.numel() for p in paper_meta.visual.parameters()) / 1e6 - 114.17) < 0.01


def test_official_layout_loads_into_paper_preset_with_no_missing_or_unexpected_keys(paper_meta):
    meta_state = {k: torch.empty(s, device="meta") for k, s in official_lavila_spec().items()}
    report = load_lavila_checkpoint(paper_meta, official_checkpoint(meta_state))
    assert report.missing == [] and report.unexpected == [] and report.mismatched == []
    assert report.loaded == len(meta_state)


def test_official_checkpoint_file_loads_exact_values(tmp_path):
    state = random_state_dict(official_lavila_spec(**TINY_DIMS))
    path = tmp_path / "lavila_tiny.pth"
    torch.save(official_checkpoint(state), path)
    model = lavila_tiny()
    report = load_lavila_checkpoint(model, path)
    assert report.ok and report.missing == [] and report.unexpected == []
    loaded = model.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in state.items())
    assert not model.logit_scale.requires_grad  # loading keeps the temperature frozen


def test_wrong_architecture_checkpoint_raises_listing_keys(tiny):
    resnet_like = {"conv1.weight": torch.zeros(64, 3, 7, 7), "fc.weight": torch.zeros(1000, 2048)}
    with pytest.raises(CheckpointError) as err:
        load_lavila_checkpoint(tiny, {"state_dict": resnet_like})
    message = str(err.value)
    assert "conv1.weight" in message and "fc.weight" in message  # unexpected
    assert "visual.cls_token" in message  # first missing keys
    assert "more" in message  # long lists are cut


def test_shape_mismatch_is_reported_with_both_shapes(tiny):
    state = random_state_dict(official_lavila_spec(**TINY_DIMS))
    state["text_projection"] = torch.zeros(96, 32)
    with pytest.raises(CheckpointError, match=r"text_projection model \[96, 64\] vs checkpoint \[96, 32\]"):
        load_lavila_checkpoint(tiny, state)
    report = load_lavila_checkpoint(tiny, state, strict=False)
    assert [k for k, _, _ in report.mismatched] == ["text_projection"]
    assert torch.equal(tiny.visual.cls_token, state["visual.cls_token"])  # the rest was loaded


# ------------------------------------------------------------------------------------ temporal inflation


def test_fit_temporal_embed_bilinear_4_to_16_by_hand():
    embed = torch.tensor([[[0.0, 10.0], [4.0, 20.0], [8.0, 40.0], [16.0, 80.0]]])  # (1, 4, 2)
    out = fit_temporal_embed(embed, 16)
    assert out.shape == (1, 16, 2)
    # align_corners=False: source position of frame i is (i + 0.5)·4/16 − 0.5, clamped to [0, 3]
    expected = {
        0: [0.0, 10.0],  # −0.375 → clamped to frame 0
        1: [0.0, 10.0],  # −0.125 → frame 0
        2: [0.875 * 0 + 0.125 * 4, 0.875 * 10 + 0.125 * 20],  # 0.125
        5: [0.125 * 0 + 0.875 * 4, 0.125 * 10 + 0.875 * 20],  # 0.875
        9: [0.125 * 4 + 0.875 * 8, 0.125 * 20 + 0.875 * 40],  # 1.875
        14: [16.0, 80.0],  # 3.125 → frame 3
        15: [16.0, 80.0],
    }
    for frame, values in expected.items():
        assert out[0, frame].tolist() == pytest.approx(values), frame


def test_fit_temporal_embed_truncates_when_checkpoint_has_more_frames():
    embed = torch.arange(16 * 3, dtype=torch.float32).view(1, 16, 3)
    assert torch.equal(fit_temporal_embed(embed, 4), embed[:, :4])


def test_four_frame_checkpoint_evaluated_at_sixteen_frames(tmp_path):
    state = random_state_dict(official_lavila_spec(**TINY_DIMS, frames=4))
    path = tmp_path / "four_frames.pth"
    torch.save(official_checkpoint(state), path)
    model = lavila_tiny(num_frames=16)
    report = load_lavila_checkpoint(model, path)
    assert report.ok and any("4 → 16" in note for note in report.notes)
    four = state["visual.temporal_embed"][0]
    assert torch.allclose(model.visual.temporal_embed[0, 2], 0.875 * four[0] + 0.125 * four[1])
    assert torch.allclose(model.visual.temporal_embed[0, 15], four[3])
    with torch.no_grad():
        embedding = model.encode_video(torch.randn(2, 3, 16, 64, 64))
    assert embedding.shape == (2, 64) and torch.isfinite(embedding).all()


# --------------------------------------------------------------------------------------------- EgoVLP


def egovlp_state_dict(width: int = 96, depth: int = 2, embed: int = 64, frames: int = 16) -> dict:
    """EgoVLP FrozenInTime layout: video_model.* (conv bias, no ln_pre), DistilBERT text_model.*,
    vid_proj Linear(width, embed), txt_proj ReLU + Linear(768, embed)."""
    spec = {
        f"video_model.{k[len('visual.') :]}": s
        for k, s in official_lavila_spec(
            **{**TINY_DIMS, "width": width, "depth": depth}, frames=frames
        ).items()
        if k.startswith("visual.") and "ln_pre" not in k
    }
    spec["video_model.patch_embed.proj.bias"] = (width,)
    spec["text_model.embeddings.word_embeddings.weight"] = (30522, 8)  # shrunk DistilBERT pieces
    spec["text_model.transformer.layer.0.attention.q_lin.weight"] = (8, 8)
    spec["vid_proj.0.weight"] = (embed, width)
    spec["vid_proj.0.bias"] = (embed,)
    spec["txt_proj.1.weight"] = (embed, 768)
    spec["txt_proj.1.bias"] = (embed,)
    return {"state_dict": {f"module.{k}": v for k, v in random_state_dict(spec, seed=1).items()}}


def test_egovlp_checkpoint_loads_visual_tower_and_reports_text_side():
    ckpt = egovlp_state_dict()
    model = lavila_tiny(**EGOVLP_VISUAL_OVERRIDES)
    report = load_lavila_checkpoint(model, ckpt)  # strict: the visual side must be complete
    source = {k[len("module.") :]: v for k, v in ckpt["state_dict"].items()}
    assert torch.equal(
        model.visual.blocks[1].timeattn.qkv.weight, source["video_model.blocks.1.timeattn.qkv.weight"]
    )
    assert torch.equal(model.visual.patch_embed.proj.bias, source["video_model.patch_embed.proj.bias"])
    assert torch.equal(model.image_projection, source["vid_proj.0.weight"].T)
    assert set(report.not_loadable) == {
        "textual.embeddings.word_embeddings.weight",
        "textual.transformer.layer.0.attention.q_lin.weight",
        "text_projection.1.weight",
        "text_projection.1.bias",
        "image_projection.0.bias",
    }
    assert "token_embedding.weight" in report.missing and not report.ok  # text tower not loaded: reported
    assert report.unexpected == [] and report.mismatched == []


def test_egovlp_visual_tower_does_not_fit_the_clip_style_preset():
    with pytest.raises(CheckpointError, match="visual.ln_pre.weight") as err:
        load_lavila_checkpoint(lavila_tiny(num_frames=16), egovlp_state_dict())
    assert "visual.patch_embed.proj.bias" in str(err.value) and "EGOVLP_VISUAL_OVERRIDES" in str(err.value)


# -------------------------------------------------------------------------------------------- attention


def test_divided_attention_groups_by_hand():
    """1 head, D=2, T=2 frames × N=2 patches, q = k = v = x, proj = identity: explicit softmax sums."""
    attn = DividedAttention(2, 1)
    with torch.no_grad():
        attn.qkv.weight.copy_(torch.cat([torch.eye(2)] * 3))
        attn.qkv.bias.zero_()
        attn.proj.weight.copy_(torch.eye(2))
        attn.proj.bias.zero_()
    tokens = [
        [0.5, -0.2],
        [1.0, 0.0],
        [0.0, 1.0],
        [0.3, 0.4],
        [-0.6, 0.8],
    ]  # CLS, (t0,n0), (t0,n1), (t1,n0), (t1,n1)
    x = torch.tensor([tokens])
    scale = 1 / math.sqrt(2)

    def attend(query: list[float], keys: list[list[float]]) -> list[float]:
        weights = [math.exp(scale * (query[0] * k[0] + query[1] * k[1])) for k in keys]
        total = sum(weights)
        return [sum(w * k[d] for w, k in zip(weights, keys)) / total for d in range(2)]

    cls, p00, p01, p10, p11 = tokens
    expected_time = [
        attend(cls, tokens),  # CLS attends to every token
        attend(p00, [cls, p00, p10]),  # same location n=0 across frames
        attend(p01, [cls, p01, p11]),
        attend(p10, [cls, p00, p10]),
        attend(p11, [cls, p01, p11]),
    ]
    expected_space = [
        attend(cls, tokens),
        attend(p00, [cls, p00, p01]),  # same frame t=0
        attend(p01, [cls, p00, p01]),
        attend(p10, [cls, p10, p11]),
        attend(p11, [cls, p10, p11]),
    ]
    for impl in ("sdpa", "reference"):
        attn.impl = impl
        assert attn(x, "time", 2)[0].tolist() == [pytest.approx(row, abs=1e-6) for row in expected_time]
        assert attn(x, "space", 2)[0].tolist() == [pytest.approx(row, abs=1e-6) for row in expected_space]


@pytest.mark.parametrize("axis", ["time", "space"])
def test_sdpa_divided_attention_matches_reference(axis):
    torch.manual_seed(0)
    attn = DividedAttention(48, 4)
    x = torch.randn(3, 1 + 4 * 9, 48)
    reference = _with_impl(attn, "reference", lambda: attn(x, axis, 4))
    fast = _with_impl(attn, "sdpa", lambda: attn(x, axis, 4))
    assert (fast - reference).abs().max() < 1e-5


def test_sdpa_causal_text_attention_matches_reference():
    torch.manual_seed(0)
    attn = CausalSelfAttention(32, 4)
    torch.nn.init.normal_(attn.in_proj_weight, std=0.3)
    x = torch.randn(2, 7, 32)
    reference = _with_impl(attn, "reference", lambda: attn(x))
    assert (_with_impl(attn, "sdpa", lambda: attn(x)) - reference).abs().max() < 1e-5
    # causality: the first position does not depend on later ones
    y = x.clone()
    y[:, 3:] = torch.randn(2, 4, 32)
    assert torch.allclose(attn(y)[:, :3], attn(x)[:, :3], atol=1e-6)


def test_whole_model_sdpa_matches_reference(tiny):
    _give_time_attention_weights(tiny)
    video, tokens = (
        torch.randn(2, 3, 4, 64, 64),
        tiny.tokenize(["#C C cuts an onion", "#C C opens the fridge"]),
    )
    with torch.no_grad():
        tiny.set_attention_impl("reference")
        ref_v, ref_t = tiny.encode_video(video), tiny.encode_text(tokens)
        for impl in ("sdpa", "auto"):
            tiny.set_attention_impl(impl)
            fast_v, fast_t = tiny.encode_video(video), tiny.encode_text(tokens)
            assert (fast_v - ref_v).abs().max() < 1e-5 and (fast_t - ref_t).abs().max() < 1e-5, impl


def _with_impl(module, impl, fn):
    module.impl = impl
    with torch.no_grad():
        return fn()


def _give_time_attention_weights(model) -> None:
    with torch.no_grad():
        for block in model.visual.blocks:
            torch.nn.init.normal_(block.timeattn.qkv.weight, std=0.1)
            torch.nn.init.normal_(block.timeattn.proj.weight, std=0.1)


# ------------------------------------------------------------------------------------ video tower pieces


def test_time_attention_is_zero_initialised_as_lavila():
    block = SpaceTimeBlock(16, 2)
    assert torch.all(block.timeattn.qkv.weight == 0) and torch.all(block.timeattn.qkv.bias == 0)
    assert torch.all(block.timeattn.proj.weight == 1) and torch.all(block.timeattn.proj.bias == 0)
    x = torch.randn(2, 1 + 2 * 4, 16)
    assert torch.all(block.timeattn(block.norm3(x), "time", 2) == 0)  # fresh block = per-frame ViT block


def test_block_uses_the_frozen_in_time_residual():
    torch.manual_seed(0)
    block = SpaceTimeBlock(16, 2)
    torch.nn.init.normal_(block.timeattn.qkv.weight, std=0.3)
    x = torch.randn(2, 1 + 3 * 4, 16)
    with torch.no_grad():
        t = block.timeattn(block.norm3(x), "time", 3)
        s = block.attn(block.norm1(x + t), "space", 3)
        mid = x + s  # the time output is not added to the residual stream directly
        expected = mid + block.mlp(block.norm2(mid))
        assert torch.allclose(block(x, 3), expected, atol=1e-6)
        assert not torch.allclose(block(x, 3), expected + t, atol=1e-3)
    assert block.norm1.eps == block.norm2.eps == block.norm3.eps == 1e-6


def test_embed_patches_positional_terms_by_hand():
    """2 frames × 4 patches (32 px, patch 16), width 2: patch (t, n) = pos[1+n] + temporal[t]; CLS = cls + pos[0]."""
    encoder = SpaceTimeTransformer(image_size=32, patch_size=16, num_frames=2, width=2, depth=1, heads=1)
    with torch.no_grad():
        encoder.patch_embed.proj.weight.zero_()  # patch content contributes nothing (no conv bias)
        encoder.cls_token.copy_(torch.tensor([[[100.0, 200.0]]]))
        encoder.pos_embed.copy_(
            torch.tensor([[[1.0, 2.0], [10.0, 0.0], [20.0, 0.0], [30.0, 0.0], [40.0, 0.0]]])
        )
        encoder.temporal_embed.copy_(torch.tensor([[[0.0, 0.5], [0.0, 0.7]]]))
        tokens = encoder.embed_patches(torch.randn(1, 3, 2, 32, 32))[0].tolist()
    expected = [[101.0, 202.0]]
    expected += [[10.0, 0.5], [20.0, 0.5], [30.0, 0.5], [40.0, 0.5]]  # frame 0
    expected += [[10.0, 0.7], [20.0, 0.7], [30.0, 0.7], [40.0, 0.7]]  # frame 1
    assert tokens == [pytest.approx(row) for row in expected]
    assert encoder.ln_pre.eps == 1e-5 and encoder.patch_embed.proj.bias is None


def test_forward_features_returns_every_block_tokens(tiny):
    video = torch.randn(2, 3, 4, 64, 64)
    with torch.no_grad():
        cls, per_block = tiny.visual.forward_features(video, return_all_tokens=True)
        assert torch.allclose(cls, tiny.visual(video), atol=1e-6)
    assert len(per_block) == 2 and all(t.shape == (2, 1 + 4 * 16, 96) for t in per_block)
    assert torch.allclose(cls, tiny.visual.norm(per_block[-1])[:, 0], atol=1e-6)


def test_fewer_frames_than_built_for_and_bad_shapes(tiny):
    with torch.no_grad():
        assert tiny.encode_video(torch.randn(1, 3, 2, 64, 64)).shape == (1, 64)  # T ≤ num_frames, like LaViLa
    with pytest.raises(ValueError, match="T ≤ 4"):
        tiny.encode_video(torch.randn(1, 3, 5, 64, 64))
    with pytest.raises(ValueError, match=r"\(B, C, T, H, W\)"):
        tiny.encode_video(torch.randn(3, 4, 64, 64))


# -------------------------------------------------------------------------------------------- text tower


def test_text_features_pool_at_eot_and_ignore_padding(tiny):
    tokens = tiny.tokenize(["#C C picks up a knife", "#C C washes a plate in the sink"])
    with torch.no_grad():
        eot, all_tokens = tiny.encode_text_features(tokens, return_all_tokens=True)
        positions = [row.index(49407) for row in tokens.tolist()]
        assert torch.equal(eot, all_tokens[torch.arange(2), torch.tensor(positions)])
        changed = tokens.clone()
        changed[0, positions[0] + 1 :] = 123  # garbage after EOT: invisible through the causal mask
        assert torch.allclose(tiny.encode_text_features(changed), eot, atol=1e-6)


def test_tokenizer_matches_open_clip_for_short_text_and_lavila_truncation_for_long():
    import open_clip

    short = ["#C C picks up a knife", "#O A man opens the door"]
    assert torch.equal(clip_tokenize(short, 77), open_clip.tokenize(short, context_length=77))
    long = " ".join(["knife"] * 100)
    ours, theirs = clip_tokenize([long], 16)[0], open_clip.tokenize([long], context_length=16)[0]
    assert ours[0] == 49406 and 49407 not in ours.tolist()  # LaViLa: cut without re-inserting EOT
    assert theirs[-1] == 49407 and torch.equal(ours[:-1], theirs[:-1])


# ----------------------------------------------------------------------------------- dual encoder / API


def test_follows_the_video_text_model_interface(tiny):
    assert isinstance(tiny, VideoTextModel)
    assert (tiny.num_frames, tiny.image_size, tiny.embed_dim) == (4, 64, 64)
    assert len(tiny.pixel_mean) == 3 and len(tiny.pixel_std) == 3 and min(tiny.pixel_std) > 1  # 0–255 scale
    with torch.no_grad():
        video = tiny.encode_video(torch.randn(3, 3, 4, 64, 64))
        text = tiny.encode_text(tiny.tokenize(["a", "b", "c"]))
    assert torch.allclose(video.norm(dim=-1), torch.ones(3)) and torch.allclose(
        text.norm(dim=-1), torch.ones(3)
    )


def test_logit_scale_is_frozen_at_one_over_0_07(tiny):
    assert not tiny.logit_scale.requires_grad
    assert tiny.logit_scale.item() == pytest.approx(math.log(1 / 0.07))
    assert tiny.temperature.item() == pytest.approx(0.07)
    before, cls_before = tiny.logit_scale.detach().clone(), tiny.visual.cls_token.detach().clone()
    optimizer = torch.optim.AdamW([p for p in tiny.parameters() if p.requires_grad], lr=1e-2)
    batch = {"video": torch.randn(4, 3, 4, 64, 64), "text": tiny.tokenize(["a", "b", "c", "d"])}
    tiny.training_losses(batch)["loss"].backward()
    optimizer.step()
    assert torch.equal(tiny.logit_scale, before)
    assert not torch.equal(tiny.visual.cls_token, cls_before)  # the rest is trainable


def test_training_losses_is_egonce_on_the_embeddings(tiny):
    batch = {
        "video": torch.randn(3, 3, 4, 64, 64),
        "text": tiny.tokenize(["#C C cuts onion", "#C C cuts carrot", "#C C opens door"]),
        "verb_tags": torch.tensor([[1, 0], [1, 0], [0, 1]]),
        "noun_tags": torch.tensor([[1, 0, 0], [1, 1, 0], [0, 0, 1]]),
    }
    out = tiny.training_losses(batch)
    assert set(out) == {"loss", "egonce"} and out["loss"].requires_grad and not out["egonce"].requires_grad
    with torch.no_grad():
        v, t = tiny.encode_video(batch["video"]), tiny.encode_text(batch["text"])
        tagged = egonce_loss(v, t, batch["verb_tags"], batch["noun_tags"], temperature=0.07)
        plain = egonce_loss(v, t, temperature=0.07)
    assert out["loss"].item() == pytest.approx(tagged.item(), rel=1e-5)
    no_tags = tiny.training_losses({"video": batch["video"], "text": batch["text"]})["loss"]
    assert no_tags.item() == pytest.approx(plain.item(), rel=1e-5)
    out["loss"].backward()
    assert tiny.visual.cls_token.grad is not None and torch.isfinite(tiny.text_projection.grad).all()


def test_presets_accept_overrides_and_reject_unknown_ones():
    model = lavila_tiny(num_frames=8)
    assert model.num_frames == 8 and model.visual.temporal_embed.shape == (1, 8, 96)
    with pytest.raises(BenchError, match="num_frame"):
        lavila_tiny(num_frame=8)
    with pytest.raises(BenchError, match="not a multiple of patch_size"):
        lavila_tiny(image_size=60)
    with pytest.raises(BenchError, match="attention must be one of"):
        lavila_tiny(attention="flash")


# ------------------------------------------------------------------------------ grounding (dense similarity)
def test_rescale_per_frame_hand_computed() -> None:
    maps = torch.tensor([[[[1.0, 3.0], [2.0, 5.0]], [[4.0, 4.0], [4.0, 4.0]]]])  # (B=1, T=2, 2, 2)
    out = rescale_per_frame(maps)
    assert out[0, 0].tolist() == [[0.0, 0.5], [0.25, 1.0]]  # (x − 1) / (5 − 1)
    assert out[0, 1].tolist() == [[0.0, 0.0], [0.0, 0.0]]  # a constant frame has nothing to point at


def test_patch_scores_and_ground_hand_computed(monkeypatch: pytest.MonkeyPatch) -> None:
    model = lavila_tiny().eval()  # 4 frames of 64 px, patch 16: a 4×4 grid, width 96, embeddings 64
    model.visual.norm = torch.nn.Identity()
    with torch.no_grad():
        model.image_projection.zero_()
        model.image_projection[:64] = torch.eye(64)  # the first 64 feature channels are the embedding
    tokens = torch.zeros(1, 1 + 4 * 16, 96)  # (B, 1+T·N, D): CLS, then frame-major patches
    tokens[0, 1 + 5, 0] = 1.0  # frame 0, patch (1, 1): along the query
    tokens[0, 1 + 6, 1] = 1.0  # frame 0, patch (1, 2): orthogonal to it
    tokens[0, 1 + 16 + 3, :2] = 1.0  # frame 1, patch (0, 3): at 45° to it
    monkeypatch.setattr(model.visual, "forward_features", lambda video, return_all_tokens: (None, [tokens]))
    query = torch.zeros(1, 64)
    query[0, 0] = 1.0
    monkeypatch.setattr(model, "encode_text", lambda ids: query)
    video, ids = torch.zeros(1, 3, 4, 64, 64), torch.zeros(1, 8, dtype=torch.long)
    scores = model.patch_scores(video, ids)  # (1, 4, 4, 4)
    assert scores.shape == (1, 4, 4, 4)
    assert scores[0, 0, 1, 1].item() == pytest.approx(1.0) and scores[0, 0, 1, 2].item() == 0.0
    assert scores[0, 1, 0, 3].item() == pytest.approx(math.sqrt(0.5))
    assert scores.abs().sum().item() == pytest.approx(1.0 + math.sqrt(0.5))  # zero tokens score 0
    masks = model.ground(video, ids)  # (1, 4, 64, 64)
    assert masks.shape == (1, 4, 64, 64) and masks.min() >= 0 and masks.max() <= 1
    row, col = divmod(int(masks[0, 0].argmax()), 64)
    assert (row // 16, col // 16) == (1, 1)  # the brightest pixel lies in the patch along the query
    assert masks[0, 2].abs().sum().item() == 0.0  # frames without any match stay empty
