"""The one model factory (``henasy.core.factory``): interface check, weights kept out of the architecture config
(``checkpoint`` / ``backbone_checkpoint`` / the ``lavila_checkpoint`` alias), meta and device placement, and
the single ``noun_text``."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

import baselines.helpinghands
import henasy.data.taxonomy
import henasy.model.network
from henasy.core.catalog import MODELS
from henasy.core.errors import BenchError
from henasy.core.factory import build_on_meta, create_model, parameter_counts

ROOT = Path(__file__).resolve().parents[1]


class NoTextModel(nn.Module):
    """Everything of ``VideoTextModel`` except ``encode_text``."""

    num_frames, image_size, embed_dim = 2, 8, 4
    pixel_mean, pixel_std = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(3, 4)

    def tokenize(self, texts: list[str]) -> torch.Tensor:
        return torch.zeros(len(texts), 3, dtype=torch.long)

    def encode_video(self, video: torch.Tensor) -> torch.Tensor:
        return self.proj(video.mean(dim=(2, 3, 4)))

    def training_losses(self, batch: dict) -> dict[str, torch.Tensor]:
        return {"loss": self.encode_video(batch["video"]).sum()}


class WithText(NoTextModel):
    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        return torch.zeros(len(tokens), 4)


@pytest.fixture
def registry_copy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(MODELS, "_entries", dict(MODELS._entries))


def test_missing_interface_member_is_named(registry_copy: None) -> None:
    MODELS.register("no_text", "lacks encode_text")(NoTextModel)
    MODELS.register("not_a_module", "returns a dict")(lambda **arch: {})
    with pytest.raises(BenchError, match=r"'no_text' \(NoTextModel\) does not follow .*missing encode_text"):
        create_model("no_text")
    with pytest.raises(BenchError, match="returned a dict, not a torch.nn.Module"):
        create_model("not_a_module")


def test_whole_model_checkpoint_without_own_loader(registry_copy: None, tmp_path: Path) -> None:
    MODELS.register("with_text", "plain model")(WithText)
    torch.manual_seed(0)
    source = create_model("with_text")
    path = tmp_path / "w.pt"
    torch.save({"state_dict": source.state_dict()}, path)
    loaded = create_model("with_text", checkpoint=path)
    assert torch.equal(loaded.proj.weight, source.proj.weight)
    with pytest.raises(BenchError, match="no separate backbone"):
        create_model("with_text", backbone_checkpoint=path)
    with pytest.raises(BenchError, match="rejected model options"):
        create_model("with_text", width=3)


def test_lavila_checkpoint_is_an_alias_kept_out_of_the_config(tmp_path: Path) -> None:
    torch.manual_seed(1)
    lavila = create_model("lavila_tiny")
    path = tmp_path / "lavila.pt"
    torch.save({"state_dict": {f"module.{k}": v for k, v in lavila.state_dict().items()}}, path)
    for model in (
        create_model("henasy_tiny", lavila_checkpoint=str(path)),
        create_model("henasy_tiny", backbone_checkpoint=path),
    ):
        assert torch.equal(model.visual.blocks[0].attn.qkv.weight, lavila.visual.blocks[0].attn.qkv.weight)
        assert not hasattr(model.config, "lavila_checkpoint")  # weights are not architecture
    hh = create_model("helpinghands_tiny", backbone_checkpoint=path)
    assert torch.equal(hh.backbone.visual.pos_embed, lavila.visual.pos_embed)
    with pytest.raises(BenchError, match="disagree"):
        create_model("henasy_tiny", backbone_checkpoint=path, lavila_checkpoint="other.pt")
    with pytest.raises(BenchError, match="unknown HENASY option"):
        henasy.model.network.henasy_tiny(
            lavila_checkpoint=str(path)
        )  # the architecture factory takes no weights


def test_meta_and_device_placement() -> None:
    meta = create_model("lavila_tiny", meta=True, device="cuda:99")  # device is ignored on meta
    assert all(p.is_meta for p in meta.parameters())
    assert build_on_meta("lavila_tiny", frames=3).num_frames == 3
    counts = parameter_counts(meta)
    assert counts["params_total"] == sum(counts["modules"].values()) > 0
    assert next(create_model("lavila_tiny", device="cpu").parameters()).device.type == "cpu"
    with pytest.raises(BenchError, match="device 'nonsense'"):
        create_model("lavila_tiny", device="nonsense")
    with pytest.raises(BenchError, match="--frames must be a positive integer"):
        build_on_meta("lavila_tiny", frames=0)


def test_one_noun_text_shared_by_both_models() -> None:
    shared = henasy.data.taxonomy.noun_text
    assert henasy.model.network.noun_text is shared and baselines.helpinghands.noun_text is shared
    assert shared("bag_(pouch,_sack)") == "bag" and shared("cutting_board") == "cutting board"


def test_library_code_builds_models_without_the_cli() -> None:
    for path in (
        "reports/cost.py",
        "henasy/core/factory.py",
        "benchmarks/runner.py",
        "henasy/training/run.py",
    ):
        assert "henasy.commands" not in (ROOT / path).read_text(), path
    for path in ("henasy/commands/ground.py", "henasy/commands/info.py", "henasy/commands/ckpt.py"):
        assert "MODELS.get" not in (ROOT / path).read_text(), path
