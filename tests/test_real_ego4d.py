"""The Ego4D loaders on what the official files contain: NLQ v1/v2, EgoClip, EgoMCQ, MQ.

NLQ v1 tests read excerpts of the official files (``tests/fixtures/ego4d``: records of
QinghongLin/EgoVLP_episodic_memory @ ede9fbb : NLQ/data/nlq_val.json and nlq_test_unannotated.json; see its
README.md) through the functions ``benchmarks/egonlq.py`` and ``bench data check`` use.

No public copy was found of ``egoclip.csv``, ``egomcq.json``, NLQ v2, ``moments_*.json`` or
``clip_annotations.json``: their tests are **hand-written files that reproduce the documented structure**,
each citing where the structure is documented.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from benchmarks.heads.vslnet import seconds_to_span
from henasy.core.errors import DataFormatError
from henasy.data.egoclip import EGOCLIP_COLUMNS, egovlp_clip_bounds, load_egoclip
from henasy.data.egomcq import load_egomcq
from henasy.data.layout import DatasetLayout
from henasy.data.mq import load_clip_annotations, load_moments
from henasy.data.nlq import load_nlq
from henasy.data.preflight import check_benchmark

FIXTURES = Path(__file__).parent / "fixtures" / "ego4d"
NO_QUERY = ("5ccb96c6-714f-4a93-9352-540899b27a4d", "6d490d22-8ba3-4f13-82ad-ab1ec9074cfe", 8)
NULL_TEMPLATE = ("5b86c54c-51bd-4cee-9c53-4aba881772d0", "e5c20d1c-067d-4297-8e11-72c88b416c36", 1)
ZERO_LENGTH_CLIP = "d3413a15-c30d-4cd7-ac2e-e56af6790754"
PAST_END_CLIP = "8d3f5b12-ac2c-4315-80ed-bb827aa91bd4"


@pytest.fixture
def real_root(tmp_path) -> Path:
    shutil.copytree(FIXTURES, tmp_path / "ego4d")
    return tmp_path


def _keys(nlq) -> dict:
    return {(q.clip_uid, q.annotation_uid, q.query_idx): q for q in nlq.queries}


# --------------------------------------------------------------------------------------------- NLQ v1 (real)


def test_nlq_v1_val_loads_with_missing_query_null_template_and_odd_windows(real_root):
    nlq = load_nlq(DatasetLayout(real_root).nlq_json("val"))
    assert nlq.version == "1" and nlq.num_prefixed == 0
    assert len(nlq.clips) == 4 and len(nlq.queries) == 9 + 2 + 4 + 3 - 1
    assert nlq.num_skipped == 1  # the query without a "query" key, skipped as the official code does
    by_key = _keys(nlq)
    assert NO_QUERY not in by_key
    assert [k[2] for k in by_key if k[:2] == NO_QUERY[:2]] == list(range(8))  # indices of the kept ones
    assert (
        by_key[NULL_TEMPLATE].template is None and by_key[NULL_TEMPLATE].query == "Did I leave my phone on?"
    )
    zero = [q for q in nlq.queries if q.clip_uid == ZERO_LENGTH_CLIP]
    assert len(zero) == 3 and all(q.window[0] == q.window[1] for q in zero)
    assert zero[0].window == (2.46577, 2.46577)
    late = by_key[(PAST_END_CLIP, "44fdefcd-3d36-413f-993d-a538c436dca6", 2)]
    duration = late.video_end_sec - late.video_start_sec
    assert late.window == (238.44138, 260.441) and late.window[1] > duration  # kept as given
    # the benchmark maps it onto the last feature position instead of running past the clip
    assert seconds_to_span(*late.window, 128, duration)[1] == 127
    assert "’" in by_key[(PAST_END_CLIP, "44fdefcd-3d36-413f-993d-a538c436dca6", 2)].template


def test_nlq_v1_test_unannotated_loads(real_root):
    path = DatasetLayout(real_root).nlq_json("test_unannotated")
    nlq = load_nlq(path, annotated=False)
    assert all(q.window is None for q in nlq.queries) and nlq.num_skipped == 1  # the empty "" query
    first = [q for q in nlq.queries if q.annotation_uid == "dac51ee2-bdec-4271-9ac9-85be440f5cf6"]
    assert [q.query_idx for q in first] == list(range(1, 9))
    assert "75d9ea69-3a4e-402f-af28-ab13db70fb1f" in nlq.clips  # its empty language_queries list is fine
    with pytest.raises(DataFormatError) as e:  # an annotated read names the first query without a window
        load_nlq(path)
    assert 'missing "clip_start_sec"' in str(e.value) and "nlq_test_unannotated.json" in str(e.value)


def test_nlq_preflight_reads_the_real_file(real_root):
    layout = DatasetLayout(real_root)
    shutil.copy(layout.nlq_json("val"), layout.nlq_json("train"))  # stand-in: nlq_train.json is not committed
    result = check_benchmark(real_root, "egonlq")
    assert result.annotations == "ok" and result.videos_expected == 4 and len(result.missing) == 4


def test_nlq_reversed_window_still_fails(real_root):
    path = DatasetLayout(real_root).nlq_json("val")
    doc = json.loads(path.read_text())
    query = doc["videos"][1]["clips"][0]["annotations"][0]["language_queries"][0]
    query["clip_start_sec"], query["clip_end_sec"] = query["clip_end_sec"], query["clip_start_sec"]
    path.write_text(json.dumps(doc))
    with pytest.raises(DataFormatError) as e:
        load_nlq(path)
    where = 'key "videos" → "1" → "clips" → "0" → "annotations" → "0" → "language_queries" → "0"'
    assert where in str(e.value) and "before clip_start_sec" in str(e.value)


# ------------------------------------------------------------------------------------- NLQ v2 (hand-written)


def test_nlq_v2_layout(tmp_path):
    """Hand-written v2 file: the v1 layout with ``"version": "2"``, an ``answer`` key, texts that kept the
    annotation form's labels (record quoted in JUNJIE99/MLVU issue #1; the same query text and window in
    mamadhs74/ego4d-nlq @ e2ea253 : data/nlq_val_samples.json, extracted from v2 nlq_val.json), and a null
    query (docs: EGO4D/docs @ fb273bf : docs/data/annotations-schemas.md, ``query`` is null or string)."""
    v2_query = {
        "clip_start_sec": 240.50272, "clip_end_sec": 254.69288, "video_start_sec": 2580.50272,
        "video_end_sec": 2594.69288, "video_start_frame": 77415, "video_end_frame": 77841,
        "template": "Objects: What X is Y?",
        "query": "Query Text:What color t-shirt was the man wearing holding the air-blower machine?",
        "slot_x": "X Text (Optional):color t-shirt", "verb_x": "X Verb (Optional):[verb_not_applicable]",
        "slot_y": "Y Text (Optional):the man wearing holding the air-blower machine",
        "verb_y": "Y Verb (Optional):wear", "answer": "Answer (Optional):Grey", "raw_tags": [],
    }  # fmt: skip
    plain = {**v2_query, "query": "Where did i put the fire gun ?", "answer": None}
    clip = {"clip_uid": "e9517689-b3a9-4ae1-a727-66e3639e6ae4", "video_start_sec": 2340.0, "video_end_sec": 2820.0,
            "annotations": [{"annotation_uid": "a1", "language_queries": [v2_query, {**v2_query, "query": None}, plain]}]}  # fmt: skip
    doc = {"version": "2", "videos": [{"video_uid": "407216c9-b0f1-4fe1-af09-9405a7657953", "clips": [clip], "split": "val"}]}  # fmt: skip
    path = tmp_path / "nlq_val.json"
    path.write_text(json.dumps(doc))
    nlq = load_nlq(path)
    assert nlq.version == "2" and nlq.num_prefixed == 1 and nlq.num_skipped == 1
    assert [q.query for q in nlq.queries] == [
        "What color t-shirt was the man wearing holding the air-blower machine?",
        "Where did i put the fire gun ?",
    ]
    assert [q.query_idx for q in nlq.queries] == [0, 2] and nlq.queries[0].window == (240.50272, 254.69288)
    clip["annotations"][0]["language_queries"] = [
        {**v2_query, "query": "Query Text:"}
    ]  # nothing after the label
    path.write_text(json.dumps(doc))
    assert load_nlq(path).queries == []


# ------------------------------------------------------------------------------------ EgoClip (hand-written)


def test_egovlp_clip_bounds_hand_computed():
    start, end = egovlp_clip_bounds(
        np.array([1.0, -0.8, 5.0, -2.0, 3.0]), np.array([2.0, 1.2, 4.0, -1.0, -1.0])
    )
    np.testing.assert_array_equal(start, [1.0, 0.0, 4.0, 0.0, 0.0])
    np.testing.assert_array_equal(end, [2.0, 1.2, 5.0, 0.0, 3.0])


def test_egoclip_odd_bounds_and_tag_lists(tmp_path):
    """Hand-written egoclip.csv with the columns read by showlab/EgoVLP @ 928406c :
    data_loader/EgoClip_EgoMCQ_dataset.py (tab-separated, tag lists as string-encoded Python lists, which
    EgoVLP ``eval``-s)."""

    def row(idx, start, end, verbs, nouns):
        return [str(idx), "002ad105-bd9a-4858-953e-54e88dc7587e", "1140.0", "narration_pass_1", str(idx),
                "0.5", start, end, "#C C picks up a knife", verbs, nouns]  # fmt: skip

    rows = [
        row(0, "0.1", "1.2", "[93]", "[192, 115, 12]"),
        row(1, "-0.8386", "1.5093", "[]", "[1]"),  # narration near 0 s: the window starts before the video
        row(2, "5.0", "4.2", "[1, 2]", "[]"),  # clip_end before clip_start
        row(3, "-2.0", "-1.0", "[0]", "[0]"),
    ]
    path = tmp_path / "egoclip.csv"
    path.write_text("\n".join(["\t".join(EGOCLIP_COLUMNS)] + ["\t".join(r) for r in rows]) + "\n")
    df = load_egoclip(path, num_verbs=118, num_nouns=582)
    assert df["clip_start"].tolist() == [0.1, 0.0, 4.2, 0.0]
    assert df["clip_end"].tolist() == [1.2, 1.5093, 5.0, 0.0]
    assert df.attrs["negative_bound_lines"] == [3, 5] and df.attrs["reversed_bound_lines"] == [4]
    assert df["tag_verb"].tolist() == [[93], [], [1, 2], [0]] and df["tag_noun"][0] == [192, 115, 12]


@pytest.mark.parametrize("cell", ["__import__('os').getcwd()", "[1, 2", "{1: 2}", "[1.5]"])
def test_egoclip_tag_cells_are_never_evaluated(tmp_path, cell):
    header = "\t".join(EGOCLIP_COLUMNS)
    good = "\t".join(["0", "v1", "10", "narration_pass_1", "0", "1", "0.5", "1.5", "#C C cuts", "[1]", "[2]"])
    bad = good.replace("\t[1]\t", f"\t{cell}\t")
    path = tmp_path / "egoclip.csv"
    path.write_text(f"{header}\n{good}\n{bad}\n")
    with pytest.raises(DataFormatError) as e:
        load_egoclip(path)
    assert (e.value.line, e.value.column) == (3, "tag_verb") and "egoclip.csv" in str(e.value)


# ------------------------------------------------------------------------------------- EgoMCQ (hand-written)


def test_egomcq_string_times_negative_and_reversed_bounds(tmp_path):
    """Hand-written egomcq.json (structure of showlab/EgoVLP @ 928406c : data_loader/EgoClip_EgoMCQ_dataset.py
    ``_get_val_item`` and facebookresearch/LaViLa @ 8002b5a : lavila/data/datasets.py, which wraps the
    times in ``float()``)."""

    def clip(start, end, text="#C C opens a drawer"):
        return {"video_uid": "v1", "clip_start": start, "clip_end": end, "clip_text": text,
                "tag_verb": "[3]", "tag_noun": "[7, 9]", "narration_time": 1.0}  # fmt: skip

    choices = {
        "0": clip("-0.3", "1.2"),
        "1": clip(6.0, 5.5),
        "2": clip("2", "3"),
        "3": clip(1, 1),
        "4": clip(0, 9),
    }
    path = tmp_path / "egomcq.json"
    path.write_text(json.dumps({"0": {"answer": 1, "query": clip(6.0, 5.5), "choices": choices, "types": 2}}))
    (item,) = load_egomcq(path)
    assert [(c.clip_start, c.clip_end) for c in item.choices] == [
        (0.0, 1.2),
        (5.5, 6.0),
        (2.0, 3.0),
        (1.0, 1.0),
        (0.0, 9.0),
    ]
    assert (item.query.clip_start, item.query.clip_end) == (5.5, 6.0) and item.choices[0].tag_noun == (7, 9)


# ----------------------------------------------------------------------------------------- MQ (hand-written)


LABEL = {"label": "use_phone", "start_time": 3.2, "end_time": 3.2, "video_start_time": 1803.2,
         "video_end_time": 1803.2, "video_start_frame": 54096, "video_end_frame": 54096, "primary": True}  # fmt: skip


def test_mq_moments_test_unannotated_and_zero_length_labels(tmp_path):
    """Hand-written moments files: the schema of EGO4D/docs @ fb273bf : docs/data/annotations-schemas.md, and
    test clips without ``annotations`` (EGO4D/episodic-memory @ 5275b95 : MQ/Convert_annotation.py reads them
    only when ``split != "test"``)."""
    clip = {"clip_uid": "c1", "video_start_sec": 1800.0, "video_end_sec": 2280.0, "video_start_frame": 54000,
            "video_end_frame": 68400, "clip_start_sec": 0, "clip_end_sec": 480.0, "source_clip_uid": "s1"}  # fmt: skip
    test = {"version": "1", "videos": [{"video_uid": "v1", "split": "test", "clips": [clip]}]}
    path = tmp_path / "moments_test_unannotated.json"
    path.write_text(json.dumps(test))
    (loaded,) = load_moments(path)
    assert loaded.split == "test" and loaded.segments == ()
    val = {"videos": [{"video_uid": "v1", "split": "val", "clips": [{**clip, "annotations": [
        {"annotator_uid": "a", "labels": [LABEL, {**LABEL, "label": "wash", "end_time": 9.0, "primary": False}]}]}]}]}  # fmt: skip
    path = tmp_path / "moments_val.json"
    path.write_text(json.dumps(val))
    (loaded,) = load_moments(path)
    assert [(s.label, s.start_time, s.end_time) for s in loaded.primary()] == [("use_phone", 3.2, 3.2)]
    val["videos"][0]["clips"][0]["annotations"][0]["labels"][1]["end_time"] = 1.0  # before its start_time
    path.write_text(json.dumps(val))
    with pytest.raises(DataFormatError) as e:
        load_moments(path)
    assert '"labels" → "1": end_time 1.0 is before start_time 3.2' in str(e.value)


def test_mq_clip_annotations_as_the_converter_writes_them(tmp_path):
    """Hand-written ``clip_annotations.json`` with every key EGO4D/episodic-memory @ 5275b95 :
    MQ/Convert_annotation.py writes: test clips kept with an empty list, label dicts copied whole."""
    conv = {
        "c1": {"video_id": "v1", "clip_id": "c1", "parent_start_sec": 1800.0, "parent_end_sec": 2280.0,
               "v_duration": 2700.5, "fps": 1.8747, "annotations": [LABEL], "subset": "val"},
        "c2": {"video_id": "v2", "clip_id": "c2", "parent_start_sec": 0.0, "parent_end_sec": 480.0,
               "v_duration": 600.0, "fps": 1.875, "annotations": [], "subset": "test"},
    }  # fmt: skip
    path = tmp_path / "clip_annotations.json"
    path.write_text(json.dumps(conv))
    ann = load_clip_annotations(path)
    assert ann["c1"].fps == pytest.approx(1.8747) and ann["c1"].segments[0].primary
    assert ann["c2"].subset == "test" and ann["c2"].segments == ()
    result = check_benchmark(_mq_root(tmp_path, conv), "egomq")
    assert result.annotations == "ok" and result.videos_expected == 1  # the test clip has nothing to read


def _mq_root(tmp_path: Path, conv: dict) -> Path:
    root = tmp_path / "root"
    layout = DatasetLayout(root)
    layout.mq_clip_annotations_json.parent.mkdir(parents=True)
    layout.mq_clip_annotations_json.write_text(json.dumps(conv))
    return root
