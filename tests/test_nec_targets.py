"""HENASY's NEC (paper Eq. 7) takes its targets from the caption's noun list as HelpingHands builds it
(``caption_noun_tags``, henasy/data/caption_nouns.py) when the batch has one, else from the EgoClip tags."""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest
import torch

from henasy.model.losses import nec_loss
from henasy.model.network import henasy_tiny

os.environ.setdefault("HF_HUB_OFFLINE", "1")
NOUNS = ["cup_(mug)", "knife", "onion", "table", "plate"]


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = henasy_tiny()
    m.bind_data(NOUNS, None)
    return m


def test_caption_noun_lists_take_precedence_over_egoclip_tags(model) -> None:
    torch.manual_seed(1)
    entities = torch.nn.functional.normalize(
        torch.randn(2, 4, model.noun_embeds.shape[1]), dim=-1
    )  # (B, E, D)
    out = SimpleNamespace(entity_embeds=entities, video_embed=entities[:, 0])
    egoclip = torch.tensor([[1.0, 1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0, 0.0]])  # (B, V)
    caption = torch.tensor([[0.0, 0.0, 0.0, 1.0, 1.0], [0.0, 1.0, 0.0, 0.0, 0.0]])  # (B, V)
    with torch.no_grad():
        both, n_both = model._nec_term(out, {"noun_tags": egoclip, "caption_noun_tags": caption})
        only_tags, _ = model._nec_term(out, {"noun_tags": egoclip})
        want_caption, n_caption = nec_loss(entities, caption, model.noun_embeds, model.temperature)
        want_tags, _ = nec_loss(entities, egoclip, model.noun_embeds, model.temperature)
    assert n_both == n_caption == 3
    assert both.item() == pytest.approx(want_caption.item(), rel=1e-6)
    assert only_tags.item() == pytest.approx(want_tags.item(), rel=1e-6)
    assert abs(want_caption.item() - want_tags.item()) > 1e-3  # the two target sets give different losses
