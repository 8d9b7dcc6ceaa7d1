"""The EK100 loaders on excerpts of the official EPIC-KITCHENS-100 annotation files.

Fixtures: ``tests/fixtures/epic100`` (rows of epic-kitchens/epic-kitchens-100-annotations @ ea8b404, CC BY-NC
4.0; see its README.md). They are read through the functions ``bench eval`` uses: ``load_ek100_retrieval``
(``benchmarks/ek100_mir.py``) and ``load_epic_annotations`` on ``DatasetLayout.epic_csv`` / classes
(``benchmarks/ek100_cls.py``), from a data root laid out as ``<root>/ek100/...``.
"""

from __future__ import annotations

import csv
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest

from henasy.core.errors import DataFormatError
from henasy.data.ek100 import load_ek100_retrieval, load_epic_annotations, load_epic_classes
from henasy.data.layout import DatasetLayout

FIXTURES = Path(__file__).parent / "fixtures" / "epic100"
EMPTY_TIMESTAMP_IDS = {"P02_12_293", "P02_15_39", "P02_15_40", "P03_22_18", "P03_22_8", "P03_24_114"}


def _read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture
def real_root(tmp_path) -> Path:
    """A data root with the excerpts at their official paths and a relevancy pkl of the matching shape."""
    shutil.copytree(FIXTURES, tmp_path / "ek100")
    layout = DatasetLayout(tmp_path)
    videos = _read_rows(layout.ek100_retrieval_csv)
    sentences = _read_rows(layout.ek100_retrieval_sentence_csv)
    narration_of = {r["narration_id"]: r["narration"] for r in videos}
    # 1 where the clip's narration equals the narration of the clip the caption id names (a stand-in: the
    # official pkl is distributed separately).
    rel = np.array(
        [[float(v["narration"] == narration_of[s["narration_id"]]) for s in sentences] for v in videos]
    )
    layout.ek100_relevancy_pkl.parent.mkdir(parents=True)
    layout.ek100_relevancy_pkl.write_bytes(pickle.dumps(rel))
    return tmp_path


def test_validation_csv_loads_with_nan_narration_timestamps(real_root):
    layout = DatasetLayout(real_root)
    df = load_epic_annotations(layout.epic_csv("validation"))
    assert len(df) == 28
    missing = {
        r["narration_id"]
        for r in _read_rows(FIXTURES / "EPIC_100_validation_missing_timestamp_narrations.csv")
    }
    assert len(missing) == 70
    nan_ids = set(df["narration_id"][np.isnan(df["narration_sec"])])
    assert nan_ids == EMPTY_TIMESTAMP_IDS == missing & set(df["narration_id"])
    row = df.set_index("narration_id").loc["P02_12_293"]  # line 1103 of the official file
    assert row["narration_timestamp"] == "" and row["start_timestamp"] == "00:17:47.56"
    assert row["start_sec"] == pytest.approx(1067.56) and row["stop_sec"] == pytest.approx(1070.75)
    # the timestamps the benchmarks use are always present
    assert np.isfinite(df["start_sec"]).all() and np.isfinite(df["stop_sec"]).all()
    assert (df["stop_sec"] > df["start_sec"]).all()
    present = df[~df["narration_id"].isin(EMPTY_TIMESTAMP_IDS)]
    assert np.isfinite(present["narration_sec"]).all()
    assert df.set_index("narration_id").loc["P01_11_0", "narration_sec"] == pytest.approx(0.56)
    assert df.set_index("narration_id").loc["P01_11_0", "all_nouns"] == ["plate"]


def test_train_format_rows_load_and_join_the_action_vocabulary(real_root):
    """The train csv's format, from the UDA source-train excerpt (the same 15 columns; ``EPIC_100_train.csv``
    itself was not in the repository snapshot the excerpts come from): its empty timestamps are the ids of the official train list, and
    ek100_cls's classes are the verb:noun pairs of train ∪ validation, with every narration of each pair."""
    from benchmarks.ek100_cls import build_action_classes

    layout = DatasetLayout(real_root)
    shutil.copy(FIXTURES / "UDA_annotations" / "EPIC_100_uda_source_train.csv", layout.epic_csv("train"))
    train = load_epic_annotations(layout.epic_csv("train"))
    val = load_epic_annotations(layout.epic_csv("validation"))
    assert len(train) == 8
    missing = {
        r["narration_id"] for r in _read_rows(FIXTURES / "EPIC_100_train_missing_timestamp_narrations.csv")
    }
    assert len(missing) == 117
    nan_ids = set(train["narration_id"][np.isnan(train["narration_sec"])])
    assert nan_ids == {"P01_09_660", "P01_09_789"} == missing & set(train["narration_id"])
    assert train.set_index("narration_id").loc["P01_01_102", "all_noun_classes"] == [13, 3]
    rows = [
        (v, n, t)
        for df in (train, val)
        for v, n, t in zip(df["verb_class"], df["noun_class"], df["narration"])
    ]
    classes = build_action_classes(rows)
    pairs = {f"{v}:{n}" for v, n, _ in rows}
    assert classes.keys == sorted(pairs)  # string order: "0:19" < "0:2" < "0:49"
    texts = dict(zip(classes.keys, classes.texts))
    assert texts["0:2"] == ["take plate"]  # three validation clips, one narration
    assert texts["3:3"] == [
        "open door",
        "open cupboard",
    ]  # two train narrations of one pair, first-seen order


