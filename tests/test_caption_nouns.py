"""HelpingHands' caption noun lists (henasy/data/caption_nouns.py) against hand-worked captions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from henasy.data.caption_nouns import (
    caption_noun_classes,
    caption_noun_words,
    multi_hot,
    singular,
)
from henasy.data.egoclip_dataset import EgoClipDataset, draw_hard_negative
from henasy.data.taxonomy import load_taxonomy
from henasy.data.video import ClipLoader

# class index → synonym group, in the taxonomy's group format
GROUPS = [
    ["cup", "mug"],  # 0
    ["hand"],  # 1
    ["ground", "floor"],  # 2
    ["cutting board", "board"],  # 3
    ["knife"],  # 4
    ["box", "carton"],  # 5
    ["glass"],  # 6
    ["plate", "dish"],  # 7
    ["pan"],  # 8
]


def test_singular_is_helpinghands_p():
    assert singular("cups,") == "cup" and singular("mug.") == "mug" and singular("knife") == "knife"
    # HH's "es" branch never fires (one character compared with "es"): only one trailing s goes
    assert singular("boxes") == "boxe" and singular("glass") == "glas" and singular("s") == ""


def test_words_of_the_tagged_synonyms_in_helpinghands_order():
    caption = "#C C puts the mugs on the cutting board with his hand"
    words = caption_noun_words(caption, [0, 3, 1], GROUPS)
    # two-word nouns first; "board" is part of "cutting board" so not taken again; "hand" is excluded
    assert words == [("cutting board", 3), ("mug", 0)]
    assert caption_noun_classes(caption, [0, 3, 1], GROUPS) == [3, 0]


def test_only_tagged_nouns_and_not_hand_person_ground_words():
    caption = "#C C picks a knife from the floor, then the plate from the ground."
    # knife is not tagged: not a candidate; "ground" is excluded but its synonym "floor" is not (HH's word list)
    assert caption_noun_words(caption, [2, 7], GROUPS) == [("floor", 2), ("plate", 7)]
    assert caption_noun_words("#C C holds the box", [5], GROUPS) == [("box", 5)]
    assert caption_noun_words("#C C opens the boxes", [5], GROUPS) == []  # "boxe": HH's quirk kept
    assert caption_noun_words("#C C fills the glass", [6], GROUPS) == []  # "glas"


def test_at_most_four_nouns_from_the_first_four_tags():
    caption = "#C C moves the cup mug dish plate pan knife"
    # tags beyond the 4th (knife) are not candidates; the cap stops at 4 words
    words = caption_noun_words(caption, [0, 7, 8, 3, 4], GROUPS)
    assert words == [("cup", 0), ("mug", 0), ("dish", 7), ("plate", 7)]
    assert caption_noun_classes(caption, [0, 7, 8, 3, 4], GROUPS) == [0, 7]  # classes, each once
    assert caption_noun_classes(caption, [0, 7, 8, 3, 4], GROUPS, max_nouns=2) == [0]
    tags = multi_hot([0, 7], 9)
    assert tags.tolist() == [1.0, 0, 0, 0, 0, 0, 0, 1.0, 0] and multi_hot([], 3).sum() == 0
    with pytest.raises(IndexError, match="outside the taxonomy"):
        caption_noun_words(caption, [9], GROUPS)


def test_dataset_items_carry_the_lists_and_negatives_come_from_the_same_video(synth_tiny: Path):
    # the paper presets' window (600 s) on short synthetic videos: every clip still finds another clip
    taxonomy = load_taxonomy(synth_tiny / "ego4d" / "narration_noun_taxonomy.csv")
    verbs = len(load_taxonomy(synth_tiny / "ego4d" / "narration_verb_taxonomy.csv"))
    ds = EgoClipDataset(
        synth_tiny,
        ClipLoader(2, 16),
        verbs,
        len(taxonomy),
        hard_negative_sec=600.0,
        noun_list="helpinghands",
        noun_taxonomy=taxonomy,
    )
    assert ds._neg is not None
    neg_rows = [draw_hard_negative(ds._neg, r, np.random.default_rng(r)) for r in range(len(ds))]
    uids = ds.meta["video_uid"].tolist()
    assert all(n != r and uids[n] == uids[r] for r, n in enumerate(neg_rows))
    item = ds[0]
    assert item["neg_index"] != item["index"] and item["neg_video_uid"] == item["video_uid"]
    listed = {int(i) for i in item["caption_noun_tags"].nonzero().flatten()}
    assert listed and listed <= set(ds.meta["tag_noun"][0])  # the caption names its tagged nouns
    assert item["neg_caption_noun_tags"].shape == (len(taxonomy),)
    with pytest.raises(ValueError, match="needs the noun taxonomy"):
        EgoClipDataset(synth_tiny, ClipLoader(2, 16), verbs, len(taxonomy), noun_list="helpinghands")
