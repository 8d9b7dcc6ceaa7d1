"""HelpingHands' rephrased captions: reading lavila_rephrased.pth (henasy/data/rephrased.py) and the synthetic
file (henasy/synth/rephrase.py)."""

from __future__ import annotations

import fractions
from pathlib import Path

import pytest
import torch

from henasy.core.errors import DataFormatError
from henasy.data.egoclip import load_egoclip
from henasy.data.egoclip_dataset import EgoClipDataset
from henasy.data.rephrased import RephrasedCaptions, load_rephrased
from henasy.data.video import ClipLoader
from henasy.synth.language import ego4d_narration
from henasy.synth.rephrase import captions_of
from henasy.synth.scene import Action, Entity, Step, VideoScript

CAPTION = "#C C picks the cup"
# official layout: video_uid -> str(600-s chunk) -> start at 0.1 s -> [(caption, ...), ...]
TABLE = {
    "vid": {
        "0": {
            12.3: [(CAPTION, 0.0), ("#C C grabs the mug", -1.0), ("#C C takes the cup", -2.0)],
            40.0: [("#C C drops the cup", 0.0), ("#C C lets go of the cup", -1.0)],
            40.4: [(CAPTION, 0.0)],  # later start key: overwrites slot 0 only
        },
        "1": {612.0: [["#C C opens the jar"], ["#C C unscrews the jar"]]},  # lists work as tuples
    }
}


def test_lookup_follows_the_official_window_and_caption_check():
    table = RephrasedCaptions(TABLE, "lavila_rephrased.pth")
    assert table.captions("vid", 12.3, CAPTION) == [CAPTION, "#C C grabs the mug", "#C C takes the cup"]
    # EgoClip's start differs from LaViLa's by < 0.5 s: still found (±0.5 s at 0.1-s steps)
    assert table.captions("vid", 12.71, CAPTION)[1:] == ["#C C grabs the mug", "#C C takes the cup"]
    assert table.captions("vid", 11.9, CAPTION) == [CAPTION, "#C C grabs the mug", "#C C takes the cup"]
    assert table.captions("vid", 12.9, CAPTION) == [CAPTION]  # 12.3 is outside [12.4, 13.4)
    # first caption ≠ the narration: the paraphrases are not used
    assert table.captions("vid", 12.3, "#C C picks the mug") == ["#C C picks the mug"]
    # 40.0 then 40.4 in the window: slot 0 overwritten, slot 1 kept (HH's loop)
    assert table.slots("vid", 40.2)[:2] == [CAPTION, "#C C lets go of the cup"]
    assert table.captions("vid", 612.0, "#C C opens the jar") == [
        "#C C opens the jar",
        "#C C unscrews the jar",
    ]
    assert table.captions("other", 12.3, CAPTION) == [CAPTION]  # video not in the file
    assert table.captions("vid", 612.0, CAPTION) == [CAPTION]  # chunk 1 has no 12.3


def test_file_loads_with_weights_only_and_bad_files_are_named(tmp_path: Path):
    good = tmp_path / "lavila_rephrased.pth"
    torch.save(TABLE, good)
    assert load_rephrased(good).captions("vid", 12.3, CAPTION)[1] == "#C C grabs the mug"
    hostile = tmp_path / "hostile.pth"
    torch.save({"vid": {"0": {1.0: [(fractions.Fraction(1, 3), 0.0)]}}}, hostile)  # a class, not plain data
    with pytest.raises(DataFormatError, match="hostile.pth: refused to unpickle fractions.Fraction"):
        load_rephrased(hostile)
    wrong = tmp_path / "wrong.pth"
    torch.save({"vid": {0: {}}}, wrong)  # chunk ids must be strings, as in the official file
    with pytest.raises(DataFormatError, match=r"\['vid'\] has the key 0 .*chunk id string"):
        load_rephrased(wrong)
    lines = tmp_path / "lines.pth"
    torch.save({"vid": {"0": {1.0: ["#C C picks the cup"]}}}, lines)  # a bare string: HH would read 1 char
    with pytest.raises(DataFormatError, match=r"\['vid'\]\['0'\]\[1.0\]: a caption entry is str"):
        load_rephrased(lines).captions("vid", 1.0, CAPTION)
    with pytest.raises(DataFormatError, match="not found"):
        load_rephrased(tmp_path / "missing.pth")
    (tmp_path / "text.pth").write_text("not a torch file")
    with pytest.raises(DataFormatError, match="not a readable torch.save file"):
        load_rephrased(tmp_path / "text.pth")


def _script() -> VideoScript:
    steps = (Step(verb=0, entity=1, hand="right", form=1, ref=2),)  # "picks up ... next to the plate"
    action = Action(0, steps, 1.0, 3.0, 2.0, "the")
    entities = (Entity(1, 0, 10, 10, 5, 0), Entity(2, 2, 30, 30, 5, 0))  # cup, plate
    return VideoScript("v", "ego4d", "train", 0, (0, 0, 0), (0, 0, 0), entities, (action,), 60, 15, (0,))


def test_synthetic_paraphrases_reword_verbs_and_nouns():
    script = _script()
    action = script.actions[0]
    assert ego4d_narration(script, action) == "#C C picks up the cup next to the plate"
    assert ego4d_narration(script, action, variant=1) == "#C C grabs the mug next to the dish"
    assert captions_of(script, action) == [
        "#C C picks up the cup next to the plate",
        "#C C grabs the mug next to the dish",
        "#C C takes the cup next to the plate",
        "#C C picks up the mug next to the dish",
    ]


def test_synthetic_file_reaches_the_dataset_items(synth_tiny: Path):
    path = synth_tiny / "ego4d" / "lavila_rephrased.pth"
    table = load_rephrased(path)
    meta = load_egoclip(synth_tiny / "ego4d" / "egoclip.csv")
    found = [
        table.captions(r.video_uid, r.clip_start, r.clip_text)
        for r in meta.itertuples()  # every EgoClip clip is in the file
    ]
    assert all(c[0] == t for c, t in zip(found, meta["clip_text"]))
    with_paraphrases = sum(len(c) > 1 for c in found)
    assert 0.5 * len(found) < with_paraphrases < len(found)  # most clips; the misaligned ones fall back
    ds = EgoClipDataset(synth_tiny, ClipLoader(2, 16), 12, 30, hard_negative_sec=600.0, rephrased=table)
    item = ds[0]
    assert item["rephrased_texts"] == found[0] and item["neg_rephrased_texts"][0] == item["neg_text"]