def test_class_csvs_load(real_root):
    layout = DatasetLayout(real_root)
    verbs = load_epic_classes(layout.epic_classes_csv("verb"))
    nouns = load_epic_classes(layout.epic_classes_csv("noun"))
    assert verbs["key"].tolist()[:2] == ["take", "put"] and "grab" in verbs["instances"][0]
    assert len(verbs) == len(nouns) == 6 and nouns["id"].tolist() == list(range(6))


def test_retrieval_bundle_loads(real_root):
    mir = load_ek100_retrieval(real_root)
    assert mir.relevancy.shape == (28, 16) and len(mir.sentence_rows) == 16
    assert set(mir.videos["narration_id"][np.isnan(mir.videos["narration_sec"])]) == EMPTY_TIMESTAMP_IDS
    names = mir.videos["narration_id"].to_numpy()
    assert (names[mir.sentence_rows] == mir.sentences["narration_id"].to_numpy()).all()


def test_duplicated_narrations_share_one_sentence(real_root):
    mir = load_ek100_retrieval(real_root)
    videos, sentences = mir.videos, mir.sentences
    caption_text = videos["narration"].to_numpy()[mir.sentence_rows]  # what ek100_mir embeds per caption
    for text, ids in {
        "take plate": {"P01_11_0", "P01_11_21", "P01_11_55"},
        "put down plate": {"P01_11_1", "P01_11_22", "P01_11_57"},
        "open tap": {"P02_12_335", "P07_12_1"},
    }.items():
        assert set(videos["narration_id"][videos["narration"] == text]) == ids
        columns = np.flatnonzero(caption_text == text)
        assert len(columns) == 1 and sentences["narration"].iat[int(columns[0])] == text
        rows = np.flatnonzero(videos["narration"].to_numpy() == text)
        assert (mir.relevancy[rows, columns[0]] == 1).all()  # every duplicate is relevant to the one caption
    # Upstream quirk (end of the sentence csv): P12_03_90's caption text is "count", the narration of its
    # neighbour P12_03_57, while the clip P12_03_90 is "stir"; ek100_mir embeds the named clip's narration.
    by_id = sentences.set_index("narration_id")["narration"]
    assert by_id["P12_03_90"] == by_id["P12_03_57"] == "count"
    j = sentences["narration_id"].tolist().index("P12_03_90")
    assert caption_text[j] == "stir"


@pytest.mark.parametrize("where", ["last", "first", "pandas_index"])
def test_lavila_style_extra_columns_load(tmp_path, where):
    """LaViLa's copies carry a ``uid`` column; pandas-written copies an unnamed index column."""
    lines = (FIXTURES / "EPIC_100_validation.csv").read_text().splitlines()
    header, rows = lines[0], lines[1:]
    if where == "last":
        out = [header + ",uid"] + [f"{r},{i}" for i, r in enumerate(rows)]
    elif where == "first":
        out = ["uid," + header] + [f"{i},{r}" for i, r in enumerate(rows)]
    else:
        out = ["," + header] + [f"{i},{r}" for i, r in enumerate(rows)]
    p = tmp_path / "EPIC_100_validation.csv"
    p.write_text("\n".join(out) + "\n")
    df = load_epic_annotations(p)
    expected = load_epic_annotations(FIXTURES / "EPIC_100_validation.csv")
    assert df["narration_id"].tolist() == expected["narration_id"].tolist()
    np.testing.assert_array_equal(df["narration_sec"], expected["narration_sec"])
    assert df["verb_class"].tolist() == expected["verb_class"].tolist()


@pytest.mark.parametrize(
    "column, cell, fragment",
    [
        ("narration_timestamp", "00:17:4x.950", "HH:MM:SS"),
        ("narration_timestamp", "nan", "HH:MM:SS"),
        ("start_timestamp", "", "HH:MM:SS"),
        ("stop_timestamp", "17:47.84", "HH:MM:SS"),
    ],
)
def test_malformed_timestamp_still_fails(tmp_path, column, cell, fragment):
    rows = _read_rows(FIXTURES / "EPIC_100_validation.csv")
    line = 2 + next(i for i, r in enumerate(rows) if r["narration_id"] == "P02_12_292")
    rows[line - 2][column] = cell
    p = tmp_path / "EPIC_100_validation.csv"
    with open(p, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    with pytest.raises(DataFormatError) as e:
        load_epic_annotations(p)
    assert (e.value.line, e.value.column) == (line, column)
    assert "EPIC_100_validation.csv" in str(e.value) and fragment in str(e.value)
