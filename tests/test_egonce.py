"""Tests for ``henasy/core/egonce.py`` (paper Eq. 1, EgoVLP's positive mask) on hand-computed cases."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from henasy.core.egonce import egonce_directions, egonce_loss, egonce_positive_mask


def nll(positive: list[float], everything: list[float], tau: float) -> float:
    """−log(Σ_pos exp(s/τ) / Σ_all exp(s/τ)) written out with math.exp / math.log."""
    return -math.log(sum(math.exp(s / tau) for s in positive) / sum(math.exp(s / tau) for s in everything))


def test_two_by_two_without_tags_by_hand():
    video = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    text = torch.tensor(
        [[0.6, 0.8], [0.0, 1.0]], dtype=torch.float64
    )  # similarities s = [[0.6, 0.0], [0.8, 1.0]]
    tau = 0.5
    v2t = (nll([0.6], [0.6, 0.0], tau) + nll([1.0], [0.8, 1.0], tau)) / 2
    t2v = (nll([0.6], [0.6, 0.8], tau) + nll([1.0], [0.0, 1.0], tau)) / 2  # columns of s
    got_v2t, got_t2v = egonce_directions(video, text, temperature=tau)
    assert got_v2t.item() == pytest.approx(v2t, rel=1e-9)
    assert got_t2v.item() == pytest.approx(t2v, rel=1e-9)
    assert egonce_loss(video, text, temperature=tau).item() == pytest.approx(v2t + t2v, rel=1e-9)  # summed


def test_three_by_three_with_verb_and_noun_tags_by_hand():
    video = torch.eye(3, dtype=torch.float64)
    text = torch.tensor([[1.0, 0.0, 0.0], [0.6, 0.8, 0.0], [0.0, 0.6, 0.8]], dtype=torch.float64)
    # s_ij = v_i · t_j = text[j][i]:  s = [[1, .6, 0], [0, .8, .6], [0, 0, .8]]
    verbs = torch.tensor([[1, 0], [1, 0], [0, 1]])  # clips 0 and 1 share verb 0
    nouns = torch.tensor([[1, 0, 0], [1, 1, 0], [0, 0, 1]])  # ... and noun 0 → positives of each other
    tau = 0.07
    v2t = (
        nll([1.0, 0.6], [1.0, 0.6, 0.0], tau)  # P_0 = {0, 1}
        + nll([0.0, 0.8], [0.0, 0.8, 0.6], tau)  # P_1 = {0, 1}
        + nll([0.8], [0.0, 0.0, 0.8], tau)  # P_2 = {2}
    ) / 3
    t2v = (
        nll([1.0, 0.0], [1.0, 0.0, 0.0], tau)  # column 0 of s
        + nll([0.6, 0.8], [0.6, 0.8, 0.0], tau)
        + nll([0.8], [0.0, 0.6, 0.8], tau)
    ) / 3
    got = egonce_loss(video, text, verbs, nouns)  # τ defaults to LaViLa's 0.07
    assert got.item() == pytest.approx(v2t + t2v, rel=1e-9)


def test_sharing_only_a_verb_or_only_a_noun_is_not_positive():
    verbs = torch.tensor([[1, 0], [1, 0], [0, 1], [0, 1]])
    nouns = torch.tensor([[1, 0], [0, 1], [0, 1], [1, 1]])
    mask = egonce_positive_mask(4, verbs, nouns)
    expected = torch.eye(4, dtype=torch.bool)
    expected[2, 3] = expected[3, 2] = True  # verb 1 and noun 1 shared
    assert torch.equal(mask, expected)  # (0,1) share only a verb, (0,3) only a noun
    verb_only = egonce_positive_mask(4, verbs, None)
    assert verb_only[0, 1] and verb_only[2, 3] and not verb_only[0, 2]


def test_no_tags_is_symmetric_infonce_summed():
    torch.manual_seed(0)
    video, text = F.normalize(torch.randn(6, 8), dim=-1), F.normalize(torch.randn(6, 8), dim=-1)
    logits = video @ text.T / 0.07
    target = torch.arange(6)
    expected = F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)
    assert egonce_loss(video, text).item() == pytest.approx(expected.item(), rel=1e-5)
    assert torch.equal(egonce_positive_mask(6), torch.eye(6, dtype=torch.bool))


def test_hard_negatives_are_appended_rows_with_their_own_tags():
    """B = 2 clips + their 2 hard negatives (same video, other action): the extended batch B̃ = 4."""
    video = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.8, 0.6], [0.6, 0.8]], dtype=torch.float64)
    text = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8], [0.8, 0.6]], dtype=torch.float64)
    verbs = torch.tensor([[1, 0, 0], [0, 1, 0], [0, 0, 1], [0, 0, 1]])  # negatives: another verb ...
    nouns = torch.tensor([[1, 0], [0, 1], [1, 0], [1, 0]])  # ... same noun as anchor 0: still a negative
    expected = torch.eye(4, dtype=torch.bool)
    expected[2, 3] = expected[3, 2] = True  # the two appended rows share verb 2 and noun 0
    assert torch.equal(egonce_positive_mask(4, verbs, nouns), expected)
    s = (video @ text.T).tolist()
    tau = 0.1
    row0 = nll([s[0][0]], s[0], tau)  # the anchor's denominator holds all four texts, incl. its hard negative
    v2t, _ = egonce_directions(video, text, verbs, nouns, temperature=tau)
    rows = [
        row0,
        nll([s[1][1]], s[1], tau),
        nll([s[2][2], s[2][3]], s[2], tau),
        nll([s[3][2], s[3][3]], s[3], tau),
    ]
    assert v2t.item() == pytest.approx(sum(rows) / 4, rel=1e-9)


def test_large_logits_stay_finite_and_gradients_flow():
    torch.manual_seed(0)
    video = F.normalize(torch.randn(5, 4), dim=-1).requires_grad_()
    text = F.normalize(torch.randn(5, 4), dim=-1).requires_grad_()
    loss = egonce_loss(video, text, torch.ones(5, 2), torch.ones(5, 3), temperature=1e-3)  # all positive
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(video.grad).all() and torch.isfinite(text.grad).all()
    assert loss.item() == pytest.approx(0.0, abs=1e-6)  # every pair positive → log(1)


def test_bad_shapes_raise_clear_errors():
    with pytest.raises(ValueError, match="same shape"):
        egonce_loss(torch.randn(3, 4), torch.randn(2, 4))
    with pytest.raises(ValueError, match="verb_tags"):
        egonce_loss(torch.randn(3, 4), torch.randn(3, 4), verb_tags=torch.ones(2, 5))
