"""The EGTEA loaders on excerpts of the official EGTEA Gaze+ action annotation files.

Fixtures: ``tests/fixtures/egtea`` (lines of the EGTEA Gaze+ ``action_annotation`` files as committed in
tavis-siebert/gaze-guided-scene @ 9c7ff08; see its README.md). They are read through the functions
``benchmarks/egtea.py`` and ``bench data check`` use, from a data root laid out as ``<root>/egtea/...``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from henasy.core.errors import DataFormatError
from henasy.data.egtea import egtea_clip_relpath, load_action_index, load_split
from henasy.data.layout import DatasetLayout
from henasy.data.preflight import check_benchmark

FIXTURES = Path(__file__).parent / "fixtures" / "egtea"
SPLITS = ("test_split1", "test_split2", "test_split3")


@pytest.fixture
def real_root(tmp_path) -> Path:
    shutil.copytree(FIXTURES, tmp_path / "egtea")
    return tmp_path


def test_action_index_has_106_classes_in_line_order(real_root):
    classes = load_action_index(DatasetLayout(real_root).egtea_action_idx)
    assert len(classes) == 106
    # the official ids are 1-based and equal to the line number; the scoring index is the line order
    assert [c.action_id for c in classes] == list(range(1, 107))
    assert [c.index for c in classes] == list(range(106))
    texts = {c.action_id: c.text for c in classes}
    assert texts[1] == "inspect/read recipe"  # "/" kept
    assert texts[19] == "put trash,trash container"  # "," kept, "_" → space
    assert texts[101] == "move around pot"  # two verb words: every token but the last is class text
    assert texts[106] == "put oil container"


def test_splits_keep_every_noun_id(real_root):
    layout = DatasetLayout(real_root)
    classes = load_action_index(layout.egtea_action_idx)
    for name in SPLITS:
        clips = load_split(layout.egtea_split(name), classes)
        assert [c.action_id for c in clips] == [1, 19, 27, 72, 101, 106]
        assert [len(c.noun_ids) for c in clips] == [1, 2, 3, 3, 1, 1]  # lines of 4, 5 and 6 fields
        assert all(c.class_index == c.action_id - 1 for c in clips)
        assert all(c.noun_id == c.noun_ids[0] for c in clips)
    clip = load_split(layout.egtea_split("test_split1"), classes)[2]  # upstream line 1112
    assert clip.clip_id == "P02-R03-BaconAndEggs-1247799-1251069-F029939-F030034"
    assert (clip.verb_id, clip.noun_ids) == (11, (21, 22, 3))
    assert egtea_clip_relpath(clip.clip_id) == f"P02-R03-BaconAndEggs/{clip.clip_id}.mp4"


def test_preflight_parses_the_real_files_and_lists_the_clips(real_root):
    result = check_benchmark(real_root, "egtea")
    assert result.annotations == "ok"
    assert result.videos_expected == 18 and len(result.missing) == 18  # 6 clips per split, no video here
    assert any(
        m.endswith("OP03-R07-Pizza/OP03-R07-Pizza-387192-389182-F009287-F009346.mp4") for m in result.missing
    )


def test_a_malformed_noun_id_still_fails(real_root):
    layout = DatasetLayout(real_root)
    classes = load_action_index(layout.egtea_action_idx)
    path = layout.egtea_split("test_split1")
    lines = path.read_text().splitlines()
    lines[3] = lines[3] + " x"  # line 4: an extra noun id that is not an integer
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataFormatError) as e:
        load_split(path, classes)
    assert (e.value.line, e.value.column) == (4, "noun_id") and "test_split1.txt" in str(e.value)
